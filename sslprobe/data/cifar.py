"""CIFAR-10 in memory, read from the standard ``cifar-10-batches-py`` layout.

The loader checks structure (keys, shapes, dtypes, 10 classes, 50,000 + 10,000 rows), not
file hashes, so a re-encoded copy loads. Downloads go through torchvision's utilities, which do
check the archive's md5.
"""

from __future__ import annotations

import pickle
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

FOLDER = "cifar-10-batches-py"
TRAIN_FILES = [f"data_batch_{i}" for i in range(1, 6)]
TEST_FILES = ["test_batch"]
META_FILE = "batches.meta"
URL = "https://www.cs.toronto.edu/~kriz/cifar-10-python.tar.gz"
ARCHIVE_MD5 = "c58f30108f718f92721af3b95e74349a"
NUM_CLASSES = 10
TRAIN_SIZE, TEST_SIZE = 50_000, 10_000


class DataError(ValueError):
    """The data set is missing or malformed; the message says what and how to fix it."""


@dataclass(frozen=True)
class ImageSet:
    """Images as one uint8 tensor (N, 3, 32, 32) and integer labels (N,)."""

    images: torch.Tensor
    labels: torch.Tensor

    def __len__(self) -> int:
        return self.labels.shape[0]


def balanced_subset(images: ImageSet, size: int | None, seed: int) -> ImageSet:
    """``size // C`` images of each of the C classes, chosen by ``seed`` (all when ``size`` is None).

    The chosen rows keep their original order; the same (images, size, seed) always give the
    same subset.
    """
    if size is None or size >= len(images):
        return images
    labels = images.labels.numpy()
    classes = np.unique(labels)
    rng = np.random.default_rng(seed)
    per_class = size // len(classes)
    chosen = np.sort(np.concatenate([rng.permutation(np.flatnonzero(labels == c))[:per_class] for c in classes]))
    return ImageSet(images.images[chosen], images.labels[chosen])


@dataclass(frozen=True)
class CIFAR10:
    train: ImageSet
    test: ImageSet
    classes: tuple[str, ...]


def _missing_message(root: Path) -> str:
    return (
        f"CIFAR-10 not found under {root}: expected {root / FOLDER}/ with "
        f"{', '.join(TRAIN_FILES + TEST_FILES + [META_FILE])}. Fix: pass --data.root to the folder "
        f"that contains {FOLDER}/, or set --data.download true on a machine with internet"
    )


# The only globals a CIFAR-10 batch file refers to: numpy arrays (the images, and in copies
# written by newer numpy, the class names); the rest is dicts, lists, strings, bytes and ints.
ALLOWED_GLOBALS = frozenset({
    ("numpy", "ndarray"),
    ("numpy", "dtype"),
    ("numpy.core.multiarray", "_reconstruct"),
    ("numpy._core.multiarray", "_reconstruct"),
})


class ForbiddenGlobal(pickle.UnpicklingError):
    """A pickle referred to a global outside `ALLOWED_GLOBALS`."""


class BatchUnpickler(pickle.Unpickler):
    """Unpickler that builds only what the CIFAR-10 format holds: dicts, lists, strings, bytes,
    integers and numpy arrays. Any other global (a function to call, a class to build) is refused
    before it is looked up, so a crafted file cannot run code."""

    def find_class(self, module: str, name: str):
        if (module, name) in ALLOWED_GLOBALS:
            return super().find_class(module, name)
        raise ForbiddenGlobal(f"{module}.{name}")


def _read_pickle(path: Path) -> dict:
    try:
        with open(path, "rb") as handle:
            content = BatchUnpickler(handle, encoding="latin1").load()
    except FileNotFoundError:
        raise
    except ForbiddenGlobal as error:
        raise DataError(f"{path} refused: it refers to {error}, which no CIFAR-10 batch file contains "
                        "(loading it could run code); replace it with an official copy") from None
    except Exception as error:  # truncated or not a pickle at all
        raise DataError(f"{path} is not a readable CIFAR-10 batch file ({type(error).__name__}: {error})") from None
    if not isinstance(content, dict):
        raise DataError(f"{path} holds a {type(content).__name__}, expected a dict with 'data' and 'labels'")
    return content


def _read_batches(folder: Path, names: list[str], expected_rows: int) -> ImageSet:
    data, labels = [], []
    for name in names:
        path = folder / name
        batch = _read_pickle(path)
        missing = {"data", "labels"} - set(batch)
        if missing:
            raise DataError(f"{path} lacks the key(s) {sorted(missing)}; it is not a CIFAR-10 batch file")
        array = np.asarray(batch["data"])
        if array.dtype != np.uint8 or array.ndim != 2 or array.shape[1] != 3 * 32 * 32:
            raise DataError(
                f"{path}: 'data' has shape {array.shape} and dtype {array.dtype}, expected (rows, 3072) uint8"
            )
        if len(batch["labels"]) != array.shape[0]:
            raise DataError(f"{path}: {array.shape[0]} images but {len(batch['labels'])} labels")
        data.append(array)
        labels.extend(batch["labels"])
    images = torch.from_numpy(np.concatenate(data)).view(-1, 3, 32, 32)
    label_tensor = torch.as_tensor(labels, dtype=torch.long)
    if images.shape[0] != expected_rows:
        raise DataError(f"{folder}: {images.shape[0]} rows in {names}, expected {expected_rows}")
    if label_tensor.min() < 0 or label_tensor.max() >= NUM_CLASSES:
        raise DataError(f"{folder}: labels outside 0..{NUM_CLASSES - 1}")
    return ImageSet(images, label_tensor)


def load_cifar10(root: str | Path, download: bool = False) -> CIFAR10:
    """Read CIFAR-10 from ``root/cifar-10-batches-py`` into memory (~180 MB of uint8).

    Args:
        root: folder that contains (or will contain) ``cifar-10-batches-py/``.
        download: fetch the archive (md5-checked) when the folder is missing.

    Raises:
        DataError: missing without ``download``, or structurally malformed files.
    """
    root = Path(root).expanduser()
    folder = root / FOLDER
    if not folder.is_dir():
        if not download:
            raise DataError(_missing_message(root))
        from torchvision.datasets.utils import download_and_extract_archive

        download_and_extract_archive(URL, download_root=str(root), md5=ARCHIVE_MD5)
    absent = [name for name in TRAIN_FILES + TEST_FILES + [META_FILE] if not (folder / name).is_file()]
    if absent:
        raise DataError(f"{folder} is incomplete: missing {', '.join(absent)}. {_missing_message(root)}")
    meta = _read_pickle(folder / META_FILE)
    classes = tuple(meta.get("label_names", ()))
    if len(classes) != NUM_CLASSES:
        raise DataError(f"{folder / META_FILE}: {len(classes)} class names, expected {NUM_CLASSES}")
    train = _read_batches(folder, TRAIN_FILES, TRAIN_SIZE)
    test = _read_batches(folder, TEST_FILES, TEST_SIZE)
    return CIFAR10(train=train, test=test, classes=classes)
