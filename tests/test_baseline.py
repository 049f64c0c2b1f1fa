"""A suite's third model, ``baseline:``: its measurements equal a run with the baseline as the
student, the student-vs-baseline ones a run with it as the teacher; ``max_baseline_regression``
fails a student worse than the baseline and passes one that is not; each model predicts once;
a crashing baseline makes the checks that measure it ERROR; the reports show it."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

import audit
from audit.plan import plan_rows
from audit.report.baseline import baseline_rows
from audit.report.html import render_html
from audit.report.markdown import render_markdown
from audit.runner import AuditSession, SuiteRun
from audit.suite import suite_from_dict
from fixtures.synthetic import write_pair

PRED = {"columns": ["p_No", "p_Yes"], "classes": ["No", "Yes"]}
CHECKS = {
    "accuracy": {"metric": "accuracy", "gate": {"max_regression": 0.2,
                                                 "max_baseline_regression": 0.01}},
    "ece": {"metric": "ece", "bins": 10, "gate": {"max_baseline_regression": 0.05}},
    "agreement": {"metric": "agreement", "gate": {"min": 0.5}},
    "parity": {"metric": "demographic_parity_difference", "by": ["group"],
               "gate": {"max_baseline_regression": 0.2}},
    "roc": {"metric": "roc_auc"},
    "slices": {"metric": "slice_regression"},
    "missing": {"metric": "missing_rate"},
}


def write_baseline(folder: Path, *, degrade: float, seed: int = 5) -> Path:
    """``baseline.csv``: the teacher's probabilities with the top class moved on a
    ``degrade`` share of the rows (as :func:`write_pair` degrades its student)."""
    P = pd.read_csv(folder / "teacher.csv").to_numpy()
    rng = np.random.default_rng(seed)
    hit = rng.random(len(P)) < degrade
    P[hit] = np.roll(P[hit], 1, axis=1)
    pd.DataFrame(P, columns=PRED["columns"]).to_csv(folder / "baseline.csv", index=False,
                                                    float_format="%.17g")
    return folder / "baseline.csv"


def suite(folder: Path, *, teacher: str = "teacher.csv", student: str = "student.csv",
          baseline: str | None = "baseline.csv", checks: dict[str, Any] | None = None) -> Any:
    raw: dict[str, Any] = {
        "version": 1, "name": "base",
        "data": {"eval": "eval.csv", "target": "label", "sensitive": ["group"], "positive": "Yes"},
        "teacher": {"predictions": teacher, **PRED}, "student": {"predictions": student, **PRED},
        "settings": {"seed": 3, "bootstrap": 300}, "checks": checks or CHECKS}
    if baseline is not None:
        raw["baseline"] = {"predictions": baseline, **PRED}
    return suite_from_dict(raw, base_dir=folder)


def without_baseline_gates(checks: dict[str, Any]) -> dict[str, Any]:
    out = {}
    for name, c in checks.items():
        c = dict(c)
        gate = {k: v for k, v in (c.get("gate") or {}).items() if k != "max_baseline_regression"}
        c.pop("gate", None)
        out[name] = {**c, **({"gate": gate} if gate else {})}
    return out


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    write_pair(tmp_path, n=1500, degrade=0.04)
    write_baseline(tmp_path, degrade=0.15)  # worse than the student
    return tmp_path


def measurements(result: Any, *, rows: bool = True) -> list[dict[str, Any]]:
    """The result's measurements as dicts; ``rows=False``: without the rows shown beside them
    (flip table, examples), which a baseline's measurements do not carry."""
    out = [m.to_dict() for m in result.measurements]
    if not rows:
        for d in out:
            d["extra"] = {k: v for k, v in d["extra"].items() if k not in ("flips", "examples")}
    return out


def test_baseline_measurements_equal_runs_with_the_baseline_in_each_place(folder: Path) -> None:
    with_baseline = {c.name: c for c in SuiteRun(suite(folder)).run_all()}
    plain = without_baseline_gates(CHECKS)
    as_student = {c.name: c for c in SuiteRun(suite(
        folder, student="baseline.csv", baseline=None, checks=plain)).run_all()}
    as_teacher = {c.name: c for c in SuiteRun(suite(
        folder, teacher="baseline.csv", baseline=None, checks=plain)).run_all()}
    alone = {c.name: c for c in SuiteRun(suite(folder, baseline=None, checks=plain)).run_all()}
    for name, c in with_baseline.items():
        # the student's own numbers do not change when a baseline is added
        assert measurements(c) == measurements(alone[name]), name
        if name == "missing":  # a fact of the table: no model, no baseline
            assert c.baseline == () and c.versus_baseline == ()
            continue
        assert [m.to_dict() for m in c.baseline] == measurements(as_student[name], rows=False), name
        # for a pairwise metric (agreement, slices) the student against the baseline
        assert [m.to_dict() for m in c.versus_baseline] == measurements(as_teacher[name],
                                                                         rows=False), name


def test_the_baseline_gate_fails_a_student_worse_than_the_baseline(folder: Path) -> None:
    # the student moves the top class on 4% of rows, the baseline on 15%: the student is
    # clearly better, so "no worse than the baseline by 0.01" passes ...
    good = {c.name: c for c in SuiteRun(suite(folder)).run_all()}
    (gate,) = [g for g in good["accuracy"].gates if g.kind == "max_baseline_regression"]
    assert gate.status == "pass"
    assert gate.observed is not None and gate.observed.ci is not None and gate.observed.ci[1] < 0
    assert gate.description == ("accuracy regression from the baseline (baseline - student) "
                                "<= 0.01")
    # ... and swapping the two makes the same gate fail, with the check
    bad = {c.name: c for c in SuiteRun(suite(folder, student="baseline.csv",
                                             baseline="student.csv")).run_all()}
    (gate,) = [g for g in bad["accuracy"].gates if g.kind == "max_baseline_regression"]
    assert gate.status == "fail" and bad["accuracy"].status == "fail"
    # the observed value is the paired difference of the two accuracies
    labels = pd.read_csv(folder / "eval.csv")["label"].to_numpy()

    def accuracy(name: str) -> float:
        P = pd.read_csv(folder / name).to_numpy()
        return float(np.mean(np.array(["No", "Yes"])[P.argmax(axis=1)] == labels))

    assert gate.observed.value == pytest.approx(accuracy("student.csv") - accuracy("baseline.csv"))


def test_a_baseline_identical_to_the_student_has_no_regression(folder: Path) -> None:
    results = SuiteRun(suite(folder, baseline="student.csv")).run_all()
    for c in results:
        for m in c.versus_baseline:
            if m.regression is not None:
                assert m.regression.value == pytest.approx(0.0, abs=1e-12), (c.name, m.scope)
        for g in c.gates:
            if g.kind == "max_baseline_regression":
                assert g.status != "fail", (c.name, g.scope)


def test_each_model_predicts_once_and_the_baseline_is_in_the_provenance(folder: Path) -> None:
    run = SuiteRun(suite(folder))
    report = run.report()
    prov = report.provenance
    assert prov.predictions == {"teacher/eval": "computed", "student/eval": "computed",
                                "baseline/eval": "computed"}
    baseline = prov.get("baseline")
    assert baseline["kind"] == "predictions" and baseline["path"].endswith("baseline.csv")
    import hashlib
    assert baseline["sha256"] == hashlib.sha256((folder / "baseline.csv").read_bytes()).hexdigest()
    # the baseline runs share the parent's models: one load each
    assert set(run._models) == {"teacher", "student", "baseline"}


def test_a_crashing_baseline_makes_its_checks_error_and_the_report_is_written(
        folder: Path, tmp_path: Path) -> None:
    (folder / "broken.csv").write_text("p_No,p_Yes\n0.5\n")
    results = {c.name: c for c in SuiteRun(suite(folder, baseline="broken.csv")).run_all()}
    assert results["accuracy"].status == "error"
    assert "broken.csv" in (results["accuracy"].error or "")
    assert results["missing"].status != "error"  # no model involved
    report = SuiteRun(suite(folder, baseline="broken.csv")).report()
    html = render_html(report.to_dict())
    assert "could not run" in html


def test_a_check_can_opt_out(folder: Path) -> None:
    checks = {"roc": {"metric": "roc_auc", "baseline": False}, "acc": {"metric": "accuracy"}}
    results = {c.name: c for c in SuiteRun(suite(folder, checks=checks)).run_all()}
    assert results["roc"].baseline == () and results["acc"].baseline != ()


def test_json_round_trip_schema_and_renderers(folder: Path) -> None:
    from audit.report.jsonio import validate_report

    report = SuiteRun(suite(folder)).report()
    data = json.loads(json.dumps(report.to_dict()))
    validate_report(data)
    assert type(report).from_dict(data).to_dict() == data
    rows = {(r["check"], r["scope"]): r for r in baseline_rows(data)}
    acc = rows[("accuracy", "")]
    assert acc["comparison"] == "better"  # the student beats the baseline clearly
    agreement = rows[("agreement", "")]
    assert agreement["versus"] is None and agreement["comparison"] == "undefined"
    student = pd.read_csv(folder / "student.csv").to_numpy().argmax(axis=1)
    base = pd.read_csv(folder / "baseline.csv").to_numpy().argmax(axis=1)
    assert agreement["against"]["value"] == pytest.approx(float(np.mean(student == base)))
    html = render_html(data)
    assert 'id="baseline-table"' in html and "<th>Baseline</th>" in html  # and the scorecard
    md = render_markdown(data)
    assert "## Against the baseline" in md
    line = next(x for x in md.splitlines() if x.startswith("| accuracy | accuracy |"))
    assert line.endswith("| student better |")
    assert "and baseline baseline.csv" in md
    # a report without a baseline shows none of it
    plain = SuiteRun(suite(folder, baseline=None, checks=without_baseline_gates(CHECKS))).report()
    assert "Against the baseline" not in render_html(plain.to_dict())
    assert "Against the baseline" not in render_markdown(plain.to_dict())


def test_plan_reads_the_baseline_gate_from_the_versus_measurement(folder: Path) -> None:
    results = SuiteRun(suite(folder)).run_all()
    rows = [r for r in plan_rows(results) if "from the baseline" in r.bound]
    assert {r.check for r in rows} == {"accuracy", "ece", "parity"}
    acc = next(r for r in rows if r.check == "accuracy")
    assert acc.rows_now == 1500 and acc.rows_needed is not None


def test_compare_takes_a_baseline_in_memory(built: dict[str, Path]) -> None:
    from sklearn.linear_model import LogisticRegression
    from sklearn.tree import DecisionTreeClassifier

    ev = pd.read_csv(built["arrests/eval.csv"])
    tr = pd.read_csv(built["arrests/train.csv"])
    cols = ["year", "age", "checks"]
    X, y = tr[cols], tr["released"]
    teacher = LogisticRegression(max_iter=1000).fit(X, y)
    student = LogisticRegression(max_iter=1000, C=0.5).fit(X, y)
    baseline = DecisionTreeClassifier(max_depth=2, random_state=0).fit(X, y)
    result = audit.compare(teacher, student, ev[cols], ev["released"], baseline=baseline,
                           checks={"acc": {"metric": "accuracy",
                                           "gate": {"max_baseline_regression": 0.05}}},
                           bootstrap=200)
    (check,) = result.report.checks
    assert check.baseline[0].student.value == pytest.approx(
        float(np.mean(baseline.predict(ev[cols]) == ev["released"])))
    assert [g.kind for g in check.gates] == ["max_baseline_regression"]
    assert result.report.provenance.get("baseline")["kind"] == "object"


def test_an_ad_hoc_check_with_a_baseline_gate_needs_a_baseline(folder: Path) -> None:
    run = SuiteRun(suite(folder, baseline=None, checks={"a": {"metric": "accuracy"}}),
                   AuditSession())
    with pytest.raises(Exception, match="the suite names none; add baseline"):
        run.check("acc", {"metric": "accuracy", "gate": {"max_baseline_regression": 0.01}})


def test_diff_shows_a_changed_baseline_and_its_moves(folder: Path) -> None:
    from audit.report.diff import diff_reports

    old = SuiteRun(suite(folder)).report()
    write_baseline(folder, degrade=0.45, seed=9)  # a much worse baseline
    new = SuiteRun(suite(folder)).report()
    d = diff_reports(old, new)
    assert [h["artifact"] for h in d.changed_hashes] == ["baseline"]
    whos = {(m["check"], m["who"]) for m in d.moved}
    assert ("accuracy", "baseline") in whos and ("accuracy", "baseline regression") in whos
    assert ("accuracy", "student") not in whos  # the student did not change
