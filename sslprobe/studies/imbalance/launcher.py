"""Launching the study's cells: here (``--launcher local``), or as one SLURM job array through submitit.

``--launcher slurm`` groups the unfinished cells into array tasks of ``--cells-per-task`` cells
(`CellTask`), submits them as one job array with submitit and waits for it; the caller then
aggregates. Each task runs its cells one after another (K at a time per GPU with
``--cells-per-device K``), skipping the cells that have finished.

Pre-emption uses submitit's checkpointing (a callable with a ``checkpoint`` method, requeued by
submitit): submitit's job runner then owns the requeue on SLURM (``scontrol requeue``) and on its
local executor (a restart of the task), so the same code path is tested on one machine as runs on
the cluster. Lightning's own SLURM auto-requeue would requeue from inside a cell, which knows
nothing of the task's other cells, and it cannot be exercised without SLURM. The warning signal is
SIGUSR1 (``#SBATCH --signal=USR1@<delay>``, written by submitit from ``SUBMITIT_PREEMPT_SIGNAL``),
the signal `sslprobe.callbacks.ExactResume` already turns into a checkpoint-and-exit. When it
arrives, the task passes it on to its running cells; each finishes its current step, writes
``last.ckpt`` and exits; the task then hands the signal to submitit, whose handler calls
`CellTask.checkpoint` (the same cells again) and requeues the task. On restart, finished cells
are skipped and the interrupted one resumes from its ``last.ckpt`` exactly.
"""

from __future__ import annotations

import os
import shutil
import signal
from dataclasses import dataclass
from pathlib import Path

from sslprobe.studies.imbalance.grid import Cell, StudyError, result_path
from sslprobe.studies.imbalance.running import (
    PREEMPTION_SIGNAL,
    CellPreempted,
    forward_preemption,
    preemption,
    run_cells,
)

# submitit reads its pre-emption signal from this variable when it is imported (here, and in every job
# it starts, which inherits the environment); the class attribute covers an earlier import.
os.environ["SUBMITIT_PREEMPT_SIGNAL"] = PREEMPTION_SIGNAL.name.removeprefix("SIG")

LAUNCHERS = ("local", "slurm")
EXECUTORS = ("slurm", "local")


@dataclass(frozen=True)
class SlurmOptions:
    """The job array's resources; ``executor='local'`` runs the same array on this machine (tests)."""

    partition: str | None = None
    time: int = 60  # minutes per array task
    gpus_per_task: int = 1
    cpus_per_task: int | None = None
    cells_per_task: int = 1
    signal_delay: int = 90  # seconds between SIGUSR1 and the end of the time limit
    executor: str = "slurm"

    def check(self) -> None:
        """`StudyError` when submitting is impossible here (before anything is written)."""
        if self.executor not in EXECUTORS:
            raise StudyError(f"unknown executor {self.executor!r}; valid: {', '.join(EXECUTORS)}")
        if self.executor == "slurm" and shutil.which("sbatch") is None:
            raise StudyError("--launcher slurm needs SLURM's sbatch on PATH (run it on the cluster's login node)")


def tasks_of(cells: list[Cell], cells_per_task: int) -> list[list[Cell]]:
    """The cells in array tasks of at most ``cells_per_task``, in grid order."""
    return [cells[start:start + cells_per_task] for start in range(0, len(cells), cells_per_task)]


@dataclass
class CellTask:
    """One array task: its cells, run (or resumed) one after another; requeued when pre-empted."""

    cells: list[Cell]
    out: Path
    study: str
    preset: dict
    cells_per_device: int = 1

    def __call__(self) -> list[str]:
        todo = [cell for cell in self.cells if not result_path(cell, self.out, self.study).is_file()]
        # Under SLURM every cell is a process of its own, so that the signal reaches it alone.
        preset = {**self.preset, "in_process": False} if "SLURM_JOB_ID" in os.environ else self.preset
        (self.out / "logs").mkdir(parents=True, exist_ok=True)
        preemption.clear()
        requeue = signal.signal(PREEMPTION_SIGNAL, forward_preemption)  # submitit's handler
        try:
            run_cells(todo, self.out, self.study, preset, self.cells_per_device)
        except CellPreempted as error:
            print(f"{error}: requeueing the task", flush=True)
            signal.signal(PREEMPTION_SIGNAL, requeue)
            if callable(requeue):  # submitit: checkpoint() below, requeue, exit
                signal.raise_signal(PREEMPTION_SIGNAL)
            raise
        finally:
            signal.signal(PREEMPTION_SIGNAL, requeue)
        return [cell.name for cell in self.cells]

    def checkpoint(self):
        """What submitit requeues: the same task; finished cells are skipped, the interrupted one resumes."""
        from submitit.helpers import DelayedSubmission

        return DelayedSubmission(self)


def make_executor(out: Path, options: SlurmOptions, preset: dict):
    """A submitit executor for the array; its logs and pickles go to ``DIR/slurm``."""
    import submitit
    from submitit.core.job_environment import JobEnvironment

    JobEnvironment.USR_SIG = os.environ["SUBMITIT_PREEMPT_SIGNAL"]
    executor = submitit.AutoExecutor(folder=out / "slurm" / "%j", cluster=options.executor)
    cpus = options.cpus_per_task or int(preset.get("num_workers") or 0) + 1
    executor.update_parameters(name="sslprobe-imbalance", timeout_min=options.time, tasks_per_node=1, nodes=1,
                               gpus_per_node=options.gpus_per_task, cpus_per_task=cpus,
                               slurm_signal_delay_s=options.signal_delay)
    if options.partition:
        executor.update_parameters(slurm_partition=options.partition)
    return executor


def launch_slurm(cells: list[Cell], out: Path, study: str, preset: dict, options: SlurmOptions,
                 cells_per_device: int = 1) -> None:
    """Submit the unfinished ``cells`` as one job array and wait for every task; the first failure is raised."""
    todo = [cell for cell in cells if not result_path(cell, out, study).is_file()]
    if not todo:
        return
    executor = make_executor(out, options, preset)
    tasks = [CellTask(group, out, study, preset, cells_per_device) for group in tasks_of(todo, options.cells_per_task)]
    with executor.batch():
        jobs = [executor.submit(task) for task in tasks]
    print(f"submitted {len(jobs)} array task(s) of at most {options.cells_per_task} cell(s) "
          f"(job {jobs[0].job_id.split('_')[0]}); logs in {out / 'slurm'}", flush=True)
    failures = []
    for job in jobs:
        try:
            job.result()
        except Exception as error:  # submitit re-raises the task's error with its traceback
            failures.append(f"task {job.job_id}: {str(error).strip().splitlines()[-1]}")
    placeholder = out / "slurm" / "%j"  # submitit makes a folder named after the pattern; each job has its own
    if placeholder.is_dir() and not any(placeholder.iterdir()):
        placeholder.rmdir()
    if failures:
        raise RuntimeError(f"{len(failures)} array task(s) failed; first: {failures[0]} (see {out / 'slurm'})")
