"""Class-imbalanced training subsets: the paper's presets, Dirichlet draws and long-tail profiles.

A subset is computed once from (kind, size, concentration or ratio, seed), saved to
``subset.json`` in the run directory, and reused on resume and on every rank. Every kind but
the paper's ``medium`` and ``high`` presets (CIFAR-10's ten classes) works for any number of
classes C: the class count and n_max, the largest per-class count, come from the training labels.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Literal

import numpy as np
import torch

from sslprobe.options import AtLeastOneFloat

Imbalance = Literal["none", "medium", "high", "dirichlet", "full", "long_tail", "step"]
IMBALANCE_CHOICES: tuple[str, ...] = ("none", "medium", "high", "dirichlet", "full", "long_tail", "step")
RATIO_KINDS: tuple[str, ...] = ("long_tail", "step")  # the profiles set by ``data.imbalance_ratio``
ImbalanceRatio = AtLeastOneFloat  # n_max / n_min: a float >= 1
DEFAULT_IMBALANCE_RATIO = 100.0  # CIFAR-10-LT / CIFAR-100-LT, the standard benchmark

# Per-class counts of the 20,000-image subsets of the paper's Appendix C (Fig. 4).
PRESET_COUNTS: dict[str, tuple[int, ...]] = {
    "none": (2000,) * 10,
    "medium": (4268, 4296, 1741, 420, 945, 161, 4633, 1015, 131, 2386),
    "high": (4890, 87, 5000, 0, 74, 0, 0, 212, 4788, 4947),
}
DEFAULT_DIRICHLET_SIZE = 20_000


def largest_remainder(weights: np.ndarray, total: int) -> np.ndarray:
    """Integers proportional to ``weights`` that sum exactly to ``total`` (Hamilton's method)."""
    weights = np.asarray(weights, dtype=np.float64)
    exact = weights / weights.sum() * total
    counts = np.floor(exact).astype(np.int64)
    remainder = total - counts.sum()
    order = np.argsort(-(exact - counts), kind="stable")
    counts[order[:remainder]] += 1
    return counts


def fill_capped(weights: np.ndarray, total: int, available: np.ndarray) -> np.ndarray:
    """Split ``total`` proportionally to ``weights`` with class c capped at ``available[c]``.

    The excess of a capped class is redistributed over the others in proportion to their
    weights, until everything fits.
    """
    available = np.asarray(available, dtype=np.int64)
    weights = np.asarray(weights, dtype=np.float64)
    if total > available.sum():
        raise ValueError(f"cannot draw {total} images: the classes hold only {int(available.sum())}")
    # A class whose weight underflowed to 0 (tiny concentrations) still takes overflow, last.
    weights = np.maximum(weights, 1e-12 * weights.max())
    counts = np.zeros_like(available)
    open_classes = weights > 0
    while True:
        remaining = total - counts[~open_classes].sum()
        share = largest_remainder(np.where(open_classes, weights, 0.0), remaining)
        over = open_classes & (share > available)
        if not over.any():
            counts[open_classes] = share[open_classes]
            return counts
        counts[over] = available[over]
        open_classes &= ~over


def dirichlet_class_counts(
    subset_size: int, concentration: float, seed: int, available: np.ndarray
) -> np.ndarray:
    """Per-class counts of a Dirichlet(concentration · 1) draw of ``subset_size`` images.

    Class proportions p ~ Dir(concentration, ..., concentration) from ``seed``; counts follow
    p (largest remainder), each capped at what the class holds, excess redistributed.

    Raises:
        ValueError: concentration <= 0, or a size the data cannot fill.
    """
    if not concentration > 0:
        raise ValueError(f"data.concentration must be > 0, got {concentration}")
    available = np.asarray(available, dtype=np.int64)
    if subset_size > available.sum():
        raise ValueError(f"data.subset_size={subset_size} is larger than the {available.sum()} images available")
    proportions = np.random.default_rng(seed).dirichlet(np.full(len(available), float(concentration)))
    return fill_capped(proportions, subset_size, available)


def long_tail_class_counts(available: np.ndarray, ratio: float) -> np.ndarray:
    """The exponential long-tail profile: ``n_c = ⌊n_max · ρ^(−c/(C−1))⌋`` for c = 0 … C−1.

    n_max is the largest count in ``available`` (C classes); class 0 keeps n_max images, class
    C−1 keeps ⌊n_max / ρ⌋ (Cao et al. 2019, CIFAR-10-LT and CIFAR-100-LT).

    Raises:
        ValueError: ratio < 1, or fewer than two classes.
    """
    available = np.asarray(available, dtype=np.int64)
    _check_profile(available, ratio)
    n_max, last = int(available.max()), len(available) - 1
    return np.array([math.floor(n_max * ratio ** (-c / last)) for c in range(len(available))], dtype=np.int64)


def step_class_counts(available: np.ndarray, ratio: float) -> np.ndarray:
    """The step profile: the first ⌊C/2⌋ classes keep n_max images, the others ⌊n_max / ρ⌋."""
    available = np.asarray(available, dtype=np.int64)
    _check_profile(available, ratio)
    n_max, head = int(available.max()), len(available) // 2
    return np.array([n_max] * head + [math.floor(n_max / ratio)] * (len(available) - head), dtype=np.int64)


def _check_profile(available: np.ndarray, ratio: float) -> None:
    if not ratio >= 1:
        raise ValueError(f"data.imbalance_ratio must be >= 1, got {ratio}")
    if len(available) < 2:
        raise ValueError(f"a long-tail or step profile needs at least 2 classes, the data set has {len(available)}")


def balanced_class_counts(num_classes: int, subset_size: int) -> np.ndarray:
    """``subset_size`` images split as equally as possible over ``num_classes`` classes."""
    return largest_remainder(np.ones(num_classes), subset_size)


def preset_class_counts(name: str, num_classes: int, subset_size: int | None = None) -> np.ndarray:
    """The paper's per-class counts for ``name``, rescaled to ``subset_size`` if given.

    ``none`` on a data set of other than ten classes is its generalisation: 20,000 images (or
    ``subset_size``) split equally over the classes.
    """
    if name == "none" and num_classes != len(PRESET_COUNTS[name]):
        return balanced_class_counts(num_classes, subset_size or DEFAULT_DIRICHLET_SIZE)
    counts = np.asarray(PRESET_COUNTS[name], dtype=np.int64)
    if len(counts) != num_classes:
        raise ValueError(
            f"imbalance preset {name!r} has {len(counts)} classes but the data set has {num_classes}"
        )
    if subset_size is None or subset_size == counts.sum():
        return counts
    return largest_remainder(counts, subset_size)


def class_counts(
    labels: torch.Tensor,
    imbalance: str,
    subset_size: int | None = None,
    concentration: float = 1.0,
    seed: int = 0,
    ratio: float = DEFAULT_IMBALANCE_RATIO,
) -> np.ndarray:
    """Requested per-class counts for a subset of the training set with ``labels`` (N,).

    ``long_tail`` and ``step`` follow `long_tail_class_counts` and `step_class_counts` with
    ``ratio``, rescaled to ``subset_size`` if given (keeping their proportions, as the presets).
    """
    if imbalance not in IMBALANCE_CHOICES:
        raise ValueError(f"unknown data.imbalance {imbalance!r}; valid: {', '.join(IMBALANCE_CHOICES)}")
    available = np.bincount(labels.numpy(), minlength=int(labels.max()) + 1)
    if subset_size is not None and subset_size <= 0:
        raise ValueError(f"data.subset_size must be positive, got {subset_size}")
    if imbalance == "full":
        if subset_size not in (None, int(available.sum())):
            raise ValueError("data.subset_size does not apply to imbalance 'full' (all images); leave it unset")
        return available
    if subset_size is not None and subset_size > available.sum():
        raise ValueError(f"data.subset_size={subset_size} is larger than the {available.sum()} images available")
    if imbalance == "dirichlet":
        return dirichlet_class_counts(subset_size or DEFAULT_DIRICHLET_SIZE, concentration, seed, available)
    if imbalance in RATIO_KINDS:
        profile = (long_tail_class_counts if imbalance == "long_tail" else step_class_counts)(available, ratio)
        counts = profile if subset_size is None else largest_remainder(profile, subset_size)
    else:
        counts = preset_class_counts(imbalance, len(available), subset_size)
    short = np.flatnonzero(counts > available)
    if len(short):
        raise ValueError(
            f"imbalance {imbalance!r} asks for {counts[short].tolist()} images of class(es) {short.tolist()} "
            f"but only {available[short].tolist()} exist; a smaller data.subset_size keeps the proportions"
        )
    return counts


def subset_indices(labels: torch.Tensor, counts: np.ndarray, seed: int) -> np.ndarray:
    """Sorted training-set indices holding ``counts[c]`` images of each class c, chosen by ``seed``."""
    rng = np.random.default_rng(seed)
    labels_np = labels.numpy()
    chosen = []
    for cls, count in enumerate(counts):
        members = np.flatnonzero(labels_np == cls)
        chosen.append(rng.permutation(members)[:count])
    return np.sort(np.concatenate(chosen)).astype(np.int64)


def save_subset(path: Path, indices: np.ndarray, counts: np.ndarray, description: dict) -> None:
    """Write ``subset.json``: how it was drawn, per-class counts and the indices."""
    payload = {**description, "class_counts": [int(c) for c in counts], "size": int(len(indices)),
               "indices": [int(i) for i in indices]}
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(payload))
    tmp.replace(path)


def load_subset(path: Path) -> dict:
    return json.loads(Path(path).read_text())
