"""The paper's Gaussian-kernel InfoNCE family: vanilla (Eq. 1), weighted (Eq. 7), β-InfoNCE."""

from sslprobe.losses import InfoNCELoss
from sslprobe.methods.base import SSLMethod
from sslprobe.options import NonNegativeFloat, PositiveFloat


class InfoNCE(SSLMethod):
    """Training with `info_nce_loss`.

    Args:
        temperature: Gaussian kernel width (> 0).
        alpha: weight of the positive inside the log-sum (1 keeps it, 0 drops it), >= 0.
        beta: weight of the log-sum term (β-InfoNCE; < 1 invites collapse, > 1 resists it), > 0.
        normalize: L2-normalise the embeddings first.
        **kwargs: see `SSLMethod`.
    """

    def __init__(
        self,
        temperature: PositiveFloat = 1.0,
        alpha: NonNegativeFloat = 1.0,
        beta: PositiveFloat = 1.0,
        normalize: bool = False,
        **kwargs,
    ):
        super().__init__(**kwargs)
        self.criterion = InfoNCELoss(temperature, alpha, beta, normalize)
