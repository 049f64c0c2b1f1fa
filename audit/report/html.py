"""The HTML report, rendered from the JSON report's data alone.

Formatting (numbers, intervals, words) happens here, in :func:`view`; the jinja2 template only
loops and branches, with autoescape on: column names, labels and suite text come from users.
"""

from __future__ import annotations

from typing import Any

from audit.report.terminal import format_estimate
from audit.results import AuditReport

__all__ = ["render_html", "view"]

_VERDICT_WORDS = {
    "pass": "Every blocking gate passed.",
    "warn": "No blocking gate failed; some warnings need a look.",
    "inconclusive": "Some gates could not be decided with the data available; they block.",
    "error": "Some checks could not run; the audit fails closed.",
    "fail": "At least one blocking gate failed.",
}


def view(data: dict[str, Any]) -> dict[str, Any]:
    """Turn a report dict into ready-to-print strings for the template."""
    report = AuditReport.from_dict(data)
    gate_rows, sections = [], []
    for c in report.checks:
        m = c.measurements[0] if c.measurements else None
        for g in c.gates or ():
            gate_rows.append({
                "check": c.name, "metric": m.metric if m else "",
                "teacher": format_estimate(m.teacher) if m else "",
                "student": format_estimate(m.student) if m else "",
                "regression": format_estimate(m.regression, signed=True) if m and m.regression else "n/a",
                "gate": g.description, "status": g.status, "severity": g.severity,
                "reason": g.reason if g.status != "pass" else "",
            })
        if not c.gates:
            gate_rows.append({"check": c.name, "metric": m.metric if m else "",
                              "teacher": format_estimate(m.teacher) if m else "",
                              "student": format_estimate(m.student) if m else "",
                              "regression": (format_estimate(m.regression, signed=True)
                                             if m and m.regression else "n/a"),
                              "gate": "no gate (measured only)" if c.status != "error" else "",
                              "status": c.status, "severity": "", "reason": c.error or ""})
        sections.append({
            "name": c.name, "status": c.status, "description": c.description,
            "location": c.location, "source": c.source, "error": c.error,
            "measurements": [{
                "metric": x.metric, "direction": f"{x.direction} is better",
                "teacher": format_estimate(x.teacher), "student": format_estimate(x.student),
                "regression": format_estimate(x.regression, signed=True) if x.regression else "n/a",
                "relative": (format_estimate(x.relative_regression, signed=True)
                             if x.relative_regression else "n/a"),
                "method": x.method, "n": x.n, "notes": list(x.notes),
                "params": ", ".join(f"{k}={v}" for k, v in x.params.items()),
            } for x in c.measurements],
            "details": {k: v for k, v in c.details.items() if k != "classes"},
        })
    prov = report.provenance
    counts = data.get("counts") or {}
    return {
        "suite": report.suite, "verdict": report.verdict,
        "verdict_words": _VERDICT_WORDS.get(report.verdict, ""),
        "counts": [(k, v) for k, v in counts.items() if v],
        "gate_rows": gate_rows, "sections": sections,
        "artifacts": _artifact_rows(prov),
        "versions": sorted((prov.get("versions") or {}).items()),
        "environment": sorted((prov.get("environment") or {}).items()),
        "git": prov.get("git"), "created": prov.get("created", ""), "finished": prov.get("finished", ""),
        "warnings": list(prov.get("warnings") or []),
        "schema_version": report.schema_version,
    }


def _artifact_rows(prov: dict[str, Any]) -> list[dict[str, str]]:
    rows = []
    for role in ("teacher", "student"):
        a = prov.get(role) or {}
        rows.append({"what": role, "kind": a.get("kind", ""), "path": str(a.get("path", "")),
                     "sha256": a.get("sha256", "not loaded")})
    data = prov.get("data") or {}
    for role in ("eval", "train"):
        d = data.get(role)
        if d:
            rows.append({"what": f"{role} data", "kind": f"{d.get('rows', '?')} rows",
                         "path": str(d.get("path", "")), "sha256": d.get("sha256", "not loaded")})
    return rows


def render_html(data: dict[str, Any]) -> str:
    """Render the report dict (the JSON report's content) as one self-contained HTML page."""
    import jinja2

    env = jinja2.Environment(
        loader=jinja2.PackageLoader("audit.report", "templates"),
        autoescape=True, undefined=jinja2.StrictUndefined, trim_blocks=True, lstrip_blocks=True,
    )
    return env.get_template("report.html").render(**view(data))
