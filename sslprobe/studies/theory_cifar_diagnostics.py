"""The frozen-feature study's diagnostics (`sslprobe.studies.theory_cifar`): why a point may disagree.

Expected losses are Monte Carlo over `pooled_views` draws of one (N, K, d) pool of views, every W
on the same draws (`loss_draws`); `diagnose` holds the quartic term's Gaussian form and Eq. 3
against them, `missing_direction_check` puts back a direction that training dropped.
"""

from __future__ import annotations

import math

import torch

from sslprobe.probes.theory_estimates import quartic_gaussian_ratio
from sslprobe.probes.theory_prediction import TheoryLoss
from sslprobe.theory.closed_forms import landscape
from sslprobe.theory.simulator import batched_loss, pooled_views


def loss_draws(loss, weights: torch.Tensor, pool: torch.Tensor, samples: int, seed: int) -> torch.Tensor:
    """The loss of each of G weights (G, k, d) on ``samples`` `pooled_views` draws of one (N, K, d) pool.

    Every W sees the same draws (common random numbers), so differences carry little noise.

    Returns:
        (samples, G) float64 losses.
    """
    sample = pooled_views(pool[None].float())
    generator = torch.Generator().manual_seed(seed)
    weights = weights.float()
    rows = []
    with torch.no_grad():
        for _ in range(samples):
            x1, x2 = sample(generator)  # (1, N, d)
            z1 = torch.einsum("nd,gkd->gnk", x1[0], weights)
            z2 = torch.einsum("nd,gkd->gnk", x2[0], weights)
            rows.append(batched_loss(loss, z1, z2).double())
    return torch.stack(rows)


def expected_loss(loss, weight: torch.Tensor, pool: torch.Tensor, samples: int, seed: int) -> float:
    """Monte-Carlo ``E loss(W)`` over `pooled_views` of one (N, K, d) pool for one (k, d) W."""
    return float(loss_draws(loss, weight[None], pool, samples, seed).mean())


def missing_direction_check(pool, weight, predicted_gram, predicted_rank: int, measured_rank: int, loss,
                            *, samples: int, seed: int) -> dict | None:
    """Does the actual loss, at the trained W, want a direction that Thm. 1 keeps and training dropped?

    v is the unit direction of the predicted surviving subspace farthest from the trained row
    space (the principal vector of the largest principal angle), u the output direction W uses
    least (its smallest left singular vector). The expected loss (common random numbers) of
    ``W + t √(vᵀ G v) u vᵀ`` minus that of W, for t = 0.1 and t = 1 (G the predicted ``WᵀW``: t = 1
    gives v its predicted variance). A positive change beyond its standard error means the trained
    point is, along v, a minimum of the actual loss with v collapsed: the prediction fails in the
    landscape (terms beyond fourth order, or the quartic's form), not by under-convergence.

    Returns:
        None unless ``measured_rank < predicted_rank``; else t -> (change, standard error).
    """
    if measured_rank >= predicted_rank or measured_rank == 0:
        return None
    weight = weight.double()
    trained_space = torch.linalg.eigh(weight.T @ weight)[1][:, -measured_rank:]
    predicted_space = torch.linalg.eigh(predicted_gram)[1][:, -predicted_rank:]
    residual = predicted_space.T @ (torch.eye(weight.shape[1], dtype=torch.float64)
                                    - trained_space @ trained_space.T) @ predicted_space
    direction = predicted_space @ torch.linalg.eigh(residual)[1][:, -1]
    direction = direction / direction.norm()
    output = torch.linalg.svd(weight)[0][:, -1]
    size = math.sqrt(abs(float(direction @ predicted_gram @ direction)))
    steps = (0.1, 1.0)
    candidates = torch.stack([weight] + [weight + t * size * torch.outer(output, direction) for t in steps])
    draws = loss_draws(loss, candidates, pool, samples, seed)
    changes = draws[:, 1:] - draws[:, :1]  # (samples, 2)
    error = changes.std(0) / math.sqrt(max(samples, 1))
    return {f"t={t:g}": [float(changes[:, i].mean()), float(error[i])] for i, t in enumerate(steps)}


def scl_quartic_ratio(h1: torch.Tensor, h2: torch.Tensor, weight: torch.Tensor) -> float:
    """SCL's repulsion ``mean_{i≠j} (f(x_i)ᵀ f(x'_j))²`` over ``Tr[(W S Wᵀ)²]``, S = E[x xᵀ] of a view.

    1 for independent samples of any distribution (`quartic_weight`); on a finite set the pairs
    i ≠ j are not independent, which this measures. (N, d) views; (k, d) weight.
    """
    w = weight.double()
    f1, f2 = h1.double() @ w.T, h2.double() @ w.T
    products = (f1 @ f2.T) ** 2
    count = products.shape[0]
    repulsion = (products.sum() - products.diagonal().sum()) / (count * (count - 1))
    second = (h1.double().T @ h1.double() + h2.double().T @ h2.double()) / (2 * count)
    gram = w @ second @ w.T
    reference = float((gram * gram).sum())
    return float(repulsion) / reference if reference > 0 else math.nan


def _rows(gram: torch.Tensor) -> torch.Tensor:
    values, vectors = torch.linalg.eigh((gram + gram.T) / 2)
    return values.clamp_min(0).sqrt()[:, None] * vectors.T  # (d, d) with WᵀW = gram


def diagnose(pool, weight, prediction, covariances, loss_fn, theory: TheoryLoss, *, loss_samples: int,
             seed: int) -> dict:
    """Why a point may disagree: the quartic term's Gaussian form and Eq. 3 against the actual loss.

    Returns:
        ``quartic_mc_over_gaussian_trained`` / ``_predicted`` (β-InfoNCE: `quartic_gaussian_ratio`;
        SCL: `scl_quartic_ratio`), ``expected_loss_trained`` / ``_predicted`` (actual loss minus its
        value at W = 0, Monte Carlo over the pool), ``eq3_trained`` / ``eq3_predicted`` (the
        fourth-order landscape at the same points), and for SCL the largest ``|f|²/mu``.
    """
    h1, h2 = pool[:, 0], pool[:, 1]
    predicted_w = _rows(prediction.gram)
    ratio = quartic_gaussian_ratio if theory.kind == "info_nce_family" else scl_quartic_ratio
    zero = expected_loss(loss_fn, torch.zeros_like(weight), pool, 1, seed)
    B = prediction.B
    out = {
        "quartic_mc_over_gaussian_trained": ratio(h1, h2, weight),
        "quartic_mc_over_gaussian_predicted": ratio(h1, h2, predicted_w) if prediction.rank else None,
        "expected_loss_trained": expected_loss(loss_fn, weight, pool, loss_samples, seed) - zero,
        "expected_loss_predicted": expected_loss(loss_fn, predicted_w, pool, loss_samples, seed) - zero,
        "eq3_trained": float(landscape(weight, B, covariances.Sigma, prediction.quartic)),
        "eq3_predicted": float(landscape(predicted_w, B, covariances.Sigma, prediction.quartic)),
    }
    if theory.kind == "spectral_contrastive":
        norms = (pool.reshape(-1, pool.shape[-1]) @ weight.T).pow(2).sum(1)
        out["max_sq_norm_over_mu"] = float(norms.max()) / theory.mu
    return out
