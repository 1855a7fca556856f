"""The theory probe along one run: does the trained last layer approach Thm. 1's prediction?

A run with ``probes.theory.every_n_epochs`` (and ``at_start``: epoch 0, the untrained network)
leaves ``probes/theory_epoch<E>.json`` and ``.npz`` per measurement. `load_trajectory` reads them
into one `TrajectoryPoint` per epoch with what a trajectory needs beside the probe's own report:

- the share of the trained ``WᵀW``'s trace inside the predicted surviving subspace (the span of
  the predicted ``WᵀW``'s top ``predicted_rank`` eigenvectors), against ``predicted_rank / d``, the
  share an isotropic random layer puts there;
- the principal angles between the trained layer's top ``predicted_rank`` directions and that
  subspace (the probe's own angles use the trained layer's whole numerical rank, which stays full
  when the theory predicts collapse, so they say little about alignment);
- the same angles between random subspaces of the same dimensions (the baseline of those angles);
- the drift of the prediction: principal angles between the predicted subspace at this epoch and
  at the last one (does the prediction move with the features?);
- the sampling error: the predicted rank and eigenvalues of the two halves of the probe's images.

``scripts/theory_trajectory.py`` draws the figure (`trajectory_figure`) and writes the table
(`trajectory_markdown`) and the points as JSON.
"""

from __future__ import annotations

import functools
import json
import re
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch

from sslprobe.probes.theory_estimates import _top_eigenvectors, principal_angles

TOP = 5  # eigenvalues kept per epoch


@dataclass(frozen=True)
class TrajectoryPoint:
    """The theory probe at one epoch (0: the untrained network)."""

    epoch: int
    feature_dim: int
    predicted_rank: int
    predicted_rank_halves: list[int]
    measured_rank: int
    predicted_top: list[float]  # largest eigenvalues of the predicted WᵀW
    predicted_top_halves: list[list[float]]  # the same from each half of the images
    measured_top: list[float]  # largest eigenvalues of the trained WᵀW
    energy_in_predicted: float  # share of Tr WᵀW in the predicted subspace
    isotropic_energy: float  # predicted_rank / feature_dim: that share for an isotropic layer
    top_angles_deg: list[float]  # trained top-r directions vs the predicted subspace (r = predicted rank)
    random_median_angle_deg: list[float]  # median angle between two random r-dim subspaces, per draw
    drift_to_last_deg: list[float]  # predicted subspace here vs at the last epoch
    predicted_mean_sq_norm: float
    measured_mean_sq_norm: float
    loss_trained: float | None
    loss_predicted: float | None
    a0_sampling_error: float
    c_sampling_error: float


def theory_epochs(probes: Path) -> list[int]:
    """The epochs with a theory measurement in ``probes`` (sorted)."""
    found = (re.fullmatch(r"theory_epoch(\d+)\.json", p.name) for p in probes.glob("theory_epoch*.json"))
    return sorted(int(m.group(1)) for m in found if m)


def random_median_angles(dim: int, rank: int, draws: int = 5, seed: int = 0) -> list[float]:
    """Median principal angle (degrees) between two random ``rank``-dimensional subspaces of R^dim, per draw."""
    return list(_random_median_angles(dim, rank, draws, seed))


@functools.cache  # the same dimensions at every epoch of a trajectory
def _random_median_angles(dim: int, rank: int, draws: int, seed: int) -> tuple[float, ...]:
    generator = torch.Generator().manual_seed(seed)
    medians = []
    for _ in range(draws):
        pair = [torch.randn(dim, rank, generator=generator, dtype=torch.float64) for _ in range(2)]
        medians.append(float(np.median(principal_angles(*pair))))
    return tuple(medians)


def load_trajectory(run_dir: str | Path) -> list[TrajectoryPoint]:
    """One `TrajectoryPoint` per theory measurement of the run, by epoch.

    Raises:
        FileNotFoundError: the run has no applicable theory measurement.
    """
    probes = Path(run_dir) / "probes"
    epochs = theory_epochs(probes)
    reports = {e: json.loads((probes / f"theory_epoch{e}.json").read_text()) for e in epochs}
    epochs = [e for e in epochs if reports[e].get("applicable") and reports[e].get("predicted_rank")]
    if not epochs:
        raise FileNotFoundError(f"{probes}: no theory measurement with a prediction (theory_epoch<E>.json)")
    bases = {}
    for e in epochs:
        with np.load(probes / f"theory_epoch{e}.npz") as arrays:
            bases[e] = (_top_eigenvectors(torch.as_tensor(arrays["predicted_gram"]), reports[e]["predicted_rank"]),
                        torch.as_tensor(arrays["measured_gram"]), arrays["predicted_eigenvalues_halves"])
    last_basis = bases[epochs[-1]][0]
    points = []
    for e in epochs:
        report, (basis, measured_gram, halves) = reports[e], bases[e]
        rank, dim = report["predicted_rank"], int(measured_gram.shape[0])
        q = torch.linalg.qr(basis)[0]
        energy = float(torch.trace(q.T @ measured_gram @ q) / torch.trace(measured_gram))
        points.append(TrajectoryPoint(
            epoch=e, feature_dim=dim, predicted_rank=rank,
            predicted_rank_halves=[int(r) for r in report["predicted_rank_halves"]],
            measured_rank=report["measured_rank"],
            predicted_top=[float(v) for v in report["predicted_eigenvalues"][:TOP]],
            predicted_top_halves=[[float(v) for v in half[:TOP]] for half in halves],
            measured_top=[float(v) for v in report["measured_eigenvalues"][:TOP]],
            energy_in_predicted=energy, isotropic_energy=rank / dim,
            top_angles_deg=principal_angles(_top_eigenvectors(measured_gram, rank), basis).tolist(),
            random_median_angle_deg=random_median_angles(dim, rank),
            drift_to_last_deg=principal_angles(basis, last_basis).tolist(),
            predicted_mean_sq_norm=report["predicted_mean_sq_norm"],
            measured_mean_sq_norm=report["measured_mean_sq_norm"],
            loss_trained=report.get("loss_trained"), loss_predicted=report.get("loss_predicted"),
            a0_sampling_error=report["a0_sampling_error"], c_sampling_error=report["c_sampling_error"],
        ))
    return points


def trajectory_figure(points: list[TrajectoryPoint], path: Path, title: str = "") -> Path:
    """Four panels over epochs: ranks, largest eigenvalues, energy in the predicted subspace, angles."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    epochs = [p.epoch for p in points]
    fig, axes = plt.subplots(1, 4, figsize=(17, 3.8))
    ax = axes[0]
    ax.plot(epochs, [p.predicted_rank for p in points], "o-", label="predicted rank")
    low = [min(p.predicted_rank_halves) for p in points]
    high = [max(p.predicted_rank_halves) for p in points]
    ax.fill_between(epochs, low, high, alpha=0.3, label="halves of the images")
    ax.plot(epochs, [p.measured_rank for p in points], "s--", label="trained rank (numerical)")
    ax.set(xlabel="epoch", ylabel="rank of WᵀW", yscale="log", title="rank")
    ax.legend(fontsize=7)

    ax = axes[1]
    for k in range(min(3, TOP)):
        line, = ax.plot(epochs, [p.predicted_top[k] for p in points], "o-", label=f"predicted λ{k + 1}")
        low = [min(h[k] for h in p.predicted_top_halves) for p in points]
        high = [max(h[k] for h in p.predicted_top_halves) for p in points]
        ax.fill_between(epochs, low, high, color=line.get_color(), alpha=0.2)
        ax.plot(epochs, [p.measured_top[k] for p in points], "s--", color=line.get_color(), label=f"trained λ{k + 1}")
    ax.set(xlabel="epoch", ylabel="eigenvalue of WᵀW", yscale="log", title="largest eigenvalues")
    ax.legend(fontsize=7, ncol=2)

    ax = axes[2]
    ax.plot(epochs, [p.energy_in_predicted for p in points], "o-", label="trained WᵀW")
    ax.plot(epochs, [p.isotropic_energy for p in points], "k:", label="isotropic layer (r/d)")
    ax.set(xlabel="epoch", ylabel="share of Tr WᵀW", ylim=(0, 1), title="energy in the predicted subspace")
    ax.legend(fontsize=7)

    ax = axes[3]
    ax.plot(epochs, [float(np.median(p.top_angles_deg)) for p in points], "o-", label="trained top-r, median")
    ax.plot(epochs, [max(p.top_angles_deg) for p in points], "s--", label="trained top-r, largest")
    ax.plot(epochs, [float(np.median(p.random_median_angle_deg)) for p in points], "k:",
            label="random subspaces, median")
    ax.plot(epochs, [float(np.median(p.drift_to_last_deg)) for p in points], "^:",
            label="prediction vs last epoch's, median")
    ax.set(xlabel="epoch", ylabel="principal angle (°)", ylim=(0, 90), title="angles to the predicted subspace")
    ax.legend(fontsize=7)
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def trajectory_markdown(points: list[TrajectoryPoint]) -> str:
    """The trajectory as a table, one row per epoch."""
    lines = ["| epoch | predicted rank (halves) | trained rank | predicted λ1 (halves) | trained λ1 "
             "| energy in predicted subspace (isotropic) | top-r angles, median / max (random subspaces, median) "
             "| prediction drift to last, median "
             "| E\\|f\\|² predicted / trained | loss trained / at prediction |",
             "|---|---|---|---|---|---|---|---|---|---|"]
    for p in points:
        halves = "–".join(f"{h[0]:.3g}" for h in p.predicted_top_halves)
        losses = " / ".join("–" if v is None else f"{v:.3f}" for v in (p.loss_trained, p.loss_predicted))
        lines.append(
            f"| {p.epoch} | {p.predicted_rank} ({', '.join(map(str, p.predicted_rank_halves))}) | {p.measured_rank} "
            f"| {p.predicted_top[0]:.3g} ({halves}) | {p.measured_top[0]:.3g} "
            f"| {100 * p.energy_in_predicted:.1f} % ({100 * p.isotropic_energy:.1f} %) "
            f"| {np.median(p.top_angles_deg):.0f}° / {max(p.top_angles_deg):.0f}° "
            f"({min(p.random_median_angle_deg):.1f}–{max(p.random_median_angle_deg):.1f}°) "
            f"| {np.median(p.drift_to_last_deg):.0f}° "
            f"| {p.predicted_mean_sq_norm:.3g} / {p.measured_mean_sq_norm:.3g} | {losses} |")
    return "\n".join(lines) + "\n"


def write_trajectory(run_dir: str | Path, out: str | Path, name: str, title: str = "") -> dict[str, Path]:
    """``<name>.png``, ``<name>.md`` and ``<name>.json`` of the run's trajectory in ``out``."""
    points = load_trajectory(run_dir)
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    paths = {"figure": trajectory_figure(points, out / f"{name}.png", title),
             "table": out / f"{name}.md", "json": out / f"{name}.json"}
    paths["table"].write_text(trajectory_markdown(points))
    paths["json"].write_text(json.dumps([asdict(p) for p in points], indent=1))
    return paths
