"""`sslprobe.studies.imbalance.launcher`: the array tasks, and the sbatch script submitit writes for them.

The job array itself runs through submitit's local executor in tests/scripts/test_reproduce_imbalance.py
and tests/studies/test_imbalance_preemption.py; here, without SLURM, the script submitit would hand to
sbatch is rendered and read.
"""

from __future__ import annotations

import os
import re
import stat

from sslprobe.studies.imbalance import PRESETS, grid
from sslprobe.studies.imbalance.launcher import SlurmOptions, make_executor, tasks_of


def test_cells_are_grouped_into_tasks_in_grid_order():
    cells = grid(["simclr", "supervised"], ["none", "high"], ["mlp", "none"], 2)  # 8 + 4 cells
    tasks = tasks_of(cells, 5)
    assert [len(task) for task in tasks] == [5, 5, 2]
    assert [cell for task in tasks for cell in task] == cells
    assert tasks_of(cells, 1) == [[cell] for cell in cells]


def test_the_array_is_submitted_with_sigusr1_before_the_time_limit(tmp_path, monkeypatch):
    # submitit's SLURM executor looks for srun on PATH when it is created; nothing is submitted here.
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    (bin_dir / "srun").write_text("#!/bin/sh\nexit 1\n")
    (bin_dir / "srun").chmod(stat.S_IRWXU)
    monkeypatch.setenv("PATH", f"{bin_dir}{os.pathsep}{os.environ['PATH']}")
    options = SlurmOptions(partition="gpu", time=150, gpus_per_task=1, cells_per_task=4, signal_delay=120)
    executor = make_executor(tmp_path / "study", options, PRESETS["paper"])
    script = executor._executor._make_submission_file_text("python -u -m submitit.core._submit FOLDER", "uid")
    directives = dict(re.findall(r"^#SBATCH --([\w-]+)(?:=(\S+))?$", script, flags=re.MULTILINE))
    assert directives["signal"] == "USR1@120"
    assert directives["partition"] == "gpu" and directives["time"] == "150"
    assert directives["gpus-per-node"] == "1" and directives["ntasks-per-node"] == "1"
    assert directives["cpus-per-task"] == str(PRESETS["paper"]["num_workers"] + 1)
    assert directives["job-name"] == "sslprobe-imbalance"
    assert str(tmp_path / "study" / "slurm") in directives["output"]
