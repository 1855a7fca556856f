"""sslprobe.studies.imbalance results: the typed row, results.csv, and the aggregated outputs.

The reference for the outputs is the study's code before its rows were typed (commit 75e4c18,
``scripts/reproduce_imbalance.py`` and ``sslprobe/studies/report.py`` read from git): the same
study directory must give byte-identical ``results.csv`` and ``summary.md``. (``figure4.png`` was
byte-identical too; it has changed since on purpose: one colour per method in both panels, one
legend of every method drawn.)
"""

from __future__ import annotations

import csv
import importlib.util
import json
import math
import re
import shutil
import subprocess
import sys
from dataclasses import fields
from pathlib import Path

import numpy as np
import pytest

from sslprobe.studies.imbalance import StudyError, StudyRow, aggregate, collect, grid, read_csv, write_csv

REPO = Path(__file__).resolve().parents[2]
REFERENCE_COMMIT = "75e4c18"
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
    """A hand-written results.csv, with the column names spelled out here (not taken from StudyRow)."""
    columns = ["method", "imbalance", "projector", "seed", "top1", "knn_top1", "balanced", "rare_mean",
               "frequent_mean", "effective_rank", "run_dir", "num_test"]
    with open(path, "w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(columns)
        for method, imbalance, projector, seed, top1 in FIXED_ROWS:
            writer.writerow([method, imbalance, projector, seed, top1, top1, top1, "", "", 3.0, "x", 2000])


def test_aggregate_only_from_a_fixed_csv(tmp_path):
    write_fixed_csv(tmp_path / "results.csv")
    aggregate(tmp_path)
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
    # Its power analysis: sd 5.66 points; ±2 needs t(0.975, n−1) · 5.657 / √n <= 2: n = 33 gives
    # 2.037 · 5.657 / 5.745 = 2.006, n = 34 gives 2.035 · 5.657 / 5.831 = 1.974 -> 34 seeds.
    assert "| SimCLR − random init, top-1 | mlp | none | 2 | 5.7 | ±50.8 | 34 |" in summary
    # SCL - SimCLR shares only seed 0: one value, so no interval and no verdict either way.
    assert "| SCL − SimCLR, top-1 | mlp | none | 1 | -10.0 points (one seed: no interval) | one seed: cannot tell |" \
        in summary
    reading = summary.split("## Reading", 1)[1]
    assert "No difference is distinguishable from zero." in reading
    not_distinguishable = reading.split("Not distinguishable")[1]
    # ... each with the bound its interval puts on the difference: |+24.0 ± 50.8| < 74.8
    assert "SimCLR − random init, top-1 (mlp, none: +24.0 ± 5.7 [-26.8, +74.8], so |difference| < 74.8 points)" \
        in not_distinguishable
    assert "SCL − SimCLR, top-1 (mlp, none: -10.0 (one seed: no interval))" in not_distinguishable
    # kNN equals top-1 in this file, so its baseline difference is the same numbers under its own name
    assert "| SimCLR − random init, kNN top-1 | mlp | none | 2 | +24.0 points ± 5.7 [-26.8, +74.8] | " \
        "no: interval contains 0 |" in summary
    assert "- Above the random-init baseline by more than the interval, top-1: 0 of " in reading
    assert "- Above the random-init baseline by more than the interval, kNN top-1: 0 of " in reading
    # 2,000 test images at the mean top-1 (0.402): sqrt(0.402 * 0.598 / 2000) = 1.10 points
    assert "±1.10 points" in summary
    assert (tmp_path / "figure4.png").stat().st_size > 10_000


def test_effective_rank_untrained_against_trained_by_hand(tmp_path):
    # Three seeds of one cell: RankMe after training 20, 24, 22 and of the same run's network at
    # step 0 40, 41, 45. Untrained: mean 42.0, sd √7 = 2.65, half width t(2) 4.303 · 2.65 / √3 =
    # 6.57 -> [35.4, 48.6]; trained: 22.0, sd 2.0, 4.303 · 2 / √3 = 4.97 -> [17.0, 27.0];
    # trained − untrained per run -20, -17, -23: -20.0, sd 3.0, 4.303 · 3 / √3 = 7.45 -> [-27.5, -12.5].
    columns = ["method", "imbalance", "projector", "seed", "top1", "effective_rank", "initial_effective_rank"]
    with open(tmp_path / "results.csv", "w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(columns)
        for seed, (final, initial) in enumerate(((20, 40), (24, 41), (22, 45))):
            writer.writerow(["simclr", "none", "none", seed, 0.4, final, initial])
        writer.writerow(["spectral", "none", "none", 0, 0.4, 30, ""])  # no step-0 spectrum: no rank row
    aggregate(tmp_path)
    summary = (tmp_path / "summary.md").read_text()
    assert "| SimCLR | none | none | 3 | 42.0 ± 2.6 [35.4, 48.6] | 22.0 ± 2.0 [17.0, 27.0] | " \
        "-20.0 ± 3.0 [-27.5, -12.5] | yes, below 0 |" in summary
    assert "| SCL | none |" not in summary.split("## Effective rank", 1)[1].split("## Reading")[0]
    assert "Rank lost in training, by more than the interval: 1 of 1 cells; gained: 0." in summary


def test_collect_reads_the_initial_rank_only_from_an_epoch_zero_spectrum(tmp_path):
    cells = grid(["simclr"], ["none"], ["none"], 2)
    for cell, epochs in zip(cells, ([0, 1, 2], [1, 2]), strict=True):
        probes = tmp_path / "runs" / "imbalance" / cell.name / "probes"
        probes.mkdir(parents=True)
        (probes / "linear_eval.json").write_text(json.dumps({"top1": 0.4, "num_test": 500}))
        np.savez(probes / "spectrum.npz", epochs=np.array(epochs), embeddings_effective_rank=np.array(
            [50.0, 30.0, 25.0][-len(epochs):]))
    first, second = collect(cells, tmp_path, "imbalance")
    assert (first.initial_effective_rank, first.effective_rank) == (50.0, 25.0)
    assert (second.initial_effective_rank, second.effective_rank) == (None, 25.0)


def test_rows_read_back_typed_with_absent_columns_as_none(tmp_path):
    write_fixed_csv(tmp_path / "results.csv")
    rows = read_csv(tmp_path / "results.csv")
    assert len(rows) == len(FIXED_ROWS)
    first = rows[0]
    assert (first.method, first.seed, first.top1, first.num_test, first.run_dir) == ("simclr", 0, 0.5, 2000, "x")
    assert type(first.seed) is int and type(first.num_test) is int and type(first.top1) is float
    assert first.rare_mean is None and first.knn_monitor_final is None  # empty, and a column the file lacks
    write_csv(rows, tmp_path / "again.csv")
    assert read_csv(tmp_path / "again.csv") == rows


@pytest.mark.parametrize(
    ("column", "text", "message"),
    [("seed", "", "column 'seed' is missing or empty"), ("top1", "high", "column 'top1' holds 'high'"),
     ("num_test", "2000.5", "column 'num_test' holds '2000.5'")],
)
def test_a_malformed_csv_is_a_one_line_error(tmp_path, column, text, message):
    write_fixed_csv(tmp_path / "results.csv")
    with open(tmp_path / "results.csv") as handle:
        records = list(csv.DictReader(handle))
    records[3][column] = text
    with open(tmp_path / "results.csv", "w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(records[0]))
        writer.writeheader()
        writer.writerows(records)
    with pytest.raises(StudyError, match=message) as error:
        read_csv(tmp_path / "results.csv")
    assert "\n" not in str(error.value) and str(tmp_path / "results.csv") in str(error.value)


# --------------------------------------------------------------------------- against the code before typed rows
def reference_module(name: str, path: str, folder: Path):
    """``path`` as of the reference commit, imported as module ``name``."""
    shown = subprocess.run(["git", "show", f"{REFERENCE_COMMIT}:{path}"], cwd=REPO, capture_output=True, text=True)
    if shown.returncode != 0:
        pytest.skip(f"the reference is {path} at commit {REFERENCE_COMMIT}, absent here: {shown.stderr.strip()}")
    file = folder / f"{name}.py"
    file.write_text(shown.stdout)
    spec = importlib.util.spec_from_file_location(name, file)
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module  # dataclasses look their module up here
    spec.loader.exec_module(module)
    return module


def make_study(out: Path, cells) -> None:
    """A study directory as the cells leave it, with every variant collect() must handle.

    Cells differ in: spectrum present or not (effective rank NaN), kNN monitor with or without
    its epoch-0 entry or absent, random init present or not, rare/frequent means null, and one
    cell unfinished (no linear_eval.json).
    """
    rng = np.random.default_rng(0)
    for index, cell in enumerate(cells):
        probes = out / "runs" / "imbalance" / cell.name / "probes"
        probes.mkdir(parents=True)
        if index == 5:
            continue  # unfinished
        accuracy = {key: float(rng.uniform(0.1, 0.9)) for key in ("top1", "knn_top1", "balanced")}
        rare = {"rare_mean": None, "frequent_mean": None} if cell.imbalance == "none" else {
            "rare_mean": float(rng.uniform(0.1, 0.5)), "frequent_mean": float(rng.uniform(0.5, 0.9))}
        result = {**accuracy, **rare, "per_class": rng.uniform(0, 1, 10).tolist(), "num_train": 1000,
                  "num_test": 500, "solver": "sgd", "seconds": 1.5}
        if index % 4 != 3:  # a baseline per (imbalance, seed), written by one or more of its cells
            random = float(rng.uniform(0.1, 0.3))
            result.update({"random_init_top1": random, "random_init_knn_top1": random / 2,
                           "random_init_balanced": random, "random_init_rare_mean": rare["rare_mean"],
                           "random_init_frequent_mean": rare["frequent_mean"], "random_init_seed": cell.seed,
                           "random_init_cache": str(out / "runs" / "random_init_cache" / f"{cell.seed}.json")})
        (probes / "linear_eval.json").write_text(json.dumps(result, indent=2))
        if index % 3 != 1:
            np.savez(probes / "spectrum.npz", embeddings_effective_rank=rng.uniform(1, 60, 3))
        if index % 5 != 2:
            start = 0 if index % 2 else 1
            history = [{"epochs_trained": epoch, "top1": float(rng.uniform(0, 1))} for epoch in range(start, 3)]
            (probes / "knn_monitor.json").write_text(json.dumps({"history": history}))


def tables_before_knn_baseline(summary: str) -> str:
    """``summary`` up to its reading, without the kNN − random init rows and the power analysis (both newer)."""
    tables = summary.split("## Reading", 1)[0]
    if "## Power analysis" in tables:
        head, _, rest = tables.partition("## Power analysis")
        tables = head + ("## " + rest.split("\n## ", 1)[1] if "\n## " in rest else "")
    return "\n".join(line for line in tables.splitlines() if "random init, kNN top-1" not in line)


def test_outputs_are_byte_identical_to_the_code_before_typed_rows(tmp_path, monkeypatch):
    old = reference_module("reference_reproduce_imbalance", "scripts/reproduce_imbalance.py", tmp_path)
    old_report = reference_module("reference_study_report", "sslprobe/studies/report.py", tmp_path)
    axes = (["simclr", "spectral", "supervised"], ["none", "high", "dirichlet:0.5"], ["mlp", "none"], 2)
    cells = grid(*axes)
    assert [c.name for c in cells] == [c.name for c in old.grid(*axes)]
    make_study(tmp_path / "study", cells)
    before, after = tmp_path / "before", tmp_path / "after"
    shutil.copytree(tmp_path / "study", before)
    shutil.copytree(tmp_path / "study", after)

    with monkeypatch.context() as patch:  # the reference's lazy imports of the report get the reference report
        patch.setitem(sys.modules, "sslprobe.studies.report", old_report)
        old.aggregate(before, old.collect(old.grid(*axes), before, "imbalance"))
        summary_from_runs = (before / "summary.md").read_bytes()
        old.aggregate(before)  # --aggregate-only: from results.csv
    rows = collect(cells, after, "imbalance")
    assert all(isinstance(row, StudyRow) for row in rows)
    aggregate(after, rows)

    text = (after / "results.csv").read_text()
    assert text.splitlines()[0] == ",".join(f.name for f in fields(StudyRow))
    assert ",nan," in text and ",," in text  # a missing spectrum and empty cells are both exercised
    assert len(cells) == 2 * 3 * 2 * 2 + 3 * 2
    assert len(rows) == len(cells) - 1 + 3 * 2  # every finished cell, plus a random init per (imbalance, seed)
    # Since then results.csv has one more, last column (initial_effective_rank, empty here: these
    # spectra have no epoch-0 row); the columns before it are byte-identical.
    assert text.splitlines()[0].endswith(",initial_effective_rank")
    assert all(line.endswith(",") for line in text.splitlines()[1:])
    assert "\n".join(line[:-1] for line in text.splitlines()[1:]) == \
        "\n".join((before / "results.csv").read_text().splitlines()[1:])
    # Since then the summary also compares kNN top-1 with random init (table rows and the reading's
    # counts); everything else is byte-identical.
    assert tables_before_knn_baseline((after / "summary.md").read_text()) == \
        tables_before_knn_baseline(summary_from_runs.decode())
    assert "random init, kNN top-1 | mlp | none | 2 |" in (after / "summary.md").read_text()
    aggregate(after)
    assert tables_before_knn_baseline((after / "summary.md").read_text()) == \
        tables_before_knn_baseline((before / "summary.md").read_text())
    assert (after / "figure4.png").stat().st_size > 10_000


def test_dry_run_commands_and_cell_configs_are_those_of_the_code_before(tmp_path, capsys):
    from sslprobe.studies.imbalance import main

    old = reference_module("reference_reproduce_imbalance", "scripts/reproduce_imbalance.py", tmp_path)
    old.REPO = REPO  # its configs are this checkout's
    out = tmp_path / "study"
    argv = ["--preset", "cpu", "--out", str(out), "--data-root", "/data", "--dry-run", "--imbalances", "none",
            "high", "dirichlet:0.3", "--methods", "simclr", "barlow_twins", "supervised"]
    written = []
    for run in (old.main, main):
        assert run(argv) == 0
        if run is main:  # a dry run writes nothing now; the files are those a run writes first
            from sslprobe.studies.imbalance.grid import grid, prepare, write_cell_config
            from sslprobe.studies.imbalance.presets import PRESETS, PROJECTORS, STUDY

            assert not out.exists()
            prepare(out, "cpu", "/data")
            for cell in grid(["simclr", "barlow_twins", "supervised"], ["none", "high", "dirichlet:0.3"],
                             list(PROJECTORS), PRESETS["cpu"]["seeds"]):
                write_cell_config(cell, out, STUDY)
        files = {path.relative_to(out): path.read_bytes() for path in sorted(out.rglob("*")) if path.is_file()}
        written.append((capsys.readouterr().out, files))
        shutil.rmtree(out)
    (printed_before, files_before), (printed_after, files_after) = written
    # The code before named one combined config per method; it is now composed from three fragments
    # (tests/cli/test_configs.py: they resolve to the same config).
    configs = REPO / "configs"
    printed_before = re.sub(
        rf"--config {re.escape(str(configs))}/(\w+)_resnet12_cifar10\.yaml",
        lambda m: f"--config {configs}/base.yaml --config {configs}/methods/{m.group(1)}.yaml "
                  f"--config {configs}/backbones/resnet12.yaml", printed_before)
    cells = (2 * 3 * 2 + 3) * 3  # (two methods x imbalances x projectors, and supervised) x the preset's 3 seeds
    assert printed_after == printed_before and printed_after.count("\n") == 1 + cells
    assert files_after == files_before and len(files_after) == 1 + cells  # preset.yaml and one file per cell


def test_the_figure_s_claim_panel_is_delta_scl_minus_delta_simclr_per_seed(tmp_path):
    from sslprobe.studies.imbalance.figure import claim_per_seed

    write_fixed_csv(tmp_path / "results.csv")
    rows = read_csv(tmp_path / "results.csv")
    # seed 0 only has both methods: Δ SCL = (0.40 - 0.38) / 0.40 = 0.05, Δ SimCLR = (0.50 - 0.40) / 0.50 = 0.2
    assert claim_per_seed(rows, "mlp", "high") == {0: pytest.approx(0.05 - 0.2)}
    assert claim_per_seed(rows, "none", "high") == {}  # no runs without projector
    aggregate(tmp_path)
    assert (tmp_path / "figure4.png").stat().st_size > 10_000
