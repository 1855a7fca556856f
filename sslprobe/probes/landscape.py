"""Loss landscape around a trained linear layer under rescaling (the paper's Fig. 1, 2 and 7).

The paper's collapse criterion lives at the origin of the last layer: every loss it studies
expands as ``L(W) = -Tr[W B Wᵀ] + O(|W|⁴)`` (Eq. 3), so along ``W → a·W`` the origin a = 0 is a
local maximum exactly when the Hessian B has a positive direction that W uses, and complete
collapse (W = 0) is then not a minimum. Two probes measure this on a trained network:

- `rescale_landscape_1d`: the loss of ``a·W`` over a grid of a (Fig. 2, left of each pair);
- `rescale_singular_halves`: with ``W = U S Vᵀ``, the larger half of the singular values
  multiplied by r1 and the smaller half by r2 (Fig. 2, right of each pair).

A loss on L2-normalised (cosine NT-Xent) or batch-standardised (Barlow Twins) embeddings does
not change under ``W → a·W`` for a > 0, so its 1-D curve is flat by construction and says
nothing; its 2-D landscape still varies with r2 / r1. `landscape_report` detects this and says
so instead of letting a flat curve pass for a measurement.

Cost. The caller runs the backbone and every layer before the target layer once and passes the
target layer's inputs ``h1, h2`` for the two views. The rescaled layer's output is linear in
the grid coordinates, ``y = c_1·P_1 + c_2·P_2 + C`` with P, C computed once, so a grid point only
forms this combination and evaluates ``head`` and ``loss_fn``; grid points are evaluated in
chunks under `torch.vmap`, with a plain loop used instead whenever vmap cannot run a loss or
disagrees with it. The loss is averaged over consecutive batches of ``batch_size`` rows: set
to the training batch size this is the objective being trained (for the InfoNCE family the
number of negatives enters the landscape itself, Eq. 8), and it costs O(N · batch_size) per
grid point instead of O(N²) (for N = 2048 and batches of 256, more than ten times less on a
CPU than ``batch_size=None``).

Weight-decay convention: SGD / AdamW weight decay γ corresponds to the penalty
``γ/2 · ‖θ‖²`` added to the objective; ``weight_decay=γ`` adds ``γ/2 · ‖W_scaled‖_F²`` (and
``γ/2 · ‖b_scaled‖²`` when the bias is rescaled too) to every grid value. This is the γ of the
paper's Section 3.1, where it shifts B to B - γI.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

LossFn = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]
Head = Callable[[torch.Tensor], torch.Tensor]

DEFAULT_BATCH_SIZE = 256  # a common SSL training batch; pass the real one
CHUNK_MEMORY_BUDGET = 64 * 2**20  # bytes of intermediates one vmap chunk may hold
VMAP_CHECK_RTOL = 1e-3


def default_grid(points: int = 41, stop: float = 2.0) -> np.ndarray:
    """``points`` evenly spaced values on [0, stop] (the paper's Fig. 2 uses [0, 2])."""
    return np.linspace(0.0, stop, points)


def _as_inputs(h: torch.Tensor | Sequence[torch.Tensor]) -> torch.Tensor:
    matrix = h if isinstance(h, torch.Tensor) else torch.cat(list(h))
    if matrix.ndim != 2:
        raise ValueError(f"expected layer inputs of shape (N, d_in), got {tuple(matrix.shape)}")
    return matrix.detach()


def _identity(y: torch.Tensor) -> torch.Tensor:
    return y


@dataclass
class _RescaledLayer:
    """The layer's output for both views as ``Σ_k c_k · parts[k] + constant``.

    parts1, parts2: (K, n_batches, batch, d_out); constant: (d_out,) bias left unscaled;
    part_sq_norms: (K,) squared norms of the rescaled parameters in each part (for decay).
    """

    parts1: torch.Tensor
    parts2: torch.Tensor
    constant: torch.Tensor
    part_sq_norms: np.ndarray

    def outputs(self, coefficients: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(G, K) coefficients -> two (G, n_batches, batch, d_out) outputs."""
        coefficients = coefficients.to(self.parts1.dtype)
        y1 = torch.einsum("gk,kbnd->gbnd", coefficients, self.parts1) + self.constant
        y2 = torch.einsum("gk,kbnd->gbnd", coefficients, self.parts2) + self.constant
        return y1, y2


def _batched(h: torch.Tensor, batch_size: int | None) -> torch.Tensor:
    """(N, d) -> (n_batches, batch, d); trailing rows that do not fill a batch are dropped."""
    n = h.shape[0]
    if batch_size is None or batch_size >= n:
        return h[None]
    if batch_size < 2:
        raise ValueError(f"batch_size must be >= 2, got {batch_size}")
    n_batches = n // batch_size
    return h[: n_batches * batch_size].reshape(n_batches, batch_size, h.shape[1])


def _prepare(
    h1: torch.Tensor,
    h2: torch.Tensor,
    weight_parts: list[torch.Tensor],
    bias_parts: list[torch.Tensor] | None,
    bias: torch.Tensor | None,
    batch_size: int | None,
) -> _RescaledLayer:
    """Project both views once through each weight part (and bias part, when rescaled)."""
    h1, h2 = _as_inputs(h1), _as_inputs(h2)
    if h1.shape != h2.shape:
        raise ValueError(f"views differ in shape: {tuple(h1.shape)} vs {tuple(h2.shape)}")
    dtype = h1.dtype if h1.is_floating_point() else torch.float32
    h1, h2 = h1.to(dtype), h2.to(dtype)
    d_out = weight_parts[0].shape[0]
    outputs1, outputs2, sq_norms = [], [], []
    for k, part in enumerate(weight_parts):
        part_cast = part.to(device=h1.device, dtype=dtype)
        y1, y2 = h1 @ part_cast.T, h2 @ part_cast.T  # (N, d_out)
        sq_norm = float(part.double().pow(2).sum())
        if bias_parts is not None:
            bias_part = bias_parts[k].to(device=h1.device, dtype=dtype)
            y1, y2 = y1 + bias_part, y2 + bias_part
            sq_norm += float(bias_parts[k].double().pow(2).sum())
        outputs1.append(_batched(y1, batch_size))
        outputs2.append(_batched(y2, batch_size))
        sq_norms.append(sq_norm)
    if bias is not None and bias_parts is None:
        constant = bias.detach().to(device=h1.device, dtype=dtype)
    else:
        constant = torch.zeros(d_out, device=h1.device, dtype=dtype)
    return _RescaledLayer(torch.stack(outputs1), torch.stack(outputs2), constant, np.asarray(sq_norms))


def _chunk_size(layer: _RescaledLayer, requested: int | None) -> int:
    if requested is not None:
        if requested < 1:
            raise ValueError(f"chunk_size must be >= 1, got {requested}")
        return requested
    _, n_batches, batch, d_out = layer.parts1.shape
    element = layer.parts1.element_size()
    # two views of outputs and head outputs, plus a few (2B, 2B) similarity-sized temporaries
    per_point = n_batches * element * (4 * batch * d_out + 6 * (2 * batch) ** 2)
    return max(1, CHUNK_MEMORY_BUDGET // per_point)


def _losses_loop(y1: torch.Tensor, y2: torch.Tensor, head: Head, loss_fn: LossFn) -> torch.Tensor:
    """(G, n_batches, batch, d) outputs -> (G,) batch-averaged losses, one call at a time."""
    values = torch.empty(y1.shape[0], dtype=torch.float64)
    for g in range(y1.shape[0]):
        per_batch = [float(loss_fn(head(y1[g, b]), head(y2[g, b]))) for b in range(y1.shape[1])]
        values[g] = sum(per_batch) / len(per_batch)
    return values


def _losses_vmap(y1: torch.Tensor, y2: torch.Tensor, head: Head, loss_fn: LossFn) -> torch.Tensor:
    """Same as `_losses_loop`, with the grid and batch dimensions mapped by `torch.vmap`."""
    grid, n_batches = y1.shape[:2]
    flat1 = y1.reshape(grid * n_batches, *y1.shape[2:])  # (G * n_batches, batch, d)
    flat2 = y2.reshape(grid * n_batches, *y2.shape[2:])
    values = torch.vmap(lambda u, v: loss_fn(head(u), head(v)))(flat1, flat2)
    return values.reshape(grid, n_batches).double().mean(dim=1).cpu()


def _grid_losses(
    layer: _RescaledLayer,
    coefficients: np.ndarray,
    head: Head,
    loss_fn: LossFn,
    weight_decay: float,
    chunk_size: int | None,
    on_points=None,
) -> tuple[np.ndarray, np.ndarray]:
    """Mean batch loss and decay penalty at each row of ``coefficients`` (G, K); two (G,).

    ``on_points(n)`` is called after each chunk of n grid points (progress display).
    """
    coeff = torch.as_tensor(coefficients, dtype=torch.float64, device=layer.parts1.device)
    chunk = _chunk_size(layer, chunk_size)
    values = torch.empty(coeff.shape[0], dtype=torch.float64)
    use_vmap = True
    with torch.no_grad():
        for start in range(0, coeff.shape[0], chunk):
            stop = min(start + chunk, coeff.shape[0])
            y1, y2 = layer.outputs(coeff[start:stop])
            if use_vmap:
                try:
                    chunk_values = _losses_vmap(y1, y2, head, loss_fn)
                    if start == 0:
                        check = _losses_loop(y1[:1], y2[:1], head, loss_fn)
                        agree = torch.allclose(
                            chunk_values[:1], check, rtol=VMAP_CHECK_RTOL, atol=1e-6, equal_nan=True
                        )
                        if not agree:
                            raise RuntimeError("vmap result disagrees with a direct call")
                except Exception:  # any vmap limitation: evaluate this and later chunks directly
                    use_vmap = False
            if not use_vmap:
                chunk_values = _losses_loop(y1, y2, head, loss_fn)
            values[start:stop] = chunk_values
            if on_points is not None:
                on_points(stop - start)
    penalty = 0.5 * weight_decay * (coefficients**2 @ layer.part_sq_norms)
    return values.numpy(), penalty


def rescale_landscape_1d(
    h1: torch.Tensor | Sequence[torch.Tensor],
    h2: torch.Tensor | Sequence[torch.Tensor],
    weight: torch.Tensor,
    bias: torch.Tensor | None,
    loss_fn: LossFn,
    *,
    head: Head | None = None,
    scales: np.ndarray | Sequence[float] | None = None,
    weight_decay: float = 0.0,
    scale_bias: bool = False,
    batch_size: int | None = DEFAULT_BATCH_SIZE,
    chunk_size: int | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Objective as a function of a when the target layer's weight W is replaced by a·W.

    ``z_v = head(a · h_v Wᵀ + b)`` (or ``head(a · (h_v Wᵀ + b))`` with ``scale_bias``) and the
    value at a is ``loss_fn(z_1, z_2) + weight_decay/2 · ‖a W‖²`` (the paper's Fig. 2, left).

    Args:
        h1, h2: (N, d_in) inputs of the target layer for the two views (or lists of chunks),
            computed once by the caller with the network in eval mode.
        weight: (d_out, d_in) weight of the target layer.
        bias: (d_out,) bias, or None.
        loss_fn: ``loss_fn(z1, z2) -> scalar`` on (B, D) embeddings; the single-process form
            (no cross-rank gather).
        head: everything after the target layer, ``(B, d_out) -> (B, D)``, in eval mode (its
            output must not depend on other rows through batch statistics); identity if None.
        scales: grid of a; default 41 points on [0, 2].
        weight_decay: γ; adds γ/2 · ‖a W‖_F² (plus γ/2 · ‖a b‖² when ``scale_bias``).
        scale_bias: rescale the bias with the weight.
        batch_size: average the loss over consecutive batches of this many rows (pass the
            training batch size); trailing rows that fill no batch are dropped; None, or a value
            >= N, evaluates all N rows as one batch.
        chunk_size: grid points per vmap call; None sizes chunks to about 64 MiB of intermediates.

    Returns:
        ``(a, loss)``: two (len(scales),) float64 arrays.
    """
    a, loss, decay = _landscape_1d(
        h1, h2, weight, bias, loss_fn, head, scales, weight_decay, scale_bias, batch_size, chunk_size
    )
    return a, loss + decay


def _landscape_1d(
    h1: torch.Tensor | Sequence[torch.Tensor],
    h2: torch.Tensor | Sequence[torch.Tensor],
    weight: torch.Tensor,
    bias: torch.Tensor | None,
    loss_fn: LossFn,
    head: Head | None,
    scales: np.ndarray | Sequence[float] | None,
    weight_decay: float,
    scale_bias: bool,
    batch_size: int | None,
    chunk_size: int | None,
    on_points=None,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """`rescale_landscape_1d` with the loss and the decay penalty returned separately."""
    a = default_grid() if scales is None else np.asarray(scales, dtype=np.float64)
    weight = weight.detach()
    bias_parts = [bias.detach()] if (scale_bias and bias is not None) else None
    layer = _prepare(h1, h2, [weight], bias_parts, bias, batch_size)
    loss, decay = _grid_losses(layer, a[:, None], head or _identity, loss_fn, weight_decay, chunk_size, on_points)
    return a, loss, decay


def singular_halves(
    weight: torch.Tensor,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Split W = W_large + W_small along its singular values, in float64.

    ``W = U S Vᵀ`` with S descending over k = min(d_out, d_in) values. W_large keeps the
    ceil(k/2) largest singular values, W_small the floor(k/2) smallest: with an odd k the middle
    value goes to the larger half, so the smaller half never holds more directions than the
    larger one. W_small is formed as W - W_large so that r1 = r2 = 1 reproduces W exactly.

    Args:
        weight: (d_out, d_in) matrix.

    Returns:
        ``(w_large, w_small, u_large)``: two (d_out, d_in) float64 matrices and the (d_out,
        ceil(k/2)) left singular vectors of the larger half.
    """
    w = weight.detach().to(torch.float64)
    u, s, vh = torch.linalg.svd(w, full_matrices=False)
    n_large = math.ceil(s.shape[0] / 2)
    w_large = (u[:, :n_large] * s[:n_large]) @ vh[:n_large]
    return w_large, w - w_large, u[:, :n_large]


def rescale_singular_halves(
    h1: torch.Tensor | Sequence[torch.Tensor],
    h2: torch.Tensor | Sequence[torch.Tensor],
    weight: torch.Tensor,
    bias: torch.Tensor | None,
    loss_fn: LossFn,
    *,
    head: Head | None = None,
    r1: np.ndarray | Sequence[float] | None = None,
    r2: np.ndarray | Sequence[float] | None = None,
    weight_decay: float = 0.0,
    scale_bias: bool = False,
    batch_size: int | None = DEFAULT_BATCH_SIZE,
    chunk_size: int | None = None,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Objective when the larger half of W's singular values is scaled by r1, the smaller by r2.

    ``W(r1, r2) = r1 · W_large + r2 · W_small`` (see `singular_halves`; the middle singular value
    of an odd count belongs to the larger half), the paper's Fig. 2 right-hand panels. With
    ``scale_bias`` the bias is split the same way in output space: its component in the span of
    the larger half's left singular vectors is scaled by r1, the rest (including directions W
    does not reach, whose singular value is 0) by r2. The diagonal r1 = r2 = a is the 1-D probe.

    Args:
        h1, h2: (N, d_in) inputs of the target layer for the two views (or lists of chunks).
        weight: (d_out, d_in) weight of the target layer.
        bias: (d_out,) bias, or None.
        loss_fn: ``loss_fn(z1, z2) -> scalar`` on (B, D) embeddings.
        head: everything after the target layer, ``(B, d_out) -> (B, D)``; identity if None.
        r1, r2: grids for the two factors; default 41 points on [0, 2] each.
        weight_decay: γ; adds γ/2 · ‖W(r1, r2)‖_F² = γ/2 · (r1² ‖W_large‖² + r2² ‖W_small‖²)
            (plus the bias's share when ``scale_bias``).
        scale_bias: rescale the bias with the weight, as above.
        batch_size: as in `rescale_landscape_1d`.
        chunk_size: grid points per vmap call; None sizes chunks to about 64 MiB of intermediates.

    Returns:
        ``(r1, r2, loss)`` with loss of shape (len(r1), len(r2)), ``loss[i, j]`` at
        (r1[i], r2[j]); float64.
    """
    r1, r2, loss, decay = _landscape_2d(
        h1, h2, weight, bias, loss_fn, head, r1, r2, weight_decay, scale_bias, batch_size, chunk_size
    )
    return r1, r2, loss + decay


def _landscape_2d(
    h1: torch.Tensor | Sequence[torch.Tensor],
    h2: torch.Tensor | Sequence[torch.Tensor],
    weight: torch.Tensor,
    bias: torch.Tensor | None,
    loss_fn: LossFn,
    head: Head | None,
    r1: np.ndarray | Sequence[float] | None,
    r2: np.ndarray | Sequence[float] | None,
    weight_decay: float,
    scale_bias: bool,
    batch_size: int | None,
    chunk_size: int | None,
    on_points=None,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """`rescale_singular_halves` with the loss and the decay penalty returned separately."""
    r1 = default_grid() if r1 is None else np.asarray(r1, dtype=np.float64)
    r2 = default_grid() if r2 is None else np.asarray(r2, dtype=np.float64)
    w_large, w_small, u_large = singular_halves(weight)
    bias_parts = None
    if scale_bias and bias is not None:
        b = bias.detach().to(device=u_large.device, dtype=torch.float64)
        b_large = u_large @ (u_large.T @ b)
        bias_parts = [b_large, b - b_large]
    layer = _prepare(h1, h2, [w_large, w_small], bias_parts, bias, batch_size)
    grid = np.stack(np.meshgrid(r1, r2, indexing="ij"), axis=-1).reshape(-1, 2)  # (G, 2)
    loss, decay = _grid_losses(layer, grid, head or _identity, loss_fn, weight_decay, chunk_size, on_points)
    shape = (len(r1), len(r2))
    return r1, r2, loss.reshape(shape), decay.reshape(shape)


def reference_loss(
    h1: torch.Tensor | Sequence[torch.Tensor],
    h2: torch.Tensor | Sequence[torch.Tensor],
    weight: torch.Tensor,
    bias: torch.Tensor | None,
    loss_fn: LossFn,
    *,
    head: Head | None = None,
    weight_decay: float = 0.0,
    scale_bias: bool = False,
    batch_size: int | None = DEFAULT_BATCH_SIZE,
) -> float:
    """Objective of the unmodified layer (a = 1, r1 = r2 = 1), computed directly.

    Same conventions as `rescale_landscape_1d`; the decay term covers the bias only when
    ``scale_bias`` (the parameters the probes rescale).
    """
    head = head or _identity
    h1, h2 = _as_inputs(h1), _as_inputs(h2)
    w = weight.detach().to(device=h1.device, dtype=h1.dtype)
    with torch.no_grad():
        y1, y2 = h1 @ w.T, h2 @ w.T  # (N, d_out)
        if bias is not None:
            b = bias.detach().to(device=h1.device, dtype=h1.dtype)
            y1, y2 = y1 + b, y2 + b
        y1, y2 = _batched(y1, batch_size), _batched(y2, batch_size)
        value = float(_losses_loop(y1[None], y2[None], head, loss_fn)[0])
    sq_norm = float(weight.detach().double().pow(2).sum())
    if scale_bias and bias is not None:
        sq_norm += float(bias.detach().double().pow(2).sum())
    return value + 0.5 * weight_decay * sq_norm


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


def loss_landscape(
    h1: torch.Tensor | Sequence[torch.Tensor],
    h2: torch.Tensor | Sequence[torch.Tensor],
    weight: torch.Tensor,
    bias: torch.Tensor | None,
    loss_fn: LossFn,
    *,
    head: Head | None = None,
    scales: np.ndarray | Sequence[float] | None = None,
    r1: np.ndarray | Sequence[float] | None = None,
    r2: np.ndarray | Sequence[float] | None = None,
    weight_decay: float = 0.0,
    scale_bias: bool = False,
    batch_size: int | None = DEFAULT_BATCH_SIZE,
    chunk_size: int | None = None,
    on_points=None,
) -> LandscapeResult:
    """Run `rescale_landscape_1d`, `rescale_singular_halves` and `reference_loss` on one layer.

    For a projector whose last layer is ``nn.Linear`` ``layer``: ``h_v = projector[:-1](
    backbone(view_v))`` and ``weight, bias = layer.weight, layer.bias``. Arguments as in the
    two probes; ``on_points(n)`` is called after every n grid points evaluated (of
    ``len(scales) + len(r1) * len(r2)``), for a progress display.
    """
    h1, h2 = _as_inputs(h1), _as_inputs(h2)
    options = (weight_decay, scale_bias, batch_size, chunk_size)
    a, loss_1d, decay_1d = _landscape_1d(h1, h2, weight, bias, loss_fn, head, scales, *options, on_points)
    r1, r2, loss_2d, decay_2d = _landscape_2d(h1, h2, weight, bias, loss_fn, head, r1, r2, *options, on_points)
    reference = reference_loss(
        h1,
        h2,
        weight,
        bias,
        loss_fn,
        head=head,
        weight_decay=weight_decay,
        scale_bias=scale_bias,
        batch_size=batch_size,
    )
    return LandscapeResult(a, loss_1d + decay_1d, r1, r2, loss_2d + decay_2d, reference, decay_1d, decay_2d)


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
