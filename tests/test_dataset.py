"""Data checks: drift (PSI, KS, chi-squared with Benjamini-Hochberg), quality and leakage, with
planted defects: a shifted feature, copied training rows."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml
from scipy import stats

from audit import SuiteRun, load_suite
from audit.checks.dataset import drift_table, psi
from audit.errors import SuiteError


def _table(n: int, seed: int, shift: float = 0.0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    x = rng.normal(size=n) + shift
    colour = rng.choice(["red", "blue"], n, p=[0.7, 0.3])
    label = np.where(x + rng.normal(scale=0.5, size=n) > 0, "Yes", "No")
    return pd.DataFrame({"x": x, "colour": colour, "label": label})


def _suite(folder: Path, train: pd.DataFrame, evals: pd.DataFrame, checks: dict) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    train.to_csv(folder / "train.csv", index=False)
    evals.to_csv(folder / "eval.csv", index=False)
    p = 1 / (1 + np.exp(-2 * evals["x"].fillna(0).to_numpy()))
    pd.DataFrame({"p_No": 1 - p, "p_Yes": p}).to_csv(folder / "preds.csv", index=False)
    model = {"predictions": "preds.csv", "columns": ["p_No", "p_Yes"], "classes": ["No", "Yes"]}
    raw = {"version": 1, "name": "data", "data": {"eval": "eval.csv", "train": "train.csv",
                                                   "target": "label"},
           "teacher": model, "student": model, "checks": checks}
    path = folder / "data.audit.yaml"
    path.write_text(yaml.safe_dump(raw))
    return path


DRIFT = {"psi": {"metric": "max_psi", "gate": {"max": 0.1}},
         "drifted": {"metric": "drifted_columns", "gate": {"max": 0}}}


def test_psi_by_hand() -> None:
    # 50/50 against 25/75: (0.25 - 0.5) ln(0.5) + (0.75 - 0.5) ln(1.5)
    assert psi(np.array([50, 50]), np.array([25, 75])) == pytest.approx(
        -0.25 * np.log(0.5) + 0.25 * np.log(1.5))
    assert psi(np.array([10, 20, 30]), np.array([10, 20, 30])) == 0.0


def test_drift_rows_match_scipy_and_adjust_for_multiple_columns() -> None:
    train, evals = _table(2000, 0), _table(1500, 1, shift=0.8)
    rows = drift_table(train, evals, ["x", "colour"], bins=10, fdr=0.05)
    by = {r["column"]: r for r in rows}
    ks = stats.ks_2samp(train["x"], evals["x"])
    assert by["x"]["effect"] == pytest.approx(ks.statistic) and by["x"]["p_value"] == pytest.approx(ks.pvalue)
    table = pd.crosstab(pd.concat([train["colour"], evals["colour"]]),
                        np.r_[np.zeros(len(train)), np.ones(len(evals))])
    chi2, p, _, _ = stats.chi2_contingency(table.T.to_numpy())
    assert by["colour"]["p_value"] == pytest.approx(p)
    q = stats.false_discovery_control([by["x"]["p_value"], by["colour"]["p_value"]])
    assert [by["x"]["q_value"], by["colour"]["q_value"]] == pytest.approx(list(q))
    assert by["x"]["drifted"] and not by["colour"]["drifted"]
    # a small shift is significant at this size but not large: not called drift
    small = {r["column"]: r for r in drift_table(train, _table(1500, 1, shift=0.2), ["x"], 10, 0.05)}
    assert small["x"]["q_value"] < 0.05 and small["x"]["psi"] < 0.1 and not small["x"]["drifted"]


def test_a_shifted_feature_fails_the_drift_gate_and_an_iid_split_passes(tmp_path: Path) -> None:
    train = _table(3000, 0)
    iid = SuiteRun(load_suite(_suite(tmp_path / "iid", train, _table(1500, 1), DRIFT)))
    assert [r.status for r in iid.run_all()] == ["pass", "pass"]
    shifted = SuiteRun(load_suite(_suite(tmp_path / "shift", train, _table(1500, 1, shift=1.0),
                                         DRIFT)))
    results = {r.name: r for r in shifted.run_all()}
    assert results["psi"].status == "fail" and results["drifted"].status == "fail"
    m = results["drifted"].measurements[0]
    assert m.student.value == 1.0
    assert "1 column(s) drifted between the training and the evaluation data (x)" in m.notes[0]
    assert "may not hold in production" in m.notes[0]


def test_copied_training_rows_fail_the_leakage_gate(tmp_path: Path) -> None:
    train, evals = _table(1000, 0), _table(500, 1)
    clean = SuiteRun(load_suite(_suite(tmp_path / "clean", train, evals,
                                       {"leak": {"metric": "leakage", "gate": {"max": 0}}})))
    assert clean.run_check("leak").status == "pass"
    leaky = pd.concat([evals.iloc[:450], train.iloc[:50]], ignore_index=True)
    run = SuiteRun(load_suite(_suite(tmp_path / "leaky", train, leaky,
                                     {"leak": {"metric": "leakage", "gate": {"max": 0}}})))
    result = run.run_check("leak")
    assert result.status == "fail"
    assert result.measurements[0].student.value == pytest.approx(50 / 500)
    assert result.measurements[0].breakdown[0]["first_rows"] == [451, 452, 453, 454, 455]


def test_quality_metrics_by_hand(tmp_path: Path) -> None:
    train = _table(400, 0)
    evals = _table(200, 1)
    evals.loc[:9, "x"] = np.nan  # 10 of 200 missing
    evals["const"] = 1
    train["const"] = 1
    evals = pd.concat([evals, evals.iloc[20:24]], ignore_index=True)  # 4 duplicates of 204 rows
    checks = {"missing": {"metric": "missing_rate", "gate": {"max": 0.01}},
              "constant": {"metric": "constant_columns", "gate": {"max": 0}},
              "duplicates": {"metric": "duplicate_rows", "gate": {"max": 0.01}},
              "balance": {"metric": "min_class_share", "gate": {"min": 0.05}}}
    results = {r.name: r for r in SuiteRun(load_suite(_suite(tmp_path, train, evals, checks))).run_all()}
    assert results["missing"].measurements[0].student.value == pytest.approx(10 / 204)
    assert results["missing"].status == "fail"
    assert results["constant"].measurements[0].student.value == 2  # in eval and in train
    assert results["duplicates"].measurements[0].student.value == pytest.approx(
        evals.duplicated().mean())
    shares = evals["label"].value_counts(normalize=True)
    assert results["balance"].measurements[0].student.value == pytest.approx(shares.min())
    assert results["balance"].status == "pass"


def test_drift_needs_a_training_table(tmp_path: Path) -> None:
    path = _suite(tmp_path, _table(100, 0), _table(100, 1), DRIFT)
    raw = yaml.safe_load(path.read_text())
    del raw["data"]["train"]
    path.write_text(yaml.safe_dump(raw))
    with pytest.raises(SuiteError) as info:
        load_suite(path)
    assert str(info.value).endswith(
        "checks.drifted.metric='drifted_columns': drifted_columns reads data.train (the rows the "
        "student was trained on), which the suite's data section does not name; add data.train: "
        "<a .csv or .parquet file>")
