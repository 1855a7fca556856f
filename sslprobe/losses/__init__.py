"""Self-supervised losses: pure functions on two (B, D) batches, with thin nn.Module wrappers.

Every loss computes in float32 or wider, also under bf16/fp16 autocast (`precision.full_precision`).
"""

from sslprobe.losses.barlow_twins import BarlowTwinsLoss, barlow_twins_loss
from sslprobe.losses.distributed import DistributedUnavailableError, gather_with_grad
from sslprobe.losses.info_nce import InfoNCELoss, info_nce_loss
from sslprobe.losses.nt_xent import NTXentLoss, nt_xent_loss
from sslprobe.losses.spectral_contrastive import SpectralContrastiveLoss, spectral_contrastive_loss
from sslprobe.losses.vicreg import VICRegLoss, vicreg_loss

__all__ = [
    "BarlowTwinsLoss",
    "DistributedUnavailableError",
    "InfoNCELoss",
    "NTXentLoss",
    "SpectralContrastiveLoss",
    "VICRegLoss",
    "barlow_twins_loss",
    "gather_with_grad",
    "info_nce_loss",
    "nt_xent_loss",
    "spectral_contrastive_loss",
    "vicreg_loss",
]
