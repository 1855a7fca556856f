"""SimCLR's normalised-temperature cross-entropy (NT-Xent)."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from sslprobe.losses.distributed import gather_views
from sslprobe.losses.precision import full_precision
from sslprobe.losses.validation import check_positive, check_same_shape


@full_precision
def nt_xent_loss(
    z1: torch.Tensor,
    z2: torch.Tensor,
    temperature: float = 0.5,
    gather_distributed: bool = False,
) -> torch.Tensor:
    """SimCLR's cross-entropy on cosine similarities (Chen et al. 2020).

    Each of the 2B embeddings is an anchor; its logits are the cosine similarities / temperature
    to the 2B - 1 other embeddings, its target the other view of the same image (the positive is
    kept in the denominator: the paper's Eq. 7 with alpha = 1 on normalised embeddings).

    Args:
        z1, z2: (B, D) embeddings of the two views; row i of each comes from the same image.
        temperature: softmax temperature, > 0.
        gather_distributed: compute the loss of the global batch across DDP ranks.

    Returns:
        Scalar mean over all 2B anchors.
    """
    check_same_shape(z1, z2)
    z1, z2 = gather_views(z1, z2, gather_distributed)
    batch = z1.shape[0]
    z = F.normalize(torch.cat([z1, z2]), dim=1)  # (2B, D)
    logits = z @ z.T / temperature  # (2B, 2B)
    self_mask = torch.eye(2 * batch, dtype=torch.bool, device=z.device)
    logits = logits.masked_fill(self_mask, float("-inf"))
    positives = torch.arange(2 * batch, device=z.device).roll(batch)
    return F.cross_entropy(logits, positives)


class NTXentLoss(nn.Module):
    """Module form of `nt_xent_loss`."""

    def __init__(self, temperature: float = 0.5, gather_distributed: bool = False):
        super().__init__()
        check_positive("temperature", temperature)
        self.temperature = temperature
        self.gather_distributed = gather_distributed

    def forward(self, z1: torch.Tensor, z2: torch.Tensor) -> torch.Tensor:
        return nt_xent_loss(z1, z2, self.temperature, self.gather_distributed)
