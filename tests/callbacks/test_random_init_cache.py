"""The random-init baseline's cache keys on the data: another data set, or another copy of the same
one, under one runs folder never reuses an entry; the same data does."""

from __future__ import annotations

import json
import pickle
from pathlib import Path

import pytest
import torch
from helpers import TINY_MODEL  # tests/helpers.py
from lightning.pytorch import seed_everything

from sslprobe.callbacks import LinearEvaluation
from sslprobe.data import ImageDataModule
from sslprobe.data.augment import normalize_images
from sslprobe.methods import SimCLR
from sslprobe.probes import LinearEvalOptions, linear_evaluation

SIZES = {"train_size": 200, "test_size": 100}  # the same set sizes on CIFAR-10 and CIFAR-100


def baseline(root: Path, dataset: str, runs: Path) -> dict:
    """``random_init_result`` of a tiny SimCLR (seed 0) on ``dataset`` under ``root``, cached in ``runs``."""
    module = ImageDataModule(root=str(root), dataset=dataset, imbalance="full")
    module.setup()
    probe = LinearEvaluation(epochs=2, knn_k=5, random_init_seed=0, **SIZES)
    train, test = module.balanced_evaluation_sets(probe.train_size, probe.test_size, probe.options.seed)
    method = SimCLR(**TINY_MODEL)
    result = probe.random_init_result(method, train, test, module.class_counts, runs / "exp" / "version_0",
                                      module.data_identity())
    return {**result, "train": train, "test": test}


def independent_top1(train, test) -> float:
    """The untrained network's linear top-1, computed here without any cache."""
    seed_everything(0)
    initial = SimCLR(**TINY_MODEL).eval()
    with torch.no_grad():
        train_features = initial.backbone(normalize_images(train.images))
        test_features = initial.backbone(normalize_images(test.images))
    return linear_evaluation(train_features, train.labels, test_features, test.labels,
                             LinearEvalOptions(epochs=2, knn_k=5)).top1


def cache_entries(path: str) -> dict:
    return json.loads(Path(path).read_text())["entries"]


def test_cifar100_does_not_reuse_the_cifar10_entry(cifar_root, tmp_path):
    if not (cifar_root / "cifar-100-python" / "test").is_file():
        pytest.skip(f"real CIFAR-100 absent under {cifar_root}")
    runs = tmp_path / "runs"
    cifar10 = baseline(cifar_root, "cifar10", runs)
    cifar100 = baseline(cifar_root, "cifar100", runs)
    # Same backbone, seed, set sizes and protocol: the same cache file, two entries in it.
    assert cifar10["random_init_cache"] == cifar100["random_init_cache"]
    entries = cache_entries(cifar100["random_init_cache"])
    assert sorted(entry["data"]["dataset"] for entry in entries.values()) == ["cifar10", "cifar100"]
    for result in (cifar10, cifar100):
        assert result["random_init_top1"] == pytest.approx(independent_top1(result["train"], result["test"]), abs=1e-9)
    # The same data again is served from its entry.
    assert baseline(cifar_root, "cifar10", runs)["random_init_top1"] == cifar10["random_init_top1"]
    assert len(cache_entries(cifar10["random_init_cache"])) == 2


def test_two_copies_of_cifar10_keep_two_entries(cifar_root, tmp_path):
    source = cifar_root / "cifar-10-batches-py"
    copy = tmp_path / "copy" / "cifar-10-batches-py"
    copy.mkdir(parents=True)
    for path in source.iterdir():
        (copy / path.name).symlink_to(path)
    with open(source / "test_batch", "rb") as handle:
        batch = pickle.load(handle, encoding="latin1")
    batch["data"] = 255 - batch["data"]  # another copy: the same structure, other test images
    (copy / "test_batch").unlink()
    (copy / "test_batch").write_bytes(pickle.dumps(batch))
    runs = tmp_path / "runs"
    first = baseline(cifar_root, "cifar10", runs)
    second = baseline(copy.parent, "cifar10", runs)
    entries = cache_entries(second["random_init_cache"])
    assert len(entries) == 2 and len({entry["data"]["digest"] for entry in entries.values()}) == 2
    assert second["random_init_top1"] == pytest.approx(independent_top1(second["train"], second["test"]), abs=1e-9)
    assert first["random_init_top1"] == pytest.approx(independent_top1(first["train"], first["test"]), abs=1e-9)
