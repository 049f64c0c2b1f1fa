"""Every metric against an independent computation (scikit-learn, scipy or a hand-worked case),
and the registry's common properties (as scikit-learn's metrics/tests/test_common.py does)."""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy.spatial.distance import jensenshannon
from scipy.stats import entropy
from sklearn import metrics as skm

from audit.checks.measure import Resampler, measure, measure_all
from audit.checks.performance import confusion
from audit.checks.registry import MetricInput, get_metric, metric_names
from audit.errors import DataError
from audit.gates import MIN_ROWS, evaluate_gate
from audit.results import Measurement
from audit.stats import z_value
from audit.suite import GateSpec

SKLEARN_COUNTS = {
    "accuracy": lambda y, p, avg, pos: skm.accuracy_score(y, p),
    "balanced_accuracy": lambda y, p, avg, pos: skm.balanced_accuracy_score(y, p),
    "precision": lambda y, p, avg, pos: skm.precision_score(y, p, average=avg, pos_label=pos,
                                                            zero_division=0),
    "recall": lambda y, p, avg, pos: skm.recall_score(y, p, average=avg, pos_label=pos,
                                                      zero_division=0),
    "f1": lambda y, p, avg, pos: skm.f1_score(y, p, average=avg, pos_label=pos, zero_division=0),
}


@st.composite
def problems(draw: st.DrawFn, min_n: int = 1, max_n: int = 60) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Labels and two models' probabilities; classes may be missing from labels or predictions."""
    k = draw(st.integers(2, 5))
    n = draw(st.integers(min_n, max_n))
    seed = draw(st.integers(0, 2**32 - 1))
    rng = np.random.default_rng(seed)
    y = rng.integers(0, draw(st.integers(1, k)), n)  # sometimes only some classes occur
    pt = rng.dirichlet(np.full(k, draw(st.sampled_from([0.3, 1.0, 5.0]))), n)
    ps = rng.dirichlet(np.ones(k), n)
    return y, pt, ps


def _inputs(y: np.ndarray, pt: np.ndarray, ps: np.ndarray, pos: int | None = None,
            groups: pd.DataFrame | None = None) -> MetricInput:
    k = pt.shape[1]
    if pos is None and k == 2:
        pos = 1
    if groups is None:
        groups = pd.DataFrame({"g": np.where(np.arange(len(y)) % 3 == 0, "a", "b")})
    return MetricInput(y=y, p_teacher=pt, p_student=ps, classes=tuple(range(k)), pos=pos,
                       sensitive=groups)


def _all(name: str, inp: MetricInput, r: Resampler) -> tuple[Measurement, ...]:
    """Every measurement of a metric (none when it does not apply to this problem)."""
    params = {"min_group_size": 1} if "min_group_size" in get_metric(name).params else {}
    try:
        return measure_all(get_metric(name), params, inp, r, 0.95)
    except DataError:  # e.g. demographic parity on a multiclass problem
        return ()


@given(problems())
@settings(max_examples=150, deadline=None)
def test_count_metrics_equal_sklearn(problem: tuple[np.ndarray, np.ndarray, np.ndarray]) -> None:
    y, pt, _ = problem
    k = pt.shape[1]
    pred = pt.argmax(axis=1)
    C = confusion(y, pred, k)
    averages = (["binary"] if k == 2 else []) + ["macro", "micro", "weighted"]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # sklearn warns on ill-defined values; we compare values
        for name, ref in SKLEARN_COUNTS.items():
            metric = get_metric(name)
            for avg in averages if "average" in metric.params else [None]:
                params = {"average": avg} if avg else {}
                ours = float(metric.counts(C, k, 1 if k == 2 else None, params))
                theirs = ref(y, pred, avg, 1)
                assert ours == pytest.approx(theirs, abs=1e-12), (name, avg)


@given(problems(min_n=2))
@settings(max_examples=100, deadline=None)
def test_roc_auc_and_log_loss_equal_sklearn(problem: tuple[np.ndarray, np.ndarray, np.ndarray]) -> None:
    y, pt, _ = problem
    k = pt.shape[1]
    pos = 1 if k == 2 else None
    value, _ = get_metric("log_loss").influence(y, pt, pos, {})
    assert value == pytest.approx(skm.log_loss(y, pt, labels=list(range(k))), rel=1e-12)
    auc, infl = get_metric("roc_auc").influence(y, pt, pos, {})
    present = set(np.unique(y))
    if k == 2:
        if present == {0, 1}:
            assert auc == pytest.approx(skm.roc_auc_score(y, pt[:, 1]), abs=1e-12)
        else:
            assert np.isnan(auc)
    elif present == set(range(k)):
        assert auc == pytest.approx(skm.roc_auc_score(y, pt, multi_class="ovr"), abs=1e-12)
    else:
        assert np.isnan(auc)  # one-vs-rest needs every class among the labels


@given(problems())
@settings(max_examples=100, deadline=None)
def test_divergences_equal_scipy(problem: tuple[np.ndarray, np.ndarray, np.ndarray]) -> None:
    y, pt, ps = problem
    kl, _ = get_metric("kl_divergence").pair_influence(y, pt, ps)
    js, _ = get_metric("js_divergence").pair_influence(y, pt, ps)
    assert kl == pytest.approx(np.mean([entropy(a, b) for a, b in zip(pt, ps, strict=True)]), rel=1e-9)
    assert js == pytest.approx(np.mean([jensenshannon(a, b) ** 2 for a, b in zip(pt, ps, strict=True)]),
                               rel=1e-9, abs=1e-15)


def test_agreement_and_flips_by_hand() -> None:
    # rows:           0  1  2  3  4  5  6  7
    y = np.array([0, 0, 1, 1, 1, 0, 1, 0])
    t = np.array([0, 0, 1, 0, 1, 1, 1, 0])  # teacher right on 0,1,2,4,6,7
    s = np.array([0, 1, 1, 1, 0, 1, 1, 0])  # student right on 0,2,3,6,7
    eye = np.eye(2)
    inp = _inputs(y, eye[t] * 0.9 + 0.05, eye[s] * 0.9 + 0.05)
    r = Resampler(inp, 200, 0)
    values = {name: measure(get_metric(name), {}, inp, r, 0.95).student.value
              for name in ("agreement", "negative_flip_rate", "positive_flip_rate")}
    # agree on rows 0,2,5,6,7 -> 5/8; teacher right & student wrong: rows 1,4 -> 2/8;
    # teacher wrong & student right: row 3 -> 1/8
    assert values == {"agreement": 5 / 8, "negative_flip_rate": 2 / 8, "positive_flip_rate": 1 / 8}


@given(problems(min_n=MIN_ROWS))
@settings(max_examples=40, deadline=None)
def test_identical_student_has_zero_regression_and_passes_every_regression_gate(
        problem: tuple[np.ndarray, np.ndarray, np.ndarray]) -> None:
    """Zero regression, an interval around it no wider than Tango's with no discordant row
    (+-z^2 / (n + z^2) on its n paired rows; the bootstrap alone gives [0, 0]), and every
    regression gate passes once it is at least that wide: "n large enough" for the bound."""
    y, pt, _ = problem
    inp = _inputs(y, pt, pt.copy())
    r = Resampler(inp, 200, 0)
    z2 = z_value(0.95) ** 2
    for name in metric_names():
        if get_metric(name).pairwise:
            continue
        for m in _all(name, inp, r):
            if not np.isfinite(m.teacher.value):
                continue  # undefined on this draw (e.g. AUC with one class): nothing to compare
            assert m.regression.value == 0.0, name
            if m.evidence.get("paired") == 0:
                continue  # recall with no positive row: a share of nothing is no evidence
            half = z2 / (m.evidence.get("paired", len(y)) + z2)  # recall: the positive rows
            ci = m.regression.ci or (0.0, 0.0)
            assert -half - 1e-12 <= ci[0] <= 0.0 <= ci[1] <= half + 1e-12, name
            assert ci in ((0.0, 0.0), pytest.approx((-half, half), rel=1e-9)), name
            bound = 1.01 * half
            relative = bound / abs(m.teacher.value) if m.teacher.value else None
            gates = evaluate_gate(GateSpec(max_regression=bound, max_relative_regression=relative), m)
            assert [g.status for g in gates] == ["pass"] * len(gates), (name, gates)


@given(problems(min_n=5), st.integers(0, 2**32 - 1))
@settings(max_examples=20, deadline=None)
def test_row_order_does_not_change_any_measurement(problem: tuple[np.ndarray, np.ndarray, np.ndarray],
                                                   seed: int) -> None:
    y, pt, ps = problem
    perm = np.random.default_rng(seed).permutation(len(y))
    a = _inputs(y, pt, ps)
    b = _inputs(y[perm], pt[perm], ps[perm], groups=a.sensitive.iloc[perm].reset_index(drop=True))
    ra, rb = Resampler(a, 200, 0), Resampler(b, 200, 0)
    for name in metric_names():
        for ma, mb in zip(_all(name, a, ra), _all(name, b, rb), strict=True):
            da, db = ma.to_dict(), mb.to_dict()
            # recalibration advice fits on a seeded half of the rows, which depends on their order
            da.pop("extra"), db.pop("extra")
            assert _close(da, db), name


def _close(a: object, b: object) -> bool:
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(_close(a[k], b[k]) for k in a)
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and all(_close(x, y) for x, y in zip(a, b, strict=True))
    if isinstance(a, float) and isinstance(b, float):
        return a == pytest.approx(b, rel=1e-9, abs=1e-12)
    return a == b


def test_every_metric_declares_a_direction_and_a_range() -> None:
    for name in metric_names():
        m = get_metric(name)
        assert m.direction in ("higher", "lower")
        assert m.bounds[0] < m.bounds[1]
        assert (m.counts or m.joint or m.influence or m.pair_influence or m.custom) is not None
        assert m.engine in ("counts", "custom") or m.interval, \
            f"{name} must say how its interval is computed"


def test_regression_is_oriented_so_positive_means_worse() -> None:
    rng = np.random.default_rng(0)
    y = rng.integers(0, 2, 500)
    good = np.where(y[:, None] == np.arange(2), 0.9, 0.1)
    bad = np.where(y[:, None] == np.arange(2), 0.6, 0.4)
    bad[:100] = bad[:100, ::-1]  # wrong on the first 100 rows
    inp = _inputs(y, good, bad)
    r = Resampler(inp, 200, 0)
    for name in ("accuracy", "log_loss", "roc_auc"):  # higher, lower, higher is better
        m = measure(get_metric(name), {}, inp, r, 0.95)
        assert m.regression.value > 0, name
        assert m.regression.ci[0] > 0, name
