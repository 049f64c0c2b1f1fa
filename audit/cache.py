"""Predictions computed once per (model, data) fingerprint, in memory and on disk.

The key is the SHA-256 of the model's content, the data file's content and the feature
columns, so an unchanged teacher is not re-run on the next CI run, and any change to the
model or the data misses. Entries on disk carry the SHA-256 of their bytes; an entry that is
unreadable or does not match is recomputed, never trusted. Writes are atomic (a temporary file
renamed into place), so parallel workers never read half an entry.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import tempfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

__all__ = ["PredictionCache", "CacheStats", "atomic_write_bytes"]

CACHE_FORMAT = 2


def atomic_write_bytes(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` atomically (same-directory temporary file + rename).

    The file keeps the permissions of the one it replaces, and a new file is readable by all
    (0644) like an ordinary file, not private as the temporary file is created.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        mode = path.stat().st_mode & 0o777
    except OSError:
        mode = 0o644
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fchmod(fh.fileno(), mode)
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


@dataclass
class CacheStats:
    """How predictions were obtained this session."""

    memory_hits: int = 0
    disk_hits: int = 0
    computed: int = 0
    corrupt: list[str] = field(default_factory=list)


class PredictionCache:
    """Memoise ``compute()`` under a key, in memory and (optionally) in ``directory``."""

    def __init__(self, directory: Path | None) -> None:
        self.directory = directory
        self._memory: dict[str, tuple[np.ndarray, dict[str, Any]]] = {}
        self.stats = CacheStats()

    @staticmethod
    def key(*parts: str) -> str:
        """A cache key from fingerprints (model sha256, data sha256, columns, ...)."""
        h = hashlib.sha256(f"distill-audit-cache-v{CACHE_FORMAT}".encode())
        for part in parts:
            h.update(b"\0" + part.encode())
        return h.hexdigest()

    def get(self, key: str, compute: Callable[[], np.ndarray]) -> tuple[np.ndarray, str]:
        """Return the array for ``key`` and where it came from (memory, disk or computed)."""
        value, _, source = self.get_with_info(key, lambda: (compute(), {}))
        return value, source

    def get_with_info(self, key: str, compute: Callable[[], tuple[np.ndarray, dict[str, Any]]],
                      *, persist: bool = True,
                      persist_if: Callable[[dict[str, Any]], bool] | None = None
                      ) -> tuple[np.ndarray, dict[str, Any], str]:
        """Like :meth:`get`, with a small JSON-able ``info`` dict stored beside the array
        (for predictions: the model's classes, so a cache hit needs no model at all).
        ``persist=False`` keeps the entry in memory only (this run), never on disk;
        ``persist_if(info)`` decides it per computed entry (false: memory only)."""
        if key in self._memory:
            self.stats.memory_hits += 1
            value, info = self._memory[key]
            return value, info, "memory"
        found = self._read(key) if persist else None
        source = "disk"
        if found is None:
            raw, info = compute()
            value = np.ascontiguousarray(raw)
            source = "computed"
            self.stats.computed += 1
            if persist and (persist_if is None or persist_if(info)):
                self._write(key, value, info)
        else:
            value, info = found
            self.stats.disk_hits += 1
        value.setflags(write=False)
        self._memory[key] = (value, info)
        return value, info, source

    def _paths(self, key: str) -> tuple[Path, Path]:
        assert self.directory is not None
        return self.directory / f"{key}.npy", self.directory / f"{key}.json"

    def _read(self, key: str) -> tuple[np.ndarray, dict[str, Any]] | None:
        if self.directory is None:
            return None
        data_path, meta_path = self._paths(key)
        if not data_path.exists() and not meta_path.exists():
            return None
        where = meta_path.name
        try:
            meta = json.loads(meta_path.read_text())
            if not isinstance(meta, dict):
                raise ValueError(f"holds {type(meta).__name__}, not a record")
            where = data_path.name
            data = data_path.read_bytes()
            if hashlib.sha256(data).hexdigest() != meta["sha256"]:
                raise ValueError("content does not match its recorded sha256")
            value = np.load(io.BytesIO(data), allow_pickle=False)
            if list(value.shape) != meta["shape"]:
                raise ValueError(f"shape {list(value.shape)} does not match its record "
                                 f"{meta['shape']}")
            info = meta.get("info", {})
            if not isinstance(info, dict):
                raise ValueError("its info is not a record")
            return value, info
        except (OSError, ValueError, KeyError, TypeError) as exc:
            if isinstance(exc, KeyError):
                where, problem = meta_path.name, f"missing key {exc}"
            else:
                problem = str(exc)
            self.stats.corrupt.append(f"{where}: {problem}; recomputed")
            return None

    def _write(self, key: str, value: np.ndarray, info: dict[str, Any]) -> None:
        if self.directory is None:
            return
        buf = io.BytesIO()
        np.save(buf, value, allow_pickle=False)
        data = buf.getvalue()
        data_path, meta_path = self._paths(key)
        try:
            atomic_write_bytes(data_path, data)
            meta = {"format": CACHE_FORMAT, "sha256": hashlib.sha256(data).hexdigest(),
                    "shape": list(value.shape), "info": info}
            atomic_write_bytes(meta_path, json.dumps(meta).encode())
        except OSError as exc:  # a read-only cache directory must not fail the audit
            self.stats.corrupt.append(f"could not write {data_path.name}: {exc}")
