"""The streaming pass on a Ray cluster (``settings.engine: ray``; the ``[ray]`` extra).

The eval dataset's Parquet row groups become Ray Data items; ``map_batches`` runs them on
worker actors, each loading both models once, reading its row groups (from a local path or any
pyarrow file system the workers can reach), predicting them and counting them into
:class:`~audit.stream.partials.Partials`, which it returns as plain arrays (``numpy.savez``, no
pickle). The driver adds them up and measures exactly as the local streaming engine does: the
same tables, so the same numbers. The seeded sample is the local engine's too: the driver draws
the same key per row from the same seeded stream, keeps the rows with the smallest keys, reads
just those rows and predicts them.

A worker knows where its row group starts in the whole dataset, so a bad value is named by its
data row and file, as on one machine. ``ray.init`` is called with ``RAY_ADDRESS`` when it is set
(an existing cluster), else it starts a local Ray; a caller may also call ``ray.init`` first.
"""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from audit.errors import AuditError, DataError, display_path
from audit.stream.partials import Moments, Partials, table_plan

__all__ = ["ray_partials", "sample_indices", "to_bytes", "from_bytes", "read_rows"]

WHO = ("teacher", "student", "diff")


def to_bytes(p: Partials) -> bytes:
    """``p``'s tables as one ``.npz`` of plain arrays (no pickle)."""
    moments = np.array([[[m.n, m.mean, m.m2] for m in (p.moments[name][w] for w in WHO)]
                        for name, _, _ in p.means], dtype=np.float64).reshape(-1, 3, 3)
    buf = io.BytesIO()
    np.savez(buf, joint=p.joint, rows=np.array([p.rows]), moments=moments,
             auc_keys=p.auc_keys, auc_counts=p.auc_counts)
    return buf.getvalue()


def from_bytes(data: bytes, like: Partials) -> Partials:
    """The :class:`Partials` :func:`to_bytes` wrote, shaped as ``like`` (same classes, means)."""
    z = np.load(io.BytesIO(data), allow_pickle=False)
    out = like.blank()
    out.joint = z["joint"].astype(np.int64)
    out.rows = int(z["rows"][0])
    for i, (name, _, _) in enumerate(like.means):
        for j, who in enumerate(WHO):
            n, mean, m2 = z["moments"][i, j]
            out.moments[name][who] = Moments(int(n), float(mean), float(m2))
    out.auc_keys, out.auc_counts = z["auc_keys"], z["auc_counts"].astype(np.int64)
    return out


def row_groups(files: list[Path]) -> list[dict[str, Any]]:
    """One item per Parquet row group: its file, index and first row in the whole dataset."""
    import pyarrow.parquet as pq

    items, start = [], 0
    for f in files:
        if f.suffix.lower() not in (".parquet", ".pq"):
            raise DataError(f"{display_path(f)}: settings.engine: ray reads Parquet (row groups "
                            "are its units of work); convert the CSV, or use engine: stream")
        meta = pq.ParquetFile(f).metadata
        for g in range(meta.num_row_groups):
            items.append({"file": str(f), "group": g, "start": start})
            start += meta.row_group(g).num_rows
    return items


class _Worker:
    """A Ray actor: both models loaded once; each call counts its row groups."""

    def __init__(self, suite: Any, decisions: dict[str, Any]) -> None:
        from audit.data import LabelEncoding
        from audit.models import load_model
        from audit.stream.inputs import InputReader

        self.suite = suite
        # a text or image suite's inputs, read as the driver decided (image mode and size)
        self.reader = InputReader(suite.data, "eval", **decisions)
        self.teacher = load_model(suite.teacher, "teacher")
        self.student = load_model(suite.student, "student")
        self.baseline = (None if suite.baseline is None
                         else load_model(suite.baseline, "baseline"))
        self.encoding = LabelEncoding.from_models(self.teacher.classes, self.student.classes,
                                                  suite.data.positive)
        self.means, self.params, self.auc = table_plan(suite)  # as the driver plans it

    def __call__(self, items: pd.DataFrame) -> pd.DataFrame:
        try:
            main, *pairs = self._count(items)
            return pd.DataFrame({"partial": [main], "as_student": [pairs[0] if pairs else b""],
                                 "versus": [pairs[1] if pairs else b""], "error": [""],
                                 "kind": [""]})
        except AuditError as exc:  # a bad row, a failing model: the driver raises it as is
            return pd.DataFrame({"partial": [b""], "as_student": [b""], "versus": [b""],
                                 "error": [str(exc)], "kind": [type(exc).__name__]})

    def _count(self, items: pd.DataFrame) -> list[bytes]:
        import pyarrow.parquet as pq

        from audit.stream.batches import table_of

        k = len(self.encoding.classes)
        tables = [Partials(k, self.encoding.pos, self.means, auc=self.auc)
                  for _ in range(3 if self.baseline is not None else 1)]
        t_order = self.encoding.reorder(self.teacher.classes)
        s_order = self.encoding.reorder(self.student.classes)
        for file, group, start in zip(items["file"], items["group"], items["start"], strict=True):
            path = Path(file)
            frame = pq.ParquetFile(path).read_row_group(int(group)).to_pandas().reset_index(
                drop=True)
            table = table_of(frame, self.suite.data, "eval", path, int(start), self.reader)
            y = self.encoding.encode(table.labels, f"{display_path(path)} column "
                                                   f"{self.suite.data.target!r}", offset=int(start))
            p_t = self.teacher.predict_proba(table)[:, t_order]
            p_s = self.student.predict_proba(table)[:, s_order]
            tables[0].add(y, p_t, p_s, self.params)
            if self.baseline is not None:
                p_b = self.baseline.predict_proba(table)[:, self.encoding.reorder(
                    self.baseline.classes)]
                tables[1].add(y, p_t, p_b, self.params)  # the baseline as the student
                tables[2].add(y, p_b, p_s, self.params)  # ... and as the teacher
        return [to_bytes(t) for t in tables]


def _worker_error(kind: str, message: str) -> AuditError:
    """A worker's error as the driver raises it (its message is the whole error)."""
    from audit import errors

    cls = getattr(errors, kind, None)
    if isinstance(cls, type) and issubclass(cls, AuditError) and cls is not errors.SuiteError:
        try:
            return cls(message)
        except TypeError:  # an error class with other required arguments
            pass
    return DataError(message)


def ray_partials(suite: Any, files: list[Path], like: Partials, progress: Any = None,
                 decisions: dict[str, Any] | None = None) -> tuple[Partials, dict[str, Partials]]:
    """Every row group of ``files`` counted on Ray workers and added up: the teacher and the
    student's tables, and with a baseline those of the two pairs it forms. ``decisions`` are
    the driver's :attr:`~audit.stream.inputs.InputReader.decisions` (how image files read)."""
    import warnings

    with warnings.catch_warnings():  # Ray's own deprecations are not the audit's business
        warnings.simplefilter("ignore", DeprecationWarning)
        warnings.simplefilter("ignore", FutureWarning)
        return _ray_partials(suite, files, like, progress, decisions or {})


def _ray_partials(suite: Any, files: list[Path], like: Partials, progress: Any,
                  decisions: dict[str, Any]) -> tuple[Partials, dict[str, Partials]]:
    import logging
    import os

    import ray

    if not ray.is_initialized():
        ray.init(address=os.environ.get("RAY_ADDRESS"), include_dashboard=False,
                 log_to_driver=False, ignore_reinit_error=True, logging_level=logging.WARNING)
    context = ray.data.DataContext.get_current()
    context.enable_progress_bars = False  # the audit reports its own progress
    logging.getLogger("ray.data").setLevel(logging.WARNING)
    items = row_groups(files)
    cpus = max(1, int(ray.available_resources().get("CPU", 1)))
    gpus = int(ray.available_resources().get("GPU", 0))
    device = suite.teacher.device or suite.student.device
    out = ray.data.from_items(items).map_batches(
        _Worker, fn_constructor_kwargs={"suite": suite, "decisions": decisions},
        batch_size=1, batch_format="pandas", concurrency=min(cpus, max(1, len(items))),
        num_gpus=1 if gpus and device == "cuda" else 0)
    total = like.blank()
    pairs = {"as_student": like.blank(), "versus": like.blank()} if suite.baseline is not None \
        else {}
    for batch in out.iter_batches(batch_format="pandas", batch_size=None):
        for i, (data, error, kind) in enumerate(zip(batch["partial"], batch["error"],
                                                    batch["kind"], strict=True)):
            if error:  # named as the driver names files (a worker's folder may differ)
                message = str(error)
                images = suite.data.images
                named = [*files, *([images.array("eval")] if images is not None
                                   and images.array("eval") is not None else [])]
                for f in named:
                    message = message.replace(str(f.resolve()), display_path(f))
                raise _worker_error(str(kind), message)
            total.merge(from_bytes(data, like))
            for name, p in pairs.items():
                p.merge(from_bytes(list(batch[name])[i], like))
        if progress is not None:
            progress(f"ray: {total.rows:,} rows counted")
    return total, pairs


def sample_indices(total: int, size: int, seed: int, chunk: int = 1 << 20) -> np.ndarray:
    """The rows (sorted) a seeded bottom-``size`` sample keeps: each row's key is the next draw
    of ``numpy.random.default_rng(seed).random``, in dataset order, as the local streaming
    engine draws them batch by batch."""
    rng = np.random.default_rng(seed)
    keys = np.zeros(0)
    rows = np.zeros(0, dtype=np.int64)
    for start in range(0, total, chunk):
        k = rng.random(min(chunk, total - start))
        keys = np.concatenate([keys, k])
        rows = np.concatenate([rows, np.arange(start, start + len(k))])
        if len(keys) > size:
            keep = np.argsort(keys, kind="stable")[:size]
            keys, rows = keys[keep], rows[keep]
    return np.sort(rows)


def read_rows(files: list[Path], rows: np.ndarray
              ) -> list[tuple[Path, int, np.ndarray, pd.DataFrame]]:
    """The rows ``rows`` (sorted positions in the whole dataset) of ``files``: per file, its
    first row's position, the positions read from it and those rows."""
    import pyarrow.parquet as pq

    out, start = [], 0
    for f in files:
        n = pq.ParquetFile(f).metadata.num_rows
        mine = rows[(rows >= start) & (rows < start + n)] - start
        if len(mine):
            frame = pq.read_table(f).take(mine).to_pandas().reset_index(drop=True)
            out.append((f, start, mine + start, frame))
        start += n
    return out
