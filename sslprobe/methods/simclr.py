"""SimCLR (Chen et al. 2020): NT-Xent on two views."""

from sslprobe.losses import NTXentLoss
from sslprobe.methods.base import SSLMethod
from sslprobe.options import PositiveFloat


class SimCLR(SSLMethod):
    """SimCLR with `nt_xent_loss`.

    Args:
        temperature: softmax temperature of NT-Xent (> 0).
        **kwargs: see `SSLMethod`.
    """

    def __init__(self, temperature: PositiveFloat = 0.5, **kwargs):
        super().__init__(**kwargs)
        self.criterion = NTXentLoss(temperature)
