"""Measure one registered metric on cached predictions, with intervals.

Pure: reads encoded labels and the two models' probabilities (a :class:`MetricInput`) and the
shared bootstrap replicates of the joint count table (a :class:`Resampler`), and returns a
:class:`~audit.results.Measurement`. No I/O, no model calls.
"""

from __future__ import annotations

from collections.abc import Mapping
from functools import cached_property
from typing import Any

import numpy as np

from audit.checks.registry import Metric, MetricInput
from audit.results import Estimate, Measurement
from audit.stats import (
    Interval,
    bootstrap_tables,
    joint_table,
    normal_interval,
    percentile_interval,
)

__all__ = ["Resampler", "measure", "measure_all", "paired_measurement"]


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


def measure_all(metric: Metric, params: Mapping[str, Any], inputs: MetricInput,
                resampler: Resampler, confidence: float) -> tuple[Measurement, ...]:
    """Every measurement of ``metric`` (families with their own engine may return several,
    e.g. one per slicing of the sensitive columns)."""
    if metric.custom is not None:
        return tuple(metric.custom(metric, params, inputs, resampler, confidence))
    return (measure(metric, params, inputs, resampler, confidence),)


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
        if metric.pairwise:
            assert metric.joint is not None
            value = float(metric.joint(J, k))
            student = _est(value, percentile_interval(metric.joint(R, k), confidence), metric.bounds)
            return Measurement(metric.name, metric.direction, student, method=method,
                               n=inputs.n, params=params, notes=tuple(notes), family=metric.family)
        assert metric.counts is not None
        fn = metric.counts
        return paired_measurement(
            metric, float(fn(J.sum(axis=2), k, pos, params)), float(fn(J.sum(axis=1), k, pos, params)),
            fn(R.sum(axis=3), k, pos, params), fn(R.sum(axis=2), k, pos, params), confidence,
            method=method, n=inputs.n, params=params)
    else:
        method = metric.interval
        if metric.pairwise:
            assert metric.pair_influence is not None
            value, infl = metric.pair_influence(inputs.y, inputs.p_teacher, inputs.p_student)
            student = _est(value, normal_interval(value, infl, confidence), metric.bounds)
            return Measurement(metric.name, metric.direction, student, method=method,
                               n=inputs.n, params=params, notes=tuple(notes), family=metric.family)
        assert metric.influence is not None
        t, it = metric.influence(inputs.y, inputs.p_teacher, pos, params)
        s, is_ = metric.influence(inputs.y, inputs.p_student, pos, params)
        teacher = _est(t, normal_interval(t, it, confidence), metric.bounds)
        student = _est(s, normal_interval(s, is_, confidence), metric.bounds)
        r = metric.sign * (t - s)
        reg = _est(r, normal_interval(r, metric.sign * (it - is_), confidence))
    for who, est in (("teacher", teacher), ("student", student)):
        if not np.isfinite(est.value):
            notes.append(f"{metric.name} is undefined for the {who} on this data "
                         "(e.g. a class with no rows)")
    return Measurement(metric.name, metric.direction, student, teacher=teacher, regression=reg,
                       relative_regression=_relative(reg, teacher), method=method, n=inputs.n,
                       family=metric.family,
                       params=params, notes=tuple(notes))
