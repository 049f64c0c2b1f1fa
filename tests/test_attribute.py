"""Attribute inference: the check equals ART called directly (on the live models, not the
run's replayed predictions), and a planted defect: a student that memorised its training rows
reveals a sensitive attribute it was never given, and fails the gate its teacher passes."""

from __future__ import annotations

import pickle
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
import yaml
from sklearn.linear_model import LogisticRegression
from sklearn.tree import DecisionTreeClassifier

from audit import SuiteRun, load_suite
from audit.checks.attribute import baseline_inference, blackbox_inference
from audit.errors import DataError
from audit.probes.attribute import attribute_codes, numeric_matrix
from audit.results import Measurement


def _frame(n: int, seed: int) -> pd.DataFrame:
    """The label depends on x1, x2 and the attribute s, which no model reads."""
    rng = np.random.default_rng(seed)
    x1, x2 = rng.normal(size=n), rng.normal(size=n)
    s = rng.choice(["a", "b"], size=n)
    logit = x1 + 0.5 * x2 + np.where(s == "a", 2.0, -2.0)
    y = np.where(logit + rng.logistic(size=n) > 0, "Yes", "No")
    return pd.DataFrame({"x1": x1, "x2": x2, "s": s, "age": rng.integers(18, 80, n),
                         "label": y})


def _suite(folder: Path, checks: dict[str, Any], student: Any = None) -> tuple[Path, dict]:
    folder.mkdir(parents=True, exist_ok=True)
    tr, ev = _frame(600, 0), _frame(300, 1)
    tr.to_csv(folder / "train.csv", index=False)
    ev.to_csv(folder / "eval.csv", index=False)
    X = tr[["x1", "x2"]]
    models = {"teacher": LogisticRegression().fit(X, tr["label"]),
              # memorises its training rows: their labels, and so their s, show in its outputs
              "student": student if student is not None else
              DecisionTreeClassifier(random_state=0).fit(X, tr["label"])}
    for who, m in models.items():
        (folder / f"{who}.pkl").write_bytes(pickle.dumps(m))
    raw = {"version": 1, "name": "attr",
           "data": {"eval": "eval.csv", "train": "train.csv", "target": "label",
                    "features": ["x1", "x2"],
                    "sensitive": ["s", {"column": "age", "quantiles": 4}]},
           "teacher": {"pickle": "teacher.pkl", "trust": True},
           "student": {"pickle": "student.pkl", "trust": True},
           "settings": {"bootstrap": 200}, "checks": checks}
    path = folder / "attr.audit.yaml"
    path.write_text(yaml.safe_dump(raw))
    return path, {"train": tr, "eval": ev, "models": models}


def _run(path: Path) -> dict[str, Any]:
    return {r.name: r for r in SuiteRun(load_suite(path)).run_all()}


def _art_direct(model: Any, table: pd.DataFrame, outputs: str, seed: int = 0
                ) -> tuple[float, float]:
    """ART's black-box attack and baseline on the same draws as the check, the model
    queried live by ART (not the run's predictions): (attack accuracy, the reference: the
    better of ART's baseline and the fit rows' majority guess)."""
    from art.attacks.inference.attribute_inference import (
        AttributeInferenceBaseline,
        AttributeInferenceBlackBox,
    )
    from art.estimators.classification import BlackBoxClassifier

    rng = np.random.default_rng([seed, 5])
    n = len(table)
    rows = np.sort(rng.choice(np.arange(n), n, replace=False))
    sub = table.iloc[rows]
    codes = (sub["s"].to_numpy() == "b").astype(float)  # "a" -> 0, "b" -> 1
    perm = rng.permutation(n)
    fit, test = np.sort(perm[: n // 2]), np.sort(perm[n // 2:])
    x = sub[["x1", "x2"]].to_numpy(float)
    P = model.predict_proba(sub[["x1", "x2"]])
    known = np.c_[x, P] if outputs == "probabilities" else x
    full = np.c_[known, codes]

    def predict(batch: np.ndarray) -> np.ndarray:  # the live model on the two features
        return model.predict_proba(pd.DataFrame(batch[:, :2].astype(float), columns=["x1", "x2"]))

    attack = AttributeInferenceBlackBox(BlackBoxClassifier(predict, (full.shape[1],), 2),
                                        attack_model_type="rf", attack_feature=full.shape[1] - 1)
    attack.attack_model.set_params(random_state=seed)
    attack.fit(full[fit])
    got = attack.infer(known[test], pred=P[test].argmax(axis=1).reshape(-1, 1).astype(float))
    base = AttributeInferenceBaseline(attack_model_type="rf", attack_feature=x.shape[1])
    base.attack_model.set_params(random_state=seed)
    base.fit(np.c_[x, codes][fit])
    floor = base.infer(x[test])
    common = np.bincount(codes[fit].astype(int)).argmax()  # the majority guess of the fit rows
    reference = max(float(np.mean(floor.ravel() == codes[test])),
                    float(np.mean(codes[test] == common)))
    return float(np.mean(got.ravel() == codes[test])), reference


@pytest.mark.parametrize("outputs", ["probabilities", "labels"])
def test_equals_art_called_directly_on_the_live_models(tmp_path: Path, outputs: str) -> None:
    checks = {"acc": {"metric": "attribute_inference_accuracy", "attribute": "s",
                      "outputs": outputs},
              "adv": {"metric": "attribute_inference_advantage", "attribute": "s",
                      "outputs": outputs}}
    path, d = _suite(tmp_path, checks)
    results = _run(path)
    acc, adv = results["acc"].measurements[0], results["adv"].measurements[0]
    for who in ("teacher", "student"):
        attack, floor = _art_direct(d["models"][who], d["train"], outputs)
        assert getattr(acc, who).value == pytest.approx(attack, abs=1e-12), who
        assert getattr(adv, who).value == pytest.approx(attack - floor, abs=1e-12), who
    assert acc.n == 300 and "AttributeInferenceBlackBox" in acc.method
    assert Measurement.from_dict(adv.to_dict()) == adv
    assert adv.relative_regression is None  # a fraction of an advantage near 0 means nothing


def test_a_student_that_memorised_its_rows_leaks_the_attribute_and_fails(tmp_path: Path) -> None:
    path, _ = _suite(tmp_path, {"leak": {"metric": "attribute_inference_advantage",
                                         "attribute": "s",
                                         "gate": {"max": 0.05, "max_regression": 0.02}}})
    result = _run(path)["leak"]
    m = result.measurements[0]
    assert result.status == "fail", result
    # the teacher's outputs are a function of the features the attacker already has
    assert m.teacher.ci[0] <= 0.03 and m.student.value > 0.15 and m.regression.ci[0] > 0.05
    assert not any("one of the models' inputs" in n for n in m.notes)
    by_value = [r for r in m.breakdown if r["kind"] == "by_value"]
    assert [r["value"] for r in by_value] == ["a", "b"]


def test_a_faithful_student_passes_where_the_leaky_one_fails(tmp_path: Path) -> None:
    tr = _frame(600, 0)
    faithful = LogisticRegression(C=0.5).fit(tr[["x1", "x2"]], tr["label"])
    path, _ = _suite(tmp_path, {"leak": {"metric": "attribute_inference_advantage",
                                         "attribute": "s", "gate": {"max_regression": 0.05}}},
                     student=faithful)
    result = _run(path)["leak"]
    assert result.status == "pass", result


def test_identical_student_has_zero_regression(tmp_path: Path) -> None:
    tr = _frame(600, 0)
    same = LogisticRegression().fit(tr[["x1", "x2"]], tr["label"])
    path, _ = _suite(tmp_path, {"a": {"metric": "attribute_inference_advantage",
                                      "attribute": "s", "gate": {"max_regression": 0.0}}},
                     student=same)
    m = _run(path)["a"].measurements[0]
    assert m.regression.value == 0.0 and m.regression.ci == (0.0, 0.0)


def test_a_model_input_is_measured_and_the_check_says_what_it_measures(tmp_path: Path) -> None:
    path, _ = _suite(tmp_path, {"a": {"metric": "attribute_inference_accuracy",
                                      "attribute": "x1", "bins": 3}})
    m = _run(path)["a"].measurements[0]
    assert any("x1 is one of the models' inputs" in n and "model inversion" in n
               for n in m.notes)
    assert any("cut into 3 bins" in n for n in m.notes)
    assert m.breakdown[0]["model_input"] is True and m.breakdown[0]["values"] == 3


def test_a_numeric_sensitive_column_is_binned_at_quantiles() -> None:
    values, codes, edges = attribute_codes(pd.Series([1, 2, 3, 4, 5, 6, 7, 8]), 4, "t")
    assert values == ("[1, 2.75)", "[2.75, 4.5)", "[4.5, 6.25)", "[6.25, 8]")
    assert codes.tolist() == [0, 0, 1, 1, 2, 2, 3, 3] and edges == (1, 2.75, 4.5, 6.25, 8)
    values, codes, edges = attribute_codes(pd.Series([0, 1, 1, 0]), 4, "t")  # few values: as is
    assert values == ("0", "1") and codes.tolist() == [0, 1, 1, 0] and edges == ()


def test_numeric_matrix_one_hots_text_and_fills_missing_numbers() -> None:
    x, names = numeric_matrix(pd.DataFrame({"a": [1.0, np.nan, 3.0], "c": ["u", None, "u"]}))
    assert names == ("a", "c=(missing)", "c=u")
    assert x.tolist() == [[1.0, 0.0, 1.0], [2.0, 1.0, 0.0], [3.0, 0.0, 1.0]]


def test_the_attack_never_calls_the_model_for_rows_it_was_not_given() -> None:
    x = np.arange(40, dtype=float).reshape(20, 2)
    codes = np.r_[np.zeros(10), np.ones(10)].astype(int)
    P = np.c_[np.linspace(0, 1, 20), 1 - np.linspace(0, 1, 20)]
    fit, test = np.arange(0, 20, 2), np.arange(1, 20, 2)
    got = blackbox_inference(x, codes, P, fit, test, attack_model="dt", outputs="labels", seed=0)
    base = baseline_inference(x, codes, fit, test, attack_model="dt", seed=0)
    assert got.shape == base.shape == (10,)
    assert set(np.unique(got)) <= {0.0, 1.0}


@pytest.mark.parametrize(("params", "message"), [
    ({"attribute": "nope"}, "attribute inference: attribute='nope' is neither a feature the "
                            "models read nor a data.sensitive column of data.train; name it in "
                            "data.sensitive"),
    ({"attribute": "s", "rows": "holdout"}, "checks.a.rows='holdout': attribute_inference_"
                                            "accuracy reads data.holdout"),
], ids=["unknown-column", "table-not-named"])
def test_clear_errors(tmp_path: Path, params: dict[str, Any], message: str) -> None:
    path, _ = _suite(tmp_path, {"a": {"metric": "attribute_inference_accuracy", **params}})
    try:
        result = _run(path)["a"]
    except Exception as exc:  # a table the suite does not name is refused when it is read
        assert message in str(exc)
        return
    assert result.status == "error" and message in result.error


def test_attribute_is_required(tmp_path: Path) -> None:
    path, _ = _suite(tmp_path, {"a": {"metric": "attribute_inference_accuracy"}})
    result = _run(path)["a"]
    assert result.status == "error"
    assert "attribute inference needs attribute" in result.error
    with pytest.raises(DataError):
        from audit.checks.attribute import _request
        _request({})


def test_a_binned_sensitive_column_is_attacked_by_its_groups(tmp_path: Path) -> None:
    path, _ = _suite(tmp_path, {"a": {"metric": "attribute_inference_accuracy",
                                      "attribute": "age", "attack_model": "lr"}})
    m = _run(path)["a"].measurements[0]
    assert m.breakdown[0]["values"] == 4 and not any("cut into" in n for n in m.notes)
    assert len([r for r in m.breakdown if r["kind"] == "by_value"]) == 4
    assert m.params["attack_model"] == "lr"


def test_two_checks_of_one_attribute_with_other_bins_each_get_their_own_attack(
        tmp_path: Path) -> None:
    """The attack's results are keyed by the check's own sample, not by the column."""
    path, _ = _suite(tmp_path, {
        "two": {"metric": "attribute_inference_accuracy", "attribute": "x2", "bins": 2},
        "eight": {"metric": "attribute_inference_accuracy", "attribute": "x2", "bins": 8}})
    results = _run(path)
    alone, _ = _suite(tmp_path / "alone", {
        "eight": {"metric": "attribute_inference_accuracy", "attribute": "x2", "bins": 8}})
    by_itself = _run(alone)["eight"].measurements[0]
    assert results["eight"].measurements[0].student.value == by_itself.student.value
    assert results["two"].measurements[0].breakdown[0]["values"] == 2
    assert results["eight"].measurements[0].breakdown[0]["values"] == 8


def test_outputs_that_carry_nothing_show_no_advantage(tmp_path: Path) -> None:
    """A student whose outputs are a constant: the attack sees nothing the reference lacks."""
    from sklearn.dummy import DummyClassifier

    tr = _frame(600, 0)
    const = DummyClassifier(strategy="prior").fit(tr[["x1", "x2"]], tr["label"])
    path, _ = _suite(tmp_path, {"a": {"metric": "attribute_inference_advantage",
                                      "attribute": "s", "attack_model": "knn"}},
                     student=const)
    m = _run(path)["a"].measurements[0]
    assert m.student.value <= 0.01
    assert m.breakdown[0]["reference_accuracy"] >= m.breakdown[0]["majority_accuracy"]


def test_a_relative_gate_on_a_signed_advantage_is_refused(tmp_path: Path) -> None:
    from audit.errors import SuiteError

    path, _ = _suite(tmp_path, {"a": {"metric": "attribute_inference_advantage",
                                      "attribute": "s",
                                      "gate": {"max_relative_regression": 0.1}}})
    with pytest.raises(SuiteError) as info:
        load_suite(path)
    assert str(info.value).endswith(
        "checks.a.gate.max_relative_regression=0.1: attribute_inference_advantage can be "
        "negative or zero (it lies in [-1, 1]), so a fraction of the teacher's value means "
        "nothing; bound the absolute regression with max_regression")
