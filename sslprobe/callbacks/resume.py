"""Exact resume: RNG states in every checkpoint, and a checkpoint before a pre-empted run exits."""

from __future__ import annotations

import random
import signal
from pathlib import Path

import numpy as np
import torch
from lightning.pytorch import Callback, LightningModule, Trainer


class Preempted(SystemExit):
    """Raised after the checkpoint of an interrupted run is written."""

    def __init__(self, signum: int, step: int, path: str):
        self.signum, self.step, self.path = signum, step, path
        super().__init__(128 + signum)

    def __str__(self) -> str:
        return (f"interrupted by {signal.Signals(self.signum).name} after step {self.step}; checkpoint "
                f"{self.path} written; resume with --ckpt_path last")


def rng_states() -> dict:
    """torch, numpy, python (and CUDA) RNG states as tensors and plain types (weights-only loadable)."""
    kind, keys, position, has_gauss, cached = np.random.get_state()
    states = {
        "torch": torch.get_rng_state(),
        "numpy": [kind, torch.from_numpy(keys.astype(np.int64)), position, has_gauss, cached],
        "python": list(random.getstate()),
    }
    if torch.cuda.is_available():
        states["cuda"] = torch.cuda.get_rng_state_all()
    return states


def set_rng_states(states: dict) -> None:
    torch.set_rng_state(states["torch"])
    kind, keys, position, has_gauss, cached = states["numpy"]
    np.random.set_state((kind, keys.numpy().astype(np.uint32), position, has_gauss, cached))
    random.setstate(tuple(states["python"]))
    if "cuda" in states and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(states["cuda"])


def write_step_metrics(trainer: Trainer) -> None:
    """Log the metrics of the step that just ended and flush the loggers, as Lightning does after the
    ``on_train_batch_end`` hooks (which an exit raised from a hook skips). The row is written
    whatever ``log_every_n_steps`` says, as for the last step of a run."""
    connector = trainer._logger_connector
    should_stop = trainer.should_stop
    trainer.should_stop = True  # Lightning's own rule: the last step before a stop is always logged
    try:
        connector.on_batch_end()
        connector.update_train_step_metrics()
    finally:
        trainer.should_stop = should_stop
    for logger in trainer.loggers:
        logger.save()


class ExactResume(Callback):
    """Makes ``--ckpt_path last`` continue a run as if it had never stopped.

    - Every checkpoint carries the torch, numpy, python (and CUDA) RNG states of rank 0's
      process; they are restored when training restarts. (Data order and augmentation do not use
      these states: they are pure functions of (seed, epoch, index), see `GlobalBatchSampler`.)
    - SIGTERM, SIGINT and ``signals`` (default SIGUSR1, SLURM's pre-emption warning when sent
      with ``--signal=USR1@90``) are caught; the current step finishes, its metrics row is
      written, ``checkpoints/last.ckpt`` is written, and the run exits with `Preempted` (exit code
      128 + signal number).

    Args:
        signals: names of the signals that trigger a checkpoint-and-exit.
    """

    def __init__(self, signals: tuple[str, ...] = ("SIGTERM", "SIGINT", "SIGUSR1")):
        self.signals = tuple(signals)
        self._received: int | None = None
        self._pending_rng: dict | None = None
        self._previous_handlers: dict = {}

    # ----------------------------------------------------------------- RNG
    def on_save_checkpoint(self, trainer: Trainer, pl_module: LightningModule, checkpoint: dict) -> None:
        checkpoint["rng_states"] = rng_states()

    def on_load_checkpoint(self, trainer: Trainer, pl_module: LightningModule, checkpoint: dict) -> None:
        self._pending_rng = checkpoint.get("rng_states")

    def on_train_start(self, trainer: Trainer, pl_module: LightningModule) -> None:
        if self._pending_rng is not None:
            set_rng_states(self._pending_rng)
            self._pending_rng = None
        self._install_handlers()

    # ------------------------------------------------------------- signals
    def _install_handlers(self) -> None:
        self._received = None
        for name in self.signals:
            signum = getattr(signal, name)
            self._previous_handlers[signum] = signal.signal(signum, self._on_signal)

    def _on_signal(self, signum: int, frame) -> None:
        self._received = signum

    def _restore_handlers(self) -> None:
        for signum, handler in self._previous_handlers.items():
            signal.signal(signum, handler)
        self._previous_handlers = {}

    def on_train_batch_end(self, trainer: Trainer, pl_module: LightningModule, outputs, batch, batch_idx: int) -> None:
        received = self._received if self._received is not None else 0
        received = int(trainer.strategy.reduce(torch.tensor(float(received)), reduce_op="max").item())
        if not received:
            return
        write_step_metrics(trainer)
        path = Path(trainer.default_root_dir) / "checkpoints" / "last.ckpt"
        trainer.save_checkpoint(str(path))
        self._restore_handlers()
        raise Preempted(received, trainer.global_step, str(path))

    def on_train_end(self, trainer: Trainer, pl_module: LightningModule) -> None:
        self._restore_handlers()

    def on_exception(self, trainer: Trainer, pl_module: LightningModule, exception: BaseException) -> None:
        self._restore_handlers()
