"""The linear theory on a trained network: predict the last layer's collapse from its input features.

For an embedding ``f = W h`` whose last layer ``W`` (d_out, d) is linear in its inputs ``h`` (the
input of the projector's last ``nn.Linear``), the linear theory of Ziyin et al. (2023) applies
with the data ``x`` replaced by ``h`` (Section 4.1, Eq. 16). This module estimates the theory's
inputs from the two views' features, predicts the stationary last layer, and measures the trained
one against it. Everything is float64 linear algebra on plain tensors.

Estimators (``h_v`` (N, d), v = 1, 2: the two views' features of the same N images; with
``h_v = x̂ + ε_v`` and view noises ε_1, ε_2 independent given the image, zero mean):

    centred:   u = h1 − m,  v = h2 − m,  m = (mean h1 + mean h2) / 2   (InfoNCE family)
    uncentred: u = h1, v = h2                                           (SCL, Barlow Twins)
    A0 = (uᵀv + vᵀu) / (2 N')            symmetrised cross-covariance  (E = Cov x̂ or E x̂x̂ᵀ)
    C  = (δ − δ̄)ᵀ(δ − δ̄) / (2 N'),  δ = h1 − h2   half the covariance of the view difference
    Σ  = A0 + C                          (= the mean of the two views' own second moments)

with ``N' = N − 1`` for the centred and ``N`` for the uncentred forms. A0 is the covariance of the
view-independent part, because ``E[ε_1 ε_2ᵀ] = 0``; C is the augmentation covariance because
``Cov(ε_1 − ε_2) = 2C``. The centring follows `sslprobe.theory.closed_forms`: the InfoNCE family
sees differences of distinct samples (A0 = the unbiased covariance), SCL and Barlow Twins the
second moment about 0. Sampling error: the same estimators on two disjoint random halves of the
images, ``‖X_a − X_b‖_F / (2‖X‖_F)`` (the standard error of a mean of two independent halves is
half their difference); the prediction is repeated on each half and both are reported.

Bias. A layer ``f = W h + b`` is treated as the landscape probe treats it (``scale_bias``: the
whole affine map): the InfoNCE family depends only on differences ``f_i − f_j``, where ``b``
cancels exactly, so ``W`` alone is studied on centred features; for SCL (uncentred) ``h`` is
extended by a constant 1 and ``W̃ = [W, b]`` is studied.

Which theorem applies (`TheoryLoss`):

- ``info_nce_family`` (`info_nce_loss` without normalisation): Thm. 1 in its general,
  non-commuting form (`stationary_gram`) with B from `origin_hessian` (n from the batch, α, β),
  quartic weight ¾β (Prop. 1, Gaussian form) and weight decay; the kernel temperature T is a
  rescaling ``W → W/√T``, so the stationary ``WᵀW`` is T times that at T = 1.
- ``normalized`` (cosine NT-Xent, or `info_nce_loss` with ``normalize``): the loss does not see
  the scale of W, so weight decay only shrinks it; Thm. 2 (Eq. 11–13) with ``c = 1/T`` predicts
  which directions survive (`normalized_surviving_mask`) and ``WᵀW`` up to that scale. The trained
  ``WᵀW`` is compared after scaling it to the same ``Tr[WΣWᵀ] = c``.
- ``spectral_contrastive``: Thm. 1 with ``B = 2A0/mu − γI`` and the exact quartic weight ``1/mu``.
- ``barlow_twins`` (batch-standardised): invariant to ``W → DW`` once the batch variance exceeds
  eps; the fourth-order expansion describes it only in a region of size ~eps around W = 0
  (``B = 2A0/eps``), not where training goes. Only the count of directions with ``b_i ≤ 0`` is
  predicted (there are none: A0 is positive semi-definite), and the message says so.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Literal

import numpy as np
import torch

from sslprobe.probes.landscape import LandscapeOptions, reference_loss
from sslprobe.probes.theory_estimates import (  # noqa: F401 - re-exported
    FeatureCovariances,
    _as_float64,
    _numerical_rank,
    _top_eigenvectors,
    principal_angles,
    quartic_gaussian_ratio,
    view_covariances,
)
from sslprobe.theory.closed_forms import (
    landscape,
    origin_hessian,
    paper_n_from_batch,
    quartic_weight,
)

LossKind = Literal["info_nce_family", "normalized", "spectral_contrastive", "barlow_twins"]
LossFn = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]


@dataclass
class TheoryLoss:
    """The training objective as the theory sees it, with the run's hyper-parameters.

    Attributes:
        kind: which theorem applies (module docstring).
        batch: training batch size (the paper's N is `paper_n_from_batch` of it).
        temperature: T of `info_nce_loss` / `nt_xent_loss`.
        alpha, beta: positive weight and log-sum weight of the InfoNCE family (Eq. 7, Sec. 4.2).
        mu: normaliser of `spectral_contrastive_loss`.
        weight_decay: SGD weight decay wd, i.e. the penalty wd/2 · ‖W‖² (Section 3.1: B − wd/2 · I).
        eps: Barlow Twins' standardisation eps.
    """

    kind: LossKind
    batch: int
    temperature: float = 1.0
    alpha: float = 1.0
    beta: float = 1.0
    mu: float = 1.0
    weight_decay: float = 0.0
    eps: float = 1e-5

    @property
    def centred(self) -> bool:
        return self.kind in ("info_nce_family", "normalized", "barlow_twins")

    @property
    def theory_name(self) -> str:
        """`sslprobe.theory` loss name."""
        if self.kind in ("info_nce_family", "normalized"):
            if self.alpha == self.beta == 1.0:
                return "info_nce"
            return "weighted_info_nce" if self.beta == 1.0 else "beta_info_nce"
        return self.kind

    @property
    def theorem(self) -> str:
        return {
            "info_nce_family": "Thm. 1 (general form of Eq. 9), B from origin_hessian, q = 3β/4 (Prop. 1)",
            "normalized": "Thm. 2 (Eq. 11-13, kappa -> inf, c = 1/T) on normalised embeddings",
            "spectral_contrastive": "Thm. 1 (general form of Eq. 9), B = 2A0/mu - wd/2 I, q = 1/mu",
            "barlow_twins": "none: batch standardisation is not described by the fourth-order expansion",
        }[self.kind]


@dataclass
class Prediction:
    """What the theory predicts from (A0, C) for one loss.

    Attributes:
        B: (d, d) origin Hessian in the T = 1 frame; None where the theory gives none.
        whitened: (d,) eigenvalues of Σ^-1/2 B Σ^-1/2, ascending; None with B.
        nonpositive: directions with whitened eigenvalue ≤ 0 (they collapse, Thm. 1).
        gram: (d, d) predicted stationary ``WᵀW`` (in the run's frame: temperature included);
            None where not predicted.
        rank: rank of ``gram``; None where not predicted.
        loss: Eq. 3 at the predicted point (T = 1 frame); None where not predicted.
        quartic: q.
    """

    B: torch.Tensor | None
    whitened: torch.Tensor | None
    nonpositive: int | None
    gram: torch.Tensor | None
    rank: int | None
    loss: float | None
    quartic: float | None


SUPPORT_RTOL = 1e-9  # eigenvalues of Σ below this × the largest: directions the features never take


def sigma_support(Sigma: torch.Tensor, rtol: float = SUPPORT_RTOL) -> tuple[torch.Tensor, torch.Tensor]:
    """Eigenvalues (k,) and (d, k) orthonormal eigenvectors of Σ where Σ > rtol × its largest.

    Features after a ReLU can be constant (dead units): Σ is then singular, the loss does not see
    W in those directions, and the theory is applied inside Σ's support (W = 0 outside, where
    weight decay sends it).
    """
    values, vectors = torch.linalg.eigh((Sigma + Sigma.T) / 2)
    keep = values > rtol * values.max().clamp_min(1e-300)
    return values[keep], vectors[:, keep]


def _surviving_mask(values: torch.Tensor, norm: float, max_directions: int) -> torch.Tensor:
    """`normalized_surviving_mask` on scaled whitened eigenvalues λ (ascending), at most ``max_directions``."""
    count = values.numel()
    kept = torch.zeros(count, dtype=torch.bool)
    for first in range(max(0, count - max_directions), count):
        kept = torch.arange(count) >= first
        if bool((values[kept] + 2.0 * norm / int(kept.sum()) > values[kept].mean()).all()):  # Eq. 13
            return kept
    return kept


def predict(covariances: FeatureCovariances, loss: TheoryLoss, output_dim: int) -> Prediction:
    """The theory's stationary last layer for ``loss`` (module docstring: which theorem).

    With ``Σ^-1/2 B Σ^-1/2 = U Λ Uᵀ`` (inside `sigma_support`, where ``Σ^-1/2`` exists):

    - Thm. 1 (general form of Eq. 9): ``WᵀW = 1/(2q) Σ^-1/2 U (M Λ) Uᵀ Σ^-1/2`` with M the
      directions of positive Λ; it needs ``output_dim`` ≥ their number (condition 2), otherwise
      the global minimum keeps the ``output_dim`` largest (the loss there is ``-Σ_M Λ_i²/4q``).
    - Thm. 2 (Eq. 11, κ → ∞): the kept eigenvalues of ``Σ^1/2 WᵀW Σ^1/2`` are
      ``½(Λ_i/q − mean_M Λ/q) + c/d_M``, M the largest set satisfying Eq. 13.

    ``B`` and ``gram`` are returned in the full d-dimensional basis, ``whitened`` has one value
    per supported direction.
    """
    sigma_values, basis = sigma_support(covariances.Sigma)
    A0, C = basis.T @ covariances.A0 @ basis, basis.T @ covariances.C @ basis
    Sigma = torch.diag(sigma_values)
    root = sigma_values.rsqrt()
    dim = A0.shape[0]
    n = paper_n_from_batch(loss.batch)

    def whitened(hessian: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        matrix = root[:, None] * hessian * root[None, :]
        return torch.linalg.eigh((matrix + matrix.T) / 2)

    if loss.kind == "barlow_twins":
        B = origin_hessian("barlow_twins", A0, C, standardize_eps=loss.eps)
        values = torch.linalg.eigvalsh(root[:, None] * B * root[None, :])
        return Prediction(basis @ B @ basis.T, values, int((values <= 0).sum()), None, None, None, None)
    if loss.kind == "spectral_contrastive":
        B = origin_hessian("spectral_contrastive", A0, C, mu=loss.mu, weight_decay=loss.weight_decay / 2)
        quartic = quartic_weight("spectral_contrastive", mu=loss.mu)
        scale = 1.0
    else:
        decay = 0.0 if loss.kind == "normalized" else loss.weight_decay * loss.temperature / 2
        B = origin_hessian(loss.theory_name, A0, C, n=n, alpha=loss.alpha, beta=loss.beta, weight_decay=decay)
        quartic = quartic_weight(loss.theory_name, loss.beta)
        scale = loss.temperature  # W at temperature T is √T times W at T = 1
    values, vectors = whitened(B)
    nonpositive = int((values <= 0).sum())
    if loss.kind == "normalized":
        norm = 1.0 / loss.temperature
        mask = _surviving_mask(values / quartic, norm, output_dim)
        kept = int(mask.sum())
        shift = (2.0 * norm - (values[mask] / quartic).sum()) / max(kept, 1)
        eigen = torch.where(mask, (values / quartic + shift) / 2, torch.zeros_like(values))
        scale = 1.0  # c = 1/T already sets the scale of the unit-T frame the loss sees
    else:
        mask = (values > 0) & (torch.arange(dim) >= dim - output_dim)
        eigen = torch.where(mask, values, torch.zeros_like(values)) / (2.0 * quartic)
    core = vectors @ torch.diag(eigen) @ vectors.T
    gram = root[:, None] * core * root[None, :]  # Σ^-1/2 U E Uᵀ Σ^-1/2
    gram = (gram + gram.T) / 2
    loss_value = float(landscape(_weights(gram), B, Sigma, quartic))
    full_gram = basis @ gram @ basis.T
    return Prediction(basis @ B @ basis.T, values, nonpositive, scale * full_gram, int(mask.sum()), loss_value,
                      quartic)


def _weights(gram: torch.Tensor) -> torch.Tensor:
    values, vectors = torch.linalg.eigh(gram)
    return (values.clamp_min(0).sqrt()[:, None] * vectors.T)  # (d, d) with WᵀW = gram


@dataclass
class TheoryResult:
    """Prediction and measurement of one probe run (``arrays`` for npz, ``report`` for JSON)."""

    arrays: dict[str, np.ndarray] = field(default_factory=dict)
    report: dict = field(default_factory=dict)


def _spectrum(matrix: torch.Tensor | None) -> np.ndarray:
    if matrix is None:
        return np.zeros(0)
    return torch.linalg.eigvalsh((matrix + matrix.T) / 2).flip(0).numpy()


def _relative_difference(first: torch.Tensor, second: torch.Tensor, whole: torch.Tensor) -> float:
    return float(torch.linalg.norm(first - second) / (2 * torch.linalg.norm(whole).clamp_min(1e-300)))


def theory_probe(
    h1: torch.Tensor,
    h2: torch.Tensor,
    weight: torch.Tensor,
    bias: torch.Tensor | None,
    loss: TheoryLoss,
    *,
    loss_fn: LossFn | None = None,
    collapse_threshold: float = 1e-4,
    seed: int = 0,
) -> TheoryResult:
    """Predict the last layer from (h1, h2) and measure the trained one (module docstring).

    Args:
        h1, h2: (N, d) inputs of the last linear layer for the two views (eval mode).
        weight: (d_out, d) trained weight W; bias: (d_out,) or None.
        loss: the objective and its hyper-parameters.
        loss_fn: the single-process training loss on (B, d_out) embeddings, to evaluate the
            trained and the predicted W on these views (batches of ``loss.batch``); None skips it.
        collapse_threshold: the spectrum probe's relative eigenvalue threshold (numerical rank).
        seed: the split into halves for the sampling error.

    Returns:
        `TheoryResult`. ``report`` keys: ``loss_kind``, ``theorem``, ``message``, the
        hyper-parameters, ``a0_sampling_error``, ``c_sampling_error``, ``nonpositive_directions``,
        ``predicted_rank`` (and ``predicted_rank_halves``), ``measured_rank``,
        ``predicted_eigenvalues``, ``measured_eigenvalues``, ``principal_angles_deg``,
        ``max_principal_angle_deg``, ``predicted_mean_sq_norm`` / ``measured_mean_sq_norm``
        (``Tr[WΣWᵀ]``, E|f|² for uncentred features), ``quartic_mc_over_gaussian_trained`` /
        ``_predicted`` (InfoNCE family: `quartic_gaussian_ratio` at either W),
        ``theory_loss_predicted`` / ``theory_loss_trained`` (Eq. 3),
        ``loss_trained`` / ``loss_predicted`` (the actual loss on the probe's views).
        ``arrays``: A0, C, Sigma, B, their spectra, the whitened spectrum, the predicted and the
        measured Gram matrices and their eigenvalues.
    """
    raw1, raw2 = h1.detach().float(), h2.detach().float()
    h1, h2 = _as_float64(h1), _as_float64(h2)
    w = weight.detach().to(torch.float64).cpu()
    with_bias = bias is not None and not loss.centred
    if with_bias:  # SCL sees f = [W, b] [h; 1]
        ones = torch.ones(h1.shape[0], 1, dtype=torch.float64)
        h1, h2 = torch.cat([h1, ones], 1), torch.cat([h2, ones], 1)
        w = torch.cat([w, bias.detach().to(torch.float64).cpu()[:, None]], 1)
    output_dim, dim = w.shape
    if h1.shape[1] != dim:
        raise ValueError(f"features have {h1.shape[1]} columns but the layer takes {dim}")
    covariances = view_covariances(h1, h2, loss.centred)
    prediction = predict(covariances, loss, output_dim)

    order = torch.randperm(h1.shape[0], generator=torch.Generator().manual_seed(seed))
    halves = order[: h1.shape[0] // 2], order[h1.shape[0] // 2 :]
    half_covariances = [view_covariances(h1[i], h2[i], loss.centred) for i in halves]
    half_predictions = [predict(cov, loss, output_dim) for cov in half_covariances]

    measured_gram = w.T @ w  # (d, d)
    if loss.kind == "normalized":  # the loss cannot see the scale: compare at Tr[WΣWᵀ] = c
        rho = torch.trace(w @ covariances.Sigma @ w.T)
        measured_gram = measured_gram * (1.0 / loss.temperature) / rho.clamp_min(1e-300)
    measured = _spectrum(measured_gram).clip(min=0.0)
    measured_rank = _numerical_rank(measured, collapse_threshold)
    predicted = _spectrum(prediction.gram).clip(min=0.0) if prediction.gram is not None else None

    angles = np.zeros(0)
    if prediction.gram is not None and prediction.rank:
        angles = principal_angles(_top_eigenvectors(measured_gram, measured_rank),
                                  _top_eigenvectors(prediction.gram, prediction.rank))

    unit_frame = loss.temperature if loss.kind == "info_nce_family" else 1.0
    theory_trained = None
    if prediction.B is not None and prediction.quartic is not None:
        w_unit = w / math.sqrt(unit_frame)
        if loss.kind == "normalized":
            w_unit = _weights(measured_gram)
        theory_trained = float(landscape(w_unit, prediction.B, covariances.Sigma, prediction.quartic))

    actual_trained = actual_predicted = None
    if loss_fn is not None:
        trained_bias = None if bias is None else bias.detach().float().cpu()
        actual_trained = reference_loss(raw1, raw2, weight.detach().float().cpu(), trained_bias, loss_fn,
                                        options=LandscapeOptions(batch_size=loss.batch))
        if prediction.gram is not None:
            rows = _weights(prediction.gram)
            rows = rows[torch.argsort(torch.linalg.norm(rows, dim=1), descending=True)[:output_dim]].float()
            predicted_bias = rows[:, -1] if with_bias else None  # the constant input's column is the bias
            predicted_w = rows[:, :-1] if with_bias else rows
            actual_predicted = reference_loss(raw1, raw2, predicted_w, predicted_bias, loss_fn,
                                              options=LandscapeOptions(batch_size=loss.batch))

    quartic_ratio_trained = quartic_ratio_predicted = None
    if loss.kind == "info_nce_family":  # Prop. 1's Gaussian form of the quartic term, checked on these features
        quartic_ratio_trained = quartic_gaussian_ratio(h1, h2, w)
        if prediction.gram is not None and prediction.rank:
            quartic_ratio_predicted = quartic_gaussian_ratio(h1, h2, _weights(prediction.gram))
    predicted_norm = None if prediction.gram is None else float(torch.trace(prediction.gram @ covariances.Sigma))
    measured_norm = float(torch.trace(measured_gram @ covariances.Sigma))
    if loss.kind == "barlow_twins":
        message = ("Barlow Twins standardises each output over the batch: once var >> eps it is invariant to "
                   "W -> DW and the fourth-order expansion (valid only where var << eps, with B = 2A0/eps) does "
                   "not describe the trained layer. The theory predicts no direction with b_i <= 0; no "
                   "stationary WᵀW is predicted.")
    elif loss.kind == "normalized":
        message = ("Normalised embeddings: the loss does not see the scale of W (weight decay only shrinks it). "
                   "Thm. 2 with c = 1/T predicts the surviving directions and WᵀW at Tr[WΣWᵀ] = c; the trained "
                   "WᵀW is rescaled to the same norm before comparing. Thm. 2 assumes centred features and no "
                   "bias; the trained layer's bias is kept only in loss_trained.")
    else:
        message = ("Thm. 1 on the last layer's input features: directions with b_i <= 0 in the whitened Hessian "
                   "collapse; the predicted WᵀW is the stationary point of Eq. 3 (fourth order in W).")
        if loss.kind == "spectral_contrastive" and predicted_norm is not None and predicted_norm > loss.mu:
            message += (f" The predicted E|f|² = {predicted_norm:.3g} exceeds mu = {loss.mu:g}: the loss clips "
                        "embeddings to norm √mu, which Eq. 3 does not model, so only the collapse pattern is a "
                        "prediction, not the magnitudes.")

    report = {
        "loss_kind": loss.kind,
        "theory_loss_name": loss.theory_name,
        "theorem": loss.theorem,
        "message": message,
        "batch": loss.batch,
        "paper_n": paper_n_from_batch(loss.batch),
        "temperature": loss.temperature,
        "alpha": loss.alpha,
        "beta": loss.beta,
        "mu": loss.mu,
        "weight_decay": loss.weight_decay,
        "quartic_weight": prediction.quartic,
        "num_images": covariances.num_samples,
        "feature_dim": dim,
        "output_dim": output_dim,
        "bias_as_input": with_bias,
        "centred": loss.centred,
        "collapse_threshold": collapse_threshold,
        "sigma_null_directions": dim - int(sigma_support(covariances.Sigma)[0].numel()),
        "a0_sampling_error": _relative_difference(half_covariances[0].A0, half_covariances[1].A0, covariances.A0),
        "c_sampling_error": _relative_difference(half_covariances[0].C, half_covariances[1].C, covariances.C),
        "nonpositive_directions": prediction.nonpositive,
        "nonpositive_directions_halves": [p.nonpositive for p in half_predictions],
        "predicted_rank": prediction.rank,
        "predicted_rank_halves": [p.rank for p in half_predictions],
        "measured_rank": measured_rank,
        "predicted_eigenvalues": None if predicted is None else predicted.tolist(),
        "measured_eigenvalues": measured.tolist(),
        "principal_angles_deg": angles.tolist(),
        "max_principal_angle_deg": float(angles.max()) if angles.size else None,
        "quartic_mc_over_gaussian_trained": quartic_ratio_trained,
        "quartic_mc_over_gaussian_predicted": quartic_ratio_predicted,
        "predicted_mean_sq_norm": predicted_norm,
        "measured_mean_sq_norm": measured_norm,
        "theory_loss_predicted": prediction.loss,
        "theory_loss_trained": theory_trained,
        "loss_trained": actual_trained,
        "loss_predicted": actual_predicted,
    }
    arrays = {
        "A0": covariances.A0.numpy(),
        "C": covariances.C.numpy(),
        "Sigma": covariances.Sigma.numpy(),
        "A0_eigenvalues": _spectrum(covariances.A0),
        "C_eigenvalues": _spectrum(covariances.C),
        "Sigma_eigenvalues": _spectrum(covariances.Sigma),
        "measured_gram": measured_gram.numpy(),
        "measured_eigenvalues": measured,
        "principal_angles_deg": angles,
    }
    if prediction.B is not None:
        arrays["B"] = prediction.B.numpy()
        arrays["B_eigenvalues"] = _spectrum(prediction.B)
        arrays["whitened_hessian_eigenvalues"] = prediction.whitened.numpy()
    if prediction.gram is not None:
        arrays["predicted_gram"] = prediction.gram.numpy()
        arrays["predicted_eigenvalues"] = predicted
        arrays["predicted_eigenvalues_halves"] = np.stack([_spectrum(p.gram).clip(min=0) for p in half_predictions])
    return TheoryResult(arrays, report)
