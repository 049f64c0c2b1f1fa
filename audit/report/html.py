"""The HTML report, rendered from the JSON report's data alone.

Formatting (numbers, intervals, words) happens here, in :func:`view`; the jinja2 template only
loops and branches, with autoescape on: column names, labels and suite text come from users.
"""

from __future__ import annotations

from typing import Any

from audit.report.terminal import format_estimate, format_value
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
                "metric": x.metric + (f" ({x.scope})" if x.scope else ""),
                "direction": f"{x.direction} is better",
                "teacher": format_estimate(x.teacher), "student": format_estimate(x.student),
                "regression": format_estimate(x.regression, signed=True) if x.regression else "n/a",
                "relative": (format_estimate(x.relative_regression, signed=True)
                             if x.relative_regression else "n/a"),
                "method": x.method, "n": x.n, "notes": list(x.notes),
                "params": ", ".join(f"{k}={v}" for k, v in x.params.items() if k != "by"),
                "reliability": _reliability_rows(x.breakdown),
                "groups": _group_rows(x.breakdown),
                "advice": _advice(x.extra.get("advice")),
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


def _fmt(x: Any, signed: bool = False) -> str:
    return "" if x is None else format_value(float(x), signed)


def _reliability_rows(breakdown: tuple[dict[str, Any], ...]) -> list[dict[str, str]]:
    """Teacher and student bins side by side: range, count, confidence, accuracy."""
    by_bin: dict[int, dict[str, str]] = {}
    for r in breakdown:
        if r.get("kind") != "reliability":
            continue
        row = by_bin.setdefault(r["bin"], {"range": f"[{r['lower']:.3f}, {r['upper']:.3f})"})
        who = r["model"]
        row[f"{who}_n"] = str(r["count"])
        row[f"{who}_conf"] = _fmt(r["confidence"])
        row[f"{who}_acc"] = _fmt(r["accuracy"])
    return [by_bin[b] for b in sorted(by_bin)]


def _group_rows(breakdown: tuple[dict[str, Any], ...]) -> list[dict[str, str]]:
    rows = []
    for r in breakdown:
        if r.get("kind") != "group":
            continue
        row = {"group": r["group"], "n": str(r["n"]), "status": r["status"]}
        for who in ("teacher", "student"):
            v = r.get(who) or {}
            for name in ("accuracy", "selection_rate", "tpr", "fpr", "ece"):
                ci = v.get(f"{name}_ci")
                text = _fmt(v.get(name))
                if ci and text:
                    text += f" [{_fmt(ci[0])}, {_fmt(ci[1])}]"
                row[f"{who}_{name}"] = text
        rows.append(row)
    return rows


def _advice(advice: dict[str, Any] | None) -> str:
    if not advice:
        return ""
    if not advice.get("available"):
        return f"No recalibration advice: {advice.get('reason', '')}"
    before, after = advice["ece_before"], advice["ece_after"]
    if after >= before:
        return (f"No recalibration advised: temperature scaling (T = {advice['temperature']:.3f}) "
                f"would not lower the student's ECE on held-out rows ({_fmt(before)} -> "
                f"{_fmt(after)}; {advice['note']}).")
    return (f"Temperature scaling with T = {advice['temperature']:.3f} would take the student's ECE "
            f"from {_fmt(before)} to {_fmt(after)} on held-out rows ({advice['note']}).")


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
