"""The optimizer, the schedule and the backbone given the LightningCLI way (``class_path`` + ``init_args``)."""

from __future__ import annotations

import json

import pytest
import torch
from conftest import CONFIGS, tiny_args  # tests/cli/conftest.py

from sslprobe.cli import load_checkpoint

BACKBONE = "{class_path: sslprobe.nn.ResNet12, init_args: {widths: [8, 16, 32, 64]}}"


@pytest.mark.slow
def test_injected_optimizer_schedule_and_backbone_train_and_reload(cifar_root, tmp_path, run_cli):
    code, _, err = run_cli(tiny_args(
        "simclr", cifar_root, tmp_path, "--run.version", "v",
        "--model.init_args.backbone_kwargs", "null", "--model.init_args.backbone", BACKBONE,
        "--model.init_args.optimizer", "torch.optim.AdamW", "--model.init_args.optimizer.lr", "0.002",
        "--model.init_args.optimizer.weight_decay", "0.01",
        "--model.init_args.lr_scheduler", "torch.optim.lr_scheduler.StepLR",
        "--model.init_args.lr_scheduler.step_size", "1", "--model.init_args.lr_scheduler.gamma", "0.5",
        "--config", str(CONFIGS.parent / "callbacks" / "linear_eval.yaml"),
        "--probes.linear_eval.epochs", "2", "--probes.linear_eval.train_size", "200",
        "--probes.linear_eval.test_size", "100", "--probes.linear_eval.knn_k", "10"))
    assert code == 0, err
    run = tmp_path / "simclr_resnet12_none" / "v"  # the experiment is named from the backbone's class
    checkpoint = load_checkpoint(run / "checkpoints" / "last.ckpt")  # weights-only: plain hyper-parameters
    assert checkpoint["global_step"] == 2
    hparams = checkpoint["hyper_parameters"]
    assert hparams["optimizer"]["class_path"] == "torch.optim.AdamW"
    assert hparams["backbone"]["class_path"] == "sslprobe.nn.ResNet12"
    state = checkpoint["optimizer_states"][0]
    assert "exp_avg" in next(iter(state["state"].values()))  # AdamW's moments, not SGD's momentum
    assert state["param_groups"][0]["weight_decay"] == 0.01
    assert state["param_groups"][0]["lr"] == pytest.approx(0.002 * 0.5**2)  # StepLR stepped every step
    # The linear evaluation's random-init baseline rebuilt the method from these hyper-parameters.
    linear = json.loads((run / "probes" / "linear_eval.json").read_text())
    assert all(torch.isfinite(torch.tensor(float(linear[key]))) for key in
               ("top1", "random_init_top1", "random_init_knn_top1"))
