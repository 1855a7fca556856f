"""The loss functions against closed forms, invariances and independent slow references.

Every expected value here comes from a derivation written out in the test or from a reference
implementation written differently (plain Python loops over anchors / entries), never from a
number printed by the code under test.
"""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn

from sslprobe.losses import (
    BarlowTwinsLoss,
    DistributedUnavailableError,
    InfoNCELoss,
    NTXentLoss,
    SpectralContrastiveLoss,
    VICRegLoss,
    barlow_twins_loss,
    info_nce_loss,
    nt_xent_loss,
    spectral_contrastive_loss,
    vicreg_loss,
)


def random_views(batch: int, dim: int, seed: int, dtype=torch.float64) -> tuple[torch.Tensor, torch.Tensor]:
    generator = torch.Generator().manual_seed(seed)
    z1 = torch.randn(batch, dim, generator=generator, dtype=dtype)
    z2 = 0.7 * z1 + torch.randn(batch, dim, generator=generator, dtype=dtype)
    return z1, z2


def rows(z: torch.Tensor) -> list[list[float]]:
    return [[float(v) for v in row] for row in z]


def dot(u: list[float], v: list[float]) -> float:
    return sum(a * b for a, b in zip(u, v, strict=True))


def cosine(u: list[float], v: list[float]) -> float:
    return dot(u, v) / math.sqrt(dot(u, u) * dot(v, v))


# --------------------------------------------------------------------------------------------
# NT-Xent
# --------------------------------------------------------------------------------------------


def nt_xent_reference(z1: torch.Tensor, z2: torch.Tensor, temperature: float) -> float:
    """Per-anchor double loop in plain Python: -log(e^{s_ip/T} / Σ_{j≠i} e^{s_ij/T}), mean over 2B."""
    embeddings = rows(z1) + rows(z2)
    n = len(embeddings)
    batch = n // 2
    total = 0.0
    for i in range(n):
        positive = (i + batch) % n
        denominator = 0.0
        for j in range(n):
            if j != i:
                denominator += math.exp(cosine(embeddings[i], embeddings[j]) / temperature)
        numerator = math.exp(cosine(embeddings[i], embeddings[positive]) / temperature)
        total += -math.log(numerator / denominator)
    return total / n


@pytest.mark.parametrize("temperature", [0.1, 0.5, 1.0])
@pytest.mark.parametrize("batch", [1, 3, 6])
def test_nt_xent_identical_embeddings(batch, temperature):
    # All 2B embeddings equal: every logit is 1/T, so each anchor's cross-entropy is log(2B - 1).
    direction = torch.tensor([[0.3, -1.2, 2.0, 0.5]], dtype=torch.float64)
    z = direction.repeat(batch, 1)
    expected = math.log(2 * batch - 1)
    assert nt_xent_loss(z, 2.5 * z, temperature).item() == pytest.approx(expected, rel=1e-12, abs=1e-12)


@pytest.mark.parametrize("temperature", [0.1, 0.5, 2.0])
@pytest.mark.parametrize("batch", [2, 4])
def test_nt_xent_mutually_orthogonal_embeddings(batch, temperature):
    # All 2B embeddings mutually orthogonal: every logit is 0, so again log(2B - 1), for any T.
    basis = torch.eye(2 * batch, dtype=torch.float64) * torch.arange(1, 2 * batch + 1, dtype=torch.float64)
    z1, z2 = basis[:batch], basis[batch:]
    expected = math.log(2 * batch - 1)
    assert nt_xent_loss(z1, z2, temperature).item() == pytest.approx(expected, rel=1e-12)


@pytest.mark.parametrize("temperature", [0.1, 0.5, 2.0])
def test_nt_xent_aligned_pairs_orthogonal_across_pairs(temperature):
    # z1 = z2 with rows mutually orthogonal: positive logit 1/T, the 2B - 2 negatives 0, so
    # ℓ = -1/T + log(e^{1/T} + 2B - 2) = log(1 + (2B - 2) e^{-1/T}).
    batch = 3
    z = torch.diag(torch.tensor([1.0, 4.0, 0.5], dtype=torch.float64))
    expected = math.log(1.0 + (2 * batch - 2) * math.exp(-1.0 / temperature))
    assert nt_xent_loss(z, z, temperature).item() == pytest.approx(expected, rel=1e-12)


@pytest.mark.parametrize("temperature", [0.07, 0.5, 1.3])
@pytest.mark.parametrize("seed", [0, 1])
def test_nt_xent_matches_per_anchor_loop(temperature, seed):
    z1, z2 = random_views(5, 4, seed)
    expected = nt_xent_reference(z1, z2, temperature)
    assert nt_xent_loss(z1, z2, temperature).item() == pytest.approx(expected, rel=1e-10)
    assert NTXentLoss(temperature)(z1, z2).item() == pytest.approx(expected, rel=1e-10)


def test_nt_xent_ignores_embedding_norms():
    z1, z2 = random_views(4, 3, seed=2)
    scales = torch.tensor([[0.1], [3.0], [7.0], [0.5]], dtype=torch.float64)
    torch.testing.assert_close(nt_xent_loss(z1 * scales, z2 / scales), nt_xent_loss(z1, z2))


# --------------------------------------------------------------------------------------------
# Gaussian-kernel InfoNCE
# --------------------------------------------------------------------------------------------


def info_nce_reference(
    z1: torch.Tensor, z2: torch.Tensor, temperature: float, alpha: float, beta: float, normalize: bool
) -> float:
    """Slow loop over anchors: -log k(f_i, f_i') + β log(Σ_{negatives} k(f_i, χ) + α k(f_i, f_i'))."""
    embeddings = rows(z1) + rows(z2)
    if normalize:
        embeddings = [[v / math.sqrt(dot(e, e)) for v in e] for e in embeddings]
    n = len(embeddings)
    batch = n // 2

    def kernel(u, v):
        return math.exp(-sum((a - b) ** 2 for a, b in zip(u, v, strict=True)) / (2.0 * temperature))

    total = 0.0
    for i in range(n):
        positive = (i + batch) % n
        negatives = sum(kernel(embeddings[i], embeddings[j]) for j in range(n) if j not in (i, positive))
        k_positive = kernel(embeddings[i], embeddings[positive])
        total += -math.log(k_positive) + beta * math.log(negatives + alpha * k_positive)
    return total / n


@pytest.mark.parametrize("temperature", [0.1, 0.5, 1.0, 2.0])
def test_info_nce_normalized_equals_nt_xent(temperature):
    z1, z2 = random_views(8, 5, seed=3)
    expected = nt_xent_loss(z1, z2, temperature)
    actual = info_nce_loss(z1, z2, temperature, alpha=1.0, beta=1.0, normalize=True)
    torch.testing.assert_close(actual, expected, rtol=1e-10, atol=0)
    # In float32 too, to 1e-6 relative (the loss here is O(log 2B), so well conditioned).
    actual32 = info_nce_loss(z1.float(), z2.float(), temperature, normalize=True)
    expected32 = nt_xent_loss(z1.float(), z2.float(), temperature)
    torch.testing.assert_close(actual32, expected32, rtol=1e-6, atol=0)


@pytest.mark.parametrize(
    ("temperature", "alpha", "beta", "normalize"),
    [
        (1.0, 1.0, 1.0, False),
        (0.5, 0.0, 1.0, False),
        (2.0, 0.0, 0.6, False),
        (0.7, 0.3, 1.8, False),
        (0.2, 2.5, 0.5, True),
        (0.5, 0.0, 1.0, True),
    ],
)
def test_info_nce_matches_slow_reference(temperature, alpha, beta, normalize):
    z1, z2 = random_views(5, 3, seed=4)
    z1, z2 = 0.6 * z1, 0.6 * z2  # keep Gaussian kernels away from underflow in the reference
    expected = info_nce_reference(z1, z2, temperature, alpha, beta, normalize)
    assert info_nce_loss(z1, z2, temperature, alpha, beta, normalize).item() == pytest.approx(
        expected, rel=1e-10
    )
    module = InfoNCELoss(temperature, alpha, beta, normalize)
    assert module(z1, z2).item() == pytest.approx(expected, rel=1e-10)


def test_info_nce_collapsed_embeddings_closed_form():
    # All 2B embeddings equal: every kernel is 1, so ℓ = 0 + β log(2B - 2 + α).
    z = torch.ones(4, 3, dtype=torch.float64)
    for alpha, beta in [(1.0, 1.0), (0.0, 1.0), (0.5, 2.0)]:
        expected = beta * math.log(2 * 4 - 2 + alpha)
        assert info_nce_loss(z, z, 0.3, alpha, beta).item() == pytest.approx(expected, rel=1e-12)


# --------------------------------------------------------------------------------------------
# Spectral contrastive loss
# --------------------------------------------------------------------------------------------


def test_spectral_contrastive_by_hand_with_clipping():
    # mu = 4, so rows longer than √mu = 2 are rescaled to norm 2.
    #   z1: (6, 8) has norm 10 -> (1.2, 1.6);  (1, 0) and (0, -1) are kept.
    #   z2: (1, 1) kept (norm √2);  (0, 3) -> (0, 2);  (-2, 0) has norm exactly 2, kept.
    z1 = torch.tensor([[6.0, 8.0], [1.0, 0.0], [0.0, -1.0]], dtype=torch.float64)
    z2 = torch.tensor([[1.0, 1.0], [0.0, 3.0], [-2.0, 0.0]], dtype=torch.float64)
    # Σ z1 ⊙ z2 after clipping = (1.2 + 1.6) + 0 + 0 = 2.8; mean over B·D = 6 entries.
    attraction = -2.0 * (2.8 / 6.0) * 2  # D = 2  -> -28/15
    # Off-diagonal entries of z1 z2ᵀ: a1·b2 = 3.2, a1·b3 = -2.4, a2·b1 = 1, a2·b3 = -2,
    # a3·b1 = -1, a3·b2 = -2; squares sum to 10.24 + 5.76 + 1 + 4 + 1 + 4 = 26.
    repulsion = (26.0 / 9.0) * 3 / 2  # mean over B² = 9 entries, times B / (B - 1) -> 13/3
    expected = (attraction + repulsion) / 4.0
    assert expected == pytest.approx(37.0 / 60.0)
    assert spectral_contrastive_loss(z1, z2, mu=4.0).item() == pytest.approx(37.0 / 60.0, rel=1e-12)
    assert SpectralContrastiveLoss(mu=4.0)(z1, z2).item() == pytest.approx(37.0 / 60.0, rel=1e-12)


def test_spectral_contrastive_unclipped_closed_form():
    # mu = 1 and all rows inside the unit ball: z1 = z2 = 0.5·I (B = D = 2):
    # attraction = -2 · (0.5/4) · 2 = -0.5; z1 z2ᵀ is diagonal so the repulsion is 0.
    z = 0.5 * torch.eye(2, dtype=torch.float64)
    assert spectral_contrastive_loss(z, z).item() == pytest.approx(-0.5, rel=1e-12)


# --------------------------------------------------------------------------------------------
# Barlow Twins
# --------------------------------------------------------------------------------------------


def test_barlow_twins_perfectly_decorrelated_is_zero():
    # Columns (1, 1, -1, -1) and (1, -1, 1, -1): mean 0, biased variance 1, orthogonal, so with
    # z1 = z2 the cross-correlation is exactly I and the loss is 0 (eps = 0 to be exact).
    z = torch.tensor([[1.0, 1.0], [1.0, -1.0], [-1.0, 1.0], [-1.0, -1.0]], dtype=torch.float64)
    assert barlow_twins_loss(3.0 * z + 7.0, z, eps=0.0).item() == pytest.approx(0.0, abs=1e-14)


def test_barlow_twins_anticorrelated_closed_form():
    # Same columns, z2 = -z1: c = -I, so Σ(1 - c_ii)² = D · 4 = 8 and no off-diagonal part.
    z = torch.tensor([[1.0, 1.0], [1.0, -1.0], [-1.0, 1.0], [-1.0, -1.0]], dtype=torch.float64)
    assert barlow_twins_loss(z, -z, lambd=0.3, eps=0.0).item() == pytest.approx(8.0, rel=1e-12)


def test_barlow_twins_matches_batchnorm_reference():
    z1, z2 = random_views(7, 4, seed=5)
    lambd = 0.05
    batch_norm = nn.BatchNorm1d(4, affine=False, dtype=torch.float64).train()
    c = batch_norm(z1).T @ batch_norm(z2) / 7
    expected = sum((1 - c[i, i].item()) ** 2 for i in range(4)) + lambd * sum(
        c[i, j].item() ** 2 for i in range(4) for j in range(4) if i != j
    )
    assert barlow_twins_loss(z1, z2, lambd).item() == pytest.approx(expected, rel=1e-10)
    assert BarlowTwinsLoss(lambd)(z1, z2).item() == pytest.approx(expected, rel=1e-10)


def test_barlow_twins_invariant_under_per_dimension_affine_maps():
    z1, z2 = random_views(9, 5, seed=6)
    generator = torch.Generator().manual_seed(7)
    scale1 = torch.rand(5, generator=generator, dtype=torch.float64) * 4 + 0.25  # a_d > 0
    scale2 = torch.rand(5, generator=generator, dtype=torch.float64) * 4 + 0.25
    shift1 = torch.randn(5, generator=generator, dtype=torch.float64) * 10
    shift2 = torch.randn(5, generator=generator, dtype=torch.float64) * 10
    mapped1, mapped2 = scale1 * z1 + shift1, scale2 * z2 + shift2
    # Exact with eps = 0 ...
    torch.testing.assert_close(
        barlow_twins_loss(mapped1, mapped2, 0.02, eps=0.0),
        barlow_twins_loss(z1, z2, 0.02, eps=0.0),
        rtol=1e-10,
        atol=0,
    )
    # ... and up to the eps regulariser with the default eps = 1e-5.
    torch.testing.assert_close(
        barlow_twins_loss(mapped1, mapped2, 0.02), barlow_twins_loss(z1, z2, 0.02), rtol=1e-4, atol=0
    )
    # A negative scale flips that dimension's correlations, so the loss must change.
    flipped = z1.clone()
    flipped[:, 0] = -flipped[:, 0]
    assert not torch.allclose(barlow_twins_loss(flipped, z2), barlow_twins_loss(z1, z2))


# --------------------------------------------------------------------------------------------
# VICReg
# --------------------------------------------------------------------------------------------


def vicreg_reference(z1, z2, sim_coeff, std_coeff, cov_coeff, eps) -> float:
    """Entry-by-entry Python loops over Bardes et al.'s definition."""
    a, b = rows(z1), rows(z2)
    batch, dim = len(a), len(a[0])
    invariance = sum((a[n][d] - b[n][d]) ** 2 for n in range(batch) for d in range(dim)) / (batch * dim)

    def variance_and_covariance(x):
        means = [sum(x[n][d] for n in range(batch)) / batch for d in range(dim)]

        def cov(i, j):
            return sum((x[n][i] - means[i]) * (x[n][j] - means[j]) for n in range(batch)) / (batch - 1)

        hinge = sum(max(0.0, 1.0 - math.sqrt(cov(d, d) + eps)) for d in range(dim)) / dim
        off = sum(cov(i, j) ** 2 for i in range(dim) for j in range(dim) if i != j) / dim
        return hinge, off

    hinge1, off1 = variance_and_covariance(a)
    hinge2, off2 = variance_and_covariance(b)
    return sim_coeff * invariance + std_coeff * (hinge1 + hinge2) / 2 + cov_coeff * (off1 + off2)


@pytest.mark.parametrize(
    ("sim_coeff", "std_coeff", "cov_coeff", "eps"),
    [
        (25.0, 25.0, 1.0, 1e-4),
        (1.0, 0.0, 0.0, 1e-4),
        (0.0, 3.0, 0.0, 0.0),
        (0.0, 0.0, 2.0, 1e-4),
        (2.0, 7.0, 0.5, 1e-3),
    ],
)
def test_vicreg_matches_reference(sim_coeff, std_coeff, cov_coeff, eps):
    z1, z2 = random_views(6, 4, seed=8)
    # Shrink dimension 0 of z1 so its std falls below 1 and the hinge is active for it, while
    # others (scaled up) sit above 1: both sides of the relu are exercised.
    z1 = z1 * torch.tensor([0.2, 1.5, 3.0, 0.5], dtype=torch.float64)
    expected = vicreg_reference(z1, z2, sim_coeff, std_coeff, cov_coeff, eps)
    actual = vicreg_loss(z1, z2, sim_coeff, std_coeff, cov_coeff, eps)
    assert actual.item() == pytest.approx(expected, rel=1e-10)
    module = VICRegLoss(sim_coeff, std_coeff, cov_coeff, eps)
    assert module(z1, z2).item() == pytest.approx(expected, rel=1e-10)


def test_vicreg_closed_form():
    # z1 = z2 = columns (1,1,-1,-1), (1,-1,1,-1) scaled by 3: MSE 0, unbiased variance
    # 9 · 4/3 = 12 > 1 so no hinge, orthogonal centred columns so no covariance: loss 0.
    z = 3.0 * torch.tensor([[1.0, 1.0], [1.0, -1.0], [-1.0, 1.0], [-1.0, -1.0]], dtype=torch.float64)
    assert vicreg_loss(z, z).item() == pytest.approx(0.0, abs=1e-12)
    # A constant batch: every std is sqrt(eps) = 0.01, hinge 0.99 on both branches, no covariance.
    constant = torch.ones(4, 3, dtype=torch.float64)
    assert vicreg_loss(constant, constant).item() == pytest.approx(25.0 * 0.99, rel=1e-12)


# --------------------------------------------------------------------------------------------
# Validation and the distributed switch
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("factory", "name"),
    [
        (lambda: NTXentLoss(temperature=0.0), "temperature"),
        (lambda: NTXentLoss(temperature=-0.5), "temperature"),
        (lambda: InfoNCELoss(temperature=0.0), "temperature"),
        (lambda: InfoNCELoss(temperature=-1.0), "temperature"),
        (lambda: InfoNCELoss(alpha=-0.1), "alpha"),
        (lambda: InfoNCELoss(beta=0.0), "beta"),
        (lambda: InfoNCELoss(beta=-2.0), "beta"),
        (lambda: InfoNCELoss(temperature=float("nan")), "temperature"),
        (lambda: VICRegLoss(sim_coeff=-1.0), "sim_coeff"),
        (lambda: VICRegLoss(std_coeff=-1.0), "std_coeff"),
        (lambda: VICRegLoss(cov_coeff=-0.01), "cov_coeff"),
        (lambda: SpectralContrastiveLoss(mu=0.0), "mu"),
        (lambda: BarlowTwinsLoss(lambd=-1.0), "lambd"),
    ],
)
def test_bad_hyperparameters_rejected(factory, name):
    with pytest.raises(ValueError, match=name):
        factory()


def test_boundary_hyperparameters_accepted():
    InfoNCELoss(alpha=0.0)
    VICRegLoss(sim_coeff=0.0, std_coeff=0.0, cov_coeff=0.0)
    BarlowTwinsLoss(lambd=0.0)


def test_mismatched_shapes_rejected():
    with pytest.raises(ValueError, match="equal shape"):
        nt_xent_loss(torch.zeros(3, 2), torch.zeros(4, 2))


ALL_LOSSES = [nt_xent_loss, info_nce_loss, spectral_contrastive_loss, barlow_twins_loss, vicreg_loss]
ALL_MODULES = [NTXentLoss, InfoNCELoss, SpectralContrastiveLoss, BarlowTwinsLoss, VICRegLoss]


@pytest.mark.parametrize("loss", ALL_LOSSES, ids=lambda f: f.__name__)
def test_gather_without_process_group_raises(loss):
    assert not torch.distributed.is_initialized()
    z1, z2 = random_views(4, 3, seed=9)
    with pytest.raises(DistributedUnavailableError, match="process group"):
        loss(z1, z2, gather_distributed=True)


@pytest.mark.parametrize("module", ALL_MODULES, ids=lambda m: m.__name__)
def test_module_gather_without_process_group_raises(module):
    z1, z2 = random_views(4, 3, seed=9)
    with pytest.raises(DistributedUnavailableError, match="process group"):
        module(gather_distributed=True)(z1, z2)
