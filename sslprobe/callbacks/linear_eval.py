"""`LinearEvaluation`: linear and kNN read-out of frozen features (the paper's Appendix C)."""

from __future__ import annotations

import json
import time
from pathlib import Path

import torch
from lightning.pytorch import LightningModule

from sslprobe.callbacks.base import ProbeCallback, extract_features, probes_dir, save_figure
from sslprobe.data.cifar import ImageSet, balanced_subset  # noqa: F401 (re-exported)
from sslprobe.probes.linear import linear_evaluation

RESULT_KEYS = ("top1", "knn_top1", "balanced", "rare_mean", "frequent_mean")


class LinearEvaluation(ProbeCallback):
    """Linear classifier and weighted kNN on frozen backbone features, at the end of fit.

    Features of the full balanced CIFAR-10 train (50,000) and test (10,000) sets are extracted
    once, in eval mode without augmentation; a linear classifier is then trained on them
    (standardised with the training statistics; SGD, cosine LR ``lr`` -> ``final_lr``,
    ``epochs`` epochs) and a weighted kNN (k = ``knn_k``, temperature ``knn_temperature``,
    cosine) is evaluated. Reports top-1, per-class and balanced accuracy, and the mean accuracy
    over the classes that were rare vs frequent in the training subset (``subset.json``).
    Writes ``probes/linear_eval.json`` and ``probes/linear_eval_per_class.png``.

    Args:
        every_n_epochs: also evaluate every n epochs (default: only at the end of fit).
        epochs, batch_size, lr, final_lr: the linear classifier's training.
        knn_k, knn_temperature: the kNN classifier.
        train_size, test_size: class-balanced subsets of the evaluation sets (default: all),
            for quick runs.
        extract_batch_size: images per forward pass during extraction.
        seed: classifier initialisation and shuffling, and the subsets.
    """

    name = "linear"

    def __init__(
        self,
        every_n_epochs: int | None = None,
        epochs: int = 100,
        batch_size: int = 512,
        lr: float = 10.0,
        final_lr: float = 0.01,
        knn_k: int = 200,
        knn_temperature: float = 0.1,
        train_size: int | None = None,
        test_size: int | None = None,
        extract_batch_size: int = 512,
        seed: int = 0,
    ):
        super().__init__(every_n_epochs)
        if epochs < 1 or batch_size < 1 or knn_k < 1 or not lr > 0 or final_lr < 0 or not knn_temperature > 0:
            raise ValueError("LinearEvaluation needs epochs, batch_size, knn_k >= 1, lr > 0, final_lr >= 0, "
                             "knn_temperature > 0")
        self.epochs, self.batch_size, self.lr, self.final_lr = epochs, batch_size, lr, final_lr
        self.knn_k, self.knn_temperature = knn_k, knn_temperature
        self.train_size, self.test_size = train_size, test_size
        self.extract_batch_size, self.seed = extract_batch_size, seed

    def features(self, method: LightningModule, images: ImageSet) -> torch.Tensor:
        return extract_features(method, images.images, self.extract_batch_size)

    def measure(self, method: LightningModule, datamodule, run_dir: Path, epoch: int) -> dict:
        from sslprobe.plots import plot_per_class_accuracy

        train, test = datamodule.evaluation_sets()
        train = balanced_subset(train, self.train_size, self.seed)
        test = balanced_subset(test, self.test_size, self.seed)
        start = time.perf_counter()
        train_features, test_features = self.features(method, train), self.features(method, test)
        extraction = time.perf_counter() - start
        start = time.perf_counter()
        result = linear_evaluation(
            train_features, train.labels, test_features, test.labels,
            num_classes=len(datamodule.class_counts), train_counts=datamodule.class_counts,
            epochs=self.epochs, batch_size=self.batch_size, lr=self.lr, final_lr=self.final_lr,
            knn_k=self.knn_k, knn_temperature=self.knn_temperature, seed=self.seed,
        )
        fitting = time.perf_counter() - start
        payload = {
            "epoch": epoch, **result, "train_class_counts": list(datamodule.class_counts),
            "num_train": len(train), "num_test": len(test),
            "seconds_extraction": extraction, "seconds_classifiers": fitting,
        }
        directory = probes_dir(run_dir)
        (directory / "linear_eval.json").write_text(json.dumps(payload, indent=2))
        figure = plot_per_class_accuracy(
            result["per_class"], rare_classes=result.get("rare_classes", ()), train_counts=datamodule.class_counts,
            class_names=list(datamodule.cifar.classes),
            title=f"Linear evaluation after epoch {epoch}: top-1 {100 * result['top1']:.1f}%")
        figures = {"per_class": save_figure(figure, directory / "linear_eval_per_class.png")}
        scalars = {f"linear/{key}": float(result[key]) for key in RESULT_KEYS if result.get(key) is not None}
        return {**scalars, "figures": figures, "per_class_table": result["per_class"]}

    def log_results(self, trainer, scalars: dict, epoch: int) -> None:
        per_class = scalars.pop("per_class_table")
        super().log_results(trainer, scalars, epoch)
        names = list(trainer.datamodule.cifar.classes)
        for logger in trainer.loggers:
            if hasattr(logger, "log_table"):  # W&B
                rows = [[names[c], trainer.datamodule.class_counts[c], acc] for c, acc in enumerate(per_class)]
                logger.log_table(key="linear/per_class", columns=["class", "train_count", "accuracy"], data=rows)
