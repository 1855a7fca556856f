"""`load_cifar10` on the real copy and on malformed copies built from it."""

from __future__ import annotations

import pickle
from pathlib import Path

import numpy as np
import pytest
import torch

from sslprobe.data import DataError, load_cifar10

FILES = [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch", "batches.meta"]


def read_raw(path: Path) -> dict:
    with open(path, "rb") as handle:
        return pickle.load(handle, encoding="latin1")


def copy_with(tmp_path: Path, cifar_root: Path, replace: dict[str, bytes | None]) -> Path:
    """A copy of the real layout (symlinks) where ``replace[name]`` is written instead (None: omitted)."""
    source = cifar_root / "cifar-10-batches-py"
    folder = tmp_path / "copy" / "cifar-10-batches-py"
    folder.mkdir(parents=True)
    for name in FILES:
        if name in replace:
            if replace[name] is not None:
                (folder / name).write_bytes(replace[name])
        else:
            (folder / name).symlink_to(source / name)
    return folder.parent


def test_real_copy_structure(cifar, cifar_root):
    assert cifar.train.images.shape == (50_000, 3, 32, 32)
    assert cifar.test.images.shape == (10_000, 3, 32, 32)
    assert cifar.train.images.dtype == torch.uint8 and cifar.test.images.dtype == torch.uint8
    assert len(cifar.train) == 50_000 and len(cifar.test) == 10_000
    assert len(cifar.classes) == 10
    assert torch.bincount(cifar.train.labels, minlength=10).tolist() == [5000] * 10
    assert cifar.test.labels.min() >= 0 and cifar.test.labels.max() <= 9
    # Independent read of the raw pickle: row 0 of data_batch_2 is train image 10,000 (CHW order).
    raw = read_raw(cifar_root / "cifar-10-batches-py" / "data_batch_2")
    expected = torch.from_numpy(np.asarray(raw["data"][0], dtype=np.uint8).reshape(3, 32, 32))
    assert torch.equal(cifar.train.images[10_000], expected)
    assert int(cifar.train.labels[10_000]) == raw["labels"][0]
    meta = read_raw(cifar_root / "cifar-10-batches-py" / "batches.meta")
    assert list(cifar.classes) == list(meta["label_names"])


def test_missing_root_is_one_clear_error(tmp_path):
    root = tmp_path / "nowhere"
    with pytest.raises(DataError) as info:
        load_cifar10(root)
    message = str(info.value)
    assert "\n" not in message
    assert str(root) in message
    assert "cifar-10-batches-py" in message and "data_batch_1" in message and "batches.meta" in message
    assert "--data.root" in message and "--data.download" in message


def test_missing_batch_file(tmp_path, cifar_root):
    root = copy_with(tmp_path, cifar_root, {"data_batch_3": None})
    with pytest.raises(DataError, match=r"incomplete: missing data_batch_3"):
        load_cifar10(root)


def test_truncated_batch_file(tmp_path, cifar_root):
    head = (cifar_root / "cifar-10-batches-py" / "data_batch_2").read_bytes()[:5000]
    root = copy_with(tmp_path, cifar_root, {"data_batch_2": head})
    with pytest.raises(DataError, match=r"data_batch_2 is not a readable CIFAR-10 batch file"):
        load_cifar10(root)


def test_batch_with_wrong_shape(tmp_path, cifar_root):
    raw = read_raw(cifar_root / "cifar-10-batches-py" / "data_batch_4")
    raw["data"] = np.ascontiguousarray(raw["data"][:, :1024])  # one channel only
    root = copy_with(tmp_path, cifar_root, {"data_batch_4": pickle.dumps(raw)})
    with pytest.raises(DataError, match=r"data_batch_4: 'data' has shape \(10000, 1024\).*expected \(rows, 3072\)"):
        load_cifar10(root)


def test_batch_with_missing_rows(tmp_path, cifar_root):
    raw = read_raw(cifar_root / "cifar-10-batches-py" / "test_batch")
    raw["data"], raw["labels"] = raw["data"][:9000], raw["labels"][:9000]
    root = copy_with(tmp_path, cifar_root, {"test_batch": pickle.dumps(raw)})
    with pytest.raises(DataError, match=r"9000 rows .* expected 10000"):
        load_cifar10(root)


def test_labels_out_of_range(tmp_path, cifar_root):
    raw = read_raw(cifar_root / "cifar-10-batches-py" / "test_batch")
    raw["labels"] = list(raw["labels"])
    raw["labels"][7] = 10
    root = copy_with(tmp_path, cifar_root, {"test_batch": pickle.dumps(raw)})
    with pytest.raises(DataError, match=r"labels outside 0\.\.9"):
        load_cifar10(root)


@pytest.mark.parametrize("names", [9, 11])
def test_wrong_number_of_classes_in_meta(tmp_path, cifar_root, names):
    meta = read_raw(cifar_root / "cifar-10-batches-py" / "batches.meta")
    meta["label_names"] = [f"class{i}" for i in range(names)]
    root = copy_with(tmp_path, cifar_root, {"batches.meta": pickle.dumps(meta)})
    with pytest.raises(DataError, match=rf"batches.meta: {names} class names, expected 10"):
        load_cifar10(root)


def test_not_a_dict(tmp_path, cifar_root):
    root = copy_with(tmp_path, cifar_root, {"data_batch_1": pickle.dumps([1, 2, 3])})
    with pytest.raises(DataError, match=r"data_batch_1 holds a list"):
        load_cifar10(root)
