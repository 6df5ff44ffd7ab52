"""Read back what an offline W&B run wrote (``<save dir>/wandb/offline-run-*/``), without a W&B server.

The ``run-<id>.wandb`` file is a LevelDB-style log (a 7-byte header ``:W&B`` + magic + version, then 32 KiB
blocks of records, each ``crc32 (4) | length (2, little-endian) | type (1)``, a record longer than its block
continuing in FIRST / MIDDLE / LAST pieces) of ``wandb.proto.wandb_internal_pb2.Record`` messages. Tables and
images are files under the run's ``files/media/``; history and summary values reference them by path.

Used by the tests (``tests/test_wandb_logging.py``) and handy for checking a run before ``wandb sync``.
"""

from __future__ import annotations

import json
import struct
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from zsl_lightning.errors import DataError

BLOCK = 32768
HEADER = 7
FULL, FIRST, MIDDLE, LAST = 1, 2, 3, 4


def records(path: Path | str) -> list[bytes]:
    """The serialized records of the ``.wandb`` file ``path``, in order."""
    raw = Path(path).read_bytes()
    if raw[:4] != b":W&B":
        raise DataError(f"'{path}' is not a W&B run file (no ':W&B' header).")
    out, pieces, pos = [], [], HEADER
    while pos + HEADER <= len(raw):
        left = BLOCK - pos % BLOCK
        if left < HEADER:  # a block's tail too short for a record header is padding
            pos += left
            continue
        _crc, n, kind = struct.unpack("<IHB", raw[pos : pos + HEADER])
        if n == 0 and kind == 0:  # zero padding up to the next block
            pos += left
            continue
        data = raw[pos + HEADER : pos + HEADER + n]
        pos += HEADER + n
        if kind == FULL:
            out.append(data)
        elif kind == FIRST:
            pieces = [data]
        elif kind == MIDDLE:
            pieces.append(data)
        elif kind == LAST:
            out.append(b"".join([*pieces, data]))
            pieces = []
    return out


@dataclass
class OfflineRun:
    """What an offline run logged: ``history`` rows and the final ``summary`` (values decoded from JSON; a
    table or image is a dict with its ``path`` under ``files``), and the ``config``."""

    dir: Path
    history: list[dict[str, Any]] = field(default_factory=list)
    summary: dict[str, Any] = field(default_factory=dict)
    config: dict[str, Any] = field(default_factory=dict)

    @property
    def files(self) -> Path:
        return self.dir / "files"

    def media(self, value: dict) -> Path:
        """The file a logged table / image value points at."""
        return self.files / value["path"]

    def table(self, key: str) -> dict:
        """The last logged ``wandb.Table`` of ``key``: ``{"columns": [...], "data": [[...], ...]}``."""
        return json.loads(self.media(self.summary[key]).read_text())


def _decode(items) -> dict[str, Any]:
    """Items ``key`` / ``nested_key`` + ``value_json`` as a dict; a nested key (e.g. the ``path`` of a table
    ``per_class/zsl``) becomes a nested dict (``{"per_class/zsl": {"path": ...}}``)."""
    out: dict[str, Any] = {}
    for item in items:
        keys = [item.key] if item.key else list(item.nested_key)
        node = out
        for k in keys[:-1]:
            node = node.setdefault(k, {})
        node[keys[-1]] = json.loads(item.value_json)
    return out


def _merge(into: dict, new: dict) -> None:
    for k, v in new.items():
        if isinstance(v, dict) and isinstance(into.get(k), dict):
            _merge(into[k], v)
        else:
            into[k] = v


def read_offline_run(run_dir: Path | str) -> OfflineRun:
    """Parse ``run_dir`` (an ``offline-run-*`` directory, or a directory holding exactly one)."""
    from wandb.proto import wandb_internal_pb2 as pb

    run_dir = Path(run_dir)
    found = sorted(run_dir.glob("run-*.wandb")) or sorted(run_dir.glob("**/offline-run-*/run-*.wandb"))
    if len(found) != 1:
        raise DataError(f"expected one W&B run file under '{run_dir}', found {len(found)}.")
    run = OfflineRun(found[0].parent)
    for data in records(found[0]):
        rec = pb.Record()
        rec.ParseFromString(data)
        kind = rec.WhichOneof("record_type")
        if kind == "history":
            run.history.append(_decode(rec.history.item))
        elif kind == "summary":
            _merge(run.summary, _decode(rec.summary.update))
        elif kind == "config":
            _merge(run.config, _decode(rec.config.update))
    return run
