"""The float32-versus-bf16 parity experiment (`sslprobe.studies.precision_parity`): its runs' options and
its summary of hand-written result files."""

from __future__ import annotations

import json
import math
import subprocess
import sys
from pathlib import Path

from sslprobe.studies.precision_parity import SETTINGS, ParityConfig, aggregate, fit_args, result_file, run

REPO = Path(__file__).resolve().parents[2]
SCRIPT = REPO / "scripts" / "precision_parity.py"

# (method, setting, seed) -> (linear top1, kNN top1, seconds), as linear_eval.json writes them (fractions).
RESULTS = {
    ("simclr", "float32", 0): (0.40, 0.30, 100.0),
    ("simclr", "bf16_channels_last", 0): (0.42, 0.31, 50.0),
    ("simclr", "float32", 1): (0.44, 0.34, 110.0),
    ("simclr", "bf16_channels_last", 1): (0.43, 0.36, 60.0),
    ("vicreg", "float32", 0): (0.50, 0.45, 120.0),  # vicreg seed 1 float32 is missing
    ("vicreg", "bf16_channels_last", 0): (0.52, 0.44, 70.0),
    ("vicreg", "bf16_channels_last", 1): (0.60, 0.50, 80.0),
}


def write_results(config: ParityConfig) -> None:
    (config.out / "logs").mkdir(parents=True)
    for (method, setting, seed), (top1, knn, seconds) in RESULTS.items():
        path = result_file(config, method, setting, seed)
        path.parent.mkdir(parents=True)
        path.write_text(json.dumps({"top1": top1, "knn_top1": knn}))
        (config.out / "logs" / f"{method}_{setting}_seed{seed}.seconds").write_text(f"{seconds}\n")


def test_aggregate_gives_the_hand_computed_means_deltas_and_sampling_error(tmp_path):
    config = ParityConfig(out=tmp_path, methods=["simclr", "vicreg"], seeds=2, images=400, epochs=1)
    write_results(config)
    summary = aggregate(config)
    assert len(summary["rows"]) == 7
    lines = summary["summary"].splitlines()
    # simclr linear: float32 40, 44 -> 42.0 ± 2.8; bf16 42, 43 -> 42.5 ± 0.7; deltas +2.0, -1.0.
    assert "| simclr | linear | 42.0 ± 2.8 | 42.5 ± 0.7 | +2.0, -1.0 |" in lines
    # simclr kNN: 30, 34 -> 32.0 ± 2.8; 31, 36 -> 33.5 ± 3.5; deltas +1.0, +2.0.
    assert "| simclr | kNN | 32.0 ± 2.8 | 33.5 ± 3.5 | +1.0, +2.0 |" in lines
    # vicreg: only seed 0 has both settings.
    assert "| vicreg | linear | 50.0 (one seed) | 52.0 (one seed) | +2.0 |" in lines
    # Sampling error from the mean linear accuracy of all 7 runs on 10,000 test images.
    p = sum(r[0] for r in RESULTS.values()) / 7
    assert f"±{100 * math.sqrt(p * (1 - p) / 10_000):.2f} points" in summary["summary"]
    # Medians of the wall times: float32 100, 110, 120 -> 110; bf16 50, 60, 70, 80 -> 65.
    assert "float32 110 s, bf16_channels_last 65 s" in summary["summary"]
    assert (tmp_path / "summary.md").read_text() == summary["summary"] + "\n"
    assert json.loads((tmp_path / "results.json").read_text()) == summary["rows"]


def test_run_skips_finished_runs_and_fit_args_name_existing_configs(tmp_path):
    config = ParityConfig(out=tmp_path, methods=["simclr"], seeds=2, images=400, epochs=1)
    write_results(config)
    run(config)  # every simclr run has its result: nothing is launched, no log is written
    assert not list((tmp_path / "logs").glob("*.log"))
    for setting in SETTINGS:
        options = fit_args("simclr", setting, 0, config)
        configs = [Path(options[i + 1]) for i, option in enumerate(options) if option == "--config"]
        assert len(configs) == 4 and all(path.is_file() for path in configs)
        assert options[options.index("--trainer.precision") + 1] == SETTINGS[setting][1]


def test_script_aggregates_and_refuses_an_empty_folder(tmp_path):
    write_results(ParityConfig(out=tmp_path / "done", methods=["simclr"]))
    done = subprocess.run([sys.executable, str(SCRIPT), "--out", str(tmp_path / "done"), "--methods", "simclr",
                           "--aggregate-only"], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
    assert "| simclr | linear | 42.0 ± 2.8 | 42.5 ± 0.7 | +2.0, -1.0 |" in done.stdout
    empty = subprocess.run([sys.executable, str(SCRIPT), "--out", str(tmp_path / "none"), "--aggregate-only"],
                           capture_output=True, text=True, timeout=120)
    assert empty.returncode != 0 and "no runs under" in empty.stderr
    assert not (tmp_path / "none").exists()
    help_ = subprocess.run([sys.executable, str(SCRIPT), "--help"], capture_output=True, text=True, timeout=120)
    assert help_.returncode == 0 and "--aggregate-only" in help_.stdout
