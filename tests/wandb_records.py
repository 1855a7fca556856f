"""Reads the records of a W&B offline run file (``run-<id>.wandb``), independently of wandb's writer.

The file is ``:W&B`` + 3 header bytes, then LevelDB-log records in 32 KiB blocks (7-byte record
header: crc32, little-endian length, type FULL=1 / FIRST=2 / MIDDLE=3 / LAST=4), each carrying one
serialised ``wandb_internal_pb2.Record``.
"""

from __future__ import annotations

import json
from pathlib import Path

BLOCK, HEADER = 32768, 7


def records(path: Path) -> list:
    from wandb.proto import wandb_internal_pb2

    data = Path(path).read_bytes()
    assert data[:4] == b":W&B", f"{path} is not a W&B run file"
    position, pending, payloads = HEADER, b"", []
    while position + HEADER <= len(data):
        left = BLOCK - position % BLOCK
        if left < HEADER:
            position += left
            continue
        length, kind = int.from_bytes(data[position + 4 : position + 6], "little"), data[position + 6]
        chunk = data[position + HEADER : position + HEADER + length]
        position += HEADER + length
        if kind == 1:
            payloads.append(chunk)
        elif kind == 2:
            pending = chunk
        elif kind == 3:
            pending += chunk
        elif kind == 4:
            payloads.append(pending + chunk)
        else:
            break  # zero padding at the end of the file
    parsed = []
    for payload in payloads:
        record = wandb_internal_pb2.Record()
        record.ParseFromString(payload)
        parsed.append(record)
    return parsed


def wait_until_finished(path: Path, timeout: float = 300.0) -> list:
    """The records of ``path`` once W&B's writer (a separate process) has written the run's ``exit``
    record, its own signal that the run is complete; re-read until then (an AssertionError after
    ``timeout`` seconds names the last record seen)."""
    import time

    deadline = time.monotonic() + timeout
    while True:
        parsed = records(path) if Path(path).is_file() else []
        if any(record.WhichOneof("record_type") == "exit" for record in parsed):
            return parsed
        last = parsed[-1].WhichOneof("record_type") if parsed else None
        assert time.monotonic() < deadline, f"{path}: no exit record after {timeout} s (last record: {last})"
        time.sleep(0.2)  # the poll interval of the wait, not the synchronisation: that is the exit record


def _key(item) -> str:
    return item.key or "/".join(item.nested_key)


def history(path: Path) -> list[dict]:
    """The logged rows, in order, as ``{key: value}``."""
    return [{_key(item): json.loads(item.value_json) for item in record.history.item}
            for record in records(path) if record.WhichOneof("record_type") == "history"]


def run_ids(path: Path) -> set[str]:
    return {record.run.run_id for record in records(path) if record.WhichOneof("record_type") == "run"}


def config(path: Path) -> dict:
    """The run's config as the file's config records set it (later records update earlier ones)."""
    values = {}
    for record in records(path):
        if record.WhichOneof("record_type") == "config":
            values.update({_key(item): json.loads(item.value_json) for item in record.config.update})
        elif record.WhichOneof("record_type") == "run":
            values.update({_key(item): json.loads(item.value_json) for item in record.run.config.update})
    return values
