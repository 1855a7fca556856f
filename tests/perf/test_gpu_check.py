"""scripts/gpu_check.py: refuses without CUDA in one line, checks its options, and its CPU dry run writes
the report's every field from real (tiny) ``fit`` runs and a plain loop."""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
SCRIPT = REPO / "scripts" / "gpu_check.py"


def run_script(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    env = {**os.environ, "CUDA_VISIBLE_DEVICES": ""}  # no GPU, whatever the machine has
    return subprocess.run([sys.executable, str(SCRIPT), *args], cwd=cwd, capture_output=True, text=True,
                          timeout=600, env=env)


def test_without_cuda_it_refuses_in_one_line(tmp_path):
    done = run_script("--out", str(tmp_path / "gpu.json"), cwd=tmp_path)
    assert done.returncode == 2
    assert done.stderr == ("gpu_check: error: no CUDA device: this check measures one GPU "
                           "(--dry-run runs its code on the CPU)\n")
    assert not (tmp_path / "gpu.json").exists()


def test_bad_options_are_refused(tmp_path):
    for option in ("--steps", "--warmup"):
        done = run_script(option, "0", "--out", str(tmp_path / "gpu.json"), cwd=tmp_path)
        assert done.returncode == 2 and f"argument {option}" in done.stderr, done.stderr
    assert not (tmp_path / "gpu.json").exists()


def positive(value) -> bool:
    return isinstance(value, float) and math.isfinite(value) and value > 0


@pytest.mark.slow
def test_cpu_dry_run_writes_the_report(tmp_path, cifar_root):
    out = tmp_path / "bench" / "gpu.json"
    done = run_script("--dry-run", "--data-root", str(cifar_root), "--out", str(out), cwd=tmp_path)
    assert done.returncode == 0, done.stderr[-3000:]
    assert done.stdout.endswith(f"wrote {out}\n")
    report = json.loads(out.read_text())
    assert report["mode"] == "cpu-dry-run"
    fit = report["fit_vs_plain_loop"]
    assert fit["setting"]["backbone"] == "resnet12" and fit["setting"]["batch_size"] == 16
    assert positive(fit["fit_images_per_s"]) and positive(fit["plain_loop_images_per_s"])
    assert fit["fit_over_plain_loop"] == fit["fit_images_per_s"] / fit["plain_loop_images_per_s"]
    paper = report["paper_preset_step"]
    assert positive(paper["step_ms"]) and paper["steps_per_cell"] == 200 * math.ceil(20_000 / 32)
    assert paper["training_hours_per_cell"] == paper["steps_per_cell"] * paper["step_ms"] / 3.6e6
    paths = report["one_gpu_paths"]["paths"]
    assert [(p["channels_last"], p["compile"], p["augment_on"]) for p in paths] == [
        (False, False, "device"), (True, False, "device"), (True, False, "workers")]
    assert all(positive(p["images_per_s"]) for p in paths)
