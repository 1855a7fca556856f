"""One run as 2 nodes x 1 process, launched as clusters launch it, equals the run as 1 node x 2 processes.

Two launchers start the 2-node run on this machine: torchrun with a c10d rendezvous on 127.0.0.1
(two agents, one per "node", as the command of docs/guide/clusters.md), and two processes given
the ``SLURM_*`` variables ``srun --nodes 2 --ntasks-per-node 1`` sets (Lightning's
``SLURMEnvironment`` reads them). Each launch must make one run directory (named after the job id),
one W&B run, one set of checkpoints, the same training subset on every rank, and the weights of the
1-node run: with one thread per process the reductions are the same, so the weights are bitwise
equal.
"""

from __future__ import annotations

import csv
import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from helpers import tiny_fit_args  # tests/helpers.py

pytestmark = [pytest.mark.distributed, pytest.mark.slow, pytest.mark.timeout(900)]

REPO = Path(__file__).resolve().parents[2]
EXPERIMENT = "multinode"
TIMEOUT = 400  # seconds per launch, generous for a loaded machine


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def fit_args(root: Path, cifar_root: Path, num_nodes: int, devices: int) -> list[str]:
    """3 float32 steps of a tiny BatchNorm-free SimCLR on 2 processes, logged to W&B (offline) and CSV."""
    args = tiny_fit_args(root, cifar_root, EXPERIMENT, "unused", subset_size=100, batch_size=16, max_epochs=1,
                         model=("--model.init_args.projector_batch_norm", "false"),
                         backbone_kwargs="{widths: [4, 8, 8, 8], norm: group}")
    at = args.index("--run.version")
    del args[at:at + 2]  # the launch names the run (job id), as on a cluster
    loggers = json.dumps([
        {"class_path": "lightning.pytorch.loggers.WandbLogger", "init_args": {"project": "sslprobe"}},
        {"class_path": "lightning.pytorch.loggers.CSVLogger", "init_args": {"save_dir": str(root)}},
    ])
    return [
        *args,
        "--trainer.logger", loggers,
        "--trainer.callbacks", json.dumps([{"class_path": "rank_record.RankRecord"}]),
        "--trainer.limit_train_batches", "3",
        "--trainer.limit_val_batches", "0",
        "--trainer.log_every_n_steps", "1",
        "--trainer.accelerator", "cpu",
        "--trainer.strategy", "ddp",
        "--trainer.num_nodes", str(num_nodes),
        "--trainer.devices", str(devices),
    ]


def base_env(root: Path) -> dict:
    env = {key: value for key, value in os.environ.items()
           if not key.startswith(("SLURM_", "TORCHELASTIC_", "SSLPROBE_RUN_VERSION"))}
    env.update(WANDB_MODE="offline", OMP_NUM_THREADS="1", MKL_NUM_THREADS="1", RANK_RECORD_DIR=str(root / "ranks"),
               PYTHONPATH=os.pathsep.join([str(Path(__file__).parent), env.get("PYTHONPATH", "")]))
    return env


def run_processes(root: Path, commands: list[tuple[list[str], dict]]) -> None:
    """Start every process, wait for all (bounded), kill what is left; each must exit 0."""
    logs = [open(root / f"process{i}.log", "w+") for i in range(len(commands))]
    processes = [subprocess.Popen(command, cwd=REPO, env=env, stdout=log, stderr=subprocess.STDOUT)
                 for (command, env), log in zip(commands, logs)]
    try:
        codes = [process.wait(timeout=TIMEOUT) for process in processes]
    finally:
        for process in processes:
            if process.poll() is None:
                process.kill()
                process.wait()
    outputs = []
    for log in logs:
        log.seek(0)
        outputs.append(log.read())
        log.close()
    for code, output in zip(codes, outputs):
        assert code == 0, output[-3000:]


def launch_one_node(root: Path, cifar_root: Path) -> None:
    """1 node x 2 processes: Lightning starts the second process itself."""
    run_processes(root, [([sys.executable, "-m", "sslprobe", *fit_args(root, cifar_root, 1, 2)],
                          {**base_env(root), "MASTER_ADDR": "127.0.0.1", "MASTER_PORT": str(free_port())})])


def launch_torchrun(root: Path, cifar_root: Path) -> None:
    """2 torchrun agents (one per node, 1 process each) meeting at a c10d rendezvous on 127.0.0.1."""
    endpoint = f"127.0.0.1:{free_port()}"
    command = [sys.executable, "-m", "torch.distributed.run", "--nnodes", "2", "--nproc-per-node", "1",
               "--rdzv-backend", "c10d", "--rdzv-endpoint", endpoint, "--rdzv-id", "4242", "--local-addr", "127.0.0.1",
               "-m", "sslprobe", *fit_args(root, cifar_root, 2, 1)]
    run_processes(root, [(command, base_env(root)), (command, base_env(root))])


def launch_slurm_like(root: Path, cifar_root: Path) -> None:
    """The two tasks of ``srun --nodes 2 --ntasks-per-node 1`` (job 777), started here with SLURM's variables."""
    port = str(free_port())
    commands = []
    for rank in range(2):
        env = {**base_env(root), "SLURM_JOB_ID": "777", "SLURM_JOB_NAME": "sslprobe", "SLURM_NTASKS": "2",
               "SLURM_NNODES": "2", "SLURM_NTASKS_PER_NODE": "1", "SLURM_PROCID": str(rank), "SLURM_LOCALID": "0",
               "SLURM_NODEID": str(rank), "SLURM_NODELIST": "127.0.0.1", "MASTER_ADDR": "127.0.0.1",
               "MASTER_PORT": port}
        commands.append(([sys.executable, "-m", "sslprobe", *fit_args(root, cifar_root, 2, 1)], env))
    run_processes(root, commands)


def the_run(root: Path) -> Path:
    """The one run directory of the launch under ``root``."""
    runs = sorted(path for path in (root / EXPERIMENT).iterdir() if path.is_dir())
    assert len(runs) == 1, runs  # one run directory, whatever the number of processes
    return runs[0]


def rank_records(root: Path) -> list[dict]:
    return [json.loads((root / "ranks" / f"rank{rank}.json").read_text()) for rank in range(2)]


def loss_curve(run_dir: Path) -> list[float]:
    with open(run_dir / "metrics.csv") as handle:
        return [float(row["train/loss"]) for row in csv.DictReader(handle) if row.get("train/loss")]


def weights(run_dir: Path) -> dict:
    return torch.load(run_dir / "checkpoints" / "last.ckpt", map_location="cpu", weights_only=False)["state_dict"]


@pytest.fixture(scope="module")
def one_node(tmp_path_factory, cifar_root) -> Path:
    root = tmp_path_factory.mktemp("one_node")
    launch_one_node(root, cifar_root)
    return root


def check_launch(root: Path, reference_root: Path, environment: str, job: str) -> None:
    run, reference = the_run(root), the_run(reference_root)
    assert run.name == f"job_{job}"
    # One W&B run and one set of checkpoints, written by rank 0 only.
    assert len(list((run / "wandb").glob("offline-run-*/run-*.wandb"))) == 1
    assert sorted(p.name for p in (run / "checkpoints").iterdir()) == \
        sorted(p.name for p in (reference / "checkpoints").iterdir())
    # Every rank trained in that directory on the same subset, one process per node.
    records = rank_records(root)
    assert [(r["global_rank"], r["node_rank"], r["local_rank"], r["world_size"]) for r in records] == \
        [(0, 0, 0, 2), (1, 1, 0, 2)]
    assert {r["environment"] for r in records} == {environment}
    assert {r["run_dir"] for r in records} == {str(run.resolve())}
    reference_records = rank_records(reference_root)
    for key in ("subset_size", "class_counts", "subset_digest"):
        assert {json.dumps(r[key]) for r in records + reference_records} == {json.dumps(records[0][key])}, key
    # The same training: loss curve and weights, bitwise.
    curve = loss_curve(run)
    assert len(curve) == 3 and curve[0] != curve[-1], curve
    assert curve == loss_curve(reference)
    trained, expected = weights(run), weights(reference)
    assert trained.keys() == expected.keys()
    for name in expected:
        assert torch.equal(trained[name], expected[name]), f"{name} differs from the 1-node run"


def test_torchrun_two_nodes_equal_one_node_of_two_processes(tmp_path, cifar_root, one_node):
    launch_torchrun(tmp_path, cifar_root)
    check_launch(tmp_path, one_node, "TorchElasticEnvironment", "4242")


def test_slurm_two_nodes_equal_one_node_of_two_processes(tmp_path, cifar_root, one_node):
    launch_slurm_like(tmp_path, cifar_root)
    check_launch(tmp_path, one_node, "SLURMEnvironment", "777")
