"""The frozen-feature study's figure and its summary for results.json."""

from __future__ import annotations

import numpy as np


def plot_study(results: dict):
    """Predicted (open) and measured (filled) eigenvalues of ``WᵀW`` per strength, and the ranks.

    One row per backbone; a column per loss, then a column of ranks (lines predicted, markers
    measured; filled markers: the convergence checks pass).

    Returns:
        The matplotlib figure.
    """
    import matplotlib.pyplot as plt

    from sslprobe.studies.theory_cifar import COLLAPSE_THRESHOLD

    strengths = np.asarray(results["setup"]["strengths"])
    backbones = results["backbones"]
    losses = list(next(iter(backbones.values()))["losses"])
    fig, axes = plt.subplots(len(backbones), len(losses) + 1, figsize=(5 * (len(losses) + 1), 4 * len(backbones)),
                             squeeze=False)
    offset = 0.012 if strengths.size < 2 else 0.08 * float(np.diff(strengths).min())
    for row, (backbone, record) in enumerate(backbones.items()):
        for column, loss in enumerate(losses):
            ax = axes[row, column]
            for s, point in zip(strengths, record["losses"][loss]):
                predicted = np.maximum(np.asarray(point["predicted_eigenvalues"]), 1e-12)
                measured = np.maximum(np.asarray(point["measured_eigenvalues"]), 1e-12)
                ax.plot(np.full(predicted.size, s - offset), predicted, "o", mfc="none", color="C0", ms=5)
                ax.plot(np.full(measured.size, s + offset), measured, "o", color="C3", ms=4)
                ax.plot([s - 2 * offset, s + 2 * offset], [COLLAPSE_THRESHOLD * measured.max()] * 2, "k-", lw=0.8)
            ax.plot([], [], "o", mfc="none", color="C0", label="predicted (Thm. 1, probe's A0, C)")
            ax.plot([], [], "o", color="C3", label="measured")
            ax.plot([], [], "k-", lw=0.8, label="rank threshold (1e-4 × largest)")
            ax.set(yscale="log", xlabel="data.augment_strength", ylabel="eigenvalues of WᵀW",
                   title=f"{backbone}: {loss}")
            ax.legend(fontsize=7)
        ax = axes[row, -1]
        for column, loss in enumerate(losses):
            points = record["losses"][loss]
            ax.plot(strengths, [p["predicted_rank"] for p in points], "-", color=f"C{column}",
                    label=f"{loss} predicted")
            for s, p in zip(strengths, points):
                ax.plot(s, p["measured_rank"], "s", color=f"C{column}", mfc=f"C{column}" if p["converged"] else "none",
                        ms=6)
            ax.plot([], [], "s", color=f"C{column}", label=f"{loss} measured (filled: converged)")
        ax.set(xlabel="data.augment_strength", ylabel="rank of WᵀW",
               title=f"{backbone} (kNN top-1 {100 * record['knn_accuracy']:.1f}%)")
        ax.legend(fontsize=7)
    fig.suptitle("Fig. 5 on CIFAR-10: a linear layer on frozen ResNet-12 features "
                 f"(top {results['setup']['feature_dim']} principal components)")
    fig.tight_layout()
    return fig


def summarize(results: dict) -> dict:
    """Counts per backbone and loss: points, rank agreement, full agreement, convergence."""
    summary = {}
    for backbone, record in results["backbones"].items():
        for loss, points in record["losses"].items():
            summary[f"{backbone}/{loss}"] = {
                "points": len(points),
                "rank_agrees": sum(p["rank_agrees"] for p in points),
                "agrees": sum(p["agrees"] for p in points),
                "converged": sum(p["converged"] for p in points),
                "rank_agrees_among_converged": sum(p["rank_agrees"] for p in points if p["converged"]),
            }
    return summary
