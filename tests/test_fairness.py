"""Fairness: group metrics and disparities against fairlearn and a pandas groupby; small and
empty groups are reported, never silently passed; a planted biased student is caught."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml
from fairlearn.metrics import (
    MetricFrame,
    count,
    demographic_parity_difference,
    demographic_parity_ratio,
    equalized_odds_difference,
    equalized_odds_ratio,
    false_positive_rate,
    selection_rate,
    true_positive_rate,
)
from hypothesis import given, settings
from hypothesis import strategies as st
from sklearn.metrics import accuracy_score

from audit import SuiteRun, load_suite
from audit.checks.fairness import slicings
from audit.checks.measure import Resampler, measure_all
from audit.checks.registry import MetricInput, get_metric
from audit.errors import DataError
from fixtures.synthetic import write_pair, write_suite

ROOT = Path(__file__).resolve().parents[1]
DISPARITIES = {
    "demographic_parity_difference": demographic_parity_difference,
    "demographic_parity_ratio": demographic_parity_ratio,
    "equalized_odds_difference": equalized_odds_difference,
    "equalized_odds_ratio": equalized_odds_ratio,
}


def _inputs(y: np.ndarray, pt: np.ndarray, ps: np.ndarray, sensitive: pd.DataFrame) -> MetricInput:
    return MetricInput(y=y, p_teacher=pt, p_student=ps, classes=(0, 1), pos=1, sensitive=sensitive)


@st.composite
def sliced(draw: st.DrawFn) -> MetricInput:
    n = draw(st.integers(60, 400))
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    y = rng.integers(0, 2, n)
    sens = pd.DataFrame({"a": rng.choice(["x", "y", "z"], n), "b": rng.choice(["u", "v"], n)})
    pt = rng.dirichlet([1, 1], n)
    ps = rng.dirichlet([1, 1], n)
    return _inputs(y, pt, ps, sens)


def _measure(name: str, inputs: MetricInput, **params: object) -> tuple:
    return measure_all(get_metric(name), {"min_group_size": 1, **params}, inputs,
                       Resampler(inputs, 200, 0), 0.95)


def _one_class_group(y: np.ndarray, groups: pd.DataFrame) -> bool:
    """Whether a group has only positive or only negative rows (its TPR or FPR undefined)."""
    return bool(pd.Series(y).groupby([groups[c].to_numpy() for c in groups]).nunique().min() < 2)


@given(sliced())
@settings(max_examples=10, deadline=None)  # fairlearn costs ~20 ms a call
def test_disparities_equal_fairlearn(inputs: MetricInput) -> None:
    for name, ref in DISPARITIES.items():
        by_a, by_b, both = _measure(name, inputs, by=["a", "b"])
        for m, cols in ((by_a, ["a"]), (by_b, ["b"]), (both, ["a", "b"])):
            if name.startswith("equalized_odds") and _one_class_group(inputs.y,
                                                                       inputs.sensitive[cols]):
                # fairlearn counts an undefined rate as 0; the audit leaves it out and says so
                # (test_an_undefined_group_rate_is_left_out_with_a_note)
                continue
            for who, P in (("teacher", inputs.p_teacher), ("student", inputs.p_student)):
                expected = ref(inputs.y, P.argmax(axis=1), sensitive_features=inputs.sensitive[cols])
                got = getattr(m, who).value
                if np.isnan(expected):
                    assert np.isnan(got)
                else:
                    assert got == pytest.approx(expected, abs=1e-12), (name, cols, who)


@given(sliced())
@settings(max_examples=15, deadline=None)
def test_group_rows_equal_metricframe_and_a_pandas_groupby(inputs: MetricInput) -> None:
    (_, _, both) = _measure("worst_group_accuracy", inputs, by=["a", "b"])
    pred = inputs.p_student.argmax(axis=1)
    mf = MetricFrame(metrics={"accuracy": accuracy_score, "selection_rate": selection_rate,
                              "tpr": true_positive_rate, "fpr": false_positive_rate, "n": count},
                     y_true=inputs.y, y_pred=pred, sensitive_features=inputs.sensitive[["a", "b"]])
    frame = pd.DataFrame({"a": inputs.sensitive["a"], "b": inputs.sensitive["b"],
                          "right": pred == inputs.y})
    by_pandas = frame.groupby(["a", "b"])["right"].agg(["mean", "size"])
    for row in both.breakdown:
        a, b = (part.split("=")[1] for part in row["group"].split(" & "))
        if row["n"] == 0:
            assert (a, b) not in by_pandas.index  # an empty intersection, reported
            continue
        ref = mf.by_group.loc[(a, b)]
        got = row["student"]
        assert row["n"] == ref["n"] == by_pandas.loc[(a, b), "size"]
        assert got["accuracy"] == pytest.approx(ref["accuracy"]) == by_pandas.loc[(a, b), "mean"]
        assert got["selection_rate"] == pytest.approx(ref["selection_rate"])
        for rate in ("tpr", "fpr"):  # fairlearn says 0 where the rate is undefined; we say None
            if got[rate] is not None:
                assert got[rate] == pytest.approx(ref[rate])
    wga = min(mf.by_group["accuracy"])
    assert both.student.value == pytest.approx(wga)


def test_small_and_empty_groups_are_reported_and_excluded() -> None:
    rng = np.random.default_rng(0)
    n = 400
    sens = pd.DataFrame({"a": ["x"] * 380 + ["y"] * 20, "b": ["u"] * 200 + ["v"] * 200})
    y = rng.integers(0, 2, n)
    P = rng.dirichlet([1, 1], n)
    (by_a, by_b, both) = measure_all(get_metric("demographic_parity_difference"),
                                     {"min_group_size": 30, "by": ["a", "b"]},
                                     _inputs(y, P, P, sens), Resampler(_inputs(y, P, P, sens), 200, 0),
                                     0.95)
    assert by_a.notes == ("1 group(s) below min_group_size=30 excluded from the disparity: a=y (n=20)",
                          "fewer than two groups of at least 30 rows: the disparity is undefined")
    assert np.isnan(by_a.student.value)
    statuses = {r["group"]: (r["n"], r["status"]) for r in both.breakdown}
    assert statuses["a=y & b=u"] == (0, "empty")
    assert statuses["a=y & b=v"] == (20, "insufficient (< 30)")
    assert statuses["a=x & b=u"] == (200, "ok")


def test_intersections_can_be_turned_off() -> None:
    sens = pd.DataFrame({"a": ["x", "y"] * 50, "b": ["u"] * 50 + ["v"] * 50})
    assert [s.name for s in slicings(sens, ["a", "b"], intersections=False)] == ["a", "b"]
    assert [s.name for s in slicings(sens, ["a", "b"])] == ["a", "b", "a x b"]


def test_parity_needs_a_binary_problem() -> None:
    rng = np.random.default_rng(0)
    y = rng.integers(0, 3, 90)
    P = rng.dirichlet([1, 1, 1], 90)
    inputs = MetricInput(y=y, p_teacher=P, p_student=P, classes=(0, 1, 2), pos=None,
                         sensitive=pd.DataFrame({"a": ["x", "y", "z"] * 30}))
    with pytest.raises(DataError, match="demographic_parity_difference needs a binary problem"):
        measure_all(get_metric("demographic_parity_difference"), {}, inputs,
                    Resampler(inputs, 100, 0), 0.95)
    (m,) = measure_all(get_metric("worst_group_accuracy"), {"min_group_size": 1}, inputs,
                       Resampler(inputs, 100, 0), 0.95)
    assert 0 <= m.student.value <= 1


def test_missing_sensitive_values_error_by_default_or_form_their_own_group(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    paths = write_pair(tmp_path, n=300)
    frame = pd.read_csv(paths["eval"])
    frame.loc[[3, 10], "group"] = np.nan
    frame.to_csv(paths["eval"], index=False)
    checks = {"parity": {"metric": "demographic_parity_difference", "min_group_size": 1}}
    suite = write_suite(tmp_path, checks)
    result = SuiteRun(load_suite(suite)).run_check("parity")
    assert result.status == "error"
    assert result.error == ("eval.csv: sensitive column 'group' has 2 rows with a missing value, "
                            "first at data row 4; fill them, or set data.missing_sensitive: group "
                            "to slice them as their own group 'missing'")
    raw = yaml.safe_load(suite.read_text())
    raw["data"]["missing_sensitive"] = "group"
    suite.write_text(yaml.safe_dump(raw))
    result = SuiteRun(load_suite(suite)).run_check("parity")
    groups = {r["group"]: r["n"] for r in result.measurements[0].breakdown}
    assert groups["group=missing"] == 2


def _biased(P: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """Flip the student's decisions for one group."""
    Q = P.copy()
    Q[mask] = Q[mask][:, ::-1]
    return Q


def test_a_student_biased_against_one_group_fails_the_amplification_gate(tmp_path: Path,
                                                                        built: dict) -> None:
    arrests = SuiteRun(load_suite(ROOT / "suites" / "arrests.audit.yaml"))
    faithful = np.asarray(arrests.inputs.p_student)
    colour = arrests.eval_table.sensitive["colour"].to_numpy()
    # hurt one group: a third of its released rows are now refused
    rng = np.random.default_rng(0)
    mask = (colour == "Black") & (faithful[:, 1] > 0.5) & (rng.random(len(colour)) < 0.33)
    from tests.test_calibration import _student_predictions_suite

    gate = {"amplification": {"metric": "demographic_parity_difference", "by": ["colour"],
                              "gate": {"max_regression": 0.08}}}
    ok = SuiteRun(load_suite(_student_predictions_suite(tmp_path, faithful, gate)))
    assert ok.run_check("amplification").status == "pass"
    bad_dir = tmp_path / "biased"
    bad_dir.mkdir()
    bad = SuiteRun(load_suite(_student_predictions_suite(bad_dir, _biased(faithful, mask), gate)))
    result = bad.run_check("amplification")
    assert result.status == "fail"
    (m,) = result.measurements
    assert m.params["by"] == "colour" and m.regression.ci[0] > 0.08


def test_an_undefined_group_rate_is_left_out_with_a_note() -> None:
    """A group with no negative rows has no false positive rate: the audit leaves it out of the
    equalized-odds difference and says so (fairlearn would count it as 0, which is a claim
    about rows that do not exist). Hand-worked: group g has TPR 1/2 and FPR 1/2, group h only
    positives (TPR 1), so the difference is max(|1 - 1/2|, FPR spread of g alone: none) = 1/2."""
    y = np.array([1, 1, 0, 0, 1, 1])
    pred = np.array([1, 0, 1, 0, 1, 1])
    P = np.column_stack([1 - pred, pred]).astype(float)
    groups = pd.DataFrame({"a": ["g", "g", "g", "g", "h", "h"]})
    (m,) = _measure("equalized_odds_difference", _inputs(y, P, P, groups))
    assert m.teacher is not None and m.teacher.value == pytest.approx(0.5)
    assert ("1 group(s) have no negative rows (a=h): their false positive rate is undefined and "
            "left out of the difference (fairlearn would count it as 0)") in m.notes
