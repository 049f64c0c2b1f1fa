"""Column types the suite declares (``data.dtypes`` / ``data.categorical``), and converting a
column read from a file to them.

A CSV says nothing about types, so pandas guesses: a column of category codes ``0, 1, 2`` comes
back as integers even when the model was fitted on the text ``"0", "1", "2"``. The suite can
declare a column's type, applied when the table is read (:func:`from_text`, :func:`convert`);
what a fitted model declares, and feeding a table as it expects, is the models' side
(:mod:`audit.models.estimator`), which writes numbers as text the way :func:`text_of` does.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from audit.errors import DataError

__all__ = ["text_of", "is_text", "plain_value", "from_text", "convert"]

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
    if is_text(column):
        return column
    codes, uniques = pd.factorize(column, use_na_sentinel=True)
    texts = np.array([_text(u) for u in uniques] + [np.nan], dtype=object)
    return pd.Series(texts[codes], index=column.index, name=column.name, dtype=object)


def is_text(column: pd.Series) -> bool:
    """Every value is a string (or missing)."""
    return pd.api.types.infer_dtype(column, skipna=True) in ("string", "empty")


def plain_value(value: Any) -> Any:
    """A numpy scalar as the Python value it holds (anything else as it is)."""
    return value.item() if isinstance(value, np.generic) else value


def _where(where: str, name: Any, dtype: str) -> str:
    return f"{where} column {name!r} (data.dtypes: {dtype})"


def _first(column: pd.Series, bad: pd.Series) -> tuple[int, Any, int]:
    """Data row (1-based) and raw value of the first ``bad`` cell, and how many are bad."""
    mask = bad.to_numpy(dtype=bool)
    i = int(np.flatnonzero(mask)[0])
    return i + 1, plain_value(column.iloc[i]), int(mask.sum())


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
