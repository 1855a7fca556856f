#!/usr/bin/env python3
"""Does bf16-mixed + channels-last train to the same accuracy as float32? (docs: Precision)

For each method and seed, two ordinary ``python -m sslprobe fit`` runs that differ only in
numerics, each followed by linear evaluation; the summary gives mean ± sd over seeds and the
paired difference per seed. The runs and the summary live in `sslprobe.studies.precision_parity`;
this script parses its arguments.

    python scripts/precision_parity.py --out results/precision_parity          # ~25 min on 2 cores
    python scripts/precision_parity.py --out results/precision_parity --aggregate-only

Finished runs are skipped, so an interrupted comparison continues where it stopped.
"""

from __future__ import annotations

import sys
from pathlib import Path

# Run as a file, this script imports the sslprobe of its own checkout (not another installed copy).
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from sslprobe.options import OneLineParser  # noqa: E402
from sslprobe.studies.precision_parity import ParityConfig, aggregate, run  # noqa: E402


def main(argv: list[str] | None = None) -> None:
    parser = OneLineParser(description=__doc__.split("\n")[0])
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--methods", nargs="+", default=["simclr", "barlow_twins"])
    parser.add_argument("--seeds", type=int, default=2)
    parser.add_argument("--images", type=int, default=8000)
    parser.add_argument("--epochs", type=int, default=8)
    parser.add_argument("--data-root", default="data")
    parser.add_argument("--aggregate-only", action="store_true")
    args = parser.parse_args(argv)
    config = ParityConfig(out=args.out, methods=args.methods, seeds=args.seeds, images=args.images,
                          epochs=args.epochs, data_root=args.data_root)
    if not args.aggregate_only:
        run(config)
    elif not (config.out / "runs" / "parity").is_dir():
        raise SystemExit(f"precision_parity: no runs under {config.out / 'runs' / 'parity'} to aggregate")
    aggregate(config)


if __name__ == "__main__":
    main()
