"""The imbalance-robustness study (paper Fig. 4, Appendix C) over a grid of ordinary runs.

Grid: method (SimCLR, SCL, Barlow Twins, Supervised) x imbalance (the paper's none / medium /
high counts, optionally Dirichlet concentrations) x projector (MLP, none) x seeds; each cell is
one ``python -m sslprobe fit`` run with linear evaluation, the spectrum probe and the kNN
monitor on. ``scripts/reproduce_imbalance.py`` is its command line.

- `presets`: the axes and the presets (what a cell trains), as a config fragment.
- `grid`: the cells, their config fragments, commands and directories.
- `running`: running the cells, resumably, one at a time or K per device.
- `launcher`: the cells as one SLURM job array (submitit), requeued when pre-empted.
- `results`: `StudyRow` (one row of ``results.csv``), collecting and aggregating the rows.
- `reevaluate`: finished cells evaluated again from their checkpoints on other evaluation sets.
- `figure`: ``figure4.png``.
- `command`: the command line.
"""

from sslprobe.studies.imbalance.command import main
from sslprobe.studies.imbalance.grid import Cell, StudyError, grid
from sslprobe.studies.imbalance.presets import METHODS, PRESETS
from sslprobe.studies.imbalance.results import StudyRow, aggregate, collect, read_csv, write_csv

__all__ = [
    "METHODS",
    "PRESETS",
    "Cell",
    "StudyError",
    "StudyRow",
    "aggregate",
    "collect",
    "grid",
    "main",
    "read_csv",
    "write_csv",
]
