"""scripts/reproduce_imbalance.py: the smoke grid end to end, resume, aggregation, bad arguments."""

from __future__ import annotations

import csv
import importlib.util
import json
import sys
from pathlib import Path

import numpy as np
import pytest

REPO = Path(__file__).resolve().parents[2]
spec = importlib.util.spec_from_file_location("reproduce_imbalance", REPO / "scripts" / "reproduce_imbalance.py")
study = importlib.util.module_from_spec(spec)
sys.modules["reproduce_imbalance"] = study  # dataclasses look their module up here
spec.loader.exec_module(study)

FIXED_ROWS = [  # method, imbalance, projector, seed, top1
    ("simclr", "none", "mlp", 0, 0.50),
    ("simclr", "none", "mlp", 1, 0.60),
    ("simclr", "high", "mlp", 0, 0.40),
    ("simclr", "high", "mlp", 1, 0.50),
    ("spectral", "none", "mlp", 0, 0.40),
    ("spectral", "high", "mlp", 0, 0.38),
]


def write_fixed_csv(path: Path) -> None:
    with open(path, "w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=study.CSV_FIELDS)
        writer.writeheader()
        for method, imbalance, projector, seed, top1 in FIXED_ROWS:
            writer.writerow(
                {
                    "method": method,
                    "imbalance": imbalance,
                    "projector": projector,
                    "seed": seed,
                    "top1": top1,
                    "knn_top1": top1,
                    "balanced": top1,
                    "rare_mean": "",
                    "frequent_mean": "",
                    "effective_rank": 3.0,
                    "run_dir": "x",
                }
            )


def test_aggregate_only_from_a_fixed_csv(tmp_path, capsys):
    write_fixed_csv(tmp_path / "results.csv")
    assert study.main(["--out", str(tmp_path), "--aggregate-only"]) == 0
    summary = (tmp_path / "summary.md").read_text()
    # SimCLR: none 55.0 ± 7.1 (std of 50, 60), high 45.0 ± 7.1, Δ = (55 - 45) / 55 = +18.2%
    assert "| SimCLR | mlp | 55.0 ± 7.1 (n=2) | 45.0 ± 7.1 (n=2) | +18.2% |" in summary
    # SCL: one seed, Δ = (40 - 38) / 40 = +5.0%
    assert "| SCL | mlp | 40.0 ± 0.0 (n=1) | 38.0 ± 0.0 (n=1) | +5.0% |" in summary
    assert (tmp_path / "figure4.png").stat().st_size > 10_000


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--methods", "simclr", "byol"], "unknown method(s) ['byol']"),
        (["--imbalances", "extreme"], "unknown imbalance 'extreme'"),
        (["--seeds", "0"], "the grid is empty"),
        (["--out", "/proc/sslprobe-study"], "is not writable"),
    ],
)
def test_bad_arguments(tmp_path, capsys, args, message):
    if "--out" not in args:
        args = ["--out", str(tmp_path / "study"), *args]
    assert study.main(["--preset", "smoke", *args]) == 2
    err = capsys.readouterr().err
    assert message in err and err.count("\n") == 1, err


@pytest.mark.slow
def test_smoke_grid_end_to_end_and_resume(tmp_path, cifar_root, capsys):
    out = tmp_path / "study"
    assert study.main(["--preset", "smoke", "--out", str(out), "--data-root", str(cifar_root)]) == 0
    with open(out / "results.csv") as handle:
        rows = list(csv.DictReader(handle))
    cells = {(r["method"], r["imbalance"], r["projector"]) for r in rows}
    ssl = {
        (m, i, p)
        for m in ("simclr", "spectral", "barlow_twins")
        for i in ("none", "medium", "high")
        for p in ("mlp", "none")
    }
    assert cells == ssl | {("supervised", i, "none") for i in ("none", "medium", "high")}
    # Every row holds its own cell's measurements: the run's linear_eval.json, and the RankMe of the
    # last embedding spectrum in its spectrum.npz (recomputed here from the covariance eigenvalues).
    for row in rows:
        run = out / row["run_dir"]
        assert run.name == f"{row['method']}_{row['imbalance']}_{row['projector']}_seed{row['seed']}"
        linear = json.loads((run / "probes" / "linear_eval.json").read_text())
        for key in ("top1", "knn_top1", "balanced", "rare_mean", "frequent_mean"):
            assert float(row[key]) == pytest.approx(linear[key], rel=1e-12), (row["run_dir"], key)
        per_class = [value for value in linear["per_class"] if value is not None]
        assert linear["balanced"] == pytest.approx(float(np.mean(per_class)), rel=1e-9)
        with np.load(run / "probes" / "spectrum.npz") as spectrum:
            sigma = np.sqrt(np.clip(spectrum["embedding_eigenvalues"][-1], 0, None))
        share = sigma[sigma > 0] / sigma.sum()
        assert float(row["effective_rank"]) == pytest.approx(float(np.exp(-(share * np.log(share)).sum())), rel=1e-3)
    assert (out / "summary.md").is_file() and (out / "figure4.png").is_file()
    # Each cell's subset follows its preset (rescaled to 200 images).
    subset = json.loads((out / "runs" / "imbalance" / "simclr_high_mlp_seed0" / "subset.json").read_text())
    assert subset["class_counts"][3] == 0 and sum(subset["class_counts"]) == 200
    capsys.readouterr()

    # A finished study is skipped; a cell whose final evaluation was lost is completed from its checkpoint.
    lost = out / "runs" / "imbalance" / "spectral_medium_none_seed0" / "probes" / "linear_eval.json"
    lost.unlink()
    assert study.main(["--preset", "smoke", "--out", str(out), "--data-root", str(cifar_root)]) == 0
    assert "21 cells, 20 already finished" in capsys.readouterr().out
    assert lost.is_file()
