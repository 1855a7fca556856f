"""What a benchmark run measures (`Settings`, the `FULL`, `QUICK` and `GPU` presets), the targets of its
ratios, and the timing helpers every section shares."""

from __future__ import annotations

import statistics
import time
from dataclasses import dataclass, replace

import torch

EPOCH_IMAGES = 50_000
# Models besides the backbone names: the CPU imbalance study's cell (scripts/reproduce_imbalance.py --preset cpu).
MODEL_SPECS = {
    "resnet12_narrow": {"model": {"backbone": "resnet12", "backbone_kwargs": {"widths": [16, 32, 64, 128]}},
                        "batch_size": 128},
}
PRECISION_VARIANTS = {  # name: (trainer precision, channels_last)
    "float32": ("32-true", False),
    "channels_last": ("32-true", True),
    "bf16": ("bf16-mixed", False),
    "bf16_channels_last": ("bf16-mixed", True),
}
TARGETS = {"fit_vs_bare": 0.95, "batched_vs_pil": 3.0, "landscape": 2.0, "linear": 1.5, "spectrum": 0.02}


@dataclass(frozen=True)
class Settings:
    """What one benchmark run measures."""

    models: tuple[str, ...] = ("resnet18", "resnet12", "vit_tiny")
    batch_size: int = 256
    warmup_steps: int = 1
    steps: int = 3
    workers: int = 2  # DataLoader workers of the per-sample pipelines = threads of the batched one
    augment_images: int = 4096
    landscape_images: int = 1024
    linear_train_images: int = 5000
    linear_test_images: int = 1000
    spectrum_images: int = 2048
    grid_sizes: tuple[int, ...] = (11, 21, 41)
    scaling_batch_sizes: tuple[int, ...] = (64, 128, 256)
    linear_epochs: tuple[int, ...] = (10, 30, 100)
    device: str = "cpu"
    precision: str = "32-true"
    channels_last: bool = False
    precision_models: tuple[str, ...] = ("resnet18", "resnet12_narrow")
    image_size: int = 32  # of the fit sections' data and models
    resolution_sizes: tuple[int, ...] = (32, 96)


FULL = Settings()
QUICK = replace(
    FULL, batch_size=8, steps=2, augment_images=1024, landscape_images=64, linear_train_images=256,
    linear_test_images=64, spectrum_images=128, grid_sizes=(11, 41), scaling_batch_sizes=(4, 8),
    linear_epochs=(10, 100), precision_models=("resnet12_narrow",),
)
GPU = replace(
    FULL, batch_size=512, warmup_steps=5, steps=20, workers=4, augment_images=16384, landscape_images=4096,
    linear_train_images=50_000, linear_test_images=10_000, spectrum_images=10_000,
    scaling_batch_sizes=(128, 256, 512), device="cuda",
)


def synchronize(device: str) -> None:
    """Wait for the CUDA device's queued work (a no-op on the CPU), so a clock reads finished work."""
    if device.startswith("cuda"):
        torch.cuda.synchronize()


def median(values: list[float]) -> float:
    """The median as a float."""
    return float(statistics.median(values))


def timed(function, device: str):
    """``(function(), seconds)`` measured between two device synchronisations."""
    synchronize(device)
    start = time.perf_counter()
    value = function()
    synchronize(device)
    return value, time.perf_counter() - start


def chunked(function, images: torch.Tensor, size: int) -> torch.Tensor:
    """``function`` applied to ``images`` in chunks of ``size``, concatenated along the batch."""
    return torch.cat([function(images[i : i + size]) for i in range(0, len(images), size)])
