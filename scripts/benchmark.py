"""Throughput and probe costs of sslprobe on this machine, as ratios against plain baselines.

    python scripts/benchmark.py [--quick] [--json OUT] [--repeats N] [--data-root data]
    python scripts/benchmark.py --gpu --json gpu.json     # one CUDA device
    python scripts/benchmark.py --only-evaluation --json docs/benchmarks/cpu_evaluation.json

The sections (fit, augmentation, probes, scaling, resolution, precision), their targets and
what ``--quick``, ``--gpu``, ``--only-precision`` and ``--float32`` change are described in
`sslprobe.benchmark`, where the measurements live; this script parses its arguments.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import torch

# Run as a file, this script imports the sslprobe of its own checkout (not another installed copy).
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from sslprobe.benchmark import configure, run_benchmark  # noqa: E402
from sslprobe.benchmark.evaluation import bench_evaluation  # noqa: E402
from sslprobe.options import OneLineParser  # noqa: E402
from sslprobe.runtime import tune_host_allocator  # noqa: E402


def main(argv: list[str] | None = None) -> dict:
    parser = OneLineParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="small batches, few steps, small probe sets")
    parser.add_argument("--gpu", action="store_true", help="CUDA, batch 512, 4 pinned workers")
    parser.add_argument("--json", type=Path, default=None, help="write the results here")
    parser.add_argument("--repeats", type=int, default=None, help="repeats per measurement (median)")
    parser.add_argument("--models", nargs="+", default=None,
                        help="subset of resnet18 resnet12 vit_tiny (with --only-precision: also resnet12_narrow)")
    parser.add_argument("--data-root", default="data", help="folder holding cifar-10-batches-py")
    parser.add_argument("--only-precision", action="store_true", help="only the precision section")
    parser.add_argument("--only-evaluation", action="store_true",
                        help="only the cost of the study's final evaluation at larger evaluation sets")
    parser.add_argument("--float32", action="store_true",
                        help="float32 everywhere (default: what run.precision auto picks for the device)")
    parser.add_argument("--default-malloc", action="store_true",
                        help="leave the host allocator as it is (python -m sslprobe tunes it; see sslprobe/runtime.py)")
    args = parser.parse_args(argv)
    allocator_tuned = False if args.default_malloc else tune_host_allocator()
    if args.gpu and not torch.cuda.is_available():
        parser.error("--gpu: no CUDA device")
    settings, mode, numerics = configure(quick=args.quick, gpu=args.gpu, models=args.models,
                                         only_precision=args.only_precision, float32=args.float32)
    repeats = args.repeats or (1 if args.quick else 3)
    if args.only_evaluation:
        results = bench_evaluation(args.data_root, settings, repeats)
    else:
        results = run_benchmark(args.data_root, settings, mode=mode, numerics=numerics, repeats=repeats,
                                only_precision=args.only_precision, allocator_tuned=allocator_tuned)
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(results, indent=2))
    return results


if __name__ == "__main__":
    sys.exit(0 if main() else 1)
