"""The cosine schedule, once: the training learning rate, the linear probe's, BYOL's target
momentum and the theory simulator's step size all interpolate with `cosine_between`."""

from __future__ import annotations

import math


def cosine_between(start: float, end: float, progress: float) -> float:
    """``start`` at progress 0, ``end`` at progress 1, along half a cosine period."""
    return end + (start - end) * 0.5 * (1.0 + math.cos(math.pi * progress))


class WarmupCosine:
    """Learning-rate factor: linear warm-up over ``warmup`` steps, cosine to ``final`` at ``total``."""

    def __init__(self, warmup: int, total: int, final: float):
        self.warmup, self.total, self.final = warmup, total, final

    def __call__(self, step: int) -> float:
        if step < self.warmup:
            return (step + 1) / self.warmup
        span = self.total - 1 - self.warmup
        # With no step between warm-up and the last one, the last step is already at ``final``.
        progress = min(1.0, (step - self.warmup) / span) if span > 0 else float(self.warmup > 0)
        return cosine_between(1.0, self.final, progress)
