"""``distill-audit plan``: how many eval rows each gate needs, before collecting them.

For every bound of every gate, the rows at which a **faithful** student (its true regression
0, or the value ``--regression`` states; for a bound on the student's own value, the value this
pilot measured) passes with the chosen power (default 80%), by :func:`audit.power.rows_for_power`.
The spread per row comes from closed forms where the measurement is a proportion -- paired
proportions from the discordant rows (McNemar) for a regression, one proportion for a bound on
the student's rate -- and otherwise from the pilot's interval. The pilot is a run of the suite
on the data it names (predictions come from the cache), or a report's JSON.

Timings (their n counts timed calls, not rows) and exact facts of a table (missing values,
duplicates, leakage, sizes) need no rows and are listed as such.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace

from audit.gates import evidence_floor, minimum_rows
from audit.power import (
    POWER,
    UPPER_KINDS,
    rows_for_power,
    rows_for_power_exact,
    spread,
)
from audit.results import CheckResult, Estimate, GateResult, Measurement

__all__ = ["PlanRow", "plan_rows", "format_plan", "TIMING"]

TIMING = "a timing: its n counts timed calls, not eval rows; more rows do not decide it"


@dataclass(frozen=True)
class PlanRow:
    """One bound's plan: the rows it has, the rows it needs (``None``: no number of rows
    would pass a faithful student; ``0``: no rows needed) and why."""

    check: str
    bound: str
    rows_now: int | None
    rows_needed: int | None
    how: str
    unit: str = "eval rows"  # what the rows count (attacked rows, scored rows, ...)


def _measurement(check: CheckResult, gate: GateResult) -> Measurement | None:
    """The measurement ``gate`` judged: for a bound on the regression from the baseline, the
    check measured with the baseline in the teacher's place."""
    pool = check.versus_baseline if gate.kind == "max_baseline_regression" else check.measurements
    return next((m for m in pool if m.scope == gate.scope), None)


def plan_bound(check: CheckResult, gate: GateResult, *, power: float = POWER,
               regression: float = 0.0) -> PlanRow:
    """The plan for one judged bound of ``check`` (see the module docstring)."""
    bound = gate.description
    m = _measurement(check, gate)
    if gate.kind == "max_baseline_regression":  # judged as max_regression, from the baseline
        gate = replace(gate, kind="max_regression")
    if m is None:
        return PlanRow(check.name, bound, None, None, "no measurement to plan from")
    unit = str(m.evidence.get("unit") or "eval rows")
    if evidence_floor(m) is None:  # exact, as the gates judge it (audit.gates.evidence_floor)
        if m.family == "efficiency":
            return PlanRow(check.name, bound, None, 0, "sizes on disk: exact, no rows involved")
        return PlanRow(check.name, bound, m.n, 0, "an exact fact of the table: no sampling error")
    if m.family == "efficiency":
        return PlanRow(check.name, bound, None, 0, TIMING)
    ev, confidence = m.evidence, float(m.evidence.get("confidence", 0.95))
    t = gate.threshold
    est: Estimate | None
    if gate.kind in ("min", "max"):
        est = m.student
        if est is None or not math.isfinite(est.value):
            return PlanRow(check.name, bound, m.n, None, "the pilot has no value to plan from")
        delta, what = est.value, f"the student's {m.metric} as measured ({est.value:.4g})"
    else:
        est = m.regression if gate.kind == "max_regression" else m.relative_regression
        if est is None:
            return PlanRow(check.name, bound, m.n, None, "the pilot has no regression to plan from")
        delta = regression
        what = (f"a true regression of {regression:g}" if gate.kind == "max_regression" else
                f"a true relative regression of {regression:g} ({regression:.0%} of the "
                "teacher's value)")
    sigma, trials, source = spread(gate.kind, t, est.value, est.ci, m.n, ev, delta)
    how = {"paired": f"paired proportions (McNemar), {ev.get('discordant')} of {trials} pilot "
                     "rows discordant",
           "proportion": "one proportion", "interval": "the pilot's interval"}[source]
    margin = (t - delta) if gate.kind in UPPER_KINDS else (delta - t)
    if est.ci is not None and est.ci[0] == est.ci[1] == est.value and margin >= 0:
        return PlanRow(check.name, bound, m.n, 0, f"the pilot's value ({est.value:.4g}) has no "
                       "spread (no interval width) for more rows to shrink")
    if margin <= 0:
        return PlanRow(check.name, bound, m.n, None,
                       f"{what} does not pass this bound: no number of rows would")
    if source == "proportion":  # judged by its exact interval: planned exactly
        rows = rows_for_power_exact(delta, t, gate.kind, confidence=confidence, power=power)
        how = "one proportion, its exact (Clopper-Pearson) interval"
    else:
        rows = rows_for_power(sigma, margin, confidence=confidence, power=power)
    if rows is not None and trials and m.n and trials != m.n:
        rows = math.ceil(rows * m.n / trials)  # trials are a subset of the rows
    why = f"{what}; spread from {how}"
    floor = minimum_rows(gate.kind, t, m)
    if rows is not None and floor is not None and rows < floor:  # never below what a run judges
        rows, why = floor, f"{why}; raised to the {floor:,} {unit} a run needs to judge it"
    return PlanRow(check.name, bound, m.n, rows, why, unit)


def plan_rows(checks: list[CheckResult], *, power: float = POWER,
              regression: float = 0.0) -> list[PlanRow]:
    """One :class:`PlanRow` per judged bound of every check."""
    return [plan_bound(c, g, power=power, regression=regression)
            for c in checks if not c.error for g in c.gates]


def format_plan(rows: list[PlanRow], power: float = POWER) -> list[str]:
    """The plan as terminal lines: per bound, the rows it has and needs, and why below it."""
    out = [f"rows each gate needs to pass a faithful student with {power:.0%} power:"]
    for r in rows:
        need = ("never" if r.rows_needed is None else "-" if r.rows_needed == 0
                else f"{r.rows_needed:,} {r.unit}")
        have = "" if r.rows_now is None else f"now {r.rows_now:,}, "
        out.append(f"  {r.check}: {r.bound}: {have}needs {need}")
        out.append(f"      ({r.how})")
    return out

