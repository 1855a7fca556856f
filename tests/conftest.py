"""Shared fixtures: the real CIFAR-10 copy, built from ../shared/data when present."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
SHARED_DATA = REPO.parent / "shared" / "data"
DATA_ROOT = Path(os.environ.get("SSLPROBE_TEST_DATA", REPO / "data"))

os.environ.setdefault("WANDB_MODE", "offline")
os.environ.setdefault("WANDB_SILENT", "true")


@pytest.fixture(scope="session")
def cifar_root() -> Path:
    """Folder holding the real ``cifar-10-batches-py`` (and ``cifar-100-python`` where ../shared/data has
    its copy); each built once from ../shared/data if needed."""
    cifar100 = SHARED_DATA / "make_cifar100_python.py"
    if not (DATA_ROOT / "cifar-100-python" / "test").is_file() and cifar100.is_file():
        subprocess.run([sys.executable, str(cifar100), str(DATA_ROOT)], check=True, capture_output=True)
    if (DATA_ROOT / "cifar-10-batches-py" / "test_batch").is_file():
        return DATA_ROOT
    script = SHARED_DATA / "make_cifar10_batches.py"
    if not script.is_file():
        pytest.skip(f"real CIFAR-10 copy absent: neither {DATA_ROOT}/cifar-10-batches-py nor {script} exists")
    subprocess.run([sys.executable, str(script), str(DATA_ROOT)], check=True, capture_output=True)
    return DATA_ROOT


@pytest.fixture(scope="session")
def cifar(cifar_root):
    from sslprobe.data import load_cifar10

    return load_cifar10(cifar_root)
