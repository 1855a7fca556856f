"""``sslprobe fit|validate|test --config FILE`` (or ``python -m sslprobe``): LightningCLI with one directory per run.

Every run lives in ``<trainer.default_root_dir>/<run.experiment>/<run.version>/``:

    config.yaml       the resolved config
    subset.json       the training subset (indices and per-class counts)
    checkpoints/      last.ckpt and periodic checkpoints (a fixed path, whatever the logger)
    probes/           raw arrays and figures of the probe callbacks
    metrics.csv, wandb/   logger files

The CLI points the Trainer's ``default_root_dir`` at that directory, so callbacks and the
datamodule find it as ``trainer.default_root_dir``.

A ``fit`` ends with the run pointer and one line of results (`result_line`). ``sslprobe --version``
prints the installed package's version.

By concern: `runs` (run directories, checkpoints, the checks before anything is created),
`lightning_cli` (`SSLProbeCLI`: parsing, run wiring, precision), `probe` and `probe_model` (the
``probe`` subcommand, on a run's checkpoint and on any model), `compare` (runs side by side), `errors`
(one-line messages), `result_line` (the closing line of results); this module is the entry point
(`main`, also the ``sslprobe`` console script).
"""

from __future__ import annotations

import argparse
import importlib.metadata
import logging
import os
import sys
import warnings
from pathlib import Path

from sslprobe.callbacks import Preempted
from sslprobe.cli.compare import compare_command
from sslprobe.cli.errors import UsageError, check_subcommand, error_line
from sslprobe.cli.failures import RunFailed, finish_wandb
from sslprobe.cli.lightning_cli import SSLProbeCLI
from sslprobe.cli.probe import probe_command
from sslprobe.cli.result_line import result_line
from sslprobe.cli.runs import CHECKPOINT_GLOBALS, load_checkpoint, wandb_logged_in
from sslprobe.runtime import tune_host_allocator


class _DropLines(logging.Filter):
    """Drops log records whose message starts with one of ``prefixes``."""

    def __init__(self, prefixes: tuple[str, ...]):
        super().__init__()
        self.prefixes = prefixes

    def filter(self, record: logging.LogRecord) -> bool:
        return not str(record.getMessage()).startswith(self.prefixes)


NOISE_PREFIXES = (
    "💡 Tip:",  # Lightning's advertisements for litlogger / litmodels
    "Loading `train_dataloader` to estimate number of stepping batches",  # the LR schedule's length
    # The Trainer's accelerator inventory and AMP notice: sslprobe says the device and precision of
    # the run in its own line (`SSLProbeCLI.instantiate_trainer`).
    "GPU available: ",
    "TPU available: ",
    "HPU available: ",
    "Using bfloat16 Automatic Mixed Precision",
    "Using 16bit Automatic Mixed Precision",
)


def quiet_known_noise() -> None:
    """Silence what every run printed and no user can act on.

    - Lightning's "💡 Tip" lines advertising litlogger and litmodels, and its note that it reads
      the training loader to size the learning-rate schedule;
    - the CSV logger's warning that the run directory exists (the CLI creates it first), and the
      checkpoint callback's that checkpoints/ is not empty (a resume continues in it);
    - torch >= 2.10's deprecation of ``LeafSpec`` raised from inside Lightning's pytree helper;
    - the Trainer's "GPU available / TPU available / HPU available" and "Using bfloat16 Automatic
      Mixed Precision" lines (sslprobe prints the run's device and precision once, in its own line),
      and the model summary's warning that it counts bf16/16-mixed parameters as 32 bits.
    """
    warnings.filterwarnings("ignore", message="Experiment logs directory .* exists and is not empty")
    warnings.filterwarnings("ignore", message="Checkpoint directory .* exists and is not empty")  # resume
    warnings.filterwarnings("ignore", message=r"(?s).*LeafSpec", category=FutureWarning)
    warnings.filterwarnings("ignore", message=r"(?s).*LeafSpec", category=DeprecationWarning)
    warnings.filterwarnings("ignore", message=r"Precision .* is not supported by the model summary")
    for name in ("lightning.pytorch", "lightning.fabric", "lightning_utilities"):
        logger = logging.getLogger(name)
        for handler in [logger, *logger.handlers]:
            if not any(isinstance(f, _DropLines) for f in handler.filters):
                handler.addFilter(_DropLines(NOISE_PREFIXES))


def run_pointer(run_dir: Path, trainer) -> str:
    """The closing line of a ``fit``: where the run is and how to look at it."""
    parts = [f"run: {run_dir}", f"metrics: {run_dir / 'metrics.csv'}"]
    if (run_dir / "probes").is_dir():
        parts.append(f"probes: {run_dir / 'probes'}/")
    offline = [logger for logger in trainer.loggers
               if type(logger).__name__ == "WandbLogger" and getattr(logger, "_offline", False)]
    if offline and (run_dir / "wandb").is_dir():
        parts.append(f"W&B (offline): wandb sync {run_dir / 'wandb'}/offline-run-*")
    return " | ".join(parts)


def package_version() -> str:
    """The installed distribution's version (package metadata); the source tree's when not installed."""
    try:
        return importlib.metadata.version("sslprobe")
    except importlib.metadata.PackageNotFoundError:
        from sslprobe import __version__

        return __version__


def main(args: list[str] | None = None) -> None:
    """Entry point of ``sslprobe`` and ``python -m sslprobe``: any error becomes one line on stderr
    and exit code 1 (2 for bad usage).

    ``SSLPROBE_DEBUG=1`` shows the full traceback instead.
    """
    argv = sys.argv[1:] if args is None else list(args)
    if argv[:1] == ["--version"]:
        print(f"sslprobe {package_version()}")
        return
    os.environ.setdefault("WANDB_SILENT", "true")
    tune_host_allocator()
    quiet_known_noise()
    if not wandb_logged_in():
        os.environ.setdefault("WANDB_MODE", "offline")
    try:
        check_subcommand(argv)
        if argv[:1] == ["probe"]:
            probe_command(argv[1:])
        elif argv[:1] == ["compare"]:
            compare_command(argv[1:])
        else:
            cli = SSLProbeCLI(args=args)
            if cli.subcommand == "fit" and cli.trainer.is_global_zero:
                print(run_pointer(cli.run_dir, cli.trainer))
                line = result_line(cli.run_dir)
                if line:
                    print(line)
    except Preempted as stop:
        print(f"sslprobe: {stop}", file=sys.stderr)
        sys.exit(stop.code)
    except RunFailed as failure:  # after the start: printed by the first process only
        if os.environ.get("SSLPROBE_DEBUG"):
            raise
        if failure.line is not None:
            print(f"sslprobe: error: {failure.line}", file=sys.stderr)
        sys.exit(failure.code)
    except Exception as error:
        if os.environ.get("SSLPROBE_DEBUG"):
            raise
        print(f"sslprobe: error: {error_line(error)}", file=sys.stderr)
        sys.exit(2 if isinstance(error, (argparse.ArgumentError, UsageError)) else 1)
    finally:
        finish_wandb()


__all__ = ["CHECKPOINT_GLOBALS", "SSLProbeCLI", "load_checkpoint", "main", "package_version", "result_line"]
