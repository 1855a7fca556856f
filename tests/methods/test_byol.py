"""BYOL: its loss against the paper's formula; the target network follows the EMA, never the optimizer."""

from __future__ import annotations

import math

import pytest
import torch
from lightning.pytorch import Callback, Trainer

from sslprobe.data import CIFAR10DataModule
from sslprobe.losses.byol import byol_loss
from sslprobe.methods import BYOL

TINY = {"backbone": "resnet12", "backbone_kwargs": {"widths": [4, 8, 8, 8]}, "hidden_dim": 16, "output_dim": 8}


def test_loss_is_the_papers():
    """Grill et al. (2020), Eq. 2: ‖q̄ − z̄'‖² per pair, plus the mirrored pair (L + L̃), batch mean."""
    generator = torch.Generator().manual_seed(0)
    q1, q2, t1, t2 = (torch.randn(5, 4, generator=generator, dtype=torch.float64, requires_grad=True)
                      for _ in range(4))
    per_sample = [((q1[i] / q1[i].norm() - t2[i] / t2[i].norm()) ** 2).sum()
                  + ((q2[i] / q2[i].norm() - t1[i] / t1[i].norm()) ** 2).sum() for i in range(5)]
    loss = byol_loss(q1, q2, t1, t2)
    torch.testing.assert_close(loss, torch.stack(per_sample).mean().detach())
    loss.backward()
    assert t1.grad is None and t2.grad is None and q1.grad is not None
    torch.testing.assert_close(byol_loss(t2, t1, t1, t2), torch.tensor(0.0, dtype=torch.float64))


def test_probes_that_need_a_loss_of_z1_z2_say_why_not():
    model = BYOL(**TINY)
    for probe in ("landscape", "theory"):
        assert "target network" in model.probe_unavailable(probe)
    assert model.probe_unavailable("spectrum") is None and model.probe_unavailable("linear") is None
    with pytest.raises(NotImplementedError, match="target network"):
        model.loss_fn(torch.randn(4, 8), torch.randn(4, 8))


class Recorder(Callback):
    """Online and target parameters after each optimizer step, before the target's update."""

    def __init__(self):
        self.online, self.target = [], []

    def on_train_batch_end(self, trainer, module, outputs, batch, batch_idx):
        self.online.append([p.detach().clone() for m in (module.backbone, module.projector) for p in m.parameters()])
        self.target.append([p.detach().clone() for p in module.target.parameters()])


@pytest.mark.slow
def test_target_follows_the_ema_on_cifar10(cifar_root, tmp_path):
    torch.manual_seed(0)
    model = BYOL(**TINY, base_momentum=0.9, lr=0.05)
    start = [p.detach().clone() for p in model.target.parameters()]
    online0 = [p.detach().clone() for m in (model.backbone, model.projector) for p in m.parameters()]
    assert all(torch.equal(a, b) for a, b in zip(start, online0))  # the target starts as a copy
    datamodule = CIFAR10DataModule(root=str(cifar_root), batch_size=16, num_workers=0, imbalance="none",
                                   subset_size=100)
    recorder = Recorder()
    trainer = Trainer(accelerator="cpu", max_epochs=1, limit_train_batches=4, limit_val_batches=0, logger=False,
                      enable_checkpointing=False, enable_progress_bar=False, enable_model_summary=False,
                      callbacks=[recorder], default_root_dir=tmp_path)
    trainer.fit(model, datamodule)
    optimizer = trainer.optimizers[0]
    handed = {id(p) for group in optimizer.param_groups for p in group["params"]}
    assert not handed & {id(p) for p in model.target.parameters()}  # the optimizer never sees the target
    assert all(not p.requires_grad for p in model.target.parameters())
    # ξ_k = τ_k ξ_{k-1} + (1 − τ_k) θ_k, τ_k = 1 − (1 − τ_base)(cos(πk/K) + 1)/2 (the paper's schedule).
    total = 4
    target = start
    for k in range(1, total + 1):
        for recorded, expected in zip(recorder.target[k - 1], target):  # before the k-th update
            torch.testing.assert_close(recorded, expected, rtol=1e-6, atol=1e-7, msg=f"step {k}")
        tau = 1 - (1 - 0.9) * (math.cos(math.pi * k / total) + 1) / 2
        target = [tau * xi + (1 - tau) * theta for xi, theta in zip(target, recorder.online[k - 1])]
    for expected, actual in zip(target, model.target.parameters()):
        torch.testing.assert_close(actual, expected, rtol=1e-6, atol=1e-7)
    assert not all(torch.equal(a, b) for a, b in zip(start, model.target.parameters()))  # it moved
