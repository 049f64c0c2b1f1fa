"""The Markdown summary: the report in a pull request comment or a CI job's summary page.

Rendered from the JSON report's dict alone, like the HTML: the title and verdict, the
scorecard (:mod:`audit.report.scorecard`), the gates that did not pass with their values and
intervals, a compact table of every gate, and a link to the HTML report.

Every value that comes from the report is made safe for a Markdown table cell by
:func:`md_text`: control, bidi and zero-width characters written as escapes
(:func:`audit.safe.visible`; a line break can never end a row), ``&``, ``<`` and ``>`` as
entities (GitHub renders raw HTML in Markdown), and the characters that would split a cell or
start a link, an emphasis, a code span, a strikethrough or math (``| [ ] * _ ` ~ # $ \\``)
escaped with a backslash.

A summary longer than ``limit`` bytes (GitHub takes 1 MiB per step for its job summary) is cut
at a line boundary and ends with a note saying how many gate rows were left out.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Any
from urllib.parse import quote

from audit.errors import display_path
from audit.report.baseline import (
    COMPARISON,
    baseline_for,
    baseline_rows,
    baseline_summary,
    has_baseline,
)
from audit.report.html import VERDICT_WORDS, declared_families
from audit.report.scorecard import measurement_for, scorecard
from audit.results import (
    AuditReport,
    CheckResult,
    Estimate,
    Status,
    format_estimate,
    format_value,
)
from audit.safe import visible

__all__ = ["render_markdown", "md_text", "cmd_markdown", "LIGHTS", "STEP_SUMMARY_LIMIT"]

STEP_SUMMARY_LIMIT = 1024 * 1024  # bytes GitHub accepts in one step's job summary
# the status lights (always printed with the status in words)
LIGHTS = {"pass": "\U0001f7e2", "info": "\u26aa", "warn": "\U0001f7e1",
          "inconclusive": "\U0001f7e3", "fail": "\U0001f534", "error": "\u26ab"}
_ENTITIES = {"&": "&amp;", "<": "&lt;", ">": "&gt;"}
_BACKSLASHED = frozenset("\\`*_[]|~#$")
NONE = "\u2014"  # an empty value (a pairwise metric has no teacher value)


def md_text(value: object) -> str:
    """``value`` as text that cannot break a Markdown table cell or inject markup.

    Examples
    --------
    >>> md_text("a|b <img src=x> *c* `d` parity_amplification _e_")
    'a\\\\|b &lt;img src=x&gt; \\\\*c\\\\* \\\\`d\\\\` parity_amplification \\\\_e\\\\_'
    >>> md_text("line\\nbreak \\x1b[2K")
    'line\\\\\\\\nbreak \\\\\\\\x1b\\\\[2K'
    """
    s = visible(value)
    out = []
    for i, ch in enumerate(s):
        if ch in _ENTITIES:
            out.append(_ENTITIES[ch])
        elif ch == "_" and 0 < i < len(s) - 1 and s[i - 1].isalnum() and s[i + 1].isalnum():
            out.append(ch)  # inside a word an underscore can neither open nor close emphasis
        elif ch in _BACKSLASHED:
            out.append("\\" + ch)
        else:
            out.append(ch)
    return "".join(out)


def _row(*cells: str) -> str:
    return "| " + " | ".join(cells) + " |"


def _header(*columns: str) -> list[str]:
    return [_row(*columns), "|" + "---|" * len(columns)]


def _value(e: dict[str, Any] | None) -> str:
    """A scorecard estimate's point value (the scorecard is one screen: the gate tables have the
    intervals)."""
    return NONE if e is None else format_value(e["value"])


def _interval(e: Estimate | None, signed: bool = False) -> str:
    return NONE if e is None else format_estimate(e, signed)


def _verdict(status: str, severity: str = "") -> str:
    text = f"{LIGHTS.get(status, '')} {status.upper()}".strip()
    return f"{text} (severity warn)" if severity == "warn" and status != "pass" else text


def _link(text: str, html_name: str | None, fragment: str = "") -> str:
    if not html_name:
        return text
    target = quote(html_name, safe="/") + (f"#{quote(fragment, safe='')}" if fragment else "")
    return f"[{text}]({target})"


def _name(path: Any) -> str:
    return str(path).replace("\\", "/").rsplit("/", 1)[-1] if path else "?"


def _head(report: AuditReport) -> list[str]:
    verdict = report.verdict.value
    counts = ", ".join(f"{n} {s}" for s, n in report.counts.items() if n)
    lines = [f"# distill-audit: {md_text(report.suite.get('name', '?'))}", "",
             f"**{_verdict(verdict)}**: {VERDICT_WORDS.get(report.verdict, '')} "
             f"{len(report.checks)} checks: {counts or 'none'}."]
    prov = report.provenance
    student, teacher = prov.student or {}, prov.teacher or {}
    data = (prov.data or {}).get("eval") or {}
    about = (f"Student {md_text(_name(student.get('path')))} against teacher "
             f"{md_text(_name(teacher.get('path')))}")
    baseline = prov.get("baseline") or {}
    if baseline:
        about += f" and baseline {md_text(_name(baseline.get('path')))}"
    if data.get("rows"):
        about += f" on {data['rows']:,} eval rows of {md_text(_name(data.get('path')))}"
    if prov.created:
        about += f"; run {md_text(prov.created)}"
    git = prov.git or {}
    if git.get("commit"):
        about += f", commit {md_text(str(git['commit'])[:7])}"
        about += " (uncommitted changes)" if git.get("dirty") else ""
    lines += ["", about + "."]
    not_run = report.suite.get("not_run") or []
    if not_run:
        lines += ["", "This report covers part of the suite. Not run: "
                      f"{', '.join(md_text(n) for n in not_run)}."]
    return lines


def _scorecard(data: dict[str, Any], html_name: str | None, baseline: bool) -> list[str]:
    models = ("Teacher", "Baseline", "Student") if baseline else ("Teacher", "Student")
    lines = ["", "## Scorecard", "",
             *_header("Family", "Status", "Check", "Metric", *models, "Gate")]
    for r in scorecard(data, families=declared_families()):
        metric = md_text(r["metric"] + (f" ({r['scope']})" if r["scope"] else "")) or NONE
        values = ((r["teacher"], r.get("baseline"), r["student"]) if baseline
                  else (r["teacher"], r["student"]))
        lines.append(_row(_link(md_text(r["title"]), html_name, r["anchor"]),
                          _verdict(r["status"]), md_text(r["check"]), metric,
                          *map(_value, values), md_text(r["gate_text"])))
    return lines


def _against_baseline(data: dict[str, Any]) -> list[str]:
    """The section comparing the student with the suite's baseline model (none without one)."""
    rows = baseline_rows(data)
    if not rows:
        return []
    lines = ["", "## Against the baseline", "", baseline_summary(rows), "",
             *_header("Check", "Metric", "Teacher", "Baseline", "Student",
                      "Student's regression from the baseline", "Reading")]
    for r in rows:
        metric = md_text(r["metric"] + (f" ({r['scope']})" if r["scope"] else ""))
        lines.append(_row(md_text(r["check"]), metric,
                          *(_interval(None if r[k] is None else Estimate.from_dict(r[k]))
                            for k in ("teacher", "baseline", "student")),
                          _interval(Estimate.from_dict(r["versus"]), signed=True)
                          if r["versus"] is not None else
                          _interval(Estimate.from_dict(r["against"])) + " (student vs baseline)"
                          if r["against"] is not None else NONE,
                          COMPARISON[r["comparison"]] if r["versus"] else NONE))
    return lines


def _unmet(checks: tuple[CheckResult, ...]) -> list[str]:
    """The section of the gates that did not pass (and of the checks that could not run)."""
    rows = []
    for c in checks:
        if c.status is Status.ERROR:
            rows.append(_row(md_text(c.name), "could not run", NONE, NONE, NONE,
                             _verdict("error"), md_text((c.error or "").split("\n")[0])))
            continue
        for g in c.gates:
            if g.status is Status.PASS:
                continue
            m = measurement_for(c, g)
            relative = g.kind == "max_relative_regression"
            regression = None if m is None else m.relative_regression if relative else m.regression
            teacher = _interval(m.teacher if m else None)
            if g.kind == "max_baseline_regression":  # the baseline's value in the teacher's place
                versus = baseline_for(c, g.scope)[1]
                regression = versus.regression if versus else None
                teacher = "baseline " + _interval(versus.teacher if versus else None)
            rows.append(_row(md_text(c.name), md_text(g.description),
                             teacher, _interval(m.student if m else None),
                             _interval(regression, signed=True),
                             _verdict(g.status.value, g.severity), md_text(g.reason) or NONE))
    if not rows:
        return ["", "## Gates that did not pass", "", "None: every gate passed."]
    return ["", f"## Gates that did not pass ({len(rows)})", "",
            *_header("Check", "Gate", "Teacher", "Student", "Regression", "Verdict", "Why"),
            *rows]


def _every_gate(checks: tuple[CheckResult, ...]) -> list[str]:
    rows = []
    for c in checks:
        if c.gates:
            rows += [_row(md_text(c.name), md_text(g.description),
                          _interval(g.observed, signed=g.kind.startswith(("max_r", "max_b"))),
                          _verdict(g.status.value, g.severity)) for g in c.gates]
        elif c.status is Status.ERROR:
            rows.append(_row(md_text(c.name), "could not run", NONE, _verdict("error")))
        else:
            for m in c.measurements or [None]:
                what = NONE if m is None else md_text(m.metric + (f" ({m.scope})" if m.scope
                                                                  else ""))
                rows.append(_row(md_text(c.name), f"no gate (measured only): {what}",
                                 _interval(m.student if m else None), _verdict(c.status.value)))
    return ["", f"## Every gate ({len(rows)})", "",
            *_header("Check", "Gate", "Observed", "Verdict"), *rows]


def render_markdown(report: dict[str, Any], *, html_name: str | None = None,
                    limit: int | None = None) -> str:
    """The Markdown summary of a report dict (the JSON report's content).

    Parameters
    ----------
    report
        A report as :meth:`audit.results.AuditReport.to_dict` writes it.
    html_name
        The HTML report's path relative to where the summary is read (``20261201T120000Z.html``
        beside it): the scorecard's families link to its sections and the summary ends with a
        link to it. ``None``: no links.
    limit
        The most bytes (UTF-8) the summary may take. A longer one is cut at a line boundary
        and ends with a note saying how many gate rows were left out and to open the HTML
        report; a limit too small for that note gives ``""``.
    """
    parsed = AuditReport.from_dict(report)
    lines: list[tuple[str, bool]] = [(line, False) for line in _head(parsed)]
    lines += [(line, False) for line in _scorecard(report, html_name, has_baseline(parsed))]
    for section in (_unmet(parsed.checks), _against_baseline(report), _every_gate(parsed.checks)):
        # a section's rows are the lines after its header's separator
        start = next((i + 1 for i, line in enumerate(section) if line.startswith("|---")),
                     len(section))
        lines += [(line, i >= start) for i, line in enumerate(section)]
    tail = ("Full report with plots, per-group tables and provenance: "
            f"{_link(md_text(html_name), html_name)}." if html_name else
            "The HTML report beside the JSON report has the plots, per-group tables and "
            "provenance.")
    lines += [("", False), (tail, False)]
    text = "\n".join(line for line, _ in lines) + "\n"
    if limit is None or len(text.encode("utf-8")) <= limit:
        return text
    return _truncated(lines, limit, html_name)


def _truncated(lines: list[tuple[str, bool]], limit: int, html_name: str | None) -> str:
    total = sum(row for _, row in lines)
    where = (f"the HTML report, {_link(md_text(html_name), html_name)}," if html_name
             else "the HTML report")

    def note(left_out: int) -> str:
        return (f"**Truncated:** {left_out:,} of {total:,} gate rows were left out to keep this "
                f"summary within {limit:,} bytes; open {where} for all of them.")

    budget = limit - len(note(total).encode("utf-8")) - 2  # the blank line and the last newline
    kept: list[str] = []
    size = 0
    for line, _ in lines:
        size += len(line.encode("utf-8")) + 1
        if size > budget:
            break
        kept.append(line)
    left_out = sum(row for _, row in lines[len(kept):])
    while kept and not kept[-1]:
        kept.pop()
    if not kept:
        last = note(left_out) + "\n"
        return last if len(last.encode("utf-8")) <= limit else ""
    return "\n".join(kept) + "\n\n" + note(left_out) + "\n"


def cmd_markdown(json_path: Path, output: Path | None) -> int:
    """``distill-audit report REPORT.json --format md [-o PATH.md]``: the Markdown summary of a
    JSON report, to ``output`` (an earlier file there is moved aside, as the writer does) or to
    standard output. It links the HTML report beside the JSON (``REPORT.html``) when there is
    one. Returns the exit status: 0, or 2 with a one-line error on standard error (a report
    that cannot be read or is invalid, an output that is not ``.md`` or cannot be written).
    """
    from audit.errors import AuditError
    from audit.report.jsonio import read_report

    if output is not None and (output.suffix.lower() != ".md"
                               or output.resolve() == json_path.resolve()):
        print(visible(f"error: -o {output}: the Markdown summary's path must end in .md (and not "
                      "be the JSON report)"), file=sys.stderr)
        return 2
    try:
        report = read_report(json_path)
    except AuditError as exc:
        print(visible(f"error: {exc}"), file=sys.stderr)
        return 2
    html = json_path.with_suffix(".html")
    base = Path.cwd() if output is None else output.parent
    html_name = Path(os.path.relpath(html.resolve(), base.resolve())).as_posix() if html.is_file() else None
    text = render_markdown(report.to_dict(), html_name=html_name)
    if output is None:
        sys.stdout.write(text)
        return 0
    try:
        aside = _write_keeping_earlier(output, text.encode("utf-8"))
    except OSError as exc:
        print(visible(f"error: {display_path(output)}: cannot write the Markdown summary "
                      f"({_why(exc, output)}); choose another path with -o"), file=sys.stderr)
        return 2
    if aside is not None:
        print(visible(f"(kept earlier {output.name} as {aside})"))
    print(visible(str(output)))
    return 0


# cmd_markdown writes its one file itself: the writer (audit.report.writer) renders summaries
# with this module, so importing it back would close a circle
def _write_keeping_earlier(path: Path, data: bytes) -> Path | None:
    """Write ``data`` to ``path`` atomically (a temporary file beside it, then a rename); a file
    already there is first moved aside to ``<name>.<its mtime, UTC><suffix>`` (``-2``, ``-3``...
    if that is taken), as the writer keeps earlier reports. Returns where it went, if anywhere."""
    import tempfile
    from datetime import UTC, datetime

    if path.is_dir():
        raise IsADirectoryError(21, "is a folder, not a file", str(path))
    aside = None
    if path.exists():
        stamp = datetime.fromtimestamp(path.stat().st_mtime, UTC).strftime("%Y%m%dT%H%M%SZ")
        aside, i = path.with_name(f"{path.stem}.{stamp}{path.suffix}"), 2
        while aside.exists():
            aside, i = path.with_name(f"{path.stem}.{stamp}-{i}{path.suffix}"), i + 1
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fchmod(fh.fileno(), 0o644)
            os.fsync(fh.fileno())
        if aside is not None:
            os.replace(path, aside)
        os.replace(tmp, path)
    finally:
        Path(tmp).unlink(missing_ok=True)
    return aside


def _why(exc: OSError, target: Path) -> str:
    """A file standing where a folder must be, or the OS's words (``Permission denied``...)."""
    for parent in target.parents:
        if parent.exists():
            if not parent.is_dir():
                return f"{display_path(parent)} is a file, not a folder"
            break
    return exc.strerror or str(exc) or type(exc).__name__
