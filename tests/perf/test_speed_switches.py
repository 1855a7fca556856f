"""Every speed switch a user can set runs a short `fit` on the CPU, trains to a finite loss, and does
inside the training step what it claims: channels-last images and weights, bfloat16 autocast, the
compiled backbone called, the loader settings. Each case is the negative control of the others."""

from __future__ import annotations

import csv
import math
from pathlib import Path

import pytest
import torch
import yaml
from switch_recorder import SwitchRecorder  # tests/perf/switch_recorder.py

from sslprobe.cli import main

REPO = Path(__file__).resolve().parents[2]


def fit(root: Path, cifar_root: Path, *extra: str) -> Path:
    """Two steps of batch 20 with a tiny ResNet-12; returns the run directory."""
    main([
        "fit", "--config", str(REPO / "configs" / "quickstart.yaml"),
        "--probes.spectrum", "null", "--probes.landscape", "null", "--probes.linear_eval", "null",
        "--probes.knn_monitor", "null",
        "--model.init_args.backbone_kwargs", "{widths: [8, 16, 16, 16]}",
        "--data.root", str(cifar_root), "--data.subset_size", "100", "--data.batch_size", "20",
        "--trainer.max_epochs", "1", "--trainer.limit_train_batches", "2", "--trainer.limit_val_batches", "0",
        "--trainer.logger", "lightning.pytorch.loggers.CSVLogger",
        "--trainer.logger.init_args.save_dir", str(root),
        "--trainer.default_root_dir", str(root),
        "--trainer.callbacks", "[{class_path: switch_recorder.SwitchRecorder}]",
        "--trainer.enable_progress_bar", "false", "--trainer.log_every_n_steps", "1",
        "--run.experiment", "switches", "--run.version", "run",
        "--run.precision", "null",  # each case sets its own numerics (the quickstart's is auto)
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
    SwitchRecorder.records, SwitchRecorder.run = [], {}


BF16 = ["--trainer.precision", "bf16-mixed"]
CHANNELS_LAST = ["--model.init_args.channels_last", "true"]


@pytest.mark.parametrize(
    "switches",
    [
        BF16,
        CHANNELS_LAST,
        BF16 + CHANNELS_LAST,
        ["--data.num_workers", "2", "--data.persistent_workers", "true", "--data.pin_memory", "true"],
        ["--data.augment_on", "workers", "--data.num_workers", "2"],
    ],
    ids=["bf16", "channels_last", "bf16_channels_last", "persistent_pinned_workers", "augment_in_workers"],
)
def test_switch_fits(tmp_path, cifar_root, switches):
    extra = switches if "--data.num_workers" in switches else [*switches, "--data.num_workers", "0"]
    assert_trained(fit(tmp_path, cifar_root, *extra))
    records = SwitchRecorder.records
    assert len(records) == 4, records  # 2 steps x 2 views through the backbone
    bf16, channels_last = "bf16-mixed" in switches, "--model.init_args.channels_last" in switches
    for record in records:
        assert record["input_dtype"] == torch.float32
        assert record["autocast"] is bf16
        if bf16:
            assert record["autocast_dtype"] == torch.bfloat16
        assert record["output_dtype"] == (torch.bfloat16 if bf16 else torch.float32)
        assert record["input_channels_last"] is channels_last
        assert record["weight_channels_last"] is channels_last
    workers = int(extra[extra.index("--data.num_workers") + 1])
    assert SwitchRecorder.run["num_workers"] == workers
    assert SwitchRecorder.run["persistent_workers"] is ("--data.persistent_workers" in switches)
    assert SwitchRecorder.run["pin_memory"] is ("--data.pin_memory" in switches)
    assert SwitchRecorder.run["augments_on_device"] is ("workers" not in switches)


@pytest.mark.slow
def test_compile_fits_and_saves_plain_weights(tmp_path, cifar_root):
    checkpoint = assert_trained(fit(
        tmp_path, cifar_root, "--model.init_args.compile", "true", "--model.init_args.channels_last", "true",
        "--data.num_workers", "0",
    ))
    # the compiled wrapper must not add a second copy of the backbone to the checkpoint
    assert not any("_orig_mod" in key or "_compiled" in key for key in checkpoint["state_dict"])
    # the compiled module wraps this backbone and is the one every training forward calls
    assert SwitchRecorder.run["compiled_wraps_backbone"] is True
    assert SwitchRecorder.run["compiled_calls"].calls == 4  # 2 steps x 2 views


def test_auto_precision_trains_with_what_it_records(tmp_path, cifar_root):
    """``--run.precision auto``: the steps run with the numerics written to the run's config.yaml."""
    run_dir = fit(tmp_path, cifar_root, "--run.precision", "auto", "--data.num_workers", "0")
    saved = yaml.safe_load((run_dir / "config.yaml").read_text())
    bf16 = saved["trainer"]["precision"] == "bf16-mixed"
    channels_last = saved["model"]["init_args"]["channels_last"]
    assert saved["trainer"]["precision"] in ("bf16-mixed", "32-true") and channels_last is bf16
    assert len(SwitchRecorder.records) == 4
    for record in SwitchRecorder.records:
        assert record["autocast"] is bf16 and record["output_dtype"] == (torch.bfloat16 if bf16 else torch.float32)
        assert record["input_channels_last"] is channels_last and record["weight_channels_last"] is channels_last
