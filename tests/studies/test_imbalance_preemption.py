"""A study cell pre-empted on a job array (SIGUSR1, as SLURM's ``--signal=USR1@90`` sends it) checkpoints,
its array task is requeued by submitit, and the resumed cell ends as the uninterrupted cell.

The array runs through submitit's local executor, whose requeue (a restart of the task) follows
the same path as on SLURM: submitit's signal handler, `CellTask.checkpoint`, requeue. The signal
is a real one, sent to the running processes as SLURM's ``--signal`` sends it to every process of
the job step: the cell and its array task (which passes it on to the cell as well).
"""

from __future__ import annotations

import json
import os
import re
import signal
import threading
import time
from pathlib import Path

import pytest
import torch

from sslprobe.studies.imbalance import PRESETS
from sslprobe.studies.imbalance import main as study_main

pytestmark = [pytest.mark.slow, pytest.mark.timeout(900)]

CELL = "simclr_high_mlp_seed0"
# The smoke preset, longer (3 epochs of 12 steps), each cell a process of its own.
PREEMPT_PRESET = {**PRESETS["smoke"], "description": "smoke, 3 epochs of 600 images, cells as processes",
                  "in_process": False, "epochs": 3, "subset_size": 600}


def study_args(out: Path, cifar_root: Path, *extra: str) -> list[str]:
    return ["--preset", "preempt_test", "--out", str(out), "--data-root", str(cifar_root), "--methods", "simclr",
            "--imbalances", "high", "--projectors", "mlp", *extra]


@pytest.fixture(autouse=True)
def preempt_preset(monkeypatch):
    monkeypatch.setitem(PRESETS, "preempt_test", PREEMPT_PRESET)


@pytest.fixture(scope="module")
def uninterrupted(tmp_path_factory, cifar_root) -> Path:
    out = tmp_path_factory.mktemp("uninterrupted") / "study"
    PRESETS["preempt_test"] = PREEMPT_PRESET
    try:
        assert study_main(study_args(out, cifar_root)) == 0
    finally:
        del PRESETS["preempt_test"]
    return out


def processes_running(*fragments: str) -> list[int]:
    """The pids of this machine's processes whose command line holds every fragment."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            command = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode()
        except OSError:
            continue
        if all(fragment in command for fragment in fragments):
            found.append(int(entry.name))
    return found


def weights(run_dir: Path) -> dict:
    return torch.load(run_dir / "checkpoints" / "last.ckpt", map_location="cpu", weights_only=False)["state_dict"]


def test_preempted_cell_is_requeued_and_resumes_to_the_uninterrupted_result(tmp_path, cifar_root, uninterrupted):
    out = tmp_path / "study"
    codes: list[int] = []
    array = threading.Thread(target=lambda: codes.append(study_main(study_args(
        out, cifar_root, "--launcher", "slurm", "--executor", "local", "--gpus-per-task", "0"))))
    array.start()
    run_dir = out / "runs" / "imbalance" / CELL
    deadline = time.time() + 600
    # Once epoch 0's checkpoint exists, 24 of the 36 steps remain: the signal lands mid-training.
    while not list((run_dir / "checkpoints").glob("epoch*.ckpt")):
        assert array.is_alive() and time.time() < deadline, "the cell ended before it could be interrupted"
        time.sleep(0.02)
    cell_config = str(out / "cells" / f"{CELL}.yaml")
    cells = processes_running("sslprobe", "fit", cell_config)
    tasks = processes_running("submitit.core._submit", str(out / "slurm"))
    assert len(cells) == 1 and len(tasks) == 1, (cells, tasks)
    for pid in cells + tasks:
        os.kill(pid, signal.SIGUSR1)
    array.join(timeout=600)
    assert not array.is_alive() and codes == [0]

    log = (out / "logs" / f"{CELL}.log").read_text()
    stopped = re.findall(r"interrupted by SIGUSR1 after step (\d+); checkpoint (\S+) written", log)
    assert len(stopped) == 1, log[-3000:]
    assert 12 <= int(stopped[0][0]) < 36 and stopped[0][1] == str(run_dir / "checkpoints" / "last.ckpt")
    task_log = "\n".join(path.read_text() for path in (out / "slurm").glob("*/*_log.*"))
    assert "requeueing the task" in task_log and "Requeued job" in task_log, task_log[-3000:]
    assert len(list((out / "slurm").glob("*/*_result.pkl"))) == 1  # one task, finished after its requeue

    # The resumed cell is the uninterrupted one: weights bitwise, its evaluation, the study's table.
    expected_dir = uninterrupted / "runs" / "imbalance" / CELL
    trained, expected = weights(run_dir), weights(expected_dir)
    assert trained.keys() == expected.keys()
    for name in expected:
        assert torch.equal(trained[name], expected[name]), f"{name} differs after the requeue"
    # linear_eval.json: every measurement equal; only its wall time and the path of the study differ.
    linear, expected_linear = (json.loads((d / "probes" / "linear_eval.json").read_text())
                               for d in (run_dir, expected_dir))
    for record in (linear, expected_linear):
        del record["seconds"]
        record["random_init_cache"] = Path(record["random_init_cache"]).name
    assert linear == expected_linear
    assert (out / "results.csv").read_bytes() == (uninterrupted / "results.csv").read_bytes()
