"""`LinearEvaluation`: linear and kNN read-out of frozen features (the paper's Appendix C)."""

from __future__ import annotations

import hashlib
import json
import os
import time
from dataclasses import replace
from pathlib import Path
from typing import Literal

import torch
from lightning.pytorch import LightningModule

from sslprobe.callbacks.base import ProbeCallback, extract_features, probes_dir, save_figure
from sslprobe.callbacks.random_init_cache import evaluation_data_key, read_cache_entry, write_cache_entry
from sslprobe.data.cifar import ImageSet, balanced_subset  # noqa: F401 (re-exported)
from sslprobe.options import AtLeastTenInt, NonNegativeFloat, NonNegativeInt, PositiveFloat, PositiveInt
from sslprobe.probes.linear import linear_evaluation, scores_of_predictions
from sslprobe.probes.linear_protocol import (
    LINEAR_PROTOCOLS,
    SHOT_GROUPS,
    LinearEvalOptions,
    LinearEvalScores,
    ShotThresholds,
    Solver,
)

DEFAULTS = LinearEvalOptions()  # the classifier and kNN settings' defaults: their one definition
SHOT_DEFAULTS = ShotThresholds()
SHOT_SCORES = (*SHOT_GROUPS, *(f"knn_{name}" for name in SHOT_GROUPS))  # logged as NaN for an empty group
# Of the random-init scores, those logged as linear/random_init_<name>.
LOGGED_RANDOM_INIT = ("top1", "knn_top1", *SHOT_SCORES)
RANDOM_INIT_CACHE = "random_init_cache"  # beside the experiments, in the runs' root folder


class LinearEvaluation(ProbeCallback):
    """Linear classifier and weighted kNN on frozen backbone features, at the end of fit.

    Features of the full balanced CIFAR-10 train (50,000) and test (10,000) sets are extracted
    once, in eval mode without augmentation; a linear classifier is then trained on them
    (standardised with the training statistics; SGD, cosine LR ``lr`` -> ``final_lr``,
    ``epochs`` epochs; by default 0.1 -> 1e-4 for 100 epochs, which reaches the converged
    optimum, see ``protocol``) and a weighted kNN (k = ``knn_k``, temperature ``knn_temperature``,
    cosine) is evaluated. Reports top-1, per-class and balanced accuracy, the mean accuracy
    over the classes that were rare vs frequent in the training subset (``subset.json``), and
    over its many-, medium- and few-shot classes (more than ``many_shot_above``, ``few_shot_below``
    to ``many_shot_above``, fewer than ``few_shot_below`` training images), for both classifiers;
    a group without classes is null in the JSON and NaN in the logged metrics, never 0.
    Writes ``probes/linear_eval.json`` and ``probes/linear_eval_per_class.png``.

    Beside every score it reports the same protocol on a randomly initialised network of the
    same method and architecture, built with the run's seed (``random_init_top1``,
    ``random_init_knn_top1``, ``random_init_balanced``, ``random_init_rare_mean``,
    ``random_init_frequent_mean``, ``random_init_many_shot``, ...): the level that training has
    to beat. It is computed once per architecture, seed and protocol and cached in
    ``<runs root>/random_init_cache/`` (the folder that holds the experiments), so the runs of a
    study pay it once.

    Args:
        every_n_epochs: also evaluate every n epochs (default: only at the end of fit).
        epochs, batch_size, lr, final_lr, knn_k, knn_temperature, seed, solver, l2: the fields
            of `LinearEvalOptions` (meaning and defaults there) that ``self.options`` holds;
            ``seed`` also chooses the subsets.
        train_size, test_size: class-balanced subsets of the evaluation sets (default: all),
            for quick runs.
        extract_batch_size: images per forward pass during extraction.
        random_init: also evaluate the random-init network.
        random_init_seed: its seed (default: the run's ``seed_everything``).
        protocol: a named protocol of `LINEAR_PROTOCOLS` instead of the settings above:
            ``default`` (SGD, LR 0.1 -> 1e-4, 100 epochs: the defaults), ``paper`` (the paper's
            Appendix C, LR 10 -> 0.01, which stops short of the optimum; README) or ``lbfgs``.
        many_shot_above, few_shot_below: boundaries of the shot groups (`ShotThresholds`;
            ``few_shot_below`` at most ``many_shot_above + 1``).
    """

    name = "linear"
    config_key = "linear_eval"
    last_random_init: LinearEvalScores | None = None  # the baseline's scores of the latest measurement
    cache_dir: Path | None = None  # where the baseline is cached (default: beside the experiments)

    def __init__(
        self,
        every_n_epochs: PositiveInt | None = None,
        epochs: PositiveInt = DEFAULTS.epochs,
        batch_size: PositiveInt = DEFAULTS.batch_size,
        lr: PositiveFloat = DEFAULTS.lr,
        final_lr: NonNegativeFloat = DEFAULTS.final_lr,
        knn_k: PositiveInt = DEFAULTS.knn_k,
        knn_temperature: PositiveFloat = DEFAULTS.knn_temperature,
        train_size: AtLeastTenInt | None = None,
        test_size: AtLeastTenInt | None = None,
        extract_batch_size: PositiveInt = 512,
        seed: NonNegativeInt = DEFAULTS.seed,
        solver: Solver = DEFAULTS.solver,
        l2: NonNegativeFloat = DEFAULTS.l2,
        random_init: bool = True,
        random_init_seed: NonNegativeInt | None = None,
        protocol: Literal["default", "paper", "lbfgs"] | None = None,
        many_shot_above: NonNegativeInt = SHOT_DEFAULTS.many_above,
        few_shot_below: NonNegativeInt = SHOT_DEFAULTS.few_below,
    ):
        super().__init__(every_n_epochs)
        if protocol is not None and protocol not in LINEAR_PROTOCOLS:
            raise ValueError(f"LinearEvaluation: protocol must be one of {', '.join(LINEAR_PROTOCOLS)}, "
                             f"got {protocol!r}")
        try:
            if protocol is not None:  # a named protocol replaces the classifier settings
                self.options = replace(LINEAR_PROTOCOLS[protocol], knn_k=knn_k, knn_temperature=knn_temperature,
                                       seed=seed)
            else:
                self.options = LinearEvalOptions(solver=solver, epochs=epochs, batch_size=batch_size, lr=lr,
                                                 final_lr=final_lr, l2=l2, knn_k=knn_k,
                                                 knn_temperature=knn_temperature, seed=seed)
            self.thresholds = ShotThresholds(many_above=many_shot_above, few_below=few_shot_below)
        except ValueError as error:
            raise ValueError(f"LinearEvaluation: {error}") from None
        self.protocol_name = protocol
        self.random_init, self.random_init_seed = random_init, random_init_seed
        self.train_size, self.test_size = train_size, test_size
        self.extract_batch_size = extract_batch_size

    def features(self, method: LightningModule, images: ImageSet, what: str = "features") -> torch.Tensor:
        with self.progress(what, len(images)) as advance:
            return extract_features(method, images.images, self.extract_batch_size, advance)

    def evaluate(self, method: LightningModule, train: ImageSet, test: ImageSet, class_counts: list[int],
                 return_predictions: bool = False, label: str = "") -> LinearEvalScores:
        train_features = self.features(method, train, f"{label}train features")
        test_features = self.features(method, test, f"{label}test features")
        sgd = self.options.solver == "sgd"
        phase = f"{label}classifier {'epochs' if sgd else '(L-BFGS)'}"
        with self.progress(phase, self.options.epochs if sgd else 1) as advance:
            return linear_evaluation(
                train_features, train.labels, test_features, test.labels, self.options,
                num_classes=len(class_counts), train_counts=class_counts, return_predictions=return_predictions,
                on_epoch=advance if sgd else None, thresholds=self.thresholds,
            )

    def random_init_result(self, method: LightningModule, train: ImageSet, test: ImageSet,
                           class_counts: list[int], run_dir: Path, data: dict | None = None) -> dict:
        """The protocol on ``type(method)(**method.hparams)`` initialised with the run's seed, cached.

        The backbone is the first module a method builds, so with the same seed it has the same
        initial weights whatever the method. The cache file is named by the network and protocol
        (the backbone, the seed, the evaluation set sizes and `LinearEvalOptions.protocol`); inside
        it, predictions are kept per data (`evaluation_data_key`: the data set, its label set and
        a digest of the evaluation images and labels), so another data set or another copy of
        one never reuses them.

        Returns:
            ``random_init_<name>`` for each headline score (`LinearEvalScores.headline_names`),
            ``random_init_seed`` and ``random_init_cache`` (the cache file).
        """
        seed = self.random_init_seed if self.random_init_seed is not None else int(os.environ.get("PL_GLOBAL_SEED", 0))
        hparams = {k: v for k, v in method.hparams.items() if not k.startswith("_")}  # no _class_path
        key = {"backbone": hparams.get("backbone"), "backbone_kwargs": hparams.get("backbone_kwargs"),
               "init_seed": seed, "dtype": str(method.dtype), "num_train": len(train), "num_test": len(test),
               "train_size": self.train_size, "test_size": self.test_size, **self.options.protocol()}
        digest = hashlib.sha1(json.dumps(key, sort_keys=True, default=str).encode()).hexdigest()[:16]
        cache = getattr(self, "cache_dir", None) or Path(run_dir).resolve().parent.parent / RANDOM_INIT_CACHE
        path = Path(cache) / f"{digest}.json"
        data_key = evaluation_data_key(train, test, data)
        entry = read_cache_entry(path, key, data_key)
        if entry is None:
            with torch.random.fork_rng(devices=[]):
                torch.manual_seed(seed)
                # a model probed from plain modules rebuilds its own architecture (`ProbedModel`)
                initial = method.reinitialized() if hasattr(method, "reinitialized") else type(method)(**hparams)
            initial = initial.to(device=method.device, dtype=method.dtype)
            result = self.evaluate(initial, train, test, class_counts, return_predictions=True,
                                   label="random init: ")
            entry = {"data": data_key, "predictions": result.predictions, "knn_predictions": result.knn_predictions}
            write_cache_entry(path, key, entry)
        scores = scores_of_predictions(torch.tensor(entry["predictions"]), torch.tensor(entry["knn_predictions"]),
                                       test.labels, len(class_counts), class_counts, thresholds=self.thresholds)
        self.last_random_init = scores
        return {**{f"random_init_{name}": getattr(scores, name) for name in LinearEvalScores.headline_names()},
                "random_init_seed": seed, "random_init_cache": str(path)}

    def measure(self, method: LightningModule, datamodule, run_dir: Path, epoch: int) -> dict:
        from sslprobe.plots import plot_per_class_accuracy

        train, test = datamodule.balanced_evaluation_sets(self.train_size, self.test_size, self.options.seed)
        counts = datamodule.class_counts
        start = time.perf_counter()
        scores = self.evaluate(method, train, test, counts)
        self.last_result, self.last_random_init = scores, None
        identity = datamodule.data_identity() if hasattr(datamodule, "data_identity") else None
        baseline = self.random_init_result(method, train, test, counts, run_dir, identity) if self.random_init else {}
        fitting = time.perf_counter() - start
        payload = {
            "epoch": epoch, **scores.to_dict(), **baseline, "train_class_counts": list(datamodule.class_counts),
            "num_train": len(train), "num_test": len(test), "solver": self.options.solver, "seconds": fitting,
            "shot_thresholds": {"many_shot_above": self.thresholds.many_above,
                                "few_shot_below": self.thresholds.few_below},
        }
        directory = probes_dir(run_dir)
        (directory / "linear_eval.json").write_text(json.dumps(payload, indent=2))
        figure = plot_per_class_accuracy(
            scores.per_class, rare_classes=scores.rare_classes, train_counts=datamodule.class_counts,
            class_names=datamodule.class_names,
            title=f"Linear evaluation after epoch {epoch}: top-1 {100 * scores.top1:.1f}%")
        figures = {"per_class": save_figure(figure, directory / "linear_eval_per_class.png")}
        logged = {name: getattr(scores, name) for name in LinearEvalScores.headline_names()}
        logged.update({f"random_init_{name}": baseline.get(f"random_init_{name}") for name in LOGGED_RANDOM_INIT})
        scalars = {f"linear/{key}": float("nan") if value is None else float(value) for key, value in logged.items()
                   if value is not None or key.removeprefix("random_init_") in SHOT_SCORES}
        return {**scalars, "figures": figures, "per_class_table": scores.per_class}

    def log_results(self, trainer, scalars: dict, epoch: int) -> None:
        per_class = scalars.pop("per_class_table")
        super().log_results(trainer, scalars, epoch)
        names = trainer.datamodule.class_names
        for logger in trainer.loggers:
            if hasattr(logger, "log_table"):  # W&B
                rows = [[names[c], trainer.datamodule.class_counts[c], acc] for c, acc in enumerate(per_class)]
                logger.log_table(key="linear/per_class", columns=["class", "train_count", "accuracy"], data=rows)
