"""VICReg (Bardes et al. 2022)."""

from sslprobe.losses import VICRegLoss
from sslprobe.methods.base import SSLMethod
from sslprobe.options import NonNegativeFloat


class VICReg(SSLMethod):
    """VICReg with `vicreg_loss`.

    Args:
        sim_coeff, std_coeff, cov_coeff: weights of invariance, variance and covariance terms (>= 0).
        **kwargs: see `SSLMethod`.
    """

    def __init__(self, sim_coeff: NonNegativeFloat = 25.0, std_coeff: NonNegativeFloat = 25.0,
                 cov_coeff: NonNegativeFloat = 1.0, **kwargs):
        super().__init__(**kwargs)
        self.criterion = VICRegLoss(sim_coeff, std_coeff, cov_coeff)
