"""Weights of other libraries mapped onto an architecture: prefixes found, keys reported, tensors equal."""

from __future__ import annotations

import pytest
import torch

from sslprobe.nn.foreign import (
    PROJECTOR_PREFIXES,
    WeightsError,
    build_architecture,
    build_head,
    load_weights,
    read_state_dict,
)


def test_a_lightning_checkpoint_of_another_library_loads_backbone_and_head(tmp_path):
    torch.manual_seed(0)
    trained = build_architecture("resnet12", {"widths": [4, 8, 8, 8]}).network
    head = build_head("mlp", 8, {"hidden_dim": 16, "output_dim": 4})
    state = {**{f"model.backbone.{k}": v for k, v in trained.state_dict().items()},
             **{f"model.projection_head.{k}": v for k, v in head.state_dict().items()},
             "model.classifier.weight": torch.zeros(10, 8)}
    path = tmp_path / "other.ckpt"
    torch.save({"state_dict": state, "epoch": 7, "hyper_parameters": {"lr": 0.1, "name": "simclr"},
                "optimizer_states": [{"state": {}, "param_groups": [{"lr": 0.1}]}]}, path)
    tensors = read_state_dict(path)
    fresh = build_architecture("resnet12", {"widths": [4, 8, 8, 8]}).network
    report = load_weights(fresh, tensors, name="resnet12")
    assert report.prefix == "model.backbone." and report.loaded == report.expected and not report.missing
    assert all(torch.equal(fresh.state_dict()[k], v) for k, v in trained.state_dict().items())
    new_head = build_head("mlp", 8, {"hidden_dim": 16, "output_dim": 4})
    head_report = load_weights(new_head, tensors, tokens=PROJECTOR_PREFIXES, name="head")
    assert head_report.prefix == "model.projection_head."
    assert head_report.loaded == 7  # 3 weights, 2 biases, the BN statistics
    assert torch.equal(new_head[3].weight, head[3].weight)


def test_missing_and_unexpected_keys_are_reported_and_a_given_prefix_is_used():
    network = build_architecture("resnet12", {"widths": [4, 8, 8, 8]}).network
    state = {f"enc.{k}": v for k, v in network.state_dict().items() if not k.startswith("stages.3.shortcut")}
    state["enc.extra.weight"] = torch.zeros(3)
    fresh = build_architecture("resnet12", {"widths": [4, 8, 8, 8]}).network
    report = load_weights(fresh, state, prefix="enc.", name="resnet12")
    assert report.prefix == "enc." and report.unexpected == ["extra.weight"]
    assert report.missing == ["stages.3.shortcut.0.weight", "stages.3.shortcut.1.weight", "stages.3.shortcut.1.bias",
                              "stages.3.shortcut.1.running_mean", "stages.3.shortcut.1.running_var"]
    assert "missing 5" in report.summary("backbone") and "unexpected 1: extra.weight" in report.summary("backbone")
    with pytest.raises(WeightsError, match="only 0 of the"):
        load_weights(fresh, state, prefix="other.", name="resnet12")


def test_torchvision_classifier_is_removed_and_the_stem_follows_cifar_stem():
    architecture = build_architecture("torchvision:resnet18", {"cifar_stem": True})
    assert architecture.backbone.feature_dim == 512 and "fc.weight" not in architecture.network.state_dict()
    assert architecture.network.conv1.stride == (1, 1)
    features = architecture.backbone.eval()(torch.zeros(2, 3, 32, 32))
    assert features.shape == (2, 512)
