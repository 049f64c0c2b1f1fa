"""Slice discovery: where, without anyone naming it in advance, the student fails its teacher.

Slices are one or two conditions on the feature columns (``max_conditions``), which for a text
or image suite are its metadata columns and the properties derived from its inputs (text length,
out-of-vocabulary share, image brightness and contrast; :mod:`audit.data.derived`): a category, or a
quantile bin of a numeric column (``bins``, 5 by default). For every slice with at least
``min_group_size`` rows (50 by default) we count, from cached predictions, the rows the teacher
gets right and the student wrong (``b``) and the reverse (``c``). The student's accuracy
regression in the slice is ``(b - c) / n``; its significance is McNemar's exact one-sided test
(``P(X >= b)``, ``X ~ Binomial(b + c, 1/2)``); p-values are adjusted with Benjamini-Hochberg
across every slice tried, and a slice is significant when ``q < fdr`` (0.05).

``slice_regression`` is the accuracy regression of the worst significant slice (0 when no slice
is significant) with a paired bootstrap interval; gate it with ``max``. The report lists the top
slices with their size, teacher and student accuracy and the regression, each with an interval.
"""

from __future__ import annotations

from collections.abc import Mapping
from itertools import combinations
from typing import Any

import numpy as np
import pandas as pd

from audit.checks.registry import Family, Metric, MetricInput, Param, register, register_family
from audit.errors import DataError
from audit.probes.artifacts import ArtifactRequest
from audit.results import Estimate, Measurement, Table
from audit.stats import percentile_interval

__all__ = ["conditions", "discover"]

DEFAULT_SLICE_BINS = 5
DEFAULT_MIN_SLICE = 50
TOP = 10


def conditions(features: pd.DataFrame, bins: int) -> list[tuple[str, np.ndarray, list[str]]]:
    """Per column: a code per row (-1 for missing) and the condition each code stands for."""
    out = []
    for col in features.columns:
        series = features[col]
        if pd.api.types.is_numeric_dtype(series) and not pd.api.types.is_bool_dtype(series) \
                and series.nunique() > bins:
            values = series.to_numpy(dtype=float)
            edges = np.unique(np.nanquantile(values, np.linspace(0, 1, bins + 1)))
            inner = edges[1:-1]
            codes = np.searchsorted(inner, values, side="right")
            codes[np.isnan(values)] = -1
            last = len(inner)
            labels = [f"{col} < {inner[0]:g}" if i == 0 else
                      f"{col} >= {inner[-1]:g}" if i == last else
                      f"{inner[i - 1]:g} <= {col} < {inner[i]:g}" for i in range(last + 1)]
            out.append((str(col), codes.astype(np.int64), labels))
        else:
            codes, levels = pd.factorize(series, sort=True)
            out.append((str(col), codes.astype(np.int64), [f"{col} = {v}" for v in levels]))
    return out


def discover(t_right: np.ndarray, s_right: np.ndarray, features: pd.DataFrame, *, bins: int,
             min_size: int, max_conditions: int, fdr: float) -> list[dict[str, Any]]:
    """Every slice tried, with n, b, c, regression, p and q (BH across all of them)."""
    neg = (t_right & ~s_right).astype(np.float64)
    pos = (~t_right & s_right).astype(np.float64)
    tr = t_right.astype(np.float64)
    sr = s_right.astype(np.float64)
    conds = conditions(features, bins)
    found: list[dict[str, Any]] = []

    def add(codes: np.ndarray, size: int, name_of: Any) -> None:
        ok = codes >= 0
        c = codes[ok]
        n = np.bincount(c, minlength=size)
        sums = {k: np.bincount(c, weights=w[ok], minlength=size)
                for k, w in (("b", neg), ("c", pos), ("t", tr), ("s", sr))}
        for j in np.flatnonzero(n >= min_size):
            found.append({"slice": name_of(j), "n": int(n[j]), "b": int(sums["b"][j]),
                          "c": int(sums["c"][j]), "teacher_right": int(sums["t"][j]),
                          "student_right": int(sums["s"][j]), "code": (codes, int(j))})

    for _, codes, labels in conds:
        add(codes, len(labels), lambda j, labels=labels: labels[j])
    if max_conditions >= 2:
        for (_, ca, la), (_, cb, lb) in combinations(conds, 2):
            joint = np.where((ca >= 0) & (cb >= 0), ca * len(lb) + cb, -1)
            add(joint, len(la) * len(lb),
                lambda j, la=la, lb=lb: f"{la[j // len(lb)]} and {lb[j % len(lb)]}")
    if not found:
        return []
    from scipy import stats

    for s in found:
        k = s["b"] + s["c"]
        s["regression"] = (s["b"] - s["c"]) / s["n"]
        s["p_value"] = float(stats.binom.sf(s["b"] - 1, k, 0.5)) if k else 1.0
    q = stats.false_discovery_control([s["p_value"] for s in found])
    for s, qv in zip(found, q, strict=True):
        s["q_value"] = float(qv)
        s["significant"] = bool(qv < fdr and s["regression"] > 0)
    found.sort(key=lambda s: (not s["significant"], -s["regression"], s["p_value"]))
    return found


def _intervals(s: dict[str, Any], t_right: np.ndarray, s_right: np.ndarray, n_boot: int,
               seed: int, confidence: float) -> dict[str, Any]:
    """Paired bootstrap of the slice's 2 x 2 table of (teacher right, student right)."""
    codes, j = s["code"]
    mask = codes == j
    cells = np.bincount(t_right[mask].astype(int) * 2 + s_right[mask].astype(int), minlength=4)
    n = int(cells.sum())
    R = np.random.default_rng(seed).multinomial(n, cells / n, size=n_boot)
    t_acc = (R[:, 2] + R[:, 3]) / n
    s_acc = (R[:, 1] + R[:, 3]) / n

    def ci(x: np.ndarray) -> list[float] | None:
        iv = percentile_interval(x, confidence)
        return None if iv is None else [iv.low, iv.high]

    return {"teacher_accuracy": s["teacher_right"] / n, "teacher_accuracy_ci": ci(t_acc),
            "student_accuracy": s["student_right"] / n, "student_accuracy_ci": ci(s_acc),
            "regression_ci": ci(t_acc - s_acc), "negative_flip_rate": s["b"] / n}


def _needs(params: Mapping[str, Any]) -> tuple[ArtifactRequest, ...]:
    # the eval features (with a text or image suite's derived properties)
    return (ArtifactRequest.of("tables", train=False, derived=True),)


def _measure_slices(metric: Metric, params: Mapping[str, Any], inputs: MetricInput,
                    resampler: Any, confidence: float) -> tuple[Measurement, ...]:
    data = inputs.artifacts.get("tables")
    if data is None:
        raise DataError(f"{metric.name} reads the feature table; run it through a suite")
    features = data.eval_features
    bins = int(params.get("bins", DEFAULT_SLICE_BINS))
    min_size = int(params.get("min_group_size", DEFAULT_MIN_SLICE))
    max_conditions = int(params.get("max_conditions", 2))
    fdr = float(params.get("fdr", 0.05))
    t_right = inputs.p_teacher.argmax(axis=1) == inputs.y
    s_right = inputs.p_student.argmax(axis=1) == inputs.y
    found = discover(t_right, s_right, features, bins=bins, min_size=min_size,
                     max_conditions=max_conditions, fdr=fdr)
    rows = []
    for rank, s in enumerate(found[:TOP], start=1):
        detail = _intervals(s, t_right, s_right, resampler.n_boot, resampler.seed, confidence)
        rows.append({"kind": "slice", "rank": rank, "slice": s["slice"], "n": s["n"],
                     "regression": s["regression"], "p_value": s["p_value"],
                     "q_value": s["q_value"], "significant": s["significant"], **detail})
    significant = [r for r in rows if r["significant"]]
    n_sig = sum(s["significant"] for s in found)
    method = (f"{len(found)} slices of >= {min_size} rows tried (up to {max_conditions} "
              f"conditions, {bins} quantile bins); McNemar exact one-sided tests, "
              f"Benjamini-Hochberg at {fdr:g}")
    if significant:
        worst = significant[0]
        ci = worst["regression_ci"]
        value = Estimate(worst["regression"], None if ci is None else (ci[0], ci[1]))
        notes = (f"{n_sig} significant slice(s); the worst: {worst['slice']} (n={worst['n']}), "
                 f"teacher accuracy {worst['teacher_accuracy']:.3f}, student "
                 f"{worst['student_accuracy']:.3f}",)
    else:
        value = Estimate(0.0, (0.0, 0.0))
        notes = (f"no slice where the student is significantly worse than the teacher among "
                 f"{len(found)} tried",)
    return (Measurement(metric.name, metric.direction, value, method=method, n=inputs.n,
                        params={}, notes=notes, breakdown=tuple(rows), family=metric.family),)


register(Metric("slice_regression", "lower", "slices", True, (-1.0, 1.0),
                "Accuracy regression (teacher - student) of the worst significant discovered "
                "slice; 0 when none is significant.", custom=_measure_slices, needs=_needs,
                identical=0.0,
                params={"bins": Param("int", "Quantile bins of numeric columns.",
                                      default=DEFAULT_SLICE_BINS, minimum=2, maximum=1000),
                        "min_group_size": Param("int", "Discovered slices with fewer rows are "
                                                       "not considered.",
                                                default=DEFAULT_MIN_SLICE, minimum=1),
                        "max_conditions": Param("int", "Conditions per discovered slice.",
                                                default=2, choices=(1, 2)),
                        "fdr": Param("number", "False-discovery rate across every slice tried "
                                               "(Benjamini-Hochberg).", default=0.05,
                                     exclusive_minimum=0, exclusive_maximum=1)}))


FAMILY = register_family(Family(
    "slices", "Slice discovery", order=50,
    tables=lambda m: tuple(t for t in (Table.of_rows(
        m.breakdown, "slice", "Top slices", ("rank", "slice", "n", "teacher_accuracy",
                                             "student_accuracy", "regression", "regression_ci",
                                             "p_value", "q_value", "significant"),
        open=True),) if t is not None)))
