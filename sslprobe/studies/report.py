"""The imbalance study's summary: tables over seeds, paired differences and their reading.

Rows are `sslprobe.studies.imbalance.StudyRow` (``method``, ``imbalance``, ``projector``,
``seed``, accuracies as fractions, ``num_test``), the rows of the study's ``results.csv``; the
random-init baseline has method ``random_init`` and projector ``none``. Every number comes with
its 95 % t-interval over seeds (`sslprobe.studies.statistics`), and the reading says only what
the intervals allow.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import TYPE_CHECKING

from sslprobe.studies.statistics import (
    MAX_SEEDS,
    SeedSummary,
    binomial_standard_error,
    format_points,
    paired_difference,
    power_analysis,
    relative_drop,
    summarize_seeds,
)

if TYPE_CHECKING:
    from sslprobe.studies.imbalance.results import StudyRow

RANDOM_INIT = "random_init"
BASE_IMBALANCE = "none"
BASELINE_SCORES = {"top1": "top-1", "knn_top1": "kNN top-1"}  # the scores compared with random init
TARGET_HALF_WIDTH = 0.02  # the power analysis asks for a 95 % half-width of 2 points (2 % for Δ)
TARGET_POWER = 0.8


def _finite(value) -> bool:
    return value is not None and not (isinstance(value, float) and math.isnan(value))


def per_seed(rows: list[StudyRow], method: str, projector: str, imbalance: str, key: str) -> dict[int, float]:
    """{seed: row.<key>} of one cell of the grid (finite values only)."""
    return {row.seed: float(getattr(row, key)) for row in rows
            if row.method == method and row.projector == projector and row.imbalance == imbalance
            and _finite(getattr(row, key))}


def robustness_per_seed(rows: list[StudyRow], method: str, projector: str, imbalance: str,
                        key: str = "top1") -> dict[int, float]:
    """{seed: Δ} with Δ = (A_none − A_imbalance) / A_none at equal seed."""
    base = per_seed(rows, method, projector, BASE_IMBALANCE, key)
    other = per_seed(rows, method, projector, imbalance, key)
    return {seed: relative_drop(base[seed], other[seed]) for seed in sorted(set(base) & set(other))}


def ordered_imbalances(rows: list[StudyRow]) -> list[str]:
    present = {row.imbalance for row in rows}
    return [i for i in ("none", "medium", "high") if i in present] + sorted(present - {"none", "medium", "high"})


def cells(rows: list[StudyRow], method_order: list[str]) -> list[tuple[str, str]]:
    """(method, projector) pairs in display order, the random-init baseline last."""
    present = {(row.method, row.projector) for row in rows}
    order = [*method_order, RANDOM_INIT]
    return sorted(present, key=lambda mp: (order.index(mp[0]) if mp[0] in order else len(order), mp[1]))


def verdict(summary: SeedSummary | None) -> str:
    if summary is None:
        return "—"
    if summary.excludes_zero is None:
        return "one seed: cannot tell"
    if summary.excludes_zero:
        return "yes, above 0" if summary.mean > 0 else "yes, below 0"
    return "no: interval contains 0"


def differences(rows: list[StudyRow], names: Mapping[str, str]) -> list[dict]:
    """Paired differences at equal seed and imbalance, in points (×100) and for Δ.

    SCL − SimCLR and Barlow Twins − SimCLR per projector (top-1 and robustness Δ), and every
    method − random init (linear top-1 and kNN top-1: the two scores can disagree).
    """
    imbalances = ordered_imbalances(rows)
    projectors = sorted({row.projector for row in rows if row.method not in (RANDOM_INIT, "supervised")})
    methods = [m for m in names if any(row.method == m for row in rows)]
    found = []
    for other in ("spectral", "barlow_twins"):
        if other not in methods or "simclr" not in methods:
            continue
        for projector in projectors:
            for imbalance in imbalances:
                summary = paired_difference(per_seed(rows, other, projector, imbalance, "top1"),
                                            per_seed(rows, "simclr", projector, imbalance, "top1"))
                found.append({"what": f"{names[other]} − SimCLR, top-1", "projector": projector,
                              "imbalance": imbalance, "summary": summary, "unit": " points"})
            for imbalance in imbalances:
                if imbalance == BASE_IMBALANCE:
                    continue
                summary = paired_difference(robustness_per_seed(rows, other, projector, imbalance),
                                            robustness_per_seed(rows, "simclr", projector, imbalance))
                found.append({"what": f"Δ {names[other]} − Δ SimCLR", "projector": projector,
                              "imbalance": imbalance, "summary": summary, "unit": "%"})
    for key, label in BASELINE_SCORES.items():
        for method, projector in cells(rows, list(names)):
            if method == RANDOM_INIT:
                continue
            for imbalance in imbalances:
                summary = paired_difference(per_seed(rows, method, projector, imbalance, key),
                                            per_seed(rows, RANDOM_INIT, "none", imbalance, key))
                if summary is not None:
                    found.append({"what": f"{names[method]} − random init, {label}", "projector": projector,
                                  "imbalance": imbalance, "summary": summary, "unit": " points"})
    return [d for d in found if d["summary"] is not None]


def accuracy_table(rows: list[StudyRow], names: Mapping[str, str], key: str) -> list[str]:
    imbalances = ordered_imbalances(rows)
    header = ["method", "projector", *imbalances, *[f"Δ {i}" for i in imbalances if i != BASE_IMBALANCE]]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for method, projector in cells(rows, list(names)):
        entries = [format_points(summarize_seeds(per_seed(rows, method, projector, i, key).values()))
                   for i in imbalances]
        for imbalance in imbalances:
            if imbalance == BASE_IMBALANCE:
                continue
            if method == RANDOM_INIT:
                entries.append("—")
                continue
            drops = robustness_per_seed(rows, method, projector, imbalance, key).values()
            entries.append(format_points(summarize_seeds(drops), signed=True, unit="%"))
        label = "Random init" if method == RANDOM_INIT else names.get(method, method)
        lines.append(f"| {label} | {projector} | " + " | ".join(entries) + " |")
    return lines


def rank_changes(rows: list[StudyRow], names: Mapping[str, str]) -> list[dict]:
    """Per (method, projector, imbalance): the embeddings' effective rank of the untrained and the
    trained network of each run, and trained − untrained paired by run, where both were measured."""
    found = []
    for method, projector in cells(rows, list(names)):
        for imbalance in ordered_imbalances(rows):
            initial = per_seed(rows, method, projector, imbalance, "initial_effective_rank")
            final = per_seed(rows, method, projector, imbalance, "effective_rank")
            change = paired_difference(final, initial)
            if change is not None:
                shared = sorted(set(initial) & set(final))
                found.append({"method": names.get(method, method), "projector": projector, "imbalance": imbalance,
                              "initial": summarize_seeds(initial[s] for s in shared),
                              "final": summarize_seeds(final[s] for s in shared), "summary": change})
    return found


def rank_section(found: list[dict]) -> list[str]:
    """The effective-rank table of `rank_changes` and how many cells lost or gained rank in training."""
    lines = ["## Effective rank of the embeddings (RankMe)", "",
             "| method | projector | imbalance | n | untrained | trained | trained − untrained | "
             "distinguishable from 0 |", "|---|---|---|---|---|---|---|---|"]
    for d in found:
        lines.append(f"| {d['method']} | {d['projector']} | {d['imbalance']} | {d['summary'].n} | "
                     f"{format_points(d['initial'], scale=1)} | {format_points(d['final'], scale=1)} | "
                     f"{format_points(d['summary'], scale=1, signed=True)} | {verdict(d['summary'])} |")
    lost = sum(1 for d in found if d["summary"].excludes_zero and d["summary"].mean < 0)
    gained = sum(1 for d in found if d["summary"].excludes_zero and d["summary"].mean > 0)
    lines += ["", "RankMe of the centred covariance of the embeddings (the backbone features without projector) "
              "on the spectrum probe's fixed test images: the run's own network at step 0 (untrained) and after "
              f"its last epoch, paired by run. Rank lost in training, by more than the interval: {lost} of "
              f"{len(found)} cells; gained: {gained}.", ""]
    return lines


def equivalence_bound(summary: SeedSummary) -> float:
    """The largest |difference| the 95 % interval allows: |true difference| < bound (same units)."""
    return max(abs(summary.low), abs(summary.high))


def _seeds(count: int | None) -> str:
    return f"> {MAX_SEEDS:,}" if count is None else str(count)


def power_section(found: list[dict], target: float = TARGET_HALF_WIDTH) -> list[str]:
    """Per paired difference: its sd, the half-width its seeds give, and the seeds it would need."""
    rows = [(d, power_analysis(d["summary"], target, TARGET_POWER)) for d in found]
    rows = [(d, p) for d, p in rows if p is not None]
    if not rows:
        return []
    points = f"{100 * target:g}"
    lines = ["## Power analysis (how many seeds each paired difference needs)", "",
             f"| difference | projector | imbalance | n | paired sd | 95 % half-width now | seeds for ±{points} | "
             f"power now (observed mean) | seeds for {100 * TARGET_POWER:.0f} % power (observed mean) |",
             "|---|---|---|---|---|---|---|---|---|"]
    for d, p in rows:
        unit = "%" if d["unit"] == "%" else ""
        power = "—" if p.power is None else f"{100 * p.power:.0f} %"
        lines.append(f"| {d['what']} | {d['projector']} | {d['imbalance']} | {p.n} | {100 * p.sd:.1f}{unit} | "
                     f"±{100 * p.half_width:.1f}{unit} | {_seeds(p.seeds_for_target)} | {power} | "
                     f"{_seeds(p.seeds_for_power)} |")
    lines += ["", f"Paired sd: of the per-seed differences. Seeds for ±{points}: the fewest seeds whose 95 % "
              f"t-interval half-width t(0.975, n−1)·sd/√n is at most {points} points (or {points} % for Δ) at "
              f"this sd. Power: the probability that the 95 % interval of the paired t-test excludes 0 when the "
              f"true difference equals the observed mean (exact, from the noncentral t distribution); the last "
              f"column is the fewest seeds for {100 * TARGET_POWER:.0f} % power against it (> {MAX_SEEDS:,}: an "
              f"observed mean of 0 or one too small to detect). Both assume the sd stays as measured; "
              f"re-estimate them as seeds arrive.", ""]
    return lines


def summary_markdown(rows: list[StudyRow], names: Mapping[str, str]) -> str:
    """The study's summary.md: tables, sampling error, paired differences, and the reading.

    Args:
        rows: one per run (see the module docstring).
        names: method key -> display name, in display order (e.g. ``{"simclr": "SimCLR", ...}``).
    """
    seeds = sorted({row.seed for row in rows})
    n = len(seeds)
    out = [f"# Imbalance study: {n} seed{'s' if n != 1 else ''} ({', '.join(map(str, seeds))})", ""]
    out += ["## Linear-evaluation top-1 (%)", "", *accuracy_table(rows, names, "top1"), ""]
    out += ["Cells: mean ± sd over seeds [95 % t-interval of the mean]; with one seed there is no "
            "interval. Δ = (A_none − A_imbalanced) / A_none at equal seed, smaller is more robust. "
            "Random init: the same protocol on the untrained network of the same architecture and seed "
            "(it saw no training data, so its row is the same at every imbalance). The supervised baseline "
            "has no projector.", ""]
    if any(_finite(row.knn_top1) for row in rows):
        out += ["## kNN top-1 (%)", "", *accuracy_table(rows, names, "knn_top1"), ""]
    accuracies = [float(row.top1) for row in rows if _finite(row.top1)]
    tests = [int(row.num_test) for row in rows if _finite(row.num_test) and float(row.num_test) > 0]
    sampling = None
    if accuracies and tests:
        p, num_test = sum(accuracies) / len(accuracies), min(tests)
        sampling = binomial_standard_error(p, num_test)
        out += ["## Test-set sampling error", "",
                f"Every accuracy is measured on {num_test:,} test images: binomial standard error "
                f"√(p(1−p)/n) = ±{100 * sampling:.2f} points at the mean top-1 p = {100 * p:.1f} % "
                f"(95 %: ±{196 * sampling:.2f}). It is part of the seed-to-seed spread above; with one "
                "seed it is the only noise estimate there is.", ""]
    found = differences(rows, names)
    out += ["## Paired differences (at equal seed and imbalance)", "",
            "| difference | projector | imbalance | n | mean ± sd [95 % interval] | distinguishable from 0 |",
            "|---|---|---|---|---|---|"]
    for d in found:
        out.append(f"| {d['what']} | {d['projector']} | {d['imbalance']} | {d['summary'].n} | "
                   f"{format_points(d['summary'], signed=True, unit=d['unit'])} | {verdict(d['summary'])} |")
    out += [""]
    out += power_section(found)
    ranks = rank_changes(rows, names)
    if ranks:
        out += rank_section(ranks)
    out += ["## Reading", "", *reading(found, n, sampling), ""]
    return "\n".join(out)


def reading(found: list[dict], num_seeds: int, sampling: float | None) -> list[str]:
    """Which differences are distinguishable from zero at this seed count, and which are not."""
    def name(d: dict) -> str:
        return f"{d['what']} ({d['projector']}, {d['imbalance']}: {format_points(d['summary'], signed=True)})"

    def bounded(d: dict) -> str:
        if d["summary"].half_width is None:  # one seed: no interval, so no bound either
            return name(d)
        unit = "%" if d["unit"] == "%" else " points"
        return (f"{d['what']} ({d['projector']}, {d['imbalance']}: {format_points(d['summary'], signed=True)}, "
                f"so |difference| < {100 * equivalence_bound(d['summary']):.1f}{unit})")

    if not found:
        return ["No paired difference could be formed (no method pair shares a seed)."]
    if num_seeds < 2 or all(d["summary"].excludes_zero is None for d in found):
        noise = f" the test-set sampling error alone is ±{100 * sampling:.1f} points per accuracy," if sampling else ""
        return [f"- One seed: no difference has an interval;{noise} so nothing in these tables is a finding. "
                "Run with --seeds 3 (or more) to separate differences from noise."]
    clear = [d for d in found if d["summary"].excludes_zero]
    unclear = [d for d in found if not d["summary"].excludes_zero]
    lines = [f"With {num_seeds} seeds, a difference counts only when its 95 % t-interval excludes 0."]
    if clear:
        lines.append(f"- Distinguishable from zero ({len(clear)} of {len(found)}): "
                     + "; ".join(map(name, clear)) + ".")
    else:
        lines.append("- No difference is distinguishable from zero.")
    if unclear:
        lines.append(f"- Not distinguishable from zero ({len(unclear)}), bounded by their intervals instead: "
                     + "; ".join(map(bounded, unclear)) + ".")
    for label in BASELINE_SCORES.values():
        above = [d for d in found if d["what"].endswith(f"− random init, {label}")]
        if above:
            beats = [d for d in above if d["summary"].excludes_zero and d["summary"].mean > 0]
            lines.append(f"- Above the random-init baseline by more than the interval, {label}: {len(beats)} of "
                         f"{len(above)} (method, projector, imbalance) cells.")
    claim = [d for d in found if d["what"].startswith("Δ SCL")]
    if claim:
        robust = [d for d in claim if d["summary"].excludes_zero and d["summary"].mean < 0]
        lines.append(f"- The paper's claim (SCL loses less than SimCLR under imbalance, Δ SCL − Δ SimCLR < 0): "
                     f"supported with an interval in {len(robust)} of {len(claim)} (projector, imbalance) cells.")
        lines += [f"  - {claim_decision(d)}" for d in claim]
    return lines


def claim_decision(d: dict) -> str:
    """What one Δ SCL − Δ SimCLR cell decided: a finding, or the bound its interval puts on the difference."""
    summary = d["summary"]
    where = f"{d['projector']} projector, {d['imbalance']}, {summary.n} seed{'s' if summary.n != 1 else ''}"
    if summary.excludes_zero is None:
        return f"{where}: one seed, no interval: undecided."
    interval = format_points(summary, signed=True, unit="%")
    plan = power_analysis(summary, TARGET_HALF_WIDTH, TARGET_POWER)
    more = (f" A half-width of ±{100 * TARGET_HALF_WIDTH:g} % needs {_seeds(plan.seeds_for_target)} seeds."
            if plan is not None else "")
    if summary.excludes_zero:
        side = "SCL more robust, as the paper claims" if summary.mean < 0 else "SimCLR more robust, against the claim"
        return f"{where}: decided, {side}: {interval}.{more}"
    direction = ("the interval reaches the paper's direction (below 0), so it is compatible with an effect of "
                 f"up to {100 * abs(summary.low):.1f} %" if summary.low < 0
                 else "the interval does not reach below 0: no effect in the paper's direction is compatible")
    return (f"{where}: no difference distinguishable; |Δ SCL − Δ SimCLR| < {100 * equivalence_bound(summary):.1f} % "
            f"at this scale ({interval}); {direction}.{more}")
