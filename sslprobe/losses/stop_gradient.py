"""The per-sample cosine of a prediction to a stop-gradient target: the term SimSiam and BYOL share."""

from __future__ import annotations

import torch
import torch.nn.functional as F

from sslprobe.losses.precision import full_precision
from sslprobe.losses.validation import check_same_shape


@full_precision
def cosine_to_target(p: torch.Tensor, z: torch.Tensor) -> torch.Tensor:
    """(B,) cos(p_i, stopgrad(z_i)) of predictions p and targets z, both (B, D); no gradient reaches z."""
    check_same_shape(p, z)
    return (F.normalize(p, dim=1) * F.normalize(z.detach(), dim=1)).sum(dim=1)
