"""The last line of a ``fit``: what the run's probes measured, read back from the run's own files.

The numbers come from the files the probe callbacks wrote under ``<run dir>/probes/`` (so the
line says exactly what the run directory holds, and is the same on every rank):

- ``linear_eval.json``: linear and kNN top-1 of the trained backbone and of a random-init
  network of the same architecture (the baseline a self-supervised method has to beat);
- ``knn_monitor.json``: the online kNN monitor's last top-1 against its value at step 0 (the
  initial network), used when linear evaluation did not measure kNN;
- ``spectrum.npz``: effective rank (RankMe) of the last measured embedding spectrum, out of the
  embedding dimension, with its value for the initial network when step 0 was measured.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np


def percent(value: float | None) -> str:
    """``0.412`` → ``"41.2 %"``; ``"n/a"`` for a missing or non-finite value."""
    if value is None or not math.isfinite(value):
        return "n/a"
    return f"{100 * value:.1f} %"


def _read_json(path: Path) -> dict | None:
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return None


def result_parts(run_dir: Path) -> list[str]:
    """One phrase per measurement the run's probes saved (empty when no probe wrote a result).

    Args:
        run_dir: the run directory (``<default_root_dir>/<experiment>/<version>``).

    Returns:
        Phrases such as ``"linear top-1 41.2 % (random init 30.1 %)"``, ``"kNN 38.0 % (random init
        29.5 %)"`` and ``"effective rank 31.4/64 (step 0: 12.0)"``, in that order.
    """
    probes = Path(run_dir) / "probes"
    parts: list[str] = []
    linear = _read_json(probes / "linear_eval.json") or {}
    if linear.get("top1") is not None:
        baseline = linear.get("random_init_top1")
        parts.append(f"linear top-1 {percent(linear['top1'])}"
                     + (f" (random init {percent(baseline)})" if baseline is not None else ""))
    monitor = _read_json(probes / "knn_monitor.json") or {}
    history = monitor.get("history") or []
    if linear.get("knn_top1") is not None:
        baseline = linear.get("random_init_knn_top1")
        parts.append(f"kNN {percent(linear['knn_top1'])}"
                     + (f" (random init {percent(baseline)})" if baseline is not None else ""))
    elif history:
        last, first = history[-1], history[0]
        initial = f" (step 0: {percent(first['top1'])})" if first["epochs_trained"] == 0 and len(history) > 1 else ""
        parts.append(f"kNN {percent(last['top1'])}{initial}")
    spectrum = probes / "spectrum.npz"
    if spectrum.is_file():
        with np.load(spectrum) as arrays:
            if "embeddings_effective_rank" in arrays and len(arrays["embeddings_effective_rank"]):
                ranks = arrays["embeddings_effective_rank"]
                dim = arrays["embedding_eigenvalues"].shape[-1]
                initial = ""
                if "epochs" in arrays and len(ranks) > 1 and arrays["epochs"][0] == 0:
                    initial = f" (step 0: {float(ranks[0]):.1f})"
                parts.append(f"effective rank {float(ranks[-1]):.1f}/{dim}{initial}")
    return parts


def result_line(run_dir: Path) -> str | None:
    """``sslprobe: result: <what the probes measured> — <run dir>/``, or None when nothing was measured."""
    parts = result_parts(run_dir)
    if not parts:
        return None
    return f"sslprobe: result: {', '.join(parts)} — {run_dir}/"
