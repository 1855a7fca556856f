"""The random-init baseline's cache: one file per network and protocol, one entry per data.

``<runs root>/random_init_cache/<digest>.json`` holds ``{"key": <network and protocol>,
"entries": {<data digest>: {"data": ..., "predictions": [...], "knn_predictions": [...]}}}``.
The data key names the data set, its label set and image size, and carries a digest of the
evaluation images and labels, so a CIFAR-100 run never reads CIFAR-10's predictions and two
different copies of CIFAR-10 under one runs folder keep two entries. Files written before entries
were keyed by data (predictions at the top level) are never read: their data is unknown.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
from pathlib import Path

from sslprobe.data.dataset import ImageSet

try:
    import fcntl
except ImportError:  # no advisory locks (Windows): concurrent writers may drop each other's entry
    fcntl = None


def tensor_digest(*tensors) -> str:
    """BLAKE2b of the tensors' bytes (with their shapes and dtypes)."""
    digest = hashlib.blake2b(digest_size=16)
    for tensor in tensors:
        tensor = tensor.detach().cpu().contiguous()
        digest.update(f"{tuple(tensor.shape)}{tensor.dtype}".encode())
        digest.update(tensor.numpy().tobytes())
    return digest.hexdigest()


def evaluation_data_key(train: ImageSet, test: ImageSet, identity: dict | None = None) -> dict:
    """What the cached predictions depend on besides the network: the data's identity (data set,
    label set, image size; None where the datamodule does not say) and a digest of the
    evaluation images and labels."""
    return {**json.loads(json.dumps(identity or {}, sort_keys=True, default=str)),
            "digest": tensor_digest(train.images, train.labels, test.images, test.labels)}


def _entry_name(data_key: dict) -> str:
    return hashlib.sha1(json.dumps(data_key, sort_keys=True).encode()).hexdigest()[:16]


def _read(path: Path, key: dict) -> dict:
    try:
        content = json.loads(path.read_text())
    except (OSError, ValueError):
        return {}
    if content.get("key") != json.loads(json.dumps(key, default=str)) or not isinstance(content.get("entries"), dict):
        return {}
    return content["entries"]


def read_cache_entry(path: Path, key: dict, data_key: dict) -> dict | None:
    """The cached entry of (network ``key``, ``data_key``), or None."""
    entry = _read(path, key).get(_entry_name(data_key))
    return entry if entry is not None and entry.get("data") == data_key else None


@contextlib.contextmanager
def _locked(path: Path):
    if fcntl is None:
        yield
        return
    with open(path.with_suffix(".lock"), "a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def write_cache_entry(path: Path, key: dict, entry: dict) -> None:
    """Add ``entry`` to the cache file of ``key`` (atomically, under a lock: runs share the folder)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with _locked(path):
        entries = _read(path, key)
        entries[_entry_name(entry["data"])] = entry
        partial = path.with_suffix(f".{os.getpid()}.tmp")
        partial.write_text(json.dumps({"key": key, "entries": entries}, default=str))
        os.replace(partial, path)  # atomic: runs sharing the cache never read half a file
