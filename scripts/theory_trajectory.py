#!/usr/bin/env python3
"""The theory probe along a run: predicted against trained WᵀW over epochs (`sslprobe.studies.theory_trajectory`).

    python scripts/theory_trajectory.py runs/theory_trajectory/scl_none_mlp_seed0 --out docs/figures/theory_probe

The run needs ``probes.theory.every_n_epochs`` (and ``at_start: true`` for epoch 0); the config of
the documented trajectory is ``configs/studies/theory_trajectory.yaml``. Writes ``<name>.png``,
``<name>.md`` (one row per epoch) and ``<name>.json`` in ``--out``.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

# Run as a file, this script imports the sslprobe of its own checkout (not another installed copy).
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from sslprobe.options import OneLineParser  # noqa: E402
from sslprobe.studies.theory_trajectory import write_trajectory  # noqa: E402


def main(argv: list[str] | None = None) -> int:
    parser = OneLineParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("run_dir", type=Path, help="a run folder holding probes/theory_epoch<E>.json")
    parser.add_argument("--out", type=Path, default=Path("docs/figures/theory_probe"))
    parser.add_argument("--name", default="scl_trajectory", help="file stem of the outputs")
    parser.add_argument("--title", default="", help="the figure's title")
    args = parser.parse_args(argv)
    try:
        paths = write_trajectory(args.run_dir, args.out, args.name, args.title)
    except FileNotFoundError as error:
        print(f"theory_trajectory: error: {error}", file=sys.stderr)
        return 2
    print("wrote " + ", ".join(str(p) for p in paths.values()))
    return 0


if __name__ == "__main__":
    sys.exit(main())
