"""The study's results: one typed row per run, ``results.csv``, and the aggregated outputs.

`StudyRow` is the one definition of a result: its fields, in order, are the columns of
``results.csv``; their annotations say how each column reads back; their metadata says which
key of a run's ``probes/linear_eval.json`` fills them. `aggregate` turns the rows into
``summary.md`` (`sslprobe.studies.report`) and ``figure4.png``
(`sslprobe.studies.imbalance.figure`).
"""

from __future__ import annotations

import csv
import functools
import json
import math
import os
import typing
from collections.abc import Mapping
from dataclasses import MISSING, dataclass, field, fields
from pathlib import Path

from sslprobe.studies.imbalance.grid import Cell, StudyError, result_path
from sslprobe.studies.imbalance.presets import METHODS
from sslprobe.studies.report import RANDOM_INIT
from sslprobe.studies.report import summary_markdown as study_summary

# Where a field comes from in linear_eval.json (field metadata key SOURCE):
ACCURACY = "accuracy"  # key <name> for a run; random_init_<name> for the random-init row
RUN_ONLY = "run"  # key <name> for a run; absent from the random-init row
BOTH = "both"  # key <name> for both
SOURCE = "linear_eval"


def _from_linear_eval(source: str):
    return field(default=None, metadata={SOURCE: source})


@dataclass(frozen=True)
class StudyRow:
    """One row of ``results.csv``: a finished run, or the random-init baseline of (imbalance, seed).

    Accuracies are fractions in [0, 1]; None where not measured (written as an empty cell).
    The random-init row has method ``random_init``, projector ``none``, no effective rank and
    no kNN monitor (a run's own ``initial_effective_rank`` and ``knn_monitor_initial`` are its
    untrained network's); its ``run_dir`` is its cache file.
    """

    method: str
    imbalance: str
    projector: str
    seed: int
    top1: float | None = _from_linear_eval(ACCURACY)  # linear-evaluation top-1
    knn_top1: float | None = _from_linear_eval(ACCURACY)  # kNN top-1 on the same features
    balanced: float | None = _from_linear_eval(ACCURACY)  # mean per-class accuracy
    rare_mean: float | None = _from_linear_eval(ACCURACY)  # mean over the classes rare in training
    frequent_mean: float | None = _from_linear_eval(ACCURACY)  # mean over the frequent ones
    effective_rank: float | None = None  # RankMe of the last embedding spectrum; NaN without spectrum.npz
    run_dir: str = ""  # relative to the study directory
    num_test: int | None = _from_linear_eval(BOTH)  # test images behind every accuracy
    random_init_top1: float | None = _from_linear_eval(RUN_ONLY)  # the run's random-init baseline
    random_init_knn_top1: float | None = _from_linear_eval(RUN_ONLY)
    knn_monitor_initial: float | None = None  # kNN monitor before training (epoch 0), if measured
    knn_monitor_final: float | None = None  # kNN monitor after the last epoch
    initial_effective_rank: float | None = None  # RankMe of the initial network's embeddings (spectrum epoch 0)

    @classmethod
    def columns(cls) -> list[str]:
        """The CSV header: the field names in order."""
        return [f.name for f in fields(cls)]

    @classmethod
    def of_run(cls, cell: Cell, result: Mapping, effective_rank: float, run_dir: str,
               knn_history: list[dict], initial_effective_rank: float | None = None) -> StudyRow:
        """The row of a finished cell from its ``linear_eval.json`` (``result``), kNN monitor history
        and embedding ranks (last and initial spectrum)."""
        measured = {f.name: result.get(f.name) for f in fields(cls) if f.metadata.get(SOURCE)}
        initial = knn_history[0]["top1"] if knn_history and knn_history[0]["epochs_trained"] == 0 else None
        return cls.typed(method=cell.method, imbalance=cell.imbalance, projector=cell.projector, seed=cell.seed,
                         effective_rank=effective_rank, run_dir=run_dir, **measured,
                         knn_monitor_initial=initial,
                         knn_monitor_final=knn_history[-1]["top1"] if knn_history else None,
                         initial_effective_rank=initial_effective_rank)

    @classmethod
    def of_random_init(cls, cell: Cell, result: Mapping, out: Path | None = None) -> StudyRow:
        """The random-init baseline at the cell's (imbalance, seed), from the cell's ``linear_eval.json``;
        its ``run_dir`` (the cache file) relative to ``out`` when it lies there."""
        measured = {}
        for f in fields(cls):
            source = f.metadata.get(SOURCE)
            if source == ACCURACY:
                measured[f.name] = result.get(f"random_init_{f.name}")
            elif source == BOTH:
                measured[f.name] = result.get(f.name)
        run_dir = result.get("random_init_cache") or ""
        if out is not None and run_dir and Path(run_dir).is_relative_to(out):
            run_dir = str(Path(run_dir).relative_to(out))
        return cls.typed(method=RANDOM_INIT, imbalance=cell.imbalance, projector="none", seed=cell.seed,
                         run_dir=run_dir, **measured)

    @classmethod
    def typed(cls, **values) -> StudyRow:
        """A row with each value converted to its field's type (None stays None).

        Raises:
            ValueError: a value that is not of its field's type (e.g. 2.5 for an int).
        """
        kinds = _field_types(cls)
        return cls(**{name: None if value is None else _convert(value, kinds[name]) for name, value in values.items()})

    @classmethod
    def from_csv(cls, record: Mapping[str, str | None]) -> StudyRow:
        """A row read back from ``results.csv``; empty (or ``None``) cells and absent columns become None.

        Raises:
            StudyError: a required column is missing or a number does not parse.
        """
        kinds, values = _field_types(cls), {}
        for f in fields(cls):
            text = record.get(f.name)
            if text in (None, "", "None"):
                if f.default is MISSING:
                    raise StudyError(f"column {f.name!r} is missing or empty")
                continue  # the field's default
            try:
                values[f.name] = _convert(text, kinds[f.name])
            except ValueError:
                raise StudyError(f"column {f.name!r} holds {text!r}, not a number") from None
        return cls(**values)

    def to_csv(self) -> dict:
        """{column: value}; `csv` writes None as an empty cell and numbers as ``str`` does."""
        return {f.name: getattr(self, f.name) for f in fields(self)}


@functools.cache
def _field_types(cls: type) -> dict[str, type]:
    """{field: str, int or float}, from the annotations (``float | None`` -> float)."""
    kinds = {}
    for name, hint in typing.get_type_hints(cls).items():
        options = [kind for kind in typing.get_args(hint) or (hint,) if kind is not type(None)]
        kinds[name] = options[0]
    return kinds


def _convert(value, kind: type):
    """``value`` (a CSV cell's text or a JSON number) as ``kind``; an int must be integral."""
    if kind is int:
        number = float(value)  # "2000", "2000.0" and 2000 alike
        if not number.is_integer():
            raise ValueError(f"{value!r} is not an integer")
        return int(number)
    return kind(value)


def training_measurements(run: Path) -> tuple[float, float | None, list[dict]]:
    """A finished run's effective rank (last spectrum; NaN without spectrum.npz), its initial one (an
    epoch-0 spectrum, else None) and its kNN monitor history."""
    import numpy as np

    spectrum = run / "probes" / "spectrum.npz"
    effective_rank, initial_rank = math.nan, None
    if spectrum.is_file():
        with np.load(spectrum) as arrays:
            ranks = arrays["embeddings_effective_rank"]
            effective_rank = float(ranks[-1])
            if "epochs" in arrays and len(ranks) > 1 and arrays["epochs"][0] == 0:  # epoch 0: initial
                initial_rank = float(ranks[0])
    monitor = run / "probes" / "knn_monitor.json"
    history = json.loads(monitor.read_text())["history"] if monitor.is_file() else []
    return effective_rank, initial_rank, history


def rows_of(found: list[tuple[Cell, Mapping, Path]], out: Path) -> list[StudyRow]:
    """One row per (cell, final evaluation, run folder), plus one random-init row per (imbalance, seed)."""
    rows, baselines = [], {}
    for cell, result, run in found:
        effective_rank, initial_rank, history = training_measurements(run)
        # the run folder relative to the study (a re-evaluation's runs lie in the study it re-evaluates)
        rows.append(StudyRow.of_run(cell, result, effective_rank, os.path.relpath(run, out), history, initial_rank))
        if result.get("random_init_top1") is not None:
            baselines.setdefault((cell.imbalance, cell.seed), StudyRow.of_random_init(cell, result, out))
    return rows + [baselines[key] for key in sorted(baselines)]


def collect(cells: list[Cell], out: Path, study: str) -> list[StudyRow]:
    """One row per finished run, plus one random-init row per (imbalance, seed).

    The random-init row holds the protocol's result on the untrained network of the same
    architecture and seed (``random_init_*`` of the cells' ``linear_eval.json``); it saw no
    training data, so it is the same at every imbalance, but it is written per imbalance to be
    paired with the runs at equal seed and imbalance.
    """
    found = [(cell, json.loads(path.read_text()), path.parent.parent)
             for cell in cells if (path := result_path(cell, out, study)).is_file()]
    return rows_of(found, out)


def write_csv(rows: list[StudyRow], path: Path) -> None:
    with open(path, "w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=StudyRow.columns())
        writer.writeheader()
        writer.writerows(row.to_csv() for row in rows)


def read_csv(path: Path) -> list[StudyRow]:
    with open(path, newline="") as handle:
        try:
            return [StudyRow.from_csv(record) for record in csv.DictReader(handle)]
        except StudyError as error:
            raise StudyError(f"{path}: {error}") from None


def merge_rows(rows: list[StudyRow], paths: list[Path]) -> list[StudyRow]:
    """``rows`` followed by the rows of earlier parts of the same study (their ``results.csv`` files).

    A part run elsewhere (a cluster, another machine whose run folders are not here) adds its
    seeds this way. Raises `StudyError` when a file is missing, when a (method, imbalance,
    projector, seed) occurs twice, or when the parts measured their accuracies on different
    numbers of test images (another evaluation protocol: never mixed in one summary).
    """
    merged, seen = list(rows), {(r.method, r.imbalance, r.projector, r.seed) for r in rows}
    for path in paths:
        if not path.is_file():
            raise StudyError(f"--merge: {path} does not exist")
        for row in read_csv(path):
            key = (row.method, row.imbalance, row.projector, row.seed)
            if key in seen:
                raise StudyError(f"--merge: {path} repeats {'/'.join(map(str, key))}, already in the study")
            seen.add(key)
            merged.append(row)
    sizes = sorted({r.num_test for r in merged if r.num_test is not None})
    if len(sizes) > 1:
        raise StudyError(f"--merge: the parts used different test sets ({', '.join(map(str, sizes))} images): "
                         "another evaluation protocol, not mixed")
    return merged


def summary_markdown(rows: list[StudyRow]) -> str:
    """``summary.md`` of the rows (`sslprobe.studies.report.summary_markdown` with the study's method names)."""
    return study_summary(rows, METHODS)


def aggregate(out: Path, rows: list[StudyRow] | None = None) -> None:
    """Write ``results.csv`` (from ``rows``; read from it when None), ``summary.md`` and ``figure4.png``."""
    from sslprobe.studies.imbalance.figure import figure

    csv_path = out / "results.csv"
    if rows is None:
        if not csv_path.is_file():
            raise StudyError(f"--aggregate-only: {csv_path} does not exist")
        rows = read_csv(csv_path)
    else:
        write_csv(rows, csv_path)
    if not rows:
        raise StudyError(f"no finished runs to aggregate in {out}")
    (out / "summary.md").write_text(summary_markdown(rows))
    figure(rows, out / "figure4.png")
