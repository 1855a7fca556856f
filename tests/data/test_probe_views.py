"""`CIFAR10DataModule.probe_views`: the training augmentation path, for the theory probe."""

from __future__ import annotations

import numpy as np
import torch
from torch.utils.data import default_collate

from sslprobe.data import CIFAR10DataModule
from sslprobe.data.datamodule import SeededImageDataset


def datamodule(cifar_root, tmp_path, augment_on: str) -> CIFAR10DataModule:
    module = CIFAR10DataModule(root=str(cifar_root), imbalance="none", subset_size=200, batch_size=10,
                               augment_strength=0.8, augment_on=augment_on)
    module.setup_for_run(tmp_path)
    return module


def test_probe_views_are_the_loaders_batched_views(cifar_root, tmp_path):
    module = datamodule(cifar_root, tmp_path, "device")
    view1, view2 = module.probe_views(24, seed=3, batch_size=10)
    assert view1.shape == view2.shape == (24, 3, 32, 32) and view1.dtype == torch.float32
    assert not torch.equal(view1, view2)
    again = module.probe_views(24, seed=3, batch_size=7)  # chunking changes nothing
    assert torch.equal(again[0], view1) and torch.equal(again[1], view2)
    # the same images through the training loader's collate and on_after_batch_transfer
    chosen = np.sort(module.train_indices[torch.randperm(200, generator=torch.Generator().manual_seed(3))[:24]])
    dataset = SeededImageDataset(module.cifar.train, chosen, 3)
    batch = module.on_after_batch_transfer(default_collate([dataset[i] for i in range(24)]), 0)
    assert torch.equal(batch[0], view1) and torch.equal(batch[1], view2)
    other = module.probe_views(24, seed=4)
    assert not torch.equal(other[0], view1)


def test_probe_views_follow_the_per_sample_path_in_worker_mode(cifar_root, tmp_path):
    module = datamodule(cifar_root, tmp_path, "workers")
    view1, view2 = module.probe_views(6, seed=0)
    assert view1.shape == (6, 3, 32, 32)
    first = module.probe_views(6, seed=0)
    assert torch.equal(first[0], view1) and torch.equal(first[1], view2)
