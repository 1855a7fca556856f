"""Every script, and ``python -m sslprobe compare``, answers a bad argument with one line and exit 2."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
SCRIPTS = sorted(p.name for p in (REPO / "scripts").glob("*.py"))


@pytest.mark.parametrize("command", [*([str(REPO / "scripts" / name)] for name in SCRIPTS),
                                     ["-m", "sslprobe", "compare"]], ids=[*SCRIPTS, "sslprobe compare"])
def test_a_bad_argument_is_one_line(command, tmp_path):
    done = subprocess.run([sys.executable, *command, "--no-such-option"], cwd=tmp_path, capture_output=True,
                          text=True, timeout=120, env={**os.environ, "WANDB_MODE": "offline", "PYTHONPATH": str(REPO)})
    assert done.returncode == 2, done.stderr[-2000:]
    lines = done.stderr.strip().splitlines()
    # one line: the unknown option, or first a required argument it lacks
    assert len(lines) == 1 and ": error: " in lines[0] and lines[0].endswith("(--help shows the usage)"), done.stderr
    assert done.stdout == "" and list(tmp_path.iterdir()) == []  # nothing printed, nothing created
