"""A failure after a run has started: one line, printed by the first process, and nothing of a new run left.

In a multi-process run that Lightning launches, the first process (rank 0) starts the others. A
process that fails hands its error line to rank 0 through a file in a directory rank 0 made for
the launch (`FAILURES_ENV`, inherited by the processes it starts) and exits without printing.
Rank 0 then sees only the broken connection to that process; it waits for the others to end,
and reports the line of the process that failed first instead of its own. A failure of rank 0
itself is reported at once, and the other processes (waiting for it in a collective) are ended.

A new run that fails before its first checkpoint is removed (run directory with config.yaml,
subset.json, metrics and the offline W&B run), as if it had failed before it started; a run with
a checkpoint is kept, and the line says how to resume it.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import tempfile
from pathlib import Path

FAILURES_ENV = "SSLPROBE_FAILURE_DIR"
WAIT_FOR_PROCESSES_S = 120  # how long rank 0 waits for a failed process to write its line and end


class RunFailed(Exception):
    """A run failed after it started. ``line`` is what to print (None: another process prints it)."""

    def __init__(self, line: str | None, code: int = 1):
        super().__init__(line or "")
        self.line, self.code = line, code


def prepare_reports() -> str | None:
    """In the first process: a directory for the others' error lines (None when one exists already)."""
    if FAILURES_ENV in os.environ:
        return None
    directory = tempfile.mkdtemp(prefix="sslprobe-failures-")
    os.environ[FAILURES_ENV] = directory
    return directory


def close_reports(directory: str | None) -> None:
    """Remove the directory `prepare_reports` made (and forget it)."""
    if directory is not None:
        shutil.rmtree(directory, ignore_errors=True)
        if os.environ.get(FAILURES_ENV) == directory:
            del os.environ[FAILURES_ENV]


def is_communication_error(error: BaseException) -> bool:
    """Whether ``error`` is a collective broken by another process (its cause is elsewhere)."""
    import torch.distributed as dist

    text = str(error)
    return isinstance(error, getattr(dist, "DistBackendError", ())) or any(
        words in text for words in ("Connection closed by peer", "Connection reset by peer", "remote worker",
                                    "Broken pipe", "NCCL communicator was aborted"))


def other_processes_line(procs: list, wait: bool) -> str | None:
    """End the processes rank 0 started (waiting for them when ``wait``) and return the first line one left."""
    for proc in procs:
        try:
            if wait:
                proc.wait(timeout=WAIT_FOR_PROCESSES_S)
        except subprocess.TimeoutExpired:
            pass
        if proc.poll() is None:
            proc.send_signal(signal.SIGKILL)
            proc.wait()
    directory = os.environ.get(FAILURES_ENV)
    reports = sorted(Path(directory).glob("rank*.txt"), key=lambda p: int(p.stem[4:])) if directory else []
    return reports[0].read_text().strip() if reports else None


def finish_wandb() -> None:
    """Close the W&B run of this process, so its files are complete (and a next in-process run starts its own)."""
    wandb = sys.modules.get("wandb")
    if wandb is not None and getattr(wandb, "run", None) is not None:
        wandb.finish()


def remove_new_run(run_dir: Path, first_new_dir: Path | None) -> str | None:
    """Remove a new run that failed before its first checkpoint; else say how to resume it."""
    if first_new_dir is None:  # a resumed run or a reused directory: what was there stays
        return None
    checkpoints = run_dir / "checkpoints"
    if checkpoints.is_dir() and any(checkpoints.glob("*.ckpt")):
        return f"run kept: {run_dir} (resume with --ckpt_path last)"
    shutil.rmtree(first_new_dir, ignore_errors=True)
    return None


def fail_run(error: BaseException, trainer, run_dir: Path, first_new_dir: Path | None) -> RunFailed:
    """The `RunFailed` of ``error`` raised after the start, with the processes ended and the run cleaned up.

    Args:
        error: what this process raised.
        trainer: the run's Trainer (its rank, world size and launcher).
        run_dir: the run directory.
        first_new_dir: the outermost directory the run created (None: the run directory existed).
    """
    from sslprobe.cli.errors import error_line

    rank, world = trainer.global_rank, trainer.world_size
    line = error_line(error) + (f" (process {rank} of {world})" if world > 1 else "")
    directory = os.environ.get(FAILURES_ENV)
    finish_wandb()
    if rank != 0:
        if directory is None:  # launched by another launcher: no way to hand the line over
            return RunFailed(line)
        (Path(directory) / f"rank{rank}.txt").write_text(line)
        return RunFailed(None)
    procs = list(getattr(trainer.strategy.launcher, "procs", None) or [])
    communication = is_communication_error(error)
    reported = other_processes_line(procs, wait=communication)
    if communication and reported:
        line = reported
    kept = remove_new_run(run_dir, first_new_dir)
    return RunFailed(f"{line}; {kept}" if kept and "checkpoint" not in line else line)
