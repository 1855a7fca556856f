"""Inputs of the frozen-feature study: view pools of real CIFAR-10 images, frozen backbones (random init
and briefly trained), their features reduced by PCA."""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import torch
from torch import nn

from sslprobe.probes.theory_estimates import (
    FeatureCovariances,
    view_covariances,
)

# --- features -------------------------------------------------------------------------------------

if TYPE_CHECKING:
    from sslprobe.studies.theory_cifar import StudySettings


def view_pools(root: str | Path, strengths, num_images: int, views: int, seed: int = 0):
    """K views of the same N training images at each augmentation strength, from the training path.

    For each s a `ImageDataModule` with ``augment_strength = s`` on a balanced subset of exactly
    ``num_images`` images is asked K/2 times for `probe_views` (seeds ``seed·1000 + j``); as the
    subset holds exactly ``num_images`` images, every call returns the same images, with new views.

    Returns:
        ``(clean, pools)``: the (N, 3, 32, 32) normalised clean images and a list with one
        (N, K, 3, 32, 32) float32 tensor per strength.
    """
    from sslprobe.data import load_cifar10
    from sslprobe.data.augment import normalize_images
    from sslprobe.data.datamodule import ImageDataModule

    if views < 2 or views % 2:
        raise ValueError(f"views must be an even number >= 2, got {views}")
    cifar = load_cifar10(root)
    pools, clean = [], None
    for strength in strengths:
        data = ImageDataModule(root=str(root), imbalance="none", subset_size=num_images, subset_seed=seed,
                                 augment_strength=float(strength), seed=seed, batch_size=num_images, num_workers=0)
        data.cifar = cifar  # one copy of the images for the whole sweep
        data.setup()
        pairs = [data.probe_views(num_images, seed=seed * 1000 + j) for j in range(views // 2)]
        pools.append(torch.stack([view for pair in pairs for view in pair], dim=1))  # (N, K, 3, H, W)
        if clean is None:
            indices = np.sort(data.train_indices)
            clean = normalize_images(cifar.train.images[torch.as_tensor(indices)])
    return clean, pools


@torch.no_grad()
def backbone_features(backbone: nn.Module, images: torch.Tensor, batch_size: int = 512) -> torch.Tensor:
    """Features of (..., 3, H, W) normalised images in eval mode -> (..., feature_dim) float64."""
    was_training = backbone.training
    backbone.eval()
    try:
        flat = images.reshape(-1, *images.shape[-3:])
        chunks = [backbone(flat[start : start + batch_size]).double() for start in range(0, flat.shape[0], batch_size)]
    finally:
        backbone.train(was_training)
    features = torch.cat(chunks)
    return features.reshape(*images.shape[:-3], features.shape[-1])


def principal_projection(clean_features: torch.Tensor, dim: int) -> tuple[torch.Tensor, torch.Tensor, np.ndarray]:
    """Mean (F,) and (F, dim) map onto the top ``dim`` principal components of (N, F) features.

    The map is scaled so that the ``dim`` kept variances average 1.

    Returns:
        ``(mean, projection, explained)`` with ``explained`` the fraction of the clean variance kept.
    """
    if not 1 <= dim <= clean_features.shape[1]:
        raise ValueError(f"feature_dim must be in 1..{clean_features.shape[1]}, got {dim}")
    mean = clean_features.mean(0)
    values, vectors = torch.linalg.eigh(torch.cov((clean_features - mean).T))
    order = torch.argsort(values, descending=True)[:dim]
    kept = values[order].clamp_min(0)
    scale = kept.mean().clamp_min(1e-300).rsqrt()
    explained = float(kept.sum() / values.clamp_min(0).sum().clamp_min(1e-300))
    return mean, vectors[:, order] * scale, np.asarray(explained)


def pool_covariances(pool: torch.Tensor, centred: bool) -> FeatureCovariances:
    """The probe's `view_covariances` over all K(K − 1) ordered pairs of distinct views of a pool.

    Training with `pooled_views` draws exactly these pairs uniformly, so A0, C and Σ are the
    second-order statistics that training sees (module docstring).

    Args:
        pool: (N, K, d) features, view k of image i at ``pool[i, k]``.
        centred: as in `view_covariances` (InfoNCE family: True; SCL: False).
    """
    count, views, _ = pool.shape
    first, second = zip(*[(k, m) for k in range(views) for m in range(views) if k != m])
    h1 = pool[:, list(first)].reshape(count * len(first), -1)
    h2 = pool[:, list(second)].reshape(count * len(first), -1)
    return view_covariances(h1, h2, centred)


# --- the two backbones ----------------------------------------------------------------------------


def random_backbone(widths, seed: int) -> nn.Module:
    """A randomly initialised ResNet-12 (BatchNorm with its initial running statistics), seeded."""
    from sslprobe.nn.backbones import ResNet12

    torch.manual_seed(seed)
    return ResNet12(tuple(widths))


def pretrain_backbone(root: str | Path, settings: StudySettings) -> tuple[nn.Module, dict]:
    """Train a ResNet-12 briefly with sslprobe's SimCLR (NT-Xent, T = 0.5) and return its backbone.

    The quickstart's recipe (MLP projector 256 → 64, SGD lr 0.06 → 0.001 cosine, weight decay
    5e-4, batch ``pretrain_batch``) on a balanced subset of ``pretrain_images`` training images,
    ``pretrain_epochs`` epochs (or ``pretrain_max_steps`` steps), one CPU process, no logger.

    Returns:
        The backbone and a record of how it was trained (settings, steps, final loss).
    """
    from lightning.pytorch import Trainer, seed_everything

    from sslprobe.data.datamodule import ImageDataModule
    from sslprobe.methods import SimCLR

    seed_everything(settings.seed, verbose=False)
    method = SimCLR(temperature=0.5, backbone="resnet12", backbone_kwargs={"widths": list(settings.widths)},
                    projector="mlp", hidden_dim=256, output_dim=64, lr=0.06, min_lr=0.001, weight_decay=5e-4)
    data = ImageDataModule(root=str(root), imbalance="none", subset_size=settings.pretrain_images,
                             subset_seed=settings.seed, seed=settings.seed, batch_size=settings.pretrain_batch,
                             num_workers=0)
    with tempfile.TemporaryDirectory() as run_dir:
        trainer = Trainer(accelerator="cpu", devices=1, max_epochs=settings.pretrain_epochs,
                          max_steps=settings.pretrain_max_steps or -1, limit_val_batches=0, logger=False,
                          enable_checkpointing=False, enable_progress_bar=False, enable_model_summary=False,
                          default_root_dir=run_dir)
        trainer.fit(method, datamodule=data)
    loss = trainer.callback_metrics.get("train/loss")
    record = {
        "method": "sslprobe.methods.SimCLR (nt_xent, temperature 0.5), Lightning Trainer, CPU, 1 process",
        "backbone": f"resnet12 widths {list(settings.widths)}",
        "projector": "mlp 256 -> 64", "optimizer": "SGD momentum 0.9, lr 0.06 -> 0.001 cosine, weight decay 5e-4",
        "images": settings.pretrain_images, "batch": settings.pretrain_batch, "epochs": settings.pretrain_epochs,
        "max_steps": settings.pretrain_max_steps, "steps": int(trainer.global_step), "seed": settings.seed,
        "augmentation": "SimCLR recipe, augment_strength 1, crop scale (0.2, 1)",
        "final_train_loss": None if loss is None else float(loss),
    }
    return method.backbone, record


def knn_accuracy(backbone: nn.Module, root: str | Path, images: int, seed: int) -> float:
    """Weighted kNN (k = 50, cosine) top-1 on ``images`` balanced test images from as many train images."""
    from sslprobe.data.augment import normalize_images
    from sslprobe.data.datamodule import ImageDataModule
    from sslprobe.probes.linear import knn_predict

    train, test = ImageDataModule(root=str(root)).balanced_evaluation_sets(images, images, seed)
    train_features = backbone_features(backbone, normalize_images(train.images)).float()
    test_features = backbone_features(backbone, normalize_images(test.images)).float()
    predicted = knn_predict(train_features, train.labels, test_features, 10, k=50)
    return float((predicted == test.labels).double().mean())
