"""`LandscapeProbe`: the training objective around the trained last layer (the paper's Fig. 2)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import torch
from lightning.pytorch import LightningModule
from torch import nn

from sslprobe.callbacks.base import ProbeCallback, evaluation_mode, probes_dir, save_figure
from sslprobe.nn.heads import last_linear
from sslprobe.options import AtLeastTwoInt, NonNegativeInt, PositiveFloat, PositiveInt
from sslprobe.probes.landscape import LandscapeOptions, grid_local_minima, landscape_report, loss_landscape


class ProbeTargetError(ValueError):
    """The layer to rescale cannot be probed."""


def resolve_target(method: nn.Module, target: str | None) -> tuple[nn.Linear, nn.Module]:
    """The linear layer to rescale and the modules that follow it up to the embedding.

    ``target`` None means the projector's last ``nn.Linear``. A named target must be an
    ``nn.Linear`` that is the projector itself or a direct child of an ``nn.Sequential``
    projector; what follows it in the projector is applied after rescaling.
    """
    projector = method.projector
    if target is None:
        layer = last_linear(projector)
        if layer is None:
            raise ProbeTargetError(
                "LandscapeProbe needs an nn.Linear to rescale but this model has no projector "
                "(projector: null); train with a projector or set the probe's target to a linear layer"
            )
    else:
        try:
            layer = method.get_submodule(target)
        except AttributeError:
            raise ProbeTargetError(
                f"LandscapeProbe target {target!r} is not a module of {type(method).__name__}"
            ) from None
        if not isinstance(layer, nn.Linear):
            raise ProbeTargetError(f"LandscapeProbe target {target!r} is a {type(layer).__name__}, not an nn.Linear")
    if layer is projector:
        return layer, nn.Identity()
    if isinstance(projector, nn.Sequential):
        children = list(projector.children())
        for index, child in enumerate(children):
            if child is layer:
                return layer, nn.Sequential(*children[index + 1 :])
    raise ProbeTargetError(f"LandscapeProbe target {target!r} must be the projector or one of its direct layers")


def layer_inputs(method: LightningModule, layer: nn.Linear, images: torch.Tensor, batch_size: int = 512
                 ) -> torch.Tensor:
    """Inputs of ``layer`` (N, d_in) when the model embeds ``images`` (one forward pass), detached."""
    captured = []
    hook = layer.register_forward_hook(lambda module, inputs, output: captured.append(inputs[0].detach()))
    try:
        for start in range(0, images.shape[0], batch_size):
            method(images[start : start + batch_size].to(method.device))
    finally:
        hook.remove()
    return torch.cat(captured)


class LandscapeProbe(ProbeCallback):
    """The loss as a function of rescalings of the projector's last linear layer.

    On a fixed probe set (``num_images`` training-subset images, two views drawn from ``seed``),
    the backbone and the layers before the target run once; then the objective
    ``method.loss_fn`` is evaluated, batched, for ``W -> a·W`` (``grid_points`` values of a in
    [0, ``grid_max``]) and for the larger / smaller half of W's singular values scaled by
    (r1, r2) on a ``grid_points`` × ``grid_points`` grid (the paper's Fig. 2). The loss is
    computed per batch of ``batch_size`` (default: the training batch) and averaged, as the
    training objective is. Eval mode: BatchNorm layers use their running statistics.

    Writes ``probes/landscape_epoch<E>.npz`` (``a``, ``loss_1d``, ``r1``, ``r2``, ``loss_2d``,
    ``reference_loss``), ``probes/landscape_epoch<E>.json`` (minimum, whether the origin is a
    local maximum along a, scale invariance) and the two figures.

    Args:
        every_n_epochs: also measure every n epochs (default: only at the end of fit).
        num_images: probe-set size.
        grid_points: points per axis; at least 2.
        grid_max: largest scale factor.
        include_weight_decay: add the weight-decay term γ/2·|W|² of the objective.
        scale_bias: rescale the bias with the weight (default: the whole affine map, as the
            paper's f = Wφ(x) has no separate bias; then a loss on normalised embeddings is
            exactly invariant to a > 0).
        target: module path of the linear layer (default: the projector's last nn.Linear).
        batch_size: loss batch size (default: ``data.batch_size``).
        seed: choice of images and views.
    """

    name = "landscape"
    config_key = "landscape"
    last_verdict: dict | None = None  # `landscape_report` of the latest measurement, beside `last_result`

    def __init__(
        self,
        every_n_epochs: PositiveInt | None = None,
        num_images: AtLeastTwoInt = 2048,
        grid_points: AtLeastTwoInt = 41,
        grid_max: PositiveFloat = 2.0,
        include_weight_decay: bool = False,
        scale_bias: bool = True,
        target: str | None = None,
        batch_size: AtLeastTwoInt | None = None,
        seed: NonNegativeInt = 0,
    ):
        super().__init__(every_n_epochs)
        self.num_images, self.grid_points, self.grid_max = num_images, grid_points, grid_max
        self.include_weight_decay, self.scale_bias = include_weight_decay, scale_bias
        self.target, self.batch_size, self.seed = target, batch_size, seed

    def measure(self, method: LightningModule, datamodule, run_dir: Path, epoch: int) -> dict:
        from sslprobe.plots import plot_landscape_1d, plot_landscape_2d

        layer, head = resolve_target(method, self.target)
        view1, view2 = datamodule.probe_views(self.num_images, self.seed, method.device)
        grid = np.linspace(0.0, self.grid_max, self.grid_points)
        options = LandscapeOptions(
            weight_decay=method.weight_decay_coefficient() if self.include_weight_decay else 0.0,
            scale_bias=self.scale_bias, batch_size=self.batch_size or datamodule.batch_size,
        )
        with evaluation_mode(method), self.progress("loss grid", len(grid) + len(grid) ** 2) as advance:
            h1, h2 = layer_inputs(method, layer, view1).float(), layer_inputs(method, layer, view2).float()
            result = loss_landscape(
                h1, h2, layer.weight.detach().float(),
                layer.bias.detach().float() if layer.bias is not None else None,
                method.loss_fn, head=head, scales=grid, r1=grid, r2=grid, options=options, on_points=advance,
            )
        report = landscape_report(result)
        self.last_result, self.last_verdict = result, report
        directory = probes_dir(run_dir)
        stem = directory / f"landscape_epoch{epoch}"
        result.save(stem.with_suffix(".npz"))
        stem.with_suffix(".json").write_text(json.dumps({"epoch": epoch, **report}, indent=2))
        figures = {
            "loss_1d": save_figure(plot_landscape_1d(
                result.a, result.loss_1d, reference_loss=result.reference_loss,
                scale_invariant=report["scale_invariant"],
                title=f"Loss under W → aW of the last layer, epoch {epoch}"), Path(f"{stem}_1d.png")),
            "loss_2d": save_figure(plot_landscape_2d(
                result.r1, result.r2, result.loss_2d, minima=grid_local_minima(result.loss_2d),
                title=f"Loss rescaling the larger (r1) / smaller (r2) half of W's singular values, epoch {epoch}"),
                Path(f"{stem}_2d.png")),
        }
        scalars = {f"landscape/{key}": float(value) for key, value in report.items()
                   if isinstance(value, (int, float, bool)) and value is not None}
        return {**scalars, "figures": figures}
