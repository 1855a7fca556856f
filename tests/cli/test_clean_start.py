"""A run that cannot start leaves nothing behind; a clean run and its resume print no noise;
``--print_config`` shows the settings the run will use."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
import yaml
from conftest import REPO, tiny_args  # tests/cli/conftest.py

NOISE = ("Tip:", "litlogger", "anonymous setting", "LeafSpec", "not resumable", "Seed set to",
         "exists and is not empty", "Traceback")


def run_process(args: list[str], cwd: Path) -> subprocess.CompletedProcess:
    env = {key: value for key, value in os.environ.items() if key != "SSLPROBE_DEBUG"}
    env["WANDB_MODE"] = "offline"
    return subprocess.run([sys.executable, "-m", "sslprobe", *args], cwd=cwd, env={**env, "PYTHONPATH": str(REPO)},
                          text=True, capture_output=True, timeout=300)


def test_missing_data_fails_before_any_directory_or_wandb_run(tmp_path):
    process = run_process(["fit", "--config", str(REPO / "configs" / "quickstart.yaml"),
                           "--data.root", str(tmp_path / "nonexistent")], cwd=tmp_path)
    assert process.returncode == 1
    assert process.stderr.splitlines() == [process.stderr.strip()], process.stderr  # exactly one line
    assert process.stderr.startswith("sslprobe: error: CIFAR-10 not found under")
    assert process.stdout == ""
    assert sorted(p.name for p in tmp_path.iterdir()) == [], list(tmp_path.rglob("*"))


def test_bad_subset_fails_before_the_run_directory(cifar_root, tmp_path, run_cli):
    root = tmp_path / "runs"
    code, _, err = run_cli(tiny_args("simclr", cifar_root, root, "--data.batch_size", "500"))
    assert code == 1 and "data.batch_size=500 is larger than the 200 training images" in err
    assert not root.exists(), list(root.rglob("*"))


@pytest.mark.slow
def test_clean_run_and_mid_epoch_resume_print_no_noise(cifar_root, tmp_path):
    root = tmp_path / "runs"
    args = tiny_args("simclr", cifar_root, root, "--run.version", "v",
                     "--trainer.callbacks", "null", "--trainer.enable_progress_bar", "false",
                     "--trainer.limit_train_batches", "6", "--checkpoint.every_n_train_steps", "2",
                     "--checkpoint.save_top_k", "-1")
    first = run_process(args, cwd=tmp_path)
    assert first.returncode == 0, first.stderr
    run_dir = root / "simclr_resnet12_none" / "v"
    middle = run_dir / "checkpoints" / "epoch000-step000002.ckpt"
    resumed = run_process([*args, "--ckpt_path", str(middle)], cwd=tmp_path)
    assert resumed.returncode == 0, resumed.stderr
    for process in (first, resumed):
        output = process.stdout + process.stderr
        assert not [word for word in NOISE if word in output], output
        # The closing pointer names the run directory and how to look at it.
        assert f"run: {run_dir} | metrics: {run_dir / 'metrics.csv'}" in process.stdout
        assert f"wandb sync {run_dir / 'wandb'}/offline-run-*" in process.stdout
    # Lightning sees the loader's position: it is in the loop state of a mid-epoch checkpoint.
    state = torch.load(middle, map_location="cpu", weights_only=True)["loops"]["fit_loop"]["state_dict"]
    assert state["combined_loader"] == [{"epoch": 0, "batches_done": 2, "batches_per_epoch": 6}]
    assert torch.load(run_dir / "checkpoints" / "last.ckpt", map_location="cpu", weights_only=True)["global_step"] == 6


def test_print_config_shows_the_logger_settings_the_run_uses(tmp_path, run_cli):
    root = tmp_path / "runs"
    code, out, err = run_cli(["fit", "--config", str(REPO / "configs" / "quickstart.yaml"),
                              "--trainer.default_root_dir", str(root), "--print_config"])
    assert code == 0, err
    printed = yaml.safe_load(out)
    run_dir = root / "simclr_resnet12_none" / "version_0"
    wandb_logger, csv_logger = printed["trainer"]["logger"]
    assert wandb_logger["init_args"]["save_dir"] == str(run_dir)
    assert wandb_logger["init_args"]["name"] == "simclr_resnet12_none/version_0"
    assert wandb_logger["init_args"]["id"] == "simclr_resnet12_none-version_0"
    assert wandb_logger["init_args"]["offline"] is True  # no W&B credentials in the tests
    assert csv_logger["init_args"] == {**csv_logger["init_args"], "save_dir": str(root),
                                       "name": "simclr_resnet12_none", "version": "version_0"}
    assert printed["checkpoint"]["dirpath"] == str(run_dir / "checkpoints")
    assert not root.exists()  # printing creates nothing


@pytest.mark.parametrize("args, words", [([], ["give a subcommand", "probe"]),
                                         (["fitt"], ["unknown subcommand 'fitt'", "did you mean 'fit'", "probe"])])
def test_usage_lists_every_subcommand(args, words, run_cli):
    code, out, err = run_cli(args)
    assert code == 2 and out == ""
    (line,) = err.splitlines()
    assert line.startswith("sslprobe: error:")
    for word in words:
        assert word in line, line
    for subcommand in ("fit", "validate", "test", "predict", "probe"):
        assert subcommand in line
