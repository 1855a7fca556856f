"""Probe costs as multiples of one forward pass over their data (landscape, theory, linear) or of an epoch
(spectrum)."""

from __future__ import annotations

import numpy as np
import torch

from sslprobe.benchmark.fit import make_model
from sslprobe.benchmark.settings import (
    EPOCH_IMAGES,
    Settings,
    chunked,
    median,
    timed,
)
from sslprobe.callbacks.landscape import layer_inputs, resolve_target
from sslprobe.callbacks.theory import theory_loss
from sslprobe.data import load_cifar10
from sslprobe.data.batch_augment import SimCLRBatchAugment
from sslprobe.data.sampler import sample_seed
from sslprobe.methods import SimCLR
from sslprobe.probes import LandscapeOptions, LinearEvalOptions, linear_evaluation, loss_landscape, spectrum_report
from sslprobe.probes.theory import theory_probe


def landscape_inputs(model: SimCLR, images: torch.Tensor, seeds: torch.Tensor, layer, device: str):
    """One backbone pass over both views of ``images``: the last layer's inputs (h1, h2), as the probes take them."""
    augment = SimCLRBatchAugment()
    views = augment(images.to(device), seeds.to(device))
    with torch.no_grad():
        return tuple(layer_inputs(model, layer, view, 256) for view in views)


def bench_probes(name: str, root: str, settings: Settings, fit_images_per_s: float, repeats: int) -> dict:
    """Landscape, theory, linear-evaluation and spectrum costs of model ``name`` against one forward pass
    (and an epoch at ``fit_images_per_s``), with the landscape's grid and the linear probe's epoch scaling."""
    device = settings.device
    cifar = load_cifar10(root)
    model = make_model(name, settings).to(device).eval()
    model.setup("validate")
    layer, head = resolve_target(model, None)
    n = settings.landscape_images
    images = cifar.test.images[:n]
    seeds = torch.tensor([sample_seed(0, -1, i) for i in range(n)])
    loss_batch = min(256, n)

    def landscape(points: int):
        grid = np.linspace(0, 2, points)
        return loss_landscape(h1, h2, layer.weight, layer.bias, model.loss_fn, head=head,
                              scales=grid, r1=grid, r2=grid, options=LandscapeOptions(batch_size=loss_batch))

    def theory():
        loss = theory_loss(model, loss_batch)
        return theory_probe(h1, h2, layer.weight, layer.bias, loss, loss_fn=model.loss_fn)

    forward, grids, theories = [], {points: [] for points in settings.grid_sizes}, []
    for _ in range(repeats):
        (h1, h2), seconds = timed(lambda: landscape_inputs(model, images, seeds, layer, device), device)
        forward.append(seconds)
        for points in settings.grid_sizes:
            grids[points].append(timed(lambda p=points: landscape(p), device)[1])
        theories.append(timed(theory, device)[1])
    forward_s = median(forward)
    theory_row = {"images": n, "views": 2, "feature_dim": int(h1.shape[1]), "forward_s": forward_s,
                  "theory_s": median(theories), "cost_vs_forward": (forward_s + median(theories)) / forward_s}
    full_grid = max(settings.grid_sizes)
    landscape_row = {
        "images": n, "views": 2, "loss_batch_size": loss_batch, "grid": f"{full_grid}x{full_grid} + {full_grid}",
        "forward_s": forward_s, "grid_s": median(grids[full_grid]),
        "cost_vs_forward": (forward_s + median(grids[full_grid])) / forward_s,
    }
    grid_scaling = [{"grid": f"{p}x{p} + {p}", "points": p * p + p, "backbone_passes": 1, "grid_s": median(grids[p]),
                     "cost_vs_forward": (forward_s + median(grids[p])) / forward_s} for p in settings.grid_sizes]

    train_images = cifar.train.images[: settings.linear_train_images]
    train_labels = cifar.train.labels[: settings.linear_train_images]
    test_images = cifar.test.images[: settings.linear_test_images]
    test_labels = cifar.test.labels[: settings.linear_test_images]
    extract, linear = [], {epochs: [] for epochs in settings.linear_epochs}
    for _ in range(repeats):
        (train_f, test_f), seconds = timed(
            lambda: (chunked(model.embed, train_images, 512), chunked(model.embed, test_images, 512)), device
        )
        extract.append(seconds)
        for epochs in settings.linear_epochs:
            def evaluate(train=train_f, test=test_f, epochs=epochs):
                return linear_evaluation(train, train_labels.to(train.device), test, test_labels.to(test.device),
                                         LinearEvalOptions(epochs=epochs))
            linear[epochs].append(timed(evaluate, device)[1])
    extract_s, longest = median(extract), max(settings.linear_epochs)
    linear_row = {
        "train_images": len(train_images), "test_images": len(test_images), "epochs": longest,
        "extract_s": extract_s, "train_eval_s": median(linear[longest]),
        "cost_vs_forward": (extract_s + median(linear[longest])) / extract_s,
    }
    epoch_scaling = [{"epochs": e, "train_eval_s": median(linear[e]),
                      "cost_vs_forward": (extract_s + median(linear[e])) / extract_s} for e in settings.linear_epochs]

    spectrum_images = cifar.test.images[: settings.spectrum_images]

    def spectrum():
        features = chunked(model.embed, spectrum_images, 512)
        with torch.no_grad():
            embeddings = chunked(model.projector, features, 512)
        return spectrum_report(weight=layer.weight, features=features, embeddings=embeddings)

    spectrum_s = median([timed(spectrum, device)[1] for _ in range(repeats)])
    epoch_s = EPOCH_IMAGES / fit_images_per_s
    spectrum_row = {"images": len(spectrum_images), "spectrum_s": spectrum_s, "epoch_s": epoch_s,
                    "fraction_of_epoch": spectrum_s / epoch_s}
    print(f"  probes {name}: landscape {landscape_row['cost_vs_forward']:.2f}x forward, "
          f"theory {theory_row['cost_vs_forward']:.2f}x, linear "
          f"{linear_row['cost_vs_forward']:.2f}x, spectrum {100 * spectrum_row['fraction_of_epoch']:.2f}% of an epoch",
          flush=True)
    return {"model": name, "landscape": landscape_row, "theory": theory_row, "linear": linear_row,
            "spectrum": spectrum_row,
            "scaling": {"landscape_vs_grid": grid_scaling, "linear_vs_epochs": epoch_scaling}}
