"""Gaussian blur of a batch with one σ per image: the SimCLR recipe's blur, vectorised.

torchvision's ``gaussian_blur`` (kernel ``exp(-x²/2σ²)`` on ``x = -(k-1)/2 … (k-1)/2``,
normalised; reflect padding) applied to every image with its own σ, as two 1-D passes (the 2-D
kernel is their outer product) of a grouped convolution.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

BLUR_PROBABILITY = 0.5
SIGMA_RANGE = (0.1, 2.0)


def blur_kernel_size(image_size: int) -> int:
    """The odd kernel side nearest a tenth of the image (SimCLR: 23 at 224 px; 9 at 96, 3 at 32)."""
    return 2 * (image_size // 20) + 1


def gaussian_kernels(sigma: torch.Tensor, size: int) -> torch.Tensor:
    """(B,) σ -> (B, size) normalised 1-D Gaussian kernels (torchvision's ``_get_gaussian_kernel1d``)."""
    half = (size - 1) * 0.5
    x = torch.linspace(-half, half, steps=size, device=sigma.device, dtype=torch.float32)
    pdf = torch.exp(-0.5 * (x[None, :] / sigma[:, None].to(torch.float32)) ** 2)
    return pdf / pdf.sum(dim=1, keepdim=True)


def gaussian_blur(images: torch.Tensor, sigma: torch.Tensor, size: int) -> torch.Tensor:
    """Blur each image of (B, C, H, W) floats with its own σ (B,) and a ``size``×``size`` kernel."""
    batch, channels, height, width = images.shape
    kernels = gaussian_kernels(sigma, size).to(images.dtype)  # (B, k)
    weights = kernels.repeat_interleave(channels, dim=0)  # (B·C, k): one kernel per image channel
    half = size // 2
    flat = images.reshape(1, batch * channels, height, width)
    flat = F.pad(flat, (half, half, half, half), mode="reflect")
    flat = F.conv2d(flat, weights[:, None, None, :], groups=batch * channels)  # along rows
    flat = F.conv2d(flat, weights[:, None, :, None], groups=batch * channels)  # along columns
    return flat.reshape(batch, channels, height, width)
