"""The bundled example suites on the real fixture models, planted bad students, and the README's
Python examples."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from audit import SuiteRun, load_suite, suite_from_dict
from audit.report.terminal import format_check

ROOT = Path(__file__).resolve().parents[1]
ARRESTS = ROOT / "suites" / "arrests.audit.yaml"
DIGITS = ROOT / "suites" / "digits.audit.yaml"
DIGITS_TORCH = ROOT / "suites" / "digits-torch.audit.yaml"


def _variant(tmp_path: Path, source: Path, **changes: object) -> Path:
    """A copy of a bundled suite with absolute paths and some top-level keys replaced."""
    suite = load_suite(source)
    raw = yaml.safe_load(source.read_text())
    raw.pop("include", None)
    raw["data"]["eval"] = str(suite.data.eval)
    if suite.data.train is not None:
        raw["data"]["train"] = str(suite.data.train)
    raw["teacher"] = {"skops": str(suite.teacher.path), "trusted_types": list(suite.teacher.trusted_types)}
    raw["student"] = str(suite.student.path)
    if suite.baseline is not None:
        raw["baseline"] = {"skops": str(suite.baseline.path)}
    raw.update(changes)
    path = tmp_path / f"variant-{source.name}"
    path.write_text(yaml.safe_dump(raw, sort_keys=False))
    return path


def test_the_example_suites_pass_on_the_faithful_students(built: dict[str, Path],
                                                          tmp_path: Path) -> None:
    from audit.report.writer import write_report

    for path in (DIGITS, DIGITS_TORCH):
        report = SuiteRun(load_suite(path)).report()
        bad = [(c.name, c.status, format_check(c)) for c in report.checks if not c.passed]
        assert not bad
        write_report(report, report_dir=tmp_path)  # and the report follows its schema


def test_the_example_audit_warns_on_its_real_finding(arrests_report: Any, tmp_path: Path) -> None:
    from audit.report.writer import write_report

    arrests = arrests_report
    bad = [(c.name, c.status, format_check(c)) for c in arrests.checks if not c.passed]
    assert not bad
    write_report(arrests, report_dir=tmp_path)
    # a real finding the example keeps visible: the distilled student widens the teacher's gap
    # in release rates between colour groups (a warning gate, for the compliance review)
    assert arrests.verdict == "warn"
    assert [c.name for c in arrests.checks if c.status == "warn"] == ["parity_amplification"]


def test_the_example_attack_measures_its_whole_sample(arrests_report: Any) -> None:
    """The black-box robustness gate is judged on every row of ``samples: 200``, for both
    models, whatever the machine's speed (the wall-clock cap is only a safety stop)."""
    (robustness,) = [c for c in arrests_report.checks if c.name == "robustness"]
    (m,) = robustness.measurements
    assert robustness.status == "pass" and m.n == 200
    assert [(b["model"], b["rows"]) for b in m.breakdown] == [("teacher", 200), ("student", 200)]
    assert m.regression.ci[1] < 0.10  # the gate's bound, with room


def test_report_carries_the_json_contract(arrests_report: Any) -> None:
    d = arrests_report.to_dict()
    assert {"schema_version", "suite", "verdict", "checks", "provenance"} <= d.keys()
    assert d["suite"]["name"] == "arrests-distilled" and len(d["suite"]["sha256"]) == 64
    check = d["checks"][0]
    assert check["name"] == "accuracy" and check["status"] == "pass"
    m = check["measurements"][0]
    for who in ("teacher", "student", "regression"):
        assert set(m[who]) == {"value", "ci"} and len(m[who]["ci"]) == 2
    assert {"description", "status", "threshold"} <= check["gates"][0].keys()
    prov = d["provenance"]
    for part in (prov["teacher"], prov["student"], prov["data"]):
        assert len(part["sha256"]) == 64
    assert prov["versions"]["scikit-learn"] and prov["seed"] == 0 and prov["created"]


def test_a_clearly_less_accurate_student_fails_its_gates(tmp_path: Path, built: dict[str, Path]) -> None:
    path = _variant(tmp_path, ARRESTS, student=str(built["arrests/student_weak.onnx"]))
    run = SuiteRun(load_suite(path))
    acc = run.run_check("accuracy")
    assert acc.status == "fail"
    # min 0.78, max_regression 0.02 and max_baseline_regression 0.01 (the baseline, the same
    # model fitted on the labels, is 18 points more accurate than this student)
    assert [(g.kind, g.status) for g in acc.gates] == [
        ("min", "fail"), ("max_regression", "fail"), ("max_baseline_regression", "fail")]
    text = format_check(acc)
    assert "regression +0.1" in text and "->  FAIL" not in text and "-> FAIL" in text
    assert run.run_check("agreement").status == "fail"
    assert run.run_check("negative_flips").status == "fail"


def test_the_teacher_as_its_own_student_passes_every_regression_gate(tmp_path: Path,
                                                                     built: dict[str, Path]) -> None:
    from audit.checks.registry import get_metric

    teacher = built["arrests/teacher.skops"]
    checks = {name: spec for name, spec in yaml.safe_load(ARRESTS.read_text())["checks"].items()
              if get_metric(spec["metric"]).family not in ("efficiency", "robustness")}
    # timing is never identical, and attacks are covered by tests/test_robustness.py
    path = _variant(tmp_path, ARRESTS, checks=checks,
                    student={"skops": str(teacher), "trusted_types": ["sklearn.tree._tree.Tree"]})
    report = SuiteRun(load_suite(path)).report()
    z2 = 1.959963984540054 ** 2
    for c in report.checks:
        for m in c.measurements:
            if m.regression is not None:
                # zero regression; proportions (accuracy, recall) keep the exact interval of no
                # discordant row, +-z^2 / (n + z^2) on their n paired rows, the rest [0, 0]
                half = z2 / (m.evidence["paired"] + z2) if "paired" in m.evidence else 0.0
                assert m.regression.value == 0.0, c.name
                assert m.regression.ci == pytest.approx((-half, half), abs=1e-12), c.name
    assert report.verdict == "pass"
    assert any("the student is the teacher" in w for w in report.provenance["warnings"])


def test_precomputed_teacher_predictions_give_the_same_numbers(tmp_path: Path,
                                                               built: dict[str, Path]) -> None:
    path = _variant(tmp_path, ARRESTS, teacher={
        "predictions": str(built["arrests/teacher_predictions.csv"]),
        "columns": ["p_No", "p_Yes"], "classes": ["No", "Yes"]})
    ours = SuiteRun(load_suite(path)).run_check("roc_auc").measurements[0]
    reference = SuiteRun(load_suite(ARRESTS)).run_check("roc_auc").measurements[0]
    assert ours.teacher.value == pytest.approx(reference.teacher.value, abs=1e-12)


def test_python_api_from_the_readme(built: dict[str, Path]) -> None:
    run = SuiteRun(load_suite(ARRESTS))
    assert run.run_check("accuracy").status == "pass"
    adhoc = run.check("balanced_accuracy_close",
                      {"metric": "balanced_accuracy", "gate": {"max_regression": 0.05}})
    assert adhoc.passed and adhoc.source == "python"
    suite = suite_from_dict({
        "version": 1, "name": "in-code",
        "data": {"eval": str(built["digits/eval.csv"]), "target": "digit"},
        "teacher": {"skops": str(built["digits/teacher.skops"]),
                    "trusted_types": ["sklearn.tree._tree.Tree"]},
        "student": str(built["digits/student.onnx"]),
        "checks": {"acc": {"metric": "accuracy", "gate": {"min": 0.9}}},
    })
    assert SuiteRun(suite).run_check("acc").status == "pass"


def test_fixture_example_from_the_readme(pytester: pytest.Pytester, built: dict[str, Path]) -> None:
    pytester.makepyfile(test_readme=f"""
        def test_student_keeps_balanced_accuracy(distill_audit):
            run = distill_audit.suite({str(ARRESTS)!r})
            result = run.check("balanced_accuracy_close",
                               {{"metric": "balanced_accuracy", "gate": {{"max_regression": 0.05}}}})
            assert result.passed, result.status
            run.require("auc", {{"metric": "roc_auc", "gate": {{"max_regression": 0.03}}}})
    """)
    result = pytester.runpytest("-p", "no:cacheprovider")
    result.assert_outcomes(passed=1)
