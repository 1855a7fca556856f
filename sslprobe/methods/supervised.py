"""Supervised baseline: the same backbone and augmentation, trained with cross-entropy."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from sslprobe.methods.base import SSLMethod
from sslprobe.options import AtLeastTwoInt


class Supervised(SSLMethod):
    """Cross-entropy on both augmented views with a linear classifier on the backbone features.

    Args:
        num_classes: number of classes (10 for CIFAR-10).
        **kwargs: see `SSLMethod` (``projector`` defaults to null here).
    """

    architecture_keys = (*SSLMethod.architecture_keys, "num_classes")
    unavailable_probes = {
        probe: "the supervised baseline's objective is cross-entropy on labels, not a loss of two "
               "views' embeddings (z1, z2) through a projector"
        for probe in ("landscape", "theory")
    }

    def __init__(self, num_classes: AtLeastTwoInt = 10, projector=None, **kwargs):
        super().__init__(projector=projector, **kwargs)
        self.classifier = nn.Linear(self.backbone.feature_dim, num_classes)

    def shared_step(self, batch) -> torch.Tensor:
        view1, view2, labels = batch
        logits = self.classifier(self.features(torch.cat([view1, view2])))
        targets = torch.cat([labels, labels])
        if not self.training:
            self.log(f"{'val' if not self.trainer.testing else 'test'}/acc",
                     (logits.argmax(1) == targets).float().mean(), sync_dist=True)
        return F.cross_entropy(logits.float(), targets)  # float32 under bf16 autocast, like every loss
