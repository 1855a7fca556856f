"""The machine a report was measured on, and the table of ratios against their targets."""

from __future__ import annotations

import os
import platform
import subprocess

import torch

from sslprobe.benchmark.settings import (
    TARGETS,
)


def machine() -> dict:
    """CPU model, cores, torch threads and version, load average, and the GPU name when there is one."""
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
        for size, row in resolution["augmentation"].items():
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
