"""sslprobe.studies.imbalance: the grid, the cells' configs and commands, argument checks, the sweep file."""

from __future__ import annotations

import json
import shlex
from pathlib import Path

import pytest

from sslprobe.studies.imbalance import METHODS, PRESETS, Cell, StudyError, grid, main
from sslprobe.studies.imbalance.command import parse_args, sweep_yaml
from sslprobe.studies.imbalance.grid import (
    cell_config,
    finished,
    fit_command,
    parse_seeds,
    planned_protocol,
    result_path,
    run_dir,
)
from sslprobe.studies.imbalance.presets import IMBALANCES, PROJECTORS, REPO, preset_config

SWEEP_FILE = REPO / "configs" / "sweeps" / "imbalance.yaml"


def test_grid_gives_the_supervised_baseline_no_projector():
    cells = grid(["simclr", "supervised"], ["none", "high"], ["mlp", "none"], seeds=2)
    assert len(cells) == 2 * 2 * 2 + 2 * 2  # simclr: imbalance x projector x seed; supervised: no projector
    assert {c.projector for c in cells if c.method == "supervised"} == {"none"}
    assert len(set(cells)) == len(cells)
    assert Cell("spectral", "dirichlet:0.5", "mlp", 3).name == "spectral_dirichlet:0.5_mlp_seed3"


def test_an_empty_grid_is_an_error():
    with pytest.raises(StudyError, match="the grid is empty"):
        grid(["simclr"], ["none"], ["mlp"], seeds=0)


def test_cell_config_parses_a_dirichlet_imbalance_and_the_projector(tmp_path):
    config = cell_config(Cell("barlow_twins", "dirichlet:0.25", "none", 1), tmp_path, "imbalance")
    assert config["data"] == {"imbalance": "dirichlet", "concentration": 0.25, "subset_seed": 1, "seed": 1}
    assert config["model"]["init_args"] == {"projector": None}
    assert config["seed_everything"] == 1
    assert config["run"] == {"experiment": "imbalance", "version": "barlow_twins_dirichlet:0.25_none_seed1"}
    wandb = config["trainer"]["logger"][0]["init_args"]
    assert wandb["group"] == "imbalance" and "imbalance:dirichlet:0.25" in wandb["tags"]
    supervised = cell_config(Cell("supervised", "high", "none", 0), tmp_path, "imbalance")
    assert supervised["model"]["init_args"] == {} and supervised["data"]["imbalance"] == "high"
    # The run directory the CLI creates (default_root_dir / experiment / version) is where results are looked for.
    run = Path(config["trainer"]["default_root_dir"]) / config["run"]["experiment"] / config["run"]["version"]
    assert result_path(Cell("barlow_twins", "dirichlet:0.25", "none", 1), tmp_path, "imbalance") == \
        run / "probes" / "linear_eval.json"


@pytest.mark.parametrize("name", sorted(PRESETS))
def test_every_preset_composes_existing_config_files(name, tmp_path):
    fragment = preset_config(PRESETS[name], "data")
    assert fragment["trainer"]["max_epochs"] == PRESETS[name]["epochs"]
    assert fragment["data"]["subset_size"] == PRESETS[name]["subset_size"]
    for method in METHODS:
        files = [Path(arg) for arg in fit_command(Cell(method, "none", "none", 0), tmp_path)[5::2]]
        assert all(path.is_file() for path in files[:6]), files  # base, method, backbone and 3 probe fragments
        assert files[:3] == [REPO / "configs" / name for name in ("base.yaml", f"methods/{method}.yaml",
                                                                 "backbones/resnet12.yaml")]
        assert files[6:] == [tmp_path / "preset.yaml", tmp_path / "cells" / f"{method}_none_none_seed0.yaml"]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--methods", "simclr", "byol"], "unknown method(s) ['byol']"),
        (["--imbalances", "extreme"], "unknown imbalance 'extreme'"),
        (["--imbalances", "dirichlet:-1"], "unknown imbalance 'dirichlet:-1'"),
        (["--projectors", "linear"], "unknown projector(s) ['linear']"),
        (["--seeds", "0"], "the grid is empty"),
        (["--seeds", "-1"], "--seeds '-1': give a count (3) or ranges of seeds"),
        (["--seeds", "5-3"], "--seeds '5-3': give a count (3) or ranges of seeds"),
        (["--cells-per-device", "0"], "--cells-per-device must be >= 1"),
        (["--out", "/proc/sslprobe-study"], "is not writable"),
        (["--aggregate-only"], "results.csv does not exist"),
    ],
)
def test_bad_arguments_are_one_line_and_write_nothing(tmp_path, capsys, args, message):
    out = tmp_path / "study"
    if "--out" not in args:
        args = ["--out", str(out), *args]
    assert main(["--preset", "smoke", *args]) == 2
    err = capsys.readouterr().err
    assert message in err and err.startswith("reproduce_imbalance: error: ") and err.count("\n") == 1, err
    assert not out.exists()


def test_dry_run_prints_one_command_per_cell_and_writes_nothing(tmp_path, capsys):
    out = tmp_path / "study"
    assert main(["--preset", "cpu", "--out", str(out), "--dry-run", "--methods", "simclr", "supervised",
                 "--imbalances", "none", "dirichlet:0.5", "--projectors", "mlp"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].startswith("12 cells, 0 already finished; preset cpu: narrow ResNet-12")
    commands = [shlex.split(line) for line in lines[1:]]
    assert len(commands) == 12 and all(c[1:4] == ["-m", "sslprobe", "fit"] for c in commands)
    assert all(c[-3:-2] == [str(out / "preset.yaml")] and c[-1].startswith(str(out / "cells")) for c in commands)
    assert len({c[-1] for c in commands}) == 12
    assert not tmp_path.joinpath("study").exists()  # a dry run writes nothing


def test_the_committed_sweep_file_is_what_emit_sweep_writes(tmp_path, capsys):
    emitted = tmp_path / "sweep.yaml"
    assert main(["--preset", "paper", "--out", "results/imbalance", "--emit-sweep", str(emitted)]) == 0
    assert emitted.read_text() == SWEEP_FILE.read_text()
    assert SWEEP_FILE.read_text() == sweep_yaml("paper", METHODS, IMBALANCES, PROJECTORS, [0, 1, 2],
                                                   Path("results/imbalance"))


def test_a_sweep_agent_command_line_runs_exactly_its_cell(tmp_path, capsys):
    # W&B agents call the program with --<parameter>=<value> for each parameter of the sweep file.
    out = tmp_path / "study"
    argv = ["--preset=paper", f"--out={out}", "--methods=spectral", "--imbalances=high", "--projectors=none",
            "--seed=2", "--dry-run"]
    assert parse_args(argv).seed == 2
    assert main(argv) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].startswith("1 cells, 0 already finished; preset paper")
    assert len(lines) == 2 and lines[1].endswith(str(out / "cells" / "spectral_high_none_seed2.yaml"))
    assert not out.exists()


@pytest.mark.parametrize(("text", "seeds"), [("3", [0, 1, 2]), ("3-5", [3, 4, 5]), ("0-2,7", [0, 1, 2, 7]),
                                             ("7,1-2,2", [1, 2, 7]), ("4-4", [4]), ("0", [])])
def test_seeds_are_a_count_or_ranges(text, seeds):
    assert parse_seeds(text) == seeds
    if seeds:
        assert sorted({c.seed for c in grid(["simclr"], ["none"], ["mlp"], seeds)}) == seeds


def test_seed_ranges_add_cells_to_a_study(tmp_path, capsys):
    out = tmp_path / "study"
    assert main(["--preset", "cpu", "--out", str(out), "--dry-run", "--methods", "simclr", "--imbalances", "none",
                 "--projectors", "mlp", "--seeds", "3-5"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert [Path(line.split()[-1]).name for line in lines[1:]] == [f"simclr_none_mlp_seed{s}.yaml" for s in (3, 4, 5)]


def finish(cell: Cell, out: Path, digest: str | None) -> None:
    """Leave ``cell`` as a run that wrote its result (and, unless None, the given protocol record)."""
    path = result_path(cell, out, "imbalance")
    path.parent.mkdir(parents=True)
    path.write_text(json.dumps({"top1": 0.5}))
    if digest is not None:
        (run_dir(cell, out, "imbalance") / "protocol.json").write_text(json.dumps({"digest": digest}))


def test_a_cell_counts_as_finished_only_under_its_own_protocol(tmp_path, capsys):
    out = tmp_path / "study"
    cells = grid(["simclr"], ["none", "high"], ["mlp"], 1)
    smoke, cpu = (planned_protocol(cells[0], out, "imbalance", p) for p in ("smoke", "cpu"))
    assert smoke != cpu  # the presets differ, so do their protocols
    # The data folder and the output folder are places, not settings: they do not change the protocol.
    assert planned_protocol(cells[0], tmp_path / "elsewhere", "imbalance", "smoke") == smoke
    assert planned_protocol(Cell("simclr", "none", "mlp", 1), out, "imbalance", "smoke") != smoke  # the seed does
    finish(cells[0], out, smoke)
    assert finished(cells, out, "imbalance", "smoke") == [cells[0]]
    with pytest.raises(StudyError, match=r"1 finished cell\(s\) ran under another protocol than preset 'cpu'"):
        finished(cells, out, "imbalance", "cpu")
    # Through the command line: one line, exit 2, nothing run.
    assert main(["--preset", "cpu", "--out", str(out), "--methods", "simclr", "--imbalances", "none", "high",
                 "--projectors", "mlp", "--seeds", "1", "--dry-run"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "simclr_none_mlp_seed0" in err
    # A result without a protocol record (an older sslprobe) is not taken for any preset either.
    finish(cells[1], out, None)
    with pytest.raises(StudyError, match="1 finished cell"):
        finished(cells[1:], out, "imbalance", "smoke")
