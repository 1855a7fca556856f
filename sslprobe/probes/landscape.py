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

How each grid value is evaluated (weight decay, bias, loss batches, vmap chunks) is one
`LandscapeOptions`, shared by every probe here.

Weight-decay convention: SGD / AdamW weight decay γ corresponds to the penalty
``γ/2 · ‖θ‖²`` added to the objective; ``LandscapeOptions(weight_decay=γ)`` adds
``γ/2 · ‖W_scaled‖_F²`` (and ``γ/2 · ‖b_scaled‖²`` when the bias is rescaled too) to every grid
value. This is the γ of the paper's Section 3.1, where it shifts B to B - γI.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
import torch

from sslprobe.probes.landscape_grid import (  # noqa: F401 - re-exported: the probes' public names
    CHUNK_MEMORY_BUDGET,
    DEFAULT_BATCH_SIZE,
    VMAP_CHECK_RTOL,
    Head,
    LandscapeOptions,
    LossFn,
    _as_inputs,
    _batched,
    _grid_losses,
    _identity,
    _losses_loop,
    _prepare,
    default_grid,
)
from sslprobe.probes.landscape_report import LandscapeResult, grid_local_minima, landscape_report  # noqa: F401

LayerInputs = torch.Tensor | Sequence[torch.Tensor]
GridAxis = np.ndarray | Sequence[float] | None
DEFAULT_OPTIONS = LandscapeOptions()


def rescale_landscape_1d(
    h1: LayerInputs,
    h2: LayerInputs,
    weight: torch.Tensor,
    bias: torch.Tensor | None,
    loss_fn: LossFn,
    *,
    head: Head | None = None,
    scales: GridAxis = None,
    options: LandscapeOptions | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Objective as a function of a when the target layer's weight W is replaced by a·W.

    ``z_v = head(a · h_v Wᵀ + b)`` (or ``head(a · (h_v Wᵀ + b))`` with ``options.scale_bias``)
    and the value at a is ``loss_fn(z_1, z_2) + weight_decay/2 · ‖a W‖²`` (the paper's Fig. 2,
    left).

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
        options: weight decay, bias rescaling, loss batch size and vmap chunks (default
            `LandscapeOptions()`).

    Returns:
        ``(a, loss)``: two (len(scales),) float64 arrays.
    """
    a, loss, decay = _landscape_1d(h1, h2, weight, bias, loss_fn, head, scales, options or DEFAULT_OPTIONS)
    return a, loss + decay


def _landscape_1d(
    h1: LayerInputs,
    h2: LayerInputs,
    weight: torch.Tensor,
    bias: torch.Tensor | None,
    loss_fn: LossFn,
    head: Head | None,
    scales: GridAxis,
    options: LandscapeOptions,
    on_points=None,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """`rescale_landscape_1d` with the loss and the decay penalty returned separately."""
    a = default_grid() if scales is None else np.asarray(scales, dtype=np.float64)
    weight = weight.detach()
    bias_parts = [bias.detach()] if (options.scale_bias and bias is not None) else None
    layer = _prepare(h1, h2, [weight], bias_parts, bias, options.batch_size)
    loss, decay = _grid_losses(layer, a[:, None], head or _identity, loss_fn, options, on_points)
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
    h1: LayerInputs,
    h2: LayerInputs,
    weight: torch.Tensor,
    bias: torch.Tensor | None,
    loss_fn: LossFn,
    *,
    head: Head | None = None,
    r1: GridAxis = None,
    r2: GridAxis = None,
    options: LandscapeOptions | None = None,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Objective when the larger half of W's singular values is scaled by r1, the smaller by r2.

    ``W(r1, r2) = r1 · W_large + r2 · W_small`` (see `singular_halves`; the middle singular value
    of an odd count belongs to the larger half), the paper's Fig. 2 right-hand panels. With
    ``options.scale_bias`` the bias is split the same way in output space: its component in the
    span of the larger half's left singular vectors is scaled by r1, the rest (including
    directions W does not reach, whose singular value is 0) by r2. The diagonal r1 = r2 = a is
    the 1-D probe. Weight decay γ adds γ/2 · ‖W(r1, r2)‖_F² = γ/2 · (r1² ‖W_large‖² + r2²
    ‖W_small‖²) (plus the bias's share when it is rescaled).

    Args:
        h1, h2: (N, d_in) inputs of the target layer for the two views (or lists of chunks).
        weight: (d_out, d_in) weight of the target layer.
        bias: (d_out,) bias, or None.
        loss_fn: ``loss_fn(z1, z2) -> scalar`` on (B, D) embeddings.
        head: everything after the target layer, ``(B, d_out) -> (B, D)``; identity if None.
        r1, r2: grids for the two factors; default 41 points on [0, 2] each.
        options: as in `rescale_landscape_1d`.

    Returns:
        ``(r1, r2, loss)`` with loss of shape (len(r1), len(r2)), ``loss[i, j]`` at
        (r1[i], r2[j]); float64.
    """
    r1, r2, loss, decay = _landscape_2d(h1, h2, weight, bias, loss_fn, head, r1, r2, options or DEFAULT_OPTIONS)
    return r1, r2, loss + decay


def _landscape_2d(
    h1: LayerInputs,
    h2: LayerInputs,
    weight: torch.Tensor,
    bias: torch.Tensor | None,
    loss_fn: LossFn,
    head: Head | None,
    r1: GridAxis,
    r2: GridAxis,
    options: LandscapeOptions,
    on_points=None,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """`rescale_singular_halves` with the loss and the decay penalty returned separately."""
    r1 = default_grid() if r1 is None else np.asarray(r1, dtype=np.float64)
    r2 = default_grid() if r2 is None else np.asarray(r2, dtype=np.float64)
    w_large, w_small, u_large = singular_halves(weight)
    bias_parts = None
    if options.scale_bias and bias is not None:
        b = bias.detach().to(device=u_large.device, dtype=torch.float64)
        b_large = u_large @ (u_large.T @ b)
        bias_parts = [b_large, b - b_large]
    layer = _prepare(h1, h2, [w_large, w_small], bias_parts, bias, options.batch_size)
    grid = np.stack(np.meshgrid(r1, r2, indexing="ij"), axis=-1).reshape(-1, 2)  # (G, 2)
    loss, decay = _grid_losses(layer, grid, head or _identity, loss_fn, options, on_points)
    shape = (len(r1), len(r2))
    return r1, r2, loss.reshape(shape), decay.reshape(shape)


def reference_loss(
    h1: LayerInputs,
    h2: LayerInputs,
    weight: torch.Tensor,
    bias: torch.Tensor | None,
    loss_fn: LossFn,
    *,
    head: Head | None = None,
    options: LandscapeOptions | None = None,
) -> float:
    """Objective of the unmodified layer (a = 1, r1 = r2 = 1), computed directly.

    Same conventions as `rescale_landscape_1d` (``options.chunk_size`` is not used); the decay
    term covers the bias only when ``options.scale_bias`` (the parameters the probes rescale).
    """
    options = options or DEFAULT_OPTIONS
    head = head or _identity
    h1, h2 = _as_inputs(h1), _as_inputs(h2)
    w = weight.detach().to(device=h1.device, dtype=h1.dtype)
    with torch.no_grad():
        y1, y2 = h1 @ w.T, h2 @ w.T  # (N, d_out)
        if bias is not None:
            b = bias.detach().to(device=h1.device, dtype=h1.dtype)
            y1, y2 = y1 + b, y2 + b
        y1, y2 = _batched(y1, options.batch_size), _batched(y2, options.batch_size)
        value = float(_losses_loop(y1[None], y2[None], head, loss_fn)[0])
    sq_norm = float(weight.detach().double().pow(2).sum())
    if options.scale_bias and bias is not None:
        sq_norm += float(bias.detach().double().pow(2).sum())
    return value + 0.5 * options.weight_decay * sq_norm


def loss_landscape(
    h1: LayerInputs,
    h2: LayerInputs,
    weight: torch.Tensor,
    bias: torch.Tensor | None,
    loss_fn: LossFn,
    *,
    head: Head | None = None,
    scales: GridAxis = None,
    r1: GridAxis = None,
    r2: GridAxis = None,
    options: LandscapeOptions | None = None,
    on_points=None,
) -> LandscapeResult:
    """Run `rescale_landscape_1d`, `rescale_singular_halves` and `reference_loss` on one layer.

    For a projector whose last layer is ``nn.Linear`` ``layer``: ``h_v = projector[:-1](
    backbone(view_v))`` and ``weight, bias = layer.weight, layer.bias``. Arguments as in the
    two probes; ``on_points(n)`` is called after every n grid points evaluated (of
    ``len(scales) + len(r1) * len(r2)``), for a progress display.
    """
    options = options or DEFAULT_OPTIONS
    h1, h2 = _as_inputs(h1), _as_inputs(h2)
    a, loss_1d, decay_1d = _landscape_1d(h1, h2, weight, bias, loss_fn, head, scales, options, on_points)
    r1, r2, loss_2d, decay_2d = _landscape_2d(h1, h2, weight, bias, loss_fn, head, r1, r2, options, on_points)
    reference = reference_loss(h1, h2, weight, bias, loss_fn, head=head, options=options)
    return LandscapeResult(a, loss_1d + decay_1d, r1, r2, loss_2d + decay_2d, reference, decay_1d, decay_2d)
