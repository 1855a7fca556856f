"""A 2-step ``fit`` of every method fragment but SimCLR (test_run_dirs.py) on the real CIFAR-10 copy.

The methods are found from ``configs/methods/``: a new method's fragment is tested here unlisted.
"""

from __future__ import annotations

import pytest
import yaml
from conftest import CONFIGS, check_run, tiny_args  # tests/cli/conftest.py

FRAGMENTS = sorted(p.stem for p in (CONFIGS / "methods").glob("*.yaml") if p.stem != "simclr")


@pytest.mark.parametrize("method", FRAGMENTS)
def test_fit_writes_a_run_directory(method, cifar, cifar_root, tmp_path, run_cli):
    class_name = yaml.safe_load((CONFIGS / "methods" / f"{method}.yaml").read_text())["model"]["class_path"]
    class_name = class_name.rsplit(".", 1)[-1]
    code, _, err = run_cli(tiny_args(method, cifar_root, tmp_path))
    assert code == 0, err
    experiment = f"{class_name.lower()}_resnet12_none"  # <method>_<backbone>_<imbalance>
    assert [p.name for p in tmp_path.iterdir()] == [experiment]
    assert [p.name for p in (tmp_path / experiment).iterdir()] == ["version_0"]
    check_run(tmp_path / experiment / "version_0", class_name, cifar.train.labels)
