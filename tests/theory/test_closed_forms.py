"""The closed forms against autograd, Monte Carlo, and the actual losses in sslprobe.losses."""

import math

import pytest
import torch
from torch.func import hessian, vmap

from sslprobe.losses import barlow_twins_loss, info_nce_loss, spectral_contrastive_loss
from sslprobe.theory import (
    LOSS_NAMES,
    beta_info_nce_critical_noise,
    bias_normalized_max_rank,
    bias_normalized_stationary_gram,
    critical_dataset_size,
    landscape,
    local_minimum_rank,
    normalized_collapse_condition,
    normalized_stationary_gram,
    normalized_surviving_mask,
    origin_hessian,
    paper_n_from_batch,
    paper_printed_origin_hessian,
    stationary_gram,
    stationary_loss,
    variance_term_closed_form,
    weights_from_gram,
)


@pytest.fixture(autouse=True)
def double_precision():
    """Closed forms are checked in float64; the default is restored for other test files."""
    previous = torch.get_default_dtype()
    torch.set_default_dtype(torch.float64)
    yield
    torch.set_default_dtype(previous)


def random_spd(dim: int, seed: int, floor: float = 0.2) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    m = torch.randn(dim, dim, generator=g)
    return m @ m.T / dim + floor * torch.eye(dim)


def random_symmetric(dim: int, seed: int, negatives: int) -> torch.Tensor:
    """Symmetric matrix with exactly ``negatives`` negative eigenvalues, in a random basis."""
    g = torch.Generator().manual_seed(seed)
    q, _ = torch.linalg.qr(torch.randn(dim, dim, generator=g))
    values = torch.linspace(0.3, 2.0, dim)
    values[:negatives] = -torch.linspace(0.5, 1.0, negatives) if negatives else values[:0]
    return q @ torch.diag(values) @ q.T


def eq3_gradient(W: torch.Tensor, B: torch.Tensor, Sigma: torch.Tensor, quartic: float = 1.0) -> torch.Tensor:
    W = W.clone().requires_grad_(True)
    (grad,) = torch.autograd.grad(landscape(W, B, Sigma, quartic), W)
    return grad


# --- Theorem 1 ------------------------------------------------------------------------------------


@pytest.mark.parametrize("commuting", [True, False])
@pytest.mark.parametrize("mask", [None, [1, 1, 0, 1, 1, 0], [0, 0, 0, 1, 0, 1]])
def test_stationary_gram_has_zero_gradient_and_predicted_rank(commuting, mask):
    dim, negatives = 6, 2
    B = random_symmetric(dim, seed=1, negatives=negatives)
    Sigma = torch.diag(torch.linspace(0.5, 3.0, dim)) if commuting else random_spd(dim, seed=2)
    if commuting:
        B = torch.diag(torch.tensor([-1.0, -0.4, 0.3, 0.8, 1.5, 2.0]))
    if not commuting:
        assert (B @ Sigma - Sigma @ B).abs().max() > 0.1
    mask_tensor = None if mask is None else torch.tensor(mask)
    quartic = 0.75
    gram = stationary_gram(B, Sigma, mask_tensor, quartic=quartic)
    W = weights_from_gram(gram, output_dim=dim)
    assert torch.allclose(W.T @ W, gram, atol=1e-10)
    gradient = eq3_gradient(W, B, Sigma, quartic)
    assert gradient.abs().max() < 1e-10
    kept = dim - negatives if mask is None else sum(mask[negatives:])  # ascending: negatives come first
    assert torch.linalg.matrix_rank(gram, atol=1e-9) == kept
    # a random perturbation of the same Gram's eigenvalues is not stationary
    assert eq3_gradient(1.1 * W, B, Sigma, quartic).abs().max() > 1e-3


def test_noncommuting_stationary_point_differs_from_eq9():
    """Eq. 9 masks B's own eigenvalues; without commutation only Thm. 1's general form is stationary."""
    B, Sigma = random_symmetric(4, seed=3, negatives=1), random_spd(4, seed=4)
    general = stationary_gram(B, Sigma)
    values, vectors = torch.linalg.eigh(B)
    B_M = vectors @ torch.diag(values.clamp_min(0)) @ vectors.T
    inverse = torch.linalg.inv(Sigma)
    eq9 = 0.5 * inverse @ B_M @ inverse
    assert (general - eq9).abs().max() > 1e-2
    assert eq3_gradient(weights_from_gram(general, 4), B, Sigma).abs().max() < 1e-10
    assert eq3_gradient(weights_from_gram(eq9, 4), B, Sigma).abs().max() > 1e-3


def test_stationary_loss_has_sigma_to_the_minus_two():
    b = torch.tensor([2.0, 1.0, -0.5, 0.7])
    s = torch.tensor([3.0, 0.5, 1.0, 2.0])
    B, Sigma = torch.diag(b), torch.diag(s)
    mask = torch.tensor([1, 1, 1, 0])  # eigen-directions ascending: b/s = -0.5, 0.35, 0.67, 2 -> keeps 0.35, 0.67
    W = weights_from_gram(stationary_gram(B, Sigma, mask), 4)
    direct = landscape(W, B, Sigma)
    assert torch.allclose(direct, stationary_loss(B, Sigma, mask))
    kept = (b / s > 0) & (b / s < 1.0)
    B_M = torch.diag(torch.where(kept, b, torch.zeros_like(b)))
    with_inverse = -0.25 * torch.trace(torch.diag(s**-2) @ B_M @ B)
    as_printed = -0.25 * torch.trace(torch.diag(s**2) @ B_M @ B)
    assert torch.allclose(direct, with_inverse)
    assert not torch.allclose(direct, as_printed, rtol=0.1)


def test_global_minimum_keeps_largest_whitened_eigenvalues():
    B, Sigma = random_symmetric(5, seed=5, negatives=1), random_spd(5, seed=6)
    d_star = 2
    losses = {}
    for first in range(5):
        for second in range(first + 1, 5):
            mask = torch.zeros(5)
            mask[[first, second]] = 1
            losses[(first, second)] = float(stationary_loss(B, Sigma, mask))
    assert min(losses, key=losses.get) == (3, 4)
    assert local_minimum_rank(B, d_star) == d_star


# --- Proposition 1 and 2 ------------------------------------------------------------------------------


def test_prop1_variance_term_matches_monte_carlo():
    dim = 3
    Sigma = random_spd(dim, seed=7)
    W = torch.randn(2, dim, generator=torch.Generator().manual_seed(8))
    chol = torch.linalg.cholesky(Sigma)
    g = torch.Generator().manual_seed(9)
    count = 400_000
    x = torch.randn(count, dim, generator=g) @ chol.T
    chi = torch.randn(count, dim, generator=g) @ chol.T
    squared = ((x - chi) @ W.T).pow(2).sum(1)
    monte_carlo = squared.var() / 8
    closed = variance_term_closed_form(W, Sigma)
    assert abs(monte_carlo - closed) / closed < 0.03


@pytest.mark.parametrize("negatives", [0, 2, 4])
@pytest.mark.parametrize("d_star", [2, 5])
def test_prop2_gradient_descent_reaches_predicted_rank(negatives, d_star):
    dim = 5
    B, Sigma = random_symmetric(dim, seed=10 + negatives, negatives=negatives), random_spd(dim, seed=11)
    W = (0.1 * torch.randn(d_star, dim, generator=torch.Generator().manual_seed(12))).requires_grad_(True)
    optimizer = torch.optim.LBFGS([W], max_iter=500, tolerance_grad=1e-12, tolerance_change=1e-14,
                                  line_search_fn="strong_wolfe")

    def closure():
        optimizer.zero_grad()
        value = landscape(W, B, Sigma)
        value.backward()
        return value

    for _ in range(5):
        optimizer.step(closure)
    singular = torch.linalg.svdvals(W.detach())
    measured_rank = int((singular > 1e-4 * singular.max()).sum())
    assert measured_rank == local_minimum_rank(B, d_star) == min(dim - negatives, d_star)


# --- origin Hessians against the actual losses ---------------------------------------------------------


def expected_hessian(loss_fn, clean: torch.Tensor, noise_cov: torch.Tensor, samples: int, seed: int) -> torch.Tensor:
    """-½ of the augmentation-averaged Hessian of loss(x1 w, x2 w) in a one-row w, at exactly w = 0."""
    batch, dim = clean.shape
    g = torch.Generator().manual_seed(seed)
    root = torch.linalg.cholesky(noise_cov)
    e1 = torch.randn(samples, batch, dim, generator=g) @ root.T
    e2 = torch.randn(samples, batch, dim, generator=g) @ root.T

    def loss_of_w(w, a, b):
        return loss_fn((clean + a) @ w[:, None], (clean + b) @ w[:, None])

    w0 = torch.zeros(dim)
    return -vmap(hessian(loss_of_w), in_dims=(None, 0, 0))(w0, e1, e2).mean(0) / 2


def two_dim_problem(batch: int, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    clean = torch.randn(batch, 2, generator=g) @ torch.diag(torch.tensor([1.0, 0.6]))
    return clean, torch.tensor([[4.0, 0.8], [0.8, 1.5]])


@pytest.mark.parametrize("alpha,beta", [(1.0, 1.0), (0.0, 1.0), (0.1, 1.0), (1.0, 0.5), (0.1, 0.5), (1.0, 1.5)])
def test_info_nce_origin_hessian_matches_actual_loss_small_batch(alpha, beta):
    """At batch 6 with strong augmentation the derived B and the printed Eq. 8 / Sec. 4.2 forms differ."""
    batch = 6
    clean, noise_cov = two_dim_problem(batch, seed=20)
    measured = expected_hessian(lambda a, b: info_nce_loss(a, b, alpha=alpha, beta=beta), clean, noise_cov,
                                samples=6000, seed=21)
    name = "info_nce" if alpha == beta == 1.0 else ("weighted_info_nce" if beta == 1.0 else "beta_info_nce")
    n = paper_n_from_batch(batch)
    a0 = torch.cov(clean.T)  # pair covariance = unbiased sample covariance
    derived = origin_hessian(name, a0, noise_cov, n=n, alpha=alpha, beta=beta)
    scale = derived.abs().max()
    assert (measured - derived).abs().max() < 0.05 * scale
    if (alpha, beta) != (1.0, 1.0):
        printed = paper_printed_origin_hessian(name, a0 * (batch - 1) / batch, noise_cov, n=n, alpha=alpha, beta=beta)
        assert (measured - printed).abs().max() > 0.15 * scale


@pytest.mark.parametrize("alpha,beta", [(0.1, 1.0), (1.0, 0.5)])
def test_info_nce_origin_hessian_matches_actual_loss_large_batch(alpha, beta):
    batch = 64
    clean, noise_cov = two_dim_problem(batch, seed=22)
    noise_cov = noise_cov / 4
    measured = expected_hessian(lambda a, b: info_nce_loss(a, b, alpha=alpha, beta=beta), clean, noise_cov,
                                samples=160, seed=23)
    name = "weighted_info_nce" if beta == 1.0 else "beta_info_nce"
    derived = origin_hessian(name, torch.cov(clean.T), noise_cov, n=paper_n_from_batch(batch), alpha=alpha, beta=beta)
    term_scale = torch.cov(clean.T).abs().max() + noise_cov.abs().max()  # B can be a near-cancellation
    assert (measured - derived).abs().max() < 0.04 * term_scale


def test_temperature_is_a_rescaling_of_w():
    g = torch.Generator().manual_seed(24)
    z1, z2 = torch.randn(8, 3, generator=g), torch.randn(8, 3, generator=g)
    for temperature in (0.1, 2.0):
        scaled = info_nce_loss(z1 / math.sqrt(temperature), z2 / math.sqrt(temperature), temperature=1.0, alpha=0.3)
        assert torch.allclose(info_nce_loss(z1, z2, temperature=temperature, alpha=0.3), scaled)


def test_info_nce_hessian_is_smooth_through_zero():
    """squared_distances has no clamp: autograd's Hessian at W = 0 itself is the limit from W ≠ 0.

    (The origin-Hessian tests above evaluate at exactly W = 0 through `expected_hessian`.)
    """
    clean = two_dim_problem(4, seed=25)[0].double()
    shift = torch.tensor([[0.3, -0.2]], dtype=torch.float64)
    loss_of_w = lambda w: info_nce_loss(clean @ w[:, None], (clean + shift) @ w[:, None], beta=0.5)  # noqa: E731
    at_zero = hessian(loss_of_w)(torch.zeros(2, dtype=torch.float64))
    near_zero = hessian(loss_of_w)(torch.full((2,), 1e-4, dtype=torch.float64))
    assert at_zero.abs().max() > 0.1
    assert torch.allclose(at_zero, near_zero, atol=1e-6)


@pytest.mark.parametrize("mu", [1.0, 2.5])
def test_spectral_contrastive_origin_hessian_is_twice_clean_second_moment(mu):
    clean, noise_cov = two_dim_problem(16, seed=26)
    measured = expected_hessian(lambda a, b: spectral_contrastive_loss(a, b, mu=mu), clean, noise_cov,
                                samples=2000, seed=27)
    second_moment = clean.T @ clean / clean.shape[0]
    derived = origin_hessian("spectral_contrastive", second_moment, noise_cov, mu=mu)
    assert torch.allclose(derived, 2 * second_moment / mu)
    assert (measured - derived).abs().max() < 0.03 * derived.abs().max()
    printed = paper_printed_origin_hessian("spectral_contrastive", second_moment, noise_cov)
    assert (measured - printed).abs().max() > 1.0 / mu


def raw_barlow_twins(z1: torch.Tensor, z2: torch.Tensor, lambd: float = 5e-3) -> torch.Tensor:
    """Barlow Twins on unstandardised embeddings: c = z1ᵀ z2 / B."""
    correlation = z1.T @ z2 / z1.shape[0]
    off = correlation - torch.diag(torch.diagonal(correlation))
    return (1 - torch.diagonal(correlation)).pow(2).sum() + lambd * off.pow(2).sum()


def test_barlow_twins_origin_hessian_conventions():
    clean, noise_cov = two_dim_problem(16, seed=28)
    measured = expected_hessian(raw_barlow_twins, clean, noise_cov, samples=8000, seed=29)
    second_moment = clean.T @ clean / clean.shape[0]
    derived = origin_hessian("barlow_twins", second_moment, noise_cov)
    assert (measured - derived).abs().max() < 0.05 * derived.abs().max()
    printed = paper_printed_origin_hessian("barlow_twins", second_moment, noise_cov)
    assert (measured - printed).abs().max() > 1.0
    # sslprobe's barlow_twins_loss standardises: invariant to W -> aW once var >> eps ...
    g = torch.Generator().manual_seed(30)
    z1, z2 = torch.randn(32, 3, generator=g), torch.randn(32, 3, generator=g)
    assert torch.allclose(barlow_twins_loss(z1, z2), barlow_twins_loss(0.3 * z1, 0.3 * z2), atol=1e-3)


def test_standardized_barlow_twins_expands_at_zero_with_b_over_eps():
    """... but at W = 0 (var << eps) it expands with B = 2 A0 / eps, A0 the centred covariance."""
    clean, noise_cov = two_dim_problem(16, seed=28)
    eps = 1e-2
    measured = expected_hessian(lambda a, b: barlow_twins_loss(a, b, eps=eps), clean, noise_cov,
                                samples=4000, seed=29)
    centred = clean - clean.mean(0)
    derived = origin_hessian("barlow_twins", centred.T @ centred / clean.shape[0], noise_cov, standardize_eps=eps)
    assert (measured - derived).abs().max() < 0.05 * derived.abs().max()
    assert (measured - origin_hessian("barlow_twins", clean.T @ clean / 16, noise_cov)).abs().max() > 10


def test_weight_decay_subtracts_gamma_identity():
    clean, noise_cov = two_dim_problem(8, seed=31)
    gamma = 0.3
    a0 = torch.cov(clean.T)
    n = paper_n_from_batch(8)
    measured = expected_hessian(
        lambda a, b: info_nce_loss(a, b, beta=0.5), clean, noise_cov, samples=3000, seed=32
    ) - gamma * torch.eye(2)  # Hessian of + γ|w|² is 2γ I, i.e. -γ I in B
    derived = origin_hessian("beta_info_nce", a0, noise_cov, n=n, beta=0.5, weight_decay=gamma)
    assert (measured - derived).abs().max() < 0.05 * derived.abs().max()


def test_unknown_loss_lists_valid_names():
    with pytest.raises(ValueError) as error:
        origin_hessian("simclr", torch.eye(2), torch.eye(2))
    for name in LOSS_NAMES:
        assert name in str(error.value)
    with pytest.raises(ValueError):
        origin_hessian("info_nce", torch.eye(2), torch.eye(2), alpha=0.5)


# --- collapse thresholds ---------------------------------------------------------------------------------


def test_eq8_threshold_direction():
    a, c, alpha = torch.tensor([1.0, 0.2]), torch.tensor([5.0, 5.0]), 0.1
    critical = critical_dataset_size(a, c, alpha)
    for i in range(2):
        for n, collapsed in ((0.9 * critical[i], True), (1.1 * critical[i], False)):
            printed = paper_printed_origin_hessian("weighted_info_nce", torch.diag(a), torch.diag(c), n=float(n),
                                                   alpha=alpha)
            assert bool(printed.diagonal()[i] <= 0) == collapsed


@pytest.mark.parametrize("alpha", [1.0, 0.1, 0.0])
def test_beta_critical_noise_zeroes_the_curvature(alpha):
    a, beta, n = torch.tensor([0.2, 0.5, 1.0]), 0.4, 7
    noise_shape = torch.tensor([1.0, 2.0, 0.5])
    critical = beta_info_nce_critical_noise(a, beta, noise_shape, n=n, alpha=alpha)
    for i, sigma in enumerate(critical):
        B = origin_hessian("beta_info_nce", torch.diag(a), sigma**2 * torch.diag(noise_shape), n=n, alpha=alpha,
                           beta=beta)
        assert abs(float(B[i, i])) < 1e-12
        B_above = origin_hessian("beta_info_nce", torch.diag(a), (1.01 * sigma) ** 2 * torch.diag(noise_shape),
                                 n=n, alpha=alpha, beta=beta)
        assert float(B_above[i, i]) < 0
    assert torch.isinf(beta_info_nce_critical_noise(a, 1.2)).all()


# --- normalisation and bias -------------------------------------------------------------------------------


def eq10(W, B, Sigma, kappa, norm, quartic=1.0):
    rho = torch.trace(W @ Sigma @ W.T)
    return landscape(W, B, Sigma, quartic) + kappa * (rho - norm) ** 2


@pytest.mark.parametrize("commuting", [True, False])
def test_normalized_stationary_points_props_3_4(commuting):
    dim, kappa, norm, quartic = 4, 3.0, 4.0, 0.75
    B = random_symmetric(dim, seed=40, negatives=1)
    Sigma = torch.diag(torch.tensor([0.5, 1.0, 1.5, 2.5])) if commuting else random_spd(dim, seed=41)
    if commuting:
        B = torch.diag(torch.tensor([-0.3, 0.4, 1.0, 2.0]))
    mask = torch.tensor([0, 1, 1, 1])
    gram = normalized_stationary_gram(B, Sigma, mask, norm=norm, kappa=kappa, quartic=quartic)
    W = weights_from_gram(gram, dim).requires_grad_(True)
    (gradient,) = torch.autograd.grad(eq10(W, B, Sigma, kappa, norm, quartic), W)
    assert gradient.abs().max() < 1e-10


def test_normalized_infinite_kappa_is_the_limit_and_has_unit_norm():
    B, Sigma = torch.diag(torch.tensor([0.5, 1.0, 2.0])), torch.diag(torch.tensor([1.0, 2.0, 1.5]))
    limit = normalized_stationary_gram(B, Sigma, norm=1.0)
    assert torch.allclose(torch.trace(limit @ Sigma), torch.tensor(1.0))
    far = normalized_stationary_gram(B, Sigma, norm=1.0, kappa=1e8)
    assert torch.allclose(limit, far, atol=1e-6)
    # Eq. 11 in the commuting case
    inverse = torch.linalg.inv(Sigma)
    eq11 = 0.5 * inverse @ (B + (2 - torch.trace(inverse @ B)) / 3 * Sigma) @ inverse
    assert torch.allclose(limit, eq11)


def test_eq13_drops_a_strongly_augmented_direction():
    """Appendix D.1: strong augmentation in one subspace collapses it, even with normalisation."""
    a = torch.ones(4)
    c = torch.tensor([50.0, 0.0, 0.0, 0.0])
    B = origin_hessian("beta_info_nce", torch.diag(a), torch.diag(c), beta=0.5)
    Sigma = torch.diag(a + c) + 1e-9 * torch.eye(4)
    mask = normalized_surviving_mask(B, Sigma)
    assert mask.tolist() == [False, True, True, True]
    assert normalized_collapse_condition(B, Sigma, mask)[mask].all()
    assert not normalized_collapse_condition(B, Sigma, torch.ones(4, dtype=torch.bool))[0]
    weak = origin_hessian("info_nce", torch.diag(a), 1e-3 * torch.eye(4))
    assert normalized_surviving_mask(weak, torch.diag(a) + 1e-3 * torch.eye(4)).all()


def test_bias_with_normalization_caps_the_rank():
    """Thm. 3: weak augmentation (Λ ≈ 1) and c = 1 leave at most 2 directions."""
    dim = 6
    B, Sigma = torch.eye(dim), torch.eye(dim) * 1.0001
    assert bias_normalized_max_rank(B, Sigma, norm=1.0) == 2
    gram = bias_normalized_stationary_gram(B, Sigma, torch.tensor([0, 0, 0, 0, 1, 1]), norm=1.0)
    # Eq. 9 on the kept directions: WᵀW = ½ Σ⁻¹ B_M Σ⁻¹ = ½ / 1.0001² there, 0 elsewhere; ρ = 0.9999 ≤ c
    expected = torch.diag(torch.tensor([0, 0, 0, 0, 1, 1], dtype=Sigma.dtype)) * 0.5 / 1.0001**2
    torch.testing.assert_close(gram, expected, rtol=1e-6, atol=1e-12)
    assert float(torch.trace(gram @ Sigma)) == pytest.approx(2 * 0.5 / 1.0001, rel=1e-9)
    assert bias_normalized_stationary_gram(B, Sigma, torch.tensor([0, 0, 0, 1, 1, 1]), norm=1.0) is None


def test_unknown_loss_name_lists_the_valid_ones():
    with pytest.raises(ValueError, match="unknown loss 'nope'; valid names: info_nce"):
        origin_hessian("nope", torch.eye(2), torch.eye(2))
