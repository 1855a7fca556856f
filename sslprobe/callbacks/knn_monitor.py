"""`KNNMonitor`: weighted-kNN top-1 of the backbone while it trains, from the initial network on."""

from __future__ import annotations

import json
from pathlib import Path

from lightning.pytorch import LightningModule

from sslprobe.callbacks.base import INITIAL_EPOCH, ProbeCallback, extract_features, probes_dir
from sslprobe.options import AtLeastTenInt, NonNegativeInt, PositiveFloat, PositiveInt
from sslprobe.probes.accuracy import classification_metrics, shot_groups
from sslprobe.probes.linear import knn_predict
from sslprobe.probes.linear_protocol import SHOT_GROUPS, LinearEvalOptions, ShotThresholds
from sslprobe.probes.results import KNNResult

KNN_DEFAULTS = LinearEvalOptions()  # k and temperature: the linear-evaluation probe's kNN, one definition
SHOT_DEFAULTS = ShotThresholds()


class KNNMonitor(ProbeCallback):
    """Online kNN monitor: the curve every SSL library shows while training.

    At the start of training (step 0, the initial network) and after every ``every_n_epochs``
    epochs, extracts backbone features of fixed class-balanced sets (``train_size`` training and
    ``test_size`` test images from `ImageDataModule.balanced_evaluation_sets`, eval mode, no
    augmentation) and classifies the test images with the weighted kNN of the linear-evaluation
    probe (`sslprobe.probes.linear.knn_predict`: k nearest by cosine similarity, votes
    ``exp(s / temperature)``). Logs ``knn/top1``, ``knn/balanced`` and the means over the
    training subset's many-, medium- and few-shot classes ``knn/many_shot``, ``knn/medium_shot``,
    ``knn/few_shot`` (fractions; NaN for a group without classes) at the trainer's global step and
    writes the history to ``probes/knn_monitor.json`` (rows ``epochs_trained``, ``top1``,
    ``balanced``, ``many_shot``, ``medium_shot``, ``few_shot``, null for an empty group; 0 epochs
    trained is the initial network, the random-init level). Runs on global rank 0 from the full weights, so 1 and
    N processes log the same numbers; the history is part of the checkpoint, and a resumed run
    does not measure its (already trained) network as the initial one.

    Args:
        every_n_epochs: measure after every n-th epoch (default 1; null: only at start and end).
        train_size, test_size: sizes of the fixed balanced sets (default 5,000 and 1,000).
        k: neighbours per test image.
        temperature: temperature of the vote weights.
        batch_size: images per forward pass.
        seed: choice of the images.
        at_start: measure the initial network at step 0.
        many_shot_above, few_shot_below: boundaries of the shot groups (`ShotThresholds`).
    """

    name = "knn"
    config_key = "knn_monitor"
    from_checkpoint = False  # it follows training; `probe --what linear` gives the kNN of a checkpoint

    def __init__(
        self,
        every_n_epochs: PositiveInt | None = 1,
        train_size: AtLeastTenInt = 5000,
        test_size: AtLeastTenInt = 1000,
        k: PositiveInt = KNN_DEFAULTS.knn_k,
        temperature: PositiveFloat = KNN_DEFAULTS.knn_temperature,
        batch_size: PositiveInt = 512,
        seed: NonNegativeInt = 0,
        at_start: bool = True,
        many_shot_above: NonNegativeInt = SHOT_DEFAULTS.many_above,
        few_shot_below: NonNegativeInt = SHOT_DEFAULTS.few_below,
    ):
        super().__init__(every_n_epochs)
        try:
            self.thresholds = ShotThresholds(many_above=many_shot_above, few_below=few_shot_below)
        except ValueError as error:
            raise ValueError(f"KNNMonitor: {error}") from None
        self.train_size, self.test_size, self.k, self.temperature = train_size, test_size, k, temperature
        self.batch_size, self.seed, self.at_start = batch_size, seed, at_start
        self.history: list[dict] = []

    def measure(self, method: LightningModule, datamodule, run_dir: Path, epoch: int) -> dict:
        """kNN top-1 of ``method``'s backbone after ``epoch`` epochs (`INITIAL_EPOCH`: the initial network)."""
        train, test = datamodule.balanced_evaluation_sets(self.train_size, self.test_size, self.seed)
        train_features = extract_features(method, train.images, self.batch_size)  # (N, D)
        test_features = extract_features(method, test.images, self.batch_size)  # (M, D)
        counts = datamodule.class_counts
        predictions = knn_predict(train_features, train.labels, test_features, len(counts),
                                  k=self.k, temperature=self.temperature)
        metrics = classification_metrics(predictions, test.labels, len(counts), counts, self.thresholds)
        row = {"epochs_trained": epoch, **{name: metrics[name] for name in ("top1", "balanced", *SHOT_GROUPS)}}
        self.last_result = KNNResult(row["top1"], self.k, self.temperature, len(train), len(test))
        self.history = [old for old in self.history if old["epochs_trained"] != epoch]
        self.history.append(row)
        payload = {"k": self.k, "temperature": self.temperature, "num_train": len(train), "num_test": len(test),
                   "seed": self.seed, "shot_thresholds": {"many_shot_above": self.thresholds.many_above,
                                                          "few_shot_below": self.thresholds.few_below},
                   "shot_classes": shot_groups(counts, self.thresholds), "history": self.history}
        (probes_dir(run_dir) / "knn_monitor.json").write_text(json.dumps(payload, indent=2))
        return {f"knn/{name}": float("nan") if value is None else value
                for name, value in row.items() if name != "epochs_trained"}

    def has_initial(self) -> bool:
        return any(row["epochs_trained"] == INITIAL_EPOCH for row in self.history)

    def state_dict(self) -> dict:
        return {**super().state_dict(), "history": [dict(row) for row in self.history]}

    def load_state_dict(self, state: dict) -> None:
        super().load_state_dict(state)
        self.history = [dict(row) for row in state.get("history", [])]
