"""One benchmark run: its settings from the command-line switches, every section, the report."""

from __future__ import annotations

import os
import time
from dataclasses import asdict, replace

from sslprobe.benchmark.augmentation import bench_augmentation
from sslprobe.benchmark.fit import bench_batch_scaling, bench_fit, bench_precision
from sslprobe.benchmark.probes import bench_probes
from sslprobe.benchmark.report import machine, table
from sslprobe.benchmark.resolution import bench_resolution
from sslprobe.benchmark.settings import FULL, GPU, QUICK, Settings
from sslprobe.runtime import resolve_precision


def configure(*, quick: bool = False, gpu: bool = False, models: list[str] | None = None,
              only_precision: bool = False, float32: bool = False) -> tuple[Settings, str, str]:
    """The settings of one benchmark run, its mode and the numerics it trains with.

    Args:
        quick: small batches, few steps, small probe sets (`QUICK`; with ``gpu``, a shorter `GPU`).
        gpu: one CUDA device (`GPU`).
        models: the models of the sections (with ``only_precision``: of the precision section).
        only_precision: whether only the precision section runs (``models`` then name its models).
        float32: float32 everywhere instead of what ``run.precision: auto`` picks for the device.

    Returns:
        ``(settings, mode, numerics)``: mode is ``"gpu"``, ``"quick"`` or ``"full"``; numerics says the
        precision and memory layout and why they were chosen.
    """
    settings = GPU if gpu else QUICK if quick else FULL
    if quick and gpu:
        settings = replace(settings, steps=5, warmup_steps=2, augment_images=4096, linear_train_images=5000,
                           linear_test_images=1000, spectrum_images=2048)
    if models:  # with --only-precision: the models of the precision section
        models = tuple(models)
        settings = replace(settings, **({"precision_models": models} if only_precision else {"models": models}))
    # The numerics `run.precision: auto` picks for the device (bf16-mixed + channels-last where bfloat16
    # is native), as the quickstart and the CPU study train; the precision section compares all four.
    precision, channels_last, why = ("32-true", False, "--float32") if float32 else resolve_precision(
        settings.device)
    settings = replace(settings, precision=precision, channels_last=channels_last)
    numerics = f"{precision}{' + channels-last' if channels_last else ''} ({why})"
    mode = "gpu" if gpu else "quick" if quick else "full"
    return settings, mode, numerics


def run_benchmark(root: str, settings: Settings, *, mode: str, numerics: str, repeats: int,
                  only_precision: bool = False, allocator_tuned: bool = False) -> dict:
    """Run every section (or only the precision section), print progress and the table; the report.

    Args:
        root: the folder holding ``cifar-10-batches-py``.
        settings, mode, numerics: from `configure`.
        repeats: repeats per measurement (every number is their median).
        only_precision: run the precision section alone.
        allocator_tuned: whether the host allocator was tuned (recorded in the report).

    Returns:
        The report written as JSON: mode, note, settings, machine, one entry per section, seconds.
    """
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
    if not only_precision:
        results["fit"] = bench_fit(root, settings, repeats)
        results["augmentation"] = bench_augmentation(root, settings, repeats)
        first = settings.models[0]
        results["probes"] = [bench_probes(first, root, settings,
                                          results["fit"][first]["fit_images_per_s"], repeats)]
        results["scaling"] = {
            "landscape_vs_grid": results["probes"][0]["scaling"]["landscape_vs_grid"],
            "fit_vs_batch_size": bench_batch_scaling(first, root, settings, repeats),
            "linear_vs_epochs": results["probes"][0]["scaling"]["linear_vs_epochs"],
            "model": first,
        }
        results["resolution"] = bench_resolution(root, settings, repeats)
    results["precision"] = bench_precision(root, settings, repeats)
    results["seconds"] = time.perf_counter() - started
    results["machine"]["load_average_1min_end"] = os.getloadavg()[0]
    print(table(results))
    print(f"({results['seconds']:.0f} s; load average {results['machine']['load_average_1min']:.1f} at start, "
          f"{results['machine']['load_average_1min_end']:.1f} at end on {results['machine']['cpu_cores']} cores)")
    return results


__all__ = ["configure", "run_benchmark"]
