"""`probe --backbone`: a timm model by name end to end, and the inputs it refuses in one line,
creating nothing (a weights file carrying code: that code never runs)."""

from __future__ import annotations

import json

import numpy as np
import pytest
import timm
import torch
import yaml
from test_untrusted_files import Payload, one_error_line  # tests/cli/test_untrusted_files.py

from sslprobe.nn.backbones import ResNet12

SMALL = ["--data.imbalance", "none", "--data.subset_size", "100", "--data.batch_size", "16",
         "--data.num_workers", "0", "--device", "cpu"]


def probe_args(cifar_root, root, *extra: str) -> list[str]:
    return ["probe", "--data.root", str(cifar_root), "--root", str(root), *SMALL, *extra]


def test_a_timm_model_by_name_probes_end_to_end(cifar_root, tmp_path, run_cli):
    code, out, err = run_cli(probe_args(
        cifar_root, tmp_path / "runs", "--backbone", "timm:test_resnet", "--what", "spectrum,knn,landscape",
        "--probes.spectrum.num_images", "32", "--probes.knn_monitor.train_size", "50",
        "--probes.knn_monitor.test_size", "20", "--probes.knn_monitor.k", "5"))
    assert code == 0, err
    run = tmp_path / "runs" / "probe_timm_test_resnet" / "version_0"
    width = timm.create_model("test_resnet", num_classes=0).num_features
    with np.load(run / "probes" / "spectrum.npz") as spectrum:
        assert spectrum["feature_eigenvalues"].shape == (1, width)
        assert "weight_singular_values" not in spectrum.files  # no projector
    knn = json.loads((run / "probes" / "knn_monitor.json").read_text())
    assert knn["num_train"] == 50 and knn["num_test"] == 20 and 0 <= knn["history"][-1]["top1"] <= 1
    declined = json.loads((run / "probes" / "landscape_epoch1.json").read_text())
    assert declined["applicable"] is False and "projector" in declined["reason"]
    assert "landscape: does not apply" in out
    config = yaml.safe_load((run / "config.yaml").read_text())
    assert config["model"]["weights"] is None and config["model"]["backbone"] == "timm:test_resnet"


def saved(path, state: dict):
    torch.save(state, path)
    return path


@pytest.mark.parametrize("backbone, words", [
    ("timm:no_such_net", ["unknown timm model 'no_such_net'"]),
    ("torchvision:no_such_net", ["unknown torchvision model 'no_such_net'"]),
    ("resnet13", ["unknown backbone 'resnet13'", "timm:<name>"]),
])
def test_unknown_model_name_is_one_line(backbone, words, cifar_root, tmp_path, run_cli):
    code, _, err = run_cli(probe_args(cifar_root, tmp_path / "runs", "--backbone", backbone))
    line = one_error_line(err)
    assert code != 0 and all(word in line for word in words), line
    assert not (tmp_path / "runs").exists()


def test_weights_with_a_code_payload_are_refused_and_never_run(cifar_root, tmp_path, run_cli):
    marker = tmp_path / "created"
    weights = saved(tmp_path / "model.pt", {"state_dict": {"conv.weight": torch.zeros(1)}, "extra": Payload(marker)})
    code, _, err = run_cli(probe_args(cifar_root, tmp_path / "runs", "--backbone", "resnet12", "--weights",
                                      str(weights)))
    line = one_error_line(err)
    assert code != 0 and f"{weights} refused" in line and "open" in line, line
    assert not marker.exists()
    assert not (tmp_path / "runs").exists()


def test_shape_mismatch_names_the_key(cifar_root, tmp_path, run_cli):
    other = ResNet12(widths=(4, 8, 8, 16))
    weights = saved(tmp_path / "model.pt", {"model": {f"backbone.{k}": v for k, v in other.state_dict().items()}})
    code, _, err = run_cli(probe_args(cifar_root, tmp_path / "runs", "--backbone", "resnet12",
                                      "--backbone_kwargs", "{widths: [4, 8, 8, 8]}", "--weights", str(weights)))
    line = one_error_line(err)
    assert code != 0 and "backbone.stages.3.body.0.weight has shape (16, 8, 3, 3)" in line, line
    assert "(8, 8, 3, 3)" in line
    assert not (tmp_path / "runs").exists()


def test_a_file_whose_keys_mostly_do_not_match_is_refused(cifar_root, tmp_path, run_cli):
    model = ResNet12(widths=(4, 8, 8, 8))
    state = dict(list(model.state_dict().items())[:3])  # 3 of its tensors, and unrelated ones
    state.update({f"decoder.{i}.weight": torch.zeros(2) for i in range(40)})
    weights = saved(tmp_path / "model.pt", state)
    code, _, err = run_cli(probe_args(cifar_root, tmp_path / "runs", "--backbone", "resnet12",
                                      "--backbone_kwargs", "{widths: [4, 8, 8, 8]}", "--weights", str(weights)))
    line = one_error_line(err)
    assert code != 0 and "only 3 of the" in line and "not weights of this architecture" in line, line
    assert not (tmp_path / "runs").exists()
