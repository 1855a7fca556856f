"""Every speed switch a user can set runs a short `fit` on the CPU and trains to a finite loss."""

from __future__ import annotations

import csv
import math
from pathlib import Path

import pytest
import torch

from sslprobe.cli import main

REPO = Path(__file__).resolve().parents[2]


def fit(root: Path, cifar_root: Path, *extra: str) -> Path:
    """Two steps of batch 20 with a tiny ResNet-12; returns the run directory."""
    main([
        "fit", "--config", str(REPO / "configs" / "quickstart.yaml"),
        "--probes.spectrum", "null", "--probes.landscape", "null", "--probes.linear_eval", "null",
        "--model.init_args.backbone_kwargs", "{widths: [8, 16, 16, 16]}",
        "--data.root", str(cifar_root), "--data.subset_size", "100", "--data.batch_size", "20",
        "--trainer.max_epochs", "1", "--trainer.limit_train_batches", "2", "--trainer.limit_val_batches", "0",
        "--trainer.logger", "lightning.pytorch.loggers.CSVLogger",
        "--trainer.logger.init_args.save_dir", str(root),
        "--trainer.default_root_dir", str(root), "--trainer.callbacks", "null",
        "--trainer.enable_progress_bar", "false", "--trainer.log_every_n_steps", "1",
        "--run.experiment", "switches", "--run.version", "run",
        *extra,
    ])
    return root / "switches" / "run"


def assert_trained(run_dir: Path) -> dict:
    with open(run_dir / "metrics.csv") as handle:
        losses = [float(row["train/loss"]) for row in csv.DictReader(handle) if row.get("train/loss")]
    assert len(losses) == 2 and all(math.isfinite(loss) for loss in losses), losses
    checkpoint = torch.load(run_dir / "checkpoints" / "last.ckpt", map_location="cpu", weights_only=False)
    return checkpoint


@pytest.fixture(autouse=True)
def plain_command_line(monkeypatch):
    monkeypatch.setenv("SSLPROBE_DEBUG", "1")  # a failure shows its traceback
    monkeypatch.setattr("sys.argv", ["sslprobe"])  # pytest's own arguments are not the CLI's


@pytest.mark.parametrize(
    "switches",
    [
        ["--trainer.precision", "bf16-mixed"],
        ["--model.init_args.channels_last", "true"],
        ["--trainer.precision", "bf16-mixed", "--model.init_args.channels_last", "true"],
        ["--data.num_workers", "2", "--data.persistent_workers", "true", "--data.pin_memory", "true"],
        ["--data.augment_on", "workers", "--data.num_workers", "2"],
    ],
    ids=["bf16", "channels_last", "bf16_channels_last", "persistent_pinned_workers", "augment_in_workers"],
)
def test_switch_fits(tmp_path, cifar_root, switches):
    extra = switches if "--data.num_workers" in switches else [*switches, "--data.num_workers", "0"]
    assert_trained(fit(tmp_path, cifar_root, *extra))


@pytest.mark.slow
def test_compile_fits_and_saves_plain_weights(tmp_path, cifar_root):
    checkpoint = assert_trained(fit(
        tmp_path, cifar_root, "--model.init_args.compile", "true", "--model.init_args.channels_last", "true",
        "--data.num_workers", "0",
    ))
    # the compiled wrapper must not add a second copy of the backbone to the checkpoint
    assert not any("_orig_mod" in key or "_compiled" in key for key in checkpoint["state_dict"])
