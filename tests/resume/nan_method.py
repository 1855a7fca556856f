"""A SimCLR whose loss is NaN at one chosen step (for the non-finite-loss tests)."""

import torch

from sslprobe.methods import SimCLR


class SimCLRNaNAtStep(SimCLR):
    """SimCLR, except that the training loss at optimizer step ``nan_step`` is NaN."""

    def __init__(self, nan_step: int = 2, **kwargs):
        self.nan_step = nan_step
        super().__init__(**kwargs)

    def shared_step(self, batch) -> torch.Tensor:
        loss = super().shared_step(batch)
        if self.training and self.global_step == self.nan_step:
            return loss * float("nan")
        return loss
