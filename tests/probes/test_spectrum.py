import numpy as np
import pytest
import torch

from sslprobe.probes import (
    collapsed_directions,
    covariance_eigenvalues,
    effective_rank,
    singular_values,
    spectrum_report,
    stable_rank,
)


def orthogonal(n: int, generator: torch.Generator) -> torch.Tensor:
    q, _ = torch.linalg.qr(torch.randn(n, n, generator=generator, dtype=torch.float64))
    return q


def weight_from_svd(sigma: np.ndarray, d_out: int, d_in: int, seed: int = 0) -> torch.Tensor:
    generator = torch.Generator().manual_seed(seed)
    k = len(sigma)
    u = orthogonal(d_out, generator)[:, :k]
    v = orthogonal(d_in, generator)[:, :k]
    return (u * torch.as_tensor(sigma)) @ v.T


def test_singular_values_of_weight_built_from_chosen_svd():
    sigma = np.array([5.0, 3.0, 1.0, 0.5, 1e-3])
    weight = weight_from_svd(sigma, d_out=5, d_in=9).float()
    np.testing.assert_allclose(singular_values(weight), sigma, rtol=1e-5, atol=1e-6)


def test_covariance_eigenvalues_match_numpy_and_accept_chunks():
    generator = torch.Generator().manual_seed(1)
    variances = np.array([4.0, 1.0, 0.25, 0.0])
    rotation = orthogonal(4, generator)
    features = (torch.randn(3000, 4, generator=generator, dtype=torch.float64) * variances**0.5) @ rotation.T
    features = (features + 7.0).float()  # an offset the covariance must remove
    expected = np.sort(np.linalg.eigvalsh(np.cov(features.double().numpy().T, bias=True)))[::-1]
    eigenvalues = covariance_eigenvalues(features)
    np.testing.assert_allclose(eigenvalues, expected, rtol=1e-6, atol=1e-6)
    np.testing.assert_allclose(eigenvalues, variances, rtol=0.1, atol=1e-5)
    assert np.all(np.diff(eigenvalues) <= 0) and eigenvalues.dtype == np.float64
    np.testing.assert_allclose(covariance_eigenvalues(list(features.split(700))), eigenvalues, rtol=1e-10)


def test_effective_rank_flat_spectrum_is_dimension_and_rank_one_is_one():
    assert effective_rank(np.ones(64)) == pytest.approx(64.0, rel=1e-4)
    assert effective_rank(3.7 * np.ones(64)) == pytest.approx(64.0, rel=1e-4)
    # RankMe's eps = 1e-7 on each of the 63 empty entries adds about 63 · 1.6e-6 to the entropy
    assert effective_rank(np.r_[1.0, np.zeros(63)]) == pytest.approx(1.0, abs=2e-4)
    assert 1.0 < effective_rank(np.array([1.0, 0.5, 0.25])) < 3.0
    assert effective_rank(np.zeros(5)) == 0.0


def test_stable_rank_is_frobenius_over_spectral_norm_squared():
    weight = weight_from_svd(np.array([2.0, 1.0, 1.0, 0.1]), d_out=6, d_in=4, seed=3)
    expected = float(torch.linalg.matrix_norm(weight, "fro") ** 2 / torch.linalg.matrix_norm(weight, 2) ** 2)
    assert stable_rank(singular_values(weight)) == pytest.approx(expected, rel=1e-10)
    assert stable_rank(np.ones(7)) == pytest.approx(7.0)


def test_collapsed_directions_counts_eigenvalues_below_relative_threshold():
    eigenvalues = np.array([2.0, 1.0, 1e-3, 1.9e-4, 1e-6, 0.0])
    assert collapsed_directions(eigenvalues) == 3
    assert collapsed_directions(eigenvalues, relative_threshold=1e-2) == 4
    assert collapsed_directions(np.zeros(3)) == 3


def test_spectrum_report_sees_dimensional_collapse_of_embeddings():
    generator = torch.Generator().manual_seed(2)
    features = torch.randn(2000, 8, generator=generator)
    projection = weight_from_svd(np.array([3.0, 2.0, 1.0]), d_out=8, d_in=8, seed=4).float()  # rank 3
    embeddings = features @ projection.T
    report = spectrum_report(weight=projection, features=features, embeddings=embeddings)
    assert report["weight_collapsed"] == 5
    assert report["embeddings_collapsed"] == 5
    assert report["features_collapsed"] == 0
    assert report["features_effective_rank"] == pytest.approx(8.0, rel=0.05)
    assert report["weight_stable_rank"] == pytest.approx((9 + 4 + 1) / 9)
    np.testing.assert_allclose(report["weight_eigenvalues"], report["weight_singular_values"] ** 2)
    assert report["embeddings_eigenvalues"].shape == (8,)
    assert set(spectrum_report(features=features)) == {
        "features_eigenvalues",
        "features_effective_rank",
        "features_stable_rank",
        "features_collapsed",
    }
