"""`KNNMonitor`: the step-0 value is the random-init kNN, the history survives in the checkpoint."""

from __future__ import annotations

import csv
import json
import math
from pathlib import Path

import numpy as np
import pytest
import torch
from helpers import tiny_fit_args  # tests/helpers.py
from lightning.pytorch import seed_everything

from sslprobe.callbacks import KNNMonitor
from sslprobe.cli import main
from sslprobe.data.augment import normalize_images
from sslprobe.methods import SimCLR
from sslprobe.probes import knn_predict

TRAIN, TEST, K = 500, 200, 20


def knn_rows(run_dir: Path) -> list[dict]:
    with open(run_dir / "metrics.csv") as handle:
        return [row for row in csv.DictReader(handle) if row.get("knn/top1")]


@pytest.fixture(scope="module")
def monitored_run(tmp_path_factory, cifar_root) -> Path:
    root = tmp_path_factory.mktemp("runs")
    main([
        *tiny_fit_args(root, cifar_root, "knn", "v", subset_size=100, batch_size=25, max_epochs=2,
                       configs=("callbacks/knn_monitor.yaml",)),
        "--trainer.limit_train_batches", "2", "--trainer.limit_val_batches", "0",
        "--probes.knn_monitor.train_size", str(TRAIN), "--probes.knn_monitor.test_size", str(TEST),
        "--probes.knn_monitor.k", str(K),
    ])
    return root / "knn" / "v"


def test_step_zero_is_the_random_init_knn(monitored_run, cifar):
    # The same architecture with the run's seed (quickstart.yaml: seed_everything 0, and the
    # tiny overrides of tests/helpers.py), classified by the probe's kNN on images chosen here.
    seed_everything(0)
    initial = SimCLR(temperature=0.5, backbone="resnet12", backbone_kwargs={"widths": [4, 8, 8, 8]},
                     projector="mlp", hidden_dim=16, output_dim=8, lr=0.06, min_lr=0.001).eval()
    chosen = {}
    for name, images, size in (("train", cifar.train, TRAIN), ("test", cifar.test, TEST)):
        rng = np.random.default_rng(0)  # size / 10 images per class, a class-by-class permutation
        labels = images.labels.numpy()
        index = np.sort(np.concatenate([rng.permutation(np.flatnonzero(labels == c))[: size // 10]
                                        for c in range(10)]))
        with torch.no_grad():
            features = initial.backbone(normalize_images(images.images[index]))
        chosen[name] = (features, images.labels[index])
    predictions = knn_predict(*chosen["train"], chosen["test"][0], 10, k=K, temperature=0.1)
    expected = float((predictions == chosen["test"][1]).double().mean())

    rows = knn_rows(monitored_run)
    assert [int(r["step"]) for r in rows] == [0, 2, 4]  # initial, after epoch 0, after epoch 1
    assert float(rows[0]["knn/top1"]) == pytest.approx(expected, abs=1e-9)
    history = json.loads((monitored_run / "probes" / "knn_monitor.json").read_text())["history"]
    assert [h["epochs_trained"] for h in history] == [0, 1, 2]
    assert [h["top1"] for h in history] == pytest.approx([float(r["knn/top1"]) for r in rows])
    # The 100-image balanced subset has 10 training images per class: every class is few-shot, the
    # many- and medium-shot groups are empty (NaN in metrics.csv, null in the history, never 0).
    truth = chosen["test"][1]
    per_class = [float((predictions[truth == c] == c).double().mean()) for c in range(10)]
    assert float(rows[0]["knn/few_shot"]) == pytest.approx(np.mean(per_class), abs=1e-9)
    assert float(rows[0]["knn/balanced"]) == pytest.approx(np.mean(per_class), abs=1e-9)
    assert all(math.isnan(float(row[f"knn/{group}"])) for row in rows for group in ("many_shot", "medium_shot"))
    assert all(h["many_shot"] is None and h["medium_shot"] is None for h in history)


def test_resume_continues_the_history_without_a_second_step_zero(monitored_run, tmp_path, cifar_root):
    import shutil

    checkpoint = torch.load(monitored_run / "checkpoints" / "last.ckpt", map_location="cpu", weights_only=False)
    state = next(v for k, v in checkpoint["callbacks"].items() if k.startswith("KNNMonitor"))
    assert [h["epochs_trained"] for h in state["history"]] == [0, 1, 2]
    # Resume a copy for one more epoch: one new measurement, none at step 0.
    root = tmp_path / "runs"
    shutil.copytree(monitored_run, root / "knn" / "v")
    main([
        *tiny_fit_args(root, cifar_root, "knn", "v", subset_size=100, batch_size=25, max_epochs=3,
                       configs=("callbacks/knn_monitor.yaml",)),
        "--trainer.limit_train_batches", "2", "--trainer.limit_val_batches", "0",
        "--probes.knn_monitor.train_size", str(TRAIN), "--probes.knn_monitor.test_size", str(TEST),
        "--probes.knn_monitor.k", str(K), "--ckpt_path", "last",
    ])
    assert [int(r["step"]) for r in knn_rows(root / "knn" / "v")] == [6]
    history = json.loads((root / "knn" / "v" / "probes" / "knn_monitor.json").read_text())["history"]
    assert [h["epochs_trained"] for h in history] == [0, 1, 2, 3]
    assert history[:3] == state["history"]


def test_bad_settings_are_refused():
    with pytest.raises(ValueError, match="KNNMonitor.temperature: expected a number > 0, got 0"):
        KNNMonitor(temperature=0)
    with pytest.raises(ValueError, match="KNNMonitor.every_n_epochs: expected a positive int, got 0"):
        KNNMonitor(every_n_epochs=0)
