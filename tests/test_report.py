"""Results round-trip through JSON; the HTML is rendered from the JSON alone and escapes
user data; reports are written atomically and never overwrite earlier evidence."""

from __future__ import annotations

import json
import math
import re
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from audit.errors import AuditError
from audit.report.html import render_html
from audit.report.jsonio import read_report, report_to_json
from audit.report.writer import write_report
from audit.results import AuditReport, CheckResult, Estimate, GateResult, Measurement

floats = st.floats(allow_nan=True, allow_infinity=False, width=64)
finite = st.floats(allow_nan=False, allow_infinity=False, min_value=-1e6, max_value=1e6)
text = st.text(max_size=20)


@st.composite
def estimates(draw: st.DrawFn) -> Estimate:
    v = draw(floats)
    ci = draw(st.none() | st.tuples(finite, finite))
    return Estimate(v, ci)


@st.composite
def check_results(draw: st.DrawFn) -> CheckResult:
    m = Measurement(draw(text), draw(st.sampled_from(["higher", "lower"])), draw(estimates()),
                    teacher=draw(st.none() | estimates()), regression=draw(st.none() | estimates()),
                    relative_regression=draw(st.none() | estimates()), method=draw(text),
                    n=draw(st.integers(0, 10**7)), params=draw(st.dictionaries(text, text, max_size=2)),
                    notes=tuple(draw(st.lists(text, max_size=2))))
    g = GateResult(draw(st.sampled_from(["min", "max", "max_regression"])), draw(finite),
                   draw(st.sampled_from(["pass", "fail", "inconclusive"])),
                   draw(st.sampled_from(["block", "warn"])), draw(text),
                   observed=draw(st.none() | estimates()), reason=draw(text))
    return CheckResult(draw(text), draw(st.sampled_from(["pass", "fail", "warn", "error", "info"])),
                       measurements=(m,), gates=(g,), error=draw(st.none() | text),
                       source=draw(st.sampled_from(["suite", "python"])), location=draw(text),
                       description=draw(text), details={"n_eval": draw(st.integers(0, 100))})


def _report(checks: tuple[CheckResult, ...], **suite: object) -> AuditReport:
    info = {"name": "demo", "path": "/x/demo.audit.yaml", "sha256": "ab" * 32, "description": "",
            "text": "version: 1\n", "includes": [], "not_run": [],
            "settings": {"seed": 0, "confidence": 0.95, "bootstrap": 1000, "inconclusive": "fail"}}
    info.update(suite)
    return AuditReport(suite=info, verdict="fail", checks=checks,
                       provenance={"teacher": {"kind": "skops", "path": "t.skops", "sha256": "1" * 64},
                                   "student": {"kind": "onnx", "path": "s.onnx", "sha256": "2" * 64},
                                   "data": {"sha256": "3" * 64,
                                            "eval": {"path": "e.csv", "sha256": "3" * 64, "rows": 9}},
                                   "versions": {"numpy": "2"}, "environment": {"command": "pytest"},
                                   "git": None, "created": "t0", "finished": "t1", "seed": 0,
                                   "warnings": []})


@given(st.lists(check_results(), max_size=3))
@settings(max_examples=60, deadline=None)
def test_json_round_trip_is_exact(checks: list[CheckResult]) -> None:
    report = _report(tuple(checks))
    text = report_to_json(report)
    back = AuditReport.from_dict(json.loads(text))
    assert back == report
    assert report_to_json(back) == text


def test_nan_is_written_as_null() -> None:
    m = Measurement("roc_auc", "higher", Estimate(float("nan")))
    d = json.loads(report_to_json(_report((CheckResult("auc", "inconclusive", (m,)),))))
    assert d["checks"][0]["measurements"][0]["student"] == {"value": None, "ci": None}
    assert math.isnan(AuditReport.from_dict(d).checks[0].measurements[0].student.value)


HOSTILE = '<script>alert("x")</script> \' " & é 名前 </td></table>'


def test_html_escapes_every_user_string() -> None:
    m = Measurement("accuracy", "higher", Estimate(0.8, (0.7, 0.9)), teacher=Estimate(0.9),
                    notes=(HOSTILE,), params={"average": HOSTILE})
    g = GateResult("min", 0.5, "fail", "block", HOSTILE, Estimate(0.8), reason=HOSTILE)
    checks = (CheckResult(HOSTILE, "fail", (m,), (g,), error=HOSTILE, location=HOSTILE,
                          description=HOSTILE),)
    html = render_html(_report(checks, description=HOSTILE, text=HOSTILE, not_run=[HOSTILE]).to_dict())
    assert "<script>" not in html
    assert "&lt;script&gt;alert(&#34;x&#34;)&lt;/script&gt;" in html
    assert "</td></table> " not in html
    assert "名前" in html


def test_html_is_self_contained() -> None:
    html = render_html(_report(()).to_dict())
    for needle in ("<script", "http://", "https://", "<link", "@import", "src="):
        assert needle not in html


def test_html_puts_the_verdict_first_and_shows_every_gate() -> None:
    m = Measurement("accuracy", "higher", Estimate(0.64, (0.62, 0.66)), teacher=Estimate(0.83, (0.81, 0.85)),
                    regression=Estimate(0.19, (0.17, 0.21)), relative_regression=Estimate(0.23, (0.2, 0.25)))
    g = GateResult("max_regression", 0.02, "fail", "block",
                   "accuracy regression (teacher - student) <= 0.02", Estimate(0.19, (0.17, 0.21)))
    html = render_html(_report((CheckResult("accuracy", "fail", (m,), (g,)),)).to_dict())
    assert html.index('class="verdict s-fail" id="verdict">FAIL') < html.index("<h2>Gates</h2>")
    assert html.index('id="summary"') < html.index("<h2>Gates</h2>")
    assert "accuracy regression (teacher - student) &lt;= 0.02" in html
    assert "+0.190 [+0.170, +0.210]" in html and "0.640 [0.620, 0.660]" in html


def test_default_layout_keeps_every_run_and_updates_latest(tmp_path: Path) -> None:
    first = write_report(_report(()), report_dir=tmp_path)
    second = write_report(_report((), description="second"), report_dir=tmp_path)
    assert first.json != second.json and first.json.exists() and second.json.exists()
    folder = tmp_path / "demo"
    assert json.loads((folder / "latest.json").read_text())["suite"]["description"] == "second"
    assert (folder / "latest.html").read_text() == second.html.read_text()
    assert not list(folder.glob(".*tmp"))


def test_explicit_path_moves_the_earlier_report_aside(tmp_path: Path) -> None:
    target = tmp_path / "r.json"
    write_report(_report(()), json_path=target)
    old = target.read_text()
    old_md = (tmp_path / "r.md").read_text()
    paths = write_report(_report((), description="new"), json_path=target)
    (was, aside), (was_md, aside_md) = paths.moved  # the summary beside it is kept as well
    assert was == target and aside.read_text() == old
    assert was_md == tmp_path / "r.md" and aside_md.read_text() == old_md
    assert json.loads(target.read_text())["suite"]["description"] == "new"
    assert f"(kept earlier r.json as {aside})" in paths.lines()


def test_rerendering_from_json_is_identical_apart_from_the_render_time(tmp_path: Path) -> None:
    paths = write_report(_report(()), report_dir=tmp_path)
    again = render_html(json.loads(paths.json.read_text()), rendered_at="T")
    first = paths.html.read_text()
    assert re.sub(r"Rendered \S+ from", "Rendered T from", first) == again


def test_read_report_errors(tmp_path: Path) -> None:
    bad = tmp_path / "bad.json"
    bad.write_text("{}")
    with pytest.raises(AuditError, match=r"bad.json: not a distill-audit JSON report \(no schema_version\)"):
        read_report(bad)
    future = tmp_path / "future.json"
    d = _report(()).to_dict()
    d["schema_version"] = "2.0"
    future.write_text(json.dumps(d))
    with pytest.raises(AuditError, match="schema_version '2.0' is not supported"):
        read_report(future)


def test_roc_and_budget_curves_render_from_report_data() -> None:
    roc = ({"kind": "roc", "model": "teacher", "fpr": [0.0, 0.5, 1.0], "tpr": [0.0, 0.6, 1.0]},
           {"kind": "roc", "model": "student", "fpr": [0.0, 0.5, 1.0], "tpr": [0.0, 0.9, 1.0]})
    mia = Measurement("mia_auc", "lower", Estimate(0.7, (0.65, 0.75)), teacher=Estimate(0.55),
                      breakdown=roc, family="privacy")
    curve = tuple(Measurement("robust_accuracy", "higher", Estimate(v, (v - 0.05, v + 0.05)),
                              teacher=Estimate(v + 0.1, (v, v + 0.2)), params={"eps": e},
                              family="robustness") for e, v in ((0.05, 0.8), (0.1, 0.6)))
    checks = (CheckResult("privacy", "info", (mia,)), CheckResult("robust", "info", curve))
    html = render_html(_report(checks).to_dict())
    assert 'aria-label="Membership ROC: mia_auc"' in html
    assert 'aria-label="robust_accuracy by perturbation budget"' in html
    assert 'id="family-privacy"' in html and 'id="family-robustness"' in html


def test_an_interval_end_that_rounds_onto_the_threshold_is_printed_in_full() -> None:
    """0.20025 against max 0.2 is inconclusive: printing it as 0.200 would hide why."""
    from audit.report.terminal import gate_line
    from audit.results import Estimate, GateResult

    def line(high: float, status: str) -> str:
        return gate_line(GateResult(kind="max", threshold=0.2, status=status, severity="block",
                                     description="", observed=Estimate(0.11, (0.055, high)),
                                     reason="", scope=""))

    assert line(0.20025, "inconclusive").startswith("  student    0.110 [0.055, 0.20025]  ~  max 0.2")
    assert line(0.15, "pass").startswith("  student    0.110 [0.055, 0.150]  <=  max 0.2")


def test_status_is_a_str_enum_that_serialises_to_todays_strings() -> None:
    from audit.results import STATUSES, Status, combine_statuses

    assert [s.value for s in STATUSES] == ["pass", "info", "warn", "inconclusive", "error", "fail"]
    c = CheckResult("x", "inconclusive")
    assert c.status is Status.INCONCLUSIVE and c.status == "inconclusive" and not c.passed
    assert json.dumps(c.to_dict()["status"]) == '"inconclusive"'
    assert type(c.to_dict()["status"]) is str  # plain data: crosses xdist workers as is
    assert f"{c.status}" == "inconclusive" and c.status.upper() == "INCONCLUSIVE"
    assert combine_statuses(["pass", "info", "warn"]) is Status.WARN
    assert combine_statuses(["info"]) is Status.PASS and combine_statuses([]) is Status.ERROR
    assert {s for s in Status if s.blocking} == {Status.FAIL, Status.ERROR, Status.INCONCLUSIVE}
    with pytest.raises(ValueError):
        CheckResult("x", "passed")


def test_provenance_is_typed_and_keeps_the_json_shape() -> None:
    from audit.results import Provenance

    report = _report(())
    prov = report.provenance
    assert isinstance(prov, Provenance)
    assert prov.git is None and prov["git"] is None and prov.seed == 0
    assert prov.data["eval"]["rows"] == 9 and prov.get("cache") is None and "cache" not in prov
    d = prov.to_dict()
    assert set(d) == {"teacher", "student", "data", "versions", "environment", "git", "created",
                      "finished", "seed", "warnings"}  # exactly the keys it was given
    assert Provenance.from_dict({**d, "future": 1}).to_dict() == {**d, "future": 1}
    assert Provenance.from_dict(d) == prov


def test_the_terminal_summary_lists_every_gate_that_did_not_pass() -> None:
    from audit.report.terminal import format_summary

    m = Measurement("accuracy", "higher", Estimate(0.64, (0.62, 0.66)), teacher=Estimate(0.83),
                    regression=Estimate(0.19, (0.17, 0.21)))
    gates = (GateResult("min", 0.5, "pass", "block", "", Estimate(0.64, (0.62, 0.66))),
             GateResult("max_regression", 0.02, "fail", "block", "", Estimate(0.19, (0.17, 0.21))),
             GateResult("max", 0.6, "inconclusive", "warn", "", Estimate(0.64, (0.62, 0.66)),
                        reason="why"))
    checks = (CheckResult("accuracy", "fail", (m,), gates),
              CheckResult("broken", "error", error="it broke\nsecond line"),
              CheckResult("fine", "pass", (m,), gates[:1]))
    lines = format_summary([(_report(checks), ["r.html"])])
    assert lines == [
        "demo: FAIL (1 pass, 1 error, 1 fail)",
        "  FAIL         accuracy: regression +0.190 [+0.170, +0.210]  >  max_regression 0.02"
        "   -> FAIL",
        "                         student    0.640 [0.620, 0.660]  ~  max 0.6   -> INCONCLUSIVE"
        " (severity: warn) (why)",
        "  ERROR        broken: ERROR: it broke",
        "  report: r.html",
    ]


def test_a_family_renders_from_its_declaration_alone() -> None:
    """A family the renderers have never heard of: its title, place, figures and tables come
    from its Family declaration (nothing in html.py, terminal.py or plots.py names it)."""
    from audit.checks.registry import Family
    from audit.report.html import declared_families
    from audit.results import Figure, Table

    def figures(m: Measurement) -> tuple[Figure, ...]:
        points = tuple({"x": r["x"], "teacher": None, "student": (r["y"], None, None)}
                       for r in m.breakdown)
        return (Figure("curve", f"{m.metric} by depth", points, x_label="depth", y_label="y"),
                Figure("no such kind", "ignored"))

    def tables(m: Measurement) -> tuple[Table, ...]:
        return (Table("Per depth", ("depth", "y", "ok"),
                      tuple((r["x"], r["y"], r["y"] > 0.5) for r in m.breakdown)),)

    attr = Family("attribute_inference", "Attribute inference", order=15, figures=figures,
                  tables=tables)
    m = Measurement("attr_auc", "lower", Estimate(0.6), family="attribute_inference",
                    breakdown=({"kind": "depth", "x": 1, "y": 0.4}, {"kind": "depth", "x": 2,
                                                                     "y": 0.75}))
    other = Measurement("mystery", "lower", Estimate(0.1), family="unheard_of")
    acc = Measurement("accuracy", "higher", Estimate(0.8), teacher=Estimate(0.8),
                      family="performance")
    checks = (CheckResult("attr", "info", (m,)), CheckResult("acc", "info", (acc,)),
              CheckResult("odd", "info", (other,)))
    html = render_html(_report(checks).to_dict(), families=[*declared_families(), attr])
    titles = re.findall(r'<h2 id="family-([a-z_]+)">([^<]*)</h2>', html)
    assert titles == [("performance", "Predictive performance"),
                      ("attribute_inference", "Attribute inference"), ("unheard_of", "Other checks")]
    assert 'aria-label="attr_auc by depth"' in html and "<summary>Per depth</summary>" in html
    assert '<td class="num">0.750</td><td>yes</td>' in html


def test_a_check_measured_at_several_budgets_is_drawn_as_one_curve() -> None:
    ms = tuple(Measurement("robust_accuracy", "higher", Estimate(0.9 - eps, (0.8 - eps, 1 - eps)),
                           teacher=Estimate(0.95 - eps), family="robustness", params={"eps": eps})
               for eps in (0.05, 0.1, 0.2))
    html = render_html(_report((CheckResult("robust", "info", ms),)).to_dict())
    assert html.count('aria-label="robust_accuracy by perturbation budget"') == 1
