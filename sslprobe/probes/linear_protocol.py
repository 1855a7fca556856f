"""The linear-evaluation protocol as types: its options (`LinearEvalOptions`), named protocols, its scores.

`LinearEvalOptions` is the one definition of every hyper-parameter of `linear_evaluation`; the
`LinearEvaluation` callback builds it from its config keys and `LinearEvalOptions.protocol` is
what its random-init cache is keyed on. `LinearEvalScores` is what `linear_evaluation` returns;
its field names are the keys of ``probes/linear_eval.json``.
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields
from typing import Literal

Solver = Literal["sgd", "lbfgs"]


@dataclass(frozen=True)
class LinearEvalOptions:
    """Hyper-parameters of the linear classifier and the kNN of `linear_evaluation`.

    Attributes:
        solver: ``sgd`` (`train_linear_classifier`: the settings up to ``weight_decay``) or
            ``lbfgs`` (`train_linear_classifier_lbfgs`, converged, L2 ``l2``).
        epochs: SGD passes over the data.
        batch_size: SGD rows per step.
        lr: initial learning rate of the cosine schedule.
        final_lr: learning rate of the last step.
        momentum: SGD momentum.
        weight_decay: SGD L2 coefficient on W.
        l2: L2 coefficient of the L-BFGS solver.
        knn_k: neighbours per query of the weighted kNN (`knn_predict`).
        knn_temperature: temperature of its vote weights.
        seed: seed of the SGD shuffling generator.
    """

    solver: Solver = "sgd"
    epochs: int = 100
    batch_size: int = 512
    lr: float = 0.1
    final_lr: float = 1e-4
    momentum: float = 0.9
    weight_decay: float = 0.0
    l2: float = 1e-4
    knn_k: int = 200
    knn_temperature: float = 0.1
    seed: int = 0

    def __post_init__(self):
        if self.solver not in ("sgd", "lbfgs"):
            raise ValueError(f"solver must be 'sgd' or 'lbfgs', got {self.solver!r}")
        if self.l2 < 0 or self.weight_decay < 0:
            raise ValueError(f"l2 and weight_decay must be >= 0, got {self.l2}, {self.weight_decay}")
        if (self.epochs < 1 or self.batch_size < 1 or self.knn_k < 1 or not self.lr > 0 or self.final_lr < 0
                or not self.knn_temperature > 0):
            raise ValueError("linear evaluation needs epochs, batch_size, knn_k >= 1, lr > 0, final_lr >= 0, "
                             "knn_temperature > 0")

    def protocol(self) -> dict:
        """The settings the scores depend on, by name (the random-init cache key).

        SGD: solver, epochs, batch_size, lr, final_lr, momentum (and weight_decay when not 0);
        L-BFGS: solver, l2; both: knn_k, knn_temperature, seed.
        """
        if self.solver == "lbfgs":
            classifier = {"solver": "lbfgs", "l2": self.l2}
        else:
            classifier = {"solver": "sgd", "epochs": self.epochs, "batch_size": self.batch_size, "lr": self.lr,
                          "final_lr": self.final_lr, "momentum": self.momentum}
            if self.weight_decay:
                classifier["weight_decay"] = self.weight_decay
        return {**classifier, "knn_k": self.knn_k, "knn_temperature": self.knn_temperature, "seed": self.seed}


# Named protocols, all on standardised features. "default": SGD with momentum 0.9, cosine LR
# 0.1 -> 1e-4, 100 epochs (reaches the converged optimum). "paper": the paper's Appendix C, the
# same with LR 10 -> 0.01. "lbfgs": the same convex problem with a small L2, solved to convergence.
LINEAR_PROTOCOLS: dict[str, LinearEvalOptions] = {
    "default": LinearEvalOptions(),
    "paper": LinearEvalOptions(lr=10.0, final_lr=0.01),
    "lbfgs": LinearEvalOptions(solver="lbfgs"),
}

SHOT_GROUPS = ("many_shot", "medium_shot", "few_shot")  # the long-tail literature's class groups


@dataclass(frozen=True)
class ShotThresholds:
    """Boundaries of the many-, medium- and few-shot groups, in training images of a class.

    A class with n training images is many-shot when n > ``many_above``, few-shot when
    n < ``few_below``, medium-shot otherwise (the convention: more than 100, 20–100, fewer than 20).
    """

    many_above: int = 100
    few_below: int = 20

    def __post_init__(self):
        if self.many_above < 0 or self.few_below < 0 or self.few_below > self.many_above + 1:
            raise ValueError(f"shot groups need 0 <= few_shot_below <= many_shot_above + 1, got few_shot_below "
                             f"{self.few_below} and many_shot_above {self.many_above}")


HEADLINE = "headline"  # field metadata: a scalar summary, logged and reported for the random-init baseline


def _headline():
    return field(metadata={HEADLINE: True})


@dataclass(frozen=True)
class LinearEvalScores:
    """Scores of `linear_evaluation`; the field names are the keys of ``probes/linear_eval.json``.

    Accuracies are fractions in [0, 1]; a mean over classes none of which has test samples is None.

    Attributes:
        top1: linear classifier's top-1.
        knn_top1: weighted kNN's top-1.
        per_class: (C,) linear classifier's recall per class, None for a class absent from the
            test set.
        balanced: mean of ``per_class`` over the classes with test samples.
        rare_mean, frequent_mean: mean of ``per_class`` over the rare and the frequent classes
            of the training subset (`rare_classes`); None when no class is rare.
        knn_balanced: the kNN's balanced accuracy.
        rare_classes: the rare classes.
        many_shot, medium_shot, few_shot: mean of ``per_class`` over the classes with more than
            100, 20–100 and fewer than 20 training images (`ShotThresholds`); None for a group
            without classes (or without test samples), never 0.
        knn_many_shot, knn_medium_shot, knn_few_shot: the same for the kNN.
        knn_per_class: (C,) the kNN's recall per class.
        shot_classes: the classes of each group, ``{"many_shot": [...], "medium_shot": [...],
            "few_shot": [...]}``.
        predictions, knn_predictions: (M,) predicted labels of the two classifiers, when asked for.
    """

    top1: float = _headline()
    knn_top1: float = _headline()
    per_class: list[float | None]
    balanced: float | None = _headline()
    rare_mean: float | None = _headline()
    frequent_mean: float | None = _headline()
    knn_balanced: float | None
    rare_classes: list[int]
    many_shot: float | None = _headline()
    medium_shot: float | None = _headline()
    few_shot: float | None = _headline()
    knn_many_shot: float | None = _headline()
    knn_medium_shot: float | None = _headline()
    knn_few_shot: float | None = _headline()
    knn_per_class: list[float | None]
    shot_classes: dict[str, list[int]]
    predictions: list[int] | None = None
    knn_predictions: list[int] | None = None

    @classmethod
    def headline_names(cls) -> list[str]:
        """Names of the scalar summaries: ``top1``, ``knn_top1``, ``balanced``, ``rare_mean``, ``frequent_mean``
        and the linear classifier's and the kNN's many/medium/few-shot means."""
        return [f.name for f in fields(cls) if f.metadata.get(HEADLINE)]

    def to_dict(self) -> dict[str, float | list | None]:
        """The JSON-serialisable dict, in field order; the predictions only when present."""
        values = {f.name: getattr(self, f.name) for f in fields(self)}
        return {k: v for k, v in values.items() if v is not None or k not in ("predictions", "knn_predictions")}
