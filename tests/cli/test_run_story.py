"""What a run leaves in W&B (offline files read back independently), what `probe` adds to it, and
that the checkpoints a run writes hold nothing beyond the weights-only allow-list."""

from __future__ import annotations

import csv
import json
import math
from pathlib import Path

import pytest
import torch
import wandb_records  # tests/wandb_records.py
import yaml
from conftest import tiny_args  # tests/cli/conftest.py

from sslprobe.cli import CHECKPOINT_GLOBALS, load_checkpoint, main

pytestmark = pytest.mark.slow

TINY_PROBES = [
    "--probes.spectrum.num_images", "128",
    "--probes.landscape.num_images", "64", "--probes.landscape.grid_points", "3",
    "--probes.linear_eval.epochs", "2", "--probes.linear_eval.train_size", "500",
    "--probes.linear_eval.test_size", "200", "--probes.linear_eval.knn_k", "10",
]


def csv_rows(path: Path) -> list[dict]:
    with open(path, newline="") as handle:
        return list(csv.DictReader(handle))


def wandb_files(run_dir: Path) -> list[Path]:
    return sorted(run_dir.glob("wandb/offline-run-*/run-*.wandb"))


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory, cifar_root) -> Path:
    root = tmp_path_factory.mktemp("runs")
    main(tiny_args("quickstart.yaml", cifar_root, root, "--run.version", "v", "--trainer.callbacks", "null",
                   "--trainer.enable_progress_bar", "false", *TINY_PROBES))
    return root / "simclr_resnet12_none" / "v"


def test_wandb_holds_the_whole_config_and_the_run_files(run_dir):
    (record_file,) = wandb_files(run_dir)
    wandb_records.wait_until_finished(record_file)
    assert wandb_records.run_ids(record_file) == {"simclr_resnet12_none-v"}
    logged = wandb_records.config(record_file)
    saved = yaml.safe_load((run_dir / "config.yaml").read_text())

    def value(key):
        entry = logged[key]
        return entry.get("value", entry) if isinstance(entry, dict) else entry

    assert value("model")["class_path"] == saved["model"]["class_path"] == "sslprobe.methods.SimCLR"
    assert value("trainer")["max_epochs"] == saved["trainer"]["max_epochs"] == 1
    assert value("seed_everything") == saved["seed_everything"] == 0
    assert value("data")["subset_size"] == saved["data"]["subset_size"]
    files = record_file.parent / "files"
    for name in ("config.yaml", "subset.json"):
        assert (files / name).read_bytes() == (run_dir / name).read_bytes(), name


def test_checkpoints_hold_only_allowed_types(run_dir):
    allowed = {f"{g.__module__}.{g.__qualname__}" for g in CHECKPOINT_GLOBALS}
    for path in sorted((run_dir / "checkpoints").glob("*.ckpt")):
        assert set(torch.serialization.get_unsafe_globals_in_checkpoint(path)) <= allowed, path
        checkpoint = load_checkpoint(path)
        # what the allow-list has to cover: RNG states, sampler position, probe states, hyper-parameters
        assert {"rng_states", "ImageDataModule", "hyper_parameters", "callbacks"} <= set(checkpoint)
        assert any(key.startswith("ProjectorSpectrum") for key in checkpoint["callbacks"])


def test_probe_continues_the_runs_wandb_run_and_metrics(run_dir, capsys):
    rows_before = csv_rows(run_dir / "metrics.csv")
    main(["probe", "--ckpt_path", str(run_dir / "checkpoints" / "last.ckpt"), "--what", "landscape,linear"])
    out = capsys.readouterr().out
    assert "landscape (epoch 1):" in out and "linear (epoch 1):" in out  # a 1-epoch run, counted from 1

    # metrics.csv keeps its rows and gains one per probe, at the checkpoint's step
    rows = csv_rows(run_dir / "metrics.csv")
    assert rows[: len(rows_before)] == [{**row, **{k: "" for k in rows[0] if k not in row}} for row in rows_before]
    added = rows[len(rows_before):]
    assert len(added) == 2 and {row["step"] for row in added} == {"2"}
    report = json.loads((run_dir / "probes" / "landscape_epoch1.json").read_text())
    linear = json.loads((run_dir / "probes" / "linear_eval.json").read_text())
    # a balanced subset has no rare class: the rare/frequent means are null, and not logged
    assert linear["rare_classes"] == [] and linear["rare_mean"] is None and linear["frequent_mean"] is None
    assert not any(row.get("linear/rare_mean") for row in rows)

    # W&B: a second offline record of the same run id, holding the probe's values
    files = wandb_files(run_dir)
    assert len(files) == 2, files
    for record_file in files:
        wandb_records.wait_until_finished(record_file)
    assert [wandb_records.run_ids(f) for f in files] == [{"simclr_resnet12_none-v"}] * 2
    history = wandb_records.history(files[-1])
    landscape_row = next(row for row in history if "landscape/min_2d_loss" in row)
    assert landscape_row["landscape/min_2d_loss"] == pytest.approx(report["min_2d_loss"])
    assert landscape_row["trainer/global_step"] == 2
    linear_row = next(row for row in history if "linear/top1" in row)
    assert linear_row["linear/top1"] == pytest.approx(linear["top1"])
    assert float(next(r for r in added if r.get("linear/top1"))["linear/top1"]) == pytest.approx(linear["top1"])
    assert any(key.startswith("landscape/loss_2d/") for row in history for key in row)  # the figures too
    # Many/medium/few-shot: a balanced subset puts every class in one group (200 images: 20 per class,
    # medium-shot); the empty groups are null in the JSON and NaN in metrics.csv and W&B (never 0),
    # for the trained and the random-init network.
    counts = linear["train_class_counts"]
    assert counts == [20] * 10
    csv_row = next(r for r in added if r.get("linear/top1"))
    for prefix in ("", "random_init_"):
        for name in ("", "knn_"):
            full, empty = f"{prefix}{name}medium_shot", [f"{prefix}{name}many_shot", f"{prefix}{name}few_shot"]
            balanced = linear.get(f"{prefix}knn_balanced" if name else f"{prefix}balanced")
            assert linear[full] == pytest.approx(balanced) if balanced is not None else 0 <= linear[full] <= 1
            assert all(linear[key] is None for key in empty)
            assert linear_row[f"linear/{full}"] == pytest.approx(linear[full])
            assert float(csv_row[f"linear/{full}"]) == pytest.approx(linear[full])
            assert all(math.isnan(linear_row[f"linear/{key}"]) and csv_row[f"linear/{key}"] == "nan" for key in empty)
