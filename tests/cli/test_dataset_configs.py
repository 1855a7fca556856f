"""Data sets through the CLI: the configs/datasets fragments compose after base, method and backbone,
and a short CIFAR-100 fit runs every probe."""

from __future__ import annotations

import json

import numpy as np
import pytest
import yaml
from conftest import CONFIGS, method_configs, tiny_args  # tests/cli/conftest.py
from test_configs import print_config  # tests/cli/test_configs.py

DATASET_FRAGMENTS = sorted(p.stem for p in (CONFIGS / "datasets").glob("*.yaml"))


def test_a_fragment_for_every_shipped_reader():
    from sslprobe.data import DATASETS

    assert set(DATASET_FRAGMENTS) == {name for name, reader in DATASETS.items()
                                      if reader.__module__.startswith("sslprobe.data.")}


@pytest.mark.parametrize("dataset", DATASET_FRAGMENTS)
def test_dataset_fragment_composes_after_method_and_backbone(dataset, run_cli):
    base = print_config(run_cli, *method_configs("simclr", "resnet18"))
    printed = print_config(run_cli, *method_configs("simclr", "resnet18"),
                           "--config", str(CONFIGS / "datasets" / f"{dataset}.yaml"))
    fragment = yaml.safe_load((CONFIGS / "datasets" / f"{dataset}.yaml").read_text())["data"]
    for key, value in fragment.items():
        assert printed["data"][key] == value, key
    # Only the data section (and the default experiment name the run's paths use) changes.
    assert printed["model"] == base["model"]
    assert {k: v for k, v in printed["trainer"].items() if k != "logger"} == \
        {k: v for k, v in base["trainer"].items() if k != "logger"}
    assert {k: v for k, v in printed["data"].items() if k not in fragment} == \
        {k: v for k, v in base["data"].items() if k not in fragment}
    if dataset == "cifar10":  # the default: the fragment changes nothing
        assert printed == base
    else:
        assert printed["run"]["experiment"] == f"simclr_resnet18_full_{dataset}"


@pytest.mark.slow
def test_short_cifar100_fit_runs_every_probe(cifar_root, tmp_path, run_cli):
    if not (cifar_root / "cifar-100-python" / "test").is_file():
        pytest.skip(f"real CIFAR-100 absent under {cifar_root}")
    runs = tmp_path / "runs"
    args = tiny_args(
        "simclr", cifar_root, runs,
        "--config", str(CONFIGS / "datasets" / "cifar100.yaml"),
        "--config", str(CONFIGS.parent / "callbacks" / "probes.yaml"),
        "--data.imbalance", "dirichlet", "--data.subset_size", "1000",
        "--run.version", "v", "--trainer.callbacks", "null", "--trainer.enable_progress_bar", "false",
        "--probes.knn_monitor.train_size", "1000", "--probes.knn_monitor.test_size", "500",
        "--probes.spectrum.num_images", "128",
        "--probes.landscape.num_images", "64", "--probes.landscape.grid_points", "3",
        "--probes.linear_eval.epochs", "2", "--probes.linear_eval.train_size", "1000",
        "--probes.linear_eval.test_size", "500", "--probes.linear_eval.knn_k", "10",
        "--probes.theory.num_images", "64",
    )
    code, _, err = run_cli(args)
    assert code == 0, err
    run = runs / "simclr_resnet12_dirichlet_cifar100" / "v"
    config = yaml.safe_load((run / "config.yaml").read_text())
    assert config["data"]["dataset"] == "cifar100" and config["data"]["label_set"] == "fine"
    subset = json.loads((run / "subset.json").read_text())
    assert len(subset["class_counts"]) == 100 and sum(subset["class_counts"]) == subset["size"] == 1000
    from sslprobe.data import load_cifar100

    labels = load_cifar100(cifar_root).train.labels.numpy()
    assert np.bincount(labels[subset["indices"]], minlength=100).tolist() == subset["class_counts"]
    linear = json.loads((run / "probes" / "linear_eval.json").read_text())
    assert len(linear["per_class"]) == 100 and linear["num_train"] == 1000 and linear["num_test"] == 500
    assert 0 <= linear["top1"] <= 1 and 0 <= linear["random_init_top1"] <= 1
    cache = json.loads((runs / "random_init_cache" / linear["random_init_cache"].rsplit("/", 1)[-1]).read_text())
    assert [entry["data"]["dataset"] for entry in cache["entries"].values()] == ["cifar100"]
    knn = json.loads((run / "probes" / "knn_monitor.json").read_text())["history"]
    assert [row["epochs_trained"] for row in knn] == [0, 1]
    for name in ("spectrum.npz", "landscape_epoch1.json", "theory_epoch1.json", "linear_eval_per_class.png"):
        assert (run / "probes" / name).stat().st_size > 0, name
    assert list(run.glob("wandb/offline-run-*/run-*.wandb"))


def test_a_reader_given_by_class_path(run_cli, tmp_path):
    printed = print_config(run_cli, *method_configs("simclr", "resnet12"), "--data.dataset",
                           "{class_path: sslprobe.data.ImageFolderReader, init_args: {test_fraction: 0.5}}")
    assert printed["data"]["dataset"]["class_path"] == "sslprobe.data.ImageFolderReader"
    assert printed["data"]["dataset"]["init_args"]["test_fraction"] == 0.5
    assert printed["run"]["experiment"] == "simclr_resnet12_full_imagefolderreader"
    from PIL import Image

    from sslprobe.data import ImageDataModule, ImageFolderReader

    for name in ("a", "b"):
        (tmp_path / name).mkdir()
        for index in range(2):
            Image.new("RGB", (8, 8), (index, 0, 0)).save(tmp_path / name / f"{index}.png")
    module = ImageDataModule(root=str(tmp_path), dataset=ImageFolderReader(test_fraction=0.5, cache=False),
                             image_size=8, batch_size=2)
    module.setup()
    assert module.class_names == ["a", "b"] and len(module.evaluation_sets()[1]) == 2
