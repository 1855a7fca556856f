"""The Extending tutorials' code runs: their files are written from the markdown, their own tests
pass, and the method and the probe they add train through ``python -m sslprobe fit`` on a tiny model."""

from __future__ import annotations

import csv
import importlib
import inspect
import json
import sys
from pathlib import Path

import pytest
import torch
import yaml
from docs_markdown import DOCS, tutorial_files
from helpers import tiny_fit_args  # tests/helpers.py
from lightning.pytorch import seed_everything

from sslprobe.callbacks import PROBE_CALLBACKS
from sslprobe.cli import main
from sslprobe.data.datamodule import CIFAR10DataModule
from sslprobe.methods import METHODS

PAGES = {"method": DOCS / "extending" / "method.md", "probe": DOCS / "extending" / "probe.md"}


@pytest.fixture
def tutorial(tmp_path, monkeypatch):
    """Writes a tutorial page's files into a folder on sys.path; registries and modules restored after."""
    folder = tmp_path / "tutorial"
    folder.mkdir()
    monkeypatch.syspath_prepend(str(folder))
    methods, probes = dict(METHODS), dict(PROBE_CALLBACKS)

    def write(name: str) -> dict[str, str]:
        files = tutorial_files(PAGES[name])
        for title, text in files.items():
            (folder / title).write_text(text)
        return files

    yield write
    for registry, before in ((METHODS, methods), (PROBE_CALLBACKS, probes)):
        registry.clear()
        registry.update(before)
    for name in [name for name in sys.modules if name.startswith(("my_", "run_with_", "test_align", "test_view"))]:
        del sys.modules[name]


def run_tests_of(module_name: str, tmp_path: Path) -> int:
    """Calls every ``test_*`` function of a tutorial's test file (``tmp_path`` where asked for)."""
    module = importlib.import_module(module_name)
    tests = [function for name, function in vars(module).items() if name.startswith("test_") and callable(function)]
    for function in tests:
        function(**({"tmp_path": tmp_path} if "tmp_path" in inspect.signature(function).parameters else {}))
    return len(tests)


def logged(path: Path, key: str) -> list[float]:
    with open(path, newline="") as handle:
        return [float(row[key]) for row in csv.DictReader(handle) if row.get(key)]


def test_the_method_tutorial_files_and_tests(tutorial, tmp_path):
    files = tutorial("method")
    assert set(files) == {"my_methods.py", "test_align_uniform.py"}
    assert run_tests_of("test_align_uniform", tmp_path) == 2


def test_the_tutorial_method_trains_through_the_cli(tutorial, tmp_path, cifar_root):
    tutorial("method")
    main([*tiny_fit_args(tmp_path, cifar_root, "align_uniform", "v", subset_size=100, batch_size=25, max_epochs=1,
                         model=("--model.class_path", "my_methods.AlignUniform")),
          "--model.init_args.uniform_weight", "0.5", "--trainer.limit_train_batches", "2",
          "--trainer.limit_val_batches", "0", "--trainer.log_every_n_steps", "1", "--probes.knn_monitor", "null"])
    run = tmp_path / "align_uniform" / "v"
    assert yaml.safe_load((run / "config.yaml").read_text())["model"]["class_path"] == "my_methods.AlignUniform"
    losses = logged(run / "metrics.csv", "train/loss")
    assert losses and all(torch.isfinite(torch.tensor(losses)))
    # Two optimizer steps moved the weights away from the network the run's seed builds.
    from my_methods import AlignUniform

    trained = AlignUniform.load_from_checkpoint(run / "checkpoints" / "last.ckpt", map_location="cpu")
    assert trained.hparams.uniform_weight == 0.5
    seed_everything(0)
    initial = AlignUniform(**trained.hparams)
    moved = [name for name, p in trained.state_dict().items()
             if p.is_floating_point() and not torch.equal(p, initial.state_dict()[name])]
    assert any(name.startswith("backbone.") for name in moved) and any(name.startswith("projector.") for name in moved)


def test_the_tutorial_probe_runs_in_fit_and_on_a_checkpoint(tutorial, tmp_path, cifar_root):
    files = tutorial("probe")
    assert set(files) == {"my_probes.py", "run_with_my_probes.py", "test_view_agreement.py"}
    assert run_tests_of("test_view_agreement", tmp_path) == 2
    importlib.import_module("run_with_my_probes")  # the launcher's import registers the probe
    main([*tiny_fit_args(tmp_path, cifar_root, "toy", "v", subset_size=100, batch_size=25, max_epochs=1),
          "--trainer.limit_train_batches", "2", "--trainer.limit_val_batches", "0",
          "--probes.knn_monitor", "null", "--probes.view_agreement.num_images", "32"])
    run = tmp_path / "toy" / "v"
    written = json.loads((run / "probes" / "view_agreement_epoch1.json").read_text())["mean_cosine"]
    # The same number from the checkpoint, computed here through the same contracts.
    from sslprobe.methods import SimCLR

    method = SimCLR.load_from_checkpoint(run / "checkpoints" / "last.ckpt", map_location="cpu")
    datamodule = CIFAR10DataModule(**yaml.safe_load((run / "config.yaml").read_text())["data"])
    datamodule.setup_for_run(run)
    view1, view2 = datamodule.probe_views(32, 0)
    expected = float(torch.nn.functional.cosine_similarity(method.embed(view1), method.embed(view2), dim=1).mean())
    assert written == pytest.approx(expected, rel=1e-5)
    assert -1.0 < written < 1.0
    assert logged(run / "metrics.csv", "view_agreement/mean_cosine") == pytest.approx([written], rel=1e-6)
    # `probe --what view_agreement` re-measures the checkpoint with the run's saved settings.
    main(["probe", "--ckpt_path", str(run / "checkpoints" / "last.ckpt"), "--what", "view_agreement",
          "--device", "cpu"])
    assert logged(run / "metrics.csv", "view_agreement/mean_cosine") == pytest.approx([written, written], rel=1e-5)
