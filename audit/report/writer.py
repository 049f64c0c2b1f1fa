"""Writing reports atomically, never destroying earlier evidence.

By default a run writes ``<report_dir>/<suite>/<UTC timestamp>.json`` and ``.html`` (a new pair
per run) and then atomically replaces ``latest.json`` / ``latest.html`` beside them -- unless the
run covers part of the suite (``-k``, ``-x``, ad-hoc checks), which never becomes "latest". Two
suite files with the same ``name`` get separate folders. An explicit
path that already holds a report is first moved aside to ``<name>.<its mtime><suffix>``, and
the move is reported, so nothing is overwritten silently.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from audit.cache import atomic_write_bytes
from audit.report.html import render_html
from audit.report.jsonio import report_to_json, validate_report
from audit.results import AuditReport

__all__ = ["ReportPaths", "write_report"]


@dataclass
class ReportPaths:
    """Where a report went, and any earlier file that was moved aside to make room."""

    json: Path | None = None
    html: Path | None = None
    moved: list[tuple[Path, Path]] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    def lines(self) -> list[str]:
        out = [str(p) for p in (self.html, self.json) if p is not None]
        out += [f"(kept earlier {old.name} as {new})" for old, new in self.moved]
        out += [f"({note})" for note in self.notes]
        return out


def _stamp(when: datetime) -> str:
    return when.strftime("%Y%m%dT%H%M%SZ")


def _free(path: Path) -> Path:
    """``path``, or ``path`` with ``-2``, ``-3``... before the suffix if it exists."""
    candidate, i = path, 2
    while candidate.exists():
        candidate = path.with_name(f"{path.stem}-{i}{path.suffix}")
        i += 1
    return candidate


def _suite_folder(report_dir: Path, report: AuditReport) -> Path:
    """``report_dir/<suite name>``, unless that folder already holds another suite file's
    reports under the same name: then ``<name>-<8 hex digits of the suite's path>``."""
    import hashlib
    import json

    name = report.suite["name"]
    folder = report_dir / name
    path = report.suite.get("path")
    latest = folder / "latest.json"
    if path and latest.exists():
        try:
            other = json.loads(latest.read_text(encoding="utf-8"))["suite"].get("path")
        except (OSError, ValueError, KeyError, TypeError):
            other = None
        if other and other != path:
            return report_dir / f"{name}-{hashlib.sha256(path.encode()).hexdigest()[:8]}"
    return folder


def _make_room(path: Path, moved: list[tuple[Path, Path]]) -> None:
    if path.exists():
        mtime = datetime.fromtimestamp(path.stat().st_mtime, UTC)
        aside = _free(path.with_name(f"{path.stem}.{_stamp(mtime)}{path.suffix}"))
        os.replace(path, aside)
        moved.append((path, aside))


def write_report(report: AuditReport, *, report_dir: Path | None = None, json_path: Path | None = None,
                 html_path: Path | None = None, signoff: dict[str, str] | None = None) -> ReportPaths:
    """Write the JSON report and the HTML rendered from it.

    Explicit ``json_path``/``html_path`` win; otherwise both go to a new timestamped pair under
    ``report_dir/<suite name>/`` and ``latest.*`` is updated. ``signoff`` fills the HTML's
    sign-off block without changing the JSON record (re-rendering a report to sign it).
    """
    data = report.to_dict()
    text = report_to_json(data)
    html = render_html(data, signoff=signoff)
    out = ReportPaths()
    if json_path is None and html_path is None:
        if report_dir is None:
            validate_report(data)
            return out
        folder = _suite_folder(report_dir, report)
        folder.mkdir(parents=True, exist_ok=True)
        base = _free(folder / f"{_stamp(datetime.now(UTC))}.json")
        json_path, html_path = base, base.with_suffix(".html")
        atomic_write_bytes(json_path, text.encode("utf-8"))
        atomic_write_bytes(html_path, html.encode("utf-8"))
        if report.suite.get("not_run"):
            out.notes.append("latest.* not updated: this run covers part of the suite")
        else:
            atomic_write_bytes(folder / "latest.json", text.encode("utf-8"))
            atomic_write_bytes(folder / "latest.html", html.encode("utf-8"))
        out.json, out.html = json_path, html_path
        validate_report(data)  # after writing: a report that breaks its schema is a bug, not lost
        return out
    for path, payload in ((json_path, text), (html_path, html)):
        if path is None:
            continue
        _make_room(path, out.moved)
        atomic_write_bytes(path, payload.encode("utf-8"))
    out.json, out.html = json_path, html_path
    validate_report(data)
    return out
