"""Methods for the exact-resume tests: a SimCLR that draws random numbers while it trains, a BYOL that signals."""

import os
import signal
import time

import torch
from torch.nn import functional as F

from sslprobe.methods import BYOL, SimCLR


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


class BYOLSignalled(BYOL):
    """BYOL that sends ``signal_name`` to this process during optimizer step ``signal_at_step``: its
    momentum target moves after every step, in a hook an exit raised by a callback would skip."""

    def __init__(self, signal_at_step: int = -1, signal_name: str = "SIGUSR1", **kwargs):
        self.signal_at_step, self.signal_name = signal_at_step, signal_name
        super().__init__(**kwargs)

    def training_step(self, batch, batch_idx: int):
        if self.global_step == self.signal_at_step:
            os.kill(os.getpid(), getattr(signal, self.signal_name))
        return super().training_step(batch, batch_idx)
