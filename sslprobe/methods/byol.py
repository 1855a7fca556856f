"""BYOL (Grill et al. 2020): online network + predictor regress a momentum target network."""

from __future__ import annotations

import copy
import math

import torch
from torch import nn

from sslprobe.losses.byol import BYOLLoss
from sslprobe.methods.base import SSLMethod
from sslprobe.nn.heads import mlp_projector


def target_momentum(step: int, total: int, base: float, final: float = 1.0) -> float:
    """τ at optimizer step ``step`` of ``total``: base → final by a cosine (the paper's Section 3.2)."""
    progress = min(1.0, step / max(1, total))
    return final - (final - base) * (math.cos(math.pi * progress) + 1) / 2


class BYOL(SSLMethod):
    """BYOL: the online prediction q = g(z) of one view regresses the target network's projection
    of the other, symmetrised; the target (a copy of backbone + projector) is not trained by the
    optimizer but follows ξ ← τ ξ + (1 − τ) θ after every step, τ rising from ``base_momentum`` to
    ``final_momentum`` by a cosine over training.

    The objective needs the target network's embeddings of the views, which are not a function of
    the online projector's outputs (z1, z2): the landscape and theory probes do not apply (the
    spectrum probe and linear evaluation do, on the online network).

    Args:
        predictor_hidden_dim: hidden width of the predictor (Linear-BN-ReLU-Linear).
        base_momentum: τ at the first step (the paper: 0.996; 0.99 is usual on CIFAR-10).
        final_momentum: τ at the last step.
        **kwargs: see `SSLMethod`.
    """

    architecture_keys = (*SSLMethod.architecture_keys, "predictor_hidden_dim")
    unavailable_probes = {
        probe: "BYOL's objective compares the online prediction with the target network's embedding of the "
               "other view, which is not a function of the online projector's outputs (z1, z2)"
        for probe in ("landscape", "theory")
    }

    def __init__(self, predictor_hidden_dim: int = 512, base_momentum: float = 0.99, final_momentum: float = 1.0,
                 **kwargs):
        super().__init__(**kwargs)
        if not 0 <= base_momentum <= final_momentum <= 1:
            raise ValueError(f"need 0 <= base_momentum <= final_momentum <= 1, got {base_momentum}, {final_momentum}")
        width = self.hparams.output_dim if self.hparams.projector else self.backbone.feature_dim
        self.predictor = mlp_projector(width, predictor_hidden_dim, width)
        self.target = nn.ModuleDict({"backbone": copy.deepcopy(self.backbone),
                                     "projector": copy.deepcopy(self.projector)})
        self.target.requires_grad_(False)
        self.criterion = BYOLLoss()

    def objective(self, z1: torch.Tensor, z2: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError("BYOL's objective needs the target network's embeddings of the views, "
                                  "not only the online ones (z1, z2); see shared_step")

    def target_embed(self, images: torch.Tensor) -> torch.Tensor:
        """The target network's projection (B, D) of normalised images, without gradient."""
        with torch.no_grad():
            return self.target["projector"](self.target["backbone"](self.prepare(images)))

    def shared_step(self, batch) -> torch.Tensor:
        view1, view2, _ = batch
        z1, z2 = self(view1), self(view2)
        return self.criterion(self.predictor(z1), self.predictor(z2), self.target_embed(view1),
                              self.target_embed(view2))

    def momentum(self) -> float:
        """τ of the update after the current optimizer step."""
        total = max(1, int(self.trainer.estimated_stepping_batches))
        return target_momentum(self.global_step, total, self.hparams.base_momentum, self.hparams.final_momentum)

    @torch.no_grad()
    def on_train_batch_end(self, outputs, batch, batch_idx: int) -> None:
        if outputs is None:  # a skipped step (on_nonfinite: skip_step) moved nothing
            return
        tau = self.momentum()
        online = [*self.backbone.parameters(), *self.projector.parameters()]
        for target, param in zip(self.target.parameters(), online, strict=True):
            target.mul_(tau).add_(param.detach(), alpha=1 - tau)
