"""A 2-step ``fit`` of every method but SimCLR (test_run_dirs.py) on the real CIFAR-10 copy."""

from __future__ import annotations

import pytest
from conftest import check_run, tiny_args  # tests/cli/conftest.py

# method: (config file, class name); resnet18 configs get the tiny resnet12 too
METHODS = {
    "spectral": ("spectral_resnet12_cifar10.yaml", "SpectralContrastive"),
    "info_nce": ("info_nce_resnet18_cifar10.yaml", "InfoNCE"),
    "barlow_twins": ("barlow_twins_resnet12_cifar10.yaml", "BarlowTwins"),
    "vicreg": ("vicreg_resnet18_cifar10.yaml", "VICReg"),
    "supervised": ("supervised_resnet12_cifar10.yaml", "Supervised"),
}


@pytest.mark.parametrize("method", sorted(METHODS))
def test_fit_writes_a_run_directory(method, cifar, cifar_root, tmp_path, run_cli):
    config, class_name = METHODS[method]
    code, _, err = run_cli(tiny_args(config, cifar_root, tmp_path))
    assert code == 0, err
    experiment = f"{class_name.lower()}_resnet12_none"  # <method>_<backbone>_<imbalance>
    assert [p.name for p in tmp_path.iterdir()] == [experiment]
    assert [p.name for p in (tmp_path / experiment).iterdir()] == ["version_0"]
    check_run(tmp_path / experiment / "version_0", class_name, cifar.train.labels)
