"""CIFAR-10 in memory, imbalanced subsets, SimCLR augmentation and the Lightning datamodule."""

from sslprobe.data.cifar import CIFAR10, DataError, ImageSet, load_cifar10
from sslprobe.data.datamodule import CIFAR10DataModule, TwoViewDataset
from sslprobe.data.imbalance import PRESET_COUNTS, class_counts, dirichlet_class_counts, subset_indices

__all__ = [
    "CIFAR10",
    "CIFAR10DataModule",
    "DataError",
    "ImageSet",
    "PRESET_COUNTS",
    "TwoViewDataset",
    "class_counts",
    "dirichlet_class_counts",
    "load_cifar10",
    "subset_indices",
]
