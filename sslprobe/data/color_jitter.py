"""torchvision's colour kernels on a float batch, with a factor per sample (the jitter of `batch_augment`).

Each kernel follows the functional op of ``torchvision.transforms.v2.functional`` on float
images in [0, 1] (``adjust_brightness``, ``adjust_contrast``, ``adjust_saturation``,
``adjust_hue``, ``rgb_to_grayscale``'s luma), vectorised over a factor per row; the hue rotation
is the HSV round trip in a branch-free form. `color_jitter` applies the four in a per-sample
order, as ``ColorJitter`` does with its ``randperm(4)``.
"""

from __future__ import annotations

import torch

GRAY_WEIGHTS = (0.2989, 0.587, 0.114)
BRIGHTNESS, CONTRAST, SATURATION, HUE = 0, 1, 2, 3  # ColorJitter's operation ids


def rgb_to_luma(images: torch.Tensor) -> torch.Tensor:
    """(N, 3, H, W) -> (N, 1, H, W) luma, ``rgb_to_grayscale``'s weights."""
    r, g, b = images.unbind(dim=1)
    return (r * GRAY_WEIGHTS[0] + g * GRAY_WEIGHTS[1] + b * GRAY_WEIGHTS[2]).unsqueeze(1)


def _blend(images: torch.Tensor, other: torch.Tensor, ratio: torch.Tensor) -> torch.Tensor:
    """``ratio · images + (1 - ratio) · other`` clamped to [0, 1]; ratio (N,)."""
    ratio = ratio.view(-1, 1, 1, 1)
    return (images * ratio + other * (1 - ratio)).clamp_(0, 1)


def adjust_brightness(images: torch.Tensor, factor: torch.Tensor) -> torch.Tensor:
    """Per-sample ``adjust_brightness`` on (N, 3, H, W) floats in [0, 1]; factor (N,)."""
    return (images * factor.view(-1, 1, 1, 1)).clamp_(0, 1)


def adjust_contrast(images: torch.Tensor, factor: torch.Tensor) -> torch.Tensor:
    """Per-sample ``adjust_contrast``: blend with the mean luma of each image."""
    channel_means = images.mean(dim=(2, 3))  # (N, 3): the mean luma is the luma of the channel means
    weights = torch.tensor(GRAY_WEIGHTS, dtype=images.dtype, device=images.device)
    mean = (channel_means * weights).sum(dim=1).view(-1, 1, 1, 1)
    return _blend(images, mean, factor)


def adjust_saturation(images: torch.Tensor, factor: torch.Tensor) -> torch.Tensor:
    """Per-sample ``adjust_saturation``: blend with the luma image."""
    return _blend(images, rgb_to_luma(images), factor)


def adjust_hue(images: torch.Tensor, shift: torch.Tensor) -> torch.Tensor:
    """Per-sample ``adjust_hue``: rotate the HSV hue by ``shift`` (N,) in [-0.5, 0.5].

    torchvision's RGB -> HSV -> RGB round trip (after Pillow), written without branches:
    the hue in sixths of a turn is ``(g - b) / span`` where red is the largest channel,
    ``2 + (b - r) / span`` where green is, ``4 + (r - g) / span`` where blue is (ties go to
    red, then green, as there); value and ``span = max - min`` do not change under a hue
    rotation, and channel ``c`` of the rotated pixel is
    ``max - span · clamp(2 - d_c, 0, 1)`` with ``d_c`` the circular distance of the new hue
    to 3 (red), 5 (green) or 1 (blue), which is torchvision's six-sector table in one formula.
    Grey pixels (span 0) stay unchanged.
    """
    r, g, b = images.unbind(dim=1)
    maxc = torch.maximum(torch.maximum(r, g), b)
    span = maxc - torch.minimum(torch.minimum(r, g), b)
    is_r = (r == maxc).to(images.dtype)
    is_g = (g == maxc).to(images.dtype) * (1 - is_r)
    is_b = 1 - is_r - is_g
    sixths = is_r * (g - b) + is_g * (b - r + 2 * span) + is_b * (r - g + 4 * span)
    sixths = sixths / span.clamp_min(torch.finfo(images.dtype).tiny)  # grey: 0 / tiny = 0
    sixths += 6 * shift.view(-1, 1, 1)
    sixths -= 6 * torch.floor(sixths * (1 / 6))  # into [0, 6)
    out = torch.empty_like(images)
    for channel, centre in ((0, 3.0), (1, 5.0), (2, 1.0)):
        distance = (sixths - centre).abs_()
        if centre != 3.0:  # from 3 no point of [0, 6) is more than half a turn away
            distance = torch.minimum(distance, 6 - distance)
        torch.sub(maxc, span * (2 - distance).clamp_(0, 1), out=out[:, channel])
    return out


_JITTER_OPERATIONS = {
    BRIGHTNESS: adjust_brightness,
    CONTRAST: adjust_contrast,
    SATURATION: adjust_saturation,
    HUE: adjust_hue,
}


def color_jitter(
    images: torch.Tensor, factors: torch.Tensor, order: torch.Tensor, enabled: torch.Tensor
) -> torch.Tensor:
    """Colour jitter with per-sample factors and per-sample operation order.

    At each of the 4 positions every operation is applied to the rows that have it at that
    position (and jitter switched on), so each row gets each operation exactly once.

    Args:
        images: (B, 3, H, W) floats in [0, 1].
        factors: (B, 4) brightness, contrast, saturation factors and hue shift.
        order: (B, 4) operation ids (`BRIGHTNESS`, ..., `HUE`) in application order.
        enabled: (B,) bool, the rows that are jittered at all.

    Returns:
        (B, 3, H, W) floats in [0, 1].
    """
    images = images.clone()
    for position in range(4):
        for operation, function in _JITTER_OPERATIONS.items():
            rows = torch.nonzero(enabled & (order[:, position] == operation)).squeeze(1)
            if rows.numel():
                selected = function(images.index_select(0, rows), factors[rows, operation])
                images.index_copy_(0, rows, selected)
    return images
