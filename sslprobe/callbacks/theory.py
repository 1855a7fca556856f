"""`TheoryProbe`: the linear theory's prediction of the last layer from its input features."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
from lightning.pytorch import LightningModule
from torch import nn

from sslprobe.callbacks.base import ProbeCallback, evaluation_mode, probes_dir, save_figure
from sslprobe.callbacks.landscape import ProbeTargetError, layer_inputs, resolve_target
from sslprobe.losses import BarlowTwinsLoss, InfoNCELoss, NTXentLoss, SpectralContrastiveLoss
from sslprobe.options import AtLeastFourInt, AtLeastTwoInt, NonNegativeInt, PositiveFloat, PositiveInt
from sslprobe.probes.theory import TheoryLoss, theory_probe


def theory_loss(method: LightningModule, batch_size: int) -> TheoryLoss | None:
    """The method's objective as `TheoryLoss`, with its hyper-parameters; None if the theory has none."""
    loss = method.criterion
    decay = method.weight_decay_coefficient()
    if isinstance(loss, NTXentLoss):
        return TheoryLoss("normalized", batch_size, temperature=loss.temperature, weight_decay=decay)
    if isinstance(loss, InfoNCELoss):
        kind = "normalized" if loss.normalize else "info_nce_family"
        return TheoryLoss(kind, batch_size, temperature=loss.temperature, alpha=loss.alpha, beta=loss.beta,
                          weight_decay=decay)
    if isinstance(loss, SpectralContrastiveLoss):
        return TheoryLoss("spectral_contrastive", batch_size, mu=loss.mu, weight_decay=decay)
    if isinstance(loss, BarlowTwinsLoss):
        return TheoryLoss("barlow_twins", batch_size, weight_decay=decay)
    return None


class TheoryProbe(ProbeCallback):
    """Predicts the projector's last layer from its input features and measures the trained one.

    On ``num_images`` training-subset images with two views made by the training augmentation
    path (`ImageDataModule.probe_views`, seeded by ``seed``), the network runs once in eval
    mode and the inputs ``h`` of the projector's last ``nn.Linear`` are kept. From them
    `sslprobe.probes.theory.theory_probe` estimates A0, C, Σ (with split-half sampling error),
    predicts the stationary ``WᵀW`` for the method's loss and hyper-parameters (batch, α, β,
    temperature, mu, weight decay; Thm. 1, or Thm. 2 for normalised embeddings; Barlow Twins:
    curvature sign only), and measures the trained ``WᵀW``: eigenvalues, numerical rank at
    ``collapse_threshold``, principal angles to the predicted surviving subspace, and the loss.

    Writes ``probes/theory_epoch<E>.npz`` (A0, C, Σ, B, spectra, predicted and measured Gram
    matrices), ``probes/theory_epoch<E>.json`` (the report) and ``probes/theory_epoch<E>.png``.
    Methods whose loss the theory does not cover (VICReg, supervised) get a JSON that says so.

    Args:
        every_n_epochs: also measure every n epochs (default: only at the end of fit).
        num_images: training images in the probe set.
        collapse_threshold: relative eigenvalue threshold of the numerical rank (the spectrum
            probe's).
        batch_size: the loss's batch (the paper's N follows from it); default ``data.batch_size``.
        forward_batch_size: images per forward pass.
        seed: choice of images, views and of the halves for the sampling error.
        at_start: also measure the initial network at step 0 (``theory_epoch0.*``): how far a
            random last layer lies from the prediction, the baseline of a trajectory.
    """

    name = "theory"
    config_key = "theory"

    def __init__(
        self,
        every_n_epochs: PositiveInt | None = None,
        num_images: AtLeastFourInt = 2048,
        collapse_threshold: PositiveFloat = 1e-4,
        batch_size: AtLeastTwoInt | None = None,
        forward_batch_size: PositiveInt = 512,
        seed: NonNegativeInt = 0,
        at_start: bool = False,
    ):
        super().__init__(every_n_epochs)
        self.num_images, self.collapse_threshold = num_images, collapse_threshold
        self.batch_size, self.forward_batch_size, self.seed = batch_size, forward_batch_size, seed
        self.at_start = at_start

    def measure(self, method: LightningModule, datamodule, run_dir: Path, epoch: int) -> dict:
        from sslprobe.plots import plot_theory_spectrum

        layer, head = resolve_target(method, None)
        if any(not isinstance(module, (nn.Identity, nn.Sequential)) for module in head.modules()):
            raise ProbeTargetError("TheoryProbe needs the projector's last nn.Linear to produce the embedding")
        directory = probes_dir(run_dir)
        stem = directory / f"theory_epoch{epoch}"
        batch = self.batch_size or datamodule.batch_size
        loss = theory_loss(method, batch)
        if loss is None:
            report = {"epoch": epoch, "applicable": False,
                      "message": f"{type(method.criterion).__name__}: the linear theory gives no origin Hessian "
                                 "for this loss; nothing is predicted."}
            stem.with_suffix(".json").write_text(json.dumps(report, indent=2))
            return {"theory/applicable": 0.0}
        view1, view2 = datamodule.probe_views(self.num_images, self.seed, method.device)
        with evaluation_mode(method):
            h1 = layer_inputs(method, layer, view1, self.forward_batch_size).double().cpu()
            h2 = layer_inputs(method, layer, view2, self.forward_batch_size).double().cpu()
        bias = layer.bias.detach().double().cpu() if layer.bias is not None else None
        result = theory_probe(h1, h2, layer.weight.detach().double().cpu(), bias, loss,
                              loss_fn=method.loss_fn, collapse_threshold=self.collapse_threshold, seed=self.seed)
        self.last_result = result
        np.savez(stem.with_suffix(".npz"), **result.arrays)
        report = {"epoch": epoch, "applicable": True, **result.report}
        stem.with_suffix(".json").write_text(json.dumps(report, indent=2))
        figure = plot_theory_spectrum(
            result.arrays["measured_eigenvalues"], result.arrays.get("predicted_eigenvalues"),
            predicted_halves=result.arrays.get("predicted_eigenvalues_halves"),
            collapse_threshold=self.collapse_threshold,
            title=f"Eigenvalues of WᵀW, epoch {epoch}: {loss.theory_name}, {loss.theorem.split(' (')[0]}")
        scalars = {f"theory/{key}": float(value) for key, value in report.items()
                   if isinstance(value, (int, float)) and not isinstance(value, bool)}
        scalars["theory/applicable"] = 1.0
        return {**scalars, "figures": {"eigenvalues": save_figure(figure, Path(f"{stem}.png"))}}
