"""A short fit on a CIFAR-10-LT subset: the profile is the run's subset, and the read-out splits by it."""

from __future__ import annotations

import csv
import json
import math

import numpy as np
import pytest
from helpers import tiny_fit_args  # tests/helpers.py

from sslprobe.cli import main
from sslprobe.data import class_counts
from sslprobe.probes import ShotThresholds, shot_groups

pytestmark = pytest.mark.slow


def test_long_tail_fit_reports_many_medium_few(tmp_path, cifar, cifar_root):
    main([
        *tiny_fit_args(tmp_path, cifar_root, "lt", "v", subset_size=400, batch_size=50, max_epochs=1,
                       configs=("callbacks/linear_eval.yaml",)),
        "--data.imbalance", "long_tail", "--data.imbalance_ratio", "100",
        "--trainer.limit_train_batches", "2", "--trainer.limit_val_batches", "0",
        "--probes.linear_eval.epochs", "3", "--probes.linear_eval.train_size", "1000",
        "--probes.linear_eval.test_size", "500", "--probes.linear_eval.knn_k", "20",
        "--probes.linear_eval.many_shot_above", "60", "--probes.linear_eval.few_shot_below", "10",
    ])
    run = tmp_path / "lt" / "v"
    subset = json.loads((run / "subset.json").read_text())
    counts = class_counts(cifar.train.labels, "long_tail", 400, ratio=100)
    assert subset["class_counts"] == counts.tolist() and subset["imbalance_ratio"] == 100
    linear = json.loads((run / "probes" / "linear_eval.json").read_text())
    groups = {name: [c for c in range(10) if test(counts[c])] for name, test in (
        ("many_shot", lambda n: n > 60), ("medium_shot", lambda n: 10 <= n <= 60), ("few_shot", lambda n: n < 10))}
    assert all(groups.values())  # 400 images of the ρ = 100 profile fill every group at 60 / 10
    assert linear["shot_classes"] == groups == shot_groups(counts, ShotThresholds(60, 10))
    assert linear["shot_thresholds"] == {"many_shot_above": 60, "few_shot_below": 10}
    for prefix, per_class in (("", linear["per_class"]), ("knn_", linear["knn_per_class"])):
        for name, classes in groups.items():
            assert linear[f"{prefix}{name}"] == pytest.approx(np.mean([per_class[c] for c in classes]))
    with open(run / "metrics.csv", newline="") as handle:
        row = next(r for r in csv.DictReader(handle) if r.get("linear/top1"))
    for name in ("many_shot", "few_shot", "random_init_medium_shot", "random_init_knn_few_shot"):
        assert math.isclose(float(row[f"linear/{name}"]), linear[name], rel_tol=1e-6)
