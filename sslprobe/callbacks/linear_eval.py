"""`LinearEvaluation`: linear and kNN read-out of frozen features (the paper's Appendix C)."""

from __future__ import annotations

import hashlib
import json
import os
import time
from pathlib import Path
from typing import Literal

import torch
from lightning.pytorch import LightningModule

from sslprobe.callbacks.base import ProbeCallback, extract_features, probes_dir, save_figure
from sslprobe.data.cifar import ImageSet, balanced_subset  # noqa: F401 (re-exported)
from sslprobe.probes.linear import LINEAR_PROTOCOLS, Solver, classification_metrics, linear_evaluation

RESULT_KEYS = ("top1", "knn_top1", "balanced", "rare_mean", "frequent_mean",
               "random_init_top1", "random_init_knn_top1")
RANDOM_INIT_CACHE = "random_init_cache"  # beside the experiments, in the runs' root folder


class LinearEvaluation(ProbeCallback):
    """Linear classifier and weighted kNN on frozen backbone features, at the end of fit.

    Features of the full balanced CIFAR-10 train (50,000) and test (10,000) sets are extracted
    once, in eval mode without augmentation; a linear classifier is then trained on them
    (standardised with the training statistics; SGD, cosine LR ``lr`` -> ``final_lr``,
    ``epochs`` epochs; by default 0.1 -> 1e-4 for 100 epochs, which reaches the converged
    optimum, see ``protocol``) and a weighted kNN (k = ``knn_k``, temperature ``knn_temperature``,
    cosine) is evaluated. Reports top-1, per-class and balanced accuracy, and the mean accuracy
    over the classes that were rare vs frequent in the training subset (``subset.json``).
    Writes ``probes/linear_eval.json`` and ``probes/linear_eval_per_class.png``.

    Beside every score it reports the same protocol on a randomly initialised network of the
    same method and architecture, built with the run's seed (``random_init_top1``,
    ``random_init_knn_top1``, ``random_init_balanced``, ``random_init_rare_mean``,
    ``random_init_frequent_mean``): the level that training has to beat. It is computed once per
    architecture, seed and protocol and cached in ``<runs root>/random_init_cache/`` (the
    folder that holds the experiments), so the runs of a study pay it once.

    Args:
        every_n_epochs: also evaluate every n epochs (default: only at the end of fit).
        epochs, batch_size, lr, final_lr: the linear classifier's training.
        knn_k, knn_temperature: the kNN classifier.
        train_size, test_size: class-balanced subsets of the evaluation sets (default: all),
            for quick runs.
        extract_batch_size: images per forward pass during extraction.
        seed: classifier initialisation and shuffling, and the subsets.
        solver: ``sgd`` (the settings above) or ``lbfgs`` (converged, L2 ``l2``).
        l2: L2 coefficient of the L-BFGS solver.
        random_init: also evaluate the random-init network.
        random_init_seed: its seed (default: the run's ``seed_everything``).
        protocol: a named protocol of `LINEAR_PROTOCOLS` instead of the settings above:
            ``default`` (SGD, LR 0.1 -> 1e-4, 100 epochs: the defaults), ``paper`` (the paper's
            Appendix C, LR 10 -> 0.01, which stops short of the optimum; README) or ``lbfgs``.
    """

    name = "linear"
    config_key = "linear_eval"

    def __init__(
        self,
        every_n_epochs: int | None = None,
        epochs: int = 100,
        batch_size: int = 512,
        lr: float = 0.1,
        final_lr: float = 1e-4,
        knn_k: int = 200,
        knn_temperature: float = 0.1,
        train_size: int | None = None,
        test_size: int | None = None,
        extract_batch_size: int = 512,
        seed: int = 0,
        solver: Solver = "sgd",
        l2: float = 1e-4,
        random_init: bool = True,
        random_init_seed: int | None = None,
        protocol: Literal["default", "paper", "lbfgs"] | None = None,
    ):
        super().__init__(every_n_epochs)
        if solver not in ("sgd", "lbfgs") or l2 < 0:
            raise ValueError(f"LinearEvaluation needs solver 'sgd' or 'lbfgs' and l2 >= 0, got {solver!r}, {l2}")
        if protocol is not None and protocol not in LINEAR_PROTOCOLS:
            raise ValueError(f"LinearEvaluation: protocol must be one of {', '.join(LINEAR_PROTOCOLS)}, "
                             f"got {protocol!r}")
        if protocol is not None:  # a named protocol replaces the classifier settings
            settings = LINEAR_PROTOCOLS[protocol]
            solver, l2 = settings["solver"], settings.get("l2", l2)
            epochs, batch_size = settings.get("epochs", epochs), settings.get("batch_size", batch_size)
            lr, final_lr = settings.get("lr", lr), settings.get("final_lr", final_lr)
        self.protocol_name = protocol
        self.solver, self.l2 = solver, l2
        self.random_init, self.random_init_seed = random_init, random_init_seed
        if epochs < 1 or batch_size < 1 or knn_k < 1 or not lr > 0 or final_lr < 0 or not knn_temperature > 0:
            raise ValueError("LinearEvaluation needs epochs, batch_size, knn_k >= 1, lr > 0, final_lr >= 0, "
                             "knn_temperature > 0")
        self.epochs, self.batch_size, self.lr, self.final_lr = epochs, batch_size, lr, final_lr
        self.knn_k, self.knn_temperature = knn_k, knn_temperature
        self.train_size, self.test_size = train_size, test_size
        self.extract_batch_size, self.seed = extract_batch_size, seed

    def features(self, method: LightningModule, images: ImageSet, what: str = "features") -> torch.Tensor:
        with self.progress(what, len(images)) as advance:
            return extract_features(method, images.images, self.extract_batch_size, advance)

    def protocol(self) -> dict:
        """Keyword arguments of `linear_evaluation` beyond the features."""
        if self.solver == "lbfgs":
            settings = {"solver": "lbfgs", "l2": self.l2}
        else:
            settings = {**LINEAR_PROTOCOLS["default"], "epochs": self.epochs, "batch_size": self.batch_size,
                        "lr": self.lr, "final_lr": self.final_lr}
        return {**settings, "knn_k": self.knn_k, "knn_temperature": self.knn_temperature, "seed": self.seed}

    def evaluate(self, method: LightningModule, train: ImageSet, test: ImageSet, class_counts: list[int],
                 return_predictions: bool = False, label: str = "") -> dict:
        train_features = self.features(method, train, f"{label}train features")
        test_features = self.features(method, test, f"{label}test features")
        sgd = self.solver == "sgd"
        phase = f"{label}classifier {'epochs' if sgd else '(L-BFGS)'}"
        with self.progress(phase, self.epochs if sgd else 1) as advance:
            return linear_evaluation(
                train_features, train.labels, test_features, test.labels, num_classes=len(class_counts),
                train_counts=class_counts, return_predictions=return_predictions,
                on_epoch=advance if sgd else None, **self.protocol(),
            )

    def random_init_result(self, method: LightningModule, train: ImageSet, test: ImageSet,
                           class_counts: list[int], run_dir: Path) -> dict:
        """The protocol on ``type(method)(**method.hparams)`` initialised with the run's seed, cached.

        The backbone is the first module a method builds, so with the same seed it has the same
        initial weights whatever the method; the cache key is the backbone, the seed, the
        evaluation sets and the protocol.
        """
        seed = self.random_init_seed if self.random_init_seed is not None else int(os.environ.get("PL_GLOBAL_SEED", 0))
        hparams = {k: v for k, v in method.hparams.items() if not k.startswith("_")}  # no _class_path
        key = {"backbone": hparams.get("backbone"), "backbone_kwargs": hparams.get("backbone_kwargs"),
               "init_seed": seed, "dtype": str(method.dtype), "num_train": len(train), "num_test": len(test),
               "train_size": self.train_size, "test_size": self.test_size, **self.protocol()}
        digest = hashlib.sha1(json.dumps(key, sort_keys=True, default=str).encode()).hexdigest()[:16]
        path = Path(run_dir).resolve().parent.parent / RANDOM_INIT_CACHE / f"{digest}.json"
        cached = json.loads(path.read_text()) if path.is_file() else None
        if cached is None or cached.get("key") != json.loads(json.dumps(key, default=str)):
            with torch.random.fork_rng(devices=[]):
                torch.manual_seed(seed)
                initial = type(method)(**hparams)
            initial = initial.to(device=method.device, dtype=method.dtype)
            result = self.evaluate(initial, train, test, class_counts, return_predictions=True,
                                   label="random init: ")
            cached = {"key": key, "predictions": result["predictions"], "knn_predictions": result["knn_predictions"]}
            path.parent.mkdir(parents=True, exist_ok=True)
            partial = path.with_suffix(f".{os.getpid()}.tmp")
            partial.write_text(json.dumps(cached, default=str))
            os.replace(partial, path)  # atomic: runs sharing the cache never read half a file
        num_classes = len(class_counts)
        linear = classification_metrics(torch.tensor(cached["predictions"]), test.labels, num_classes, class_counts)
        knn = classification_metrics(torch.tensor(cached["knn_predictions"]), test.labels, num_classes, class_counts)
        return {"random_init_top1": linear["top1"], "random_init_knn_top1": knn["top1"],
                "random_init_balanced": linear["balanced"], "random_init_rare_mean": linear["rare_mean"],
                "random_init_frequent_mean": linear["frequent_mean"], "random_init_seed": seed,
                "random_init_cache": str(path)}

    def measure(self, method: LightningModule, datamodule, run_dir: Path, epoch: int) -> dict:
        from sslprobe.plots import plot_per_class_accuracy

        train, test = datamodule.balanced_evaluation_sets(self.train_size, self.test_size, self.seed)
        counts = datamodule.class_counts
        start = time.perf_counter()
        result = self.evaluate(method, train, test, counts)
        if self.random_init:
            result.update(self.random_init_result(method, train, test, counts, run_dir))
        fitting = time.perf_counter() - start
        payload = {
            "epoch": epoch, **result, "train_class_counts": list(datamodule.class_counts),
            "num_train": len(train), "num_test": len(test), "solver": self.solver, "seconds": fitting,
        }
        directory = probes_dir(run_dir)
        (directory / "linear_eval.json").write_text(json.dumps(payload, indent=2))
        figure = plot_per_class_accuracy(
            result["per_class"], rare_classes=result.get("rare_classes", ()), train_counts=datamodule.class_counts,
            class_names=datamodule.class_names,
            title=f"Linear evaluation after epoch {epoch}: top-1 {100 * result['top1']:.1f}%")
        figures = {"per_class": save_figure(figure, directory / "linear_eval_per_class.png")}
        scalars = {f"linear/{key}": float(result[key]) for key in RESULT_KEYS if result.get(key) is not None}
        return {**scalars, "figures": figures, "per_class_table": result["per_class"]}

    def log_results(self, trainer, scalars: dict, epoch: int) -> None:
        per_class = scalars.pop("per_class_table")
        super().log_results(trainer, scalars, epoch)
        names = trainer.datamodule.class_names
        for logger in trainer.loggers:
            if hasattr(logger, "log_table"):  # W&B
                rows = [[names[c], trainer.datamodule.class_counts[c], acc] for c, acc in enumerate(per_class)]
                logger.log_table(key="linear/per_class", columns=["class", "train_count", "accuracy"], data=rows)
