"""BYOL (Grill et al. 2020): normalised squared error between online predictions and target embeddings."""

from __future__ import annotations

import torch
from torch import nn

from sslprobe.losses.stop_gradient import cosine_to_target


def byol_loss(q1: torch.Tensor, q2: torch.Tensor, t1: torch.Tensor, t2: torch.Tensor) -> torch.Tensor:
    """BYOL's symmetrised loss L + L̃ (the paper's Eq. 2 and its mirror), averaged over the batch.

    Per pair ``‖q̄ − t̄‖² = 2 − 2 cos(q, t)`` (q̄, t̄ the unit vectors); no gradient reaches t.

    Args:
        q1, q2: (B, D) online predictions of the two views.
        t1, t2: (B, D) target-network projections of the two views (no gradient).

    Returns:
        Scalar in [0, 8]: (2 − 2 cos(q1, t2)) + (2 − 2 cos(q2, t1)), mean over the batch.
    """
    return (2 - 2 * cosine_to_target(q1, t2)).mean() + (2 - 2 * cosine_to_target(q2, t1)).mean()


class BYOLLoss(nn.Module):
    """Module form of `byol_loss` (nothing to gather: the loss is a mean over the batch's pairs)."""

    def forward(self, q1: torch.Tensor, q2: torch.Tensor, t1: torch.Tensor, t2: torch.Tensor) -> torch.Tensor:
        return byol_loss(q1, q2, t1, t2)
