"""Batched SimCLR views: torchvision's parameter distributions and kernels, seeds as the only input.

Statistical tolerances: with n draws a rate p has standard error sqrt(p(1-p)/n); rates are
checked to 4.5 standard errors (two-sided false-alarm chance ~7e-6 per check). Distributions are
compared with the two-sample Kolmogorov-Smirnov distance, whose 0.1% critical value is
1.95·sqrt((n+m)/(n·m)); permutation uniformity with a χ² test on 24 cells at the 0.1% level
(χ²₂₃ quantile 49.7). All draws are seeded, so the tests are deterministic.
"""

from __future__ import annotations

import math
import random

import numpy as np
import pytest
import torch
from torch.utils.data import DataLoader
from torchvision.transforms import v2
from torchvision.transforms.v2 import functional as TF

from sslprobe.data import CIFAR10DataModule, ImageSet
from sslprobe.data.augment import normalize_images, simclr_transform
from sslprobe.data.batch_augment import (
    BRIGHTNESS,
    CONTRAST,
    HUE,
    SATURATION,
    SimCLRBatchAugment,
    ViewParameters,
    counter_uniforms,
    draw_view_parameters,
    mix64,
    render_view,
)
from sslprobe.data.datamodule import SeededImageDataset
from sslprobe.data.sampler import GlobalBatchSampler, sample_seed

N_DRAWS = 20_000
MASK64 = (1 << 64) - 1


def ks_distance(a: np.ndarray, b: np.ndarray) -> float:
    """Two-sample Kolmogorov-Smirnov statistic sup |F_a - F_b|."""
    grid = np.union1d(a, b)
    cdf_a = np.searchsorted(np.sort(a), grid, side="right") / len(a)
    cdf_b = np.searchsorted(np.sort(b), grid, side="right") / len(b)
    return float(np.abs(cdf_a - cdf_b).max())


def ks_critical(n: int, m: int) -> float:
    return 1.95 * math.sqrt((n + m) / (n * m))


def assert_rate(flags: torch.Tensor, p: float) -> None:
    n = flags.numel()
    tolerance = 4.5 * math.sqrt(p * (1 - p) / n)
    assert abs(flags.double().mean().item() - p) <= tolerance, (flags.double().mean().item(), p, tolerance)


def reference_mix64(z: int) -> int:
    z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & MASK64
    z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & MASK64
    return z ^ (z >> 31)


def to_signed(z: int) -> int:
    return z - (1 << 64) if z >= 1 << 63 else z


# Largest |ours - torchvision| on [0, 1] pixels allowed (README "Batched augmentation"); measured in
# float32 on this suite's inputs: 1.85e-6 (views), 9.5e-7 (hue); on 2,048 CIFAR-10 images 2.2e-6.
FLOAT_ROUNDING = 2.5e-6


@pytest.fixture(scope="module")
def seeds() -> torch.Tensor:
    return torch.tensor([sample_seed(0, 0, i) for i in range(N_DRAWS)], dtype=torch.int64)


@pytest.fixture(scope="module")
def images() -> torch.Tensor:
    generator = torch.Generator().manual_seed(0)
    # smooth random images (not pure noise) so crops and colour operations do visible work
    small = torch.randint(0, 256, (48, 3, 8, 8), dtype=torch.uint8, generator=generator)
    return TF.resize(small, [32, 32], antialias=True)


# ---------------------------------------------------------------- hashing
def test_mix64_equals_the_uint64_reference():
    rng = random.Random(0)
    values = [0, 1, 2, (1 << 63) - 1, 1 << 63, MASK64] + [rng.getrandbits(64) for _ in range(200)]
    got = mix64(torch.tensor([to_signed(v) for v in values], dtype=torch.int64)).tolist()
    assert got == [to_signed(reference_mix64(v)) for v in values]


def test_uniforms_are_uniform_and_streams_independent(seeds):
    u0 = counter_uniforms(seeds, 0, 4).numpy()
    u1 = counter_uniforms(seeds, 1, 4).numpy()
    assert u0.min() >= 0 and u0.max() < 1
    uniform = np.linspace(0, 1, 4001)[:-1] + 1 / 8000
    for column in range(4):
        assert ks_distance(u0[:, column], uniform) < ks_critical(N_DRAWS, 4000)
    # correlation between streams and between draws: |r| < 4.5 / sqrt(n)
    correlations = np.corrcoef(np.concatenate([u0, u1], axis=1).T)
    off_diagonal = correlations[~np.eye(8, dtype=bool)]
    assert np.abs(off_diagonal).max() < 4.5 / math.sqrt(N_DRAWS)


# ------------------------------------------------- parameter distributions
def torchvision_crops(n: int, scale: tuple[float, float], ratio: tuple[float, float]) -> np.ndarray:
    """(n, 4) top, left, height, width from torchvision's own RandomResizedCrop.make_params."""
    crop = v2.RandomResizedCrop(32, scale=scale, ratio=ratio)
    probe = [torch.empty(3, 32, 32)]
    torch.manual_seed(0)
    boxes = [crop.make_params(probe) for _ in range(n)]
    return np.array([[b["top"], b["left"], b["height"], b["width"]] for b in boxes], dtype=np.float64)


@pytest.mark.parametrize(("crop_scale", "strength"), [((0.2, 1.0), 1.0), ((0.9, 1.0), 1.0), ((0.2, 1.0), 0.5)])
def test_crop_boxes_follow_torchvision(seeds, crop_scale, strength):
    """Area, aspect ratio and position of the boxes, including the centre-crop fallback."""
    low, high = crop_scale
    scale = (1 - strength * (1 - low), high)
    ratio = ((3 / 4) ** strength, (4 / 3) ** strength)
    n_reference = 8000
    reference = torchvision_crops(n_reference, scale, ratio)
    params = draw_view_parameters(seeds, 0, 32, 32, crop_scale, strength)
    ours = torch.stack([params.top, params.left, params.height, params.width], 1).double().numpy()
    assert (ours[:, 2] >= 1).all() and (ours[:, 0] + ours[:, 2] <= 32).all()
    assert (ours[:, 3] >= 1).all() and (ours[:, 1] + ours[:, 3] <= 32).all()
    critical = ks_critical(N_DRAWS, n_reference)
    for name, statistic in [
        ("area", lambda b: b[:, 2] * b[:, 3]),
        ("aspect", lambda b: b[:, 3] / b[:, 2]),
        ("top", lambda b: b[:, 0]),
        ("left", lambda b: b[:, 1]),
    ]:
        assert ks_distance(statistic(ours), statistic(reference)) < critical, name
    # the full-image fallback (box 32x32 at 0, 0) happens at the same rate
    fallback_ours = ((ours[:, 2] == 32) & (ours[:, 3] == 32)).mean()
    fallback_reference = ((reference[:, 2] == 32) & (reference[:, 3] == 32)).mean()
    p = max(fallback_reference, 1e-3)
    assert abs(fallback_ours - fallback_reference) < 4.5 * math.sqrt(p * (1 - p) * (1 / N_DRAWS + 1 / n_reference))


@pytest.mark.parametrize("strength", [1.0, 0.5])
def test_flip_jitter_grayscale_rates_and_factors(seeds, strength):
    params = draw_view_parameters(seeds, 1, 32, 32, (0.2, 1.0), strength)
    assert_rate(params.flip, 0.5)
    assert_rate(params.jitter, 0.8)
    assert_rate(params.grayscale, 0.2 * strength)
    spread = np.array([0.4, 0.4, 0.4, 0.1]) * strength
    centre = np.array([1.0, 1.0, 1.0, 0.0])
    factors = params.factors.double().numpy()
    reference = np.linspace(-1, 1, 4001)[:, None] * spread + centre  # U(centre ± spread) quantiles
    for column in range(4):
        assert factors[:, column].min() >= centre[column] - spread[column] - 1e-6
        assert factors[:, column].max() <= centre[column] + spread[column] + 1e-6
        assert ks_distance(factors[:, column], reference[:, column]) < ks_critical(N_DRAWS, 4001)


def test_jitter_order_is_a_uniform_permutation(seeds):
    order = draw_view_parameters(seeds, 0, 32, 32).order
    assert torch.equal(order.sort(dim=1).values, torch.arange(4).expand_as(order))
    codes = (order * torch.tensor([64, 16, 4, 1])).sum(1)
    counts = np.array(list(torch.unique(codes, return_counts=True)[1].tolist()))
    assert len(counts) == 24
    expected = N_DRAWS / 24
    assert ((counts - expected) ** 2 / expected).sum() < 49.7


def test_views_are_distributed_like_the_per_sample_recipe(images):
    """Per-view channel means and standard deviations of one image: batched vs simclr_transform."""
    n = 500
    image = images[3]
    batched = SimCLRBatchAugment()(image.expand(n, 3, 32, 32).contiguous(), torch.arange(n))[0]
    transform = simclr_transform()
    torch.manual_seed(0)
    per_sample = torch.stack([transform(image) for _ in range(n)])
    critical = ks_critical(n, n)
    for reduce in (lambda x: x.mean(dim=(2, 3)), lambda x: x.std(dim=(2, 3))):
        ours, theirs = reduce(batched).numpy(), reduce(per_sample).numpy()
        for channel in range(3):
            assert ks_distance(ours[:, channel], theirs[:, channel]) < critical


# ------------------------------------------------------ kernels vs torchvision
def reference_view(image: torch.Tensor, params: ViewParameters, row: int) -> torch.Tensor:
    """torchvision's functional ops, one image at a time, with the drawn parameters."""
    top, left, height, width = (int(t[row]) for t in (params.top, params.left, params.height, params.width))
    out = TF.resized_crop(image, top, left, height, width, [32, 32], antialias=True)
    if params.flip[row]:
        out = TF.horizontal_flip(out)
    if params.jitter[row]:
        b, c, s, h = (float(f) for f in params.factors[row])
        operations = {
            BRIGHTNESS: lambda x: TF.adjust_brightness(x, b),
            CONTRAST: lambda x: TF.adjust_contrast(x, c),
            SATURATION: lambda x: TF.adjust_saturation(x, s),
            HUE: lambda x: TF.adjust_hue(x, h),
        }
        for operation in params.order[row].tolist():
            out = operations[operation](out)
    if params.grayscale[row]:
        out = TF.rgb_to_grayscale(out, num_output_channels=3)
    return out


def test_fixed_parameters_equal_torchvision_functional_ops(images):
    pixels = images.float() / 255
    params = draw_view_parameters(torch.arange(len(images)) * 7919, 0, 32, 32)
    # the batch exercises every branch
    assert params.flip.any() and (~params.flip).any() and params.jitter.any() and (~params.jitter).any()
    assert params.grayscale.any() and (params.height < 32).any()
    ours = render_view(pixels, params)
    expected = torch.stack([reference_view(pixels[row], params, row) for row in range(len(images))])
    torch.testing.assert_close(ours, expected, atol=FLOAT_ROUNDING, rtol=0)


def test_hue_rotation_equals_torchvision_on_grey_ties_and_half_turns():
    """The branch-free hue formula against ``TF.adjust_hue`` where the HSV branches are decided:
    grey pixels, ties between the largest channels, pure primaries, and shifts of ±half a turn."""
    from sslprobe.data.color_jitter import adjust_hue

    generator = torch.Generator().manual_seed(2)
    images = torch.rand(12, 3, 8, 8, generator=generator)
    images[0] = images[0, :1]  # grey everywhere
    images[1, 1] = images[1, 0]  # r == g
    images[2, 2] = images[2, 1]  # g == b
    images[3, 2] = images[3, 0]  # r == b
    images[4] = torch.tensor([1.0, 0.0, 0.0]).view(3, 1, 1)  # pure red, green, blue
    images[5] = torch.tensor([0.0, 1.0, 0.0]).view(3, 1, 1)
    images[6] = torch.tensor([0.0, 0.0, 1.0]).view(3, 1, 1)
    images[7] = (images[7] * 255).round() / 255  # on the uint8 grid, like decoded images
    shifts = torch.tensor([0.3, -0.5, 0.5, 0.25, 0.1, -0.1, 0.45, -0.33, 0.0, 0.5, -0.5, 0.07])
    ours = adjust_hue(images, shifts)
    expected = torch.stack([TF.adjust_hue(image, float(shift)) for image, shift in zip(images, shifts)])
    torch.testing.assert_close(ours, expected, atol=FLOAT_ROUNDING, rtol=0)
    torch.testing.assert_close(ours[0], images[0], atol=0, rtol=0)  # grey stays exactly grey


def test_strength_zero_is_identity_plus_normalisation(images):
    seeds = torch.arange(len(images))
    view1, view2 = SimCLRBatchAugment(strength=0.0)(images, seeds)
    torch.testing.assert_close(view1, normalize_images(images))
    torch.testing.assert_close(view2, view1)
    identity = draw_view_parameters(seeds, 0, 32, 32, strength=0.0)
    pixels = images.float() / 255
    assert torch.equal(render_view(pixels, identity), pixels)


# ------------------------------------------------------------ seeds only
def test_views_depend_only_on_the_seeds(images):
    augment = SimCLRBatchAugment((0.5, 1.0), 1.0)
    seeds = torch.tensor([sample_seed(1, 2, i) for i in range(len(images))])
    view1, view2 = augment(images, seeds)
    permutation = torch.randperm(len(images), generator=torch.Generator().manual_seed(1))
    shuffled1, shuffled2 = augment(images[permutation], seeds[permutation])
    assert torch.equal(shuffled1, view1[permutation]) and torch.equal(shuffled2, view2[permutation])
    halves = [augment(images[part], seeds[part]) for part in (slice(0, 17), slice(17, None))]
    assert torch.equal(torch.cat([h[0] for h in halves]), view1)
    assert torch.equal(torch.cat([h[1] for h in halves]), view2)
    torch.manual_seed(123)  # the global RNG plays no part
    assert torch.equal(augment(images, seeds)[0], view1)


def test_views_differ_between_views_and_seeds(images):
    augment = SimCLRBatchAugment()
    seeds = torch.arange(len(images))
    view1, view2 = augment(images, seeds)
    other1, _ = augment(images, seeds + 1000)
    differs = lambda a, b: (a - b).flatten(1).abs().amax(1) > 1e-3  # noqa: E731
    assert differs(view1, view2).all()
    assert differs(view1, other1).all()
    assert view1.dtype == torch.float32 and view1.shape == images.shape


def test_bad_inputs_are_rejected(images):
    augment = SimCLRBatchAugment()
    with pytest.raises(ValueError, match="uint8"):
        augment(images.float(), torch.arange(len(images)))
    with pytest.raises(ValueError, match="one seed per image"):
        augment(images, torch.arange(3))
    with pytest.raises(ValueError, match="augment_strength"):
        SimCLRBatchAugment(strength=2.0)
    with pytest.raises(ValueError, match="augment_on"):
        CIFAR10DataModule(augment_on="gpu")


# ------------------------------------------------------------ datamodule
def test_datamodule_device_mode_equals_across_ranks_and_workers(images):
    """uint8 batches + seeds from the loader; 2 ranks' views concatenated equal 1 rank's."""
    labels = torch.arange(len(images)) % 10
    image_set = ImageSet(images, labels)
    module = CIFAR10DataModule(augment_on="device", seed=5)
    assert module.augments_on_device and CIFAR10DataModule().augments_on_device
    assert not CIFAR10DataModule(augment_on="workers").augments_on_device
    dataset = module.make_dataset(image_set, None)
    assert type(dataset) is SeededImageDataset  # uint8 images out, no per-sample views

    def views(rank: int, world: int, num_workers: int) -> list[tuple[torch.Tensor, ...]]:
        sampler = GlobalBatchSampler(len(images), 16, seed=5, rank=rank, world_size=world)
        loader = DataLoader(dataset, batch_size=16 // world, sampler=sampler, num_workers=num_workers)
        batches = []
        for batch in loader:
            assert batch[0].dtype == torch.uint8 and batch[2].dtype == torch.int64
            batches.append(module.on_after_batch_transfer(batch, 0))
        return batches

    single = views(0, 1, num_workers=2)
    ranks = [views(rank, 2, num_workers=0) for rank in (0, 1)]
    assert len(single) == 3
    for step, (view1, view2, batch_labels) in enumerate(single):
        assert view1.dtype == torch.float32 and view1.shape == (16, 3, 32, 32)
        assert torch.equal(view1, torch.cat([ranks[0][step][0], ranks[1][step][0]]))
        assert torch.equal(view2, torch.cat([ranks[0][step][1], ranks[1][step][1]]))
        assert torch.equal(batch_labels, torch.cat([ranks[0][step][2], ranks[1][step][2]]))
    float_batch = (torch.zeros(2, 3, 32, 32), torch.zeros(2, 3, 32, 32), torch.zeros(2))
    assert module.on_after_batch_transfer(float_batch, 0) is float_batch  # views pass through
