"""Does bf16-mixed + channels-last train to the same accuracy as float32?

For each method and seed, two ordinary ``python -m sslprobe fit`` runs that differ only in
numerics (``--trainer.precision 32-true`` vs ``bf16-mixed --model.init_args.channels_last true``),
each followed by the linear-evaluation probe (linear and kNN top-1 on the full 10,000-image test
set). `aggregate` gives mean ± sd over seeds per setting and the paired difference fast − float32
per seed, beside the test set's binomial sampling error. Finished runs are skipped, so an
interrupted comparison continues where it stopped. `scripts/precision_parity.py` is the command
line of `run` and `aggregate`.

Files under ``config.out``: ``runs/parity/<method>_<setting>_seed<seed>/probes/linear_eval.json``
(each run's linear evaluation), ``logs/<method>_<setting>_seed<seed>.log`` and ``.seconds`` (its
output and wall time), ``summary.md`` and ``results.json`` (written by `aggregate`).
"""

from __future__ import annotations

import json
import math
import statistics
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
SETTINGS = {
    "float32": ["--trainer.precision", "32-true", "--model.init_args.channels_last", "false"],
    "bf16_channels_last": ["--trainer.precision", "bf16-mixed", "--model.init_args.channels_last", "true"],
}
TEST_IMAGES = 10_000


@dataclass
class ParityConfig:
    """What one parity experiment runs and where its files go.

    Attributes:
        out: Folder of the experiment's runs, logs and summary.
        methods: Method config names (``configs/methods/<name>.yaml``).
        seeds: Seeds ``0 .. seeds - 1`` per method and setting.
        images: Balanced CIFAR-10 training images per run.
        epochs: Training epochs per run.
        data_root: Folder holding ``cifar-10-batches-py``.
    """

    out: Path
    methods: list[str] = field(default_factory=lambda: ["simclr", "barlow_twins"])
    seeds: int = 2
    images: int = 8000
    epochs: int = 8
    data_root: str = "data"


def fit_args(method: str, setting: str, seed: int, config: ParityConfig) -> list[str]:
    """One run: the method's ResNet-12 config, narrowed and shortened, with linear evaluation."""
    return [
        "fit",
        "--config", str(REPO / "configs" / "base.yaml"),
        "--config", str(REPO / "configs" / "methods" / f"{method}.yaml"),
        "--config", str(REPO / "configs" / "backbones" / "resnet12.yaml"),
        "--config", str(REPO / "callbacks" / "linear_eval.yaml"),
        "--seed_everything", str(seed), "--data.seed", str(seed),
        "--model.init_args.backbone_kwargs", "{widths: [16, 32, 64, 128]}",
        "--data.root", config.data_root, "--data.imbalance", "none", "--data.subset_size", str(config.images),
        "--data.batch_size", "128", "--data.num_workers", "0",
        "--trainer.accelerator", "cpu", "--trainer.max_epochs", str(config.epochs),
        "--trainer.limit_val_batches", "0", "--trainer.enable_progress_bar", "false",
        "--trainer.callbacks", "null",
        "--trainer.logger", "lightning.pytorch.loggers.CSVLogger",
        "--trainer.logger.init_args.save_dir", str(config.out / "runs"),
        "--trainer.default_root_dir", str(config.out / "runs"),
        "--probes.linear_eval.train_size", "10000", "--probes.linear_eval.test_size", "null",
        "--run.experiment", "parity", "--run.version", f"{method}_{setting}_seed{seed}",
        *SETTINGS[setting],
    ]


def result_file(config: ParityConfig, method: str, setting: str, seed: int) -> Path:
    """Where the linear-evaluation result of one run is (``probes/linear_eval.json`` of its run folder)."""
    return config.out / "runs" / "parity" / f"{method}_{setting}_seed{seed}" / "probes" / "linear_eval.json"


def run(config: ParityConfig) -> None:
    """Runs every (method, seed, setting) whose result file is missing, one ``fit`` subprocess each.

    Each run's output goes to ``logs/<run>.log`` and its wall time to ``logs/<run>.seconds``.

    Args:
        config: The experiment.

    Raises:
        SystemExit: A run exits non-zero (the message names the run and its log).
    """
    (config.out / "logs").mkdir(parents=True, exist_ok=True)
    for method in config.methods:
        for seed in range(config.seeds):
            for setting in SETTINGS:  # the two settings of one seed back to back: same machine load
                if result_file(config, method, setting, seed).is_file():
                    continue
                log = config.out / "logs" / f"{method}_{setting}_seed{seed}.log"
                start = time.time()
                with open(log, "w") as handle:
                    code = subprocess.run([sys.executable, "-m", "sslprobe", *fit_args(method, setting, seed, config)],
                                          cwd=REPO, stdout=handle, stderr=subprocess.STDOUT).returncode
                if code != 0:
                    raise SystemExit(f"precision_parity: {method} {setting} seed {seed} failed (exit {code}); "
                                     f"see {log}")
                seconds = time.time() - start
                timing = config.out / "logs" / f"{method}_{setting}_seed{seed}.seconds"
                timing.write_text(f"{seconds:.1f}\n")
                print(f"{method} {setting} seed {seed}: {seconds:.0f} s", flush=True)


def mean_sd(values: list[float]) -> str:
    """``"mean ± sd"`` to one decimal, or ``"value (one seed)"`` for a single value."""
    if len(values) < 2:
        return f"{values[0]:.1f} (one seed)"
    return f"{statistics.mean(values):.1f} ± {statistics.stdev(values):.1f}"


def aggregate(config: ParityConfig) -> dict:
    """Summarises the finished runs: writes ``summary.md`` and ``results.json`` and prints the summary.

    Runs without a result file are left out; a (method, metric) row appears when at least one
    seed has both settings. Accuracies are in percent.

    Args:
        config: The experiment.

    Returns:
        ``{"rows": [{"method", "setting", "seed", "top1", "knn_top1", "seconds"}, ...],
        "summary": markdown}``.
    """
    rows = []
    for method in config.methods:
        for seed in range(config.seeds):
            for setting in SETTINGS:
                path = result_file(config, method, setting, seed)
                if not path.is_file():
                    continue
                result = json.loads(path.read_text())
                timing = config.out / "logs" / f"{method}_{setting}_seed{seed}.seconds"
                rows.append({"method": method, "setting": setting, "seed": seed,
                             "top1": 100 * result["top1"], "knn_top1": 100 * result["knn_top1"],
                             "seconds": float(timing.read_text()) if timing.is_file() else None})
    lines = [f"{config.images} balanced images, {config.epochs} epochs, batch 128, narrow ResNet-12; "
             f"linear (SGD, 100 epochs) and kNN top-1 (%) on the {TEST_IMAGES:,} test images; "
             f"mean ± sd over seeds; Δ = fast − float32 at equal seed.", "",
             "| method | metric | float32 | bf16 + channels-last | Δ per seed |", "|---|---|---|---|---|"]
    for method in config.methods:
        for metric in ("top1", "knn_top1"):
            by = {s: {r["seed"]: r[metric] for r in rows if r["method"] == method and r["setting"] == s}
                  for s in SETTINGS}
            seeds = sorted(set(by["float32"]) & set(by["bf16_channels_last"]))
            if not seeds:
                continue
            deltas = ", ".join(f"{by['bf16_channels_last'][s] - by['float32'][s]:+.1f}" for s in seeds)
            lines.append(f"| {method} | {'linear' if metric == 'top1' else 'kNN'} | "
                         f"{mean_sd([by['float32'][s] for s in seeds])} | "
                         f"{mean_sd([by['bf16_channels_last'][s] for s in seeds])} | {deltas} |")
    accuracy = statistics.mean(r["top1"] for r in rows) / 100 if rows else 0.5
    sampling = 100 * math.sqrt(accuracy * (1 - accuracy) / TEST_IMAGES)
    lines += ["", f"Test-set sampling error (binomial, one run): ±{sampling:.2f} points (1 sd)."]
    times = {s: [r["seconds"] for r in rows if r["setting"] == s and r["seconds"]] for s in SETTINGS}
    if all(times.values()):
        lines.append("Wall time per run (training + linear evaluation), median: "
                     + ", ".join(f"{s} {statistics.median(t):.0f} s" for s, t in times.items()) + ".")
    summary = "\n".join(lines)
    (config.out / "summary.md").write_text(summary + "\n")
    (config.out / "results.json").write_text(json.dumps(rows, indent=2))
    print(summary)
    return {"rows": rows, "summary": summary}
