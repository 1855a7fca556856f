"""Throughput and probe costs of sslprobe on this machine, as ratios against plain baselines.

`configure` and `run_benchmark` run it; ``scripts/benchmark.py`` is its command line:

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

By section: `fit`, `augmentation`, `probes`, `report` (machine and table), `settings` (what is
measured, and the timing helpers); `runner` runs them.
"""

from sslprobe.benchmark.runner import configure, run_benchmark
from sslprobe.benchmark.settings import FULL, GPU, QUICK, TARGETS, Settings

__all__ = ["FULL", "GPU", "QUICK", "TARGETS", "Settings", "configure", "run_benchmark"]
