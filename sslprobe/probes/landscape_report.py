"""What a loss landscape says: its arrays (`LandscapeResult`), local minima and the report the probe writes."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np


@dataclass
class LandscapeResult:
    """Both rescaling probes of one layer, ready for ``np.savez``.

    Attributes:
        a: (n_a,) grid of the 1-D probe.
        loss_1d: (n_a,) objective at a·W.
        r1: (n_1,) factors of the larger half of the singular values.
        r2: (n_2,) factors of the smaller half.
        loss_2d: (n_1, n_2) objective, ``loss_2d[i, j]`` at (r1[i], r2[j]).
        reference_loss: objective of the unmodified layer.
        decay_1d: (n_a,) weight-decay share of ``loss_1d`` (zeros without decay).
        decay_2d: (n_1, n_2) weight-decay share of ``loss_2d``.
    """

    a: np.ndarray
    loss_1d: np.ndarray
    r1: np.ndarray
    r2: np.ndarray
    loss_2d: np.ndarray
    reference_loss: float
    decay_1d: np.ndarray | None = None
    decay_2d: np.ndarray | None = None

    def __post_init__(self):
        if self.decay_1d is None:
            self.decay_1d = np.zeros_like(np.asarray(self.loss_1d, dtype=np.float64))
        if self.decay_2d is None:
            self.decay_2d = np.zeros_like(np.asarray(self.loss_2d, dtype=np.float64))

    def arrays(self) -> dict[str, np.ndarray]:
        """The npz payload: ``a``, ``loss_1d``, ``r1``, ``r2``, ``loss_2d``, ``reference_loss``,
        ``decay_1d``, ``decay_2d``."""
        return {
            "a": self.a,
            "loss_1d": self.loss_1d,
            "r1": self.r1,
            "r2": self.r2,
            "loss_2d": self.loss_2d,
            "reference_loss": np.asarray(self.reference_loss, dtype=np.float64),
            "decay_1d": self.decay_1d,
            "decay_2d": self.decay_2d,
        }

    def save(self, path: str | Path) -> None:
        """Write `arrays` to an ``.npz`` file."""
        np.savez(path, **self.arrays())

    @classmethod
    def load(cls, path: str | Path) -> LandscapeResult:
        """Read a file written by `save`."""
        with np.load(path) as data:
            return cls(
                a=data["a"],
                loss_1d=data["loss_1d"],
                r1=data["r1"],
                r2=data["r2"],
                loss_2d=data["loss_2d"],
                reference_loss=float(data["reference_loss"]),
                decay_1d=data["decay_1d"] if "decay_1d" in data.files else None,
                decay_2d=data["decay_2d"] if "decay_2d" in data.files else None,
            )


def _relative_range(values: np.ndarray) -> float:
    """(max - min) / max |value|; 0 for an empty or all-zero array."""
    values = values[np.isfinite(values)]
    if values.size == 0:
        return 0.0
    scale = np.abs(values).max()
    return float((values.max() - values.min()) / scale) if scale > 0 else 0.0


def grid_local_minima(values: np.ndarray, atol: float = 0.0) -> np.ndarray:
    """Indices of the local minima of a 2-D grid, best first.

    A cell is a local minimum when it is not larger than any of its (up to 8) neighbours by
    more than ``atol``; grid edges count as having no neighbour beyond them. Flat valleys (the
    rays r2 / r1 = const of a scale-invariant loss) therefore come out as several cells.
    Non-finite cells are never minima.

    Args:
        values: (n_1, n_2) grid, e.g. ``LandscapeResult.loss_2d``.
        atol: tolerance of the comparison.

    Returns:
        (K, 2) int array of (i, j) indices, sorted by increasing value.
    """
    values = np.asarray(values, dtype=np.float64)
    padded = np.pad(np.where(np.isfinite(values), values, np.inf), 1, constant_values=np.inf)
    n1, n2 = values.shape
    is_min = np.isfinite(values)
    for di in (-1, 0, 1):
        for dj in (-1, 0, 1):
            if di == 0 and dj == 0:
                continue
            neighbour = padded[1 + di : 1 + di + n1, 1 + dj : 1 + dj + n2]
            is_min &= values <= neighbour + atol
    indices = np.argwhere(is_min)
    order = np.argsort(values[is_min], kind="stable")
    return indices[order]


def landscape_report(
    result: LandscapeResult,
    flat_range: tuple[float, float] = (0.25, 2.0),
    flat_rtol: float = 1e-4,
) -> dict[str, float | bool | str | None]:
    """Summary of the two probes: minima, the origin's nature and scale invariance.

    - ``origin``: "maximum" when the 1-D loss decreases from a = 0 to the next grid value
      (the paper's criterion: the origin is a local maximum along a, so W = 0, complete
      collapse, is not a local minimum), "minimum" when it increases, "flat" when the change is
      within ``flat_rtol`` relative; None when the grid does not start at a = 0 or the loss is
      ``scale_invariant`` (the 1-D curve is then flat by construction and says nothing about the
      origin). ``origin_is_local_max`` is None exactly when ``origin`` is.
    - ``scale_invariant``: the 1-D loss *without* the weight-decay term (``relative_range_1d``)
      varies over a in ``flat_range`` by at most ``flat_rtol`` × its largest magnitude. Then the
      1-D curve is that of the decay term alone and carries no information about the loss (nor
      does the origin, where normalised embeddings are undefined): only the 2-D probe is
      informative. ``relative_range_2d`` is the same measure for the 2-D objective (with
      decay) over ``flat_range``².

    Args:
        result: output of `loss_landscape` (or `LandscapeResult.load`).
        flat_range: range of a (and of r1, r2 for ``relative_range_2d``) tested for flatness.
        flat_rtol: relative tolerance of flatness.

    Returns:
        JSON-serialisable dict: ``min_1d_a``, ``min_1d_loss``, ``min_2d_r1``, ``min_2d_r2``,
        ``min_2d_loss``, ``reference_loss``, ``origin``, ``origin_is_local_max``,
        ``relative_range_1d``, ``relative_range_2d``, ``scale_invariant``, ``message``.
    """
    a, loss_1d = np.asarray(result.a), np.asarray(result.loss_1d)
    r1, r2, loss_2d = np.asarray(result.r1), np.asarray(result.r2), np.asarray(result.loss_2d)
    lo, hi = flat_range
    i_min = int(np.nanargmin(loss_1d))
    i1, i2 = np.unravel_index(int(np.nanargmin(loss_2d)), loss_2d.shape)

    in_range = (a >= lo - 1e-12) & (a <= hi + 1e-12)
    range_1d = _relative_range((loss_1d - np.asarray(result.decay_1d))[in_range])
    in_range_2d = np.ix_((r1 >= lo - 1e-12) & (r1 <= hi + 1e-12), (r2 >= lo - 1e-12) & (r2 <= hi + 1e-12))
    range_2d = _relative_range(loss_2d[in_range_2d].ravel())
    scale_invariant = bool(in_range.sum() >= 2 and range_1d <= flat_rtol)

    origin = None
    if a.size >= 2 and a[0] == 0.0 and not scale_invariant:
        change = loss_1d[1] - loss_1d[0]
        tolerance = flat_rtol * max(abs(loss_1d[0]), abs(loss_1d[1]), 1e-12)
        origin = "maximum" if change < -tolerance else "minimum" if change > tolerance else "flat"

    if scale_invariant:
        message = (
            "The loss does not change under W -> aW for a > 0 (normalised or batch-standardised "
            "embeddings, e.g. cosine NT-Xent or Barlow Twins): the 1-D rescaling probe says "
            "nothing here, and neither does the origin; only the 2-D singular-half probe is "
            "informative."
        )
    elif origin == "maximum":
        message = "The origin is a local maximum along a: complete collapse (W = 0) is not a minimum."
    elif origin == "minimum":
        message = "The origin is a local minimum along a: complete collapse (W = 0) is a stable point."
    elif origin == "flat":
        message = "The loss is flat at the origin to grid resolution: the collapse test is inconclusive."
    else:
        message = "The grid of a does not start at 0: the origin was not probed."

    return {
        "min_1d_a": float(a[i_min]),
        "min_1d_loss": float(loss_1d[i_min]),
        "min_2d_r1": float(r1[i1]),
        "min_2d_r2": float(r2[i2]),
        "min_2d_loss": float(loss_2d[i1, i2]),
        "reference_loss": float(result.reference_loss),
        "origin": origin,
        "origin_is_local_max": None if origin is None else origin == "maximum",
        "relative_range_1d": range_1d,
        "relative_range_2d": range_2d,
        "scale_invariant": scale_invariant,
        "message": message,
    }
