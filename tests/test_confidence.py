"""disagreement_by_confidence, checked against a computation by hand (numpy loops, scipy's beta
quantiles), judged by its gates (an identical student passes, one that overrules a confident
teacher fails) and rendered from the JSON report alone (its section comes from its Family)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from scipy import stats as sps

from audit.checks.confidence import NAME, disagreement_table
from audit.checks.measure import Resampler, measure_all
from audit.checks.registry import FAMILIES, MetricInput, get_metric
from audit.gates import check_status, evaluate_gate
from audit.report.html import render_html
from audit.results import AuditReport, CheckResult, Measurement, Status
from audit.spec import GateSpec


def _probs(conf: np.ndarray, top: np.ndarray) -> np.ndarray:
    """Two-class probabilities with ``conf`` on class ``top``."""
    p = np.empty((conf.size, 2))
    p[np.arange(conf.size), top] = conf
    p[np.arange(conf.size), 1 - top] = 1 - conf
    return p


def _case(n: int = 600, flip_confident: float = 0.0, seed: int = 1
          ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    conf = rng.uniform(0.5, 1.0, n)
    top = rng.integers(0, 2, n)
    teacher = _probs(conf, top)
    s_top = top.copy()
    unsure = conf < 0.7
    s_top[unsure] = np.where(rng.uniform(size=unsure.sum()) < 0.3, 1 - top[unsure], top[unsure])
    sure = conf >= 0.8
    s_top[sure] = np.where(rng.uniform(size=sure.sum()) < flip_confident, 1 - top[sure], top[sure])
    student = _probs(rng.uniform(0.5, 1.0, n), s_top)
    y = np.where(rng.uniform(size=n) < conf, top, 1 - top)
    return y, teacher, student


def _measure(y: np.ndarray, teacher: np.ndarray, student: np.ndarray, **params: object
             ) -> Measurement:
    inputs = MetricInput(y=y, p_teacher=teacher, p_student=student, classes=(0, 1), pos=1)
    (m,) = measure_all(get_metric(NAME), params, inputs, Resampler(inputs, 400, 0), 0.95)
    return m


def _by_hand(teacher: np.ndarray, student: np.ndarray, bins: int) -> list[tuple[int, int]]:
    out = [[0, 0] for _ in range(bins)]
    for t, s in zip(teacher, student, strict=True):
        c = max(t)
        b = min(int(c * bins), bins - 1)
        out[b][1] += 1
        out[b][0] += int(int(np.argmax(t)) != int(np.argmax(s)))
    return [(d, n) for d, n in out]


@pytest.mark.parametrize("bins", [2, 5, 10])
def test_the_bin_table_matches_a_loop_by_hand(bins: int) -> None:
    _, teacher, student = _case()
    assert [tuple(r) for r in disagreement_table(teacher, student, bins).tolist()] == \
        _by_hand(teacher, student, bins)


def test_the_value_is_the_most_confident_bins_rate_with_an_exact_interval_inside() -> None:
    y, teacher, student = _case(flip_confident=0.1)
    m = _measure(y, teacher, student, bins=5)
    table = _by_hand(teacher, student, 5)
    d, n = table[-1]
    assert m.student.value == pytest.approx(d / n)
    low, high = m.student.ci
    cp = (sps.beta.ppf(0.025, d, n - d + 1), sps.beta.ppf(0.975, d + 1, n - d))
    assert low <= cp[0] + 1e-12 and high >= cp[1] - 1e-12  # the union holds Clopper-Pearson
    assert low <= m.student.value <= high
    assert m.teacher is None and m.regression is None and m.family == "confidence"
    assert m.evidence["trials"] == n and m.n == len(y)
    rows = [r for r in m.breakdown if r["kind"] == "confidence_bin"]
    assert [(r["n"]) for r in rows] == [c for _, c in table]
    for r, (dd, nn) in zip(rows, table, strict=True):
        if nn:
            assert r["disagreement"] == pytest.approx(dd / nn)
            assert r["disagreement_ci"][0] <= r["disagreement"] <= r["disagreement_ci"][1]


def test_sample_order_does_not_change_the_value() -> None:
    y, teacher, student = _case(flip_confident=0.1)
    perm = np.random.default_rng(5).permutation(len(y))
    a, b = _measure(y, teacher, student), _measure(y[perm], teacher[perm], student[perm])
    assert a.student.value == b.student.value and a.breakdown[-1]["n"] == b.breakdown[-1]["n"]


def test_an_identical_student_passes_and_one_that_overrules_a_confident_teacher_fails() -> None:
    y, teacher, _ = _case(n=3000)
    same = _measure(y, teacher, teacher.copy())
    assert same.student.value == 0.0
    gate = GateSpec(max=0.05)
    assert check_status(evaluate_gate(gate, same)) is Status.PASS
    y, teacher, student = _case(n=3000, flip_confident=0.25)
    bad = _measure(y, teacher, student)
    assert check_status(evaluate_gate(gate, bad)) is Status.FAIL


def test_too_few_confident_rows_cannot_pass() -> None:
    y, teacher, _ = _case(n=80)
    m = _measure(y, teacher, teacher.copy())
    (g,) = evaluate_gate(GateSpec(max=0.05), m)
    assert g.status is Status.INCONCLUSIVE and "rows in the most confident bin" in g.reason


def test_no_row_in_the_top_bin_says_which_bin_it_judged() -> None:
    y, teacher, student = _case()
    capped = _probs(np.minimum(teacher.max(axis=1), 0.79), teacher.argmax(axis=1))
    m = _measure(y, capped, student, bins=5)
    assert m.student.value == pytest.approx(
        _by_hand(capped, student, 5)[3][0] / _by_hand(capped, student, 5)[3][1])
    assert "most confident bin with rows is [0.6, 0.8)" in m.notes[0]


def test_json_round_trip_and_the_section_renders_from_the_json_alone() -> None:
    y, teacher, student = _case(flip_confident=0.1)
    m = _measure(y, teacher, student)
    check = CheckResult("confident", "pass", (m,), evaluate_gate(GateSpec(max=0.5), m))
    report = AuditReport(
        suite={"name": "demo", "path": None, "sha256": "", "description": "", "text": "",
               "includes": [], "not_run": [], "settings": {
            "seed": 0, "confidence": 0.95, "bootstrap": 400, "inconclusive": "fail"}},
        verdict="pass", checks=(check,),
        provenance={"teacher": {}, "student": {}, "data": {"eval": {"path": "e.csv"}}, "seed": 0,
                    "versions": {}, "created": "", "finished": ""})
    data = json.loads(json.dumps(report.to_dict()))
    assert AuditReport.from_dict(data) == report
    html = render_html(data, rendered_at="now")
    assert FAMILIES["confidence"].title in html
    assert 'aria-label="Student-teacher disagreement by teacher confidence"' in html
    assert "<summary>Disagreement by teacher confidence</summary>" in html
    assert "confidence [0.80, 1.00]" in html


def test_a_suite_runs_it_end_to_end_and_the_report_validates(tmp_path: Path) -> None:
    from audit import SuiteRun, load_suite
    from audit.report.jsonio import validate_report
    from audit.report.terminal import format_check
    from fixtures.synthetic import write_pair, write_suite

    write_pair(tmp_path, n=600, degrade=0.0)
    checks = {"confident": {"metric": NAME, "bins": 4, "gate": {"max": 0.2}}}
    report = SuiteRun(load_suite(write_suite(tmp_path, checks))).report()
    (check,) = report.checks
    assert check.error is None, check.error
    assert check.measurements[0].params == {"bins": 4}
    validate_report(report.to_dict())
    assert "n=600 eval rows" in format_check(check)
    html = render_html(report.to_dict(), rendered_at="now")
    assert 'id="family-confidence"' in html and "Agreement by teacher confidence" in html
