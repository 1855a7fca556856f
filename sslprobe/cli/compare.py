"""``python -m sslprobe compare RUN_DIR...``: one table and overlaid spectra of trained runs and probed models.

Each run directory (a ``fit`` or a ``probe`` of any model) contributes one row, read from its
files: linear and kNN top-1 beside their random-init baselines (``probes/linear_eval.json``),
the effective ranks of features and embeddings of its latest spectrum (``probes/spectrum.npz``)
and the verdict of its latest landscape (``probes/landscape_epoch<E>.json``). Runs whose data or
probe settings differ are refused, naming the differences; ``--allow_differences`` compares them
anyway and prints the differences and writes them under the table. Nothing existing is overwritten.
"""

from __future__ import annotations

import csv
import json
import re
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from sslprobe.cli.runs import next_version
from sslprobe.options import OneLineParser

# Data options that change how data is loaded, not which images and views the probes see.
IGNORED_DATA_KEYS = {"root", "download", "num_workers", "pin_memory", "persistent_workers", "eval_batch_size",
                     "augment_on"}
# Per probe (its config key), options of schedule and speed only.
IGNORED_PROBE_KEYS = {
    "spectrum": {"every_n_epochs", "batch_size", "at_start"},
    "linear_eval": {"every_n_epochs", "extract_batch_size", "random_init_seed"},
    "landscape": {"every_n_epochs"},
}
PROBE_FILES = {"spectrum": "spectrum.npz", "linear_eval": "linear_eval.json", "landscape": "landscape_epoch*.json"}
COLUMNS = ("run", "model", "linear_top1", "linear_top1_random_init", "knn_top1", "knn_top1_random_init",
           "features_effective_rank", "embeddings_effective_rank", "landscape")
HEADERS = {  # the markdown table's column titles (accuracies in %)
    "run": "run", "model": "model", "linear_top1": "linear top-1 %", "linear_top1_random_init": "random init %",
    "knn_top1": "kNN top-1 %", "knn_top1_random_init": "random init %",
    "features_effective_rank": "eff. rank features", "embeddings_effective_rank": "eff. rank embeddings",
    "landscape": "landscape",
}
PERCENT = ("linear_top1", "linear_top1_random_init", "knn_top1", "knn_top1_random_init")


@dataclass
class RunRow:
    """One run's row and what the figures and the settings check need."""

    path: Path
    config: dict
    values: dict = field(default_factory=dict)
    spectra: dict = field(default_factory=dict)  # "features" / "embeddings" -> eigenvalues of the latest row


def model_label(config: dict) -> str:
    model = config.get("model") or {}
    if config.get("command") == "probe":
        return str(model.get("backbone"))
    method = str(model.get("class_path", "?")).rsplit(".", 1)[-1]
    backbone = (model.get("init_args") or {}).get("backbone", "?")
    if isinstance(backbone, dict):
        backbone = str(backbone.get("class_path", "?")).rsplit(".", 1)[-1]
    return f"{method} {backbone}"


def landscape_verdict(report: dict) -> str:
    if report.get("applicable") is False:
        return f"n/a: {report.get('reason', '')}"
    if report.get("scale_invariant"):
        return f"scale-invariant; 2-D minimum at r1={report['min_2d_r1']:g}, r2={report['min_2d_r2']:g}"
    return f"origin: {report.get('origin')}; 1-D minimum at a={report['min_1d_a']:g}"


def latest_landscape(probes: Path) -> Path | None:
    files = [(int(m.group(1)), p) for p in probes.glob("landscape_epoch*.json")
             if (m := re.fullmatch(r"landscape_epoch(\d+)\.json", p.name))]
    return max(files)[1] if files else None


def read_run(run_dir: Path) -> RunRow:
    """The row of one run directory, read from its files (a missing probe leaves its cells empty)."""
    import yaml

    config_path = run_dir / "config.yaml"
    if not config_path.is_file():
        raise FileNotFoundError(f"{run_dir} is not a run directory (no config.yaml)")
    row = RunRow(run_dir, yaml.safe_load(config_path.read_text()) or {})
    probes = run_dir / "probes"
    row.values = {"run": f"{run_dir.parent.name}/{run_dir.name}", "model": model_label(row.config)}
    if (probes / "linear_eval.json").is_file():
        linear = json.loads((probes / "linear_eval.json").read_text())
        row.values.update(linear_top1=linear.get("top1"), linear_top1_random_init=linear.get("random_init_top1"),
                          knn_top1=linear.get("knn_top1"), knn_top1_random_init=linear.get("random_init_knn_top1"))
    if (probes / "spectrum.npz").is_file():
        with np.load(probes / "spectrum.npz") as spectrum:
            for name, array in (("features", "feature_eigenvalues"), ("embeddings", "embedding_eigenvalues")):
                if f"{name}_effective_rank" in spectrum.files:
                    row.values[f"{name}_effective_rank"] = float(spectrum[f"{name}_effective_rank"][-1])
                if array in spectrum.files:
                    row.spectra[name] = np.asarray(spectrum[array][-1])
    landscape = latest_landscape(probes)
    if landscape is not None:
        row.values["landscape"] = landscape_verdict(json.loads(landscape.read_text()))
    return row


def _init_args(section) -> dict:
    if not isinstance(section, dict):
        return {}
    return dict(section.get("init_args", section))


def setting_differences(rows: list[RunRow]) -> list[str]:
    """``data.<key>`` / ``probes.<probe>.<key>``: the values per run, for every setting that differs."""
    settings = []
    for row in rows:
        flat = {f"data.{k}": v for k, v in (row.config.get("data") or {}).items() if k not in IGNORED_DATA_KEYS}
        for key, ignored in IGNORED_PROBE_KEYS.items():
            if not all(list((r.path / "probes").glob(PROBE_FILES[key])) for r in rows):
                continue  # a probe not in every run is not compared (its cells are empty)
            section = _init_args((row.config.get("probes") or {}).get(key))
            flat.update({f"probes.{key}.{k}": v for k, v in section.items() if k not in ignored})
        settings.append(flat)
    differences = []
    for key in sorted(set().union(*settings)):
        values = [json.dumps(s.get(key)) for s in settings]
        if len(set(values)) > 1:
            differences.append(f"{key}: " + ", ".join(f"{row.values['run']}={value}"
                                                      for row, value in zip(rows, values)))
    return differences


def _cell(key: str, value) -> str:
    if value is None:
        return "—"
    if key in PERCENT:
        return f"{100 * value:.2f}"
    if isinstance(value, float):
        return f"{value:.2f}"
    return str(value).replace("|", "/")


def markdown_table(rows: list[RunRow], differences: list[str]) -> str:
    lines = ["| " + " | ".join(HEADERS[c] for c in COLUMNS) + " |", "|" + "---|" * len(COLUMNS)]
    lines += ["| " + " | ".join(_cell(c, row.values.get(c)) for c in COLUMNS) + " |" for row in rows]
    text = "\n".join(lines) + "\n"
    text += ("\nAccuracies in %, each beside the same protocol on the randomly initialised architecture; "
             "effective ranks (RankMe) of the latest spectrum.\n")
    if differences:
        text += "\n**Settings that differ between these runs:**\n\n" + "".join(f"- {d}\n" for d in differences)
    return text


def spectrum_figures(rows: list[RunRow], out: Path) -> list[Path]:
    """Overlaid spectra of features and of embeddings, each curve divided by its largest eigenvalue."""
    from sslprobe.callbacks.base import save_figure
    from sslprobe.plots import plot_spectrum

    written = []
    for name in ("features", "embeddings"):
        curves = {f"{row.values['run']} ({row.values['model']})": row.spectra[name] / max(row.spectra[name].max(),
                                                                                          1e-300)
                  for row in rows if name in row.spectra}
        if curves:
            figure = plot_spectrum(curves, value_label="eigenvalue / largest",
                                   title=f"Covariance spectra of the {name}, each divided by its largest")
            written.append(save_figure(figure, out / f"spectra_{name}.png"))
    return written


def compare(run_dirs: list[Path], out: Path, allow_differences: bool = False) -> tuple[list[RunRow], list[str]]:
    """Write ``comparison.md``, ``comparison.csv`` and ``spectra_{features,embeddings}.png`` into ``out``."""
    if len(run_dirs) < 2:
        raise ValueError("compare needs at least two run directories")
    rows = [read_run(Path(p)) for p in run_dirs]
    differences = setting_differences(rows)
    if differences and not allow_differences:
        raise ValueError(f"the runs differ in data or probe settings ({'; '.join(differences)}); probe them with "
                         "the same settings, or pass --allow_differences to list the differences with the table")
    existing = [p for p in (out / "comparison.md", out / "comparison.csv") if p.exists()]
    if existing:
        raise FileExistsError(f"{existing[0]} exists; choose another --out")
    out.mkdir(parents=True, exist_ok=True)
    (out / "comparison.md").write_text(markdown_table(rows, differences))
    with open(out / "comparison.csv", "w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=COLUMNS)
        writer.writeheader()
        writer.writerows({c: ("" if row.values.get(c) is None else row.values[c]) for c in COLUMNS} for row in rows)
    spectrum_figures(rows, out)
    return rows, differences


def compare_command(argv: list[str]) -> None:
    parser = OneLineParser(prog="python -m sslprobe compare", description=__doc__.split("\n")[0])
    parser.add_argument("runs", nargs="+", help="run directories (of fit or probe)")
    parser.add_argument("--out", default=None, help="output folder (default: <runs root>/comparisons/version_<n>)")
    parser.add_argument("--allow_differences", action="store_true",
                        help="compare runs whose data or probe settings differ, listing the differences")
    args = parser.parse_args(argv)
    first = Path(args.runs[0]).resolve()
    out = Path(args.out) if args.out else first.parent.parent / "comparisons" / next_version(
        first.parent.parent / "comparisons")
    rows, differences = compare([Path(p) for p in args.runs], out, args.allow_differences)
    print((out / "comparison.md").read_text())
    for difference in differences:
        print(f"sslprobe: settings differ: {difference}")
    print(f"wrote {out / 'comparison.md'}, {out / 'comparison.csv'} and the spectra in {out}/")
