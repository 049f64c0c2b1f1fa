"""The HTML report, rendered from the JSON report's data alone.

Formatting (numbers, intervals, words) and plots happen here, in :func:`view` and
:mod:`audit.report.plots`; the jinja2 template only loops and branches, with autoescape on:
column names, labels and suite text come from users. Every value the template prints is
also made visible first (control, bidi and zero-width characters as escapes, by the
environment's ``finalize``); the JSON keeps the exact values.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from audit.report.baseline import (
    COMPARISON,
    baseline_for,
    baseline_rows,
    baseline_summary,
    has_baseline,
)
from audit.report.plots import figure_svg
from audit.report.regulation import CAVEAT, SOURCES, mapping_for
from audit.report.scorecard import (
    OTHER,
    deciding_gate,
    family_of,
    measurement_for,
    scorecard,
    section_order,
)
from audit.report.terminal import format_estimate, format_value
from audit.results import (
    AuditReport,
    CheckResult,
    Estimate,
    GateResult,
    Measurement,
    Provenance,
    Status,
    Table,
)
from audit.safe import template_value, visible
from audit.spec import TABLES, TEXTS

if TYPE_CHECKING:
    from audit.checks.registry import Family

__all__ = ["render_html", "view", "declared_families", "VERDICT_WORDS"]

VERDICT_WORDS = {
    Status.PASS: "Every blocking gate passed.",
    Status.WARN: "No blocking gate failed; some warnings need a look.",
    Status.INCONCLUSIVE: "Some gates could not be decided with the data available; they block.",
    Status.ERROR: "Some checks could not run; the audit fails closed.",
    Status.FAIL: "At least one blocking gate failed.",
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
    versus = baseline_for(c, m.scope)[1] if m else None
    teacher = _parts(m.teacher) if m else ("", "")
    if g is not None and g.kind == "max_baseline_regression":
        regression = _parts(versus.regression if versus else None, signed=True)
        # the bound compares the student with the baseline: its value stands where the
        # teacher's does, labelled
        value, ci = _parts(versus.teacher if versus else None)
        teacher = (f"baseline {value}", ci)
    elif g is not None and g.kind == "max_relative_regression":
        regression = _parts(m.relative_regression if m else None, signed=True)
    else:
        regression = _parts(m.regression, signed=True) if m else ("", "")
    return {
        "check": c.name, "metric": (m.metric + (f" ({m.scope})" if m.scope else "")) if m else "",
        "teacher": teacher,
        "student": _parts(m.student) if m else ("", ""),
        "regression": regression,
        "gate": g.description if g else ("no gate (measured only)" if c.status is not Status.ERROR else
                                         "could not run"),
        "status": g.status if g else c.status, "severity": g.severity if g else "",
        "reason": (g.reason if g.status is not Status.PASS else "") if g else (c.error or "").split("\n")[0],
    }


def _summary(report: AuditReport) -> str:
    """One paragraph, in words, generated from the results."""
    prov, suite = report.provenance, report.suite
    data = (prov.data or {}).get("eval") or {}
    rows = data.get("rows")
    teacher, student = prov.teacher or {}, prov.student or {}
    parts = [f"The student ({student.get('kind', '?')} model {_name(student.get('path'))}) was "
             f"audited against its teacher ({teacher.get('kind', '?')} model "
             f"{_name(teacher.get('path'))})"
             + (f" on {rows:,} evaluation rows of {_name(data.get('path'))}." if rows else ".")]
    by_status: dict[Status, list[CheckResult]] = {}
    for c in report.checks:
        by_status.setdefault(c.status, []).append(c)
    base = next((c.details["majority_class"] for c in report.checks
                 if "majority_class" in c.details), None)
    one = next((c.details["one_class"] for c in report.checks if c.details.get("one_class")), None)
    if one:  # the most common way a distillation run fails
        parts.append(f"Warning: {one}.")
    if base:
        parts.append(f"For scale: {base}.")
    if has_baseline(report):
        baseline = prov.get("baseline") or {}
        sentence = baseline_summary(baseline_rows(report.to_dict()))
        parts.append(f"A baseline ({baseline.get('kind', '?')} model "
                     f"{_name(baseline.get('path'))}) was measured on the same rows."
                     + (f" {sentence}" if sentence else ""))
    n = len(report.checks)
    passed = len(by_status.get(Status.PASS, [])) + len(by_status.get(Status.INFO, []))
    parts.append(f"{passed} of {n} checks passed or were measured without a gate.")
    for status, word in ((Status.FAIL, "failed"), (Status.INCONCLUSIVE, "could not be decided"),
                         (Status.ERROR, "could not run"), (Status.WARN, "raised a warning")):
        checks = by_status.get(status, [])
        if checks:
            reasons = "; ".join(_why(c) for c in checks)
            parts.append(f"{len(checks)} {word}: {reasons}.")
    not_run = suite.get("not_run") or []
    if not_run:
        parts.append(f"Not run in this report: {', '.join(not_run)}.")
    parts.append(f"Verdict: {report.verdict.upper()}. {VERDICT_WORDS.get(report.verdict, '')}")
    return " ".join(parts)


def _name(path: Any) -> str:
    return str(path).replace("\\", "/").rsplit("/", 1)[-1] if path else "?"


def _why(c: CheckResult) -> str:
    if c.status is Status.ERROR:
        return f"{c.name} ({(c.error or '').splitlines()[0][:160]})"
    bad = [g for g in c.gates if g.status is not Status.PASS]
    g = deciding_gate(c)  # the gate that decided the check's status (a FAIL before an INCONCLUSIVE)
    if g is None:
        return c.name
    observed = _est(g.observed, signed=g.kind.startswith(("max_r", "max_b")))
    more = f"; and {len(bad) - 1} more" if len(bad) > 1 else ""
    return f"{c.name} ({g.description}, observed {observed}{more})"


def _fmt(x: Any, signed: bool = False) -> str:
    return "" if x is None else format_value(float(x), signed)


def _cell(value: Any) -> str:
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float):
        return format_value(value)
    if isinstance(value, Estimate):
        return format_estimate(value)
    if isinstance(value, list):
        return "[" + ", ".join(_cell(v) for v in value) + "]"
    return "" if value is None else str(value)


def _table_view(t: Table) -> dict[str, Any]:
    return {"title": t.title, "columns": list(t.columns), "spans": list(t.spans), "open": t.open,
            "rows": [[(_cell(v), _numeric(v)) for v in row] for row in t.rows]}


def _numeric(value: Any) -> bool:
    return isinstance(value, (int, float, Estimate)) and not isinstance(value, bool)


def _measurement_view(x: Measurement, family: Family | None) -> dict[str, Any]:
    return {
        "metric": x.metric + (f" ({x.scope})" if x.scope else ""),
        "direction": f"{x.direction} is better",
        "teacher": _est(x.teacher), "student": _est(x.student),
        "regression": _est(x.regression, signed=True),
        "relative": _est(x.relative_regression, signed=True),
        "method": x.method, "n": x.n, "notes": list(x.notes),
        # what n counts, as recorded with the measurement; nothing for an exact fact (n = 0)
        "count": f"n = {x.n} {x.evidence.get('unit') or 'eval rows'}; " if x.n else "",
        "params": ", ".join(f"{k}={v}" for k, v in x.params.items() if k != "by"),
        "advice": [] if family is None else [a for a in family.notes(x) if a],
        "plots": [] if family is None else [figure_svg(f) for f in family.figures(x)],
        "tables": [] if family is None else [_table_view(t) for t in family.tables(x)],
        "examples": _examples(x.extra.get("examples")),
    }


MAX_EXAMPLES = 12
_EXAMPLE_KEYS = ("caption", "text", "edited", "image", "teacher", "student", "label")
MAX_SNIPPET = 300


def _examples(raw: Any) -> list[dict[str, str]]:
    """A measurement's examples (flipped texts, corrupted or adversarial images) as the
    template shows them: text cut to :data:`MAX_SNIPPET` characters with control characters
    made visible (the template escapes markup), an image only when it is a well-formed PNG data URI
    (anything else read back from a JSON file is dropped, never rendered)."""
    from audit.thumbnails import is_png_data_uri

    out: list[dict[str, str]] = []
    for item in raw if isinstance(raw, list) else []:
        if not isinstance(item, dict) or len(out) >= MAX_EXAMPLES:
            continue
        shown = {k: _snippet(item.get(k)) for k in ("caption", "text", "edited")
                 if isinstance(item.get(k), str)}
        image = item.get("image")
        if isinstance(image, str) and is_png_data_uri(image):
            shown["image"] = image
        for key in ("teacher", "student", "label"):
            if isinstance(item.get(key), (str, int, float)) and not isinstance(item.get(key), bool):
                shown[key] = _snippet(str(item[key]))
        if shown.keys() - {"caption"}:
            out.append({k: shown.get(k, "") for k in _EXAMPLE_KEYS})
    return out


def _snippet(text: Any) -> str:
    """Text cut to :data:`MAX_SNIPPET` characters, every control or bidi character escaped
    (:func:`audit.safe.visible`, before the cut, so no escape is split)."""
    value = visible(text)
    return value if len(value) <= MAX_SNIPPET else value[:MAX_SNIPPET - 1] + "\u2026"


def declared_families() -> list[Family]:
    """Every check family's report section, from the families' own declarations
    (:class:`audit.checks.registry.Family`), in report order."""
    from audit.checks import catalogue
    from audit.checks.registry import families

    catalogue.load()
    return families()


def view(data: dict[str, Any], *, rendered_at: str | None = None,
         signoff: dict[str, str] | None = None,
         families: Iterable[Family] | None = None) -> dict[str, Any]:
    """Turn a report dict into ready-to-print strings and plots for the template.

    ``signoff`` overrides the report's sign-off fields (e.g. from CLI options);
    ``rendered_at`` is the render time shown in the footer (now by default). ``families``
    declare the sections (title, order, tables and figures; :func:`declared_families` by
    default): a measurement of a family not declared is shown without them, under "Other
    checks".
    """
    report = AuditReport.from_dict(data)
    declared = {f.name: f for f in (declared_families() if families is None else families)}
    gate_rows: list[dict[str, str]] = []
    by_family: dict[str, list[dict[str, Any]]] = {}
    for c in report.checks:
        if c.gates:
            gate_rows += [_gate_row(c, measurement_for(c, g), g) for g in c.gates]
        else:
            for m in c.measurements or [None]:
                gate_rows.append(_gate_row(c, m, None))
        name = family_of(c)
        family = declared.get(name)
        by_family.setdefault(name, []).append({
            "curve": [] if family is None else [figure_svg(f) for f in family.check_figures(c)],
            "name": c.name, "status": c.status, "description": c.description,
            "location": c.location, "source": c.source, "error": c.error,
            "measurements": [_measurement_view(x, declared.get(x.family)) for x in c.measurements],
            "details": {k: v for k, v in c.details.items()
                        if k not in ("classes", "one_class", "one_class_models")},
            "one_class": str(c.details.get("one_class") or ""),
        })
    order = section_order(by_family, declared.values())
    sections = [{"family": f, "checks": by_family[f],
                 "title": declared[f].title if f in declared else "Other checks"} for f in order]
    titles = {s["family"]: s["title"] for s in sections}
    prov = report.provenance
    counts = data.get("counts") or {}
    sign = {k: str((data.get("signoff") or {}).get(k, "")) for k in _SIGNOFF_FIELDS}
    sign.update({k: v for k, v in (signoff or {}).items() if v})
    return {
        "suite": report.suite, "verdict": report.verdict,
        "verdict_words": VERDICT_WORDS.get(report.verdict, ""),
        "summary": _summary(report),
        "counts": [(k, v) for k, v in counts.items() if v],
        "scorecard": [_scorecard_row(r) for r in scorecard(data, families=declared.values())],
        "gate_rows": gate_rows, "sections": sections,
        "has_baseline": has_baseline(report),
        "baseline_rows": [_baseline_row(r) for r in baseline_rows(data)],
        "regulation": {"rows": [{**row, "title": titles[row["family"]]} for row in
                                mapping_for(f for f in order if f != OTHER)],
                       "caveat": CAVEAT, "sources": SOURCES},
        "artifacts": _artifact_rows(prov),
        "cache": _cache_view(prov),
        "versions": sorted((prov.versions or {}).items()),
        "environment": sorted((prov.environment or {}).items()),
        "git": prov.git, "created": prov.created, "finished": prov.finished,
        "warnings": list(prov.warnings or ()),
        "schema_version": report.schema_version,
        "signoff": sign,
        "rendered_at": rendered_at or datetime.now(UTC).replace(microsecond=0).isoformat(),
    }


def _scorecard_row(r: dict[str, Any]) -> dict[str, Any]:
    """A scorecard row (:func:`audit.report.scorecard.scorecard`) as the template prints it."""
    return {"title": r["title"], "anchor": r["anchor"], "status": r["status"], "check": r["check"],
            "metric": r["metric"] + (f" ({r['scope']})" if r["scope"] else ""),
            "teacher": _point(r["teacher"]), "student": _point(r["student"]),
            "baseline": _point(r.get("baseline")),
            "gate": r["gate_text"], "error": r["error"]}


def _against(cell: tuple[str, str]) -> tuple[str, str]:
    """A pairwise metric's value for the student against the baseline, labelled as such."""
    return f"{cell[0]} (student vs baseline)", cell[1]


def _baseline_row(r: dict[str, Any]) -> dict[str, Any]:
    """A row of :func:`audit.report.baseline.baseline_rows` as the template prints it."""
    def parts(e: dict[str, Any] | None, signed: bool = False) -> tuple[str, str]:
        return _parts(None if e is None else Estimate.from_dict(e), signed)

    return {"check": r["check"], "metric": r["metric"] + (f" ({r['scope']})" if r["scope"] else ""),
            "teacher": parts(r["teacher"]), "baseline": parts(r["baseline"]),
            "student": parts(r["student"]),
            "versus": (parts(r["versus"], signed=True) if r["versus"] else
                       _against(parts(r["against"])) if r["against"] else ("\u2014", "")),
            "comparison": COMPARISON[r["comparison"]] if r["versus"] else "",
            "tone": {"better": "pass", "worse": "fail"}.get(r["comparison"], "info")}


def _point(e: dict[str, Any] | None) -> str:
    return "\u2014" if e is None else format_value(Estimate.from_dict(e).value)


def _cache_view(prov: Provenance) -> dict[str, Any] | None:
    """How cached artifacts were checked: the summary and, per prediction set, how."""
    cache = prov.cache
    if not cache:
        return None
    entries = []
    for what, how in sorted((cache.get("entries") or {}).items()):
        kind, _, name = what.partition("/")
        # "measurements/<check>" (a check's reused measurements) or "<role>/<table>"
        entries.append((f"Measurements of {name}" if kind == "measurements" else
                        f"Predictions {what}", how))
    return {"summary": cache.get("summary", ""),
            "entries": entries,
            "refused": list(cache.get("refused") or [])}


def _artifact_rows(prov: Provenance) -> list[dict[str, str]]:
    rows = []
    for role in ("teacher", "student", "baseline"):
        if role == "baseline" and "baseline" not in prov:
            continue
        a = prov.get(role) or {}
        rows.append({"what": role, "kind": a.get("kind", ""), "path": str(a.get("path", "")),
                     "sha256": a.get("sha256", "not loaded")})
    data = prov.data or {}
    for role in (*TABLES, *TEXTS):
        d = data.get(role)
        if d:
            rows.append({"what": f"{role.replace('_', ' ')} data",
                         "kind": f"{d['rows']:,} rows" if d.get("rows") else (
                             "table" if role in TABLES else role.replace("pairs", "minimal pairs")),
                         "path": str(d.get("path", "")), "sha256": d.get("sha256", "not read")})
            read = (data.get("inputs") or {}).get(role) or {}
            if isinstance(read, dict) and read.get("text"):
                rows[-1]["kind"] += f"; models read the text column {read['text']!r}"
            elif isinstance(read, dict) and isinstance(read.get("images"), dict):
                images = read["images"]
                rows[-1]["kind"] += ("; models read images " + (
                    f"from {images.get('path')}" if images.get("path") else
                    f"named in column {images.get('column')!r}") + " (hashed with the table)")
    return rows


def render_html(data: dict[str, Any], *, rendered_at: str | None = None,
                signoff: dict[str, str] | None = None,
                families: Iterable[Family] | None = None) -> str:
    """Render the report dict (the JSON report's content) as one self-contained HTML page;
    each family's section is drawn from its declaration (see :func:`view`)."""
    import jinja2

    env = jinja2.Environment(
        loader=jinja2.PackageLoader("audit.report", "templates"),
        autoescape=True, undefined=jinja2.StrictUndefined, trim_blocks=True, lstrip_blocks=True,
        finalize=template_value,
    )
    return env.get_template("report.html").render(**view(data, rendered_at=rendered_at,
                                                         signoff=signoff, families=families))
