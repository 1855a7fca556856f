"""Accuracy of a read-out's predictions: top-1, per-class, balanced, rare/frequent and many/medium/few-shot.

The per-class counts (correct predictions and test samples of each class) are torchmetrics'
stat scores, the counts that library accumulates over batches and processes; the ratios are
taken in float64 from those integer counts (torchmetrics' own ratios are float32), so the
numbers are those of the float64 formulas used before. Accuracies are fractions in [0, 1].

Two groupings of the classes by their count in the *training subset* of the representation:
rare / frequent (below / not below the median count, `rare_classes`) and the long-tail
literature's many / medium / few-shot (more than ``many_above``, ``few_below`` to
``many_above``, fewer than ``few_below`` training images; 100 and 20 by convention,
`ShotThresholds`).
"""

from __future__ import annotations

import numpy as np
import torch
from torchmetrics.functional.classification import multiclass_stat_scores

from sslprobe.probes.linear_protocol import SHOT_GROUPS, ShotThresholds

DEFAULT_THRESHOLDS = ShotThresholds()
Counts = np.ndarray | list[int] | torch.Tensor


def hits_and_support(predictions: torch.Tensor, labels: torch.Tensor, num_classes: int) -> tuple[torch.Tensor, ...]:
    """Correct predictions and test samples of each class: two (C,) int64 tensors (torchmetrics stat scores)."""
    stats = multiclass_stat_scores(predictions.detach().long().cpu(), labels.detach().long().cpu(), num_classes,
                                   average="none")  # (C, 5): tp, fp, tn, fn, support
    return stats[:, 0], stats[:, 4]


def top1_accuracy(predictions: torch.Tensor, labels: torch.Tensor, num_classes: int) -> float:
    """The fraction of all test samples predicted correctly."""
    hits, support = hits_and_support(predictions, labels, num_classes)
    return float(hits.sum().double() / support.sum().double())


def per_class_accuracy(predictions: torch.Tensor, labels: torch.Tensor, num_classes: int) -> list[float | None]:
    """Recall of each class: the fraction of its test samples predicted correctly.

    Returns:
        List of C floats; None for a class without test samples.
    """
    hits, support = hits_and_support(predictions, labels, num_classes)
    return [float(h / t) if t > 0 else None for h, t in zip(hits.double(), support.double(), strict=True)]


def rare_classes(train_counts: Counts) -> list[int]:
    """Classes whose training count is strictly below the median of the counts.

    Frequent classes are all the others. With equal counts no class is rare. For the paper's
    "high" imbalance ``[4890, 87, 5000, 0, 74, 0, 0, 212, 4788, 4947]`` (median 149.5) the rare
    classes are 1, 3, 4, 5, 6.
    """
    counts = np.asarray(train_counts, dtype=np.float64)
    return [int(c) for c in np.flatnonzero(counts < np.median(counts))]


def mean_over(values: list[float | None], classes: list[int]) -> float | None:
    """Mean of ``values`` over ``classes``, skipping None; None when nothing is left."""
    present = [values[c] for c in classes if values[c] is not None]
    return float(np.mean(present)) if present else None


def shot_groups(train_counts: Counts, thresholds: ShotThresholds = DEFAULT_THRESHOLDS) -> dict[str, list[int]]:
    """The classes of each group by training count n: ``many_shot`` (n > many_above),
    ``medium_shot`` (few_below <= n <= many_above) and ``few_shot`` (n < few_below)."""
    counts = np.asarray(train_counts, dtype=np.int64)
    many = counts > thresholds.many_above
    few = counts < thresholds.few_below
    return {"many_shot": np.flatnonzero(many).tolist(), "medium_shot": np.flatnonzero(~many & ~few).tolist(),
            "few_shot": np.flatnonzero(few).tolist()}


def shot_group_accuracy(
    per_class: list[float | None], train_counts: Counts, thresholds: ShotThresholds = DEFAULT_THRESHOLDS
) -> dict[str, float | None]:
    """Mean per-class accuracy over the many-, medium- and few-shot classes (`shot_groups`).

    Args:
        per_class: (C,) accuracy of each class, None for a class without test samples.
        train_counts: (C,) training-subset count of each class.
        thresholds: the group boundaries (default: more than 100, 20–100, fewer than 20).

    Returns:
        ``many_shot``, ``medium_shot``, ``few_shot``: each None when the group holds no class
        (or none with test samples), never 0 for an empty group.
    """
    if len(per_class) != len(train_counts):
        raise ValueError(f"{len(per_class)} per-class accuracies but {len(train_counts)} training counts")
    groups = shot_groups(train_counts, thresholds)
    return {name: mean_over(per_class, groups[name]) for name in SHOT_GROUPS}


def classification_metrics(
    predictions: torch.Tensor,
    labels: torch.Tensor,
    num_classes: int,
    train_counts: Counts,
    thresholds: ShotThresholds = DEFAULT_THRESHOLDS,
) -> dict[str, float | list | None]:
    """Top-1, per-class recall, balanced accuracy, rare/frequent and many/medium/few-shot means.

    Balanced accuracy is the mean per-class recall over classes with test samples. Rare and
    frequent classes come from `rare_classes` on ``train_counts``; when no class is rare (equal
    counts) both means are None. The shot groups are `shot_group_accuracy`'s.

    Args:
        predictions: (M,) predicted labels.
        labels: (M,) true labels.
        num_classes: number of classes C.
        train_counts: (C,) training-subset count of each class.
        thresholds: boundaries of the shot groups.

    Returns:
        ``top1``, ``per_class``, ``balanced``, ``rare_mean``, ``frequent_mean``, ``rare_classes``,
        ``many_shot``, ``medium_shot``, ``few_shot``; a mean over classes none of which has test
        samples is None.
    """
    top1 = top1_accuracy(predictions, labels, num_classes)
    per_class = per_class_accuracy(predictions, labels, num_classes)
    balanced = mean_over(per_class, list(range(num_classes)))
    rare = rare_classes(train_counts)
    if rare:
        frequent = [c for c in range(num_classes) if c not in rare]
        rare_mean, frequent_mean = mean_over(per_class, rare), mean_over(per_class, frequent)
    else:  # equal counts: no class is rare, so neither mean is defined
        rare_mean = frequent_mean = None
    return {
        "top1": top1,
        "per_class": per_class,
        "balanced": balanced,
        "rare_mean": rare_mean,
        "frequent_mean": frequent_mean,
        "rare_classes": rare,
        **shot_group_accuracy(per_class, train_counts, thresholds),
    }
