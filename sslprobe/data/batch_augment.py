"""The SimCLR recipe of `augment.py`, made for a whole uint8 batch at once on its device.

`simclr_transform` augments one image at a time in DataLoader workers. `SimCLRBatchAugment`
takes the uint8 batch where it already is (GPU or CPU) and makes both views there with
per-sample random parameters drawn exactly as torchvision's transforms draw them:

- crop box as in ``RandomResizedCrop.make_params`` (10 attempts of area ~ U(scale) and
  log-aspect ~ U(log ratio), then the centre-crop fallback), scale
  ``(1 - s·(1 - lo), hi)``, ratio ``((3/4)^s, (4/3)^s)``;
- horizontal flip with p = 0.5;
- colour jitter with p = 0.8: brightness, contrast, saturation factors ~ U(1 - 0.4s, 1 + 0.4s),
  hue shift ~ U(-0.1s, 0.1s), the four operations applied in a per-sample uniformly random
  order (``ColorJitter``'s ``randperm(4)``);
- grayscale with p = 0.2s;
- with ``blur`` (on above 64 px, e.g. STL-10 at 96): Gaussian blur with p = 0.5, σ ~ U(0.1, 2),
  kernel side the odd number nearest a tenth of the image (`sslprobe.data.blur`);

then normalisation with the CIFAR-10 mean and std.

Randomness. Every parameter is a pure function of the sample's seed (the int that
`GlobalBatchSampler` attaches to each index): ``u_k = mix64(mix64(seed) + (c_k + 1)·γ)`` is
SplitMix64 (Steele et al. 2014) used as a counter-based generator, with counter
``c_k = stream · 64 + k`` and γ the golden-ratio increment. View 1 reads stream 0, view 2
stream 1. No generator state exists, so the views do not depend on the batch composition, the
order within the batch, the rank or the worker, and exact resume needs nothing saved.

Kernels. Crop, bilinear resize and flip are one ``grid_sample`` whose grid holds the source
coordinates of torchvision's ``resized_crop`` (bilinear, half-pixel centres, source coordinates
clamped to the crop), which it reproduces whenever the crop is not larger than the output;
that always holds here because views keep the image size, and antialiasing only acts when
downscaling. (A grid from an affine map with border padding would clamp to the image instead
of the crop and differ from torchvision at crop edges.) The colour operations follow
torchvision's functional kernels on float images, vectorised with per-sample factors; the hue
rotation is the HSV round trip in a branch-free form (`sslprobe.data.color_jitter`). Both views
go through as one batch.

Differences from the per-sample path, all of them below the uint8 resolution: the per-sample
path rounds to uint8 after the resize and after each jitter operation, this one stays in
float32 until normalisation; and its random stream is a different (equally distributed) one.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F

from sslprobe.data.augment import CIFAR10_MEAN, CIFAR10_STD, check_augmentation
from sslprobe.data.blur import BLUR_PROBABILITY, SIGMA_RANGE, blur_kernel_size, gaussian_blur
from sslprobe.data.color_jitter import (  # noqa: F401 - the ids re-exported: the values of ViewParameters.order
    BRIGHTNESS,
    CONTRAST,
    HUE,
    SATURATION,
    color_jitter,
    rgb_to_luma,
)

GOLDEN_GAMMA = 0x9E3779B97F4A7C15
MIX_MULTIPLIERS = (0xBF58476D1CE4E5B9, 0x94D049BB133111EB)
STREAM_WIDTH = 64  # uniforms reserved per view; the recipe uses 30 of them
CROP_ATTEMPTS = 10

# Offsets of the uniforms of one view inside its stream.
_AREA, _LOG_RATIO = 0, CROP_ATTEMPTS
_TOP, _LEFT = 2 * CROP_ATTEMPTS, 2 * CROP_ATTEMPTS + 1
_FLIP, _JITTER, _GRAY = 2 * CROP_ATTEMPTS + 2, 2 * CROP_ATTEMPTS + 3, 2 * CROP_ATTEMPTS + 4
_FACTORS, _ORDER_KEYS = 2 * CROP_ATTEMPTS + 5, 2 * CROP_ATTEMPTS + 9
_DRAWS = 2 * CROP_ATTEMPTS + 13
_BLUR, _SIGMA = _DRAWS, _DRAWS + 1  # read only with blur: the draws before them stay as they are


def _signed(value: int) -> int:
    """An unsigned 64-bit constant as the int64 with the same bits."""
    return value - (1 << 64) if value >= 1 << 63 else value


def _shift_right_logical(x: torch.Tensor, bits: int) -> torch.Tensor:
    """``x >>> bits`` on int64 (torch's ``>>`` is arithmetic and copies the sign bit)."""
    return (x >> bits) & ((1 << (64 - bits)) - 1)


def mix64(x: torch.Tensor) -> torch.Tensor:
    """SplitMix64's output function, a bijection of 64-bit words, on int64 tensors.

    Multiplications wrap modulo 2⁶⁴ like unsigned arithmetic (two's complement), so the bits
    equal the reference ``z ^= z >> 30; z *= 0xBF58476D1CE4E5B9; z ^= z >> 27;
    z *= 0x94D049BB133111EB; z ^= z >> 31`` on uint64.
    """
    x = (x ^ _shift_right_logical(x, 30)) * _signed(MIX_MULTIPLIERS[0])
    x = (x ^ _shift_right_logical(x, 27)) * _signed(MIX_MULTIPLIERS[1])
    return x ^ _shift_right_logical(x, 31)


def counter_uniforms(seeds: torch.Tensor, stream: int, count: int) -> torch.Tensor:
    """Uniforms on [0, 1) that depend only on (seed, stream, k): ``(B,) -> (B, count)`` float64.

    Args:
        seeds: (B,) int64 per-sample seeds (any value; `sample_seed` gives 63-bit ones).
        stream: which independent stream (e.g. 0 for view 1, 1 for view 2).
        count: uniforms per sample, at most ``STREAM_WIDTH``.
    """
    if not 0 < count <= STREAM_WIDTH:
        raise ValueError(f"count must be in [1, {STREAM_WIDTH}], got {count}")
    counters = stream * STREAM_WIDTH + torch.arange(1, count + 1, device=seeds.device, dtype=torch.int64)
    keys = mix64(seeds.to(torch.int64))[:, None]  # (B, 1)
    bits = mix64(keys + counters * _signed(GOLDEN_GAMMA))  # (B, count), wrapping
    return _shift_right_logical(bits, 11).to(torch.float64) * 2.0**-53  # top 53 bits


@dataclass
class ViewParameters:
    """Per-sample parameters of one SimCLR view of a batch of B images.

    Attributes:
        top, left, height, width: (B,) int64 crop box in pixels.
        flip: (B,) bool, horizontal flip.
        jitter: (B,) bool, whether colour jitter is applied.
        factors: (B, 4) float32 brightness, contrast, saturation factors and hue shift.
        order: (B, 4) int64 operation ids (`BRIGHTNESS`, ..., `HUE`) in application order.
        grayscale: (B,) bool.
        blur: (B,) bool, Gaussian blur.
        sigma: (B,) float32 σ of the blur.
    """

    top: torch.Tensor
    left: torch.Tensor
    height: torch.Tensor
    width: torch.Tensor
    flip: torch.Tensor
    jitter: torch.Tensor
    factors: torch.Tensor
    order: torch.Tensor
    grayscale: torch.Tensor
    blur: torch.Tensor
    sigma: torch.Tensor

    @classmethod
    def identity(cls, batch: int, height: int, width: int, device: torch.device | str = "cpu") -> ViewParameters:
        """Parameters that leave every image unchanged."""
        zeros = torch.zeros(batch, dtype=torch.int64, device=device)
        false = torch.zeros(batch, dtype=torch.bool, device=device)
        factors = torch.tensor([1.0, 1.0, 1.0, 0.0], device=device).expand(batch, 4).clone()
        order = torch.arange(4, device=device).expand(batch, 4).clone()
        return cls(zeros, zeros.clone(), zeros + height, zeros + width, false, false.clone(), factors, order,
                   false.clone(), false.clone(), torch.ones(batch, device=device))

    @classmethod
    def cat(cls, parts: list[ViewParameters]) -> ViewParameters:
        """The parameters of several batches, one after the other (rows in order)."""
        fields = cls.__dataclass_fields__
        return cls(**{name: torch.cat([getattr(part, name) for part in parts]) for name in fields})


def _crop_boxes(
    uniforms: torch.Tensor, height: int, width: int, scale: tuple[float, float], ratio: tuple[float, float]
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """``RandomResizedCrop.make_params`` for every row of ``uniforms`` (B, _DRAWS) at once."""
    area = height * width
    log_ratio = torch.log(torch.tensor(ratio, dtype=torch.float64))
    target_area = area * (scale[0] + (scale[1] - scale[0]) * uniforms[:, _AREA : _AREA + CROP_ATTEMPTS])
    log_aspect_draws = uniforms[:, _LOG_RATIO : _LOG_RATIO + CROP_ATTEMPTS]
    aspect = torch.exp(log_ratio[0] + (log_ratio[1] - log_ratio[0]) * log_aspect_draws)
    # torch.round, like Python's round, sends halves to the even integer.
    w = torch.round(torch.sqrt(target_area * aspect)).to(torch.int64)  # (B, attempts)
    h = torch.round(torch.sqrt(target_area / aspect)).to(torch.int64)
    fits = (w > 0) & (w <= width) & (h > 0) & (h <= height)
    found = fits.any(dim=1)
    first = fits.to(torch.int8).argmax(dim=1, keepdim=True)  # first attempt that fits
    w, h = w.gather(1, first).squeeze(1), h.gather(1, first).squeeze(1)

    in_ratio = width / height
    if in_ratio < min(ratio):
        fallback_w, fallback_h = width, int(round(width / min(ratio)))
    elif in_ratio > max(ratio):
        fallback_w, fallback_h = int(round(height * max(ratio))), height
    else:
        fallback_w, fallback_h = width, height
    w = torch.where(found, w, fallback_w)
    h = torch.where(found, h, fallback_h)
    # randint(0, n) as floor(u · n); the fallback is centred.
    top = torch.floor(uniforms[:, _TOP] * (height - h + 1)).to(torch.int64)
    left = torch.floor(uniforms[:, _LEFT] * (width - w + 1)).to(torch.int64)
    top = torch.where(found, top, (height - h) // 2)
    left = torch.where(found, left, (width - w) // 2)
    return top, left, h, w


def draw_view_parameters(
    seeds: torch.Tensor,
    stream: int,
    height: int,
    width: int,
    crop_scale: tuple[float, float] = (0.2, 1.0),
    strength: float = 1.0,
    blur: bool = False,
) -> ViewParameters:
    """The SimCLR view parameters of each sample, a pure function of (seed, stream).

    Args:
        seeds: (B,) int64 per-sample seeds.
        stream: 0 for the first view, 1 for the second (any int gives an independent stream).
        height, width: image size in pixels.
        crop_scale, strength: as in `simclr_transform`; strength 0 gives `ViewParameters.identity`.
        blur: draw the Gaussian blur (p 0.5, σ ~ U(0.1, 2)); the other parameters do not change.

    Returns:
        `ViewParameters` on the device of ``seeds``.
    """
    check_augmentation(crop_scale, strength)
    batch, device = seeds.shape[0], seeds.device
    if strength == 0:
        return ViewParameters.identity(batch, height, width, device)
    low, high = crop_scale
    scale = (1.0 - strength * (1.0 - low), high)
    ratio = ((3 / 4) ** strength, (4 / 3) ** strength)
    u = counter_uniforms(seeds, stream, _SIGMA + 1 if blur else _DRAWS)  # (B, draws) float64
    top, left, crop_h, crop_w = _crop_boxes(u, height, width, scale, ratio)
    spread = torch.tensor([0.4, 0.4, 0.4, 0.1], dtype=torch.float64, device=device) * strength
    centre = torch.tensor([1.0, 1.0, 1.0, 0.0], dtype=torch.float64, device=device)
    factors = centre + spread * (2 * u[:, _FACTORS : _FACTORS + 4] - 1)  # U(centre ± spread)
    order = torch.argsort(u[:, _ORDER_KEYS : _ORDER_KEYS + 4], dim=1)  # uniform over the 24 orders
    return ViewParameters(
        top=top,
        left=left,
        height=crop_h,
        width=crop_w,
        flip=u[:, _FLIP] < 0.5,
        jitter=u[:, _JITTER] < 0.8,
        factors=factors.to(torch.float32),
        order=order,
        grayscale=u[:, _GRAY] < 0.2 * strength,
        blur=u[:, _BLUR] < BLUR_PROBABILITY if blur else torch.zeros(batch, dtype=torch.bool, device=device),
        sigma=(SIGMA_RANGE[0] + (SIGMA_RANGE[1] - SIGMA_RANGE[0]) * u[:, _SIGMA]).to(torch.float32) if blur
        else torch.ones(batch, device=device),
    )


def _source_coordinates(start: torch.Tensor, length: torch.Tensor, size: int) -> torch.Tensor:
    """(B,) crop starts and lengths -> (B, size) float64 source pixel coordinate of each output pixel.

    ``(o + 0.5) · length / size - 0.5`` clamped to [0, length - 1] (``upsample_bilinear2d`` with
    ``align_corners=False`` on the cropped image), then offset by ``start``.
    """
    out = torch.arange(size, device=start.device, dtype=torch.float64)
    length64 = length.to(torch.float64)[:, None]
    source = ((out + 0.5) * length64 / size - 0.5).clamp(min=0.0)
    return torch.minimum(source, length64 - 1) + start[:, None]


def resized_crop_flip(images: torch.Tensor, params: ViewParameters) -> torch.Tensor:
    """Crop each image to its box, resize it bilinearly back to (H, W), flip where asked.

    One ``grid_sample`` call: the sampling grid holds, for every output pixel, the source
    coordinates torchvision's resize would read, already clamped to the crop (so the border
    padding of ``grid_sample`` never reaches pixels outside the box), with ``align_corners=True``
    mapping pixel centres exactly. Coordinates are computed in float64 and rounded once.

    Args:
        images: (B, C, H, W) float images.
        params: per-sample boxes and flips.

    Returns:
        (B, C, H, W) float images.
    """
    _, _, height, width = images.shape
    rows = _source_coordinates(params.top, params.height, height)  # (B, H) pixel coordinates
    columns = _source_coordinates(params.left, params.width, width)  # (B, W)
    columns = torch.where(params.flip[:, None], columns.flip(1), columns)
    # grid_sample's normalised coordinates: -1 and +1 are the centres of the first and last pixel
    ys = (rows * (2.0 / max(height - 1, 1)) - 1.0).to(images.dtype)
    xs = (columns * (2.0 / max(width - 1, 1)) - 1.0).to(images.dtype)
    grid = torch.stack(torch.broadcast_tensors(xs[:, None, :], ys[:, :, None]), dim=-1)  # (B, H, W, 2)
    out = F.grid_sample(images, grid, mode="bilinear", padding_mode="border", align_corners=True)
    # A box of the whole image is no resize at all (torchvision returns it as is); copy such rows
    # exactly instead of through rounded grid coordinates.
    whole = (params.height == height) & (params.width == width)
    for flipped in (False, True):
        rows = torch.nonzero(whole & (params.flip == flipped)).squeeze(1)
        if rows.numel():
            kept = images.index_select(0, rows)
            out.index_copy_(0, rows, kept.flip(-1) if flipped else kept)
    return out



def render_view(images: torch.Tensor, params: ViewParameters) -> torch.Tensor:
    """One view of float images in [0, 1], before normalisation: crop-resize-flip, jitter, gray, blur.

    Every row depends only on its own image and parameters (no batch statistics), so a view
    does not depend on which other images share the batch.

    Args:
        images: (B, 3, H, W) floats in [0, 1].
        params: per-sample parameters of this view.

    Returns:
        (B, 3, H, W) floats in [0, 1].
    """
    views = color_jitter(resized_crop_flip(images, params), params.factors, params.order, params.jitter)
    rows = torch.nonzero(params.grayscale).squeeze(1)
    if rows.numel():
        views.index_copy_(0, rows, rgb_to_luma(views.index_select(0, rows)).expand(-1, views.shape[1], -1, -1))
    rows = torch.nonzero(params.blur).squeeze(1)
    if rows.numel():
        size = blur_kernel_size(min(views.shape[-2:]))
        blurred = gaussian_blur(views.index_select(0, rows), params.sigma.index_select(0, rows), size)
        views.index_copy_(0, rows, blurred)
    return views


class SimCLRBatchAugment:
    """Two SimCLR views of a uint8 batch, made on the batch's device.

    Args:
        crop_scale: random-resized-crop scale range, as in `simclr_transform`.
        strength: 0 (normalisation only) to 1 (the SimCLR recipe), as in `simclr_transform`.
        mean, std: per-channel normalisation.
        blur: add the Gaussian blur (the recipe above 64 px).

    Example:
        >>> augment = SimCLRBatchAugment((0.2, 1.0), 1.0)
        >>> view1, view2 = augment(images, seeds)  # (B, 3, H, W) uint8, (B,) int64
    """

    def __init__(
        self,
        crop_scale: tuple[float, float] = (0.2, 1.0),
        strength: float = 1.0,
        mean: tuple[float, ...] = CIFAR10_MEAN,
        std: tuple[float, ...] = CIFAR10_STD,
        blur: bool = False,
    ):
        check_augmentation(crop_scale, strength)
        self.crop_scale, self.strength, self.blur = tuple(crop_scale), float(strength), bool(blur)
        self.mean, self.std = tuple(mean), tuple(std)

    def parameters(self, seeds: torch.Tensor, view: int, height: int, width: int) -> ViewParameters:
        """Parameters of view ``view`` (0 or 1) for each seed in ``seeds`` (B,)."""
        return draw_view_parameters(seeds, view, height, width, self.crop_scale, self.strength, self.blur)

    def normalize(self, images: torch.Tensor) -> torch.Tensor:
        """(B, 3, H, W) floats in [0, 1] -> normalised (a new tensor)."""
        mean = torch.tensor(self.mean, device=images.device, dtype=images.dtype).view(1, -1, 1, 1)
        std = torch.tensor(self.std, device=images.device, dtype=images.dtype).view(1, -1, 1, 1)
        return (images - mean).div_(std)

    def __call__(self, images: torch.Tensor, seeds: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Two normalised float32 views of each image.

        Args:
            images: (B, 3, H, W) uint8 on any device.
            seeds: (B,) int64 per-sample seeds (`sample_seed`), on any device.

        Returns:
            ``(view1, view2)``, each (B, 3, H, W) float32 on the device of ``images``.
        """
        if images.dtype != torch.uint8 or images.ndim != 4:
            raise ValueError(f"expected uint8 images of shape (B, C, H, W), got {images.dtype} {tuple(images.shape)}")
        seeds = torch.as_tensor(seeds, dtype=torch.int64, device=images.device)
        if seeds.shape != images.shape[:1]:
            raise ValueError(f"expected one seed per image ({images.shape[0]}), got shape {tuple(seeds.shape)}")
        _, _, height, width = images.shape
        with torch.autocast(images.device.type, enabled=False):
            pixels = images.to(torch.float32) / 255.0
            if self.strength == 0:
                view = self.normalize(pixels)
                return view, view.clone()
            # both views as one batch of 2B rows: rows are independent, so this only saves overhead
            params = ViewParameters.cat([self.parameters(seeds, view, height, width) for view in (0, 1)])
            views = self.normalize(render_view(pixels.repeat(2, 1, 1, 1), params))
            return tuple(views.chunk(2))
