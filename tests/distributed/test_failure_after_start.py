"""A failure after the processes of a 2-process run have started: one line, printed by rank 0, exit 1,
and nothing of the new run left (run directory, subset.json, the offline W&B run), as for a failure
before the start. Real gloo runs on CPU, launched as a user launches them."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = [pytest.mark.distributed, pytest.mark.slow, pytest.mark.timeout(600)]

REPO = Path(__file__).resolve().parents[2]


def run_two_processes(root: Path, cifar_root: Path, *extra: str) -> subprocess.CompletedProcess:
    """``fit`` of the quickstart (its W&B and CSV loggers) on a tiny model with 2 CPU processes."""
    args = [
        sys.executable, "-m", "sslprobe", "fit", "--config", str(REPO / "configs" / "quickstart.yaml"),
        "--probes.spectrum", "null", "--probes.landscape", "null", "--probes.linear_eval", "null",
        "--model.init_args.backbone_kwargs", "{widths: [4, 8, 8, 8]}",
        "--model.init_args.hidden_dim", "16", "--model.init_args.output_dim", "8",
        "--data.root", str(cifar_root), "--data.subset_size", "100", "--data.batch_size", "16",
        "--data.num_workers", "0", "--run.precision", "null",
        "--trainer.max_epochs", "1", "--trainer.limit_train_batches", "3", "--trainer.limit_val_batches", "0",
        "--trainer.enable_progress_bar", "false", "--trainer.enable_model_summary", "false",
        "--trainer.accelerator", "cpu", "--trainer.devices", "2", "--trainer.strategy", "ddp",
        "--trainer.default_root_dir", str(root), "--run.experiment", "failing",
        *extra,
    ]
    env = {**{k: v for k, v in os.environ.items() if k != "SSLPROBE_DEBUG"}, "WANDB_MODE": "offline",
           "MASTER_ADDR": "127.0.0.1", "OMP_NUM_THREADS": "1",
           "PYTHONPATH": os.pathsep.join([str(REPO), str(Path(__file__).parent)])}
    return subprocess.run(args, cwd=REPO, env=env, capture_output=True, text=True, timeout=540)


def check_clean_failure(done: subprocess.CompletedProcess, root: Path, words: list[str]) -> None:
    assert done.returncode == 1, done.stderr[-3000:]
    assert "Traceback" not in done.stderr, done.stderr[-3000:]
    lines = [line for line in done.stderr.splitlines() if "error:" in line]
    assert len(lines) == 1, done.stderr[-3000:]
    assert lines[0].startswith("sslprobe: error: "), lines
    for word in words:
        assert word in lines[0], (word, lines[0])
    # Nothing of the run: the run root did not exist before, so not even it is left.
    assert not root.exists(), sorted(str(p) for p in root.rglob("*"))


def test_failure_in_process_1_is_printed_once_and_leaves_nothing(tmp_path, cifar_root):
    root = tmp_path / "runs"
    done = run_two_processes(root, cifar_root, "--trainer.callbacks", "failing_callback.FailInProcess",
                             "--trainer.callbacks.init_args.rank", "1", "--trainer.callbacks.init_args.step", "1")
    check_clean_failure(done, root, ["injected failure at step 1 (process 1 of 2)"])
    assert "Connection closed" not in done.stderr  # rank 0's broken collective is not what is reported


def test_probe_failure_in_process_0_is_printed_once_and_leaves_nothing(tmp_path, cifar_root):
    """A real setting that fails only once training runs: a landscape probe aimed at the projector's
    BatchNorm (not an nn.Linear), measured at the end of the first epoch, before any checkpoint."""
    root = tmp_path / "runs"
    done = run_two_processes(root, cifar_root, "--trainer.callbacks", "null",
                             "--config", str(REPO / "callbacks" / "landscape.yaml"),
                             "--probes.landscape.target", "projector.1", "--probes.landscape.every_n_epochs", "1",
                             "--probes.landscape.num_images", "32", "--probes.landscape.grid_points", "3")
    check_clean_failure(done, root, ["BatchNorm1d, not an nn.Linear", "(process 0 of 2)"])
