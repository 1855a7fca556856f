"""CIFAR-10 and CIFAR-100 in memory, read from the standard python layouts.

``cifar-10-batches-py`` (``data_batch_1..5``, ``test_batch``, ``batches.meta``) and
``cifar-100-python`` (``train``, ``test``, ``meta``; fine and coarse labels). The readers check
structure (keys, shapes, dtypes, the number of classes, 50,000 + 10,000 rows), not file hashes,
so a re-encoded copy loads. Downloads go through torchvision's utilities, which do check the
archive's md5.
"""

from __future__ import annotations

import pickle
from pathlib import Path

import numpy as np
import torch

from sslprobe.data.dataset import (  # noqa: F401 - DataError, ImageSet, balanced_subset re-exported
    DataError,
    DatasetReader,
    ImageDataset,
    ImageSet,
    LabelSet,
    balanced_subset,
    image_bytes,
    resize_images,
)

FOLDER = "cifar-10-batches-py"
TRAIN_FILES = [f"data_batch_{i}" for i in range(1, 6)]
TEST_FILES = ["test_batch"]
META_FILE = "batches.meta"
URL = "https://www.cs.toronto.edu/~kriz/cifar-10-python.tar.gz"
ARCHIVE_MD5 = "c58f30108f718f92721af3b95e74349a"
NUM_CLASSES = 10
TRAIN_SIZE, TEST_SIZE = 50_000, 10_000


def _missing_message(root: Path, title: str = "CIFAR-10", folder: str = FOLDER,
                     files: tuple[str, ...] = (*TRAIN_FILES, *TEST_FILES, META_FILE)) -> str:
    return (
        f"{title} not found under {root}: expected {root / folder}/ with "
        f"{', '.join(files)}. Fix: pass --data.root to the folder "
        f"that contains {folder}/, or set --data.download true on a machine with internet"
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


def _read_pickle(path: Path, title: str = "CIFAR-10") -> dict:
    try:
        with open(path, "rb") as handle:
            content = BatchUnpickler(handle, encoding="latin1").load()
    except FileNotFoundError:
        raise
    except ForbiddenGlobal as error:
        raise DataError(f"{path} refused: it refers to {error}, which no {title} batch file contains "
                        "(loading it could run code); replace it with an official copy") from None
    except Exception as error:  # truncated or not a pickle at all
        raise DataError(f"{path} is not a readable {title} batch file ({type(error).__name__}: {error})") from None
    if not isinstance(content, dict):
        raise DataError(f"{path} holds a {type(content).__name__}, expected a dict with 'data' and 'labels'")
    return content


def _read_batches(folder: Path, names: list[str], expected_rows: int, label_keys: tuple[str, ...] = ("labels",),
                  num_classes: tuple[int, ...] = (NUM_CLASSES,), title: str = "CIFAR-10",
                  ) -> tuple[torch.Tensor, list[torch.Tensor]]:
    """The images (N, 3, 32, 32) uint8 of batch files ``names`` and one label tensor per key of ``label_keys``."""
    data, labels = [], {key: [] for key in label_keys}
    for name in names:
        path = folder / name
        batch = _read_pickle(path, title)
        missing = {"data", *label_keys} - set(batch)
        if missing:
            raise DataError(f"{path} lacks the key(s) {sorted(missing)}; it is not a {title} batch file")
        array = np.asarray(batch["data"])
        if array.dtype != np.uint8 or array.ndim != 2 or array.shape[1] != 3 * 32 * 32:
            raise DataError(
                f"{path}: 'data' has shape {array.shape} and dtype {array.dtype}, expected (rows, 3072) uint8"
            )
        for key in label_keys:
            if len(batch[key]) != array.shape[0]:
                raise DataError(f"{path}: {array.shape[0]} images but {len(batch[key])} {key}")
            labels[key].extend(batch[key])
        data.append(array)
    images = torch.from_numpy(np.concatenate(data)).view(-1, 3, 32, 32)
    if images.shape[0] != expected_rows:
        raise DataError(f"{folder}: {images.shape[0]} rows in {names}, expected {expected_rows}")
    tensors = []
    for key, count in zip(label_keys, num_classes):
        tensor = torch.as_tensor(labels[key], dtype=torch.long)
        if tensor.min() < 0 or tensor.max() >= count:
            raise DataError(f"{folder}: {key} outside 0..{count - 1}")
        tensors.append(tensor)
    return images, tensors


def _fetch(root: Path, folder: Path, url: str, md5: str, missing: str, download: bool) -> None:
    if not folder.is_dir():
        if not download:
            raise DataError(missing)
        from torchvision.datasets.utils import download_and_extract_archive

        download_and_extract_archive(url, download_root=str(root), md5=md5)


def load_cifar10(root: str | Path, download: bool = False, image_size: int = 32) -> ImageDataset:
    """Read CIFAR-10 from ``root/cifar-10-batches-py`` into memory (~180 MB of uint8 at 32 px).

    Args:
        root: folder that contains (or will contain) ``cifar-10-batches-py/``.
        download: fetch the archive (md5-checked) when the folder is missing.
        image_size: side of the images returned (resized once when not 32).

    Raises:
        DataError: missing without ``download``, or structurally malformed files.
    """
    root = Path(root).expanduser()
    folder = root / FOLDER
    _fetch(root, folder, URL, ARCHIVE_MD5, _missing_message(root), download)
    absent = [name for name in TRAIN_FILES + TEST_FILES + [META_FILE] if not (folder / name).is_file()]
    if absent:
        raise DataError(f"{folder} is incomplete: missing {', '.join(absent)}. {_missing_message(root)}")
    meta = _read_pickle(folder / META_FILE)
    classes = tuple(meta.get("label_names", ()))
    if len(classes) != NUM_CLASSES:
        raise DataError(f"{folder / META_FILE}: {len(classes)} class names, expected {NUM_CLASSES}")
    train, (train_labels,) = _read_batches(folder, TRAIN_FILES, TRAIN_SIZE)
    test, (test_labels,) = _read_batches(folder, TEST_FILES, TEST_SIZE)
    return ImageDataset(train=ImageSet(resize_images(train, image_size), train_labels),
                        test=ImageSet(resize_images(test, image_size), test_labels), classes=classes,
                        name="cifar10", label_set="labels",
                        label_sets={"labels": LabelSet(classes, train_labels, test_labels)})


CIFAR10 = ImageDataset  # the former name of the in-memory data set


class CIFAR10Reader(DatasetReader):
    """CIFAR-10 (``data.root`` holds ``cifar-10-batches-py/``): 50,000 + 10,000 images, 10 classes."""

    name = "cifar10"

    def required_bytes(self, root: Path, image_size: int) -> int:
        return image_bytes(TRAIN_SIZE + TEST_SIZE, image_size)

    def read(self, root: Path, image_size: int, download: bool = False) -> ImageDataset:
        return load_cifar10(root, download, image_size)


CIFAR100_FOLDER = "cifar-100-python"
CIFAR100_FILES = ("train", "test", "meta")
CIFAR100_URL = "https://www.cs.toronto.edu/~kriz/cifar-100-python.tar.gz"
CIFAR100_MD5 = "eb9058c3a382ffc7106e4002c42a8d85"
CIFAR100_CLASSES = {"fine": 100, "coarse": 20}


def load_cifar100(root: str | Path, download: bool = False, image_size: int = 32,
                  labels: str = "fine") -> ImageDataset:
    """Read CIFAR-100 from ``root/cifar-100-python`` (~180 MB of uint8 at 32 px).

    Both label sets are read (``fine``: 100 classes of 500 + 100 images; ``coarse``: 20
    superclasses of 2,500 + 500); ``labels`` picks the one the data set carries.

    Raises:
        DataError: missing without ``download``, or structurally malformed files.
    """
    root = Path(root).expanduser()
    folder = root / CIFAR100_FOLDER
    missing = _missing_message(root, "CIFAR-100", CIFAR100_FOLDER, CIFAR100_FILES)
    _fetch(root, folder, CIFAR100_URL, CIFAR100_MD5, missing, download)
    absent = [name for name in CIFAR100_FILES if not (folder / name).is_file()]
    if absent:
        raise DataError(f"{folder} is incomplete: missing {', '.join(absent)}. {missing}")
    meta = _read_pickle(folder / "meta", "CIFAR-100")
    names = {}
    for kind, count in CIFAR100_CLASSES.items():
        names[kind] = tuple(meta.get(f"{kind}_label_names", ()))
        if len(names[kind]) != count:
            raise DataError(f"{folder / 'meta'}: {len(names[kind])} {kind} class names, expected {count}")
    keys, counts = tuple(f"{kind}_labels" for kind in CIFAR100_CLASSES), tuple(CIFAR100_CLASSES.values())
    train, train_labels = _read_batches(folder, ["train"], TRAIN_SIZE, keys, counts, "CIFAR-100")
    test, test_labels = _read_batches(folder, ["test"], TEST_SIZE, keys, counts, "CIFAR-100")
    label_sets = {kind: LabelSet(names[kind], train_labels[i], test_labels[i]) for i, kind in enumerate(names)}
    chosen = label_sets["fine"]
    dataset = ImageDataset(train=ImageSet(resize_images(train, image_size), chosen.train),
                           test=ImageSet(resize_images(test, image_size), chosen.test), classes=chosen.classes,
                           name="cifar100", label_set="fine", label_sets=label_sets)
    return dataset.relabelled(labels)


class CIFAR100Reader(DatasetReader):
    """CIFAR-100 (``data.root`` holds ``cifar-100-python/``): 50,000 + 10,000 images, 100 fine
    classes in 20 coarse ones (``data.label_set: coarse``)."""

    name = "cifar100"

    def required_bytes(self, root: Path, image_size: int) -> int:
        return image_bytes(TRAIN_SIZE + TEST_SIZE, image_size)

    def read(self, root: Path, image_size: int, download: bool = False) -> ImageDataset:
        return load_cifar100(root, download, image_size)
