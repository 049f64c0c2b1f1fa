"""What a window is measured by: pure functions of the reference and the window's outputs.

* ``agreement``: the share of rows where the student's top class is the teacher's (needs no
  label: the teacher is the reference).
* ``estimated_accuracy`` (CBPE, confidence-based performance estimation): each model's
  confidence in its predicted class is mapped to the probability that the prediction is
  right by an isotonic calibration learned on the labelled reference
  (:func:`fit_calibration`); a window's estimated accuracy is the mean of that probability
  over its rows. It is right when the window's rows are like the reference's *given the
  confidence*; a shift that makes a model wrong where it is confident goes unseen by it, which
  is why the teacher's agreement is measured beside it.
* ``estimated_accuracy_drop``: the reference accuracy minus the window's estimate, per model.
* ``prediction_drift``: the PSI of the student's predicted-class shares against the
  reference's; ``drifted_columns`` and ``max_psi``: each feature column against the
  reference (PSI and KS / chi-squared with Benjamini-Hochberg, as the audit's drift check).
* ``realized_accuracy``: each model's accuracy on the window's labelled rows.

Intervals: a paired bootstrap over the window's rows (the same resampled rows for both
models; with a shadow teacher, its rows). Resampling rows is one multinomial draw over the
distinct value patterns of the rows per replicate (exact; fast when the values repeat, as 0/1
correctness and an isotonic calibration's steps do). The calibration is held fixed (the
interval is the window's sampling uncertainty, not the reference's): the reference's own
uncertainty, and a reference that overlaps the production rows, are not covered.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from audit.results import Estimate, Measurement
from audit.stats import bootstrap_tables, clopper_pearson, percentile_interval

__all__ = ["Calibration", "Reference", "fit_calibration", "paired_means", "measure_window",
           "realized", "WHO"]

WHO = ("teacher", "student")
DRIFT_BINS, DRIFT_FDR = 10, 0.05


@dataclass(frozen=True)
class Calibration:
    """An isotonic map from confidence (the predicted class's probability) to the probability
    that the prediction is right: ``y`` at the steps ``x`` (linear between, clipped outside)."""

    x: tuple[float, ...]
    y: tuple[float, ...]

    def expected(self, confidence: np.ndarray) -> np.ndarray:
        """Each row's probability of being right."""
        return np.interp(confidence, self.x, self.y)

    def to_dict(self) -> dict[str, Any]:
        return {"x": list(self.x), "y": list(self.y)}


def fit_calibration(confidence: np.ndarray, correct: np.ndarray) -> Calibration:
    """Isotonic regression of ``correct`` (0/1) on ``confidence`` (scikit-learn's, increasing,
    clipped to [0, 1]), kept as its step points."""
    from sklearn.isotonic import IsotonicRegression

    iso = IsotonicRegression(y_min=0.0, y_max=1.0, increasing=True, out_of_bounds="clip")
    iso.fit(np.asarray(confidence, float), np.asarray(correct, float))
    return Calibration(tuple(float(v) for v in iso.X_thresholds_),
                       tuple(float(v) for v in iso.y_thresholds_))


@dataclass(frozen=True)
class Reference:
    """What each window is compared with: per model its calibration and reference accuracy,
    the student's predicted-class shares, and the reference features."""

    calibration: Mapping[str, Calibration]
    accuracy: Mapping[str, float]
    shares: np.ndarray  # the student's predicted-class counts on the reference
    features: pd.DataFrame
    n: int
    columns: tuple[str, ...] = field(default_factory=tuple)
    pos: int | None = None  # the positive class of a binary problem (group parity needs it)
    sensitive: tuple[str, ...] = ()  # the suite's data.sensitive columns (unbinned)


def paired_means(values: Mapping[str, np.ndarray], n_boot: int, seed: int
                 ) -> dict[str, np.ndarray]:
    """Bootstrap replicates of the mean of each row-aligned array, the same resampled rows for
    all: a multinomial draw over the distinct rows of the stacked values per replicate."""
    names = list(values)
    stacked = np.column_stack([np.asarray(values[k], float) for k in names])
    patterns, inverse = np.unique(stacked, axis=0, return_inverse=True)
    counts = np.bincount(inverse.reshape(-1), minlength=len(patterns))
    draws = bootstrap_tables(counts, n_boot, seed).astype(float)  # (n_boot, patterns)
    n = float(counts.sum())
    return {k: draws @ patterns[:, i] / n for i, k in enumerate(names)}


def _estimate(value: float, reps: np.ndarray | None, confidence: float,
              bounds: tuple[float, float] | None = None) -> Estimate:
    ci = None if reps is None else percentile_interval(reps, confidence)
    if ci is None:
        return Estimate(float(value))
    lo, hi = ci.low, ci.high
    if bounds is not None:
        lo, hi = max(lo, bounds[0]), min(hi, bounds[1])
    return Estimate(float(value), (lo, hi))


def _paired(name: str, direction: str, t: float, s: float, rep_t: np.ndarray, rep_s: np.ndarray,
            confidence: float, *, n: int, method: str, bounds: tuple[float, float],
            extra: dict[str, Any] | None = None) -> Measurement:
    sign = 1.0 if direction == "higher" else -1.0
    reg = sign * (t - s)
    return Measurement(name, direction, _estimate(s, rep_s, confidence, bounds),
                       teacher=_estimate(t, rep_t, confidence, bounds),
                       regression=_estimate(reg, sign * (rep_t - rep_s), confidence),
                       method=method, n=n, family="monitor", extra=dict(extra or {}),
                       evidence={"confidence": confidence, "unit": "window rows"})


def _single(name: str, value: float, reps: np.ndarray | None, confidence: float, *, n: int,
            method: str, direction: str = "lower", breakdown: Any = (),
            bounds: tuple[float, float] | None = None) -> Measurement:
    return Measurement(name, direction, _estimate(value, reps, confidence, bounds), method=method,
                       n=n, family="monitor", breakdown=tuple(breakdown),
                       evidence={"confidence": confidence, "unit": "window rows"})


def measure_window(ref: Reference, P: Mapping[str, np.ndarray], shadow: np.ndarray,
                   features: pd.DataFrame, *, confidence: float, n_boot: int, seed: int,
                   groups: pd.DataFrame | None = None) -> list[Measurement]:
    """Every window metric but the realized ones: ``P[who]`` each model's probabilities (the
    teacher's on the ``shadow`` rows only, a boolean row mask; all rows without a shadow);
    ``groups`` the window's logged sensitive columns, row-aligned (group parity)."""
    from audit.checks.dataset import drift_table, psi

    P_s, P_t = P["student"], P["teacher"]
    n, m = len(P_s), int(shadow.sum())
    out: list[Measurement] = []
    pred_s, pred_t = P_s.argmax(axis=1), P_t.argmax(axis=1)
    on = (f"the {m} of {n} window rows the teacher ran on (shadow)" if m < n else
          f"the window's {n} rows")
    if m:
        expected = {"student": ref.calibration["student"].expected(P_s[shadow].max(axis=1)),
                    "teacher": ref.calibration["teacher"].expected(P_t.max(axis=1))}
        agree = (pred_s[shadow] == pred_t).astype(float)
        reps = paired_means({"a": agree, "t": expected["teacher"], "s": expected["student"]},
                            n_boot, seed)
        how = f"paired bootstrap over {on}, {n_boot} replicates"
        out.append(_single("agreement", float(agree.mean()), reps["a"], confidence, n=m,
                           method=f"top-1 agreement of the student with the teacher; {how}",
                           direction="higher", bounds=(0.0, 1.0)))
        est = {w: float(e.mean()) for w, e in expected.items()}
        cbpe = ("CBPE: the mean over rows of each model's confidence in its predicted class, "
                "mapped to accuracy by an isotonic calibration fitted on the labelled reference")
        out.append(_paired("estimated_accuracy", "higher", est["teacher"], est["student"],
                           reps["t"], reps["s"], confidence, n=m, method=f"{cbpe}; {how}",
                           bounds=(0.0, 1.0)))
        acc = ref.accuracy
        out.append(_paired("estimated_accuracy_drop", "lower", acc["teacher"] - est["teacher"],
                           acc["student"] - est["student"], acc["teacher"] - reps["t"],
                           acc["student"] - reps["s"], confidence, n=m,
                           method=f"reference accuracy (teacher {acc['teacher']:.3f}, student "
                                  f"{acc['student']:.3f}, on {ref.n} labelled rows) minus the "
                                  f"{cbpe}; {how}", bounds=(-1.0, 1.0)))
    if groups is not None and len(groups.columns):
        parity = _parity(ref, pred_s[shadow], pred_t, groups[shadow].reset_index(drop=True),
                         confidence, n_boot, seed)
        if parity is not None:
            out.append(parity)
    counts = np.bincount(pred_s, minlength=len(ref.shares))
    out.append(_single("prediction_drift", psi(ref.shares, counts), None, confidence, n=n,
                       method=f"PSI of the student's predicted-class shares on {n} rows against "
                              f"its shares on the {ref.n} reference rows"))
    columns = [c for c in ref.columns if c in features.columns]
    rows = drift_table(ref.features, features, columns, DRIFT_BINS, DRIFT_FDR)
    drifted = [r["column"] for r in rows if r["drifted"]]
    how = (f"{len(columns)} feature columns against the {ref.n} reference rows: PSI over "
           f"{DRIFT_BINS} reference quantile bins (categories), KS / chi-squared with "
           f"Benjamini-Hochberg at {DRIFT_FDR:g}; drifted = q < {DRIFT_FDR:g} and PSI >= 0.1")
    out.append(_single("drifted_columns", float(len(drifted)), None, confidence, n=n,
                       method=how, breakdown=rows))
    out.append(_single("max_psi", max((r["psi"] for r in rows), default=0.0), None, confidence,
                       n=n, method=how))
    return out


MIN_GROUP = 30  # rows a group needs in a window to count in its parity gap


def _parity(ref: Reference, pred_s: np.ndarray, pred_t: np.ndarray, frame: pd.DataFrame,
            confidence: float, n_boot: int, seed: int) -> Measurement | None:
    """Demographic parity per window (label-free): for each sensitive column the batches log,
    the largest difference between its groups' shares predicted positive; the measurement is
    the column where the student's gap is widest, paired with the teacher's gap there."""
    present = [c for c in ref.sensitive if c in frame.columns]
    if ref.pos is None or not present or not len(pred_s):
        return None
    best: tuple[float, str, list[Any]] | None = None
    rows: list[dict[str, Any]] = []
    for col in present:
        values = frame[col].astype(str).where(frame[col].notna(), "(missing)")
        groups = [g for g, n in values.value_counts().items() if n >= MIN_GROUP]
        if len(groups) < 2:
            continue
        rate = {w: {g: float(np.mean(p[(values == g).to_numpy()] == ref.pos)) for g in groups}
                for w, p in (("teacher", pred_t), ("student", pred_s))}
        gap = {w: max(r.values()) - min(r.values()) for w, r in rate.items()}
        rows.append({"kind": "parity", "column": col, "groups": len(groups),
                     "teacher": gap["teacher"], "student": gap["student"]})
        if best is None or gap["student"] > best[0]:
            best = (gap["student"], col, groups)
    if best is None:
        return None
    _, col, groups = best
    values = frame[col].astype(str).where(frame[col].notna(), "(missing)").to_numpy()
    arrays: dict[str, np.ndarray] = {}
    for i, g in enumerate(groups):
        member = (values == g).astype(float)
        arrays[f"n{i}"] = member
        arrays[f"t{i}"] = member * (pred_t == ref.pos)
        arrays[f"s{i}"] = member * (pred_s == ref.pos)
    reps = paired_means(arrays, n_boot, seed)
    with np.errstate(invalid="ignore", divide="ignore"):
        rt = np.column_stack([reps[f"t{i}"] / reps[f"n{i}"] for i in range(len(groups))])
        rs = np.column_stack([reps[f"s{i}"] / reps[f"n{i}"] for i in range(len(groups))])
    point = {w: next(r[w] for r in rows if r["column"] == col) for w in ("teacher", "student")}
    m = _paired("demographic_parity_difference", "lower", point["teacher"], point["student"],
                np.nanmax(rt, axis=1) - np.nanmin(rt, axis=1),
                np.nanmax(rs, axis=1) - np.nanmin(rs, axis=1), confidence, n=len(pred_s),
                method=f"the largest difference in the share predicted positive between the "
                       f"groups (of {MIN_GROUP}+ rows) of {col}, the sensitive column where the "
                       f"student's gap is widest; paired bootstrap over the rows, {n_boot} "
                       "replicates", bounds=(0.0, 1.0))
    return dataclasses.replace(m, breakdown=tuple(rows), params={"by": col})


def realized(y: np.ndarray, pred: Mapping[str, np.ndarray], known: Mapping[str, np.ndarray],
             confidence: float, n_boot: int, seed: int) -> Measurement | None:
    """Each model's accuracy on the rows whose label ``y`` is known (``known[who]``: rows the
    model has a prediction for and a label): a paired bootstrap on the rows where both are
    known (a shadow teacher's rows), or the student's alone with an exact Clopper-Pearson
    interval when the teacher has none."""
    both = known["teacher"] & known["student"]
    if not known["student"].any():
        return None
    hits = {w: (pred[w] == y) for w in WHO}
    if both.any():  # paired on the rows where both are known (a shadow teacher: its rows)
        reps = paired_means({"t": hits["teacher"][both], "s": hits["student"][both]}, n_boot, seed)
        return _paired("realized_accuracy", "higher", float(hits["teacher"][both].mean()),
                       float(hits["student"][both].mean()), reps["t"], reps["s"], confidence,
                       n=int(both.sum()), method=f"accuracy on the window's {int(both.sum())} "
                                                 f"labelled rows; paired bootstrap, {n_boot} "
                                                 "replicates", bounds=(0.0, 1.0))
    s = hits["student"][known["student"]]
    ci = clopper_pearson(int(s.sum()), len(s), confidence)
    teacher = None
    if known["teacher"].any():
        t = hits["teacher"][known["teacher"]]
        tci = clopper_pearson(int(t.sum()), len(t), confidence)
        teacher = Estimate(float(t.mean()), None if tci is None else (tci.low, tci.high))
    return Measurement("realized_accuracy", "higher",
                       Estimate(float(s.mean()), None if ci is None else (ci.low, ci.high)),
                       teacher=teacher, method=f"accuracy on the window's {len(s)} labelled rows "
                                               "(the teacher on its labelled shadow rows); "
                                               "Clopper-Pearson intervals",
                       n=len(s), family="monitor",
                       evidence={"confidence": confidence, "unit": "labelled window rows"})
