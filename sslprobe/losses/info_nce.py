"""The paper's InfoNCE family with a Gaussian kernel: Eq. 1, weighted (Eq. 7), β-InfoNCE (Sec. 4.2)."""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from sslprobe.losses.distributed import gather_views
from sslprobe.losses.precision import full_precision
from sslprobe.losses.validation import check_non_negative, check_positive, check_same_shape


def squared_distances(z: torch.Tensor) -> torch.Tensor:
    """Pairwise squared Euclidean distances of the rows of ``z`` (N, D) -> (N, N).

    ``|z_i|² + |z_j|² − 2 z_i·z_j``, a polynomial in ``z`` with no clamp, so that autograd's
    derivatives are right everywhere, at ``z = 0`` included (the origin Hessian, Eq. 3). Round-off
    can make an entry negative by about float eps × |z|²; the kernel exp(−d/2T) only moves by as
    much.
    """
    norms = (z * z).sum(dim=1)
    return norms[:, None] + norms[None, :] - 2.0 * (z @ z.T)


@full_precision
def info_nce_loss(
    z1: torch.Tensor,
    z2: torch.Tensor,
    temperature: float = 1.0,
    alpha: float = 1.0,
    beta: float = 1.0,
    normalize: bool = False,
    gather_distributed: bool = False,
) -> torch.Tensor:
    """InfoNCE with the Gaussian kernel ``k(f, g) = exp(-|f - g|² / (2·temperature))``.

    For each of the 2B anchors f_i with positive f_i' (the other view) and the 2B - 2 other
    embeddings as negatives χ:

        ℓ_i = |f_i - f_i'|² / (2T) + β · log( Σ_χ k(f_i, χ) + α · k(f_i, f_i') )

    which is Eq. 1 for α = β = 1 (temperature 1), the weighted InfoNCE of Eq. 7 for general α
    (α = 1 keeps the positive inside the log-sum, α = 0 drops it: the "decoupled" form, which the
    paper calls NT-xent), and β-InfoNCE (Section 4.2) for general β. With ``normalize=True``,
    α = β = 1 this equals `nt_xent_loss` at the same temperature: on the unit sphere
    |f - g|² = 2 - 2 cos(f, g), so the kernels differ by the factor exp(-1/T), which cancels.

    Args:
        z1, z2: (B, D) embeddings of the two views.
        temperature: kernel width T > 0.
        alpha: weight of the positive inside the log-sum, >= 0.
        beta: weight of the log-sum term, > 0.
        normalize: L2-normalise embeddings first.
        gather_distributed: compute the loss of the global batch across DDP ranks.

    Returns:
        Scalar mean of ℓ_i over the 2B anchors.
    """
    check_same_shape(z1, z2)
    z1, z2 = gather_views(z1, z2, gather_distributed)
    batch = z1.shape[0]
    z = torch.cat([z1, z2])  # (2B, D)
    if normalize:
        z = F.normalize(z, dim=1)
    log_kernel = -squared_distances(z) / (2.0 * temperature)  # (2B, 2B)
    anchors = torch.arange(2 * batch, device=z.device)
    partners = anchors.roll(batch)
    positive = log_kernel[anchors, partners]  # (2B,)
    not_negative = torch.eye(2 * batch, dtype=torch.bool, device=z.device)
    not_negative[anchors, partners] = True
    negatives = torch.logsumexp(log_kernel.masked_fill(not_negative, float("-inf")), dim=1)
    if alpha > 0:
        log_sum = torch.logaddexp(negatives, positive + math.log(alpha))
    else:
        log_sum = negatives
    return (-positive + beta * log_sum).mean()


class InfoNCELoss(nn.Module):
    """Module form of `info_nce_loss`; validates the hyperparameters once."""

    def __init__(
        self,
        temperature: float = 1.0,
        alpha: float = 1.0,
        beta: float = 1.0,
        normalize: bool = False,
        gather_distributed: bool = False,
    ):
        super().__init__()
        check_positive("temperature", temperature)
        check_non_negative("alpha", alpha)
        check_positive("beta", beta)
        self.temperature, self.alpha, self.beta = temperature, alpha, beta
        self.normalize = normalize
        self.gather_distributed = gather_distributed

    def forward(self, z1: torch.Tensor, z2: torch.Tensor) -> torch.Tensor:
        return info_nce_loss(
            z1, z2, self.temperature, self.alpha, self.beta, self.normalize, self.gather_distributed
        )
