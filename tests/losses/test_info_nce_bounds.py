"""Where the Gaussian-kernel InfoNCE family is bounded below and where it is not (docs/theory/beta-infonce.md).

With the positive inside the log-sum (α > 0), log Σ ≥ log α − |f − f'|²/2T, so

    ℓ ≥ (1 − β)·|f − f'|²/2T + β·log α,

bounded below by β·log α for every β ≤ 1 (β = 0.5 included) and for any embedding size. The loss is
unbounded below along a direction only for β > 1 (α > 0) or for α = 0 (any β): these tests follow
such directions numerically and check the bound where it holds.
"""

from __future__ import annotations

import math

import pytest
import torch

from sslprobe.losses.info_nce import info_nce_loss
from sslprobe.methods import InfoNCE

SCALES = (1.0, 10.0, 100.0, 1000.0)


def spread(batch: int = 8, dim: int = 4, seed: int = 0) -> torch.Tensor:
    return torch.randn(batch, dim, generator=torch.Generator().manual_seed(seed), dtype=torch.float64)


@pytest.mark.parametrize("beta", [0.25, 0.5, 1.0])
@pytest.mark.parametrize("alpha", [0.5, 1.0])
def test_bounded_below_for_beta_at_most_one(alpha, beta):
    """Random embeddings at every scale, views near and far: never below β·log α."""
    for seed in range(20):
        z1 = spread(seed=seed)
        for noise in (0.0, 0.1, 1.0, 10.0):
            z2 = z1 + noise * spread(seed=100 + seed)
            for scale in SCALES:
                loss = info_nce_loss(scale * z1, scale * z2, temperature=1.0, alpha=alpha, beta=beta)
                assert loss.item() >= beta * math.log(alpha) - 1e-12 * scale**2 * 1e3  # round-off ~ eps·|z|²


def test_beta_half_with_identical_views_approaches_its_bound_from_above():
    """The quickstart's case (α = 1, β = 0.5, T = 1) has no minimum for identical views, but an
    infimum: the loss falls towards β·log α = 0 as the embeddings grow, never past it."""
    z = spread()
    scales = (0.25, 0.5, 1.0, 2.0, 4.0)
    losses = [info_nce_loss(s * z, s * z, temperature=1.0, alpha=1.0, beta=0.5).item() for s in scales]
    assert all(a > b for a, b in zip(losses, losses[1:]))
    assert 0.0 <= losses[-1] < 1e-6
    # Further out the log-sum is log(1 + e^(-s²·…)) = 0 to round-off (about eps·s²·|z|²), never below.
    for s in SCALES:
        assert info_nce_loss(s * z, s * z, temperature=1.0, alpha=1.0, beta=0.5).item() >= -1e-12 * s**2 * 100


def falling_direction(batch: int = 8, dim: int = 4) -> tuple[torch.Tensor, torch.Tensor]:
    """Positives at distance 1, every negative at distance >= 10: the positive dominates the log-sum."""
    anchors = torch.zeros(batch, dim, dtype=torch.float64)
    anchors[:, 0] = 10.0 * torch.arange(batch, dtype=torch.float64)
    partners = anchors.clone()
    partners[:, 1] = 1.0
    return anchors, partners


@pytest.mark.parametrize("beta", [1.5, 2.0])
def test_unbounded_below_for_beta_above_one(beta):
    """ℓ ≈ (1 − β)·s²·|f − f'|²/2T along the scale s of `falling_direction`: no bound."""
    z1, z2 = falling_direction()
    losses = [info_nce_loss(s * z1, s * z2, temperature=1.0, alpha=1.0, beta=beta).item() for s in SCALES]
    assert all(a > b for a, b in zip(losses, losses[1:]))
    for s, loss in zip(SCALES, losses):
        assert loss == pytest.approx((1 - beta) * s**2 / 2, rel=1e-2)


@pytest.mark.parametrize("beta", [0.5, 1.0])
def test_unbounded_below_without_the_positive_in_the_log_sum(beta):
    """α = 0: identical views and negatives pushed apart send the log-sum, and the loss, to −∞."""
    z = spread()
    losses = [info_nce_loss(s * z, s * z, temperature=1.0, alpha=0.0, beta=beta).item() for s in SCALES]
    assert all(a > b for a, b in zip(losses, losses[1:]))
    assert losses[-1] < -1e4


@pytest.mark.parametrize(("alpha", "beta"), [(1.0, 1.5), (0.0, 0.5)])
def test_method_refuses_an_unbounded_objective_without_normalisation(alpha, beta):
    with pytest.raises(ValueError, match="unbounded below"):
        InfoNCE(backbone="resnet12", backbone_kwargs={"widths": [4, 8, 8, 8]}, alpha=alpha, beta=beta)
    # On the sphere the same weights are bounded: allowed.
    InfoNCE(backbone="resnet12", backbone_kwargs={"widths": [4, 8, 8, 8]}, alpha=alpha, beta=beta, normalize=True)
