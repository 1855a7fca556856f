"""The dataset contract: one in-memory uint8 image set behind a registry of readers.

A reader turns files on disk into an `ImageDataset`: the training and test images as uint8
tensors (N, 3, H, W) at ``data.image_size``, their labels and class names (possibly several label
sets, e.g. CIFAR-100's fine and coarse classes) and, where the data set has them, unlabelled
training images. Everything downstream (subsets, samplers, batched augmentation, probes) sees
only this object. Readers check structure, not hashes, and estimate the memory a data set takes
before reading it, so one that would not fit is refused in one line.

A new data set is a subclass of `DatasetReader` with a ``name``: defining it registers it
(`DATASETS`), and ``--data.dataset <name>`` picks it; any reader can also be given by
``class_path``.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import ClassVar

import numpy as np
import torch
import torch.nn.functional as F

GIB = 1024**3
RESIZE_CHUNK = 4096  # images resized per interpolate call (bounds the float32 working memory)


class DataError(ValueError):
    """The data set is missing or malformed; the message says what and how to fix it."""


@dataclass(frozen=True)
class ImageSet:
    """Images as one uint8 tensor (N, 3, H, W) and integer labels (N,)."""

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
class LabelSet:
    """One labelling of a data set: class names and the labels of the train and test images."""

    classes: tuple[str, ...]
    train: torch.Tensor  # (N_train,) int64
    test: torch.Tensor  # (N_test,) int64


@dataclass(frozen=True)
class ImageDataset:
    """A data set in memory, labelled by one of its label sets.

    Attributes:
        train, test: uint8 images (N, 3, H, W) with the labels of ``label_set``.
        classes: class names of ``label_set``, in label order.
        name: the reader's name (``cifar10``, ``cifar100``, ...).
        label_set: which labelling ``train``/``test``/``classes`` carry.
        label_sets: every labelling the reader found, by name (the selected one included).
        training_pool: what self-supervised training draws from when it differs from ``train``:
            the training images followed by unlabelled ones (label -1), e.g. STL-10's 100,000;
            None: ``train`` itself.
    """

    train: ImageSet
    test: ImageSet
    classes: tuple[str, ...]
    name: str = "cifar10"
    label_set: str = "labels"
    label_sets: Mapping[str, LabelSet] = field(default_factory=dict)
    training_pool: ImageSet | None = None

    @property
    def unlabelled(self) -> int:
        """Images without labels in the training pool."""
        return 0 if self.training_pool is None else len(self.training_pool) - len(self.train)

    @property
    def image_size(self) -> int:
        return int(self.train.images.shape[-1])

    def relabelled(self, label_set: str | None) -> ImageDataset:
        """The same images labelled by ``label_set`` (None: as they are).

        Raises:
            DataError: the data set has no such label set.
        """
        if label_set is None or label_set == self.label_set:
            return self
        if label_set not in self.label_sets:
            raise DataError(f"data.label_set={label_set!r}: {self.name} has no such labels; it has "
                            f"{', '.join(self.label_sets) or self.label_set}")
        chosen = self.label_sets[label_set]
        pool = self.training_pool
        if pool is not None:
            pool = ImageSet(pool.images, torch.cat([chosen.train, pool.labels[len(self.train):]]))
        return replace(self, training_pool=pool, train=ImageSet(self.train.images, chosen.train),
                       test=ImageSet(self.test.images, chosen.test), classes=chosen.classes, label_set=label_set)


def image_bytes(count: int, image_size: int) -> int:
    """Bytes of ``count`` uint8 RGB images of ``image_size``²."""
    return int(count) * 3 * int(image_size) ** 2


def available_memory() -> int | None:
    """The memory the system can still give (``MemAvailable``), in bytes; None where unknown."""
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemAvailable:"):
                return int(line.split()[1]) * 1024
    except OSError:
        pass
    return None


def check_memory(name: str, needed: int, max_memory_gb: float | None) -> None:
    """Refuse, in one line, a data set of ``needed`` bytes over the cap (default: what is available).

    Raises:
        DataError: ``needed`` is over ``max_memory_gb`` (or over the available memory when None).
    """
    cap = max_memory_gb * GIB if max_memory_gb is not None else available_memory()
    if cap is None or needed <= cap:
        return
    where = (f"data.max_memory_gb={max_memory_gb:g}" if max_memory_gb is not None
             else f"the {cap / GIB:.1f} GiB this machine has available (data.max_memory_gb unset)")
    raise DataError(f"{name} needs {needed / GIB:.2f} GiB in memory, more than {where}: raise "
                    "data.max_memory_gb, lower data.image_size, or leave out a split (docs/guide/datasets.md)")


def resize_images(images: torch.Tensor, size: int) -> torch.Tensor:
    """uint8 (N, 3, H, W) -> uint8 (N, 3, size, size), bilinear with antialiasing, rounded."""
    if images.shape[-1] == size and images.shape[-2] == size:
        return images
    out = torch.empty((images.shape[0], images.shape[1], size, size), dtype=torch.uint8)
    for start in range(0, images.shape[0], RESIZE_CHUNK):
        chunk = images[start : start + RESIZE_CHUNK].to(torch.float32)
        resized = F.interpolate(chunk, size=(size, size), mode="bilinear", antialias=True, align_corners=False)
        out[start : start + RESIZE_CHUNK] = resized.round_().clamp_(0, 255).to(torch.uint8)
    return out


class DatasetReader:
    """Reads one data set from ``root`` into an `ImageDataset`; subclasses with a ``name`` register.

    Subclasses implement `required_bytes` (an estimate from the files' structure, made before
    anything is read) and `read`. Constructor arguments are the reader's options
    (``data.dataset_kwargs`` or ``init_args``).
    """

    name: ClassVar[str] = ""
    native_size: ClassVar[int | None] = 32  # the stored image side; None: any (resized on read)

    def __init_subclass__(cls, **kwargs):
        super().__init_subclass__(**kwargs)
        if cls.name:
            DATASETS[cls.name] = cls

    def required_bytes(self, root: Path, image_size: int) -> int:
        """Bytes the images take in memory at ``image_size``, from file sizes and counts (nothing is
        decoded); the official counts where the files are absent and will be downloaded."""
        raise NotImplementedError

    def read(self, root: Path, image_size: int, download: bool = False) -> ImageDataset:
        """The data set at ``image_size`` (images of another size are resized once, here)."""
        raise NotImplementedError

    def describe(self) -> dict:
        """What identifies this reader's output besides root and size (for caches and logs)."""
        return {"dataset": self.name or f"{type(self).__module__}.{type(self).__qualname__}",
                **{key: value for key, value in vars(self).items() if not key.startswith("_")}}


# The dataset registry: a name in a config (``data.dataset``) -> its reader class, filled as readers
# are defined (`DatasetReader.__init_subclass__`).
DATASETS: dict[str, type[DatasetReader]] = {}


def build_reader(dataset: str | DatasetReader, dataset_kwargs: Mapping | None = None) -> DatasetReader:
    """The reader of ``dataset`` (a registered name, or a reader already built from a class_path)."""
    if isinstance(dataset, DatasetReader):
        if dataset_kwargs:
            raise DataError("data.dataset_kwargs apply to a named data set; a reader given by class_path "
                            "takes its own init_args")
        return dataset
    if dataset not in DATASETS:
        raise DataError(f"unknown data.dataset {dataset!r}; valid: {', '.join(DATASETS)}")
    try:
        return DATASETS[dataset](**(dataset_kwargs or {}))
    except TypeError as error:
        raise DataError(f"data.dataset_kwargs do not fit {dataset}: {error}") from None


def load_dataset(
    reader: DatasetReader,
    root: str | os.PathLike,
    image_size: int,
    download: bool = False,
    max_memory_gb: float | None = None,
    label_set: str | None = None,
) -> ImageDataset:
    """Estimate, check and read: the data set of ``reader`` under ``root`` at ``image_size``.

    Raises:
        DataError: missing or malformed files, a data set over the memory cap, or an unknown label set.
    """
    root = Path(root).expanduser()
    check_memory(reader.name or type(reader).__name__, reader.required_bytes(root, image_size), max_memory_gb)
    return reader.read(root, image_size, download).relabelled(label_set)
