"""The student against the suite's baseline model, as plain data for the renderers.

A suite's ``baseline:`` (the model in production today, or the student trained without
distillation) is measured by every check that measures models (:mod:`audit.runner`): once in
the student's place (``CheckResult.baseline``: its values beside the teacher's) and once in
the teacher's (``CheckResult.versus_baseline``: the student's paired regression from it, or for
a pairwise metric the student against the baseline: agreement with it, negative flips from it,
the slices where the student is worse than it).
:func:`baseline_rows` lines them up per measurement, with a verdict in words read from the
paired interval, so the HTML and Markdown reports answer "better than what we ship?" and
"did distillation help?" from the JSON alone.
"""

from __future__ import annotations

import math
from typing import Any

from audit.results import AuditReport, CheckResult, Estimate, Measurement

__all__ = ["baseline_for", "baseline_rows", "baseline_summary", "has_baseline", "COMPARISON"]

# what the paired interval of (student's regression from the baseline) says
COMPARISON = {"better": "student better", "worse": "student worse",
              "same": "no clear difference", "undefined": "undefined"}


def has_baseline(report: AuditReport) -> bool:
    """Whether the report measured a baseline model."""
    return "baseline" in report.provenance or any(c.baseline for c in report.checks)


def baseline_for(check: CheckResult, scope: str) -> tuple[Measurement | None, Measurement | None]:
    """The baseline's measurement of ``scope`` (the baseline as the student) and the
    student-vs-baseline one (the baseline as the teacher); ``None`` where there is none."""
    def pick(ms: tuple[Measurement, ...]) -> Measurement | None:
        return next((m for m in ms if m.scope == scope), None)

    return pick(check.baseline), pick(check.versus_baseline)


def _comparison(e: Estimate | None) -> str:
    """``better``/``worse`` when the whole interval of the student's regression from the
    baseline lies below/above 0, ``same`` when it holds 0, ``undefined`` without a value."""
    if e is None or not math.isfinite(e.value):
        return "undefined"
    low, high = e.ci if e.ci is not None else (e.value, e.value)
    if high < 0:
        return "better"
    if low > 0:
        return "worse"
    return "same"


def _est(e: Estimate | None) -> dict[str, Any] | None:
    return None if e is None else e.to_dict()


def baseline_rows(report: dict[str, Any]) -> list[dict[str, Any]]:
    """One row per measurement the baseline has, in report order.

    Returns
    -------
    list of dict
        ``check``, ``metric``, ``scope``, ``direction``, and estimate dicts (or ``None``):
        ``teacher``, ``baseline``, ``student`` (their values), ``versus`` (the student's
        regression from the baseline: positive means the student is worse, whatever the
        metric's direction; ``None`` for a pairwise metric, e.g. agreement, whose baseline
        value is its own agreement with the teacher), ``against`` (a pairwise metric's value
        for the student against the baseline, e.g. the negative flip rate from the model in
        production; else ``None``), ``baseline_regression`` (the baseline's regression from
        the teacher), and ``comparison`` (a :data:`COMPARISON` key read from ``versus``'s
        interval; ``undefined`` for pairwise metrics).

    Examples
    --------
    >>> from audit.results import AuditReport, CheckResult, Estimate, Measurement
    >>> main = Measurement("accuracy", "higher", Estimate(0.80), teacher=Estimate(0.85))
    >>> base = Measurement("accuracy", "higher", Estimate(0.78), teacher=Estimate(0.85))
    >>> vs = Measurement("accuracy", "higher", Estimate(0.80), teacher=Estimate(0.78),
    ...                  regression=Estimate(-0.02, (-0.03, -0.01)))
    >>> c = CheckResult("acc", "pass", (main,), baseline=(base,), versus_baseline=(vs,))
    >>> row, = baseline_rows(AuditReport({"name": "demo"}, "pass", (c,), {}).to_dict())
    >>> row["baseline"]["value"], row["comparison"]
    (0.78, 'better')
    """
    out = []
    for c in AuditReport.from_dict(report).checks:
        main = {m.scope: m for m in c.measurements}
        for b in c.baseline:
            m = main.get(b.scope)
            _, v = baseline_for(c, b.scope)
            versus = v.regression if v is not None else None
            against = v.student if v is not None and v.teacher is None else None
            out.append({"check": c.name, "metric": b.metric, "scope": b.scope,
                        "direction": b.direction,
                        "teacher": _est(m.teacher if m is not None else b.teacher),
                        "baseline": _est(b.student),
                        "student": _est(m.student) if m is not None else None,
                        "versus": _est(versus), "against": _est(against),
                        "baseline_regression": _est(b.regression),
                        "comparison": _comparison(versus)})
    return out


def baseline_summary(rows: list[dict[str, Any]]) -> str:
    """The rows in one sentence: how many measurements put the student significantly ahead of
    the baseline, behind it, or neither (pairwise metrics are not counted).

    >>> text = baseline_summary([{"comparison": "better"}, {"comparison": "same"}])
    >>> text.split(", ")[1:]
    ['the student is better on 1 of 2 measurements', 'worse on none', 'with no clear difference on 1.']
    """
    judged = [r for r in rows if r["comparison"] != "undefined"]
    if not judged:
        return ""
    count = {k: sum(r["comparison"] == k for r in judged) for k in ("better", "worse", "same")}

    def n(k: str) -> str:
        return str(count[k]) if count[k] else "none"

    return (f"Against the baseline, the student is better on {n('better')} of {len(judged)} "
            f"measurements, worse on {n('worse')}, with no clear difference on {n('same')}.")
