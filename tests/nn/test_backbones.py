"""The backbone contract: (B, feature_dim) features, the CIFAR stem, norm choices, clear errors."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from sslprobe.nn import BACKBONE_CHOICES, ResNet12, build_backbone, build_projector, last_linear, resnet18, vit_tiny

TINY = {"widths": (8, 16, 32, 64)}


def images(batch: int = 2, size: int = 32) -> torch.Tensor:
    return torch.randn(batch, 3, size, size, generator=torch.Generator().manual_seed(0))


@pytest.mark.parametrize(("cifar_stem", "side"), [(True, 32), (False, 8)])
def test_resnet18_stem_resolution(cifar_stem, side):
    backbone = resnet18(cifar_stem=cifar_stem).eval()
    shapes = {}
    for name in ("conv1", "bn1", "act1", "maxpool"):
        getattr(backbone.model, name).register_forward_hook(
            lambda module, args, output, name=name: shapes.__setitem__(name, tuple(output.shape))
        )
    with torch.no_grad():
        features = backbone(images())
    assert shapes["maxpool"] == (2, 64, side, side)
    assert shapes["conv1"][-1] == (32 if cifar_stem else 16)
    assert features.shape == (2, 512) and backbone.feature_dim == 512


@pytest.mark.parametrize(("name", "kwargs", "dim"), [
    ("resnet12", {}, 640),
    ("resnet12", TINY, 64),
    ("resnet12", {"widths": (4, 4, 8, 24)}, 24),
    ("resnet18", {}, 512),
    ("vit_tiny", {}, 192),
    ("vit_tiny", {"depth": 1, "embed_dim": 48, "num_heads": 2, "patch_size": 8}, 48),
])
def test_features_have_feature_dim(name, kwargs, dim):
    backbone = build_backbone(name, **kwargs).eval()
    assert backbone.feature_dim == dim
    with torch.no_grad():
        assert backbone(images(3)).shape == (3, dim)


def test_resnet12_widths():
    backbone = ResNet12(widths=(8, 16, 32, 64))
    convs = [m.out_channels for m in backbone.modules() if isinstance(m, nn.Conv2d) and m.kernel_size == (1, 1)]
    assert convs == [8, 16, 32, 64]  # one shortcut per stage
    with pytest.raises(ValueError, match=r"four positive widths"):
        ResNet12(widths=(8, 16, 32))
    with pytest.raises(ValueError, match=r"ResNet12.widths: item 1: expected a positive int, got 0"):
        ResNet12(widths=(8, 0, 32, 64))


@pytest.mark.parametrize("norm", ["group", "none"])
def test_resnet12_without_batchnorm_is_batch_independent(norm):
    backbone = ResNet12(widths=(8, 16, 32, 64), norm=norm).train()
    assert not any(isinstance(m, nn.modules.batchnorm._BatchNorm) for m in backbone.modules())
    assert any(isinstance(m, nn.GroupNorm) for m in backbone.modules()) == (norm == "group")
    batch = images(4)
    with torch.no_grad():
        torch.testing.assert_close(backbone(batch)[:1], backbone(batch[:1]))


def test_resnet12_batchnorm_default():
    assert any(isinstance(m, nn.BatchNorm2d) for m in ResNet12(widths=(8, 16, 32, 64)).modules())


def test_vit_patch_must_divide_image():
    with pytest.raises(ValueError, match=r"image size 30 is not divisible by patch size 4"):
        vit_tiny(img_size=30, patch_size=4)
    with pytest.raises(ValueError, match=r"not divisible"):
        build_backbone("vit_tiny", img_size=32, patch_size=5)


def test_unknown_backbone_lists_valid_names():
    with pytest.raises(ValueError) as info:
        build_backbone("resnet50")
    assert "resnet50" in str(info.value)
    assert all(name in str(info.value) for name in ("resnet12", "resnet18", "vit_tiny"))
    assert set(BACKBONE_CHOICES) == {"resnet12", "resnet18", "vit_tiny"}


def test_wrong_backbone_kwargs():
    with pytest.raises(ValueError, match=r"backbone_kwargs do not fit resnet12"):
        build_backbone("resnet12", cifar_stem=True)


def test_projectors():
    assert isinstance(build_projector(None, 64), nn.Identity)
    mlp = build_projector("mlp", 64, hidden_dim=32, out_dim=16)
    assert [type(m) for m in mlp] == [nn.Linear, nn.BatchNorm1d, nn.ReLU, nn.Linear]
    assert last_linear(mlp) is mlp[3] and mlp[3].out_features == 16
    assert mlp(torch.randn(5, 64)).shape == (5, 16)
    linear = build_projector("linear", 64, out_dim=8)
    assert last_linear(linear) is linear
    assert last_linear(nn.Identity()) is None
    with pytest.raises(ValueError, match=r"unknown projector 'conv'"):
        build_projector("conv", 64)


@pytest.mark.parametrize(("size", "cifar_stem"), [(32, True), (64, True), (96, False)])
def test_resnet18_stem_follows_the_image_size(size, cifar_stem):
    backbone = build_backbone("resnet18", image_size=size)
    assert (backbone.model.conv1.kernel_size == (3, 3)) is cifar_stem
    assert isinstance(backbone.model.maxpool, nn.Identity) is cifar_stem
    with torch.no_grad():
        assert backbone.eval()(torch.randn(2, 3, size, size)).shape == (2, 512)
    pinned = build_backbone("resnet18", image_size=size, cifar_stem=True)  # the override
    assert pinned.model.conv1.kernel_size == (3, 3)


@pytest.mark.parametrize("size", [32, 64, 96])
def test_resnet12_and_vit_take_32_64_and_96_px(size):
    with torch.no_grad():
        resnet = build_backbone("resnet12", image_size=size, widths=(4, 8, 8, 8)).eval()
        assert resnet(torch.randn(2, 3, size, size)).shape == (2, 8)
        vit = build_backbone("vit_tiny", image_size=size, patch_size=16, depth=1, embed_dim=24, num_heads=2).eval()
        assert vit(torch.randn(2, 3, size, size)).shape == (2, 24)


def test_image_sizes_a_backbone_cannot_take():
    with pytest.raises(ValueError, match="resnet12 cannot take 8x8 images"):
        build_backbone("resnet12", image_size=8)
    with pytest.raises(ValueError, match="resnet18 with the ImageNet stem cannot take 16x16 images"):
        build_backbone("resnet18", image_size=16, cifar_stem=False)
    with pytest.raises(ValueError, match="img_size 32 differs from data.image_size 96"):
        build_backbone("vit_tiny", image_size=96, img_size=32)
    with pytest.raises(ValueError, match="image size 96 is not divisible by patch size 5"):
        build_backbone("vit_tiny", image_size=96, patch_size=5)
