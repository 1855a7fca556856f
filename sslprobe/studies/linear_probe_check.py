"""Does the linear probe reach its optimum? SGD protocols against L-BFGS on the same features.

Logistic regression on frozen features is convex, so a solver run to convergence (full-batch
L-BFGS on standardised features with a small L2, `train_linear_classifier_lbfgs`) gives the
accuracy any SGD protocol should reach. For a randomly initialised network and for each given
checkpoint, features of class-balanced CIFAR-10 train / test images are extracted once
(eval mode, no augmentation) and every SGD protocol of `LINEAR_PROTOCOLS` is fitted on them.
`scripts/compare_linear_probes.py` is the command line of `compare_linear_probes`.
"""

from __future__ import annotations

import importlib
import json
import math
import time
from collections.abc import Sequence
from pathlib import Path

import torch

from sslprobe.callbacks.base import extract_features
from sslprobe.data import load_cifar10
from sslprobe.data.cifar import balanced_subset
from sslprobe.probes.linear import (
    knn_predict,
    standardize_features,
    train_linear_classifier,
    train_linear_classifier_lbfgs,
)
from sslprobe.probes.linear_protocol import LINEAR_PROTOCOLS


def accuracy(weight: torch.Tensor, bias: torch.Tensor, features: torch.Tensor, labels: torch.Tensor) -> float:
    """Top-1 accuracy of the linear classifier ``features @ weight.T + bias``.

    Args:
        weight: Classifier weights, ``(classes, feature_dim)``.
        bias: Classifier bias, ``(classes,)``.
        features: Features, ``(N, feature_dim)``.
        labels: Integer labels, ``(N,)``.

    Returns:
        The fraction of rows whose arg-max class equals the label, in [0, 1].
    """
    return float((torch.addmm(bias, features, weight.T).argmax(1) == labels).double().mean())


def compare(name: str, method, train, test, l2: float) -> dict:
    """Fits every SGD protocol, converged L-BFGS and kNN on one network's frozen features.

    Args:
        name: Label of the network in the result.
        method: An sslprobe method (anything with ``embed``), already in eval mode.
        train: Training split (``images``, ``labels``; CIFAR-10, 10 classes).
        test: Test split, same form.
        l2: L2 penalty of the L-BFGS solver.

    Returns:
        ``{"network": name, "sgd_<protocol>": acc, "seconds_sgd_<protocol>": s, "lbfgs": acc,
        "seconds_lbfgs": s, "lbfgs_train": acc, "knn": acc, "sampling_error": sd}``, accuracies
        as fractions; ``sampling_error`` is the binomial standard error of ``lbfgs`` on the test set.
    """
    train_features = extract_features(method, train.images, 500)
    test_features = extract_features(method, test.images, 500)
    train_std, test_std = standardize_features(train_features, test_features)
    result = {"network": name}
    for protocol, options in LINEAR_PROTOCOLS.items():
        if options.solver != "sgd":
            continue
        start = time.perf_counter()
        weight, bias = train_linear_classifier(train_std, train.labels, 10, options)
        result[f"sgd_{protocol}"] = accuracy(weight, bias, test_std, test.labels)
        result[f"seconds_sgd_{protocol}"] = time.perf_counter() - start
    start = time.perf_counter()
    weight, bias = train_linear_classifier_lbfgs(train_std, train.labels, 10, l2=l2, max_iterations=500,
                                                 tolerance=1e-6)
    result["lbfgs"] = accuracy(weight, bias, test_std, test.labels)
    result["seconds_lbfgs"] = time.perf_counter() - start
    result["lbfgs_train"] = accuracy(weight, bias, train_std, train.labels)
    predictions = knn_predict(train_features, train.labels, test_features, 10)
    result["knn"] = float((predictions == test.labels).double().mean())
    p = result["lbfgs"]
    result["sampling_error"] = math.sqrt(p * (1 - p) / len(test))
    return result


def compare_linear_probes(checkpoints: Sequence[Path] = (), data_root: str | Path = "data", train_size: int = 5000,
                          test_size: int = 2000, widths: Sequence[int] = (16, 32, 64, 128), l2: float = 1e-4,
                          seed: int = 0, json_path: Path | None = None) -> list[dict]:
    """Runs `compare` on a random-init SimCLR ResNet-12 and on every checkpoint, printing one line each.

    Args:
        checkpoints: Lightning checkpoints of trained sslprobe runs.
        data_root: Folder holding ``cifar-10-batches-py``.
        train_size: Class-balanced CIFAR-10 training images the probes are fitted on.
        test_size: Class-balanced CIFAR-10 test images they are scored on.
        widths: The four ResNet-12 stage widths of the random-init network.
        l2: L2 penalty of the L-BFGS solver.
        seed: Seed of the balanced subsets and of the random initialisation.
        json_path: Where to write the results as JSON (nothing is written when None).

    Returns:
        One `compare` result per network, random init first.
    """
    torch.set_num_threads(max(1, torch.get_num_threads()))
    cifar = load_cifar10(data_root)
    train = balanced_subset(cifar.train, train_size, seed)
    test = balanced_subset(cifar.test, test_size, seed)
    from sslprobe.methods import SimCLR

    torch.manual_seed(seed)
    networks = [("random init", SimCLR(backbone="resnet12", backbone_kwargs={"widths": list(widths)}))]
    for path in checkpoints:
        checkpoint = torch.load(path, map_location="cpu", weights_only=False)
        module, _, name = checkpoint["hyper_parameters"]["_class_path"].rpartition(".")
        networks.append((str(path), getattr(importlib.import_module(module), name).load_from_checkpoint(path)))
    results = []
    for name, method in networks:
        result = compare(name, method.eval(), train, test, l2)
        results.append(result)
        cells = ", ".join(f"{k} {100 * v:.2f}" for k, v in result.items() if k.startswith(("sgd", "lbfgs", "knn")))
        print(f"{name}: {cells} (test-set sampling error ±{100 * result['sampling_error']:.2f})", flush=True)
    if json_path:
        Path(json_path).write_text(json.dumps(results, indent=2))
    return results
