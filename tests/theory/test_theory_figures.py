"""The theory figures: `sslprobe.studies.theory_figures` against the committed results.json, and
scripts/theory_figures.py --quick end to end, as a subprocess (the script parses arguments only)."""

import json
import math
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from sslprobe.studies import theory_figures
from sslprobe.studies.theory_figures import imbalance_on_the_sphere, printed_slips

REPO = Path(__file__).resolve().parents[2]
SCRIPT = REPO / "scripts" / "theory_figures.py"
COMMITTED = REPO / "docs" / "figures" / "theory" / "results.json"  # the full run's numbers, as the docs cite them


def assert_same_record(new, committed, path="", rel=1e-9):
    """Equal structure and values; floats to ``rel`` (the committed file comes from another machine's BLAS)."""
    if isinstance(new, dict):
        assert set(new) - {"seconds"} == set(committed) - {"seconds"}, path
        for key in set(new) - {"seconds"}:
            assert_same_record(new[key], committed[key], f"{path}.{key}", rel)
    elif isinstance(new, list):
        assert len(new) == len(committed), path
        for i, (a, b) in enumerate(zip(new, committed)):
            assert_same_record(a, b, f"{path}[{i}]", rel)
    elif isinstance(new, float) and not math.isfinite(new):
        assert (math.isnan(new) and math.isnan(committed)) or new == committed, path
    elif isinstance(new, float):
        assert math.isclose(new, committed, rel_tol=rel, abs_tol=1e-300), (path, new, committed)
    else:
        assert new == committed, (path, new, committed)


def as_json(record: dict):
    return json.loads(json.dumps(record, default=float, allow_nan=True))


def test_printed_text_checks_reproduce_the_committed_numbers():
    committed = json.loads(COMMITTED.read_text())
    assert_same_record(as_json(printed_slips()), committed["printed_slips"])
    assert_same_record(as_json(imbalance_on_the_sphere()), committed["imbalance_on_the_sphere"])


@pytest.mark.slow
def test_fig1_at_full_size_reproduces_the_committed_numbers(tmp_path):
    """Fig. 1 with the ``full`` settings: every number of its committed record (the function the full run used)."""
    committed = json.loads(COMMITTED.read_text())
    assert committed["mode"] == "full"
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        record = theory_figures.FIGURES["fig1"]({**theory_figures.SETTINGS["full"], "data_root": tmp_path}, tmp_path)
    finally:
        torch.set_num_threads(threads)
    assert (tmp_path / "fig1.png").stat().st_size > 10_000
    assert_same_record(as_json(record), committed["fig1"])
FIGURES = ("fig1", "fig3", "fig5_left", "fig5_mid", "fig5_mid_long", "fig5_right", "fig5_cifar", "fig6", "fig7")


@pytest.mark.slow
def test_quick_run_writes_every_figure_and_a_consistent_json(tmp_path, cifar_root):
    completed = subprocess.run([sys.executable, str(SCRIPT), "--out", str(tmp_path), "--quick",
                                "--data-root", str(cifar_root)], capture_output=True, text=True, timeout=400)
    assert completed.returncode == 0, completed.stderr[-2000:]
    results = json.loads((tmp_path / "results.json").read_text())
    for name in FIGURES:
        assert (tmp_path / f"{name}.png").stat().st_size > 10_000
        assert isinstance(results[name]["agrees"], bool)
        assert "note" in results[name]
    # convergence measures are reported for every simulated figure
    for name in ("fig3", "fig5_left", "fig5_right", "fig6"):
        assert 0 <= results[name]["convergence"]["converged"] <= results[name]["convergence"]["models"]
    assert len(results["fig5_mid"]["convergence"]) == len(results["fig5_mid"]["rows"])
    # the Σ⁻² form of the stationary loss is the one that matches Eq. 3
    slips = results["printed_slips"]
    assert math.isclose(slips["eq3_at_stationary_point"], slips["minus_quarter_tr_sigma_inv2_bm_b"], rel_tol=1e-9)
    assert not math.isclose(slips["eq3_at_stationary_point"], slips["minus_quarter_tr_sigma2_bm_b_as_printed"],
                            rel_tol=0.1)
    # Section 4.3 on the sphere: B = 2A0 and B = -2C give the same Thm. 2 stationary points
    sphere = results["imbalance_on_the_sphere"]
    assert sphere["scl_2A0_equals_minus_2C_on_the_sphere"] is True
    balanced = [row for row in sphere["rows"] if row["preset"] == "none"]
    assert all(row[key]["kept"] == 10 for row in balanced for key in ("scl_derived", "info_nce_derived"))
    # predicted vs measured entries are internally consistent
    right = results["fig5_right"]
    for predicted, measured, gap in zip(right["predicted_critical_sigma"], right["measured_critical_sigma"],
                                        right["relative_disagreement"]):
        assert math.isclose(gap, abs(measured - predicted) / predicted, rel_tol=1e-9)
    left = results["fig5_left"]
    assert left["predicted_exponent"] < -2.5  # Eq. 9's a / (a + σ²)² tends to σ⁻⁴
    mid = results["fig5_mid"]
    assert all(row["eq8_rank"] <= row["derived_rank"] or row["a_min"] <= 1e-9 for row in mid["rows"])
    # longer runs: per batch and budget, the collapsed count and its interval follow from the ranks
    long_runs = results["fig5_mid_long"]
    for row in long_runs["rows"]:
        assert row["collapsed_runs"] == sum(rank < long_runs["setup"]["dim"] for rank in row["measured_ranks"])
        assert math.isclose(row["collapsed_fraction"], row["collapsed_runs"] / row["runs"])
        low, high = row["collapsed_fraction_interval_95"]
        assert 0 <= low <= row["collapsed_fraction"] <= high <= 1 and high - low > 0.2  # a few seeds: wide
        assert len(row["converged"]) == row["runs"] == long_runs["setup"]["seeds"]
        dim = long_runs["setup"]["dim"]
        assert [rank == dim for rank in row["measured_ranks"]] == [
            weakest > row["collapse_threshold"] for weakest in row["weakest_measured_eigenvalues"]]
    # Predictions recomputed here from the derived origin Hessian B = βK/(K+1)·A0 − (1−β)C (α = 1),
    # K = 2·batch − 2 negatives per anchor; the printed form collapses at σ² = a / (1 − β).
    fig1 = results["fig1"]
    beta, k = fig1["setup"]["beta"], 2 * fig1["setup"]["batch"] - 2
    for case in fig1["cases"].values():
        b = [beta * k / (k + 1) - (1 - beta) * c for c in case["noise_covariance_diagonal"]]  # A0 = I
        assert case["predicted_rank"] == sum(value > 0 for value in b)
    assert fig1["agrees"] is all(c["predicted_rank"] == c["measured_rank"] for c in fig1["cases"].values())
    beta, k = 0.5, 2 * right["setup"]["batch"] - 2
    assert right["setup"]["beta"] == beta
    for a, predicted, printed in zip(right["setup"]["A0"], right["predicted_critical_sigma"],
                                     right["paper_printed_critical_sigma"]):
        assert math.isclose(predicted, math.sqrt(beta * k / (k + 1) * a / (1 - beta)), rel_tol=1e-6)
        assert math.isclose(printed, math.sqrt(a / (1 - beta)), rel_tol=1e-6)
    assert right["agrees"] is (max(right["relative_disagreement"]) < 0.15)
    fig6 = results["fig6"]
    assert fig6["agrees"] is (fig6["relative_disagreement"] < 0.5)
    # Fig. 5 on CIFAR-10: one record per backbone, loss and strength, ranks recomputed from the eigenvalues
    cifar = results["fig5_cifar"]
    strengths = cifar["setup"]["strengths"]
    assert set(cifar["backbones"]) == {"random_init", "simclr_trained"}
    assert cifar["backbones"]["simclr_trained"]["record"]["steps"] >= 1
    for backbone in cifar["backbones"].values():
        assert 0.0 <= backbone["knn_accuracy"] <= 1.0
        for points in backbone["losses"].values():
            assert len(points) == len(strengths)
            for point in points:
                measured = point["measured_eigenvalues"]
                assert len(measured) == cifar["setup"]["feature_dim"]
                assert point["measured_rank"] == sum(v >= 1e-4 * max(measured) for v in measured)
                whitened = point["whitened_hessian_eigenvalues"]
                assert point["predicted_rank"] == sum(v > 0 for v in whitened)  # output_dim = d: nothing capped
                assert point["rank_agrees"] is (point["predicted_rank"] == point["measured_rank"])
                assert isinstance(point["converged"], bool)
                assert point["predicted_collapsing_directions"] == sum(v <= 0 for v in whitened)
    assert cifar["agrees"] is all(s["rank_agrees"] == s["points"] for s in cifar["summary"].values())


def test_fig5_cifar_without_data_is_a_one_line_error(tmp_path):
    completed = subprocess.run([sys.executable, str(SCRIPT), "--out", str(tmp_path / "out"), "--quick", "--only",
                                "fig5_cifar", "--data-root", str(tmp_path / "absent")],
                               capture_output=True, text=True, timeout=120)
    assert completed.returncode == 2
    assert len(completed.stderr.strip().splitlines()) == 1
    assert completed.stderr.startswith("error: fig5_cifar needs CIFAR-10")
    assert not (tmp_path / "out" / "results.json").exists()


def test_unwritable_out_is_a_one_line_error(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("")
    completed = subprocess.run([sys.executable, str(SCRIPT), "--out", str(blocker / "sub"), "--quick"],
                               capture_output=True, text=True, timeout=120)
    assert completed.returncode != 0
    assert len(completed.stderr.strip().splitlines()) == 1
    assert completed.stderr.startswith("error:")
