"""`RunProgressBar` in a real (tiny) fit: epochs counted from 1, the run's name, images/s, and the
probes' phases as tasks on the same display."""

from __future__ import annotations

import io
import re

import pytest
from lightning.pytorch import Trainer
from lightning.pytorch.loggers import CSVLogger

from sslprobe.callbacks import ProjectorSpectrum, RunProgressBar
from sslprobe.callbacks.progress import rate_text
from sslprobe.data.datamodule import CIFAR10DataModule
from sslprobe.methods import SimCLR

ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")


@pytest.mark.parametrize(("rate", "text"), [(1234.4, "1234"), (42.54, "42.5"), (3.14159, "3.1"), (0.4321, "0.43"),
                                            (0.004321, "0.0043")])
def test_rates_keep_two_significant_digits(rate, text):
    assert rate_text(rate) == text
    assert float(text) == pytest.approx(rate, rel=0.05)


@pytest.mark.slow
def test_progress_bar_in_a_real_fit(cifar_root, tmp_path):
    screen = io.StringIO()
    bar = RunProgressBar(console_kwargs={"file": screen, "force_terminal": True, "width": 200})
    spectrum = ProjectorSpectrum(num_images=64)
    seen = []
    original = bar.task

    def recording_task(description, total):
        seen.append((description, total))
        return original(description, total)

    bar.task = recording_task
    shown = []  # (rate, text) of every img/s the bar computed for its display
    original_metrics = bar.get_metrics

    def recording_metrics(trainer, module):
        items = original_metrics(trainer, module)
        if "img/s" in items:
            shown.append((bar._images_per_second, items["img/s"]))
        return items

    bar.get_metrics = recording_metrics
    trainer = Trainer(
        accelerator="cpu", max_epochs=2, limit_train_batches=2, limit_val_batches=0, logger=CSVLogger(tmp_path),
        callbacks=[bar, spectrum], default_root_dir=str(tmp_path / "my_run"), enable_model_summary=False,
        enable_checkpointing=False,
    )
    method = SimCLR(backbone="resnet12", backbone_kwargs={"widths": [4, 8, 8, 8]}, hidden_dim=16, output_dim=8)
    data = CIFAR10DataModule(root=str(cifar_root), imbalance="none", subset_size=100, batch_size=20, num_workers=0)
    trainer.fit(method, data)
    text = ANSI.sub("", screen.getvalue())
    assert "Epoch 1/2" in text and "Epoch 2/2" in text and "Epoch 0" not in text
    assert "run: my_run" in text and "v_num" not in text
    # What the display shows is what the bar computed, and that is the measured rate, whatever the
    # machine's load (a run slower than 1 image/s shows e.g. 0.43, not 0).
    on_screen = re.findall(r"img/s: ([0-9.]+)", text)
    assert on_screen and set(on_screen) <= {text for _, text in shown}
    for rate, text_shown in shown:
        assert rate > 0 and float(text_shown) == pytest.approx(rate, rel=0.05, abs=0.5)
    # one spectrum measurement of the initial network and one per epoch, each a task of its 64
    # images on the run's display
    assert seen == [("spectrum: features", 64)] * 3
    assert "spectrum: features" in text
