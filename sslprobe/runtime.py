"""Process-wide settings that the `python -m sslprobe` entry point applies before training.

Two: the host memory allocator, and the numerics that ``run.precision: auto`` picks for the
hardware (`resolve_precision`, at the end of this file).

The allocator. glibc's ``malloc`` serves every request above its
mmap threshold (32 MiB at most) with a fresh ``mmap`` and returns it with ``munmap`` on free,
and it trims the heap top back to the system whenever more than the trim threshold is free.
A CPU training step allocates and frees the same large activations again and again (ResNet-18 at
batch 256: 64 MiB per first-stage activation), so the kernel page-faults and zero-fills
gigabytes per step: 5–8 million minor page faults and 10–16 % of all CPU time in the kernel in
a five-step run, measured on 2 cores. Keeping freed memory in the process (no mmap, no trimming)
removes that work; peak resident memory grows by the fragmentation the heap keeps (3.8 → 4.5 GB
in the same run). GPU training barely touches host malloc, so it changes nothing there.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import os
import platform

ENV_SWITCH = "SSLPROBE_MALLOC_TUNING"
M_TRIM_THRESHOLD, M_MMAP_MAX = -1, -4  # glibc's mallopt parameter numbers (malloc.h)
TRIM_THRESHOLD = 1 << 30  # keep up to 1 GiB of free memory at the heap top


def tune_host_allocator() -> bool:
    """Serve large host allocations from the reusable heap instead of fresh mmaps (glibc only).

    Applies ``mallopt(M_MMAP_MAX, 0)`` and ``mallopt(M_TRIM_THRESHOLD, 1 GiB)`` to this process
    (forked DataLoader workers inherit them). ``SSLPROBE_MALLOC_TUNING=0`` leaves the allocator
    as it is.

    Returns:
        Whether the settings were applied: False with the switch off, on a C library other than
        glibc, or where ``mallopt`` refuses them.
    """
    if os.environ.get(ENV_SWITCH, "1").strip().lower() in ("0", "false", "no", "off"):
        return False
    if platform.system() != "Linux" or platform.libc_ver()[0] != "glibc":
        return False
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        mallopt = libc.mallopt
    except (OSError, AttributeError):
        return False
    mallopt.argtypes, mallopt.restype = (ctypes.c_int, ctypes.c_int), ctypes.c_int
    return bool(mallopt(M_MMAP_MAX, 0)) and bool(mallopt(M_TRIM_THRESHOLD, TRIM_THRESHOLD))


# ------------------------------------------------------------------ numerics
FAST_PRECISION = "bf16-mixed"  # with channels-last: what ``run.precision: auto`` picks on native-bf16 hardware
CPU_BF16_FLAGS = ("amx_bf16", "avx512_bf16")  # /proc/cpuinfo flags of native bfloat16 arithmetic


def cpu_flags() -> set[str]:
    """The CPU's feature flags (Linux ``/proc/cpuinfo``; empty elsewhere)."""
    try:
        with open("/proc/cpuinfo") as handle:
            return {flag for line in handle if line.startswith("flags") for flag in line.split(":", 1)[1].split()}
    except OSError:
        return set()


def native_bfloat16(accelerator: str | None) -> str | None:
    """Why the device that ``accelerator`` selects runs bfloat16 natively, or None if it does not.

    Args:
        accelerator: Lightning's ``trainer.accelerator`` (``cpu``, ``gpu``, ``cuda``, ``auto``/None).

    Returns:
        e.g. ``"CPU with avx512_bf16"`` or ``"CUDA compute capability 9.0"``; None where bfloat16
        would be emulated (CPUs without AVX512-BF16 or AMX, GPUs below compute capability 8.0).
    """
    import torch

    accelerator = (accelerator or "auto").lower()
    on_cuda = accelerator in ("gpu", "cuda") or (accelerator == "auto" and torch.cuda.is_available())
    if on_cuda:
        if not torch.cuda.is_available():
            return None
        major, minor = torch.cuda.get_device_capability()
        return f"CUDA compute capability {major}.{minor}" if major >= 8 else None
    if accelerator not in ("cpu", "auto"):
        return None
    found = [flag for flag in CPU_BF16_FLAGS if flag in cpu_flags()]
    return f"CPU with {found[0]}" if found else None


def resolve_precision(accelerator: str | None) -> tuple[str, bool, str]:
    """What ``run.precision: auto`` trains with: (trainer.precision, channels_last, why).

    bf16-mixed with channels-last where the hardware runs bfloat16 natively (2.1x per step on a
    2-core AVX512-BF16 CPU, README Performance), 32-true elsewhere (emulated bfloat16 is slower).
    """
    reason = native_bfloat16(accelerator)
    if reason:
        return FAST_PRECISION, True, f"{reason} runs bfloat16 natively"
    return "32-true", False, "no native bfloat16 on this device"
