"""The issue's command, ResNet-18 and all, as a process (shrunk: 200 images, batch 16)."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest
import torch
import yaml
from conftest import REPO  # tests/cli/conftest.py


@pytest.mark.slow
def test_issue_command(cifar, cifar_root, tmp_path):
    command = [
        sys.executable, "-m", "sslprobe", "fit", "--config", "configs/base.yaml",
        "--config", "configs/methods/simclr.yaml", "--config", "configs/backbones/resnet18.yaml",
        "--data.root", str(cifar_root), "--trainer.max_epochs", "1", "--trainer.limit_train_batches", "5",
        # kept cheap on a CPU:
        "--data.batch_size", "16", "--data.eval_batch_size", "16", "--data.imbalance", "none",
        "--data.subset_size", "200", "--trainer.limit_val_batches", "1", "--data.num_workers", "0",
        "--trainer.default_root_dir", str(tmp_path),
        "--probes.knn_monitor.train_size", "200", "--probes.knn_monitor.test_size", "100",
        "--probes.knn_monitor.k", "20",
    ]
    process = subprocess.run(command, cwd=REPO, text=True, capture_output=True, timeout=400)
    assert process.returncode == 0, process.stderr[-3000:]
    run_dir = tmp_path / "simclr_resnet18_none" / "version_0"
    config = yaml.safe_load((run_dir / "config.yaml").read_text())
    assert config["model"]["init_args"]["backbone"] == "resnet18"
    assert config["model"]["init_args"]["backbone_kwargs"] == {"cifar_stem": True}
    checkpoint = torch.load(run_dir / "checkpoints" / "last.ckpt", map_location="cpu", weights_only=False)
    assert checkpoint["global_step"] == 5
    assert checkpoint["state_dict"]["backbone.model.conv1.weight"].shape == (64, 3, 3, 3)  # CIFAR stem
    subset = json.loads((run_dir / "subset.json").read_text())
    assert subset["class_counts"] == [20] * 10
    labels = cifar.train.labels.numpy()[np.asarray(subset["indices"])]
    assert np.bincount(labels, minlength=10).tolist() == [20] * 10
    assert list((run_dir / "wandb").glob("offline-run-*/run-*.wandb"))
    knn = json.loads((run_dir / "probes" / "knn_monitor.json").read_text())  # on in every method config
    assert [row["epochs_trained"] for row in knn["history"]] == [0, 1]
