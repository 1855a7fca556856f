"""A new probe is one class: defined here, it is a `--probes.<key>` option of `fit` and a `probe --what` name.

`FeatureNorm` uses only the contracts: the datamodule's probe inputs (`probe_views`) and the method's
(`embed`, `probe_unavailable`); the base class schedules, writes and logs it.
"""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest
import torch
import yaml
from helpers import tiny_fit_args  # tests/helpers.py

from sslprobe.callbacks import PROBE_CALLBACKS, ProbeCallback
from sslprobe.callbacks.base import probes_dir
from sslprobe.cli import main
from sslprobe.data.datamodule import CIFAR10DataModule
from sslprobe.methods import SimCLR


class FeatureNorm(ProbeCallback):
    """Mean L2 norm of the backbone features of ``num_images`` training views."""

    name = "feature_norm"
    config_key = "feature_norm"

    def __init__(self, every_n_epochs: int | None = None, num_images: int = 64, seed: int = 0):
        super().__init__(every_n_epochs)
        self.num_images, self.seed = num_images, seed

    def measure(self, method, datamodule, run_dir: Path, epoch: int) -> dict:
        view1, _ = datamodule.probe_views(self.num_images, self.seed, method.device)
        norm = float(method.embed(view1).norm(dim=1).mean())
        (probes_dir(run_dir) / f"feature_norm_epoch{epoch}.json").write_text(json.dumps({"mean_norm": norm}))
        return {"feature_norm/mean_norm": norm}


def logged(path: Path, key: str) -> list[float]:
    with open(path, newline="") as handle:
        return [float(row[key]) for row in csv.DictReader(handle) if row.get(key)]


@pytest.mark.slow
def test_a_new_probe_runs_in_fit_and_on_a_checkpoint(tmp_path, cifar_root):
    assert PROBE_CALLBACKS["feature_norm"] is FeatureNorm  # registered by being defined
    main([*tiny_fit_args(tmp_path, cifar_root, "toy", "v", subset_size=100, batch_size=25, max_epochs=1),
          "--trainer.limit_train_batches", "2", "--trainer.limit_val_batches", "0",
          "--probes.knn_monitor", "null", "--probes.feature_norm.num_images", "32"])
    run = tmp_path / "toy" / "v"
    written = json.loads((run / "probes" / "feature_norm_epoch1.json").read_text())["mean_norm"]
    # The same number from the checkpoint, computed here through the same contracts.
    method = SimCLR.load_from_checkpoint(run / "checkpoints" / "last.ckpt", map_location="cpu")
    datamodule = CIFAR10DataModule(**yaml.safe_load((run / "config.yaml").read_text())["data"])
    datamodule.setup_for_run(run)
    expected = float(method.embed(datamodule.probe_views(32, 0)[0]).norm(dim=1).mean())
    assert written == pytest.approx(expected, rel=1e-5)
    assert logged(run / "metrics.csv", "feature_norm/mean_norm") == pytest.approx([written], rel=1e-6)
    # `probe --what feature_norm` re-measures the checkpoint with the run's saved settings.
    main(["probe", "--ckpt_path", str(run / "checkpoints" / "last.ckpt"), "--what", "feature_norm",
          "--device", "cpu"])
    assert logged(run / "metrics.csv", "feature_norm/mean_norm") == pytest.approx([written, written], rel=1e-5)
    assert torch.isfinite(torch.tensor(written))
