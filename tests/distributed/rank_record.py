"""A test callback: every process of a launch writes what it sees to ``$RANK_RECORD_DIR/rank<global rank>.json``.

Its rank, world size and node, the run directory it trains in, and the training subset it drew
(size, per-class counts and a digest of the indices), so a test can check that every process of
a multi-node launch agreed on them.
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

from lightning.pytorch import Callback


class RankRecord(Callback):
    def on_train_start(self, trainer, pl_module) -> None:
        subset = trainer.datamodule.subset
        record = {
            "global_rank": trainer.global_rank,
            "world_size": trainer.world_size,
            "node_rank": trainer.node_rank,
            "local_rank": trainer.local_rank,
            "run_dir": str(Path(trainer.default_root_dir).resolve()),
            "subset_size": subset["size"],
            "class_counts": list(subset["class_counts"]),
            "subset_digest": hashlib.sha256(json.dumps(list(subset["indices"])).encode()).hexdigest(),
            "environment": type(trainer.strategy.cluster_environment).__name__,
        }
        folder = Path(os.environ["RANK_RECORD_DIR"])
        folder.mkdir(parents=True, exist_ok=True)
        (folder / f"rank{trainer.global_rank}.json").write_text(json.dumps(record))
