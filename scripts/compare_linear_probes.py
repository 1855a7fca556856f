#!/usr/bin/env python3
"""Does the linear probe reach its optimum? SGD protocols against L-BFGS on the same features.

Logistic regression on frozen features is convex, so a solver run to convergence (full-batch
L-BFGS on standardised features with a small L2, `train_linear_classifier_lbfgs`) gives the
accuracy any SGD protocol should reach. For a randomly initialised network and for each given
checkpoint, features of class-balanced CIFAR-10 train / test images are extracted once
(eval mode, no augmentation) and every protocol is fitted on them.

    python scripts/compare_linear_probes.py --ckpt runs/.../last.ckpt --train-size 5000 --test-size 2000
"""

from __future__ import annotations

import argparse
import importlib
import json
import math
import sys
import time
from pathlib import Path

import torch

# Run as a file, this script imports the sslprobe of its own checkout (not another installed copy).
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from sslprobe.callbacks.base import extract_features  # noqa: E402
from sslprobe.data import load_cifar10  # noqa: E402
from sslprobe.data.cifar import balanced_subset  # noqa: E402
from sslprobe.probes.linear import (  # noqa: E402
    knn_predict,
    standardize_features,
    train_linear_classifier,
    train_linear_classifier_lbfgs,
)
from sslprobe.probes.linear_protocol import LINEAR_PROTOCOLS  # noqa: E402


def accuracy(weight: torch.Tensor, bias: torch.Tensor, features: torch.Tensor, labels: torch.Tensor) -> float:
    return float((torch.addmm(bias, features, weight.T).argmax(1) == labels).double().mean())


def compare(name: str, method, train, test, l2: float) -> dict:
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


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--ckpt", type=Path, nargs="*", default=[], help="checkpoints of trained runs")
    parser.add_argument("--data-root", default="data")
    parser.add_argument("--train-size", type=int, default=5000)
    parser.add_argument("--test-size", type=int, default=2000)
    parser.add_argument("--widths", type=int, nargs=4, default=[16, 32, 64, 128],
                        help="ResNet-12 widths of the random-init network")
    parser.add_argument("--l2", type=float, default=1e-4)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--json", type=Path, default=None)
    args = parser.parse_args(argv)
    torch.set_num_threads(max(1, torch.get_num_threads()))
    cifar = load_cifar10(args.data_root)
    train = balanced_subset(cifar.train, args.train_size, args.seed)
    test = balanced_subset(cifar.test, args.test_size, args.seed)
    from sslprobe.methods import SimCLR

    torch.manual_seed(args.seed)
    networks = [("random init", SimCLR(backbone="resnet12", backbone_kwargs={"widths": args.widths}))]
    for path in args.ckpt:
        checkpoint = torch.load(path, map_location="cpu", weights_only=False)
        module, _, name = checkpoint["hyper_parameters"]["_class_path"].rpartition(".")
        networks.append((str(path), getattr(importlib.import_module(module), name).load_from_checkpoint(path)))
    results = []
    for name, method in networks:
        result = compare(name, method.eval(), train, test, args.l2)
        results.append(result)
        cells = ", ".join(f"{k} {100 * v:.2f}" for k, v in result.items() if k.startswith(("sgd", "lbfgs", "knn")))
        print(f"{name}: {cells} (test-set sampling error ±{100 * result['sampling_error']:.2f})", flush=True)
    if args.json:
        args.json.write_text(json.dumps(results, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
