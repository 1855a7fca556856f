"""The engine of the landscape probes: a rescaled linear layer's loss over a grid, chunked under vmap.

See `sslprobe.probes.landscape` for what is measured and its cost; this module evaluates it.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
import torch

LossFn = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]
Head = Callable[[torch.Tensor], torch.Tensor]

DEFAULT_BATCH_SIZE = 256  # a common SSL training batch; pass the real one
CHUNK_MEMORY_BUDGET = 64 * 2**20  # bytes of intermediates one vmap chunk may hold
VMAP_CHECK_RTOL = 1e-3


@dataclass(frozen=True)
class LandscapeOptions:
    """How the landscape probes evaluate the objective at every grid point.

    Attributes:
        weight_decay: γ; adds γ/2 · ‖W_scaled‖_F² (plus γ/2 · ‖b_scaled‖² when ``scale_bias``)
            to every value.
        scale_bias: rescale the bias with the weight.
        batch_size: average the loss over consecutive batches of this many rows (pass the
            training batch size); trailing rows that fill no batch are dropped; None, or a value
            >= N, evaluates all N rows as one batch.
        chunk_size: grid points per vmap call; None sizes chunks to about 64 MiB of intermediates.
    """

    weight_decay: float = 0.0
    scale_bias: bool = False
    batch_size: int | None = DEFAULT_BATCH_SIZE
    chunk_size: int | None = None

    def __post_init__(self):
        if self.batch_size is not None and self.batch_size < 2:
            raise ValueError(f"batch_size must be >= 2, got {self.batch_size}")
        if self.chunk_size is not None and self.chunk_size < 1:
            raise ValueError(f"chunk_size must be >= 1, got {self.chunk_size}")


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
    options: LandscapeOptions,
    on_points=None,
) -> tuple[np.ndarray, np.ndarray]:
    """Mean batch loss and decay penalty at each row of ``coefficients`` (G, K); two (G,).

    ``on_points(n)`` is called after each chunk of n grid points (progress display).
    """
    coeff = torch.as_tensor(coefficients, dtype=torch.float64, device=layer.parts1.device)
    chunk = _chunk_size(layer, options.chunk_size)
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
    penalty = 0.5 * options.weight_decay * (coefficients**2 @ layer.part_sq_norms)
    return values.numpy(), penalty
