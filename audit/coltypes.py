"""Column types: what the suite declares, what a fitted model declares, and converting to them.

A CSV says nothing about types, so pandas guesses: a column of category codes ``0, 1, 2`` comes
back as integers even when the model was fitted on the text ``"0", "1", "2"``. The suite can
declare a column's type (``data.dtypes`` / ``data.categorical``, applied when the table is
read); a fitted scikit-learn model declares it too (its encoders' ``categories_``), and
:func:`conform` feeds each column as the model expects. When a model still fails on the data,
:func:`explain_failure` says which column, which dtype and what to declare.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import pandas as pd

from audit.errors import DataError

__all__ = ["text_of", "from_text", "convert", "model_column_types", "conform", "explain_failure"]

BOOLEANS = {"true": True, "false": False, "yes": True, "no": False, "1": True, "0": False}


def _text(value: Any) -> str:
    if isinstance(value, (bool, np.bool_)):
        return str(bool(value))
    if isinstance(value, (int, np.integer)):
        return str(int(value))
    if isinstance(value, (float, np.floating)):
        return str(int(value)) if float(value).is_integer() else repr(float(value))
    return str(value)


def text_of(column: pd.Series) -> pd.Series:
    """``column`` as text, numbers written as a CSV writes them (``1``, not ``1.0``); missing
    values stay missing (``NaN``)."""
    if _is_text(column):
        return column
    codes, uniques = pd.factorize(column, use_na_sentinel=True)
    texts = np.array([_text(u) for u in uniques] + [np.nan], dtype=object)
    return pd.Series(texts[codes], index=column.index, name=column.name, dtype=object)


def _is_text(column: pd.Series) -> bool:
    """Every value is a string (or missing)."""
    return pd.api.types.infer_dtype(column, skipna=True) in ("string", "empty")


def _plain(value: Any) -> Any:
    return value.item() if isinstance(value, np.generic) else value


def _where(where: str, name: Any, dtype: str) -> str:
    return f"{where} column {name!r} (data.dtypes: {dtype})"


def _first(column: pd.Series, bad: pd.Series) -> tuple[int, Any, int]:
    """Data row (1-based) and raw value of the first ``bad`` cell, and how many are bad."""
    mask = bad.to_numpy(dtype=bool)
    i = int(np.flatnonzero(mask)[0])
    return i + 1, _plain(column.iloc[i]), int(mask.sum())


def from_text(column: pd.Series, dtype: str, where: str) -> pd.Series:
    """Parse a column of text (missing: ``NaN``) as the declared ``dtype``, or a
    :class:`DataError` naming the first cell that is not one."""
    name = column.name
    if dtype == "string":
        return column
    gaps = column.isna()
    if dtype in ("integer", "boolean") and gaps.any():
        row, _, n = _first(column, gaps)
        alt = "float (empty cells become NaN)" if dtype == "integer" else "string"
        raise DataError(f"{_where(where, name, dtype)} has {n} empty cell(s), first at data row "
                        f"{row}; {dtype} cells cannot be missing: fill them, or declare the column "
                        f"{alt}")
    if dtype == "boolean":
        flags = column.str.strip().str.lower().map(BOOLEANS)
        if flags.isna().any():
            row, value, n = _first(column, flags.isna())
            raise DataError(f"{_where(where, name, dtype)} holds {value!r} at data row {row} ({n} "
                            "cell(s) in all), which is not a boolean; write true/false, yes/no or "
                            "1/0, or declare the column string")
        return flags.astype(bool)
    numbers = pd.to_numeric(column, errors="coerce")
    bad = numbers.isna() & ~gaps
    if dtype == "integer":
        filled = numbers.fillna(0.0)  # 2.5, inf and nan are not whole; 1e20 is not an int64
        bad |= ~gaps & ((filled % 1 != 0) | (filled.abs() >= 2.0 ** 63))
    if bad.any():
        row, value, n = _first(column, bad)
        noun = "a whole number" if dtype == "integer" else "a number"
        alt = "float" if dtype == "integer" and pd.notna(numbers.iloc[row - 1]) else "string"
        raise DataError(f"{_where(where, name, dtype)} holds {value!r} at data row {row} ({n} "
                        f"cell(s) in all), which is not {noun}; fix the data, or declare the "
                        f"column {alt}")
    return numbers.astype(np.int64 if dtype == "integer" else np.float64)


def convert(column: pd.Series, dtype: str, where: str) -> pd.Series:
    """A column of any pandas dtype (e.g. read from Parquet) as the declared ``dtype``."""
    if dtype == "string":
        return text_of(column)
    if dtype == "float" and pd.api.types.is_numeric_dtype(column) \
            and not pd.api.types.is_bool_dtype(column):
        return column.astype(np.float64)
    return from_text(text_of(column), dtype, where)


# ------------------------------------------------------------------------ model declarations
def _names(cols: Any, names: list[str]) -> list[str] | None:
    """The column names a fitted ColumnTransformer entry selects, or None if unknown."""
    if isinstance(cols, str):
        return [cols]
    if isinstance(cols, slice):
        return names[cols] if names else None
    values = list(np.asarray(cols).tolist()) if not callable(cols) else []
    if values and all(isinstance(v, bool) for v in values):
        return [n for n, keep in zip(names, values) if keep] if len(values) == len(names) else None
    if all(isinstance(v, str) for v in values):
        return values
    if names and all(isinstance(v, int) and 0 <= v < len(names) for v in values):
        return [names[v] for v in values]
    return None


def _kind(values: np.ndarray) -> str | None:
    """``string`` or ``number``: the type of a fitted encoder's (or imputer's) values."""
    seen = [v for v in np.asarray(values, dtype=object).tolist()
            if not (v is None or (isinstance(v, float) and v != v))]
    if seen and all(isinstance(v, str) for v in seen):
        return "string"
    if seen and all(isinstance(v, (int, float, np.number)) and not isinstance(v, bool) for v in seen):
        return "number"
    return None


def _walk(est: Any, columns: list[str] | None, out: dict[str, str], loose: bool,
          known: dict[str, list[Any]] | None = None) -> None:
    """Fill ``out`` with the columns ``est`` declares (and ``known`` with the categories of
    encoders that refuse unknown ones)."""
    steps = getattr(est, "steps", None)
    if isinstance(steps, list):  # a Pipeline: its first steps see the raw columns
        for _, step in steps:
            before = len(out)
            _walk(step, columns, out, loose, known)
            preserves = type(step).__name__ == "SimpleImputer"  # keeps the columns as they are
            if len(out) > before or not (preserves or loose) or hasattr(step, "categories_"):
                return
        return
    names = [str(n) for n in getattr(est, "feature_names_in_", [])] or columns or []
    transformers = getattr(est, "transformers_", None)
    if isinstance(transformers, list):  # a fitted ColumnTransformer
        for _, trans, cols in transformers:
            selected = _names(cols, names)
            if selected is not None and not isinstance(trans, str):
                _walk(trans, selected, out, loose, known)
        return
    for union in getattr(est, "transformer_list", None) or []:  # a FeatureUnion
        _walk(union[1], columns, out, loose, known)
    values = getattr(est, "categories_", None)
    if values is None and getattr(est, "strategy", None) in ("most_frequent", "constant"):
        values = [[v] for v in np.asarray(getattr(est, "statistics_", []), dtype=object).tolist()]
    if isinstance(values, list) and names and len(values) == len(names):
        strict = getattr(est, "handle_unknown", None) == "error"
        for col, cats in zip(names, values):
            kind = _kind(np.asarray(cats, dtype=object))
            if kind is not None:
                out.setdefault(col, kind)
            if strict and known is not None and hasattr(est, "categories_"):
                known.setdefault(col, list(np.asarray(cats, dtype=object).tolist()))


def model_column_types(model: Any, *, loose: bool = False,
                       categories: dict[str, list[Any]] | None = None) -> dict[str, str]:
    """``{column: "string" | "number"}`` as a fitted scikit-learn model declares them: the
    categories of its encoders (OneHotEncoder, OrdinalEncoder, alone or in a ColumnTransformer,
    after an imputer) that see the raw columns. ``loose`` also looks past steps that may change
    the columns (for explaining a failure, not for converting); ``categories``, when given,
    receives the categories of encoders that refuse unknown ones."""
    out: dict[str, str] = {}
    try:
        _walk(model, None, out, loose, categories)
    except Exception:  # an estimator we cannot read declares nothing
        return {}
    return out


def conform(frame: pd.DataFrame, declared: dict[str, str]) -> pd.DataFrame:
    """``frame`` with each column the model declares as text given as text (``1`` -> ``"1"``),
    and each column it declares as numbers given as numbers (text that is not a number, which
    cannot be one of the model's categories, as NaN)."""
    changes: dict[str, pd.Series] = {}
    for col, kind in declared.items():
        if col not in frame.columns:
            continue
        column = frame[col]
        if kind == "string" and not _is_text(column):
            changes[col] = text_of(column)
        elif kind == "number" and not pd.api.types.is_numeric_dtype(column):
            # text that is not a number cannot be one of the model's categories either
            changes[col] = pd.to_numeric(column, errors="coerce")
    return frame.assign(**changes) if changes else frame


# ------------------------------------------------------------------------ failures, explained
def _first_failing_row(call: Callable[[pd.DataFrame], Any], frame: pd.DataFrame) -> int | None:
    """The first row (0-based) whose prefix makes ``call`` fail, by bisection; None if the whole
    table does not fail again or the search itself fails."""
    def fails(m: int) -> bool:
        try:
            call(frame.iloc[:m])
        except Exception:
            return True
        return False

    n = len(frame)
    try:
        if n == 0 or not fails(n):
            return None
        lo, hi = 0, n  # prefix [:lo] works, prefix [:hi] fails
        while hi - lo > 1:
            mid = (lo + hi) // 2
            lo, hi = (lo, mid) if fails(mid) else (mid, hi)
        return hi - 1
    except Exception:  # pragma: no cover - the search is a courtesy
        return None


def explain_failure(model: Any, frame: pd.DataFrame, exc: BaseException,
                    call: Callable[[pd.DataFrame], Any]) -> str:
    """Why a fitted model failed on ``frame``, and the fix, as the tail of a message that
    names the model and the file: ``" at data row 3: column 'grade' ... (scikit-learn said:
    ...)"``. It names the column whose dtype differs from what the model declares (or the
    category it never saw) and the first row that fails, then the model's own words."""
    said = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
    said = said if len(said) <= 200 else said[:197] + "..."
    own = f" (scikit-learn said: {type(exc).__name__}: {said})"
    known: dict[str, list[Any]] = {}
    declared = model_column_types(model, loose=True, categories=known)
    needed = [str(n) for n in getattr(model, "feature_names_in_", [])]
    absent = [n for n in needed if n not in frame.columns]
    if absent:
        shown = ", ".join(absent[:5]) + (f", ... ({len(absent)} in all)" if len(absent) > 5 else "")
        return (f": the model was fitted on columns that are not feature columns of the table: "
                f"{shown}; add them to the table (or to data.features){own}")
    extra = [str(c) for c in frame.columns if needed and str(c) not in needed]
    if extra and "feature names" in said:
        shown = ", ".join(extra[:5]) + (f", ... ({len(extra)} in all)" if len(extra) > 5 else "")
        return (f": the table has feature columns the model was not fitted on: {shown}; list the "
                f"model's columns under data.features ({', '.join(needed[:10])}"
                f"{', ...' if len(needed) > 10 else ''}){own}")
    for col, cats in known.items():
        if col not in frame.columns or declared.get(col) != "string":
            continue
        column = text_of(frame[col])
        unseen = column.notna() & ~column.isin([c for c in cats if isinstance(c, str)])
        if unseen.any():
            i = int(np.flatnonzero(unseen.to_numpy())[0])
            shown = ", ".join(map(repr, cats[:10])) + (", ..." if len(cats) > 10 else "")
            return (f" at data row {i + 1}: column {col!r} holds {column.iloc[i]!r} "
                    f"({_count(int(unseen.sum()))} in all), a category the model never saw (it "
                    f"knows {shown}) and its encoder refuses (handle_unknown='error'); drop those "
                    f"rows, or refit the encoder with handle_unknown='ignore'{own}")
    row = _first_failing_row(call, frame)
    at = f" at data row {row + 1}" if row is not None else ""
    for col, kind in declared.items():
        if col not in frame.columns:
            continue
        column = frame[col]
        if kind == "string" and pd.api.types.is_numeric_dtype(column):
            return (f"{at}: column {col!r} is {column.dtype} in the table, but the model was "
                    f"fitted on it as text (its categories are strings); declare it with "
                    f"data.dtypes: {{{col}: string}} or list it in data.categorical{own}")
    listing = ", ".join(f"{c} {t}" for c, t in frame.dtypes.astype(str).items())
    if len(listing) > 300:
        listing = listing[:297] + "..."
    cell = ""
    if row is not None and len(frame.columns) <= 20:
        cell = " (" + ", ".join(f"{c}={_plain(frame[c].iloc[row])!r}" for c in frame.columns) + ")"
    return (f"{at}{cell}: the table's feature columns are {listing}; if a column holds codes the "
            f"model was fitted on as text, declare it with data.dtypes: {{column: string}}{own}")


def _count(n: int) -> str:
    return "1 row" if n == 1 else f"{n} rows"
