"""Every script in scripts/, run as a file from another folder, imports the sslprobe of its own
checkout, even with another sslprobe earlier on the path (here a decoy that refuses to be imported)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
SCRIPTS = sorted((REPO / "scripts").glob("*.py"))


@pytest.mark.parametrize("script", SCRIPTS, ids=[s.stem for s in SCRIPTS])
def test_script_imports_its_own_checkout(script, tmp_path):
    decoy = tmp_path / "elsewhere" / "sslprobe"
    decoy.mkdir(parents=True)
    (decoy / "__init__.py").write_text('raise ImportError("the decoy sslprobe was imported")\n')
    env = {**os.environ, "PYTHONPATH": str(decoy.parent), "WANDB_MODE": "offline"}
    done = subprocess.run([sys.executable, str(script), "--help"], cwd=tmp_path, env=env, capture_output=True,
                          text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    assert "decoy" not in done.stderr and "usage:" in done.stdout
