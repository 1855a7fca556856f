"""Helpers of the CLI tests: tiny-model overrides and checks of a run directory."""

from __future__ import annotations

import json
import logging
import math
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml

REPO = Path(__file__).resolve().parents[2]
CONFIGS = REPO / "configs"
WIDTHS = [8, 16, 32, 64]
SUBSET_SIZE = 200  # the 'none' preset rescaled: 20 images of each class


def method_configs(method: str, backbone: str = "resnet12") -> list[str]:
    """``--config`` arguments of configs/base.yaml + methods/<method>.yaml + backbones/<backbone>.yaml."""
    return [arg for name in ("base", f"methods/{method}", f"backbones/{backbone}")
            for arg in ("--config", str(CONFIGS / f"{name}.yaml"))]


def tiny_args(method: str, data_root: Path, run_root: Path, *extra: str) -> list[str]:
    """``fit`` of ``method``'s configs (or of one complete config, ``<name>.yaml``) shrunk to a
    2-step run of a narrow ResNet-12 (loggers kept)."""
    configs = ["--config", str(CONFIGS / method)] if method.endswith(".yaml") else method_configs(method)
    return [
        "fit", *configs,
        "--data.root", str(data_root),
        "--model.init_args.backbone", "resnet12",
        "--model.init_args.backbone_kwargs", f"{{widths: {WIDTHS}}}",
        "--model.init_args.hidden_dim", "32", "--model.init_args.output_dim", "16",
        "--data.batch_size", "16", "--data.eval_batch_size", "16", "--data.num_workers", "0",
        "--data.imbalance", "none", "--data.subset_size", str(SUBSET_SIZE),
        "--trainer.accelerator", "cpu", "--trainer.max_epochs", "1",
        "--trainer.limit_train_batches", "2", "--trainer.limit_val_batches", "1",
        "--trainer.num_sanity_val_steps", "0", "--trainer.log_every_n_steps", "1",
        "--trainer.enable_model_summary", "false",
        "--trainer.default_root_dir", str(run_root),
        "--probes.knn_monitor.train_size", "100", "--probes.knn_monitor.test_size", "50",
        "--probes.knn_monitor.k", "10",
        *extra,
    ]


def check_run(run_dir: Path, class_name: str, train_labels: torch.Tensor, steps: int = 2) -> None:
    """The files a finished run must leave in ``run_dir``."""
    config = yaml.safe_load((run_dir / "config.yaml").read_text())
    assert config["model"]["class_path"] == f"sslprobe.methods.{class_name}"
    assert config["model"]["init_args"]["backbone_kwargs"] == {"widths": WIDTHS}
    assert config["run"]["version"] == run_dir.name and config["run"]["experiment"] == run_dir.parent.name
    assert config["data"]["subset_size"] == SUBSET_SIZE

    checkpoint = torch.load(run_dir / "checkpoints" / "last.ckpt", map_location="cpu", weights_only=False)
    assert checkpoint["global_step"] == steps
    assert checkpoint["state_dict"]["backbone.stages.3.body.0.weight"].shape[0] == WIDTHS[-1]

    subset = json.loads((run_dir / "subset.json").read_text())
    assert subset["class_counts"] == [SUBSET_SIZE // 10] * 10 and subset["size"] == SUBSET_SIZE
    indices = np.asarray(subset["indices"])
    assert len(set(subset["indices"])) == SUBSET_SIZE
    assert np.bincount(train_labels.numpy()[indices], minlength=10).tolist() == subset["class_counts"]

    losses = [float(row["train/loss"]) for row in _csv_rows(run_dir / "metrics.csv") if row.get("train/loss")]
    assert len(losses) == steps and all(math.isfinite(loss) for loss in losses)

    wandb_runs = list((run_dir / "wandb").glob("offline-run-*"))
    assert len(wandb_runs) == 1, wandb_runs
    assert wandb_runs[0].name.endswith(f"{run_dir.parent.name}-{run_dir.name}")
    assert list(wandb_runs[0].glob("run-*.wandb")), "no W&B offline record"


def _csv_rows(path: Path) -> list[dict]:
    import csv

    with open(path, newline="") as handle:
        return list(csv.DictReader(handle))


@pytest.fixture
def run_cli(capsys, monkeypatch):
    """``sslprobe.cli.main(args)`` in this process; returns (exit code, stdout, stderr)."""
    from sslprobe.cli import main

    monkeypatch.setattr("sys.argv", ["sslprobe"])
    # Library log handlers may hold a stream of an earlier test's capture; don't report that.
    monkeypatch.setattr(logging, "raiseExceptions", False)

    def run(args: list[str]) -> tuple[int, str, str]:
        try:
            main(args)
            code = 0
        except SystemExit as stop:
            code = stop.code if isinstance(stop.code, int) else 1
        out, err = capsys.readouterr()
        return code, out, err

    return run
