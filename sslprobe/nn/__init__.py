"""Backbones and projection heads."""

from sslprobe.nn.backbones import BACKBONE_CHOICES, ResNet12, build_backbone, resnet18, vit_tiny
from sslprobe.nn.heads import build_projector, last_linear, mlp_projector

__all__ = ["BACKBONE_CHOICES", "ResNet12", "build_backbone", "build_projector", "last_linear",
           "mlp_projector", "resnet18", "vit_tiny"]
