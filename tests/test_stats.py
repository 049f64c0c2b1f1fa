"""Intervals: the count-table bootstrap is the row bootstrap, DeLong is DeLong, and intervals
cover the true value at about the nominal rate in seeded simulations."""

from __future__ import annotations

from statistics import NormalDist

import numpy as np
import pytest

from audit.checks.measure import Resampler, measure
from audit.checks.performance import _auc_binary
from audit.checks.registry import MetricInput, get_metric
from audit.stats import bootstrap_tables, joint_table, normal_interval, percentile_interval, z_value


def test_joint_table_counts_every_row_once() -> None:
    rng = np.random.default_rng(0)
    y, t, s = (rng.integers(0, 3, 1000) for _ in range(3))
    J = joint_table(y, t, s, 3)
    assert J.sum() == 1000
    assert J[2, 1, 0] == np.sum((y == 2) & (t == 1) & (s == 0))


def test_multinomial_bootstrap_matches_the_row_bootstrap() -> None:
    """Drawing the table's cells from one multinomial has the distribution of resampling rows."""
    rng = np.random.default_rng(1)
    n = 400
    y = rng.integers(0, 2, n)
    t = np.where(rng.random(n) < 0.85, y, 1 - y)
    s = np.where(rng.random(n) < 0.9, t, 1 - t)
    J = joint_table(y, t, s, 2)
    reps = bootstrap_tables(J, 4000, seed=2)
    assert (reps.sum(axis=(1, 2, 3)) == n).all()
    acc_table = np.trace(reps.sum(axis=3), axis1=1, axis2=2) / n
    idx = rng.integers(0, n, size=(4000, n))
    acc_rows = (y[idx] == t[idx]).mean(axis=1)
    assert acc_table.mean() == pytest.approx(acc_rows.mean(), abs=0.002)
    assert acc_table.std() == pytest.approx(acc_rows.std(), rel=0.06)


def _delong_direct(scores: np.ndarray, positive: np.ndarray) -> tuple[float, float]:
    """DeLong et al. (1988) by its definition, O(m*n): AUC and its variance."""
    x, yv = scores[positive], scores[~positive]
    psi = (x[:, None] > yv[None, :]).astype(float) + 0.5 * (x[:, None] == yv[None, :])
    v10, v01 = psi.mean(axis=1), psi.mean(axis=0)
    auc = psi.mean()
    return auc, v10.var(ddof=1) / len(x) + v01.var(ddof=1) / len(yv)


def test_auc_influence_gives_delongs_variance_exactly_with_ties() -> None:
    rng = np.random.default_rng(3)
    scores = np.round(rng.random(300), 2)  # many ties
    positive = rng.random(300) < scores
    auc, infl = _auc_binary(scores, positive)
    ref_auc, ref_var = _delong_direct(scores, positive)
    assert auc == pytest.approx(ref_auc, abs=1e-12)
    assert np.sum(infl**2) == pytest.approx(ref_var, rel=1e-10)


def test_paired_auc_difference_uses_delongs_covariance() -> None:
    rng = np.random.default_rng(4)
    positive = rng.random(250) < 0.4
    a = rng.normal(size=250) + positive
    b = a + rng.normal(scale=0.7, size=250)
    _, ia = _auc_binary(a, positive)
    _, ib = _auc_binary(b, positive)
    # DeLong's covariance from the structural components
    pa = (a[positive][:, None] > a[~positive][None, :]).astype(float)
    pb = (b[positive][:, None] > b[~positive][None, :]).astype(float)
    m, q = positive.sum(), (~positive).sum()
    cov = (np.cov(pa.mean(1), pb.mean(1))[0, 1] / m + np.cov(pa.mean(0), pb.mean(0))[0, 1] / q)
    assert np.sum(ia * ib) == pytest.approx(cov, rel=1e-10)


def test_interval_helpers() -> None:
    assert z_value(0.95) == pytest.approx(NormalDist().inv_cdf(0.975))
    iv = percentile_interval(np.arange(101, dtype=float), 0.9)
    assert (iv.low, iv.high) == pytest.approx((5.0, 95.0))
    assert percentile_interval(np.array([np.nan, np.nan]), 0.95) is None
    assert normal_interval(float("nan"), np.zeros(3), 0.95) is None
    iv = normal_interval(1.0, np.array([0.3, 0.4]), 0.95)
    assert iv.high - 1.0 == pytest.approx(z_value(0.95) * 0.5)


def _coverage(simulate, truth: float, metric: str, field: str, sims: int, n_boot: int = 300) -> float:
    hits = 0
    for i in range(sims):
        inp = simulate(np.random.default_rng(1000 + i))
        m = measure(get_metric(metric), {}, inp, Resampler(inp, n_boot, i), 0.95)
        est = getattr(m, field)
        hits += est.ci[0] <= truth <= est.ci[1]
    return hits / sims


def _pair(rng: np.random.Generator, n: int, p_teacher: float, p_student: float) -> MetricInput:
    """Binary labels; teacher right with p_teacher, student right with p_student, correlated."""
    y = rng.integers(0, 2, n)
    u = rng.random(n)
    t_right, s_right = u < p_teacher, (u + 0.1 * rng.random(n)) % 1.0 < p_student
    t = np.where(t_right, y, 1 - y)
    s = np.where(s_right, y, 1 - y)
    eye = np.eye(2)
    return MetricInput(y=y, p_teacher=eye[t] * 0.8 + 0.1, p_student=eye[s] * 0.8 + 0.1,
                       classes=(0, 1), pos=1)


def test_bootstrap_intervals_cover_accuracy_and_its_paired_regression() -> None:
    sims = 1000
    student = _coverage(lambda r: _pair(r, 300, 0.85, 0.80), 0.80, "accuracy", "student", sims)
    # regression = teacher - student; the correlated construction keeps E[s] = 0.80
    regression = _coverage(lambda r: _pair(r, 300, 0.85, 0.80), 0.05, "accuracy", "regression", sims)
    assert 0.925 <= student <= 0.975
    assert 0.925 <= regression <= 0.975


def test_delong_intervals_cover_the_true_auc() -> None:
    d = 1.0
    truth = NormalDist().cdf(d / np.sqrt(2))  # binormal AUC

    def simulate(rng: np.random.Generator) -> MetricInput:
        y = rng.integers(0, 2, 300)
        score = 1 / (1 + np.exp(-(rng.normal(size=300) + d * y)))
        P = np.column_stack([1 - score, score])
        return MetricInput(y=y, p_teacher=P, p_student=P, classes=(0, 1), pos=1)

    assert 0.925 <= _coverage(simulate, truth, "roc_auc", "student", 1000) <= 0.975


def test_normal_intervals_cover_the_true_log_loss() -> None:
    # p(true label) ~ Uniform(0.2, 1): E[-log p] = (0.8 - 0.2 log 5 ... ) computed numerically
    grid = np.linspace(0.2, 1.0, 2_000_001)
    truth = float(np.mean(-np.log(grid)))

    def simulate(rng: np.random.Generator) -> MetricInput:
        y = rng.integers(0, 2, 300)
        p_true = rng.uniform(0.2, 1.0, 300)
        P = np.where(y[:, None] == np.arange(2), p_true[:, None], 1 - p_true[:, None])
        return MetricInput(y=y, p_teacher=P, p_student=P, classes=(0, 1), pos=1)

    assert 0.925 <= _coverage(simulate, truth, "log_loss", "student", 1000) <= 0.975
