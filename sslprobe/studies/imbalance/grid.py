"""The grid of cells and what each cell is: its config fragment, its command, its directory.

A cell is one ``python -m sslprobe fit`` run: (method, imbalance, projector, seed). Its outputs
live in ``DIR/runs/imbalance/<cell name>/``, its linear evaluation in ``probes/linear_eval.json``
there. A cell is finished when that file exists *and* the cell ran under the study's protocol:
``protocol.json`` beside it records the digest of the configs the cell composed (`protocol_digest`),
so a folder filled by one preset is never counted, or aggregated, as another preset's study.
"""

from __future__ import annotations

import hashlib
import json
import re
import sys
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import yaml

from sslprobe.studies.imbalance.presets import PRESETS, REPO, preset_config


class StudyError(ValueError):
    """A bad argument; reported as one line."""


DEFAULT_DATASET = "cifar10"
PAPER_PRESETS = ("medium", "high")  # the paper's CIFAR-10 counts; other data sets take the profiles
# Classes of the registered data sets' default labels: the supervised baseline's classifier size.
DATASET_CLASSES = {"cifar10": 10, "cifar100": 100, "stl10": 10}
IMBALANCE_SPECS = "none, medium, high, dirichlet:<concentration > 0>, long_tail:<ratio >= 1>, step:<ratio >= 1>"


def imbalance_options(spec: str) -> dict:
    """The ``data`` options of an imbalance of the study: ``none``, ``medium``, ``high``,
    ``dirichlet:<concentration>``, ``long_tail:<ratio>`` or ``step:<ratio>``.

    >>> imbalance_options("long_tail:100")
    {'imbalance': 'long_tail', 'imbalance_ratio': 100.0}

    Raises:
        StudyError: an unknown kind, or a concentration <= 0 or ratio < 1.
    """
    if spec in ("none", *PAPER_PRESETS):
        return {"imbalance": spec}
    kind, _, value = spec.partition(":")
    option, lowest = {"dirichlet": ("concentration", 0.0), "long_tail": ("imbalance_ratio", 1.0),
                      "step": ("imbalance_ratio", 1.0)}.get(kind, (None, None))
    try:
        number = float(value)
    except ValueError:
        number = None
    valid = option is not None and number is not None and (number > lowest if kind == "dirichlet" else number >= lowest)
    if not valid:
        raise StudyError(f"unknown imbalance {spec!r}; valid: {IMBALANCE_SPECS}")
    return {"imbalance": kind, option: number}


def check_dataset(dataset: str | None, imbalances: list[str], methods: list[str]) -> None:
    """`StudyError` for a dataset name that cannot name files, the paper's CIFAR-10 presets on another
    data set, or the supervised baseline on a data set whose class count the study does not know."""
    if dataset is None:
        return
    if not re.fullmatch(r"[A-Za-z0-9_.]+", dataset):
        raise StudyError(f"--dataset must be a data set name or class path (letters, digits, _ and .), "
                         f"got {dataset!r}")
    presets = [i for i in imbalances if i in PAPER_PRESETS]
    if presets and dataset != DEFAULT_DATASET:
        raise StudyError(f"imbalance(s) {presets} are the paper's CIFAR-10 counts; on {dataset} use none, "
                         "long_tail:<ratio>, step:<ratio> or dirichlet:<concentration>")
    if "supervised" in methods and dataset not in DATASET_CLASSES:
        raise StudyError(f"the supervised baseline needs the class count of {dataset}, known for "
                         f"{', '.join(DATASET_CLASSES)} only; leave supervised out of --methods")


@dataclass(frozen=True)
class Cell:
    """One run of the grid; ``imbalance`` is a spec of `imbalance_options`, ``dataset`` the
    ``data.dataset`` of the run (None: the configs' default, CIFAR-10)."""

    method: str
    imbalance: str
    projector: str
    seed: int
    dataset: str | None = None

    @property
    def name(self) -> str:
        """``<method>_<imbalance>_<projector>_seed<seed>``, after ``<dataset>_`` for another data set than CIFAR-10."""
        prefix = f"{self.dataset}_" if self.dataset not in (None, DEFAULT_DATASET) else ""
        return f"{prefix}{self.method}_{self.imbalance}_{self.projector}_seed{self.seed}"


def parse_seeds(text: str) -> list[int]:
    """``--seeds``: a count (``3``: seeds 0, 1, 2) or ranges and single seeds (``3-13``, ``0-2,7``).

    Ranges include both ends; the result is sorted and without repeats. `StudyError` otherwise.
    """
    text = text.strip()
    if re.fullmatch(r"\d+", text):
        return list(range(int(text)))
    seeds: set[int] = set()
    for part in text.split(","):
        bounds = re.fullmatch(r"\s*(\d+)\s*(?:-\s*(\d+)\s*)?", part)
        if bounds is None or (bounds.group(2) is not None and int(bounds.group(2)) < int(bounds.group(1))):
            raise StudyError(f"--seeds {text!r}: give a count (3) or ranges of seeds (3-13, 0-2,7)")
        first = int(bounds.group(1))
        seeds.update(range(first, int(bounds.group(2) or first) + 1))
    return sorted(seeds)


def grid(methods: list[str], imbalances: list[str], projectors: list[str], seeds: int | Iterable[int],
         dataset: str | None = None) -> list[Cell]:
    """Every (method, imbalance, projector, seed); the supervised baseline only without projector.

    ``seeds``: a count (seeds 0 … n − 1) or the seeds themselves.
    """
    seeds = list(range(seeds)) if isinstance(seeds, int) else list(seeds)
    cells = []
    for method in methods:
        for imbalance in imbalances:
            for projector in (["none"] if method == "supervised" else projectors):
                cells.extend(Cell(method, imbalance, projector, seed, dataset) for seed in seeds)
    if not cells:
        raise StudyError("the grid is empty: give at least one method, imbalance, projector and seed")
    return cells


def cell_config(cell: Cell, out: Path, study: str) -> dict:
    """Per-cell overrides: data, projector, seed, run directory and W&B grouping/tags."""
    tags = [f"method:{cell.method}", f"imbalance:{cell.imbalance}", f"projector:{cell.projector}",
            f"seed:{cell.seed}", *([f"dataset:{cell.dataset}"] if cell.dataset else [])]
    options = imbalance_options(cell.imbalance)
    data = {"imbalance": options.pop("imbalance"), "subset_seed": cell.seed, "seed": cell.seed, **options}
    if cell.dataset is not None:
        data["dataset"] = cell.dataset
    model = {"init_args": {}}
    if cell.method != "supervised":
        model["init_args"]["projector"] = None if cell.projector == "none" else "mlp"
    elif cell.dataset is not None:
        model["init_args"]["num_classes"] = DATASET_CLASSES[cell.dataset]
    return {
        "seed_everything": cell.seed,
        "trainer": {
            "default_root_dir": str(out / "runs"),
            "logger": [
                {"class_path": "lightning.pytorch.loggers.WandbLogger",
                 "init_args": {"project": "sslprobe", "group": study, "tags": tags}},
                {"class_path": "lightning.pytorch.loggers.CSVLogger", "init_args": {"save_dir": str(out / "runs")}},
            ],
        },
        "model": model,
        "data": data,
        "run": {"experiment": study, "version": cell.name},
    }


def fragments(cell: Cell) -> list[Path]:
    """The checkout's config fragments a cell composes, before its preset and its own overrides."""
    return [
        REPO / "configs" / "base.yaml",
        REPO / "configs" / "methods" / f"{cell.method}.yaml",
        REPO / "configs" / "backbones" / "resnet12.yaml",
        REPO / "callbacks" / "linear_eval.yaml",
        REPO / "callbacks" / "spectrum.yaml",
        REPO / "callbacks" / "knn_monitor.yaml",
    ]


def config_files(cell: Cell, out: Path) -> list[Path]:
    """Every config file a cell composes, in order: the fragments, ``DIR/preset.yaml``, its own."""
    return [*fragments(cell), out / "preset.yaml", out / "cells" / f"{cell.name}.yaml"]


def fit_command(cell: Cell, out: Path) -> list[str]:
    """``python -m sslprobe fit`` with the method's config, the probe fragments, the preset and the cell."""
    return [sys.executable, "-m", "sslprobe", "fit",
            *[arg for path in config_files(cell, out) for arg in ("--config", str(path))]]


# Keys that say where a cell writes and reads, not what it computes: left out of its protocol.
_PLACE_KEYS = {"run": None, "trainer": ("default_root_dir", "logger"), "data": ("root",)}


def protocol_digest(configs: list[dict]) -> str:
    """The digest of a cell's composed configs (in order) without the keys that only name places.

    Two cells with the same digest ran the same settings (preset, method, backbone, probes, data
    selection and seed) on whatever data folder and output folder each had.
    """
    kept = []
    for config in configs:
        config = dict(config or {})
        for key, inner in _PLACE_KEYS.items():
            if key in config and inner is None:
                del config[key]
            elif isinstance(config.get(key), dict):
                config[key] = {k: v for k, v in config[key].items() if k not in inner}
        kept.append(config)
    return hashlib.sha256(json.dumps(kept, sort_keys=True).encode()).hexdigest()[:16]


def planned_protocol(cell: Cell, out: Path, study: str, preset_name: str) -> str:
    """`protocol_digest` of what ``cell`` would compose under ``preset_name`` (nothing is read from ``out``)."""
    parsed = [yaml.safe_load(path.read_text()) for path in fragments(cell)]
    return protocol_digest([*parsed, json.loads(json.dumps(preset_config(PRESETS[preset_name], ""))),
                            json.loads(json.dumps(cell_config(cell, out, study)))])


def record_protocol(cell: Cell, out: Path, study: str) -> None:
    """Write ``protocol.json`` beside a finished cell: the digest of the configs it was run with."""
    configs = [yaml.safe_load(path.read_text()) for path in config_files(cell, out)]
    (run_dir(cell, out, study) / "protocol.json").write_text(json.dumps({"digest": protocol_digest(configs)}) + "\n")


def finished(cells: list[Cell], out: Path, study: str, preset_name: str) -> list[Cell]:
    """The cells whose result exists and was made under ``preset_name``'s protocol.

    A result made under another protocol (another preset, other fragments, or no ``protocol.json``:
    an older sslprobe) is never counted or re-run silently: `StudyError` names the cells.
    """
    done, foreign = [], []
    for cell in cells:
        if not result_path(cell, out, study).is_file():
            continue
        record = run_dir(cell, out, study) / "protocol.json"
        digest = json.loads(record.read_text()).get("digest") if record.is_file() else None
        (done if digest == planned_protocol(cell, out, study, preset_name) else foreign).append(cell)
    if foreign:
        names = ", ".join(c.name for c in foreign[:3]) + (f" and {len(foreign) - 3} more" if len(foreign) > 3 else "")
        raise StudyError(f"{out}: {len(foreign)} finished cell(s) ran under another protocol than preset "
                         f"{preset_name!r} with these configs ({names}); use another --out, or move them away")
    return done


def run_dir(cell: Cell, out: Path, study: str) -> Path:
    return out / "runs" / study / cell.name


def result_path(cell: Cell, out: Path, study: str) -> Path:
    """The cell's linear evaluation; the cell is finished when it exists."""
    return run_dir(cell, out, study) / "probes" / "linear_eval.json"


def write_cell_config(cell: Cell, out: Path, study: str) -> None:
    # JSON is valid YAML: the fragment composes after the method config and the probe fragments.
    (out / "cells" / f"{cell.name}.yaml").write_text(json.dumps(cell_config(cell, out, study), indent=2))


def prepare(out: Path, preset_name: str, data_root: str) -> None:
    """Create ``DIR/cells`` and write ``DIR/preset.yaml``; `StudyError` if ``out`` is not writable."""
    try:
        (out / "cells").mkdir(parents=True, exist_ok=True)
        probe = out / ".writable"
        probe.write_text("")
        probe.unlink()
    except OSError as error:
        raise StudyError(f"--out {out} is not writable: {error.strerror or error}") from None
    (out / "preset.yaml").write_text(json.dumps(preset_config(PRESETS[preset_name], data_root), indent=2))
