"""The dataset contract: CIFAR-100 on the real copy, STL-10 from files written in its binary layout,
the registry, label sets, memory estimates and the cap, and the datamodule on each."""

from __future__ import annotations

import json
import pickle

import numpy as np
import pytest
import torch

from sslprobe.data import (
    DATASETS,
    CIFAR10Reader,
    CIFAR100Reader,
    DataError,
    ImageDataModule,
    STL10Reader,
    build_reader,
    load_cifar100,
    load_dataset,
)
from sslprobe.data.dataset import GIB, resize_images


@pytest.fixture(scope="module")
def cifar100(cifar_root):
    if not (cifar_root / "cifar-100-python" / "test").is_file():
        pytest.skip(f"real CIFAR-100 absent under {cifar_root} (../shared/data/make_cifar100_python.py writes it)")
    return load_cifar100(cifar_root)


def test_registry_holds_the_shipped_readers():
    assert {"cifar10", "cifar100", "stl10", "image_folder"} <= set(DATASETS)
    assert isinstance(build_reader("stl10", {"unlabelled": True}), STL10Reader)
    with pytest.raises(DataError, match="unknown data.dataset 'imagenet'; valid: cifar10, cifar100"):
        build_reader("imagenet")
    with pytest.raises(DataError, match="data.dataset_kwargs do not fit cifar10"):
        build_reader("cifar10", {"unlabelled": True})


def test_cifar100_fine_and_coarse(cifar100, cifar_root):
    assert cifar100.name == "cifar100" and cifar100.label_set == "fine"
    assert cifar100.train.images.shape == (50_000, 3, 32, 32) and cifar100.test.images.shape == (10_000, 3, 32, 32)
    assert len(cifar100.classes) == 100
    assert torch.bincount(cifar100.train.labels).tolist() == [500] * 100
    assert torch.bincount(cifar100.test.labels).tolist() == [100] * 100
    coarse = cifar100.relabelled("coarse")
    assert len(coarse.classes) == 20 and coarse.train.images is cifar100.train.images
    assert torch.bincount(coarse.train.labels).tolist() == [2500] * 20
    assert torch.bincount(coarse.test.labels).tolist() == [500] * 20
    # every fine class lies in exactly one coarse class, the same in both splits
    pairs = {(int(f), int(c)) for f, c in zip(torch.cat([cifar100.train.labels, cifar100.test.labels]),
                                              torch.cat([coarse.train.labels, coarse.test.labels]))}
    assert len(pairs) == 100
    with open(cifar_root / "cifar-100-python" / "train", "rb") as handle:
        raw = pickle.load(handle, encoding="latin1")
    assert torch.equal(cifar100.train.images[7], torch.from_numpy(raw["data"][7]).view(3, 32, 32))
    assert coarse.classes[int(coarse.train.labels[7])] == load_cifar100(cifar_root, labels="coarse").classes[
        raw["coarse_labels"][7]]


def test_a_label_set_the_data_lacks_is_one_line(cifar):
    with pytest.raises(DataError, match=r"data.label_set='coarse': cifar10 has no such labels; it has labels$"):
        cifar.relabelled("coarse")


def write_stl10(folder, splits: dict[str, tuple[np.ndarray, np.ndarray | None]], names=None) -> None:
    """The official binary layout written pixel by pixel: per image, each channel's columns in turn."""
    folder.mkdir(parents=True)
    for split, (images, labels) in splits.items():
        with open(folder / f"{split}_X.bin", "wb") as handle:
            for image in images:  # (96, 96, 3) rows x columns x channels
                for channel in range(3):
                    handle.write(bytes(int(image[row, column, channel]) for column in range(96) for row in range(96)))
        if labels is not None:
            (folder / f"{split}_y.bin").write_bytes(bytes(int(label) + 1 for label in labels))
    names = names or ["airplane", "bird", "car", "cat", "deer", "dog", "horse", "monkey", "ship", "truck"]
    (folder / "class_names.txt").write_text("\n".join(names) + "\n")


@pytest.fixture
def stl10_root(tmp_path):
    rng = np.random.default_rng(0)
    images = {split: rng.integers(0, 256, (count, 96, 96, 3), dtype=np.uint8)
              for split, count in (("train", 4), ("test", 3), ("unlabeled", 2))}
    images["train"][0, 0, 1] = [255, 0, 0]  # row 0, column 1: what a row-major reading would misplace
    labels = {"train": np.array([0, 9, 3, 3]), "test": np.array([1, 2, 9]), "unlabeled": None}
    write_stl10(tmp_path / "stl10_binary", {split: (images[split], labels[split]) for split in images})
    return tmp_path, images, labels


def test_stl10_binary_layout_reads_back_identical(stl10_root):
    root, images, labels = stl10_root
    reader = STL10Reader(unlabelled=True)
    assert reader.required_bytes(root, 96) == 9 * 96 * 96 * 3  # counts from the files
    data = reader.read(root, 96)
    for split in ("train", "test"):
        got = getattr(data, split)
        assert torch.equal(got.images, torch.from_numpy(images[split]).permute(0, 3, 1, 2))
        assert got.labels.tolist() == labels[split].tolist()
    assert data.classes[9] == "truck" and data.unlabelled == 2
    pool = data.training_pool
    assert torch.equal(pool.images[4:], torch.from_numpy(images["unlabeled"]).permute(0, 3, 1, 2))
    assert pool.labels.tolist() == [0, 9, 3, 3, -1, -1]
    small = STL10Reader().read(root, 32)
    assert small.training_pool is None
    assert torch.equal(small.test.images, resize_images(torch.from_numpy(images["test"]).permute(0, 3, 1, 2), 32))


def test_stl10_structure_errors(stl10_root):
    root, _, _ = stl10_root
    folder = root / "stl10_binary"
    (folder / "test_y.bin").write_bytes(b"\x01\x02")
    with pytest.raises(DataError, match=r"test_y.bin: 2 labels for 3 images"):
        STL10Reader().read(root, 96)
    (folder / "test_X.bin").write_bytes(b"\x00" * 1000)
    with pytest.raises(DataError, match=r"test_X.bin: 1000 bytes is not a whole number of 96x96x3 images"):
        STL10Reader().read(root, 96)
    (folder / "unlabeled_X.bin").unlink()
    with pytest.raises(DataError, match=r"incomplete: missing unlabeled_X.bin"):
        STL10Reader(unlabelled=True).read(root, 96)


def test_memory_estimates_and_the_cap(tmp_path, cifar_root):
    assert CIFAR100Reader().required_bytes(tmp_path, 32) == 60_000 * 3 * 32 * 32  # 184 MB
    official = STL10Reader(unlabelled=True).required_bytes(tmp_path / "absent", 96)
    assert official == 113_000 * 3 * 96 * 96 and 2.8 < official / GIB < 3.0
    with pytest.raises(DataError) as info:
        load_dataset(CIFAR10Reader(), cifar_root, 32, max_memory_gb=0.1)
    message = str(info.value)
    assert message.startswith("cifar10 needs 0.17 GiB in memory, more than data.max_memory_gb=0.1")
    assert "\n" not in message
    assert load_dataset(CIFAR10Reader(), cifar_root, 16, max_memory_gb=0.1).train.images.shape == (50_000, 3, 16, 16)


def test_datamodule_trains_on_the_stl10_pool_and_evaluates_on_labelled_images(stl10_root):
    root, _, _ = stl10_root
    module = ImageDataModule(root=str(root), dataset="stl10", dataset_kwargs={"unlabelled": True}, image_size=96,
                             batch_size=2, num_workers=0)
    assert module.gaussian_blur  # above 64 px
    module.setup()
    assert module.subset["size"] == 6 and module.class_counts == [1, 0, 0, 2, 0, 0, 0, 0, 0, 1]
    images, labels, _ = next(iter(module.train_dataloader()))
    assert images.shape == (1 * 2, 3, 96, 96)
    train, test = module.evaluation_sets()
    assert len(train) == 4 and len(test) == 3
    assert module.data_identity()["dataset"] == "stl10"
    imbalanced = ImageDataModule(root=str(root), dataset="stl10", dataset_kwargs={"unlabelled": True},
                                 image_size=96, imbalance="dirichlet", subset_size=3, batch_size=2)
    with pytest.raises(ValueError, match="unlabelled"):
        imbalanced.setup()


def test_checkpoint_of_the_former_datamodule_name_resumes_its_position(cifar_root, tmp_path):
    """Checkpoints written when the datamodule was CIFAR10DataModule keep its state under that name."""
    from helpers import TINY_MODEL  # tests/helpers.py
    from lightning.pytorch import Trainer

    from sslprobe.methods import SimCLR

    def trainer(steps: int) -> Trainer:
        return Trainer(accelerator="cpu", max_epochs=1, limit_train_batches=steps, limit_val_batches=0, logger=False,
                       enable_progress_bar=False, enable_model_summary=False, default_root_dir=tmp_path)

    def datamodule() -> ImageDataModule:
        return ImageDataModule(root=str(cifar_root), imbalance="none", subset_size=100, batch_size=10, num_workers=0)

    first = trainer(2)
    first.fit(SimCLR(**TINY_MODEL), datamodule())
    path = tmp_path / "two_steps.ckpt"
    first.save_checkpoint(path)
    checkpoint = torch.load(path, weights_only=False)
    saved = checkpoint["ImageDataModule"]
    assert saved["batches_done"] == 2
    checkpoint["CIFAR10DataModule"] = checkpoint.pop("ImageDataModule")
    torch.save(checkpoint, path)
    resumed = datamodule()
    trainer(3).fit(SimCLR(**TINY_MODEL), resumed, ckpt_path=str(path))
    from sslprobe.data.sampler import resume_position

    # restored from the former key (a datamodule that found no state would start at (0, 0))
    assert resumed.resume_position == resume_position(saved) != (0, 0)


def test_a_run_drawn_from_other_data_is_not_resumed(cifar, cifar100, tmp_path):
    first = ImageDataModule(imbalance="full")
    first.data = cifar
    saved = first.resolve_subset(tmp_path, is_writer=True)
    assert saved["data"] == {"dataset": "cifar10", "label_set": "labels", "image_size": 32}
    other = ImageDataModule(dataset="cifar100", imbalance="full")
    other.data = cifar100  # the same indices (all 50,000), other images
    with pytest.raises(ValueError, match="was drawn from other data"):
        other.resolve_subset(tmp_path, is_writer=False)
    # a subset.json written before data sets other than CIFAR-10 existed reads as CIFAR-10 at 32 px
    legacy = json.loads((tmp_path / "subset.json").read_text())
    del legacy["data"]
    (tmp_path / "subset.json").write_text(json.dumps(legacy))
    again = ImageDataModule(imbalance="full")
    again.data = cifar
    assert again.resolve_subset(tmp_path, is_writer=False)["indices"] == saved["indices"]
    with pytest.raises(ValueError, match="was drawn from other data"):
        other.resolve_subset(tmp_path, is_writer=False)
