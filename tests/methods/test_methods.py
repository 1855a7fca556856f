"""Every method builds with a tiny backbone and honours the method contract."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from sslprobe import losses
from sslprobe.callbacks import PROBE_CALLBACKS
from sslprobe.data.augment import normalize_images
from sslprobe.methods import METHODS, BarlowTwins, InfoNCE, SimCLR, SpectralContrastive, Supervised, VICReg
from sslprobe.methods.base import SSLMethod
from sslprobe.nn import last_linear
from sslprobe.schedules import WarmupCosine

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


PROBES = {probe.name for probe in PROBE_CALLBACKS.values()}
# The package's methods (tests define subclasses of their own, which the registry holds too).
SHIPPED = {name: cls for name, cls in METHODS.items() if cls.__module__.startswith("sslprobe.methods.")}


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
    # No loss of two embeddings: the probes that evaluate one say why they do not apply.
    assert {p for p in PROBES if model.probe_unavailable(p)} == {"landscape", "theory"}
    assert "cross-entropy on labels" in model.probe_unavailable("landscape")


@pytest.mark.parametrize("method", SHIPPED.values(), ids=list(SHIPPED))
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
    assert all(p in PROBES for p in method.unavailable_probes)  # reasons name real probes
    assert set(SSLMethod.architecture_keys) <= set(method.architecture_keys)


def test_registry_holds_every_method_class():
    assert set(SHIPPED) == {"SimCLR", "SpectralContrastive", "BarlowTwins", "InfoNCE", "VICReg", "Supervised",
                            "SimSiam", "BYOL"}
    assert all(issubclass(cls, SSLMethod) and METHODS[name] is cls for name, cls in METHODS.items())


def test_loss_is_built_after_the_base_and_gathers_only_in_training():
    model = SimCLR(**TINY, temperature=0.3)
    assert model.criterion.temperature == 0.3 and model.criterion.gather_distributed is False
    model.criterion.gather_distributed = True  # as `setup` does under DDP
    with model.local_objective():
        assert model.criterion.gather_distributed is False
    assert model.criterion.gather_distributed is True
    z = torch.randn(6, 16)
    # loss_fn is the local form: it runs without a process group although the criterion gathers.
    torch.testing.assert_close(model.loss_fn(z, z.flip(0)), losses.nt_xent_loss(z, z.flip(0), temperature=0.3))


def test_optimizer_and_schedule_are_injectable():
    from functools import partial

    model = SimCLR(**TINY, optimizer=partial(torch.optim.AdamW, lr=1e-3, weight_decay=0.05),
                   lr_scheduler=partial(torch.optim.lr_scheduler.StepLR, step_size=10))
    assert model.weight_decay_coefficient() == 0.05
    assert "optimizer" not in model.hparams  # a Python object is no plain hyper-parameter
    model.backbone.requires_grad_(False)  # frozen parameters are not handed to the optimizer
    configured = model.configure_optimizers()
    optimizer, scheduler = configured["optimizer"], configured["lr_scheduler"]["scheduler"]
    assert isinstance(optimizer, torch.optim.AdamW) and optimizer.defaults["lr"] == 1e-3
    assert isinstance(scheduler, torch.optim.lr_scheduler.StepLR) and scheduler.optimizer is optimizer
    handed = {id(p) for group in optimizer.param_groups for p in group["params"]}
    assert handed == {id(p) for p in model.projector.parameters()}
    assert SimCLR(**TINY, weight_decay=1e-3).weight_decay_coefficient() == 1e-3


def test_plain_forms_a_checkpoint_keeps_rebuild_the_same_objects():
    """{class_path, init_args} of a backbone, optimizer or schedule (the CLI's hparams) build them."""
    hparams = {"backbone": {"class_path": "sslprobe.nn.ResNet12", "init_args": {"widths": [4, 8, 8, 8]}},
               "optimizer": {"class_path": "torch.optim.AdamW", "init_args": {"lr": 1e-3, "weight_decay": 0.05}},
               "lr_scheduler": {"class_path": "torch.optim.lr_scheduler.StepLR", "init_args": {"step_size": 3}},
               "hidden_dim": 16, "output_dim": 8}
    model = SimCLR(**hparams)
    assert model.backbone.feature_dim == 8 and model.weight_decay_coefficient() == 0.05
    assert model.hparams["optimizer"] == hparams["optimizer"]  # plain data, kept for the checkpoint
    configured = model.configure_optimizers()
    assert isinstance(configured["optimizer"], torch.optim.AdamW)
    assert configured["lr_scheduler"]["scheduler"].step_size == 3
    again = SimCLR(**model.hparams)  # as the random-init baseline and load_from_checkpoint build it
    assert again.state_dict().keys() == model.state_dict().keys()


def test_backbone_given_as_a_module():
    from sslprobe.nn import ResNet12

    backbone = ResNet12(widths=[4, 8, 8, 8])
    model = BarlowTwins(backbone=backbone, hidden_dim=16, output_dim=8)
    assert model.backbone is backbone and model(views(3)[0]).shape == (3, 8)
    assert "backbone" not in model.hparams
    with pytest.raises(ValueError, match="feature_dim"):
        SimCLR(backbone=nn.Conv2d(3, 4, 3))
    with pytest.raises(ValueError, match="backbone_kwargs apply to a named backbone"):
        SimCLR(backbone=backbone, backbone_kwargs={"widths": [4, 8, 8, 8]})


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
    (SimCLR, {"temperature": 0.0}, "SimCLR.temperature: expected a number > 0, got 0.0"),
    (InfoNCE, {"temperature": -1.0}, "InfoNCE.temperature: expected a number > 0, got -1.0"),
    (SpectralContrastive, {"mu": 0.0}, "SpectralContrastive.mu: expected a number > 0, got 0.0"),
    (VICReg, {"std_coeff": -1.0}, "VICReg.std_coeff: expected a number >= 0, got -1.0"),
    (SimCLR, {"lr": 0.0}, "SimCLR.lr: expected a number > 0, got 0.0"),
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
