"""Every metric against an independent computation (scikit-learn, scipy or a hand-worked case),
and the registry's common properties (as scikit-learn's metrics/tests/test_common.py does)."""

from __future__ import annotations

import json
import pickle
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
import yaml
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


# The registry-wide properties run every registered metric. Those that read more than the
# predictions go through a real small suite (``test_every_metric_through_a_suite_*`` below);
# every other metric goes through MetricInput on hypothesis' problems, and an error there fails.
NEEDS_A_SUITE = {
    **dict.fromkeys(["constant_columns", "drifted_columns", "duplicate_rows", "leakage", "max_psi",
                     "min_class_share", "missing_rate"], "data: reads the eval and train tables"),
    **dict.fromkeys(["latency_ms", "speedup", "size_ratio"], "efficiency: times or sizes the models"),
    **dict.fromkeys(["mia_advantage", "mia_auc", "mia_tpr_at_fpr"],
                    "privacy: scores the training rows with the models"),
    **dict.fromkeys(["robust_accuracy", "transfer_accuracy"], "robustness: attacks the models"),
    "slice_regression": "slices: reads the feature table",
    **dict.fromkeys(["attribute_inference_advantage", "attribute_inference_accuracy"],
                    "attribute: attacks a table with the models' outputs"),
    **dict.fromkeys(["extraction_agreement", "extraction_accuracy"],
                    "extraction: queries the models"),
    "backdoor_success_rate": "backdoor: queries the models with a trigger",
    # language models: documents, minimal pairs, re-scored items, generation
    **dict.fromkeys(["token_agreement", "token_topk_overlap", "token_kl", "token_reverse_kl",
                     "token_acceptance", "bits_per_byte"], "tokens: runs both models on documents"),
    "stereotype_preference": "stereotype: scores minimal pairs with the models",
    **dict.fromkeys(["typo_accuracy", "typo_consistency", "order_consistency",
                     "circular_accuracy"], "choice_robustness: re-scores edited items"),
    **dict.fromkeys(["prefill_tokens_per_s", "decode_tokens_per_s", "time_to_first_token_ms",
                     "per_token_latency_ms", "peak_memory_mb", "decode_speedup"],
                    "lm_speed: times generation"),
}
# metrics of image or text inputs: the same properties run through image and text suites in
# tests/test_modalities.py (an identical student, row order, JSON)
OTHER_MODALITY = {"corruption_accuracy": "images: corrupts the eval images",
                  "edit_accuracy": "text: edits the eval texts"}
NEEDS_A_SUITE.update(OTHER_MODALITY)
# defined for binary problems only: on a multiclass draw they refuse, and say so
BINARY_ONLY = ("demographic_parity_difference", "demographic_parity_ratio",
               "equalized_odds_difference", "equalized_odds_ratio")


def _pure() -> list[str]:
    return [name for name in metric_names() if name not in NEEDS_A_SUITE]


def _all(name: str, inp: MetricInput, r: Resampler) -> tuple[Measurement, ...]:
    """Every measurement of a metric (none when it does not apply to this problem)."""
    params = {"min_group_size": 1} if "min_group_size" in get_metric(name).params else {}
    try:
        return measure_all(get_metric(name), params, inp, r, 0.95)
    except DataError as e:
        if name in BINARY_ONLY and inp.k > 2 and "needs a binary problem" in str(e):
            return ()
        raise


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
    for name in _pure():
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
    for name in _pure():
        for ma, mb in zip(_all(name, a, ra), _all(name, b, rb), strict=True):
            da, db = ma.to_dict(), mb.to_dict()
            # recalibration advice fits on a seeded half of the rows, which depends on their order
            da.pop("extra"), db.pop("extra")
            assert _close(da, db), name


@given(problems(), st.booleans())
@settings(max_examples=30, deadline=None)
def test_every_measurement_round_trips_through_json(problem: tuple[np.ndarray, np.ndarray, np.ndarray],
                                                    identical: bool) -> None:
    y, pt, ps = problem
    inp = _inputs(y, pt, pt.copy() if identical else ps)
    r = Resampler(inp, 100, 0)
    for name in _pure():
        for m in _all(name, inp, r):
            text = json.dumps(m.to_dict(), allow_nan=False)  # non-finite values are written as null
            back = Measurement.from_dict(json.loads(text))
            assert back.to_dict() == m.to_dict(), name
            assert json.dumps(back.to_dict(), allow_nan=False) == text, name


def _close(a: object, b: object) -> bool:
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(_close(a[k], b[k]) for k in a)
    if isinstance(a, list | tuple) and isinstance(b, list | tuple):
        return len(a) == len(b) and all(_close(x, y) for x, y in zip(a, b, strict=True))
    if isinstance(a, float) and isinstance(b, float):
        return a == pytest.approx(b, rel=1e-9, abs=1e-12, nan_ok=True)
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


# -- every registered metric through a real small suite ----------------------------------------
# Two pickled scikit-learn models over a table of two numeric features and a sensitive column;
# eval and train of 400 rows each (enough for every gate's evidence floor and for the rows a
# PASS needs at the bounds used here), every metric of the registry a check with its defaults.
SUITE_ROWS = 400
# every eval row attacked (a 0.05 regression bound needs 73): no seeded draw of row positions
ATTACK = {"eps": [0.3], "samples": SUITE_ROWS}
# what the security checks cannot run without (every non-target row triggered: no seeded draw)
REQUIRED = {"attribute_inference_advantage": {"attribute": "group"},
            "attribute_inference_accuracy": {"attribute": "group"},
            "backdoor_success_rate": {"trigger": "x1=3", "target_class": "Yes",
                                      "samples": SUITE_ROWS}}

# What the properties do not ask of a metric, each with the reason: nothing else is left out.
NOT_ZERO_FOR_AN_IDENTICAL_STUDENT = {
    "latency_ms": "timing: each model is timed on its own runs, so the difference is the "
                  "machine's noise, not zero",
    "speedup": "timing: a ratio of two such latencies, near 1 but not exactly 1",
}
NO_TEACHER_STUDENT_COMPARISON = {  # one value of the tables, whatever the models are
    name: "data: a fact of the eval and train tables, not of the models"
    for name, reason in NEEDS_A_SUITE.items() if reason.startswith("data:")}
# the value of a pairwise or single-valued metric when the student is its teacher
ORDER_DEPENDENT = {
    **NOT_ZERO_FOR_AN_IDENTICAL_STUDENT,  # timings
    **dict.fromkeys(["attribute_inference_advantage", "attribute_inference_accuracy"],
                    "the attack is fitted and scored on seeded draws of row positions: in "
                    "another order, other rows"),
    **dict.fromkeys(["extraction_agreement", "extraction_accuracy"],
                    "the queries draw each column's values by row position: in another order, "
                    "other queries"),
}
ORDER_INVARIANT_VALUES_ONLY = dict.fromkeys(
    ["mia_advantage", "mia_auc", "mia_tpr_at_fpr"],
    "the values (and breakdown, notes) are invariant; the intervals are not: their stratified "
    "bootstrap draws the scored rows by position")


def _frame(n: int, seed: int) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    x1, x2 = rng.normal(size=n), rng.normal(size=n)
    y = np.where(x1 + 0.5 * x2 + rng.normal(size=n) > 0, "Yes", "No")
    return pd.DataFrame({"x1": x1, "x2": x2, "group": rng.choice(["a", "b"], n), "label": y})


def _suite_results(folder: Path, *, identical: bool,
                   order: np.ndarray | None = None) -> dict[str, Any]:
    """Every registered metric run as a check of one suite, by check name (= metric name)."""
    from sklearn.linear_model import LogisticRegression

    from audit import SuiteRun, load_suite

    folder.mkdir(parents=True)
    train, evaluation = _frame(SUITE_ROWS, 0), _frame(SUITE_ROWS, 1)
    X = train[["x1", "x2"]]
    teacher = LogisticRegression().fit(X, train["label"])
    student = teacher if identical else LogisticRegression(C=0.01).fit(X, train["label"])
    if order is not None:
        train, evaluation = train.iloc[order], evaluation.iloc[order]
    train.to_csv(folder / "train.csv", index=False)
    evaluation.to_csv(folder / "eval.csv", index=False)
    for who, model in (("teacher", teacher), ("student", student)):
        (folder / f"{who}.pkl").write_bytes(pickle.dumps(model))
    # every metric a tabular suite takes (a language model's are in tests/test_lm_*.py)
    checks: dict[str, Any] = {name: {"metric": name} for name in metric_names()
                              if name not in OTHER_MODALITY
                              and "tabular" in get_metric(name).modalities}
    for name in checks:
        if get_metric(name).family == "robustness":
            checks[name].update(ATTACK)
        checks[name].update(REQUIRED.get(name, {}))
    raw = {"version": 1, "name": "registry",
           "data": {"eval": "eval.csv", "train": "train.csv", "target": "label",
                    "features": ["x1", "x2"], "sensitive": ["group"]},
           "teacher": {"pickle": "teacher.pkl", "trust": True},
           "student": {"pickle": "student.pkl", "trust": True},
           "settings": {"bootstrap": 200, "seed": 0}, "checks": checks}
    (folder / "registry.audit.yaml").write_text(yaml.safe_dump(raw))
    results = {r.name: r for r in SuiteRun(load_suite(folder / "registry.audit.yaml")).run_all()}
    errors = {name: r.error for name, r in results.items() if r.error or not r.measurements}
    assert not errors, errors
    return results


def _untimed(value: Any) -> Any:
    """``value`` without its ``seconds`` (how long an attack took: a timing, not a result)."""
    if isinstance(value, dict):
        return {k: _untimed(v) for k, v in value.items() if k != "seconds"}
    if isinstance(value, list | tuple):
        return [_untimed(v) for v in value]
    return value


def test_every_registered_metric_goes_through_the_properties() -> None:
    """The exceptions are explicit and counted: each names a registered metric and a reason."""
    names = set(metric_names())
    assert set(NEEDS_A_SUITE) <= names and set(BINARY_ONLY) <= names
    assert len(NEEDS_A_SUITE) == 40 and len(BINARY_ONLY) == 4
    assert len(NOT_ZERO_FOR_AN_IDENTICAL_STUDENT) == 2 and len(NO_TEACHER_STUDENT_COMPARISON) == 7
    assert len(ORDER_DEPENDENT) == 6 and len(ORDER_INVARIANT_VALUES_ONLY) == 3
    for table in (NOT_ZERO_FOR_AN_IDENTICAL_STUDENT, NO_TEACHER_STUDENT_COMPARISON,
                  ORDER_DEPENDENT, ORDER_INVARIANT_VALUES_ONLY):
        assert set(table) <= names and all(table.values())
    # the pure path takes every metric the suite path does not, so a new metric is in one
    assert set(_pure()) | set(NEEDS_A_SUITE) == names


def _tabular_suite_metrics() -> set[str]:
    """The metrics the registry suite runs: all but other modalities' (and language models')."""
    return {n for n in metric_names() if n not in OTHER_MODALITY
            and "tabular" in get_metric(n).modalities}


def test_every_metric_through_a_suite_an_identical_student_has_zero_regression(
        tmp_path: Path) -> None:
    from audit.spec import GateSpec as Gate

    results = _suite_results(tmp_path / "same", identical=True)
    assert set(results) == _tabular_suite_metrics()
    checked = set()
    for name, result in results.items():
        if name in NOT_ZERO_FOR_AN_IDENTICAL_STUDENT or name in NO_TEACHER_STUDENT_COMPARISON:
            continue
        for m in result.measurements:
            identical = get_metric(name).identical
            if identical is not None:  # declared where the metric is registered
                assert m.student.value == identical, (name, m.scope)
                checked.add(name)
            if m.regression is None:
                continue
            assert m.regression.value == 0.0 and m.teacher.value == m.student.value, (name, m.scope)
            ci = m.regression.ci or (0.0, 0.0)
            assert ci[0] <= 0.0 <= ci[1], (name, m.scope, ci)
            relative = (0.05 / abs(m.teacher.value) if m.teacher.value
                        and m.relative_regression is not None else None)  # signed: none
            gates = evaluate_gate(Gate(max_regression=0.05, max_relative_regression=relative), m)
            assert [g.status for g in gates] == ["pass"] * len(gates), (name, gates)
            checked.add(name)
    # transfer: the teacher's adversarial examples fool an identical student as they fool it
    robust = {m.scope: m.teacher.value for m in results["robust_accuracy"].measurements}
    for m in results["transfer_accuracy"].measurements:
        assert m.student.value == robust[m.scope]
    checked.add("transfer_accuracy")
    unchecked = _tabular_suite_metrics() - checked - set(
        NOT_ZERO_FOR_AN_IDENTICAL_STUDENT) - set(
        NO_TEACHER_STUDENT_COMPARISON)
    assert not unchecked, f"{sorted(unchecked)}: no regression; declare identical= where it is " \
                          "registered (what an identical student measures), or say in an exception " \
                          "table why not"


def test_every_metric_through_a_suite_row_order_and_json(tmp_path: Path) -> None:
    from audit.results import CheckResult

    order = np.random.default_rng(5).permutation(SUITE_ROWS)
    a = _suite_results(tmp_path / "a", identical=False)
    b = _suite_results(tmp_path / "b", identical=False, order=order)
    for name in _tabular_suite_metrics():
        for ma, mb in zip(a[name].measurements, b[name].measurements, strict=True):
            da, db = _untimed(ma.to_dict()), _untimed(mb.to_dict())
            # recalibration advice fits on a seeded half of the rows, which depends on their order
            da.pop("extra"), db.pop("extra")
            if name in ORDER_DEPENDENT:
                continue
            if name in ORDER_INVARIANT_VALUES_ONLY:  # every estimate's value, not its interval
                da, db = ({k: v["value"] if isinstance(v, dict) and "value" in v else v
                           for k, v in d.items()} for d in (da, db))
            assert _close(da, db), name
    for result in (*a.values(), *b.values()):
        text = json.dumps(result.to_dict(), allow_nan=False)
        back = CheckResult.from_dict(json.loads(text))
        assert back.to_dict() == result.to_dict(), result.name
