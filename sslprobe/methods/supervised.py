"""Supervised baseline: the same backbone and augmentation, trained with cross-entropy."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn
from torchmetrics.classification import MulticlassAccuracy

from sslprobe.methods.base import SSLMethod
from sslprobe.options import AtLeastTwoInt


class Supervised(SSLMethod):
    """Cross-entropy on both augmented views with a linear classifier on the backbone features.

    Validation (and test) logs ``val/acc`` (``test/acc``): the top-1 of the classifier over both
    views of every evaluation image, accumulated by torchmetrics over the batches and, under
    DDP, over the processes (counts summed, then divided: the accuracy of all images, not a mean
    of per-process means).

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
        # Non-persistent states: checkpoints hold the same keys as before.
        self.val_accuracy = MulticlassAccuracy(num_classes, average="micro")
        self.test_accuracy = MulticlassAccuracy(num_classes, average="micro")

    def shared_step(self, batch) -> torch.Tensor:
        view1, view2, labels = batch
        logits = self.classifier(self.features(torch.cat([view1, view2])))
        targets = torch.cat([labels, labels])
        if not self.training:
            stage, accuracy = ("test", self.test_accuracy) if self.trainer.testing else ("val", self.val_accuracy)
            accuracy.update(logits.detach().argmax(1), targets)
            self.log(f"{stage}/acc", accuracy, on_step=False, on_epoch=True)
        return F.cross_entropy(logits.float(), targets)  # float32 under bf16 autocast, like every loss
