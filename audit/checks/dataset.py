"""The data the audit was judged on: drift between training and evaluation tables, quality, and
train/eval leakage.

Drift, per column (the model's feature columns unless ``columns`` says otherwise):

* numeric columns: PSI over ``bins`` quantile bins of the training column (10 by default) and the
  two-sample Kolmogorov-Smirnov test (effect size: the KS statistic D);
* other columns: PSI over the categories and the chi-squared test of the 2 x categories table
  (effect size: Cramer's V).

p-values are adjusted for the number of columns with Benjamini-Hochberg. A column **drifted**
when its adjusted p-value is below ``fdr`` (0.05) *and* its PSI is at least 0.1: with a million
rows every tiny shift is significant, so the effect size has to matter too (both are reported).

Metrics (one number each, judged as is: they are descriptions of the data, not estimates):
``max_psi``, ``drifted_columns``, ``missing_rate`` (largest share of missing values in any
column of either table), ``constant_columns``, ``duplicate_rows`` (share of eval rows that
repeat an earlier eval row), ``min_class_share`` (the rarest label's share of the eval rows)
and ``leakage`` (share of eval rows that also occur, identically, in the training table).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, cast

import numpy as np
import pandas as pd

from audit.checks.registry import (
    Direction,
    Family,
    Metric,
    MetricInput,
    Param,
    register,
    register_family,
)
from audit.errors import DataError
from audit.probes.artifacts import ArtifactRequest, DataTables
from audit.results import Estimate, Measurement, Table

__all__ = ["psi", "drift_table", "PSI_DRIFT"]

PSI_DRIFT = 0.1  # the usual "moderate shift" threshold
DEFAULT_DRIFT_BINS = 10
_EPS = 1e-4


def psi(expected: np.ndarray, actual: np.ndarray) -> float:
    """Population stability index of two count vectors over the same bins."""
    e = np.maximum(expected / expected.sum(), _EPS)
    a = np.maximum(actual / actual.sum(), _EPS)
    return float(np.sum((a - e) * np.log(a / e)))


def _is_numeric(col: pd.Series) -> bool:
    return pd.api.types.is_numeric_dtype(col) and not pd.api.types.is_bool_dtype(col)


def drift_table(train: pd.DataFrame, evals: pd.DataFrame, columns: list[str], bins: int,
                fdr: float) -> list[dict[str, Any]]:
    """One row per column: PSI, test statistic, p-value, BH-adjusted q-value, drifted."""
    from scipy import stats
    rows: list[dict[str, Any]] = []
    for col in columns:
        t, e = train[col].dropna(), evals[col].dropna()
        if _is_numeric(train[col]) and _is_numeric(evals[col]):
            edges = np.unique(np.quantile(t.to_numpy(dtype=float), np.linspace(0, 1, bins + 1)))
            inner = edges[1:-1]
            ct = np.bincount(np.searchsorted(inner, t.to_numpy(dtype=float), side="right"),
                             minlength=len(inner) + 1)
            ce = np.bincount(np.searchsorted(inner, e.to_numpy(dtype=float), side="right"),
                             minlength=len(inner) + 1)
            test = stats.ks_2samp(t.to_numpy(dtype=float), e.to_numpy(dtype=float))
            rows.append({"kind": "drift", "column": str(col), "type": "numeric",
                         "psi": psi(ct, ce), "test": "Kolmogorov-Smirnov",
                         "effect": float(test.statistic), "effect_name": "D",
                         "p_value": float(test.pvalue)})
        else:
            levels = pd.Index(pd.concat([t, e]).astype(str).unique())
            ct = t.astype(str).value_counts().reindex(levels, fill_value=0).to_numpy()
            ce = e.astype(str).value_counts().reindex(levels, fill_value=0).to_numpy()
            if len(levels) > 1:
                chi2, p, _, _ = stats.chi2_contingency(np.vstack([ct, ce]))
                v = float(np.sqrt(chi2 / (ct.sum() + ce.sum())))  # min(2, k) - 1 = 1
            else:
                p, v = 1.0, 0.0
            rows.append({"kind": "drift", "column": str(col), "type": "categorical",
                         "psi": psi(ct, ce), "test": "chi-squared", "effect": v,
                         "effect_name": "Cramer's V", "p_value": float(p)})
    if rows:
        q = stats.false_discovery_control([r["p_value"] for r in rows])
        for r, qv in zip(rows, q, strict=True):
            r["q_value"] = float(qv)
            r["drifted"] = bool(qv < fdr and r["psi"] >= PSI_DRIFT)
    return rows


def _frame(features: pd.DataFrame, labels: pd.Series, target: str) -> pd.DataFrame:
    frame = features.reset_index(drop=True).copy()
    frame[target] = labels.to_numpy()
    return frame


def _columns(params: Mapping[str, Any], features: pd.DataFrame) -> list[str]:
    columns = list(params.get("columns") or features.columns)
    missing = [c for c in columns if c not in features.columns]
    if missing:
        raise DataError(f"columns {missing} are not feature columns of the data "
                        f"({', '.join(map(str, features.columns))})")
    return columns


def _single(metric: Metric, value: float, *, method: str, n: int, rows: list[dict[str, Any]],
            notes: tuple[str, ...] = ()) -> Measurement:
    return Measurement(metric.name, metric.direction, Estimate(float(value), (float(value), float(value))),
                       method=method, n=n, params={}, notes=notes, breakdown=tuple(rows),
                       family=metric.family)


def _train(data: DataTables, name: str) -> pd.DataFrame:
    """The training table's features, with its label column (``target``)."""
    if not data.train_named or data.train_features is None or data.train_labels is None:
        raise DataError(f"{name} compares the training table with the evaluation table; name it "
                        "in data.train")
    return _frame(data.train_features, data.train_labels, data.target)


def _needs_eval(params: Mapping[str, Any]) -> tuple[ArtifactRequest, ...]:
    return (ArtifactRequest.of("tables", train=False),)


def _needs_train(params: Mapping[str, Any]) -> tuple[ArtifactRequest, ...]:
    """The eval table and the training table (read only when the suite names it)."""
    return (ArtifactRequest.of("tables", train=True),)


def _needs_rows(train: bool) -> Any:
    """Whole rows: with a text or image suite's inputs as a column of their own (a text, or an
    image's digest), so rows repeat only when their inputs do too."""
    return lambda params: (ArtifactRequest.of("tables", train=train, inputs=True),)


def _measure_data(metric: Metric, params: Mapping[str, Any], inputs: MetricInput,
                  resampler: Any, confidence: float) -> tuple[Measurement, ...]:
    data: DataTables | None = inputs.artifacts.get("tables")
    if data is None:
        raise DataError(f"{metric.name} reads the data tables; run it through a suite")
    ev = data.eval_features
    target = data.target
    name = metric.name
    if name in ("max_psi", "drifted_columns"):
        _train(data, name)  # named, or an error
        tr = data.train_features
        columns = _columns(params, ev)
        bins = int(params.get("bins", DEFAULT_DRIFT_BINS))
        fdr = float(params.get("fdr", 0.05))
        rows = resampler.memo(("drift", tuple(columns), bins, fdr),
                              lambda: drift_table(tr, ev, columns, bins, fdr))
        drifted = [r["column"] for r in rows if r["drifted"]]
        notes: tuple[str, ...] = ()
        if drifted:
            notes = (f"{len(drifted)} column(s) drifted between the training and the evaluation "
                     f"data ({', '.join(drifted)}): the evaluation data does not look like the "
                     "data the student learned from, so the audit's numbers may not hold in "
                     "production",)
        value = max((r["psi"] for r in rows), default=0.0) if name == "max_psi" else len(drifted)
        method = (f"PSI over {bins} training-quantile bins or categories; KS / chi-squared tests, "
                  f"Benjamini-Hochberg across {len(rows)} columns; drifted = q < {fdr:g} and "
                  f"PSI >= {PSI_DRIFT:g}")
        return (_single(metric, value, method=method, n=data.n_eval, rows=rows, notes=notes),)
    frame = _frame(ev, data.eval_labels, target)
    if name == "missing_rate":
        tables = [("eval", frame)]
        if data.train_named:
            tables.append(("train", _train(data, name)))
        rows = [{"kind": "missing", "table": t, "column": str(c), "rate": float(f[c].isna().mean())}
                for t, f in tables for c in f.columns]
        worst = max(rows, key=lambda r: r["rate"])
        return (_single(metric, worst["rate"], method="share of missing values; the worst column "
                        f"is {worst['table']}.{worst['column']}", n=len(frame),
                        rows=[r for r in rows if r["rate"] > 0]),)
    if name == "constant_columns":
        tables = [("eval", frame)]
        if data.train_named:
            tables.append(("train", _train(data, name)))
        rows = [{"kind": "constant", "table": t, "column": str(c)}
                for t, f in tables for c in f.columns if f[c].nunique(dropna=False) <= 1]
        return (_single(metric, len(rows), method="columns with a single distinct value",
                        n=len(frame), rows=rows),)
    if name == "duplicate_rows":
        dup = frame.duplicated()
        return (_single(metric, float(dup.mean()), method="eval rows (features and label) that "
                        "repeat an earlier eval row", n=len(frame),
                        rows=[{"kind": "duplicates", "count": int(dup.sum())}]),)
    if name == "min_class_share":
        shares = frame[target].value_counts(normalize=True)
        rows = [{"kind": "class_share", "label": str(k), "share": float(v)} for k, v in shares.items()]
        return (_single(metric, float(shares.min()), method="the rarest label's share of the "
                        "eval rows", n=len(frame), rows=rows),)
    # leakage
    train = _train(data, name)
    shared = [c for c in frame.columns if c in train.columns]
    key_eval = pd.util.hash_pandas_object(frame[shared].astype(str), index=False)
    key_train = pd.util.hash_pandas_object(train[shared].astype(str), index=False)
    leaked = key_eval.isin(set(key_train.to_numpy()))
    first = [int(i) + 1 for i in np.flatnonzero(leaked.to_numpy())[:5]]
    count = int(leaked.sum())
    notes = () if not count else (
        f"{count} eval row(s) also occur, identically, in the training table: every other check "
        "on this eval table flatters whichever model saw those rows in training (the student "
        "and, if it learned from the same table, the teacher too)",)
    return (_single(metric, float(leaked.mean()), method="share of eval rows whose every column "
                    "(features and label) equals a training row", n=len(frame),
                    rows=[{"kind": "leakage", "count": count, "first_rows": first}],
                    notes=notes),)


_DRIFT = {
    "columns": Param("str_list", "Columns a data check looks at (default: all feature columns)."),
    "bins": Param("int", "Training-quantile bins of numeric columns for PSI.",
                  default=DEFAULT_DRIFT_BINS, minimum=2, maximum=1000),
    "fdr": Param("number", "False-discovery rate across the columns tested (Benjamini-Hochberg).",
                 default=0.05, exclusive_minimum=0, exclusive_maximum=1),
}
_READS_TRAIN = ("max_psi", "drifted_columns", "leakage")
_EVAL_ONLY = ("duplicate_rows", "min_class_share")  # the others read data.train when named
_ROWS = ("duplicate_rows", "leakage")  # compare whole rows, inputs included


def _TRAIN(params: Mapping[str, Any]) -> tuple[tuple[str, str], ...]:
    return (("train", "metric"),)


for _name, _direction, _bounds, _doc, _params in (
    ("max_psi", "lower", (0.0, float("inf")),
     "The largest PSI of any feature column, train vs eval.", _DRIFT),
    ("drifted_columns", "lower", (0.0, float("inf")),
     "Columns whose drift is both significant (Benjamini-Hochberg across columns) and large "
     "(PSI >= 0.1).", _DRIFT),
    ("missing_rate", "lower", (0.0, 1.0),
     "The largest share of missing values in any column of either table.", {}),
    ("constant_columns", "lower", (0.0, float("inf")), "Columns with a single distinct value.", {}),
    ("duplicate_rows", "lower", (0.0, 1.0), "Share of eval rows repeating an earlier eval row.", {}),
    ("min_class_share", "higher", (0.0, 1.0), "The rarest label's share of the eval rows.", {}),
    ("leakage", "lower", (0.0, 1.0),
     "Share of eval rows (features, a text or image suite's inputs, and label) that also occur "
     "in the training table.", {}),
):
    register(Metric(_name, cast(Direction, _direction), "data", True, _bounds, _doc,
                    custom=_measure_data,
                    params=_params, tables=_TRAIN if _name in _READS_TRAIN else None,
                    needs=_needs_rows(_name == "leakage") if _name in _ROWS else
                    _needs_eval if _name in _EVAL_ONLY else _needs_train))


# -- report section ----------------------------------------------------------------------
_DATA_TABLES = (
    ("drift", "Drift by column", ("column", "type", "psi", "test", "effect_name", "effect",
                                  "p_value", "q_value", "drifted")),
    ("missing", "Missing values", ("table", "column", "rate")),
    ("constant", "Constant columns", ("table", "column")),
    ("duplicates", "Duplicates", ("count",)),
    ("class_share", "Label shares", ("label", "share")),
    ("leakage", "Leaked rows", ("count", "first_rows")),
)


def _data_tables(m: Measurement) -> tuple[Table, ...]:
    tables = (Table.of_rows(m.breakdown, kind, title, columns)
              for kind, title, columns in _DATA_TABLES)
    return tuple(t for t in tables if t is not None)


FAMILY = register_family(Family("data", "Data", order=90, tables=_data_tables))
