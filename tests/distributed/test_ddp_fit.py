"""`fit` with 2 DDP processes equals `fit` with 1 process on the same global batches, probes included.

With BatchNorm (the shipped configs) on CPU, each process normalises by its own half of the global
batch: the 2-process run equals a 1-process run whose BatchNorm sees the two halves separately.
"""

from __future__ import annotations

import csv
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from helpers import tiny_fit_args  # tests/helpers.py

pytestmark = [pytest.mark.distributed, pytest.mark.slow, pytest.mark.timeout(600)]

REPO = Path(__file__).resolve().parents[2]
METHODS = {
    "simclr": "sslprobe.methods.SimCLR",
    "barlow_twins": "sslprobe.methods.BarlowTwins",
}


def run_fit(root: Path, cifar_root: Path, method: str, devices: int) -> Path:
    """Train a BatchNorm-free tiny model for 3 steps; returns the run directory."""
    model = ("--model.class_path", METHODS[method], "--model.init_args.backbone", "resnet12",
             "--model.init_args.projector_batch_norm", "false")
    args = [
        sys.executable, "-m", "sslprobe",
        *tiny_fit_args(root, cifar_root, method, f"devices_{devices}", subset_size=100, batch_size=16, max_epochs=1,
                       configs=("callbacks/probes.yaml", "callbacks/knn_monitor.yaml"), model=model,
                       backbone_kwargs="{widths: [4, 8, 8, 8], norm: group}"),
        "--probes.spectrum.num_images", "128",
        "--probes.landscape.num_images", "64",
        "--probes.landscape.grid_points", "3",
        "--probes.linear_eval.epochs", "3",
        "--probes.linear_eval.train_size", "500",
        "--probes.linear_eval.test_size", "200",
        "--probes.linear_eval.knn_k", "10",
        "--probes.theory.num_images", "64",
        "--probes.knn_monitor.train_size", "500",
        "--probes.knn_monitor.test_size", "200",
        "--probes.knn_monitor.k", "10",
        "--trainer.limit_train_batches", "3",
        "--trainer.limit_val_batches", "0",
        "--trainer.log_every_n_steps", "1",
        "--trainer.precision", "64-true",  # float64: summation order across processes cannot hide a real difference
        "--trainer.accelerator", "cpu",
        "--trainer.devices", str(devices),
        "--trainer.strategy", "ddp" if devices > 1 else "auto",
    ]
    env = {**os.environ, "WANDB_MODE": "offline", "MASTER_ADDR": "127.0.0.1", "OMP_NUM_THREADS": "1"}
    done = subprocess.run(args, cwd=REPO, env=env, capture_output=True, text=True, timeout=540)
    assert done.returncode == 0, done.stderr[-3000:]
    return root / method / f"devices_{devices}"


def loss_curve(run_dir: Path, key: str = "train/loss") -> list[float]:
    with open(run_dir / "metrics.csv") as handle:
        return [float(row[key]) for row in csv.DictReader(handle) if row.get(key)]


@pytest.mark.parametrize("method", sorted(METHODS))
def test_two_processes_equal_one(tmp_path, cifar_root, method):
    single = run_fit(tmp_path, cifar_root, method, devices=1)
    double = run_fit(tmp_path, cifar_root, method, devices=2)
    curve_1, curve_2 = loss_curve(single), loss_curve(double)
    assert len(curve_1) == len(curve_2) == 3
    assert curve_1[0] != curve_1[-1], "the runs did not train"
    torch.testing.assert_close(torch.tensor(curve_2), torch.tensor(curve_1), rtol=1e-6, atol=1e-9)
    weights_1 = torch.load(single / "checkpoints" / "last.ckpt", map_location="cpu", weights_only=False)["state_dict"]
    weights_2 = torch.load(double / "checkpoints" / "last.ckpt", map_location="cpu", weights_only=False)["state_dict"]
    assert weights_1.keys() == weights_2.keys()
    for name in weights_1:
        torch.testing.assert_close(
            weights_2[name], weights_1[name], rtol=1e-6, atol=1e-9, msg=lambda m, name=name: f"{name}: {m}"
        )
    # The probes run on rank 0 from the same weights: the same numbers, and no hang. The landscape is
    # evaluated in float32, so weights equal to 1e-6 give losses equal to float32 rounding; the theory
    # probe's eigen-decompositions of nearly degenerate d x d estimates amplify that rounding.
    for name, rtol, atol in (("spectrum.npz", 1e-5, 1e-9), ("landscape_epoch1.npz", 1e-5, 1e-6),
                             ("theory_epoch1.npz", 1e-3, 1e-6)):
        with np.load(single / "probes" / name) as one, np.load(double / "probes" / name) as two:
            assert one.files == two.files
            for key in one.files:
                np.testing.assert_allclose(two[key], one[key], rtol=rtol, atol=atol, err_msg=f"{name}:{key}")
    theory_1 = json.loads((single / "probes" / "theory_epoch1.json").read_text())
    theory_2 = json.loads((double / "probes" / "theory_epoch1.json").read_text())
    assert theory_1["batch"] == theory_2["batch"] == 16  # the global batch, whatever the process count
    for key in ("nonpositive_directions", "predicted_rank", "measured_rank", "sigma_null_directions"):
        assert theory_1[key] == theory_2[key], key
    # The kNN monitor: the initial network and the end of the epoch, the same on 1 and 2 processes.
    knn_1, knn_2 = loss_curve(single, "knn/top1"), loss_curve(double, "knn/top1")
    assert len(knn_1) == len(knn_2) == 2
    np.testing.assert_allclose(knn_2, knn_1, atol=1 / 200)  # at most 1 of the 200 test images differs
    linear_1 = json.loads((single / "probes" / "linear_eval.json").read_text())
    linear_2 = json.loads((double / "probes" / "linear_eval.json").read_text())
    for key in ("top1", "knn_top1", "balanced"):
        assert abs(linear_1[key] - linear_2[key]) <= 2 / linear_1["num_test"], key  # at most 2 test images differ


BATCHNORM_LINE = "sslprobe: BatchNorm stays per-process on CPU (SyncBatchNorm needs GPUs)"


def run_batchnorm_fit(root: Path, cifar_root: Path, version: str, model: tuple[str, ...], devices: int):
    """3 steps of the default (BatchNorm) tiny SimCLR model; returns the run directory and the output."""
    args = [
        sys.executable, "-m", "sslprobe",
        *tiny_fit_args(root, cifar_root, "batchnorm", version, subset_size=64, batch_size=16, max_epochs=1,
                       model=model),
        "--trainer.limit_train_batches", "3",
        "--trainer.limit_val_batches", "0",
        "--trainer.log_every_n_steps", "1",
        "--trainer.precision", "64-true",
        "--trainer.accelerator", "cpu",
        "--trainer.devices", str(devices),
        "--trainer.strategy", "ddp" if devices > 1 else "auto",
    ]
    env = {**os.environ, "WANDB_MODE": "offline", "MASTER_ADDR": "127.0.0.1", "OMP_NUM_THREADS": "1",
           "PYTHONPATH": os.pathsep.join([str(Path(__file__).parent), os.environ.get("PYTHONPATH", "")])}
    done = subprocess.run(args, cwd=REPO, env=env, capture_output=True, text=True, timeout=400)
    assert done.returncode == 0, done.stderr[-3000:]
    return root / "batchnorm" / version, done.stdout + done.stderr


def test_two_processes_with_batchnorm_equal_one_with_batchnorm_per_half_batch(tmp_path, cifar_root):
    """The shipped BatchNorm model trains on 2 CPU processes; BatchNorm statistics are per process."""
    double, output_2 = run_batchnorm_fit(tmp_path, cifar_root, "devices_2", (), devices=2)
    sliced, output_1 = run_batchnorm_fit(
        tmp_path, cifar_root, "per_slice",
        ("--model.class_path", "batchnorm_per_slice.SimCLRBatchNormPerSlice", "--model.init_args.slices", "2"),
        devices=1,
    )
    assert output_2.count(BATCHNORM_LINE) == 1, output_2[-3000:]  # said once, by rank 0
    assert BATCHNORM_LINE not in output_1
    curve_2, curve_1 = loss_curve(double), loss_curve(sliced)
    assert len(curve_1) == len(curve_2) == 3 and curve_1[0] != curve_1[-1]
    torch.testing.assert_close(torch.tensor(curve_2), torch.tensor(curve_1), rtol=1e-6, atol=1e-9)
    weights_2 = torch.load(double / "checkpoints" / "last.ckpt", map_location="cpu", weights_only=False)["state_dict"]
    weights_1 = torch.load(sliced / "checkpoints" / "last.ckpt", map_location="cpu", weights_only=False)["state_dict"]
    assert weights_1.keys() == weights_2.keys()
    batchnorm_weights = [name for name in weights_1 if name.endswith("running_var")]
    assert len(batchnorm_weights) >= 5, batchnorm_weights  # backbone and projector BatchNorm layers
    # Trained parameters match; running statistics are rank 0's, updated from its half only.
    statistics = ("running_mean", "running_var", "num_batches_tracked")
    for name in (name for name in weights_1 if not name.endswith(statistics)):
        torch.testing.assert_close(
            weights_2[name], weights_1[name], rtol=1e-6, atol=1e-9, msg=lambda m, name=name: f"{name}: {m}"
        )
