"""Spectral contrastive learning (HaoChen et al. 2021)."""

from sslprobe.losses import SpectralContrastiveLoss
from sslprobe.methods.base import SSLMethod
from sslprobe.options import PositiveFloat


class SpectralContrastive(SSLMethod):
    """SCL with `spectral_contrastive_loss`; its derived origin Hessian is 2·A0/mu (the paper prints 2C).

    Args:
        mu: embeddings are clipped to norm √mu (> 0).
        **kwargs: see `SSLMethod`.
    """

    def __init__(self, mu: PositiveFloat = 1.0, **kwargs):
        super().__init__(**kwargs)
        self.criterion = SpectralContrastiveLoss(mu)
