"""Fig. 5 on CIFAR-10: the linear theory for a linear last layer trained on frozen CIFAR-10 features.

The linear theory (Ziyin et al. 2023) is exact, to fourth order in W, for a linear layer
``f = W h`` trained on fixed inputs ``h`` (Section 4.1, Eq. 16). This study makes ``h`` real:
CIFAR-10 training images, augmented by the training path at ``data.augment_strength`` s
(`ImageDataModule.probe_views`, the SimCLR recipe at s = 1), go through a frozen backbone; a
linear layer W (d × d) is then trained on those features with β-InfoNCE (β = 0.5, Gaussian
kernel, T = 1) and with the spectral contrastive loss (SCL), and its ``WᵀW`` is held against
the prediction of `sslprobe.probes.theory.predict` (Thm. 1 in its general form, B from
`origin_hessian`, q from `quartic_weight`) made from the same features.

Choices, and why:

* **A pool of views.** Running the backbone at every training step is too costly on a CPU, so
  each of the N images gets K views up front (K/2 calls of ``probe_views`` with different seeds
  on a subset of exactly N images, so every call returns the same images). Training draws, at
  every step and for every image, two *distinct* views of the pool (`pooled_views`). The
  theory's inputs are then those of this finite distribution exactly: `pool_covariances` applies
  the probe's own estimators (`view_covariances`: A0 the symmetrised cross-covariance of two
  views, C half the covariance of their difference) to all K(K − 1) ordered pairs. No
  independence of the two views' noise is assumed: the cross-covariance is measured (drawing
  distinct pool entries makes it ``Cov(x̂) − C/(K − 1)``, which the estimator includes). The
  clean part of A0 carries a relative bias of 1/N against the loss's unbiased form (0.4% at
  N = 256), well below the split-half sampling error reported.
* **Full batch.** The loss sees all N images at every step (the paper's n = 2N − 1), as the
  simulator trains, so B's batch-dependence is that of the predicted one exactly.
* **Fewer feature dimensions.** The narrow ResNet-12 (widths 16-32-64-128) gives 128 features.
  With N = 256 images a 128 × 128 covariance has a sampling error of order √(128/256) ≈ 70%,
  and a 128-dimensional W does not converge within a few thousand full-batch Adam steps near
  its many marginal directions. The features are therefore projected, once per backbone, on
  the top d principal components of the backbone's features of the *clean* images (centred
  by their mean, scaled so that the d kept clean variances average 1). PCA rather than a
  random projection: it keeps the directions the backbone actually uses, where a random
  projection mixes in near-dead ones. The same projection serves every augmentation strength,
  so the coordinates are comparable along the sweep. Everything after the projection is the
  theory applied to these d-dimensional inputs; the projection itself is part of the "frozen
  backbone".
* **SCL without clipping.** `spectral_contrastive_loss` clips embeddings to norm √mu, which
  Eq. 3 does not model; mu is set large (``scl_mu``) so that the clip is inactive (reported:
  the largest ``|f|²/mu`` at the trained W). SCL's loss is then exactly quartic in W and its
  stationary point does not depend on mu.

Where the prediction fails, `diagnose` measures why: Prop. 1's Gaussian form of β-InfoNCE's
fourth-order term against its Monte-Carlo value on these features (`quartic_gaussian_ratio`),
the same for SCL's quartic term (exact for independent samples), and Eq. 3 against the actual
expected loss at the trained and at the predicted W (is the trained point inside the
fourth-order regime; is the predicted point a better point of the actual loss), and, where
training dropped a direction Thm. 1 keeps, whether the actual loss at the trained W rises when
that direction is put back (`missing_direction_check`). Both are in
`sslprobe.studies.theory_cifar_diagnostics`.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from sslprobe.losses import info_nce_loss, spectral_contrastive_loss
from sslprobe.probes.spectrum import collapsed_directions
from sslprobe.probes.theory_estimates import principal_angles
from sslprobe.probes.theory_prediction import TheoryLoss, predict
from sslprobe.studies.theory_cifar_diagnostics import (  # noqa: F401 - re-exported
    diagnose,
    expected_loss,
    loss_draws,
    missing_direction_check,
    scl_quartic_ratio,
)
from sslprobe.studies.theory_cifar_features import (  # noqa: F401 - re-exported
    backbone_features,
    knn_accuracy,
    pool_covariances,
    pretrain_backbone,
    principal_projection,
    random_backbone,
    view_pools,
)
from sslprobe.studies.theory_cifar_report import (  # noqa: F401 - re-exported
    plot_study,
    summarize,
)
from sslprobe.theory.simulator import pooled_views, train_linear_models_on_views

BETA = 0.5
COLLAPSE_THRESHOLD = 1e-4  # the spectrum / theory probe's relative eigenvalue threshold


@dataclass
class StudySettings:
    """Sizes of the study (`QUICK` and `FULL` below).

    Attributes:
        strengths: ``data.augment_strength`` values of the sweep.
        num_images: N, the images (and the full training batch).
        views: K views per image in the pool (even, >= 2).
        feature_dim: d, principal components kept.
        widths: ResNet-12 widths of both backbones.
        steps, learning_rate: Adam steps and peak step size of the linear layer.
        gradient_samples: view draws of the final convergence measurement.
        loss_samples: view draws of the expected-loss checks.
        scl_mu: SCL's normaliser (large: the clip stays inactive).
        pretrain_images, pretrain_epochs, pretrain_batch, pretrain_max_steps: the SimCLR run that
            trains the second backbone (max_steps None: full epochs).
        knn_images: balanced train / test images of the kNN accuracy of each backbone.
        seed: seeds the backbones, the images, the views and the linear layers.
    """

    strengths: tuple[float, ...]
    num_images: int
    views: int
    feature_dim: int
    widths: tuple[int, int, int, int]
    steps: int
    learning_rate: float
    gradient_samples: int
    loss_samples: int
    scl_mu: float
    pretrain_images: int
    pretrain_epochs: int
    pretrain_batch: int
    pretrain_max_steps: int | None
    knn_images: int
    seed: int = 0


FULL = StudySettings(strengths=(0.0, 0.25, 0.5, 0.75, 1.0), num_images=256, views=8, feature_dim=16,
                     widths=(16, 32, 64, 128), steps=2000, learning_rate=3e-3, gradient_samples=32,
                     loss_samples=64, scl_mu=1e3, pretrain_images=2000, pretrain_epochs=2, pretrain_batch=128,
                     pretrain_max_steps=None, knn_images=1000)
QUICK = StudySettings(strengths=(0.0, 1.0), num_images=48, views=4, feature_dim=6, widths=(4, 8, 8, 8),
                      steps=150, learning_rate=3e-3, gradient_samples=4, loss_samples=4, scl_mu=1e3,
                      pretrain_images=128, pretrain_epochs=1, pretrain_batch=32, pretrain_max_steps=2,
                      knn_images=100)


# --- training, prediction, measurement ------------------------------------------------------------


def study_losses(settings: StudySettings, batch: int) -> dict[str, tuple]:
    """Name -> (loss function on (N, d) embeddings, `TheoryLoss`)."""
    return {
        "beta_info_nce": (functools.partial(info_nce_loss, beta=BETA),
                          TheoryLoss("info_nce_family", batch, temperature=1.0, beta=BETA)),
        "spectral_contrastive": (functools.partial(spectral_contrastive_loss, mu=settings.scl_mu),
                                 TheoryLoss("spectral_contrastive", batch, mu=settings.scl_mu)),
    }


def _descending(matrix: torch.Tensor) -> np.ndarray:
    return torch.linalg.eigvalsh((matrix + matrix.T) / 2).flip(0).clamp_min(0).numpy()


def numerical_rank(eigenvalues: np.ndarray, threshold: float = COLLAPSE_THRESHOLD) -> int:
    """Directions above ``threshold`` × the largest eigenvalue (`collapsed_directions`'s convention)."""
    return int(eigenvalues.size - collapsed_directions(eigenvalues, threshold)) if eigenvalues.max(initial=0) > 0 else 0


def compare_point(pool: torch.Tensor, weight: torch.Tensor, loss_fn, theory: TheoryLoss, *,
                  loss_samples: int, seed: int) -> dict:
    """Prediction from the pool's statistics against one trained W (d_out, d) on that pool.

    Returns:
        The per-point record: predicted rank (Thm. 1: whitened eigenvalues > 0) and eigenvalues,
        measured eigenvalues and rank (`numerical_rank`), rank agreement, the median relative error
        of the predicted-surviving eigenvalues, principal angles, split-half sampling errors and
        ranks, and the `diagnose` numbers.
    """
    pool = pool.double()
    covariances = pool_covariances(pool, theory.centred)
    output_dim = weight.shape[0]
    prediction = predict(covariances, theory, output_dim)
    order = torch.randperm(pool.shape[0], generator=torch.Generator().manual_seed(seed))
    halves = [pool[order[: pool.shape[0] // 2]], pool[order[pool.shape[0] // 2 :]]]
    half_predictions = [predict(pool_covariances(half, theory.centred), theory, output_dim) for half in halves]
    half_covariances = [pool_covariances(half, theory.centred) for half in halves]

    def sampling_error(name: str) -> float:
        first, second = (getattr(c, name) for c in half_covariances)
        whole = getattr(covariances, name)
        return float(torch.linalg.norm(first - second) / (2 * torch.linalg.norm(whole).clamp_min(1e-300)))

    w = weight.double()
    measured = _descending(w.T @ w)
    predicted = _descending(prediction.gram)
    measured_rank = numerical_rank(measured)
    predicted_rank = int(prediction.rank)
    surviving = predicted[:predicted_rank]
    errors = np.abs(measured[:predicted_rank] / np.maximum(surviving, 1e-300) - 1.0) if predicted_rank else np.zeros(0)
    angles = np.zeros(0)
    if predicted_rank and measured_rank:
        top = lambda gram, k: torch.linalg.eigh(gram)[1][:, -k:]  # noqa: E731
        angles = principal_angles(top(w.T @ w, measured_rank), top(prediction.gram, predicted_rank))
    record = {
        "predicted_rank": predicted_rank,
        "predicted_rank_at_threshold": numerical_rank(predicted),
        "predicted_collapsing_directions": int(prediction.nonpositive),
        "predicted_rank_halves": [int(p.rank) for p in half_predictions],
        "measured_rank": measured_rank,
        "rank_agrees": measured_rank == predicted_rank,
        "predicted_eigenvalues": predicted.tolist(),
        "measured_eigenvalues": measured.tolist(),
        "whitened_hessian_eigenvalues": prediction.whitened.tolist(),
        "median_eigenvalue_relative_error": float(np.median(errors)) if errors.size else None,
        "max_eigenvalue_relative_error": float(errors.max()) if errors.size else None,
        "max_principal_angle_deg": float(angles.max()) if angles.size else None,
        "a0_sampling_error": sampling_error("A0"),
        "c_sampling_error": sampling_error("C"),
        "noise_to_signal": float(torch.trace(covariances.C) / torch.trace(covariances.A0).abs().clamp_min(1e-300)),
    }
    record.update(diagnose(pool, w, prediction, covariances, loss_fn, theory, loss_samples=loss_samples, seed=seed))
    record["missing_direction_check"] = missing_direction_check(
        pool, w, prediction.gram, predicted_rank, measured_rank, loss_fn, samples=loss_samples, seed=seed)
    return record


def train_and_compare(pools: torch.Tensor, settings: StudySettings) -> dict[str, list[dict]]:
    """Train W on each strength's pool with each loss (one batched program per loss) and compare.

    Args:
        pools: (S, N, K, d) reduced features, one pool per strength.

    Returns:
        Loss name -> one record per strength (`compare_point` plus the convergence report).
    """
    strengths, count, _, dim = pools.shape
    results = {}
    for index, (name, (loss_fn, theory)) in enumerate(study_losses(settings, count).items()):
        sigma_power = torch.stack([pool_covariances(pool.double(), theory.centred).Sigma.trace() / dim
                                   for pool in pools])
        trained = train_linear_models_on_views(
            pooled_views(pools.float()), loss_fn, models=strengths, input_dim=dim, output_dim=dim,
            steps=settings.steps, learning_rate=settings.learning_rate, weight_scale=sigma_power.rsqrt().float(),
            seed=settings.seed + index, gradient_samples=settings.gradient_samples)
        report = trained.convergence
        rows = []
        for m in range(strengths):
            row = compare_point(pools[m], trained.weights[m], loss_fn, theory, loss_samples=settings.loss_samples,
                                seed=settings.seed)
            row["converged"] = bool(report.converged[m])
            row["convergence"] = {
                "loss_drift": float(report.loss_drift[m]), "plateau_t": float(report.plateau_t[m]),
                "gradient_reduction": float(report.gradient_norm[m] / report.initial_gradient_norm[m].clamp_min(1e-30)),
                "gradient_over_noise_floor": float(report.gradient_norm[m] / report.gradient_noise_floor[m]
                                                   .clamp_min(1e-30)),
                "spectrum_drift": float(report.spectrum_drift[m]),
            }
            row["agrees"] = bool(row["rank_agrees"] and row["median_eigenvalue_relative_error"] is not None
                                 and row["median_eigenvalue_relative_error"] < 0.25)
            rows.append(row)
        results[name] = rows
    return results


def run_study(root: str | Path, settings: StudySettings) -> dict:
    """The whole study: views, two frozen backbones, reduced features, training, comparison.

    Returns:
        ``{"setup", "backbones": {name: {"record", "knn_accuracy", "explained_variance",
        "losses": {loss: [per-strength records]}}}}``.
    """
    clean, image_pools = view_pools(root, settings.strengths, settings.num_images, settings.views, settings.seed)
    trained_backbone, pretrain_record = pretrain_backbone(root, settings)
    backbones = {
        "random_init": (random_backbone(settings.widths, settings.seed),
                        {"backbone": f"resnet12 widths {list(settings.widths)}", "init": "PyTorch default",
                         "seed": settings.seed}),
        "simclr_trained": (trained_backbone, pretrain_record),
    }
    out = {
        "setup": {
            "strengths": list(settings.strengths), "images": settings.num_images, "views_per_image": settings.views,
            "feature_dim": settings.feature_dim, "output_dim": settings.feature_dim, "beta": BETA,
            "temperature": 1.0, "scl_mu": settings.scl_mu, "steps": settings.steps,
            "learning_rate": settings.learning_rate, "optimizer": "Adam, cosine decay to 1% (simulator)",
            "batch": f"full batch of {settings.num_images} images, two distinct pool views per image per step",
            "reduction": "top principal components of the clean images' features, centred, scaled to mean variance 1",
            "collapse_threshold": COLLAPSE_THRESHOLD, "seed": settings.seed,
            "agreement": "rank_agrees (measured numerical rank == Thm. 1 rank) and median relative error of the "
                         "predicted-surviving eigenvalues < 0.25",
        },
        "backbones": {},
    }
    for name, (backbone, record) in backbones.items():
        mean, projection, explained = principal_projection(backbone_features(backbone, clean), settings.feature_dim)
        pools = torch.stack([(backbone_features(backbone, images) - mean) @ projection for images in image_pools])
        out["backbones"][name] = {
            "record": record,
            "knn_accuracy": knn_accuracy(backbone, root, settings.knn_images, settings.seed),
            "explained_variance": float(explained),
            "losses": train_and_compare(pools, settings),
        }
    return out
