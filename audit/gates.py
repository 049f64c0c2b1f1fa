"""Judging a measurement against a gate: pure functions from data to verdicts.

A bound is judged on the confidence interval, not the point estimate:

* **pass** when the whole interval lies on the allowed side of the threshold,
* **fail** when the whole interval lies beyond it,
* **inconclusive** when the interval straddles it (the suite's ``settings.inconclusive`` says
  whether that blocks), or when the metric is undefined.

Directions come from the metric registry: ``regression`` is already oriented so that a positive
value means the student is worse, so ``max_regression`` reads the same for every metric.

Minimum evidence. An interval from a handful of rows is not evidence, so before the interval
is read every gate checks what the measurement rests on (its ``n`` and ``evidence``):

* **a floor on n**, per family: 30 eval rows (performance, fidelity, calibration, fairness,
  slices, drift), 30 attacked rows (robustness), 60 scored rows, 30 members and 30
  non-members (privacy), 5 timed runs (efficiency), 30 documents (token-level fidelity), 30
  minimal pairs (stereotypes). Below it the gate is inconclusive,
  whatever the interval says, and the reason names the rows there are and the rows needed.
  Facts of a table that are not estimates (missing values, duplicates, leakage, class shares,
  constant columns) and the size ratio are exact and have no floor.
* **the rows a PASS needs**, for proportions (accuracy, agreement, flip rates, binary or micro
  recall and precision, robust accuracy): a bound can only pass if a perfect result on that
  many rows would clear it with an exact interval (:func:`audit.stats.rows_to_pass`): every
  row right for ``min``, none for ``max``, and for a regression no discordant row (no row only
  one of the two models gets right), Tango's interval ``z^2 / (n + z^2)``. ``max_regression:
  0.02`` at 95% needs 189 rows, ``min: 0.93`` on agreement 51. On fewer, the gate cannot pass
  (it may still fail on strong evidence, above the floor); when it is inconclusive the reason
  gives the number. For the metrics with exact intervals this only explains what the interval
  already says; for those with a bootstrap interval alone (robust accuracy) it is what keeps
  a [0, 0] interval on 20 rows from passing.
"""

from __future__ import annotations

import math
from dataclasses import replace
from typing import Any

from audit.checks.registry import FAMILIES
from audit.power import (
    POWER,
    UPPER_KINDS,
    rows_for_power,
    rows_for_power_exact,
    spread,
    tightest_bound,
)
from audit.results import Estimate, GateResult, Measurement, Status
from audit.spec import GATE_KINDS, GateSpec
from audit.stats import rows_to_pass

__all__ = ["evaluate_gate", "evaluate_baseline_gate", "check_status", "describe_bound",
           "bound_problem", "evidence_floor", "is_table_fact", "minimum_rows", "MIN_ROWS"]

MIN_ROWS = 30  # eval rows or attacked rows: no gate is judged on fewer
# (floor, what n counts) per family; families not named use MIN_ROWS eval rows
_FLOORS = {"robustness": (MIN_ROWS, "attacked rows"),
           "privacy": (2 * MIN_ROWS, "scored rows (members and non-members)"),
           "efficiency": (5, "timed runs"),
           "tokens": (MIN_ROWS, "documents"), "stereotype": (MIN_ROWS, "minimal pairs")}
_ESTIMATED_DATA = ("max_psi", "drifted_columns")  # the data family's inferences (the rest are facts)


def is_table_fact(metric: str, family: str) -> bool:
    """Whether a data check's metric is an exact fact of the tables (missing values,
    duplicates, leakage, class shares, constant columns): no interval and no floor."""
    return family == "data" and metric not in _ESTIMATED_DATA


def evidence_floor(m: Measurement) -> tuple[int, str] | None:
    """The fewest ``n`` a gate on ``m`` is judged on, and what n counts; ``None`` when ``m`` is
    exact (a fact of the table, a size ratio) or declares no family (built by hand)."""
    if not m.family or is_table_fact(m.metric, m.family):
        return None
    if m.family == "efficiency" and m.n == 0:  # sizes on disk: measured, not sampled
        return None
    floor, unit = _FLOORS.get(m.family, (MIN_ROWS, "eval rows"))
    return floor, str(m.evidence.get("unit") or unit)


def _rows_needed(kind: str, threshold: float, m: Measurement) -> tuple[int, int, str] | None:
    """For a proportion: (rows it has, rows a PASS of this bound needs, what a perfect result
    means), or ``None`` when the bound is not on a proportion's trials."""
    ev = m.evidence
    confidence = float(ev.get("confidence", 0.95))
    if kind in ("min", "max"):
        if "trials" not in ev:
            return None
        have, perfect = int(ev["trials"]), "even with a perfect score"
        bound = threshold
    else:
        if "paired" not in ev:
            return None
        have, perfect = int(ev["paired"]), "even if the two models disagreed on none of them"
        bound = threshold
        if kind == "max_relative_regression":
            if m.teacher is None or not math.isfinite(m.teacher.value) or m.teacher.value == 0:
                return None
            bound = threshold * abs(m.teacher.value)
        kind = "max_regression"
    needed = rows_to_pass(kind, bound, confidence)
    return None if needed is None else (have, needed, perfect)


def minimum_rows(kind: str, threshold: float, m: Measurement) -> int | None:
    """The fewest rows (in ``m``'s unit) on which a gate of this bound can be judged and pass:
    the family's evidence floor and, for a proportion, the rows a perfect result needs to clear
    the bound with an exact interval (:func:`audit.stats.rows_to_pass`). ``None``: no floor."""
    floor = evidence_floor(m)
    need = _rows_needed(kind, threshold, m)
    found = [n for n in (floor[0] if floor else None, need[1] if need else None) if n]
    return max(found) if found else None


def describe_bound(kind: str, threshold: float, metric: str, direction: str,
                   family: str = "") -> str:
    """Words for one bound, generated from the gate data. A data check measures the tables,
    not a model: its bounds name no student."""
    who = "" if family == "data" else "student "
    if kind == "min":
        return f"{who}{metric} >= {threshold:g}"
    if kind == "max":
        return f"{who}{metric} <= {threshold:g}"
    if kind == "max_baseline_regression":
        worse = "baseline - student" if direction == "higher" else "student - baseline"
        return f"{metric} regression from the baseline ({worse}) <= {threshold:g}"
    worse = "teacher - student" if direction == "higher" else "student - teacher"
    if kind == "max_regression":
        return f"{metric} regression ({worse}) <= {threshold:g}"
    return f"{metric} regression ({worse}) <= {threshold:.4g} x |teacher {metric}|"


_UNDEFINED = "the metric is undefined on this data"
_STRADDLES = "the interval straddles the threshold"
_TOO_NOISY = "the machine was too noisy"  # a timing whose two halves disagree


def _judge(observed: Estimate | None, threshold: float, upper: bool) -> tuple[Status, str]:
    """Judge ``observed <= threshold`` (upper) or ``observed >= threshold`` (lower bound)."""
    if observed is None or not math.isfinite(observed.value):
        return Status.INCONCLUSIVE, _UNDEFINED
    low, high = observed.ci if observed.ci is not None else (observed.value, observed.value)
    if not (math.isfinite(low) and math.isfinite(high)):
        low = high = observed.value
    reason = "" if observed.ci is not None else "no interval available; judged on the point estimate"
    if upper:
        if high <= threshold:
            return Status.PASS, reason
        if low > threshold:
            return Status.FAIL, reason
    else:
        if low >= threshold:
            return Status.PASS, reason
        if high < threshold:
            return Status.FAIL, reason
    return Status.INCONCLUSIVE, reason or _STRADDLES


def evaluate_gate(gate: GateSpec, m: Measurement) -> tuple[GateResult, ...]:
    """Judge every bound ``gate`` sets against ``m`` (all but ``max_baseline_regression``, which
    :func:`evaluate_baseline_gate` judges on the student-vs-baseline measurement)."""
    return tuple(_bound(kind, threshold, gate.severity, m) for kind, threshold in gate.bounds()
                 if kind != "max_baseline_regression")


def evaluate_baseline_gate(gate: GateSpec, m: Measurement) -> tuple[GateResult, ...]:
    """Judge ``gate.max_baseline_regression`` against ``m``, the check measured with the
    suite's baseline in the teacher's place: its ``regression`` is how much worse than the
    baseline the student is, judged as ``max_regression`` is against the teacher (the same
    interval rule and minimum evidence)."""
    if gate.max_baseline_regression is None:
        return ()
    judged = _bound("max_regression", gate.max_baseline_regression, gate.severity, m)
    description = describe_bound("max_baseline_regression", gate.max_baseline_regression,
                                 m.metric, m.direction, m.family)
    if m.scope:
        description += f" ({m.scope})"
    return (replace(judged, kind="max_baseline_regression", description=description,
                    reason=judged.reason.replace("teacher value", "baseline value")),)


def _bound(kind: str, threshold: float, severity: str, m: Measurement) -> GateResult:
    """One bound of a gate judged against ``m``."""
    observed: Estimate | None
    if kind in ("min", "max"):
        observed = m.student
    elif kind == "max_regression":
        observed = m.regression
    else:
        observed = m.relative_regression
    if observed is None and kind not in ("min", "max"):
        status = Status.INCONCLUSIVE
        reason = m.extra.get("no_regression") or f"{m.metric} has no teacher value to regress from"
    else:
        status, reason = _judge(observed, threshold, upper=(kind != "min"))
        status, reason = _enough(kind, threshold, m, status, reason)
        # -- timing stability (audit.checks.efficiency): a straddle on an interval widened
        # because the run's two halves disagreed is the machine's noise, and says so
        if status is Status.INCONCLUSIVE and reason == _STRADDLES:
            which = "student" if kind in ("min", "max") else kind.removeprefix("max_")
            reason = str((m.extra.get("too_noisy") or {}).get(which, reason))
    description = describe_bound(kind, threshold, m.metric, m.direction, m.family)
    if m.scope:
        description += f" ({m.scope})"
    decidable = rows = None
    family = FAMILIES.get(m.family)
    # what the family can add (fairness: which group limits it, and the rows it needs)
    more = (family.explain(m, kind, threshold) if status is Status.INCONCLUSIVE and family
            and family.explain else None)
    # an interval that straddles the threshold: say what it decides and the rows that
    # would decide this one (an evidence floor's reason already names the rows it needs)
    if status is Status.INCONCLUSIVE and observed is not None and reason.startswith(
            (_STRADDLES, _TOO_NOISY)):
        found = what_it_decides(kind, threshold, observed, m)
        if found is not None:
            decidable, rows, text = found
            if more:  # the family's sentence gives the rows: keep what the run decides
                text = text.split("; ", 1)[0]
            reason = f"{reason}; {text}" if reason else text
    if more:
        reason = f"{reason}; {more}" if reason else more
    return GateResult(kind=kind, threshold=threshold, status=status, severity=severity,
                      description=description, observed=observed, reason=reason,
                      scope=m.scope, decidable=decidable, rows_needed=rows)


def what_it_decides(kind: str, threshold: float, observed: Estimate,
                    m: Measurement) -> tuple[float, int | None, str] | None:
    """For an undecided bound: the tightest threshold of its kind this run decides (the
    interval's end), the rows that would decide the given threshold with
    :data:`audit.power.POWER` at the observed effect and spread, and both in words; ``None``
    without a finite interval."""
    if observed.ci is None or not all(map(math.isfinite, (*observed.ci, observed.value))):
        return None
    confidence = float(m.evidence.get("confidence", 0.95))
    unit = str(m.evidence.get("unit") or "eval rows")
    tight = tightest_bound(kind, observed.ci)
    op = "<=" if kind in UPPER_KINDS else ">="
    name = "regression" if kind == "max_regression" else (
        "relative regression" if kind == "max_relative_regression" else m.metric)
    text = f"with {_count(m.n, unit)} this run can only show {name} {op} {tight:.4g}"
    sigma, trials, source = spread(kind, threshold, observed.value, observed.ci, m.n or 0,
                                   m.evidence, observed.value)
    how = {"paired": "paired proportions, from the discordant rows",
           "proportion": "one proportion", "interval": "the spread of this run's interval"}[source]
    passing = (observed.value <= threshold) if kind in UPPER_KINDS else (observed.value >= threshold)
    if how == "one proportion" and passing:  # judged by its exact interval: plan exactly
        rows = rows_for_power_exact(observed.value, threshold, kind, confidence=confidence)
        how = "one proportion, its exact interval"
    else:
        rows = rows_for_power(sigma, abs(observed.value - threshold), confidence=confidence)
    if rows is None:
        return tight, None, (f"{text}; no number of {unit} decides {name} {op} {threshold:g} while "
                             f"the observed {name} ({observed.value:.4g}) equals it")
    if trials and m.n and trials != m.n:  # trials are a subset of the rows (e.g. positives)
        rows = math.ceil(rows * m.n / trials)
    verdict = "show" if passing else "rule out"
    value = f"{observed.value:+.4g}" if kind not in ("min", "max") else f"{observed.value:.4g}"
    many = _count(rows, unit).replace(str(rows), f"{rows:,}", 1)
    text += (f"; about {many} would {verdict} {name} {op} {threshold:g} with "
             f"{POWER:.0%} power, if the {name} stays at {value} with this spread "
             f"({how}; normal approximation)")
    return tight, rows, text


def _count(n: int, unit: str) -> str:
    """``2 eval rows``, ``1 eval row``."""
    if n != 1:
        return f"{n} {unit}"
    for plural in ("rows", "runs"):
        if plural in unit:
            return f"1 {unit.replace(plural, plural[:-1], 1)}"
    return f"1 {unit}"


def _enough(kind: str, threshold: float, m: Measurement, status: Status, reason: str
            ) -> tuple[Status, str]:
    """Apply the minimum-evidence rule to a judged bound (see the module docstring)."""
    if status is Status.INCONCLUSIVE and reason == _UNDEFINED:
        return status, reason
    floor = evidence_floor(m)
    need = _rows_needed(kind, threshold, m)
    regression = kind != "min" and kind != "max"
    what = (f"a paired {m.metric} difference" if regression and need is not None else
            f"the {m.metric} regression" if regression else m.metric)
    trials_unit = str(m.evidence.get("trials_unit") or (floor[1] if floor else "rows"))
    show = f"a regression of at most {threshold:g}" if kind == "max_regression" else (
        f"a relative regression of at most {threshold:g}" if regression else
        f"{m.metric} {'>=' if kind == 'min' else '<='} {threshold:g}")
    if floor is not None and m.n < floor[0]:
        n_floor, unit = floor
        if need is not None and need[1] > n_floor and trials_unit == unit:
            return Status.INCONCLUSIVE, (f"only {_count(m.n, unit)}: {what} needs at least {need[1]} "
                                    f"{unit} to show {show} {need[2]}")
        text = (f"only {_count(m.n, unit)}: {what} needs at least {n_floor} {unit} to be judged "
                "(an interval from fewer is not evidence)")
        if need is not None and need[1] > need[0] and trials_unit != unit:
            text += f"; and {_count(need[1], trials_unit)} to show {show} {need[2]}"
        return Status.INCONCLUSIVE, text
    if need is not None and need[0] < need[1] and status is not Status.FAIL:
        have, needed, perfect = need
        return Status.INCONCLUSIVE, (f"only {_count(have, trials_unit)}: {what} needs at least {needed} "
                                f"{trials_unit} to show {show} {perfect}")
    return status, reason


def check_status(gates: tuple[GateResult, ...], inconclusive: str = "fail") -> Status:
    """A check's status from its judged gates.

    A failing blocking gate fails the check; an inconclusive blocking gate makes it
    ``inconclusive`` (which blocks when ``inconclusive == "fail"``, else only warns); anything
    failing or inconclusive under ``severity: warn`` makes it ``warn``. No gate: ``info``.
    """
    if not gates:
        return Status.INFO
    blocking = [g for g in gates if g.severity == "block"]
    if any(g.status is Status.FAIL for g in blocking):
        return Status.FAIL
    if any(g.status is Status.INCONCLUSIVE for g in blocking):
        return Status.INCONCLUSIVE if inconclusive == "fail" else Status.WARN
    if any(g.status is not Status.PASS for g in gates):
        return Status.WARN
    return Status.PASS


def bound_problem(metric: Any, vals: dict[str, Any]) -> tuple[str | None, str] | None:
    """The first reason a gate's bounds make no sense for ``metric``, as (the offending key, or
    None for the whole gate; the message), or None. A bound that can never be met blocks every
    student; one that can never fail passes every student, which is worse: both are refused
    when the suite is read."""
    bounds = [k for k in GATE_KINDS if vals.get(k) is not None]
    if not bounds:
        return None, ("sets no bound; give at least one of min, max, max_regression, "
                      "max_relative_regression, max_baseline_regression")
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
    v = vals.get("max_baseline_regression")
    if v is not None:
        if metric.family == "data":
            return "max_baseline_regression", (f"{metric.name} measures the data tables, not a "
                                               "model, so there is no baseline to regress from; "
                                               "remove this bound")
        if metric.pairwise:
            return "max_baseline_regression", (
                f"{metric.name} compares the student with the teacher, so it has no regression "
                "against the baseline; bound the student's own value with min or max (the "
                "report shows the baseline's value beside it)")
        if v < 0:
            return "max_baseline_regression", (
                "must be >= 0: it bounds how much worse than the baseline the student may be, "
                "and 0 allows no loss at all (requiring a gain over the baseline is not "
                "supported)")
        if v >= hi - lo:
            return "max_baseline_regression", (
                f"{metric.name} lies in [{lo:g}, {hi:g}], so the student can be at most "
                f"{hi - lo:g} worse than the baseline; this bound is always met (it can never "
                "fail); use a smaller value")
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
        if k == "max_relative_regression" and lo < 0:
            return k, (f"{metric.name} can be negative or zero (it lies in [{lo:g}, {hi:g}]), "
                       "so a fraction of the teacher's value means nothing; bound the absolute "
                       "regression with max_regression")
        if k == "max_relative_regression" and metric.direction == "higher" and lo >= 0 and v >= 1:
            return k, (f"{metric.name} is at least {lo:g}, so the student can lose at most all "
                       "(1) of the teacher's value; this bound is always met (it can never "
                       "fail); use a fraction below 1")
    return None
