"""Degenerate evidence: a PASS that says nothing, and a student that predicts one class.

* Small samples (1, 2, 5, 10 rows, no discordant rows, few positives, few attacked or scored
  rows) are INCONCLUSIVE with the reason and the rows that would be needed, never a PASS on a
  [0, 0] bootstrap interval (issue 10, item 10). Each case asserts the exact verdict and reason.
* The exact intervals behind that: Clopper-Pearson against scipy's ``binomtest``, Tango's
  paired score interval against a brute-force inversion of its score test, a published
  example and the closed form with no discordant row; their coverage in seeded simulations.
* A model that predicts one class for every row is said in the details, the terminal and the
  HTML (item 12).
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from markupsafe import Markup
from scipy.optimize import minimize_scalar
from scipy.stats import binomtest

from audit import SuiteRun, load_suite
from audit.checks.measure import Resampler, measure, measure_all
from audit.checks.registry import Metric, MetricInput, get_metric
from audit.gates import evaluate_gate
from audit.report.html import render_html
from audit.report.terminal import format_check, format_summary
from audit.results import Estimate, Measurement
from audit.spec import GateSpec
from audit.stats import clopper_pearson, rows_to_pass, tango_interval, z_value
from fixtures.synthetic import write_pair, write_suite

EYE = np.eye(2)


def _inputs(y: list[int] | np.ndarray, t: list[int] | np.ndarray,
            s: list[int] | np.ndarray) -> MetricInput:
    """Binary labels and two models' hard decisions (as probabilities 0.9 / 0.1)."""
    y, t, s = (np.asarray(v, dtype=np.int64) for v in (y, t, s))
    return MetricInput(y=y, p_teacher=EYE[t] * 0.8 + 0.1, p_student=EYE[s] * 0.8 + 0.1,
                       classes=(0, 1), pos=1)


def _same(n: int) -> MetricInput:
    """n rows, both classes, a student identical to its teacher (no discordant row)."""
    y = np.arange(n) % 2
    t = y.copy()
    t[::4] = 1 - t[::4]  # the teacher is wrong on every fourth row; the student copies it
    return _inputs(y, t, t.copy())


def _worse(n: int, wrong: int) -> MetricInput:
    """n rows the teacher gets right; the student is wrong on the first ``wrong`` of them."""
    y = np.arange(n) % 2
    s = y.copy()
    s[:wrong] = 1 - s[:wrong]
    return _inputs(y, y.copy(), s)


def _few_positives(n: int, positives: int) -> MetricInput:
    y = np.zeros(n, dtype=np.int64)
    y[:positives] = 1
    return _inputs(y, y.copy(), y.copy())


NO_DISCORDANT = "even if the two models disagreed on none of them"
JUDGED = "to be judged (an interval from fewer is not evidence)"

CASES = [
    # (inputs, metric, gate, expected [(status, reason), ...] one per bound)
    pytest.param(_same(1), "accuracy", GateSpec(max_regression=0.02),
                 [("inconclusive", "only 1 eval row: a paired accuracy difference needs at least "
                                   f"189 eval rows to show a regression of at most 0.02 {NO_DISCORDANT}")],
                 id="n1-accuracy-regression"),
    pytest.param(_same(2), "accuracy", GateSpec(max_regression=0.02),
                 [("inconclusive", "only 2 eval rows: a paired accuracy difference needs at least "
                                   f"189 eval rows to show a regression of at most 0.02 {NO_DISCORDANT}")],
                 id="n2-accuracy-regression-the-issue"),
    pytest.param(_same(2), "accuracy", GateSpec(min=0.5),
                 [("inconclusive", f"only 2 eval rows: accuracy needs at least 30 eval rows {JUDGED}")],
                 id="n2-accuracy-min"),
    pytest.param(_same(5), "agreement", GateSpec(min=0.93),
                 [("inconclusive", "only 5 eval rows: agreement needs at least 51 eval rows to show "
                                   "agreement >= 0.93 even with a perfect score")],
                 id="n5-agreement-min"),
    pytest.param(_same(10), "negative_flip_rate", GateSpec(max=0.04),
                 [("inconclusive", "only 10 eval rows: negative_flip_rate needs at least 91 eval "
                                   "rows to show negative_flip_rate <= 0.04 even with a perfect score")],
                 id="n10-flips-max"),
    pytest.param(_same(10), "log_loss", GateSpec(max_relative_regression=0.1),
                 [("inconclusive", f"only 10 eval rows: the log_loss regression needs at least 30 eval "
                                   f"rows {JUDGED}")],
                 id="n10-log-loss-not-a-proportion"),
    pytest.param(_same(10), "ece", GateSpec(max=0.08, max_regression=0.02),
                 [("inconclusive", f"only 10 eval rows: ece needs at least 30 eval rows {JUDGED}"),
                  ("inconclusive", f"only 10 eval rows: the ece regression needs at least 30 eval "
                                   f"rows {JUDGED}")],
                 id="n10-ece-both-bounds"),
    pytest.param(_worse(10, 10), "accuracy", GateSpec(max_regression=0.02),
                 [("inconclusive", "only 10 eval rows: a paired accuracy difference needs at least "
                                   f"189 eval rows to show a regression of at most 0.02 {NO_DISCORDANT}")],
                 id="n10-a-fail-below-the-floor-is-not-trusted-either"),
    pytest.param(_same(40), "accuracy", GateSpec(max_regression=0.02),
                 [("inconclusive", "only 40 eval rows: a paired accuracy difference needs at least "
                                   f"189 eval rows to show a regression of at most 0.02 {NO_DISCORDANT}")],
                 id="n40-zero-discordant-cannot-pass-yet"),
    pytest.param(_same(200), "accuracy", GateSpec(max_regression=0.02), [("pass", "")],
                 id="n200-zero-discordant-passes"),
    pytest.param(_worse(40, 20), "accuracy", GateSpec(max_regression=0.02), [("fail", "")],
                 id="n40-a-clear-regression-fails-above-the-floor"),
    pytest.param(_few_positives(250, 20), "recall", GateSpec(max_regression=0.05),
                 [("inconclusive", "only 20 rows of the positive class: a paired recall difference "
                                   "needs at least 73 rows of the positive class to show a regression "
                                   f"of at most 0.05 {NO_DISCORDANT}")],
                 id="n250-recall-on-20-positives"),
    pytest.param(_same(2), "balanced_accuracy", GateSpec(max_regression=0.04),
                 [("inconclusive", "only 2 eval rows: the balanced_accuracy regression needs at least "
                                   f"30 eval rows {JUDGED}")],
                 id="n2-balanced-accuracy"),
    pytest.param(_same(5), "accuracy", GateSpec(min=0.7, max_relative_regression=0.05),
                 [("inconclusive", f"only 5 eval rows: accuracy needs at least 30 eval rows {JUDGED}"),
                  ("inconclusive", "only 5 eval rows: a paired accuracy difference needs at least "
                                   "125 eval rows to show a relative regression of at most 0.05 "
                                   f"{NO_DISCORDANT}")],
                 id="n5-relative-regression-needs-rows-for-the-teachers-value"),
]


@pytest.mark.parametrize(("inputs", "metric", "gate", "expected"), CASES)
def test_small_samples_are_inconclusive_with_the_rows_needed(
        inputs: MetricInput, metric: str, gate: GateSpec,
        expected: list[tuple[str, str]]) -> None:
    (m,) = measure_all(get_metric(metric), {}, inputs, Resampler(inputs, 500, 0), 0.95)
    got = [(g.status, g.reason) for g in evaluate_gate(gate, m)]
    assert got == expected


def test_two_rows_no_longer_pass_on_a_zero_width_interval() -> None:
    """The issue's reproduction: 2 eval rows, the student copies the teacher. The bootstrap
    alone gave [0, 0] and a PASS; the exact interval does not collapse."""
    inputs = _same(2)
    m = measure(get_metric("accuracy"), {}, inputs, Resampler(inputs, 1000, 0), 0.95)
    half = z_value(0.95) ** 2 / (2 + z_value(0.95) ** 2)
    assert m.regression.value == 0.0
    assert m.regression.ci == pytest.approx((-half, half))
    assert m.evidence == {"confidence": 0.95, "unit": "eval rows",
                          "exact": "Clopper-Pearson; Tango score (paired difference)",
                          "trials": 2, "paired": 2, "discordant": 0}
    assert "Tango" in m.method


def _custom(measurement: Measurement) -> Metric:
    """A metric whose own engine returns ``measurement`` (as robustness and privacy do)."""
    return Metric(measurement.metric, "higher", measurement.family, False, (0.0, 1.0), "test",
                  custom=lambda *args: (measurement,))


@pytest.mark.parametrize(("measurement", "gate", "reason"), [
    pytest.param(Measurement("robust_accuracy", "higher", Estimate(0.9, (0.8, 1.0)),
                             teacher=Estimate(0.9, (0.8, 1.0)), regression=Estimate(0.0, (0.0, 0.0)),
                             n=11, family="robustness"),
                 GateSpec(max_regression=0.10),
                 "only 11 attacked rows: a paired robust_accuracy difference needs at least 35 "
                 f"attacked rows to show a regression of at most 0.1 {NO_DISCORDANT}",
                 id="robustness-11-attacked-rows"),
    pytest.param(Measurement("robust_accuracy", "higher", Estimate(0.9, (0.9, 0.9)),
                             teacher=Estimate(0.9, (0.9, 0.9)), regression=Estimate(0.0, (0.0, 0.0)),
                             n=32, family="robustness"),
                 GateSpec(max_regression=0.05),
                 "only 32 attacked rows: a paired robust_accuracy difference needs at least 73 "
                 f"attacked rows to show a regression of at most 0.05 {NO_DISCORDANT}",
                 id="robustness-a-bootstrap-zero-interval-above-the-floor"),
    pytest.param(Measurement("mia_auc", "lower", Estimate(0.5, (0.5, 0.5)),
                             teacher=Estimate(0.5, (0.5, 0.5)), regression=Estimate(0.0, (0.0, 0.0)),
                             n=40, family="privacy"),
                 GateSpec(max_regression=0.05),
                 "only 40 scored rows (members and non-members): the mia_auc regression needs at "
                 f"least 60 scored rows (members and non-members) {JUDGED}",
                 id="privacy-20-members-20-non-members"),
])
def test_families_with_their_own_engine_count_their_own_rows(
        measurement: Measurement, gate: GateSpec, reason: str) -> None:
    """The floor reads what the family reports in ``n``; the evidence is filled in by
    ``measure_all`` from the measurement's own fields."""
    inputs = _same(2)
    (m,) = measure_all(_custom(measurement), {}, inputs, Resampler(inputs, 10, 0), 0.95)
    (g,) = evaluate_gate(gate, m)
    assert (g.status, g.reason) == ("inconclusive", reason)


def test_exact_facts_and_sizes_have_no_floor() -> None:
    fact = Measurement("missing_rate", "lower", Estimate(0.0, (0.0, 0.0)), n=3, family="data")
    size = Measurement("size_ratio", "lower", Estimate(0.2, (0.2, 0.2)), n=0, family="efficiency")
    drift = Measurement("drifted_columns", "lower", Estimate(0.0, (0.0, 0.0)), n=3, family="data")
    assert [g.status for g in evaluate_gate(GateSpec(max=0.01), fact)] == ["pass"]
    assert [g.status for g in evaluate_gate(GateSpec(max=0.25), size)] == ["pass"]
    (g,) = evaluate_gate(GateSpec(max=0), drift)
    assert (g.status, g.reason) == ("inconclusive", "only 3 eval rows: drifted_columns needs at "
                                                    f"least 30 eval rows {JUDGED}")


def test_a_two_row_suite_is_inconclusive_end_to_end(tmp_path: Path) -> None:
    write_pair(tmp_path, n=2)
    suite = write_suite(tmp_path, {"accuracy": {"metric": "accuracy",
                                                "gate": {"max_regression": 0.02}}})
    result = SuiteRun(load_suite(suite)).run_check("accuracy")
    assert result.status == "inconclusive"
    (g,) = result.gates
    assert g.reason.startswith("only 2 eval rows: a paired accuracy difference needs at least 189")
    assert "-> INCONCLUSIVE (only 2 eval rows" in format_check(result)


# -- the exact intervals against independent computations -----------------------------------
@pytest.mark.parametrize("n", [1, 2, 5, 10, 37])
@pytest.mark.parametrize("confidence", [0.9, 0.95, 0.99])
def test_clopper_pearson_equals_scipys_exact_binomial_interval(n: int, confidence: float) -> None:
    for k in range(n + 1):
        ours = clopper_pearson(k, n, confidence)
        theirs = binomtest(k, n).proportion_ci(confidence_level=confidence, method="exact")
        assert (ours.low, ours.high) == pytest.approx((theirs.low, theirs.high), abs=1e-12)
    assert clopper_pearson(0, 0, 0.95) is None


def _tango_by_brute_force(b: int, c: int, n: int, confidence: float) -> tuple[float, float]:
    """Tango (1998) from its definition, sharing no code with audit.stats: the constrained
    maximum-likelihood cell probability under ``p_b - p_c = delta`` is found by maximising the
    multinomial likelihood of (b, c, concordant) numerically, and each end of the interval is
    where ``|score| = z``, found by bisection."""
    z = z_value(confidence)

    def constrained_p_c(delta: float) -> float:
        lo, hi = max(0.0, -delta), (1.0 - delta) / 2.0  # p_c >= 0, p_b = p_c + delta, sum <= 1

        def nll(p: float) -> float:
            terms = [(b, p + delta), (c, p), (n - b - c, 1.0 - 2.0 * p - delta)]
            return -sum(k * math.log(max(q, 1e-300)) for k, q in terms if k)

        if hi - lo < 1e-15:
            return lo
        return float(minimize_scalar(nll, bounds=(lo, hi), method="bounded",
                                     options={"xatol": 1e-12}).x)

    def rejected(delta: float) -> bool:
        var = n * (2.0 * constrained_p_c(delta) + delta * (1.0 - delta))
        return var <= 0 or abs(b - c - n * delta) / math.sqrt(var) > z

    def edge(inside: float, outside: float) -> float:
        if not rejected(outside):
            return outside
        for _ in range(60):
            mid = (inside + outside) / 2.0
            inside, outside = (inside, mid) if rejected(mid) else (mid, outside)
        return (inside + outside) / 2.0

    theta = (b - c) / n
    return edge(theta, -1.0 + 1e-12), edge(theta, 1.0 - 1e-12)


@pytest.mark.parametrize(("b", "c", "n"), [(0, 0, 2), (0, 0, 10), (3, 0, 10), (1, 7, 21),
                                           (5, 2, 30), (0, 4, 12), (10, 0, 10)])
def test_tango_interval_equals_a_brute_force_inversion_of_its_score_test(b: int, c: int,
                                                                         n: int) -> None:
    ours = tango_interval(b, c, n, 0.95)
    low, high = _tango_by_brute_force(b, c, n, 0.95)
    assert (ours.low, ours.high) == pytest.approx((low, high), abs=1e-6)


def test_tango_interval_by_hand_and_from_the_literature() -> None:
    z2 = z_value(0.95) ** 2
    # no discordant row: the score equation gives delta = z^2 / (n + z^2) either side
    for n in (1, 2, 5, 10, 1568):
        iv = tango_interval(0, 0, n, 0.95)
        assert (iv.low, iv.high) == pytest.approx((-z2 / (n + z2), z2 / (n + z2)), abs=1e-10)
    # Bentur et al.'s airway data as tabulated by Fagerland, Lydersen & Laake (2014):
    # a=1, b=1, c=7, d=12; Tango's asymptotic score interval -0.517 to -0.026
    iv = tango_interval(1, 7, 21, 0.95)
    assert (round(iv.low, 3), round(iv.high, 3)) == (-0.517, -0.026)


def _newcombe_method_10(a: int, b: int, c: int, d: int, confidence: float) -> tuple[float, float]:
    """Newcombe (1998), method 10, by its published definition: Wilson limits of both marginal
    proportions, combined with the table's phi correlation, corrected as Newcombe does (phi
    from ``AD - BC - N/2`` when ``AD - BC > N/2``, 0 when ``0 <= AD - BC <= N/2``)."""
    z = z_value(confidence)
    n = a + b + c + d

    def wilson(k: int) -> tuple[float, float]:
        p = k / n
        centre, half = p + z * z / (2 * n), z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n))
        return (centre - half) / (1 + z * z / n), (centre + half) / (1 + z * z / n)

    p1, p2 = (a + b) / n, (a + c) / n
    (l1, u1), (l2, u2) = wilson(a + b), wilson(a + c)
    denom = (a + b) * (c + d) * (a + c) * (b + d)
    cross = a * d - b * c
    corrected = cross - n / 2 if cross > n / 2 else (cross if cross < 0 else 0.0)
    phi = 0.0 if denom == 0 else corrected / math.sqrt(denom)
    theta = p1 - p2
    low = theta - math.sqrt((p1 - l1) ** 2 - 2 * phi * (p1 - l1) * (u2 - p2) + (u2 - p2) ** 2)
    high = theta + math.sqrt((u1 - p1) ** 2 - 2 * phi * (u1 - p1) * (p2 - l2) + (p2 - l2) ** 2)
    return low, high


@pytest.mark.parametrize(("a", "b", "c", "d"), [(1, 1, 7, 12), (20, 5, 2, 3), (150, 12, 4, 34),
                                                (5, 0, 0, 5), (9, 0, 0, 1), (0, 0, 0, 2)])
def test_tango_agrees_with_newcombes_hybrid_score_interval(a: int, b: int, c: int, d: int) -> None:
    """A second, different method by its published formula: with discordant rows the two
    intervals agree closely; with none, neither collapses to [0, 0], and Tango's (whose width
    then depends on n alone) is never the narrower by more than rounding."""
    n = a + b + c + d
    low, high = _newcombe_method_10(a, b, c, d, 0.95)
    tango = tango_interval(b, c, n, 0.95)
    if b == c == 0:
        assert low < 0 < high and tango.low < 0 < tango.high
        assert tango.high >= high - 1e-4 and tango.low <= low + 1e-4
    else:
        assert (tango.low, tango.high) == pytest.approx((low, high), abs=0.03)
    if (a, b, c, d) == (1, 1, 7, 12):  # the airway data by hand: phi is 0 (AD - BC = 5 <= N/2)
        assert (round(low, 3), round(high, 3)) == (-0.507, -0.026)


@pytest.mark.parametrize(("kind", "threshold"), [("min", 0.78), ("min", 0.93), ("max", 0.04),
                                                 ("max_regression", 0.02),
                                                 ("max_regression", 0.10)])
def test_rows_to_pass_is_the_first_n_at_which_a_perfect_result_clears_the_bound(
        kind: str, threshold: float) -> None:
    def clears(n: int) -> bool:
        if kind == "min":
            return clopper_pearson(n, n, 0.95).low >= threshold
        if kind == "max":
            return clopper_pearson(0, n, 0.95).high <= threshold
        return tango_interval(0, 0, n, 0.95).high <= threshold

    needed = rows_to_pass(kind, threshold, 0.95)
    assert clears(needed) and not clears(needed - 1)


# -- coverage at small n ----------------------------------------------------------------------
def test_clopper_pearson_covers_at_least_the_nominal_rate_at_every_small_n() -> None:
    """Exact coverage (summed over the binomial distribution, no simulation): never below 95%."""
    from scipy.stats import binom

    for n in (1, 2, 5, 10, 20, 30):
        table = [clopper_pearson(k, n, 0.95) for k in range(n + 1)]
        for p in np.linspace(0.01, 0.99, 99):
            covered = sum(binom.pmf(k, n, p) for k, iv in enumerate(table) if iv.low <= p <= iv.high)
            assert covered >= 0.95 - 1e-9, (n, p)


@pytest.mark.parametrize("n", [10, 20, 30])
def test_measured_intervals_cover_at_small_n_in_seeded_simulations(n: int) -> None:
    """The intervals the audit reports (bootstrap joined with the exact ones) for accuracy and
    its paired regression cover the truth at least at about the nominal rate at small n, where
    the bootstrap alone falls short."""
    sims, p_t, p_s = 400, 0.85, 0.8
    hits = {"student": 0, "regression": 0, "bootstrap": 0, "bootstrap_regression": 0}
    for i in range(sims):
        rng = np.random.default_rng([n, i])
        y = rng.integers(0, 2, n)
        u = rng.random(n)
        t_right, s_right = u < p_t, (u + 0.1 * rng.random(n)) % 1.0 < p_s
        inputs = _inputs(y, np.where(t_right, y, 1 - y), np.where(s_right, y, 1 - y))
        r = Resampler(inputs, 200, i)
        m = measure(get_metric("accuracy"), {}, inputs, r, 0.95)
        hits["student"] += m.student.ci[0] <= p_s <= m.student.ci[1]
        hits["regression"] += m.regression.ci[0] <= p_t - p_s <= m.regression.ci[1]
        acc_t = np.trace(r.replicates.sum(axis=3), axis1=1, axis2=2) / n
        acc_s = np.trace(r.replicates.sum(axis=2), axis1=1, axis2=2) / n
        boot, boot_reg = np.quantile(acc_s, [0.025, 0.975]), np.quantile(acc_t - acc_s, [0.025, 0.975])
        hits["bootstrap"] += boot[0] <= p_s <= boot[1]
        hits["bootstrap_regression"] += boot_reg[0] <= p_t - p_s <= boot_reg[1]
    rate = {k: v / sims for k, v in hits.items()}
    assert rate["student"] >= 0.94, rate
    assert rate["regression"] >= 0.93, rate
    # the bootstrap alone: about 0.86 / 0.62 at n=10, 0.92 / 0.83 at n=20 (student / regression)
    assert rate["student"] >= rate["bootstrap"], rate
    assert rate["regression"] >= rate["bootstrap_regression"] + (0.2 if n == 10 else 0.0), rate


# -- a model that predicts one class ----------------------------------------------------------
def _one_class_suite(tmp_path: Path, teacher_too: bool = False) -> Path:
    write_pair(tmp_path, n=200)
    for who in ("student", "teacher") if teacher_too else ("student",):
        constant = pd.DataFrame({"p_No": np.full(200, 0.7), "p_Yes": np.full(200, 0.3)})
        constant.to_csv(tmp_path / f"{who}.csv", index=False)
    return write_suite(tmp_path, {
        "accuracy": {"metric": "accuracy", "gate": {"max_regression": 0.02}},
        "auc": {"metric": "roc_auc"},
    })


def test_a_student_that_predicts_one_class_is_said_everywhere(tmp_path: Path) -> None:
    report = SuiteRun(load_suite(_one_class_suite(tmp_path))).report()
    note = "the student predicts 'No' for every one of the 200 eval rows"
    for c in report.checks:
        assert c.details["one_class"] == note and c.details["one_class_models"] == {"student": "No"}
    assert f"  note: {note}" in format_check(report.checks[0]).splitlines()
    summary = format_summary([(report, [])])
    assert summary[1] == f"  note: {note}"
    html = render_html(report.to_dict())
    shown = str(Markup.escape(note))  # autoescaped as the template does: 'No' is &#39;No&#39;
    assert f"Warning: {shown}." in html and f'<p class="note one-class">{shown}</p>' in html


def test_a_teacher_that_predicts_one_class_too_is_said(tmp_path: Path) -> None:
    report = SuiteRun(load_suite(_one_class_suite(tmp_path, teacher_too=True))).report()
    details = report.checks[0].details
    assert details["one_class"] == ("the student predicts 'No' for every one of the 200 eval "
                                    "rows, and so does the teacher")
    assert details["one_class_models"] == {"student": "No", "teacher": "No"}


def test_models_that_predict_several_classes_get_no_note(tmp_path: Path) -> None:
    write_pair(tmp_path, n=200)
    suite = write_suite(tmp_path, {"accuracy": {"metric": "accuracy"}})
    details: dict[str, Any] = SuiteRun(load_suite(suite)).run_check("accuracy").details
    assert "one_class" not in details and "one_class_models" not in details


def test_evidence_round_trips_and_older_reports_read_without_it() -> None:
    inputs = _same(40)
    m = measure(get_metric("accuracy"), {}, inputs, Resampler(inputs, 50, 0), 0.95)
    assert Measurement.from_dict(m.to_dict()) == m
    old = m.to_dict()
    del old["evidence"]
    assert Measurement.from_dict(old).evidence == {}
