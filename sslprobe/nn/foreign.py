"""Networks trained anywhere: a named architecture, its weights read safely and mapped onto it.

An architecture is named by a spec string (`build_architecture`):

- a name of sslprobe's backbone registry (``resnet12``, ``resnet18``, ``vit_tiny``);
- ``timm:<name>``: any timm model, created without its classifier (features only);
- ``torchvision:<name>``: a torchvision model with its classifier replaced by ``nn.Identity``
  (``cifar_stem: true`` gives a ResNet the 3×3 stride-1 stem without max-pool);
- a ``class_path`` (``package.module.Class``) built with keyword arguments.

A weights file (`load_weights`) is read with ``torch.load(..., weights_only=True)``, so a pickled
payload never runs; it may be a plain ``state_dict``, a Lightning checkpoint of any library, or a
dict holding one under ``state_dict`` / ``model``. The key prefix that best matches the
architecture (leading ``module.``, ``backbone.``, ``encoder.``, ``model.``, ... or a given one) is
stripped; missing and unexpected keys are reported, and a shape mismatch or a file whose keys
mostly do not match is refused in one line.
"""

from __future__ import annotations

import copy
import hashlib
import importlib
import pickle
from dataclasses import dataclass, field
from pathlib import Path

import torch
from torch import nn

from sslprobe.nn.backbones import BACKBONES, TimmBackbone, build_backbone
from sslprobe.nn.heads import build_projector

BACKBONE_PREFIXES = ("module", "backbone", "encoder", "model", "net", "network", "student", "online")
PROJECTOR_PREFIXES = ("module", "model", "projector", "projection_head", "projection", "head", "student", "online")
CLASSIFIER_NAMES = ("fc", "classifier", "head", "heads")  # torchvision's classifier attributes
MIN_MATCHED_FRACTION = 0.5  # a file matching fewer of the architecture's tensors is refused
STATE_DICT_KEYS = ("state_dict", "model", "model_state_dict", "module")


class WeightsError(ValueError):
    """A weights file that cannot be mapped onto the architecture; the message is one line."""


class FeatureBackbone(nn.Module):
    """Any network with its classifier removed, as a backbone: ``forward(images) -> (B, feature_dim)``.

    Args:
        model: the network; ``forward`` must return (B, feature_dim) features.
        feature_dim: its output width.
    """

    def __init__(self, model: nn.Module, feature_dim: int):
        super().__init__()
        self.model = model
        self.feature_dim = int(feature_dim)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        features = self.model(images)
        return features.flatten(1)  # (B, feature_dim)


def _torchvision_features(name: str, cifar_stem: bool = False, **kwargs) -> nn.Module:
    import torchvision

    if name not in torchvision.models.list_models():
        raise ValueError(f"unknown torchvision model {name!r} (torchvision.models.list_models() has them)")
    model = torchvision.models.get_model(name, weights=None, **kwargs)
    if cifar_stem:
        if not isinstance(getattr(model, "conv1", None), nn.Conv2d):
            raise ValueError(f"cifar_stem applies to torchvision ResNets; {name} has no conv1")
        model.conv1 = nn.Conv2d(3, model.conv1.out_channels, kernel_size=3, stride=1, padding=1, bias=False)
        model.maxpool = nn.Identity()
    return model


def _remove_classifier(model: nn.Module) -> tuple[nn.Module, int | None]:
    """Replace the last classifier attribute of a torchvision model by ``nn.Identity``; its input width."""
    for name in CLASSIFIER_NAMES:
        head = getattr(model, name, None)
        if isinstance(head, nn.Module) and not isinstance(head, nn.Identity):
            linears = [m for m in head.modules() if isinstance(m, nn.Linear)]
            setattr(model, name, nn.Identity())
            return model, (linears[0].in_features if linears else None)
    return model, None


def _import_class(class_path: str) -> type:
    module_name, _, class_name = class_path.rpartition(".")
    try:
        return getattr(importlib.import_module(module_name), class_name)
    except (ImportError, AttributeError, ValueError):
        raise ValueError(f"no class {class_path!r} to import") from None


def _infer_feature_dim(model: nn.Module, image_size: int = 32) -> int:
    with torch.no_grad():
        was_training = model.training
        model.eval()
        out = model(torch.zeros(2, 3, image_size, image_size))
        model.train(was_training)
    return int(out.flatten(1).shape[1])


@dataclass
class Architecture:
    """A built architecture: ``network`` (what the weights map onto) and ``backbone`` (its features).

    Attributes:
        spec: the spec it was built from, e.g. ``torchvision:resnet18``.
        kwargs: the keyword arguments it was built with.
        network: the module whose ``state_dict`` the weights file is matched against.
        backbone: ``network`` behind the backbone contract (``feature_dim``).
    """

    spec: str
    kwargs: dict
    network: nn.Module
    backbone: nn.Module

    def rebuild(self) -> nn.Module:
        """A new backbone of the same architecture, initialised from the global RNG (seed it first)."""
        return build_architecture(self.spec, self.kwargs).backbone


def describe_backbone_choices() -> str:
    return (f"a registered name ({', '.join(BACKBONES)}), timm:<name>, torchvision:<name>, "
            "or a class_path (package.module.Class)")


def build_architecture(spec: str, kwargs: dict | None = None) -> Architecture:
    """The architecture named by ``spec`` (module docstring), randomly initialised.

    Raises:
        ValueError: an unknown name (one line), or arguments that do not fit it.
    """
    kwargs = dict(kwargs or {})
    kind, _, name = spec.partition(":")
    try:
        if spec in BACKBONES:
            backbone = build_backbone(spec, **kwargs)
            return Architecture(spec, kwargs, backbone, backbone)
        if kind == "timm" and name:
            import timm

            if not timm.is_model(name):
                raise ValueError(f"unknown timm model {name!r} (timm.list_models() has them)")
            model = timm.create_model(name, pretrained=False, num_classes=0, **kwargs)
            return Architecture(spec, kwargs, model, TimmBackbone(model))
        if kind == "torchvision" and name:
            model, width = _remove_classifier(_torchvision_features(name, **kwargs))
            return Architecture(spec, kwargs, model, FeatureBackbone(model, width or _infer_feature_dim(model)))
        if "." in spec and ":" not in spec:
            model = _import_class(spec)(**kwargs)
            width = getattr(model, "feature_dim", None)
            backbone = model if isinstance(width, int) else FeatureBackbone(model, _infer_feature_dim(model))
            return Architecture(spec, kwargs, model, backbone)
    except TypeError as error:
        raise ValueError(f"--backbone {spec}: its arguments do not fit ({error})") from None
    raise ValueError(f"unknown backbone {spec!r}; give {describe_backbone_choices()}")


def build_head(spec: str, in_dim: int, kwargs: dict | None = None) -> nn.Module:
    """A projector: ``mlp`` / ``linear`` (sslprobe's heads; ``hidden_dim``, ``output_dim``,
    ``batch_norm``) or a class_path built with ``kwargs``."""
    kwargs = dict(kwargs or {})
    if spec in ("mlp", "linear"):
        names = {"hidden_dim": "hidden_dim", "output_dim": "out_dim", "batch_norm": "batch_norm"}
        unknown = sorted(set(kwargs) - set(names))
        if unknown:
            raise ValueError(f"--projector {spec}: unknown argument(s) {unknown}; valid: {', '.join(names)}")
        try:
            return build_projector(spec, in_dim, **{names[k]: v for k, v in kwargs.items()})
        except TypeError as error:
            raise ValueError(f"--projector {spec}: its arguments do not fit ({error})") from None
    if "." in spec:
        try:
            return _import_class(spec)(**kwargs)
        except TypeError as error:
            raise ValueError(f"--projector {spec}: its arguments do not fit ({error})") from None
    raise ValueError(f"unknown projector {spec!r}; give mlp, linear or a class_path")


def file_sha256(path: str | Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def read_state_dict(path: str | Path) -> dict[str, torch.Tensor]:
    """The tensors of a weights file, read with ``weights_only=True`` (nothing in it runs).

    Accepts a plain ``state_dict``, a Lightning checkpoint (``state_dict``) or a dict holding one
    under ``model`` (or ``model_state_dict``, ``module``).

    Raises:
        WeightsError: the file is missing, refers to code, or holds no tensors (one line).
    """
    path = Path(path)
    if not path.is_file():
        raise WeightsError(f"--weights {path} does not exist")
    try:
        payload = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError:
        try:
            unsafe = torch.serialization.get_unsafe_globals_in_checkpoint(path)
        except Exception:
            unsafe = []
        named = f"it refers to {', '.join(unsafe)}" if unsafe else "it is not a plain tensor file"
        raise WeightsError(f"--weights {path} refused: {named}, which loading only tensors cannot read (loading "
                           "it could run code); save its state_dict alone if you trust it") from None
    except Exception as error:
        raise WeightsError(f"--weights {path} is not a readable weights file ({type(error).__name__})") from None
    for _ in range(3):  # a checkpoint may nest the state_dict once or twice
        if isinstance(payload, dict) and not any(isinstance(v, torch.Tensor) for v in payload.values()):
            inner = next((payload[k] for k in STATE_DICT_KEYS if isinstance(payload.get(k), dict)), None)
            if inner is None:
                break
            payload = inner
    tensors = {k: v for k, v in payload.items() if isinstance(v, torch.Tensor)} if isinstance(payload, dict) else {}
    if not tensors:
        raise WeightsError(f"--weights {path} holds no tensors (nor a state_dict / model entry of them)")
    return tensors


def candidate_prefixes(keys, tokens: tuple[str, ...]) -> set[str]:
    """Every leading chain of ``tokens`` among ``keys`` ("", "module.", "module.encoder.", ...)."""
    found = {""}
    for key in keys:
        parts, prefix = key.split("."), ""
        for part in parts[:-1]:
            if part not in tokens:
                break
            prefix += part + "."
            found.add(prefix)
    return found


@dataclass
class WeightsReport:
    """What `load_weights` did: the prefix stripped, how many tensors loaded, what was left out."""

    prefix: str
    loaded: int
    expected: int
    missing: list[str] = field(default_factory=list)
    unexpected: list[str] = field(default_factory=list)

    def summary(self, what: str) -> str:
        parts = [f"{what}: loaded {self.loaded} of {self.expected} tensors (prefix {self.prefix!r})"]
        if self.missing:
            parts.append(f"missing {len(self.missing)}: {', '.join(self.missing[:5])}"
                         + (" ..." if len(self.missing) > 5 else ""))
        if self.unexpected:
            parts.append(f"unexpected {len(self.unexpected)}: {', '.join(self.unexpected[:5])}"
                         + (" ..." if len(self.unexpected) > 5 else ""))
        return "; ".join(parts)


def _counted(keys) -> list[str]:
    return [k for k in keys if not k.endswith("num_batches_tracked")]  # older files lack these buffers


def load_weights(
    module: nn.Module,
    state_dict: dict[str, torch.Tensor],
    *,
    prefix: str | None = None,
    tokens: tuple[str, ...] = BACKBONE_PREFIXES,
    name: str = "model",
    source: str = "--weights",
    min_fraction: float = MIN_MATCHED_FRACTION,
) -> WeightsReport:
    """Load the tensors of ``state_dict`` under ``prefix`` into ``module``.

    Without ``prefix``, the leading chain of ``tokens`` that matches most of ``module``'s keys is
    used. Keys outside the prefix are ignored (they belong to other parts, e.g. the projector).

    Raises:
        WeightsError: a tensor's shape differs from the module's (naming the key), or fewer than
            ``min_fraction`` of the module's tensors are found (one line each).
    """
    own = module.state_dict()
    counted = _counted(own)
    if prefix is None:
        prefix = max(sorted(candidate_prefixes(state_dict, tokens), key=len),
                     key=lambda p: sum(p + k in state_dict for k in counted))
    selected = {k[len(prefix):]: v for k, v in state_dict.items() if k.startswith(prefix)}
    matched = [k for k in counted if k in selected]
    for key in matched:
        if tuple(selected[key].shape) != tuple(own[key].shape):
            raise WeightsError(f"{source}: {prefix}{key} has shape {tuple(selected[key].shape)} in the file but "
                               f"{tuple(own[key].shape)} in {name}")
    if len(matched) < min_fraction * max(len(counted), 1):
        raise WeightsError(f"{source}: only {len(matched)} of the {len(counted)} tensors of {name} are in the file "
                           f"(best prefix {prefix!r}); not weights of this architecture? (a prefix: "
                           "--weights_prefix / --projector_prefix)")
    result = module.load_state_dict({k: v for k, v in selected.items() if k in own}, strict=False)
    return WeightsReport(prefix, len(matched), len(counted), _counted(result.missing_keys),
                         sorted(k for k in selected if k not in own))


def reinitialize(module: nn.Module) -> nn.Module:
    """A copy of ``module`` with every parameter drawn again by its layers' ``reset_parameters``
    (and normalisation statistics reset), from the global RNG: seed it first."""
    fresh = copy.deepcopy(module)
    for layer in fresh.modules():
        if hasattr(layer, "reset_parameters"):
            layer.reset_parameters()
        if hasattr(layer, "reset_running_stats"):
            layer.reset_running_stats()
    return fresh
