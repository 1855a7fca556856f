"""scripts/reproduce_imbalance.py, the entry point: as a program, and the smoke grid end to end with resume.

The study's logic is tested in tests/studies/test_imbalance_*.py.
"""

from __future__ import annotations

import csv
import importlib.util
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from sslprobe.studies.imbalance import StudyRow

REPO = Path(__file__).resolve().parents[2]
SCRIPT = REPO / "scripts" / "reproduce_imbalance.py"
spec = importlib.util.spec_from_file_location("reproduce_imbalance", SCRIPT)
study = importlib.util.module_from_spec(spec)
spec.loader.exec_module(study)


def run_script(*args: str, cwd: Path, timeout: int = 120) -> subprocess.CompletedProcess:
    """The script as a program, from another folder: it must find the package of its own checkout."""
    return subprocess.run([sys.executable, str(SCRIPT), *args], cwd=cwd, capture_output=True, text=True,
                          timeout=timeout, env={**os.environ, "WANDB_MODE": "offline"})


def test_the_script_reports_a_bad_argument_in_one_line(tmp_path):
    done = run_script("--preset", "smoke", "--out", str(tmp_path / "study"), "--imbalances", "extreme", cwd=tmp_path)
    assert done.returncode == 2
    assert done.stderr == "reproduce_imbalance: error: unknown imbalance 'extreme'; valid: none, medium, high, " \
        "dirichlet:<concentration > 0>, long_tail:<ratio >= 1>, step:<ratio >= 1>\n"
    assert not (tmp_path / "study").exists()
    for args, message in (
        (("--partition", "gpu"), "--partition only apply to --launcher slurm"),
        (("--launcher", "slurm"), "--launcher slurm needs SLURM's sbatch on PATH (run it on the cluster's login node)"),
    ):
        done = run_script("--preset", "smoke", "--out", str(tmp_path / "study"), *args, cwd=tmp_path)
        assert (done.returncode, done.stderr) == (2, f"reproduce_imbalance: error: {message}\n")
        assert not (tmp_path / "study").exists()
    bad = run_script("--preset", "smoke", "--out", str(tmp_path / "study"), "--launcher", "slurm",
                     "--cells-per-task", "0", cwd=tmp_path)
    assert bad.returncode == 2 and "--cells-per-task" in bad.stderr and not (tmp_path / "study").exists()
    usage = run_script("--help", cwd=tmp_path)
    assert usage.returncode == 0 and "Reproduce the paper's imbalance-robustness study" in usage.stdout


def test_the_script_aggregates_a_results_csv(tmp_path):
    with open(tmp_path / "results.csv", "w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["method", "imbalance", "projector", "seed", "top1", "num_test"])
        writer.writerows([["simclr", "none", "mlp", 0, 0.5, 100], ["simclr", "high", "mlp", 0, 0.4, 100]])
    done = run_script("--out", str(tmp_path), "--aggregate-only", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert done.stdout == f"wrote {tmp_path / 'summary.md'} and {tmp_path / 'figure4.png'}\n"
    assert "| SimCLR | mlp | 50.0 (one seed: no interval) | 40.0 (one seed: no interval) | " \
        "+20.0% (one seed: no interval) |" in (tmp_path / "summary.md").read_text()
    assert (tmp_path / "figure4.png").stat().st_size > 10_000


@pytest.fixture(scope="module")
def smoke_study(tmp_path_factory, cifar_root) -> tuple[Path, bytes]:
    """The smoke grid run here (``--launcher local``): its folder, and its results.csv as first written."""
    out = tmp_path_factory.mktemp("smoke") / "study"
    assert study.main(["--preset", "smoke", "--out", str(out), "--data-root", str(cifar_root)]) == 0
    return out, (out / "results.csv").read_bytes()


@pytest.mark.slow
def test_smoke_grid_end_to_end_and_resume(smoke_study, cifar_root, capsys):
    out, _ = smoke_study
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
            assert spectrum["epochs"][0] == 0  # the untrained network, measured at step 0
            for column, index in (("effective_rank", -1), ("initial_effective_rank", 0)):
                sigma = np.sqrt(np.clip(spectrum["embedding_eigenvalues"][index], 0, None))
                share = sigma[sigma > 0] / sigma.sum()
                assert float(row[column]) == pytest.approx(float(np.exp(-(share * np.log(share)).sum())), rel=1e-3)
    assert (out / "summary.md").is_file() and (out / "figure4.png").is_file()
    assert "## Effective rank of the embeddings (RankMe)" in (out / "summary.md").read_text()
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
    # The same folder is not another preset's study: its cells ran under the smoke protocol.
    assert study.main(["--preset", "cpu", "--out", str(out), "--data-root", str(cifar_root), "--dry-run"]) == 2
    assert "21 finished cell(s) ran under another protocol than preset 'cpu'" in capsys.readouterr().err


@pytest.mark.slow
def test_smoke_grid_as_a_job_array_equals_the_local_run(tmp_path, cifar_root, smoke_study):
    """The same grid through submitit's local executor: 2 array tasks (11 + 10 cells) in their own processes."""
    out = tmp_path / "study"
    done = run_script("--preset", "smoke", "--out", str(out), "--data-root", str(cifar_root), "--launcher", "slurm",
                      "--executor", "local", "--gpus-per-task", "0", "--cells-per-task", "11", cwd=tmp_path,
                      timeout=900)
    assert done.returncode == 0, done.stderr[-3000:]
    assert "submitted 2 array task(s) of at most 11 cell(s)" in done.stdout
    tasks = sorted((out / "slurm").glob("*/*_result.pkl"))
    assert len(tasks) == 2, tasks  # two tasks, each finished
    assert not (out / "slurm" / "%j").exists()  # no empty folder named after the pattern
    assert (out / "results.csv").read_bytes() == smoke_study[1]
    # Submitted again, the finished grid submits nothing and aggregates the same table.
    again = run_script("--preset", "smoke", "--out", str(out), "--data-root", str(cifar_root), "--launcher", "slurm",
                       "--executor", "local", "--gpus-per-task", "0", cwd=tmp_path)
    assert again.returncode == 0, again.stderr[-3000:]
    assert "21 cells, 21 already finished" in again.stdout and "submitted" not in again.stdout
    assert (out / "results.csv").read_bytes() == smoke_study[1]


NEW_COLUMNS = ("num_test", "random_init_top1", "random_init_knn_top1", "knn_monitor_initial", "knn_monitor_final")


@pytest.mark.slow
def test_smoke_with_two_seeds_writes_every_new_column(tmp_path, cifar_root):
    out = tmp_path / "study"
    assert study.main(["--preset", "smoke", "--out", str(out), "--data-root", str(cifar_root), "--seeds", "2",
                       "--methods", "simclr", "spectral", "--imbalances", "none", "high", "--projectors", "mlp"]) == 0
    with open(out / "results.csv") as handle:
        rows = list(csv.DictReader(handle))
    assert list(rows[0]) == StudyRow.columns()
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


def part_of_another_study(path: Path, rows: list[dict], seed: str, num_test: str) -> Path:
    """``rows`` (a results.csv's) moved to ``seed`` and measured on ``num_test`` test images: a part run elsewhere."""
    with open(path, "w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows({**row, "seed": seed, "num_test": num_test} for row in rows)
    return path


@pytest.mark.slow
def test_merge_adds_a_part_run_elsewhere_and_refuses_another_protocol(tmp_path, cifar_root, smoke_study, capsys):
    out = tmp_path / "study"
    shutil.copytree(smoke_study[0], out)
    with open(out / "results.csv") as handle:
        own = list(csv.DictReader(handle))
    base = ["--preset", "smoke", "--out", str(out), "--data-root", str(cifar_root)]
    part = part_of_another_study(tmp_path / "part.csv", own, seed="7", num_test=own[0]["num_test"])
    assert study.main([*base, "--merge", str(part)]) == 0
    assert "21 cells, 21 already finished" in capsys.readouterr().out  # nothing retrained
    with open(out / "results.csv") as handle:
        merged = list(csv.DictReader(handle))
    def measured(rows):  # a copied folder's random-init rows name the cache of the original folder
        return [{k: v for k, v in row.items() if k != "run_dir"} for row in rows]

    assert len(merged) == 2 * len(own) and measured(merged[: len(own)]) == measured(own)
    assert {r["seed"] for r in merged[len(own):]} == {"7"}
    assert "# Imbalance study: 2 seeds (0, 7)" in (out / "summary.md").read_text()

    written = (out / "results.csv").read_bytes()
    for bad, message in (
        (part_of_another_study(tmp_path / "other.csv", own, seed="8", num_test="2000"),
         "the parts used different test sets (500, 2000 images): another evaluation protocol, not mixed"),
        (part, f"--merge: {part} repeats simclr/none/mlp/7, already in the study"),  # seed 7 is in twice
        (tmp_path / "absent.csv", f"--merge: {tmp_path / 'absent.csv'} does not exist"),
    ):
        extra = [str(part)] if bad == part else []
        assert study.main([*base, "--merge", *extra, str(bad)]) == 2
        assert message in capsys.readouterr().err
        assert (out / "results.csv").read_bytes() == written  # refused before anything was written


@pytest.mark.slow
def test_reevaluate_from_checkpoints_repeats_the_runs_own_scores_and_writes_a_new_study(
        tmp_path, cifar_root, smoke_study, capsys):
    source = smoke_study[0]
    base = ["--preset", "smoke", "--data-root", str(cifar_root), "--reevaluate", str(source)]
    # at the preset's own sizes (1,000 + 500): every score is the run's, from its checkpoint
    same = tmp_path / "same"
    assert study.main([*base, "--out", str(same), "--eval-train-size", "1000", "--eval-test-size", "500"]) == 0
    assert "21 of 21 cells finished" in capsys.readouterr().out
    scores = ("top1", "knn_top1", "balanced", "random_init_top1", "random_init_knn_top1", "num_test")
    with open(source / "results.csv") as handle:
        original = {(r["method"], r["imbalance"], r["projector"], r["seed"]): r for r in csv.DictReader(handle)}
    with open(same / "results.csv") as handle:
        again = {(r["method"], r["imbalance"], r["projector"], r["seed"]): r for r in csv.DictReader(handle)}
    assert again.keys() == original.keys()
    for key, row in again.items():
        assert {k: row[k] for k in scores} == {k: original[key][k] for k in scores}, key
    # on 1,000 test images: a new protocol in a new folder; the runs' own files are untouched
    before = {p: p.read_bytes() for p in source.rglob("linear_eval.json")}
    larger = tmp_path / "larger"
    assert study.main([*base, "--out", str(larger), "--eval-train-size", "1000", "--eval-test-size", "1000"]) == 0
    with open(larger / "results.csv") as handle:
        rows = list(csv.DictReader(handle))
    assert {r["num_test"] for r in rows} == {"1000"} and len(rows) == len(again)
    assert len(list((larger / "reevaluated").glob("*.json"))) == 21
    assert {p: p.read_bytes() for p in source.rglob("linear_eval.json")} == before
    capsys.readouterr()
    # refused in one line: the source itself as --out, sizes without --reevaluate
    assert study.main([*base, "--out", str(source)]) == 2
    assert study.main(["--preset", "smoke", "--out", str(tmp_path / "x"), "--eval-test-size", "100"]) == 2
    errors = capsys.readouterr().err.strip().splitlines()
    assert len(errors) == 2 and "another folder than SOURCE" in errors[0] and "only apply to --reevaluate" in errors[1]
    assert not (tmp_path / "x").exists()
