"""The governance report: structure for every verdict, schema validity, hostile strings,
sign-off, size, and `distill-audit diff`."""

from __future__ import annotations

import json
import re
from html.parser import HTMLParser
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml

from audit import SuiteRun, load_suite
from audit.cli import main
from audit.report.diff import diff_reports, format_diff, render_diff_html
from audit.report.html import render_html
from audit.report.jsonio import read_report, validate_report
from audit.report.writer import write_report
from fixtures.synthetic import write_pair, write_suite

ROOT = Path(__file__).resolve().parents[1]


class Page(HTMLParser):
    """Tags, ids and visible text of an HTML page."""

    def __init__(self, html: str) -> None:
        super().__init__(convert_charrefs=True)
        self.tags: list[tuple[str, dict[str, str | None]]] = []
        self.text: list[str] = []
        self._stack: list[str] = []
        self.feed(html)

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append((tag, dict(attrs)))

    def handle_data(self, data: str) -> None:
        if data.strip():
            self.text.append(data.strip())

    def by_id(self, ident: str) -> dict[str, str | None] | None:
        return next((a for t, a in self.tags if a.get("id") == ident), None)

    def count(self, tag: str) -> int:
        return sum(1 for t, _ in self.tags if t == tag)


CHECKS = {
    "accuracy": {"metric": "accuracy", "gate": {"min": 0.5, "max_regression": 0.02}},
    "agreement": {"metric": "agreement", "gate": {"min": 0.95}},
    "calibration": {"metric": "ece", "bins": 10, "gate": {"max_regression": 0.05}},
    "parity": {"metric": "demographic_parity_difference", "min_group_size": 20,
               "gate": {"max_regression": 0.1}},
}


def _report(folder: Path, degrade: float, checks: dict = CHECKS, **pair: object):
    write_pair(folder, n=600, degrade=degrade, **pair)
    return SuiteRun(load_suite(write_suite(folder, checks))).report()


@pytest.fixture(scope="module")
def reports(tmp_path_factory: pytest.TempPathFactory) -> dict:
    base = tmp_path_factory.mktemp("governance")
    out = {"pass": _report(base / "pass", 0.0), "fail": _report(base / "fail", 0.4)}
    broken = base / "error"
    write_pair(broken, n=600)
    (broken / "student.csv").write_text("p_No,p_Yes\n0.5,0.5\n")
    out["error"] = SuiteRun(load_suite(write_suite(broken, CHECKS))).report()
    # a threshold at the point value: the interval must straddle it
    straddle = base / "inconclusive"
    probe = _report(straddle, 0.0, {"accuracy": {"metric": "accuracy"}})
    point = probe.checks[0].measurements[0].student.value
    out["inconclusive"] = _report(straddle, 0.0, {"accuracy": {"metric": "accuracy",
                                                               "gate": {"min": point}}})
    return out


@pytest.mark.parametrize("verdict", ["pass", "fail", "error", "inconclusive"])
def test_each_verdict_renders_with_the_verdict_first_and_every_gate(reports: dict,
                                                                   verdict: str) -> None:
    report = reports[verdict]
    assert report.verdict == verdict
    data = report.to_dict()
    validate_report(data)
    html = render_html(data, rendered_at="T")
    page = Page(html)
    assert page.by_id("verdict") is not None
    assert html.index('id="verdict"') < html.index('id="summary"') < html.index('id="gates"')
    gate_rows = sum(max(len(c.gates), 1 if not c.gates else 0) or len(c.measurements) or 1
                    for c in report.checks)
    body = html[html.index('id="gates"'):html.index("</table>", html.index('id="gates"'))]
    assert body.count("<tr>") - 1 == gate_rows  # minus the header row
    assert page.count("script") == 0 and page.count("link") == 0
    assert page.by_id("signoff") is not None and page.by_id("provenance") is not None
    summary = html[html.index('id="summary"'):html.index("</p>", html.index('id="summary"'))]
    assert f"Verdict: {verdict.upper()}." in summary


def test_sections_render_only_for_families_that_ran(reports: dict) -> None:
    page = Page(render_html(reports["pass"].to_dict()))
    ids = {a.get("id") for _, a in page.tags}
    assert {"family-performance", "family-fidelity", "family-calibration", "family-fairness"} <= ids
    only_accuracy = Page(render_html(reports["inconclusive"].to_dict()))
    ids = {a.get("id") for _, a in only_accuracy.tags}
    assert "family-performance" in ids and "family-calibration" not in ids
    assert "family-fairness" not in ids


def test_plots_are_inline_svg(reports: dict) -> None:
    html = render_html(reports["pass"].to_dict())
    page = Page(html)
    labels = [a.get("aria-label") for t, a in page.tags if t == "svg"]
    assert "Reliability: ece" in labels
    assert any(label and label.startswith("selection_rate by group") for label in labels)
    assert "http" not in html.replace('xmlns="http://www.w3.org/2000/svg"', "")


def test_family_tables_show_teacher_and_student_side_by_side(reports: dict) -> None:
    """The calibration and fairness families' tables (declared with the families, drawn by
    the generic table of the report): a header row of spans above the columns."""
    html = render_html(reports["pass"].to_dict())
    assert "<summary>Reliability table</summary>" in html
    assert '<th colspan="3">Teacher</th><th colspan="3">Student</th>' in html
    assert "<summary>Groups: demographic_parity_difference (by group)</summary>" in html
    assert '<th colspan="2">Selection rate</th>' in html
    bins = re.findall(r"<td>(\[[0-9.]+, [0-9.]+\))</td>", html)
    assert bins and bins == sorted(bins)  # confidence bins in order


def test_failing_summary_says_what_failed_and_why(reports: dict) -> None:
    html = render_html(reports["fail"].to_dict())
    summary = html[html.index('id="summary"'):html.index("</p>", html.index('id="summary"'))]
    assert "failed: accuracy (accuracy regression (teacher - student) &lt;= 0.02, observed +0." in summary


HOSTILE = '"><img src=x onerror=alert(1)><script>alert("x")</script> é 名前'


def test_hostile_column_names_and_group_values_stay_text(tmp_path: Path) -> None:
    write_pair(tmp_path, n=400)
    frame = pd.read_csv(tmp_path / "eval.csv")
    frame = frame.rename(columns={"group": HOSTILE})
    frame[HOSTILE] = np.where(frame[HOSTILE] == "a", HOSTILE, "b</td></tr></table>")
    frame.to_csv(tmp_path / "eval.csv", index=False)
    suite = write_suite(tmp_path, {"parity": {"metric": "demographic_parity_difference",
                                              "min_group_size": 10, "description": HOSTILE}})
    raw = yaml.safe_load(suite.read_text())
    raw["data"]["sensitive"] = [HOSTILE]
    raw["description"] = HOSTILE
    suite.write_text(yaml.safe_dump(raw, allow_unicode=True))
    report = SuiteRun(load_suite(suite)).report()
    assert report.checks[0].status == "info"
    html = render_html(report.to_dict())
    page = Page(html)
    assert page.count("script") == 0 and page.count("img") == 0
    assert sum(1 for t, _ in page.tags if t == "table") == html.count("<table")  # nothing injected
    assert any(HOSTILE in t for t in page.text)  # shown, as text
    assert "名前" in html


def test_every_written_report_follows_the_shipped_schema(reports: dict, tmp_path: Path) -> None:
    for verdict, report in reports.items():
        paths = write_report(report, report_dir=tmp_path / verdict)
        validate_report(json.loads(paths.json.read_text()))
    bad = reports["pass"].to_dict()
    bad["checks"][0]["status"] = "great"
    with pytest.raises(Exception, match=r"checks/0/status"):
        validate_report(bad)


def test_sign_off_is_filled_from_options_without_touching_the_json(reports: dict, tmp_path: Path,
                                                                  capsys: pytest.CaptureFixture) -> None:
    paths = write_report(reports["pass"], report_dir=tmp_path)
    before = paths.json.read_bytes()
    out = tmp_path / "signed.html"
    assert main(["report", str(paths.json), "-o", str(out), "--reviewer", "A. Reviewer",
                 "--role", "Model risk", "--decision", "approved", "--date", "2026-11-28"]) == 0
    page = Page(out.read_text())
    text = " ".join(page.text)
    assert "Reviewer A. Reviewer" in text and "Decision approved" in text
    assert paths.json.read_bytes() == before


def test_the_example_report_is_small(arrests_report: object, tmp_path: Path) -> None:
    report = arrests_report
    paths = write_report(report, report_dir=tmp_path)
    assert paths.html.stat().st_size < 2_000_000
    assert paths.json.stat().st_size < 2_000_000


def test_diff_names_flipped_verdicts_moved_metrics_and_changed_hashes(reports: dict,
                                                                     tmp_path: Path) -> None:
    d = diff_reports(reports["pass"], reports["fail"])
    assert d.verdict == ("pass", "fail")
    assert {"check": "accuracy", "old": "pass", "new": "fail"} in d.flipped
    assert any(m["check"] == "accuracy" and m["who"] == "student" for m in d.moved)
    assert [h["artifact"] for h in d.changed_hashes] == ["student"]  # same suite text and data
    lines = format_diff(d)
    assert lines[0] == "verdict: PASS -> FAIL"
    assert "  accuracy: pass -> fail" in lines
    same = diff_reports(reports["pass"], reports["pass"])
    assert same.flipped == [] and same.moved == [] and same.changed_hashes == []
    html = render_diff_html(d)
    assert "<script" not in html and "accuracy" in html


def test_diff_command(reports: dict, tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    old = write_report(reports["pass"], json_path=tmp_path / "old.json").json
    new = write_report(reports["fail"], json_path=tmp_path / "new.json").json
    assert main(["diff", str(old), str(new), "--html", str(tmp_path / "d.html")]) == 0
    out = capsys.readouterr().out
    assert out.startswith("verdict: PASS -> FAIL\n")
    assert (tmp_path / "d.html").exists()
    assert read_report(new).verdict == "fail"
    assert main(["diff", str(old), str(tmp_path / "missing.json")]) == 2
