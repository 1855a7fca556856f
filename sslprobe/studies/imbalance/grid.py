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


@dataclass(frozen=True)
class Cell:
    """One run of the grid; ``imbalance`` is a preset name or ``dirichlet:<concentration>``."""

    method: str
    imbalance: str
    projector: str
    seed: int

    @property
    def name(self) -> str:
        return f"{self.method}_{self.imbalance}_{self.projector}_seed{self.seed}"


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


def grid(methods: list[str], imbalances: list[str], projectors: list[str], seeds: int | Iterable[int]) -> list[Cell]:
    """Every (method, imbalance, projector, seed); the supervised baseline only without projector.

    ``seeds``: a count (seeds 0 … n − 1) or the seeds themselves.
    """
    seeds = list(range(seeds)) if isinstance(seeds, int) else list(seeds)
    cells = []
    for method in methods:
        for imbalance in imbalances:
            for projector in (["none"] if method == "supervised" else projectors):
                cells.extend(Cell(method, imbalance, projector, seed) for seed in seeds)
    if not cells:
        raise StudyError("the grid is empty: give at least one method, imbalance, projector and seed")
    return cells


def cell_config(cell: Cell, out: Path, study: str) -> dict:
    """Per-cell overrides: data, projector, seed, run directory and W&B grouping/tags."""
    tags = [f"method:{cell.method}", f"imbalance:{cell.imbalance}", f"projector:{cell.projector}",
            f"seed:{cell.seed}"]
    concentration = None
    imbalance = cell.imbalance
    if imbalance.startswith("dirichlet"):
        imbalance, concentration = "dirichlet", float(cell.imbalance.split(":", 1)[1])
    data = {"imbalance": imbalance, "subset_seed": cell.seed, "seed": cell.seed}
    if concentration is not None:
        data["concentration"] = concentration
    model = {"init_args": {}}
    if cell.method != "supervised":
        model["init_args"]["projector"] = None if cell.projector == "none" else "mlp"
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
