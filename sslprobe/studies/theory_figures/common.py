"""What the theory figures share: the collapse threshold, relative gaps, crossings and the landscape check."""

from __future__ import annotations

import math

import torch

from sslprobe.theory import (
    expected_linear_loss,
    weights_from_gram,
)

COLLAPSE_THRESHOLD = 1e-3  # λ_i < 1e-3 · s_m² (s_m: the model's input scale) counts as collapsed


def relative_gap(predicted: float, measured: float) -> float:
    """|measured − predicted| / |predicted|; when either is not finite, 0 if the two are equal, else inf."""
    if not (math.isfinite(predicted) and math.isfinite(measured)):
        return math.inf if predicted != measured else 0.0
    return abs(measured - predicted) / max(abs(predicted), 1e-12)


def input_scale_squared(data: torch.Tensor, noise_variances: torch.Tensor) -> torch.Tensor:
    """s_m² = 1 / mean eigenvalue of Σ_m, the unit of WᵀW used by the collapse threshold."""
    data_power = (data.double() ** 2).sum(-1).mean() / data.shape[-1]
    return 1.0 / (data_power + noise_variances.double())


def phase_code(collapsed: torch.Tensor) -> torch.Tensor:
    """0 none, 1 content (x1) collapsed, 2 style (x2) collapsed, 3 both."""
    return collapsed[..., 0].long() + 2 * collapsed[..., 1].long()


def loglog_slope(x: torch.Tensor, y: torch.Tensor) -> float:
    """Least-squares slope of log y against log x (y clamped to 1e-300 before the log)."""
    lx, ly = x.double().log(), y.double().clamp_min(1e-300).log()
    lx, ly = lx - lx.mean(), ly - ly.mean()
    return float((lx * ly).sum() / (lx * lx).sum())


def first_crossing(xs: list[float], values: list[float]) -> float:
    """Interpolated x where ``values`` first changes sign from positive to non-positive (log x)."""
    for i in range(1, len(xs)):
        if values[i - 1] > 0 >= values[i] or values[i - 1] <= 0 < values[i]:
            lo, hi = math.log(xs[i - 1]), math.log(xs[i])
            t = values[i - 1] / (values[i - 1] - values[i])
            return math.exp(lo + t * (hi - lo))
    return math.nan


def cost_of_removing_weakest_direction(data, noise_std, loss, gram, samples) -> dict:
    """E[loss] at the predicted stationary point with its weakest direction removed, minus at the point.

    Positive: the expected loss of the actual loss function keeps that direction (no collapse in the
    landscape), so a measured collapse there comes from the stochastic training dynamics.
    """
    weights = weights_from_gram(gram, gram.shape[0])
    values, vectors = torch.linalg.eigh(gram)
    weakest = vectors[:, 0]
    removed = weights - (weights @ weakest)[:, None] * weakest[None, :]
    dim = gram.shape[0]
    pair = expected_linear_loss(torch.stack([weights, removed]), data, noise_std * torch.eye(dim), loss,
                                samples=samples, seed=99)
    return {"weakest_predicted_eigenvalue": float(values[0]), "loss_increase_when_removed": float(pair[1] - pair[0]),
            "monte_carlo_samples": samples}
