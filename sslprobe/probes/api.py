"""Probe any network: `probe` measures plain modules on a datamodule and returns typed results.

One entry point runs every probe, whoever asks: `measure` runs one probe on one model (the
method contract of `sslprobe.methods.SSLMethod`, or `ProbedModel` around plain modules), times
it, logs it and keeps its typed result; the probe callbacks during ``fit``, ``python -m sslprobe
probe`` on a run's checkpoint and on a foreign model, and `probe` from Python all go through it,
so a number is computed and written one way.

The probes themselves (their options, files and figures) are the probe callbacks'
(`sslprobe.callbacks.PROBE_CALLBACKS`); the maths they run is in this package.
"""

from __future__ import annotations

import contextlib
import hashlib
import tempfile
import time
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from types import SimpleNamespace

import torch
from torch import nn

from sslprobe.probes.results import ProbeResults

PROBE_NAMES = ("spectrum", "linear", "knn", "landscape", "theory")  # `probe`'s ``what``: the probes' names
NEEDS_OBJECTIVE = ("landscape", "theory")  # probes of the objective around the projector's last layer


def _last_linear(module: nn.Module) -> nn.Linear | None:
    found = None
    for child in module.modules():
        if isinstance(child, nn.Linear):
            found = child
    return found


def architecture_fingerprint(module: nn.Module) -> str:
    """``ClassName#<sha1 of parameter names and shapes>``: the same for two modules of one architecture."""
    layout = ";".join(f"{name}:{tuple(t.shape)}" for name, t in module.state_dict().items())
    return f"{type(module).__name__}#{hashlib.sha1(layout.encode()).hexdigest()[:12]}"


class ProbedModel(nn.Module):
    """Plain modules behind the method contract the probes read (`sslprobe.methods.base`).

    Args:
        backbone: images (B, 3, H, W), normalised, -> features (B, feature_dim).
        projector: features -> embeddings (None: embeddings are the features); its last
            ``nn.Linear`` is the layer the landscape and theory probes study.
        objective: the training loss on two batches of embeddings, ``objective(z1, z2)`` (a loss
            module of `sslprobe.losses`); None: the landscape and theory probes decline.
        weight_decay: the L2 coefficient γ the objective included in training (landscape and
            theory add γ/2·|W|² only where asked).
        name: the architecture's name (the random-init cache key); default: `architecture_fingerprint`.
        rebuild: builds a fresh backbone of the same architecture from the global RNG (the
            random-init baseline); default: a copy with every layer's ``reset_parameters``.
    """

    def __init__(
        self,
        backbone: nn.Module,
        projector: nn.Module | None = None,
        objective: Callable | None = None,
        *,
        weight_decay: float = 0.0,
        name: str | None = None,
        rebuild: Callable[[], nn.Module] | None = None,
    ):
        super().__init__()
        self.backbone = backbone
        self.projector = projector if projector is not None else nn.Identity()
        self.criterion = objective
        self.weight_decay = float(weight_decay)
        self.rebuild = rebuild
        named = name or architecture_fingerprint(backbone)
        # what the random-init baseline's cache is keyed on (as a method's hyper-parameters are)
        self.hparams = {"backbone": named if rebuild is not None else f"{named} (reset_parameters)",
                        "backbone_kwargs": None}

    @property
    def device(self) -> torch.device:
        return next(self.parameters()).device

    @property
    def dtype(self) -> torch.dtype:
        return next(self.parameters()).dtype

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        """Embeddings (B, D) of normalised images."""
        return self.projector(self.backbone(images.to(device=self.device, dtype=self.dtype)))

    @torch.no_grad()
    def embed(self, images: torch.Tensor) -> torch.Tensor:
        """Backbone features (B, feature_dim) in eval mode; uint8 images are normalised first."""
        from sslprobe.data.augment import normalize_images

        was_training = self.training
        self.eval()
        if images.dtype == torch.uint8:
            images = normalize_images(images)
        features = self.backbone(images.to(device=self.device, dtype=self.dtype))
        self.train(was_training)
        return features

    def loss_fn(self, z1: torch.Tensor, z2: torch.Tensor) -> torch.Tensor:
        """The objective on the local batch (a loss that gathers across ranks is told not to)."""
        gathering = getattr(self.criterion, "gather_distributed", False)
        if gathering:
            self.criterion.gather_distributed = False
        try:
            return self.criterion(z1, z2)
        finally:
            if gathering:
                self.criterion.gather_distributed = True

    def weight_decay_coefficient(self) -> float:
        return self.weight_decay

    def probe_unavailable(self, probe: str) -> str | None:
        """Why probe ``probe`` does not apply: the landscape and theory need a projector and an objective."""
        if probe not in NEEDS_OBJECTIVE:
            return None
        if _last_linear(self.projector) is None:
            return "no projector with an nn.Linear was given (the probe rescales its last linear layer)"
        if self.criterion is None:
            return "no objective was given (the probe evaluates the training loss around the last layer)"
        return None

    def reinitialized(self) -> ProbedModel:
        """The same architecture drawn again from the global RNG (seed it first): the random-init baseline."""
        from sslprobe.nn.foreign import reinitialize

        backbone = self.rebuild() if self.rebuild is not None else reinitialize(self.backbone)
        projector = None if isinstance(self.projector, nn.Identity) else reinitialize(self.projector)
        fresh = ProbedModel(backbone, projector, self.criterion, weight_decay=self.weight_decay, rebuild=self.rebuild)
        fresh.hparams = dict(self.hparams)
        return fresh


def measure(probe, model: nn.Module, data, run_dir: Path, epoch: int, log_to=None, log_epoch: int | None = None
            ) -> dict:
    """Run ``probe`` (a probe callback) on ``model`` once: files under ``run_dir/probes``, scalars back.

    The one place every probe is run, whoever schedules it. ``probe.last_result`` holds the
    typed result afterwards (None when the probe declined).

    Args:
        probe: a `sslprobe.callbacks.ProbeCallback`.
        model: a method, or a `ProbedModel`.
        data: the datamodule (the probe data contract).
        run_dir: the folder that receives ``probes/``.
        epoch: epochs trained, counted from 1 (0: the initial network); names files and titles.
        log_to: an object with ``loggers``, ``global_step`` and ``datamodule`` (a Trainer), or None.
        log_epoch: the epoch column logged (Lightning's 0-based index); default ``epoch - 1``.

    Returns:
        The logged scalars (``<name>/<metric>``, ``<name>/seconds``), figures removed.
    """
    probe.last_result = None
    start = time.perf_counter()
    with torch.autocast(device_type=model.device.type, enabled=False):  # probes in the weights' precision
        scalars = probe.measure_or_explain(model, data, Path(run_dir), epoch)
    scalars[f"{probe.name}/seconds"] = time.perf_counter() - start
    if log_to is not None:
        probe.log_results(log_to, scalars, max(epoch - 1, 0) if log_epoch is None else log_epoch)
    scalars.pop("figures", None)
    scalars.pop("per_class_table", None)
    return scalars


def build_probes(what: Iterable[str], settings: Mapping[str, Mapping] | None = None) -> list:
    """The probe callbacks named in ``what`` (`PROBE_NAMES`), built with ``settings[name]``."""
    from sslprobe.callbacks import PROBE_CALLBACKS

    by_name = {cls.name: cls for cls in PROBE_CALLBACKS.values()}
    wanted = list(dict.fromkeys(what))
    unknown = [name for name in wanted if name not in by_name]
    if unknown or not wanted:
        raise ValueError(f"unknown probe(s) {unknown}; valid: {', '.join(by_name)}")
    settings = dict(settings or {})
    extra = [name for name in settings if name not in wanted]
    if extra:
        raise ValueError(f"settings for probe(s) {extra} that are not in what={wanted}")
    return [by_name[name](**dict(settings.get(name) or {})) for name in wanted]


def collect(probe, results: ProbeResults, scalars: dict, reason: str | None = None) -> None:
    """Put ``probe``'s typed result and scalars into ``results`` (``reason``: why it declined, if it did)."""
    results.metrics.update({k: v for k, v in scalars.items() if isinstance(v, (int, float))})
    if scalars.get(f"{probe.name}/applicable") == 0.0 and probe.last_result is None:
        results.declined[probe.name] = reason or f"does not apply (probes/{probe.name}_epoch1.json says why)"
        return
    if probe.name == "spectrum":
        results.spectrum = probe.last_result
    elif probe.name == "linear":
        results.linear, results.linear_random_init = probe.last_result, getattr(probe, "last_random_init", None)
    elif probe.name == "knn":
        results.knn = probe.last_result
    elif probe.name == "landscape":
        results.landscape, results.landscape_verdict = probe.last_result, getattr(probe, "last_verdict", None)
    elif probe.name == "theory":
        results.theory = probe.last_result


def probe(
    backbone: nn.Module,
    data,
    what: Iterable[str] = ("spectrum", "linear", "knn"),
    projector: nn.Module | None = None,
    objective: Callable | None = None,
    out: str | Path | None = None,
    *,
    settings: Mapping[str, Mapping] | None = None,
    seed: int = 0,
    weight_decay: float = 0.0,
    device: str | torch.device | None = None,
    name: str | None = None,
    rebuild: Callable[[], nn.Module] | None = None,
    loggers: Iterable = (),
) -> ProbeResults:
    """Measure a network trained anywhere: its spectrum, linear and kNN read-out, landscape, theory.

    Args:
        backbone: images (B, 3, H, W) -> features (B, feature_dim), with the trained weights.
        data: a datamodule of `sslprobe.data` (e.g. ``ImageDataModule(root="data")``); its
            training subset is drawn here if it has none yet.
        what: probe names of `PROBE_NAMES`: ``spectrum``, ``linear`` (linear and kNN read-out
            beside the random-init baseline), ``knn`` (the kNN monitor's score), ``landscape``
            and ``theory`` (these two need ``projector`` and ``objective``, else they decline).
        projector: features -> embeddings (None: none).
        objective: the training loss ``objective(z1, z2)``, e.g. ``sslprobe.losses.NTXentLoss(0.5)``.
        out: a folder that receives ``probes/`` with the same files and figures as a run's (None:
            nothing is kept). The random-init baseline is cached in ``out/random_init_cache``.
        settings: per probe name, its options (those of its callback, e.g. ``{"linear": {"epochs":
            20, "train_size": 5000}}``).
        seed: seed of the random-init baseline's weights.
        weight_decay: the objective's L2 coefficient (see `ProbedModel`).
        device: where to run (default: the backbone's device).
        name: the architecture's name, e.g. ``torchvision:resnet18`` (the baseline's cache key).
        rebuild: builds a fresh backbone of the same architecture (the baseline); default: every
            layer's ``reset_parameters`` on a copy.
        loggers: Lightning loggers that receive the scalars and figures (e.g. a ``WandbLogger``).

    Returns:
        `ProbeResults`: one typed result per probe that ran, the reasons of those that declined,
        and every scalar (``results.metrics``).
    """
    probes = build_probes(what, settings)
    model = ProbedModel(backbone, projector, objective, weight_decay=weight_decay, name=name, rebuild=rebuild)
    if device is not None:
        model = model.to(device)
    log_to = SimpleNamespace(loggers=list(loggers), global_step=0, datamodule=data)
    results = ProbeResults(out=Path(out) if out is not None else None)
    with contextlib.ExitStack() as stack:
        run_dir = Path(out) if out is not None else Path(stack.enter_context(tempfile.TemporaryDirectory()))
        if getattr(data, "subset", None) is None:
            data.setup_for_run(run_dir)  # loads the data; a subset.json already in ``out`` is checked and used
        run_dir.mkdir(parents=True, exist_ok=True)
        for each in probes:
            if getattr(each, "random_init_seed", 0) is None:
                each.random_init_seed = seed
            if hasattr(each, "random_init_seed"):
                each.cache_dir = run_dir / "random_init_cache"
            scalars = measure(each, model, data, run_dir, epoch=1, log_to=log_to, log_epoch=0)
            collect(each, results, scalars, model.probe_unavailable(each.name))
    return results
