"""The imbalance study on another data set and on long-tail profiles: argument parsing and the cells' configs."""

from __future__ import annotations

import logging
import shlex

import pytest
import yaml

from sslprobe.studies.imbalance import Cell, StudyError, grid, main
from sslprobe.studies.imbalance.grid import cell_config, fit_command, imbalance_options, prepare, write_cell_config


@pytest.mark.parametrize(("spec", "options"), [
    ("none", {"imbalance": "none"}),
    ("high", {"imbalance": "high"}),
    ("dirichlet:0.3", {"imbalance": "dirichlet", "concentration": 0.3}),
    ("long_tail:100", {"imbalance": "long_tail", "imbalance_ratio": 100.0}),
    ("long_tail:1", {"imbalance": "long_tail", "imbalance_ratio": 1.0}),
    ("step:12.5", {"imbalance": "step", "imbalance_ratio": 12.5}),
])
def test_imbalance_specs_parse_into_data_options(spec, options):
    assert imbalance_options(spec) == options


@pytest.mark.parametrize("spec", ["long_tail", "long_tail:", "long_tail:0.5", "step:x", "dirichlet:0", "zipf:2",
                                  "long_tail:nan"])
def test_a_bad_spec_is_a_study_error(spec):
    with pytest.raises(StudyError, match=rf"unknown imbalance '{spec}'; valid: .*long_tail:<ratio >= 1>"):
        imbalance_options(spec)


def test_cifar100_lt_dry_run_writes_the_cells_configs(tmp_path, capsys):
    out = tmp_path / "study"
    argv = ["--preset", "cpu", "--out", str(out), "--dataset", "cifar100", "--imbalances", "long_tail:100", "none",
            "--methods", "simclr", "supervised", "--projectors", "mlp", "--seeds", "2", "--dry-run"]
    assert main(argv) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].startswith("8 cells, 0 already finished; preset cpu") and lines[0].endswith("; data set cifar100")
    assert not out.exists()  # a dry run writes nothing
    cells = grid(["simclr", "supervised"], ["long_tail:100", "none"], ["mlp"], 2, "cifar100")
    names = sorted(cell.name for cell in cells)
    assert names == sorted(f"cifar100_{method}_{imbalance}_{projector}_seed{seed}"
                           for method, projector in (("simclr", "mlp"), ("supervised", "none"))
                           for imbalance in ("long_tail:100", "none") for seed in (0, 1))
    configs = {cell.name: cell_config(cell, out, "imbalance") for cell in cells}
    long_tail = configs["cifar100_simclr_long_tail:100_mlp_seed1"]
    assert long_tail["data"] == {"imbalance": "long_tail", "subset_seed": 1, "seed": 1, "imbalance_ratio": 100.0,
                                 "dataset": "cifar100"}
    assert "dataset:cifar100" in long_tail["trainer"]["logger"][0]["init_args"]["tags"]
    assert configs["cifar100_simclr_none_mlp_seed0"]["data"] == {"imbalance": "none", "subset_seed": 0, "seed": 0,
                                                                 "dataset": "cifar100"}
    assert configs["cifar100_supervised_none_none_seed0"]["model"]["init_args"] == {"num_classes": 100}
    # each printed command composes the shared fragments, the preset and its own cell
    commands = [shlex.split(line) for line in lines[1:]]
    assert sorted(c[-1].rsplit("/", 1)[-1][: -len(".yaml")] for c in commands) == names


def test_old_cells_keep_their_names_and_configs(tmp_path):
    for dataset in (None, "cifar10"):
        cells = grid(["simclr"], ["none", "high", "dirichlet:0.5"], ["mlp"], 1, dataset)
        assert [c.name for c in cells] == ["simclr_none_mlp_seed0", "simclr_high_mlp_seed0",
                                           "simclr_dirichlet:0.5_mlp_seed0"]
    assert "dataset" not in cell_config(Cell("simclr", "none", "mlp", 0), tmp_path, "imbalance")["data"]
    assert cell_config(Cell("simclr", "none", "mlp", 0, "cifar10"), tmp_path, "imbalance")["data"]["dataset"] == \
        "cifar10"


@pytest.mark.parametrize(("args", "message"), [
    (["--dataset", "cifar100", "--imbalances", "none", "medium"],
     "imbalance(s) ['medium'] are the paper's CIFAR-10 counts; on cifar100 use none, long_tail:<ratio>"),
    (["--dataset", "my data"], "--dataset must be a data set name or class path"),
    (["--dataset", "my_folder", "--imbalances", "long_tail:10"],
     "the supervised baseline needs the class count of my_folder"),
    (["--imbalances", "long_tail:0.9"], "unknown imbalance 'long_tail:0.9'"),
    (["--imbalances", "step"], "unknown imbalance 'step'"),
])
def test_bad_study_arguments_are_one_line_and_write_nothing(tmp_path, capsys, args, message):
    out = tmp_path / "study"
    assert main(["--preset", "smoke", "--out", str(out), *args]) == 2
    err = capsys.readouterr().err
    assert message in err and err.startswith("reproduce_imbalance: error: ") and err.count("\n") == 1, err
    assert not out.exists()


def test_a_sweep_agent_keeps_the_data_set(tmp_path, capsys):
    out = tmp_path / "study"
    assert main(["--preset=smoke", f"--out={out}", "--dataset=cifar100", "--methods=spectral",
                 "--imbalances=step:10", "--projectors=none", "--seed=2", "--dry-run"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == 2 and lines[1].endswith(str(out / "cells" / "cifar100_spectral_step:10_none_seed2.yaml"))
    sweep = tmp_path / "sweep.yaml"
    assert main(["--preset", "smoke", "--out", str(out), "--dataset", "cifar100", "--imbalances", "long_tail:100",
                 "--emit-sweep", str(sweep)]) == 0
    lines = sweep.read_text().splitlines()
    assert "  dataset: {value: cifar100}" in lines and "  imbalances: {values: ['long_tail:100']}" in lines


def test_a_long_tail_cell_resolves_to_the_profile_on_cifar10(tmp_path, capsys, monkeypatch, cifar_root):
    # The composed config of a CIFAR-10 cell, as the CLI resolves it (data.dataset needs the data-set contract).
    from sslprobe.cli import main as cli_main

    out = tmp_path / "study"
    assert main(["--preset", "smoke", "--out", str(out), "--data-root", str(cifar_root), "--methods", "simclr",
                 "--imbalances", "long_tail:50", "--projectors", "mlp", "--dry-run"]) == 0
    capsys.readouterr()
    prepare(out, "smoke", str(cifar_root))  # the files a run writes before it starts its cells
    write_cell_config(Cell("simclr", "long_tail:50", "mlp", 0), out, "imbalance")
    monkeypatch.setattr("sys.argv", ["sslprobe"])
    monkeypatch.setattr(logging, "raiseExceptions", False)
    with pytest.raises(SystemExit) as stop:
        cli_main(fit_command(Cell("simclr", "long_tail:50", "mlp", 0), out)[3:] + ["--print_config"])
    assert stop.value.code in (0, None)
    data = yaml.safe_load(capsys.readouterr().out)["data"]
    assert (data["imbalance"], data["imbalance_ratio"], data["subset_size"]) == ("long_tail", 50.0, 200)
