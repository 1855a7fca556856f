"""``run.precision: auto`` picks bf16-mixed + channels-last where bfloat16 is native, and says so.

Whether this CPU runs bfloat16 natively is read here independently of the package, from the
flags of ``/proc/cpuinfo``; a machine without that file cannot answer the question (skipped).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
import yaml
from helpers import tiny_fit_args  # tests/helpers.py

from sslprobe.cli import main
from sslprobe.data.augment import normalize_images
from sslprobe.data.cifar import load_cifar10
from sslprobe.methods import SimCLR
from sslprobe.runtime import native_bfloat16

CPUINFO = Path("/proc/cpuinfo")


def cpu_has_native_bf16() -> bool:
    flags = next(line for line in CPUINFO.read_text().splitlines() if line.startswith("flags")).split()
    return "avx512_bf16" in flags or "amx_bf16" in flags


needs_cpuinfo = pytest.mark.skipif(not CPUINFO.is_file(), reason="no /proc/cpuinfo: CPU features unknown")


@pytest.fixture(autouse=True)
def plain_command_line(monkeypatch):
    monkeypatch.setenv("SSLPROBE_DEBUG", "1")
    monkeypatch.setattr("sys.argv", ["sslprobe"])


def fit(root: Path, cifar_root: Path, version: str, *extra: str) -> Path:
    main([*tiny_fit_args(root, cifar_root, "precision", version, subset_size=60, batch_size=20, max_epochs=1),
          "--trainer.limit_val_batches", "0", *extra])
    return root / "precision" / version


@needs_cpuinfo
def test_native_bfloat16_reads_the_cpu_flags():
    assert (native_bfloat16("cpu") is not None) == cpu_has_native_bf16()


@needs_cpuinfo
def test_auto_records_its_choice_in_the_run_config(tmp_path, cifar_root, capsys):
    run_dir = fit(tmp_path, cifar_root, "auto", "--run.precision", "auto", "--trainer.limit_train_batches", "1")
    saved = yaml.safe_load((run_dir / "config.yaml").read_text())
    native = cpu_has_native_bf16()
    assert saved["trainer"]["precision"] == ("bf16-mixed" if native else "32-true")
    assert saved["model"]["init_args"]["channels_last"] is native
    assert saved["run"]["precision"] == "auto"
    assert "run.precision auto: " + ("bf16-mixed + channels-last" if native else "32-true") in capsys.readouterr().err


@needs_cpuinfo
@pytest.mark.skipif(CPUINFO.is_file() and not cpu_has_native_bf16(), reason="CPU without native bfloat16: no hint")
def test_float32_fit_on_native_bf16_hardware_prints_one_hint(tmp_path, cifar_root, capsys):
    run_dir = fit(tmp_path, cifar_root, "plain", "--trainer.limit_train_batches", "1")
    hints = [line for line in capsys.readouterr().err.splitlines() if "hint: bfloat16 is native here" in line]
    assert len(hints) == 1 and "--run.precision auto" in hints[0]
    assert yaml.safe_load((run_dir / "config.yaml").read_text())["trainer"]["precision"] in (None, "32-true")


def test_probes_measure_in_float32_after_bf16_training(tmp_path, cifar_root):
    """The spectrum probe of a bf16-mixed run equals a float64 recomputation from its checkpoint."""
    run_dir = fit(tmp_path, cifar_root, "probe", "--trainer.precision", "bf16-mixed",
                  "--model.init_args.channels_last", "true", "--trainer.limit_train_batches", "2",
                  "--probes.spectrum.num_images", "256", "--probes.spectrum.every_n_epochs", "null")
    stored = np.load(run_dir / "probes" / "spectrum.npz")["feature_eigenvalues"][-1]
    method = SimCLR.load_from_checkpoint(run_dir / "checkpoints" / "last.ckpt", map_location="cpu").double().eval()
    test = load_cifar10(cifar_root).test
    chosen = torch.randperm(len(test.labels), generator=torch.Generator().manual_seed(0))[:256].sort().values
    with torch.no_grad():
        features = method.features(normalize_images(test.images[chosen]).double()).numpy()
    centred = features - features.mean(axis=0)
    expected = np.sort(np.linalg.eigvalsh(centred.T @ centred / len(features)))[::-1]
    top = expected > 1e-6 * expected[0]
    # float32 agrees to ~1e-5 relative here; bfloat16 features would be off by ~1e-2
    np.testing.assert_allclose(stored[top], expected[top], rtol=2e-3)
