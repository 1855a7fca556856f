"""Data sets in memory behind one contract, imbalanced subsets, SimCLR augmentation and the datamodule."""

from sslprobe.data.cifar import CIFAR10, CIFAR10Reader, CIFAR100Reader, load_cifar10, load_cifar100
from sslprobe.data.datamodule import CIFAR10DataModule, ImageDataModule, TwoViewDataset
from sslprobe.data.dataset import (
    DATASETS,
    DataError,
    DatasetReader,
    ImageDataset,
    ImageSet,
    LabelSet,
    build_reader,
    load_dataset,
)
from sslprobe.data.image_folder import ImageFolderReader
from sslprobe.data.imbalance import PRESET_COUNTS, class_counts, dirichlet_class_counts, subset_indices
from sslprobe.data.stl10 import STL10Reader

__all__ = [
    "CIFAR10",
    "CIFAR100Reader",
    "CIFAR10DataModule",
    "CIFAR10Reader",
    "DATASETS",
    "DataError",
    "DatasetReader",
    "ImageDataModule",
    "ImageDataset",
    "ImageFolderReader",
    "ImageSet",
    "LabelSet",
    "PRESET_COUNTS",
    "STL10Reader",
    "TwoViewDataset",
    "build_reader",
    "class_counts",
    "dirichlet_class_counts",
    "load_cifar10",
    "load_cifar100",
    "load_dataset",
    "subset_indices",
]
