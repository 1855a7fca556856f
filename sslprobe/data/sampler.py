"""A sampler that is a pure function of (seed, epoch, position), sharded by global batch."""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
import torch
from torch.utils.data import DataLoader, DistributedSampler


def sample_seed(seed: int, epoch: int, index: int) -> int:
    """Seed of the augmentation of dataset item ``index`` in ``epoch`` (independent of workers/ranks).

    ``epoch = -1`` serves evaluation views and ``index = -1`` the epoch's order.
    """
    return int(np.random.SeedSequence([seed, epoch + 1, index + 1]).generate_state(1, np.uint64)[0] >> 1)


class GlobalBatchSampler(DistributedSampler):
    """Yields ``(index, sample_seed)`` pairs for one rank.

    Every epoch the ``size`` items are permuted with a generator seeded by (seed, epoch) and cut
    into global batches of ``global_batch`` items (an incomplete last batch is dropped). Rank r
    of W takes the r-th contiguous slice of ``global_batch / W`` items of each global batch, so
    the concatenation of the ranks' batches in rank order is exactly the one-process batch.
    Subclassing DistributedSampler tells Lightning not to wrap it again.

    `skip` makes the first iteration of a given epoch start at a later batch, so a run resumed
    from a mid-epoch checkpoint sees exactly the batches it had not yet trained on; ``len`` stays
    the full epoch so the trainer's per-epoch bookkeeping is unchanged.
    """

    def __init__(
        self,
        size: int,
        global_batch: int,
        seed: int = 0,
        shuffle: bool = True,
        rank: int = 0,
        world_size: int = 1,
    ):
        if global_batch % world_size:
            raise ValueError(
                f"data.batch_size={global_batch} (the global batch) must be divisible by the "
                f"{world_size} processes"
            )
        if global_batch > size:
            raise ValueError(f"data.batch_size={global_batch} is larger than the {size} training images")
        # DistributedSampler's own attributes, set without asking torch.distributed.
        self.num_replicas, self.rank, self.epoch, self.seed, self.shuffle = world_size, rank, 0, seed, shuffle
        self.drop_last = True
        self.size, self.global_batch = size, global_batch
        self.local_batch = global_batch // world_size
        self.batches_per_epoch = size // global_batch
        self.num_samples = self.batches_per_epoch * self.local_batch
        self.total_size = self.num_samples * world_size
        self.skip_epoch, self.skip_batches = -1, 0

    def skip(self, epoch: int, batches: int) -> None:
        """Start ``epoch`` at global batch ``batches`` instead of 0 (once)."""
        self.skip_epoch, self.skip_batches = epoch, batches

    def order(self, epoch: int) -> torch.Tensor:
        """The global order of items in ``epoch``, shape (batches_per_epoch * global_batch,)."""
        if self.shuffle:
            generator = torch.Generator().manual_seed(sample_seed(self.seed, epoch, -1))
            order = torch.randperm(self.size, generator=generator)
        else:
            order = torch.arange(self.size)
        return order[: self.batches_per_epoch * self.global_batch]

    def __iter__(self) -> Iterator[tuple[int, int]]:
        order = self.order(self.epoch).view(self.batches_per_epoch, self.global_batch)
        start = self.skip_batches if self.epoch == self.skip_epoch else 0
        self.skip_epoch, self.skip_batches = -1, 0
        mine = order[start:, self.rank * self.local_batch : (self.rank + 1) * self.local_batch]
        epoch = self.epoch
        for index in mine.flatten().tolist():
            yield index, sample_seed(self.seed, epoch, index)

    def __len__(self) -> int:
        return self.num_samples


class ResumableLoader(DataLoader):
    """The training DataLoader, stateful in Lightning's sense (``state_dict`` / ``load_state_dict``).

    Its state is the position of training in the data, ``{"epoch", "batches_done",
    "batches_per_epoch"}``, given by ``position`` (the datamodule's `state_dict`, which counts the
    batches the trainer has processed, not the ones prefetched). Lightning stores it in the
    checkpoint's loop state and hands it back on resume, before the loader iterates;
    `load_state_dict` then starts the sampler at the next unseen batch. Checkpoints without that
    entry resume the same way through the datamodule's own state.

    Args:
        *args, **kwargs: `DataLoader`'s; the sampler must be a `GlobalBatchSampler`.
        position: callable returning the current position (an empty dict outside a trainer).
    """

    def __init__(self, *args, position=None, **kwargs):
        super().__init__(*args, **kwargs)
        self.position = position

    def state_dict(self) -> dict:
        return dict(self.position()) if self.position is not None else {}

    def load_state_dict(self, state: dict) -> None:
        if state and isinstance(self.sampler, GlobalBatchSampler):
            self.sampler.skip(*resume_position(state))


def resume_position(state: dict) -> tuple[int, int]:
    """(epoch, batches to skip) at which a run saved with ``state`` continues."""
    if state["batches_done"] >= state["batches_per_epoch"]:
        return state["epoch"] + 1, 0
    return state["epoch"], state["batches_done"]
