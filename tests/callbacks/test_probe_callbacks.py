"""The probe callbacks end to end: a short fit writes every probe file; `probe` re-measures a checkpoint."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml
from helpers import tiny_fit_args  # tests/helpers.py
from lightning.pytorch import seed_everything

from sslprobe.callbacks import LandscapeProbe
from sslprobe.callbacks.landscape import ProbeTargetError, resolve_target
from sslprobe.cli import main
from sslprobe.data.augment import normalize_images
from sslprobe.data.datamodule import CIFAR10DataModule
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
    "--probes.theory.num_images",
    "128",
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
        assert spectrum["epochs"].tolist() == [0, 1, 2]  # 0: the initial network; then counted from 1
        assert spectrum["weight_singular_values"].shape == (3, 8)  # 8 x 16 last layer
        assert spectrum["feature_eigenvalues"].shape == (3, 16)
        assert spectrum["embedding_eigenvalues"].shape == (3, 8)
        assert np.all(np.diff(spectrum["embedding_eigenvalues"], axis=1) <= 1e-12)  # descending
    # The last measurement is of the final weights: the singular values of the checkpoint's last layer.
    checkpoint = torch.load(probed_run / "checkpoints" / "last.ckpt", map_location="cpu", weights_only=False)
    with np.load(probes / "spectrum.npz") as spectrum:
        expected = torch.linalg.svdvals(checkpoint["state_dict"]["projector.3.weight"].double()).numpy()
        np.testing.assert_allclose(spectrum["weight_singular_values"][2], expected, rtol=1e-5, atol=1e-7)
    with np.load(probes / "landscape_epoch2.npz") as landscape:
        assert landscape["loss_2d"].shape == (5, 5) and landscape["loss_1d"].shape == (5,)
        assert landscape["a"][0] == 0.0 and landscape["a"][-1] == 2.0
        reference = float(landscape["reference_loss"])
        assert landscape["a"][2] == 1.0 and float(landscape["loss_1d"][2]) == pytest.approx(reference, rel=1e-5)
        assert float(landscape["loss_2d"][2, 2]) == pytest.approx(reference, rel=1e-5)  # (r1, r2) = (1, 1)
    # reference_loss recomputed through the whole model: its loss on the probe's views, per batch of 25
    method = SimCLR.load_from_checkpoint(probed_run / "checkpoints" / "last.ckpt", map_location="cpu").eval()
    datamodule = CIFAR10DataModule(**yaml.safe_load((probed_run / "config.yaml").read_text())["data"])
    datamodule.setup_for_run(probed_run)
    view1, view2 = datamodule.probe_views(128, seed=0)  # the landscape probe's default seed
    with torch.no_grad():
        z1, z2 = method(view1), method(view2)
    assert len(z1) == 100  # the whole 100-image subset (fewer than num_images)
    batches = [method.loss_fn(z1[i : i + 25], z2[i : i + 25]) for i in range(0, 100, 25)]
    assert reference == pytest.approx(float(torch.stack(batches).mean()), rel=1e-5)
    report = json.loads((probes / "landscape_epoch2.json").read_text())
    # SimCLR's cosine NT-Xent with the whole affine map rescaled: the 1-D curve is flat for a > 0.
    assert report["scale_invariant"] is True
    assert report["origin"] is None and report["origin_is_local_max"] is None  # flat by construction
    linear = json.loads((probes / "linear_eval.json").read_text())
    assert {"top1", "knn_top1", "per_class", "balanced", "rare_mean", "frequent_mean", "random_init_top1",
            "random_init_knn_top1", "random_init_rare_mean"} <= set(linear)
    assert len(linear["per_class"]) == 10 and linear["num_train"] == 1000 and linear["num_test"] == 500
    # The 'high' preset's rare classes (counts 0 or a few) are those below the median count.
    counts = linear["train_class_counts"]
    assert sorted(linear["rare_classes"]) == sorted(c for c in range(10) if counts[c] < np.median(counts))
    theory = json.loads((probes / "theory_epoch2.json").read_text())
    # SimCLR's cosine NT-Xent: Thm. 2 with c = 1/T, the run's batch and temperature
    assert theory["applicable"] and theory["loss_kind"] == "normalized" and "Thm. 2" in theory["theorem"]
    assert theory["batch"] == 25 and theory["temperature"] == 0.5
    assert theory["num_images"] == 100  # the whole 100-image subset
    assert theory["feature_dim"] == 16 and theory["output_dim"] == 8
    assert 1 <= theory["predicted_rank"] <= 8 and 1 <= theory["measured_rank"] <= 8
    assert len(theory["principal_angles_deg"]) == min(theory["predicted_rank"], theory["measured_rank"])
    with np.load(probes / "theory_epoch2.npz") as arrays:
        assert arrays["A0"].shape == arrays["C"].shape == (16, 16)
        assert np.allclose(arrays["Sigma"], arrays["A0"] + arrays["C"])
        assert np.allclose(np.sort(arrays["measured_eigenvalues"])[::-1][:8], theory["measured_eigenvalues"][:8])
        # the trained WᵀW is compared at the norm Thm. 2 fixes, Tr[WΣWᵀ] = c = 1/T
        assert np.trace(arrays["measured_gram"] @ arrays["Sigma"]) == pytest.approx(2.0, rel=1e-6)
    assert np.isfinite(theory["loss_trained"]) and np.isfinite(theory["loss_predicted"])
    for name in (
        "theory_epoch2.png",
        "spectrum.png",
        "spectrum_heatmap.png",
        "landscape_epoch2_1d.png",
        "landscape_epoch2_2d.png",
        "linear_eval_per_class.png",
    ):
        assert (probes / name).stat().st_size > 1000, name


def test_random_init_baseline_is_the_untrained_network_of_the_run(probed_run, cifar):
    # Built here with the run's seed (quickstart.yaml: seed_everything 0) and the fit's architecture,
    # evaluated by the probe function directly on the same balanced sets and protocol.
    from sslprobe.data.cifar import balanced_subset
    from sslprobe.probes import LinearEvalOptions, linear_evaluation

    seed_everything(0)
    initial = SimCLR(temperature=0.5, backbone="resnet12", backbone_kwargs={"widths": [4, 8, 8, 16]},
                     projector="mlp", hidden_dim=16, output_dim=8, lr=0.06, min_lr=0.001).eval()
    train, test = balanced_subset(cifar.train, 1000, 0), balanced_subset(cifar.test, 500, 0)
    with torch.no_grad():
        train_features = initial.backbone(normalize_images(train.images))
        test_features = initial.backbone(normalize_images(test.images))
    expected = linear_evaluation(train_features, train.labels, test_features, test.labels,
                                 LinearEvalOptions(epochs=5, knn_k=20))
    linear = json.loads((probed_run / "probes" / "linear_eval.json").read_text())
    assert linear["random_init_top1"] == pytest.approx(expected.top1, abs=1e-9)
    assert linear["random_init_knn_top1"] == pytest.approx(expected.knn_top1, abs=1e-9)
    assert linear["random_init_seed"] == 0
    assert len(list((probed_run.parent.parent / "random_init_cache").glob("*.json"))) == 1


def test_spectrum_epoch_zero_is_the_untrained_network(probed_run, cifar):
    # The run's architecture built with its seed (seed_everything 0) and measured here: backbone
    # features of the probe images (the first 256 of a seed-0 permutation of the test set, in
    # index order), their centred covariance eigenvalues, and the initial last layer's σ.
    seed_everything(0)
    initial = SimCLR(temperature=0.5, backbone="resnet12", backbone_kwargs={"widths": [4, 8, 8, 16]},
                     projector="mlp", hidden_dim=16, output_dim=8, lr=0.06, min_lr=0.001).eval()
    chosen = torch.randperm(len(cifar.test.labels), generator=torch.Generator().manual_seed(0))[:256].sort().values
    with torch.no_grad():
        features = initial.backbone(normalize_images(cifar.test.images[chosen])).double().numpy()
    centred = features - features.mean(axis=0)
    expected = np.sort(np.linalg.eigvalsh(centred.T @ centred / len(centred)))[::-1]
    sigma = np.linalg.svd(initial.projector[3].weight.detach().double().numpy(), compute_uv=False)
    with np.load(probed_run / "probes" / "spectrum.npz") as spectrum:
        np.testing.assert_allclose(spectrum["feature_eigenvalues"][0], expected, rtol=1e-4, atol=1e-9)
        np.testing.assert_allclose(spectrum["weight_singular_values"][0], sigma, rtol=1e-5, atol=1e-7)
        assert not np.allclose(spectrum["feature_eigenvalues"][0], spectrum["feature_eigenvalues"][2], rtol=1e-3)


def test_initial_spectrum_leaves_training_unchanged_and_is_not_repeated_on_resume(probed_run, tmp_path, cifar_root):
    import shutil

    # Without the step-0 measurement the weights are bitwise the same: it draws no random number.
    without = fit(tmp_path / "without", cifar_root, "sslprobe.methods.SimCLR", "--probes.spectrum.at_start", "false")
    trained = torch.load(probed_run / "checkpoints" / "last.ckpt", map_location="cpu", weights_only=False)
    other = torch.load(without / "checkpoints" / "last.ckpt", map_location="cpu", weights_only=False)
    assert trained["state_dict"].keys() == other["state_dict"].keys()
    assert all(torch.equal(trained["state_dict"][k], other["state_dict"][k]) for k in trained["state_dict"])
    with np.load(without / "probes" / "spectrum.npz") as spectrum:
        assert spectrum["epochs"].tolist() == [1, 2]
    # A resumed run continues the history and does not measure its trained network as epoch 0.
    root = tmp_path / "resumed"
    shutil.copytree(probed_run, root / "probes" / "v")
    fit(root, cifar_root, "sslprobe.methods.SimCLR", "--trainer.max_epochs", "3", "--ckpt_path", "last")
    with np.load(root / "probes" / "v" / "probes" / "spectrum.npz") as spectrum, \
            np.load(probed_run / "probes" / "spectrum.npz") as before:
        assert spectrum["epochs"].tolist() == [0, 1, 2, 3]
        np.testing.assert_array_equal(spectrum["feature_eigenvalues"][:3], before["feature_eigenvalues"][:3])


def test_probe_entry_remeasures_a_checkpoint(probed_run, capsys):
    before = json.loads((probed_run / "probes" / "linear_eval.json").read_text())
    (probed_run / "probes" / "linear_eval.json").unlink()
    theory_before = json.loads((probed_run / "probes" / "theory_epoch2.json").read_text())
    (probed_run / "probes" / "theory_epoch2.json").unlink()
    main(["probe", "--ckpt_path", str(probed_run / "checkpoints" / "last.ckpt"), "--what", "spectrum,linear,theory"])
    theory_after = json.loads((probed_run / "probes" / "theory_epoch2.json").read_text())
    assert theory_after["predicted_eigenvalues"] == pytest.approx(theory_before["predicted_eigenvalues"], rel=1e-5)
    assert theory_after["measured_eigenvalues"] == pytest.approx(theory_before["measured_eigenvalues"], rel=1e-5)
    after = json.loads((probed_run / "probes" / "linear_eval.json").read_text())
    assert after["top1"] == pytest.approx(before["top1"], abs=1e-6)  # same weights, same protocol
    # the baseline of the same seed and architecture, from the cache the fit wrote
    assert after["random_init_top1"] == before["random_init_top1"]
    assert after["random_init_cache"] == before["random_init_cache"]
    with np.load(probed_run / "probes" / "spectrum.npz") as spectrum:
        # the history saved with the checkpoint continues: the initial network and two epochs from
        # training, one from `probe`
        assert spectrum["epochs"].tolist() == [0, 1, 2, 2]
        assert np.allclose(spectrum["embedding_eigenvalues"][2], spectrum["embedding_eigenvalues"][3], rtol=1e-5)
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
    report = json.loads((run / "probes" / "landscape_epoch2.json").read_text())
    assert report["scale_invariant"] is False
    theory = json.loads((run / "probes" / "theory_epoch2.json").read_text())
    assert theory["loss_kind"] == "spectral_contrastive" and theory["bias_as_input"] is True
    assert theory["feature_dim"] == 17  # 16 inputs and the bias's constant one
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
    with pytest.raises(ValueError, match="LandscapeProbe.grid_points: expected an int >= 2, got 1"):
        LandscapeProbe(grid_points=1)
