"""Every method builds with a tiny backbone and honours the method contract."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from sslprobe import losses
from sslprobe.data.augment import normalize_images
from sslprobe.methods import BarlowTwins, InfoNCE, SimCLR, SpectralContrastive, Supervised, VICReg
from sslprobe.methods.base import WarmupCosine
from sslprobe.nn import last_linear

TINY = {"backbone": "resnet12", "backbone_kwargs": {"widths": [8, 16, 32, 64]}, "hidden_dim": 32, "output_dim": 16}

# (method, its hyperparameters (not the defaults), the loss function called independently)
CASES = [
    (SimCLR, {"temperature": 0.3}, lambda z1, z2: losses.nt_xent_loss(z1, z2, temperature=0.3)),
    (SpectralContrastive, {"mu": 2.0}, lambda z1, z2: losses.spectral_contrastive_loss(z1, z2, mu=2.0)),
    (BarlowTwins, {"lambd": 0.02}, lambda z1, z2: losses.barlow_twins_loss(z1, z2, lambd=0.02)),
    (InfoNCE, {"temperature": 0.7, "alpha": 0.5, "beta": 0.8},
     lambda z1, z2: losses.info_nce_loss(z1, z2, temperature=0.7, alpha=0.5, beta=0.8)),
    (InfoNCE, {"temperature": 0.2, "normalize": True},
     lambda z1, z2: losses.info_nce_loss(z1, z2, temperature=0.2, normalize=True)),
    (VICReg, {"sim_coeff": 10.0, "std_coeff": 20.0, "cov_coeff": 2.0},
     lambda z1, z2: losses.vicreg_loss(z1, z2, sim_coeff=10.0, std_coeff=20.0, cov_coeff=2.0)),
]
METHODS = [SimCLR, SpectralContrastive, BarlowTwins, InfoNCE, VICReg, Supervised]


def views(batch: int = 8, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    generator = torch.Generator().manual_seed(seed)
    return tuple(torch.randn(batch, 3, 32, 32, generator=generator) for _ in range(2))


@pytest.mark.parametrize(("method", "hparams", "reference"), CASES, ids=lambda c: getattr(c, "__name__", ""))
def test_loss_fn_is_the_loss_function(method, hparams, reference):
    model = method(**TINY, **hparams)
    generator = torch.Generator().manual_seed(1)
    z1 = torch.randn(12, 16, generator=generator)
    z2 = 0.5 * z1 + torch.randn(12, 16, generator=generator)
    torch.testing.assert_close(model.loss_fn(z1, z2), reference(z1, z2))
    # The training step's loss is the same function of the projector outputs.
    model.eval()
    v1, v2 = views()
    with torch.no_grad():
        torch.testing.assert_close(model.shared_step((v1, v2, torch.zeros(8))), reference(model(v1), model(v2)))


def test_supervised_is_cross_entropy_on_both_views():
    model = Supervised(**TINY, num_classes=10).train()
    assert isinstance(model.projector, nn.Identity)
    v1, v2 = views()
    labels = torch.arange(8) % 10
    with torch.no_grad():
        logits = model.classifier(model.backbone(torch.cat([v1, v2])))
        expected = F.cross_entropy(logits, torch.cat([labels, labels]))
        torch.testing.assert_close(model.shared_step((v1, v2, labels)), expected)
    with pytest.raises(NotImplementedError, match="needs labels"):
        model.loss_fn(torch.randn(4, 64), torch.randn(4, 64))


@pytest.mark.parametrize("method", METHODS)
def test_contract(method):
    model = method(**TINY)
    assert isinstance(model.backbone, nn.Module) and model.backbone.feature_dim == 64
    v1, _ = views(4)
    with torch.no_grad():
        model.eval()
        features = model.backbone(v1)
    model.train()
    seen = []
    model.backbone.register_forward_hook(lambda module, args, output: seen.append(module.training))
    embedded = model.embed(v1)
    assert seen == [False] and model.training  # eval inside, train mode restored
    assert not embedded.requires_grad
    torch.testing.assert_close(embedded, features)
    model.eval()
    model.embed(v1)
    assert not model.training
    pixels = torch.randint(0, 256, (3, 3, 32, 32), dtype=torch.uint8)
    torch.testing.assert_close(model.embed(pixels), model.embed(normalize_images(pixels)))


@pytest.mark.parametrize("method", [SimCLR, SpectralContrastive, BarlowTwins, InfoNCE, VICReg])
def test_projector_none_is_identity(method):
    model = method(**{**TINY, "projector": None}).eval()
    assert isinstance(model.projector, nn.Identity)
    v1, _ = views(3)
    with torch.no_grad():
        torch.testing.assert_close(model(v1), model.backbone(v1))
    mlp = method(**TINY)
    assert last_linear(mlp.projector).out_features == 16 and mlp(v1).shape == (3, 16)


@pytest.mark.parametrize(("method", "hparams", "pattern"), [
    (SimCLR, {"temperature": 0.0}, "temperature must be > 0"),
    (InfoNCE, {"temperature": -1.0}, "temperature must be > 0"),
    (SpectralContrastive, {"mu": 0.0}, "mu must be > 0"),
    (VICReg, {"std_coeff": -1.0}, "std_coeff must be >= 0"),
    (SimCLR, {"lr": 0.0}, "lr > 0"),
    (SimCLR, {"lr": 0.1, "min_lr": 0.2}, "min_lr <= lr"),
])
def test_bad_hyperparameters(method, hparams, pattern):
    with pytest.raises(ValueError, match=pattern):
        method(**TINY, **hparams)


@pytest.mark.parametrize(("warmup", "total"), [(5, 40), (0, 17), (1, 2)])
def test_warmup_cosine_schedule(warmup, total):
    lr, min_lr = 0.2, 0.004
    parameter = nn.Parameter(torch.zeros(1))
    optimizer = torch.optim.SGD([parameter], lr=lr)
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, WarmupCosine(warmup, total, min_lr / lr))
    rates = []
    for _ in range(total):
        rates.append(optimizer.param_groups[0]["lr"])  # the rate used by this step
        optimizer.step()
        scheduler.step()
    if warmup:
        assert rates[warmup - 1] == pytest.approx(lr)
        assert rates[0] == pytest.approx(lr / warmup)
        assert all(a < b for a, b in zip(rates[: warmup - 1], rates[1:warmup]))
    assert rates[-1] == pytest.approx(min_lr)
    after = rates[warmup:]
    assert all(a >= b for a, b in zip(after, after[1:]))
    if len(after) >= 3 and (len(after) - 1) % 2 == 0:
        middle = after[(len(after) - 1) // 2]  # cosine at half way: the mean of lr and min_lr
        assert middle == pytest.approx((lr + min_lr) / 2)
    assert math.isclose(WarmupCosine(warmup, total, min_lr / lr)(10 * total), min_lr / lr)
