"""Gaussian blur of the SimCLR recipe above 64 px: the batched kernel against torchvision's, its
draws, and where the datamodule switches it on."""

from __future__ import annotations

import math

import pytest
import torch
from torchvision.transforms import v2
from torchvision.transforms.v2 import functional as TF

from sslprobe.data import ImageDataModule
from sslprobe.data.augment import simclr_transform
from sslprobe.data.batch_augment import SimCLRBatchAugment, draw_view_parameters
from sslprobe.data.blur import blur_kernel_size, gaussian_blur
from sslprobe.data.sampler import sample_seed


def test_kernel_size_is_about_a_tenth_of_the_image():
    assert [blur_kernel_size(size) for size in (32, 64, 96, 224)] == [3, 7, 9, 23]


@pytest.mark.parametrize("size", [32, 96])
def test_batched_blur_equals_torchvision_per_image(size):
    generator = torch.Generator().manual_seed(size)
    images = torch.rand(5, 3, size, size, generator=generator)
    sigma = torch.tensor([0.1, 0.5, 1.0, 1.7, 2.0])
    kernel = blur_kernel_size(size)
    ours = gaussian_blur(images, sigma, kernel)
    for index in range(len(images)):
        reference = TF.gaussian_blur(images[index], [kernel, kernel], [float(sigma[index])] * 2)
        torch.testing.assert_close(ours[index], reference, atol=2e-6, rtol=0)


def test_blur_draws_leave_the_other_parameters_and_follow_the_recipe():
    seeds = torch.tensor([sample_seed(1, 0, i) for i in range(4000)], dtype=torch.int64)
    plain = draw_view_parameters(seeds, 0, 96, 96)
    blurred = draw_view_parameters(seeds, 0, 96, 96, blur=True)
    for name in ("top", "left", "height", "width", "flip", "jitter", "factors", "order", "grayscale"):
        assert torch.equal(getattr(plain, name), getattr(blurred, name)), name
    assert not plain.blur.any()
    share = blurred.blur.float().mean().item()
    assert abs(share - 0.5) < 4.5 * math.sqrt(0.25 / len(seeds))
    assert 0.1 <= blurred.sigma.min() and blurred.sigma.max() <= 2.0
    assert abs(blurred.sigma.double().mean().item() - 1.05) < 4.5 * (1.9 / math.sqrt(12)) / math.sqrt(len(seeds))


def test_blurred_views_differ_only_where_blur_was_drawn():
    images = torch.randint(0, 256, (16, 3, 96, 96), dtype=torch.uint8, generator=torch.Generator().manual_seed(0))
    seeds = torch.tensor([sample_seed(2, 0, i) for i in range(16)], dtype=torch.int64)
    plain, _ = SimCLRBatchAugment()(images, seeds)
    blurred, _ = SimCLRBatchAugment(blur=True)(images, seeds)
    params = draw_view_parameters(seeds, 0, 96, 96, blur=True)
    changed = (plain - blurred).abs().flatten(1).amax(1) > 1e-4
    # σ near 0.1 leaves a kernel of ~one pixel (neighbour weight e^-50): drawn but no visible change
    visible = params.blur & (params.sigma > 0.3)
    assert not (changed & ~params.blur).any() and not (visible & ~changed).any()
    assert 0 < visible.sum() and params.blur.sum() < 16


def test_the_per_sample_recipe_has_the_same_blur():
    blur = [step for step in simclr_transform(size=96, blur=True).transforms if isinstance(step, v2.RandomApply)][-1]
    assert blur.p == 0.5
    (gaussian,) = blur.transforms
    assert isinstance(gaussian, v2.GaussianBlur) and list(gaussian.kernel_size) == [9, 9]
    assert list(gaussian.sigma) == [0.1, 2.0]
    assert not any(isinstance(step, v2.RandomApply) and isinstance(step.transforms[0], v2.GaussianBlur)
                   for step in simclr_transform(size=32).transforms)


@pytest.mark.parametrize(("size", "blur"), [(32, False), (64, False), (96, True)])
def test_datamodule_switches_blur_on_above_64_px(size, blur):
    module = ImageDataModule(image_size=size)
    assert module.gaussian_blur is blur and module.batch_augment.blur is blur
    assert ImageDataModule(image_size=size, gaussian_blur=True).batch_augment.blur
