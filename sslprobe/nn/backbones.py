"""Backbones: ``forward(images) -> (B, feature_dim)`` with a ``feature_dim`` attribute."""

from __future__ import annotations

import inspect
from typing import Literal

import timm
import torch
from torch import nn

from sslprobe.options import CheckedOptions, PositiveInt, checked

Norm = Literal["batch", "group", "none"]


def _norm(kind: Norm, channels: int) -> nn.Module:
    if kind == "batch":
        return nn.BatchNorm2d(channels)
    if kind == "group":
        return nn.GroupNorm(min(32, channels), channels)
    return nn.Identity()


class ResNet12Block(nn.Module):
    """Three 3×3 conv-norm-LeakyReLU(0.1) layers, a 1×1 conv shortcut, then 2×2 max-pool."""

    def __init__(self, in_channels: int, out_channels: int, norm: Norm = "batch"):
        super().__init__()
        layers: list[nn.Module] = []
        for index in range(3):
            conv_in = in_channels if index == 0 else out_channels
            layers.append(nn.Conv2d(conv_in, out_channels, 3, padding=1, bias=False))
            layers.append(_norm(norm, out_channels))
            if index < 2:
                layers.append(nn.LeakyReLU(0.1))
        self.body = nn.Sequential(*layers)
        self.shortcut = nn.Sequential(nn.Conv2d(in_channels, out_channels, 1, bias=False), _norm(norm, out_channels))
        self.activation = nn.LeakyReLU(0.1)
        self.pool = nn.MaxPool2d(2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.pool(self.activation(self.body(x) + self.shortcut(x)))


class ResNet12(CheckedOptions, nn.Module):
    """The few-shot ResNet-12 (Lee et al. 2019; Oreshkin et al. 2018) used by the paper's Fig. 4.

    Four residual stages of widths ``widths`` (default 64-160-320-640); 32×32 inputs end at
    2×2 (96×96 at 6×6), then global average pooling gives ``feature_dim = widths[-1]``.

    Args:
        widths: channels of the four stages.
        norm: ``batch`` (default), ``group`` or ``none`` (batch-independent, e.g. for tests that
            compare DDP with one process).
        image_size: side of the input images (checked: the four 2×2 pools need at least 16 px).
    """

    def __init__(
        self, widths: tuple[PositiveInt, PositiveInt, PositiveInt, PositiveInt] = (64, 160, 320, 640),
        norm: Norm = "batch", image_size: PositiveInt = 32,
    ):
        super().__init__()
        if len(widths) != 4 or min(widths) < 1:
            raise ValueError(f"resnet12 needs four positive widths, got {tuple(widths)}")
        if image_size < 16:
            raise ValueError(f"resnet12 cannot take {image_size}x{image_size} images: its four 2x2 max-pools "
                             "need at least 16 px (data.image_size)")
        channels = (3, *widths)
        self.stages = nn.Sequential(*(ResNet12Block(channels[i], channels[i + 1], norm) for i in range(4)))
        self.feature_dim = widths[-1]

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return self.stages(images).mean(dim=(2, 3))  # (B, C)


class TimmBackbone(nn.Module):
    """A timm model created without classifier head; exposes ``feature_dim``."""

    def __init__(self, model: nn.Module):
        super().__init__()
        self.model = model
        self.feature_dim = model.num_features

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return self.model(images)  # (B, feature_dim)


CIFAR_STEM_MAX_SIZE = 64  # the CIFAR stem up to this image side, the ImageNet stem above


@checked
def resnet18(cifar_stem: bool | None = None, image_size: PositiveInt = 32) -> TimmBackbone:
    """timm's ResNet-18; with ``cifar_stem`` a 3×3 stride-1 stem conv and no max-pool (32×32 stays 32×32).

    Args:
        cifar_stem: True: the CIFAR stem; False: the ImageNet stem (7×7 stride-2 conv and
            max-pool, /4); None: the CIFAR stem up to 64 px, the ImageNet stem above.
        image_size: side of the input images (checked: the network downsamples by 8 with the
            CIFAR stem and by 32 with the ImageNet stem).
    """
    if cifar_stem is None:
        cifar_stem = image_size <= CIFAR_STEM_MAX_SIZE
    smallest = 8 if cifar_stem else 32
    if image_size < smallest:
        raise ValueError(f"resnet18 with the {'CIFAR' if cifar_stem else 'ImageNet'} stem cannot take "
                         f"{image_size}x{image_size} images: it needs at least {smallest} px (data.image_size)")
    model = timm.create_model("resnet18", pretrained=False, num_classes=0)
    if cifar_stem:
        model.conv1 = nn.Conv2d(3, 64, kernel_size=3, stride=1, padding=1, bias=False)
        model.maxpool = nn.Identity()
    return TimmBackbone(model)


@checked
def vit_tiny(
    img_size: PositiveInt | None = None,
    patch_size: PositiveInt = 4,
    depth: PositiveInt = 12,
    embed_dim: PositiveInt = 192,
    num_heads: PositiveInt = 3,
    image_size: PositiveInt = 32,
) -> TimmBackbone:
    """timm's ViT-Tiny sized for CIFAR (patch 4 on 32×32 gives 64 tokens); features = class token.

    ``img_size`` (None: ``image_size``, the data's) must equal the data's image size and be a
    multiple of ``patch_size``.
    """
    img_size = image_size if img_size is None else img_size
    if img_size % patch_size:
        raise ValueError(f"vit_tiny: image size {img_size} is not divisible by patch size {patch_size}")
    if img_size != image_size:
        raise ValueError(f"vit_tiny: backbone_kwargs img_size {img_size} differs from data.image_size {image_size}; "
                         f"set img_size to {image_size} or leave it out")
    model = timm.create_model(
        "vit_tiny_patch16_224",
        pretrained=False,
        num_classes=0,
        img_size=img_size,
        patch_size=patch_size,
        depth=depth,
        embed_dim=embed_dim,
        num_heads=num_heads,
    )
    return TimmBackbone(model)


# The backbone registry: a name in a config (``model.init_args.backbone``) -> its factory. A new
# backbone registered here is known to the CLI, the configs and the tests; any other module with a
# ``feature_dim`` can be given by ``class_path`` instead.
BACKBONES = {"resnet12": ResNet12, "resnet18": resnet18, "vit_tiny": vit_tiny}
BACKBONE_CHOICES = tuple(BACKBONES)


def build_backbone(name: str, image_size: int | None = None, **kwargs) -> nn.Module:
    """Backbone ``name`` of `BACKBONES` with its keyword arguments, for images of ``image_size``².

    The image size goes to factories that take an ``image_size`` argument (they check it and
    may adapt to it); None: their default (32).
    """
    if name not in BACKBONES:
        raise ValueError(f"unknown backbone {name!r}; valid: {', '.join(BACKBONE_CHOICES)}")
    factory = BACKBONES[name]
    if image_size is not None and "image_size" in inspect.signature(factory).parameters:
        kwargs.setdefault("image_size", image_size)
    try:
        return factory(**kwargs)
    except TypeError as error:
        raise ValueError(f"model.backbone_kwargs do not fit {name}: {error}") from None
