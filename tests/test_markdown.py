# ruff: noqa: E501 (the expected summary's table rows are as long as the summary writes them)
"""The Markdown summary: its exact text, escaping of hostile values, the byte limit, the files
the writer puts beside each report, GitHub's step summary, and ``cmd_markdown``."""

from __future__ import annotations

import json
import os
import re
from pathlib import Path

import pytest

from audit.report.markdown import STEP_SUMMARY_LIMIT, cmd_markdown, md_text, render_markdown
from audit.report.writer import write_report
from audit.results import AuditReport, CheckResult, Estimate, GateResult, Measurement


@pytest.fixture(autouse=True)
def _no_step_summary(monkeypatch: pytest.MonkeyPatch) -> None:
    """These tests write reports: never into the summary of a CI job that runs them."""
    monkeypatch.delenv("GITHUB_STEP_SUMMARY", raising=False)


SUITE = {"name": "demo", "path": "/x/demo.audit.yaml", "sha256": "ab" * 32, "description": "",
         "text": "version: 1\n", "includes": [], "not_run": [],
         "settings": {"seed": 0, "confidence": 0.95, "bootstrap": 1000, "inconclusive": "fail"}}


def _report(checks: tuple[CheckResult, ...], verdict: str = "fail", **prov: object) -> AuditReport:
    provenance = {
        "teacher": {"kind": "skops", "path": "/m/teacher.skops", "sha256": "1" * 64},
        "student": {"kind": "onnx", "path": "/m/student.onnx", "sha256": "2" * 64},
        "data": {"sha256": "3" * 64, "eval": {"path": "/d/eval.csv", "sha256": "3" * 64, "rows": 1568}},
        "versions": {"numpy": "2"}, "environment": {"command": "pytest"},
        "git": {"commit": "0123456789abcdef", "dirty": True}, "created": "2026-12-01T12:00:00+00:00",
        "finished": "2026-12-01T12:00:09+00:00", "seed": 0, "warnings": []}
    provenance.update(prov)
    return AuditReport(suite=dict(SUITE), verdict=verdict, checks=checks, provenance=provenance)


def small_failing_report() -> AuditReport:
    """A failed gate, a passing pairwise check, an undecided fairness bound, a measurement
    without a gate and a check that could not run."""
    acc = Measurement("accuracy", "higher", Estimate(0.64, (0.62, 0.66)),
                      teacher=Estimate(0.83, (0.81, 0.85)), regression=Estimate(0.19, (0.17, 0.21)),
                      family="performance")
    agree = Measurement("agreement", "higher", Estimate(0.91, (0.89, 0.93)), family="fidelity")
    parity = Measurement("demographic_parity_difference", "lower", Estimate(0.12, (0.08, 0.16)),
                         teacher=Estimate(0.05, (0.02, 0.08)), regression=Estimate(0.07, (0.03, 0.11)),
                         family="fairness", params={"by": "colour"})
    leak = Measurement("leakage", "lower", Estimate(0.0), family="data")
    return _report((
        CheckResult("accuracy", "fail", (acc,), (
            GateResult("min", 0.5, "pass", "block", "student accuracy >= 0.5",
                       Estimate(0.64, (0.62, 0.66))),
            GateResult("max_regression", 0.02, "fail", "block",
                       "accuracy regression (teacher - student) <= 0.02",
                       Estimate(0.19, (0.17, 0.21))))),
        CheckResult("agreement", "pass", (agree,), (
            GateResult("min", 0.9, "pass", "block", "student agreement >= 0.9",
                       Estimate(0.91, (0.89, 0.93))),)),
        CheckResult("parity", "inconclusive", (parity,), (
            GateResult("max_regression", 0.1, "inconclusive", "block",
                       "demographic_parity_difference regression (student - teacher) <= 0.1 (by colour)",
                       Estimate(0.07, (0.03, 0.11)), reason="the interval straddles the threshold",
                       scope="by colour"),)),
        CheckResult("leakage", "info", (leak,)),
        CheckResult("latency", "error", error="ValueError: no timings\nTraceback ..."),
    ))


EXPECTED = """\
# distill-audit: demo

**🔴 FAIL**: At least one blocking gate failed. 5 checks: 1 pass, 1 info, 1 inconclusive, 1 error, 1 fail.

Student student.onnx against teacher teacher.skops on 1,568 eval rows of eval.csv; run 2026-12-01T12:00:00+00:00, commit 0123456 (uncommitted changes).

## Scorecard

| Family | Status | Check | Metric | Teacher | Student | Gate |
|---|---|---|---|---|---|---|
| [Predictive performance](r.html#family-performance) | 🔴 FAIL | accuracy | accuracy | 0.830 | 0.640 | regression ≤ 0.02: fail |
| [Fidelity to the teacher](r.html#family-fidelity) | 🟢 PASS | agreement | agreement | — | 0.910 | all passed |
| [Fairness across groups](r.html#family-fairness) | 🟣 INCONCLUSIVE | parity | demographic_parity_difference (by colour) | 0.050 | 0.120 | regression ≤ 0.1: inconclusive |
| [Data](r.html#family-data) | ⚪ INFO | leakage | leakage | — | 0.000 | no gate (measured only) |
| [Other checks](r.html#family-other) | ⚫ ERROR | latency | — | — | — | could not run |

## Gates that did not pass (3)

| Check | Gate | Teacher | Student | Regression | Verdict | Why |
|---|---|---|---|---|---|---|
| accuracy | accuracy regression (teacher - student) &lt;= 0.02 | 0.830 [0.810, 0.850] | 0.640 [0.620, 0.660] | +0.190 [+0.170, +0.210] | 🔴 FAIL | — |
| parity | demographic_parity_difference regression (student - teacher) &lt;= 0.1 (by colour) | 0.050 [0.020, 0.080] | 0.120 [0.080, 0.160] | +0.070 [+0.030, +0.110] | 🟣 INCONCLUSIVE | the interval straddles the threshold |
| latency | could not run | — | — | — | ⚫ ERROR | ValueError: no timings |

## Every gate (6)

| Check | Gate | Observed | Verdict |
|---|---|---|---|
| accuracy | student accuracy &gt;= 0.5 | 0.640 [0.620, 0.660] | 🟢 PASS |
| accuracy | accuracy regression (teacher - student) &lt;= 0.02 | +0.190 [+0.170, +0.210] | 🔴 FAIL |
| agreement | student agreement &gt;= 0.9 | 0.910 [0.890, 0.930] | 🟢 PASS |
| parity | demographic_parity_difference regression (student - teacher) &lt;= 0.1 (by colour) | +0.070 [+0.030, +0.110] | 🟣 INCONCLUSIVE |
| leakage | no gate (measured only): leakage | 0.000 | ⚪ INFO |
| latency | could not run | — | ⚫ ERROR |

Full report with plots, per-group tables and provenance: [r.html](r.html).
"""


def test_the_summary_of_a_failing_report_is_exactly_this() -> None:
    assert render_markdown(small_failing_report().to_dict(), html_name="r.html") == EXPECTED


def test_it_is_rendered_from_the_json_alone() -> None:
    data = json.loads(json.dumps(small_failing_report().to_dict(), sort_keys=True))
    assert render_markdown(data, html_name="r.html") == EXPECTED
    text = render_markdown(data)  # no HTML to link: no links
    assert "](" not in text
    assert text.endswith("The HTML report beside the JSON report has the plots, per-group tables "
                         "and provenance.\n")


def test_a_partial_report_says_what_was_not_run() -> None:
    report = small_failing_report()
    partial = AuditReport(suite={**report.suite, "not_run": ["size", "speed"]},
                          verdict=report.verdict, checks=report.checks, provenance=report.provenance)
    lines = render_markdown(partial.to_dict()).splitlines()
    assert lines[5:8] == ["", "This report covers part of the suite. Not run: size, speed.", ""]


# ------------------------------------------------------------------------------- escaping
HOSTILE = ("<img src=x onerror=alert(1)> | `rm -rf` *bold* _em_ ~~gone~~ [click](javascript:alert(1))"
           " &amp; $x$ # \\| line\nbreak\r\x1b[2K\r  accuracy PASSED \u202eevil")


def _unescaped_pipes(line: str) -> int:
    """The ``|`` that split a GitHub table row (a backslash escapes the character after it)."""
    count, i = 0, 0
    while i < len(line):
        if line[i] == "\\":
            i += 2
            continue
        count += line[i] == "|"
        i += 1
    return count


def _hostile_report() -> AuditReport:
    by_pipe = Measurement("demographic_parity_difference", "lower", Estimate(0.2, (0.1, 0.3)),
                          teacher=Estimate(0.1), regression=Estimate(0.1, (0.0, 0.2)),
                          family="fairness", params={"by": "|"}, notes=(HOSTILE,))
    odd = Measurement(HOSTILE, "lower", Estimate(0.5), family=HOSTILE)
    gates = (GateResult("max_regression", 0.05, "fail", "block", HOSTILE, Estimate(0.1, (0.0, 0.2)),
                        reason=HOSTILE, scope="by |"),
             GateResult("max", 0.5, "pass", "warn", "|", Estimate(0.2), scope="by |"))
    checks = (CheckResult(HOSTILE, "fail", (by_pipe,), gates, description=HOSTILE),
              CheckResult("|", "info", (odd,)),
              CheckResult("`x`", "error", error=HOSTILE))
    return AuditReport(suite={**SUITE, "name": HOSTILE, "not_run": [HOSTILE]}, verdict="fail",
                       checks=checks, provenance={
                           "teacher": {"kind": "skops", "path": HOSTILE}, "student": {"path": "|"},
                           "data": {"eval": {"path": HOSTILE, "rows": 3}},
                           "git": {"commit": HOSTILE, "dirty": False}, "created": HOSTILE})


def test_hostile_values_cannot_break_a_table_or_inject_html() -> None:
    text = render_markdown(_hostile_report().to_dict(), html_name="r <x>|.html", limit=None)
    assert "<img" not in text and "<" not in text and ">" not in text  # no raw HTML at all
    assert "&lt;img src=x onerror=alert(1)&gt;" in text
    assert "\\[click\\](javascript:alert(1))" in text  # brackets escaped: no link
    assert not re.search(r"(?<!\\)[\[\]]click", text)
    for bad in ("\x1b", "\r", "\u202e"):
        assert bad not in text
    assert "\\\\x1b\\[2K\\\\r  accuracy PASSED \\\\u202eevil" in text  # shown, as escapes
    lines = text.split("\n")
    tables = 0
    for i, line in enumerate(lines):
        if line.startswith("|---"):
            tables += 1
            width = _unescaped_pipes(lines[i - 1])
            rows = 0
            for row in lines[i + 1:]:
                if not row:
                    break
                assert row.startswith("| ") and row.endswith(" |"), row
                assert _unescaped_pipes(row) == width, row
                rows += 1
            assert rows
        elif line and not line.startswith("|"):  # text lines: the summary's own words first
            assert line.startswith(("# distill-audit: ", "**\U0001f534 FAIL**: ", "Student ",
                                    "This report covers part", "## ", "Full report")), line
    assert tables == 3
    assert "| \\| | " in text  # the check named "|", in its own cell
    # the link targets are percent-encoded: a name cannot end or extend a link
    assert "(r%20%3Cx%3E%7C.html#family-%26lt%3Bimg" not in text
    assert re.search(r"\]\(r%20%3Cx%3E%7C\.html#family-[^ )]*\)", text)


def test_md_text_escapes_what_markdown_would_interpret() -> None:
    assert md_text("a|b") == "a\\|b"
    assert md_text("<b>&") == "&lt;b&gt;&amp;"
    assert md_text("parity_amplification") == "parity_amplification"  # inside a word: plain
    assert md_text("_x_ *y* `z` ~w~ [l](u) #h $m$ \\") == (
        "\\_x\\_ \\*y\\* \\`z\\` \\~w\\~ \\[l\\](u) \\#h \\$m\\$ \\\\")
    assert md_text("two\nlines\x1b") == "two\\\\nlines\\\\x1b"
    assert md_text(0.5) == "0.5"


# ------------------------------------------------------------------------------- the limit
def _many_gates_report(n: int) -> AuditReport:
    ms = tuple(Measurement("latency_ms", "lower", Estimate(1.0 + i, (0.5 + i, 1.5 + i)),
                           teacher=Estimate(2.0 + i), regression=Estimate(-1.0), family="efficiency",
                           params={"batch": i}) for i in range(n))
    gates = tuple(GateResult("max", 1000.0, "fail" if i % 4 == 0 else "pass", "block",
                             f"student latency_ms <= 1000 (batch {i})", Estimate(1.0 + i),
                             scope=f"batch {i}") for i in range(n))
    return _report((CheckResult("latency", "fail", ms, gates),))


def _gate_rows(text: str) -> int:
    return sum(1 for line in text.split("\n")
               if line.startswith("| latency | student latency_ms"))


@pytest.mark.parametrize("limit", [4_000, 9_000, 20_000])
def test_a_summary_over_the_limit_is_cut_at_a_line_and_says_how_many_rows_are_missing(
        limit: int) -> None:
    data = _many_gates_report(200).to_dict()
    full = render_markdown(data, html_name="r.html")
    assert len(full.encode()) > limit
    text = render_markdown(data, html_name="r.html", limit=limit)
    assert len(text.encode("utf-8")) <= limit
    *kept, blank, note, end = text.split("\n")
    assert (blank, end) == ("", "")
    assert kept == full.split("\n")[:len(kept)]  # a prefix of whole lines
    total = _gate_rows(full)
    assert total == 200 + 50  # every gate, and the 50 that failed
    left_out = total - _gate_rows(text)
    assert note == (f"**Truncated:** {left_out:,} of {total:,} gate rows were left out to keep "
                    f"this summary within {limit:,} bytes; open the HTML report, [r.html](r.html), "
                    "for all of them.")
    assert 0 < left_out < total


def test_the_limit_leaves_a_short_summary_alone_and_a_tiny_one_empty() -> None:
    data = small_failing_report().to_dict()
    full = render_markdown(data)
    assert render_markdown(data, limit=len(full.encode())) == full
    assert render_markdown(data, limit=40) == ""
    head = render_markdown(data, limit=200)  # the title and the note fit, nothing else
    assert head == ("# distill-audit: demo\n\n**Truncated:** 9 of 9 gate rows were left out to "
                    "keep this summary within 200 bytes; open the HTML report for all of them.\n")


# ------------------------------------------------------------------------------- the writer
def test_every_run_writes_the_summary_beside_its_report_and_as_latest(tmp_path: Path) -> None:
    paths = write_report(small_failing_report(), report_dir=tmp_path)
    assert paths.markdown == paths.json.with_suffix(".md")
    assert str(paths.markdown) in paths.lines()
    folder = tmp_path / "demo"
    data = json.loads(paths.json.read_text())
    assert paths.markdown.read_text() == render_markdown(data, html_name=paths.html.name)
    assert (folder / "latest.md").read_text() == render_markdown(data, html_name="latest.html")
    assert sorted(p.suffix for p in folder.iterdir() if p.stem == paths.json.stem) == [
        ".html", ".json", ".md"]


def test_explicit_paths_put_the_summary_beside_the_json(tmp_path: Path) -> None:
    paths = write_report(small_failing_report(), json_path=tmp_path / "json" / "r.json",
                         html_path=tmp_path / "html" / "page.html")
    assert paths.markdown == tmp_path / "json" / "r.md"
    assert "[../html/page.html](../html/page.html)." in paths.markdown.read_text()
    only_html = write_report(small_failing_report(), html_path=tmp_path / "again.html")
    assert only_html.markdown is None and not (tmp_path / "again.md").exists()  # a re-render


def test_github_step_summary_gets_each_run_appended(tmp_path: Path,
                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    summary = tmp_path / "step_summary.md"
    monkeypatch.setenv("GITHUB_STEP_SUMMARY", str(summary))
    first = write_report(small_failing_report(), report_dir=tmp_path / "reports")
    second = write_report(small_failing_report(), report_dir=tmp_path / "reports")
    assert first.notes == [] and second.notes == []
    text = summary.read_text(encoding="utf-8")
    assert text.count("# distill-audit: demo\n") == 2
    assert text == first.markdown.read_text() + "\n" + second.markdown.read_text()


def test_github_step_summary_stays_within_a_mebibyte(tmp_path: Path,
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    summary = tmp_path / "step_summary.md"
    monkeypatch.setenv("GITHUB_STEP_SUMMARY", str(summary))
    summary.write_bytes(b"x" * (STEP_SUMMARY_LIMIT - 1_500))
    cut = write_report(small_failing_report(), report_dir=tmp_path)
    assert summary.stat().st_size <= STEP_SUMMARY_LIMIT
    assert "**Truncated:**" in summary.read_text() and "**Truncated:**" not in cut.markdown.read_text()
    assert cut.notes == ["the summary appended to $GITHUB_STEP_SUMMARY was cut to the 1,499 bytes "
                         "left of the 1,048,576 a step may write; the .md beside the report is "
                         "complete"]
    summary.write_bytes(b"x" * STEP_SUMMARY_LIMIT)
    full = write_report(small_failing_report(), report_dir=tmp_path)
    assert summary.stat().st_size == STEP_SUMMARY_LIMIT
    assert any("summary not appended to $GITHUB_STEP_SUMMARY" in note for note in full.notes)


def test_an_unwritable_step_summary_is_a_note_not_a_lost_report(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GITHUB_STEP_SUMMARY", str(tmp_path / "is-a-folder"))
    (tmp_path / "is-a-folder").mkdir()
    paths = write_report(small_failing_report(), report_dir=tmp_path / "reports")
    assert paths.json.exists() and paths.markdown.exists()
    assert [n for n in paths.notes if n.startswith("could not append the summary")]


# ------------------------------------------------------------------------------- the command
def test_cmd_markdown_writes_the_summary_of_a_json_report(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    paths = write_report(small_failing_report(), json_path=tmp_path / "r.json",
                         html_path=tmp_path / "r.html")
    capsys.readouterr()
    assert cmd_markdown(tmp_path / "r.json", None) == 0
    out = capsys.readouterr().out
    link = Path(os.path.relpath(tmp_path / "r.html")).as_posix()  # from the working directory
    assert out == render_markdown(json.loads(paths.json.read_text()), html_name=link)
    target = tmp_path / "out" / "summary.md"
    target.parent.mkdir()
    assert cmd_markdown(tmp_path / "r.json", target) == 0
    assert target.read_text() == EXPECTED.replace("(r.html", "(../r.html").replace(
        "[r.html]", "[../r.html]")
    assert capsys.readouterr().out == f"{target}\n"
    assert cmd_markdown(tmp_path / "r.json", target) == 0  # the earlier one is kept aside
    (aside,) = [p for p in target.parent.iterdir() if p != target]
    assert aside.read_text() == target.read_text()
    assert capsys.readouterr().out == f"(kept earlier summary.md as {aside})\n{target}\n"


@pytest.mark.parametrize(("output", "expected"), [
    ("r.txt", "error: -o r.txt: the Markdown summary's path must end in .md (and not be the JSON "
              "report)"),
    ("missing/r.md", None),
])
def test_cmd_markdown_errors_are_one_line_and_exit_2(
        tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch,
        output: str, expected: str | None) -> None:
    monkeypatch.chdir(tmp_path)
    write_report(small_failing_report(), json_path=tmp_path / "r.json")
    capsys.readouterr()
    (tmp_path / "missing").write_text("a file")
    assert cmd_markdown(Path("r.json"), Path(output)) == 2
    err = capsys.readouterr().err
    assert err == (expected or "error: missing/r.md: cannot write the Markdown summary (missing "
                               "is a file, not a folder); choose another path with -o") + "\n"
    (tmp_path / "bad.json").write_text("{}")
    assert cmd_markdown(Path("bad.json"), None) == 2
    assert capsys.readouterr() == ("", "error: bad.json: not a distill-audit JSON report (no "
                                       "schema_version)\n")
