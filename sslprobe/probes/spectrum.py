"""Spectra of a weight matrix and of representations, and the scalars that summarise them.

Two kinds of spectrum appear here and every function says which one it takes:

- **singular values** σ_k of a matrix (a weight W, or a centred embedding matrix Z);
- **eigenvalues** λ_k of a covariance (of features, of embeddings, or WᵀW), λ_k = σ_k² up to
  the 1/N of the covariance.

Effective rank (RankMe) and stable rank are defined on singular values; the count of collapsed
directions is defined on eigenvalues, i.e. on variances, which is the scale of the paper's
statements about the eigenvalues of WᵀW (Thm. 1, Fig. 5). `spectrum_report` converts between
the two so a caller never has to.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch

RANKME_EPS = 1e-7


def as_matrix(features: torch.Tensor | Sequence[torch.Tensor]) -> torch.Tensor:
    """One (N, D) tensor from a tensor or from a list of (n_i, D) chunks (concatenated)."""
    if isinstance(features, torch.Tensor):
        matrix = features
    else:
        matrix = torch.cat([chunk.detach().reshape(chunk.shape[0], -1) for chunk in features])
    if matrix.ndim != 2:
        raise ValueError(f"expected an (N, D) matrix, got shape {tuple(matrix.shape)}")
    return matrix.detach()


def singular_values(weight: torch.Tensor) -> np.ndarray:
    """Singular values of a matrix, descending, computed in float64.

    Args:
        weight: (d_out, d_in) matrix, e.g. an `nn.Linear` weight.

    Returns:
        (min(d_out, d_in),) float64 array σ_1 >= σ_2 >= ... >= 0.
    """
    if weight.ndim != 2:
        raise ValueError(f"expected a 2-D weight, got shape {tuple(weight.shape)}")
    values = torch.linalg.svdvals(weight.detach().to(torch.float64))
    return values.cpu().numpy()


def covariance_eigenvalues(
    features: torch.Tensor | Sequence[torch.Tensor], center: bool = True
) -> np.ndarray:
    """Eigenvalues of the covariance ``(X - x̄)ᵀ (X - x̄) / N`` of a feature matrix, descending.

    The mean and the (D, D) product are accumulated in float64, so 50,000 float32 rows lose no
    precision in the small eigenvalues that measure collapse. Tiny negative round-off is clipped
    to 0.

    Args:
        features: (N, D) features, or a list of (n_i, D) chunks.
        center: subtract the mean first (covariance); ``False`` gives the second-moment matrix
            XᵀX / N, whose eigenvalues are the squared singular values of X / √N as used by
            RankMe on raw embeddings.

    Returns:
        (D,) float64 array λ_1 >= λ_2 >= ... >= 0, the variances along the principal axes.
    """
    matrix = as_matrix(features).to(torch.float64)
    if center:
        matrix = matrix - matrix.mean(dim=0, keepdim=True)
    second_moment = matrix.T @ matrix / matrix.shape[0]  # (D, D)
    eigenvalues = torch.linalg.eigvalsh(second_moment).flip(0).clamp_min(0.0)
    return eigenvalues.cpu().numpy()


def effective_rank(singular_values: np.ndarray | torch.Tensor, eps: float = RANKME_EPS) -> float:
    """RankMe effective rank (Garrido et al. 2023): exp of the entropy of normalised singular values.

    ``p_k = σ_k / Σ_j σ_j + eps`` and ``exp(-Σ_k p_k log p_k)``. A flat spectrum of D values
    gives D, a rank-1 spectrum gives 1 (up to ``eps``). Scale-free: multiplying every σ_k by a
    constant changes nothing. From covariance eigenvalues pass ``sqrt(eigenvalues)``.

    Args:
        singular_values: (K,) non-negative singular values (not eigenvalues).
        eps: added to each p_k so that log 0 never occurs.

    Returns:
        Effective rank in [1, K]; 0.0 for an all-zero spectrum (the zero matrix has rank 0).
    """
    sigma = np.asarray(singular_values, dtype=np.float64)
    total = sigma.sum()
    if total <= 0:
        return 0.0
    p = sigma / total + eps
    return float(np.exp(-(p * np.log(p)).sum()))


def stable_rank(singular_values: np.ndarray | torch.Tensor) -> float:
    """Stable rank ``‖W‖_F² / ‖W‖_2² = Σ_k σ_k² / σ_1²``, in [1, rank W].

    Args:
        singular_values: (K,) singular values of W (not eigenvalues).

    Returns:
        The stable rank; 0.0 for the zero matrix.
    """
    sigma = np.asarray(singular_values, dtype=np.float64)
    largest = sigma.max(initial=0.0)
    if largest <= 0:
        return 0.0
    return float((sigma**2).sum() / largest**2)


def collapsed_directions(eigenvalues: np.ndarray | torch.Tensor, relative_threshold: float = 1e-4) -> int:
    """Number of eigenvalues below ``relative_threshold`` times the largest one.

    Args:
        eigenvalues: (K,) eigenvalues of a covariance or of WᵀW (variances, i.e. σ², not σ).
        relative_threshold: fraction of the largest eigenvalue under which a direction counts
            as collapsed. 1e-4 on variances is a factor 100 on singular values.

    Returns:
        The count; K for an all-zero spectrum.
    """
    lam = np.asarray(eigenvalues, dtype=np.float64)
    largest = lam.max(initial=0.0)
    if largest <= 0:
        return int(lam.size)
    return int((lam < relative_threshold * largest).sum())


def spectrum_report(
    weight: torch.Tensor | None = None,
    features: torch.Tensor | Sequence[torch.Tensor] | None = None,
    embeddings: torch.Tensor | Sequence[torch.Tensor] | None = None,
    collapse_threshold: float = 1e-4,
) -> dict[str, np.ndarray | float | int]:
    """Spectra and their summaries for a weight, backbone features and projector embeddings.

    Any argument may be ``None`` (a method without projector has no weight); its keys are then
    absent. Keys, for each present input ``name`` in {"weight", "features", "embeddings"}:

    - ``weight_singular_values`` (min(d_out, d_in),) and ``weight_eigenvalues`` = σ² (the
      non-zero eigenvalues of WᵀW);
    - ``{features,embeddings}_eigenvalues`` (D,): centred covariance eigenvalues;
    - ``{name}_effective_rank``: RankMe on singular values (σ for the weight, √λ for the
      covariance, i.e. the singular values of the centred matrix / √N);
    - ``{name}_stable_rank``: Σσ² / σ_1², i.e. Σλ / λ_1;
    - ``{name}_collapsed``: eigenvalues below ``collapse_threshold`` × the largest.

    The centring departs from RankMe's raw embedding matrix on purpose: a constant offset shared
    by every sample is not a direction the representation uses to tell samples apart.

    Args:
        weight: (d_out, d_in) weight, e.g. the projector's last `nn.Linear`.
        features: (N, D_f) backbone features, or a list of chunks.
        embeddings: (N, D_e) projector outputs, or a list of chunks.
        collapse_threshold: relative eigenvalue threshold of `collapsed_directions`.

    Returns:
        Dict of float64 arrays and Python scalars (npz- and JSON-friendly after ``tolist``).
    """
    report: dict[str, np.ndarray | float | int] = {}
    if weight is not None:
        sigma = singular_values(weight)
        report["weight_singular_values"] = sigma
        report["weight_eigenvalues"] = sigma**2
        report["weight_effective_rank"] = effective_rank(sigma)
        report["weight_stable_rank"] = stable_rank(sigma)
        report["weight_collapsed"] = collapsed_directions(sigma**2, collapse_threshold)
    for name, matrix in (("features", features), ("embeddings", embeddings)):
        if matrix is None:
            continue
        lam = covariance_eigenvalues(matrix)
        sigma = np.sqrt(lam)
        report[f"{name}_eigenvalues"] = lam
        report[f"{name}_effective_rank"] = effective_rank(sigma)
        report[f"{name}_stable_rank"] = stable_rank(sigma)
        report[f"{name}_collapsed"] = collapsed_directions(lam, collapse_threshold)
    return report
