"""Words that describe what was measured (issue 13): a data check names no student, a
leakage finding says what it does to the other checks."""

from __future__ import annotations

from pathlib import Path

import yaml

from audit.report.terminal import format_check
from audit.runner import AuditSession, SuiteRun
from audit.suite import load_suite


def test_data_checks_name_the_data_not_a_student(tmp_path: Path, built: dict[str, Path]) -> None:
    arrests = built["arrests/eval.csv"].parent
    raw = {"version": 1, "name": "words",
           "data": {"eval": str(arrests / "eval.csv"), "train": str(arrests / "train.csv"),
                    "target": "released"},
           "teacher": {"skops": str(arrests / "teacher.skops"),
                       "trusted_types": ["sklearn.tree._tree.Tree"]},
           "student": str(arrests / "student.onnx"),
           "checks": {"drift": {"metric": "drifted_columns", "gate": {"max": 0}},
                      "leakage": {"metric": "leakage", "gate": {"max": 0.5}},
                      "agreement": {"metric": "agreement", "gate": {"min": 0.5}}}}
    path = tmp_path / "words.audit.yaml"
    path.write_text(yaml.safe_dump(raw))
    results = {r.name: r for r in SuiteRun(load_suite(path), AuditSession(None)).run_all()}
    assert [g.description for g in results["drift"].gates] == ["drifted_columns <= 0"]
    assert [g.description for g in results["leakage"].gates] == ["leakage <= 0.5"]
    text = format_check(results["leakage"])
    assert "(the data)" in text and "student" not in text.split("note:")[0]
    assert "  value      0.551" in text
    leaked = results["leakage"].measurements[0].breakdown[0]["count"]
    assert results["leakage"].measurements[0].notes == (
        f"{leaked} eval row(s) also occur, identically, in the training table: every other "
        "check on this eval table flatters whichever model saw those rows in training (the "
        "student and, if it learned from the same table, the teacher too)",)
    # a fidelity check is still student against teacher
    assert results["agreement"].gates[0].description == "student agreement >= 0.5"
    assert "(student vs teacher)" in format_check(results["agreement"])


def test_size_says_nothing_about_rows_and_n_says_what_it_counts(
        tmp_path: Path, built: dict[str, Path]) -> None:
    from audit.report.html import render_html

    arrests = built["arrests/eval.csv"].parent
    raw = {"version": 1, "name": "sizes",
           "data": {"eval": str(arrests / "eval.csv"), "target": "released"},
           "teacher": {"skops": str(arrests / "teacher.skops"),
                       "trusted_types": ["sklearn.tree._tree.Tree"]},
           "student": str(arrests / "student.onnx"),
           "checks": {"size": {"metric": "size_ratio", "gate": {"max": 0.25}},
                      "accuracy": {"metric": "accuracy", "gate": {"min": 0.5}}}}
    path = tmp_path / "sizes.audit.yaml"
    path.write_text(yaml.safe_dump(raw))
    run = SuiteRun(load_suite(path), AuditSession(None))
    report = run.report()
    size = next(c for c in report.checks if c.name == "size")
    text = format_check(size)
    assert text.splitlines()[-1] == "  exact: student bytes / teacher bytes on disk"
    assert "n=" not in text and "rows" not in text
    html = render_html(report.to_dict())
    assert '<p class="muted">exact: student bytes / teacher bytes on disk.</p>' in html
    assert '<p class="muted">n = 1568 eval rows; ' in html
