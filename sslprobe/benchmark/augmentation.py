"""Two-view augmentation throughput: the batched path against PIL-per-sample, tensor-per-sample and kornia."""

from __future__ import annotations

import time

import numpy as np
import torch
from PIL import Image
from torch.utils.data import DataLoader, Dataset
from torchvision import transforms

from sslprobe.benchmark.settings import (
    Settings,
    median,
    synchronize,
)
from sslprobe.data import ImageDataModule, load_cifar10
from sslprobe.data.augment import CIFAR10_MEAN, CIFAR10_STD
from sslprobe.data.batch_augment import SimCLRBatchAugment
from sslprobe.data.sampler import sample_seed


class PILTwoViews(Dataset):
    """The usual CIFAR SimCLR pipeline: PIL images through torchvision transforms, two views each."""

    def __init__(self, images: np.ndarray, labels: np.ndarray):
        self.images, self.labels = images, labels  # (N, 32, 32, 3) uint8
        jitter = transforms.ColorJitter(0.4, 0.4, 0.4, 0.1)
        self.transform = transforms.Compose([
            transforms.RandomResizedCrop(32, scale=(0.2, 1.0)),
            transforms.RandomHorizontalFlip(),
            transforms.RandomApply([jitter], p=0.8),
            transforms.RandomGrayscale(p=0.2),
            transforms.ToTensor(),
            transforms.Normalize(CIFAR10_MEAN, CIFAR10_STD),
        ])

    def __len__(self) -> int:
        return len(self.images)

    def __getitem__(self, index: int):
        image = Image.fromarray(self.images[index])
        return self.transform(image), self.transform(image), int(self.labels[index])


class BatchedViews(Dataset):
    """Item k is the k-th whole batch with both views made by `SimCLRBatchAugment` (in a worker)."""

    def __init__(self, images: torch.Tensor, batch_size: int):
        self.images, self.batch_size, self.augment = images, batch_size, SimCLRBatchAugment()

    def __len__(self) -> int:
        return len(self.images) // self.batch_size

    def __getitem__(self, index: int):
        rows = slice(index * self.batch_size, (index + 1) * self.batch_size)
        seeds = torch.tensor([sample_seed(0, 0, i) for i in range(rows.start, rows.stop)])
        return self.augment(self.images[rows], seeds)


def cpu_seconds_per_image(function, images: int) -> float:
    """Process CPU time per image of ``function()`` on one thread (insensitive to other load)."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    function()  # warm-up
    start = time.process_time()
    function()
    torch.set_num_threads(threads)
    return (time.process_time() - start) / images


def loader_throughput(batches, make_views, batch_size: int, device: str) -> float:
    """images/s from the second batch on (the first carries worker start-up)."""
    start, count = None, 0
    for batch in batches:
        make_views(batch)
        synchronize(device)
        if start is None:
            start = time.perf_counter()
        else:
            count += batch_size
    return count / (time.perf_counter() - start)


def kornia_pipeline():
    """kornia's SimCLR recipe, or None when kornia is not installed."""
    try:
        import kornia.augmentation as K
    except ImportError:
        return None
    return K.AugmentationSequential(
        K.RandomResizedCrop((32, 32), scale=(0.2, 1.0)),
        K.RandomHorizontalFlip(),
        K.ColorJitter(0.4, 0.4, 0.4, 0.1, p=0.8),
        K.RandomGrayscale(p=0.2),
        K.Normalize(torch.tensor(CIFAR10_MEAN), torch.tensor(CIFAR10_STD)),
    )


def bench_augmentation(root: str, settings: Settings, repeats: int) -> dict:
    """images/s of each two-view pipeline on the same images and workers, their ratios against PIL, and
    (on the CPU) the CPU time per image of each on one thread."""
    cifar = load_cifar10(root)
    n, batch, workers, device = settings.augment_images, settings.batch_size, settings.workers, settings.device
    batch = max(batch, 256) if device == "cpu" else batch
    pixels = cifar.train.images[:n]
    datamodule = ImageDataModule(root=root, batch_size=batch, num_workers=0)
    seeded = datamodule.make_dataset(cifar.train, np.arange(n))
    pil_dataset = PILTwoViews(pixels.permute(0, 2, 3, 1).contiguous().numpy(), cifar.train.labels[:n].numpy())
    per_sample = ImageDataModule(root=root, augment_on="workers").make_dataset(cifar.train, np.arange(n))
    kornia = kornia_pipeline()
    batched = SimCLRBatchAugment()
    threads = torch.get_num_threads()

    def run_batched():
        loader = DataLoader(seeded, batch_size=batch, num_workers=0 if device == "cpu" else workers,
                            pin_memory=device != "cpu")

        def views(b):
            images, _, seeds = (t.to(device, non_blocking=True) for t in b)
            return batched(images, seeds)
        return loader_throughput(loader, views, batch, device)

    def run_kornia():
        loader = DataLoader(seeded, batch_size=batch, num_workers=0 if device == "cpu" else workers)
        pipeline = kornia.to(device)

        def views(b):
            images = b[0].to(device).float() / 255
            return pipeline(images), pipeline(images)
        return loader_throughput(loader, views, batch, device)

    def run_workers(dataset, batch_size=batch):
        loader = DataLoader(dataset, batch_size=batch_size, num_workers=workers, shuffle=False)
        return loader_throughput(loader, lambda b: b, batch, device)

    rows = {"batched": [], "batched_in_workers": [], "pil_per_sample": [], "tensor_per_sample": [], "kornia": []}
    for _ in range(repeats):
        if device == "cpu":
            torch.set_num_threads(workers)
        rows["batched"].append(run_batched())
        if kornia is not None:
            rows["kornia"].append(run_kornia())
        torch.set_num_threads(threads)
        if device == "cpu":
            rows["batched_in_workers"].append(run_workers(BatchedViews(pixels, batch), batch_size=None))
        rows["pil_per_sample"].append(run_workers(pil_dataset))
        rows["tensor_per_sample"].append(run_workers(per_sample))
    result = {name: median(values) if values else None for name, values in rows.items()}
    result = {f"{name}_images_per_s": value for name, value in result.items()}
    result["runs"] = rows
    pil = result["pil_per_sample_images_per_s"]
    best_batched = max(v for k, v in result.items() if k.startswith("batched") and v is not None)
    result.update({
        "batch_size": batch, "images": n, "workers_or_threads": workers, "device": device,
        "batched_vs_pil": best_batched / pil,
        "batched_main_vs_pil": result["batched_images_per_s"] / pil,
        "batched_in_workers_vs_pil": (result["batched_in_workers_images_per_s"] / pil
                                      if result["batched_in_workers_images_per_s"] else None),
        "kornia_vs_pil": result["kornia_images_per_s"] / pil if kornia is not None else None,
    })
    if device == "cpu":  # CPU time per image on one core: what each path costs the machine
        sample = min(n, 512)
        cost = {
            "batched": cpu_seconds_per_image(lambda: batched(pixels[:sample], torch.arange(sample)), sample),
            "pil_per_sample": cpu_seconds_per_image(lambda: [pil_dataset[i] for i in range(sample)], sample),
            "tensor_per_sample": cpu_seconds_per_image(lambda: [per_sample[i] for i in range(sample)], sample),
        }
        if kornia is not None:
            cost["kornia"] = cpu_seconds_per_image(
                lambda: (kornia(pixels[:sample].float() / 255), kornia(pixels[:sample].float() / 255)), sample)
        result["cpu_ms_per_image_one_thread"] = {k: 1e3 * v for k, v in cost.items()}
        result["batched_vs_pil_cpu_time"] = cost["pil_per_sample"] / cost["batched"]
    print(f"  augmentation: batched {result['batched_images_per_s']:.0f} img/s, "
          f"PIL {result['pil_per_sample_images_per_s']:.0f} img/s", flush=True)
    return result
