"""The theory probe's estimators and predictions against known covariances and closed forms."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from sslprobe.losses import info_nce_loss, spectral_contrastive_loss
from sslprobe.probes.theory import TheoryLoss, predict, principal_angles, theory_probe, view_covariances
from sslprobe.theory import beta_info_nce_critical_noise, paper_n_from_batch, weights_from_gram


def random_covariance(dim: int, generator: torch.Generator, scale: float = 1.0) -> torch.Tensor:
    root = torch.randn(dim, dim, generator=generator, dtype=torch.float64)
    return scale * (root @ root.T / dim + 0.2 * torch.eye(dim, dtype=torch.float64))


def two_views(a0: torch.Tensor, c: torch.Tensor, n: int, generator: torch.Generator, mean: torch.Tensor | None = None):
    """h_v = x̂ + ε_v with x̂ ~ N(mean, A0), ε_1, ε_2 ~ N(0, C) independent of each other and of x̂."""
    dim = a0.shape[0]
    clean = torch.randn(n, dim, generator=generator, dtype=torch.float64) @ torch.linalg.cholesky(a0).T
    if mean is not None:
        clean = clean + mean
    root = torch.linalg.cholesky(c).T
    noise1 = torch.randn(n, dim, generator=generator, dtype=torch.float64) @ root
    noise2 = torch.randn(n, dim, generator=generator, dtype=torch.float64) @ root
    return clean + noise1, clean + noise2


def test_estimators_recover_known_non_commuting_covariances():
    g = torch.Generator().manual_seed(0)
    a0, c = random_covariance(4, g), random_covariance(4, g, scale=0.7)
    assert (a0 @ c - c @ a0).abs().max() > 0.05  # not commuting
    h1, h2 = two_views(a0, c, 40_000, g)
    estimate = view_covariances(h1, h2, centred=True)
    for got, true in ((estimate.A0, a0), (estimate.C, c), (estimate.Sigma, a0 + c)):
        assert torch.linalg.norm(got - true) < 0.03 * torch.linalg.norm(true)
    # Σ = A0 + C is the mean of the two views' own covariances
    own = (torch.cov(h1.T) + torch.cov(h2.T)) / 2
    assert torch.allclose(estimate.Sigma, own, atol=2e-3)


def test_uncentred_estimators_recover_second_moments():
    g = torch.Generator().manual_seed(1)
    a0, c = random_covariance(3, g), random_covariance(3, g, scale=0.5)
    mean = torch.tensor([1.0, -0.5, 2.0], dtype=torch.float64)
    h1, h2 = two_views(a0, c, 40_000, g, mean)
    estimate = view_covariances(h1, h2, centred=False)
    second_moment = a0 + mean[:, None] * mean[None, :]
    assert torch.linalg.norm(estimate.A0 - second_moment) < 0.03 * torch.linalg.norm(second_moment)
    assert torch.linalg.norm(estimate.C - c) < 0.03 * torch.linalg.norm(c)


def test_reported_sampling_error_matches_the_actual_spread():
    """Split-half error against the rms error over independent repetitions (N = 1,000, d = 4)."""
    g = torch.Generator().manual_seed(2)
    a0, c = random_covariance(4, g), random_covariance(4, g, scale=0.7)
    weight = torch.randn(3, 4, generator=g, dtype=torch.float64)
    loss = TheoryLoss("info_nce_family", batch=64, beta=0.5)
    actual, reported = [], []
    for repeat in range(40):
        h1, h2 = two_views(a0, c, 1000, g)
        result = theory_probe(h1, h2, weight, None, loss, seed=repeat)
        estimate = torch.as_tensor(result.arrays["A0"])
        actual.append(float(torch.linalg.norm(estimate - a0) / torch.linalg.norm(a0)))
        reported.append(result.report["a0_sampling_error"])
    rms = math.sqrt(np.mean(np.square(actual)))
    assert 0.6 < np.mean(reported) / rms < 1.6


@pytest.mark.parametrize("alpha,temperature", [(1.0, 1.0), (0.2, 2.0)])
def test_beta_info_nce_prediction_equals_eq9_on_gaussian_features(alpha, temperature):
    """Commuting case: WᵀW = T · diag(b_i / (2q s_i²))_+ with b from origin_hessian's formula."""
    g = torch.Generator().manual_seed(3)
    a = torch.tensor([0.2, 0.5, 0.9, 1.4, 2.0], dtype=torch.float64)
    sigma, beta, batch, decay = 0.8, 0.5, 32, 0.01
    h1, h2 = two_views(torch.diag(a), sigma**2 * torch.eye(5, dtype=torch.float64), 200_000, g)
    loss = TheoryLoss("info_nce_family", batch=batch, temperature=temperature, alpha=alpha, beta=beta,
                      weight_decay=decay)
    result = theory_probe(h1, h2, torch.eye(5, dtype=torch.float64), None, loss)
    k = paper_n_from_batch(batch) - 1
    b = beta * k / (k + alpha) * a - (1 - beta) * sigma**2 - decay * temperature / 2
    q = 0.75 * beta
    expected = np.sort((temperature * (b / (2 * q * (a + sigma**2) ** 2)).clamp_min(0)).numpy())[::-1]
    predicted = np.asarray(result.report["predicted_eigenvalues"])
    assert np.allclose(predicted, expected, atol=0.03 * expected.max())
    # the collapse count matches the critical noise of the closed forms (weight decay aside)
    critical = beta_info_nce_critical_noise(a, beta, n=paper_n_from_batch(batch), alpha=alpha)
    assert result.report["nonpositive_directions"] == int((critical <= sigma).sum()) == int((b <= 0).sum())
    assert result.report["predicted_rank"] == 5 - int((b <= 0).sum())
    assert result.report["predicted_rank_halves"] == [result.report["predicted_rank"]] * 2


def test_trained_at_the_prediction_measures_the_prediction():
    """W taken at the predicted stationary point: same spectrum, zero angles, Eq. 3 and loss agree."""
    g = torch.Generator().manual_seed(4)
    a0, c = random_covariance(4, g), random_covariance(4, g, scale=0.3)
    h1, h2 = two_views(a0, c, 4000, g)
    loss = TheoryLoss("info_nce_family", batch=50, beta=0.5)
    prediction = predict(view_covariances(h1, h2), loss, output_dim=6)
    weight = weights_from_gram(prediction.gram, 6)
    result = theory_probe(h1, h2, weight, torch.zeros(6), loss, loss_fn=lambda u, v: info_nce_loss(u, v, beta=0.5))
    report = result.report
    assert np.allclose(report["measured_eigenvalues"], report["predicted_eigenvalues"], atol=1e-8)
    assert report["measured_rank"] == report["predicted_rank"]
    assert report["max_principal_angle_deg"] < 1e-3
    assert report["theory_loss_trained"] == pytest.approx(report["theory_loss_predicted"], rel=1e-8)
    assert report["loss_trained"] == pytest.approx(report["loss_predicted"], rel=1e-4)


def test_spectral_contrastive_prediction_with_mu_and_bias():
    """SCL: B = 2A0/mu − wd/2, q = 1/mu on uncentred features extended by the bias's constant input."""
    g = torch.Generator().manual_seed(5)
    a = torch.tensor([0.3, 0.8, 1.5], dtype=torch.float64)
    noise = torch.tensor([0.4, 0.1, 0.6], dtype=torch.float64)
    mu, decay = 2.0, 0.02
    h1, h2 = two_views(torch.diag(a), torch.diag(noise), 60_000, g)  # zero mean: the constant input decouples
    loss = TheoryLoss("spectral_contrastive", batch=64, mu=mu, weight_decay=decay)
    result = theory_probe(h1, h2, torch.randn(5, 3, dtype=torch.float64, generator=g), torch.zeros(5), loss,
                          loss_fn=lambda u, v: spectral_contrastive_loss(u, v, mu=mu))
    assert result.report["bias_as_input"] and result.report["feature_dim"] == 4
    second = torch.cat([a, torch.ones(1, dtype=torch.float64)])  # the constant input: A0 = 1, C = 0
    sigma = second + torch.cat([noise, torch.zeros(1, dtype=torch.float64)])
    b = 2 * second / mu - decay / 2
    expected = np.sort((b / (2 * (1 / mu) * sigma**2)).numpy())[::-1]
    assert np.allclose(result.report["predicted_eigenvalues"], expected, atol=0.03 * expected.max())
    assert result.report["loss_predicted"] < result.report["loss_trained"]  # a random W is not stationary


def test_normalized_prediction_is_scale_free_and_has_norm_c():
    g = torch.Generator().manual_seed(6)
    a0, c = random_covariance(5, g), random_covariance(5, g, scale=0.5)
    h1, h2 = two_views(a0, c, 4000, g)
    loss = TheoryLoss("normalized", batch=64, temperature=0.5)
    weight = torch.randn(4, 5, generator=g, dtype=torch.float64)
    first = theory_probe(h1, h2, weight, None, loss)
    second = theory_probe(h1, h2, 3.0 * weight, None, loss)
    assert np.allclose(first.report["measured_eigenvalues"], second.report["measured_eigenvalues"])
    sigma = torch.as_tensor(first.arrays["Sigma"])
    for gram in (first.arrays["predicted_gram"], first.arrays["measured_gram"]):
        assert float(torch.trace(torch.as_tensor(gram) @ sigma)) == pytest.approx(1 / 0.5, rel=1e-8)
    assert first.report["predicted_rank"] <= 4
    assert "Thm. 2" in first.report["theorem"]


def test_barlow_twins_predicts_only_the_curvature_sign():
    g = torch.Generator().manual_seed(7)
    h1, h2 = two_views(random_covariance(3, g), random_covariance(3, g), 500, g)
    result = theory_probe(h1, h2, torch.randn(2, 3, generator=g), None, TheoryLoss("barlow_twins", batch=32))
    assert result.report["predicted_rank"] is None and result.report["predicted_eigenvalues"] is None
    assert result.report["nonpositive_directions"] == 0
    assert "not describe" in result.report["message"]
    assert len(result.report["measured_eigenvalues"]) == 3


def test_principal_angles_of_known_planes():
    angle = math.radians(30)
    plane1 = torch.tensor([[1.0, 0.0], [0.0, 1.0], [0.0, 0.0]], dtype=torch.float64)
    plane2 = torch.tensor([[1.0, 0.0], [0.0, math.cos(angle)], [0.0, math.sin(angle)]], dtype=torch.float64)
    assert np.allclose(principal_angles(plane1, 5 * plane2), [0.0, 30.0], atol=1e-6)
    assert principal_angles(plane1, plane2[:, :0]).size == 0


@pytest.mark.parametrize("kind", ["info_nce_family", "normalized", "spectral_contrastive"])
def test_prediction_equals_the_closed_forms_in_the_non_commuting_case(kind):
    """The probe's own eigen-algebra against `stationary_gram` / `normalized_stationary_gram`."""
    from sslprobe.theory import (
        normalized_stationary_gram,
        normalized_surviving_mask,
        origin_hessian,
        quartic_weight,
        stationary_gram,
    )

    g = torch.Generator().manual_seed(8)
    a0, c = random_covariance(6, g), random_covariance(6, g, scale=0.8)
    h1, h2 = two_views(a0, c, 3000, g)
    loss = TheoryLoss(kind, batch=40, temperature=0.7, beta=0.6 if kind == "info_nce_family" else 1.0, mu=1.5,
                      weight_decay=0.01)
    estimate = view_covariances(h1, h2, centred=loss.centred)
    prediction = predict(estimate, loss, output_dim=6)
    n = paper_n_from_batch(40)
    if kind == "spectral_contrastive":
        B = origin_hessian(kind, estimate.A0, estimate.C, mu=1.5, weight_decay=0.005)
        expected = stationary_gram(B, estimate.Sigma, quartic=quartic_weight(kind, mu=1.5))
    elif kind == "info_nce_family":
        B = origin_hessian("beta_info_nce", estimate.A0, estimate.C, n=n, beta=0.6, weight_decay=0.01 * 0.7 / 2)
        expected = 0.7 * stationary_gram(B, estimate.Sigma, quartic=quartic_weight("beta_info_nce", 0.6))
    else:
        B = origin_hessian("info_nce", estimate.A0, estimate.C, n=n)
        q = quartic_weight("info_nce")
        mask = normalized_surviving_mask(B, estimate.Sigma, norm=1 / 0.7, quartic=q)
        expected = normalized_stationary_gram(B, estimate.Sigma, mask, norm=1 / 0.7, quartic=q)
    assert torch.allclose(prediction.gram, expected, atol=1e-9 * float(expected.abs().max()))
    assert prediction.rank == int((torch.linalg.eigvalsh(expected) > 1e-9 * float(expected.abs().max())).sum())


def test_quartic_term_is_gaussian_on_gaussian_features_and_not_on_heavy_tails():
    from sslprobe.probes.theory import quartic_gaussian_ratio

    g = torch.Generator().manual_seed(9)
    a0, c = random_covariance(3, g), random_covariance(3, g, scale=0.3)
    h1, h2 = two_views(a0, c, 1500, g)
    weight = torch.randn(2, 3, generator=g, dtype=torch.float64)
    assert quartic_gaussian_ratio(h1, h2, weight) == pytest.approx(1.0, abs=0.1)
    torch.manual_seed(10)
    heavy = torch.distributions.StudentT(5.0).sample((1500, 3)).double()  # kurtosis 9 instead of 3
    noise = 0.3 * torch.randn(1500, 3, generator=g, dtype=torch.float64)
    assert quartic_gaussian_ratio(heavy, heavy + noise, weight) > 1.3
    result = theory_probe(h1, h2, weight, None, TheoryLoss("info_nce_family", batch=64, beta=0.5))
    assert result.report["quartic_mc_over_gaussian_trained"] == pytest.approx(1.0, abs=0.1)
    assert result.report["quartic_mc_over_gaussian_predicted"] == pytest.approx(1.0, abs=0.1)
