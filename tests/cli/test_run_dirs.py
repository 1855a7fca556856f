"""Runs in one root never collide, and a run directory that exists is never overwritten."""

from __future__ import annotations

from pathlib import Path

import yaml
from conftest import check_run, tiny_args  # tests/cli/conftest.py

KEPT = ["config.yaml", "subset.json", "metrics.csv", "checkpoints/last.ckpt"]


def snapshot(run_dir: Path) -> dict[str, bytes]:
    return {name: (run_dir / name).read_bytes() for name in KEPT}


def test_two_runs_get_two_directories(cifar, cifar_root, tmp_path, run_cli):
    args = tiny_args("simclr", cifar_root, tmp_path)
    code, _, err = run_cli(args)
    assert code == 0, err
    experiment = tmp_path / "simclr_resnet12_none"
    first = experiment / "version_0"
    check_run(first, "SimCLR", cifar.train.labels)
    before = snapshot(first)

    code, _, err = run_cli(args + ["--data.subset_seed", "1"])
    assert code == 0, err
    assert sorted(p.name for p in experiment.iterdir()) == ["version_0", "version_1"]
    second = experiment / "version_1"
    check_run(second, "SimCLR", cifar.train.labels)
    assert yaml.safe_load((second / "config.yaml").read_text())["data"]["subset_seed"] == 1
    assert yaml.safe_load((first / "config.yaml").read_text())["data"]["subset_seed"] == 0
    assert snapshot(first) == before

    # Naming an existing run without --ckpt_path is refused, and touches none of its files.
    code, _, err = run_cli(args + ["--run.version", "version_0"])
    assert code == 1
    assert "sslprobe: error:" in err and "exists" in err and "--ckpt_path last" in err
    assert "Traceback" not in err
    assert snapshot(first) == before
    assert sorted(p.name for p in experiment.iterdir()) == ["version_0", "version_1"]


def test_experiment_and_version_are_configurable(cifar, cifar_root, tmp_path, run_cli):
    args = tiny_args("simclr", cifar_root, tmp_path,
                     "--run.experiment", "ablation", "--run.version", "seed0")
    code, _, err = run_cli(args)
    assert code == 0, err
    assert [p.name for p in tmp_path.iterdir()] == ["ablation"]
    check_run(tmp_path / "ablation" / "seed0", "SimCLR", cifar.train.labels)
