"""`validate` and `test` evaluate a checkpoint's SSL loss on test images; one launch shares one `job_<id>` run."""

from __future__ import annotations

import csv
import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest
import torch
import yaml
from conftest import REPO, tiny_args  # tests/cli/conftest.py

from sslprobe.data.datamodule import CIFAR10DataModule
from sslprobe.methods import SimCLR

CONFIG = "simclr"


def csv_logger(root: Path) -> list[str]:
    """The CSV logger only (no W&B): metrics.csv in the run directory."""
    return ["--trainer.logger", "lightning.pytorch.loggers.CSVLogger", "--trainer.logger.init_args.save_dir", str(root)]


def logged(run_dir: Path, key: str) -> list[float]:
    with open(run_dir / "metrics.csv", newline="") as handle:
        return [float(row[key]) for row in csv.DictReader(handle) if row.get(key)]


def direct_loss(checkpoint: Path, run_dir: Path) -> float:
    """The SSL loss of the first test batch (eval mode), computed here from the checkpoint."""
    method = SimCLR.load_from_checkpoint(checkpoint, map_location="cpu").eval()
    data = yaml.safe_load((run_dir / "config.yaml").read_text())["data"]
    datamodule = CIFAR10DataModule(**data)
    datamodule.setup_for_run(run_dir)
    view1, view2, _ = datamodule.on_after_batch_transfer(next(iter(datamodule.val_dataloader())), 0)
    with torch.no_grad():
        return float(method.loss_fn(method(view1), method(view2)))


@pytest.mark.parametrize("subcommand", ["validate", "test"])
def test_validate_and_test_evaluate_the_checkpoint_on_test_images(cifar_root, tmp_path, run_cli, subcommand):
    fit = tiny_args(CONFIG, cifar_root, tmp_path, "--run.experiment", "eval", "--run.version", "fit",
                    *csv_logger(tmp_path))
    code, _, err = run_cli(fit)
    assert code == 0, err
    checkpoint = tmp_path / "eval" / "fit" / "checkpoints" / "last.ckpt"
    fitted = checkpoint.read_bytes()
    args = [subcommand, *tiny_args(CONFIG, cifar_root, tmp_path, "--run.experiment", "eval",
                                   "--run.version", subcommand, "--ckpt_path", str(checkpoint),
                                   *csv_logger(tmp_path),
                                   "--trainer.limit_test_batches", "1")[1:]]
    code, out, err = run_cli(args)
    assert code == 0, err
    run_dir = tmp_path / "eval" / subcommand
    key = "val/loss" if subcommand == "validate" else "test/loss"
    losses = logged(run_dir, key)
    assert len(losses) == 1, losses
    assert losses[0] == pytest.approx(direct_loss(checkpoint, run_dir), rel=1e-5)
    assert key in out  # the results table
    assert checkpoint.read_bytes() == fitted  # evaluation leaves the checkpoint alone
    assert not (run_dir / "checkpoints").exists() or not any((run_dir / "checkpoints").iterdir())


def test_slurm_job_id_names_the_run(cifar_root, tmp_path, run_cli, monkeypatch):
    monkeypatch.setenv("SLURM_JOB_ID", "4242")
    monkeypatch.delenv("SSLPROBE_RUN_VERSION", raising=False)
    code, _, err = run_cli(tiny_args(CONFIG, cifar_root, tmp_path, "--run.experiment", "slurm"))
    assert code == 0, err
    assert [p.name for p in (tmp_path / "slurm").iterdir()] == ["job_4242"]
    assert (tmp_path / "slurm" / "job_4242" / "checkpoints" / "last.ckpt").is_file()


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.mark.slow
@pytest.mark.distributed
@pytest.mark.timeout(400)
def test_processes_of_one_torchrun_launch_share_the_job_directory(cifar_root, tmp_path):
    """Two processes started by torchrun (each runs the whole CLI) write one run directory, job_<rdzv id>."""
    env = {key: value for key, value in os.environ.items() if key != "SSLPROBE_RUN_VERSION"}
    env.update(WANDB_MODE="offline", OMP_NUM_THREADS="1")
    command = [
        sys.executable, "-m", "torch.distributed.run", "--nnodes", "1", "--nproc-per-node", "2",
        "--rdzv-backend", "c10d", "--rdzv-endpoint", f"127.0.0.1:{free_port()}", "--rdzv-id", "777",
        "-m", "sslprobe",
        *tiny_args(CONFIG, cifar_root, tmp_path, "--run.experiment", "launch", "--trainer.devices", "2",
                   "--trainer.strategy", "ddp", *csv_logger(tmp_path),
                   "--data.batch_size", "16"),
    ]
    done = subprocess.run(command, cwd=REPO, env=env, capture_output=True, text=True, timeout=360)
    assert done.returncode == 0, done.stderr[-3000:]
    assert [p.name for p in (tmp_path / "launch").iterdir()] == ["job_777"]
    run_dir = tmp_path / "launch" / "job_777"
    assert torch.load(run_dir / "checkpoints" / "last.ckpt", weights_only=False)["global_step"] == 2
    assert len(logged(run_dir, "train/loss")) == 2
