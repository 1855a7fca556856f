"""Every command the documentation shows runs: ``fit`` and friends with ``--print_config``, ``probe``
and the scripts up to their parsed arguments (or in full with their own ``--dry-run``), ``make``
targets as ``make -n`` and the sslprobe commands those would run.

Nothing trains and nothing is written to the repository: ``--print_config`` returns before a run
directory exists, and a parse-only call stops right after the script's ``parse_args``.
"""

from __future__ import annotations

import argparse
import contextlib
import importlib
import runpy
import subprocess
import sys
from pathlib import Path

import jsonargparse
import pytest
import yaml
from docs_markdown import REPO, block_commands, blocks, inline_commands, pages, script_commands, tutorial_files

from sslprobe.callbacks import PROBE_CALLBACKS
from sslprobe.cli import main
from sslprobe.methods import METHODS

# Shown but not run here, with the reason: installing packages and syncing with a W&B server
# reach the network; activating an environment changes the calling shell only.
NOT_RUN = {
    ("python3", "-m", "venv"): "creates an environment",
    (".venv/bin/pip", "install"): "downloads torch",
    ("wandb", "sync"): "uploads to a W&B server",
    ("wandb", "login"): "logs in to a W&B server",
    ("source",): "changes the calling shell only",
    ("python", "-m", "venv"): "creates an environment",
    ("pip", "install"): "downloads packages",
    ("sbatch",): "submits to a SLURM cluster",
}
CLI_SUBCOMMANDS = {"fit", "validate", "test", "predict"}


class Parsed(BaseException):
    """Raised right after an argparse parser accepted the arguments (a parse-only call)."""


@contextlib.contextmanager
def parse_only():
    """argparse's and jsonargparse's ``parse_args`` raise `Parsed` with what they parsed."""
    originals = {parser: parser.parse_args for parser in (argparse.ArgumentParser, jsonargparse.ArgumentParser)}

    def stopping(original):
        def parse_and_stop(self, *args, **kwargs):
            raise Parsed(original(self, *args, **kwargs))
        return parse_and_stop

    for parser, original in originals.items():
        parser.parse_args = stopping(original)
    try:
        yield
    finally:
        for parser, original in originals.items():
            parser.parse_args = original


def shown_commands() -> list[tuple[str, list[str]]]:
    """(where, argument list) of every command in a bash block or in running text."""
    shown = []
    for page in pages():
        for block in blocks(page):
            if block.lang == "bash" and block.title:  # a job script: its sslprobe commands
                shown += [(block.where, words) for words in script_commands(block)
                          if sslprobe_arguments(words) is not None]
            elif block.lang == "bash":
                for words in block_commands(block):
                    # `a && b` is two commands
                    while "&&" in words:
                        cut = words.index("&&")
                        shown.append((block.where, words[:cut]))
                        words = words[cut + 1:]
                    shown.append((block.where, words))
        shown += [(f"{page.relative_to(REPO)}:{line}", words) for line, words in inline_commands(page)]
    return shown


def sslprobe_arguments(words: list[str]) -> list[str] | None:
    """The arguments ``python -m sslprobe`` gets from a command line (also under srun / torchrun)."""
    for index in range(len(words) - 1):
        if words[index] == "-m" and words[index + 1] == "sslprobe":
            return words[index + 2:]
    if words[0] == "sslprobe":
        return words[1:]
    return None


def lookup(config: dict, dotted: str):
    """The value at ``a.b.c`` of a printed config (through ``init_args`` where a class sits)."""
    node = config
    for key in dotted.split("."):
        if isinstance(node, dict) and key not in node and "init_args" in node:
            node = node["init_args"]
        if not isinstance(node, dict) or key not in node:
            raise KeyError(dotted)
        node = node[key]
    return node


def print_config(arguments: list[str], capsys) -> None:
    """``main(arguments + --print_config)``: exits 0, prints a config holding every override."""
    with pytest.raises(SystemExit) as stopped:
        main([*arguments, "--print_config"] if "--print_config" not in arguments else arguments)
    out, err = capsys.readouterr()
    assert stopped.value.code in (0, None), err
    config = yaml.safe_load(out)
    assert config["model"]["class_path"], out
    options = [(a[2:], b) for a, b in zip(arguments, arguments[1:])
               if a.startswith("--") and "." in a and not b.startswith("--")]
    for key, given in options:
        printed, expected = lookup(config, key), yaml.safe_load(given)
        if not isinstance(expected, dict) and not isinstance(printed, dict):
            assert printed == expected or str(printed) == str(expected), f"--{key} {given}: printed {printed!r}"


# A resume needs the run it resumes: a one-step fit of the same configs, on a small subset and
# under an experiment name of its own, makes it; the shown command then resumes that run.
PRIOR_RUN = ["--data.imbalance", "none", "--data.subset_size", "100", "--data.batch_size", "20",
             "--data.num_workers", "0", "--trainer.max_epochs", "1", "--trainer.limit_train_batches", "1",
             "--trainer.limit_val_batches", "0", "--trainer.logger", "lightning.pytorch.loggers.CSVLogger",
             "--trainer.logger.init_args.save_dir", "runs",
             "--trainer.callbacks", "null", "--trainer.enable_progress_bar", "false", "--probes.knn_monitor", "null"]
RESUMED_EXPERIMENT = ["--run.experiment", "docs_resume"]


def run_sslprobe(arguments: list[str], capsys) -> None:
    if {"--help", "-h", "--version"} & set(arguments):  # prints, then returns or exits 0
        try:
            main(arguments)
        except SystemExit as stopped:
            assert stopped.code in (0, None)
        assert capsys.readouterr().out.strip()
    elif arguments[0] == "fit" and "--ckpt_path" in arguments:
        cut = arguments.index("--ckpt_path")
        version = arguments[arguments.index("--run.version") + 1] if "--run.version" in arguments else "version_*"
        if not list(Path("runs", RESUMED_EXPERIMENT[1]).glob(f"{version}/checkpoints/last.ckpt")):
            main([*arguments[:cut], *arguments[cut + 2:], *PRIOR_RUN, *RESUMED_EXPERIMENT])
            capsys.readouterr()
        print_config([*arguments, *RESUMED_EXPERIMENT], capsys)
    elif arguments[0] in CLI_SUBCOMMANDS:
        print_config(arguments, capsys)
    else:  # probe: its parser accepts the arguments
        if "--settings_from" in arguments:  # the run it copies settings from: a one-step quickstart fit
            run = Path(arguments[arguments.index("--settings_from") + 1])
            if not (run / "config.yaml").is_file():
                main(["fit", "--config", "configs/quickstart.yaml", *PRIOR_RUN, "--trainer.default_root_dir",
                      str(run.parent.parent), "--run.experiment", run.parent.name, "--run.version", run.name])
                capsys.readouterr()
        with parse_only(), pytest.raises(Parsed):
            main(arguments)


def run_script(words: list[str], capsys) -> None:
    script = words[1] if words[0].startswith("python") else words[0]
    arguments = words[2:] if words[0].startswith("python") else words[1:]
    argv = sys.argv
    sys.argv = [script, *arguments]
    try:
        if "--dry-run" in arguments:  # the script's own dry run: prints, creates nothing
            with pytest.raises(SystemExit) as stopped:
                runpy.run_path(str(REPO / script), run_name="__main__")
            assert stopped.value.code in (0, None)
            assert capsys.readouterr().out.strip()
        else:
            with parse_only(), pytest.raises(Parsed):
                runpy.run_path(str(REPO / script), run_name="__main__")
    finally:
        sys.argv = argv


def run_make(words: list[str], capsys) -> None:
    dry = subprocess.run(["make", "-n", *words[1:]], cwd=REPO, capture_output=True, text=True, timeout=60)
    assert dry.returncode == 0, dry.stderr
    for line in dry.stdout.splitlines():
        arguments = sslprobe_arguments(line.split())
        if arguments:
            run_sslprobe(arguments, capsys)


@pytest.fixture
def checkout(tmp_path, cifar_root, monkeypatch):
    """A working directory with the repository's configs and the real CIFAR-10 as ``data``: what the
    shown commands name by relative paths; a run they make stays in it."""
    work = tmp_path / "checkout"
    work.mkdir()
    for name in ("configs", "callbacks"):
        (work / name).symlink_to(REPO / name)
    (work / "data").symlink_to(cifar_root)
    monkeypatch.chdir(work)
    return work


@pytest.fixture
def tutorial_modules(tmp_path, monkeypatch):
    """The pages' files (tutorials, helper scripts) importable (a command may name their classes);
    registries restored after."""
    for page in pages():
        for title, text in tutorial_files(page).items():
            (tmp_path / title).write_text(text)
    monkeypatch.syspath_prepend(str(tmp_path))
    methods, probes = dict(METHODS), dict(PROBE_CALLBACKS)
    yield tmp_path
    for registry, before in ((METHODS, methods), (PROBE_CALLBACKS, probes)):
        registry.clear()
        registry.update(before)
    for name in [name for name in sys.modules if name.startswith(("my_", "run_with_"))]:
        del sys.modules[name]


def test_every_shown_command_runs(checkout, tutorial_modules, monkeypatch, capsys):
    monkeypatch.setenv("WANDB_MODE", "offline")
    commands = shown_commands()
    assert len(commands) > 30  # the extraction finds the docs' commands
    ran = []
    for where, words in commands:
        head = tuple(words[:3])
        if any(head[:len(prefix)] == prefix for prefix in NOT_RUN):
            continue
        try:
            arguments = sslprobe_arguments(words)
            if arguments is not None:
                run_sslprobe(arguments, capsys)
            elif words[0] == "make":
                run_make(words, capsys)
            elif any(word.startswith("scripts/") for word in words[:2]):
                run_script(words, capsys)
            elif words[0] == "python" and len(words) == 2 and (tutorial_modules / words[1]).is_file():
                runpy.run_path(str(tutorial_modules / words[1]), run_name="__main__")  # a page's script
            elif words[0] == "python" and (tutorial_modules / words[1]).is_file():
                importlib.import_module(words[1].removesuffix(".py"))  # the launcher registers its probes
                run_sslprobe(words[2:], capsys)
            else:
                pytest.fail(f"{where}: no rule runs `{' '.join(words)}`; show it in a text block or add a rule")
        except (Exception, SystemExit) as error:  # say which command failed
            raise AssertionError(f"{where}: `{' '.join(words)}` failed: {error}") from error
        ran.append(where)
    assert len(ran) > 30
