"""A SimCLR that draws random numbers while it trains (for the exact-resume tests)."""

import os
import signal
import time

import torch
from torch.nn import functional as F

from sslprobe.methods import SimCLR


class SimCLRWithDropout(SimCLR):
    """SimCLR with dropout on the backbone features, drawn from torch's global generator.

    Exact resume must then restore that generator's state. Two options only for the tests that
    interrupt a run: ``step_seconds`` pauses every training step (the numbers do not change), and
    ``signal_at_step`` sends ``signal_name`` to this process during that optimizer step.
    """

    def __init__(self, dropout: float = 0.5, step_seconds: float = 0.0, signal_at_step: int = -1,
                 signal_name: str = "SIGUSR1", **kwargs):
        self.dropout, self.step_seconds = dropout, step_seconds
        self.signal_at_step, self.signal_name = signal_at_step, signal_name
        super().__init__(**kwargs)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return self.projector(F.dropout(self.features(images), self.dropout, self.training))

    def training_step(self, batch, batch_idx: int):
        time.sleep(self.step_seconds)
        if self.global_step == self.signal_at_step:
            os.kill(os.getpid(), getattr(signal, self.signal_name))
        return super().training_step(batch, batch_idx)
