"""SimSiam (Chen & He 2021): a predictor and a stop-gradient, no negatives and no target network."""

from __future__ import annotations

import torch

from sslprobe.losses.simsiam import SimSiamLoss
from sslprobe.methods.base import SSLMethod
from sslprobe.nn.heads import mlp_projector
from sslprobe.options import PositiveInt


class SimSiam(SSLMethod):
    """SimSiam: ``p = h(z)`` with the predictor ``h`` (Linear-BN-ReLU-Linear), loss
    D(p1, z2)/2 + D(p2, z1)/2 with D the negative cosine to a stop-gradient target.

    The objective is a function of the two views' projector outputs (z1, z2) — the predictor and
    the stop-gradient sit inside it — so the landscape probe evaluates SimSiam's own loss when it
    rescales the projector's last layer (the stop-gradient changes the gradient, not the value).
    The linear theory has no origin Hessian for it, so the theory probe does not apply.

    Args:
        predictor_hidden_dim: hidden width of the predictor (the paper's bottleneck is a quarter
            of the embedding width; here the default equals the projector's ``hidden_dim``).
        **kwargs: see `SSLMethod`.
    """

    architecture_keys = (*SSLMethod.architecture_keys, "predictor_hidden_dim")
    unavailable_probes = {"theory": "the linear theory gives no origin Hessian for SimSiam's predictor and "
                                    "stop-gradient objective"}

    def __init__(self, predictor_hidden_dim: PositiveInt = 512, **kwargs):
        super().__init__(**kwargs)
        self.predictor = mlp_projector(self.embedding_dim, predictor_hidden_dim, self.embedding_dim)
        self.criterion = SimSiamLoss()

    def objective(self, z1: torch.Tensor, z2: torch.Tensor) -> torch.Tensor:
        return self.criterion(self.predictor(z1), self.predictor(z2), z1, z2)
