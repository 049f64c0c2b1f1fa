"""Plain-text verdicts: what a failing check prints instead of a traceback."""

from __future__ import annotations

from collections.abc import Iterable

from audit.results import (
    AuditReport,
    CheckResult,
    GateResult,
    Measurement,
    Status,
    format_estimate,
    format_value,
)
from audit.safe import visible

__all__ = ["format_value", "format_estimate", "format_check", "format_summary", "gate_line"]



def gate_line(g: GateResult, *, data: bool = False) -> str:
    """One judged bound in words: ``regression +0.028 [+0.012, +0.044]  >  max_regression 0.02
    -> FAIL``. ``data``: the bound is a data check's (the tables, not a model: ``value``)."""
    upper = g.kind != "min"
    who = {"min": "student", "max": "student", "max_regression": "regression",
           "max_relative_regression": "relative regression",
           "max_baseline_regression": "regression from baseline"}[g.kind]
    if g.kind in ("min", "max") and data:
        who = "value"  # a data check's bound: the tables, not a model
    if g.scope:
        who += f" [{g.scope}]"
    op = {Status.PASS: "<=" if upper else ">=", Status.FAIL: ">" if upper else "<"}.get(g.status, "~")
    signed = g.kind.startswith(("max_r", "max_b"))
    observed = format_estimate(g.observed, signed=signed)
    if g.observed is not None and g.observed.ci is not None:
        ends = [x for x in g.observed.ci if x != g.threshold]
        if any(format_value(x, signed) == format_value(g.threshold, signed) for x in ends):
            # an end rounds onto the threshold: show it with the digits that tell them apart
            low, high = g.observed.ci
            observed = (f"{format_value(g.observed.value, signed)} "
                        f"[{low:{'+' if signed else ''}.6g}, {high:{'+' if signed else ''}.6g}]")
    line = (f"  {who:<10} {observed}  {op}  "
            f"{g.kind} {g.threshold:g}   -> {g.status.upper()}")
    if g.severity == "warn" and g.status is not Status.PASS:
        line += " (severity: warn)"
    if g.reason and g.status is not Status.PASS:
        line += f" ({g.reason})"
    return line


def _measurement_lines(m: Measurement) -> list[str]:
    name = f"{m.metric} [{m.scope}]" if m.scope else m.metric
    if m.teacher is None:
        what = "the data" if m.family == "data" else "student vs teacher"
        return [f"  {name:<10} {format_estimate(m.student)}  ({what})"]
    return [f"  {name:<10} student {format_estimate(m.student)}   "
            f"teacher {format_estimate(m.teacher)}"]


def _unit(m: Measurement) -> str:
    """What a measurement's ``n`` counts, as recorded with it (so a report read back from JSON
    says the same)."""
    return str(m.evidence.get("unit") or "eval rows")


def format_check(result: CheckResult) -> str:
    """The multi-line verdict of one check, e.g.::

        accuracy   student 0.712 [0.689, 0.735]   teacher 0.781 [0.760, 0.801]
        regression +0.069 [+0.051, +0.088]  >  max_regression 0.02   -> FAIL
        n=1568 eval rows, paired bootstrap ..., seed 0, 95% intervals

    A check measured on several slices prints one block per slice.
    """
    if result.status is Status.ERROR:
        return visible(f"  ERROR: {result.error}", newlines=True)
    lines: list[str] = []
    d = result.details
    methods = {(m.n, m.method, _unit(m)) for m in result.measurements}
    for m in result.measurements:
        lines += _measurement_lines(m)
        lines += [gate_line(g, data=m.family == "data") for g in result.gates if g.scope == m.scope]
        lines += [f"  note: {note}" for note in m.notes]
    if d.get("one_class"):  # a model that predicts one class for every row
        lines.append(f"  note: {d['one_class']}")
    for n, method, rows in sorted(methods):
        if n == 0:  # an exact fact (sizes on disk): no rows, no seed, no interval
            lines.append(f"  {method}")
            continue
        tail = f"  n={n} {rows}, {method}"
        if "seed" in d:
            tail += f", seed {d['seed']}, {round(100 * d['confidence'])}% intervals"
        lines.append(tail)
    return "\n".join(visible(line) for line in lines)  # user text never starts a line


def _unmet(c: CheckResult) -> list[str]:
    """What keeps ``c`` from passing, one line each: every gate that did not pass (in the order
    the check prints them), or why the check could not run."""
    if c.status is Status.ERROR:
        return [visible(f"  ERROR: {c.error}", newlines=True).split("\n")[0].strip()]
    scopes = [m.scope for m in c.measurements]
    ordered = sorted((g for g in c.gates if g.status is not Status.PASS),
                     key=lambda g: scopes.index(g.scope) if g.scope in scopes else len(scopes))
    if ordered:
        data = {m.scope for m in c.measurements if m.family == "data"}
        return [gate_line(g, data=g.scope in data).strip() for g in ordered]
    return [_measurement_lines(c.measurements[0])[0].strip()] if c.measurements else [""]


def format_summary(reports: Iterable[tuple[AuditReport, list[str]]]) -> list[str]:
    """Lines for pytest's terminal summary: one block per suite, with its report paths."""
    out: list[str] = []
    for report, paths in reports:
        counts = ", ".join(f"{n} {s}" for s, n in report.counts.items() if n)
        out.append(f"{report.suite['name']}: {report.verdict.upper()} ({counts})")
        entries = (report.provenance.get("cache") or {}).get("entries") or {}
        reused = [k for k, how in entries.items()
                  if k.startswith("measurements/") and how.startswith("read from the cache")]
        if reused:  # a rerun: say what was not measured now
            how = "authenticated" if all("authenticated" in entries[k] for k in reused) else (
                "unverified, --audit-trust-cache")
            out.append(f"  cache: {len(reused)} of {len(report.checks)} checks' measurements "
                       f"reused ({how}); the rest measured in this run")
        one = next((c.details["one_class"] for c in report.checks if c.details.get("one_class")),
                   None)
        if one:  # said once per suite, before the checks
            out.append(f"  note: {one}")
        for c in report.checks:
            if c.status not in (Status.PASS, Status.INFO):
                gates = _unmet(c)
                out.append(f"  {c.status.upper():<12} {c.name}: {gates[0]}")
                indent = " " * (17 + len(c.name))  # every other gate that did not pass
                out += [f"{indent}{gate}" for gate in gates[1:]]
        not_run = report.suite.get("not_run") or []
        if not_run:
            out.append(f"  not run: {', '.join(not_run)} (this report covers part of the suite)")
        out += [f"  report: {p}" for p in paths]
    return [visible(line) for line in out]
