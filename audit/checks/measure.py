"""Measure one registered metric on cached predictions, with intervals.

Pure: reads encoded labels and the two models' probabilities (a :class:`MetricInput`) and the
shared bootstrap replicates of the joint count table (a :class:`Resampler`), and returns a
:class:`~audit.results.Measurement`. No I/O, no model calls.

Proportions get exact intervals too. A metric that is a share of rows (``accuracy``,
``agreement``, the flip rates, ``recall`` and ``precision`` with ``average: binary`` or
``micro``, and ``f1`` micro, which is accuracy) reports the union of its bootstrap interval and
a closed-form one (:mod:`audit.stats`): Clopper-Pearson for each model's value, Tango's score
interval for the paired difference when both models' values are shares of the same rows
(accuracy, recall: ``(b - c) / n`` with ``b`` rows only the teacher gets right and ``c`` only
the student). Binary precision divides by each model's own predicted positives, so its
regression keeps the bootstrap interval alone. Every measurement also carries its
``evidence`` (what ``n`` counts, the trials and discordant rows), which the gates' minimum-
evidence rule reads (:mod:`audit.gates`).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from functools import cached_property
from typing import Any

import numpy as np

from audit.checks.registry import Metric, MetricInput
from audit.results import Estimate, Measurement
from audit.stats import (
    Interval,
    bootstrap_tables,
    clopper_pearson,
    joint_table,
    normal_interval_se,
    percentile_interval,
    tango_interval,
    union,
)

__all__ = ["Resampler", "measure", "measure_all", "paired_measurement", "pair_measurement",
           "proportion_counts", "EXACT_METHOD", "UNITS"]

EXACT_METHOD = "joined with exact intervals (Clopper-Pearson; Tango for the paired difference)"
# what a measurement's n counts, by family (eval rows unless named here)
UNITS = {"robustness": "attacked rows", "privacy": "scored rows (members and non-members)",
         "efficiency": "timed runs",
         "corruption": "sampled eval rows (corrupted or edited for both models)",
         "attribute": "scored rows (the attack's held-out half)",
         "extraction": "eval rows the thieves did not query",
         "backdoor": "triggered eval rows", "tokens": "documents",
         "stereotype": "minimal pairs"}
# families whose metrics are shares of their n rows although their engine is their own: the
# paired difference is of two proportions on the same rows (no exact interval without the rows,
# but the gates' rule on the rows a PASS needs applies)
_CUSTOM_PROPORTIONS = {"robust_accuracy": True, "transfer_accuracy": False,
                       "corruption_accuracy": True, "edit_accuracy": True,
                       "attribute_inference_accuracy": True, "extraction_agreement": True,
                       "extraction_accuracy": True}


class Resampler:
    """Paired bootstrap replicates of the (true, teacher, student) count table, drawn once.

    Every count-based metric of a suite reads the same replicates, so all their intervals and
    regressions come from the same resampled rows.
    """

    def __init__(self, inputs: MetricInput, n_boot: int, seed: int) -> None:
        self.inputs = inputs
        self.n_boot = n_boot
        self.seed = seed
        self._memo: dict[Any, Any] = {}

    def memo(self, key: Any, build: Any) -> Any:
        """Compute an artifact once per suite run (slice tables, binned replicates, ...), so
        checks that read the same artifact do not rebuild it."""
        if key not in self._memo:
            self._memo[key] = build()
        return self._memo[key]

    @cached_property
    def joint(self) -> np.ndarray:
        i = self.inputs
        return joint_table(i.y, i.p_teacher.argmax(axis=1), i.p_student.argmax(axis=1), i.k)

    @cached_property
    def replicates(self) -> np.ndarray:
        return bootstrap_tables(self.joint, self.n_boot, self.seed)


def proportion_counts(name: str, params: Mapping[str, Any], J: np.ndarray, pos: int | None
                      ) -> dict[str, Any] | None:
    """The counts behind a proportion metric, from the joint table ``J[true, teacher, student]``.

    Returns ``None`` for metrics that are not a share of rows. Otherwise a dict with ``unit``
    (what the trials are), and either ``pair`` = (successes, trials) for a pairwise metric, or
    ``teacher`` / ``student`` = (successes, trials) and, when both are shares of the same rows,
    ``paired`` = (b, c, trials): ``b`` rows only the teacher gets right, ``c`` only the student.

    >>> J = joint_table(np.array([0, 1, 1, 1]), np.array([0, 1, 1, 0]), np.array([0, 1, 0, 1]), 2)
    >>> proportion_counts("accuracy", {}, J, 1)["paired"]
    (1, 1, 4)
    """
    k = J.shape[0]
    idx = np.arange(k)
    t_right = idx[:, None, None] == idx[None, :, None]
    s_right = idx[:, None, None] == idx[None, None, :]
    n = int(J.sum())
    if name in ("agreement", "negative_flip_rate", "positive_flip_rate"):
        mask = {"agreement": idx[None, :, None] == idx[None, None, :],
                "negative_flip_rate": t_right & ~s_right,
                "positive_flip_rate": ~t_right & s_right}[name]
        return {"unit": "eval rows", "pair": (int((J * mask).sum()), n)}
    average = params.get("average") or ("binary" if k == 2 else "macro")
    if name == "accuracy" or (name in ("precision", "recall", "f1") and average == "micro"):
        rows, unit = J, "eval rows"
    elif name == "recall" and average == "binary" and pos is not None:
        rows, unit = J[pos:pos + 1], "rows of the positive class"
        t_right, s_right = t_right[pos:pos + 1], s_right[pos:pos + 1]
    elif name == "precision" and average == "binary" and pos is not None:
        return {"unit": "rows the student predicts positive",
                "teacher": (int(J[pos, pos, :].sum()), int(J[:, pos, :].sum())),
                "student": (int(J[pos, :, pos].sum()), int(J[:, :, pos].sum()))}
    else:
        return None
    trials = int(rows.sum())
    b = int((rows * (t_right & ~s_right)).sum())
    c = int((rows * (~t_right & s_right)).sum())
    return {"unit": unit, "teacher": (int((rows * t_right).sum()), trials),
            "student": (int((rows * s_right).sum()), trials), "paired": (b, c, trials)}


def _exact(counts: tuple[int, int], confidence: float) -> Interval | None:
    return clopper_pearson(counts[0], counts[1], confidence)


def _joined(est: Estimate, exact: Interval | None) -> Estimate:
    """``est`` with its interval widened to hold ``exact`` (the union of the two)."""
    if exact is None or not np.isfinite(est.value):
        return est
    boot = None if est.ci is None else Interval(*est.ci)
    both = union(boot, exact)
    assert both is not None
    return Estimate(est.value, (both.low, both.high))


def _evidence(m: Measurement, confidence: float, counts: dict[str, Any] | None = None) -> dict[str, Any]:
    """The evidence block of ``m``: confidence and unit; trials and discordant rows for a
    proportion."""
    ev: dict[str, Any] = {"confidence": confidence, "unit": UNITS.get(m.family, "eval rows")}
    if counts is not None:
        ev["exact"] = "Clopper-Pearson" + ("; Tango score (paired difference)"
                                           if "paired" in counts else "")
        if "pair" in counts:
            ev["trials"] = counts["pair"][1]
        else:
            ev["trials"] = counts["student"][1]
        if "paired" in counts:
            b, c, trials = counts["paired"]
            ev.update(paired=trials, discordant=b + c)
        if counts["unit"] != ev["unit"]:
            ev["trials_unit"] = counts["unit"]
    elif m.metric in _CUSTOM_PROPORTIONS:
        ev["trials"] = m.n
        if _CUSTOM_PROPORTIONS[m.metric] and m.regression is not None:
            ev["paired"] = m.n
    return ev


def _est(value: float, ci: Interval | None, bounds: tuple[float, float] | None = None) -> Estimate:
    if ci is None:
        return Estimate(float(value))
    low, high = ci.low, ci.high
    if bounds is not None:  # a normal interval may cross the metric's range; clip it
        low, high = max(low, bounds[0]), min(high, bounds[1])
    return Estimate(float(value), (low, high))


def _relative(reg: Estimate, teacher: Estimate) -> Estimate:
    denom = abs(teacher.value)
    if reg.value == 0 and reg.ci in (None, (0.0, 0.0)):
        return Estimate(0.0, reg.ci)  # no difference at all, whatever the teacher's value
    if not np.isfinite(denom) or denom == 0:
        return Estimate(float("nan"))  # relative to a teacher value of 0: undefined
    ci = None if reg.ci is None else (reg.ci[0] / denom, reg.ci[1] / denom)
    return Estimate(reg.value / denom, ci)


def paired_measurement(metric: Metric, teacher: float, student: float, rep_teacher: np.ndarray,
                       rep_student: np.ndarray, confidence: float, *, method: str, n: int,
                       params: Mapping[str, Any], breakdown: Any = (), extra: Any = None,
                       notes: tuple[str, ...] = ()) -> Measurement:
    """A teacher-vs-student measurement from point values and paired bootstrap replicates.

    ``rep_teacher[i]`` and ``rep_student[i]`` must come from the same resampled rows; the
    regression's interval is the percentile interval of their oriented differences.
    """
    t = _est(teacher, percentile_interval(rep_teacher, confidence), metric.bounds)
    s = _est(student, percentile_interval(rep_student, confidence), metric.bounds)
    reg = _est(metric.sign * (teacher - student),
               percentile_interval(metric.sign * (rep_teacher - rep_student), confidence))
    all_notes = list(notes)
    for who, est in (("teacher", t), ("student", s)):
        if not np.isfinite(est.value) and not notes:  # the engine's notes already say why
            all_notes.append(f"{metric.name} is undefined for the {who} on this data "
                             "(e.g. a class with no rows)")
    return Measurement(metric.name, metric.direction, s, teacher=t, regression=reg,
                       relative_regression=_relative(reg, t), method=method, n=n,
                       params=dict(params), notes=tuple(all_notes), breakdown=tuple(breakdown),
                       extra=dict(extra or {}), family=metric.family)


def pair_measurement(metric: Metric, value: float, replicates: np.ndarray, confidence: float, *,
                     method: str, n: int, params: Mapping[str, Any], breakdown: Any = (),
                     extra: Any = None, notes: tuple[str, ...] = ()) -> Measurement:
    """A pairwise (student-to-teacher) measurement from its point value and bootstrap
    replicates: one value, no regression."""
    est = _est(value, percentile_interval(replicates, confidence), metric.bounds)
    return Measurement(metric.name, metric.direction, est, method=method, n=n, params=dict(params),
                       notes=tuple(notes), breakdown=tuple(breakdown), extra=dict(extra or {}),
                       family=metric.family)


def measure_all(metric: Metric, params: Mapping[str, Any], inputs: MetricInput,
                resampler: Resampler, confidence: float) -> tuple[Measurement, ...]:
    """Every measurement of ``metric`` (families with their own engine may return several,
    e.g. one per slicing of the sensitive columns)."""
    if metric.custom is not None:
        out = metric.custom(metric, params, inputs, resampler, confidence)
        return tuple(m if m.evidence else dataclasses.replace(m, evidence=_evidence(m, confidence))
                     for m in out)
    return (with_rows(measure(metric, params, inputs, resampler, confidence), inputs.artifacts),)


def with_rows(m: Measurement, artifacts: Mapping[str, Any]) -> Measurement:
    """``m`` with the rows its artifacts show beside the number: examples, the flip table."""
    shown = artifacts.get("examples")
    if shown is not None and shown.rows:  # rows a reviewer wants to see beside the number
        m = dataclasses.replace(m, extra={**m.extra, "examples": [dict(r) for r in shown.rows]})
    flips = artifacts.get("flips")
    if flips is not None:  # the rows where the models disagree, worst first (capped)
        m = dataclasses.replace(m, extra={**m.extra, "flips": {
            "columns": list(flips.columns), "rows": [dict(r) for r in flips.rows],
            "counts": dict(flips.counts), "cap": flips.cap, "left_out": list(flips.left_out)}})
    return m


def measure(metric: Metric, params: Mapping[str, Any], inputs: MetricInput, resampler: Resampler,
            confidence: float) -> Measurement:
    """Measure ``metric`` for teacher and student (or for the pair), with intervals.

    The regression is ``sign * (teacher - student)`` (positive = student worse) with a paired
    interval; the relative regression divides it by ``|teacher value|``.
    """
    notes: list[str] = []
    k, pos = inputs.k, inputs.pos
    params = dict(params)
    if metric.engine == "counts":
        J, R = resampler.joint, resampler.replicates
        method = f"paired bootstrap, {resampler.n_boot} multinomial replicates of the count table"
        counts = proportion_counts(metric.name, params, J, pos)
        if counts is not None:
            method += f", {EXACT_METHOD}"
        if metric.pairwise:
            assert metric.joint is not None
            value = float(metric.joint(J, k))
            student = _est(value, percentile_interval(metric.joint(R, k), confidence), metric.bounds)
            if counts is not None:
                student = _joined(student, _exact(counts["pair"], confidence))
            m = Measurement(metric.name, metric.direction, student, method=method,
                            n=int(J.sum()), params=params, notes=tuple(notes), family=metric.family)
            return dataclasses.replace(m, evidence=_evidence(m, confidence, counts))
        assert metric.counts is not None
        fn = metric.counts
        m = paired_measurement(
            metric, float(fn(J.sum(axis=2), k, pos, params)), float(fn(J.sum(axis=1), k, pos, params)),
            fn(R.sum(axis=3), k, pos, params), fn(R.sum(axis=2), k, pos, params), confidence,
            method=method, n=int(J.sum()), params=params)
        if counts is not None:
            m = _with_exact(m, metric, counts, confidence)
        return dataclasses.replace(m, evidence=_evidence(m, confidence, counts))
    if metric.pairwise:
        assert metric.pair_influence is not None
        value, infl = metric.pair_influence(inputs.y, inputs.p_teacher, inputs.p_student)
        return normal_measurement(metric, params, confidence, n=inputs.n,
                                  student=(value, _se(infl)))
    assert metric.influence is not None
    t, it = metric.influence(inputs.y, inputs.p_teacher, pos, params)
    s, is_ = metric.influence(inputs.y, inputs.p_student, pos, params)
    return normal_measurement(metric, params, confidence, n=inputs.n, teacher=(t, _se(it)),
                              student=(s, _se(is_)),
                              regression=(metric.sign * (t - s), _se(metric.sign * (it - is_))))


def _se(influence: np.ndarray) -> float:
    """The standard error an influence vector gives: ``sqrt(sum(influence**2))``."""
    return float(np.sqrt(np.sum(np.square(influence))))


def normal_measurement(metric: Metric, params: Mapping[str, Any], confidence: float, *, n: int,
                       student: tuple[float, float],
                       teacher: tuple[float, float] | None = None,
                       regression: tuple[float, float] | None = None) -> Measurement:
    """A measurement with normal intervals from ``(value, standard error)`` pairs: the
    student's (or the pair's, for a pairwise metric) and, per model, the teacher's and the
    regression's (already oriented: positive = student worse). The in-memory engine gets the
    errors from influence vectors, the streaming engine from summed moments."""
    method = metric.interval
    params = dict(params)
    notes: list[str] = []
    s_est = _est(student[0], normal_interval_se(*student, confidence), metric.bounds)
    if teacher is None:
        return Measurement(metric.name, metric.direction, s_est, method=method, n=n,
                           params=params, notes=(), family=metric.family)
    assert regression is not None
    t_est = _est(teacher[0], normal_interval_se(*teacher, confidence), metric.bounds)
    reg = _est(regression[0], normal_interval_se(*regression, confidence))
    for who, est in (("teacher", t_est), ("student", s_est)):
        if not np.isfinite(est.value):
            notes.append(f"{metric.name} is undefined for the {who} on this data "
                         "(e.g. a class with no rows)")
    m = Measurement(metric.name, metric.direction, s_est, teacher=t_est, regression=reg,
                    relative_regression=_relative(reg, t_est), method=method, n=n,
                    family=metric.family, params=params, notes=tuple(notes))
    return dataclasses.replace(m, evidence=_evidence(m, confidence))


def _with_exact(m: Measurement, metric: Metric, counts: dict[str, Any],
                confidence: float) -> Measurement:
    """``m`` with each model's interval joined with Clopper-Pearson's, and the regression's with
    Tango's when both values are shares of the same rows."""
    assert m.teacher is not None and m.regression is not None
    teacher = _joined(m.teacher, _exact(counts["teacher"], confidence))
    student = _joined(m.student, _exact(counts["student"], confidence))
    reg = m.regression
    if "paired" in counts and counts["paired"][2] > 0:
        b, c, trials = counts["paired"]
        iv = tango_interval(b, c, trials, confidence)  # of (b - c) / trials = teacher - student
        if iv is not None and metric.sign < 0:
            iv = Interval(-iv.high, -iv.low)
        reg = _joined(reg, iv)
    return dataclasses.replace(m, teacher=teacher, student=student, regression=reg,
                               relative_regression=_relative(reg, teacher))
