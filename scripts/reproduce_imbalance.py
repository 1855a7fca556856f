#!/usr/bin/env python3
"""Reproduce the paper's imbalance-robustness study (Fig. 4, Appendix C) with one command.

Grid: method (SimCLR, SCL, Barlow Twins, Supervised) x imbalance (the paper's none / medium /
high counts, optionally Dirichlet concentrations) x projector (MLP, none) x seeds. Every cell is
an ordinary ``python -m sslprobe fit`` run composed from the configs a user would write, with
linear evaluation and the spectrum probe on; the supervised baseline has no projector and is
drawn in both panels. Finished cells are skipped and interrupted ones resumed, so an interrupted
study continues where it stopped.

    python scripts/reproduce_imbalance.py --preset cpu --out results/imbalance_cpu
    python scripts/reproduce_imbalance.py --preset paper --out results/imbalance --dry-run
    python scripts/reproduce_imbalance.py --preset cpu --out results/imbalance_cpu --aggregate-only

    python scripts/reproduce_imbalance.py --preset paper --out results/imbalance --cells-per-device 4

Outputs: DIR/results.csv (one row per run, plus a random-init row per imbalance and seed),
DIR/summary.md (mean ± sd and 95 % t-intervals over seeds, the robustness Δ = (A_none −
A_imbalanced) / A_none of Liu et al. 2021 with its interval, the test-set sampling error,
paired differences at equal seed and imbalance, and the reading they allow;
`sslprobe.studies.report`), DIR/figure4.png (random init dashed).
"""

from __future__ import annotations

import argparse
import contextlib
import csv
import json
import os
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
METHODS = {
    "simclr": "SimCLR",
    "spectral": "SCL",
    "barlow_twins": "Barlow Twins",
    "supervised": "Supervised",
}
IMBALANCES = ("none", "medium", "high")
PROJECTORS = ("mlp", "none")
STUDY = "imbalance"

# The CPU preset (also the base of cpu_2k, the earlier one).
CPU_PRESET = {
    "description": "narrow ResNet-12 (16-32-64-128), 8,000 images keeping the presets' class "
    "proportions, 8 epochs, batch 128, 3 seeds, linear eval on 5,000 balanced training and 2,000 test "
    "images, kNN monitor on 2,000 + 1,000 images",
    "seeds": 3,
    "epochs": 8,
    "widths": [16, 32, 64, 128],
    "batch_size": 128,
    "subset_size": 8000,
    "num_workers": 2,
    "linear_epochs": 100,
    "linear_train_size": 5000,
    "linear_test_size": 2000,
    "knn_train_size": 2000,
    "knn_test_size": 1000,
    "accelerator": "cpu",
    "precision": "auto",  # bf16-mixed + channels-last where the CPU runs bfloat16 natively
}

# Per preset: settings composed on top of configs/<method>_resnet12_cifar10.yaml.
PRESETS: dict[str, dict] = {
    "paper": {
        "description": "ResNet-12 (64-160-320-640), 20,000 images, 200 epochs, crop scale (0.5, 1), "
        "SGD cosine 0.03 -> 0.001, linear eval (SGD, LR 0.1 -> 1e-4, 100 epochs) on all 50,000 images",
        "seeds": 3,
        "epochs": 200,
        "widths": [64, 160, 320, 640],
        "batch_size": 256,
        "subset_size": None,
        "num_workers": 8,
        "linear_epochs": 100,
        "linear_train_size": None,
        "accelerator": "auto",
    },
    "cpu": CPU_PRESET,
    "cpu_2k": {
        **CPU_PRESET,
        "description": "the previous CPU preset (README's 1-seed table): narrow ResNet-12, 2,000 images, "
        "8 epochs, batch 128, 1 seed, linear eval with the paper's LR 10 -> 0.01 on 5,000 + 2,000 images",
        "linear_protocol": "paper",
        "seeds": 1,
        "subset_size": 2000,
        "precision": None,  # float32, as the table it reproduces
    },
    "smoke": {
        "description": "tiny ResNet-12 (4-8-8-8), 200 images, 1 epoch, linear eval on 1,000 images; "
        "cells run in this process (same CLI, no interpreter start-up) to finish in about 2 minutes",
        "in_process": True,
        "seeds": 1,
        "epochs": 1,
        "widths": [4, 8, 8, 8],
        "batch_size": 50,
        "subset_size": 200,
        "num_workers": 0,
        "linear_epochs": 5,
        "linear_train_size": 1000,
        "linear_test_size": 500,
        "knn_train_size": 500,
        "knn_test_size": 200,
        "knn_k": 20,
        "accelerator": "cpu",
    },
}
CSV_FIELDS = ["method", "imbalance", "projector", "seed", "top1", "knn_top1", "balanced",
              "rare_mean", "frequent_mean", "effective_rank", "run_dir", "num_test", "random_init_top1",
              "random_init_knn_top1", "knn_monitor_initial", "knn_monitor_final"]
FLOAT_FIELDS = ("top1", "knn_top1", "balanced", "rare_mean", "frequent_mean", "effective_rank", "num_test",
                "random_init_top1", "random_init_knn_top1", "knn_monitor_initial", "knn_monitor_final")
RANDOM_INIT = "random_init"  # method of the random-init baseline rows


class StudyError(ValueError):
    """A bad argument; reported as one line."""


@dataclass(frozen=True)
class Cell:
    method: str
    imbalance: str
    projector: str
    seed: int

    @property
    def name(self) -> str:
        return f"{self.method}_{self.imbalance}_{self.projector}_seed{self.seed}"


def grid(methods: list[str], imbalances: list[str], projectors: list[str], seeds: int) -> list[Cell]:
    cells = []
    for method in methods:
        for imbalance in imbalances:
            for projector in (["none"] if method == "supervised" else projectors):
                cells.extend(Cell(method, imbalance, projector, seed) for seed in range(seeds))
    if not cells:
        raise StudyError("the grid is empty: give at least one method, imbalance, projector and seed")
    return cells


def preset_config(preset: dict, data_root: str) -> dict:
    """The preset's overrides as a config fragment (written to DIR/preset.json)."""
    return {
        "run": {"precision": preset.get("precision")},
        "trainer": {"max_epochs": preset["epochs"], "accelerator": preset["accelerator"], "devices": 1,
                    "log_every_n_steps": 10, "limit_val_batches": 0, "enable_progress_bar": False,
                    "callbacks": [{"class_path": "lightning.pytorch.callbacks.LearningRateMonitor",
                                   "init_args": {"logging_interval": "step"}}]},
        "model": {"init_args": {"backbone": "resnet12", "backbone_kwargs": {"widths": preset["widths"]},
                                "hidden_dim": 512, "lr": 0.03, "min_lr": 0.001}},
        "data": {"root": data_root, "batch_size": preset["batch_size"], "num_workers": preset["num_workers"],
                 "crop_scale": [0.5, 1.0], "subset_size": preset["subset_size"]},
        "probes": {
            "linear_eval": {"epochs": preset["linear_epochs"], "train_size": preset["linear_train_size"],
                            "test_size": preset.get("linear_test_size"), "protocol": preset.get("linear_protocol")},
            "spectrum": {"every_n_epochs": 1},
            "knn_monitor": {"every_n_epochs": 1, "train_size": preset.get("knn_train_size", 5000),
                            "test_size": preset.get("knn_test_size", 1000), "k": preset.get("knn_k", 200)},
        },
    }


def cell_config(cell: Cell, out: Path, study: str) -> dict:
    """Per-cell overrides: data, projector, seed, run directory and W&B grouping/tags."""
    tags = [f"method:{cell.method}", f"imbalance:{cell.imbalance}", f"projector:{cell.projector}",
            f"seed:{cell.seed}"]
    concentration = None
    imbalance = cell.imbalance
    if imbalance.startswith("dirichlet"):
        imbalance, concentration = "dirichlet", float(cell.imbalance.split(":", 1)[1])
    data = {"imbalance": imbalance, "subset_seed": cell.seed, "seed": cell.seed}
    if concentration is not None:
        data["concentration"] = concentration
    model = {"init_args": {}}
    if cell.method != "supervised":
        model["init_args"]["projector"] = None if cell.projector == "none" else "mlp"
    return {
        "seed_everything": cell.seed,
        "trainer": {
            "default_root_dir": str(out / "runs"),
            "logger": [
                {"class_path": "lightning.pytorch.loggers.WandbLogger",
                 "init_args": {"project": "sslprobe", "group": study, "tags": tags}},
                {"class_path": "lightning.pytorch.loggers.CSVLogger", "init_args": {"save_dir": str(out / "runs")}},
            ],
        },
        "model": model,
        "data": data,
        "run": {"experiment": study, "version": cell.name},
    }


def fit_command(cell: Cell, out: Path) -> list[str]:
    return [
        sys.executable, "-m", "sslprobe", "fit",
        "--config", str(REPO / "configs" / f"{cell.method}_resnet12_cifar10.yaml"),
        "--config", str(REPO / "callbacks" / "linear_eval.yaml"),
        "--config", str(REPO / "callbacks" / "spectrum.yaml"),
        "--config", str(REPO / "callbacks" / "knn_monitor.yaml"),
        "--config", str(out / "preset.yaml"),
        "--config", str(out / "cells" / f"{cell.name}.yaml"),
    ]


def run_dir(cell: Cell, out: Path, study: str) -> Path:
    return out / "runs" / study / cell.name


def result_path(cell: Cell, out: Path, study: str) -> Path:
    return run_dir(cell, out, study) / "probes" / "linear_eval.json"


def prepare(out: Path, preset_name: str, data_root: str) -> None:
    try:
        (out / "cells").mkdir(parents=True, exist_ok=True)
        probe = out / ".writable"
        probe.write_text("")
        probe.unlink()
    except OSError as error:
        raise StudyError(f"--out {out} is not writable: {error.strerror or error}") from None
    # JSON is valid YAML: the fragment composes after the method config and the probe fragments.
    (out / "preset.yaml").write_text(json.dumps(preset_config(PRESETS[preset_name], data_root), indent=2))


def run_cell(cell: Cell, out: Path, study: str, in_process: bool = False, env: dict | None = None) -> float:
    """Run (or resume) one cell; returns its wall time in seconds.

    ``in_process`` calls the same CLI entry point (`sslprobe.cli.main`) in this interpreter
    instead of a new ``python -m sslprobe`` process, saving its start-up (the smoke preset);
    ``env`` adds environment variables to that process (its device, its threads).
    """
    directory = run_dir(cell, out, study)
    (out / "cells" / f"{cell.name}.yaml").write_text(json.dumps(cell_config(cell, out, study), indent=2))
    command = fit_command(cell, out)
    if (directory / "checkpoints" / "last.ckpt").is_file():
        command += ["--ckpt_path", "last"]
    elif directory.exists():
        # Died before its first checkpoint: keep it aside, start the cell afresh.
        aside = out / "failed" / f"{cell.name}-{int(time.time())}"
        aside.parent.mkdir(exist_ok=True)
        shutil.move(str(directory), aside)
    start = time.time()
    log = out / "logs" / f"{cell.name}.log"
    run_sslprobe(command[3:], log, in_process, env)
    if not result_path(cell, out, study).is_file():
        # Training had finished but the final probes had not: measure the last checkpoint.
        checkpoint = directory / "checkpoints" / "last.ckpt"
        run_sslprobe(["probe", "--ckpt_path", str(checkpoint), "--what", "spectrum,linear"], log, in_process, env)
    if not result_path(cell, out, study).is_file():
        raise RuntimeError(f"cell {cell.name} wrote no linear evaluation; see {log}")
    with open(out / "logs" / "cells.jsonl", "a") as handle:  # when each cell ran, for cost estimates
        handle.write(json.dumps({"cell": cell.name, "start": start, "end": time.time(),
                                 "device": (env or {}).get("CUDA_VISIBLE_DEVICES", "cpu")}) + "\n")
    return time.time() - start


def run_sslprobe(args: list[str], log: Path, in_process: bool, env: dict | None = None) -> None:
    """``python -m sslprobe ARGS`` (or its entry point in this interpreter), output appended to ``log``."""
    os.environ.setdefault("WANDB_MODE", "offline")
    with open(log, "a") as handle:
        if in_process:
            from sslprobe.cli import main as sslprobe_main

            with contextlib.redirect_stdout(handle), contextlib.redirect_stderr(handle):
                try:
                    sslprobe_main(args)
                    code = 0
                except SystemExit as stop:
                    code = stop.code if isinstance(stop.code, int) else 1
        else:
            code = subprocess.run([sys.executable, "-m", "sslprobe", *args], cwd=REPO, stdout=handle,
                                  stderr=subprocess.STDOUT, env={**os.environ, **(env or {})}).returncode
    if code != 0:
        raise RuntimeError(f"python -m sslprobe {args[0]} failed (exit {code}); see {log}")


def device_slots(accelerator: str, cells_per_device: int) -> list[dict]:
    """The environment of each concurrent cell: K per GPU, or K sharing the CPU's cores.

    On GPUs slot i sees only GPU ``i mod G`` (``CUDA_VISIBLE_DEVICES``); on a CPU each of the
    K processes gets ``cores // K`` threads, so K cells do not oversubscribe the cores.
    """
    import torch

    gpus = torch.cuda.device_count() if accelerator in ("auto", "gpu", "cuda") else 0
    if gpus:
        return [{"CUDA_VISIBLE_DEVICES": str(slot % gpus)} for slot in range(gpus * cells_per_device)]
    threads = str(max(1, (os.cpu_count() or 1) // cells_per_device))
    return [{"OMP_NUM_THREADS": threads, "MKL_NUM_THREADS": threads} for _ in range(cells_per_device)]


def run_cells(todo: list[Cell], out: Path, study: str, preset: dict, cells_per_device: int) -> None:
    """Run the cells one after another, or K per device at once in separate processes."""
    if cells_per_device == 1:
        for cell in todo:
            seconds = run_cell(cell, out, study, preset.get("in_process", False))
            print(f"  {cell.name}: {seconds:.0f} s", flush=True)
        return
    import queue
    from concurrent.futures import ThreadPoolExecutor

    environments = device_slots(preset["accelerator"], cells_per_device)
    free: queue.Queue = queue.Queue()
    for env in environments:
        free.put(env)
    failed: list[BaseException] = []

    def work(cell: Cell) -> None:
        if failed:  # stop starting cells after a failure; the running ones finish
            return
        env = free.get()  # one is always free: there are as many threads as slots
        try:
            seconds = run_cell(cell, out, study, in_process=False, env=env)
            print(f"  {cell.name}: {seconds:.0f} s ({', '.join(f'{k}={v}' for k, v in env.items())})", flush=True)
        except BaseException as error:
            failed.append(error)
        finally:
            free.put(env)

    with ThreadPoolExecutor(max_workers=len(environments)) as pool:
        list(pool.map(work, todo))
    if failed:
        raise failed[0]


# --------------------------------------------------------------------------- aggregation
def collect(cells: list[Cell], out: Path, study: str) -> list[dict]:
    """One row per finished run, plus one random-init row per (imbalance, seed).

    The random-init row holds the protocol's result on the untrained network of the same
    architecture and seed (``random_init_*`` of the cells' ``linear_eval.json``); it saw no
    training data, so it is the same at every imbalance, but it is written per imbalance to be
    paired with the runs at equal seed and imbalance.
    """
    import numpy as np

    rows, baselines = [], {}
    for cell in cells:
        path = result_path(cell, out, study)
        if not path.is_file():
            continue
        result = json.loads(path.read_text())
        spectrum = path.parent / "spectrum.npz"
        effective_rank = float("nan")
        if spectrum.is_file():
            with np.load(spectrum) as arrays:
                effective_rank = float(arrays["embeddings_effective_rank"][-1])
        monitor = path.parent / "knn_monitor.json"
        history = json.loads(monitor.read_text())["history"] if monitor.is_file() else []
        rows.append({
            "method": cell.method, "imbalance": cell.imbalance, "projector": cell.projector, "seed": cell.seed,
            **{key: result.get(key) for key in ("top1", "knn_top1", "balanced", "rare_mean", "frequent_mean")},
            "effective_rank": effective_rank, "run_dir": str(path.parent.parent.relative_to(out)),
            "num_test": result.get("num_test"), "random_init_top1": result.get("random_init_top1"),
            "random_init_knn_top1": result.get("random_init_knn_top1"),
            "knn_monitor_initial": history[0]["top1"] if history and history[0]["epochs_trained"] == 0 else None,
            "knn_monitor_final": history[-1]["top1"] if history else None,
        })
        if result.get("random_init_top1") is not None:
            baselines.setdefault((cell.imbalance, cell.seed), {
                "method": RANDOM_INIT, "imbalance": cell.imbalance, "projector": "none", "seed": cell.seed,
                "top1": result["random_init_top1"], "knn_top1": result.get("random_init_knn_top1"),
                **{key: result.get(f"random_init_{key}") for key in ("balanced", "rare_mean", "frequent_mean")},
                "run_dir": result.get("random_init_cache", ""), "num_test": result.get("num_test"),
            })
    return rows + [baselines[key] for key in sorted(baselines)]


def write_csv(rows: list[dict], path: Path) -> None:
    with open(path, "w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=CSV_FIELDS, restval="")
        writer.writeheader()
        writer.writerows(rows)


def read_csv(path: Path) -> list[dict]:
    with open(path) as handle:
        rows = list(csv.DictReader(handle))
    for row in rows:
        row["seed"] = int(row["seed"])
        for key in FLOAT_FIELDS:
            row[key] = float(row[key]) if row.get(key) not in (None, "", "None") else float("nan")
    return rows


def summary_markdown(rows: list[dict]) -> str:
    from sslprobe.studies.report import summary_markdown as study_summary

    return study_summary(rows, METHODS)


def figure(rows: list[dict], path: Path) -> None:
    """Top-1 per imbalance with 95 % t-interval error bars; the random-init baseline dashed."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from sslprobe.studies.report import ordered_imbalances, per_seed
    from sslprobe.studies.statistics import summarize_seeds

    imbalances = ordered_imbalances(rows)
    fig, axes = plt.subplots(1, 2, figsize=(10, 4.4), sharey=True, layout="constrained")
    for ax, projector in zip(axes, ("mlp", "none")):
        for method in [*METHODS, RANDOM_INIT]:
            cell_projector = "none" if method in ("supervised", RANDOM_INIT) else projector
            summaries = [summarize_seeds(per_seed(rows, method, cell_projector, i, "top1").values())
                         for i in imbalances]
            xs = [x for x, summary in enumerate(summaries) if summary is not None]
            if not xs:
                continue
            means = [100 * summaries[x].mean for x in xs]
            errors = [100 * (summaries[x].half_width or 0.0) for x in xs]
            if method == RANDOM_INIT:
                ax.errorbar(xs, means, yerr=errors, color="0.4", linestyle="--", capsize=4, label="random init")
            else:
                ax.errorbar(xs, means, yerr=errors, marker="o", capsize=4, label=METHODS[method],
                            linestyle=":" if method == "supervised" else "-")
        ax.set_xticks(range(len(imbalances)), imbalances)
        ax.set_xlim(-0.3, len(imbalances) - 0.7)
        ax.set_title("with MLP projector" if projector == "mlp" else "without projector")
        ax.grid(alpha=0.3)
    axes[0].set_ylabel("linear-evaluation top-1 accuracy (%)")
    axes[1].legend()
    fig.supxlabel("class imbalance of the training subset (the paper's per-class proportions)")
    seeds = len({row["seed"] for row in rows})
    bars = "95 % t-interval over seeds" if seeds > 1 else "one seed: no interval"
    fig.suptitle(f"Robustness to class imbalance (paper Fig. 4); {seeds} seed(s), error bars: {bars}")
    fig.savefig(path, dpi=120)
    plt.close(fig)


def aggregate(out: Path, rows: list[dict] | None = None) -> None:
    csv_path = out / "results.csv"
    if rows is None:
        if not csv_path.is_file():
            raise StudyError(f"--aggregate-only: {csv_path} does not exist")
        rows = read_csv(csv_path)
    else:
        write_csv(rows, csv_path)
    if not rows:
        raise StudyError(f"no finished runs to aggregate in {out}")
    (out / "summary.md").write_text(summary_markdown(rows))
    figure(rows, out / "figure4.png")


# --------------------------------------------------------------------------- sweep file
def sweep_yaml(preset_name: str, methods, imbalances, projectors, seeds: int, out: Path) -> str:
    lines = [
        f"# W&B sweep of the imbalance study, preset {preset_name!r}: run with `wandb sweep` + `wandb agent`.",
        "program: scripts/reproduce_imbalance.py",
        "method: grid",
        "command: [${interpreter}, ${program}, ${args}]",
        "parameters:",
        f"  preset: {{value: {preset_name}}}",
        f"  out: {{value: {out}}}",
        f"  methods: {{values: {list(methods)}}}",
        f"  imbalances: {{values: {list(imbalances)}}}",
        f"  projectors: {{values: {list(projectors)}}}",
        f"  seed: {{values: {list(range(seeds))}}}",
    ]
    return "\n".join(lines) + "\n"


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--preset", choices=sorted(PRESETS), default="cpu")
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--seeds", type=int, default=None, help="seeds per cell (preset default)")
    parser.add_argument("--seed", type=int, default=None, help="run only this seed (sweep agents)")
    parser.add_argument("--methods", nargs="+", default=list(METHODS))
    parser.add_argument("--imbalances", nargs="+", default=list(IMBALANCES),
                        help="none medium high, and dirichlet:<concentration>")
    parser.add_argument("--projectors", nargs="+", default=list(PROJECTORS))
    parser.add_argument("--data-root", default=str(REPO / "data"))
    parser.add_argument("--dry-run", action="store_true", help="print the commands, run nothing")
    parser.add_argument("--emit-sweep", type=Path, default=None, help="write a W&B sweep file and exit")
    parser.add_argument("--aggregate-only", action="store_true", help="redraw table and figure from results.csv")
    parser.add_argument("--cells-per-device", type=int, default=1, metavar="K",
                        help="run K cells at once per device (per GPU, or sharing the CPU), each its own process")
    return parser.parse_args(argv)


def validate(args: argparse.Namespace) -> None:
    unknown = [m for m in args.methods if m not in METHODS]
    if unknown:
        raise StudyError(f"unknown method(s) {unknown}; valid: {', '.join(METHODS)}")
    for imbalance in args.imbalances:
        if imbalance in IMBALANCES:
            continue
        kind, _, value = imbalance.partition(":")
        try:
            ok = kind == "dirichlet" and float(value) > 0
        except ValueError:
            ok = False
        if not ok:
            raise StudyError(
                f"unknown imbalance {imbalance!r}; valid: none, medium, high, dirichlet:<concentration > 0>"
            )
    unknown = [p for p in args.projectors if p not in PROJECTORS]
    if unknown:
        raise StudyError(f"unknown projector(s) {unknown}; valid: mlp, none")
    if args.cells_per_device < 1:
        raise StudyError(f"--cells-per-device must be >= 1, got {args.cells_per_device}")
    if args.seeds is not None and args.seeds < 0:
        raise StudyError(f"--seeds must be >= 0, got {args.seeds}")


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    try:
        validate(args)
        out = args.out.resolve()
        seeds = PRESETS[args.preset]["seeds"] if args.seeds is None else args.seeds
        if args.emit_sweep:
            args.emit_sweep.parent.mkdir(parents=True, exist_ok=True)
            args.emit_sweep.write_text(sweep_yaml(args.preset, args.methods, args.imbalances, args.projectors,
                                                  seeds, args.out))
            print(f"wrote {args.emit_sweep}")
            return 0
        if args.aggregate_only:
            aggregate(out)
            print(f"wrote {out / 'summary.md'} and {out / 'figure4.png'}")
            return 0
        if args.seed is None:
            cells = grid(args.methods, args.imbalances, args.projectors, seeds)
        else:  # one seed only (a sweep agent's cell)
            cells = [Cell(c.method, c.imbalance, c.projector, args.seed)
                     for c in grid(args.methods, args.imbalances, args.projectors, 1)]
        prepare(out, args.preset, args.data_root)
        (out / "logs").mkdir(exist_ok=True)
        todo = [c for c in cells if not result_path(c, out, STUDY).is_file()]
        print(f"{len(cells)} cells, {len(cells) - len(todo)} already finished; preset {args.preset}: "
              f"{PRESETS[args.preset]['description']}")
        for cell in todo:
            (out / "cells" / f"{cell.name}.yaml").write_text(json.dumps(cell_config(cell, out, STUDY), indent=2))
            if args.dry_run:
                print(" ".join(fit_command(cell, out)))
        if args.dry_run:
            return 0
        run_cells(todo, out, STUDY, PRESETS[args.preset], args.cells_per_device)
        aggregate(out, collect(cells, out, STUDY))
        print(f"wrote {out / 'results.csv'}, {out / 'summary.md'}, {out / 'figure4.png'}")
        return 0
    except (StudyError, RuntimeError) as error:
        print(f"reproduce_imbalance: error: {error}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
