"""scripts/reproduce_imbalance.py: the smoke grid end to end, resume, aggregation, bad arguments."""

from __future__ import annotations

import csv
import importlib.util
import json
import math
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
    ("random_init", "none", "none", 0, 0.30),
    ("random_init", "none", "none", 1, 0.32),
    ("random_init", "high", "none", 0, 0.30),
    ("random_init", "high", "none", 1, 0.32),
]
T_975_DF1 = 12.706  # two-sided 95 % t critical value, 1 degree of freedom (NIST/SEMATECH e-Handbook 1.3.6.7.2)


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
                    "num_test": 2000,
                }
            )


def test_aggregate_only_from_a_fixed_csv(tmp_path, capsys):
    write_fixed_csv(tmp_path / "results.csv")
    assert study.main(["--out", str(tmp_path), "--aggregate-only"]) == 0
    summary = (tmp_path / "summary.md").read_text()
    # SimCLR none: 50, 60 -> mean 55.0, sd 7.07, half width 12.706 * 7.07 / sqrt(2) = 63.5 -> [-8.5, 118.5];
    # high: 40, 50 -> 45.0 [-18.5, 108.5]; Δ per seed (50-40)/50 = 20 %, (60-50)/60 = 16.67 %:
    # mean 18.3 %, sd 2.36, half width 12.706 * 2.357 / sqrt(2) = 21.2 -> [-2.8, +39.5].
    half = T_975_DF1 * math.sqrt(50) / math.sqrt(2)
    assert f"{55 - half:.1f}, {55 + half:.1f}" == "-8.5, 118.5"
    assert "| SimCLR | mlp | 55.0 ± 7.1 [-8.5, 118.5] | 45.0 ± 7.1 [-18.5, 108.5] | +18.3% ± 2.4 [-2.8, +39.5] |" \
        in summary
    # SCL: one seed, no interval; Δ = (40 - 38) / 40 = +5.0 %
    assert "| SCL | mlp | 40.0 (one seed: no interval) | 38.0 (one seed: no interval) | " \
        "+5.0% (one seed: no interval) |" in summary
    assert "| Random init | none | 31.0 ± 1.4 [18.3, 43.7] | 31.0 ± 1.4 [18.3, 43.7] | — |" in summary
    assert "± 0.0" not in summary
    # Paired SimCLR - random init at 'none': 20, 28 -> +24.0, sd 5.66, half width 50.8 -> [-26.8, +74.8]
    assert "| SimCLR − random init, top-1 | mlp | none | 2 | +24.0 points ± 5.7 [-26.8, +74.8] | " \
        "no: interval contains 0 |" in summary
    # SCL - SimCLR shares only seed 0: one value, so no interval and no verdict either way.
    assert "| SCL − SimCLR, top-1 | mlp | none | 1 | -10.0 points (one seed: no interval) | one seed: cannot tell |" \
        in summary
    reading = summary.split("## Reading", 1)[1]
    assert "No difference is distinguishable from zero." in reading
    not_distinguishable = reading.split("Not distinguishable")[1]
    assert "SimCLR − random init, top-1 (mlp, none: +24.0 ± 5.7 [-26.8, +74.8])" in not_distinguishable
    # 2,000 test images at the mean top-1 (0.402): sqrt(0.402 * 0.598 / 2000) = 1.10 points
    assert "±1.10 points" in summary
    assert (tmp_path / "figure4.png").stat().st_size > 10_000


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--methods", "simclr", "byol"], "unknown method(s) ['byol']"),
        (["--imbalances", "extreme"], "unknown imbalance 'extreme'"),
        (["--seeds", "0"], "the grid is empty"),
        (["--cells-per-device", "0"], "--cells-per-device must be >= 1"),
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
    baselines = {("supervised", i, "none") for i in ("none", "medium", "high")}
    baselines |= {("random_init", i, "none") for i in ("none", "medium", "high")}
    assert cells == ssl | baselines
    assert all(0.0 <= float(r["top1"]) <= 1.0 for r in rows)
    # Every row holds its own cell's measurements: the run's linear_eval.json, and the RankMe of the
    # last embedding spectrum in its spectrum.npz (recomputed here from the covariance eigenvalues).
    for row in (r for r in rows if r["method"] != "random_init"):
        run = out / row["run_dir"]
        assert run.name == f"{row['method']}_{row['imbalance']}_{row['projector']}_seed{row['seed']}"
        linear = json.loads((run / "probes" / "linear_eval.json").read_text())
        for key in ("top1", "knn_top1", "balanced", "rare_mean", "frequent_mean"):
            if linear[key] is None:  # e.g. rare/frequent means without rare classes
                assert row[key] in ("", "None"), (row["run_dir"], key)
                continue
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


NEW_COLUMNS = ("num_test", "random_init_top1", "random_init_knn_top1", "knn_monitor_initial", "knn_monitor_final")


@pytest.mark.slow
def test_smoke_with_two_seeds_writes_every_new_column(tmp_path, cifar_root):
    out = tmp_path / "study"
    assert study.main(["--preset", "smoke", "--out", str(out), "--data-root", str(cifar_root), "--seeds", "2",
                       "--methods", "simclr", "spectral", "--imbalances", "none", "high", "--projectors", "mlp"]) == 0
    with open(out / "results.csv") as handle:
        rows = list(csv.DictReader(handle))
    assert set(study.CSV_FIELDS) <= set(rows[0])
    runs = [r for r in rows if r["method"] != "random_init"]
    baselines = [r for r in rows if r["method"] == "random_init"]
    assert len(runs) == 8 and {(r["imbalance"], r["seed"]) for r in baselines} == {
        (i, s) for i in ("none", "high") for s in ("0", "1")}
    for row in runs:
        for column in NEW_COLUMNS:
            assert row[column] not in ("", "None"), (row["run_dir"], column)
        assert int(float(row["num_test"])) == 500
        # The cell's baseline is the random-init row of its seed.
        baseline = next(b for b in baselines if b["seed"] == row["seed"] and b["imbalance"] == row["imbalance"])
        assert float(row["random_init_top1"]) == float(baseline["top1"])
    # The random init saw no data: the same at every imbalance; the two seeds are two networks.
    by_seed = {s: {float(b["top1"]) for b in baselines if b["seed"] == s} for s in ("0", "1")}
    assert all(len(values) == 1 for values in by_seed.values())
    assert len(list((out / "runs" / "random_init_cache").glob("*.json"))) == 2  # paid once per seed
    summary = (out / "summary.md").read_text()
    for section in ("## Linear-evaluation top-1", "## kNN top-1", "## Test-set sampling error",
                    "## Paired differences", "## Reading", "Random init", "SCL − SimCLR", "Δ SCL − Δ SimCLR"):
        assert section in summary, section
    assert "one seed: no interval" not in summary.split("## Paired")[0]  # every cell has 2 seeds
    assert (out / "figure4.png").stat().st_size > 10_000


@pytest.mark.slow
def test_two_cells_per_device_run_at_once(tmp_path, cifar_root):
    out = tmp_path / "study"
    assert study.main(["--preset", "smoke", "--out", str(out), "--data-root", str(cifar_root),
                       "--cells-per-device", "2", "--methods", "simclr", "--imbalances", "none", "high",
                       "--projectors", "mlp"]) == 0
    timings = [json.loads(line) for line in (out / "logs" / "cells.jsonl").read_text().splitlines()]
    assert sorted(t["cell"] for t in timings) == ["simclr_high_mlp_seed0", "simclr_none_mlp_seed0"]
    assert max(t["start"] for t in timings) < min(t["end"] for t in timings)  # the two overlapped
    with open(out / "results.csv") as handle:
        assert len([r for r in csv.DictReader(handle) if r["method"] == "simclr"]) == 2
