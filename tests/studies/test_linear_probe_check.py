"""The SGD-versus-L-BFGS check (`sslprobe.studies.linear_probe_check`) on a slice of real CIFAR-10."""

from __future__ import annotations

import json
import math
import subprocess
import sys
from pathlib import Path

import torch

from sslprobe.data.dataset import balanced_subset
from sslprobe.methods import SimCLR
from sslprobe.probes.linear import standardize_features, train_linear_classifier_lbfgs
from sslprobe.probes.linear_protocol import LINEAR_PROTOCOLS
from sslprobe.studies.linear_probe_check import accuracy, compare_linear_probes

REPO = Path(__file__).resolve().parents[2]
WIDTHS = (4, 4, 8, 8)


def test_accuracy_counts_the_arg_max_hits():
    weight, bias = torch.eye(3), torch.zeros(3)
    features = torch.tensor([[1.0, 0, 0], [0, 2.0, 0], [0, 0, 3.0], [5.0, 0, 0]])
    assert accuracy(weight, bias, features, torch.tensor([0, 1, 2, 2])) == 0.75
    assert accuracy(weight, torch.tensor([0.0, 0.0, 10.0]), features, torch.tensor([0, 1, 2, 2])) == 0.5


def test_random_init_lbfgs_accuracy_equals_an_independent_fit(cifar, cifar_root, tmp_path):
    out = tmp_path / "check.json"
    (result,) = compare_linear_probes(data_root=cifar_root, train_size=100, test_size=50, widths=WIDTHS, seed=3,
                                      json_path=out)
    assert json.loads(out.read_text()) == [result]
    assert result["network"] == "random init"
    sgd = [f"sgd_{name}" for name, options in LINEAR_PROTOCOLS.items() if options.solver == "sgd"]
    for key in [*sgd, "lbfgs", "lbfgs_train", "knn"]:
        assert 0.0 <= result[key] <= 1.0, key
    for key in [*sgd, "lbfgs", "knn"]:  # scored on the 50 test images
        assert math.isclose(result[key] * 50, round(result[key] * 50), abs_tol=1e-9), key

    # The same network, features and solver built here; predictions scored by hand.
    train, test = balanced_subset(cifar.train, 100, 3), balanced_subset(cifar.test, 50, 3)
    torch.manual_seed(3)
    method = SimCLR(backbone="resnet12", backbone_kwargs={"widths": list(WIDTHS)}).eval()
    with torch.no_grad():
        train_features = method.embed(train.images).float()
        test_features = method.embed(test.images).float()
    train_std, test_std = standardize_features(train_features, test_features)
    weight, bias = train_linear_classifier_lbfgs(train_std, train.labels, 10, l2=1e-4, max_iterations=500,
                                                 tolerance=1e-6)
    hits = sum(int(torch.argmax(weight @ x + bias)) == int(y) for x, y in zip(test_std, test.labels))
    assert result["lbfgs"] == hits / 50
    assert math.isclose(result["sampling_error"], math.sqrt(hits / 50 * (1 - hits / 50) / 50))


def test_script_help_runs():
    done = subprocess.run([sys.executable, str(REPO / "scripts" / "compare_linear_probes.py"), "--help"],
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
    assert "--train-size" in done.stdout
