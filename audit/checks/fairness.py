"""Fairness across slices: group metrics for both models, disparities, and amplification.

One slice engine: rows are grouped by each sensitive column (and, by default, by the
intersection of all of them); for every group and both models we count the confusion table.
Every group metric (accuracy, selection rate, TPR, FPR) and every disparity below is a function
of the table of (group, true label, teacher prediction, student prediction) counts, so the
paired bootstrap is one multinomial draw over that table's cells per replicate -- the same
numbers fairlearn's ``MetricFrame`` gives (tested), at any number of rows.

Disparities (one measurement per slicing, e.g. by ``colour``, by ``sex``, by both):

* ``demographic_parity_difference`` / ``_ratio`` -- max - min / min / max of the selection rate;
* ``equalized_odds_difference`` / ``_ratio`` -- the worse of the TPR and FPR differences
  (ratios), as fairlearn's ``agg="worst_case"``;
* ``worst_group_accuracy`` -- the lowest group accuracy;
* ``max_gap_to_overall`` -- the largest ``|group value - overall value|`` of ``group_metric``.

The regression of a disparity is the **disparity amplification**: how much the student widens
the teacher's gap, with a paired interval; gate it with ``max_regression``.

Groups with fewer than ``min_group_size`` rows (and empty intersections) are listed with their
``n`` and excluded from the disparity, with a note; they are never silently passed. With fewer
than two groups left, the disparity is undefined and its gate inconclusive.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, cast

import numpy as np
import pandas as pd

from audit.checks.calibration import DEFAULT_BINS, calibration_components, calibration_value
from audit.checks.group_bounds import (
    EXACT_BELOW,
    exact_bounds,
    group_counts,
    rate_interval,
    rows_to_decide,
    spread_shares,
)
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
from audit.results import Estimate, Figure, Measurement, Table
from audit.spec import Binning
from audit.stats import percentile_interval

__all__ = ["Slicing", "slicings", "group_rates", "GROUP_METRICS", "rows_to_decide"]

GROUP_METRICS = ("accuracy", "selection_rate", "tpr", "fpr")
DEFAULT_MIN_GROUP_SIZE = 30


@dataclass(frozen=True, eq=False)
class Slicing:
    """Rows assigned to groups: ``codes[i]`` is row i's group, ``labels[g]`` names group g."""

    name: str
    codes: np.ndarray
    labels: list[str]


def slicings(sensitive: pd.DataFrame, by: list[str], intersections: bool = True) -> list[Slicing]:
    """One slicing per column in ``by``, plus their intersection (every combination of observed
    levels, so a combination with no rows appears as an empty group). A group is named
    ``column=value``, or by its bin (``25<=age<40``) for a binned column."""
    out, per_column = [], []
    for col in by:
        codes, levels = pd.factorize(sensitive[col], sort=True)  # a binned column: bin order
        labels = [str(v) if Binning.is_label(col, v) else f"{col}={v}" for v in levels]
        out.append(Slicing(col, codes.astype(np.int64), labels))
        per_column.append((codes.astype(np.int64), labels))
    if intersections and len(by) > 1:
        codes = np.zeros(len(sensitive), dtype=np.int64)
        labels = [""]
        for c, lab in per_column:
            codes = codes * len(lab) + c
            labels = [f"{a} & {b}" if a else b for a in labels for b in lab]
        out.append(Slicing(" x ".join(by), codes, labels))
    return out


def group_rates(C: np.ndarray, pos: int | None) -> dict[str, np.ndarray]:
    """Per-group rates from confusion counts ``C[..., group, true, pred]`` (NaN where undefined)."""
    n = C.sum(axis=(-2, -1)).astype(np.float64)
    with np.errstate(invalid="ignore", divide="ignore"):
        out = {"count": n, "accuracy": np.trace(C, axis1=-2, axis2=-1) / n}
        if pos is not None:
            positives = C[..., pos, :].sum(axis=-1)
            predicted = C[..., :, pos].sum(axis=-1)
            tp = C[..., pos, pos]
            out["selection_rate"] = predicted / n
            out["tpr"] = tp / positives
            out["fpr"] = (predicted - tp) / (n - positives)
    return out


def _spread(values: np.ndarray, ratio: bool) -> np.ndarray:
    with np.errstate(invalid="ignore", divide="ignore"), _quiet_nan():
        hi, lo = np.nanmax(values, axis=-1), np.nanmin(values, axis=-1)
        return lo / hi if ratio else hi - lo


class _quiet_nan:
    """Silence numpy's 'All-NaN slice' RuntimeWarning: an all-NaN slice is a NaN result."""

    def __enter__(self) -> None:
        import warnings

        self._ctx = warnings.catch_warnings()
        self._ctx.__enter__()
        warnings.simplefilter("ignore", RuntimeWarning)

    def __exit__(self, *exc: Any) -> None:
        self._ctx.__exit__(*exc)


def _disparity(name: str, rates: dict[str, np.ndarray], overall: dict[str, np.ndarray],
               keep: np.ndarray, group_metric: str) -> np.ndarray:
    def sel(key: str) -> np.ndarray:
        v = rates[key][..., keep]
        return v if v.shape[-1] >= 2 else np.full(v.shape[:-1] + (2,), np.nan)

    if name == "demographic_parity_difference":
        return _spread(sel("selection_rate"), ratio=False)
    if name == "demographic_parity_ratio":
        return _spread(sel("selection_rate"), ratio=True)
    if name == "equalized_odds_difference":
        return np.fmax(_spread(sel("tpr"), False), _spread(sel("fpr"), False))
    if name == "equalized_odds_ratio":
        return np.fmin(_spread(sel("tpr"), True), _spread(sel("fpr"), True))
    if name == "worst_group_accuracy":
        with _quiet_nan():
            v = sel("accuracy")
            return np.nanmin(v, axis=-1) if keep.sum() >= 1 else np.full(v.shape[:-1], np.nan)
    # max_gap_to_overall
    with _quiet_nan(), np.errstate(invalid="ignore"):
        gaps = np.abs(rates[group_metric][..., keep] - overall[group_metric][..., None])
        if gaps.shape[-1] == 0:
            return np.full(gaps.shape[:-1], np.nan)
        return np.nanmax(gaps, axis=-1)


_NEEDS_BINARY = ("demographic_parity_difference", "demographic_parity_ratio",
                 "equalized_odds_difference", "equalized_odds_ratio")


def _measure_slices(metric: Metric, params: Mapping[str, Any], inputs: MetricInput,
                    resampler: Any, confidence: float) -> tuple[Measurement, ...]:
    from audit.checks.measure import paired_measurement

    if inputs.sensitive is None or inputs.sensitive.shape[1] == 0:
        raise DataError(f"{metric.name} slices by sensitive columns; name them in data.sensitive")
    by = list(params.get("by") or inputs.sensitive.columns)
    min_size = int(params.get("min_group_size", DEFAULT_MIN_GROUP_SIZE))
    group_metric = str(params.get("group_metric", "accuracy"))
    pos, k = inputs.pos, inputs.k
    if metric.name in _NEEDS_BINARY or group_metric != "accuracy":
        if pos is None:
            raise DataError(f"{metric.name} needs a binary problem with a positive class; these "
                            f"models have {k} classes (use worst_group_accuracy or "
                            "max_gap_to_overall with group_metric: accuracy)")
    intersections = bool(params.get("intersections", True))
    tables = resampler.memo(("slices", tuple(by), intersections, min_size),
                            lambda: _slice_tables(inputs, by, intersections, min_size,
                                                  resampler.n_boot, resampler.seed, confidence))
    out = []
    for tab in tables:
        rates, overall, keep, G = tab["rates"], tab["overall"], tab["keep"], len(tab["labels"])

        def disp(who: str) -> np.ndarray:
            return _disparity(metric.name, rates[who], overall[who], keep, group_metric)

        notes = list(tab["notes"])
        if metric.name.startswith("equalized_odds"):  # a rate a group's labels leave undefined
            for key, rows, rate in (("tpr", "positive", "true"), ("fpr", "negative", "false")):
                undefined = np.flatnonzero(keep & np.isnan(np.asarray(rates["t"][key])))
                if len(undefined):
                    shown = ", ".join(str(tab["labels"][g]) for g in undefined[:5])
                    notes.append(f"{len(undefined)} group(s) have no {rows} rows ({shown}): "
                                 f"their {rate} positive rate is undefined and left out of the "
                                 "difference (fairlearn would count it as 0)")
        if keep.sum() < 2 and metric.name != "worst_group_accuracy":
            notes.append(f"fewer than two groups of at least {min_size} rows: the disparity is "
                         "undefined")
        method = (f"paired bootstrap, {resampler.n_boot} multinomial replicates of the "
                  f"(group, label, teacher, student) count table; {int(keep.sum())} of {G} groups")
        counts = tab["counts"]
        extra: dict[str, Any] = {}
        shares = spread_shares(metric.name, counts, keep, tab["labels"], group_metric)
        if shares:
            extra["spread_by_group"] = shares
        if tab["excluded"]:
            extra["excluded_groups"] = tab["excluded"]
        m = paired_measurement(
            metric, float(disp("t")), float(disp("s")), disp("rt"), disp("rs"), confidence,
            method=method, n=inputs.n, notes=tuple(notes), breakdown=tab["rows"], extra=extra,
            params={"by": tab["name"], "min_group_size": min_size,
                    **({"group_metric": group_metric} if metric.name == "max_gap_to_overall"
                       else {})})
        small = [g for g in np.flatnonzero(keep) if counts["accuracy"]["trials"][g] < EXACT_BELOW]
        if small:
            m = _with_exact_bounds(m, metric, counts, keep, group_metric, confidence,
                                   [f"{tab['labels'][g]} (n={counts['accuracy']['trials'][g]})"
                                    for g in small])
        out.append(m)
    return tuple(out)


def _with_exact_bounds(m: Measurement, metric: Metric, counts: Any, keep: np.ndarray,
                       group_metric: str, confidence: float, small: list[str]) -> Measurement:
    """``m`` with its intervals widened to hold the exact bounds (see
    :mod:`audit.checks.group_bounds`), because groups in ``small`` have too few rows for the
    bootstrap alone."""
    import dataclasses

    bounds = exact_bounds(metric.name, metric.direction, counts, keep, group_metric, confidence)
    lo, hi = metric.bounds

    def joined(est: Estimate | None, key: str, clip: tuple[float, float]) -> Estimate | None:
        if est is None or key not in bounds or not np.isfinite(est.value):
            return est
        a, b = bounds[key]
        if est.ci is not None:
            a, b = min(a, est.ci[0]), max(b, est.ci[1])
        return Estimate(est.value, (max(a, clip[0]), min(b, clip[1])))

    teacher = joined(m.teacher, "t", (lo, hi))
    reg = joined(m.regression, "reg", (lo - hi, hi - lo))
    relative = m.relative_regression
    if reg is not None and teacher is not None and reg.ci is not None:
        denom = abs(teacher.value)
        if np.isfinite(denom) and denom > 0:
            relative = Estimate(reg.value / denom, (reg.ci[0] / denom, reg.ci[1] / denom))
    student = joined(m.student, "s", (lo, hi))
    assert student is not None
    note = (f"{len(small)} counted group(s) below {EXACT_BELOW} rows ({', '.join(small)}): the "
            "intervals also hold exact bounds (Clopper-Pearson per group rate, Tango per group "
            "change, simultaneous by Bonferroni), as a bootstrap of so few rows is no evidence")
    return dataclasses.replace(
        m, teacher=teacher, student=student, regression=reg, relative_regression=relative,
        notes=(*m.notes, note),
        method=m.method + "; joined with exact bounds (small groups)")


def _slice_tables(inputs: MetricInput, by: list[str], intersections: bool, min_size: int,
                  n_boot: int, seed: int, confidence: float) -> list[dict[str, Any]]:
    """Per slicing: the count table, its replicates, group rates and the group rows; built once
    per suite run and shared by every fairness check over the same slicings."""
    k, pos = inputs.k, inputs.pos
    pred_t, pred_s = inputs.p_teacher.argmax(axis=1), inputs.p_student.argmax(axis=1)
    out = []
    for sl in slicings(inputs.sensitive, by, intersections):
        G = len(sl.labels)
        flat = ((sl.codes * k + inputs.y) * k + pred_t) * k + pred_s
        J = np.bincount(flat, minlength=G * k**3).reshape(G, k, k, k)
        R = np.random.default_rng(seed).multinomial(
            inputs.n, J.reshape(-1) / inputs.n, size=n_boot).reshape(-1, G, k, k, k)
        n_g = J.sum(axis=(1, 2, 3))
        keep = n_g >= max(min_size, 1)
        tables = {"t": J.sum(axis=3), "s": J.sum(axis=2), "rt": R.sum(axis=4), "rs": R.sum(axis=3)}
        rates = {who: group_rates(C, pos) for who, C in tables.items()}
        overall = {who: group_rates(C.sum(axis=-3), pos) for who, C in tables.items()}
        small = [(sl.labels[g], int(n_g[g])) for g in range(G) if not keep[g]]
        counts = group_counts(J, pos)
        notes = []
        if small:
            listing = ", ".join(f"{lab} (n={n})" for lab, n in small)
            notes.append(f"{len(small)} group(s) below min_group_size={min_size} excluded from "
                         f"the disparity: {listing}")
        out.append({"name": sl.name, "labels": sl.labels, "keep": keep, "rates": rates,
                    "overall": overall, "notes": notes, "counts": counts,
                    "excluded": [{"group": lab, "n": n, "needs": min_size - n}
                                 for lab, n in sorted(small, key=lambda x: -x[1]) if n > 0],
                    "rows": _group_rows(sl, inputs, rates, counts, keep, confidence, min_size)})
    return out


def _group_rows(sl: Slicing, inputs: MetricInput, rates: dict[str, dict[str, np.ndarray]],
                counts: Any, keep: np.ndarray, confidence: float, min_size: int
                ) -> list[dict[str, Any]]:
    """One row per group: its n, whether it counts, and each model's rates with intervals (the
    bootstrap's joined with Clopper-Pearson's, so a tiny group's interval is honest)."""
    rows = []
    for g, label in enumerate(sl.labels):
        n = int(rates["t"]["count"][g])
        row: dict[str, Any] = {"kind": "group", "slice": sl.name, "group": label, "n": n,
                               "included": bool(keep[g]),
                               "status": "ok" if keep[g] else ("empty" if n == 0 else
                                                               f"insufficient (< {min_size})")}
        mask = sl.codes == g
        for who, key, P in (("teacher", "t", inputs.p_teacher), ("student", "s", inputs.p_student)):
            values: dict[str, Any] = {}
            for name in GROUP_METRICS:
                if name not in rates[key]:
                    continue
                v = float(rates[key][name][g])
                boot = percentile_interval(rates["r" + key][name][:, g], confidence)
                ci = rate_interval(None if boot is None else (boot.low, boot.high),
                                   int(counts[name][key][g]), int(counts[name]["trials"][g]),
                                   confidence)
                values[name] = None if not np.isfinite(v) else v
                values[f"{name}_ci"] = None if ci is None or n == 0 or not np.isfinite(v) \
                    else [ci[0], ci[1]]
            comps = calibration_components(inputs.y[mask], P[mask], "ece", DEFAULT_BINS,
                                           "equal_width") if n else None
            values["ece"] = calibration_value(comps, "ece") if comps is not None else None
            row[who] = values
        rows.append(row)
    return rows


_PARAMS = {
    "by": Param("str_list", "Sensitive columns to slice by (default: all of data.sensitive); "
                            "each column, and their intersection."),
    "intersections": Param("bool", "Also slice by the intersection of the by columns.",
                           default=True),
    "min_group_size": Param("int", "Groups with fewer rows are reported (marked insufficient) "
                                   "but excluded from the disparity.",
                            default=DEFAULT_MIN_GROUP_SIZE, minimum=1),
    "group_metric": Param("str", "The group metric max_gap_to_overall compares.",
                          default="accuracy", choices=GROUP_METRICS),
}
for _name, _direction, _bounds, _doc in (
    ("demographic_parity_difference", "lower", (0.0, 1.0),
     "Largest minus smallest group selection rate."),
    ("demographic_parity_ratio", "higher", (0.0, 1.0),
     "Smallest over largest group selection rate."),
    ("equalized_odds_difference", "lower", (0.0, 1.0),
     "The larger of the TPR and FPR differences between groups (fairlearn's worst_case)."),
    ("equalized_odds_ratio", "higher", (0.0, 1.0),
     "The smaller of the TPR and FPR ratios between groups (fairlearn's worst_case)."),
    ("worst_group_accuracy", "higher", (0.0, 1.0), "The lowest accuracy of any group."),
    ("max_gap_to_overall", "lower", (0.0, 1.0),
     "Largest |group value - overall value| of group_metric (default accuracy)."),
):
    register(Metric(_name, cast(Direction, _direction), "fairness", False, _bounds, _doc,
                    custom=_measure_slices,
                    params=_PARAMS))


# -- report section ----------------------------------------------------------------------
_GROUP_VALUES = (("accuracy", "Accuracy"), ("selection_rate", "Selection rate"), ("tpr", "TPR"),
                 ("fpr", "FPR"), ("ece", "ECE"))


def _group_figures(m: Measurement) -> tuple[Figure, ...]:
    groups = tuple(r for r in m.breakdown if r.get("kind") == "group")
    if not groups:
        return ()
    value = ("selection_rate" if m.metric.startswith("demographic_parity") else
             "tpr" if m.metric.startswith("equalized_odds") else
             m.params.get("group_metric") or "accuracy")
    return (Figure("bars", f"{value} by group ({m.scope})", groups, value=value),)


def _group_cell(values: dict[str, Any], name: str) -> Estimate | None:
    v = values.get(name)
    if v is None:
        return None
    ci = values.get(f"{name}_ci")
    return Estimate(float(v), None if not ci else
                    tuple(float("nan") if x is None else float(x) for x in ci))  # type: ignore[arg-type]


def _group_tables(m: Measurement) -> tuple[Table, ...]:
    rows = tuple((r["group"], r["n"], r["status"],
                  *(_group_cell(r.get(who) or {}, name) for name, _ in _GROUP_VALUES
                    for who in ("teacher", "student")))
                 for r in m.breakdown if r.get("kind") == "group")
    if not rows:
        return ()
    title = f"Groups: {m.metric}" + (f" ({m.scope})" if m.scope else "")
    return (Table(title, ("Group", "n", "Status", *("teacher", "student") * 5),
                  rows, spans=(("", 3), *((title, 2) for _, title in _GROUP_VALUES))),)


def _explain(m: Measurement, kind: str, threshold: float) -> str | None:
    if m.method.endswith("joined with exact bounds (small groups)"):
        # the interval's end is a small group's exact bound, not the variance shares
        # rows_to_decide apportions: naming a group from those shares would mislead
        return None
    found = rows_to_decide(m, kind, threshold)
    return None if found is None else found[2]


FAMILY = register_family(Family("fairness", "Fairness across groups", order=40,
                                figures=_group_figures, tables=_group_tables, explain=_explain))
