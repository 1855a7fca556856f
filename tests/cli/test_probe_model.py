"""`probe` on a model trained outside sslprobe: a torchvision ResNet-18 (CIFAR stem) and a two-layer head
trained a few steps by a plain PyTorch SimCLR loop here, saved as ``{"state_dict": {"module.encoder.…"}}``.

Its spectrum is checked against an eigen-decomposition done here, its landscape against an sslprobe
SimCLR method holding the same weights, its random-init baseline against a ResNet-18 drawn here with
the same seed; the Python API gives the spectrum the command line wrote.
"""

from __future__ import annotations

import csv
import hashlib
import json
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F
import torchvision
import yaml
from torch import nn

import sslprobe
from sslprobe.callbacks import LandscapeProbe
from sslprobe.data import CIFAR10DataModule, load_cifar10
from sslprobe.data.augment import normalize_images
from sslprobe.data.cifar import balanced_subset
from sslprobe.methods import SimCLR
from sslprobe.probes import LinearEvalOptions, linear_evaluation

pytestmark = pytest.mark.slow

HIDDEN, OUT = 64, 16
DATA = ["--data.imbalance", "none", "--data.subset_size", "100", "--data.batch_size", "16", "--data.num_workers", "0"]
PROBES = ["--probes.spectrum.num_images", "64",
          "--probes.linear_eval.train_size", "100", "--probes.linear_eval.test_size", "50",
          "--probes.linear_eval.epochs", "3", "--probes.linear_eval.knn_k", "5",
          "--probes.landscape.num_images", "32", "--probes.landscape.grid_points", "3"]


def cifar_resnet18() -> nn.Module:
    """torchvision's ResNet-18 with the usual CIFAR stem (3×3 stride-1 conv, no max-pool), no classifier."""
    model = torchvision.models.resnet18()
    model.conv1 = nn.Conv2d(3, 64, kernel_size=3, stride=1, padding=1, bias=False)
    model.maxpool = nn.Identity()
    model.fc = nn.Identity()
    return model


def two_layer_head() -> nn.Sequential:
    return nn.Sequential(nn.Linear(512, HIDDEN, bias=False), nn.BatchNorm1d(HIDDEN), nn.ReLU(), nn.Linear(HIDDEN, OUT))


def augment(images: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    """Random 4-pixel-padded crop and horizontal flip of uint8 (B, 3, 32, 32), as floats in [0, 1]."""
    padded = F.pad(images.float() / 255, (4, 4, 4, 4), mode="reflect")
    views = []
    for image in padded:
        i, j = torch.randint(0, 9, (2,), generator=generator).tolist()
        crop = image[:, i : i + 32, j : j + 32]
        views.append(crop.flip(-1) if torch.rand((), generator=generator) < 0.5 else crop)
    return (torch.stack(views) - 0.5) / 0.25


def simclr_loss(z1: torch.Tensor, z2: torch.Tensor, temperature: float = 0.5) -> torch.Tensor:
    z = F.normalize(torch.cat([z1, z2]), dim=1)
    logits = z @ z.T / temperature
    logits.fill_diagonal_(float("-inf"))
    n = len(z1)
    return F.cross_entropy(logits, torch.cat([torch.arange(n, 2 * n), torch.arange(n)]))


@pytest.fixture(scope="module")
def trained(tmp_path_factory, cifar_root) -> dict:
    """Three SGD steps of SimCLR on 8 real CIFAR-10 images per batch, in plain PyTorch; the weights file."""
    torch.manual_seed(1)
    encoder, head = cifar_resnet18(), two_layer_head()
    images = load_cifar10(cifar_root).train.images[:24]
    optimizer = torch.optim.SGD([*encoder.parameters(), *head.parameters()], lr=0.05, momentum=0.9)
    generator = torch.Generator().manual_seed(0)
    for step in range(3):
        batch = images[8 * step : 8 * step + 8]
        loss = simclr_loss(head(encoder(augment(batch, generator))), head(encoder(augment(batch, generator))))
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    state = {**{f"module.encoder.{k}": v for k, v in encoder.state_dict().items()},
             **{f"module.projector.{k}": v for k, v in head.state_dict().items()}}
    path = tmp_path_factory.mktemp("foreign") / "model.pt"
    torch.save({"state_dict": state, "epoch": 3}, path)
    return {"path": path, "encoder": encoder.eval(), "head": head.eval()}


@pytest.fixture(scope="module")
def probed(trained, tmp_path_factory, cifar_root):
    from sslprobe.cli import main

    root = tmp_path_factory.mktemp("runs")
    main(["probe", "--backbone", "torchvision:resnet18", "--backbone_kwargs", "{cifar_stem: true}",
          "--weights", str(trained["path"]), "--projector", "mlp",
          "--projector_kwargs", f"{{hidden_dim: {HIDDEN}, output_dim: {OUT}}}",
          "--objective", "NTXentLoss", "--objective_kwargs", "{temperature: 0.5}",
          "--what", "spectrum,linear,landscape", "--device", "cpu", "--root", str(root),
          "--data.root", str(cifar_root), *DATA, *PROBES])
    return root / "probe_torchvision_resnet18" / "version_0"


def datamodule(cifar_root: Path, run_dir: Path) -> CIFAR10DataModule:
    data = CIFAR10DataModule(root=str(cifar_root), imbalance="none", subset_size=100, batch_size=16, num_workers=0)
    data.setup_for_run(run_dir)
    return data


def test_run_directory_records_the_model_weights_and_data(probed, trained, capsys):
    config = yaml.safe_load((probed / "config.yaml").read_text())
    assert config["model"]["weights_sha256"] == hashlib.sha256(trained["path"].read_bytes()).hexdigest()
    assert config["model"]["weights_prefix"] == "module.encoder."
    assert config["model"]["projector_prefix"] == "module.projector."
    assert config["model"]["backbone"] == "torchvision:resnet18" and config["what"] == ["spectrum", "linear",
                                                                                         "landscape"]
    assert config["data"]["subset_size"] == 100 and config["probes"]["linear_eval"]["init_args"]["epochs"] == 3
    linear = json.loads((probed / "probes" / "linear_eval.json").read_text())
    with open(probed / "metrics.csv", newline="") as handle:
        rows = list(csv.DictReader(handle))
    assert float(next(r for r in rows if r.get("linear/top1"))["linear/top1"]) == pytest.approx(linear["top1"])
    (record,) = probed.glob("wandb/offline-run-*/run-*.wandb")
    assert record.stat().st_size > 0


def test_spectrum_equals_an_eigendecomposition_done_here(probed, trained, cifar):
    chosen = torch.randperm(len(cifar.test), generator=torch.Generator().manual_seed(0))[:64].sort().values
    with torch.no_grad():
        features = trained["encoder"](normalize_images(cifar.test.images[chosen]))
        embeddings = trained["head"](features)
    with np.load(probed / "probes" / "spectrum.npz") as spectrum:
        for name, matrix in (("feature_eigenvalues", features), ("embedding_eigenvalues", embeddings)):
            centred = matrix.double().numpy() - matrix.double().numpy().mean(axis=0)
            expected = np.sort(np.linalg.eigvalsh(centred.T @ centred / len(centred)))[::-1]
            np.testing.assert_allclose(spectrum[name][-1], expected, rtol=1e-4, atol=1e-6 * expected[0])
        sigma = np.linalg.svd(trained["head"][3].weight.detach().double().numpy(), compute_uv=False)
        np.testing.assert_allclose(spectrum["weight_singular_values"][-1], sigma, rtol=1e-5)


class Features(nn.Module):
    def __init__(self, model: nn.Module):
        super().__init__()
        self.model, self.feature_dim = model, 512

    def forward(self, images):
        return self.model(images)


def test_landscape_equals_that_of_an_sslprobe_simclr_holding_the_same_weights(probed, trained, cifar_root, tmp_path):
    method = SimCLR(temperature=0.5, backbone=Features(cifar_resnet18()), hidden_dim=HIDDEN, output_dim=OUT)
    method.backbone.model.load_state_dict(trained["encoder"].state_dict())
    method.projector.load_state_dict(trained["head"].state_dict())
    LandscapeProbe(num_images=32, grid_points=3).measure(method, datamodule(cifar_root, tmp_path), tmp_path, epoch=1)
    with np.load(tmp_path / "probes" / "landscape_epoch1.npz") as ours, \
            np.load(probed / "probes" / "landscape_epoch1.npz") as theirs:
        for key in ("loss_1d", "loss_2d", "reference_loss"):
            np.testing.assert_allclose(theirs[key], ours[key], rtol=1e-5, err_msg=key)
    verdict = json.loads((probed / "probes" / "landscape_epoch1.json").read_text())
    assert verdict["scale_invariant"] is True  # cosine NT-Xent with the whole affine map rescaled


def test_random_init_baseline_is_a_resnet18_drawn_with_the_seed(probed, cifar):
    torch.manual_seed(0)  # --seed 0: the architecture built again, as --backbone builds it
    model = torchvision.models.resnet18()
    model.conv1 = nn.Conv2d(3, 64, kernel_size=3, stride=1, padding=1, bias=False)
    model.maxpool, model.fc = nn.Identity(), nn.Identity()
    train, test = balanced_subset(cifar.train, 100, 0), balanced_subset(cifar.test, 50, 0)
    with torch.no_grad():
        model.eval()
        train_features, test_features = (model(normalize_images(s.images)) for s in (train, test))
    expected = linear_evaluation(train_features, train.labels, test_features, test.labels,
                                 LinearEvalOptions(epochs=3, knn_k=5))
    linear = json.loads((probed / "probes" / "linear_eval.json").read_text())
    assert linear["random_init_top1"] == pytest.approx(expected.top1, abs=1e-9)
    assert linear["random_init_knn_top1"] == pytest.approx(expected.knn_top1, abs=1e-9)
    assert linear["num_train"] == 100 and linear["num_test"] == 50 and 0 <= linear["top1"] <= 1


def test_python_api_gives_the_spectrum_the_command_wrote(probed, trained, cifar_root, tmp_path):
    results = sslprobe.probe(trained["encoder"], datamodule(cifar_root, tmp_path / "none"), what=("spectrum",
                             "landscape"), projector=trained["head"], settings={"spectrum": {"num_images": 64}})
    assert results.landscape is None and "objective" in results.declined["landscape"]
    with np.load(probed / "probes" / "spectrum.npz") as spectrum:
        np.testing.assert_allclose(results.spectrum.feature_eigenvalues, spectrum["feature_eigenvalues"][-1],
                                   rtol=1e-5)
        assert results.spectrum.embeddings_effective_rank == pytest.approx(
            float(spectrum["embeddings_effective_rank"][-1]), rel=1e-9)
    assert results.out is None and not (tmp_path / "none").exists()  # without out nothing is written
