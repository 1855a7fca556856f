"""Figures of the probes: spectra, rescaling landscapes (the paper's Fig. 2) and per-class accuracy.

Every function builds a `matplotlib.figure.Figure` directly (no pyplot, so no global state and
no display backend is touched; ``fig.savefig`` renders with Agg) and returns it; nothing is
shown. The inputs are the arrays the probes in `sslprobe.probes` return or save.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
from matplotlib.colors import LogNorm
from matplotlib.figure import Figure
from matplotlib.patches import Patch
from matplotlib.ticker import MaxNLocator

from sslprobe.probes.landscape import grid_local_minima

CIFAR10_CLASSES = (
    "airplane",
    "automobile",
    "bird",
    "cat",
    "deer",
    "dog",
    "frog",
    "horse",
    "ship",
    "truck",
)
LOG_FLOOR = 1e-12  # smallest value drawn on a log axis; exact zeros are shown at this level


def _positive(values: np.ndarray, floor: float = LOG_FLOOR) -> np.ndarray:
    return np.clip(np.asarray(values, dtype=np.float64), floor, None)


def plot_spectrum(
    spectra: np.ndarray | Mapping[str, np.ndarray],
    *,
    value_label: str = "eigenvalue",
    title: str = "Spectrum",
    collapse_threshold: float | None = None,
) -> Figure:
    """Descending spectrum on a log scale against its index.

    Args:
        spectra: one (K,) array, or a mapping from legend label to (K_i,) arrays (e.g.
            ``{"features": ..., "embeddings": ...}``). Values are sorted descending; zeros are
            drawn at 1e-12.
        value_label: what the values are, e.g. "covariance eigenvalue" or "singular value".
        title: figure title.
        collapse_threshold: when given, draw for each spectrum, dashed in its colour, the level
            ``threshold × its largest value`` under which `collapsed_directions` counts one of its
            directions as collapsed (each spectrum has its own scale, so its own threshold).

    Returns:
        The figure.
    """
    if not isinstance(spectra, Mapping):
        spectra = {"": spectra}
    fig = Figure(figsize=(6, 4), layout="constrained")
    ax = fig.add_subplot()
    for label, values in spectra.items():
        values = np.sort(np.asarray(values, dtype=np.float64))[::-1]
        (line,) = ax.semilogy(np.arange(1, values.size + 1), _positive(values), marker=".", ms=3,
                              label=label or None)
        if collapse_threshold is not None and values.size and values[0] > 0:
            ax.axhline(collapse_threshold * values[0], color=line.get_color(), ls="--", lw=1, alpha=0.8)
    if collapse_threshold is not None:
        note = f"dashed, in each curve's colour: its collapse threshold ({collapse_threshold:g} × its largest value)"
        ax.text(0.99, 0.01, note, transform=ax.transAxes, ha="right", va="bottom", fontsize="x-small", color="0.3")
    ax.set_xlabel("index (largest first)")
    ax.set_ylabel(f"{value_label} (log scale)")
    ax.set_title(title)
    ax.grid(True, which="major", alpha=0.3)
    if any(spectra.keys()):
        ax.legend(fontsize="small")
    return fig


def plot_spectrum_heatmap(
    epochs: Sequence[float] | np.ndarray,
    spectra: np.ndarray,
    *,
    value_label: str = "eigenvalue",
    title: str = "Spectrum during training",
) -> Figure:
    """Spectra over training as an epoch × index heatmap with a log colour scale.

    Args:
        epochs: (E,) epoch (or step) of each spectrum.
        spectra: (E, K) array, row e the descending spectrum at ``epochs[e]``.
        value_label: what the values are, for the colour bar.
        title: figure title.

    Returns:
        The figure; epoch on x, index (largest first) on y, colour the value.
    """
    spectra = _positive(spectra)
    epochs = np.asarray(epochs, dtype=np.float64)
    fig = Figure(figsize=(7, 4), layout="constrained")
    ax = fig.add_subplot()
    finite_max = spectra.max()
    vmin = max(spectra.min(), finite_max * 1e-10)
    image = ax.pcolormesh(
        _cell_edges(epochs),
        np.arange(spectra.shape[1] + 1) + 0.5,
        spectra.T,
        norm=LogNorm(vmin=vmin, vmax=finite_max),
        cmap="viridis",
        shading="flat",
    )
    ax.invert_yaxis()
    if epochs.size <= 12:  # one tick per measurement, at its epoch
        ax.set_xticks(epochs, [f"{e:g}" for e in epochs])
    else:
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    if epochs.size == 1:
        ax.text(0.5, 1.0, "one measurement so far", transform=ax.transAxes, ha="center", va="bottom",
                fontsize="small", color="0.3")
    ax.set_xlabel("epoch")
    ax.set_ylabel("index (largest first)")
    ax.set_title(title)
    fig.colorbar(image, ax=ax, label=f"{value_label} (log scale)")
    return fig


def _cell_edges(centres: np.ndarray) -> np.ndarray:
    """(n,) cell centres -> (n + 1,) edges midway between them."""
    if centres.size == 1:
        return np.array([centres[0] - 0.5, centres[0] + 0.5])
    middle = (centres[1:] + centres[:-1]) / 2
    return np.concatenate([[2 * centres[0] - middle[0]], middle, [2 * centres[-1] - middle[-1]]])


def plot_landscape_1d(
    a: np.ndarray,
    loss: np.ndarray,
    *,
    reference_loss: float | None = None,
    scale_invariant: bool = False,
    title: str = "Loss under rescaling W → aW",
) -> Figure:
    """Loss against the rescaling factor a of the target layer (the paper's Fig. 2, left).

    Args:
        a: (n,) factors.
        loss: (n,) objective at a·W.
        reference_loss: objective of the trained layer, marked at a = 1.
        scale_invariant: the loss does not depend on a > 0 (see `landscape_report`); a note
            saying that this curve carries no information is drawn on the axes.
        title: figure title.

    Returns:
        The figure.
    """
    fig = Figure(figsize=(5.5, 4), layout="constrained")
    ax = fig.add_subplot()
    ax.plot(a, loss, color="C0", marker=".", ms=4, label="loss at a·W")
    ax.axvline(0.0, color="0.6", lw=0.8)
    if reference_loss is not None:
        ax.plot([1.0], [reference_loss], "r*", ms=12, label="trained layer (a = 1)")
    ax.set_xlabel("rescaling factor a  (W → a·W)")
    ax.set_ylabel("loss")
    ax.set_title(title)
    ax.grid(True, alpha=0.3)
    if scale_invariant:
        ax.text(
            0.5,
            0.22,
            "Loss is invariant to W → aW (a > 0): normalised or\nbatch-standardised embeddings make "
            "this curve flat\nby construction. Only the 2-D probe is informative.",
            transform=ax.transAxes,
            ha="center",
            va="center",
            fontsize=10,
            bbox=dict(boxstyle="round", facecolor="lightyellow", edgecolor="0.5"),
        )
    ax.legend(fontsize="small", loc="upper right")
    return fig


def plot_landscape_2d(
    r1: np.ndarray,
    r2: np.ndarray,
    loss: np.ndarray,
    *,
    minima: np.ndarray | None = None,
    title: str = "Loss when rescaling singular-value halves",
    window: float | None = 0.5,
) -> Figure:
    """Heatmap of the 2-D singular-half landscape (the paper's Fig. 2, right).

    Args:
        r1: (n_1,) factors of the larger half of W's singular values (x axis).
        r2: (n_2,) factors of the smaller half (y axis).
        loss: (n_1, n_2) objective, ``loss[i, j]`` at (r1[i], r2[j]).
        minima: (K, 2) grid indices of local minima to mark; default `grid_local_minima`.
        title: figure title.
        window: half-width of the square around the trained layer (1, 1) whose loss range sets the
            colour limits; values outside it are drawn in the end colours (the origin of a
            normalised loss can dwarf everything else). None: the whole grid's range.

    Returns:
        The figure, with local minima as white dots and the trained layer (1, 1) as a red star.
    """
    loss = np.asarray(loss, dtype=np.float64)
    if minima is None:
        minima = grid_local_minima(loss)
    fig = Figure(figsize=(5.8, 4.6), layout="constrained")
    ax = fig.add_subplot()
    r1, r2 = np.asarray(r1, dtype=np.float64), np.asarray(r2, dtype=np.float64)
    finite = loss[np.isfinite(loss)]
    vmin, vmax = (finite.min(), finite.max()) if finite.size else (0.0, 1.0)
    label = "loss"
    if window is not None:
        near = loss[np.ix_(np.abs(r1 - 1) <= window + 1e-12, np.abs(r2 - 1) <= window + 1e-12)]
        near = near[np.isfinite(near)]
        if near.size and near.max() > near.min():
            vmin, vmax = near.min(), near.max()
            label = f"loss (colour range: r1, r2 within ±{window:g} of (1, 1))"
    image = ax.pcolormesh(_cell_edges(r1), _cell_edges(r2), loss.T, cmap="viridis", vmin=vmin, vmax=vmax)
    levels = np.linspace(vmin, vmax, 12) if vmax > vmin else 12
    ax.contour(r1, r2, loss.T, levels=levels, colors="white", linewidths=0.4, alpha=0.6)
    handles = []
    if len(minima):
        minima = np.asarray(minima)
        handles.append(
            ax.scatter(
                np.asarray(r1)[minima[:, 0]],
                np.asarray(r2)[minima[:, 1]],
                s=36,
                facecolors="white",
                edgecolors="black",
                linewidths=1.0,
                label="local minima on grid",
            )
        )
    handles.append(ax.scatter([1.0], [1.0], marker="*", s=160, color="red", label="trained layer (1, 1)"))
    ax.set_xlabel("r1: factor on the larger half of singular values")
    ax.set_ylabel("r2: factor on the smaller half")
    ax.set_title(title)
    ax.set_aspect("equal", adjustable="box")
    fig.colorbar(image, ax=ax, label=label, extend="both" if label != "loss" else "neither")
    fig.legend(handles=handles, fontsize="small", loc="outside lower center", ncols=2)
    return fig


def plot_per_class_accuracy(
    per_class: Sequence[float | None],
    *,
    rare_classes: Sequence[int] = (),
    class_names: Sequence[str] | None = None,
    train_counts: Sequence[int] | None = None,
    title: str = "Linear evaluation: accuracy per class",
) -> Figure:
    """Bar chart of per-class accuracy with the classes that were rare in training highlighted.

    Args:
        per_class: (C,) accuracies in [0, 1]; None (class absent from the test set) draws no bar.
        rare_classes: indices of rare classes (see `sslprobe.probes.rare_classes`), drawn in a
            contrasting colour.
        class_names: C names; CIFAR-10's when C = 10 and none are given, else the indices.
        train_counts: (C,) training counts, written under each class name.
        title: figure title.

    Returns:
        The figure.
    """
    n = len(per_class)
    if class_names is None:
        class_names = CIFAR10_CLASSES if n == 10 else [str(c) for c in range(n)]
    labels = list(class_names)
    if train_counts is not None:
        labels = [f"{name}\n(n={int(count)})" for name, count in zip(labels, train_counts, strict=True)]
    rare = set(int(c) for c in rare_classes)
    heights = [np.nan if v is None else 100.0 * v for v in per_class]
    colours = ["C3" if c in rare else "C0" for c in range(n)]
    fig = Figure(figsize=(max(6.0, 0.7 * n + 2), 4.2), layout="constrained")
    ax = fig.add_subplot()
    ax.bar(np.arange(n), np.nan_to_num(heights), color=colours)
    for c, h in enumerate(heights):
        note = f"{h:.0f}" if np.isfinite(h) else "no test\nsamples"
        ax.text(c, (h if np.isfinite(h) else 0) + 1, note, ha="center", va="bottom", fontsize=8)
    ax.set_xticks(np.arange(n), labels, rotation=45 if train_counts is None else 0, fontsize=8)
    ax.set_ylim(0, 119)  # headroom above 100 % for the legend
    ax.set_yticks(np.arange(0, 101, 20))
    ax.set_ylabel("test accuracy (%)")
    ax.set_xlabel("class")
    ax.set_title(title)
    ax.grid(True, axis="y", alpha=0.3)
    if rare:  # with equal counts there is no rare class, and no legend to tell them apart
        ax.legend(
            handles=[
                Patch(color="C0", label="frequent in training"),
                Patch(color="C3", label="rare in training"),
            ],
            fontsize="small",
            loc="upper right",
            ncols=2,
        )
    return fig


def plot_theory_spectrum(
    measured: np.ndarray,
    predicted: np.ndarray | None = None,
    *,
    predicted_halves: np.ndarray | None = None,
    collapse_threshold: float | None = None,
    title: str = "Eigenvalues of WᵀW: theory vs trained",
) -> Figure:
    """Predicted and measured eigenvalues of the last layer's ``WᵀW`` on one log axis.

    Args:
        measured: (d,) eigenvalues of the trained ``WᵀW``.
        predicted: (d,) eigenvalues of the predicted stationary ``WᵀW`` (Thm. 1 / Thm. 2), or None
            where the theory predicts none.
        predicted_halves: (2, d) the prediction from each half of the probe images (sampling
            spread), drawn as a band.
        collapse_threshold: relative threshold of `collapsed_directions`; the level
            ``threshold × largest measured`` is drawn.
        title: figure title.

    Returns:
        The figure. Exact zeros are drawn at 1e-12.
    """
    fig = Figure(figsize=(6, 4), layout="constrained")
    ax = fig.add_subplot()
    measured = np.sort(np.asarray(measured, dtype=np.float64))[::-1]
    index = np.arange(1, measured.size + 1)
    ax.semilogy(index, _positive(measured), "o", ms=4, label="trained")
    if predicted is not None:
        predicted = np.sort(np.asarray(predicted, dtype=np.float64))[::-1]
        ax.semilogy(np.arange(1, predicted.size + 1), _positive(predicted), "x", ms=5, label="predicted")
        if predicted_halves is not None:
            halves = -np.sort(-np.asarray(predicted_halves, dtype=np.float64), axis=1)
            ax.fill_between(np.arange(1, halves.shape[1] + 1), _positive(halves.min(0)), _positive(halves.max(0)),
                            color="C1", alpha=0.25, lw=0, label="prediction, each half of the images")
    if collapse_threshold is not None and measured.max(initial=0) > 0:
        ax.axhline(collapse_threshold * measured.max(), color="0.4", ls="--", lw=1,
                   label=f"collapse threshold ({collapse_threshold:g} × largest)")
    ax.set_xlabel("index (largest first)")
    ax.set_ylabel("eigenvalue of WᵀW (log scale)")
    ax.set_title(title)
    ax.grid(True, which="major", alpha=0.3)
    ax.legend(fontsize="small")
    return fig
