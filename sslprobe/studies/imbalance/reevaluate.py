"""A study's finished cells evaluated again from their checkpoints, on other evaluation sets (no retraining).

The final linear probe and kNN of a cell score the trained network on class-balanced subsets of the
training and test sets (the preset's ``linear_train_size`` / ``linear_test_size``). `reevaluate`
loads each finished cell's ``last.ckpt`` and its run config, and runs the same `LinearEvaluation`
(same solver, epochs, seed, kNN; random-init baseline of the run's seed) with other sizes, e.g. all
10,000 test images. The cells' own files are not touched: the re-evaluated results go to a new study
folder (``DIR/reevaluated/<cell>.json``, its own random-init cache, ``results.csv``, ``summary.md``
and the figure), so two protocols are never mixed in one summary. Training measurements (effective
rank, kNN monitor) are the runs' own.
"""

from __future__ import annotations

import json
from pathlib import Path

import yaml

from sslprobe.studies.imbalance.grid import Cell, result_path

DATA_SOURCE = ("root", "dataset", "dataset_kwargs", "label_set", "image_size")  # what the images read depend on


def reevaluate(cells: list[Cell], source: Path, out: Path, study: str, train_size: int | None,
               test_size: int | None) -> list:
    """Rows (`StudyRow`) of ``cells`` finished in ``source``, evaluated on ``train_size`` + ``test_size``
    balanced images (None: all); each cell's evaluation is written to ``out/reevaluated/<cell>.json``."""
    from sslprobe.callbacks import LinearEvaluation
    from sslprobe.callbacks.linear_eval import RANDOM_INIT_CACHE
    from sslprobe.cli.runs import load_run
    from sslprobe.studies.imbalance.results import rows_of

    found, loaded = [], {}
    (out / "reevaluated").mkdir(parents=True, exist_ok=True)
    for cell in cells:
        run = result_path(cell, source, study).parent.parent
        config = yaml.safe_load((run / "config.yaml").read_text())
        source_key = json.dumps({k: config["data"].get(k) for k in DATA_SOURCE}, sort_keys=True, default=str)
        config, method, data = load_run(run / "checkpoints" / "last.ckpt", data=loaded.get(source_key))
        loaded[source_key] = data.data  # the images are read once per data set, not once per cell
        method.eval()
        options = dict(config["probes"]["linear_eval"]["init_args"])
        options.update(every_n_epochs=None, train_size=train_size, test_size=test_size)
        probe = LinearEvaluation(**options)
        if probe.random_init_seed is None:
            probe.random_init_seed = config["seed_everything"]  # the run's seed, as during fit
        probe.cache_dir = out / "runs" / RANDOM_INIT_CACHE
        train, test = data.balanced_evaluation_sets(train_size, test_size, probe.options.seed)
        scores = probe.evaluate(method, train, test, data.class_counts)
        baseline = probe.random_init_result(method, train, test, data.class_counts, out, data.data_identity())
        result = {**scores.to_dict(), **baseline, "num_train": len(train), "num_test": len(test),
                  "checkpoint": str(run / "checkpoints" / "last.ckpt")}
        (out / "reevaluated" / f"{run.name}.json").write_text(json.dumps(result, indent=2))
        found.append((cell, result, run))
    return rows_of(found, out)
