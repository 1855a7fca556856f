#!/usr/bin/env python3
"""Reproduce the paper's imbalance-robustness study (Fig. 4, Appendix C) with one command.

Grid: method (SimCLR, SCL, Barlow Twins, Supervised) x imbalance (the paper's none / medium /
high counts, optionally Dirichlet concentrations) x projector (MLP, none) x seeds. Every cell is
an ordinary ``python -m sslprobe fit`` run composed from the configs a user would write, with
linear evaluation and the spectrum probe on; the supervised baseline has no projector and is
drawn in both panels. Finished cells are skipped and interrupted ones resumed, so an interrupted
study continues where it stopped.

    python scripts/reproduce_imbalance.py --preset cpu --out results/imbalance_cpu
    python scripts/reproduce_imbalance.py --preset paper --out results/imbalance --dry-run
    python scripts/reproduce_imbalance.py --preset cpu --out results/imbalance_cpu --aggregate-only

    python scripts/reproduce_imbalance.py --preset paper --out results/imbalance --cells-per-device 4

    python scripts/reproduce_imbalance.py --dataset cifar100 --imbalances long_tail:100 none \
        --out results/imbalance_cifar100_lt

The last runs the same grid on CIFAR-100-LT (``data.dataset`` and the long-tail profile of
imbalance ratio 100 in every cell; ``step:<ratio>`` and ``dirichlet:<concentration>`` too).

    python scripts/reproduce_imbalance.py --preset paper --out results/imbalance --launcher slurm \
        --partition gpu --time 150 --gpus-per-task 1 --cells-per-task 4

``--launcher slurm`` submits the unfinished cells as one SLURM job array through submitit, waits for
it and aggregates; a pre-empted cell (SIGUSR1) checkpoints, its task is requeued and the cell
resumes from its last.ckpt (docs/guide/clusters.md).

Outputs: DIR/results.csv (one row per run, plus a random-init row per imbalance and seed),
DIR/summary.md (mean ± sd and 95 % t-intervals over seeds, the robustness Δ = (A_none −
A_imbalanced) / A_none of Liu et al. 2021 with its interval, the test-set sampling error,
paired differences at equal seed and imbalance, and the reading they allow;
`sslprobe.studies.report`), DIR/figure4.png (random init dashed).
"""

from __future__ import annotations

import sys
from pathlib import Path

# The entry point of `sslprobe.studies.imbalance`. Its cells run `python -m sslprobe` from this
# checkout, so the study's own code is imported from it too (not from another installed copy).
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from sslprobe.studies.imbalance import main as study_main  # noqa: E402


def main(argv: list[str] | None = None) -> int:
    return study_main(argv, description=__doc__)


if __name__ == "__main__":
    sys.exit(main())
