"""The shared base of every method: two views -> backbone -> projector -> objective.

The method contract that callbacks and probes rely on:

- ``method.backbone`` maps images to features (B, feature_dim);
- ``method.projector`` maps features to embeddings (``nn.Identity()`` without projector); its
  last ``nn.Linear`` is the layer the landscape and theory probes study;
- ``method.objective(z1, z2)`` is the training objective on two batches of projector outputs;
  ``method.loss_fn(z1, z2)`` is the same objective on the local batch (never gathering across
  ranks), the form the probes evaluate;
- ``method.probe_unavailable(probe)`` says why a probe does not apply to the method (None when
  it does), e.g. BYOL's objective needs its target network's embeddings, not only (z1, z2);
- ``method.embed(images)`` gives frozen backbone features in eval mode;
- ``method.weight_decay_coefficient()`` is the L2 penalty γ the optimizer applies.

Writing a method: subclass `SSLMethod`, call ``super().__init__(**kwargs)`` first, then build the
loss (``self.criterion``) and any extra modules; override `objective` when the loss needs more
than ``criterion(z1, z2)`` (a predictor on ``embedding_dim``), `shared_step` when it needs more
than the two embeddings (a target network: `sslprobe.nn.target.MomentumTarget`, moved by its
``follow`` after each optimizer step). Every subclass is registered by its class name (`METHODS`).
"""

from __future__ import annotations

import contextlib
import functools
import warnings
from collections.abc import Iterator
from typing import Any, ClassVar, Literal

import torch
from lightning.pytorch import LightningModule
from lightning.pytorch.cli import LRSchedulerCallable, OptimizerCallable, instantiate_class
from lightning.pytorch.utilities import rank_zero_info
from torch import nn

from sslprobe.data.augment import normalize_images
from sslprobe.nn.backbones import BACKBONE_CHOICES, build_backbone
from sslprobe.nn.heads import Projector, build_projector
from sslprobe.options import (
    CheckedOptions,
    Momentum,
    NonNegativeFloat,
    NonNegativeInt,
    PositiveFloat,
    PositiveInt,
)
from sslprobe.schedules import WarmupCosine

BackboneName = Literal[BACKBONE_CHOICES]  # the backbone registry of `sslprobe.nn.backbones`
METHODS: dict[str, type[SSLMethod]] = {}  # every method class by name, filled as they are defined


class SSLMethod(CheckedOptions, LightningModule):
    """Base of the self-supervised methods and of the supervised baseline.

    Args:
        backbone: a name of the backbone registry (``resnet12 | resnet18 | vit_tiny``), or a module
            (in a config: ``class_path`` + ``init_args``) with a ``feature_dim`` attribute that maps
            images (B, 3, H, W) to features (B, feature_dim).
        backbone_kwargs: keyword arguments of a named backbone (e.g. ``widths`` for resnet12,
            ``patch_size`` for vit_tiny, ``norm: group`` for a batch-independent resnet12).
        image_size: side of the images (in a config it follows ``data.image_size``); a named
            backbone checks it and adapts to it (ResNet-18's stem, ViT's image size).
        projector: ``mlp`` (Linear-BN-ReLU-Linear), ``linear``, or ``null`` for none.
        hidden_dim, output_dim: projector sizes (paper: 512 hidden, 128 out).
        projector_batch_norm: BatchNorm between the projector's layers.
        lr: peak learning rate of SGD for the *global* batch (``data.batch_size``), reached
            after ``warmup_epochs`` and decayed by a cosine to ``min_lr`` at the last step.
        min_lr: final learning rate (with ``optimizer`` given: the schedule ends at the
            fraction ``min_lr / lr`` of that optimizer's learning rate).
        momentum: SGD momentum.
        weight_decay: L2 penalty γ on all parameters (γ/2 · |θ|² added to the objective).
        warmup_epochs: linear warm-up length.
        optimizer: another optimizer, the LightningCLI way (``class_path: torch.optim.AdamW`` +
            ``init_args``); it is given the trainable parameters and replaces SGD, ``lr``,
            ``momentum`` and ``weight_decay``. None: SGD as above.
        lr_scheduler: another schedule (``class_path`` + ``init_args``, stepped every step);
            None: linear warm-up and cosine as above.
        sync_batchnorm: convert BatchNorm to SyncBatchNorm when training on several GPU processes,
            so batch statistics are those of the global batch. Several CPU processes keep
            per-process BatchNorm (SyncBatchNorm needs GPUs): statistics of the local batch.
        channels_last: use the channels-last memory format for images and convolutions.
        compile: ``torch.compile`` the backbone.
        on_nonfinite: when the loss is NaN or infinite, ``stop`` (raise `NonFiniteLossError`
            before the step touches the weights) or ``skip_step`` (no update; counted in
            ``train/skipped_steps``).
    """

    # Hyper-parameters that define the network's modules: a checkpoint and a config must agree on
    # them (subclasses with their own modules add theirs).
    architecture_keys: ClassVar[tuple[str, ...]] = (
        "backbone", "backbone_kwargs", "image_size", "projector", "hidden_dim", "output_dim", "projector_batch_norm")
    # Probes (by `ProbeCallback.name`) that do not apply to the method, with the reason shown.
    unavailable_probes: ClassVar[dict[str, str]] = {}

    def __init_subclass__(cls, **kwargs):
        super().__init_subclass__(**kwargs)
        METHODS[cls.__name__] = cls

    def __init__(
        self,
        backbone: BackboneName | nn.Module = "resnet18",
        backbone_kwargs: dict[str, Any] | None = None,
        image_size: PositiveInt = 32,
        projector: Projector | None = "mlp",
        hidden_dim: PositiveInt = 512,
        output_dim: PositiveInt = 128,
        projector_batch_norm: bool = True,
        lr: PositiveFloat = 0.03,
        min_lr: NonNegativeFloat = 0.001,
        momentum: Momentum = 0.9,
        weight_decay: NonNegativeFloat = 5e-4,
        warmup_epochs: NonNegativeInt = 0,
        optimizer: OptimizerCallable | None = None,
        lr_scheduler: LRSchedulerCallable | None = None,
        sync_batchnorm: bool = True,
        channels_last: bool = False,
        compile: bool = False,
        on_nonfinite: Literal["stop", "skip_step"] = "stop",
    ):
        super().__init__()
        if min_lr > lr:  # each one's range is checked by `CheckedOptions`, from the annotations
            raise ValueError(f"need min_lr <= lr, got lr={lr}, min_lr={min_lr}")
        with warnings.catch_warnings():  # Lightning's advice to ignore a module argument: done just below
            warnings.filterwarnings("ignore", message=".*is an instance of `nn.Module`")
            self.save_hyperparameters()
        # Injected objects built in Python (not from a config) are not plain data: a checkpoint
        # keeps hyper-parameters only as plain types (weights-only loading), so they are left out.
        objects = [key for key in ("backbone", "optimizer", "lr_scheduler")
                   if not isinstance(self.hparams.get(key), (str, dict, type(None)))]
        if objects:
            self.save_hyperparameters(ignore=objects)
        # The plain form a checkpoint keeps ({class_path, init_args}) builds the same objects again,
        # so ``type(method)(**method.hparams)`` is the same architecture (the random-init baseline).
        if isinstance(backbone, dict):
            backbone = instantiate_class((), backbone)
        optimizer, lr_scheduler = (functools.partial(instantiate_class, init=value) if isinstance(value, dict)
                                   else value for value in (optimizer, lr_scheduler))
        if isinstance(backbone, nn.Module):
            if backbone_kwargs:
                raise ValueError("model.backbone_kwargs apply to a named backbone; a backbone module takes "
                                 "its own init_args")
            if not isinstance(getattr(backbone, "feature_dim", None), int):
                raise ValueError(f"a backbone module needs an int attribute feature_dim (its output width); "
                                 f"{type(backbone).__name__} has none")
            self.backbone = backbone
        else:
            self.backbone = build_backbone(backbone, image_size, **(backbone_kwargs or {}))
        self.projector = build_projector(
            projector, self.backbone.feature_dim, hidden_dim, output_dim, projector_batch_norm
        )
        self.optimizer_factory, self.scheduler_factory = optimizer, lr_scheduler
        self.criterion: nn.Module | None = None  # the method's loss, built by the subclass
        self._compiled_backbone = None
        self.skipped_steps = 0
        # (step, loss) of the first and of the latest finite training loss of this process, as tensors
        # (no device sync per step); the non-finite report compares them.
        self._first_loss: tuple[int, torch.Tensor] | None = None
        self._last_loss: tuple[int, torch.Tensor] | None = None

    # ------------------------------------------------------------ the contract
    def objective(self, z1: torch.Tensor, z2: torch.Tensor) -> torch.Tensor:
        """The training objective on two (B, D) batches of projector outputs (default: the criterion)."""
        if self.criterion is None:
            raise NotImplementedError(f"{type(self).__name__} sets no self.criterion and overrides no objective")
        return self.criterion(z1, z2)

    def loss_fn(self, z1: torch.Tensor, z2: torch.Tensor) -> torch.Tensor:
        """`objective` on the local batch, never gathering across ranks: what the probes evaluate."""
        with self.local_objective():
            return self.objective(z1, z2)

    @contextlib.contextmanager
    def local_objective(self) -> Iterator[None]:
        """Inside, every loss module of the method computes on the local batch only."""
        gathering = [m for m in self.modules() if getattr(m, "gather_distributed", False)]
        for module in gathering:
            module.gather_distributed = False
        try:
            yield
        finally:
            for module in gathering:
                module.gather_distributed = True

    @property
    def embedding_dim(self) -> int:
        """Width D of the embeddings: the projector's output, or the features without projector."""
        return self.hparams.output_dim if self.hparams.projector else self.backbone.feature_dim

    def probe_unavailable(self, probe: str) -> str | None:
        """Why probe ``probe`` (a `ProbeCallback.name`) does not apply to this method; None when it does."""
        return self.unavailable_probes.get(probe)

    def weight_decay_coefficient(self) -> float:
        """The L2 coefficient γ of the optimizer (γ/2 · |θ|² in the objective the probes evaluate)."""
        if self.optimizer_factory is None:
            return float(self.hparams.weight_decay)
        optimizer = self.optimizer_factory([nn.Parameter(torch.zeros(1))])
        return float(optimizer.param_groups[0].get("weight_decay", 0.0))

    def trainable_parameters(self) -> list[nn.Parameter]:
        """What the optimizer updates (a target network's parameters are not among them)."""
        return [p for p in self.parameters() if p.requires_grad]

    @torch.no_grad()
    def embed(self, images: torch.Tensor) -> torch.Tensor:
        """Backbone features (B, feature_dim) in eval mode; uint8 images are normalised first."""
        was_training = self.training
        self.eval()
        if images.dtype == torch.uint8:
            images = normalize_images(images)
        features = self.features(images.to(self.device))
        self.train(was_training)
        return features

    # ---------------------------------------------------------------- forward
    def prepare(self, images: torch.Tensor) -> torch.Tensor:
        """Normalised images in the parameters' dtype and the configured memory format."""
        images = images.to(self.dtype)  # e.g. float64 under precision 64-true; autocast handles bf16/16
        if self.hparams.channels_last:
            images = images.contiguous(memory_format=torch.channels_last)
        return images

    def features(self, images: torch.Tensor) -> torch.Tensor:
        """Backbone features (B, feature_dim) of normalised images, in the parameters' dtype."""
        backbone = self._compiled_backbone if self._compiled_backbone is not None else self.backbone
        return backbone(self.prepare(images))

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        """Embeddings (B, D) of a batch of normalised images."""
        return self.projector(self.features(images))

    def setup(self, stage: str) -> None:
        if self._trainer is not None and self.trainer.world_size > 1:
            # Under DDP the objective is that of the global batch: losses gather across ranks.
            for module in self.modules():
                if hasattr(module, "gather_distributed"):
                    module.gather_distributed = True
        if self.hparams.channels_last:
            self.to(memory_format=torch.channels_last)
        if self.hparams.compile and self._compiled_backbone is None:
            # Outside the module tree: the wrapper shares the backbone's parameters, and registering it
            # would add a second copy of them under other names to every checkpoint.
            object.__setattr__(self, "_compiled_backbone", torch.compile(self.backbone))

    def configure_model(self) -> None:
        if self._trainer is None or self.trainer.world_size == 1 or not self.hparams.sync_batchnorm:
            return
        if not any(isinstance(module, (nn.BatchNorm1d, nn.BatchNorm2d, nn.BatchNorm3d)) for module in self.modules()):
            return
        if self.trainer.strategy.root_device.type == "cpu":
            # torch's SyncBatchNorm runs on GPUs only; CPU processes normalise by their local batch.
            world = self.trainer.world_size
            rank_zero_info(
                f"sslprobe: BatchNorm stays per-process on CPU (SyncBatchNorm needs GPUs): each of the {world} "
                f"processes normalises by the statistics of its own data.batch_size / {world} images"
            )
            return
        nn.SyncBatchNorm.convert_sync_batchnorm(self)

    def on_load_checkpoint(self, checkpoint: dict) -> None:
        # Checkpoints written before the datamodule was ImageDataModule keep its state (the data
        # position of exact resume) under the former class name; Lightning restores it after this hook.
        if "CIFAR10DataModule" in checkpoint and "ImageDataModule" not in checkpoint:
            checkpoint["ImageDataModule"] = checkpoint.pop("CIFAR10DataModule")

    # --------------------------------------------------------------- training
    def shared_step(self, batch) -> torch.Tensor:
        """The loss of a batch ``(view1, view2, labels)``: gathered in training, local in validation."""
        view1, view2, _ = batch
        z1, z2 = self(view1), self(view2)
        if self.training:
            return self.objective(z1, z2)
        with self.local_objective():
            return self.objective(z1, z2)

    def training_step(self, batch, batch_idx: int) -> torch.Tensor | None:
        loss = self.shared_step(batch)
        finite = self.trainer.strategy.reduce_boolean_decision(bool(torch.isfinite(loss.detach())), all=True)
        if not finite:
            if self.hparams.on_nonfinite == "skip_step":
                self.skipped_steps += 1
                self.log("train/skipped_steps", float(self.skipped_steps))
                return None
            raise NonFiniteLossError(self.nonfinite_report(loss))
        self._last_loss = (self.global_step, loss.detach())
        self._first_loss = self._first_loss or self._last_loss
        self.log("train/loss", loss, prog_bar=True)
        self.log("train/lr", self.optimizers().param_groups[0]["lr"])
        return loss

    def nonfinite_report(self, loss: torch.Tensor) -> str:
        """One line: where the loss became non-finite and what is left to resume from."""
        bad = next((name for name, p in self.named_parameters() if not torch.isfinite(p).all()), None)
        cause = (f"parameter {bad} is already non-finite" if bad
                 else "all parameters finite (the loss itself overflowed)")
        checkpoint = getattr(self.trainer.checkpoint_callback, "last_model_path", "") or "none written yet"
        return (f"non-finite loss ({loss.item()}) from {type(self.criterion).__name__} at step "
                f"{self.global_step}, epoch {self.current_epoch}; {cause}; {self.likely_cause()}weights not "
                f"updated; last good checkpoint: {checkpoint} (set model.init_args.on_nonfinite: skip_step to "
                "skip such steps)")

    def likely_cause(self) -> str:
        """What the losses before the non-finite one suggest (empty when they suggest nothing), with
        the method's `divergence_hint`; ends with ``"; "``."""
        if self._first_loss is None or self._last_loss is None:
            return ""
        (first_step, first), (last_step, last) = ((step, value.item()) for step, value in
                                                  (self._first_loss, self._last_loss))
        if not abs(last) > 10 * max(abs(first), 1.0):
            return ""
        hint = self.divergence_hint() or "a lower model.init_args.lr (or a warm-up) may keep it stable"
        return (f"likely cause: the optimisation diverged (loss {first:.3g} at step {first_step}, {last:.3g} at "
                f"step {last_step}); {hint}; ")

    def divergence_hint(self) -> str | None:
        """Why this method's training may diverge and what to change (None: nothing specific to say)."""
        return None

    def validation_step(self, batch, batch_idx: int) -> None:
        self.log("val/loss", self.shared_step(batch), prog_bar=True, sync_dist=True)

    def test_step(self, batch, batch_idx: int) -> None:
        self.log("test/loss", self.shared_step(batch), sync_dist=True)

    def configure_optimizers(self):
        hp = self.hparams
        if self.optimizer_factory is None:
            optimizer = torch.optim.SGD(self.trainable_parameters(), lr=hp.lr, momentum=hp.momentum,
                                        weight_decay=hp.weight_decay)
        else:
            optimizer = self.optimizer_factory(self.trainable_parameters())
        if self.scheduler_factory is not None:
            scheduler = self.scheduler_factory(optimizer)
        else:
            total = max(1, int(self.trainer.estimated_stepping_batches))
            per_epoch = max(1, total // max(1, self.trainer.max_epochs or 1))
            warmup = min(total - 1, hp.warmup_epochs * per_epoch)
            scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, WarmupCosine(warmup, total, hp.min_lr / hp.lr))
        return {"optimizer": optimizer, "lr_scheduler": {"scheduler": scheduler, "interval": "step"}}


class NonFiniteLossError(FloatingPointError):
    """The training loss became NaN or infinite."""
