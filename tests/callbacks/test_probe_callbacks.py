"""The probe callbacks end to end: a short fit writes every probe file; `probe` re-measures a checkpoint."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from helpers import tiny_fit_args  # tests/helpers.py

from sslprobe.callbacks import LandscapeProbe
from sslprobe.callbacks.landscape import ProbeTargetError, resolve_target
from sslprobe.cli import main
from sslprobe.methods import SimCLR, SpectralContrastive

pytestmark = pytest.mark.slow

TINY = "{widths: [4, 8, 8, 16]}"
SMALL_PROBES = [
    "--probes.spectrum.num_images",
    "256",
    "--probes.landscape.num_images",
    "128",
    "--probes.landscape.grid_points",
    "5",
    "--probes.linear_eval.epochs",
    "5",
    "--probes.linear_eval.train_size",
    "1000",
    "--probes.linear_eval.test_size",
    "500",
    "--probes.linear_eval.knn_k",
    "20",
]


def fit(root: Path, cifar_root: Path, method: str = "sslprobe.methods.SimCLR", *extra: str) -> Path:
    main([
        *tiny_fit_args(root, cifar_root, "probes", "v", subset_size=100, batch_size=25, max_epochs=2,
                       configs=("callbacks/probes.yaml",), model=("--model.class_path", method),
                       backbone_kwargs=TINY),
        "--data.imbalance", "high",
        "--trainer.limit_train_batches", "2",
        "--trainer.limit_val_batches", "0",
        *SMALL_PROBES,
        *extra,
    ])
    return root / "probes" / "v"


@pytest.fixture(scope="module")
def probed_run(tmp_path_factory, cifar_root) -> Path:
    return fit(tmp_path_factory.mktemp("runs"), cifar_root)


def test_fit_writes_every_probe_file(probed_run):
    probes = probed_run / "probes"
    with np.load(probes / "spectrum.npz") as spectrum:
        assert spectrum["epochs"].tolist() == [0, 1]
        assert spectrum["weight_singular_values"].shape == (2, 8)  # 8 x 16 last layer
        assert spectrum["feature_eigenvalues"].shape == (2, 16)
        assert spectrum["embedding_eigenvalues"].shape == (2, 8)
        assert np.all(np.diff(spectrum["embedding_eigenvalues"], axis=1) <= 1e-12)  # descending
    with np.load(probes / "landscape_epoch1.npz") as landscape:
        assert landscape["loss_2d"].shape == (5, 5) and landscape["loss_1d"].shape == (5,)
        assert landscape["a"][0] == 0.0 and landscape["a"][-1] == 2.0
        assert np.isfinite(landscape["reference_loss"])
    report = json.loads((probes / "landscape_epoch1.json").read_text())
    # SimCLR's cosine NT-Xent with the whole affine map rescaled: the 1-D curve is flat for a > 0.
    assert report["scale_invariant"] is True
    linear = json.loads((probes / "linear_eval.json").read_text())
    assert {"top1", "knn_top1", "per_class", "balanced", "rare_mean", "frequent_mean", "random_init_top1",
            "random_init_knn_top1", "random_init_rare_mean"} <= set(linear)
    assert len(linear["per_class"]) == 10 and linear["num_train"] == 1000 and linear["num_test"] == 500
    # The 'high' preset's rare classes (counts 0 or a few) are those below the median count.
    counts = linear["train_class_counts"]
    assert sorted(linear["rare_classes"]) == sorted(c for c in range(10) if counts[c] < np.median(counts))
    for name in (
        "spectrum.png",
        "spectrum_heatmap.png",
        "landscape_epoch1_1d.png",
        "landscape_epoch1_2d.png",
        "linear_eval_per_class.png",
    ):
        assert (probes / name).stat().st_size > 1000, name


def test_random_init_baseline_is_the_untrained_network_of_the_run(probed_run, cifar):
    # Built here with the run's seed (quickstart.yaml: seed_everything 0) and the fit's architecture,
    # evaluated by the probe function directly on the same balanced sets and protocol.
    from lightning.pytorch import seed_everything

    from sslprobe.data.augment import normalize_images
    from sslprobe.data.cifar import balanced_subset
    from sslprobe.probes import linear_evaluation

    seed_everything(0)
    initial = SimCLR(temperature=0.5, backbone="resnet12", backbone_kwargs={"widths": [4, 8, 8, 16]},
                     projector="mlp", hidden_dim=16, output_dim=8, lr=0.06, min_lr=0.001).eval()
    train, test = balanced_subset(cifar.train, 1000, 0), balanced_subset(cifar.test, 500, 0)
    with torch.no_grad():
        train_features = initial.backbone(normalize_images(train.images))
        test_features = initial.backbone(normalize_images(test.images))
    expected = linear_evaluation(train_features, train.labels, test_features, test.labels, epochs=5, knn_k=20)
    linear = json.loads((probed_run / "probes" / "linear_eval.json").read_text())
    assert linear["random_init_top1"] == pytest.approx(expected["top1"], abs=1e-9)
    assert linear["random_init_knn_top1"] == pytest.approx(expected["knn_top1"], abs=1e-9)
    assert linear["random_init_seed"] == 0
    assert len(list((probed_run.parent.parent / "random_init_cache").glob("*.json"))) == 1


def test_probe_entry_remeasures_a_checkpoint(probed_run, capsys):
    before = json.loads((probed_run / "probes" / "linear_eval.json").read_text())
    (probed_run / "probes" / "linear_eval.json").unlink()
    main(["probe", "--ckpt_path", str(probed_run / "checkpoints" / "last.ckpt"), "--what", "spectrum,linear"])
    after = json.loads((probed_run / "probes" / "linear_eval.json").read_text())
    assert after["top1"] == pytest.approx(before["top1"], abs=1e-6)  # same weights, same protocol
    # the baseline of the same seed and architecture, from the cache the fit wrote
    assert after["random_init_top1"] == before["random_init_top1"]
    assert after["random_init_cache"] == before["random_init_cache"]
    with np.load(probed_run / "probes" / "spectrum.npz") as spectrum:
        # the history saved with the checkpoint continues: two epochs from training, one from `probe`
        assert spectrum["epochs"].tolist() == [0, 1, 1]
        assert np.allclose(spectrum["embedding_eigenvalues"][1], spectrum["embedding_eigenvalues"][2], rtol=1e-5)
    assert "wrote" in capsys.readouterr().out


def test_probe_entry_rejects_bad_input(probed_run, capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["probe", "--ckpt_path", str(probed_run / "checkpoints" / "last.ckpt"), "--what", "spectrum,nope"])
    assert exit_info.value.code == 1
    assert "unknown probe(s) ['nope']" in capsys.readouterr().err


def test_landscape_not_scale_invariant_for_spectral_contrastive(tmp_path, cifar_root):
    run = fit(
        tmp_path,
        cifar_root,
        "sslprobe.methods.SpectralContrastive",
        "--probes.spectrum",
        "null",
        "--probes.linear_eval",
        "null",
    )
    report = json.loads((run / "probes" / "landscape_epoch1.json").read_text())
    assert report["scale_invariant"] is False
    assert not (run / "probes" / "linear_eval.json").exists()


def test_landscape_target_errors():
    no_projector = SimCLR(backbone="resnet12", backbone_kwargs={"widths": [4, 4, 4, 4]}, projector=None)
    with pytest.raises(ProbeTargetError, match="no projector"):
        resolve_target(no_projector, None)
    method = SpectralContrastive(backbone="resnet12", backbone_kwargs={"widths": [4, 4, 4, 4]})
    with pytest.raises(ProbeTargetError, match="BatchNorm1d, not an nn.Linear"):
        resolve_target(method, "projector.1")
    layer, head = resolve_target(method, "projector.0")
    assert layer is method.projector[0] and len(head) == 3  # BN, ReLU, Linear follow
    assert resolve_target(method, None)[0] is method.projector[3]
    with pytest.raises(ValueError, match="grid of one point"):
        LandscapeProbe(grid_points=1)
