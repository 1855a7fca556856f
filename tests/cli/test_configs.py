"""Every shipped config parses (``--print_config``) and resolves to what its file name says."""

from __future__ import annotations

import pytest
import yaml
from conftest import CONFIGS  # tests/cli/conftest.py

CLASSES = {"simclr": "SimCLR", "spectral": "SpectralContrastive", "barlow_twins": "BarlowTwins",
           "supervised": "Supervised", "info_nce": "InfoNCE", "vicreg": "VICReg"}
METHOD_CONFIGS = sorted(p.name for p in CONFIGS.glob("*_cifar10.yaml"))


def test_every_config_is_covered():
    assert METHOD_CONFIGS
    assert {p.name for p in CONFIGS.glob("*.yaml")} == {*METHOD_CONFIGS, "ddp.yaml", "quickstart.yaml"}
    assert {name.split("_resnet")[0].split("_vit")[0] for name in METHOD_CONFIGS} == set(CLASSES)


@pytest.mark.parametrize("name", METHOD_CONFIGS)
def test_method_config_parses(name, run_cli):
    code, out, err = run_cli(["fit", "--config", str(CONFIGS / name), "--print_config"])
    assert code == 0, err
    printed = yaml.safe_load(out)
    backbone = next(b for b in ("resnet12", "resnet18", "vit_tiny") if f"_{b}_" in name)
    method = name.split(f"_{backbone}_")[0]
    assert printed["model"]["class_path"] == f"sslprobe.methods.{CLASSES[method]}"
    assert printed["model"]["init_args"]["backbone"] == backbone
    assert printed["data"]["imbalance"] == "full"
    raw = yaml.safe_load((CONFIGS / name).read_text())
    for key, value in raw["model"]["init_args"].items():
        assert printed["model"]["init_args"][key] == value, key
    for key, value in raw["data"].items():
        assert printed["data"][key] == (list(value) if isinstance(value, tuple) else value), key


def test_quickstart_config_parses(run_cli):
    code, out, err = run_cli(["fit", "--config", str(CONFIGS / "quickstart.yaml"), "--print_config"])
    assert code == 0, err
    printed = yaml.safe_load(out)
    assert printed["data"]["imbalance"] == "none" and printed["data"]["subset_size"] == 2000


def test_ddp_fragment_after_a_method_config(run_cli):
    code, out, err = run_cli(["fit", "--config", str(CONFIGS / "simclr_resnet18_cifar10.yaml"),
                              "--config", str(CONFIGS / "ddp.yaml"), "--print_config"])
    assert code == 0, err
    printed = yaml.safe_load(out)
    assert printed["trainer"]["strategy"] == "ddp" and printed["trainer"]["devices"] == -1
    assert printed["model"]["class_path"] == "sslprobe.methods.SimCLR"  # the method config is kept
    assert printed["data"]["batch_size"] == 256
