"""`scripts/benchmark.py --quick` (argument parsing over `sslprobe.benchmark`) runs and writes every
section of its JSON report; `sslprobe.benchmark.configure` derives the settings the switches ask for;
the landscape probe runs the backbone once per image whatever its grid (the claim behind the
benchmark's cost).

Benchmarks are reports, not timed tests: nothing here checks a speed.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from sslprobe.benchmark import FULL, GPU, QUICK, configure
from sslprobe.callbacks import LandscapeProbe
from sslprobe.data.datamodule import CIFAR10DataModule
from sslprobe.methods import SimCLR

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
    # both sides of each probe's cost ratio were timed
    assert probes["landscape"]["forward_s"] > 0 and probes["landscape"]["grid_s"] > 0
    assert probes["linear"]["extract_s"] > 0 and probes["linear"]["train_eval_s"] > 0
    assert probes["spectrum"]["spectrum_s"] > 0 and probes["spectrum"]["epoch_s"] > 0
    assert probes["theory"]["images"] == 64 and probes["theory"]["theory_s"] > 0 and probes["theory"]["forward_s"] > 0
    scaling = report["scaling"]
    assert all(row["grid_s"] > 0 for row in scaling["landscape_vs_grid"])
    assert len(scaling["fit_vs_batch_size"]) >= 2 and len(scaling["linear_vs_epochs"]) >= 2
    resolution = report["resolution"]
    assert set(resolution["augmentation"]) == {"32", "96"} and resolution["augmentation"]["96"]["blur"]
    assert all(row["images_per_s"] > 0 for row in resolution["augmentation"].values())
    assert resolution["fit"]["image_size"] == 96 and resolution["fit"]["fit_vs_bare"] > 0
    assert "batched augmentation img/s at 96 px (blur)" in done.stdout
    # precision: the four variants timed in every repeat, ratios against the float32 run of the repeat
    precision = report["precision"]
    assert (precision["native_bfloat16"] is not None) == (report["settings"]["precision"] == "bf16-mixed")
    row = precision["models"]["resnet12_narrow"]
    assert set(row["runs"]) == {"float32", "channels_last", "bf16", "bf16_channels_last"}
    for variant, runs in row["runs"].items():
        assert len(runs) == report["repeats"] and all(value > 0 for value in runs)
        assert row["vs_float32_pairs"][variant] == pytest.approx([v / f for v, f in zip(runs, row["runs"]["float32"])])
    assert "fit bf16_channels_last / float32, resnet12_narrow" in done.stdout


def test_configure_derives_the_settings_of_the_switches():
    settings, mode, numerics = configure(quick=True, float32=True)
    assert mode == "quick" and numerics == "32-true (--float32)"
    assert settings == QUICK  # QUICK is float32 without channels-last already
    settings, mode, _ = configure(models=["resnet12"], float32=True)
    assert mode == "full" and settings.models == ("resnet12",) and settings.precision_models == FULL.precision_models
    settings, _, _ = configure(models=["resnet12_narrow"], only_precision=True, float32=True)
    assert settings.precision_models == ("resnet12_narrow",) and settings.models == FULL.models
    settings, mode, _ = configure(gpu=True, quick=True, float32=True)
    assert mode == "gpu" and settings.device == "cuda" and settings.steps == 5 < GPU.steps
    settings, _, numerics = configure()  # what run.precision auto picks for this CPU
    assert (settings.precision, settings.channels_last) in {("32-true", False), ("bf16-mixed", True)}
    assert numerics.startswith(settings.precision)


def test_landscape_probe_runs_the_backbone_once_per_image_whatever_the_grid(tmp_path, cifar_root):
    """Backbone calls counted by a hook during `LandscapeProbe.measure`, for a small and a larger grid."""
    torch.manual_seed(0)
    method = SimCLR(backbone="resnet12", backbone_kwargs={"widths": [4, 8, 8, 8]}, hidden_dim=16, output_dim=8)
    datamodule = CIFAR10DataModule(root=str(cifar_root), imbalance="none", subset_size=100, batch_size=20,
                                   num_workers=0)
    datamodule.setup_for_run(tmp_path)
    images_seen: list[int] = []
    method.backbone.register_forward_hook(lambda module, args, output: images_seen.append(args[0].shape[0]))
    for points in (3, 9):
        images_seen.clear()
        LandscapeProbe(num_images=48, grid_points=points).measure(method, datamodule, tmp_path, epoch=points)
        assert images_seen == [48, 48], (points, images_seen)  # each view once, in one batch of 48
        with np.load(tmp_path / "probes" / f"landscape_epoch{points}.npz") as landscape:
            assert landscape["loss_2d"].shape == (points, points) and landscape["loss_1d"].shape == (points,)


def test_evaluation_cost_section_uses_the_study_protocol_at_each_size(cifar_root):
    from sslprobe.benchmark.evaluation import bench_evaluation

    report = bench_evaluation(str(cifar_root), QUICK, repeats=1, sizes=((100, 50), (200, 500)), accuracy=0.5)
    rows = report["rows"]
    # balanced subsets: train_size // 10 and test_size // 10 images of each class
    assert [(r["train_images"], r["test_images"]) for r in rows] == [(100, 50), (200, 500)]
    assert rows[0]["vs_first"] == 1.0 and rows[1]["vs_first"] == rows[1]["seconds"] / rows[0]["seconds"]
    assert all(r["seconds"] > 0 for r in rows)
    # 1.96 √(p (1 − p) / n) in points at p = 0.5: 13.86 on 50 images, 4.38 on 500
    assert [round(r["half_width_95_points"], 2) for r in rows] == [13.86, 4.38]
