"""Running a fitted scikit-learn-style estimator (a skops file, a trusted pickle, an object a
callable names): its class labels, and each table fed as the model declares its columns.

A CSV says nothing about types, so pandas guesses: a column of category codes ``0, 1, 2`` comes
back as integers even when the model was fitted on the text ``"0", "1", "2"``. A fitted model
declares its columns' types too (its encoders' ``categories_``, :func:`model_column_types`),
and :func:`conform` feeds each column as the model expects. When a model still fails on the
data, :func:`explain_failure` says which column, which dtype and what to declare. (What the
suite declares is applied when the table is read: :mod:`audit.coltypes`.)
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import pandas as pd

from audit.coltypes import is_text, plain_value, text_of
from audit.data import Table
from audit.errors import ModelError, display_path
from audit.models.base import PredictFn
from audit.models.isolation import guarded_error
from audit.spec import ModelSpec

__all__ = ["estimator_predict", "classes_of", "model_column_types", "conform", "explain_failure"]


def estimator_predict(model: Any, label: str) -> PredictFn:
    """The predict function of an object with ``predict_proba``: each table conformed to the
    column types the model declares, fed as a frame of its own; a failure explained."""
    if not hasattr(model, "predict_proba"):
        raise ModelError(f"{label}: {type(model).__name__} has no predict_proba; the audit needs "
                         "class probabilities")

    # columns the fitted model declares as text (its encoders' categories) are fed as text,
    # whatever type the table's reader gave them (a CSV's 0/1/2 codes come back as integers)
    declared = model_column_types(model)

    def predict(table: Table) -> np.ndarray:
        if table.texts is not None or table.images is not None:  # a text or image pipeline
            given = list(table.texts) if table.texts is not None else np.array(table.images)
            try:
                return model.predict_proba(given)
            except Exception as exc:
                what = "texts (a list of str)" if table.texts is not None else (
                    f"images (a float32 {tuple(np.shape(given))} array in [0, 1])")
                raise ModelError(f"{label} failed to predict on {display_path(table.path)}: "
                                 f"{type(exc).__name__}: {exc}; it was fed the {what}") from exc
        frame = conform(table.features, declared)
        try:
            # a frame of its own: a model that edits its input must not change what the other
            # model is fed (copy-on-write makes this cheap; its .values are read-only views)
            return model.predict_proba(frame.copy(deep=False))
        except Exception as exc:  # say which column, dtype and row, and the fix
            why = explain_failure(model, frame, exc, model.predict_proba)
            raise ModelError(f"{label} failed to predict on {display_path(table.path)}{why}") from exc
        except BaseException as exc:  # SystemExit from a model must not end the audit
            raise guarded_error(exc, label, f"predicting on {display_path(table.path)}") from None

    return predict


def classes_of(obj: Any, spec: ModelSpec, label: str) -> tuple[Any, ...]:
    """The suite's ``classes``, else the object's ``classes_`` as plain Python values."""
    if spec.classes is not None:
        return tuple(spec.classes)
    classes = getattr(obj, "classes_", None)
    if classes is None:
        raise ModelError(f"{label}: cannot tell the class labels ({type(obj).__name__} has no "
                         "classes_); add classes: [...] to the model in the suite, in the order of "
                         "the probability columns")
    return tuple(c.item() if isinstance(c, np.generic) else c for c in classes)


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
        if kind == "string" and not is_text(column):
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
        cell = " (" + ", ".join(f"{c}={plain_value(frame[c].iloc[row])!r}" for c in frame.columns) + ")"
    return (f"{at}{cell}: the table's feature columns are {listing}; if a column holds codes the "
            f"model was fitted on as text, declare it with data.dtypes: {{column: string}}{own}")


def _count(n: int) -> str:
    return "1 row" if n == 1 else f"{n} rows"
