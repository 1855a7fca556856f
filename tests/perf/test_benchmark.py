"""`scripts/benchmark.py --quick` runs and writes every section of its JSON report.

Benchmarks are reports, not timed tests: nothing here checks a speed.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]


@pytest.mark.slow
@pytest.mark.timeout(900)
def test_quick_benchmark_writes_every_section(tmp_path, cifar_root):
    out = tmp_path / "bench.json"
    command = [sys.executable, str(REPO / "scripts" / "benchmark.py"), "--quick", "--json", str(out),
               "--data-root", str(cifar_root)]
    env = {**os.environ, "WANDB_MODE": "offline"}
    done = subprocess.run(command, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=880)
    assert done.returncode == 0, done.stderr[-3000:]
    assert "QUICK mode" in done.stdout and "fit / bare loop" in done.stdout
    report = json.loads(out.read_text())
    assert report["mode"] == "quick"
    assert set(report["fit"]) == {"resnet18", "resnet12", "vit_tiny"}
    for row in report["fit"].values():
        assert row["fit_images_per_s"] > 0 and row["bare_images_per_s"] > 0 and row["fit_vs_bare"] > 0
    augmentation = report["augmentation"]
    for key in ("batched_images_per_s", "pil_per_sample_images_per_s", "tensor_per_sample_images_per_s",
                "batched_vs_pil"):
        assert augmentation[key] > 0
    probes = report["probes"][0]
    assert probes["landscape"]["cost_vs_forward"] >= 1 and probes["linear"]["cost_vs_forward"] >= 1
    assert probes["theory"]["cost_vs_forward"] >= 1 and probes["theory"]["images"] == 64
    assert probes["spectrum"]["fraction_of_epoch"] > 0
    scaling = report["scaling"]
    assert all(row["backbone_passes"] == 1 for row in scaling["landscape_vs_grid"])
    assert len(scaling["fit_vs_batch_size"]) >= 2 and len(scaling["linear_vs_epochs"]) >= 2
