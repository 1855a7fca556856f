"""Every loss computes in float32 under bfloat16 autocast, on the CPU.

A bf16-mixed network hands the loss bfloat16 embeddings. The reference is the float64 loss of the
*same* (bf16-rounded) embeddings: what remains is only the loss's own arithmetic, which must be
float32-accurate. Tolerances: 1e-5 relative on the value (measured: <= 3.3e-7; float32 keeps ~7
digits); on the gradient, which reaches the bf16 embeddings as bf16, one bf16 rounding (2^-8
relative, measured 3.9e-3) per entry. The unwrapped loss (`__wrapped__`), left to autocast, misses
NT-Xent at T = 0.1 by 1.5e-4 to 1.2e-3 (measured over seeds): the value check would catch it.
"""

from __future__ import annotations

import pytest
import torch

from sslprobe.losses import (
    barlow_twins_loss,
    info_nce_loss,
    nt_xent_loss,
    spectral_contrastive_loss,
    vicreg_loss,
)

BATCH, DIM = 256, 128
LOSSES = {
    "nt_xent_T0.1": lambda z1, z2: nt_xent_loss(z1, z2, temperature=0.1),
    "info_nce": lambda z1, z2: info_nce_loss(z1, z2, temperature=1.0),
    "info_nce_alpha0.5_beta0.7_normalized": lambda z1, z2: info_nce_loss(
        z1, z2, temperature=0.2, alpha=0.5, beta=0.7, normalize=True),
    "spectral_contrastive": lambda z1, z2: spectral_contrastive_loss(z1, z2, mu=1.0),
    "barlow_twins": lambda z1, z2: barlow_twins_loss(z1, z2),
    "vicreg": lambda z1, z2: vicreg_loss(z1, z2),
}


def bf16_embeddings(seed: int, scale: float) -> tuple[torch.Tensor, torch.Tensor]:
    """Two correlated (B, D) views as a bf16 projector would emit them."""
    generator = torch.Generator().manual_seed(seed)
    z1 = torch.randn(BATCH, DIM, generator=generator)
    z2 = 0.8 * z1 + 0.6 * torch.randn(BATCH, DIM, generator=generator)
    return (scale * z1).bfloat16(), (scale * z2).bfloat16()


def float32_accurate(value: torch.Tensor, reference: torch.Tensor) -> bool:
    return abs(value.item() - reference.item()) <= 1e-5 * abs(reference.item()) + 1e-7


def value_and_gradient(loss, z1: torch.Tensor, z2: torch.Tensor, autocast: bool):
    z1, z2 = z1.clone().requires_grad_(True), z2.clone().requires_grad_(True)
    with torch.autocast("cpu", dtype=torch.bfloat16, enabled=autocast):
        value = loss(z1, z2)
    value.backward()
    return value, z1.grad


@pytest.mark.parametrize("name", list(LOSSES))
def test_loss_under_bf16_autocast_is_float32_accurate(name):
    loss = LOSSES[name]
    # SCL's norm bound sqrt(mu) = 1 clips long rows: a scale of 0.05 keeps most rows below it
    # embeddings of norm ~1 (SCL's norm bound sqrt(mu) = 1 clips longer rows; the Gaussian kernel
    # of InfoNCE at T = 1 saturates for distances much above 1)
    z1, z2 = bf16_embeddings(0, 0.1)
    value, gradient = value_and_gradient(loss, z1, z2, autocast=True)
    reference, reference_gradient = value_and_gradient(loss, z1.double(), z2.double(), autocast=False)
    assert value.dtype == torch.float32  # computed (and returned) in float32, not bfloat16
    assert float32_accurate(value, reference), (value.item(), reference.item())
    error = (gradient.double() - reference_gradient).abs()
    assert (error <= 2**-8 * reference_gradient.abs() + 1e-6 * reference_gradient.abs().max()).all()


def test_nt_xent_left_to_autocast_would_fail():
    """Negative control: the same check on the unwrapped loss fails (logits of ±10 rounded in bf16)."""
    z1, z2 = bf16_embeddings(0, 0.1)
    plain = nt_xent_loss.__wrapped__
    with torch.autocast("cpu", dtype=torch.bfloat16):
        naive = plain(z1, z2, temperature=0.1)
    reference = plain(z1.double(), z2.double(), temperature=0.1)
    assert not float32_accurate(naive, reference)


def test_float64_inputs_stay_float64():
    z1, z2 = bf16_embeddings(1, 0.1)
    assert nt_xent_loss(z1.double(), z2.double()).dtype == torch.float64
