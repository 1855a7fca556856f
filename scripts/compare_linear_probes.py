#!/usr/bin/env python3
"""Does the linear probe reach its optimum? SGD protocols against L-BFGS on the same features.

For a randomly initialised network and for each given checkpoint, every SGD protocol and a
converged L-BFGS solver are fitted on the same frozen features of balanced CIFAR-10; the logic
lives in `sslprobe.studies.linear_probe_check`, this script parses its arguments.

    python scripts/compare_linear_probes.py --ckpt runs/.../last.ckpt --train-size 5000 --test-size 2000
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

# Run as a file, this script imports the sslprobe of its own checkout (not another installed copy).
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from sslprobe.options import OneLineParser  # noqa: E402
from sslprobe.studies.linear_probe_check import compare_linear_probes  # noqa: E402


def main(argv: list[str] | None = None) -> int:
    parser = OneLineParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--ckpt", type=Path, nargs="*", default=[], help="checkpoints of trained runs")
    parser.add_argument("--data-root", default="data")
    parser.add_argument("--train-size", type=int, default=5000)
    parser.add_argument("--test-size", type=int, default=2000)
    parser.add_argument("--widths", type=int, nargs=4, default=[16, 32, 64, 128],
                        help="ResNet-12 widths of the random-init network")
    parser.add_argument("--l2", type=float, default=1e-4)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--json", type=Path, default=None)
    args = parser.parse_args(argv)
    compare_linear_probes(args.ckpt, data_root=args.data_root, train_size=args.train_size,
                          test_size=args.test_size, widths=args.widths, l2=args.l2, seed=args.seed,
                          json_path=args.json)
    return 0


if __name__ == "__main__":
    sys.exit(main())
