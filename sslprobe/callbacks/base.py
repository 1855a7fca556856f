"""The shared schedule of the probe callbacks, and how they write and log what they measure.

A probe callback decides *when* (every ``every_n_epochs``, once at the end of training, and, for
those with ``at_start``, on the initial network before the first step) and
*where* results go (``<run dir>/probes/`` and the loggers); the measurement is its `measure`
method, which also runs without a trainer (``python -m sslprobe probe``). Probes run on global
rank 0 only, from the full (identical) weights, in eval mode: no collective is involved, so they
give the same numbers on 1 or N processes and cannot hang. They run with autocast off, in the
weights' own precision (float32, or float64 under ``64-true``), whatever precision training uses.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from pathlib import Path

import torch
from lightning.pytorch import Callback, LightningModule, Trainer
from lightning.pytorch.utilities import rank_zero_info
from torch import nn

from sslprobe.options import CheckedOptions, PositiveInt
from sslprobe.probes.api import measure

PROBES_DIR = "probes"
INITIAL_EPOCH = 0  # `measure`'s epoch (epochs trained, counted from 1) for the network before any step


@contextlib.contextmanager
def evaluation_mode(module: nn.Module) -> Iterator[None]:
    """Eval mode and no autograd inside; the previous mode is restored after."""
    was_training = module.training
    module.eval()
    try:
        with torch.no_grad():
            yield
    finally:
        module.train(was_training)


def in_chunks(images: torch.Tensor, size: int) -> Iterator[torch.Tensor]:
    for start in range(0, images.shape[0], size):
        yield images[start : start + size]


def extract_features(method: nn.Module, images: torch.Tensor, batch_size: int, advance=None) -> torch.Tensor:
    """Backbone features of uint8 images, in eval mode without augmentation.

    Args:
        method: a method with ``embed(uint8 images) -> (B, feature_dim)`` (the method contract).
        images: (N, 3, H, W) uint8 images (on any device).
        batch_size: images per forward pass.
        advance: called with the number of images after each chunk (progress display).

    Returns:
        (N, feature_dim) float32 features on the CPU.
    """
    chunks = []
    with evaluation_mode(method):
        for chunk in in_chunks(images, batch_size):
            chunks.append(method.embed(chunk).float().cpu())
            if advance is not None:
                advance(len(chunk))
    return torch.cat(chunks)


def save_figure(figure, path: Path) -> Path:
    import matplotlib.pyplot as plt

    figure.savefig(path, dpi=110, bbox_inches="tight")
    plt.close(figure)
    return path


PROBE_CALLBACKS: dict[str, type[ProbeCallback]] = {}  # config key (``probes.<key>``) -> probe class


class ProbeCallback(CheckedOptions, Callback):
    """Base of the probe callbacks.

    A subclass with a ``config_key`` is registered in `PROBE_CALLBACKS` by being defined: the CLI
    offers it as ``--probes.<config_key>`` (and, with ``from_checkpoint``, as ``probe --what
    <name>``) without being told. ``name`` prefixes its logged metrics and its files.

    A subclass that sets ``at_start`` also measures the initial network at step 0 (epoch
    `INITIAL_EPOCH`), so its curve starts at the random-init level; it says by `has_initial`
    whether its restored history holds that row already, so a resumed run never measures its
    trained network as the initial one.

    Args:
        every_n_epochs: also measure after every n-th training epoch (None: only at the end).
    """

    name = "probe"
    config_key: str | None = None
    from_checkpoint = True  # `python -m sslprobe probe` can run it on a saved checkpoint
    last_result = None  # the typed result of the latest `measure` (`sslprobe.probes.results`), None if declined
    at_start = False  # measure the initial network at step 0 (subclasses take it as an argument)

    def __init_subclass__(cls, **kwargs):
        super().__init_subclass__(**kwargs)
        if cls.config_key:
            PROBE_CALLBACKS[cls.config_key] = cls

    def __init__(self, every_n_epochs: PositiveInt | None = None):
        self.every_n_epochs = every_n_epochs
        self.last_measured_epoch: int | None = None

    # ------------------------------------------------------------- to implement
    def measure(self, method: LightningModule, datamodule, run_dir: Path, epoch: int) -> dict:
        """Measure, write files under ``run_dir/probes``; return scalars to log (and figures).

        ``epoch`` counts from 1 (the number of the epoch just trained, as users count), and names
        the files and figure titles; logged metrics keep Lightning's 0-based ``epoch`` column.
        """
        raise NotImplementedError

    def measure_or_explain(self, method: LightningModule, datamodule, run_dir: Path, epoch: int) -> dict:
        """`measure`, unless the method declares that this probe does not apply to it.

        Then ``probes/<name>_epoch<E>.json`` records the method's reason, the reason is printed
        once, and ``<name>/applicable`` = 0 is logged.
        """
        reason = method.probe_unavailable(self.name) if hasattr(method, "probe_unavailable") else None
        if reason is None:
            return self.measure(method, datamodule, run_dir, epoch)
        import json

        path = probes_dir(run_dir) / f"{self.name}_epoch{epoch}.json"
        path.write_text(json.dumps({"epoch": epoch, "applicable": False, "reason": reason}, indent=2))
        if not getattr(self, "_explained", False):
            rank_zero_info(f"sslprobe: the {self.name} probe does not apply to {type(method).__name__}: {reason}")
            self._explained = True
        return {f"{self.name}/applicable": 0.0}

    def has_initial(self) -> bool:
        """Whether the history holds the initial network's measurement (a resumed run)."""
        return False

    # ---------------------------------------------------------------- schedule
    def on_train_start(self, trainer: Trainer, pl_module: LightningModule) -> None:
        # A resumed run has trained already (global_step > 0) or has its initial row in the history.
        if self.at_start and trainer.global_step == 0 and not self.has_initial():
            self._run(trainer, pl_module, INITIAL_EPOCH - 1)

    def on_train_epoch_end(self, trainer: Trainer, pl_module: LightningModule) -> None:
        if self.every_n_epochs and (trainer.current_epoch + 1) % self.every_n_epochs == 0:
            self._run(trainer, pl_module, trainer.current_epoch)

    def on_train_end(self, trainer: Trainer, pl_module: LightningModule) -> None:
        epoch = max(trainer.current_epoch - 1, 0)  # current_epoch has moved past the last epoch
        if self.last_measured_epoch != epoch:
            self._run(trainer, pl_module, epoch)

    def _run(self, trainer: Trainer, pl_module: LightningModule, epoch: int) -> None:
        """Measure after Lightning's 0-based ``epoch`` (-1: the initial network, logged as epoch 0)."""
        from sslprobe.callbacks.progress import RunProgressBar

        if epoch >= 0:
            self.last_measured_epoch = epoch
        if not trainer.is_global_zero or trainer.sanity_checking:
            return
        bar = trainer.progress_bar_callback
        # During fit the probe's phases are tasks on the run's bar (none without one).
        self._progress = bar.task if isinstance(bar, RunProgressBar) else _no_progress
        try:  # the one entry point of every probe run; bf16 training: probes in fp32
            measure(self, pl_module, trainer.datamodule, Path(trainer.default_root_dir), epoch + 1,
                    log_to=trainer, log_epoch=max(epoch, 0))
        finally:
            self._progress = None

    def progress(self, description: str, total: int):
        """Context manager for one phase of `measure` (``total`` units); yields ``advance(n=1)``.

        A task on the run's progress bar during ``fit``, a bar of its own on a terminal otherwise
        (``python -m sslprobe probe``), nothing when output is not a terminal.
        """
        from sslprobe.callbacks.progress import probe_progress

        factory = getattr(self, "_progress", None) or probe_progress
        return factory(f"{self.name}: {description}", total)

    # ----------------------------------------------------------------- logging
    def log_results(self, trainer: Trainer, scalars: dict, epoch: int) -> None:
        """Log ``scalars`` (and their figures) to ``trainer.loggers`` at ``trainer.global_step``;
        ``epoch`` is Lightning's 0-based index, as in the other rows of the loggers."""
        figures = scalars.pop("figures", {})
        for logger in trainer.loggers:
            logger.log_metrics({**scalars, "epoch": epoch}, step=trainer.global_step)
            if hasattr(logger, "log_image"):  # W&B
                for key, path in figures.items():
                    logger.log_image(key=f"{self.name}/{key}", images=[str(path)], step=trainer.global_step)

    def state_dict(self) -> dict:
        return {"last_measured_epoch": self.last_measured_epoch}

    def load_state_dict(self, state: dict) -> None:
        self.last_measured_epoch = state.get("last_measured_epoch")


@contextlib.contextmanager
def _no_progress(description: str, total: int) -> Iterator:
    yield lambda n=1: None


def probes_dir(run_dir: Path) -> Path:
    path = Path(run_dir) / PROBES_DIR
    path.mkdir(parents=True, exist_ok=True)
    return path
