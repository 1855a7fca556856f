"""The grid of cells and what each cell is: its config fragment, its command, its directory.

A cell is one ``python -m sslprobe fit`` run: (method, imbalance, projector, seed). Its outputs
live in ``DIR/runs/imbalance/<cell name>/``, its linear evaluation in ``probes/linear_eval.json``
there; a cell whose file exists is finished.
"""

from __future__ import annotations

import json
import sys
from dataclasses import dataclass
from pathlib import Path

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


def grid(methods: list[str], imbalances: list[str], projectors: list[str], seeds: int) -> list[Cell]:
    """Every (method, imbalance, projector, seed); the supervised baseline only without projector."""
    cells = []
    for method in methods:
        for imbalance in imbalances:
            for projector in (["none"] if method == "supervised" else projectors):
                cells.extend(Cell(method, imbalance, projector, seed) for seed in range(seeds))
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


def fit_command(cell: Cell, out: Path) -> list[str]:
    """``python -m sslprobe fit`` with the method's config, the probe fragments, the preset and the cell."""
    return [
        sys.executable, "-m", "sslprobe", "fit",
        "--config", str(REPO / "configs" / "base.yaml"),
        "--config", str(REPO / "configs" / "methods" / f"{cell.method}.yaml"),
        "--config", str(REPO / "configs" / "backbones" / "resnet12.yaml"),
        "--config", str(REPO / "callbacks" / "linear_eval.yaml"),
        "--config", str(REPO / "callbacks" / "spectrum.yaml"),
        "--config", str(REPO / "callbacks" / "knn_monitor.yaml"),
        "--config", str(out / "preset.yaml"),
        "--config", str(out / "cells" / f"{cell.name}.yaml"),
    ]


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
