"""Argument lists shared by the tests that train through the CLI (importable as ``helpers``)."""

from __future__ import annotations

from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


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
