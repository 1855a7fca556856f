"""What a larger image costs: batched augmentation at several sizes and ``fit`` against the bare loop at the largest."""

from __future__ import annotations

import time
from dataclasses import replace

import torch

from sslprobe.benchmark.fit import LOADED, bare_throughput, fit_throughput
from sslprobe.benchmark.settings import Settings, median, synchronize
from sslprobe.data import load_cifar10
from sslprobe.data.batch_augment import SimCLRBatchAugment
from sslprobe.data.dataset import resize_images
from sslprobe.data.sampler import sample_seed


def bench_resolution(root: str, settings: Settings, repeats: int) -> dict:
    """Batched augmentation images/s (two views each) at every size of ``settings.resolution_sizes``,
    with the blur training adds above 64 px, and fit vs the bare loop of the first model at the largest
    (CIFAR-10 resized: what STL-10-sized images cost)."""
    cifar = load_cifar10(root)
    n, device = settings.augment_images, settings.device
    batch = max(settings.batch_size, 256) if device == "cpu" else settings.batch_size
    seeds = torch.tensor([sample_seed(0, 0, i) for i in range(n)], dtype=torch.int64)
    augmentation = {}
    for size in settings.resolution_sizes:
        pixels = resize_images(cifar.train.images[:n], size).to(device)
        augment = SimCLRBatchAugment(blur=size > 64)
        runs = []
        for _ in range(repeats):
            augment(pixels[:batch], seeds[:batch].to(device))  # warm-up
            synchronize(device)
            start = time.perf_counter()
            for first in range(0, n, batch):
                augment(pixels[first : first + batch], seeds[first : first + batch].to(device))
            synchronize(device)
            runs.append(n / (time.perf_counter() - start))
        augmentation[str(size)] = {"images_per_s": median(runs), "runs": runs, "blur": augment.blur}
    largest = replace(settings, image_size=max(settings.resolution_sizes))
    name, fit, bare = settings.models[0], [], []
    for _ in range(repeats):  # interleaved, as in the fit section
        fit.append(fit_throughput(name, root, largest, settings.batch_size))
        bare.append(bare_throughput(name, root, largest, settings.batch_size))
    LOADED.pop((root, largest.image_size), None)
    fit_row = {"model": name, "image_size": largest.image_size, "batch_size": settings.batch_size,
               "fit_images_per_s": median(fit), "bare_images_per_s": median(bare),
               "fit_vs_bare": median(fit) / median(bare), "fit_runs": fit, "bare_runs": bare}
    sizes = ", ".join(f"{size} px {row['images_per_s']:.0f} img/s" for size, row in augmentation.items())
    print(f"  resolution: augmentation {sizes}; fit {name} at {largest.image_size} px {median(fit):.1f} img/s, "
          f"bare loop {median(bare):.1f} img/s", flush=True)
    return {"augmentation": augmentation, "fit": fit_row}
