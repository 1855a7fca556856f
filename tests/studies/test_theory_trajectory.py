"""The theory probe along a run: epoch 0 is the untrained network; the trajectory's numbers by hand."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from helpers import REPO, tiny_fit_args  # tests/helpers.py

from sslprobe.cli import main
from sslprobe.methods import SpectralContrastive
from sslprobe.studies.theory_trajectory import load_trajectory, random_median_angles, trajectory_markdown

pytestmark = pytest.mark.slow
SCRIPT = REPO / "scripts" / "theory_trajectory.py"


@pytest.fixture(scope="module")
def run(tmp_path_factory, cifar_root) -> Path:
    root = tmp_path_factory.mktemp("runs")
    main([
        *tiny_fit_args(root, cifar_root, "trajectory", "scl", subset_size=100, batch_size=25, max_epochs=2,
                       configs=("callbacks/theory.yaml",),
                       model=("--model.class_path", "sslprobe.methods.SpectralContrastive"),
                       backbone_kwargs="{widths: [4, 8, 8, 16]}"),
        "--trainer.limit_train_batches", "2", "--trainer.limit_val_batches", "0",
        "--probes.theory.num_images", "100", "--probes.theory.every_n_epochs", "1",
        "--probes.theory.at_start", "true",
    ])
    return root / "trajectory" / "scl"


def subspace_angles(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Principal angles (radians) between column spaces, by numpy: arccos of the singular values of Q1ᵀQ2."""
    cosines = np.linalg.svd(np.linalg.qr(a)[0].T @ np.linalg.qr(b)[0], compute_uv=False)
    return np.arccos(np.clip(cosines, -1.0, 1.0))


def augmented_gram(weight: torch.Tensor, bias: torch.Tensor) -> np.ndarray:
    """[W b]ᵀ[W b]: the probe treats the bias as the weight of a constant input."""
    full = torch.cat([weight, bias[:, None]], dim=1).detach().double()
    return (full.T @ full).numpy()


def test_epoch_zero_measures_the_untrained_layer_and_the_last_the_checkpoint(run):
    probes = run / "probes"
    assert sorted(p.name for p in probes.glob("theory_epoch*.json")) == [
        "theory_epoch0.json", "theory_epoch1.json", "theory_epoch2.json"]
    hparams = torch.load(run / "checkpoints" / "last.ckpt", map_location="cpu", weights_only=False)
    torch.manual_seed(0)  # seed_everything: 0, as the run; the model is the first thing built from it
    initial = SpectralContrastive(**{k: v for k, v in hparams["hyper_parameters"].items() if not k.startswith("_")})
    layer = initial.projector[-1]
    with np.load(probes / "theory_epoch0.npz") as arrays:
        np.testing.assert_allclose(arrays["measured_gram"], augmented_gram(layer.weight, layer.bias),
                                   rtol=1e-5, atol=1e-7)
    state = hparams["state_dict"]
    last = max(k for k in state if k.startswith("projector.") and k.endswith(".weight"))
    with np.load(probes / "theory_epoch2.npz") as arrays:
        np.testing.assert_allclose(arrays["measured_gram"],
                                   augmented_gram(state[last], state[last.replace("weight", "bias")]),
                                   rtol=1e-5, atol=1e-7)
        assert not np.allclose(arrays["measured_gram"], augmented_gram(layer.weight, layer.bias))  # it trained


def test_trajectory_numbers_by_hand(run):
    points = load_trajectory(run)
    assert [p.epoch for p in points] == [0, 1, 2]
    probes = run / "probes"
    with np.load(probes / "theory_epoch2.npz") as last:
        last_gram = last["predicted_gram"]
    for point in points:
        report = json.loads((probes / f"theory_epoch{point.epoch}.json").read_text())
        r = report["predicted_rank"]
        assert point.predicted_rank == r and point.measured_rank == report["measured_rank"]
        assert point.predicted_top == report["predicted_eigenvalues"][:5]
        with np.load(probes / f"theory_epoch{point.epoch}.npz") as arrays:
            gram, predicted = arrays["measured_gram"], arrays["predicted_gram"]
            halves = arrays["predicted_eigenvalues_halves"]
        assert point.predicted_top_halves == [list(h[:5]) for h in halves]
        top = np.linalg.eigh(predicted)[1][:, ::-1][:, :r]  # the predicted subspace, by numpy
        assert point.energy_in_predicted == pytest.approx(np.trace(top.T @ gram @ top) / np.trace(gram), rel=1e-6)
        assert point.isotropic_energy == r / gram.shape[0]
        trained_top = np.linalg.eigh(gram)[1][:, ::-1][:, :r]
        np.testing.assert_allclose(sorted(point.top_angles_deg),
                                   sorted(np.degrees(subspace_angles(trained_top, top))), atol=1e-4)
        last_top = np.linalg.eigh(last_gram)[1][:, ::-1][:, : points[-1].predicted_rank]
        np.testing.assert_allclose(sorted(point.drift_to_last_deg),
                                   sorted(np.degrees(subspace_angles(top, last_top))), atol=1e-4)
        assert point.random_median_angle_deg == random_median_angles(gram.shape[0], r)
    assert max(points[-1].drift_to_last_deg) < 1e-4  # the last prediction against itself
    assert trajectory_markdown(points).count("\n") == 2 + len(points)


def test_the_script_writes_figure_table_and_json_or_says_why_not(run, tmp_path):
    done = subprocess.run([sys.executable, str(SCRIPT), str(run), "--out", str(tmp_path / "out"), "--name", "t"],
                          capture_output=True, text=True, timeout=120, cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert (tmp_path / "out" / "t.png").stat().st_size > 10_000
    assert [p["epoch"] for p in json.loads((tmp_path / "out" / "t.json").read_text())] == [0, 1, 2]
    empty = subprocess.run([sys.executable, str(SCRIPT), str(tmp_path), "--out", str(tmp_path / "none")],
                           capture_output=True, text=True, timeout=120, cwd=tmp_path)
    assert empty.returncode == 2 and len(empty.stderr.strip().splitlines()) == 1
    assert "no theory measurement" in empty.stderr and not (tmp_path / "none").exists()


def test_random_subspace_baseline():
    assert random_median_angles(12, 12, draws=3) == pytest.approx([0.0] * 3, abs=1e-5)  # the whole space twice
    # one direction in 1,000 dimensions: |cos| ~ 1/√1000, so the angle is close to 90°
    assert all(85.0 < angle < 90.0 for angle in random_median_angles(1000, 1))
    assert random_median_angles(50, 5, seed=1) == random_median_angles(50, 5, seed=1) != random_median_angles(50, 5)
