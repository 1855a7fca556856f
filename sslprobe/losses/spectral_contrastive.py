"""Spectral contrastive loss (HaoChen et al. 2021), as their public code computes it."""

from __future__ import annotations

import math

import torch
from torch import nn

from sslprobe.losses.distributed import gather_views
from sslprobe.losses.precision import full_precision
from sslprobe.losses.validation import check_positive, check_same_shape


def clip_norm(z: torch.Tensor, max_norm: float) -> torch.Tensor:
    """Rescale each row of ``z`` (B, D) whose L2 norm exceeds ``max_norm`` to norm ``max_norm``."""
    norms = z.norm(dim=1, keepdim=True)
    return torch.where(norms > max_norm, z * (max_norm / norms.clamp_min(1e-12)), z)


@full_precision
def spectral_contrastive_loss(
    z1: torch.Tensor,
    z2: torch.Tensor,
    mu: float = 1.0,
    gather_distributed: bool = False,
) -> torch.Tensor:
    """Spectral contrastive loss, the paper's Eq. 14.

    Its origin Hessian, expanded from this loss, is 2·A0/mu (the paper's Eq. 15 prints 2C; see
    `sslprobe.theory.origin_hessian` and the README's Theory section).

    Embeddings longer than √mu are rescaled to norm √mu, then

        (-2 · mean(z1 ⊙ z2) · D + mean(offdiag((z1 z2ᵀ)²)) · B / (B - 1)) / mu

    where the first mean runs over the B × D entries and the second over all B² entries of the
    matrix with its diagonal zeroed.

    Args:
        z1, z2: (B, D) embeddings of the two views, B >= 2.
        mu: norm bound squared, > 0.
        gather_distributed: compute the loss of the global batch across DDP ranks.
    """
    check_same_shape(z1, z2)
    z1, z2 = gather_views(z1, z2, gather_distributed)
    batch, dim = z1.shape
    z1, z2 = clip_norm(z1, math.sqrt(mu)), clip_norm(z2, math.sqrt(mu))
    attraction = -2.0 * (z1 * z2).mean() * dim
    off_diagonal = 1.0 - torch.eye(batch, device=z1.device, dtype=z1.dtype)
    repulsion = (((z1 @ z2.T) ** 2) * off_diagonal).mean() * batch / (batch - 1)
    return (attraction + repulsion) / mu


class SpectralContrastiveLoss(nn.Module):
    """Module form of `spectral_contrastive_loss`."""

    def __init__(self, mu: float = 1.0, gather_distributed: bool = False):
        super().__init__()
        check_positive("mu", mu)
        self.mu = mu
        self.gather_distributed = gather_distributed

    def forward(self, z1: torch.Tensor, z2: torch.Tensor) -> torch.Tensor:
        return spectral_contrastive_loss(z1, z2, self.mu, self.gather_distributed)
