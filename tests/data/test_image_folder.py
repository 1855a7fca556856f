"""The image-folder reader: layouts, seeded split, cache keyed by the files, undecodable files, and the
real JPEG trees of CIFAR-10/100 read back as exactly the images of the python layouts."""

from __future__ import annotations

import os
import tarfile
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from sslprobe.data import DataError, ImageFolderReader, load_cifar10, load_cifar100
from sslprobe.data import image_folder as image_folder_module

REPO = Path(__file__).resolve().parents[2]
SHARED_DATA = REPO.parent / "shared" / "data"
# Decoding all 60,000 JPEGs of a tarball takes about a minute on a loaded 2-core machine: the
# comparison takes a seeded sample of classes (every image of them, both splits) and stays exact.
SAMPLED_CLASSES = {"cifar10": 3, "cifar100": 8}


def write_tree(root: Path, counts: dict[str, int], size: tuple[int, int] = (12, 10), seed: int = 0) -> dict:
    """PNG files ``root/<class>/<i>.png`` of random pixels; returns {relative path: (H, W, 3) array}."""
    rng = np.random.default_rng(seed)
    written = {}
    for name, count in counts.items():
        (root / name).mkdir(parents=True, exist_ok=True)
        for index in range(count):
            pixels = rng.integers(0, 256, (size[1], size[0], 3), dtype=np.uint8)
            Image.fromarray(pixels).save(root / name / f"{index:03d}.png")
            written[f"{name}/{index:03d}.png"] = pixels
    return written


def test_one_tree_is_split_per_class_by_the_seed(tmp_path):
    written = write_tree(tmp_path, {"cat": 10, "dog": 5}, size=(8, 8))
    (tmp_path / "notes.txt").write_text("not an image")
    reader = ImageFolderReader(test_fraction=0.2, split_seed=3, cache=False)
    data = reader.read(tmp_path, 8)
    assert data.classes == ("cat", "dog")
    assert torch.bincount(data.test.labels).tolist() == [2, 1] and torch.bincount(data.train.labels).tolist() == [8, 4]
    every = torch.cat([data.train.images, data.test.images]).permute(0, 2, 3, 1).numpy()
    assert sorted(image.tobytes() for image in every) == sorted(p.tobytes() for p in written.values())
    again = ImageFolderReader(test_fraction=0.2, split_seed=3, cache=False).read(tmp_path, 8)
    assert torch.equal(again.test.images, data.test.images)
    other = ImageFolderReader(test_fraction=0.2, split_seed=4, cache=False).read(tmp_path, 8)
    assert not torch.equal(other.test.images, data.test.images)


def test_resize_methods(tmp_path):
    write_tree(tmp_path / "train", {"a": 1}, size=(12, 6))
    write_tree(tmp_path / "test", {"a": 1}, size=(12, 6), seed=1)
    source = np.asarray(Image.open(tmp_path / "train" / "a" / "000.png"))
    crop = ImageFolderReader(resize="crop", cache=False).read(tmp_path, 4).train.images[0].permute(1, 2, 0).numpy()
    expected = np.asarray(Image.fromarray(source).resize((8, 4), Image.BILINEAR).crop((2, 0, 6, 4)))
    assert np.array_equal(crop, expected)
    stretch = ImageFolderReader(resize="stretch", cache=False).read(tmp_path, 4).train.images[0].permute(1, 2, 0)
    assert np.array_equal(stretch.numpy(), np.asarray(Image.fromarray(source).resize((4, 4), Image.BILINEAR)))


def test_second_start_reads_the_cache_and_a_changed_folder_is_decoded_again(tmp_path, monkeypatch):
    write_tree(tmp_path / "train", {"a": 3, "b": 3})
    write_tree(tmp_path / "test", {"a": 1, "b": 1}, seed=1)
    first = ImageFolderReader().read(tmp_path, 8)
    assert len(list((tmp_path / ".sslprobe_cache").glob("images-*.npz"))) == 1

    def no_decoding(*args):
        raise AssertionError("decoded although the cache is valid")

    with monkeypatch.context() as patch:
        patch.setattr(image_folder_module, "decode", no_decoding)
        cached = ImageFolderReader().read(tmp_path, 8)
    assert torch.equal(cached.train.images, first.train.images) and torch.equal(cached.test.labels, first.test.labels)

    # Same name and size, other pixels and modification time: never served from the old array.
    path = tmp_path / "train" / "b" / "001.png"
    Image.fromarray(np.zeros((10, 12, 3), dtype=np.uint8)).save(path)
    os.utime(path, ns=(path.stat().st_atime_ns, path.stat().st_mtime_ns + 10**9))
    changed = ImageFolderReader().read(tmp_path, 8)
    assert not torch.equal(changed.train.images, first.train.images)
    assert len(list((tmp_path / ".sslprobe_cache").glob("images-*.npz"))) == 2
    # Another size or resize method is another key as well.
    assert ImageFolderReader(resize="stretch").read(tmp_path, 8).train.images.shape == (6, 3, 8, 8)
    assert len(list((tmp_path / ".sslprobe_cache").glob("images-*.npz"))) == 3


def test_undecodable_file_is_refused_by_name_or_skipped_and_counted(tmp_path, capsys):
    write_tree(tmp_path / "train", {"a": 2, "b": 2})
    write_tree(tmp_path / "test", {"a": 1, "b": 1}, seed=1)
    (tmp_path / "train" / "b" / "broken.jpg").write_bytes(b"\xff\xd8 not a jpeg")
    with pytest.raises(DataError) as info:
        ImageFolderReader().read(tmp_path, 8)
    assert "broken.jpg is not a decodable image" in str(info.value) and "\n" not in str(info.value)
    assert not (tmp_path / ".sslprobe_cache").exists()
    data = ImageFolderReader(on_undecodable="skip").read(tmp_path, 8)
    assert len(data.train) == 4
    assert "skipped 1 undecodable file(s)" in capsys.readouterr().err


@pytest.mark.parametrize("make", ["flat", "empty_class", "missing"])
def test_bad_folders_are_one_line_errors(tmp_path, make):
    if make == "flat":
        Image.fromarray(np.zeros((4, 4, 3), dtype=np.uint8)).save(tmp_path / "image.png")
        expected = "has no class folders"
    elif make == "empty_class":
        write_tree(tmp_path, {"a": 3})
        (tmp_path / "b").mkdir()
        expected = "holds no images"
    else:
        tmp_path = tmp_path / "absent"
        expected = "does not exist"
    with pytest.raises(DataError, match=expected) as info:
        ImageFolderReader().required_bytes(tmp_path, 8)
    assert "\n" not in str(info.value)


def extract_classes(tarball: Path, out: Path, count: int, seed: int) -> tuple[str, ...]:
    """Extract ``train/<c>/`` and ``test/<c>/`` of ``count`` classes drawn by ``seed``; their names."""
    with tarfile.open(tarball) as tar:
        members = [m for m in tar.getmembers() if m.isfile() and m.name.count("/") == 2]
        classes = sorted({m.name.split("/")[1] for m in members})
        chosen = sorted(np.random.default_rng(seed).choice(classes, count, replace=False).tolist())
        tar.extractall(out, members=[m for m in members if m.name.split("/")[1] in chosen], filter="data")
    return tuple(chosen)


@pytest.fixture(scope="session")
def jpeg_trees(tmp_path_factory) -> dict[str, tuple[Path, tuple[str, ...]]]:
    trees = {}
    for name, count in SAMPLED_CLASSES.items():
        tarball = SHARED_DATA / f"{name}-jpeg.tar.gz"
        if not tarball.is_file():
            pytest.skip(f"{tarball} absent (the JPEG copies live beside the project, in ../shared/data)")
        root = tmp_path_factory.mktemp(f"{name}-jpeg")
        trees[name] = (root, extract_classes(tarball, root, count, seed=len(name)))
    return trees


def as_multiset(images: torch.Tensor, labels: torch.Tensor, names: tuple[str, ...]) -> list[tuple[bytes, str]]:
    return sorted((image.numpy().tobytes(), names[int(label)]) for image, label in zip(images, labels))


@pytest.mark.parametrize("name", sorted(SAMPLED_CLASSES))
def test_jpeg_tree_reads_as_the_python_layout(name, jpeg_trees, cifar_root):
    root, chosen = jpeg_trees[name]
    python = (load_cifar10 if name == "cifar10" else load_cifar100)(cifar_root)
    folder = ImageFolderReader(cache=False).read(root, 32)
    assert folder.classes == chosen
    for split in ("train", "test"):
        reference = getattr(python, split)
        keep = torch.isin(reference.labels, torch.tensor([python.classes.index(c) for c in chosen]))
        expected = as_multiset(reference.images[keep], reference.labels[keep], python.classes)
        got = getattr(folder, split)
        assert len(got) == len(expected) == int(keep.sum()) > 0
        assert as_multiset(got.images, got.labels, folder.classes) == expected, split
