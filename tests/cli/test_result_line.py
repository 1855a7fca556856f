"""A ``fit`` ends with one line of results whose numbers are the run's own files, and prints none of
Lightning's accelerator-availability lines, AMP notice or bf16 model-summary warning."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys

import numpy as np
from conftest import REPO, tiny_args  # tests/cli/conftest.py

from sslprobe.cli.result_line import result_line, result_parts

LIGHTNING_LINES = ("GPU available", "TPU available", "HPU available", "Automatic Mixed Precision",
                   "not supported by the model summary")
RESULT = re.compile(
    r"^sslprobe: result: linear top-1 (?P<linear>[\d.]+) % \(random init (?P<linear0>[\d.]+) %\), "
    r"kNN (?P<knn>[\d.]+) % \(random init (?P<knn0>[\d.]+) %\), "
    r"effective rank (?P<rank>[\d.]+)/(?P<dim>\d+) \(step 0: (?P<rank0>[\d.]+)\) — (?P<run_dir>.+)/$"
)


def test_quickstart_fit_ends_with_its_results_in_sslprobe_words(cifar_root, tmp_path):
    root = tmp_path / "runs"
    args = tiny_args("quickstart.yaml", cifar_root, root, "--run.version", "v",
                     "--trainer.callbacks", "null", "--trainer.enable_progress_bar", "false",
                     "--trainer.enable_model_summary", "true",  # its bf16 warning is what is checked
                     "--run.precision", "null", "--trainer.precision", "bf16-mixed",
                     "--trainer.logger", "lightning.pytorch.loggers.CSVLogger",
                     "--trainer.logger.init_args.save_dir", str(root),
                     "--probes.landscape", "null", "--probes.spectrum.num_images", "64",
                     "--probes.linear_eval.train_size", "200", "--probes.linear_eval.test_size", "100",
                     "--probes.linear_eval.epochs", "2", "--probes.linear_eval.knn_k", "10")
    env = {key: value for key, value in os.environ.items() if key != "SSLPROBE_DEBUG"}
    done = subprocess.run([sys.executable, "-m", "sslprobe", *args], cwd=tmp_path, capture_output=True, text=True,
                          timeout=600, env={**env, "WANDB_MODE": "offline", "PYTHONPATH": str(REPO)})
    assert done.returncode == 0, done.stderr[-3000:]
    output = done.stdout + done.stderr
    assert not [line for line in output.splitlines() if line.startswith(LIGHTNING_LINES) or any(
        words in line for words in LIGHTNING_LINES)], output
    # the device and precision, once, in sslprobe's words
    assert done.stderr.count("sslprobe: 1 cpu device, precision bf16-mixed") == 1, done.stderr

    last = done.stdout.strip().splitlines()[-1]
    match = RESULT.match(last)
    assert match, last
    run_dir = root / "simclr_resnet12_none" / "v"
    assert match["run_dir"] == str(run_dir)
    linear = json.loads((run_dir / "probes" / "linear_eval.json").read_text())
    for key, field in (("linear", "top1"), ("linear0", "random_init_top1"), ("knn", "knn_top1"),
                       ("knn0", "random_init_knn_top1")):
        assert match[key] == f"{100 * linear[field]:.1f}", (key, last)
    with np.load(run_dir / "probes" / "spectrum.npz") as spectrum:
        assert list(spectrum["epochs"]) == [0, 1]
        assert match["rank"] == f"{spectrum['embeddings_effective_rank'][-1]:.1f}"
        assert match["rank0"] == f"{spectrum['embeddings_effective_rank'][0]:.1f}"
        assert int(match["dim"]) == spectrum["embedding_eigenvalues"].shape[1] == 16  # tiny_args' output_dim


def test_kNN_monitor_alone_is_reported_against_step_0_and_nothing_measured_says_nothing(tmp_path):
    assert result_parts(tmp_path) == [] and result_line(tmp_path) is None
    (tmp_path / "probes").mkdir()
    history = [{"epochs_trained": 0, "top1": 0.105}, {"epochs_trained": 1, "top1": 0.2}, {"epochs_trained": 2,
                                                                                           "top1": 0.3125}]
    (tmp_path / "probes" / "knn_monitor.json").write_text(json.dumps({"history": history}))
    assert result_line(tmp_path) == f"sslprobe: result: kNN 31.2 % (step 0: 10.5 %) — {tmp_path}/"
