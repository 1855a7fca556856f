"""BYOL (Grill et al. 2020): online network + predictor regress a momentum target network."""

from __future__ import annotations

import torch

from sslprobe.losses.byol import BYOLLoss
from sslprobe.methods.base import SSLMethod
from sslprobe.nn.heads import mlp_projector
from sslprobe.nn.target import MomentumTarget
from sslprobe.options import ClosedUnitInterval, PositiveInt


class BYOL(SSLMethod):
    """BYOL: the prediction q = g(z) of one view regresses the target network's projection of the
    other, symmetrised. The target (backbone + projector copies) follows ξ ← τ ξ + (1 − τ) θ after
    every optimizer step, τ rising by a cosine from ``base_momentum`` to ``final_momentum``.

    Its objective needs the target's embeddings, not a function of the online (z1, z2) alone: the
    landscape and theory probes do not apply; spectrum and linear evaluation use the online network.

    Args:
        predictor_hidden_dim: hidden width of the predictor (Linear-BN-ReLU-Linear).
        base_momentum, final_momentum: τ at the first and the last step (the paper: 0.996 → 1).
        **kwargs: see `SSLMethod`.
    """

    architecture_keys = (*SSLMethod.architecture_keys, "predictor_hidden_dim")
    unavailable_probes = dict.fromkeys(("landscape", "theory"), "BYOL's objective compares the online prediction "
                                       "with the target network's embedding, not a function of (z1, z2)")

    def __init__(self, predictor_hidden_dim: PositiveInt = 512, base_momentum: ClosedUnitInterval = 0.99,
                 final_momentum: ClosedUnitInterval = 1.0, **kwargs):
        super().__init__(**kwargs)
        self.predictor = mlp_projector(self.embedding_dim, predictor_hidden_dim, self.embedding_dim)
        self.target = MomentumTarget(self.backbone, self.projector, base_momentum=base_momentum,
                                     final_momentum=final_momentum)
        self.criterion = BYOLLoss()

    def objective(self, z1: torch.Tensor, z2: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError("BYOL's objective needs the target network's embeddings; see shared_step")

    def shared_step(self, batch) -> torch.Tensor:
        view1, view2, _ = batch
        z1, z2 = self(view1), self(view2)
        t1, t2 = self.target(self.prepare(view1)), self.target(self.prepare(view2))
        return self.criterion(self.predictor(z1), self.predictor(z2), t1, t2)

    def training_step(self, batch, batch_idx: int) -> torch.Tensor | None:
        loss = super().training_step(batch, batch_idx)
        self._stepped = loss is not None  # None: a skipped step (on_nonfinite: skip_step) moves nothing
        return loss

    def optimizer_step(self, epoch: int, batch_idx: int, optimizer, optimizer_closure=None) -> None:
        # The target follows inside the optimizer step, not in on_train_batch_end: Lightning runs the
        # callbacks' on_train_batch_end (checkpoints, the exit on a signal) before the module's, so a
        # checkpoint written there would miss the step's target update and a resume would not be exact.
        super().optimizer_step(epoch, batch_idx, optimizer, optimizer_closure)
        if getattr(self, "_stepped", False):
            total = int(self.trainer.estimated_stepping_batches)
            # global_step counts this step once the hook returns: step k is number k + 1, as before
            self.target.follow(self.global_step + 1, total, self.backbone, self.projector)
