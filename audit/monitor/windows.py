"""Production batches and the windows they are judged in.

Batches are read whole on every run (a folder of files in name order, or one table), each
with its SHA-256; rows get their id (the ``id`` column, or ``<file>:<row>``). Windows are
then cut from the stream of rows:

* ``batch``: one window per file, named by the file;
* ``rows``: every ``rows`` consecutive rows across files; the last, incomplete one is *open*;
* ``hour`` / ``day`` / ``week``: by the ``timestamp`` column (UTC; weeks start on Monday);
  the latest period is open (more of its rows may still come).

An open window is not judged until it closes. Each window carries a content hash (of its
rows, in order): a window already in the store is never judged twice, and one whose content
changed since is reported, not silently re-judged.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from audit.data.hashing import file_sha256
from audit.data.tables import read_table
from audit.errors import DataError, display_path

__all__ = ["Batch", "Window", "read_batches", "cut_windows", "content_hash"]

SUFFIXES = (".csv", ".parquet", ".pq")
_FREQ = {"hour": "h", "day": "D", "week": "W-MON"}


@dataclass(frozen=True)
class Batch:
    """One file's rows, as read: ``name`` (the file name), its ``sha256`` and ``frame``."""

    name: str
    path: Path
    sha256: str
    frame: pd.DataFrame


@dataclass(frozen=True)
class Window:
    """The rows one window judges. ``position`` orders windows (sortable text); ``rows`` the
    frame (with ``__row_id`` and ``__batch`` columns), ``start`` / ``end`` its time span when
    windowed by time, ``content`` the SHA-256 of its rows."""

    key: str
    position: str
    rows: pd.DataFrame
    content: str
    start: str | None = None
    end: str | None = None

    @property
    def n(self) -> int:
        return len(self.rows)


def content_hash(frame: pd.DataFrame) -> str:
    """SHA-256 of a frame's values in order (pandas' row hashes; the same rows, the same
    hash, across runs)."""
    hashed = pd.util.hash_pandas_object(frame, index=False).to_numpy()
    return hashlib.sha256(hashed.tobytes() + "\0".join(map(str, frame.columns)).encode()
                          ).hexdigest()


def read_batches(folder: Path | None, table: Path | None, id_column: str | None) -> list[Batch]:
    """Every batch file (or the one table), read literally, with row ids."""
    if folder is not None:
        paths = sorted(p for p in folder.iterdir() if p.is_file() and p.suffix.lower() in SUFFIXES)
        if not paths:
            raise DataError(f"{display_path(folder)}: no batch files (.csv, .parquet) yet")
    else:
        assert table is not None
        paths = [table]
    batches: list[Batch] = []
    seen: dict[str, str] = {}
    for path in paths:
        frame = read_table(path).reset_index(drop=True)
        if id_column is not None:
            if id_column not in frame.columns:
                raise DataError(f"{display_path(path)}: no row id column {id_column!r} "
                                f"(batches.id); columns: {', '.join(map(str, frame.columns))}")
            ids = frame[id_column].astype(str)
            if ids.isna().any() or (frame[id_column].isna()).any():
                row = int(np.flatnonzero(frame[id_column].isna().to_numpy())[0]) + 2
                raise DataError(f"{display_path(path)} line {row}: the row id {id_column!r} is "
                                "empty; every row needs one to join its label")
        else:
            ids = pd.Series([f"{path.name}:{i + 1}" for i in range(len(frame))])
        for i, rid in enumerate(ids):
            if rid in seen:
                raise DataError(f"{display_path(path)} line {i + 2}: row id {rid!r} repeats "
                                f"{seen[rid]}; row ids must be unique across batches")
            seen[rid] = f"{path.name} line {i + 2}"
        frame = frame.assign(__row_id=ids.to_numpy(), __batch=path.name)
        batches.append(Batch(path.name, path, file_sha256(path), frame))
    return batches


def cut_windows(batches: list[Batch], window: str, rows: int | None,
                timestamp: str | None, *, judged: set[str] | None = None, start: int = 0
                ) -> tuple[list[Window], str | None]:
    """The closed windows, in order, and a note on the open one (``None`` when none is).

    ``rows`` windows are cut from the rows not judged yet (``judged``: their ids), numbered
    from ``start``: a batch that arrives late, or one that sorts earlier, is judged in the next
    windows, never skipped, and a judged row is never judged again."""
    if window == "batch":
        return [Window(b.name, b.name, b.frame, content_hash(b.frame)) for b in batches], None
    stream = pd.concat([b.frame for b in batches], ignore_index=True)
    if window == "rows":
        assert rows is not None
        if judged:
            stream = stream[~stream["__row_id"].isin(judged)].reset_index(drop=True)
        full = len(stream) // rows
        out = []
        for i in range(full):
            part = stream.iloc[i * rows:(i + 1) * rows].reset_index(drop=True)
            ids = part["__row_id"]
            out.append(Window(f"rows {ids.iloc[0]} to {ids.iloc[-1]}", f"{start + i:012d}",
                              part, content_hash(part)))
        left = len(stream) - full * rows
        return out, (f"{left} row(s) wait for a full window of {rows}" if left else None)
    assert timestamp is not None
    if timestamp not in stream.columns:
        raise DataError(f"the batches have no timestamp column {timestamp!r} (batches.timestamp)")
    times = pd.to_datetime(stream[timestamp], utc=True, errors="coerce", format="ISO8601")
    if times.isna().any():
        i = int(np.flatnonzero(times.isna().to_numpy())[0])
        where = stream["__batch"].iloc[i]
        line = int((stream["__batch"].iloc[:i] == where).sum()) + 2
        raise DataError(f"{where} line {line}: {timestamp}={stream[timestamp].iloc[i]!r} is not "
                        "a time; write ISO 8601 (2026-01-31T12:00:00Z; a time without a zone "
                        "is read as UTC)")
    periods = times.dt.tz_convert(None).dt.to_period(_FREQ[window])
    order = np.argsort(periods.astype("int64").to_numpy(), kind="stable")
    stream, periods = stream.iloc[order].reset_index(drop=True), periods.iloc[order].reset_index(
        drop=True)
    out = []
    keys = periods.unique()
    for period in keys[:-1]:  # the latest period is open
        part = stream[(periods == period).to_numpy()].reset_index(drop=True)
        begins = period.start_time.isoformat()
        out.append(Window(f"{window} {begins}", begins, part, content_hash(part), start=begins,
                          end=period.end_time.isoformat()))
    last = keys[-1] if len(keys) else None
    return out, (None if last is None else
                 f"the {window} from {last.start_time.isoformat()} is open (its rows may still "
                 "come); it is judged once a later row arrives")


def model_frame(window: Window, columns: Any) -> pd.DataFrame:
    """The window's feature columns as the models read them."""
    missing = [c for c in columns if c not in window.rows.columns]
    if missing:
        raise DataError(f"window {window.key}: the batch has no column(s) "
                        f"{', '.join(map(repr, missing))} the models read")
    return window.rows[list(columns)].reset_index(drop=True)
