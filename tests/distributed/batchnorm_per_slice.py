"""A SimCLR whose BatchNorm layers see slices of each batch (the 1-process reference of per-process BN)."""

import torch

from sslprobe.methods import SimCLR


class SimCLRBatchNormPerSlice(SimCLR):
    """SimCLR that, in training, embeds each view batch in ``slices`` contiguous slices.

    BatchNorm then normalises each slice by its own statistics, as each of ``slices`` DDP processes
    does with its contiguous slice of the global batch (`GlobalBatchSampler`); the loss still sees
    the whole batch, as the gathered loss of the processes does.
    """

    def __init__(self, slices: int = 2, **kwargs):
        self.slices = slices
        super().__init__(**kwargs)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        if not self.training:
            return super().forward(images)
        return torch.cat([super(SimCLRBatchNormPerSlice, self).forward(part) for part in images.chunk(self.slices)])
