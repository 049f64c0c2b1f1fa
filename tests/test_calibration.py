"""Calibration metrics against netcal, a hand-written numpy ECE and scikit-learn; reliability
data, recalibration advice, and a planted over-confident student caught by its gate."""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st
from sklearn.metrics import brier_score_loss, log_loss

from audit import SuiteRun, load_suite
from audit.checks.calibration import (
    bin_edges,
    bin_index,
    calibration_components,
    calibration_value,
    reliability,
)
from audit.checks.measure import Resampler, measure_all
from audit.checks.registry import MetricInput, get_metric

ROOT = Path(__file__).resolve().parents[1]


def _netcal(name: str, bins: int, equal_intervals: bool = True):  # type: ignore[no-untyped-def]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        import netcal.metrics as nm
    return getattr(nm, name)(bins=bins, equal_intervals=equal_intervals)


def numpy_top_label_ece(P: np.ndarray, y: np.ndarray, bins: int) -> float:
    """Ten lines of numpy: equal-width bins [a, b), the last closed, empty bins skipped."""
    conf, hit = P.max(axis=1), (P.argmax(axis=1) == y)
    edges = np.linspace(0, 1, bins + 1)
    total = 0.0
    for b in range(bins):
        upper_ok = conf <= edges[b + 1] if b == bins - 1 else conf < edges[b + 1]
        in_bin = (conf >= edges[b]) & upper_ok
        if in_bin.any():
            total += in_bin.sum() * abs(hit[in_bin].mean() - conf[in_bin].mean())
    return total / len(y)


@st.composite
def problems(draw: st.DrawFn) -> tuple[np.ndarray, np.ndarray]:
    k = draw(st.integers(2, 6))
    n = draw(st.integers(20, 400))
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    y = rng.integers(0, k, n)
    logits = rng.normal(size=(n, k)) * draw(st.sampled_from([0.5, 2.0, 5.0]))
    logits[np.arange(n), y] += draw(st.sampled_from([0.0, 1.0, 3.0]))
    P = np.exp(logits - logits.max(axis=1, keepdims=True))
    return y, P / P.sum(axis=1, keepdims=True)


def _ours(name: str, y: np.ndarray, P: np.ndarray, bins: int, binning: str = "equal_width") -> float:
    return calibration_value(calibration_components(y, P, name, bins, binning), name)


@given(problems(), st.sampled_from([5, 10, 15]))
@settings(max_examples=60, deadline=None)
def test_top_label_ece_mce_ace_equal_netcal_and_numpy(problem: tuple[np.ndarray, np.ndarray],
                                                      bins: int) -> None:
    y, P = problem
    conf, hit = P.max(axis=1), (P.argmax(axis=1) == y).astype(int)
    assert _ours("ece", y, P, bins) == pytest.approx(numpy_top_label_ece(P, y, bins), abs=1e-12)
    for name in ("ECE", "MCE", "ACE"):
        theirs = _netcal(name, bins).measure(conf, hit)
        assert _ours(name.lower(), y, P, bins) == pytest.approx(theirs, abs=1e-12), name


@given(problems())
@settings(max_examples=40, deadline=None)
def test_equal_mass_binning_equals_netcal(problem: tuple[np.ndarray, np.ndarray]) -> None:
    y, P = problem
    conf, hit = P.max(axis=1), (P.argmax(axis=1) == y).astype(int)
    theirs = _netcal("ECE", 10, equal_intervals=False).measure(conf, hit)
    assert _ours("ece", y, P, 10, "equal_mass") == pytest.approx(theirs, abs=1e-12)


@given(problems())
@settings(max_examples=40, deadline=None)
def test_classwise_ece_is_the_mean_of_netcal_per_class(problem: tuple[np.ndarray, np.ndarray]) -> None:
    y, P = problem
    ece = _netcal("ECE", 15)
    per_class = [ece.measure(P[:, c], (y == c).astype(int)) for c in range(P.shape[1])]
    assert _ours("classwise_ece", y, P, 15) == pytest.approx(np.mean(per_class), abs=1e-12)


def test_values_on_bin_edges_go_where_netcal_puts_them() -> None:
    conf = np.array([0.0, 0.1, 0.2, 0.5, 0.9, 1.0])
    assert bin_index(conf, bin_edges(conf, 10)).tolist() == [0, 1, 2, 5, 9, 9]
    P = np.column_stack([1 - conf, conf])
    y = np.array([0, 1, 1, 1, 0, 1])
    hit = (P.argmax(axis=1) == y).astype(int)
    assert _ours("ece", y, P, 10) == pytest.approx(_netcal("ECE", 10).measure(P.max(axis=1), hit))


def test_brier_and_nll_equal_sklearn() -> None:
    rng = np.random.default_rng(0)
    y = rng.integers(0, 2, 500)
    p = np.clip(rng.random(500) * 0.6 + 0.2 * y, 0, 1)
    P = np.column_stack([1 - p, p])
    value, _ = get_metric("brier").influence(y, P, 1, {})
    assert value == pytest.approx(brier_score_loss(y, p), abs=1e-12)
    y3 = rng.integers(0, 3, 500)
    P3 = rng.dirichlet(np.ones(3), 500)
    onehot = np.eye(3)[y3]
    value3, _ = get_metric("brier").influence(y3, P3, None, {})
    assert value3 == pytest.approx(np.mean(((P3 - onehot) ** 2).sum(axis=1)) / 2, abs=1e-12)
    nll, _ = get_metric("nll").influence(y3, P3, None, {})
    assert nll == pytest.approx(log_loss(y3, P3), abs=1e-12)


def test_reliability_rows_recombine_to_the_ece() -> None:
    rng = np.random.default_rng(1)
    y = rng.integers(0, 3, 800)
    P = rng.dirichlet(np.ones(3) * 0.5, 800)
    rows = reliability(y, P, 10, "equal_width")
    assert sum(r["count"] for r in rows) == 800
    ece = sum(r["count"] * abs(r["accuracy"] - r["confidence"]) for r in rows if r["count"]) / 800
    assert ece == pytest.approx(_ours("ece", y, P, 10), abs=1e-12)


def test_identical_models_have_zero_calibration_regression() -> None:
    rng = np.random.default_rng(2)
    y = rng.integers(0, 2, 600)
    P = rng.dirichlet(np.ones(2), 600)
    inputs = MetricInput(y=y, p_teacher=P, p_student=P.copy(), classes=(0, 1), pos=1)
    for name in ("ece", "mce", "ace", "classwise_ece"):
        (m,) = measure_all(get_metric(name), {"bins": 10}, inputs, Resampler(inputs, 300, 0), 0.95)
        assert m.regression.value == 0 and m.regression.ci == (0.0, 0.0), name


def _sharpen(P: np.ndarray, factor: float) -> np.ndarray:
    logits = np.log(np.clip(P, 1e-12, 1)) * factor
    Q = np.exp(logits - logits.max(axis=1, keepdims=True))
    return Q / Q.sum(axis=1, keepdims=True)


def _student_predictions_suite(tmp_path: Path, P: np.ndarray, checks: dict) -> Path:
    suite = load_suite(ROOT / "suites" / "arrests.audit.yaml")
    preds = tmp_path / "student.csv"
    pd.DataFrame(P, columns=["p_No", "p_Yes"]).to_csv(preds, index=False, float_format="%.17g")
    raw = {"version": 1, "name": "planted",
           "data": {"eval": str(suite.data.eval), "target": "released",
                    "sensitive": ["colour", "sex"], "positive": "Yes"},
           "teacher": {"skops": str(suite.teacher.path), "trusted_types": ["sklearn.tree._tree.Tree"]},
           "student": {"predictions": str(preds), "columns": ["p_No", "p_Yes"],
                       "classes": ["No", "Yes"]},
           "checks": checks}
    path = tmp_path / "planted.audit.yaml"
    path.write_text(yaml.safe_dump(raw, sort_keys=False))
    return path


@pytest.fixture(scope="module")
def faithful_student(built: dict) -> np.ndarray:
    run = SuiteRun(load_suite(ROOT / "suites" / "arrests.audit.yaml"))
    return np.asarray(run.inputs.p_student)


def test_an_over_confident_student_fails_the_calibration_gate(tmp_path: Path,
                                                             faithful_student: np.ndarray) -> None:
    gate = {"calibration": {"metric": "ece", "gate": {"max_regression": 0.02}}}
    faithful = SuiteRun(load_suite(_student_predictions_suite(tmp_path, faithful_student, gate)))
    assert faithful.run_check("calibration").status == "pass"
    sharp = tmp_path / "sharp"
    sharp.mkdir()
    over = SuiteRun(load_suite(_student_predictions_suite(sharp, _sharpen(faithful_student, 3.0), gate)))
    result = over.run_check("calibration")
    assert result.status == "fail"
    m = result.measurements[0]
    assert m.regression.ci[0] > 0.02
    advice = m.extra["advice"]
    assert advice["available"] and advice["temperature"] > 1.5  # divide logits: soften it
    assert advice["ece_after"] < advice["ece_before"]


def test_ece_check_stores_reliability_data_for_both_models(faithful_student: np.ndarray,
                                                          tmp_path: Path) -> None:
    gate = {"calibration": {"metric": "ece", "bins": 10}}
    result = SuiteRun(load_suite(_student_predictions_suite(tmp_path, faithful_student, gate))
                      ).run_check("calibration")
    rows = result.measurements[0].breakdown
    assert {r["model"] for r in rows} == {"teacher", "student"}
    assert len(rows) == 20 and sum(r["count"] for r in rows if r["model"] == "student") == 1568
