"""Projection heads. The last ``nn.Linear`` of a projector is what the landscape probe rescales."""

from __future__ import annotations

from typing import Literal

from torch import nn

from sslprobe.options import PositiveInt, checked

Projector = Literal["mlp", "linear"]


@checked
def mlp_projector(
    in_dim: PositiveInt, hidden_dim: PositiveInt = 512, out_dim: PositiveInt = 128, batch_norm: bool = True
) -> nn.Sequential:
    """Linear -> BatchNorm1d -> ReLU -> Linear (SimCLR's 2-layer head; the paper's Appendix C)."""
    return nn.Sequential(
        nn.Linear(in_dim, hidden_dim, bias=not batch_norm),
        nn.BatchNorm1d(hidden_dim) if batch_norm else nn.Identity(),
        nn.ReLU(inplace=True),
        nn.Linear(hidden_dim, out_dim),
    )


@checked
def build_projector(
    kind: Projector | None,
    in_dim: PositiveInt,
    hidden_dim: PositiveInt = 512,
    out_dim: PositiveInt = 128,
    batch_norm: bool = True,
) -> nn.Module:
    """``mlp``, ``linear`` (one nn.Linear) or ``None`` (identity: embeddings = backbone features)."""
    if kind is None:
        return nn.Identity()
    if kind == "mlp":
        return mlp_projector(in_dim, hidden_dim, out_dim, batch_norm)
    if kind == "linear":
        return nn.Linear(in_dim, out_dim)
    raise ValueError(f"unknown projector {kind!r}; valid: mlp, linear, null")


def last_linear(module: nn.Module) -> nn.Linear | None:
    """The last ``nn.Linear`` inside ``module`` (itself included), or None."""
    found = None
    for child in module.modules():
        if isinstance(child, nn.Linear):
            found = child
    return found
