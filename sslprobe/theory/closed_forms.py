"""Closed forms of the linear landscape theory (Ziyin et al. 2023, Section 3, Appendix E).

Every loss here is written, near ``W = 0``, in the form of Eq. 3 with Prop. 1's quartic term

    L(W) = -Tr[W B Wᵀ] + q · Tr[W Σ Wᵀ W Σ Wᵀ] + O(|W|⁶),

where ``W`` is (d1, d0), ``Σ = A0 + C`` is the covariance of augmented inputs, ``B`` (the
"origin Hessian", `origin_hessian`) decides which directions collapse, and ``q`` is the weight
of the quartic term (``q = 1`` in the paper; `quartic_weight` gives the value that the losses
in `sslprobe.losses` actually have).

Conventions (checked against the losses in ``tests/theory/test_closed_forms.py``):

* ``B`` is defined by ``L ≈ -Tr[W B Wᵀ]``, so the Hessian of ``L`` at ``W = 0`` with respect to
  one row of ``W`` is ``-2B``. A loss whose attraction term is ``-2 E[f(x)ᵀ f(x')]`` (spectral
  contrastive, Barlow Twins) therefore has ``B = 2 A0``.
* ``A0`` is the covariance of the clean inputs in the form the loss sees it: for the InfoNCE
  family, which compares *distinct* samples, half the mean of ``(x̂_i - x̂_j)(x̂_i - x̂_j)ᵀ`` over
  pairs ``i ≠ j`` (the unbiased sample covariance of a finite batch); for the spectral
  contrastive and Barlow Twins losses, which correlate the two views of one sample, the
  uncentred second moment ``E[x̂ x̂ᵀ]``. Both equal the population covariance for zero-mean data.
* ``n`` is the paper's N in Eq. 1 and Eq. 7: the number of terms in an anchor's log-sum when
  ``alpha = 1`` (its negatives plus its positive). `sslprobe.losses.info_nce_loss` on a batch of
  ``batch`` samples uses ``2·batch`` anchors with ``2·batch - 2`` negatives each, so its ``n`` is
  `paper_n_from_batch` ``= 2·batch - 1``.
* The kernel temperature ``T`` of `info_nce_loss` is a rescaling: the loss of ``W`` at
  temperature ``T`` equals the loss of ``W / √T`` at temperature 1. Everything here is at ``T = 1``;
  the stationary Gram matrix at temperature ``T`` is ``T`` times the one returned.
* Weight decay means ``+ γ ‖W‖²_F`` added to the loss, i.e. ``B → B - γ I``.
"""

from __future__ import annotations

import math

import torch

LOSS_NAMES = (
    "info_nce",
    "weighted_info_nce",
    "beta_info_nce",
    "spectral_contrastive",
    "barlow_twins",
)


def _check_loss_name(loss: str) -> None:
    if loss not in LOSS_NAMES:
        raise ValueError(f"unknown loss {loss!r}; valid names: {', '.join(LOSS_NAMES)}")


def _symmetric(matrix: torch.Tensor) -> torch.Tensor:
    return (matrix + matrix.transpose(-1, -2)) / 2


def negatives_per_anchor(batch: int) -> int:
    """Negatives that each of the ``2·batch`` anchors of `info_nce_loss` is compared with."""
    return 2 * batch - 2


def paper_n_from_batch(batch: int) -> int:
    """The paper's N (Eq. 1, Eq. 7) that `info_nce_loss` on ``batch`` samples corresponds to.

    In Eq. 1 each anchor's log-sum has N - 1 negatives and one positive; an anchor of
    `info_nce_loss` has ``2·batch - 2`` negatives, hence ``N = 2·batch - 1``.
    """
    if batch < 2:
        raise ValueError(f"a contrastive batch needs at least 2 samples, got {batch}")
    return negatives_per_anchor(batch) + 1


def origin_hessian(
    loss: str,
    A0: torch.Tensor,
    C: torch.Tensor,
    *,
    n: int | None = None,
    alpha: float = 1.0,
    beta: float = 1.0,
    weight_decay: float = 0.0,
    mu: float = 1.0,
    standardize_eps: float | None = None,
) -> torch.Tensor:
    """The matrix B of Eq. 3, the loss's curvature at ``W = 0``, derived for sslprobe's losses.

    With ``K = n - 1`` negatives per anchor (``K → ∞`` when ``n`` is None):

    ================== ========================================= ===========================
    loss               B                                         paper prints
    ================== ========================================= ===========================
    info_nce           K / (K + 1) · A0                          A0 (Eq. 4–6)
    weighted_info_nce  K / (K + α) · A0                          A0 − (1−α) C / N (Eq. 8)
    beta_info_nce      β K / (K + α) · A0 − (1 − β) C             A0 − (1−β) C (Section 4.2)
    spectral_contr.    2 A0 / mu                                 2 C (Eq. 15)
    barlow_twins       2 A0 (unstandardised cross-correlation)   2 Σ (Section 3.2)
    barlow_twins, std. 2 A0 / eps (batch-standardised, eps > 0)  –
    ================== ========================================= ===========================

    and ``B - γ I`` with weight decay γ (Section 3.1). Derivation for the InfoNCE family: with
    ``u = ½|W(x - y)|²``, an anchor's loss is ``u₊ + β log(Σ_χ e^{-u_χ} + α e^{-u₊})``; to second
    order in W the log is ``-(Σ_χ u_χ + α u₊)/(K + α)`` plus a constant. Averaged over the
    augmentation, ``E u₊ = Tr[W C Wᵀ]`` and ``E u_χ = Tr[W (A0 + C) Wᵀ]``: every distance carries
    the anchor's own noise, so the C-terms of the positive and the negatives cancel except for
    the factor (1 − β). For the spectral contrastive and Barlow Twins losses the attraction is
    ``-2 E[f(x)ᵀ f(x')] = -2 Tr[W A0 Wᵀ]`` because the noise of the two views is independent.
    `paper_printed_origin_hessian` gives the forms as the paper prints them, for comparison.

    `spectral_contrastive_loss` divides the whole loss by ``mu`` (and clips embeddings to norm
    √mu, which is inactive near ``W = 0``), hence ``2 A0 / mu``.

    sslprobe's `barlow_twins_loss` standardises each output dimension over the batch,
    ``z / sqrt(var + eps)``. For ``var ≫ eps`` this makes it invariant to ``W → D W`` (D diagonal,
    positive), which no expansion in W describes. Near ``W = 0`` (``var ≪ eps``, i.e.
    ``|W|² s ≪ eps``: a tiny region for the default eps = 1e-5) it is ``z ≈ (z − z̄)/√eps`` and the
    loss does expand, with ``B = 2 A0 / eps`` (``standardize_eps=eps``; A0 here is the centred
    covariance of the clean inputs). With ``standardize_eps=None`` the B is that of the same loss
    on raw (unstandardised) embeddings, ``2 A0``.

    Args:
        loss: one of `LOSS_NAMES`.
        A0: (d0, d0) clean-input covariance (see the module docstring for which one).
        C: (d0, d0) covariance of the augmentation noise.
        n: the paper's N (`paper_n_from_batch`); None for the infinite-data limit.
        alpha: weight of the positive in the log-sum (Eq. 7); 1 keeps it, 0 drops it.
        beta: weight of the log-sum term (β-InfoNCE).
        weight_decay: γ in ``+ γ ‖W‖²_F`` (SGD's weight decay wd is the penalty wd/2 ‖W‖², so
            pass wd/2).
        mu: the spectral contrastive loss's normaliser (`spectral_contrastive_loss`).
        standardize_eps: Barlow Twins only: the eps of the batch standardisation, or None for
            the unstandardised cross-correlation.

    Returns:
        (d0, d0) symmetric B.

    Raises:
        ValueError: for an unknown ``loss``, or ``alpha``/``beta`` that the named loss fixes.
    """
    _check_loss_name(loss)
    if loss == "info_nce" and (alpha != 1.0 or beta != 1.0):
        raise ValueError("info_nce has alpha = beta = 1; use weighted_info_nce or beta_info_nce")
    if loss == "weighted_info_nce" and beta != 1.0:
        raise ValueError("weighted_info_nce has beta = 1; use beta_info_nce for beta != 1")
    if n is not None and n < 2:
        raise ValueError(f"n must be >= 2 (at least one negative), got {n}")
    eye = torch.eye(A0.shape[-1], dtype=A0.dtype, device=A0.device)
    if loss in ("info_nce", "weighted_info_nce", "beta_info_nce"):
        negative_share = 1.0 if n is None else (n - 1) / (n - 1 + alpha)
        hessian = beta * negative_share * A0 - (1.0 - beta) * C
    elif loss == "spectral_contrastive":
        if not mu > 0:
            raise ValueError(f"mu must be > 0, got {mu}")
        hessian = 2.0 * A0 / mu
    elif standardize_eps is not None:
        if not standardize_eps > 0:
            raise ValueError(f"standardize_eps must be > 0, got {standardize_eps}")
        hessian = 2.0 * A0 / standardize_eps
    else:
        hessian = 2.0 * A0
    return _symmetric(hessian - weight_decay * eye)


def paper_printed_origin_hessian(
    loss: str,
    A0: torch.Tensor,
    C: torch.Tensor,
    *,
    n: int | None = None,
    alpha: float = 1.0,
    beta: float = 1.0,
    weight_decay: float = 0.0,
) -> torch.Tensor:
    """B as the paper prints it (Table 1, Eq. 8, Eq. 15, Section 3.2 and 4.2), for comparison.

    info_nce ``A0``; weighted_info_nce ``A0 − (1−α) C / N`` (Eq. 8); beta_info_nce
    ``A0 − (1−β) C``; spectral_contrastive ``2C`` (Eq. 15); barlow_twins ``2Σ``; minus ``γI``.
    `origin_hessian` is what sslprobe's losses actually have; the two differ (see its docstring).
    """
    _check_loss_name(loss)
    eye = torch.eye(A0.shape[-1], dtype=A0.dtype, device=A0.device)
    if loss == "info_nce":
        hessian = A0
    elif loss == "weighted_info_nce":
        hessian = A0 if n is None else A0 - (1.0 - alpha) * C / n
    elif loss == "beta_info_nce":
        hessian = A0 - (1.0 - beta) * C
    elif loss == "spectral_contrastive":
        hessian = 2.0 * C
    else:
        hessian = 2.0 * (A0 + C)
    return _symmetric(hessian - weight_decay * eye)


def quartic_weight(loss: str, beta: float = 1.0, mu: float = 1.0) -> float:
    """The weight q of ``Tr[W Σ Wᵀ W Σ Wᵀ]`` that a loss actually has (Prop. 1 has q = 1).

    InfoNCE family, large N, Gaussian data: ``q = 3β/4``. The log-sum averages over the
    negatives χ *for a fixed anchor x*, so its fourth-order term is ``β/8 · E_x Var_χ|W(x-χ)|²``,
    not the total variance of Eq. 3/5. For Gaussian inputs ``Var|W(x-χ)|² = 8 Tr[(WΣWᵀ)²]`` and
    ``Var_x E_χ[|W(x-χ)|² | x] = 2 Tr[(WΣWᵀ)²]``, leaving ``6/8 · β``. (Exactly: with
    ``V = W Σ Wᵀ`` the log-sum's population value is ``-½ logdet(I+V) - ½ Tr[(I+V)⁻¹ V]
    = -Tr V + ¾ Tr V² + O(V³)``.) Spectral contrastive: ``E[(f(x)ᵀ f(χ))²] = Tr[(WΣWᵀ)²]``
    exactly for any distribution with these second moments, ``q = 1`` (``1/mu`` for
    `spectral_contrastive_loss` with its normaliser ``mu``).

    Raises:
        ValueError: for Barlow Twins (its quartic term is not of this form) or unknown names.
    """
    _check_loss_name(loss)
    if loss in ("info_nce", "weighted_info_nce", "beta_info_nce"):
        return 0.75 * beta
    if loss == "spectral_contrastive":
        return 1.0 / mu
    raise ValueError("barlow_twins has no quartic term of the form q·Tr[(WΣWᵀ)²]")


def landscape(W: torch.Tensor, B: torch.Tensor, Sigma: torch.Tensor, quartic: float = 1.0) -> torch.Tensor:
    """Eq. 3 with Prop. 1's quartic term: ``-Tr[W B Wᵀ] + q Tr[W Σ Wᵀ W Σ Wᵀ]``.

    Args:
        W: (..., d1, d0) weights; leading dimensions are batched.
        B: (d0, d0) origin Hessian.
        Sigma: (d0, d0) covariance of augmented inputs.
        quartic: q.

    Returns:
        (...) loss values.
    """
    gram_b = W @ B @ W.transpose(-1, -2)  # (..., d1, d1)
    gram_s = W @ Sigma @ W.transpose(-1, -2)  # (..., d1, d1)
    return -torch.diagonal(gram_b, dim1=-2, dim2=-1).sum(-1) + quartic * (gram_s * gram_s).sum((-2, -1))


def variance_term_closed_form(W: torch.Tensor, Sigma: torch.Tensor) -> torch.Tensor:
    """Prop. 1: ``⅛ Var[|W(x - χ)|²] = Tr[W Σ Wᵀ W Σ Wᵀ]`` for independent x, χ ~ N(0, Σ)."""
    gram = W @ Sigma @ W.transpose(-1, -2)
    return (gram * gram).sum((-2, -1))


def _inverse_sqrt(Sigma: torch.Tensor) -> torch.Tensor:
    values, vectors = torch.linalg.eigh(_symmetric(Sigma))
    if not bool((values > 0).all()):
        raise ValueError("Sigma must be positive definite")
    return vectors @ torch.diag(values.rsqrt()) @ vectors.T


def whitened_hessian_spectrum(B: torch.Tensor, Sigma: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Eigen-decomposition ``Σ^-1/2 B Σ^-1/2 = U Λ Uᵀ`` of Thm. 1, eigenvalues ascending.

    Returns:
        Λ (d0,) and U (d0, d0) with eigenvectors as columns.
    """
    root = _inverse_sqrt(Sigma)
    return torch.linalg.eigh(_symmetric(root @ B @ root))


def _kept_directions(values: torch.Tensor, mask: torch.Tensor | None) -> torch.Tensor:
    kept = values > 0
    if mask is not None:
        mask = torch.as_tensor(mask, device=values.device)
        if mask.shape != values.shape:
            raise ValueError(f"mask must have shape {tuple(values.shape)}, got {tuple(mask.shape)}")
        kept = kept & mask.bool()
    return kept


def stationary_gram(
    B: torch.Tensor,
    Sigma: torch.Tensor,
    mask: torch.Tensor | None = None,
    *,
    quartic: float = 1.0,
) -> torch.Tensor:
    """``WᵀW`` at the stationary point of Eq. 3 selected by ``mask`` (Thm. 1, general form).

    ``WᵀW = 1/(2q) · Σ^-1/2 U M Λ Uᵀ Σ^-1/2`` with ``U Λ Uᵀ`` the eigen-decomposition of
    ``Σ^-1/2 B Σ^-1/2``. B and Σ need not commute; when they do this is Eq. 9,
    ``½ Σ⁻¹ B_M Σ⁻¹``. Directions with ``Λ_i ≤ 0`` are always dropped (Thm. 1's condition 1).
    A W with this Gram matrix needs ``d1 ≥`` its rank (condition 2; see `weights_from_gram`).

    Args:
        B: (d0, d0) origin Hessian.
        Sigma: (d0, d0) positive definite covariance of augmented inputs.
        mask: (d0,) 0/1 over the eigen-directions in ascending order of Λ; None keeps all.
        quartic: weight q of the quartic term (`quartic_weight`).

    Returns:
        (d0, d0) positive semi-definite ``WᵀW``.
    """
    values, vectors = whitened_hessian_spectrum(B, Sigma)
    kept = _kept_directions(values, mask)
    root = _inverse_sqrt(Sigma)
    core = vectors @ torch.diag(torch.where(kept, values, torch.zeros_like(values))) @ vectors.T
    return _symmetric(root @ core @ root) / (2.0 * quartic)


def stationary_loss(
    B: torch.Tensor,
    Sigma: torch.Tensor,
    mask: torch.Tensor | None = None,
    *,
    quartic: float = 1.0,
) -> torch.Tensor:
    """Eq. 3 at the stationary point of `stationary_gram`: ``-1/(4q) Σ_{i ∈ M} Λ_i²``.

    When B and Σ commute ``Λ_i = b_i / s_i`` and this is ``-¼ Tr[Σ⁻² B_M B]`` (q = 1). The
    paper's text prints ``Σ²``; substituting Eq. 9 gives ``Tr[W B Wᵀ] = ½ Tr[Σ⁻² B_M B]`` and
    ``Tr[(WΣWᵀ)²] = ¼ Tr[Σ⁻² B_M B]``, so the power is -2, and the global minimum keeps the
    directions with the largest ``b_i / s_i``.
    """
    values, _ = whitened_hessian_spectrum(B, Sigma)
    kept = _kept_directions(values, mask)
    return -(values[kept] ** 2).sum() / (4.0 * quartic)


def weights_from_gram(gram: torch.Tensor, output_dim: int) -> torch.Tensor:
    """A (output_dim, d0) matrix W with ``WᵀW = gram`` (its symmetric square root, padded).

    Raises:
        ValueError: if ``gram`` has rank above ``output_dim`` (Thm. 1's condition 2).
    """
    values, vectors = torch.linalg.eigh(_symmetric(gram))
    values = values.clamp_min(0.0)
    tolerance = 1e-10 * max(float(values.max()), 1e-300)
    values = torch.where(values > tolerance, values, torch.zeros_like(values))
    rank = int((values > 0).sum())
    if rank > output_dim:
        raise ValueError(f"gram has rank {rank} > output_dim {output_dim}")
    order = torch.argsort(values, descending=True)[:output_dim]
    rows = values[order].sqrt()[:, None] * vectors[:, order].T  # (k, d0)
    if rows.shape[0] < output_dim:
        rows = torch.cat([rows, rows.new_zeros(output_dim - rows.shape[0], rows.shape[1])])
    return rows


def local_minimum_rank(B: torch.Tensor, d_star: int, tolerance: float = 1e-10) -> int:
    """Prop. 2: every local minimum of Eq. 3 has ``rank(WᵀW) = min(m, d*)``.

    ``m`` is the number of positive eigenvalues of B (equal to that of ``Σ^-1/2 B Σ^-1/2`` by
    Sylvester's law of inertia); eigenvalues within ``tolerance · max|b|`` of 0 count as 0.
    """
    values = torch.linalg.eigvalsh(_symmetric(B))
    scale = float(values.abs().max()) if values.numel() else 0.0
    return min(int((values > tolerance * scale).sum()), d_star)


def critical_dataset_size(a: torch.Tensor | float, c: torch.Tensor | float, alpha: float):
    """Eq. 8's threshold ``N_crit = (1 − α) c_i / a_i`` for weighted InfoNCE (as printed).

    Eq. 8 gives direction i ``b_i ≤ 0`` (the origin is stable along it: it collapses) when
    ``(1 − α) c_i / N ≥ a_i``, i.e. for ``N ≤ N_crit``: collapse on the *small*-data side. Eq. 17 prints the inverse
    ``a_i / (c_i (1 − α))`` and the opposite inequality; this function returns the form that
    follows from Eq. 8. Note that `origin_hessian` finds no C/N term in the second-order
    expansion of Eq. 7 itself (nor of `info_nce_loss`), so for the actual loss this threshold
    is a prediction to test, not a consequence (``results.json``, figure ``fig5_mid``).
    """
    return (1.0 - alpha) * torch.as_tensor(c, dtype=torch.float64) / torch.as_tensor(a, dtype=torch.float64)


def beta_info_nce_critical_noise(
    a: torch.Tensor,
    beta: float,
    noise_shape: torch.Tensor | None = None,
    *,
    n: int | None = None,
    alpha: float = 1.0,
    printed: bool = False,
) -> torch.Tensor:
    """Augmentation scale σ at which each direction of β-InfoNCE collapses.

    With ``C = σ² diag(r)`` (``r = noise_shape``, isotropic by default) and commuting A0 =
    diag(a), `origin_hessian` gives ``b_i = β k a_i − (1 − β) σ² r_i`` with ``k = K/(K+α)``
    (``K = n − 1`` negatives, α the positive's weight in the log-sum; k = 1 for ``n=None``);
    direction i collapses for ``σ ≥ σ_i = sqrt(β k a_i / ((1 − β) r_i))``. With ``printed=True``
    the paper's ``b_i = a_i − (1 − β) σ² r_i`` is used instead (``σ_i = sqrt(a_i/((1−β) r_i))``;
    it has neither α nor n). ``β ≥ 1`` or ``r_i = 0`` never collapses (inf).

    Returns:
        (d0,) critical σ per direction (same order as ``a``).
    """
    if alpha < 0:
        raise ValueError(f"alpha must be >= 0, got {alpha}")
    a = torch.as_tensor(a, dtype=torch.float64)
    r = torch.ones_like(a) if noise_shape is None else torch.as_tensor(noise_shape, dtype=torch.float64)
    if beta >= 1.0:
        return torch.full_like(a, math.inf)
    share = 1.0 if (n is None or printed) else (n - 1) / (n - 1 + alpha)
    pull = a if printed else beta * share * a
    return torch.where(r > 0, (pull / ((1.0 - beta) * r.clamp_min(1e-300))).sqrt(), torch.full_like(a, math.inf))


# --- normalisation (Section 3.2) -------------------------------------------------------------


def normalized_stationary_gram(
    B: torch.Tensor,
    Sigma: torch.Tensor,
    mask: torch.Tensor | None = None,
    *,
    norm: float = 1.0,
    kappa: float = math.inf,
    quartic: float = 1.0,
) -> torch.Tensor:
    """``WᵀW`` at a stationary point of Eq. 10 (Eq. 3 + κ (E|f(x)|² − c)²), Prop. 3–4, Thm. 2.

    In the whitened basis of `whitened_hessian_spectrum` the shift ``2κ(c − ρ) Σ`` of Prop. 3
    adds ``2κ(c − ρ)`` to every Λ_i; Prop. 4 gives ``c − ρ = (c − ½ Σ_M Λ_i/q)/(1 + κ d_M/q)``.
    For κ → ∞ this is Thm. 2 (Eq. 11): the kept eigenvalues of ``Σ^{1/2} WᵀW Σ^{1/2}`` are
    ``½ (Λ_i/q − mean_M(Λ/q)) + c / d_M``, so that ``ρ = Tr[W Σ Wᵀ] = c``. Unlike Thm. 1, the
    mask is *not* filtered by the sign of Λ: ``mask`` must satisfy `normalized_collapse_condition`.

    Args:
        B, Sigma: (d0, d0) as in `stationary_gram`.
        mask: (d0,) 0/1 over eigen-directions of ``Σ^-1/2 B Σ^-1/2`` (ascending); None keeps all.
        norm: c, the target of ``E|f(x)|²`` (``1/T`` for `info_nce_loss` with ``normalize=True``).
        kappa: κ, the strength of the norm penalty.
        quartic: q.

    Raises:
        ValueError: if a kept direction would get a negative eigenvalue (Eq. 13 violated).
    """
    values, vectors = whitened_hessian_spectrum(B, Sigma)
    kept = torch.ones_like(values, dtype=torch.bool) if mask is None else torch.as_tensor(mask).bool()
    kept_count = int(kept.sum())
    if kept_count == 0:
        return torch.zeros_like(B)
    scaled = values / quartic
    if math.isinf(kappa):
        shift = (2.0 * norm - scaled[kept].sum()) / kept_count  # 2κ(c − ρ)/q in the limit
    else:
        gap = (norm - 0.5 * scaled[kept].sum()) / (1.0 + kappa * kept_count / quartic)
        shift = 2.0 * kappa * gap / quartic
    eigen = torch.where(kept, scaled + shift, torch.zeros_like(values)) / 2.0
    if bool((eigen[kept] <= 0).any()):
        raise ValueError("mask keeps a direction that violates Eq. 13 (its eigenvalue would be <= 0)")
    root = _inverse_sqrt(Sigma)
    return _symmetric(root @ vectors @ torch.diag(eigen) @ vectors.T @ root)


def _eq13(values: torch.Tensor, kept: torch.Tensor, norm: float) -> torch.Tensor:
    """Eq. 13 on already scaled whitened eigenvalues λ (d0,) for the directions ``kept``."""
    if not bool(kept.any()):
        return kept
    mean = values[kept].mean()
    return kept & (values + 2.0 * norm / int(kept.sum()) > mean)


def normalized_collapse_condition(
    B: torch.Tensor, Sigma: torch.Tensor, mask: torch.Tensor, *, norm: float = 1.0, quartic: float = 1.0
) -> torch.Tensor:
    """Eq. 13, ``λ_i + 2c/d_M > λ̄``, for each kept direction (λ: eigenvalues of Σ^-1/2 B Σ^-1/2 / q).

    Returns:
        (d0,) bool, True where a kept direction satisfies Eq. 13 (False for dropped ones).
    """
    values, _ = whitened_hessian_spectrum(B, Sigma)
    return _eq13(values / quartic, torch.as_tensor(mask).bool(), norm)


def normalized_surviving_mask(
    B: torch.Tensor,
    Sigma: torch.Tensor,
    *,
    norm: float = 1.0,
    quartic: float = 1.0,
    max_directions: int | None = None,
) -> torch.Tensor:
    """The largest mask (dropping the smallest λ first) whose kept directions all satisfy Eq. 13.

    This is the normalised counterpart of Prop. 2's maximal rank: starting from every direction
    (or from the ``max_directions`` largest, Thm. 1's condition 2 with d1 outputs), the direction
    with the smallest eigenvalue is dropped while any kept one violates Eq. 13. One
    eigen-decomposition; the search runs on its eigenvalues.

    Returns:
        (d0,) bool over eigen-directions of ``Σ^-1/2 B Σ^-1/2`` in ascending order.
    """
    values, _ = whitened_hessian_spectrum(B, Sigma)
    values = values / quartic
    count = values.numel()
    first_allowed = 0 if max_directions is None else max(0, count - max_directions)
    kept = torch.arange(count) >= first_allowed
    for first in range(first_allowed, count):
        kept = torch.arange(count) >= first
        if bool(_eq13(values, kept, norm)[kept].all()):
            return kept
    return kept


def bias_normalized_stationary_gram(
    B: torch.Tensor,
    Sigma: torch.Tensor,
    mask: torch.Tensor | None = None,
    *,
    norm: float = 1.0,
    quartic: float = 1.0,
) -> torch.Tensor | None:
    """Thm. 3: with a bias (``f = W x + b``, E[x] = 0) and normalisation, Eq. 9 under ρ ≤ c.

    The bias can absorb any missing norm, so the stationary points are those of the
    unnormalised problem (`stationary_gram`) whose ``ρ = Tr[W Σ Wᵀ] = Σ_M Λ_i / (2q)`` does
    not exceed c.

    Returns:
        (d0, d0) ``WᵀW``, or None when that stationary point violates ``ρ ≤ c``.
    """
    gram = stationary_gram(B, Sigma, mask, quartic=quartic)
    rho = torch.trace(gram @ Sigma)
    return gram if float(rho) <= norm * (1.0 + 1e-12) else None


def bias_normalized_max_rank(B: torch.Tensor, Sigma: torch.Tensor, *, norm: float = 1.0, quartic: float = 1.0) -> int:
    """Thm. 3: the largest rank a stationary point can have under ``ρ ≤ c``.

    Each kept direction adds ``Λ_i / (2q)`` to ρ, so the largest rank keeps the smallest positive
    Λ_i first. For ``c = 1`` and weak augmentation (Λ_i ≈ 1, q = 1) this gives at most 2.
    """
    values, _ = whitened_hessian_spectrum(B, Sigma)
    positive = values[values > 0] / (2.0 * quartic)  # ascending
    cumulative = torch.cumsum(positive, 0)
    return int((cumulative <= norm * (1.0 + 1e-12)).sum())
