#!/usr/bin/env python3
"""The one-GPU check: ``fit`` against a plain loop, the paper preset's step time, the one-GPU paths.

    python scripts/gpu_check.py --data-root data                 # writes docs/benchmarks/gpu.json
    python scripts/gpu_check.py --data-root data --dry-run --out /tmp/gpu_dry.json   # the code on a CPU

ResNet-18 at batch 512 in bf16-mixed: ``Trainer.fit`` images/s against a plain PyTorch loop; the
imbalance study's paper preset (ResNet-12 64-160-320-640, batch 256): ms per step and training hours
per cell; channels-last x torch.compile, and the views made on the device or in loader workers.
About 5 minutes on one recent GPU. Without CUDA it stops with one line (``--dry-run`` runs the same
code on the CPU with a tiny model: a test of the check, not a measurement). Logic:
`sslprobe.gpu_check`.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from jsonargparse.typing import NonNegativeInt, PositiveInt  # noqa: E402

from sslprobe.options import OneLineParser  # noqa: E402

REPO = Path(__file__).resolve().parents[1]


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = OneLineParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data-root", default=str(REPO / "data"), help="folder holding cifar-10-batches-py/")
    parser.add_argument("--out", type=Path, default=REPO / "docs" / "benchmarks" / "gpu.json")
    parser.add_argument("--warmup", type=PositiveInt, default=10, help="steps before timing (> 0)")
    parser.add_argument("--steps", type=PositiveInt, default=30, help="timed steps per measurement (> 0)")
    parser.add_argument("--workers", type=NonNegativeInt, default=8, help="loader workers (>= 0)")
    parser.add_argument("--dry-run", action="store_true", help="the check's code on the CPU, tiny model, few steps")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    from sslprobe.gpu_check import Budget, NoCUDA, gpu_check, write_report

    try:
        report = gpu_check(args.data_root, Budget(warmup=args.warmup, steps=args.steps, workers=args.workers),
                           dry_run=args.dry_run)
    except NoCUDA as error:
        print(f"gpu_check: error: {error}", file=sys.stderr)
        return 2
    write_report(report, args.out)
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
