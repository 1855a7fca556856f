"""What several tests share (importable as ``helpers``): a tiny model, a parameter recorder, a short
in-process ``fit`` on CIFAR-10, and the argument lists of the tests that train through the CLI."""

from __future__ import annotations

from pathlib import Path

import torch
from lightning.pytorch import Callback, Trainer

from sslprobe.data import CIFAR10DataModule

REPO = Path(__file__).resolve().parents[1]
# A ResNet-12 of 8 features and a 16-8 projector: any method builds and trains in seconds on a CPU.
TINY_MODEL = {"backbone": "resnet12", "backbone_kwargs": {"widths": [4, 8, 8, 8]}, "hidden_dim": 16, "output_dim": 8}


class ParameterRecorder(Callback):
    """``snapshots``: copies of the module's named parameters at the start of training and after each
    training batch (callbacks run before the module's own ``on_train_batch_end``)."""

    def __init__(self):
        self.snapshots: list[dict[str, torch.Tensor]] = []

    def record(self, module) -> None:
        self.snapshots.append({name: p.detach().clone() for name, p in module.named_parameters()})

    def on_train_start(self, trainer, module):
        self.record(module)

    def on_train_batch_end(self, trainer, module, outputs, batch, batch_idx):
        self.record(module)


def fit_on_cifar(method, cifar_root: Path, root: Path, *, steps: int, batch_size: int, callbacks=()) -> Trainer:
    """``steps`` float32 CPU steps of one ``fit`` on a balanced 100-image subset of the real CIFAR-10.

    No logger, checkpoint, progress bar or validation; the trainer is returned (its optimizers).
    """
    trainer = Trainer(accelerator="cpu", max_epochs=1, limit_train_batches=steps, limit_val_batches=0, logger=False,
                      enable_checkpointing=False, enable_progress_bar=False, enable_model_summary=False,
                      callbacks=list(callbacks), default_root_dir=root)
    trainer.fit(method, CIFAR10DataModule(root=str(cifar_root), batch_size=batch_size, num_workers=0,
                                          imbalance="none", subset_size=100))
    return trainer


def tiny_fit_args(
    root: Path,
    cifar_root: Path,
    experiment: str,
    version: str,
    *,
    subset_size: int,
    batch_size: int,
    max_epochs: int,
    configs: tuple[str, ...] = (),
    model: tuple[str, ...] = (),
    backbone_kwargs: str = "{widths: [4, 8, 8, 8]}",
) -> list[str]:
    """``fit`` of configs/quickstart.yaml (then ``configs``) shrunk to a tiny ResNet-12 on real data.

    float32 (the quickstart's ``run.precision: auto`` is switched off; callers may set
    ``--trainer.precision``), CSV logging under ``root`` only, no extra callbacks, no probes but
    those of ``configs``, run directory ``root/experiment/version``;
    ``model`` (e.g. ``--model.class_path`` and its options) goes before the shared model options.
    Callers append their own options.
    """
    return [
        "fit",
        "--config", str(REPO / "configs" / "quickstart.yaml"),
        # the quickstart's own probes off: only those of ``configs`` run
        "--probes.spectrum", "null", "--probes.landscape", "null", "--probes.linear_eval", "null",
        "--probes.knn_monitor", "null",
        *(arg for config in configs for arg in ("--config", str(REPO / config))),
        *model,
        "--model.init_args.backbone_kwargs", backbone_kwargs,
        "--model.init_args.hidden_dim", "16",
        "--model.init_args.output_dim", "8",
        "--data.root", str(cifar_root),
        "--data.subset_size", str(subset_size),
        "--data.batch_size", str(batch_size),
        "--data.num_workers", "0",
        "--trainer.logger", "lightning.pytorch.loggers.CSVLogger",
        "--trainer.logger.init_args.save_dir", str(root),
        "--trainer.callbacks", "null",
        "--trainer.enable_progress_bar", "false",
        "--trainer.max_epochs", str(max_epochs),
        "--trainer.default_root_dir", str(root),
        "--run.experiment", experiment,
        "--run.version", version,
        "--run.precision", "null",
    ]
