"""SimSiam (Chen & He 2021): negative cosine of a prediction and a stop-gradient embedding."""

from __future__ import annotations

import torch
from torch import nn

from sslprobe.losses.stop_gradient import cosine_to_target


def negative_cosine(p: torch.Tensor, z: torch.Tensor) -> torch.Tensor:
    """The paper's D(p, z) = −mean_i cos(p_i, stopgrad(z_i)) on (B, D) batches; no gradient reaches z."""
    return -cosine_to_target(p, z).mean()


def simsiam_loss(p1: torch.Tensor, p2: torch.Tensor, z1: torch.Tensor, z2: torch.Tensor) -> torch.Tensor:
    """SimSiam's symmetrised loss D(p1, z2)/2 + D(p2, z1)/2 (the paper's Eq. 2 / Algorithm 1).

    Args:
        p1, p2: (B, D) predictions h(z) of the two views.
        z1, z2: (B, D) projector outputs of the two views (stop-gradient inside).

    Returns:
        Scalar in [−1, 1]; −1 when every prediction points along the other view's embedding.
    """
    return 0.5 * negative_cosine(p1, z2) + 0.5 * negative_cosine(p2, z1)


class SimSiamLoss(nn.Module):
    """Module form of `simsiam_loss` (nothing to gather: the loss is a mean over the batch's pairs)."""

    def forward(self, p1: torch.Tensor, p2: torch.Tensor, z1: torch.Tensor, z2: torch.Tensor) -> torch.Tensor:
        return simsiam_loss(p1, p2, z1, z2)
