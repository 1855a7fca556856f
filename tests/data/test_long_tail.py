"""Long-tail and step profiles, and Dirichlet draws, for any number of classes, on the real labels.

The expected totals are those the long-tail literature gives for CIFAR-10-LT and CIFAR-100-LT
(Cao et al. 2019); the code computes them from the training labels, not from constants.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from sslprobe.data import CIFAR10DataModule, class_counts, subset_indices
from sslprobe.data.cifar import BatchUnpickler
from sslprobe.data.imbalance import (
    balanced_class_counts,
    long_tail_class_counts,
    preset_class_counts,
    step_class_counts,
)
from sslprobe.probes import shot_groups

CIFAR10_LT = {100: 12_406, 50: 13_996, 10: 20_431}
CIFAR100_LT = {100: 10_847, 50: 12_608, 10: 19_573}


@pytest.fixture(scope="module")
def cifar100_train_labels(cifar_root) -> torch.Tensor:
    """The 50,000 fine labels of the real CIFAR-100 training set (``cifar-100-python/train``)."""
    path = cifar_root / "cifar-100-python" / "train"
    if not path.is_file():
        pytest.skip(f"real CIFAR-100 copy absent: {path} (../shared/data/make_cifar100_python.py writes it)")
    with open(path, "rb") as handle:
        content = BatchUnpickler(handle, encoding="latin1").load()
    return torch.as_tensor(content["fine_labels"], dtype=torch.long)


@pytest.mark.parametrize("ratio", sorted(CIFAR10_LT))
def test_cifar10_lt_totals(cifar, ratio):
    labels = cifar.train.labels
    counts = class_counts(labels, "long_tail", ratio=ratio)
    assert counts.sum() == CIFAR10_LT[ratio]
    assert counts[0] == 5000 and counts[-1] == math.floor(5000 / ratio)
    assert np.all(np.diff(counts) < 0)
    indices = subset_indices(labels, counts, seed=0)
    assert np.bincount(labels.numpy()[indices], minlength=10).tolist() == counts.tolist()


def test_cifar10_lt_100_per_class(cifar):
    counts = class_counts(cifar.train.labels, "long_tail", ratio=100)
    assert counts.tolist() == [5000, 2997, 1796, 1077, 645, 387, 232, 139, 83, 50]


@pytest.mark.parametrize("ratio", sorted(CIFAR100_LT))
def test_cifar100_lt_totals(cifar100_train_labels, ratio):
    labels = cifar100_train_labels
    assert len(labels) == 50_000 and int(labels.max()) == 99
    counts = class_counts(labels, "long_tail", ratio=ratio)
    assert len(counts) == 100 and counts.sum() == CIFAR100_LT[ratio]
    assert counts[0] == 500 and counts[-1] == math.floor(500 / ratio)
    indices = subset_indices(labels, counts, seed=1)
    assert np.bincount(labels.numpy()[indices], minlength=100).tolist() == counts.tolist()


def test_cifar100_step_and_dirichlet(cifar100_train_labels):
    labels = cifar100_train_labels
    step = class_counts(labels, "step", ratio=10)
    assert step.tolist() == [500] * 50 + [50] * 50
    draw = class_counts(labels, "dirichlet", 8000, 0.5, seed=3)
    assert len(draw) == 100 and draw.sum() == 8000 and (draw <= 500).all()
    assert not np.array_equal(draw, class_counts(labels, "dirichlet", 8000, 0.5, seed=4))
    balanced = class_counts(labels, "none", 8000)
    assert balanced.tolist() == [80] * 100
    assert class_counts(labels, "none").tolist() == [200] * 100  # 20,000 images by default, as on CIFAR-10


def test_profiles_follow_the_formula_for_any_class_count():
    available = np.array([40, 35, 40, 33, 40, 40, 38])  # C = 7, n_max = 40
    ratio = 7.5
    expected = [math.floor(40 * ratio ** (-c / 6)) for c in range(7)]
    assert long_tail_class_counts(available, ratio).tolist() == expected
    assert step_class_counts(available, ratio).tolist() == [40] * 3 + [5] * 4
    assert long_tail_class_counts(available, 1.0).tolist() == [40] * 7


def test_a_profile_beyond_a_class_is_an_error_naming_it():
    labels = torch.tensor([0] * 50 + [1] * 10 + [2] * 50)  # class 1 holds 10, the profile asks 50 / 5^0.5 = 22
    with pytest.raises(ValueError, match=r"'long_tail' asks for \[22\] images of class\(es\) \[1\] but only \[10\]"):
        class_counts(labels, "long_tail", ratio=5)


@pytest.mark.parametrize(("name", "size"), [("long_tail", 1000), ("step", 777)])
def test_rescaled_profiles_keep_proportions(cifar, name, size):
    counts = class_counts(cifar.train.labels, name, subset_size=size, ratio=50)
    profile = class_counts(cifar.train.labels, name, ratio=50)
    assert counts.sum() == size
    for got, full in zip(counts.tolist(), profile.tolist()):
        exact = full * size / profile.sum()
        assert math.floor(exact) <= got <= math.ceil(exact)


def test_ratio_and_class_count_are_checked():
    with pytest.raises(ValueError, match="imbalance_ratio must be >= 1, got 0.5"):
        class_counts(torch.arange(10).repeat(5), "long_tail", ratio=0.5)
    with pytest.raises(ValueError, match="ImageDataModule.imbalance_ratio: expected a number >= 1, got 0.9"):
        CIFAR10DataModule(imbalance="step", imbalance_ratio=0.9)
    with pytest.raises(ValueError, match="needs at least 2 classes"):
        class_counts(torch.zeros(20, dtype=torch.long), "step", ratio=2)


@pytest.mark.parametrize("size", [None, 500, 8000, 13_579])
def test_none_on_ten_classes_is_still_the_paper_preset(cifar, size):
    # The generalised 'none' (equal split) and the paper's preset (2,000 per class, rescaled) agree.
    preset = class_counts(cifar.train.labels, "none", size)
    assert preset.tolist() == preset_class_counts("none", 10, size).tolist()
    assert balanced_class_counts(10, size or 20_000).tolist() == preset.tolist()


def test_datamodule_draws_and_records_the_profile(cifar, tmp_path):
    module = CIFAR10DataModule(imbalance="long_tail", imbalance_ratio=10, subset_seed=2)
    module.cifar = cifar
    subset = module.resolve_subset(tmp_path, is_writer=True)
    assert subset["class_counts"] == class_counts(cifar.train.labels, "long_tail", ratio=10).tolist()
    assert subset["size"] == CIFAR10_LT[10] and subset["imbalance_ratio"] == 10
    other = CIFAR10DataModule(imbalance="long_tail", imbalance_ratio=50, subset_seed=2)
    other.cifar = cifar
    with pytest.raises(ValueError, match=r"different training subset.*imbalance_ratio.*\(10, 50\)"):
        other.resolve_subset(tmp_path, is_writer=True)
    medium = CIFAR10DataModule(imbalance="medium", imbalance_ratio=50)
    assert medium.subset_description()["imbalance_ratio"] is None


def test_cifar100_lt_100_shot_groups_are_35_35_30(cifar100_train_labels):
    counts = class_counts(cifar100_train_labels, "long_tail", ratio=100)
    groups = shot_groups(counts)
    assert [len(groups[name]) for name in ("many_shot", "medium_shot", "few_shot")] == [35, 35, 30]
    assert groups["many_shot"] == list(range(35)) and groups["few_shot"] == list(range(70, 100))
