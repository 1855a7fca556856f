"""BYOL (Grill et al. 2020): normalised squared error between online predictions and target embeddings."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from sslprobe.losses.precision import full_precision
from sslprobe.losses.validation import check_same_shape


@full_precision
def normalized_squared_error(q: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
    """mean_i ‖q̄_i − t̄_i‖² = mean_i (2 − 2 cos(q_i, t_i)) of (B, D) batches; no gradient reaches t."""
    check_same_shape(q, t)
    return (2 - 2 * (F.normalize(q, dim=1) * F.normalize(t.detach(), dim=1)).sum(dim=1)).mean()


def byol_loss(q1: torch.Tensor, q2: torch.Tensor, t1: torch.Tensor, t2: torch.Tensor) -> torch.Tensor:
    """BYOL's symmetrised loss L + L̃ (the paper's Eq. 2 and its mirror), averaged over the batch.

    Args:
        q1, q2: (B, D) online predictions of the two views.
        t1, t2: (B, D) target-network projections of the two views (no gradient).

    Returns:
        Scalar in [0, 8]: (2 − 2 cos(q1, t2)) + (2 − 2 cos(q2, t1)), mean over the batch.
    """
    return normalized_squared_error(q1, t2) + normalized_squared_error(q2, t1)


class BYOLLoss(nn.Module):
    """Module form of `byol_loss` (nothing to gather: the loss is a mean over the batch's pairs)."""

    def forward(self, q1: torch.Tensor, q2: torch.Tensor, t1: torch.Tensor, t2: torch.Tensor) -> torch.Tensor:
        return byol_loss(q1, q2, t1, t2)
