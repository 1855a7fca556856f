"""The linear theory's prediction for the last layer, from the covariances of its input features.

`predict` applies the theorem that fits the training objective (`TheoryLoss`) to A0, C and Σ
(`sslprobe.probes.theory_estimates.view_covariances`) inside Σ's support; `sslprobe.probes.theory`
holds it against a trained layer. Everything is float64 linear algebra on plain tensors.

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

from dataclasses import dataclass
from typing import Literal

import torch

from sslprobe.probes.theory_estimates import FeatureCovariances
from sslprobe.theory.closed_forms import landscape, origin_hessian, paper_n_from_batch, quartic_weight

LossKind = Literal["info_nce_family", "normalized", "spectral_contrastive", "barlow_twins"]


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
    loss_value = float(landscape(weights_from_gram(gram), B, Sigma, quartic))
    full_gram = basis @ gram @ basis.T
    return Prediction(basis @ B @ basis.T, values, nonpositive, scale * full_gram, int(mask.sum()), loss_value,
                      quartic)


def weights_from_gram(gram: torch.Tensor) -> torch.Tensor:
    """A (d, d) W with ``WᵀW = gram`` (its rows: eigenvectors scaled by the clipped √eigenvalues)."""
    values, vectors = torch.linalg.eigh(gram)
    return (values.clamp_min(0).sqrt()[:, None] * vectors.T)  # (d, d) with WᵀW = gram
