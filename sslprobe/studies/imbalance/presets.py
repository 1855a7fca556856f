"""The study's axes and presets: what a cell trains, composed on top of the method's config.

Every cell is ``configs/base.yaml`` + ``methods/<method>.yaml`` + ``backbones/resnet12.yaml`` plus the
linear-evaluation, spectrum and kNN-monitor fragments, then the preset's overrides (`preset_config`, written once to
``DIR/preset.yaml``), then the cell's own (`sslprobe.studies.imbalance.grid.cell_config`).
"""

from __future__ import annotations

from pathlib import Path

REPO = Path(__file__).resolve().parents[3]  # the checkout whose configs/ and callbacks/ the cells compose
METHODS = {
    "simclr": "SimCLR",
    "spectral": "SCL",
    "barlow_twins": "Barlow Twins",
    "supervised": "Supervised",
}
IMBALANCES = ("none", "medium", "high")
PROJECTORS = ("mlp", "none")
STUDY = "imbalance"

# The CPU preset (also the base of cpu_2k, the earlier one).
CPU_PRESET = {
    "description": "narrow ResNet-12 (16-32-64-128), 8,000 images keeping the presets' class "
    "proportions, 8 epochs, batch 128, 3 seeds, linear eval on 5,000 balanced training and 2,000 test "
    "images, kNN monitor on 2,000 + 1,000 images",
    "seeds": 3,
    "epochs": 8,
    "widths": [16, 32, 64, 128],
    "batch_size": 128,
    "subset_size": 8000,
    "num_workers": 2,
    "linear_epochs": 100,
    "linear_train_size": 5000,
    "linear_test_size": 2000,
    "knn_train_size": 2000,
    "knn_test_size": 1000,
    "accelerator": "cpu",
    "precision": "auto",  # bf16-mixed + channels-last where the CPU runs bfloat16 natively
}

# Per preset: settings composed on top of configs/base.yaml + methods/<method>.yaml + backbones/resnet12.yaml.
PRESETS: dict[str, dict] = {
    "paper": {
        "description": "ResNet-12 (64-160-320-640), 20,000 images, 200 epochs, crop scale (0.5, 1), "
        "SGD cosine 0.03 -> 0.001, linear eval (SGD, LR 0.1 -> 1e-4, 100 epochs) on all 50,000 images",
        "seeds": 3,
        "epochs": 200,
        "widths": [64, 160, 320, 640],
        "batch_size": 256,
        "subset_size": None,
        "num_workers": 8,
        "linear_epochs": 100,
        "linear_train_size": None,
        "accelerator": "auto",
    },
    "cpu": CPU_PRESET,
    "cpu_2k": {
        **CPU_PRESET,
        "description": "the previous CPU preset: narrow ResNet-12, 2,000 images, "
        "8 epochs, batch 128, 1 seed, linear eval with the paper's LR 10 -> 0.01 on 5,000 + 2,000 images",
        "linear_protocol": "paper",
        "seeds": 1,
        "subset_size": 2000,
        "precision": None,  # float32, as the table it reproduces
    },
    "smoke": {
        "description": "tiny ResNet-12 (4-8-8-8), 200 images, 1 epoch, linear eval on 1,000 images; "
        "cells run in this process (same CLI, no interpreter start-up) to finish in about 2 minutes",
        "in_process": True,
        "seeds": 1,
        "epochs": 1,
        "widths": [4, 8, 8, 8],
        "batch_size": 50,
        "subset_size": 200,
        "num_workers": 0,
        "linear_epochs": 5,
        "linear_train_size": 1000,
        "linear_test_size": 500,
        "knn_train_size": 500,
        "knn_test_size": 200,
        "knn_k": 20,
        "accelerator": "cpu",
    },
}


def preset_config(preset: dict, data_root: str) -> dict:
    """The preset's overrides as a config fragment (written to ``DIR/preset.yaml``)."""
    return {
        "run": {"precision": preset.get("precision")},
        "trainer": {"max_epochs": preset["epochs"], "accelerator": preset["accelerator"], "devices": 1,
                    "log_every_n_steps": 10, "limit_val_batches": 0, "enable_progress_bar": False,
                    "callbacks": [{"class_path": "lightning.pytorch.callbacks.LearningRateMonitor",
                                   "init_args": {"logging_interval": "step"}}]},
        "model": {"init_args": {"backbone": "resnet12", "backbone_kwargs": {"widths": preset["widths"]},
                                "hidden_dim": 512, "lr": 0.03, "min_lr": 0.001}},
        "data": {"root": data_root, "batch_size": preset["batch_size"], "num_workers": preset["num_workers"],
                 "crop_scale": [0.5, 1.0], "subset_size": preset["subset_size"]},
        "probes": {
            "linear_eval": {"epochs": preset["linear_epochs"], "train_size": preset["linear_train_size"],
                            "test_size": preset.get("linear_test_size"), "protocol": preset.get("linear_protocol")},
            "spectrum": {"every_n_epochs": 1},
            "knn_monitor": {"every_n_epochs": 1, "train_size": preset.get("knn_train_size", 5000),
                            "test_size": preset.get("knn_test_size", 1000), "k": preset.get("knn_k", 200)},
        },
    }
