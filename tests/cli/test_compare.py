"""`compare` on two short runs and one probed model: every number of its table is the one in that run's
files (read here independently); runs with other data or probe settings are refused or listed."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
import pytest
from helpers import tiny_fit_args  # tests/helpers.py
from test_untrusted_files import one_error_line  # tests/cli/test_untrusted_files.py

from sslprobe.cli import main

pytestmark = pytest.mark.slow

DATA = ["--data.imbalance", "none", "--data.subset_size", "100", "--data.batch_size", "25", "--data.num_workers", "0"]
PROBES = ["--probes.spectrum.num_images", "64", "--probes.landscape.num_images", "32",
          "--probes.landscape.grid_points", "3", "--probes.linear_eval.epochs", "3",
          "--probes.linear_eval.train_size", "100", "--probes.linear_eval.test_size", "50",
          "--probes.linear_eval.knn_k", "5"]


def fit(root: Path, cifar_root: Path, version: str, *extra: str) -> Path:
    main([*tiny_fit_args(root, cifar_root, "simclr", version, subset_size=100, batch_size=25, max_epochs=1,
                         configs=("callbacks/probes.yaml",)),
          "--probes.theory", "null", "--trainer.limit_train_batches", "2", "--trainer.limit_val_batches", "0",
          *DATA, *PROBES, *extra])
    return root / "simclr" / version


def probe(root: Path, cifar_root: Path, *extra: str) -> Path:
    main(["probe", "--backbone", "resnet12", "--backbone_kwargs", "{widths: [4, 8, 8, 8]}", "--device", "cpu",
          "--root", str(root), "--data.root", str(cifar_root), "--wandb_project", "null", *extra])
    return sorted((root / "probe_resnet12").iterdir())[-1]


@pytest.fixture(scope="module")
def runs(tmp_path_factory, cifar_root) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("runs")
    first = fit(root, cifar_root, "a")
    second = fit(root, cifar_root, "b", "--model.init_args.temperature", "0.2", "--seed_everything", "1")
    # run a's checkpoint probed as a model of another library would be (a Lightning checkpoint, prefixes
    # found), with the data and probe settings of run a
    probed = probe(root, cifar_root, "--settings_from", str(first), "--weights", str(first / "checkpoints" /
                   "last.ckpt"), "--projector", "mlp", "--projector_kwargs", "{hidden_dim: 16, output_dim: 8}",
                   "--objective", "NTXentLoss", "--what", "spectrum,linear,landscape")
    other_data = probe(root, cifar_root, "--what", "spectrum", *DATA, "--data.subset_seed", "1",
                       "--probes.spectrum.num_images", "64")
    return {"a": first, "b": second, "probed": probed, "other_data": other_data, "root": root}


def csv_rows(path: Path) -> list[dict]:
    with open(path, newline="") as handle:
        return list(csv.DictReader(handle))


def test_every_number_of_the_table_is_the_runs_own(runs, run_cli, tmp_path):
    out = tmp_path / "comparison"
    order = [runs["a"], runs["b"], runs["probed"]]
    code, stdout, err = run_cli(["compare", *map(str, order), "--out", str(out)])
    assert code == 0, err
    rows = csv_rows(out / "comparison.csv")
    markdown = (out / "comparison.md").read_text().splitlines()
    assert [row["run"] for row in rows] == [f"{r.parent.name}/{r.name}" for r in order]
    for row, run in zip(rows, order):
        linear = json.loads((run / "probes" / "linear_eval.json").read_text())
        expected = {"linear_top1": linear["top1"], "linear_top1_random_init": linear["random_init_top1"],
                    "knn_top1": linear["knn_top1"], "knn_top1_random_init": linear["random_init_knn_top1"]}
        with np.load(run / "probes" / "spectrum.npz") as spectrum:
            expected["features_effective_rank"] = float(spectrum["features_effective_rank"][-1])
            expected["embeddings_effective_rank"] = float(spectrum["embeddings_effective_rank"][-1])
        for key, value in expected.items():
            assert float(row[key]) == value, (run, key)
        (line,) = [m for m in markdown if m.startswith(f"| {row['run']} |")]
        cells = [c.strip() for c in line.strip("|").split("|")]
        assert cells[2:8] == [f"{100 * expected[k]:.2f}" for k in list(expected)[:4]] + [
            f"{expected[k]:.2f}" for k in list(expected)[4:]]
        (landscape,) = (run / "probes").glob("landscape_epoch*.json")
        verdict = json.loads(landscape.read_text())
        assert verdict["scale_invariant"] is True and row["landscape"].startswith("scale-invariant")
        assert f"r1={verdict['min_2d_r1']:g}, r2={verdict['min_2d_r2']:g}" in row["landscape"]
    assert rows[2]["model"] == "resnet12" and rows[0]["model"] == "SimCLR resnet12"
    # the same weights probed as a foreign file give the run's own numbers, baseline included
    for key in ("linear_top1", "knn_top1", "linear_top1_random_init", "features_effective_rank"):
        assert float(rows[2][key]) == pytest.approx(float(rows[0][key]), rel=1e-6, abs=1e-9), key
    for name in ("spectra_features.png", "spectra_embeddings.png"):
        assert (out / name).stat().st_size > 1000
    assert "linear top-1 %" in stdout


def test_runs_with_other_data_are_refused_or_listed(runs, run_cli, tmp_path):
    out = tmp_path / "comparison"
    code, _, err = run_cli(["compare", str(runs["a"]), str(runs["other_data"]), "--out", str(out)])
    line = one_error_line(err)
    assert code == 1 and "data.subset_seed" in line and "--allow_differences" in line, line
    assert not out.exists()
    code, stdout, err = run_cli(["compare", str(runs["a"]), str(runs["other_data"]), "--out", str(out),
                                 "--allow_differences"])
    assert code == 0, err
    markdown = (out / "comparison.md").read_text()
    assert "data.subset_seed: simclr/a=0, probe_resnet12/version_1=1" in markdown
    assert "settings differ: data.subset_seed" in stdout
    (a_row, other_row) = csv_rows(out / "comparison.csv")
    assert other_row["linear_top1"] == "" and a_row["linear_top1"] != ""  # no linear probe in that run
    code, _, err = run_cli(["compare", str(runs["a"]), str(runs["b"]), "--out", str(out), "--allow_differences"])
    assert code == 1 and "comparison.md exists" in one_error_line(err)  # nothing is overwritten
