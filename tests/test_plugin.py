"""The pytest plugin end to end, through pytester: collection, verdict lines, options, xdist."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from fixtures.synthetic import write_pair, write_suite

GOOD_CHECKS = {
    "accuracy": {"metric": "accuracy", "gate": {"min": 0.5, "max_regression": 0.02}},
    "agreement": {"metric": "agreement", "gate": {"min": 0.95}},
}


@pytest.fixture
def pair(pytester: pytest.Pytester) -> Path:
    write_pair(pytester.path, n=1000, degrade=0.0)
    return pytester.path


@pytest.fixture
def worse_pair(pytester: pytest.Pytester) -> Path:
    write_pair(pytester.path, n=1000, degrade=0.3)
    return pytester.path


def lit(*patterns: str) -> list[str]:
    """fnmatch patterns where ``[`` is literal (only ``*`` and ``?`` are wildcards)."""
    return [p.replace("[", "[[]") for p in patterns]


def _report(pytester: pytest.Pytester, name: str = "synthetic") -> dict:
    folder = pytester.path / "reports" / name
    newest = max(folder.glob("2*.json"))  # timestamped: partial runs never become latest.json
    return json.loads(newest.read_text())


def test_each_check_is_an_item_and_a_passing_suite_passes(pytester: pytest.Pytester, pair: Path) -> None:
    write_suite(pair, GOOD_CHECKS)
    result = pytester.runpytest("-v")
    result.assert_outcomes(passed=2)
    result.stdout.fnmatch_lines(lit(
        "synthetic.audit.yaml::accuracy PASSED*",
        "synthetic.audit.yaml::agreement PASSED*",
        "*distill-audit*",
        "synthetic: PASS (2 pass)",
        "  report: */reports/synthetic/*.html",
    ))
    report = _report(pytester)
    assert report["verdict"] == "pass"
    assert [c["name"] for c in report["checks"]] == ["accuracy", "agreement"]


def test_a_failing_gate_prints_a_verdict_not_a_traceback(pytester: pytest.Pytester,
                                                         worse_pair: Path) -> None:
    write_suite(worse_pair, GOOD_CHECKS)
    result = pytester.runpytest()
    result.assert_outcomes(failed=2)
    result.stdout.fnmatch_lines(lit(
        "*_ synthetic::accuracy _*",
        "  accuracy   student 0.* [0.*, 0.*]   teacher 0.* [0.*, 0.*]",
        "  student    0.* [0.*, 0.*]  >=  min 0.5   -> PASS",
        "  regression +0.* [+0.*, +0.*]  >  max_regression 0.02   -> FAIL",
        "  n=1000 eval rows, paired bootstrap, 500 multinomial replicates of the count table, "
        "joined with exact intervals (Clopper-Pearson; Tango for the paired difference), "
        "seed 0, 95% intervals",
    ))
    assert "Traceback" not in result.stdout.str()
    assert "def runtest" not in result.stdout.str()
    assert _report(pytester)["verdict"] == "fail"
    assert result.ret == pytest.ExitCode.TESTS_FAILED


def test_report_info_points_at_the_yaml_line(pytester: pytest.Pytester, worse_pair: Path) -> None:
    write_suite(worse_pair, GOOD_CHECKS)
    result = pytester.runpytest("-rf")
    # the failure header names suite and check; the location is file:line of the check
    report = _report(pytester)
    lines = (worse_pair / "synthetic.audit.yaml").read_text().splitlines()
    line = lines.index("  accuracy:") + 1
    assert report["checks"][0]["location"].endswith(f"synthetic.audit.yaml:{line}")
    result.stdout.fnmatch_lines(lit("FAILED synthetic.audit.yaml::accuracy*"))


def test_k_selects_checks_and_the_report_says_it_is_partial(pytester: pytest.Pytester,
                                                           pair: Path) -> None:
    write_suite(pair, GOOD_CHECKS)
    result = pytester.runpytest("-k", "agreement")
    result.assert_outcomes(passed=1, deselected=1)
    result.stdout.fnmatch_lines(lit("  not run: accuracy (this report covers part of the suite)",
                                    "  report: (latest.* not updated: this run covers part of "
                                    "the suite)"))
    assert _report(pytester)["suite"]["not_run"] == ["accuracy"]
    assert not (pytester.path / "reports" / "synthetic" / "latest.json").exists()


def test_x_stops_at_the_first_failure(pytester: pytest.Pytester, worse_pair: Path) -> None:
    write_suite(worse_pair, GOOD_CHECKS)
    result = pytester.runpytest("-x")
    result.assert_outcomes(failed=1)


def test_junitxml_has_one_testcase_per_check(pytester: pytest.Pytester, worse_pair: Path) -> None:
    write_suite(worse_pair, GOOD_CHECKS)
    pytester.runpytest("--junitxml=out.xml")
    xml = (pytester.path / "out.xml").read_text()
    assert xml.count("<testcase ") == 2
    assert 'name="accuracy"' in xml and "max_regression 0.02   -&gt; FAIL" in xml
    assert '<property name="audit.status" value="fail" />' in xml
    assert '<property name="audit.gate.max_regression" value="fail (threshold 0.02)" />' in xml
    assert '<property name="audit.accuracy.regression" value="' in xml


def test_xdist_two_workers_write_exactly_one_report(pytester: pytest.Pytester, worse_pair: Path) -> None:
    write_suite(worse_pair, GOOD_CHECKS)
    result = pytester.runpytest("-n", "2")
    result.assert_outcomes(failed=2)
    result.stdout.fnmatch_lines(lit("  regression +0.* [+0.*, +0.*]  >  max_regression 0.02   -> FAIL"))
    files = sorted(p.name for p in (pytester.path / "reports" / "synthetic").iterdir())
    assert len([f for f in files if f.endswith(".json") and f != "latest.json"]) == 1
    report = _report(pytester)
    assert [c["name"] for c in report["checks"]] == ["accuracy", "agreement"]
    assert report["verdict"] == "fail"


def test_an_invalid_suite_is_a_collection_error_with_its_location(pytester: pytest.Pytester,
                                                                  pair: Path) -> None:
    write_suite(pair, {"accuracy": {"metric": "acuracy", "gate": {"min": 0.5}}})
    result = pytester.runpytest()
    result.stdout.fnmatch_lines(lit(
        "*ERROR collecting synthetic.audit.yaml*",
        "synthetic.audit.yaml:2? checks.accuracy.metric='acuracy': unknown metric; did you mean "
        "'accuracy'? (valid: *)",
    ))
    assert result.ret == pytest.ExitCode.INTERRUPTED
    assert "Traceback" not in result.stdout.str()


def test_a_model_that_cannot_load_errors_every_check_and_fails_closed(pytester: pytest.Pytester,
                                                                     pair: Path) -> None:
    suite = write_suite(pair, GOOD_CHECKS)
    (pair / "student.csv").write_text("p_No,p_Yes\n0.5,0.5\n")
    result = pytester.runpytest()
    result.assert_outcomes(failed=2)
    result.stdout.fnmatch_lines(lit(
        "  ERROR: student (student.csv): has 1 rows but eval.csv has 1000; predictions must "
        "follow the eval rows one to one",
    ))
    report = _report(pytester)
    assert [c["status"] for c in report["checks"]] == ["error", "error"]
    assert report["verdict"] == "error"
    assert suite.exists()


def test_severity_warn_reports_without_failing(pytester: pytest.Pytester, worse_pair: Path) -> None:
    write_suite(worse_pair, {"agreement": {"metric": "agreement",
                                           "gate": {"min": 0.95, "severity": "warn"}}})
    result = pytester.runpytest()
    result.assert_outcomes(passed=1)
    result.stdout.fnmatch_lines(lit("synthetic: WARN (1 warn)",
                                 "  WARN         agreement: student * ->  FAIL (severity: warn)"
                                 if False else "  WARN         agreement: student*FAIL (severity: warn)"))


def test_inconclusive_blocks_by_default_and_warns_when_the_suite_says_so(
        pytester: pytest.Pytester, pair: Path) -> None:
    # an identical student has agreement 1.0; a threshold of exactly 1 is met; the accuracy
    # interval straddles its teacher-independent threshold at the point value
    write_suite(pair, {"accuracy": {"metric": "accuracy", "gate": {"min": 0.86}}})
    first = pytester.runpytest()
    report = _report(pytester)
    acc = report["checks"][0]
    low, high = acc["measurements"][0]["student"]["ci"]
    assert low < 0.86 < high, "the fixture should straddle the threshold"
    first.assert_outcomes(failed=1)
    first.stdout.fnmatch_lines([lit("*-> INCONCLUSIVE (the interval straddles the threshold; with "
                                    f"1000 eval rows this run can only show accuracy >= {low:.4g}; "
                                    "about ")[0] + "*"])
    write_suite(pair, {"accuracy": {"metric": "accuracy", "gate": {"min": 0.86}}},
                settings={"seed": 0, "bootstrap": 500, "inconclusive": "warn"})
    second = pytester.runpytest()
    second.assert_outcomes(passed=1)


def test_an_ad_hoc_python_audit_uses_the_fixture_and_lands_in_the_report(
        pytester: pytest.Pytester, pair: Path) -> None:
    write_suite(pair, GOOD_CHECKS)
    pytester.makepyfile(test_adhoc="""
        def test_balanced_accuracy(distill_audit):
            run = distill_audit.suite("synthetic.audit.yaml")
            result = run.check("bal_acc", {"metric": "balanced_accuracy",
                                           "gate": {"max_regression": 0.01}})
            assert result.passed, result.status
            assert result.measurements[0].regression.value == 0.0

        def test_require_fails_with_the_verdict(distill_audit):
            run = distill_audit.suite("synthetic.audit.yaml")
            run.require("too_strict", {"metric": "accuracy", "gate": {"min": 0.99}})
    """)
    result = pytester.runpytest("test_adhoc.py")
    result.assert_outcomes(passed=1, failed=1)
    result.stdout.fnmatch_lines(lit("*too_strict FAIL", "  accuracy   student *",
                                 "  student    0.* [0.*, 0.*]  <  min 0.99   -> FAIL"))
    report = _report(pytester)
    names = {c["name"]: c for c in report["checks"]}
    assert names["bal_acc"]["source"] == "python"
    assert names["bal_acc"]["location"] == "test_adhoc.py::test_balanced_accuracy::bal_acc"
    assert names["too_strict"]["status"] == "fail"


def test_plugin_module_does_not_import_heavy_libraries() -> None:
    import subprocess
    import sys

    code = ("import sys, audit.plugin; heavy = [m for m in ('numpy', 'pandas', 'sklearn', 'yaml', "
            "'torch', 'onnxruntime') if m in sys.modules]; print(heavy)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_contradictory_options_are_a_usage_error(pytester: pytest.Pytester) -> None:
    result = pytester.runpytest("--audit-no-report", "--audit-report", "x.html")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(lit("*--audit-no-report contradicts --audit-report/--audit-json*"))


def test_explicit_report_paths_keep_the_earlier_report(pytester: pytest.Pytester, pair: Path) -> None:
    write_suite(pair, GOOD_CHECKS)
    pytester.runpytest("--audit-report", "out/r.html", "--audit-json", "out/r.json")
    first = (pytester.path / "out" / "r.json").read_text()
    result = pytester.runpytest("--audit-report", "out/r.html", "--audit-json", "out/r.json")
    result.stdout.fnmatch_lines(lit("  report: (kept earlier r.json as *out/r.*Z.json)"))
    kept = [p for p in (pytester.path / "out").iterdir() if p.name.startswith("r.") and "Z" in p.name]
    assert len(kept) == 3  # r.json, r.html and the summary r.md beside them
    assert any(p.read_text() == first for p in kept if p.suffix == ".json")


def test_the_summary_lists_every_gate_that_did_not_pass(pytester: pytest.Pytester,
                                                        worse_pair: Path) -> None:
    write_suite(worse_pair, {"accuracy": {"metric": "accuracy",
                                          "gate": {"min": 0.99, "max_regression": 0.02}}})
    result = pytester.runpytest()
    result.stdout.fnmatch_lines(lit(
        "synthetic: FAIL (1 fail)",
        "  FAIL         accuracy: student * [0.*, 0.*]  <  min 0.99   -> FAIL",
        "                         regression +0.* [+0.*, +0.*]  >  max_regression 0.02   -> FAIL",
    ))
