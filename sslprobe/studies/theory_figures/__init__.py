"""Reproduce the linear-model figures of Ziyin et al. (2023) with the theory's prediction overlaid.

`run_figures` writes fig1.png, fig3.png, fig5_left.png, fig5_mid.png, fig5_mid_long.png,
fig5_right.png, fig5_cifar.png, fig6.png, fig7.png and results.json (per figure: predicted and
measured critical points / ranks / exponents, their relative disagreement, whether they agree and
why not, and the simulator's convergence); ``scripts/theory_figures.py`` is its command line.
The ``quick`` settings shrink every experiment (used by the tests); they are not expected to agree
closely. fig5_cifar trains on real CIFAR-10 (``data_root``, the folder holding ``cifar-10-batches-py``).

By figure: `landscapes` (Fig. 1, Fig. 7), `phase_diagram` (Fig. 3), `noise_strength` (Fig. 5 left
and right, Fig. 6), `dataset_size` (Fig. 5 mid and its longer runs), `cifar` (Fig. 5 on CIFAR-10),
`printed_text` (the Σ⁻² slip and Section 4.3 on the sphere); `common` holds what they share.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

from sslprobe.studies.theory_figures.cifar import figure5_cifar
from sslprobe.studies.theory_figures.common import COLLAPSE_THRESHOLD
from sslprobe.studies.theory_figures.dataset_size import figure5_mid, figure5_mid_long
from sslprobe.studies.theory_figures.landscapes import figure1, figure7
from sslprobe.studies.theory_figures.noise_strength import figure5_left, figure5_right, figure6
from sslprobe.studies.theory_figures.phase_diagram import figure3
from sslprobe.studies.theory_figures.printed_text import imbalance_on_the_sphere, printed_slips

# Sizes of every experiment: ``quick`` for the tests (a few minutes of CPU), ``full`` for the committed
# docs/figures/theory/results.json.
SETTINGS = {
    "quick": dict(
        steps=500, lr=3e-3, grid=15, landscape_samples=4, fig3_sigmas=5, fig3_thetas=5, fig3_n=32,
        left_dim=6, left_n=24, left_sigmas=5, mid_dim=6, mid_ns=[4, 8, 16, 32, 64], right_n=32,
        right_sigmas=8, norm_dim=6, norm_n=24, norm_sigmas=5, mlp_n=32, mlp_steps=300, fig1_n=32,
        check_samples=40, cifar_study="quick",
        mid_long_ns=[8, 32], mid_long_seeds=3, mid_long_steps=[150, 450],
    ),
    "full": dict(
        steps=2000, lr=3e-3, grid=25, landscape_samples=12, fig3_sigmas=10, fig3_thetas=9, fig3_n=48,
        left_dim=16, left_n=64, left_sigmas=10, mid_dim=16, mid_ns=[8, 12, 16, 24, 32, 48, 64, 96, 128],
        right_n=64, right_sigmas=16, norm_dim=16, norm_n=64, norm_sigmas=10, mlp_n=48, mlp_steps=1200,
        fig1_n=64, check_samples=600, cifar_study="full",
        mid_long_ns=[24, 48, 96], mid_long_seeds=6, mid_long_steps=[2000, 8000],
    ),
}

FIGURES = {  # name: function(cfg, out) -> the figure's record in results.json
    "fig1": figure1,
    "fig3": figure3,
    "fig5_left": figure5_left,
    "fig5_mid": figure5_mid,
    "fig5_mid_long": figure5_mid_long,
    "fig5_right": figure5_right,
    "fig5_cifar": figure5_cifar,
    "fig6": figure6,
    "fig7": figure7,
}


def run_figures(out: Path, names: list[str] | None = None, quick: bool = False, data_root: Path = Path("data")) -> dict:
    """Run the figures ``names`` (default: all of `FIGURES`), write their PNGs and ``results.json`` to ``out``.

    Prints one line per figure (its seconds and whether it agrees with the theory).

    Args:
        out: an existing, writable folder.
        names: keys of `FIGURES`, run in this order.
        quick: the ``quick`` settings of `SETTINGS` (small and fast) instead of ``full``.
        data_root: the folder holding ``cifar-10-batches-py`` (``fig5_cifar`` only).

    Returns:
        What ``results.json`` holds: the mode, the collapse threshold, one record per figure, the
        printed-text checks (`printed_slips`, `imbalance_on_the_sphere`) and the total seconds.
    """
    names = list(names or FIGURES)
    cfg = {**SETTINGS["quick" if quick else "full"], "data_root": data_root}
    results: dict = {"mode": "quick" if quick else "full", "collapse_threshold": COLLAPSE_THRESHOLD}
    start = time.perf_counter()
    for name in names:
        began = time.perf_counter()
        results[name] = FIGURES[name](cfg, out)
        results[name]["seconds"] = round(time.perf_counter() - began, 1)
        print(f"{name}: {results[name]['seconds']} s, agrees={results[name]['agrees']}", flush=True)
    results["printed_slips"] = printed_slips()
    results["imbalance_on_the_sphere"] = imbalance_on_the_sphere()
    results["seconds"] = round(time.perf_counter() - start, 1)
    (out / "results.json").write_text(json.dumps(results, indent=1, default=float, allow_nan=True))
    return results


__all__ = ["COLLAPSE_THRESHOLD", "FIGURES", "SETTINGS", "imbalance_on_the_sphere", "printed_slips", "run_figures"]
