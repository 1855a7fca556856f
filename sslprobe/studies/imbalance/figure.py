"""The study's figure (paper Fig. 4): linear-evaluation top-1 per imbalance, with and without projector."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from sslprobe.studies.imbalance.presets import METHODS
from sslprobe.studies.report import RANDOM_INIT, ordered_imbalances, per_seed
from sslprobe.studies.statistics import summarize_seeds

if TYPE_CHECKING:
    from sslprobe.studies.imbalance.results import StudyRow


def figure(rows: list[StudyRow], path: Path) -> None:
    """Top-1 per imbalance with 95 % t-interval error bars; the random-init baseline dashed."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    imbalances = ordered_imbalances(rows)
    colors = {method: f"C{i}" for i, method in enumerate(METHODS)}  # one colour per method in both panels
    fig, axes = plt.subplots(1, 2, figsize=(11.5, 4.4), sharey=True, layout="constrained")
    for ax, projector in zip(axes, ("mlp", "none")):
        drawn = 0
        for method in [*METHODS, RANDOM_INIT]:
            cell_projector = "none" if method in ("supervised", RANDOM_INIT) else projector
            summaries = [summarize_seeds(per_seed(rows, method, cell_projector, i, "top1").values())
                         for i in imbalances]
            xs = [x for x, summary in enumerate(summaries) if summary is not None]
            if not xs:
                continue
            means = [100 * summaries[x].mean for x in xs]
            errors = [100 * (summaries[x].half_width or 0.0) for x in xs]
            if method == RANDOM_INIT:
                ax.errorbar(xs, means, yerr=errors, color="0.4", linestyle="--", capsize=4, label="random init")
            else:
                drawn += method != "supervised"
                ax.errorbar(xs, means, yerr=errors, marker="o", capsize=4, label=METHODS[method],
                            color=colors[method], linestyle=":" if method == "supervised" else "-")
        if not drawn:
            ax.text(0.5, 0.5, "no SSL runs in results.csv", transform=ax.transAxes, ha="center", color="0.4")
        ax.set_xticks(range(len(imbalances)), imbalances)
        ax.set_xlim(-0.3, len(imbalances) - 0.7)
        ax.set_title("with MLP projector" if projector == "mlp" else "without projector")
        ax.grid(alpha=0.3)
    axes[0].set_ylabel("linear-evaluation top-1 accuracy (%)")
    legend = {}  # every method drawn in either panel, once
    for ax in axes:
        for handle, label in zip(*ax.get_legend_handles_labels()):
            legend.setdefault(label, handle)
    fig.legend(legend.values(), legend.keys(), loc="outside right center")
    fig.supxlabel("class imbalance of the training subset (the paper's per-class proportions)")
    seeds = len({row.seed for row in rows})
    bars = "95 % t-interval over seeds" if seeds > 1 else "one seed: no interval"
    fig.suptitle(f"Robustness to class imbalance (paper Fig. 4); {seeds} seed(s), error bars: {bars}")
    fig.savefig(path, dpi=120)
    plt.close(fig)
