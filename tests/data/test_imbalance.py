"""Class counts of the paper's presets, rescaled presets and Dirichlet draws, on the real labels."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
import torch

from sslprobe.data import CIFAR10DataModule, class_counts, dirichlet_class_counts, subset_indices
from sslprobe.data.imbalance import fill_capped

# The paper's Appendix C (Fig. 4), copied from the paper.
PAPER = {
    "high": [4890, 87, 5000, 0, 74, 0, 0, 212, 4788, 4947],
    "medium": [4268, 4296, 1741, 420, 945, 161, 4633, 1015, 131, 2386],
    "none": [2000] * 10,
}


def check_subset(labels: torch.Tensor, indices: np.ndarray, counts) -> None:
    """Unique in-range indices whose labels have exactly ``counts`` per class."""
    assert len(np.unique(indices)) == len(indices) == sum(counts)
    assert indices.min() >= 0 and indices.max() < len(labels)
    assert np.bincount(labels.numpy()[indices], minlength=10).tolist() == list(counts)


@pytest.mark.parametrize("name", sorted(PAPER))
def test_presets_equal_the_paper(cifar, name):
    labels = cifar.train.labels
    counts = class_counts(labels, name)
    assert counts.tolist() == PAPER[name]
    check_subset(labels, subset_indices(labels, counts, seed=0), PAPER[name])


@pytest.mark.parametrize(("name", "size"), [("medium", 1000), ("high", 777), ("none", 500), ("none", 50_000)])
def test_rescaled_presets_keep_proportions(cifar, name, size):
    labels = cifar.train.labels
    counts = class_counts(labels, name, subset_size=size)
    assert counts.sum() == size
    for got, paper in zip(counts.tolist(), PAPER[name]):
        exact = paper * size / sum(PAPER[name])  # the paper's counts sum to 19,996-20,000
        assert math.floor(exact) <= got <= math.ceil(exact)
    check_subset(labels, subset_indices(labels, counts, seed=1), counts.tolist())


def test_full_is_everything(cifar):
    labels = cifar.train.labels
    counts = class_counts(labels, "full")
    assert counts.tolist() == [5000] * 10
    assert subset_indices(labels, counts, seed=3).tolist() == list(range(50_000))


def test_subset_indices_depend_on_seed(cifar):
    labels = cifar.train.labels
    counts = np.array(PAPER["medium"])
    first = subset_indices(labels, counts, seed=5)
    assert np.array_equal(first, subset_indices(labels, counts, seed=5))
    assert not np.array_equal(first, subset_indices(labels, counts, seed=6))


@pytest.mark.parametrize(("size", "concentration"), [(20_000, 1.0), (20_000, 0.1), (45_000, 0.3), (123, 5.0)])
def test_dirichlet_draws(cifar, size, concentration):
    labels = cifar.train.labels
    draws = [class_counts(labels, "dirichlet", size, concentration, seed) for seed in (0, 0, 1, 2)]
    assert np.array_equal(draws[0], draws[1])
    assert not np.array_equal(draws[0], draws[2]) and not np.array_equal(draws[2], draws[3])
    for counts in draws:
        assert counts.sum() == size
        assert (counts >= 0).all() and (counts <= 5000).all()
    check_subset(labels, subset_indices(labels, draws[2], seed=0), draws[2].tolist())


def test_dirichlet_follows_its_proportions_when_uncapped():
    available = np.full(10, 10**6)
    counts = dirichlet_class_counts(10_000, 1.0, seed=4, available=available)
    proportions = np.random.default_rng(4).dirichlet(np.ones(10))  # the documented draw
    assert np.all(np.abs(counts - proportions * 10_000) < 1)


def test_capped_classes_redistribute_excess():
    counts = fill_capped(np.array([0.7, 0.2, 0.1]), 100, np.array([30, 100, 100]))
    assert counts.tolist()[0] == 30 and counts.sum() == 100
    assert counts[1] / counts[2] == pytest.approx(2.0, abs=0.05)


@pytest.mark.parametrize("concentration", [0.0, -1.0])
def test_concentration_must_be_positive(cifar, concentration):
    with pytest.raises(ValueError, match="concentration must be > 0"):
        class_counts(cifar.train.labels, "dirichlet", 1000, concentration)
    with pytest.raises(ValueError, match=f"ImageDataModule.concentration: expected a number > 0, "
                                         f"got {concentration}"):
        CIFAR10DataModule(concentration=concentration)


@pytest.mark.parametrize("imbalance", ["none", "medium", "dirichlet"])
def test_subset_larger_than_data(cifar, imbalance):
    with pytest.raises(ValueError, match=r"subset_size=60000 is larger than the 50000 images"):
        class_counts(cifar.train.labels, imbalance, 60_000)


def test_capped_request_is_an_error(cifar):
    # 40,000 images of 'high' need about 9,781 of class 0, which has 5,000.
    with pytest.raises(ValueError, match=r"'high' asks for \[978\d, .* of class\(es\) \[0, 2, 8, 9\] but only"):
        class_counts(cifar.train.labels, "high", 40_000)
    with pytest.raises(ValueError, match=r"cannot draw 130 images: the classes hold only 120"):
        fill_capped(np.array([1.0, 1.0, 0.0]), 130, np.array([10, 10, 100]))
    # A class whose weight underflowed to 0 takes what the capped classes cannot hold.
    assert fill_capped(np.array([1.0, 1.0, 0.0]), 30, np.array([10, 10, 100])).tolist() == [10, 10, 10]


@pytest.mark.parametrize("name", ["medium", "high"])
def test_preset_needs_ten_classes(name):
    labels = torch.arange(5).repeat(1000)
    with pytest.raises(ValueError, match=r"10 classes but the data set has 5"):
        class_counts(labels, name)


@pytest.mark.parametrize(("imbalance", "size", "pattern"), [
    ("nope", None, r"unknown data.imbalance 'nope'; valid: none, medium, high, dirichlet, full, long_tail, step"),
    ("none", 0, r"subset_size must be positive"),
    ("full", 1000, r"does not apply to imbalance 'full'"),
])
def test_invalid_requests(cifar, imbalance, size, pattern):
    with pytest.raises(ValueError, match=pattern):
        class_counts(cifar.train.labels, imbalance, size)


def test_datamodule_saves_and_guards_its_subset(cifar, tmp_path):
    module = CIFAR10DataModule(imbalance="medium", subset_size=2000, subset_seed=2)
    module.cifar = cifar
    subset = module.resolve_subset(tmp_path, is_writer=True)
    saved = json.loads((tmp_path / "subset.json").read_text())
    assert saved["indices"] == subset["indices"] and saved["class_counts"] == subset["class_counts"]
    check_subset(cifar.train.labels, np.asarray(saved["indices"]), saved["class_counts"])
    again = CIFAR10DataModule(imbalance="medium", subset_size=2000, subset_seed=2)
    again.cifar = cifar
    assert again.resolve_subset(tmp_path, is_writer=True)["indices"] == subset["indices"]
    other = CIFAR10DataModule(imbalance="medium", subset_size=2000, subset_seed=3)
    other.cifar = cifar
    with pytest.raises(ValueError, match=r"different training subset.*subset_seed"):
        other.resolve_subset(tmp_path, is_writer=True)
