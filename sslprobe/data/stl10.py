"""STL-10 in memory, read from its binary layout (``stl10_binary/``).

``{train,test,unlabeled}_X.bin`` hold 96×96 RGB images as raw uint8, each image its three
channels one after the other and each channel stored column-major (Fortran order: the first 96
bytes are the first *column*); ``{train,test}_y.bin`` hold one uint8 label 1..10 per image;
``class_names.txt`` the ten names. The reader takes the image counts from the file sizes and
checks the structure (whole images, one label per image, labels in range), not hashes: 5,000
labelled training images, 8,000 test images and 100,000 unlabelled ones in the official copy.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from sslprobe.data.dataset import (
    DataError,
    DatasetReader,
    ImageDataset,
    ImageSet,
    LabelSet,
    image_bytes,
    resize_images,
)

FOLDER = "stl10_binary"
SIDE = 96
IMAGE_BYTES = 3 * SIDE * SIDE
URL = "http://ai.stanford.edu/~acoates/stl10/stl10_binary.tar.gz"
ARCHIVE_MD5 = "91f7769df0f17e558f3565bffb0c7dfb"
NUM_CLASSES = 10
OFFICIAL_COUNTS = {"train": 5_000, "test": 8_000, "unlabeled": 100_000}
CHUNK = 2_000  # images converted (and resized) at a time, so memory stays near the result's size


def image_count(path: Path) -> int:
    """Images in a ``*_X.bin`` file, from its size; refuses a size that is not whole images."""
    size = path.stat().st_size
    if size % IMAGE_BYTES or size == 0:
        raise DataError(f"{path}: {size} bytes is not a whole number of 96x96x3 images ({IMAGE_BYTES} bytes each)")
    return size // IMAGE_BYTES


def read_images(path: Path, image_size: int, out: torch.Tensor | None = None) -> torch.Tensor:
    """uint8 (N, 3, image_size, image_size) from a column-major ``*_X.bin`` file (into ``out`` if given)."""
    count = image_count(path)
    raw = np.memmap(path, dtype=np.uint8, mode="r", shape=(count, 3, SIDE, SIDE))
    if out is None:
        out = torch.empty((count, 3, image_size, image_size), dtype=torch.uint8)
    for start in range(0, count, CHUNK):
        # stored (channel, column, row): swap the last two axes to (channel, row, column)
        chunk = torch.from_numpy(np.ascontiguousarray(raw[start : start + CHUNK].transpose(0, 1, 3, 2)))
        out[start : start + CHUNK] = resize_images(chunk, image_size)
    return out


def read_labels(path: Path, expected: int) -> torch.Tensor:
    """Labels 0..9 from a ``*_y.bin`` file of ``expected`` uint8 labels 1..10."""
    labels = np.fromfile(path, dtype=np.uint8)
    if len(labels) != expected:
        raise DataError(f"{path}: {len(labels)} labels for {expected} images")
    if labels.min() < 1 or labels.max() > NUM_CLASSES:
        raise DataError(f"{path}: labels outside 1..{NUM_CLASSES}")
    return torch.from_numpy(labels.astype(np.int64) - 1)


class STL10Reader(DatasetReader):
    """STL-10 (``data.root`` holds ``stl10_binary/``): 96×96 images of 10 classes.

    Evaluation uses the labelled splits (5,000 train, 8,000 test); with ``unlabelled`` the
    100,000 unlabelled images join the training pool of self-supervised training (about 2.9 GiB
    more in memory at 96 px).

    Args:
        unlabelled: also read ``unlabeled_X.bin`` for training.
    """

    name = "stl10"
    native_size = SIDE

    def __init__(self, unlabelled: bool = False):
        self.unlabelled = unlabelled

    def splits(self) -> tuple[str, ...]:
        return ("train", "test", "unlabeled") if self.unlabelled else ("train", "test")

    def required_bytes(self, root: Path, image_size: int) -> int:
        folder = Path(root) / FOLDER
        counts = [image_count(folder / f"{split}_X.bin") if (folder / f"{split}_X.bin").is_file()
                  else OFFICIAL_COUNTS[split] for split in self.splits()]
        return image_bytes(sum(counts), image_size)

    def files(self) -> list[str]:
        names = [f"{split}_X.bin" for split in self.splits()]
        return [*names, "train_y.bin", "test_y.bin", "class_names.txt"]

    def read(self, root: Path, image_size: int, download: bool = False) -> ImageDataset:
        root = Path(root).expanduser()
        folder = root / FOLDER
        missing = (f"STL-10 not found under {root}: expected {folder}/ with {', '.join(self.files())}. Fix: pass "
                   f"--data.root to the folder that contains {FOLDER}/, or set --data.download true on a machine "
                   "with internet")
        if not folder.is_dir():
            if not download:
                raise DataError(missing)
            from torchvision.datasets.utils import download_and_extract_archive

            download_and_extract_archive(URL, download_root=str(root), md5=ARCHIVE_MD5)
        absent = [name for name in self.files() if not (folder / name).is_file()]
        if absent:
            raise DataError(f"{folder} is incomplete: missing {', '.join(absent)}. {missing}")
        classes = tuple(line.strip() for line in (folder / "class_names.txt").read_text().splitlines() if line.strip())
        if len(classes) != NUM_CLASSES:
            raise DataError(f"{folder / 'class_names.txt'}: {len(classes)} class names, expected {NUM_CLASSES}")
        counts = {split: image_count(folder / f"{split}_X.bin") for split in self.splits()}
        # The training images and the unlabelled ones share one tensor: the pool training draws from.
        pool = torch.empty((counts["train"] + counts.get("unlabeled", 0), 3, image_size, image_size),
                           dtype=torch.uint8)
        train = read_images(folder / "train_X.bin", image_size, pool[: counts["train"]])
        test = read_images(folder / "test_X.bin", image_size)
        sets = {"train": ImageSet(train, read_labels(folder / "train_y.bin", len(train))),
                "test": ImageSet(test, read_labels(folder / "test_y.bin", len(test)))}
        training_pool = None
        if self.unlabelled:
            read_images(folder / "unlabeled_X.bin", image_size, pool[counts["train"]:])
            labels = torch.cat([sets["train"].labels, torch.full((counts["unlabeled"],), -1, dtype=torch.int64)])
            training_pool = ImageSet(pool, labels)
        return ImageDataset(train=sets["train"], test=sets["test"], classes=classes, name=self.name,
                            label_set="labels", training_pool=training_pool,
                            label_sets={"labels": LabelSet(classes, sets["train"].labels, sets["test"].labels)})

