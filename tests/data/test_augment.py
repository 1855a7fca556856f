"""SimCLR views: strength 0 is normalisation only; views are a pure function of the per-sample seed."""

from __future__ import annotations

import pytest
import torch
from torch.utils.data import DataLoader

from sslprobe.data import CIFAR10DataModule, ImageSet, TwoViewDataset
from sslprobe.data.augment import normalize_images, simclr_transform
from sslprobe.data.sampler import GlobalBatchSampler

MEAN = torch.tensor([0.4914, 0.4822, 0.4465]).view(3, 1, 1)
STD = torch.tensor([0.2470, 0.2435, 0.2616]).view(3, 1, 1)


@pytest.fixture(scope="module")
def images() -> ImageSet:
    generator = torch.Generator().manual_seed(0)
    pixels = torch.randint(0, 256, (12, 3, 32, 32), dtype=torch.uint8, generator=generator)
    return ImageSet(pixels, torch.arange(12) % 10)


def test_strength_zero_is_normalisation_only(images):
    transform = simclr_transform(strength=0.0)
    for image in images.images[:3]:
        expected = (image.float() / 255.0 - MEAN) / STD
        torch.testing.assert_close(transform(image), expected)
    torch.testing.assert_close(normalize_images(images.images[:3]), (images.images[:3].float() / 255 - MEAN) / STD)
    dataset = TwoViewDataset(images, None, transform, seed=0)
    view1, view2, _ = dataset[(4, 123)]
    torch.testing.assert_close(view1, view2)


def test_views_are_a_pure_function_of_the_seed(images):
    dataset = TwoViewDataset(images, torch.tensor([5, 2, 9]), simclr_transform(strength=1.0), seed=0)
    torch.manual_seed(1)
    first = dataset[(1, 42)]
    torch.manual_seed(999)  # global RNG state must not matter
    again = dataset[(1, 42)]
    other = dataset[(1, 43)]
    for a, b in zip(first[:2], again[:2]):
        assert torch.equal(a, b)
    assert not torch.equal(first[0], other[0])
    assert not torch.equal(first[0], first[1])  # the two views differ
    view1, view2, label = first
    assert view1.shape == view2.shape == (3, 32, 32)
    assert view1.dtype == view2.dtype == torch.float32
    assert int(label) == int(images.labels[2])


def test_views_do_not_consume_the_global_rng(images):
    dataset = TwoViewDataset(images, None, simclr_transform(), seed=0)
    torch.manual_seed(5)
    expected = torch.rand(3)
    torch.manual_seed(5)
    dataset[(0, 1)]
    assert torch.equal(torch.rand(3), expected)


def test_views_do_not_depend_on_the_worker(images):
    dataset = TwoViewDataset(images, None, simclr_transform(), seed=3)
    sampler = GlobalBatchSampler(len(images), 4, seed=3)
    direct = [dataset[key] for key in sampler]
    loaded = list(DataLoader(dataset, batch_size=4, sampler=sampler, num_workers=2))
    assert len(loaded) == 3
    for step, (view1, view2, labels) in enumerate(loaded):
        for row in range(4):
            expected = direct[4 * step + row]
            assert torch.equal(view1[row], expected[0]) and torch.equal(view2[row], expected[1])
            assert int(labels[row]) == int(expected[2])


def test_integer_keys_are_seeded_too(images):
    dataset = TwoViewDataset(images, None, simclr_transform(), seed=0)
    assert torch.equal(dataset[3][0], dataset[3][0])
    assert not torch.equal(dataset[3][0], TwoViewDataset(images, None, simclr_transform(), seed=1)[3][0])


@pytest.mark.parametrize("crop_scale", [(0.0, 1.0), (0.8, 0.5), (0.5, 1.5), (-0.1, 0.5)])
def test_bad_crop_scale_is_rejected(crop_scale):
    with pytest.raises(ValueError, match=r"crop_scale must satisfy 0 < low <= high <= 1"):
        simclr_transform(crop_scale=crop_scale)
    with pytest.raises(ValueError, match=r"crop_scale"):
        CIFAR10DataModule(crop_scale=crop_scale)


@pytest.mark.parametrize("strength", [-0.1, 1.5])
def test_bad_strength_is_rejected(strength):
    with pytest.raises(ValueError, match=r"augment_strength must be in \[0, 1\]"):
        simclr_transform(strength=strength)
    with pytest.raises(ValueError, match=r"augment_strength"):
        CIFAR10DataModule(augment_strength=strength)
