"""The supervised baseline's validation accuracy (torchmetrics) against the formula it replaced, on real data."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from helpers import TINY_MODEL  # tests/helpers.py
from lightning.pytorch import Trainer, seed_everything

from sslprobe.data import CIFAR10, CIFAR10DataModule
from sslprobe.data.cifar import balanced_subset
from sslprobe.methods import Supervised

SUPERVISED = {"backbone": TINY_MODEL["backbone"], "backbone_kwargs": TINY_MODEL["backbone_kwargs"]}


class PerBatchMeanSupervised(Supervised):
    """The validation accuracy as it was logged before: the mean of each batch, averaged by Lightning."""

    def shared_step(self, batch) -> torch.Tensor:
        view1, view2, labels = batch
        logits = self.classifier(self.features(torch.cat([view1, view2])))
        targets = torch.cat([labels, labels])
        if not self.training:
            self.log(f"{'val' if not self.trainer.testing else 'test'}/acc",
                     (logits.argmax(1) == targets).float().mean(), sync_dist=True)
        return F.cross_entropy(logits.float(), targets)


def validate(method, cifar, root, test: bool = False) -> float:
    # 400 test images (40 per class) in batches of 150: two full batches and one of 100 (unequal weights).
    trainer = Trainer(accelerator="cpu", logger=False, enable_progress_bar=False, enable_model_summary=False,
                      default_root_dir=root)
    datamodule = CIFAR10DataModule(eval_batch_size=150, num_workers=0, imbalance="none", subset_size=100,
                                   batch_size=50)
    datamodule.cifar = CIFAR10(cifar.train, balanced_subset(cifar.test, 400, seed=0), cifar.classes)
    results = (trainer.test if test else trainer.validate)(method, datamodule=datamodule, verbose=False)
    return results[0]["test/acc" if test else "val/acc"]


@pytest.mark.parametrize("test", [False, True])
def test_validation_accuracy_equals_the_per_batch_formula(cifar, test, tmp_path):
    seed_everything(3)
    method = Supervised(**SUPERVISED, num_classes=10)
    reference = PerBatchMeanSupervised(**SUPERVISED, num_classes=10)
    reference.load_state_dict(method.state_dict())
    got, expected = validate(method, cifar, tmp_path, test), validate(reference, cifar, tmp_path, test)
    assert 0 < got < 1
    assert got == pytest.approx(expected, abs=1e-6)  # float32 sums of 800 predictions


def test_the_metric_adds_nothing_to_checkpoints():
    method = Supervised(**SUPERVISED, num_classes=10)
    before = set(PerBatchMeanSupervised(**SUPERVISED, num_classes=10).state_dict())
    assert set(method.state_dict()) == before
    method.val_accuracy.update(torch.tensor([1, 2, 3]), torch.tensor([1, 2, 0]))
    assert float(method.val_accuracy.compute()) == pytest.approx(2 / 3)
