"""The one-GPU check (``scripts/gpu_check.py``): what ``fit`` does on one CUDA device, as one JSON file.

Three measurements, each ``Trainer.fit`` images/s over the steps after a warm-up (CUDA
synchronised at every batch end), SimCLR on CIFAR-10:

- ``fit_vs_plain_loop``: ResNet-18 (CIFAR stem) at batch 512 in bf16-mixed against a plain PyTorch
  loop doing the same forward, backward and SGD step on the same loader and device augmentation.
- ``paper_preset_step``: the step time of the imbalance study's paper preset (ResNet-12
  64-160-320-640, batch 256, what ``run.precision: auto`` picks), and the training hours of one
  cell it implies (20,000 images, 200 epochs; probes not included).
- ``one_gpu_paths``: ResNet-18 at batch 512 in bf16-mixed with channels-last and ``torch.compile``
  on and off, and the views made on the device (batched) or per sample in loader workers.

``dry_run`` runs the same code on the CPU with a tiny model and a few steps (a test of the check,
not a measurement; compiled variants are skipped there).
"""

from __future__ import annotations

import json
import math
import platform
import tempfile
import time
from dataclasses import asdict, dataclass
from datetime import datetime, timezone
from pathlib import Path

import torch
from lightning.pytorch import Trainer

from sslprobe.benchmark.fit import BatchClock, bare_step, images_per_second
from sslprobe.benchmark.settings import synchronize
from sslprobe.data import ImageDataModule, load_cifar10
from sslprobe.methods import SimCLR

PAPER_CELL = {"images": 20_000, "epochs": 200}  # the paper preset's training subset and epochs


class NoCUDA(RuntimeError):
    """The check needs a CUDA device."""


@dataclass(frozen=True)
class Setting:
    """One measured configuration of ``fit``."""

    backbone: str = "resnet18"
    widths: tuple[int, ...] | None = None
    batch_size: int = 512
    precision: str = "bf16-mixed"
    channels_last: bool = False
    compile: bool = False
    augment_on: str = "device"


@dataclass(frozen=True)
class Budget:
    """Where and how long: device, warm-up and timed steps, loader workers, data."""

    device: str = "cuda"
    warmup: int = 10
    steps: int = 30
    workers: int = 8
    subset_size: int | None = None  # None: all 50,000 training images


def dry_run_budget() -> tuple[Budget, dict]:
    """CPU, 2 + 2 steps, a 4-8-8-8 ResNet-12 at batch 16: the check's code paths in seconds."""
    return Budget(device="cpu", warmup=2, steps=2, workers=0, subset_size=200), {
        "backbone": "resnet12", "widths": (4, 8, 8, 8), "batch_size": 16, "precision": "32-true"}


def make_model(setting: Setting) -> SimCLR:
    torch.manual_seed(0)
    kwargs = {"widths": list(setting.widths)} if setting.widths else {}
    return SimCLR(backbone=setting.backbone, backbone_kwargs=kwargs, channels_last=setting.channels_last,
                  compile=setting.compile)


def make_datamodule(root: str, setting: Setting, budget: Budget) -> ImageDataModule:
    """The datamodule of one measurement; CIFAR-10 is read from disk once per process."""
    on_gpu = budget.device.startswith("cuda")
    subset = {} if budget.subset_size is None else {"imbalance": "none", "subset_size": budget.subset_size}
    datamodule = ImageDataModule(root=root, batch_size=setting.batch_size, num_workers=budget.workers,
                                   augment_on=setting.augment_on, pin_memory=on_gpu,
                                   persistent_workers=on_gpu and budget.workers > 0, **subset)
    if root not in _LOADED:
        _LOADED[root] = load_cifar10(root)
    datamodule.cifar = _LOADED[root]
    return datamodule


_LOADED: dict = {}


def fit_throughput(root: str, setting: Setting, budget: Budget) -> float:
    """images/s of ``Trainer.fit`` after the warm-up."""
    clock = BatchClock(budget.device)
    with tempfile.TemporaryDirectory() as run_dir:
        trainer = Trainer(accelerator="gpu" if budget.device.startswith("cuda") else "cpu", devices=1,
                          precision=setting.precision, max_steps=budget.warmup + budget.steps, limit_val_batches=0,
                          num_sanity_val_steps=0, logger=False, enable_checkpointing=False,
                          enable_progress_bar=False, enable_model_summary=False, callbacks=[clock],
                          default_root_dir=run_dir)
        trainer.fit(make_model(setting), datamodule=make_datamodule(root, setting, budget))
    return images_per_second(clock.times, budget.warmup, setting.batch_size)


def plain_loop_throughput(root: str, setting: Setting, budget: Budget) -> float:
    """images/s of a plain PyTorch loop: same loader, device augmentation, model, loss and SGD step."""
    device = torch.device(budget.device)
    datamodule = make_datamodule(root, setting, budget)
    datamodule.setup("fit")
    model = make_model(setting)
    model.setup("fit")
    model.to(device).train()
    hp = model.hparams
    optimizer = torch.optim.SGD(model.parameters(), lr=hp.lr, momentum=hp.momentum, weight_decay=hp.weight_decay)
    autocast = torch.autocast(device.type, dtype=torch.bfloat16, enabled=setting.precision.startswith("bf16"))
    times, total = [], budget.warmup + budget.steps
    while len(times) < total:
        for batch in datamodule.train_dataloader():
            if len(times) == total:
                break
            bare_step(model, datamodule, optimizer, autocast, batch, device)
            synchronize(budget.device)
            times.append(time.perf_counter())
    return images_per_second(times, budget.warmup, setting.batch_size)


def paper_setting(device: str) -> Setting:
    """The paper preset's model and batch, in the precision ``run.precision: auto`` picks for ``device``."""
    from sslprobe.runtime import resolve_precision
    from sslprobe.studies.imbalance.presets import PRESETS

    paper = PRESETS["paper"]
    precision, channels_last, _ = resolve_precision("gpu" if device.startswith("cuda") else "cpu")
    return Setting(backbone="resnet12", widths=tuple(paper["widths"]), batch_size=paper["batch_size"],
                   precision=precision, channels_last=channels_last)


def path_settings(base: Setting, dry_run: bool) -> list[Setting]:
    """The one-GPU paths: layout x compile with device views, and per-sample views in workers."""
    compiled = (False,) if dry_run else (False, True)
    settings = [Setting(**{**asdict(base), "channels_last": layout, "compile": compile})
                for compile in compiled for layout in (False, True)]
    settings.append(Setting(**{**asdict(base), "channels_last": True, "augment_on": "workers"}))
    return settings


def gpu_check(root: str, budget: Budget | None = None, dry_run: bool = False, log=print) -> dict:
    """Run the three measurements; the report as a JSON-ready dict.

    Raises:
        NoCUDA: without ``dry_run``, when no CUDA device is visible.
    """
    if dry_run:
        budget, model = dry_run_budget()
    else:
        if not torch.cuda.is_available():
            raise NoCUDA("no CUDA device: this check measures one GPU (--dry-run runs its code on the CPU)")
        budget, model = budget or Budget(), {}
    base = Setting(**model)
    started = time.perf_counter()
    fit = fit_throughput(root, base, budget)
    log(f"fit: {fit:.0f} images/s")
    plain = plain_loop_throughput(root, base, budget)
    log(f"plain loop: {plain:.0f} images/s")
    paper = paper_setting(budget.device) if not dry_run else Setting(**{**model, "batch_size": 32})
    paper_rate = fit_throughput(root, paper, budget)
    step_ms = 1000 * paper.batch_size / paper_rate
    steps_per_cell = PAPER_CELL["epochs"] * math.ceil(PAPER_CELL["images"] / paper.batch_size)
    log(f"paper preset: {step_ms:.1f} ms per step")
    paths = []
    for setting in path_settings(base, dry_run):
        rate = fit_throughput(root, setting, budget)
        paths.append({"channels_last": setting.channels_last, "compile": setting.compile,
                      "augment_on": setting.augment_on, "images_per_s": rate})
        log(f"channels_last={setting.channels_last} compile={setting.compile} augment_on={setting.augment_on}: "
            f"{rate:.0f} images/s")
    return {
        "mode": "cpu-dry-run" if dry_run else "gpu",
        "device": torch.cuda.get_device_name() if budget.device.startswith("cuda") else platform.processor() or "cpu",
        "torch": torch.__version__,
        "date": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "budget": asdict(budget),
        "fit_vs_plain_loop": {"setting": asdict(base), "fit_images_per_s": fit, "plain_loop_images_per_s": plain,
                              "fit_over_plain_loop": fit / plain},
        "paper_preset_step": {"setting": asdict(paper), "step_ms": step_ms, "images_per_s": paper_rate,
                              "steps_per_cell": steps_per_cell,
                              "training_hours_per_cell": steps_per_cell * step_ms / 3.6e6},
        "one_gpu_paths": {"setting": asdict(base), "paths": paths},
        "seconds": time.perf_counter() - started,
    }


def write_report(report: dict, path: Path) -> None:
    """The report as indented JSON (the folder is created)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(report, indent=2) + "\n")
