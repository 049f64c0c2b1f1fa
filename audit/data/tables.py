"""Loading the evaluation and training tables, labels and fingerprints.

A :class:`Table` keeps the feature columns (what the models see), the labels and the
sensitive columns (kept aside for slicing) of one file, with the SHA-256 of the file's full
content. :class:`LabelEncoding` maps labels to class indices ``0..k-1`` consistently for both
models, or says clearly why it cannot.

A CSV is read literally where pandas would guess: the label, the sensitive columns, the columns
the suite declares (``data.categorical``, ``data.dtypes``) and every column that holds text are
read as written, and only an empty cell is missing (``NA``, ``None``, ``null``, ``N/A`` are
values). Numeric columns the suite does not declare keep pandas' types; a Parquet file keeps its
own. Labels match the models' classes by their text (``1``, ``1.0`` and ``"1"`` alike).

A sensitive column's values are its groups, unless the suite bins it (``{column: age, bins:
[25, 40, 60]}`` or ``quantiles: 4``): then its groups are the bins, named with their edges
(``age<25``, ``25<=age<40``, ...). One listed by name that reads as numbers with more than
:data:`MAX_GROUPS` distinct values is refused, with how to bin it.
"""

from __future__ import annotations

import csv
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from audit.coltypes import convert, from_text
from audit.data.hashing import file_sha256
from audit.data.inputs import inputs_sha256, read_images, read_texts
from audit.errors import DataError, SuiteError, display_path
from audit.extras import require
from audit.spec import Binning, DataSpec, edge_text

__all__ = ["Table", "LabelEncoding", "read_table", "load_table", "file_sha256", "csv_header",
           "check_header", "locate_bad_row"]


def is_csv(path: Path) -> bool:
    """Whether ``path`` is read as CSV (anything but a Parquet file or a folder of them)."""
    return path.suffix.lower() not in (".parquet", ".pq") and not path.is_dir()


def read_table(path: Path) -> pd.DataFrame:
    """Read a CSV or Parquet file into a DataFrame, with a clear error on failure.

    CSV columns get pandas' guessed types here; :func:`load_table` then reads the columns
    that hold text (labels, sensitive, declared and text columns) literally."""
    where = display_path(path)
    is_parquet = not is_csv(path)
    parts = sorted(p for p in path.iterdir() if p.suffix.lower() in (".parquet", ".pq")) \
        if path.is_dir() else []
    if path.is_dir() and not parts:
        raise DataError(f"{where}: is a folder with no .parquet files; name the .csv or .parquet "
                        "file inside it")
    if is_parquet:
        require("pyarrow", f"{where} (a Parquet table)")
    try:
        if parts:  # a dataset: its files in name order
            frame = pd.concat([pd.read_parquet(p) for p in parts], ignore_index=True)
        elif is_parquet:
            frame = pd.read_parquet(path)
        else:
            frame = pd.read_csv(path)
    except FileNotFoundError:
        raise DataError(f"{where}: file not found") from None
    except pd.errors.EmptyDataError:
        raise DataError(f"{where}: the file is empty; it needs a header row and data rows") from None
    except pd.errors.ParserError as exc:
        raise DataError(f"{where}: cannot parse as CSV ({str(exc).strip()}); every line needs as "
                        "many comma-separated fields as the header, with quotes closed") from None
    except (OSError, ValueError) as exc:
        kind = "Parquet" if is_parquet else "CSV"
        raise DataError(f"{where}: cannot read the table as {kind} ({type(exc).__name__}: "
                        f"{str(exc).strip()})") from None
    if not is_parquet:
        _check_csv_shape(path, frame, where)
    if len(frame) == 0:
        raise DataError(f"{where}: the table has a header but no rows")
    dup = frame.columns[frame.columns.duplicated()].tolist()
    if dup:
        raise DataError(f"{where}: duplicate column names {dup}; column names must be unique")
    return frame


def read_text_columns(path: Path, columns: list[str]) -> pd.DataFrame:
    """``columns`` of a CSV file exactly as written: every cell is text and only an empty cell
    is missing (``NA``, ``None``, ``null`` and ``N/A`` are values, not gaps)."""
    frame = pd.read_csv(path, usecols=columns, dtype=str, keep_default_na=False, na_values=[""])
    return frame[columns]


def _check_csv_shape(path: Path, frame: pd.DataFrame, where: str) -> None:
    """Refuse what pandas reads silently but wrongly: repeated header names (pandas renames the
    second ``x`` to ``x.1``), data rows longer than the header (pandas turns the extra
    leading fields into a row index, shifting every column) and rows shorter than the header
    (pandas fills the missing fields with NaN, which later reads as a missing value)."""
    if not (isinstance(frame.index, pd.RangeIndex) and frame.index.start == 0
            and frame.index.step == 1):
        extra = frame.index.nlevels
        raise DataError(f"{where}: data row 1 has {len(frame.columns) + extra} fields but the "
                        f"header names {len(frame.columns)} columns; pandas would take the "
                        f"{extra} extra leading field(s) as a row index and shift every column. "
                        "Give every row as many fields as the header (a missing header name or "
                        "an unquoted comma?)")
    # a short row leaves the last column missing: only then is the file scanned row by row
    scan = len(frame) > 0 and bool(frame.iloc[:, -1].isna().any())
    try:
        with path.open(newline="", encoding="utf-8-sig", errors="replace") as fh:
            reader = csv.reader(fh)
            header = next(reader, [])
            row = 0
            for fields in reader if scan else ():
                if not fields:  # pandas skips blank lines
                    continue
                row += 1
                if len(fields) < len(header):
                    raise DataError(f"{where}: data row {row} (line {reader.line_num}) has "
                                    f"{len(fields)} field(s) but the header names {len(header)} "
                                    f"columns; the last {len(header) - len(fields)} "
                                    f"({', '.join(header[len(fields):][:5])}) would read as "
                                    "missing. Give every row as many fields as the header "
                                    "(write an empty field as two commas)")
    except (OSError, csv.Error):  # pandas read it; its own column names stand
        return
    check_header(header, where)


def check_header(header: list[str], where: str) -> None:
    """Refuse a CSV header that names a column twice (pandas would rename the second)."""
    seen: dict[str, int] = {}
    for i, name in enumerate(header):
        if name in seen and name.strip():  # pandas names empty headers "Unnamed: i" itself
            raise DataError(f"{where}: duplicate column name {name!r} in the header (columns "
                            f"{seen[name] + 1} and {i + 1}); column names must be unique")
        seen[name] = i


def csv_header(path: Path) -> list[str]:
    """The header of a CSV file, checked (:func:`check_header`)."""
    where = display_path(path)
    try:
        with path.open(newline="", encoding="utf-8-sig", errors="replace") as fh:
            header = next(csv.reader(fh), [])
    except FileNotFoundError:
        raise DataError(f"{where}: file not found") from None
    except (OSError, csv.Error) as exc:
        raise DataError(f"{where}: cannot read the header ({type(exc).__name__}: {exc})") from None
    if not header:
        raise DataError(f"{where}: the file is empty; it needs a header row and data rows")
    check_header(header, where)
    return header


def locate_bad_row(path: Path) -> None:
    """Name the first data row of a CSV whose fields do not match the header's, read row by
    row in constant memory (what a streaming parser's error leaves unsaid); nothing if every
    row matches."""
    where = display_path(path)
    limit = csv.field_size_limit()
    csv.field_size_limit(1 << 30)  # a long text is a field (csv's default stops at 128 KB)
    try:
        with path.open(newline="", encoding="utf-8-sig", errors="replace") as fh:
            reader = csv.reader(fh)
            header = next(reader, [])
            row, begins = 0, reader.line_num + 1
            for fields in reader:
                if not fields:  # a blank line is no row
                    begins = reader.line_num + 1
                    continue
                row += 1
                if len(fields) != len(header):
                    opened = (len(fields) < len(header) and reader.line_num > begins
                              and next(reader, None) is None)  # it ran to the end of the file
                    if opened:  # one field swallowed the rest of the file
                        raise DataError(f"{where}: data row {row:,} (line {begins:,}): a quote "
                                        "opened there is never closed; close it, or double a "
                                        'quote inside a quoted field ("")')
                    raise DataError(
                        f"{where}: data row {row:,} (line {begins:,}) has {len(fields)} "
                        f"field(s) but the header names {len(header)} columns; give every row as "
                        "many fields as the header (an unquoted comma, or an empty field left "
                        "out?)")
                begins = reader.line_num + 1
    except csv.Error as exc:
        raise DataError(f"{where}: cannot parse as CSV near line {reader.line_num:,} ({exc}); "
                        "close every quote") from None
    except OSError:
        return  # the reader's own error stands
    finally:
        csv.field_size_limit(limit)


@dataclass(frozen=True, eq=False)
class Table:
    """One data file split into features, labels and sensitive columns."""

    role: str
    path: Path
    sha256: str
    features: pd.DataFrame
    labels: pd.Series
    sensitive: pd.DataFrame
    # the edges each binned sensitive column was cut at (quantile edges are the eval table's)
    bins: tuple[tuple[str, tuple[float, ...]], ...] = ()
    texts: np.ndarray | None = None  # data.text: what a text model reads (object array of str)
    images: np.ndarray | None = None  # data.images: float32 (N, C, H, W) in [0, 1]
    # multiple-choice items: each row's continuations (an object array of tuples of str); the
    # contexts they follow are ``texts``
    choices: np.ndarray | None = None
    ids: pd.DataFrame | None = None  # items: what identifies each one (doc_id, doc_hash, ...)
    # items whose context lists their options (data.options): (before, after, options) each,
    # to list them in another order (audit.data.items.with_options)
    layouts: np.ndarray | None = None

    @property
    def n_rows(self) -> int:
        return len(self.labels)

    @property
    def modality(self) -> str:
        """What a model reads from this table: ``text``, ``images`` or ``tabular``."""
        if self.choices is not None:
            return "choices"
        return "text" if self.texts is not None else "images" if self.images is not None else (
            "tabular")

    def take(self, rows: Any) -> Table:
        """The same table on ``rows`` only (positions, a slice or an index array), every part
        re-indexed from 0, so a model sees a frame like the one it is fitted on."""
        index = rows if isinstance(rows, slice) else np.asarray(rows)
        return replace(self, features=self.features.iloc[rows].reset_index(drop=True),
                       labels=self.labels.iloc[rows].reset_index(drop=True),
                       sensitive=self.sensitive.iloc[rows].reset_index(drop=True),
                       texts=None if self.texts is None else self.texts[index],
                       images=None if self.images is None else self.images[index],
                       choices=None if self.choices is None else self.choices[index],
                       ids=None if self.ids is None else self.ids.iloc[rows].reset_index(
                           drop=True),
                       layouts=None if self.layouts is None else self.layouts[index])

    def with_inputs(self, inputs: Any) -> Table:
        """The same rows with other model inputs (edited texts, perturbed images), which
        the models are then fed instead."""
        if self.texts is not None:
            return replace(self, texts=np.asarray(inputs, dtype=object))
        if self.images is not None:
            return replace(self, images=np.asarray(inputs, dtype=np.float32))
        raise TypeError("a tabular table's inputs are its feature columns")


def load_table(spec: DataSpec, role: str = "eval") -> Table:
    """Load the table ``spec`` names for ``role`` (one of :data:`audit.spec.TABLES`).

    Raises
    ------
    DataError
        If a named column is missing (with a did-you-mean), the label has missing values, or
        the file cannot be read.
    """
    import difflib

    path = getattr(spec, role)
    if path is None:
        raise DataError(f"the suite names no {role} table; add data.{role}")
    if spec.choices is not None:
        if role != "eval":
            raise DataError(f"data.{role} of a language-model suite is documents, not items: the "
                            "checks that read it take its texts (audit.data.documents)")
        return _load_items(spec, role, path)
    frame = read_table(path)
    where = display_path(path)
    columns = [str(c) for c in frame.columns]

    def require(col: str, what: str, key: str) -> None:
        if col not in frame.columns:
            close = difflib.get_close_matches(col, columns, n=1, cutoff=0.6)
            hint = f"; did you mean {close[0]!r}?" if close else ""
            raise DataError(f"{where}: {what} column {col!r} (data.{key}) not found{hint} "
                            f"(columns: {', '.join(columns)})")

    require(spec.target, "target", "target")
    for col in spec.sensitive:
        require(col, "sensitive", "sensitive")
    for col in spec.input_columns:
        require(col, "text" if spec.text else "image path", "text" if spec.text
                else "images.column")
    if spec.features is not None:
        for col in spec.features:
            require(col, "feature", "features")
        features = list(spec.features)
    else:
        features = [c for c in frame.columns if c != spec.target and c not in spec.input_columns]
    declared = spec.declared_types()
    for col in declared:
        require(col, "declared", "categorical" if col in spec.categorical else "dtypes")
    frame, literal = _typed(path, frame, spec, features, declared, where)
    labels = literal[spec.target]
    missing = int(labels.isna().sum())
    if missing:
        first = int(np.flatnonzero(labels.isna().to_numpy())[0])
        raise DataError(f"{where}: target column {spec.target!r} has {missing} missing value(s), "
                        f"first at data row {first + 1}; drop or label those rows")
    sensitive, bins = _sensitive(literal, spec, where, role)
    texts = images = None
    if spec.text is not None:
        texts = read_texts(literal, spec.text, where)
    elif spec.images is not None:
        images = read_images(spec, role, literal, path)
    return Table(
        role=role,
        path=path,
        sha256=inputs_sha256(spec, role, file_sha256(path), literal, path),
        features=frame[features],
        labels=labels.reset_index(drop=True),
        sensitive=sensitive,
        bins=bins,
        texts=texts,
        images=images,
    )


def _load_items(spec: DataSpec, role: str, path: Path) -> Table:
    """A table of multiple-choice items (:mod:`audit.data.items`): its rows are the items,
    the labels their answers' positions, the texts their contexts."""
    from audit.data.items import ID_FIELDS, read_item_file, template_fields

    where = display_path(path)
    frame, answers, contexts, continuations, shapes = read_item_file(
        path, spec.context, spec.choices or "choices", spec.target, spec.options)
    layouts = None if spec.options is None else shapes
    for col in spec.sensitive:
        if col not in frame.columns:
            raise DataError(f"{where}: the items have no field {col!r} (data.sensitive) to slice "
                            f"by (fields: {', '.join(map(str, frame.columns))})")
    sensitive, bins = _sensitive(frame, spec, where, role)
    if spec.features is None:  # what to slice and describe by: not ids nor the prompt's fields

        used = set(template_fields(spec.context)) | set(ID_FIELDS) | set(spec.sensitive)
        features = [c for c in frame.columns if c not in used]
    else:
        features = list(spec.features)
    return Table(role=role, path=path, sha256=inputs_sha256(spec, role, file_sha256(path)),
                 features=frame[features],
                 labels=answers, sensitive=sensitive, bins=bins, texts=contexts,
                 choices=continuations, ids=frame[[c for c in ID_FIELDS if c in frame.columns]],
                 layouts=layouts)


def _typed(path: Path, frame: pd.DataFrame, spec: DataSpec, features: list[str],
           declared: dict[str, str], where: str) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The feature frame with declared types applied and text columns read literally, and the
    label and sensitive columns as written (text, for a CSV; a Parquet file keeps its types).

    pandas' guesses stand for the CSV columns that hold numbers and that the suite does not
    declare; every other CSV column is read as text, where only an empty cell is missing."""
    kept = [spec.target, *spec.sensitive, *spec.input_columns]
    if not is_csv(path):
        changes = {c: convert(frame[c], t, where) for c, t in declared.items() if c in features}
        return (frame.assign(**changes) if changes else frame), frame[kept]
    literal = [c for c in features
               if c in declared or not pd.api.types.is_numeric_dtype(frame[c])]
    text = read_text_columns(path, [c for c in frame.columns if c in kept or c in literal])
    if len(text) != len(frame):  # pragma: no cover - both reads see the same rows
        raise DataError(f"{where}: the file changed while it was read; read it again")
    changes = {c: from_text(text[c], declared[c], where) if c in declared else text[c]
               for c in literal}
    return (frame.assign(**changes) if changes else frame), text[kept]


MISSING_GROUP = "missing"


MAX_GROUPS = 20  # a numeric sensitive column with more distinct values must be binned


def _sensitive(frame: pd.DataFrame, spec: DataSpec, where: str, role: str
               ) -> tuple[pd.DataFrame, tuple[tuple[str, tuple[float, ...]], ...]]:
    """The sensitive columns as groups, with missing values handled as
    ``data.missing_sensitive`` says, and the edges of the binned ones.

    A binned column becomes its bins' names (``age<25``, ``25<=age<40``, ...; ordered, a
    categorical). On the eval table, a column listed by name that reads as numbers with more
    than :data:`MAX_GROUPS` distinct values is refused with how to bin it (a 0/1 or 1-5 code
    stays a column of groups; ``data.categorical`` keeps any column's values as groups)."""
    out = frame[list(spec.sensitive)].reset_index(drop=True).copy()
    text = {*spec.categorical, *(c for c, t in spec.dtypes if t == "string")}
    cut: list[tuple[str, tuple[float, ...]]] = []
    for col in spec.sensitive:
        binning = spec.binning(col)
        if binning is not None:
            values = _numbers(out[col], col, where)
            edges = binning.edges or _quantile_edges(
                values if role == "eval" else _eval_numbers(spec, col), binning.quantiles or 2)
            out[col] = _binned(values, col, edges, spec.missing_sensitive == "group")
            cut.append((col, edges))
        elif role == "eval" and col not in text:
            _refuse_many_numbers(out[col], col, spec, where)
        out[col] = fill_missing_groups(out[col], spec, where)
    return out, tuple(cut)


def fill_missing_groups(values: pd.Series, spec: DataSpec, where: str, offset: int = 0
                        ) -> pd.Series:
    """A sensitive column's missing values as the group :data:`MISSING_GROUP` under
    ``data.missing_sensitive: group``, else an error naming the first one's data row
    (``offset``: the rows before these, for a batch of a larger table)."""
    gaps = values.isna()
    if not gaps.any():
        return values
    if spec.missing_sensitive == "group":
        return values.astype(object).where(~gaps, MISSING_GROUP)
    first = offset + int(np.flatnonzero(gaps.to_numpy())[0])
    raise DataError(f"{where}: sensitive column {values.name!r} has {_rows(int(gaps.sum()))} "
                    f"with a missing value, first at data row {first + 1:,}; fill them, or set "
                    f"data.missing_sensitive: group to slice them as their own group "
                    f"{MISSING_GROUP!r}")


def _as_numbers(series: pd.Series) -> pd.Series | None:
    """``series`` as floats (NaN where a cell is missing), or ``None`` when a value that is
    present is not a finite number."""
    if pd.api.types.is_bool_dtype(series):
        return None
    if pd.api.types.is_numeric_dtype(series):
        values = series.astype(np.float64)
    else:
        values = pd.to_numeric(series, errors="coerce").astype(np.float64)
    present = series.notna()
    if not np.isfinite(values[present].to_numpy()).all():
        return None
    return values


def _numbers(series: pd.Series, col: str, where: str) -> pd.Series:
    """A binned column's values as numbers; a value that is not one is an error."""
    values = _as_numbers(series)
    if values is not None:
        return values
    converted = pd.to_numeric(series, errors="coerce")
    bad = series.notna() & ~np.isfinite(converted.astype(np.float64))
    first = int(np.flatnonzero(bad.to_numpy())[0])
    raise DataError(f"{where}: sensitive column {col!r} is binned (data.sensitive) but holds "
                    f"{series.iloc[first]!r} at data row {first + 1} ({_rows(int(bad.sum()))} in "
                    "all), which is not a number; fix the data, leave the cell empty to make it "
                    "missing, or list the column by name to take its values as groups")


def _eval_numbers(spec: DataSpec, col: str) -> pd.Series:
    """The eval table's values of ``col``: the quantile edges of every table come from it."""
    where = display_path(spec.eval)
    if is_csv(spec.eval):
        series = read_text_columns(spec.eval, [col])[col]
    else:
        series = pd.read_parquet(spec.eval, columns=[col])[col]
    return _numbers(series, col, where)


def _quantile_edges(values: pd.Series, q: int) -> tuple[float, ...]:
    """The inner edges of ``q`` bins of about equal size: the ``1/q, ..., (q-1)/q`` quantiles
    (numpy's linear interpolation) of the values present, repeats dropped (ties can merge
    bins). No value present: no edge, one group."""
    present = values.dropna().to_numpy()
    if present.size == 0:
        return ()
    return tuple(float(e) for e in np.unique(np.quantile(present, np.arange(1, q) / q)))


def bin_column(series: pd.Series, col: str, edges: tuple[float, ...], missing_group: bool,
               where: str) -> pd.Series:
    """A numeric column cut at fixed ``edges`` into its bins' names (see :class:`Binning`)."""
    return _binned(_numbers(series, col, where), col, edges, missing_group)


def _binned(values: pd.Series, col: str, edges: tuple[float, ...], missing_group: bool
            ) -> pd.Series:
    """Each value's bin name, as an ordered categorical (lowest bin first, then ``missing``)."""
    if not edges:
        labels = [f"{col}=all"]
        codes = np.zeros(len(values), dtype=np.int64)
    else:
        labels = Binning.labels(col, edges)
        codes = np.searchsorted(np.asarray(edges), values.to_numpy(), side="right")
    gaps = values.isna().to_numpy()
    grouped = missing_group and bool(gaps.any())  # else a gap stays missing (and is refused)
    codes = np.where(gaps, len(labels) if grouped else -1, codes)
    categories = labels + ([MISSING_GROUP] if grouped else [])
    return pd.Series(pd.Categorical.from_codes(codes, categories=categories), name=col)


def _refuse_many_numbers(series: pd.Series, col: str, spec: DataSpec, where: str) -> None:
    """A numeric column named as sensitive with more than :data:`MAX_GROUPS` distinct values
    would make as many groups, most of a few rows: refuse it, saying how to bin it."""
    values = _as_numbers(series)
    if values is None:
        return
    present = values.dropna()
    distinct = int(present.nunique())
    if distinct <= MAX_GROUPS:
        return
    quartiles = np.quantile(present.to_numpy(), [0.25, 0.5, 0.75])
    edges = sorted({float(f"{e:.2g}") for e in quartiles})
    if len(edges) < 2:
        edges = sorted({float(e) for e in quartiles})
    shown = ", ".join(edge_text(e) for e in edges)
    problem = (f"column {col!r} of {where} holds numbers with {distinct} distinct values, too "
               f"many to take each value as a group (a numeric column with more than "
               f"{MAX_GROUPS} distinct values must be binned); bin it: {{column: {col}, bins: "
               f"[{shown}]}} (edges: its quartiles, rounded) or {{column: {col}, quantiles: "
               "4}, or list it in data.categorical to keep every value as a group")
    i = spec.sensitive.index(col)
    file, line = spec.sensitive_at.of(i)
    if file is None:
        raise DataError(f"data.sensitive[{i}]={col!r}: {problem}")
    raise SuiteError(f"={col!r}: {problem}", file=file, line=line, key=f"data.sensitive[{i}]")


def _key(label: Any) -> str:
    """Labels compare by their text, so 1 (int), 1.0 (float) and "1" name the same class."""
    if isinstance(label, (float, np.floating)) and float(label).is_integer():
        return str(int(label))
    if isinstance(label, (bool, np.bool_)):
        return str(bool(label))
    return str(label)


def _loose_key(label: Any) -> str | None:
    """The key of a label as pandas would have read its text: ``"1.0"`` as the number 1,
    ``"true"`` as the boolean True; None for other text."""
    if not isinstance(label, str):
        return _key(label)
    text = label.strip()
    if text.lower() in ("true", "false"):
        return str(text.lower() == "true")
    try:
        value = float(text)
    except ValueError:
        return None
    return _key(value) if value == value else None


@dataclass(frozen=True)
class LabelEncoding:
    """Class labels in the models' output order and the positive class for binary metrics."""

    classes: tuple[Any, ...]
    pos: int | None
    pos_note: str

    @classmethod
    def from_models(cls, teacher_classes: tuple[Any, ...], student_classes: tuple[Any, ...],
                    positive: Any = None, names: tuple[str, str] = ("teacher", "student")
                    ) -> LabelEncoding:
        """Check that both models predict the same classes and choose the positive class
        (``names``: the two models' roles, for the message)."""
        first, second = names
        t = [_key(c) for c in teacher_classes]
        s = [_key(c) for c in student_classes]
        if sorted(t) != sorted(s):
            only_t = [c for c, k in zip(teacher_classes, t) if k not in s]
            only_s = [c for c, k in zip(student_classes, s) if k not in t]
            diff = "; ".join(part for part in (
                f"only the {first} knows {only_t}" if only_t else "",
                f"only the {second} knows {only_s}" if only_s else "") if part)
            raise DataError(f"the {first} predicts classes {list(teacher_classes)} but the {second} "
                            f"predicts {list(student_classes)} ({diff or 'repeated classes'}); "
                            "both must know the same classes (fix the model's classes: in the "
                            "suite if its metadata is wrong)")
        classes = tuple(teacher_classes)
        if len(classes) < 2:
            raise DataError(f"the models know only one class {list(classes)}; need at least two")
        if len(classes) != 2:
            if positive is not None:
                raise DataError(f"data.positive={positive!r} only applies to binary problems; "
                                f"these models have {len(classes)} classes")
            return cls(classes, None, "")
        if positive is not None:
            if _key(positive) not in t:
                raise DataError(f"data.positive={positive!r} is not a class of the models; "
                                f"use one of {list(classes)}")
            return cls(classes, t.index(_key(positive)), f"positive class {positive!r} (data.positive)")
        for truthy in ("1", "True", "yes", "Yes", "YES", "true"):
            if truthy in t:
                pos = t.index(truthy)
                break
        else:
            pos = max(range(2), key=lambda i: t[i])
        return cls(classes, pos, f"positive class {classes[pos]!r} (inferred; set data.positive "
                                 "to choose)")

    def reorder(self, model_classes: tuple[Any, ...]) -> np.ndarray:
        """Column order that maps a model's outputs onto :attr:`classes`."""
        keys = [_key(c) for c in model_classes]
        return np.array([keys.index(_key(c)) for c in self.classes])

    def encode(self, labels: pd.Series, where: str, *, offset: int = 0) -> np.ndarray:
        """Map raw labels to indices ``0..k-1``; unknown labels are an error (naming the first
        one's data row; ``offset``: the rows before these, for a batch of a larger table)."""
        lookup = {_key(c): i for i, c in enumerate(self.classes)}
        # a label written "1.0" or "true" in a CSV (read as text) names the class 1 or True
        loose = {_loose_key(c): i for i, c in enumerate(self.classes)}
        loose.pop(None, None)
        # key each distinct label once (not each row): factorize is a hash pass over the rows
        row_codes, uniques = pd.factorize(labels, use_na_sentinel=False)
        table = np.array([lookup.get(_key(u), loose.get(_loose_key(u), -1)) for u in uniques],
                         dtype=np.int64)
        codes = table[row_codes]
        unknown = pd.Series(codes < 0, index=labels.index)
        if unknown.any():
            first = int(np.flatnonzero(unknown.to_numpy())[0])
            bad = list(dict.fromkeys(labels[unknown].tolist()))  # first-seen order, raw values
            shown = repr(bad[:5])[:-1] + (f", ... {len(bad) - 5} more]" if len(bad) > 5 else "]")
            raise DataError(f"{where}: labels {shown} ({_rows(int(unknown.sum()))}, first at data "
                            f"row {first + 1 + offset:,}) are not among the models' classes "
                            f"{list(self.classes)}; drop those rows or audit models that know "
                            "those classes")
        return codes


def _rows(n: int) -> str:
    return "1 row" if n == 1 else f"{n} rows"
