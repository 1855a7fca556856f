"""Running the cells: one after another, or K per device at once, each resumable.

A cell with a last checkpoint is resumed; one that died before its first checkpoint is moved to
``DIR/failed/`` and started afresh; one whose training finished but whose final probes did not
is measured from its last checkpoint (``python -m sslprobe probe``). Each cell's output goes to
``DIR/logs/<cell>.log`` and its start and end times to ``DIR/logs/cells.jsonl``.

Pre-emption: a cell stopped by `PREEMPTION_SIGNAL` (SIGUSR1, SLURM's warning with
``--signal=USR1@90``) writes its ``last.ckpt`` and exits (`sslprobe.callbacks.ExactResume`); running it
again resumes it exactly. `forward_preemption` passes the signal on to the cells running as
processes, and a pre-empted cell raises `CellPreempted` (see `sslprobe.studies.imbalance.launcher`).
A cell is one process on one device: the ``SLURM_*`` variables of the job that runs it are not
passed on, so Lightning does not take the cell for a SLURM-launched run.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

from sslprobe.studies.imbalance.grid import Cell, fit_command, record_protocol, result_path, run_dir, write_cell_config
from sslprobe.studies.imbalance.presets import REPO

PREEMPTION_SIGNAL = signal.SIGUSR1
preemption = threading.Event()  # set by `forward_preemption`: start no further cell
_running: set[subprocess.Popen] = set()  # the cells running as processes now


class CellPreempted(RuntimeError):
    """A cell stopped by the pre-emption signal (its last checkpoint written), or a stop between cells."""


def forward_preemption(signum: int, frame=None) -> None:
    """Signal handler: pass the signal on to every running cell (each checkpoints and exits) and
    start no further cell."""
    preemption.set()
    for process in list(_running):
        with contextlib.suppress(ProcessLookupError):
            process.send_signal(signum)


def preempted(code: int) -> bool:
    """Whether an exit code is that of a run stopped by `PREEMPTION_SIGNAL` (handled or not)."""
    return code in (128 + PREEMPTION_SIGNAL, -PREEMPTION_SIGNAL)


def run_cell(cell: Cell, out: Path, study: str, in_process: bool = False, env: dict | None = None) -> float:
    """Run (or resume) one cell; returns its wall time in seconds.

    ``in_process`` calls the same CLI entry point (`sslprobe.cli.main`) in this interpreter
    instead of a new ``python -m sslprobe`` process, saving its start-up (the smoke preset);
    ``env`` adds environment variables to that process (its device, its threads).
    """
    directory = run_dir(cell, out, study)
    write_cell_config(cell, out, study)
    command = fit_command(cell, out)
    if (directory / "checkpoints" / "last.ckpt").is_file():
        command += ["--ckpt_path", "last"]
    elif directory.exists():
        # Died before its first checkpoint: keep it aside, start the cell afresh.
        aside = out / "failed" / f"{cell.name}-{int(time.time())}"
        aside.parent.mkdir(exist_ok=True)
        shutil.move(str(directory), aside)
    start = time.time()
    log = out / "logs" / f"{cell.name}.log"
    run_sslprobe(command[3:], log, in_process, env)
    if not result_path(cell, out, study).is_file():
        # Training had finished but the final probes had not: measure the last checkpoint.
        checkpoint = directory / "checkpoints" / "last.ckpt"
        run_sslprobe(["probe", "--ckpt_path", str(checkpoint), "--what", "spectrum,linear"], log, in_process, env)
    if not result_path(cell, out, study).is_file():
        raise RuntimeError(f"cell {cell.name} wrote no linear evaluation; see {log}")
    record_protocol(cell, out, study)
    with open(out / "logs" / "cells.jsonl", "a") as handle:  # when each cell ran, for cost estimates
        handle.write(json.dumps({"cell": cell.name, "start": start, "end": time.time(),
                                 "device": (env or {}).get("CUDA_VISIBLE_DEVICES", "cpu")}) + "\n")
    return time.time() - start


def run_sslprobe(args: list[str], log: Path, in_process: bool, env: dict | None = None) -> None:
    """``python -m sslprobe ARGS`` (or its entry point in this interpreter), output appended to ``log``."""
    os.environ.setdefault("WANDB_MODE", "offline")
    with open(log, "a") as handle:
        if in_process:
            from sslprobe.cli import main as sslprobe_main

            with contextlib.redirect_stdout(handle), contextlib.redirect_stderr(handle):
                try:
                    sslprobe_main(args)
                    code = 0
                except SystemExit as stop:
                    code = stop.code if isinstance(stop.code, int) else 1
        else:
            inherited = {key: value for key, value in os.environ.items() if not key.startswith("SLURM_")}
            process = subprocess.Popen([sys.executable, "-m", "sslprobe", *args], cwd=REPO, stdout=handle,
                                       stderr=subprocess.STDOUT, env={**inherited, **(env or {})})
            _running.add(process)
            try:
                code = process.wait()
            finally:
                _running.discard(process)
    if preempted(code):
        raise CellPreempted(f"python -m sslprobe {args[0]} was pre-empted (exit {code}); see {log}")
    if code != 0:
        raise RuntimeError(f"python -m sslprobe {args[0]} failed (exit {code}); see {log}")


def device_slots(accelerator: str, cells_per_device: int) -> list[dict]:
    """The environment of each concurrent cell: K per GPU, or K sharing the CPU's cores.

    On GPUs slot i sees only GPU ``i mod G`` (``CUDA_VISIBLE_DEVICES``); on a CPU each of the
    K processes gets ``cores // K`` threads, so K cells do not oversubscribe the cores.
    """
    import torch

    gpus = torch.cuda.device_count() if accelerator in ("auto", "gpu", "cuda") else 0
    if gpus:
        return [{"CUDA_VISIBLE_DEVICES": str(slot % gpus)} for slot in range(gpus * cells_per_device)]
    threads = str(max(1, (os.cpu_count() or 1) // cells_per_device))
    return [{"OMP_NUM_THREADS": threads, "MKL_NUM_THREADS": threads} for _ in range(cells_per_device)]


def run_cells(todo: list[Cell], out: Path, study: str, preset: dict, cells_per_device: int) -> None:
    """Run the cells one after another, or K per device at once in separate processes."""
    if cells_per_device == 1:
        for cell in todo:
            if preemption.is_set():
                raise CellPreempted(f"pre-empted before cell {cell.name}")
            seconds = run_cell(cell, out, study, preset.get("in_process", False))
            print(f"  {cell.name}: {seconds:.0f} s", flush=True)
        return
    import queue
    from concurrent.futures import ThreadPoolExecutor

    environments = device_slots(preset["accelerator"], cells_per_device)
    free: queue.Queue = queue.Queue()
    for env in environments:
        free.put(env)
    failed: list[BaseException] = []

    def work(cell: Cell) -> None:
        if failed or preemption.is_set():  # stop starting cells after a failure; the running ones finish
            if not failed and preemption.is_set():
                failed.append(CellPreempted(f"pre-empted before cell {cell.name}"))
            return
        env = free.get()  # one is always free: there are as many threads as slots
        try:
            seconds = run_cell(cell, out, study, in_process=False, env=env)
            print(f"  {cell.name}: {seconds:.0f} s ({', '.join(f'{k}={v}' for k, v in env.items())})", flush=True)
        except BaseException as error:
            failed.append(error)
        finally:
            free.put(env)

    with ThreadPoolExecutor(max_workers=len(environments)) as pool:
        list(pool.map(work, todo))
    if failed:
        raise failed[0]
