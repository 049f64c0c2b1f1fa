"""Numeric sensitive attributes: ``data.sensitive: [{column: age, bins: [...]}]`` or
``{column: age, quantiles: 4}`` slice by bins named with their edges; every fairness metric
sees the derived groups (checked against pandas' ``pd.cut`` and fairlearn); a numeric column
named without bins is refused with how to bin it; the schema and the parser agree."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
import yaml
from fairlearn.metrics import MetricFrame, demographic_parity_difference, selection_rate
from jsonschema import Draft202012Validator

from audit import SuiteRun, load_suite
from audit.data import MAX_GROUPS, load_table
from audit.errors import DataError, SuiteError
from audit.reuse import measurement_key
from audit.spec import Binning, DataSpec, Settings
from audit.suite import suite_from_dict, suite_json_schema

EDGES = [25, 40, 60]


def _write(folder: Path, n: int = 400, seed: int = 0, **extra: Any) -> pd.DataFrame:
    """eval.csv (age, group, x, label, plus ``extra`` columns) and both models' probabilities."""
    rng = np.random.default_rng(seed)
    frame = pd.DataFrame({"x": rng.normal(size=n), "age": rng.integers(15, 80, n),
                          "group": rng.choice(["a", "b"], n), **extra})
    p = 1 / (1 + np.exp(-frame["x"] - (frame["age"] > 45)))
    frame["label"] = np.where(rng.random(n) < p, "Yes", "No")
    frame.to_csv(folder / "eval.csv", index=False)
    for who, shift in (("teacher", 0.0), ("student", 0.3)):
        q = np.clip(p + shift * (frame["age"] < 25), 0, 1)
        pd.DataFrame({"p_No": 1 - q, "p_Yes": q}).to_csv(folder / f"{who}.csv", index=False,
                                                         float_format="%.17g")
    return frame


def _suite(folder: Path, sensitive: list[Any], checks: dict[str, Any] | None = None,
           **data: Any) -> Path:
    cols = {"columns": ["p_No", "p_Yes"], "classes": ["No", "Yes"]}
    doc = {"version": 1, "name": "bins",
           "data": {"eval": "eval.csv", "target": "label", "sensitive": sensitive,
                    "positive": "Yes", **data},
           "teacher": {"predictions": "teacher.csv", **cols},
           "student": {"predictions": "student.csv", **cols},
           "settings": {"seed": 0, "bootstrap": 200},
           "checks": checks or {"parity": {"metric": "demographic_parity_difference",
                                           "min_group_size": 1}}}
    path = folder / "bins.audit.yaml"
    path.write_text(yaml.safe_dump(doc, sort_keys=False), encoding="utf-8")
    return path


def test_bins_are_named_with_their_edges_and_value_on_an_edge_opens_its_bin() -> None:
    assert Binning.labels("age", (25.0, 40.0, 60.0)) == ["age<25", "25<=age<40", "40<=age<60",
                                                         "age>=60"]
    assert Binning.labels("income", (0.5, 1e6)) == ["income<0.5", "0.5<=income<1000000",
                                                    "income>=1000000"]
    assert Binning.labels("t", (-2.25,)) == ["t<-2.25", "t>=-2.25"]
    for label in Binning.labels("age", (25.0, 40.5)):
        assert Binning.is_label("age", label)
    assert not Binning.is_label("age", "age=25") and not Binning.is_label("agegroup", "age<25")


def test_fixed_bins_slice_every_fairness_metric_like_pd_cut(tmp_path: Path,
                                                            monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    frame = _write(tmp_path)
    checks = {name: {"metric": name, "min_group_size": 1, "by": ["age"]} for name in
              ("demographic_parity_difference", "equalized_odds_difference",
               "worst_group_accuracy")}
    run = SuiteRun(load_suite(_suite(tmp_path, ["group", {"column": "age", "bins": EDGES}],
                                     checks)))
    # pandas' own cut, half-open [a, b): the independent reference for every row's group
    ref = pd.cut(frame["age"], [-np.inf, *EDGES, np.inf], right=False,
                 labels=["age<25", "25<=age<40", "40<=age<60", "age>=60"])
    assert run.eval_table.sensitive["age"].astype(str).tolist() == ref.astype(str).tolist()
    assert run.eval_table.bins == (("age", (25.0, 40.0, 60.0)),)
    pred = np.asarray(run.inputs.p_student).argmax(axis=1)
    y = np.asarray(run.inputs.y)
    for name in checks:
        (m,) = run.run_check(name).measurements
        assert m.params["by"] == "age"
        groups = [(r["group"], r["n"]) for r in m.breakdown]
        assert groups == [(lab, int((ref == lab).sum())) for lab in ref.cat.categories]
    (m,) = run.run_check("demographic_parity_difference").measurements
    expected = demographic_parity_difference(y, pred, sensitive_features=ref.astype(str))
    assert m.student.value == pytest.approx(expected, abs=1e-12)
    mf = MetricFrame(metrics=selection_rate, y_true=y, y_pred=pred, sensitive_features=ref)
    for row in m.breakdown:
        assert row["student"]["selection_rate"] == pytest.approx(mf.by_group[row["group"]])


def test_quantile_bins_come_from_the_eval_table_and_are_stated_in_the_group_names(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    frame = _write(tmp_path)
    run = SuiteRun(load_suite(_suite(tmp_path, [{"column": "age", "quantiles": 4}])))
    q = np.quantile(frame["age"].to_numpy(dtype=float), [0.25, 0.5, 0.75])
    ((col, edges),) = run.eval_table.bins
    assert col == "age" and edges == tuple(q)
    (m,) = run.run_check("parity").measurements
    names = [r["group"] for r in m.breakdown]
    assert names == Binning.labels("age", edges)
    assert names[0] == f"age<{q[0]:g}" and names[-1] == f"age>={q[2]:g}"
    counts = [r["n"] for r in m.breakdown]
    assert sum(counts) == len(frame) and max(counts) - min(counts) < len(frame) * 0.1


def test_other_tables_are_cut_at_the_eval_tables_quantiles(tmp_path: Path) -> None:
    _write(tmp_path)
    other = pd.DataFrame({"x": [0.0, 1.0, 2.0], "age": [16, 50, 90], "group": ["a", "b", "a"],
                          "label": ["No", "Yes", "No"]})
    other.to_csv(tmp_path / "train.csv", index=False)
    spec = DataSpec(eval=tmp_path / "eval.csv", train=tmp_path / "train.csv", target="label",
                    sensitive=("age",), bins=(Binning("age", quantiles=4),))
    evals, train = load_table(spec, "eval"), load_table(spec, "train")
    assert train.bins == evals.bins  # not the quartiles of 16, 50 and 90
    labels = Binning.labels("age", evals.bins[0][1])
    assert train.sensitive["age"].astype(str).tolist() == [labels[0], labels[2], labels[3]]


def test_missing_values_in_a_binned_column_follow_missing_sensitive(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    frame = _write(tmp_path)
    frame["age"] = frame["age"].astype(object)
    frame.loc[[4, 9], "age"] = None
    frame.to_csv(tmp_path / "eval.csv", index=False)
    result = SuiteRun(load_suite(_suite(tmp_path, [{"column": "age", "bins": EDGES}]))
                      ).run_check("parity")
    assert result.error == ("eval.csv: sensitive column 'age' has 2 rows with a missing value, "
                            "first at data row 5; fill them, or set data.missing_sensitive: group "
                            "to slice them as their own group 'missing'")
    run = SuiteRun(load_suite(_suite(tmp_path, [{"column": "age", "bins": EDGES}],
                                     missing_sensitive="group")))
    (m,) = run.run_check("parity").measurements
    assert [(r["group"], r["n"]) for r in m.breakdown][-1] == ("age=missing", 2)
    assert [r["group"] for r in m.breakdown][:4] == Binning.labels("age", (25.0, 40.0, 60.0))


def test_a_binned_column_holding_text_is_refused(tmp_path: Path) -> None:
    (tmp_path / "eval.csv").write_text("x,age,label\n1,20,No\n2,old,Yes\n3,40,No\n")
    spec = DataSpec(eval=tmp_path / "eval.csv", target="label", sensitive=("age",),
                    bins=(Binning("age", edges=(30.0,)),))
    with pytest.raises(DataError) as info:
        load_table(spec)
    assert str(info.value).endswith(
        "eval.csv: sensitive column 'age' is binned (data.sensitive) but holds 'old' at data row "
        "2 (1 row in all), which is not a number; fix the data, leave the cell empty to make it "
        "missing, or list the column by name to take its values as groups")


def _numeric(n_distinct: int, n: int = 60) -> pd.DataFrame:
    return pd.DataFrame({"x": np.arange(n, dtype=float), "code": np.arange(n) % n_distinct,
                         "label": ["No", "Yes"] * (n // 2)})


@pytest.mark.parametrize("distinct", [2, MAX_GROUPS])
def test_a_numeric_column_with_few_values_stays_a_column_of_groups(tmp_path: Path,
                                                                   distinct: int) -> None:
    _numeric(distinct).to_csv(tmp_path / "eval.csv", index=False)
    table = load_table(DataSpec(eval=tmp_path / "eval.csv", target="label", sensitive=("code",)))
    assert table.sensitive["code"].nunique() == distinct
    assert set(table.sensitive["code"]) == {str(i) for i in range(distinct)}  # read as written


def test_a_numeric_column_with_many_values_is_refused_at_its_suite_line(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    _write(tmp_path)
    result = SuiteRun(load_suite(_suite(tmp_path, ["group", "age"]))).run_check("parity")
    assert result.status == "error"
    assert result.error == (
        "bins.audit.yaml:8 data.sensitive[1]='age': column 'age' of eval.csv holds numbers with "
        "65 distinct values, too many to take each value as a group (a numeric column with more "
        "than 20 distinct values must be binned); bin it: {column: age, bins: [32, 48, 61]} "
        "(edges: its quartiles, rounded) or {column: age, quantiles: 4}, or list it in "
        "data.categorical to keep every value as a group")
    ok = SuiteRun(load_suite(_suite(tmp_path, ["group", "age"], categorical=["age"])))
    assert ok.run_check("parity").status != "error"
    # built in code (no suite file): the same words, located by key
    _numeric(MAX_GROUPS + 1).to_csv(tmp_path / "eval.csv", index=False)
    with pytest.raises(DataError, match=r"^data.sensitive\[0\]='code': column 'code' of eval.csv "
                                        r"holds numbers with 21 distinct values"):
        load_table(DataSpec(eval=tmp_path / "eval.csv", target="label", sensitive=("code",)))


def test_a_moved_line_changes_neither_the_spec_nor_the_measurement_key(tmp_path: Path) -> None:
    _write(tmp_path)
    path = _suite(tmp_path, ["group", {"column": "age", "bins": EDGES}])
    first = load_suite(path)
    path.write_text("# a comment\n\n" + path.read_text(encoding="utf-8"), encoding="utf-8")
    moved = load_suite(path)
    assert first.data.sensitive_at.of(1)[1] != moved.data.sensitive_at.of(1)[1]
    assert first.data == moved.data
    spec = first.check("parity")
    keys = {measurement_key(spec, s.data, Settings(), {}, {}) for s in (first, moved)}
    assert len(keys) == 1


@pytest.mark.parametrize(("sensitive", "problem"), [
    pytest.param(["group", {"column": "age", "bins": [25, 40.5, 60]}], None, id="bins"),
    pytest.param([{"column": "age", "quantiles": 4}], None, id="quantiles"),
    pytest.param([{"column": "age", "bins": [25]}], None, id="one-edge"),
    pytest.param([{"column": "age"}], "gives no bins", id="neither"),
    pytest.param([{"column": "age", "bins": [1], "quantiles": 2}], "keep one", id="both"),
    pytest.param([{"column": "age", "bins": []}], "non-empty list", id="no-edges"),
    pytest.param([{"column": "age", "bins": ["25"]}], "without quotes", id="quoted-edge"),
    pytest.param([{"column": "age", "quantiles": 1}], "at least 2", id="one-quantile"),
    pytest.param([{"column": "age", "quantiles": 2.5}], "integer", id="fractional-quantiles"),
    pytest.param([{"column": "age", "bin": [1]}], "unknown key", id="unknown-key"),
    pytest.param([{"bins": [1]}], "names no column", id="no-column"),
    pytest.param([], "non-empty list", id="empty"),
])
def test_schema_and_parser_agree_on_sensitive_entries(tmp_path: Path, sensitive: list[Any],
                                                      problem: str | None) -> None:
    _write(tmp_path, n=40)
    path = _suite(tmp_path, sensitive)
    doc = yaml.safe_load(path.read_text(encoding="utf-8"))
    errors = list(Draft202012Validator(suite_json_schema()).iter_errors(doc))
    assert (errors == []) is (problem is None), errors
    if problem is None:
        suite_from_dict(doc, base_dir=tmp_path)
    else:
        with pytest.raises(SuiteError, match=problem):
            suite_from_dict(doc, base_dir=tmp_path)


def test_decreasing_edges_are_refused_by_the_parser(tmp_path: Path) -> None:
    """JSON Schema cannot say "strictly increasing"; the parser does, with the fix."""
    _write(tmp_path, n=40)
    with pytest.raises(SuiteError) as info:
        load_suite(_suite(tmp_path, [{"column": "age", "bins": [40, 25, 60]}]))
    assert str(info.value).endswith("data.sensitive[0].bins=[40, 25, 60]: edges must be strictly "
                                    "increasing (25 follows 40); write [25, 40, 60]")


def test_the_report_states_the_edges_in_its_data_section(tmp_path: Path,
                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    frame = _write(tmp_path)
    run = SuiteRun(load_suite(_suite(tmp_path, ["group", {"column": "age", "quantiles": 3}])))
    run.run_check("parity")
    q = np.quantile(frame["age"].to_numpy(dtype=float), [1 / 3, 2 / 3])
    data = run.artifacts()["data"]
    assert data["sensitive"] == ["group", "age"]
    assert data["sensitive_bins"] == {"age": list(q)}
    from audit.report.jsonio import validate_report

    validate_report(run.report().to_dict())  # the report schema takes the new key
