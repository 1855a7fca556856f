"""Throughput and probe costs of sslprobe on this machine, as ratios against plain baselines.

    python scripts/benchmark.py [--quick] [--json OUT] [--repeats N] [--data-root data]
    python scripts/benchmark.py --gpu --json gpu.json     # one CUDA device

Sections (one process, same model, batch and machine within each comparison):

- ``fit``: images/s through ``Trainer.fit`` (steps after warm-up) vs a bare PyTorch loop doing
  the same forward/backward/step on the same data and augmentation (target >= 0.95).
- ``augmentation``: images/s (two views each) of the batched path (`SimCLRBatchAugment`, the
  training process's threads) vs the usual PIL-per-sample DataLoader pipeline (torchvision
  transforms on PIL images in worker processes), the package's own per-sample tensor path, and
  kornia's equivalent pipeline when kornia is installed; same number of workers and threads
  (target >= 3x for batched vs PIL).
- ``probes``: the landscape probe (41x41 + 41 grid), the theory probe (estimators, prediction and
  measurement on the same images) and linear evaluation (100 epochs on cached features) as
  multiples of one forward pass over their data (targets <= 2x, <= 1.5x), and the
  spectrum probe as a fraction of a training epoch of 50,000 images (target <= 2%).
- ``scaling``: landscape cost vs grid size (one backbone pass whatever the grid), fit
  throughput vs batch size, linear-evaluation cost vs epochs.
- ``resolution``: batched augmentation images/s at 32 and 96 px (with the Gaussian blur the
  recipe adds above 64 px), and ``fit`` vs the bare loop at 96 px for the first model, on
  CIFAR-10 resized to 96 px (what STL-10-sized images cost).
- ``precision``: ``fit`` images/s in float32, channels-last, bf16-mixed and both, as ratios
  against float32 (the four interleaved in every repeat), for the first model at the main batch
  and for the CPU study's cell (``resnet12_narrow``: ResNet-12 16-32-64-128 at batch 128); says
  whether the device runs bfloat16 natively (what ``run.precision: auto`` decides on).

``--only-precision`` runs the last section alone. The other sections train with what
``run.precision: auto`` picks for the device (bf16-mixed + channels-last where bfloat16 is
native, as the quickstart and the CPU study do); ``--float32`` measures them in float32.

Every number is the median over ``--repeats`` repeats. ``--quick`` runs smaller batches,
fewer steps and smaller probe sets (said in the output) and takes a few minutes on 2 CPU cores.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass, replace
from pathlib import Path

import numpy as np
import torch
from lightning.pytorch import Callback, Trainer
from PIL import Image
from torch.utils.data import DataLoader, Dataset
from torchvision import transforms

# Run as a file, this script imports the sslprobe of its own checkout (not another installed copy).
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from sslprobe.callbacks.landscape import layer_inputs, resolve_target  # noqa: E402
from sslprobe.callbacks.theory import theory_loss  # noqa: E402
from sslprobe.data import CIFAR10DataModule, load_cifar10  # noqa: E402
from sslprobe.data.augment import CIFAR10_MEAN, CIFAR10_STD  # noqa: E402
from sslprobe.data.batch_augment import SimCLRBatchAugment  # noqa: E402
from sslprobe.data.dataset import resize_images  # noqa: E402
from sslprobe.data.sampler import sample_seed  # noqa: E402
from sslprobe.methods import SimCLR  # noqa: E402
from sslprobe.probes import (  # noqa: E402
    LandscapeOptions,
    LinearEvalOptions,
    linear_evaluation,
    loss_landscape,
    spectrum_report,
)
from sslprobe.probes.theory import theory_probe  # noqa: E402
from sslprobe.runtime import native_bfloat16, resolve_precision, tune_host_allocator  # noqa: E402

EPOCH_IMAGES = 50_000
# Models besides the backbone names: the CPU imbalance study's cell (scripts/reproduce_imbalance.py --preset cpu).
MODEL_SPECS = {
    "resnet12_narrow": {"model": {"backbone": "resnet12", "backbone_kwargs": {"widths": [16, 32, 64, 128]}},
                        "batch_size": 128},
}
PRECISION_VARIANTS = {  # name: (trainer precision, channels_last)
    "float32": ("32-true", False),
    "channels_last": ("32-true", True),
    "bf16": ("bf16-mixed", False),
    "bf16_channels_last": ("bf16-mixed", True),
}
TARGETS = {"fit_vs_bare": 0.95, "batched_vs_pil": 3.0, "landscape": 2.0, "linear": 1.5, "spectrum": 0.02}


@dataclass(frozen=True)
class Settings:
    """What one benchmark run measures."""

    models: tuple[str, ...] = ("resnet18", "resnet12", "vit_tiny")
    batch_size: int = 256
    warmup_steps: int = 1
    steps: int = 3
    workers: int = 2  # DataLoader workers of the per-sample pipelines = threads of the batched one
    augment_images: int = 4096
    landscape_images: int = 1024
    linear_train_images: int = 5000
    linear_test_images: int = 1000
    spectrum_images: int = 2048
    grid_sizes: tuple[int, ...] = (11, 21, 41)
    scaling_batch_sizes: tuple[int, ...] = (64, 128, 256)
    linear_epochs: tuple[int, ...] = (10, 30, 100)
    device: str = "cpu"
    precision: str = "32-true"
    channels_last: bool = False
    precision_models: tuple[str, ...] = ("resnet18", "resnet12_narrow")
    image_size: int = 32  # of the fit sections' data and models
    resolution_sizes: tuple[int, ...] = (32, 96)


FULL = Settings()
QUICK = replace(
    FULL, batch_size=8, steps=2, augment_images=1024, landscape_images=64, linear_train_images=256,
    linear_test_images=64, spectrum_images=128, grid_sizes=(11, 41), scaling_batch_sizes=(4, 8),
    linear_epochs=(10, 100), precision_models=("resnet12_narrow",),
)
GPU = replace(
    FULL, batch_size=512, warmup_steps=5, steps=20, workers=4, augment_images=16384, landscape_images=4096,
    linear_train_images=50_000, linear_test_images=10_000, spectrum_images=10_000,
    scaling_batch_sizes=(128, 256, 512), device="cuda",
)


def synchronize(device: str) -> None:
    if device.startswith("cuda"):
        torch.cuda.synchronize()


def median(values: list[float]) -> float:
    return float(statistics.median(values))


# -------------------------------------------------------------------- fit
class BatchClock(Callback):
    """Timestamps the end of every training batch."""

    def __init__(self, device: str):
        self.device, self.times = device, []

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        synchronize(self.device)
        self.times.append(time.perf_counter())


def images_per_second(times: list[float], warmup: int, batch_size: int) -> float:
    """Throughput over the batches after ``warmup`` from batch-end timestamps."""
    measured = len(times) - warmup
    return measured * batch_size / (times[-1] - times[warmup - 1])


def make_model(name: str, settings: Settings) -> SimCLR:
    torch.manual_seed(0)
    options = MODEL_SPECS[name]["model"] if name in MODEL_SPECS else {"backbone": name}
    return SimCLR(**options, channels_last=settings.channels_last, image_size=settings.image_size)


LOADED: dict = {}  # (root, image size) -> the data set, read (and resized) once per benchmark


def make_datamodule(root: str, settings: Settings, batch_size: int, augment_on: str = "device") -> CIFAR10DataModule:
    on_gpu = settings.device.startswith("cuda")
    module = CIFAR10DataModule(
        root=root, batch_size=batch_size, num_workers=settings.workers if on_gpu else 0, augment_on=augment_on,
        pin_memory=on_gpu, persistent_workers=on_gpu, image_size=settings.image_size,
    )
    key = (root, settings.image_size)
    if key not in LOADED:
        LOADED[key] = module.load()
    module.data = LOADED[key]
    return module


def fit_throughput(name: str, root: str, settings: Settings, batch_size: int) -> float:
    """images/s of ``Trainer.fit`` after warm-up."""
    clock = BatchClock(settings.device)
    with tempfile.TemporaryDirectory() as run_dir:
        trainer = Trainer(
            accelerator="gpu" if settings.device.startswith("cuda") else "cpu", devices=1,
            precision=settings.precision, max_steps=settings.warmup_steps + settings.steps, limit_val_batches=0,
            num_sanity_val_steps=0, logger=False, enable_checkpointing=False, enable_progress_bar=False,
            enable_model_summary=False, callbacks=[clock], default_root_dir=run_dir,
        )
        trainer.fit(make_model(name, settings), datamodule=make_datamodule(root, settings, batch_size))
    return images_per_second(clock.times, settings.warmup_steps, batch_size)


def bare_throughput(name: str, root: str, settings: Settings, batch_size: int) -> float:
    """images/s of a plain loop: same loader, augmentation, model, loss, SGD and schedule."""
    device = torch.device(settings.device)
    datamodule = make_datamodule(root, settings, batch_size)
    datamodule.setup("fit")
    model = make_model(name, settings)
    model.setup("fit")
    model.to(device).train()
    hp = model.hparams
    optimizer = torch.optim.SGD(model.parameters(), lr=hp.lr, momentum=hp.momentum, weight_decay=hp.weight_decay)
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda step: 1.0)
    autocast = torch.autocast(device.type, dtype=torch.bfloat16, enabled=settings.precision.startswith("bf16"))
    times = []
    total = settings.warmup_steps + settings.steps
    for step, batch in enumerate(datamodule.train_dataloader()):
        if step == total:
            break
        batch = [tensor.to(device, non_blocking=True) for tensor in batch]
        view1, view2, _ = datamodule.on_after_batch_transfer(batch, 0)
        with autocast:
            loss = model.loss_fn(model(view1), model(view2))
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        scheduler.step()
        synchronize(settings.device)
        times.append(time.perf_counter())
    return images_per_second(times, settings.warmup_steps, batch_size)


def peak_gpu_memory(name: str, root: str, settings: Settings) -> float | None:
    if not settings.device.startswith("cuda"):
        return None
    torch.cuda.reset_peak_memory_stats()
    fit_throughput(name, root, replace(settings, warmup_steps=1, steps=2), settings.batch_size)
    return torch.cuda.max_memory_allocated() / 2**30


def bench_fit(root: str, settings: Settings, repeats: int) -> dict:
    results = {}
    for name in settings.models:
        fit, bare = [], []
        for _ in range(repeats):  # interleaved, so a change of machine load hits both
            fit.append(fit_throughput(name, root, settings, settings.batch_size))
            bare.append(bare_throughput(name, root, settings, settings.batch_size))
        results[name] = {
            "batch_size": settings.batch_size,
            "fit_images_per_s": median(fit),
            "bare_images_per_s": median(bare),
            "fit_vs_bare": median(fit) / median(bare),
            "fit_runs": fit, "bare_runs": bare,  # every repeat, in the order run (interleaved)
            "fit_vs_bare_pairs": [f / b for f, b in zip(fit, bare)],
            "gpu_memory_gib": peak_gpu_memory(name, root, settings),
        }
        print(f"  fit {name}: {median(fit):.1f} img/s, bare loop {median(bare):.1f} img/s", flush=True)
    return results


# ----------------------------------------------------------- augmentation
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
    cifar = load_cifar10(root)
    n, batch, workers, device = settings.augment_images, settings.batch_size, settings.workers, settings.device
    batch = max(batch, 256) if device == "cpu" else batch
    pixels = cifar.train.images[:n]
    datamodule = CIFAR10DataModule(root=root, batch_size=batch, num_workers=0)
    seeded = datamodule.make_dataset(cifar.train, np.arange(n))
    pil_dataset = PILTwoViews(pixels.permute(0, 2, 3, 1).contiguous().numpy(), cifar.train.labels[:n].numpy())
    per_sample = CIFAR10DataModule(root=root, augment_on="workers").make_dataset(cifar.train, np.arange(n))
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


# ----------------------------------------------------------------- probes
def timed(function, device: str):
    synchronize(device)
    start = time.perf_counter()
    value = function()
    synchronize(device)
    return value, time.perf_counter() - start


def chunked(function, images: torch.Tensor, size: int) -> torch.Tensor:
    return torch.cat([function(images[i : i + size]) for i in range(0, len(images), size)])


def landscape_inputs(model: SimCLR, images: torch.Tensor, seeds: torch.Tensor, layer, device: str):
    """One backbone pass over both views of ``images``: the last layer's inputs (h1, h2), as the probes take them."""
    augment = SimCLRBatchAugment()
    views = augment(images.to(device), seeds.to(device))
    with torch.no_grad():
        return tuple(layer_inputs(model, layer, view, 256) for view in views)


def bench_probes(name: str, root: str, settings: Settings, fit_images_per_s: float, repeats: int) -> dict:
    device = settings.device
    cifar = load_cifar10(root)
    model = make_model(name, settings).to(device).eval()
    model.setup("validate")
    layer, head = resolve_target(model, None)
    n = settings.landscape_images
    images = cifar.test.images[:n]
    seeds = torch.tensor([sample_seed(0, -1, i) for i in range(n)])
    loss_batch = min(256, n)

    def landscape(points: int):
        grid = np.linspace(0, 2, points)
        return loss_landscape(h1, h2, layer.weight, layer.bias, model.loss_fn, head=head,
                              scales=grid, r1=grid, r2=grid, options=LandscapeOptions(batch_size=loss_batch))

    def theory():
        loss = theory_loss(model, loss_batch)
        return theory_probe(h1, h2, layer.weight, layer.bias, loss, loss_fn=model.loss_fn)

    forward, grids, theories = [], {points: [] for points in settings.grid_sizes}, []
    for _ in range(repeats):
        (h1, h2), seconds = timed(lambda: landscape_inputs(model, images, seeds, layer, device), device)
        forward.append(seconds)
        for points in settings.grid_sizes:
            grids[points].append(timed(lambda p=points: landscape(p), device)[1])
        theories.append(timed(theory, device)[1])
    forward_s = median(forward)
    theory_row = {"images": n, "views": 2, "feature_dim": int(h1.shape[1]), "forward_s": forward_s,
                  "theory_s": median(theories), "cost_vs_forward": (forward_s + median(theories)) / forward_s}
    full_grid = max(settings.grid_sizes)
    landscape_row = {
        "images": n, "views": 2, "loss_batch_size": loss_batch, "grid": f"{full_grid}x{full_grid} + {full_grid}",
        "forward_s": forward_s, "grid_s": median(grids[full_grid]),
        "cost_vs_forward": (forward_s + median(grids[full_grid])) / forward_s,
    }
    grid_scaling = [{"grid": f"{p}x{p} + {p}", "points": p * p + p, "backbone_passes": 1, "grid_s": median(grids[p]),
                     "cost_vs_forward": (forward_s + median(grids[p])) / forward_s} for p in settings.grid_sizes]

    train_images = cifar.train.images[: settings.linear_train_images]
    train_labels = cifar.train.labels[: settings.linear_train_images]
    test_images = cifar.test.images[: settings.linear_test_images]
    test_labels = cifar.test.labels[: settings.linear_test_images]
    extract, linear = [], {epochs: [] for epochs in settings.linear_epochs}
    for _ in range(repeats):
        (train_f, test_f), seconds = timed(
            lambda: (chunked(model.embed, train_images, 512), chunked(model.embed, test_images, 512)), device
        )
        extract.append(seconds)
        for epochs in settings.linear_epochs:
            def evaluate(train=train_f, test=test_f, epochs=epochs):
                return linear_evaluation(train, train_labels.to(train.device), test, test_labels.to(test.device),
                                         LinearEvalOptions(epochs=epochs))
            linear[epochs].append(timed(evaluate, device)[1])
    extract_s, longest = median(extract), max(settings.linear_epochs)
    linear_row = {
        "train_images": len(train_images), "test_images": len(test_images), "epochs": longest,
        "extract_s": extract_s, "train_eval_s": median(linear[longest]),
        "cost_vs_forward": (extract_s + median(linear[longest])) / extract_s,
    }
    epoch_scaling = [{"epochs": e, "train_eval_s": median(linear[e]),
                      "cost_vs_forward": (extract_s + median(linear[e])) / extract_s} for e in settings.linear_epochs]

    spectrum_images = cifar.test.images[: settings.spectrum_images]

    def spectrum():
        features = chunked(model.embed, spectrum_images, 512)
        with torch.no_grad():
            embeddings = chunked(model.projector, features, 512)
        return spectrum_report(weight=layer.weight, features=features, embeddings=embeddings)

    spectrum_s = median([timed(spectrum, device)[1] for _ in range(repeats)])
    epoch_s = EPOCH_IMAGES / fit_images_per_s
    spectrum_row = {"images": len(spectrum_images), "spectrum_s": spectrum_s, "epoch_s": epoch_s,
                    "fraction_of_epoch": spectrum_s / epoch_s}
    print(f"  probes {name}: landscape {landscape_row['cost_vs_forward']:.2f}x forward, "
          f"theory {theory_row['cost_vs_forward']:.2f}x, linear "
          f"{linear_row['cost_vs_forward']:.2f}x, spectrum {100 * spectrum_row['fraction_of_epoch']:.2f}% of an epoch",
          flush=True)
    return {"model": name, "landscape": landscape_row, "theory": theory_row, "linear": linear_row,
            "spectrum": spectrum_row,
            "scaling": {"landscape_vs_grid": grid_scaling, "linear_vs_epochs": epoch_scaling}}


def bench_batch_scaling(name: str, root: str, settings: Settings, repeats: int) -> list:
    """``fit`` images/s at each batch size, the sizes interleaved within every repeat."""
    runs = {batch_size: [] for batch_size in settings.scaling_batch_sizes}
    for _ in range(repeats):
        for batch_size in settings.scaling_batch_sizes:
            runs[batch_size].append(fit_throughput(name, root, settings, batch_size))
    rows = [{"batch_size": b, "fit_images_per_s": median(values), "fit_runs": values} for b, values in runs.items()]
    shown = ", ".join(f"{r['batch_size']}: {r['fit_images_per_s']:.1f}" for r in rows)
    print(f"  fit vs batch size ({name}): {shown}", flush=True)
    return rows


def bench_precision(root: str, settings: Settings, repeats: int) -> dict:
    """``fit`` images/s of each precision variant, interleaved per repeat, as ratios against float32."""
    results = {"native_bfloat16": native_bfloat16(settings.device), "models": {}}
    for name in settings.precision_models:
        batch_size = MODEL_SPECS.get(name, {}).get("batch_size") or settings.batch_size
        if settings.device.startswith("cuda"):
            batch_size = settings.batch_size
        runs = {variant: [] for variant in PRECISION_VARIANTS}
        for _ in range(repeats):
            for variant, (precision, channels_last) in PRECISION_VARIANTS.items():
                variant_settings = replace(settings, precision=precision, channels_last=channels_last)
                runs[variant].append(fit_throughput(name, root, variant_settings, batch_size))
        float32 = median(runs["float32"])
        results["models"][name] = {
            "batch_size": batch_size,
            "images_per_s": {variant: median(values) for variant, values in runs.items()},
            "vs_float32": {variant: median(values) / float32 for variant, values in runs.items()},
            # per repeat, against the float32 run of the same repeat
            "vs_float32_pairs": {variant: [v / f for v, f in zip(values, runs["float32"])]
                                 for variant, values in runs.items()},
            "runs": runs,
        }
        shown = ", ".join(f"{variant} {ratio:.2f}x" for variant, ratio in results["models"][name]["vs_float32"].items())
        print(f"  precision {name} (batch {batch_size}, vs float32 {float32:.1f} img/s): {shown}", flush=True)
    return results


# ------------------------------------------------------------------ report
def machine() -> dict:
    model = platform.processor()
    try:
        lscpu = subprocess.run(["lscpu"], capture_output=True, text=True, check=True).stdout
        model = next(line.split(":", 1)[1].strip() for line in lscpu.splitlines() if line.startswith("Model name"))
    except (OSError, subprocess.CalledProcessError, StopIteration):
        pass
    info = {"cpu": model, "cpu_cores": os.cpu_count(), "torch_threads": torch.get_num_threads(),
            "torch": torch.__version__, "load_average_1min": os.getloadavg()[0]}
    if torch.cuda.is_available():
        info["gpu"] = torch.cuda.get_device_name()
    return info


def table(results: dict) -> str:
    """The ratios with their targets, one line each."""
    lines = [f"{'measure':<52} {'value':>10} {'target':>9}  met"]
    if "precision" in results:
        native = results["precision"]["native_bfloat16"] or "no: bfloat16 emulated"
        for name, row in results["precision"]["models"].items():
            for variant in ("channels_last", "bf16", "bf16_channels_last"):
                label = f"fit {variant} / float32, {name} (batch {row['batch_size']})"
                lines.append(f"{label:<52} {row['vs_float32'][variant]:>10.2f} {'-':>9}  -")
        lines.append(f"native bfloat16: {native}")
    if "fit" not in results:  # --only-precision
        return "\n".join(lines)

    def add(label: str, value: float | None, target: str, met: bool | None, fmt: str = "{:.2f}") -> None:
        shown = "n/a" if value is None else fmt.format(value)
        lines.append(f"{label:<52} {shown:>10} {target:>9}  {'-' if met is None else 'yes' if met else 'NO'}")

    for name, row in results["fit"].items():
        add(f"fit / bare loop, {name} (batch {row['batch_size']})", row["fit_vs_bare"], ">= 0.95",
            row["fit_vs_bare"] >= TARGETS["fit_vs_bare"])
    aug = results["augmentation"]
    add(f"batched / PIL per-sample augmentation ({aug['workers_or_threads']} thr/wkr)", aug["batched_vs_pil"], ">= 3",
        aug["batched_vs_pil"] >= TARGETS["batched_vs_pil"])
    add("  batched in the training process / PIL", aug["batched_main_vs_pil"], "-", None)
    add("  batched in workers (1 thread each) / PIL", aug["batched_in_workers_vs_pil"], "-", None)
    add("  CPU time per image on one core, PIL / batched", aug.get("batched_vs_pil_cpu_time"), "-", None)
    add("kornia / PIL per-sample augmentation", aug["kornia_vs_pil"], "-", None)
    add("tensor per-sample (workers) / PIL per-sample",
        aug["tensor_per_sample_images_per_s"] / aug["pil_per_sample_images_per_s"], "-", None)
    for probes in results["probes"]:
        name = probes["model"]
        add(f"landscape {probes['landscape']['grid']} / forward, {name}", probes["landscape"]["cost_vs_forward"],
            "<= 2", probes["landscape"]["cost_vs_forward"] <= TARGETS["landscape"])
        add(f"theory probe / forward, {name}", probes["theory"]["cost_vs_forward"], "-", None)
        add(f"linear eval {probes['linear']['epochs']} ep. / extraction, {name}", probes["linear"]["cost_vs_forward"],
            "<= 1.5", probes["linear"]["cost_vs_forward"] <= TARGETS["linear"])
        add(f"spectrum / training epoch, {name}", probes["spectrum"]["fraction_of_epoch"], "<= 2%",
            probes["spectrum"]["fraction_of_epoch"] <= TARGETS["spectrum"], "{:.2%}")
    if "resolution" in results:
        resolution = results["resolution"]
        fit = resolution["fit"]
        add(f"fit / bare loop at {fit['image_size']} px, {fit['model']} (batch {fit['batch_size']})",
            fit["fit_vs_bare"], "-", None)
        augmentation = resolution["augmentation"]
        for size, row in augmentation.items():
            add(f"batched augmentation img/s at {size} px{' (blur)' if row['blur'] else ''}", row["images_per_s"],
                "-", None, "{:.0f}")
    lines.append("")
    lines.append("images/s: " + ", ".join(
        f"{name} fit {row['fit_images_per_s']:.1f} / bare {row['bare_images_per_s']:.1f}"
        + (f" ({row['gpu_memory_gib']:.1f} GiB)" if row["gpu_memory_gib"] is not None else "")
        for name, row in results["fit"].items()))
    lines.append("augmentation images/s: " + ", ".join(
        f"{key.removesuffix('_images_per_s')} {value:.0f}" for key, value in aug.items()
        if key.endswith("_images_per_s") and value is not None))
    scaling = results["scaling"]
    lines.append("landscape vs grid: " + ", ".join(
        f"{r['grid']}: {r['cost_vs_forward']:.2f}x (1 backbone pass)" for r in scaling["landscape_vs_grid"]))
    lines.append("fit vs batch size: " + ", ".join(
        f"{r['batch_size']}: {r['fit_images_per_s']:.1f} img/s" for r in scaling["fit_vs_batch_size"]))
    lines.append("linear eval vs epochs: " + ", ".join(
        f"{r['epochs']}: {r['cost_vs_forward']:.2f}x" for r in scaling["linear_vs_epochs"]))
    return "\n".join(lines)


def bench_resolution(root: str, settings: Settings, repeats: int) -> dict:
    """Batched augmentation images/s (two views each) at every size of ``settings.resolution_sizes``,
    with the blur training adds above 64 px, and fit vs the bare loop of the first model at the largest."""
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


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="small batches, few steps, small probe sets")
    parser.add_argument("--gpu", action="store_true", help="CUDA, batch 512, 4 pinned workers")
    parser.add_argument("--json", type=Path, default=None, help="write the results here")
    parser.add_argument("--repeats", type=int, default=None, help="repeats per measurement (median)")
    parser.add_argument("--models", nargs="+", default=None,
                        help="subset of resnet18 resnet12 vit_tiny (with --only-precision: also resnet12_narrow)")
    parser.add_argument("--data-root", default="data", help="folder holding cifar-10-batches-py")
    parser.add_argument("--only-precision", action="store_true", help="only the precision section")
    parser.add_argument("--float32", action="store_true",
                        help="float32 everywhere (default: what run.precision auto picks for the device)")
    parser.add_argument("--default-malloc", action="store_true",
                        help="leave the host allocator as it is (python -m sslprobe tunes it; see sslprobe/runtime.py)")
    args = parser.parse_args(argv)
    allocator_tuned = False if args.default_malloc else tune_host_allocator()
    if args.gpu and not torch.cuda.is_available():
        parser.error("--gpu: no CUDA device")
    settings = GPU if args.gpu else QUICK if args.quick else FULL
    if args.quick and args.gpu:
        settings = replace(settings, steps=5, warmup_steps=2, augment_images=4096, linear_train_images=5000,
                           linear_test_images=1000, spectrum_images=2048)
    if args.models:  # with --only-precision: the models of the precision section
        models = tuple(args.models)
        settings = replace(settings, **({"precision_models": models} if args.only_precision else {"models": models}))
    # The numerics `run.precision: auto` picks for the device (bf16-mixed + channels-last where bfloat16
    # is native), as the quickstart and the CPU study train; the precision section compares all four.
    precision, channels_last, why = ("32-true", False, "--float32") if args.float32 else resolve_precision(
        settings.device)
    settings = replace(settings, precision=precision, channels_last=channels_last)
    numerics = f"{precision}{' + channels-last' if channels_last else ''} ({why})"
    repeats = args.repeats or (1 if args.quick else 3)
    mode = "gpu" if args.gpu else "quick" if args.quick else "full"
    note = {
        "quick": f"QUICK mode: batch {settings.batch_size}, {settings.steps} timed steps, small probe sets; "
                 "ratios are indicative, run without --quick for the reported numbers",
        "full": f"batch {settings.batch_size}, {settings.steps} timed steps after {settings.warmup_steps} warm-up",
        "gpu": f"GPU: batch {settings.batch_size}, device augmentation",
    }[mode] + f"; {numerics}"
    allocator = "tuned host allocator" if allocator_tuned else "default host allocator"
    print(f"sslprobe benchmark ({note}; {allocator}; medians of {repeats})", flush=True)
    started = time.perf_counter()
    results: dict = {"mode": mode, "note": note, "repeats": repeats, "settings": asdict(settings),
                     "machine": machine(), "host_allocator_tuned": allocator_tuned}
    if not args.only_precision:
        results["fit"] = bench_fit(args.data_root, settings, repeats)
        results["augmentation"] = bench_augmentation(args.data_root, settings, repeats)
        first = settings.models[0]
        results["probes"] = [bench_probes(first, args.data_root, settings,
                                          results["fit"][first]["fit_images_per_s"], repeats)]
        results["scaling"] = {
            "landscape_vs_grid": results["probes"][0]["scaling"]["landscape_vs_grid"],
            "fit_vs_batch_size": bench_batch_scaling(first, args.data_root, settings, repeats),
            "linear_vs_epochs": results["probes"][0]["scaling"]["linear_vs_epochs"],
            "model": first,
        }
        results["resolution"] = bench_resolution(args.data_root, settings, repeats)
    results["precision"] = bench_precision(args.data_root, settings, repeats)
    results["seconds"] = time.perf_counter() - started
    results["machine"]["load_average_1min_end"] = os.getloadavg()[0]
    print(table(results))
    print(f"({results['seconds']:.0f} s; load average {results['machine']['load_average_1min']:.1f} at start, "
          f"{results['machine']['load_average_1min_end']:.1f} at end on {results['machine']['cpu_cores']} cores)")
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(results, indent=2))
    return results


if __name__ == "__main__":
    sys.exit(0 if main() else 1)
