"""The scorecard: one row per check family, the whole audit on one screen.

Each row is the family's status light (the worst status of its checks), the check that set it,
and the teacher's and the student's value of the one number that decided it: the gate the
report's summary cites for that check (:func:`deciding_gate`), or the check's first
measurement when every gate passed. The HTML report puts the scorecard at its top and the
Markdown summary (:mod:`audit.report.markdown`) opens with it.

The rows are plain data computed from the report dict alone; the renderers format them. The
same helpers decide which section of the HTML report a check belongs to (:func:`family_of`,
:func:`section_order`), so a row's anchor always lands on its section.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any, Protocol

from audit.report.baseline import baseline_for
from audit.results import AuditReport, CheckResult, GateResult, Measurement, Status

__all__ = ["scorecard", "deciding_gate", "gate_text", "measurement_for", "family_of", "section_order",
           "WORST_FIRST", "OTHER", "FamilyDeclaration"]

# a family's light: the worst of its checks' statuses, in this order. A check that could not
# run outranks a failed one here: the family's state is then unknown, which a reader must see
# first (the suite's verdict still combines them as audit.results.combine_statuses does)
WORST_FIRST = (Status.ERROR, Status.FAIL, Status.INCONCLUSIVE, Status.WARN, Status.PASS,
               Status.INFO)
_RANK = {s: len(WORST_FIRST) - i for i, s in enumerate(WORST_FIRST)}
OTHER = "other"  # the section of checks whose measurements name no family (or that have none)
OTHER_TITLE = "Other checks"


class FamilyDeclaration(Protocol):
    """What the scorecard reads of a family's declaration
    (:class:`audit.checks.registry.Family`): its name, its section's title and its place."""

    @property
    def name(self) -> str: ...

    @property
    def title(self) -> str: ...

    @property
    def order(self) -> int: ...


def family_of(check: CheckResult) -> str:
    """The family (the report section) a check belongs to: that of its first measurement that
    names one, else :data:`OTHER`."""
    return next((m.family for m in check.measurements if m.family), "") or OTHER


def section_order(present: Iterable[str], families: Iterable[FamilyDeclaration]) -> list[str]:
    """The families ``present`` in a report, in the order of their declarations; families not
    declared follow, sorted by name."""
    names = set(present)
    ranked = sorted(families, key=lambda f: (f.order, f.name))
    declared = [f.name for f in ranked if f.name in names]
    return declared + sorted(names - set(declared))


def deciding_gate(check: CheckResult) -> GateResult | None:
    """The gate that decided a check's status: its first gate whose status is the check's
    (a FAIL before an INCONCLUSIVE), else its first gate that did not pass; ``None`` when every
    gate passed (or there is none)."""
    bad = [g for g in check.gates if g.status is not Status.PASS]
    if not bad:
        return None
    return next((g for g in bad if g.status is check.status), bad[0])


def measurement_for(check: CheckResult, gate: GateResult) -> Measurement | None:
    """The measurement a gate judged: the one of the gate's scope, else the check's first."""
    for m in check.measurements:
        if m.scope == gate.scope:
            return m
    return check.measurements[0] if check.measurements else None


_BOUND = {"min": "student \u2265", "max": "student \u2264", "max_regression": "regression \u2264",
          "max_relative_regression": "relative regression \u2264",
          "max_baseline_regression": "regression from the baseline \u2264"}


def gate_text(gate: GateResult | None, check: CheckResult) -> str:
    """What decided a check, in a few words: ``regression \u2264 0.02: fail`` (and ``(severity
    warn)`` for a bound that only warns), ``all passed``,
    ``no gate (measured only)`` or ``could not run``."""
    if gate is not None:
        text = f"{_BOUND.get(gate.kind, gate.kind)} {gate.threshold:g}: {gate.status.value}"
        return text + (" (severity warn)" if gate.severity == "warn" else "")
    if check.status is Status.ERROR:
        return "could not run"
    return "all passed" if check.gates else "no gate (measured only)"


def _worst(checks: list[CheckResult]) -> CheckResult:
    return max(checks, key=lambda c: _RANK[c.status])  # the first of the worst, in report order


def _estimate(e: Any) -> dict[str, Any] | None:
    return None if e is None else e.to_dict()


def scorecard(report: dict[str, Any], *,
              families: Iterable[FamilyDeclaration] = ()) -> list[dict[str, Any]]:
    """One row per check family present in ``report`` (the JSON report's dict).

    Parameters
    ----------
    report
        A report as :meth:`audit.results.AuditReport.to_dict` writes it.
    families
        The families' declarations, for the rows' titles and order: the renderers pass
        :func:`audit.report.html.declared_families`. A family not declared is titled "Other
        checks", as the HTML report titles its section, and comes after the declared ones.

    Returns
    -------
    list of dict
        Plain data, in report section order: ``family``, ``title``, ``anchor`` (the id of the
        family's section in the HTML report), ``status`` (the worst check status of the
        family, in :data:`WORST_FIRST` order), ``checks`` (how many), ``check`` (the check
        that set the status: the first with it) and ``gates`` (how many it has), ``metric``
        and ``scope`` of the number that decided it, ``teacher``, ``student`` and
        ``regression`` (estimate dicts or ``None``; the relative regression for a relative
        gate, the student's regression from the baseline for a baseline gate), ``baseline``
        (the suite's baseline model's value, when it has one), ``gate`` (the deciding gate's
        dict, or ``None`` when every gate passed: the
        values are then the first measurement's), ``gate_text`` (that in words:
        :func:`gate_text`) and ``error`` (the first line of a check that could not run).

    Examples
    --------
    >>> from audit.results import AuditReport, CheckResult, Estimate, Measurement
    >>> m = Measurement("accuracy", "higher", Estimate(0.8), teacher=Estimate(0.9),
    ...                 family="performance")
    >>> r = AuditReport({"name": "demo"}, "pass", (CheckResult("acc", "pass", (m,)),), {})
    >>> [(row["family"], row["status"], row["teacher"]["value"]) for row in scorecard(r.to_dict())]
    [('performance', 'pass', 0.9)]
    """
    checks = AuditReport.from_dict(report).checks
    by_family: dict[str, list[CheckResult]] = {}
    for c in checks:
        by_family.setdefault(family_of(c), []).append(c)
    declared = list(families)
    titles = {f.name: f.title for f in declared}
    rows = []
    for name in section_order(by_family, declared):
        worst = _worst(by_family[name])
        gate = deciding_gate(worst)
        m = (measurement_for(worst, gate) if gate is not None
             else worst.measurements[0] if worst.measurements else None)
        relative = gate is not None and gate.kind == "max_relative_regression"
        base, versus = baseline_for(worst, m.scope) if m else (None, None)
        if gate is not None and gate.kind == "max_baseline_regression":
            regression = versus.regression if versus else None
        else:
            regression = (m.relative_regression if relative else m.regression) if m else None
        rows.append({
            "family": name,
            "title": titles.get(name, OTHER_TITLE),
            "anchor": f"family-{name}",
            "status": worst.status.value,
            "checks": len(by_family[name]),
            "check": worst.name,
            "gates": len(worst.gates),
            "metric": m.metric if m else "",
            "scope": m.scope if m else "",
            "teacher": _estimate(m.teacher) if m else None,
            "student": _estimate(m.student) if m else None,
            "baseline": _estimate(base.student) if base else None,
            "regression": _estimate(regression),
            "gate": gate.to_dict() if gate is not None else None,
            "gate_text": gate_text(gate, worst),
            "error": (worst.error or "").split("\n")[0] if worst.status is Status.ERROR else "",
        })
    return rows
