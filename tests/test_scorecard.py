"""The scorecard (one row per check family, at the top of the HTML report) and the regulatory
mapping shown in the HTML report's provenance section."""

from __future__ import annotations

import re
from typing import Any

import pytest

from audit.report.html import declared_families, render_html
from audit.report.regulation import MAPPING, mapping_for
from audit.report.scorecard import WORST_FIRST, deciding_gate, family_of, scorecard
from audit.results import AuditReport, CheckResult, Estimate, GateResult, Measurement


def _report(checks: tuple[CheckResult, ...]) -> AuditReport:
    suite = {"name": "demo", "path": "/x/demo.audit.yaml", "sha256": "ab" * 32, "description": "",
             "text": "version: 1\n", "includes": [], "not_run": [],
             "settings": {"seed": 0, "confidence": 0.95, "bootstrap": 1000, "inconclusive": "fail"}}
    return AuditReport(suite=suite, verdict="fail", checks=checks,
                       provenance={"teacher": {"kind": "skops", "path": "t.skops", "sha256": "1" * 64},
                                   "student": {"kind": "onnx", "path": "s.onnx", "sha256": "2" * 64},
                                   "data": {"sha256": "3" * 64,
                                            "eval": {"path": "e.csv", "sha256": "3" * 64, "rows": 9}},
                                   "versions": {}, "environment": {}, "git": None, "created": "t0",
                                   "finished": "t1", "seed": 0, "warnings": []})


def _m(metric: str, family: str, student: float, teacher: float | None = None,
       **params: Any) -> Measurement:
    return Measurement(metric, "higher", Estimate(student, (student - 0.01, student + 0.01)),
                       teacher=None if teacher is None else Estimate(teacher),
                       regression=None if teacher is None else Estimate(teacher - student),
                       family=family, params=params)


def _g(status: str, kind: str = "min", scope: str = "", severity: str = "block") -> GateResult:
    return GateResult(kind, 0.5, status, severity, f"{kind} 0.5 {scope}".strip(), Estimate(0.4),
                      scope=scope)


RANK = {s.value: len(WORST_FIRST) - i for i, s in enumerate(WORST_FIRST)}


def _rows(report: AuditReport) -> list[dict[str, Any]]:
    return scorecard(report.to_dict(), families=declared_families())


def test_arrests_has_one_row_per_family_with_its_worst_status(arrests_report: Any) -> None:
    report = arrests_report
    rows = _rows(report)
    by_family: dict[str, list[CheckResult]] = {}
    for c in report.checks:
        by_family.setdefault(family_of(c), []).append(c)
    assert [r["family"] for r in rows] == [f.name for f in declared_families()
                                           if f.name in by_family]
    for r in rows:
        checks = by_family[r["family"]]
        assert r["status"] == max((c.status.value for c in checks), key=RANK.__getitem__)
        assert r["checks"] == len(checks) and r["anchor"] == f"family-{r['family']}"
    fairness = next(r for r in rows if r["family"] == "fairness")
    assert (fairness["status"], fairness["check"], fairness["scope"]) == (
        "warn", "parity_amplification", "by colour")  # the FAIL (severity warn) bound decided it
    (check,) = [c for c in report.checks if c.name == "parity_amplification"]
    decided = next(m for m in check.measurements if m.scope == "by colour")
    assert fairness["teacher"] == decided.teacher.to_dict()
    assert fairness["student"] == decided.student.to_dict()
    assert fairness["gate"]["status"] == "fail" and fairness["gate"]["severity"] == "warn"
    assert fairness["gate_text"] == "regression \u2264 0.02: fail (severity warn)"
    performance = rows[0]  # every gate passed: the first check's first measurement
    assert (performance["family"], performance["status"], performance["check"]) == (
        "performance", "pass", "accuracy")
    assert performance["gate"] is None and performance["gate_text"] == "all passed"


def test_the_html_opens_with_the_scorecard_and_links_each_section(arrests_report: Any) -> None:
    html = render_html(arrests_report.to_dict())
    assert html.index('id="verdict"') < html.index('id="scorecard"') < html.index('id="gates"')
    card = html[html.index('id="scorecard"'):html.index('id="gates"')]
    anchors = re.findall(r'<a href="#(family-[a-z_]+)">', card)
    assert anchors == [r["anchor"] for r in _rows(arrests_report)]
    assert all(f'<h2 id="{a}">' in html for a in anchors)
    assert '<span class="badge s-warn">warn</span>' in card


def test_the_worst_status_puts_error_first_and_pass_before_info() -> None:
    checks = (CheckResult("a", "fail", (_m("accuracy", "performance", 0.4, 0.9),), (_g("fail"),)),
              CheckResult("b", "error", (_m("f1", "performance", 0.1),), error="boom\nmore"),
              CheckResult("c", "info", (_m("leakage", "data", 0.0),)),
              CheckResult("d", "pass", (_m("drifted_columns", "data", 0.0),), (_g("pass"),)),
              CheckResult("e", "warn", (_m("ece", "calibration", 0.1, 0.1),),
                          (_g("fail", severity="warn"),)))
    rows = {r["family"]: r for r in _rows(_report(checks))}
    assert [rows[f]["status"] for f in ("performance", "calibration", "data")] == [
        "error", "warn", "pass"]
    assert rows["performance"]["check"] == "b" and rows["performance"]["error"] == "boom"
    assert rows["performance"]["gate_text"] == "could not run"
    assert rows["data"]["check"] == "d" and rows["data"]["gate_text"] == "all passed"
    only_info = _rows(_report(checks[2:3]))
    assert [(r["status"], r["gate_text"]) for r in only_info] == [
        ("info", "no gate (measured only)")]


def test_the_deciding_gate_is_the_one_the_summary_cites() -> None:
    ms = (_m("dpd", "fairness", 0.2, 0.1, by="colour"), _m("dpd", "fairness", 0.3, 0.1, by="sex"))
    gates = (_g("pass", "max_regression", "by colour"),
             _g("inconclusive", "max_regression", "by colour"),
             _g("fail", "max_regression", "by sex"))
    check = CheckResult("parity", "fail", ms, gates)
    assert deciding_gate(check) is gates[2]  # the FAIL, though an INCONCLUSIVE comes first
    (row,) = _rows(_report((check,)))
    assert row["scope"] == "by sex" and row["student"]["value"] == 0.3
    assert row["regression"]["value"] == pytest.approx(-0.2)
    assert deciding_gate(CheckResult("x", "pass", ms, gates[:1])) is None


def test_a_relative_gate_shows_the_relative_regression() -> None:
    m = Measurement("log_loss", "lower", Estimate(0.5), teacher=Estimate(0.4),
                    regression=Estimate(0.1), relative_regression=Estimate(0.25),
                    family="performance")
    check = CheckResult("ll", "fail", (m,), (_g("fail", "max_relative_regression"),))
    (row,) = _rows(_report((check,)))
    assert row["regression"]["value"] == 0.25
    assert row["gate_text"] == "relative regression \u2264 0.5: fail"


def test_families_not_declared_follow_in_name_order_and_errors_without_measurements_are_other(
) -> None:
    checks = (CheckResult("z", "pass", (_m("m", "zeta", 0.1),)),
              CheckResult("broken", "error", error="x"),
              CheckResult("acc", "pass", (_m("accuracy", "performance", 0.9, 0.9),)))
    rows = _rows(_report(checks))
    assert [(r["family"], r["title"]) for r in rows] == [
        ("performance", "Predictive performance"), ("other", "Other checks"), ("zeta", "Other checks")]
    html = render_html(_report(checks).to_dict())
    assert all(f'<h2 id="family-{f}">' in html for f in ("performance", "other", "zeta"))


# ------------------------------------------------------------------ the regulatory mapping
def _regulation_families(html: str) -> list[str]:
    start = html.index('<table id="regulation">')
    table = html[start:html.index("</table>", start)]
    return re.findall(r'<td><a href="#family-([a-z_]+)">', table)


def test_the_regulatory_table_lists_exactly_the_families_present(arrests_report: Any) -> None:
    html = render_html(arrests_report.to_dict())
    present = [r["family"] for r in _rows(arrests_report)]
    assert _regulation_families(html) == present
    assert html.index('id="provenance"') < html.index('id="regulation"') < html.index('id="signoff"')
    assert "not a claim of compliance" in html and "Regulation (EU) 2024/1689" in html


def test_the_regulatory_table_follows_the_report_and_skips_what_it_cannot_map() -> None:
    checks = (CheckResult("mia", "pass", (_m("mia_auc", "privacy", 0.5, 0.5),)),
              CheckResult("odd", "pass", (_m("m", "unheard_of", 0.1),)),
              CheckResult("broken", "error", error="x"))
    html = render_html(_report(checks).to_dict())
    assert _regulation_families(html) == ["privacy"]
    assert "MEASURE 2.10: privacy risk examined and documented" in html
    assert 'id="regulation"' not in render_html(_report(checks[1:]).to_dict())


def test_every_declared_family_is_mapped_with_what_it_does_and_does_not_provide() -> None:
    assert sorted(row["family"] for row in MAPPING) == sorted(f.name for f in declared_families())
    for row in MAPPING:
        assert row["eu_ai_act"] and row["nist_ai_rmf"], row["family"]
        assert all(c.startswith(("Art. ", "Annex IV ")) for c in row["eu_ai_act"]), row
        assert all(re.match(r"MEASURE 2\.\d+: ", c) for c in row["nist_ai_rmf"]), row
        assert row["provides"].endswith(".") and row["does_not"].endswith("."), row
    assert [r["family"] for r in mapping_for(["data", "fairness", "data", "other"])] == [
        "data", "fairness"]
