"""Crafted checkpoints and CIFAR-10 batch files are refused with one line naming the file, and the
code they carry never runs (the payload would create a file)."""

from __future__ import annotations

import pickle
from pathlib import Path

import pytest
import torch
import yaml
from conftest import tiny_args  # tests/cli/conftest.py

from sslprobe.data import DataError, load_cifar10

BATCH_FILES = [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch", "batches.meta"]


class Payload:
    """Unpickling this calls ``open(marker, "w")``: it creates the file ``marker``."""

    def __init__(self, marker: Path):
        self.marker = str(marker)

    def __reduce__(self):
        return open, (self.marker, "w")


def test_the_payload_runs_under_plain_pickle(tmp_path):
    marker = tmp_path / "created"
    pickle.loads(pickle.dumps(Payload(marker))).close()
    assert marker.is_file()  # so the refusals below are refusals of working code


def crafted_checkpoint(path: Path, marker: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.save({"state_dict": {}, "hyper_parameters": {"_class_path": "sslprobe.methods.SimCLR"},
                "callbacks": Payload(marker)}, path)
    return path


def one_error_line(err: str) -> str:
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("sslprobe: error:"), err
    return lines[0]


def test_crafted_checkpoint_is_refused_by_fit(cifar_root, tmp_path, run_cli):
    marker = tmp_path / "created"
    checkpoint = crafted_checkpoint(tmp_path / "shared.ckpt", marker)
    code, _, err = run_cli(tiny_args("simclr", cifar_root, tmp_path / "runs",
                                     "--ckpt_path", str(checkpoint)))
    line = one_error_line(err)
    assert code == 1 and f"{checkpoint} refused" in line and "open" in line, line
    assert not marker.exists()
    assert not (tmp_path / "runs").exists()


def test_crafted_checkpoint_is_refused_by_probe(cifar_root, tmp_path, run_cli):
    marker = tmp_path / "created"
    run_dir = tmp_path / "runs" / "exp" / "version_0"
    checkpoint = crafted_checkpoint(run_dir / "checkpoints" / "last.ckpt", marker)
    (run_dir / "config.yaml").write_text(yaml.safe_dump({
        "model": {"class_path": "sslprobe.methods.SimCLR", "init_args": {}},
        "data": {"root": str(cifar_root), "imbalance": "none", "subset_size": 200}}))
    code, _, err = run_cli(["probe", "--ckpt_path", str(checkpoint)])
    line = one_error_line(err)
    assert code == 1 and f"{checkpoint} refused" in line, line
    assert not marker.exists()
    assert not (run_dir / "probes").exists()


@pytest.mark.parametrize("name", ["data_batch_1", "test_batch", "batches.meta"])
def test_crafted_batch_file_is_refused(cifar_root, tmp_path, name):
    marker = tmp_path / "created"
    folder = tmp_path / "copy" / "cifar-10-batches-py"
    folder.mkdir(parents=True)
    for file in BATCH_FILES:
        (folder / file).symlink_to(cifar_root / "cifar-10-batches-py" / file)
    (folder / name).unlink()
    (folder / name).write_bytes(pickle.dumps({"data": Payload(marker), "labels": [0], "label_names": ["x"] * 10}))
    with pytest.raises(DataError) as info:
        load_cifar10(folder.parent)
    message = str(info.value)
    assert "\n" not in message and f"{folder / name} refused" in message and "open" in message, message
    assert not marker.exists()


def test_crafted_batch_file_fails_the_cli_in_one_line(cifar_root, tmp_path, run_cli):
    marker = tmp_path / "created"
    folder = tmp_path / "copy" / "cifar-10-batches-py"
    folder.mkdir(parents=True)
    for file in BATCH_FILES[1:]:
        (folder / file).symlink_to(cifar_root / "cifar-10-batches-py" / file)
    (folder / "data_batch_1").write_bytes(pickle.dumps({"data": Payload(marker), "labels": []}))
    code, _, err = run_cli(tiny_args("simclr", folder.parent, tmp_path / "runs"))
    line = one_error_line(err)
    assert code == 1 and "data_batch_1 refused" in line, line
    assert not marker.exists() and not (tmp_path / "runs").exists()
