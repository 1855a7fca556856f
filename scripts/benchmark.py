"""Throughput and probe costs of sslprobe on this machine, as ratios against plain baselines.

    python scripts/benchmark.py [--quick] [--json OUT] [--repeats N] [--data-root data]
    python scripts/benchmark.py --gpu --json gpu.json     # one CUDA device

Sections (one process, same model, batch and machine within each comparison):

- ``fit``: images/s through ``Trainer.fit`` (steps after warm-up) vs a bare PyTorch loop doing
  the same forward/backward/step on the same data and augmentation (target >= 0.95).
- ``augmentation``: images/s (two views each) of the batched path (`SimCLRBatchAugment`, the
  training process's threads) vs the usual PIL-per-sample DataLoader pipeline (torchvision
  transforms on PIL images in worker processes), the package's own per-sample tensor path, and
  kornia's equivalent pipeline when kornia is installed; same number of workers and threads
  (target >= 3x for batched vs PIL).
- ``probes``: the landscape probe (41x41 + 41 grid), the theory probe (estimators, prediction and
  measurement on the same images) and linear evaluation (100 epochs on cached features) as
  multiples of one forward pass over their data (targets <= 2x, <= 1.5x), and the
  spectrum probe as a fraction of a training epoch of 50,000 images (target <= 2%).
- ``scaling``: landscape cost vs grid size (one backbone pass whatever the grid), fit
  throughput vs batch size, linear-evaluation cost vs epochs.
- ``resolution``: batched augmentation images/s at 32 and 96 px (with the Gaussian blur the
  recipe adds above 64 px), and ``fit`` vs the bare loop at 96 px for the first model, on
  CIFAR-10 resized to 96 px (what STL-10-sized images cost).
- ``precision``: ``fit`` images/s in float32, channels-last, bf16-mixed and both, as ratios
  against float32 (the four interleaved in every repeat), for the first model at the main batch
  and for the CPU study's cell (``resnet12_narrow``: ResNet-12 16-32-64-128 at batch 128); says
  whether the device runs bfloat16 natively (what ``run.precision: auto`` decides on).

``--only-precision`` runs the last section alone. The other sections train with what
``run.precision: auto`` picks for the device (bf16-mixed + channels-last where bfloat16 is
native, as the quickstart and the CPU study do); ``--float32`` measures them in float32.

Every number is the median over ``--repeats`` repeats. ``--quick`` runs smaller batches,
fewer steps and smaller probe sets (said in the output) and takes a few minutes on 2 CPU cores.

The measurements live in `sslprobe.benchmark`; this script parses its arguments.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import torch

# Run as a file, this script imports the sslprobe of its own checkout (not another installed copy).
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from sslprobe.benchmark import configure, run_benchmark  # noqa: E402
from sslprobe.runtime import tune_host_allocator  # noqa: E402


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="small batches, few steps, small probe sets")
    parser.add_argument("--gpu", action="store_true", help="CUDA, batch 512, 4 pinned workers")
    parser.add_argument("--json", type=Path, default=None, help="write the results here")
    parser.add_argument("--repeats", type=int, default=None, help="repeats per measurement (median)")
    parser.add_argument("--models", nargs="+", default=None,
                        help="subset of resnet18 resnet12 vit_tiny (with --only-precision: also resnet12_narrow)")
    parser.add_argument("--data-root", default="data", help="folder holding cifar-10-batches-py")
    parser.add_argument("--only-precision", action="store_true", help="only the precision section")
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
    results = run_benchmark(args.data_root, settings, mode=mode, numerics=numerics, repeats=repeats,
                            only_precision=args.only_precision, allocator_tuned=allocator_tuned)
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(results, indent=2))
    return results


if __name__ == "__main__":
    sys.exit(0 if main() else 1)
