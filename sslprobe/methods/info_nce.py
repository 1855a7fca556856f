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
        normalize: L2-normalise the embeddings first. Without it the loss is bounded below only for
            alpha > 0 and beta <= 1; other values are refused (docs/theory/beta-infonce.md).
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
        if not normalize and (alpha == 0 or beta > 1):
            # log Σ >= log α − |f − f'|²/2T bounds the loss below by β·log α only for α > 0 and β <= 1.
            raise ValueError(
                f"InfoNCE: alpha={alpha}, beta={beta} with normalize: false is unbounded below (embeddings "
                "that grow without limit lower it for ever; docs/theory/beta-infonce.md): use alpha > 0 and "
                "beta <= 1, or normalize: true")
        self.criterion = InfoNCELoss(temperature, alpha, beta, normalize)

    def divergence_hint(self) -> str | None:
        if self.criterion.normalize:
            return None
        return ("with normalize: false the Gaussian-kernel loss and its curvature grow with the squared size "
                "of the embeddings, so a learning rate that suits the start can overshoot once they grow; "
                "lower model.init_args.lr or set normalize: true (docs/theory/beta-infonce.md)")
