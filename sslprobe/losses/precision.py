"""Losses compute in float32 (or float64) whatever precision the network runs in.

Under ``bf16-mixed`` (or ``16-mixed``) autocast the projector hands the loss half-precision
embeddings, and autocast would run the loss's own matrix products in bfloat16 too. bfloat16
keeps about 3 significant digits: NT-Xent at temperature 0.1 has logits of ±10, whose rounding
alone (±0.04) moves the loss by ~5e-3 at batch 256. Every loss in `sslprobe.losses` is therefore
wrapped with `full_precision`: its embeddings are cast up to float32 and autocast is off inside,
so similarities, log-sum-exps, cross-correlations and covariances are float32. Only the network
before the loss runs in reduced precision; the gradient flows back through the cast.
"""

from __future__ import annotations

import functools
from collections.abc import Callable

import torch

REDUCED_PRECISION = (torch.float16, torch.bfloat16)


def at_least_float32(tensor: torch.Tensor) -> torch.Tensor:
    """``tensor`` as float32 if it is float16/bfloat16, else unchanged (float64 stays float64)."""
    return tensor.float() if tensor.dtype in REDUCED_PRECISION else tensor


def full_precision(loss: Callable[..., torch.Tensor]) -> Callable[..., torch.Tensor]:
    """Wrap a loss ``loss(z1, z2, ...)`` to run with autocast off on float32-or-wider embeddings.

    The unwrapped function stays reachable as ``wrapped.__wrapped__``.
    """

    @functools.wraps(loss)
    def wrapped(z1: torch.Tensor, z2: torch.Tensor, *args, **kwargs) -> torch.Tensor:
        with torch.autocast(device_type=z1.device.type, enabled=False):
            return loss(at_least_float32(z1), at_least_float32(z2), *args, **kwargs)

    return wrapped
