"""The SimCLR augmentation recipe on uint8 image tensors, with a strength knob.

``strength`` s in [0, 1] interpolates from no augmentation (s = 0: identity views) to the
SimCLR recipe (s = 1): random resized crop with scale (1 - s·(1 - lo), hi) and aspect ratio
((3/4)^s, (4/3)^s), horizontal flip p = 0.5, colour jitter (0.4s, 0.4s, 0.4s, 0.1s) applied
with p = 0.8, grayscale with p = 0.2s, then per-channel normalisation. The paper's landscape
experiments (Fig. 2) use small / intermediate / strong augmentation, e.g. s = 0.25 / 0.5 / 1.
"""

from __future__ import annotations

import torch
from torchvision.transforms import v2

CIFAR10_MEAN = (0.4914, 0.4822, 0.4465)
CIFAR10_STD = (0.2470, 0.2435, 0.2616)


def check_augmentation(crop_scale: tuple[float, float], strength: float) -> None:
    low, high = crop_scale
    if not 0 < low <= high <= 1:
        raise ValueError(f"data.crop_scale must satisfy 0 < low <= high <= 1, got {tuple(crop_scale)}")
    if not 0 <= strength <= 1:
        raise ValueError(f"data.augment_strength must be in [0, 1], got {strength}")


def simclr_transform(
    crop_scale: tuple[float, float] = (0.2, 1.0), strength: float = 1.0, size: int = 32, blur: bool = False
) -> v2.Compose:
    """One random SimCLR view of a uint8 (3, H, W) image, as a normalised float tensor.

    With ``blur`` (the recipe above 64 px): Gaussian blur with p = 0.5, σ ~ U(0.1, 2), kernel side
    the odd number nearest a tenth of ``size``.
    """
    check_augmentation(crop_scale, strength)
    low, high = crop_scale
    steps: list = []
    if strength > 0:
        scale = (1.0 - strength * (1.0 - low), high)
        ratio = ((3 / 4) ** strength, (4 / 3) ** strength)
        jitter = v2.ColorJitter(0.4 * strength, 0.4 * strength, 0.4 * strength, 0.1 * strength)
        steps += [
            v2.RandomResizedCrop(size, scale=scale, ratio=ratio, antialias=True),
            v2.RandomHorizontalFlip(p=0.5),
            v2.RandomApply([jitter], p=0.8),
            v2.RandomGrayscale(p=0.2 * strength),
        ]
        if blur:
            from sslprobe.data.blur import BLUR_PROBABILITY, SIGMA_RANGE, blur_kernel_size

            steps.append(v2.RandomApply([v2.GaussianBlur(blur_kernel_size(size), sigma=SIGMA_RANGE)],
                                        p=BLUR_PROBABILITY))
    steps += [v2.ToDtype(torch.float32, scale=True), v2.Normalize(CIFAR10_MEAN, CIFAR10_STD)]
    return v2.Compose(steps)


def normalize_images(images: torch.Tensor) -> torch.Tensor:
    """uint8 (B, 3, H, W) -> normalised float32, for evaluation without augmentation."""
    mean = torch.tensor(CIFAR10_MEAN, device=images.device).view(1, 3, 1, 1)
    std = torch.tensor(CIFAR10_STD, device=images.device).view(1, 3, 1, 1)
    return (images.float() / 255.0 - mean) / std
