"""Barlow Twins (Zbontar et al. 2021)."""

from sslprobe.losses import BarlowTwinsLoss
from sslprobe.methods.base import SSLMethod
from sslprobe.options import NonNegativeFloat


class BarlowTwins(SSLMethod):
    """Barlow Twins with `barlow_twins_loss`.

    Args:
        lambd: weight of the off-diagonal (redundancy) term (>= 0).
        **kwargs: see `SSLMethod`.
    """

    def __init__(self, lambd: NonNegativeFloat = 5e-3, **kwargs):
        super().__init__(**kwargs)
        self.criterion = BarlowTwinsLoss(lambd)
