"""A momentum target network: a copy of modules that follows them by an EMA, never the optimizer."""

from __future__ import annotations

import copy

import torch
from torch import nn

from sslprobe.schedules import cosine_between


def cosine_momentum(step: int, total: int, base: float, final: float = 1.0) -> float:
    """τ after optimizer step ``step`` of ``total``: ``final − (final − base)(cos(π step/total) + 1)/2``."""
    progress = min(1.0, step / max(1, total))
    return cosine_between(base, final, progress)


class MomentumTarget(nn.Module):
    """Copies of ``modules`` applied in sequence, without gradient; `update` moves them by an EMA.

    The copies' parameters have ``requires_grad=False``, so `SSLMethod.trainable_parameters` leaves
    them out of the optimizer; they are part of the state dict (exact resume).

    Args:
        *modules: the online modules to copy, in the order they are applied.
        base_momentum, final_momentum: τ of `follow` at the first and at the last step.
    """

    def __init__(self, *modules: nn.Module, base_momentum: float = 0.99, final_momentum: float = 1.0):
        super().__init__()
        if not 0 <= base_momentum <= final_momentum <= 1:
            raise ValueError(f"need 0 <= base_momentum <= final_momentum <= 1, got {base_momentum}, {final_momentum}")
        self.base_momentum, self.final_momentum = base_momentum, final_momentum
        self.copies = nn.ModuleList(copy.deepcopy(module) for module in modules)
        self.copies.requires_grad_(False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        with torch.no_grad():
            for module in self.copies:
                x = module(x)
        return x

    @torch.no_grad()
    def update(self, tau: float, *online: nn.Module) -> None:
        """ξ ← τ ξ + (1 − τ) θ for every parameter θ of ``online`` (the modules copied, same order)."""
        params = [p for module in online for p in module.parameters()]
        for target, param in zip(self.parameters(), params, strict=True):
            target.mul_(tau).add_(param.detach(), alpha=1 - tau)

    def follow(self, step: int, total: int, *online: nn.Module) -> None:
        """`update` after optimizer step ``step`` of ``total``, τ rising by `cosine_momentum` from base to final."""
        self.update(cosine_momentum(step, total, self.base_momentum, self.final_momentum), *online)
