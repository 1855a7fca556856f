"""What a study's final evaluation costs at larger evaluation sets, against the sampling error it removes.

The CPU imbalance study (``--preset cpu``) scores every cell with the linear probe and the kNN
read-out of `sslprobe.callbacks.LinearEvaluation` on 5,000 balanced training and 2,000 test images. This
section times that same callback (its feature extraction, 100 SGD epochs and kNN, on the study
cell's network) at the given (train, test) sizes, so the cost of all 10,000 test
images or a larger probe training set can be set beside a cell's training time. Probes run in the
weights' own precision (float32) whatever precision training uses, so this does too.
"""

from __future__ import annotations

import torch

from sslprobe.benchmark.fit import make_model
from sslprobe.benchmark.settings import Settings, median, timed
from sslprobe.callbacks import LinearEvaluation
from sslprobe.data import ImageDataModule
from sslprobe.studies.statistics import binomial_standard_error

# (probe training images, test images): the cpu preset's protocol first, then larger ones.
EVALUATION_SIZES = ((5000, 2000), (5000, 10_000), (10_000, 10_000), (50_000, 10_000))


def bench_evaluation(root: str, settings: Settings, repeats: int, sizes=EVALUATION_SIZES,
                     model_name: str = "resnet12_narrow", accuracy: float = 0.45) -> dict:
    """Seconds of one `LinearEvaluation` evaluation (trained network; the random-init baseline costs the same
    once per seed) at each (train, test) size, with the 95 % binomial half-width at ``accuracy``.

    Returns:
        ``{"model", "accuracy_for_half_width", "rows": [{"train_images", "test_images", "seconds", "vs_first",
        "half_width_95_points"}, ...]}``; ``vs_first`` is the cost against the first size's.
    """
    model = make_model(model_name, settings).to(settings.device).eval()
    data = ImageDataModule(root=root, num_workers=0)
    counts = torch.bincount(data.load().train.labels, minlength=10).tolist()  # the balanced training set
    callback = LinearEvaluation(epochs=100)
    rows = []
    for train_size, test_size in sizes:
        train, test = data.balanced_evaluation_sets(train_size, test_size, seed=0)

        def evaluate(train=train, test=test):
            return callback.evaluate(model, train, test, counts)

        seconds = median([timed(evaluate, settings.device)[1] for _ in range(repeats)])
        rows.append({"train_images": len(train), "test_images": len(test), "seconds": seconds,
                     "half_width_95_points": 100 * 1.96 * binomial_standard_error(accuracy, len(test))})
        print(f"  evaluation on {len(train):,} + {len(test):,} images: {seconds:.1f} s", flush=True)
    for row in rows:
        row["vs_first"] = row["seconds"] / rows[0]["seconds"]
    return {"model": model_name, "accuracy_for_half_width": accuracy, "rows": rows}
