"""Agreement by teacher confidence: does the student follow the teacher where the teacher is sure?

A distilled student that agrees with its teacher 95% of the time may still overrule it on the
rows the teacher is most confident about, which is where a user trusts the model most. This
family bins the eval rows by the teacher's confidence (its top class probability, ``bins``
equal-width bins on [0, 1]) and measures, per bin, the share of rows where the student's top
class differs from the teacher's.

``disagreement_by_confidence`` is that share in the most confident bin that has rows (lower is
better; a gate such as ``max: 0.05`` bounds it). Its interval is the union of a paired
bootstrap percentile interval (the rows are resampled as a whole: a multinomial over the
(bin, disagree) cells, which is the same distribution) and the exact Clopper-Pearson interval
of that bin's proportion; its evidence counts that bin's rows, so the gates' rule on the rows a
PASS needs applies to them. Every bin's rate, with its interval, is in the breakdown (rows of
kind ``confidence_bin``), drawn as bars and listed as a table in the report.

Pure: reads the two models' probabilities only.

>>> import numpy as np
>>> t = np.array([[0.95, 0.05], [0.9, 0.1], [0.55, 0.45]])
>>> s = np.array([[0.2, 0.8], [0.7, 0.3], [0.3, 0.7]])
>>> disagreement_table(t, s, 5)[-1].tolist()  # the [0.8, 1.0] bin: 1 of 2 rows disagree
[1, 2]
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from audit.checks.registry import Family, Metric, MetricInput, Param, register, register_family
from audit.results import Estimate, Figure, Measurement, Table
from audit.stats import clopper_pearson, percentile_interval, union

__all__ = ["DEFAULT_BINS", "disagreement_table"]

DEFAULT_BINS = 5
NAME = "disagreement_by_confidence"


def disagreement_table(p_teacher: np.ndarray, p_student: np.ndarray, bins: int) -> np.ndarray:
    """``T[b] = (rows where the two models' top classes differ, rows)`` per teacher-confidence
    bin ``b`` (``bins`` equal-width bins on [0, 1], the last one closed)."""
    conf = p_teacher.max(axis=1)
    which = np.minimum((conf * bins).astype(int), bins - 1)
    differ = p_teacher.argmax(axis=1) != p_student.argmax(axis=1)
    out = np.zeros((bins, 2), dtype=np.int64)
    np.add.at(out, (which, 0), differ.astype(np.int64))
    np.add.at(out, (which, 1), 1)
    return out


def _measure(metric: Metric, params: Mapping[str, Any], inputs: MetricInput, resampler: Any,
             confidence: float) -> tuple[Measurement, ...]:
    bins = int(params.get("bins", DEFAULT_BINS))
    T = disagreement_table(inputs.p_teacher, inputs.p_student, bins)
    conf = inputs.p_teacher.max(axis=1)
    which = np.minimum((conf * bins).astype(int), bins - 1)
    n = int(T[:, 1].sum())
    # the paired bootstrap: resampling rows is a multinomial over the (bin, disagree) cells
    cells = np.stack([T[:, 0], T[:, 1] - T[:, 0]], axis=1).ravel()
    rng = np.random.default_rng(resampler.seed)
    reps = rng.multinomial(n, cells / max(n, 1), size=resampler.n_boot).reshape(-1, bins, 2)
    rep_differ, rep_rows = reps[..., 0], reps.sum(axis=2)
    with np.errstate(invalid="ignore", divide="ignore"):
        rep_rate = rep_differ / rep_rows  # NaN where a replicate has no row in the bin
    rows: list[dict[str, Any]] = []
    estimates: list[Estimate] = []
    for b in range(bins):
        differ, count = int(T[b, 0]), int(T[b, 1])
        if count == 0:
            estimates.append(Estimate(float("nan")))
            rows.append({"kind": "confidence_bin", "bin": b, "lower": b / bins,
                         "upper": (b + 1) / bins, "n": 0, "mean_confidence": None,
                         "disagreement": None, "disagreement_ci": None})
            continue
        boot = percentile_interval(rep_rate[:, b][np.isfinite(rep_rate[:, b])], confidence)
        both = union(boot, clopper_pearson(differ, count, confidence))
        est = Estimate(differ / count, None if both is None else (both.low, both.high))
        estimates.append(est)
        rows.append({"kind": "confidence_bin", "bin": b, "lower": b / bins,
                     "upper": (b + 1) / bins, "n": count,
                     "mean_confidence": float(conf[which == b].mean()),
                     "disagreement": est.value,
                     "disagreement_ci": None if est.ci is None else list(est.ci)})
    top = max((b for b in range(bins) if T[b, 1] > 0), default=None)
    notes: tuple[str, ...] = ()
    if top is None:
        value, trials = Estimate(float("nan")), 0
        notes = ("no eval rows: disagreement_by_confidence is undefined",)
    else:
        value, trials = estimates[top], int(T[top, 1])
        if top < bins - 1:
            notes = (f"no row has teacher confidence >= {(top + 1) / bins:g}; the most confident "
                     f"bin with rows is [{top / bins:g}, {(top + 1) / bins:g})",)
    method = (f"paired bootstrap, {resampler.n_boot} multinomial replicates of the rows, joined "
              "with exact intervals (Clopper-Pearson)")
    evidence = {"confidence": confidence, "unit": "eval rows", "trials": trials,
                "trials_unit": "rows in the most confident bin",
                "exact": "Clopper-Pearson"}
    return (Measurement(NAME, metric.direction, value, method=method, n=n,
                        params={"bins": bins}, notes=notes, breakdown=tuple(rows),
                        family=metric.family, evidence=evidence),)


register(Metric(NAME, "lower", "confidence", True, (0.0, 1.0),
                "Share of rows where the student's top class differs from the teacher's, in the "
                "most confident teacher-confidence bin with rows (every bin in the breakdown). "
                "Interval: paired bootstrap joined with Clopper-Pearson.",
                custom=_measure, identical=0.0,
                params={"bins": Param("int", "Number of equal-width teacher-confidence bins on "
                                             "[0, 1].", default=DEFAULT_BINS, minimum=2)}))


# -- report section ----------------------------------------------------------------------
def _bin_rows(m: Measurement) -> list[dict[str, Any]]:
    return [r for r in m.breakdown if r.get("kind") == "confidence_bin" and r.get("n")]


def _label(r: dict[str, Any]) -> str:
    close = "]" if r["upper"] >= 1 else ")"
    return f"confidence [{r['lower']:.2f}, {r['upper']:.2f}{close}"


def _figures(m: Measurement) -> tuple[Figure, ...]:
    rows = _bin_rows(m)
    if not rows:
        return ()
    bars = tuple({"group": _label(r), "n": r["n"], "teacher": {},
                  "student": {"disagreement": r["disagreement"],
                              "disagreement_ci": r["disagreement_ci"]}} for r in rows)
    return (Figure("bars", "Student-teacher disagreement by teacher confidence", bars,
                   value="disagreement"),)


def _tables(m: Measurement) -> tuple[Table, ...]:
    rows = _bin_rows(m)
    if not rows:
        return ()
    cells = tuple((_label(r), r["n"], r["mean_confidence"],
                   Estimate(r["disagreement"], None if r["disagreement_ci"] is None
                            else (r["disagreement_ci"][0], r["disagreement_ci"][1])))
                  for r in rows)
    return (Table("Disagreement by teacher confidence",
                  ("teacher confidence", "rows", "mean confidence", "disagreement"), cells,
                  open=True),)


FAMILY = register_family(Family("confidence", "Agreement by teacher confidence", order=25,
                                figures=_figures, tables=_tables))
