"""The shipped config fragments compose (``--print_config``) into the configs their names say."""

from __future__ import annotations

import subprocess
import tempfile
from pathlib import Path

import pytest
import yaml
from conftest import CONFIGS, REPO, method_configs  # tests/cli/conftest.py

from sslprobe.methods import METHODS
from sslprobe.nn import BACKBONE_CHOICES

METHOD_FRAGMENTS = sorted(p.stem for p in (CONFIGS / "methods").glob("*.yaml"))
BACKBONE_FRAGMENTS = sorted(p.stem for p in (CONFIGS / "backbones").glob("*.yaml"))
# The commit before the method x backbone files became fragments: its files are the reference.
FORMER_COMMIT = "75e4c18"


def fragment_class(method: str) -> str:
    return yaml.safe_load((CONFIGS / "methods" / f"{method}.yaml").read_text())["model"]["class_path"]


def test_every_method_and_backbone_has_a_fragment():
    shipped = {name for name, cls in METHODS.items() if cls.__module__.startswith("sslprobe.methods.")}
    assert {fragment_class(m).rsplit(".", 1)[-1] for m in METHOD_FRAGMENTS} == shipped
    assert set(BACKBONE_FRAGMENTS) == set(BACKBONE_CHOICES)
    assert {p.name for p in CONFIGS.glob("*.yaml")} == {"base.yaml", "ddp.yaml", "quickstart.yaml"}


def print_config(run_cli, *args: str) -> dict:
    code, out, err = run_cli(["fit", *args, "--print_config"])
    assert code == 0, err
    return yaml.safe_load(out)


@pytest.mark.parametrize(("method", "backbone"), [*((m, "resnet12") for m in METHOD_FRAGMENTS),
                                                  *(("simclr", b) for b in BACKBONE_FRAGMENTS if b != "resnet12")])
def test_fragments_compose(method, backbone, run_cli):
    printed = print_config(run_cli, *method_configs(method, backbone))
    assert printed["model"]["class_path"] == fragment_class(method)
    for fragment in (CONFIGS / "methods" / f"{method}.yaml", CONFIGS / "backbones" / f"{backbone}.yaml"):
        for key, value in (yaml.safe_load(fragment.read_text())["model"].get("init_args") or {}).items():
            assert printed["model"]["init_args"][key] == value, (fragment.name, key)
    base = yaml.safe_load((CONFIGS / "base.yaml").read_text())
    for key, value in base["data"].items():
        assert printed["data"][key] == value, key
    assert printed["data"]["imbalance"] == "full" and printed["trainer"]["max_epochs"] == 200


def former_file(name: str) -> str | None:
    try:
        return subprocess.run(["git", "show", f"{FORMER_COMMIT}:configs/{name}"], cwd=REPO, text=True,
                              capture_output=True, check=True, timeout=30).stdout
    except (OSError, subprocess.SubprocessError):
        return None


@pytest.mark.slow
def test_fragments_resolve_to_the_former_combination_files(run_cli):
    """base + method + backbone resolves to exactly the config of each former <method>_<backbone>_cifar10.yaml."""
    listing = subprocess.run(["git", "ls-tree", "--name-only", f"{FORMER_COMMIT}:configs"], cwd=REPO, text=True,
                             capture_output=True, timeout=30)
    if listing.returncode != 0:
        pytest.skip(f"commit {FORMER_COMMIT} is not in this checkout's history (a shallow or exported copy)")
    former = [name for name in listing.stdout.split() if name.endswith("_cifar10.yaml")]
    assert len(former) == 14
    with tempfile.TemporaryDirectory() as folder:
        for name in former:
            stem = name.removesuffix("_cifar10.yaml")
            backbone = next(b for b in BACKBONE_CHOICES if stem.endswith(f"_{b}"))
            method = stem.removesuffix(f"_{backbone}")
            path = Path(folder) / name
            path.write_text(former_file(name))
            old = print_config(run_cli, "--config", str(path))
            new = print_config(run_cli, *method_configs(method, backbone))
            for printed in (old, new):
                printed["run"].pop("version")  # the next free version_<n>, whatever the config
            assert new == old, name


def test_quickstart_config_parses(run_cli):
    printed = print_config(run_cli, "--config", str(CONFIGS / "quickstart.yaml"))
    assert printed["data"]["imbalance"] == "none" and printed["data"]["subset_size"] == 2000


def test_ddp_fragment_after_a_method_config(run_cli):
    printed = print_config(run_cli, *method_configs("simclr", "resnet18"), "--config", str(CONFIGS / "ddp.yaml"))
    assert printed["trainer"]["strategy"] == "ddp" and printed["trainer"]["devices"] == -1
    assert printed["model"]["class_path"] == "sslprobe.methods.SimCLR"  # the method config is kept
    assert printed["data"]["batch_size"] == 256
