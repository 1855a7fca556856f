"""`ProjectorSpectrum`: the spectra of the projector's last layer, features and embeddings."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from lightning.pytorch import LightningModule

from sslprobe.callbacks.base import INITIAL_EPOCH, ProbeCallback, evaluation_mode, in_chunks, probes_dir, save_figure
from sslprobe.nn.heads import last_linear
from sslprobe.options import AtLeastTwoInt, NonNegativeInt, PositiveFloat, PositiveInt
from sslprobe.probes.results import SpectrumResult
from sslprobe.probes.spectrum import spectrum_report

HISTORY_KEYS = ("weight_singular_values", "features_eigenvalues", "embeddings_eigenvalues")
FILE_KEYS = {  # spectrum.npz array name -> spectrum_report key
    "weight_singular_values": "weight_singular_values",
    "feature_eigenvalues": "features_eigenvalues",
    "embedding_eigenvalues": "embeddings_eigenvalues",
}


class ProjectorSpectrum(ProbeCallback):
    """Tracks collapse over training (on the initial network, every ``every_n_epochs``, at the end of fit).

    Measures the singular values of the projector's last ``nn.Linear`` and the eigenvalues of
    the covariance of backbone features and of embeddings on a fixed probe set of
    ``num_images`` test images (no augmentation, eval mode); derives effective rank (RankMe),
    stable rank and the number of collapsed directions (eigenvalue below
    ``collapse_threshold`` × the largest). Writes ``probes/spectrum.npz`` (arrays ``epochs`` (epochs
    trained, counted from 1; 0 is the initial network, measured at step 0 with ``at_start``),
    ``weight_singular_values``, ``feature_eigenvalues``, ``embedding_eigenvalues`` with one row
    per measurement, plus the derived scalars per row), ``probes/spectrum.png`` and
    ``probes/spectrum_heatmap.png``. The history survives resume (``state_dict``).

    Args:
        every_n_epochs: measure after every n-th epoch (default 1).
        num_images: size of the probe set (test images chosen by ``seed``).
        collapse_threshold: relative eigenvalue below which a direction counts as collapsed.
        batch_size: images per forward pass.
        seed: choice of the probe images.
        at_start: measure the initial network at step 0 (its row is epoch 0), the untrained
            level every spectrum is read against.
    """

    name = "spectrum"
    config_key = "spectrum"

    def __init__(
        self,
        every_n_epochs: PositiveInt | None = 1,
        num_images: AtLeastTwoInt = 2048,
        collapse_threshold: PositiveFloat = 1e-4,
        batch_size: PositiveInt = 512,
        seed: NonNegativeInt = 0,
        at_start: bool = True,
    ):
        super().__init__(every_n_epochs)
        self.num_images, self.collapse_threshold = num_images, collapse_threshold
        self.batch_size, self.seed, self.at_start = batch_size, seed, at_start
        self.history: dict[str, list] = {"epochs": []}

    def has_initial(self) -> bool:
        return INITIAL_EPOCH in self.history["epochs"]

    def probe_images(self, datamodule) -> torch.Tensor:
        _, test = datamodule.evaluation_sets()
        generator = torch.Generator().manual_seed(self.seed)
        chosen = torch.randperm(len(test), generator=generator)[: self.num_images]
        return test.images[chosen.sort().values]

    def measure(self, method: LightningModule, datamodule, run_dir: Path, epoch: int) -> dict:
        images = self.probe_images(datamodule)
        features, embeddings = [], []
        with evaluation_mode(method), self.progress("features", len(images)) as advance:
            for chunk in in_chunks(images, self.batch_size):
                feature = method.embed(chunk)
                features.append(feature.float().cpu())
                embeddings.append(method.projector(feature).float().cpu())
                advance(len(chunk))
        layer = last_linear(method.projector)
        weight = layer.weight.detach().float().cpu() if layer is not None else None
        report = spectrum_report(weight, torch.cat(features), torch.cat(embeddings), self.collapse_threshold)
        self.last_result = SpectrumResult.from_report(report)
        self.append(epoch, report)
        return self.write(probes_dir(run_dir))

    def append(self, epoch: int, report: dict) -> None:
        self.history["epochs"].append(epoch)
        for key, value in report.items():
            value = np.asarray(value, dtype=np.float64)
            self.history.setdefault(key, []).append(value.tolist())

    def write(self, directory: Path) -> dict:
        """Save the history to spectrum.npz, draw the figures; returns the latest scalars."""
        from sslprobe.plots import plot_spectrum, plot_spectrum_heatmap

        arrays = {"epochs": np.asarray(self.history["epochs"])}
        for file_key, report_key in FILE_KEYS.items():
            if report_key in self.history:
                arrays[file_key] = np.asarray(self.history[report_key])
        scalars = {}
        for key, values in self.history.items():
            if key != "epochs" and np.ndim(values[-1]) == 0:
                arrays[key] = np.asarray(values)
                scalars[f"spectrum/{key}"] = float(values[-1])
        np.savez(directory / "spectrum.npz", **arrays)
        latest = {name: np.asarray(self.history[key][-1]) for name, key in
                  (("backbone features", "features_eigenvalues"), ("embeddings", "embeddings_eigenvalues"),
                   ("last-layer weight σ²", "weight_eigenvalues")) if key in self.history}
        epoch = self.history["epochs"][-1]
        figures = {
            "spectrum": save_figure(
                plot_spectrum(latest, title="Spectra of the initial network" if epoch == INITIAL_EPOCH
                              else f"Spectra after epoch {epoch}", collapse_threshold=self.collapse_threshold),
                directory / "spectrum.png"),
            "heatmap": save_figure(
                plot_spectrum_heatmap(arrays["epochs"], np.asarray(self.history["embeddings_eigenvalues"]),
                                      title="Embedding covariance eigenvalues during training"),
                directory / "spectrum_heatmap.png"),
        }
        return {**scalars, "figures": figures}

    def state_dict(self) -> dict:
        return {**super().state_dict(), "history": self.history}

    def load_state_dict(self, state: dict) -> None:
        super().load_state_dict(state)
        self.history = state.get("history", {"epochs": []})
