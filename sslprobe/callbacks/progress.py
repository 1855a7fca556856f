"""`RunProgressBar`: Lightning's rich progress bar with user-facing epochs, the run name and images/s.

The probes use `probe_progress` for their long phases (feature extraction, the landscape grid,
the linear classifier's epochs), so a run shows one consistent kind of display throughout.
"""

from __future__ import annotations

import contextlib
import sys
import time
from collections.abc import Iterator
from pathlib import Path

from lightning.pytorch.callbacks import RichProgressBar

from sslprobe.options import CheckedOptions, HalfOpenUnitInterval


class RunProgressBar(CheckedOptions, RichProgressBar):
    """`RichProgressBar` that counts epochs from 1 ("Epoch 1/2" for ``max_epochs: 2``), names the
    run (``run: version_0`` instead of Lightning's last four characters of the logger version)
    and shows the training throughput in images per second (both views of an image count as one).

    Args:
        smoothing: weight of the newest batch in the exponential average of images/s.
        **kwargs: `RichProgressBar`'s arguments (refresh_rate, leave, theme, console_kwargs).
    """

    def __init__(self, smoothing: HalfOpenUnitInterval = 0.3, **kwargs):
        super().__init__(**kwargs)
        self.smoothing = smoothing
        self._images_per_second: float | None = None
        self._last_batch_end: float | None = None

    def _get_train_description(self, current_epoch: int) -> str:
        description = f"Epoch {current_epoch + 1}"
        if self.trainer.max_epochs is not None and self.trainer.max_epochs > 0:
            description += f"/{self.trainer.max_epochs}"
        if len(self.validation_description) > len(description):
            description = f"{description:{len(self.validation_description)}}"
        return description

    def on_train_epoch_start(self, trainer, pl_module) -> None:
        self._last_batch_end = time.perf_counter()
        super().on_train_epoch_start(trainer, pl_module)

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx: int) -> None:
        now = time.perf_counter()
        if self._last_batch_end is not None and now > self._last_batch_end:
            images = len(batch[0]) * trainer.world_size  # the global batch
            rate = images / (now - self._last_batch_end)
            previous = self._images_per_second
            self._images_per_second = rate if previous is None else previous + self.smoothing * (rate - previous)
        self._last_batch_end = now
        super().on_train_batch_end(trainer, pl_module, outputs, batch, batch_idx)

    def on_validation_end(self, trainer, pl_module) -> None:
        super().on_validation_end(trainer, pl_module)
        self._last_batch_end = time.perf_counter()  # validation time is not training throughput

    @contextlib.contextmanager
    def task(self, description: str, total: int) -> Iterator:
        """A task of ``total`` units on this bar's display (below the epoch's); yields ``advance(n=1)``.

        The probes report their phases through it while the training bar is live.
        """
        if not self.is_enabled or self.progress is None or getattr(self, "_progress_stopped", False) or total <= 0:
            yield lambda n=1: None
            return
        task_id = self._add_task(total, description)

        def advance(n: int = 1) -> None:
            self.progress.advance(task_id, n)
            self.refresh()

        try:
            yield advance
        finally:
            self.progress.update(task_id, visible=False)
            self.refresh()

    def get_metrics(self, trainer, pl_module) -> dict:
        items = super().get_metrics(trainer, pl_module)
        if "v_num" in items:
            items.pop("v_num")
            items["run"] = Path(trainer.default_root_dir).name
        if self._images_per_second is not None and not trainer.sanity_checking:
            items["img/s"] = rate_text(self._images_per_second)
        return items


def rate_text(rate: float) -> str:
    """``rate`` with at least two significant digits below 100 (``1234``, ``42.5``, ``3.1``, ``0.43``),
    so that a slow run never shows 0 images/s."""
    if rate >= 100:
        return f"{rate:.0f}"
    if rate >= 1:
        return f"{rate:.1f}"
    return f"{rate:.2g}"


@contextlib.contextmanager
def probe_progress(description: str, total: int, enabled: bool | None = None) -> Iterator:
    """A rich progress bar for one phase of a probe; yields ``advance(n=1)``.

    Drawn on stderr when it is a terminal (``enabled`` None) and only then, like Lightning's bar,
    so logs and captured output stay clean.
    """
    if enabled is None:
        enabled = sys.stderr.isatty()
    if not enabled or total <= 0:
        yield lambda n=1: None
        return
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    columns = (TextColumn("[progress.description]{task.description}"), BarColumn(), MofNCompleteColumn(),
               TimeElapsedColumn())
    with Progress(*columns, console=Console(file=sys.stderr), transient=True) as progress:
        task = progress.add_task(description, total=total)
        yield lambda n=1: progress.advance(task, n)
