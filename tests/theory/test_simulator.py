"""The batched simulator against per-model computation and the closed-form stationary points."""

import functools

import torch

from sslprobe.losses import info_nce_loss, spectral_contrastive_loss
from sslprobe.theory import (
    batched_loss,
    gaussian_dataset,
    local_minimum_rank,
    origin_hessian,
    pair_covariance,
    paper_n_from_batch,
    quartic_weight,
    ridge_regression_error,
    second_moment,
    stationary_gram,
    train_linear_models,
    train_mlp_models,
)


def test_batched_loss_equals_per_model_loop_with_per_model_beta():
    g = torch.Generator().manual_seed(0)
    z1, z2 = torch.randn(4, 10, 3, generator=g), torch.randn(4, 10, 3, generator=g)
    betas = torch.tensor([0.3, 0.5, 1.0, 1.7])
    loss = functools.partial(info_nce_loss, alpha=0.2)
    batched = batched_loss(loss, z1, z2, {"beta": betas})
    looped = torch.stack([loss(z1[m], z2[m], beta=float(betas[m])) for m in range(4)])
    assert torch.allclose(batched, looped, atol=1e-6)


def test_exact_covariance_dataset():
    covariance = torch.diag(torch.tensor([2.0, 0.5, 1.0], dtype=torch.float64))
    data = gaussian_dataset(20, covariance, torch.Generator().manual_seed(1), exact_covariance=True)
    assert torch.allclose(pair_covariance(data), covariance, atol=1e-5)
    assert data.mean(0).abs().max() < 1e-5


def test_spectral_contrastive_training_reaches_the_closed_form_stationary_point():
    """SCL's expansion is exact at fourth order (q = 1), so Eq. 9 should hold at convergence."""
    a = torch.tensor([1.0, 0.4], dtype=torch.float64)
    noise = torch.tensor([0.3, 0.6], dtype=torch.float64)
    data = gaussian_dataset(64, torch.diag(a), torch.Generator().manual_seed(2), exact_covariance=True)
    loss = functools.partial(spectral_contrastive_loss, mu=100.0)  # no clipping near the solution
    result = train_linear_models(data, torch.diag(noise.sqrt()).float()[None], loss, output_dim=2, steps=800,
                                 learning_rate=3e-3, seed=3)
    moment = second_moment(data)
    sigma = moment + torch.diag(noise)
    predicted = stationary_gram(origin_hessian("spectral_contrastive", moment, torch.diag(noise)), sigma,
                                quartic=quartic_weight("spectral_contrastive"))
    measured = result.weights[0].double().T @ result.weights[0].double()
    assert (measured - predicted).abs().max() < 0.1 * predicted.abs().max()
    assert bool(result.convergence.converged.all())
    assert result.convergence.gradient_norm[0] < 0.25 * result.convergence.initial_gradient_norm[0]


def test_beta_info_nce_sweep_collapses_the_predicted_directions():
    """β = 0.5: with C = σ² diag(1, 0.1), direction 1 collapses once σ² > k·a1 = k."""
    beta, batch = 0.5, 32
    data = gaussian_dataset(batch, torch.eye(2, dtype=torch.float64), torch.Generator().manual_seed(4),
                            exact_covariance=True)
    sigmas = torch.tensor([0.8, 1.6, 4.0], dtype=torch.float64)
    shape = torch.tensor([1.0, 0.1], dtype=torch.float64)
    factors = torch.diag_embed(sigmas[:, None] * shape.sqrt())
    result = train_linear_models(data, factors, functools.partial(info_nce_loss, beta=beta), output_dim=2,
                                 steps=600, learning_rate=3e-3, seed=5)
    gram_diagonal = (result.weights.double().transpose(1, 2) @ result.weights.double()).diagonal(dim1=1, dim2=2)
    a0 = pair_covariance(data)
    for m, sigma in enumerate(sigmas):
        noise_cov = torch.diag(sigma**2 * shape)
        hessian = origin_hessian("beta_info_nce", a0, noise_cov, n=paper_n_from_batch(batch), beta=beta)
        predicted = stationary_gram(hessian, a0 + noise_cov, quartic=quartic_weight("beta_info_nce", beta))
        survivors = hessian.diagonal() > 0
        assert local_minimum_rank(hessian, 2) == int(survivors.sum())
        scale = 1.0 / float((a0 + noise_cov).diagonal().mean())
        for i in range(2):
            if survivors[i] and predicted[i, i] * (a0 + noise_cov)[i, i] < 0.1:
                # inside the fourth-order regime (|W Σ Wᵀ| small) the magnitude follows Thm. 1
                assert 0.5 < gram_diagonal[m, i] / predicted[i, i] < 2.0
            elif survivors[i]:
                assert gram_diagonal[m, i] > 1e-2 * scale
            else:
                assert gram_diagonal[m, i] < 1e-3 * scale


def test_convergence_report_tells_short_from_long_training():
    data = gaussian_dataset(16, torch.eye(2, dtype=torch.float64), torch.Generator().manual_seed(6),
                            exact_covariance=True)
    factor = 2.0 * torch.eye(2)[None]  # noise-dominated: a finite minimum exists (small noise lets W run away)
    short = train_linear_models(data, factor, info_nce_loss, output_dim=2, steps=20, learning_rate=1e-4, seed=7)
    long = train_linear_models(data, factor, info_nce_loss, output_dim=2, steps=600, learning_rate=3e-3, seed=7)
    assert not bool(short.convergence.converged.any())
    assert long.convergence.plateau_t[0] < 3.0
    assert long.convergence.spectrum_drift[0] < 0.05
    # the gradient grows with |W|, so compare each run's gradient with its own Monte-Carlo noise floor
    assert long.convergence.gradient_norm[0] < 3.0 * long.convergence.gradient_noise_floor[0]


def test_ridge_regression_error_limits():
    g = torch.Generator().manual_seed(8)
    train, test = torch.randn(500, 2, generator=g), torch.randn(500, 2, generator=g)
    informative = train[None, :, :1], test[None, :, :1]
    blind = train[None, :, 1:], test[None, :, 1:]
    good = ridge_regression_error(informative[0], train[:, 0], informative[1], test[:, 0])
    bad = ridge_regression_error(blind[0], train[:, 0], blind[1], test[:, 0])
    assert good < 1e-4
    assert abs(float(bad) - float(test[:, 0].var())) < 0.1


def test_mlp_training_runs_batched_and_reports_convergence():
    data = gaussian_dataset(16, torch.eye(3, dtype=torch.float64), torch.Generator().manual_seed(9),
                            exact_covariance=True)
    factors = torch.stack([0.2 * torch.eye(3), 2.0 * torch.eye(3)])
    result = train_mlp_models(data, factors, functools.partial(info_nce_loss, beta=0.5), hidden_dim=8, output_dim=2,
                              activation="tanh", steps=100, seed=10)
    net = result.networks
    assert net.last.shape == (2, 2, 8) and result.loss_curve.shape == (2, 100)
    # the batched forward equals each network evaluated on its own, f(x) = W3 tanh(W2 tanh(W1 x))
    for m in range(2):
        alone = torch.tanh(torch.tanh(data.float() @ net.first[m].T) @ net.second[m].T) @ net.last[m].T
        torch.testing.assert_close(net(data.float())[m], alone, rtol=1e-5, atol=1e-6)
    # the two models are trained independently: different noise, different networks and curves
    assert not torch.allclose(net.last[0], net.last[1]) and not torch.equal(result.loss_curve[0], result.loss_curve[1])
    assert torch.isfinite(result.loss_curve).all()
    assert (result.convergence.gradient_norm > 0).all() and torch.isfinite(result.convergence.gradient_norm).all()


def test_pooled_views_draw_two_distinct_views_uniformly():
    from sslprobe.theory import pooled_views

    models, count, views = 2, 5, 4
    # entry (m, i, k) holds the number 100 m + 10 i + k: a draw tells which views it took
    pool = (100 * torch.arange(models)[:, None, None] + 10 * torch.arange(count)[None, :, None]
            + torch.arange(views)[None, None, :]).float()[..., None]  # (M, N, K, 1)
    sample = pooled_views(pool)
    generator = torch.Generator().manual_seed(0)
    draws = 4000
    counts = torch.zeros(views, views)
    for _ in range(draws):
        first, second = sample(generator)
        assert torch.equal(first[..., 0] // 10, second[..., 0] // 10)  # same model and sample
        k1, k2 = (first[..., 0] % 10).long(), (second[..., 0] % 10).long()
        assert bool((k1 != k2).all())
        counts.index_put_((k1.flatten(), k2.flatten()), torch.ones(k1.numel()), accumulate=True)
    expected = draws * models * count / (views * (views - 1))
    off_diagonal = counts[~torch.eye(views, dtype=torch.bool)]
    assert float((off_diagonal - expected).abs().max()) < 5 * expected**0.5  # binomial spread
