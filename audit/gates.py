"""Judging a measurement against a gate: pure functions from data to verdicts.

A bound is judged on the confidence interval, not the point estimate:

* **pass** when the whole interval lies on the allowed side of the threshold,
* **fail** when the whole interval lies beyond it,
* **inconclusive** when the interval straddles it (the suite's ``settings.inconclusive`` says
  whether that blocks), or when the metric is undefined.

Directions come from the metric registry: ``regression`` is already oriented so that a positive
value means the student is worse, so ``max_regression`` reads the same for every metric.
"""

from __future__ import annotations

import math
from typing import Any

from audit.results import Estimate, GateResult, Measurement
from audit.spec import GateSpec

__all__ = ["evaluate_gate", "check_status", "describe_bound", "bound_problem"]


def describe_bound(kind: str, threshold: float, metric: str, direction: str) -> str:
    """Words for one bound, generated from the gate data."""
    if kind == "min":
        return f"student {metric} >= {threshold:g}"
    if kind == "max":
        return f"student {metric} <= {threshold:g}"
    worse = "teacher - student" if direction == "higher" else "student - teacher"
    if kind == "max_regression":
        return f"{metric} regression ({worse}) <= {threshold:g}"
    return f"{metric} regression ({worse}) <= {threshold:.4g} x |teacher {metric}|"


def _judge(observed: Estimate | None, threshold: float, upper: bool) -> tuple[str, str]:
    """Judge ``observed <= threshold`` (upper) or ``observed >= threshold`` (lower bound)."""
    if observed is None or not math.isfinite(observed.value):
        return "inconclusive", "the metric is undefined on this data"
    low, high = observed.ci if observed.ci is not None else (observed.value, observed.value)
    if not (math.isfinite(low) and math.isfinite(high)):
        low = high = observed.value
    reason = "" if observed.ci is not None else "no interval available; judged on the point estimate"
    if upper:
        if high <= threshold:
            return "pass", reason
        if low > threshold:
            return "fail", reason
    else:
        if low >= threshold:
            return "pass", reason
        if high < threshold:
            return "fail", reason
    return "inconclusive", reason or "the interval straddles the threshold"


def evaluate_gate(gate: GateSpec, m: Measurement) -> tuple[GateResult, ...]:
    """Judge every bound ``gate`` sets against ``m``."""
    out = []
    for kind, threshold in gate.bounds():
        if kind in ("min", "max"):
            observed = m.student
        elif kind == "max_regression":
            observed = m.regression
        else:
            observed = m.relative_regression
        if observed is None and kind not in ("min", "max"):
            status = "inconclusive"
            reason = m.extra.get("no_regression") or f"{m.metric} has no teacher value to regress from"
        else:
            status, reason = _judge(observed, threshold, upper=(kind != "min"))
        description = describe_bound(kind, threshold, m.metric, m.direction)
        if m.scope:
            description += f" ({m.scope})"
        out.append(GateResult(kind=kind, threshold=threshold, status=status, severity=gate.severity,
                              description=description, observed=observed, reason=reason,
                              scope=m.scope))
    return tuple(out)


def check_status(gates: tuple[GateResult, ...], inconclusive: str = "fail") -> str:
    """A check's status from its judged gates.

    A failing blocking gate fails the check; an inconclusive blocking gate makes it
    ``inconclusive`` (which blocks when ``inconclusive == "fail"``, else only warns); anything
    failing or inconclusive under ``severity: warn`` makes it ``warn``. No gate: ``info``.
    """
    if not gates:
        return "info"
    blocking = [g for g in gates if g.severity == "block"]
    if any(g.status == "fail" for g in blocking):
        return "fail"
    if any(g.status == "inconclusive" for g in blocking):
        return "inconclusive" if inconclusive == "fail" else "warn"
    if any(g.status != "pass" for g in gates):
        return "warn"
    return "pass"


def bound_problem(metric: Any, vals: dict[str, Any]) -> tuple[str | None, str] | None:
    """The first reason a gate's bounds make no sense for ``metric``, as (the offending key, or
    None for the whole gate; the message), or None. A bound that can never be met blocks every
    student; one that can never fail passes every student, which is worse: both are refused
    when the suite is read."""
    bounds = [k for k in ("min", "max", "max_regression", "max_relative_regression")
              if vals.get(k) is not None]
    if not bounds:
        return None, ("sets no bound; give at least one of min, max, max_regression, "
                      "max_relative_regression")
    lo, hi = metric.bounds
    for k in ("min", "max"):
        v = vals.get(k)
        if v is None:
            continue
        span = f"{metric.name} lies in [{lo:g}, {hi:g}]"
        if (k == "min" and v > hi) or (k == "max" and v < lo):
            fix = (f"; bounds are fractions, write {v / 100:g} for {v:g}%"
                   if hi == 1 and 2 <= v <= 100 else f"; use a value in [{lo:g}, {hi:g}]")
            return k, f"{span}; this bound can never be met{fix}"
        if (k == "min" and v <= lo) or (k == "max" and v >= hi):
            return k, f"{span}; this bound is always met (it can never fail); remove it"
    if vals.get("min") is not None and vals.get("max") is not None and vals["min"] > vals["max"]:
        return "min", f"is above max={vals['max']:g}; no value can pass (swap them?)"
    for k in ("max_regression", "max_relative_regression"):
        v = vals.get(k)
        if v is None:
            continue
        if metric.pairwise:
            return k, (f"{metric.name} compares the student with the teacher, so it has no "
                       "regression; use min or max")
        if v < 0:
            return k, ("must be >= 0: it bounds how much worse than the teacher the student may "
                       "be, and 0 allows no loss at all (requiring a gain over the teacher is not "
                       "supported)")
        if k == "max_regression" and v >= hi - lo:
            return k, (f"{metric.name} lies in [{lo:g}, {hi:g}], so the student can be at most "
                       f"{hi - lo:g} worse than the teacher; this bound is always met (it can "
                       "never fail); use a smaller value")
        if k == "max_relative_regression" and metric.direction == "higher" and lo >= 0 and v >= 1:
            return k, (f"{metric.name} is at least {lo:g}, so the student can lose at most all "
                       "(1) of the teacher's value; this bound is always met (it can never "
                       "fail); use a fraction below 1")
    return None
