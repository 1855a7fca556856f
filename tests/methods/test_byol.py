"""BYOL: its loss against the paper's formula; the target network follows the EMA, never the optimizer."""

from __future__ import annotations

import math

import pytest
import torch
from helpers import TINY_MODEL, ParameterRecorder, fit_on_cifar  # tests/helpers.py

from sslprobe.losses.byol import byol_loss
from sslprobe.methods import BYOL


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
    model = BYOL(**TINY_MODEL)
    assert all("target network" in model.probe_unavailable(probe) for probe in ("landscape", "theory"))
    assert model.probe_unavailable("spectrum") is None and model.probe_unavailable("linear") is None
    with pytest.raises(NotImplementedError, match="target network"):
        model.loss_fn(torch.randn(4, 8), torch.randn(4, 8))


def online_and_target(parameters: dict) -> tuple[list, list]:
    """θ (backbone, projector) and ξ (their copies in the target), in the same order."""
    return ([p for name, p in parameters.items() if name.startswith(("backbone.", "projector."))],
            [p for name, p in parameters.items() if name.startswith("target.")])


@pytest.mark.slow
def test_target_follows_the_ema_on_cifar10(cifar_root, tmp_path):
    torch.manual_seed(0)
    model, recorder = BYOL(**TINY_MODEL, base_momentum=0.9, lr=0.05), ParameterRecorder()
    trainer = fit_on_cifar(model, cifar_root, tmp_path, steps=4, batch_size=16, callbacks=[recorder])
    handed = {id(p) for group in trainer.optimizers[0].param_groups for p in group["params"]}
    assert not handed & {id(p) for p in model.target.parameters()}  # the optimizer never sees the target
    assert all(not p.requires_grad for p in model.target.parameters())
    # (θ, ξ) at the start and after each optimizer step k, whose target update runs inside the step: a
    # checkpoint written by a callback after step k holds ξ_k
    (start_online, start), *steps = [online_and_target(s) for s in recorder.snapshots]
    assert len(steps) == 4 and all(torch.equal(a, b) for a, b in zip(start, start_online, strict=True))  # ξ_0 = θ_0
    for k, ((theta, after), (_, before)) in enumerate(zip(steps, [(None, start), *steps]), start=1):
        # ξ_k = τ_k ξ_{k-1} + (1 − τ_k) θ_k, τ_k = 1 − (1 − τ_base)(cos(πk/K) + 1)/2 (the paper's schedule)
        tau = 1 - (1 - 0.9) * (math.cos(math.pi * k / 4) + 1) / 2
        for xi, previous, online in zip(after, before, theta, strict=True):
            torch.testing.assert_close(xi, tau * previous + (1 - tau) * online, rtol=1e-6, atol=1e-7, msg=f"step {k}")
    assert not all(torch.equal(a, b) for a, b in zip(start, steps[-1][1]))  # it moved
