"""`RunProgressBar` in a real (tiny) fit: epochs counted from 1, the run's name, images/s, and the
probes' phases as tasks on the same display."""

from __future__ import annotations

import io
import re

import pytest
from lightning.pytorch import Trainer
from lightning.pytorch.loggers import CSVLogger

from sslprobe.callbacks import ProjectorSpectrum, RunProgressBar
from sslprobe.data.datamodule import CIFAR10DataModule
from sslprobe.methods import SimCLR

pytestmark = pytest.mark.slow

ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")


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
    rates = [float(value) for value in re.findall(r"img/s: ([0-9.]+)", text)]
    assert rates and all(rate > 0 for rate in rates)
    # one spectrum measurement of the initial network and one per epoch, each a task of its 64
    # images on the run's display
    assert seen == [("spectrum: features", 64)] * 3
    assert "spectrum: features" in text
