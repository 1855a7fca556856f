"""The theory probe's estimators on real features: A0, C and Σ of two views, principal angles, numerical
rank, and the fourth-order term against its Gaussian form (Prop. 1)."""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch

from sslprobe.probes.spectrum import collapsed_directions


@dataclass
class FeatureCovariances:
    """A0, C, Σ of Eq. 3 estimated from two views' features (module docstring).

    Attributes:
        A0, C, Sigma: (d, d) float64.
        num_samples: N.
        centred: whether the features were centred.
    """

    A0: torch.Tensor
    C: torch.Tensor
    Sigma: torch.Tensor
    num_samples: int
    centred: bool


def _as_float64(h: torch.Tensor) -> torch.Tensor:
    if h.ndim != 2:
        raise ValueError(f"expected features of shape (N, d), got {tuple(h.shape)}")
    return h.detach().to(torch.float64).cpu()


def view_covariances(h1: torch.Tensor, h2: torch.Tensor, centred: bool = True) -> FeatureCovariances:
    """The estimators of the module docstring.

    Args:
        h1, h2: (N, d) features of the two views of the same N images, row i from image i.
        centred: subtract the joint mean (InfoNCE family) or not (second moments: SCL, Barlow).

    Returns:
        `FeatureCovariances`.
    """
    h1, h2 = _as_float64(h1), _as_float64(h2)
    if h1.shape != h2.shape or h1.shape[0] < 2:
        raise ValueError(f"need two (N >= 2, d) views of equal shape, got {tuple(h1.shape)}, {tuple(h2.shape)}")
    n = h1.shape[0]
    if centred:
        mean = (h1.mean(0) + h2.mean(0)) / 2
        u, v, dof = h1 - mean, h2 - mean, n - 1
    else:
        u, v, dof = h1, h2, n
    cross = u.T @ v  # (d, d)
    a0 = (cross + cross.T) / (2 * dof)
    difference = h1 - h2
    difference = difference - difference.mean(0)  # E[ε1 − ε2] = 0 for exchangeable views
    c = difference.T @ difference / (2 * (n - 1))
    return FeatureCovariances(a0, c, a0 + c, n, centred)


def principal_angles(basis1: torch.Tensor, basis2: torch.Tensor) -> np.ndarray:
    """Principal angles (degrees, ascending) between the column spaces of two (d, k_i) matrices.

    Returns:
        (min(k1, k2),) float64 array; empty if either space is empty.
    """
    if basis1.shape[1] == 0 or basis2.shape[1] == 0:
        return np.zeros(0)
    q1 = torch.linalg.qr(basis1.to(torch.float64))[0]
    q2 = torch.linalg.qr(basis2.to(torch.float64))[0]
    cosines = torch.linalg.svdvals(q1.T @ q2).clamp(-1.0, 1.0)
    return np.sort(np.degrees(np.arccos(cosines.numpy())))


def _top_eigenvectors(gram: torch.Tensor, rank: int) -> torch.Tensor:
    values, vectors = torch.linalg.eigh(gram)
    return vectors[:, torch.argsort(values, descending=True)[:rank]]


def _numerical_rank(eigenvalues: np.ndarray, threshold: float) -> int:
    return int(eigenvalues.size - collapsed_directions(eigenvalues, threshold)) if eigenvalues.max(initial=0) > 0 else 0


def quartic_gaussian_ratio(
    h1: torch.Tensor, h2: torch.Tensor, weight: torch.Tensor, max_images: int = 2048, seed: int = 0
) -> float:
    """Monte-Carlo value of the InfoNCE family's fourth-order term over its Gaussian form (Prop. 1).

    The log-sum's quartic term is ``β/8 · E_x Var_χ |W(x − χ)|²`` (`quartic_weight`), with the
    anchor x fixed and χ running over its negatives; for Gaussian inputs it equals
    ``¾β · Tr[(WΣWᵀ)²]`` because ``E_x Var_χ|W(x − χ)|² = 6 Tr[(WΣWᵀ)²]``. This returns
    ``E_x Var_χ|W(x − χ)|² / (6 Tr[(WΣWᵀ)²])`` measured on the features: anchors are the rows of
    ``h1``, negatives every row of both views except the anchor's own two. 1 for Gaussian
    features; the stationary ``WᵀW`` of Thm. 1 scales with 1/q, so a ratio r moves the predicted
    magnitudes by about 1/r (not the collapse pattern, which B alone decides).

    Args:
        h1, h2: (N, d) features of the two views; weight: (k, d).
        max_images: use at most this many images (a random subset drawn with ``seed``), so the
            (n, 2n) distance matrix stays small.

    Returns:
        The ratio (nan for a zero W).
    """
    if h1.shape[0] > max_images:
        chosen = torch.randperm(h1.shape[0], generator=torch.Generator().manual_seed(seed))[:max_images]
        h1, h2 = h1[chosen], h2[chosen]
    w = weight.to(torch.float64)
    y1, y2 = h1.to(torch.float64) @ w.T, h2.to(torch.float64) @ w.T  # (N, k)
    n = y1.shape[0]
    everything = torch.cat([y1, y2])  # (2N, k)
    distances = (y1 * y1).sum(1)[:, None] + (everything * everything).sum(1)[None, :] - 2 * y1 @ everything.T
    own = torch.zeros(n, 2 * n, dtype=torch.bool)
    own[torch.arange(n), torch.arange(n)] = True
    own[torch.arange(n), torch.arange(n) + n] = True
    negatives = distances.masked_fill(own, float("nan"))  # (N, 2N)
    mean = torch.nanmean(negatives, dim=1, keepdim=True)
    variance = torch.nanmean((negatives - mean) ** 2, dim=1) * (2 * n - 2) / (2 * n - 3)
    centred = torch.cat([h1, h2]).to(torch.float64)
    centred = centred - centred.mean(0)
    gram = w @ (centred.T @ centred / (2 * n - 1)) @ w.T  # W Σ Wᵀ
    gaussian = 6.0 * float((gram * gram).sum())
    return float(variance.mean()) / gaussian if gaussian > 0 else math.nan
