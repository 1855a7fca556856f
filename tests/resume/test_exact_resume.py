"""An interrupted run resumed with --ckpt_path ends with the weights of an uninterrupted run."""

from __future__ import annotations

import csv
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from helpers import tiny_fit_args  # tests/helpers.py

from sslprobe.cli import main

REPO = Path(__file__).resolve().parents[2]


def fit_args(root: Path, cifar_root: Path, version: str, *extra: str) -> list[str]:
    """4 batches per epoch, 2 epochs, a checkpoint after every step; dropout draws from torch's RNG."""
    return [
        *tiny_fit_args(root, cifar_root, "resume", version, subset_size=80, batch_size=20, max_epochs=2,
                       model=("--model.class_path", "resume_method.SimCLRWithDropout")),
        "--trainer.limit_val_batches", "0",
        "--trainer.log_every_n_steps", "1",
        "--checkpoint.every_n_train_steps", "1",
        "--checkpoint.save_top_k", "-1",
        *extra,
    ]


def final_weights(run_dir: Path) -> dict:
    return torch.load(run_dir / "checkpoints" / "last.ckpt", map_location="cpu", weights_only=False)["state_dict"]


def assert_same_weights(a: dict, b: dict) -> None:
    assert a.keys() == b.keys()
    for name in a:
        assert torch.equal(a[name], b[name]), f"{name} differs after resume"


@pytest.fixture(scope="module")
def uninterrupted(tmp_path_factory, cifar_root):
    root = tmp_path_factory.mktemp("runs")
    main(fit_args(root, cifar_root, "full"))
    return root, root / "resume" / "full"


def test_resume_mid_epoch_equals_uninterrupted(uninterrupted, cifar_root):
    root, full = uninterrupted
    steps = sorted((full / "checkpoints").glob("epoch000-step000003*.ckpt"))
    assert steps, sorted(p.name for p in (full / "checkpoints").iterdir())
    # Resume from the checkpoint after step 3 of 4 of epoch 0 into a new run directory.
    main(fit_args(root, cifar_root, "resumed", "--ckpt_path", str(steps[0])))
    resumed = final_weights(root / "resume" / "resumed")
    assert_same_weights(final_weights(full), resumed)
    fresh = torch.load(steps[0], map_location="cpu", weights_only=False)["state_dict"]
    assert any(not torch.equal(fresh[k], resumed[k]) for k in fresh), "resume did not train"


@pytest.mark.slow
@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGKILL])
def test_signal_then_resume_equals_uninterrupted(uninterrupted, cifar_root, signum):
    root, full = uninterrupted
    version = f"signal_{signum}"
    run_dir = root / "resume" / version
    env = {**os.environ, "WANDB_MODE": "offline",
           "PYTHONPATH": os.pathsep.join([str(Path(__file__).parent), os.environ.get("PYTHONPATH", "")])}
    # Steps of at least 0.5 s: the signal lands well before the run's 8th and last step.
    command = [sys.executable, "-m", "sslprobe",
               *fit_args(root, cifar_root, version, "--model.init_args.step_seconds", "0.5")]
    log = open(root / f"{version}.log", "w+")  # a file, not a pipe: a full pipe would stall the run
    process = subprocess.Popen(command, cwd=REPO, env=env, stdout=log, stderr=subprocess.STDOUT, text=True)
    deadline = time.time() + 240
    # The step-3 file appears after last.ckpt was fully written for step 2 (saves are sequential).
    while not list((run_dir / "checkpoints").glob("epoch000-step000003*.ckpt")):
        assert process.poll() is None and time.time() < deadline, "run ended before it could be interrupted"
        time.sleep(0.05)
    process.send_signal(signum)
    process.wait(timeout=240)
    log.seek(0)
    stderr = log.read()
    log.close()
    if signum == signal.SIGTERM:
        assert process.returncode == 128 + signal.SIGTERM, stderr[-2000:]
        assert "interrupted by SIGTERM" in stderr and "last.ckpt" in stderr
    else:
        assert process.returncode == -signal.SIGKILL
    steps_done = torch.load(run_dir / "checkpoints" / "last.ckpt", map_location="cpu", weights_only=False)[
        "global_step"
    ]
    assert 2 <= steps_done < 8, steps_done
    main(fit_args(root, cifar_root, version, "--ckpt_path", "last"))
    assert_same_weights(final_weights(full), final_weights(run_dir))


def test_two_runs_with_the_same_seed_are_identical(uninterrupted, cifar_root):
    root, full = uninterrupted
    main(fit_args(root, cifar_root, "twin"))
    twin = root / "resume" / "twin"
    assert_same_weights(final_weights(full), final_weights(twin))
    metrics = [(run / "metrics.csv").read_text().splitlines() for run in (full, twin)]
    assert metrics[0] == metrics[1] and any("train/loss" in line for line in metrics[0][:1])
    first = torch.load(full / "checkpoints" / "last.ckpt", weights_only=False)
    second = torch.load(twin / "checkpoints" / "last.ckpt", weights_only=False)
    assert all(
        torch.equal(a, b)
        for a, b in zip(
            first["optimizer_states"][0]["state"][0].values(), second["optimizer_states"][0]["state"][0].values()
        )
    )


def train_losses(path: Path) -> dict[int, str]:
    """``train/loss`` of each step of a metrics CSV, as written."""
    with open(path, newline="") as handle:
        return {int(row["step"]): row["train/loss"] for row in csv.DictReader(handle) if row.get("train/loss")}


# SIGUSR1 during the last step of epoch 0: the resumed run starts at an epoch boundary.
@pytest.mark.slow
@pytest.mark.parametrize(("name", "step"), [("SIGINT", 2), ("SIGUSR1", 3)])
def test_signal_checkpoints_exits_and_resume_keeps_the_metrics(uninterrupted, cifar_root, capsys, name, step):
    """A signal during a step: the step ends, its metrics row and last.ckpt are written, exit 128 + signal;
    resumed to the end, the weights are the uninterrupted run's and the interrupted run's metrics.csv is kept."""
    root, full = uninterrupted
    signum = getattr(signal, name)
    previous = signal.getsignal(signum)
    run_dir = root / "resume" / f"in_process_{name}"
    with pytest.raises(SystemExit) as stop:
        main(fit_args(root, cifar_root, run_dir.name, "--model.init_args.signal_at_step", str(step),
                      "--model.init_args.signal_name", name))
    assert stop.value.code == 128 + signum
    err = capsys.readouterr().err
    assert (f"sslprobe: interrupted by {name} after step {step + 1}; checkpoint {run_dir}/checkpoints/last.ckpt "
            "written; resume with --ckpt_path last") in err
    assert signal.getsignal(signum) == previous  # the handler is handed back
    checkpoint = torch.load(run_dir / "checkpoints" / "last.ckpt", map_location="cpu", weights_only=False)
    assert checkpoint["global_step"] == step + 1
    interrupted = (run_dir / "metrics.csv").read_text()
    # The interrupted step's row is written before the exit.
    assert sorted(train_losses(run_dir / "metrics.csv")) == list(range(step + 1))

    main(fit_args(root, cifar_root, run_dir.name, "--ckpt_path", "last"))
    assert_same_weights(final_weights(full), final_weights(run_dir))
    kept = list(run_dir.glob("metrics.until_*.csv"))
    assert len(kept) == 1 and re.fullmatch(r"metrics\.until_\d{8}-\d{6}(-\d+)?\.csv", kept[0].name), kept
    assert kept[0].read_text() == interrupted
    # The kept rows and the resumed run's rows are the uninterrupted run's loss curve, as written.
    resumed = train_losses(run_dir / "metrics.csv")
    assert sorted(resumed) == list(range(step + 1, 8))
    expected = train_losses(full / "metrics.csv")
    assert {**train_losses(kept[0]), **resumed} == expected


def test_kept_metrics_names_do_not_collide_within_a_second(tmp_path):
    """Resumes in quick succession each keep their metrics.csv under a new name; none is overwritten."""
    from sslprobe.cli.runs import keep_metrics

    kept = []
    for attempt in range(3):
        (tmp_path / "metrics.csv").write_text(f"step,train/loss\n{attempt},1.0\n")
        kept.append(keep_metrics(tmp_path))
    assert keep_metrics(tmp_path) is None  # nothing left to keep
    assert len(set(kept)) == 3
    assert [path.read_text() for path in kept] == [f"step,train/loss\n{n},1.0\n" for n in range(3)]
    assert all(re.fullmatch(r"metrics\.until_\d{8}-\d{6}(-\d+)?\.csv", path.name) for path in kept)


@pytest.mark.slow
def test_byol_interrupted_by_a_signal_resumes_with_its_target_network(tmp_path, cifar_root, capsys):
    """The step the signal interrupts moves BYOL's momentum target too: the exit checkpoint holds that move."""
    def byol(version: str, *extra: str) -> list[str]:
        return [*tiny_fit_args(tmp_path, cifar_root, "byol", version, subset_size=80, batch_size=20, max_epochs=2,
                               model=("--model.class_path", "resume_method.BYOLSignalled")),
                "--model.init_args.predictor_hidden_dim", "16", "--trainer.limit_val_batches", "0", *extra]

    main(byol("full"))
    with pytest.raises(SystemExit) as stop:
        main(byol("interrupted", "--model.init_args.signal_at_step", "2"))
    assert stop.value.code == 128 + signal.SIGUSR1
    capsys.readouterr()
    run_dir = tmp_path / "byol" / "interrupted"
    saved = torch.load(run_dir / "checkpoints" / "last.ckpt", map_location="cpu", weights_only=False)
    assert saved["global_step"] == 3 and any(name.startswith("target.") for name in saved["state_dict"])
    main(byol("interrupted", "--ckpt_path", "last"))
    # the exit wrote last.ckpt before any periodic checkpoint: the resumed run overwrites it, no last-v1.ckpt
    assert sorted(p.name for p in (run_dir / "checkpoints").iterdir()) == ["epoch001-step000008.ckpt", "last.ckpt"]
    assert_same_weights(final_weights(tmp_path / "byol" / "full"), final_weights(run_dir))
