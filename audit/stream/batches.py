"""Reading an eval table batch by batch: Parquet row groups and CSV blocks, with pyarrow.

Each batch becomes a :class:`~audit.data.tables.Table` of its rows (features, labels,
sensitive columns), typed as :func:`~audit.data.tables.load_table` types a whole table: the
label, the sensitive columns and the declared text columns of a CSV are read as written (only
an empty cell is missing), declared types are applied, Parquet keeps its own. A problem is named
by its row in the whole table (``data row 7,654,321``) and, for a folder of Parquet files, by
its file. A folder is read as one dataset: its ``.parquet`` files in name order.

A text or image suite's inputs come with each batch (:mod:`audit.stream.inputs`): the text
column, the rows of the image array, the image files the rows name. What streaming cannot do
(refused with the fix): quantile bins of a sensitive column (they need the whole column; give
``bins:`` edges).

A CSV is parsed by pyarrow, quoted newlines included; where it stops on a malformed line (a
row with more or fewer fields than the header, an unclosed quote) the file is read again row by
row to name the row and line (:func:`~audit.data.tables.locate_bad_row`).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from audit.errors import DataError, did_you_mean, display_path
from audit.spec import DataSpec

__all__ = ["Batch", "iter_batches", "table_of", "dataset_files", "count_rows", "refuse",
           "column_frames", "image_batch_rows", "DEFAULT_BATCH_ROWS", "IMAGE_BATCH_BYTES"]

DEFAULT_BATCH_ROWS = 250_000  # rows per batch: about 100 MB of a 20-column float table
IMAGE_BATCH_BYTES = 512 << 20  # an image suite's batch: at most this many bytes of pixels


@dataclass(frozen=True)
class Batch:
    """One batch of rows: its table, the file it came from and its first row's position in
    the whole dataset (0-based)."""

    table: Any  # audit.data.tables.Table
    path: Path
    start: int


def dataset_files(path: Path) -> list[Path]:
    """The files of a dataset: the file itself, or a folder's ``.parquet`` files by name."""
    if path.is_dir():
        files = sorted(p for p in path.iterdir() if p.suffix.lower() in (".parquet", ".pq"))
        if not files:
            raise DataError(f"{display_path(path)}: a folder with no .parquet files; a streamed "
                            "dataset is a .csv or .parquet file, or a folder of .parquet files")
        return files
    if not path.is_file():
        raise DataError(f"{display_path(path)}: file not found")
    return [path]


def _is_csv(path: Path) -> bool:
    return path.suffix.lower() == ".csv"


def count_rows(path: Path) -> int | None:
    """Rows of a Parquet dataset from its footers (``None`` for a CSV: unknown until read)."""
    import pyarrow.parquet as pq

    files = dataset_files(path)
    if any(_is_csv(f) for f in files):
        return None
    return sum(pq.ParquetFile(f).metadata.num_rows for f in files)


def _literal(spec: DataSpec) -> list[str]:
    """The columns a CSV is read literally in (as text): label, sensitive, declared text, and
    the models' text or image path column."""
    text = [c for c, t in spec.declared_types().items() if t == "string"]
    return list(dict.fromkeys([spec.target, *spec.sensitive, *text, *spec.input_columns]))


def _frames(path: Path, spec: DataSpec, batch_rows: int, columns: list[str] | None = None
            ) -> Iterator[pd.DataFrame]:
    """The rows of one file in frames of ``batch_rows`` (only ``columns``, if given)."""
    import pyarrow as pa

    where = display_path(path)
    try:
        if _is_csv(path):
            import pyarrow.csv as pcsv

            from audit.data.tables import csv_header

            header = csv_header(path)
            literal = [c for c in _literal(spec) if c in header]
            reader = pcsv.open_csv(
                path, read_options=pcsv.ReadOptions(block_size=1 << 24),
                parse_options=pcsv.ParseOptions(newlines_in_values=True),
                convert_options=pcsv.ConvertOptions(
                    column_types={c: pa.string() for c in literal}, strings_can_be_null=False,
                    null_values=[""], quoted_strings_can_be_null=False,
                    include_columns=columns))
            pending: list[pd.DataFrame] = []
            have = 0
            for record in reader:
                frame = record.to_pandas()
                for c in literal:  # an empty cell is missing; everything else as written
                    if c in frame:
                        frame[c] = frame[c].where(frame[c] != "", None)
                pending.append(frame)
                have += len(frame)
                while have >= batch_rows:
                    whole = pd.concat(pending, ignore_index=True)
                    yield whole.iloc[:batch_rows].reset_index(drop=True)
                    rest = whole.iloc[batch_rows:].reset_index(drop=True)
                    pending, have = ([rest] if len(rest) else []), len(rest)
            if have:
                yield pd.concat(pending, ignore_index=True)
        else:
            import pyarrow.parquet as pq

            for record in pq.ParquetFile(path).iter_batches(batch_size=batch_rows,
                                                            columns=columns):
                yield record.to_pandas().reset_index(drop=True)  # a saved index is not a row
    except (pa.ArrowInvalid, OSError) as exc:
        if _is_csv(path) and isinstance(exc, pa.ArrowInvalid) and "CSV parse error" in str(exc):
            from audit.data.tables import locate_bad_row

            locate_bad_row(path)  # names the row pyarrow stopped at, where it can
        raise DataError(f"{where}: cannot read the table ({type(exc).__name__}: "
                        f"{str(exc).strip()[:300]})") from None


def iter_batches(spec: DataSpec, role: str = "eval", *, batch_rows: int = DEFAULT_BATCH_ROWS
                 ) -> Iterator[Batch]:
    """The table ``spec`` names for ``role`` as :class:`Batch` es of up to ``batch_rows`` rows,
    a text or image suite's inputs with them."""
    from audit.stream.inputs import InputReader

    path = getattr(spec, role)
    refuse(spec)
    files = dataset_files(path)
    reader = InputReader(spec, role)
    reader.prepare(column_frames(spec, files, batch_rows))
    rows = image_batch_rows(spec, batch_rows, reader.row_bytes())
    start = 0
    try:
        for file in files:
            for frame in _frames(file, spec, rows):
                yield Batch(table=table_of(frame, spec, role, file, start, reader), path=file,
                            start=start)
                start += len(frame)
        reader.finish(start)
    finally:
        reader.close()


def column_frames(spec: DataSpec, files: list[Path], batch_rows: int) -> Iterator[pd.DataFrame]:
    """The image path column of a dataset's ``files``, in frames (nothing for other suites)."""
    if spec.images is None or spec.images.column is None:
        return
    column = spec.images.column
    for file in files:
        names = _columns(file)
        if column not in names:
            raise DataError(f"{display_path(file)}: image path column {column!r} "
                            f"(data.images.column) not found{did_you_mean(column, names)} "
                            f"(columns: {', '.join(names)})")
        yield from _frames(file, spec, batch_rows, [column])


def _columns(file: Path) -> list[str]:
    """A file's column names, read from its header (a CSV) or its schema (Parquet)."""
    if _is_csv(file):
        from audit.data.tables import csv_header

        return csv_header(file)
    import pyarrow.parquet as pq

    return [str(n) for n in pq.ParquetFile(file).schema_arrow.names]


def image_batch_rows(spec: DataSpec, batch_rows: int, row_bytes: int | None) -> int:
    """``batch_rows``, lowered for an image suite so a batch's float32 pixels stay within
    :data:`IMAGE_BATCH_BYTES` (``row_bytes``: one image's float32 bytes, when known)."""
    if spec.images is None or not row_bytes:
        return batch_rows
    return max(1, min(batch_rows, IMAGE_BATCH_BYTES // row_bytes))


def refuse(spec: DataSpec) -> None:
    """What a streamed run cannot read, as an error with the fix."""
    if spec.modality == "choices":
        raise DataError(f"{display_path(spec.eval)}: multiple-choice items are read whole (a "
                        "language model scores each item's choices); use settings.engine: "
                        "memory")
    quantiled = [b.column for b in spec.bins if b.quantiles is not None]
    if quantiled:
        raise DataError(f"settings.engine: stream cannot cut {quantiled[0]!r} at quantiles (they "
                        "need the whole column before the first batch); give fixed edges, e.g. "
                        "bins: [25, 40, 60]")


def table_of(frame: pd.DataFrame, spec: DataSpec, role: str, file: Path, start: int,
             reader: Any = None) -> Any:
    """A batch's rows as a :class:`~audit.data.tables.Table`: declared types applied, the
    label checked, the sensitive columns as groups, a text or image suite's inputs read by
    ``reader`` (an :class:`~audit.stream.inputs.InputReader`); problems named by their row in
    the whole dataset (``start``: the rows before this batch) and by ``file``."""
    from audit.coltypes import convert, from_text
    from audit.data.tables import Table

    where = display_path(file)
    csv = _is_csv(file)
    missing = [c for c in (spec.target, *spec.sensitive, *(spec.features or ()),
                           *spec.input_columns) if c not in frame.columns]
    if missing:
        raise DataError(f"{where}: column {missing[0]!r} not found (columns: "
                        f"{', '.join(map(str, frame.columns))})")
    features = list(spec.features) if spec.features is not None else [
        c for c in frame.columns if c != spec.target and c not in spec.input_columns]
    changes = {}
    for c, t in spec.declared_types().items():
        if c in features:
            changes[c] = (from_text(frame[c].astype(object), t, where) if csv and t != "string"
                          else convert(frame[c], t, where))
    if changes:
        frame = frame.assign(**changes)
    labels = frame[spec.target]
    gaps = labels.isna().to_numpy()
    if gaps.any():
        first = start + int(np.flatnonzero(gaps)[0])
        raise DataError(f"{where}: target column {spec.target!r} has a missing value at "
                        f"data row {first + 1:,}; drop or label those rows")
    sensitive = _groups(frame, spec, where, start)
    if reader is None and spec.modality != "tabular":
        raise TypeError("a text or image suite's batch needs an InputReader")
    inputs = reader.inputs(frame, file, start) if reader is not None else {}
    return Table(role=role, path=file, sha256="", features=frame[features],
                 labels=labels.reset_index(drop=True), sensitive=sensitive, **inputs)


def _groups(frame: pd.DataFrame, spec: DataSpec, where: str, start: int) -> pd.DataFrame:
    """The sensitive columns of a batch as groups (fixed bins applied; a missing value is an
    error naming its row, or its own group under ``data.missing_sensitive: group``)."""
    from audit.data.tables import bin_column, fill_missing_groups

    out = frame[list(spec.sensitive)].reset_index(drop=True).copy()
    for col in spec.sensitive:
        binning = spec.binning(col)
        if binning is not None:
            out[col] = bin_column(out[col], col, binning.edges, spec.missing_sensitive == "group",
                                  where)
        out[col] = fill_missing_groups(out[col], spec, where, start)
    return out
