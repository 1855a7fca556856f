"""``python -m sslprobe fit|validate|test --config FILE``: LightningCLI with one directory per run.

Every run lives in ``<trainer.default_root_dir>/<run.experiment>/<run.version>/``:

    config.yaml       the resolved config
    subset.json       the training subset (indices and per-class counts)
    checkpoints/      last.ckpt and periodic checkpoints (a fixed path, whatever the logger)
    probes/           raw arrays and figures of the probe callbacks
    metrics.csv, wandb/   logger files

The CLI points the Trainer's ``default_root_dir`` at that directory, so callbacks and the
datamodule find it as ``trainer.default_root_dir``.

By concern: `runs` (run directories, checkpoints, the checks before anything is created),
`lightning_cli` (`SSLProbeCLI`: parsing, run wiring, precision), `probe` and `probe_model` (the
``probe`` subcommand, on a run's checkpoint and on any model), `compare` (runs side by side), `errors`
(one-line messages); this module is the entry point (`main`).
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
import warnings
from pathlib import Path

from sslprobe.callbacks import Preempted
from sslprobe.cli.compare import compare_command
from sslprobe.cli.errors import UsageError, check_subcommand, error_line
from sslprobe.cli.lightning_cli import SSLProbeCLI
from sslprobe.cli.probe import probe_command
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
)


def quiet_known_noise() -> None:
    """Silence what every run printed and no user can act on.

    - Lightning's "💡 Tip" lines advertising litlogger and litmodels, and its note that it reads
      the training loader to size the learning-rate schedule;
    - the CSV logger's warning that the run directory exists (the CLI creates it first), and the
      checkpoint callback's that checkpoints/ is not empty (a resume continues in it);
    - torch >= 2.10's deprecation of ``LeafSpec`` raised from inside Lightning's pytree helper.
    """
    warnings.filterwarnings("ignore", message="Experiment logs directory .* exists and is not empty")
    warnings.filterwarnings("ignore", message="Checkpoint directory .* exists and is not empty")  # resume
    warnings.filterwarnings("ignore", message=r"(?s).*LeafSpec", category=FutureWarning)
    warnings.filterwarnings("ignore", message=r"(?s).*LeafSpec", category=DeprecationWarning)
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


def main(args: list[str] | None = None) -> None:
    """Entry point: any error becomes one line on stderr and exit code 1.

    ``SSLPROBE_DEBUG=1`` shows the full traceback instead.
    """
    os.environ.setdefault("WANDB_SILENT", "true")
    tune_host_allocator()
    quiet_known_noise()
    if not wandb_logged_in():
        os.environ.setdefault("WANDB_MODE", "offline")
    argv = sys.argv[1:] if args is None else list(args)
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
    except Preempted as stop:
        print(f"sslprobe: {stop}", file=sys.stderr)
        sys.exit(stop.code)
    except Exception as error:
        if os.environ.get("SSLPROBE_DEBUG"):
            raise
        print(f"sslprobe: error: {error_line(error)}", file=sys.stderr)
        sys.exit(2 if isinstance(error, (argparse.ArgumentError, UsageError)) else 1)
    finally:
        finish_wandb()


def finish_wandb() -> None:
    """Close the W&B run of this call, so a next in-process call starts its own run."""
    wandb = sys.modules.get("wandb")
    if wandb is not None and getattr(wandb, "run", None) is not None:
        wandb.finish()


__all__ = ["CHECKPOINT_GLOBALS", "SSLProbeCLI", "load_checkpoint", "main"]
