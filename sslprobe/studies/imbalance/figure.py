"""The study's figure (paper Fig. 4): linear-evaluation top-1 per imbalance, with and without projector, every
seed a point; and the paper's contrast Δ SCL − Δ SimCLR per seed."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from sslprobe.studies.imbalance.presets import METHODS
from sslprobe.studies.report import BASE_IMBALANCE, RANDOM_INIT, ordered_imbalances, per_seed, robustness_per_seed
from sslprobe.studies.statistics import summarize_seeds

if TYPE_CHECKING:
    from sslprobe.studies.imbalance.results import StudyRow


def claim_per_seed(rows: list[StudyRow], projector: str, imbalance: str) -> dict[int, float]:
    """{seed: Δ SCL − Δ SimCLR} at ``imbalance`` (the paper's claim: negative when SCL is more robust)."""
    scl = robustness_per_seed(rows, "spectral", projector, imbalance)
    simclr = robustness_per_seed(rows, "simclr", projector, imbalance)
    return {seed: scl[seed] - simclr[seed] for seed in sorted(set(scl) & set(simclr))}


def draw_claim(ax, rows: list[StudyRow], imbalances: list[str]) -> None:
    """Δ SCL − Δ SimCLR per seed (points), its mean and 95 % t-interval, per projector and imbalance."""
    claims = {(projector, imbalance): claim_per_seed(rows, projector, imbalance)
              for projector in ("mlp", "none") for imbalance in imbalances if imbalance != BASE_IMBALANCE}
    cells = [cell for cell, per_seed_claim in claims.items() if per_seed_claim]
    for x, cell in enumerate(cells):
        values = [100 * v for v in claims[cell].values()]
        offsets = [0.25 * (i / max(len(values) - 1, 1) - 0.5) for i in range(len(values))]
        ax.scatter([x + o for o in offsets], values, s=12, color="0.55", zorder=2)
        summary = summarize_seeds(v / 100 for v in values)
        ax.errorbar([x + 0.22], [100 * summary.mean], yerr=[100 * (summary.half_width or 0.0)], marker="D",
                    color="k", capsize=4, zorder=3)
    ax.axhline(0.0, color="0.3", linewidth=0.8)
    ax.set_xticks(range(len(cells)), [f"{i}\n{'MLP' if p == 'mlp' else 'no'} proj." for p, i in cells])
    ax.set_xlim(-0.5, max(len(cells), 1) - 0.5)
    ax.set_ylabel("Δ SCL − Δ SimCLR (%): below 0, SCL more robust")
    ax.set_title("the paper's claim, per seed")
    ax.grid(alpha=0.3)
    if not cells:
        ax.text(0.5, 0.5, "no SCL and SimCLR pairs", transform=ax.transAxes, ha="center", color="0.4")


def figure(rows: list[StudyRow], path: Path) -> None:
    """Top-1 per imbalance (every seed a point, the mean with its 95 % t-interval; the random-init
    baseline dashed), and the paper's contrast Δ SCL − Δ SimCLR per seed with its interval."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    imbalances = ordered_imbalances(rows)
    colors = {method: f"C{i}" for i, method in enumerate(METHODS)}  # one colour per method in both panels
    fig = plt.figure(figsize=(16, 4.6), layout="constrained")
    first = fig.add_subplot(1, 3, 1)
    axes = [first, fig.add_subplot(1, 3, 2, sharey=first)]
    draw_claim(fig.add_subplot(1, 3, 3), rows, imbalances)
    offsets = {method: 0.05 * (i - (len(METHODS) - 1) / 2) for i, method in enumerate(METHODS)}
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
                for x, imbalance in enumerate(imbalances):  # every seed's point
                    values = per_seed(rows, method, cell_projector, imbalance, "top1").values()
                    ax.scatter([x + offsets[method]] * len(values), [100 * v for v in values], s=7,
                               color=colors[method], alpha=0.45, linewidths=0)
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
    per_cell = {}
    for row in rows:
        per_cell.setdefault((row.method, row.projector, row.imbalance), set()).add(row.seed)
    counts = sorted({len(seeds) for seeds in per_cell.values()})
    seeds = f"{counts[0]} seed(s)" if len(counts) == 1 else f"{counts[0]}–{counts[-1]} seeds per cell"
    bars = "95 % t-interval over seeds" if counts[-1] > 1 else "one seed: no interval"
    fig.suptitle(f"Robustness to class imbalance (paper Fig. 4); {seeds}, points: seeds, error bars: {bars}")
    fig.savefig(path, dpi=120)
    plt.close(fig)
