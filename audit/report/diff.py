"""What changed between two reports (two releases, or two runs of one release).

Plain data first (:func:`diff_reports`), then words for the terminal (:func:`format_diff`) and
an HTML page (:func:`render_diff_html`). A metric "moved" when either point estimate lies
outside the other run's interval; a smaller change is within the noise the intervals describe.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from audit.report.terminal import format_estimate
from audit.results import AuditReport, Estimate
from audit.spec import TABLES, TEXTS

__all__ = ["ReportDiff", "diff_reports", "format_diff", "render_diff_html"]


@dataclass(frozen=True)
class ReportDiff:
    """The differences between an old and a new report."""

    old_name: str
    new_name: str
    verdict: tuple[str, str]
    statuses: list[dict[str, Any]] = field(default_factory=list)  # every check, flipped or not
    moved: list[dict[str, Any]] = field(default_factory=list)  # metrics beyond their intervals
    hashes: list[dict[str, Any]] = field(default_factory=list)  # every artifact, changed or not

    @property
    def flipped(self) -> list[dict[str, Any]]:
        return [s for s in self.statuses if s["old"] != s["new"]]

    @property
    def changed_hashes(self) -> list[dict[str, Any]]:
        return [h for h in self.hashes if h["old"] != h["new"]]


def _beyond(a: Estimate | None, b: Estimate | None) -> bool:
    """True when a's value lies outside b's interval or b's outside a's."""
    if a is None or b is None:
        return False

    def outside(x: float, e: Estimate) -> bool:
        return e.ci is not None and x == x and not (e.ci[0] <= x <= e.ci[1])

    return outside(a.value, b) or outside(b.value, a)


def _artifacts(report: AuditReport) -> dict[str, str | None]:
    prov = report.provenance
    data = prov.get("data") or {}
    return {
        "suite": report.suite.get("sha256") or None,
        "teacher": (prov.get("teacher") or {}).get("sha256"),
        "student": (prov.get("student") or {}).get("sha256"),
        "baseline": (prov.get("baseline") or {}).get("sha256"),
        **{f"{role.replace('_', ' ')} data": (data.get(role) or {}).get("sha256")
           for role in (*TABLES, *TEXTS)},
    }


def diff_reports(old: AuditReport, new: AuditReport) -> ReportDiff:
    """Compare two reports check by check, metric by metric and artifact by artifact."""
    old_checks = {c.name: c for c in old.checks}
    new_checks = {c.name: c for c in new.checks}
    statuses, moved = [], []
    for name in [*old_checks, *(n for n in new_checks if n not in old_checks)]:
        a, b = old_checks.get(name), new_checks.get(name)
        statuses.append({"check": name, "old": a.status if a else "absent",
                         "new": b.status if b else "absent"})
        if a is None or b is None:
            continue
        # the student's, the teacher's and the regression; and with a baseline, the
        # baseline's value and the student's regression from it
        for old_list, new_list, parts in (
                (a.measurements, b.measurements, (("student", "student"), ("teacher", "teacher"),
                                                  ("regression", "regression"))),
                (a.baseline, b.baseline, (("student", "baseline"),)),
                (a.versus_baseline, b.versus_baseline, (("regression", "baseline regression"),))):
            old_ms = {(m.metric, m.scope): m for m in old_list}
            for m in new_list:
                before = old_ms.get((m.metric, m.scope))
                if before is None:
                    continue
                for attr, who in parts:
                    x, y = getattr(before, attr), getattr(m, attr)
                    if _beyond(x, y):
                        signed = attr == "regression"
                        moved.append({"check": name, "metric": m.metric, "scope": m.scope,
                                      "who": who, "old": format_estimate(x, signed=signed),
                                      "new": format_estimate(y, signed=signed),
                                      "delta": y.value - x.value})  # type: ignore[union-attr]
    old_art, new_art = _artifacts(old), _artifacts(new)
    hashes = [{"artifact": k, "old": old_art[k], "new": new_art[k]} for k in old_art
              if old_art[k] or new_art[k]]
    return ReportDiff(old.suite.get("name", "?"), new.suite.get("name", "?"),
                      (old.verdict, new.verdict), statuses, moved, hashes)


def format_diff(d: ReportDiff) -> list[str]:
    """The diff in words, for the terminal."""
    out = [f"verdict: {d.verdict[0].upper()} -> {d.verdict[1].upper()}"
           + ("" if d.verdict[0] != d.verdict[1] else " (unchanged)")]
    flipped = d.flipped
    out.append(f"checks whose status changed: {len(flipped)}")
    out += [f"  {s['check']}: {s['old']} -> {s['new']}" for s in flipped]
    out.append(f"metrics that moved beyond their intervals: {len(d.moved)}")
    for m in d.moved:
        scope = f" [{m['scope']}]" if m["scope"] else ""
        out.append(f"  {m['check']}: {m['metric']}{scope} {m['who']} {m['old']} -> {m['new']}")
    changed = d.changed_hashes
    out.append(f"artifacts that changed: {len(changed)}")
    out += [f"  {h['artifact']}: {(h['old'] or 'none')[:12]} -> {(h['new'] or 'none')[:12]}"
            for h in changed]
    return out


def render_diff_html(d: ReportDiff) -> str:
    """The diff as one self-contained HTML page (autoescaped)."""
    import jinja2

    from audit.safe import template_value

    env = jinja2.Environment(loader=jinja2.PackageLoader("audit.report", "templates"),
                             autoescape=True, undefined=jinja2.StrictUndefined,
                             trim_blocks=True, lstrip_blocks=True, finalize=template_value)
    return env.get_template("diff.html").render(d=d, flipped=d.flipped,
                                                changed=d.changed_hashes)
