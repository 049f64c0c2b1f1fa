"""The HTML report, rendered from the JSON report's data alone.

Formatting (numbers, intervals, words) and plots happen here, in :func:`view` and
:mod:`audit.report.plots`; the jinja2 template only loops and branches, with autoescape on:
column names, labels and suite text come from users. Every value the template prints is
also made visible first (control, bidi and zero-width characters as escapes, by the
environment's ``finalize``); the JSON keeps the exact values.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from audit.report.plots import curve_svg, group_bars_svg, latency_svg, reliability_svg, roc_svg
from audit.report.safe import template_value
from audit.report.terminal import format_estimate, format_value
from audit.results import AuditReport, CheckResult, GateResult, Measurement
from audit.spec import TABLES

__all__ = ["render_html", "view", "FAMILIES"]

_VERDICT_WORDS = {
    "pass": "Every blocking gate passed.",
    "warn": "No blocking gate failed; some warnings need a look.",
    "inconclusive": "Some gates could not be decided with the data available; they block.",
    "error": "Some checks could not run; the audit fails closed.",
    "fail": "At least one blocking gate failed.",
}
# report sections, in order: (family, title)
FAMILIES = (
    ("performance", "Predictive performance"),
    ("fidelity", "Fidelity to the teacher"),
    ("calibration", "Calibration"),
    ("fairness", "Fairness across groups"),
    ("slices", "Slice discovery"),
    ("robustness", "Adversarial robustness"),
    ("privacy", "Membership inference"),
    ("efficiency", "Efficiency"),
    ("data", "Data"),
)
# breakdown rows shown as plain tables, by kind: (title, columns)
_TABLES = {
    "latency": ("Latency per call", ("model", "batch", "runs", "p50_ms", "p95_ms",
                                     "throughput_rows_s")),
    "size": ("Size", ("model", "bytes", "parameters", "peak_memory_bytes")),
    "drift": ("Drift by column", ("column", "type", "psi", "test", "effect_name", "effect",
                                  "p_value", "q_value", "drifted")),
    "slice": ("Top slices", ("rank", "slice", "n", "teacher_accuracy", "student_accuracy",
                             "regression", "regression_ci", "p_value", "q_value", "significant")),
    "missing": ("Missing values", ("table", "column", "rate")),
    "constant": ("Constant columns", ("table", "column")),
    "duplicates": ("Duplicates", ("count",)),
    "class_share": ("Label shares", ("label", "share")),
    "leakage": ("Leaked rows", ("count", "first_rows")),
    "robustness": ("Attacks", ("model", "crafted_on", "attack", "eps", "norm", "rows",
                               "clean_accuracy", "robust_accuracy", "transfer_accuracy",
                               "success_rate", "seconds")),
    "attack": ("Membership attack", ("attack", "how", "member_table", "members",
                                     "non_member_table", "non_members", "fpr_floor")),
    "tpr_at_fpr": ("True-positive rate at low false-positive rates",
                   ("model", "fpr", "tpr", "below_floor")),
    "generalisation": ("Accuracy on members and non-members",
                       ("model", "accuracy_members", "accuracy_non_members", "gap")),
}
_SIGNOFF_FIELDS = ("reviewer", "role", "date", "decision")


def _est(e: Any, signed: bool = False) -> str:
    return format_estimate(e, signed) if e is not None else "n/a"


def _parts(e: Any, signed: bool = False) -> tuple[str, str]:
    """``("0.712", "[0.689, 0.735]")``: the value and its interval, for two-line table cells."""
    if e is None:
        return "n/a", ""
    text = format_estimate(e, signed)
    value, _, ci = text.partition(" ")
    return value, ci


def _gate_row(c: CheckResult, m: Measurement | None, g: GateResult | None) -> dict[str, Any]:
    return {
        "check": c.name, "metric": (m.metric + (f" ({m.scope})" if m.scope else "")) if m else "",
        "teacher": _parts(m.teacher) if m else ("", ""),
        "student": _parts(m.student) if m else ("", ""),
        "regression": (_parts(m.relative_regression, signed=True) if g is not None
                       and g.kind == "max_relative_regression" else _parts(m.regression, signed=True))
        if m else ("", ""),
        "gate": g.description if g else ("no gate (measured only)" if c.status != "error" else
                                         "could not run"),
        "status": g.status if g else c.status, "severity": g.severity if g else "",
        "reason": (g.reason if g.status != "pass" else "") if g else (c.error or "").split("\n")[0],
    }


def _measurement_for(c: CheckResult, g: GateResult) -> Measurement | None:
    for m in c.measurements:
        if m.scope == g.scope:
            return m
    return c.measurements[0] if c.measurements else None


def _summary(report: AuditReport) -> str:
    """One paragraph, in words, generated from the results."""
    prov, suite = report.provenance, report.suite
    data = (prov.get("data") or {}).get("eval") or {}
    rows = data.get("rows")
    teacher, student = prov.get("teacher") or {}, prov.get("student") or {}
    parts = [f"The student ({student.get('kind', '?')} model {_name(student.get('path'))}) was "
             f"audited against its teacher ({teacher.get('kind', '?')} model "
             f"{_name(teacher.get('path'))})"
             + (f" on {rows:,} evaluation rows of {_name(data.get('path'))}." if rows else ".")]
    by_status: dict[str, list[CheckResult]] = {}
    for c in report.checks:
        by_status.setdefault(c.status, []).append(c)
    base = next((c.details["majority_class"] for c in report.checks
                 if "majority_class" in c.details), None)
    one = next((c.details["one_class"] for c in report.checks if c.details.get("one_class")), None)
    if one:  # the most common way a distillation run fails
        parts.append(f"Warning: {one}.")
    if base:
        parts.append(f"For scale: {base}.")
    n = len(report.checks)
    passed = len(by_status.get("pass", [])) + len(by_status.get("info", []))
    parts.append(f"{passed} of {n} checks passed or were measured without a gate.")
    for status, word in (("fail", "failed"), ("inconclusive", "could not be decided"),
                         ("error", "could not run"), ("warn", "raised a warning")):
        checks = by_status.get(status, [])
        if checks:
            reasons = "; ".join(_why(c) for c in checks)
            parts.append(f"{len(checks)} {word}: {reasons}.")
    not_run = suite.get("not_run") or []
    if not_run:
        parts.append(f"Not run in this report: {', '.join(not_run)}.")
    parts.append(f"Verdict: {report.verdict.upper()}. {_VERDICT_WORDS.get(report.verdict, '')}")
    return " ".join(parts)


def _name(path: Any) -> str:
    return str(path).replace("\\", "/").rsplit("/", 1)[-1] if path else "?"


def _why(c: CheckResult) -> str:
    if c.status == "error":
        return f"{c.name} ({(c.error or '').splitlines()[0][:160]})"
    bad = [g for g in c.gates if g.status != "pass"]
    if not bad:
        return c.name
    g = bad[0]
    observed = _est(g.observed, signed=g.kind.startswith("max_r"))
    return f"{c.name} ({g.description}, observed {observed})"


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
    return [by_bin[b] for b in sorted(by_bin) if any(by_bin[b].get(f"{w}_n") != "0"
                                                     for w in ("teacher", "student"))]


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


def _cell(value: Any) -> str:
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float):
        return format_value(value)
    if isinstance(value, list):
        return "[" + ", ".join(_cell(v) for v in value) + "]"
    return "" if value is None else str(value)


def _tables(breakdown: tuple[dict[str, Any], ...]) -> list[dict[str, Any]]:
    """Plain tables of a measurement's breakdown rows (kinds without a special view)."""
    out = []
    for kind, (title, columns) in _TABLES.items():
        rows = [r for r in breakdown if r.get("kind") == kind]
        if rows:
            out.append({"title": title, "columns": [c.replace("_", " ") for c in columns],
                        "rows": [[_cell(r.get(c)) for c in columns] for r in rows]})
    return out


def _plots(m: Measurement) -> list[Any]:
    plots = []
    reliability = [r for r in m.breakdown if r.get("kind") == "reliability"]
    if reliability:
        plots.append(reliability_svg(reliability, f"Reliability: {m.metric}"))
    roc = [r for r in m.breakdown if r.get("kind") == "roc"]
    if roc:
        plots.append(roc_svg(roc, f"Membership ROC: {m.metric}"))
    latency = [r for r in m.breakdown if r.get("kind") == "latency"]
    if latency:
        plots.append(latency_svg(latency, "Median latency per call (ms, log scale)"))
    groups = [r for r in m.breakdown if r.get("kind") == "group"]
    if groups:
        metric = "selection_rate" if m.metric.startswith("demographic_parity") else (
            "tpr" if m.metric.startswith("equalized_odds") else m.params.get("group_metric")
            or "accuracy")
        plots.append(group_bars_svg(groups, metric, f"{metric} by group ({m.scope})"))
    return plots


def _budget_curve(c: CheckResult) -> Any:
    """A check measured at several budgets (robust accuracy per eps) as one curve."""
    points = []
    for m in c.measurements:
        eps = m.params.get("eps")
        if not isinstance(eps, (int, float)):
            return None

        def triple(e: Any) -> Any:
            if e is None:
                return None
            lo, hi = e.ci if e.ci is not None else (None, None)
            return (e.value, lo, hi)

        points.append({"x": float(eps), "teacher": triple(m.teacher), "student": triple(m.student)})
    if len(points) < 2:
        return None
    return curve_svg(points, f"{c.measurements[0].metric} by perturbation budget", "epsilon",
                     c.measurements[0].metric)


def _measurement_view(x: Measurement) -> dict[str, Any]:
    return {
        "metric": x.metric + (f" ({x.scope})" if x.scope else ""),
        "direction": f"{x.direction} is better",
        "teacher": _est(x.teacher), "student": _est(x.student),
        "regression": _est(x.regression, signed=True),
        "relative": _est(x.relative_regression, signed=True),
        "method": x.method, "n": x.n, "notes": list(x.notes),
        "params": ", ".join(f"{k}={v}" for k, v in x.params.items() if k != "by"),
        "reliability": _reliability_rows(x.breakdown),
        "groups": _group_rows(x.breakdown),
        "advice": _advice(x.extra.get("advice")),
        "plots": _plots(x),
        "tables": _tables(x.breakdown),
    }


def view(data: dict[str, Any], *, rendered_at: str | None = None,
         signoff: dict[str, str] | None = None) -> dict[str, Any]:
    """Turn a report dict into ready-to-print strings and plots for the template.

    ``signoff`` overrides the report's sign-off fields (e.g. from CLI options);
    ``rendered_at`` is the render time shown in the footer (now by default).
    """
    report = AuditReport.from_dict(data)
    gate_rows: list[dict[str, str]] = []
    families: dict[str, list[dict[str, Any]]] = {}
    for c in report.checks:
        if c.gates:
            gate_rows += [_gate_row(c, _measurement_for(c, g), g) for g in c.gates]
        else:
            for m in c.measurements or [None]:
                gate_rows.append(_gate_row(c, m, None))
        family = next((m.family for m in c.measurements if m.family), "") or "other"
        families.setdefault(family, []).append({
            "curve": _budget_curve(c),
            "name": c.name, "status": c.status, "description": c.description,
            "location": c.location, "source": c.source, "error": c.error,
            "measurements": [_measurement_view(x) for x in c.measurements],
            "details": {k: v for k, v in c.details.items()
                        if k not in ("classes", "one_class", "one_class_models")},
            "one_class": str(c.details.get("one_class") or ""),
        })
    titles = dict(FAMILIES)
    order = [f for f, _ in FAMILIES if f in families] + sorted(set(families) - set(titles))
    sections = [{"family": f, "title": titles.get(f, "Other checks"), "checks": families[f]}
                for f in order]
    prov = report.provenance
    counts = data.get("counts") or {}
    sign = {k: str((data.get("signoff") or {}).get(k, "")) for k in _SIGNOFF_FIELDS}
    sign.update({k: v for k, v in (signoff or {}).items() if v})
    return {
        "suite": report.suite, "verdict": report.verdict,
        "verdict_words": _VERDICT_WORDS.get(report.verdict, ""),
        "summary": _summary(report),
        "counts": [(k, v) for k, v in counts.items() if v],
        "gate_rows": gate_rows, "sections": sections,
        "artifacts": _artifact_rows(prov),
        "cache": _cache_view(prov),
        "versions": sorted((prov.get("versions") or {}).items()),
        "environment": sorted((prov.get("environment") or {}).items()),
        "git": prov.get("git"), "created": prov.get("created", ""), "finished": prov.get("finished", ""),
        "warnings": list(prov.get("warnings") or []),
        "schema_version": report.schema_version,
        "signoff": sign,
        "rendered_at": rendered_at or datetime.now(UTC).replace(microsecond=0).isoformat(),
    }


def _cache_view(prov: dict[str, Any]) -> dict[str, Any] | None:
    """How cached artifacts were checked: the summary and, per prediction set, how."""
    cache = prov.get("cache")
    if not cache:
        return None
    return {"summary": cache.get("summary", ""),
            "entries": sorted((cache.get("entries") or {}).items()),
            "refused": list(cache.get("refused") or [])}


def _artifact_rows(prov: dict[str, Any]) -> list[dict[str, str]]:
    rows = []
    for role in ("teacher", "student"):
        a = prov.get(role) or {}
        rows.append({"what": role, "kind": a.get("kind", ""), "path": str(a.get("path", "")),
                     "sha256": a.get("sha256", "not loaded")})
    data = prov.get("data") or {}
    for role in TABLES:
        d = data.get(role)
        if d:
            rows.append({"what": f"{role.replace('_', ' ')} data",
                         "kind": f"{d['rows']:,} rows" if d.get("rows") else "table",
                         "path": str(d.get("path", "")), "sha256": d.get("sha256", "not read")})
    return rows


def render_html(data: dict[str, Any], *, rendered_at: str | None = None,
                signoff: dict[str, str] | None = None) -> str:
    """Render the report dict (the JSON report's content) as one self-contained HTML page."""
    import jinja2

    env = jinja2.Environment(
        loader=jinja2.PackageLoader("audit.report", "templates"),
        autoescape=True, undefined=jinja2.StrictUndefined, trim_blocks=True, lstrip_blocks=True,
        finalize=template_value,
    )
    env.filters["visible"] = template_value
    return env.get_template("report.html").render(**view(data, rendered_at=rendered_at,
                                                         signoff=signoff))
