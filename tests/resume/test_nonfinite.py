"""A NaN loss stops the run at its step with one line and an intact checkpoint, or is skipped."""

from __future__ import annotations

import csv
from pathlib import Path

import pytest
import torch
from helpers import tiny_fit_args  # tests/helpers.py

from sslprobe.cli import main


def fit_args(root: Path, cifar_root: Path, version: str, *extra: str) -> list[str]:
    return [
        *tiny_fit_args(root, cifar_root, "nan", version, subset_size=100, batch_size=20, max_epochs=1,
                       model=("--model.class_path", "nan_method.SimCLRNaNAtStep", "--model.init_args.nan_step", "2")),
        "--trainer.log_every_n_steps", "1",
        "--trainer.limit_val_batches", "0",
        "--checkpoint.every_n_train_steps", "1",
        *extra,
    ]


def test_nonfinite_loss_stops_with_one_line_and_keeps_the_last_good_checkpoint(tmp_path, cifar_root, capsys):
    with pytest.raises(SystemExit) as stop:
        main(fit_args(tmp_path, cifar_root, "stop"))
    assert stop.value.code == 1
    lines = [line for line in capsys.readouterr().err.splitlines() if line.startswith("sslprobe: error:")]
    assert len(lines) == 1
    assert "non-finite loss (nan) from NTXentLoss at step 2, epoch 0" in lines[0]
    assert "weights not updated" in lines[0] and "checkpoints/last.ckpt" in lines[0]
    checkpoint = torch.load(tmp_path / "nan" / "stop" / "checkpoints" / "last.ckpt", weights_only=False)
    assert checkpoint["global_step"] == 2  # the two good steps
    assert all(torch.isfinite(value).all() for value in checkpoint["state_dict"].values())


def test_nonfinite_loss_can_be_skipped(tmp_path, cifar_root):
    main(
        fit_args(
            tmp_path, cifar_root, "skip", "--model.init_args.on_nonfinite", "skip_step", "--checkpoint.save_top_k", "-1"
        )
    )
    run = tmp_path / "nan" / "skip"

    def weights(name: str) -> dict:
        return torch.load(run / "checkpoints" / name, weights_only=False)["state_dict"]

    before, after = weights("epoch000-step000002.ckpt"), weights("epoch000-step000003.ckpt")
    parameters = [k for k in before if "running_" not in k and "num_batches_tracked" not in k]  # not BN statistics
    assert all(torch.equal(before[k], after[k]) for k in parameters), "the skipped step changed the weights"
    final = weights("last.ckpt")
    assert any(not torch.equal(after[k], final[k]) for k in after), "training did not go on after the skip"
    assert all(torch.isfinite(value).all() for value in final.values())
    with open(run / "metrics.csv") as handle:
        skipped = [
            float(row["train/skipped_steps"]) for row in csv.DictReader(handle) if row.get("train/skipped_steps")
        ]
    assert skipped and max(skipped) == 1.0  # one step skipped in all


def test_the_report_names_a_diverging_loss_and_the_methods_hint():
    """The first and latest finite losses decide whether the report calls it a divergence; the method
    adds what to change (InfoNCE without normalisation: its curvature grows with the embeddings)."""
    from helpers import TINY_MODEL

    from sslprobe.methods import InfoNCE, SimCLR

    info_nce = InfoNCE(**TINY_MODEL, beta=0.5)
    info_nce._first_loss, info_nce._last_loss = (0, torch.tensor(5.74)), (5, torch.tensor(141.0))
    cause = info_nce.likely_cause()
    assert cause.startswith("likely cause: the optimisation diverged (loss 5.74 at step 0, 141 at step 5); ")
    assert "normalize: true" in cause and "lower model.init_args.lr" in cause
    info_nce._last_loss = (5, torch.tensor(6.0))
    assert info_nce.likely_cause() == ""  # no growth: no guess
    simclr = SimCLR(**TINY_MODEL)
    simclr._first_loss, simclr._last_loss = (0, torch.tensor(5.0)), (9, torch.tensor(5e5))
    assert simclr.likely_cause().endswith("a lower model.init_args.lr (or a warm-up) may keep it stable; ")
    assert InfoNCE(**TINY_MODEL, normalize=True).divergence_hint() is None
