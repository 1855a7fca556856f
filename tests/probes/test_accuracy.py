"""The read-out's accuracies: torchmetrics' counts against the formulas used before, and many/medium/few-shot."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
import torch

from sslprobe.callbacks import KNNMonitor, LinearEvaluation
from sslprobe.probes import ShotThresholds, classification_metrics, shot_group_accuracy, shot_groups
from sslprobe.probes.linear import scores_of_predictions


# ---- the formulas of sslprobe.probes.linear before torchmetrics, copied as the reference ----
def reference_per_class_accuracy(predictions, labels, num_classes):
    labels = labels.detach().long().cpu()
    correct = (predictions.detach().long().cpu() == labels).double()
    totals = torch.bincount(labels, minlength=num_classes).double()
    hits = torch.zeros(num_classes, dtype=torch.float64).index_add_(0, labels, correct)
    return [float(h / t) if t > 0 else None for h, t in zip(hits, totals, strict=True)]


def reference_mean_over(values, classes):
    present = [values[c] for c in classes if values[c] is not None]
    return float(np.mean(present)) if present else None


def reference_metrics(predictions, labels, num_classes):
    labels = labels.detach().long().cpu()
    top1 = float((predictions.detach().long().cpu() == labels).double().mean())
    per_class = reference_per_class_accuracy(predictions, labels, num_classes)
    return {"top1": top1, "per_class": per_class, "balanced": reference_mean_over(per_class, list(range(num_classes)))}


def random_case(seed: int):
    """Predictions and labels of C classes; some classes absent from the labels, some from the predictions."""
    generator = torch.Generator().manual_seed(seed)
    num_classes = int(torch.randint(3, 40, (1,), generator=generator))
    size = int(torch.randint(1, 3000, (1,), generator=generator))
    label_classes = torch.randperm(num_classes, generator=generator)[: max(1, num_classes - 1 - seed % 3)]
    predicted_classes = torch.randperm(num_classes, generator=generator)[: max(1, num_classes - (seed + 1) % 3)]
    labels = label_classes[torch.randint(0, len(label_classes), (size,), generator=generator)]
    predictions = predicted_classes[torch.randint(0, len(predicted_classes), (size,), generator=generator)]
    agree = torch.rand(size, generator=generator) < 0.4  # a share of right answers
    predictions = torch.where(agree & torch.isin(labels, predicted_classes), labels, predictions)
    return predictions, labels, num_classes


@pytest.mark.parametrize("seed", range(12))
def test_torchmetrics_counts_give_exactly_the_numbers_before(seed):
    predictions, labels, num_classes = random_case(seed)
    assert len(torch.unique(labels)) < num_classes  # a class without test samples: per_class None
    counts = np.full(num_classes, 50)
    got = classification_metrics(predictions, labels, num_classes, counts)
    expected = reference_metrics(predictions, labels, num_classes)
    assert got["top1"] == expected["top1"]
    assert got["per_class"] == expected["per_class"]  # None for the same absent classes, equal floats otherwise
    assert got["balanced"] == expected["balanced"]


def test_hand_made_many_medium_few():
    # train counts:   500 150 101 | 100  20  60 | 19   0   5
    # test accuracy:  1   3/4 1/2 | 1/4  0  1/2 | 1/4 (none) 3/4
    train_counts = [500, 150, 101, 100, 20, 60, 19, 0, 5]
    hits = [4, 3, 2, 1, 0, 2, 1, 0, 3]
    labels, predictions = [], []
    for cls, correct in enumerate(hits):
        if cls == 7:
            continue  # class 7 has no test image
        labels += [cls] * 4
        predictions += [cls] * correct + [(cls + 1) % 9] * (4 - correct)
    scores = classification_metrics(torch.tensor(predictions), torch.tensor(labels), 9, train_counts)
    assert shot_groups(train_counts) == {"many_shot": [0, 1, 2], "medium_shot": [3, 4, 5], "few_shot": [6, 7, 8]}
    assert scores["many_shot"] == pytest.approx((1 + 0.75 + 0.5) / 3)
    assert scores["medium_shot"] == pytest.approx((0.25 + 0 + 0.5) / 3)
    assert scores["few_shot"] == pytest.approx((0.25 + 0.75) / 2)  # class 7: no test image, left out
    # Other boundaries move classes between groups: more than 60 is many, fewer than 6 is few.
    moved = shot_group_accuracy(scores["per_class"], train_counts, ShotThresholds(many_above=60, few_below=6))
    assert shot_groups(train_counts, ShotThresholds(many_above=60, few_below=6)) == {
        "many_shot": [0, 1, 2, 3], "medium_shot": [4, 5, 6], "few_shot": [7, 8]}
    assert moved["many_shot"] == pytest.approx((1 + 0.75 + 0.5 + 0.25) / 4)
    assert moved["few_shot"] == pytest.approx(0.75)


def test_an_empty_group_is_none_not_zero():
    # The paper's CIFAR-10 'none' preset: 2,000 images per class, all many-shot.
    per_class = [0.5] * 10
    groups = shot_group_accuracy(per_class, [2000] * 10)
    assert groups == {"many_shot": 0.5, "medium_shot": None, "few_shot": None}
    predictions = torch.arange(10).repeat(3)
    scores = scores_of_predictions(predictions, predictions, predictions, 10, [2000] * 10)
    payload = json.loads(json.dumps(scores.to_dict()))
    assert payload["many_shot"] == 1.0 and payload["medium_shot"] is None and payload["few_shot"] is None
    assert payload["knn_many_shot"] == 1.0 and payload["knn_few_shot"] is None
    assert payload["shot_classes"] == {"many_shot": list(range(10)), "medium_shot": [], "few_shot": []}


def test_linear_and_knn_shot_scores_are_those_of_their_predictions():
    generator = torch.Generator().manual_seed(3)
    labels = torch.randint(0, 6, (600,), generator=generator)
    linear = torch.where(torch.rand(600, generator=generator) < 0.7, labels, torch.randint(0, 6, (600,)))
    knn = torch.where(torch.rand(600, generator=generator) < 0.3, labels, torch.randint(0, 6, (600,)))
    counts = [400, 300, 50, 30, 10, 2]
    scores = scores_of_predictions(linear, knn, labels, 6, counts)
    for prefix, predictions in (("", linear), ("knn_", knn)):
        per_class = reference_per_class_accuracy(predictions, labels, 6)
        assert getattr(scores, f"{prefix}many_shot") == pytest.approx(np.mean(per_class[:2]))
        assert getattr(scores, f"{prefix}medium_shot") == pytest.approx(np.mean(per_class[2:4]))
        assert getattr(scores, f"{prefix}few_shot") == pytest.approx(np.mean(per_class[4:]))
    assert scores.knn_per_class == reference_per_class_accuracy(knn, labels, 6)


@pytest.mark.parametrize("probe", [LinearEvaluation, KNNMonitor])
def test_crossed_thresholds_are_refused(probe):
    with pytest.raises(ValueError, match=r"few_shot_below <= many_shot_above \+ 1, got few_shot_below 30"):
        probe(many_shot_above=20, few_shot_below=30)
    assert probe(many_shot_above=20, few_shot_below=21).thresholds == ShotThresholds(20, 21)  # no medium class


def test_many_medium_few_partition_the_classes():
    counts = np.random.default_rng(0).integers(0, 300, 200)
    groups = shot_groups(counts)
    assert sorted(sum(groups.values(), [])) == list(range(200))
    assert all(counts[c] > 100 for c in groups["many_shot"]) and all(counts[c] < 20 for c in groups["few_shot"])
    assert all(20 <= counts[c] <= 100 for c in groups["medium_shot"])
    assert not math.isnan(shot_group_accuracy([0.5] * 200, counts)["few_shot"])
