"""``fit`` throughput against a bare PyTorch loop, against the batch size, and per precision variant."""

from __future__ import annotations

import tempfile
import time
from dataclasses import replace

import torch
from lightning.pytorch import Callback, Trainer

from sslprobe.benchmark.settings import (
    MODEL_SPECS,
    PRECISION_VARIANTS,
    Settings,
    median,
    synchronize,
)
from sslprobe.data import ImageDataModule
from sslprobe.methods import SimCLR
from sslprobe.runtime import native_bfloat16


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
    """SimCLR with backbone ``name`` (or a `MODEL_SPECS` entry), seeded with 0, in the settings' memory layout."""
    torch.manual_seed(0)
    options = MODEL_SPECS[name]["model"] if name in MODEL_SPECS else {"backbone": name}
    return SimCLR(**options, channels_last=settings.channels_last, image_size=settings.image_size)


LOADED: dict = {}  # (root, image size) -> the data set, read (and resized) once per benchmark


def make_datamodule(root: str, settings: Settings, batch_size: int, augment_on: str = "device") -> ImageDataModule:
    """CIFAR-10 loader of the benchmark (at ``settings.image_size``): pinned, persistent workers on a GPU,
    none on the CPU; the images are read once per root and size."""
    on_gpu = settings.device.startswith("cuda")
    module = ImageDataModule(
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


def bare_step(model, datamodule, optimizer, autocast, batch, device: torch.device) -> None:
    """One step of a plain loop: the batch to the device, its two views, forward, backward, SGD step."""
    batch = [tensor.to(device, non_blocking=True) for tensor in batch]
    view1, view2, _ = datamodule.on_after_batch_transfer(batch, 0)
    with autocast:
        loss = model.loss_fn(model(view1), model(view2))
    optimizer.zero_grad(set_to_none=True)
    loss.backward()
    optimizer.step()


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
        bare_step(model, datamodule, optimizer, autocast, batch, device)
        scheduler.step()
        synchronize(settings.device)
        times.append(time.perf_counter())
    return images_per_second(times, settings.warmup_steps, batch_size)


def peak_gpu_memory(name: str, root: str, settings: Settings) -> float | None:
    """Peak GiB allocated by a short ``fit`` on the GPU; None on the CPU."""
    if not settings.device.startswith("cuda"):
        return None
    torch.cuda.reset_peak_memory_stats()
    fit_throughput(name, root, replace(settings, warmup_steps=1, steps=2), settings.batch_size)
    return torch.cuda.max_memory_allocated() / 2**30


def bench_fit(root: str, settings: Settings, repeats: int) -> dict:
    """Per model: ``fit`` and bare-loop images/s (interleaved repeats), their ratio and the GPU memory."""
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
