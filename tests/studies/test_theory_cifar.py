"""The frozen-feature study's core on synthetic features whose theory is known in closed form."""

import dataclasses

import pytest
import torch

from sslprobe.probes.theory_prediction import TheoryLoss, predict
from sslprobe.studies.theory_cifar import (
    QUICK,
    numerical_rank,
    pool_covariances,
    train_and_compare,
)
from sslprobe.studies.theory_cifar_diagnostics import scl_quartic_ratio


def gaussian_pool(count, views, a, c, seed, rotation=None):
    """(N, K, d) views x̂ + ε of x̂ ~ N(0, A), ε ~ N(0, C) independent (A, C diagonal, optionally rotated)."""
    generator = torch.Generator().manual_seed(seed)
    clean = torch.randn(count, 1, len(a), generator=generator, dtype=torch.float64) * torch.tensor(a).sqrt()
    noise = torch.randn(count, views, len(a), generator=generator, dtype=torch.float64) * torch.tensor(c).sqrt()
    pool = clean + noise
    return pool if rotation is None else pool @ rotation.T


def rotation(dim, seed):
    return torch.linalg.qr(torch.randn(dim, dim, generator=torch.Generator().manual_seed(seed),
                                       dtype=torch.float64))[0]


def test_pool_covariances_recover_the_population_a0_and_c():
    # Distinct pool views: A0 = Cov(pool mean) - C_pool/(K-1) and C = K/(K-1) C_pool are unbiased for A and C.
    a, c = [2.0, 1.0, 0.5, 0.25], [0.3, 1.0, 2.0, 0.1]
    q = rotation(4, 1)
    pool = gaussian_pool(4000, 4, a, c, seed=2, rotation=q)
    for centred in (True, False):
        estimate = pool_covariances(pool, centred)
        true_a, true_c = q @ torch.diag(torch.tensor(a, dtype=torch.float64)) @ q.T, q @ torch.diag(
            torch.tensor(c, dtype=torch.float64)) @ q.T
        assert torch.linalg.norm(estimate.A0 - true_a) / torch.linalg.norm(true_a) < 0.06
        assert torch.linalg.norm(estimate.C - true_c) / torch.linalg.norm(true_c) < 0.04
        assert torch.allclose(estimate.Sigma, estimate.A0 + estimate.C)


def closed_form_beta_rank(a, c, batch, beta=0.5):
    negatives = 2 * batch - 2  # K of origin_hessian: b_i = β K/(K+1) a_i − (1 − β) c_i
    return sum(beta * negatives / (negatives + 1) * ai - (1 - beta) * ci > 0 for ai, ci in zip(a, c))


def test_predicted_rank_on_gaussian_features_is_the_closed_form():
    a, c = [1.0, 1.0, 1.0, 1.0, 1.0], [0.1, 0.5, 1.8, 3.0, 6.0]  # far from b_i = 0: sampling cannot flip a sign
    q = rotation(5, 3)
    batch = 2000
    pool = gaussian_pool(batch, 4, a, c, seed=4, rotation=q)
    beta = predict(pool_covariances(pool, True), TheoryLoss("info_nce_family", batch, beta=0.5), 5)
    assert beta.rank == closed_form_beta_rank(a, c, batch) == 2
    assert beta.nonpositive == 3
    scl = predict(pool_covariances(pool, False), TheoryLoss("spectral_contrastive", batch, mu=10.0), 5)
    assert scl.rank == 5  # B = 2 A0 / mu is positive definite: SCL collapses nothing


@pytest.mark.slow
def test_trained_layer_on_a_gaussian_pool_matches_the_prediction():
    # Two "strengths": weak and strong independent noise on the same clean features, through train_and_compare.
    a = [1.0, 0.6, 0.3]
    weak, strong = [0.05, 0.05, 0.05], [0.2, 1.2, 1.0]
    q = rotation(3, 5)
    count, views = 48, 4
    pools = torch.stack([gaussian_pool(count, views, a, weak, seed=6, rotation=q),
                         gaussian_pool(count, views, a, strong, seed=6, rotation=q)]).float()
    settings = dataclasses.replace(QUICK, steps=800, learning_rate=1e-2, gradient_samples=16, loss_samples=8)
    results = train_and_compare(pools, settings)
    beta_points = results["beta_info_nce"]
    assert [p["predicted_rank"] for p in beta_points] == [3, closed_form_beta_rank(a, strong, count)] == [3, 1]
    # strong noise: the layer converges and collapses what Thm. 1 collapses (magnitudes are not asked for:
    # at the trained |W| the fourth-order expansion of beta-InfoNCE is not accurate)
    assert beta_points[1]["converged"]
    assert beta_points[1]["measured_rank"] == beta_points[1]["predicted_rank"]
    assert beta_points[1]["missing_direction_check"] is None
    for point in results["spectral_contrastive"]:  # exact quartic: full rank with Eq. 9's eigenvalues
        assert point["converged"]
        assert point["measured_rank"] == point["predicted_rank"] == 3
        assert point["median_eigenvalue_relative_error"] < 0.1
        assert point["max_sq_norm_over_mu"] < 1.0  # the clip is inactive
        # Eq. 3 holds up to the batch's exclusion of i = j from the repulsion (quartic ratio ~ 1 - O(1/N))
        assert abs(point["quartic_mc_over_gaussian_trained"] - 1.0) < 0.15
        assert abs(point["expected_loss_trained"] - point["eq3_trained"]) < 0.15 * abs(point["eq3_trained"])
    for points in results.values():
        for point in points:
            measured = torch.tensor(point["measured_eigenvalues"])
            assert point["measured_rank"] == int((measured >= 1e-4 * measured.max()).sum())
            assert point["rank_agrees"] is (point["measured_rank"] == point["predicted_rank"])


def test_numerical_rank_uses_the_probe_threshold():
    import numpy as np

    assert numerical_rank(np.array([1.0, 2e-4, 5e-5, 0.0])) == 2
    assert numerical_rank(np.zeros(3)) == 0


def test_scl_quartic_ratio_is_one_for_independent_samples():
    generator = torch.Generator().manual_seed(7)
    x = torch.randn(3000, 3, generator=generator, dtype=torch.float64) * torch.tensor([1.0, 0.5, 2.0])
    y = torch.randn(3000, 3, generator=generator, dtype=torch.float64) * torch.tensor([1.0, 0.5, 2.0])
    weight = torch.randn(2, 3, generator=generator, dtype=torch.float64)
    assert abs(scl_quartic_ratio(x, y, weight) - 1.0) < 0.1
