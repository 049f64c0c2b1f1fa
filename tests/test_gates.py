"""Gates: every bound type passes, fails and is inconclusive where it must; statuses combine."""

from __future__ import annotations

import math

import pytest

from audit.gates import check_status, describe_bound, evaluate_gate
from audit.results import Estimate, GateResult, Measurement, combine_statuses
from audit.suite import GateSpec


def _m(student: tuple[float, float, float], regression: tuple[float, float, float] | None = None,
       relative: tuple[float, float, float] | None = None, direction: str = "higher") -> Measurement:
    def est(t: tuple[float, float, float] | None) -> Estimate | None:
        return None if t is None else Estimate(t[0], (t[1], t[2]))

    return Measurement("accuracy", direction, est(student), teacher=Estimate(0.9, (0.88, 0.92)),
                       regression=est(regression), relative_regression=est(relative))


CASES = [
    # (gate, student (value, low, high), regression, relative, expected status)
    pytest.param(GateSpec(min=0.8), (0.85, 0.82, 0.88), None, None, "pass", id="min-pass"),
    pytest.param(GateSpec(min=0.8), (0.75, 0.72, 0.78), None, None, "fail", id="min-fail"),
    pytest.param(GateSpec(min=0.8), (0.81, 0.78, 0.84), None, None, "inconclusive", id="min-straddle"),
    pytest.param(GateSpec(min=0.8), (0.83, 0.80, 0.86), None, None, "pass", id="min-at-lower-bound"),
    pytest.param(GateSpec(max=0.1), (0.05, 0.03, 0.07), None, None, "pass", id="max-pass"),
    pytest.param(GateSpec(max=0.1), (0.15, 0.12, 0.18), None, None, "fail", id="max-fail"),
    pytest.param(GateSpec(max=0.1), (0.09, 0.07, 0.11), None, None, "inconclusive", id="max-straddle"),
    pytest.param(GateSpec(max_regression=0.02), (0.9, 0.88, 0.92), (0.01, -0.005, 0.015), None,
                 "pass", id="regression-pass"),
    pytest.param(GateSpec(max_regression=0.02), (0.8, 0.78, 0.82), (0.1, 0.08, 0.12), None, "fail",
                 id="regression-fail"),
    pytest.param(GateSpec(max_regression=0.02), (0.9, 0.88, 0.92), (0.015, 0.005, 0.03), None,
                 "inconclusive", id="regression-straddle"),
    pytest.param(GateSpec(max_relative_regression=0.05), (0.9, 0.88, 0.92), None,
                 (0.01, -0.01, 0.03), "pass", id="relative-pass"),
    pytest.param(GateSpec(max_relative_regression=0.05), (0.8, 0.78, 0.82), None,
                 (0.11, 0.09, 0.13), "fail", id="relative-fail"),
    pytest.param(GateSpec(max_relative_regression=0.05), (0.8, 0.78, 0.82), None,
                 (0.04, 0.02, 0.07), "inconclusive", id="relative-straddle"),
]


@pytest.mark.parametrize(("gate", "student", "regression", "relative", "expected"), CASES)
def test_each_bound_type(gate: GateSpec, student: tuple[float, float, float],
                         regression: tuple[float, float, float] | None,
                         relative: tuple[float, float, float] | None, expected: str) -> None:
    (result,) = evaluate_gate(gate, _m(student, regression, relative))
    assert result.status == expected
    assert check_status((result,)) == expected


def test_undefined_metric_is_inconclusive_with_a_reason() -> None:
    m = Measurement("roc_auc", "higher", Estimate(float("nan")))
    (g,) = evaluate_gate(GateSpec(min=0.7), m)
    assert (g.status, g.reason) == ("inconclusive", "the metric is undefined on this data")


def test_no_interval_is_judged_on_the_point_and_says_so() -> None:
    m = Measurement("accuracy", "higher", Estimate(0.85, None))
    (g,) = evaluate_gate(GateSpec(min=0.8), m)
    assert (g.status, g.reason) == ("pass", "no interval available; judged on the point estimate")


def test_regression_gate_on_a_measurement_without_teacher_is_inconclusive() -> None:
    m = Measurement("agreement", "higher", Estimate(0.97, (0.96, 0.98)))
    (g,) = evaluate_gate(GateSpec(max_regression=0.01), m)
    assert (g.status, g.reason) == ("inconclusive", "agreement has no teacher value to regress from")


def test_descriptions_are_generated_from_the_gate_data() -> None:
    assert describe_bound("min", 0.7, "accuracy", "higher") == "student accuracy >= 0.7"
    assert describe_bound("max", 0.05, "negative_flip_rate", "lower") == \
        "student negative_flip_rate <= 0.05"
    assert describe_bound("max_regression", 0.02, "accuracy", "higher") == \
        "accuracy regression (teacher - student) <= 0.02"
    assert describe_bound("max_regression", 0.02, "log_loss", "lower") == \
        "log_loss regression (student - teacher) <= 0.02"
    assert describe_bound("max_relative_regression", 0.1, "log_loss", "lower") == \
        "log_loss regression (student - teacher) <= 0.1 x |teacher log_loss|"


def _g(status: str, severity: str = "block") -> GateResult:
    return GateResult("min", 0.5, status, severity, "d")


@pytest.mark.parametrize(("gates", "policy", "expected"), [
    pytest.param((), "fail", "info", id="no-gate-is-info"),
    pytest.param((_g("pass"), _g("pass")), "fail", "pass", id="all-pass"),
    pytest.param((_g("pass"), _g("fail")), "fail", "fail", id="one-fail"),
    pytest.param((_g("inconclusive"), _g("pass")), "fail", "inconclusive", id="inconclusive-blocks"),
    pytest.param((_g("inconclusive"), _g("pass")), "warn", "warn", id="inconclusive-warns"),
    pytest.param((_g("fail", "warn"), _g("pass")), "fail", "warn", id="warn-severity-fail"),
    pytest.param((_g("fail", "warn"), _g("fail")), "fail", "fail", id="blocking-fail-wins"),
    pytest.param((_g("inconclusive", "warn"),), "fail", "warn", id="warn-severity-inconclusive"),
])
def test_check_status(gates: tuple[GateResult, ...], policy: str, expected: str) -> None:
    assert check_status(gates, policy) == expected


@pytest.mark.parametrize(("statuses", "verdict"), [
    (["pass", "info"], "pass"), (["pass", "warn"], "warn"), (["warn", "inconclusive"], "inconclusive"),
    (["inconclusive", "error"], "error"), (["error", "fail", "pass"], "fail"), ([], "error"),
])
def test_verdict_is_the_most_severe_status(statuses: list[str], verdict: str) -> None:
    assert combine_statuses(statuses) == verdict


def test_gate_result_keeps_the_observed_interval() -> None:
    (g,) = evaluate_gate(GateSpec(max_regression=0.02), _m((0.8, 0.78, 0.82), (0.1, 0.08, 0.12)))
    assert g.observed == Estimate(0.1, (0.08, 0.12))
    assert g.threshold == 0.02 and g.kind == "max_regression" and math.isclose(g.observed.value, 0.1)
