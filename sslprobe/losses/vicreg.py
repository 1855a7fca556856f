"""VICReg (Bardes et al. 2022): variance, invariance, covariance regularisation."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from sslprobe.losses.barlow_twins import off_diagonal
from sslprobe.losses.distributed import gather_views
from sslprobe.losses.precision import full_precision
from sslprobe.losses.validation import check_non_negative, check_same_shape


def _variance_term(z: torch.Tensor, eps: float) -> torch.Tensor:
    std = torch.sqrt(z.var(dim=0) + eps)
    return F.relu(1.0 - std).mean()


def _covariance_term(z: torch.Tensor) -> torch.Tensor:
    batch, dim = z.shape
    centred = z - z.mean(dim=0)
    covariance = centred.T @ centred / (batch - 1)  # (D, D)
    return off_diagonal(covariance).pow(2).sum() / dim


@full_precision
def vicreg_loss(
    z1: torch.Tensor,
    z2: torch.Tensor,
    sim_coeff: float = 25.0,
    std_coeff: float = 25.0,
    cov_coeff: float = 1.0,
    eps: float = 1e-4,
    gather_distributed: bool = False,
) -> torch.Tensor:
    """``sim_coeff · MSE(z1, z2) + std_coeff · hinge + cov_coeff · cov`` as Bardes et al. define it.

    hinge: mean over dimensions of relu(1 - sqrt(var + eps)) (unbiased variance), averaged over
    the two branches; cov: squared off-diagonal covariance entries, summed and divided by D, for
    each branch (the two are added).

    Args:
        z1, z2: (B, D) embeddings of the two views, B >= 2.
        gather_distributed: compute the loss of the global batch across DDP ranks.
    """
    check_same_shape(z1, z2)
    z1, z2 = gather_views(z1, z2, gather_distributed)
    invariance = F.mse_loss(z1, z2)
    variance = (_variance_term(z1, eps) + _variance_term(z2, eps)) / 2.0
    covariance = _covariance_term(z1) + _covariance_term(z2)
    return sim_coeff * invariance + std_coeff * variance + cov_coeff * covariance


class VICRegLoss(nn.Module):
    """Module form of `vicreg_loss`; coefficients must be non-negative."""

    def __init__(
        self,
        sim_coeff: float = 25.0,
        std_coeff: float = 25.0,
        cov_coeff: float = 1.0,
        eps: float = 1e-4,
        gather_distributed: bool = False,
    ):
        super().__init__()
        for name, value in (("sim_coeff", sim_coeff), ("std_coeff", std_coeff), ("cov_coeff", cov_coeff)):
            check_non_negative(name, value)
        self.sim_coeff, self.std_coeff, self.cov_coeff, self.eps = sim_coeff, std_coeff, cov_coeff, eps
        self.gather_distributed = gather_distributed

    def forward(self, z1: torch.Tensor, z2: torch.Tensor) -> torch.Tensor:
        return vicreg_loss(
            z1, z2, self.sim_coeff, self.std_coeff, self.cov_coeff, self.eps, self.gather_distributed
        )
