"""A callback that raises in one process of a multi-process run, after training has started."""

from lightning.pytorch import Callback


class FailInProcess(Callback):
    """Raises a ValueError in the process of global rank ``rank`` before optimizer step ``step``."""

    def __init__(self, rank: int = 1, step: int = 1):
        self.rank, self.step = rank, step

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx: int) -> None:
        if trainer.global_rank == self.rank and trainer.global_step >= self.step:
            raise ValueError(f"injected failure at step {trainer.global_step}")
