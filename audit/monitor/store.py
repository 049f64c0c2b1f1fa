"""The monitor's state: an SQLite file (the standard library's; nothing to install, one file
to keep, transactions and a write lock that concurrent runs share).

Tables (schema version :data:`SCHEMA_VERSION`, in ``meta``):

* ``batches``: each batch file seen (name, SHA-256, rows);
* ``windows``: each judged window (key, position, content hash, rows, time span, the model
  files' hashes when it was judged);
* ``measurements``: each window's measurements, as the JSON the audit's results use;
* ``predictions``: each judged row's predicted class per model (the teacher's ``NULL`` off
  its shadow rows), so labels that arrive later can be scored;
* ``labels``: row id -> label, as delivered;
* ``events``: what a run noticed (a changed batch or window, a conflicting label).

A window is written in one ``BEGIN IMMEDIATE`` transaction (window, measurements, predictions
together), after checking inside it that no other run wrote it first: a run killed mid-window
leaves nothing of that window, concurrent runs never write one window twice.
"""

from __future__ import annotations

import json
import sqlite3
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from audit.errors import DataError, display_path
from audit.results import Measurement

__all__ = ["Store", "StoredWindow", "SCHEMA_VERSION"]

SCHEMA_VERSION = 1
_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS batches (
    name TEXT PRIMARY KEY, sha256 TEXT NOT NULL, rows INTEGER NOT NULL, seen TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS windows (
    id INTEGER PRIMARY KEY, key TEXT NOT NULL UNIQUE, position TEXT NOT NULL,
    content TEXT NOT NULL, rows INTEGER NOT NULL, start TEXT, end TEXT, models TEXT NOT NULL,
    judged TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS measurements (
    window_id INTEGER NOT NULL REFERENCES windows(id), metric TEXT NOT NULL,
    body TEXT NOT NULL, PRIMARY KEY (window_id, metric));
CREATE TABLE IF NOT EXISTS predictions (
    row_id TEXT PRIMARY KEY, window_id INTEGER NOT NULL REFERENCES windows(id),
    student INTEGER NOT NULL, teacher INTEGER);
CREATE INDEX IF NOT EXISTS predictions_window ON predictions (window_id);
CREATE TABLE IF NOT EXISTS labels (
    row_id TEXT PRIMARY KEY, label TEXT NOT NULL, file TEXT NOT NULL, arrived TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS events (
    id INTEGER PRIMARY KEY, at TEXT NOT NULL, kind TEXT NOT NULL, message TEXT NOT NULL);
"""


def _now() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())


@dataclass(frozen=True)
class StoredWindow:
    """A judged window as the store holds it."""

    id: int
    key: str
    position: str
    content: str
    rows: int
    start: str | None
    end: str | None
    models: Mapping[str, str | None]
    judged: str


class Store:
    """One monitor's SQLite store (created on first use)."""

    def __init__(self, path: Path, name: str) -> None:
        self.path = path
        where = display_path(path)
        if path.is_dir():
            raise DataError(f"{where}: the store is a folder; name a file (store: "
                            f"{path.name}/monitor.sqlite)")
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            self.db = sqlite3.connect(path, timeout=60.0, isolation_level=None)
            self.db.execute("PRAGMA busy_timeout = 60000")
            self.db.execute("PRAGMA journal_mode = WAL")
            self.db.execute("PRAGMA foreign_keys = ON")
            self._create(name)
        except sqlite3.Error as exc:
            raise DataError(f"{where}: cannot use it as the monitor's store ({exc}); name "
                            "another file (store:) or remove this one if it is not a store") \
                from None
        except OSError as exc:
            raise DataError(f"{where}: cannot create the store ({exc.strerror or exc})") from None

    def _create(self, name: str) -> None:
        self.db.execute("BEGIN IMMEDIATE")
        try:
            tables = {r[0] for r in self.db.execute(
                "SELECT name FROM sqlite_master WHERE type = 'table'")}
            if tables and "meta" not in tables:
                raise DataError(f"{display_path(self.path)}: an SQLite database of something "
                                f"else (tables {', '.join(sorted(tables))}), not a monitor's "
                                "store; name another file (store:)")
            for statement in _SCHEMA.strip().split(";"):
                if statement.strip():
                    self.db.execute(statement)
            rows = dict(self.db.execute("SELECT key, value FROM meta").fetchall())
            if not rows:
                self.db.executemany("INSERT INTO meta VALUES (?, ?)", [
                    ("schema_version", str(SCHEMA_VERSION)), ("monitor", name),
                    ("created", _now())])
            else:
                version = int(rows.get("schema_version", "0"))
                if version > SCHEMA_VERSION:
                    raise DataError(f"{display_path(self.path)}: the store has schema version "
                                    f"{version}, newer than this distill-audit reads "
                                    f"({SCHEMA_VERSION}); upgrade distill-audit")
                if rows.get("monitor") != name:
                    raise DataError(f"{display_path(self.path)}: the store belongs to monitor "
                                    f"{rows.get('monitor')!r}, not {name!r}; give each monitor "
                                    "its own store")
            self.db.execute("COMMIT")
        except BaseException:
            self.db.execute("ROLLBACK")
            raise

    def close(self) -> None:
        self.db.close()

    @contextmanager
    def write(self) -> Iterator[sqlite3.Connection]:
        """One write transaction (taking the write lock at its start)."""
        self.db.execute("BEGIN IMMEDIATE")
        try:
            yield self.db
        except BaseException:
            self.db.execute("ROLLBACK")
            raise
        self.db.execute("COMMIT")

    # -- batches and events ---------------------------------------------------------------
    def note_batch(self, name: str, sha256: str, rows: int) -> str | None:
        """Record a batch file; a message when one of that name was seen with other content."""
        with self.write() as db:
            old = db.execute("SELECT sha256 FROM batches WHERE name = ?", (name,)).fetchone()
            if old is None:
                db.execute("INSERT INTO batches VALUES (?, ?, ?, ?)", (name, sha256, rows, _now()))
                return None
            if old[0] == sha256:
                return None
            message = (f"batch {name} changed since it was first seen (sha256 {old[0][:12]}... "
                       f"-> {sha256[:12]}...); windows already judged keep their results")
            if not db.execute("SELECT 1 FROM events WHERE message = ?", (message,)).fetchone():
                db.execute("INSERT INTO events (at, kind, message) VALUES (?, 'changed_batch', ?)",
                           (_now(), message))
            return message

    def event(self, kind: str, message: str) -> None:
        """Record what a run noticed (once: the same message again is not a new event)."""
        with self.write() as db:
            if not db.execute("SELECT 1 FROM events WHERE message = ?", (message,)).fetchone():
                db.execute("INSERT INTO events (at, kind, message) VALUES (?, ?, ?)",
                           (_now(), kind, message))

    def events(self) -> list[dict[str, str]]:
        return [{"at": a, "kind": k, "message": m} for a, k, m in self.db.execute(
            "SELECT at, kind, message FROM events ORDER BY id")]

    # -- windows ----------------------------------------------------------------------------
    def window(self, key: str) -> StoredWindow | None:
        row = self.db.execute("SELECT id, key, position, content, rows, start, end, models, "
                              "judged FROM windows WHERE key = ?", (key,)).fetchone()
        return None if row is None else self._stored(row)

    def windows(self) -> list[StoredWindow]:
        return [self._stored(r) for r in self.db.execute(
            "SELECT id, key, position, content, rows, start, end, models, judged FROM windows "
            "ORDER BY position, id")]

    @staticmethod
    def _stored(row: Any) -> StoredWindow:
        return StoredWindow(row[0], row[1], row[2], row[3], row[4], row[5], row[6],
                            json.loads(row[7]), row[8])

    def add_window(self, key: str, position: str, content: str, rows: int, start: str | None,
                   end: str | None, models: Mapping[str, str | None],
                   measurements: list[Measurement], row_ids: np.ndarray,
                   student: np.ndarray, teacher: np.ndarray) -> bool:
        """Write one judged window whole; ``False`` (and nothing written) when another run
        wrote it first. ``teacher`` holds -1 where the teacher did not run."""
        with self.write() as db:
            if db.execute("SELECT 1 FROM windows WHERE key = ?", (key,)).fetchone():
                return False
            ids = [str(r) for r in row_ids]
            for at in range(0, len(ids), 500):  # a row judged in another window already
                chunk = ids[at:at + 500]
                seen = db.execute(
                    "SELECT p.row_id, w.key FROM predictions p JOIN windows w ON w.id = "
                    f"p.window_id WHERE p.row_id IN ({','.join('?' * len(chunk))}) LIMIT 1",
                    chunk).fetchone()
                if seen is not None:
                    raise DataError(f"window {key}: row id {seen[0]!r} was judged in window "
                                    f"{seen[1]} already (a batch sent twice, or renamed?); "
                                    "remove the copy, or give its rows new ids")
            cur = db.execute("INSERT INTO windows (key, position, content, rows, start, end, "
                             "models, judged) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                             (key, position, content, rows, start, end,
                              json.dumps(dict(models), sort_keys=True), _now()))
            wid = cur.lastrowid
            db.executemany("INSERT INTO measurements VALUES (?, ?, ?)", [
                (wid, m.metric, json.dumps(m.to_dict(), sort_keys=True, allow_nan=True))
                for m in measurements])
            db.executemany("INSERT INTO predictions VALUES (?, ?, ?, ?)", [
                (str(r), wid, int(s), None if t < 0 else int(t))
                for r, s, t in zip(row_ids, student, teacher, strict=True)])
        return True

    def judged_rows(self) -> set[str]:
        """The row ids of every judged window."""
        return {r[0] for r in self.db.execute("SELECT row_id FROM predictions")}

    def unmatched_labels(self) -> int:
        """Delivered labels whose row id no judged row has (yet)."""
        return int(self.db.execute("SELECT COUNT(*) FROM labels l WHERE NOT EXISTS (SELECT 1 "
                                   "FROM predictions p WHERE p.row_id = l.row_id)").fetchone()[0])

    def measurements(self, window_id: int) -> dict[str, Measurement]:
        return {metric: Measurement.from_dict(json.loads(body)) for metric, body in
                self.db.execute("SELECT metric, body FROM measurements WHERE window_id = ?",
                                (window_id,))}

    def predictions(self, window_id: int) -> tuple[list[str], np.ndarray, np.ndarray]:
        rows = self.db.execute("SELECT row_id, student, teacher FROM predictions WHERE "
                               "window_id = ? ORDER BY rowid", (window_id,)).fetchall()
        ids = [r[0] for r in rows]
        return (ids, np.array([r[1] for r in rows], dtype=np.int64),
                np.array([-1 if r[2] is None else r[2] for r in rows], dtype=np.int64))

    # -- labels -------------------------------------------------------------------------------
    def add_labels(self, file: str, ids: list[str], labels: list[str]) -> tuple[int, list[str]]:
        """Add the labels not yet stored; returns how many were new and the conflicts (a row
        whose stored label differs: kept as first delivered, and reported)."""
        conflicts: list[str] = []
        with self.write() as db:
            known = dict(db.execute("SELECT row_id, label FROM labels").fetchall())
            new = []
            for rid, label in zip(ids, labels, strict=True):
                old = known.get(rid)
                if old is None:
                    new.append((rid, label, file, _now()))
                    known[rid] = label
                elif old != label:
                    conflicts.append(f"row {rid}: label {label!r} in {file}, but {old!r} was "
                                     "delivered first (kept)")
            db.executemany("INSERT INTO labels VALUES (?, ?, ?, ?)", new)
            for message in conflicts[:20]:
                if not db.execute("SELECT 1 FROM events WHERE message = ?", (message,)).fetchone():
                    db.execute("INSERT INTO events (at, kind, message) VALUES (?, "
                               "'label_conflict', ?)", (_now(), message))
        return len(new), conflicts

    def labels(self) -> dict[str, str]:
        return dict(self.db.execute("SELECT row_id, label FROM labels").fetchall())
