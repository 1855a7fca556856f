"""Hyperparameter checks shared by the loss modules (run once, at construction)."""

from __future__ import annotations


def check_positive(name: str, value: float) -> None:
    if not value > 0:
        raise ValueError(f"{name} must be > 0, got {value}")


def check_non_negative(name: str, value: float) -> None:
    if not value >= 0:
        raise ValueError(f"{name} must be >= 0, got {value}")


def check_same_shape(z1, z2) -> None:
    if z1.ndim != 2 or z1.shape != z2.shape:
        raise ValueError(
            f"expected two (B, D) batches of equal shape, got {tuple(z1.shape)} and {tuple(z2.shape)}"
        )
