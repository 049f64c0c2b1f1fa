"""Fairness at small n: a group's rate interval holds Clopper-Pearson's (checked against
scipy's exact binomial interval and fairlearn's MetricFrame), a disparity over a tiny group
holds the exact bound (hand-worked cases), the intervals cover the truth in simulation, and an
undecided disparity names the group that limits it and the rows that group would need."""

from __future__ import annotations

import math
from statistics import NormalDist

import numpy as np
import pandas as pd
import pytest
from fairlearn.metrics import (
    MetricFrame,
    count,
    demographic_parity_difference,
    equalized_odds_difference,
    false_positive_rate,
    selection_rate,
    true_positive_rate,
)
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy.stats import binomtest
from sklearn.metrics import accuracy_score

from audit.checks.fairness import rows_to_decide
from audit.checks.group_bounds import EXACT_BELOW, exact_bounds, group_counts
from audit.checks.measure import Resampler, measure_all
from audit.checks.registry import MetricInput, get_metric
from audit.gates import evaluate_gate
from audit.results import Estimate, Measurement
from audit.spec import GateSpec

CONF = 0.95


def _inputs(y: np.ndarray, pred_t: np.ndarray, pred_s: np.ndarray, groups: list[str]
            ) -> MetricInput:
    """Binary inputs whose decisions are ``pred_t`` and ``pred_s`` (0/1)."""
    def probs(pred: np.ndarray) -> np.ndarray:
        p = np.where(pred == 1, 0.8, 0.2)
        return np.c_[1 - p, p]

    return MetricInput(y=np.asarray(y), p_teacher=probs(np.asarray(pred_t)),
                       p_student=probs(np.asarray(pred_s)), classes=(0, 1), pos=1,
                       sensitive=pd.DataFrame({"g": groups}))


def _measure(name: str, inputs: MetricInput, n_boot: int = 200, **params: object
             ) -> Measurement:
    (m,) = measure_all(get_metric(name), {"min_group_size": 1, **params}, inputs,
                       Resampler(inputs, n_boot, 0), CONF)
    return m


def _exact(k: int, n: int, confidence: float = CONF) -> tuple[float, float]:
    """The exact binomial interval as scipy computes it (an independent implementation)."""
    ci = binomtest(k, n).proportion_ci(confidence_level=confidence, method="exact")
    return ci.low, ci.high


def _rows(m: Measurement) -> dict[str, dict]:
    return {r["group"]: r for r in m.breakdown}


# ------------------------------------------------------------------------ group rates
def test_a_three_row_groups_rates_have_exact_intervals() -> None:
    """3 rows, all predicted positive, 2 truly positive: the bootstrap says [1, 1] for the
    selection rate; Clopper-Pearson says [(alpha/2)^(1/3), 1] = [0.2924, 1]."""
    y = [1, 1, 0] + [0, 1] * 20
    pred = [1, 1, 1] + [0, 1] * 20
    m = _measure("demographic_parity_difference", _inputs(y, pred, pred, ["a"] * 3 + ["b"] * 40))
    tiny = _rows(m)["g=a"]["student"]
    assert tiny["selection_rate"] == 1.0
    assert tiny["selection_rate_ci"] == pytest.approx([0.025 ** (1 / 3), 1.0], abs=1e-12)
    assert tiny["selection_rate_ci"] == pytest.approx(list(_exact(3, 3)), abs=1e-9)
    assert tiny["tpr_ci"] == pytest.approx(list(_exact(2, 2)), abs=1e-9)  # 2 positives, both found
    assert tiny["fpr_ci"] == pytest.approx(list(_exact(1, 1)), abs=1e-9)  # 1 negative, predicted 1
    low, high = _exact(2, 3)  # 2 of 3 right: here the bootstrap's interval is the wider one
    assert tiny["accuracy_ci"][0] <= low and tiny["accuracy_ci"][1] >= high


@given(st.integers(0, 2**32 - 1), st.integers(1, 6))
@settings(max_examples=15, deadline=None)
def test_group_rates_equal_metricframe_and_hold_the_exact_interval(seed: int, tiny: int) -> None:
    rng = np.random.default_rng(seed)
    groups = ["a"] * tiny + list(rng.choice(["b", "c"], 60))
    n = len(groups)
    y, pt, ps = rng.integers(0, 2, n), rng.integers(0, 2, n), rng.integers(0, 2, n)
    inputs = _inputs(y, pt, ps, groups)
    m = _measure("worst_group_accuracy", inputs)
    frame = pd.DataFrame({"g": groups})
    for who, pred in (("teacher", pt), ("student", ps)):
        mf = MetricFrame(metrics={"accuracy": accuracy_score, "selection_rate": selection_rate,
                                  "tpr": true_positive_rate, "fpr": false_positive_rate,
                                  "n": count}, y_true=y, y_pred=pred, sensitive_features=frame["g"])
        for group, row in _rows(m).items():
            ref = mf.by_group.loc[group.split("=")[1]]
            got = row[who]
            assert row["n"] == ref["n"]
            mask = frame["g"].to_numpy() == group.split("=")[1]
            trials = {"accuracy": mask.sum(), "selection_rate": mask.sum(),
                      "tpr": (mask & (y == 1)).sum(), "fpr": (mask & (y == 0)).sum()}
            for rate, trial in trials.items():
                if trial == 0:  # fairlearn says 0 where the rate is undefined; we say None
                    assert got[rate] is None and got[f"{rate}_ci"] is None
                    continue
                assert got[rate] == pytest.approx(ref[rate], abs=1e-12)
                low, high = _exact(round(ref[rate] * trial), int(trial))
                ci = got[f"{rate}_ci"]
                assert ci[0] <= low + 1e-9 and ci[1] >= high - 1e-9, (group, who, rate)
                assert ci[0] <= got[rate] <= ci[1]


# ------------------------------------------------------------------------ disparities
def test_disparity_values_over_tiny_groups_equal_fairlearn() -> None:
    rng = np.random.default_rng(3)
    groups = ["a"] * 3 + ["b"] * 4 + ["c"] * 5
    y, pt, ps = rng.integers(0, 2, 12), rng.integers(0, 2, 12), rng.integers(0, 2, 12)
    inputs = _inputs(y, pt, ps, groups)
    for name, ref in (("demographic_parity_difference", demographic_parity_difference),
                      ("equalized_odds_difference", equalized_odds_difference)):
        m = _measure(name, inputs)
        for who, pred in (("teacher", pt), ("student", ps)):
            expected = ref(y, pred, sensitive_features=groups)
            assert getattr(m, who).value == pytest.approx(expected, abs=1e-12)


def _z(confidence: float) -> float:
    return NormalDist().inv_cdf(0.5 + confidence / 2)


def test_hand_worked_parity_of_two_groups_of_eight() -> None:
    """Group a: 8 rows all selected; b: 8 rows none. The bootstrap says the parity gap is
    1 [1, 1]. Exact, with Bonferroni over the 2 group intervals (each at 97.5%): a's rate is at
    least 0.0125^(1/8) = 0.5783, b's at most 1 - 0.5783, so the gap is in [0.1565, 1]. The
    student is the teacher: the bootstrap amplification is [0, 0]; exact (6 intervals, each at
    1 - 0.05/6): Tango's interval of each group's change with no discordant row is
    +-z^2 / (8 + z^2) = +-0.4653, so the amplification is within +-0.9305 (the two models'
    own bounds, [0.0081, 1] each, only say +-0.9919)."""
    y = [1] * 8 + [0] * 8
    pred = [1] * 8 + [0] * 8
    m = _measure("demographic_parity_difference", _inputs(y, pred, pred, ["a"] * 8 + ["b"] * 8))
    low = 0.0125 ** (1 / 8) - (1 - 0.0125 ** (1 / 8))
    assert m.student.value == 1.0 and m.teacher.value == 1.0
    assert m.student.ci == pytest.approx((low, 1.0), abs=1e-9)
    assert low == pytest.approx(0.1565, abs=1e-4)
    z2 = _z(1 - 0.05 / 6) ** 2
    band = 2 * z2 / (8 + z2)
    assert band == pytest.approx(0.9305, abs=1e-4)
    assert m.regression.value == 0.0
    assert m.regression.ci == pytest.approx((-band, band), abs=1e-6)
    own = (0.05 / 12) ** (1 / 8) - (1 - (0.05 / 12) ** (1 / 8))
    assert own == pytest.approx(0.0081, abs=1e-4) and 1 - own > band  # the paired bound is tighter
    assert any(f"below {EXACT_BELOW} rows" in note for note in m.notes)
    assert "exact bounds" in m.method
    # a gate the bootstrap alone would pass on 16 rows is undecided
    (gate,) = evaluate_gate(GateSpec(max_regression=0.1), m)
    assert gate.status == "inconclusive"


def test_hand_worked_worst_group_accuracy() -> None:
    """a: 8 rows all right; b: 8 rows, 4 right. The worst group is b at 0.5; exact (each of
    the 2 intervals at 97.5%) it lies in [min L, min U] = b's interval."""
    y = [1] * 16
    pred = [1] * 8 + [1, 1, 1, 1, 0, 0, 0, 0]
    m = _measure("worst_group_accuracy", _inputs(y, pred, pred, ["a"] * 8 + ["b"] * 8))
    low, high = _exact(4, 8, 1 - 0.05 / 2)
    assert m.student.value == 0.5
    assert m.student.ci[0] <= low + 1e-9 and m.student.ci[1] >= high - 1e-9
    assert m.student.ci[1] == pytest.approx(high, abs=1e-9)  # above the bootstrap's high


def test_groups_of_ten_rows_or_more_keep_the_bootstrap_intervals() -> None:
    rng = np.random.default_rng(0)
    n = 200
    groups = list(rng.choice(["a", "b"], n))
    y, pt, ps = rng.integers(0, 2, n), rng.integers(0, 2, n), rng.integers(0, 2, n)
    inputs = _inputs(y, pt, ps, groups)
    m = _measure("demographic_parity_difference", inputs)
    assert "exact" not in m.method and not m.notes
    # only a group of fewer than EXACT_BELOW rows brings the exact bounds in
    for size, joined in ((EXACT_BELOW, False), (EXACT_BELOW - 1, True)):
        m = _measure("demographic_parity_difference",
                     _inputs(y, pt, ps, ["c"] * size + groups[size:]))
        assert ("exact" in m.method) is joined


@given(st.integers(0, 2**32 - 1), st.integers(1, 5), st.integers(1, 5))
@settings(max_examples=20, deadline=None)
def test_every_interval_holds_its_value_and_the_exact_bound(seed: int, n_a: int, n_b: int) -> None:
    rng = np.random.default_rng(seed)
    groups = ["a"] * n_a + ["b"] * n_b + ["c"] * 40
    n = len(groups)
    y, pt, ps = rng.integers(0, 2, n), rng.integers(0, 2, n), rng.integers(0, 2, n)
    inputs = _inputs(y, pt, ps, groups)
    codes = pd.factorize(pd.Series(groups), sort=True)[0]
    J = np.bincount(((codes * 2 + y) * 2 + pt) * 2 + ps, minlength=3 * 8).reshape(3, 2, 2, 2)
    counts = group_counts(J, 1)
    keep = np.ones(3, dtype=bool)
    for name in ("demographic_parity_difference", "demographic_parity_ratio",
                 "equalized_odds_difference", "equalized_odds_ratio", "worst_group_accuracy",
                 "max_gap_to_overall"):
        metric = get_metric(name)
        m = _measure(name, inputs)
        bounds = exact_bounds(name, metric.direction, counts, keep, "accuracy", CONF)
        for key, est in (("t", m.teacher), ("s", m.student), ("reg", m.regression)):
            if est is None or not math.isfinite(est.value):
                continue
            assert est.ci is not None
            assert est.ci[0] <= est.value + 1e-12 and est.value <= est.ci[1] + 1e-12, (name, key)
            if key in bounds:
                lo, hi = bounds[key]
                assert lo <= est.value + 1e-12 <= hi + 2e-12, (name, key)
                assert est.ci[0] <= max(lo, -1.0) + 1e-12 and est.ci[1] >= min(hi, 1.0) - 1e-12


def test_tiny_group_intervals_cover_the_truth_in_simulation() -> None:
    """Groups of 4 and 6 rows whose decisions are drawn at true selection rates 0.6 and 0.3,
    teacher and student independently (true gap 0.3 each, true amplification 0): the
    intervals cover the truth at least at the nominal 95% (the exact parts guarantee it)."""
    rng = np.random.default_rng(7)
    groups = ["a"] * 4 + ["b"] * 6
    rates = np.array([0.6] * 4 + [0.3] * 6)
    covered = {"student": 0, "regression": 0, "group": 0}
    sims = 200
    for _ in range(sims):
        y = rng.integers(0, 2, 10)
        pt, ps = (rng.random(10) < rates).astype(int), (rng.random(10) < rates).astype(int)
        m = _measure("demographic_parity_difference", _inputs(y, pt, ps, groups), n_boot=100)
        ci, reg = m.student.ci, m.regression.ci
        covered["student"] += ci is not None and ci[0] <= 0.3 <= ci[1]
        covered["regression"] += reg is not None and reg[0] <= 0.0 <= reg[1]
        g = _rows(m)["g=a"]["student"]["selection_rate_ci"]
        covered["group"] += g[0] <= 0.6 <= g[1]
    for key, hits in covered.items():
        assert hits / sims >= 0.95, (key, hits)


# ------------------------------------------------------------------------ rows needed
def _measurement(value: float, ci: tuple[float, float], shares: list[float], n: int = 1000
                 ) -> Measurement:
    groups = [{"group": f"g={i}", "n": 100 * (i + 1), "share": s} for i, s in enumerate(shares)]
    return Measurement("demographic_parity_difference", "lower", Estimate(0.1, (0.05, 0.15)),
                       teacher=Estimate(0.1, (0.05, 0.15)), regression=Estimate(value, ci), n=n,
                       extra={"spread_by_group": {"regression": groups}},
                       evidence={"confidence": 0.95}, family="fairness")


def test_rows_needed_follow_the_closed_form() -> None:
    """Interval half-width h on the threshold's side, margin d from the value: the variance
    must fall from (h/z)^2 to (d/(z + z_0.8))^2. One group with share s of it and n_g rows needs
    n_g s / (target - now + s now) rows; all rows at today's shares n now / target."""
    z, zp = _z(0.95), NormalDist().inv_cdf(0.8)
    now, target = (0.04 / z) ** 2, (0.02 / (z + zp)) ** 2
    m = _measurement(0.0, (-0.04, 0.04), [0.95, 0.05])
    group, rows, text = rows_to_decide(m, "max_regression", 0.02)
    assert group == "g=0"
    assert rows == math.ceil(100 * 0.95 * now / (target - now + 0.95 * now))
    assert rows == 1313
    total = math.ceil(1000 * now / target)
    assert total == 8173
    assert text == ("g=0 (n=100) carries 95% of this amplification's spread: about 1,313 rows "
                    "in that group (the others as they are), or 8,173 eval rows at today's group "
                    "shares, would show amplification <= 0.02 (80% power if the amplification "
                    "stays at 0; each group's share of the spread from its binomial variance)")
    # a group with a quarter of the spread cannot do it alone
    group, rows, text = rows_to_decide(_measurement(0.0, (-0.04, 0.04), [0.75, 0.25]),
                                       "max_regression", 0.02)
    assert rows is None and "more rows there alone cannot show" in text and "8,173" in text
    # a value beyond the threshold: the rows that would rule it out, read on the low side
    group, rows, text = rows_to_decide(_measurement(0.05, (0.01, 0.12), [1.0]),
                                       "max_regression", 0.02)
    now, target = (0.04 / z) ** 2, (0.03 / (z + zp)) ** 2
    assert rows == math.ceil(100 * now / target) and "rule out amplification <= 0.02" in text


def test_rows_needed_only_for_an_undecided_bound() -> None:
    m = _measurement(0.0, (-0.01, 0.01), [1.0])
    assert rows_to_decide(m, "max_regression", 0.02) is None  # passes
    assert rows_to_decide(_measurement(0.05, (0.03, 0.07), [1.0]), "max_regression", 0.02) is None
    on = rows_to_decide(_measurement(0.02, (0.0, 0.04), [1.0]), "max_regression", 0.02)
    assert on is not None and on[1] is None and "equals the threshold" in on[2]


def test_the_smaller_group_is_named_on_a_real_measurement() -> None:
    rng = np.random.default_rng(1)
    groups = ["small"] * 40 + ["large"] * 600
    n = len(groups)
    y = rng.integers(0, 2, n)
    pt = rng.integers(0, 2, n)
    ps = np.where(rng.random(n) < 0.1, 1 - pt, pt)
    m = _measure("demographic_parity_difference", _inputs(y, pt, ps, groups))
    assert m.regression.ci[0] < 0.01 < m.regression.ci[1]
    group, rows, text = rows_to_decide(m, "max_regression", 0.01)
    assert group == "g=small" and text.startswith("g=small (n=40) carries")
    shares = m.extra["spread_by_group"]["regression"]
    assert shares[0]["group"] == "g=small" and shares[0]["share"] > 0.7
    assert sum(s["share"] for s in shares) == pytest.approx(1.0)


def test_an_undefined_disparity_names_the_excluded_group_and_its_missing_rows() -> None:
    rng = np.random.default_rng(0)
    groups = ["a"] * 380 + ["b"] * 20
    y, p = rng.integers(0, 2, 400), rng.integers(0, 2, 400)
    m = _measure("demographic_parity_difference", _inputs(y, p, p, groups), min_group_size=30)
    assert not math.isfinite(m.student.value)
    assert m.extra["excluded_groups"] == [{"group": "g=b", "n": 20, "needs": 10}]
    group, rows, text = rows_to_decide(m, "max_regression", 0.05)
    assert (group, rows) == ("g=b", 10)
    assert text == ("too few groups have min_group_size=30 rows for the disparity; the largest "
                    "excluded group, g=b (n=20), would count with 10 more rows")


def test_rows_at_todays_shares_equal_the_gates_own_figure() -> None:
    """The total rows are the gate's rows-needed figure (audit.power's normal approximation
    on the same interval); the group's rows are what this module adds."""
    rng = np.random.default_rng(1)
    groups = ["small"] * 40 + ["large"] * 600
    n = len(groups)
    y, pt = rng.integers(0, 2, n), rng.integers(0, 2, n)
    ps = np.where(rng.random(n) < 0.1, 1 - pt, pt)
    m = _measure("demographic_parity_difference", _inputs(y, pt, ps, groups))
    (gate,) = evaluate_gate(GateSpec(max_regression=0.01), m)
    assert gate.status == "inconclusive" and gate.rows_needed is not None
    _, rows, text = rows_to_decide(m, "max_regression", 0.01)
    assert f"{gate.rows_needed:,} eval rows at today's group shares" in text
