"""Barlow Twins (Zbontar et al. 2021)."""

from __future__ import annotations

import torch
from torch import nn

from sslprobe.losses.distributed import gather_views
from sslprobe.losses.precision import full_precision
from sslprobe.losses.validation import check_non_negative, check_same_shape


def standardize(z: torch.Tensor, eps: float = 1e-5) -> torch.Tensor:
    """Per-dimension batch standardisation of ``z`` (B, D), as BatchNorm1d without affine."""
    mean = z.mean(dim=0)
    var = z.var(dim=0, unbiased=False)
    return (z - mean) / torch.sqrt(var + eps)


def off_diagonal(matrix: torch.Tensor) -> torch.Tensor:
    """The off-diagonal entries of a square matrix, flattened."""
    n = matrix.shape[0]
    return matrix.flatten()[:-1].view(n - 1, n + 1)[:, 1:].flatten()


@full_precision
def barlow_twins_loss(
    z1: torch.Tensor,
    z2: torch.Tensor,
    lambd: float = 5e-3,
    gather_distributed: bool = False,
    eps: float = 1e-5,
) -> torch.Tensor:
    """Σ_i (1 - c_ii)² + λ Σ_{i≠j} c_ij², with c the (D, D) cross-correlation of the views.

    Each dimension is standardised over the (global) batch first (biased variance), and
    ``c = z1ᵀ z2 / B``. Where the batch variance is much larger than ``eps`` the
    standardisation makes the loss invariant to W -> DW for diagonal D > 0, which no expansion in
    W describes; only in the tiny region var << eps around W = 0 does it expand, with
    B = 2·A0/eps (the paper's Section 3.2 treats the unstandardised cross-correlation; see
    `sslprobe.theory.origin_hessian`).

    Args:
        z1, z2: (B, D) embeddings of the two views.
        lambd: weight of the redundancy-reduction term, >= 0.
        gather_distributed: compute the loss of the global batch across DDP ranks.
        eps: added to the variance before the square root.
    """
    check_same_shape(z1, z2)
    z1, z2 = gather_views(z1, z2, gather_distributed)
    batch = z1.shape[0]
    correlation = standardize(z1, eps).T @ standardize(z2, eps) / batch  # (D, D)
    on_diag = (1.0 - torch.diagonal(correlation)).pow(2).sum()
    return on_diag + lambd * off_diagonal(correlation).pow(2).sum()


class BarlowTwinsLoss(nn.Module):
    """Module form of `barlow_twins_loss`."""

    def __init__(self, lambd: float = 5e-3, gather_distributed: bool = False):
        super().__init__()
        check_non_negative("lambd", lambd)
        self.lambd = lambd
        self.gather_distributed = gather_distributed

    def forward(self, z1: torch.Tensor, z2: torch.Tensor) -> torch.Tensor:
        return barlow_twins_loss(z1, z2, self.lambd, self.gather_distributed)
