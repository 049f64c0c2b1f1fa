"""The flip table: the rows where the models disagree, equal to a pandas computation, worst
first, capped, private columns never exported, written beside the report from the JSON."""

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
from audit.report.flips import flips_of, write_flips


def _suite(folder: Path, check: dict[str, Any], private: list[str] | None = None
           ) -> tuple[Path, dict[str, Any]]:
    rng = np.random.default_rng(0)
    n = 400
    frame = pd.DataFrame({"x1": rng.normal(size=n), "x2": rng.normal(size=n),
                          "group": rng.choice(["a", "b"], n)})
    frame["label"] = np.where(frame["x1"] + 0.5 * frame["x2"] + rng.normal(size=n) > 0,
                              "Yes", "No")
    tr, ev = frame.iloc[:200].reset_index(drop=True), frame.iloc[200:].reset_index(drop=True)
    folder.mkdir(parents=True, exist_ok=True)
    ev.to_csv(folder / "eval.csv", index=False)
    X = tr[["x1", "x2"]]
    models = {"teacher": LogisticRegression().fit(X, tr["label"]),
              "student": DecisionTreeClassifier(max_depth=2, random_state=0).fit(X, tr["label"])}
    for who, m in models.items():
        (folder / f"{who}.pkl").write_bytes(pickle.dumps(m))
    data: dict[str, Any] = {"eval": "eval.csv", "target": "label",
                            "features": ["x1", "x2"], "sensitive": ["group"]}
    if private:
        data["private"] = private
    raw = {"version": 1, "name": "flips", "data": data,
           "teacher": {"pickle": "teacher.pkl", "trust": True},
           "student": {"pickle": "student.pkl", "trust": True},
           "settings": {"bootstrap": 200}, "checks": {"agree": check}}
    (folder / "f.audit.yaml").write_text(yaml.safe_dump(raw))
    return folder / "f.audit.yaml", {"eval": ev, "models": models}


def _expected(ev: pd.DataFrame, models: dict[str, Any]) -> pd.DataFrame:
    X = ev[["x1", "x2"]]
    P = {w: m.predict_proba(X) for w, m in models.items()}
    classes = list(models["teacher"].classes_)
    y = ev["label"].map({c: i for i, c in enumerate(classes)}).to_numpy()
    t, s = P["teacher"].argmax(1), P["student"].argmax(1)
    kind = np.select([(t == y) & (s != y), (s == y) & (t != y), (t != s)], [0, 1, 2], -1)
    gap = np.abs(P["teacher"][np.arange(len(y)), y] - P["student"][np.arange(len(y)), y])
    out = pd.DataFrame({"eval_row": np.arange(len(y)) + 1, "kind_code": kind, "gap": gap})
    out = out[out["kind_code"] >= 0].sort_values(["kind_code", "gap", "eval_row"],
                                                 ascending=[True, False, True])
    return out


def test_the_flip_table_equals_a_pandas_computation(tmp_path: Path) -> None:
    path, d = _suite(tmp_path, {"metric": "agreement"})
    m = SuiteRun(load_suite(path)).run_check("agree").measurements[0]
    flips = m.extra["flips"]
    want = _expected(d["eval"], d["models"])
    assert [r["eval_row"] for r in flips["rows"]] == want["eval_row"].tolist()
    kinds = ("teacher right, student wrong", "student right, teacher wrong", "both wrong")
    assert flips["counts"] == {k: int((want["kind_code"] == i).sum()) for i, k in enumerate(kinds)}
    first = flips["rows"][0]
    row = d["eval"].iloc[first["eval_row"] - 1]
    assert (first["x1"], first["x2"], first["label"]) == (row["x1"], row["x2"], row["label"])
    assert first["slice"] == f"group={row['group']}"
    P = d["models"]["student"].predict_proba(d["eval"][["x1", "x2"]].iloc[[first["eval_row"] - 1]])
    assert first["student_p_Yes"] == pytest.approx(P[0, 1])


def test_private_columns_are_never_exported(tmp_path: Path) -> None:
    path, _ = _suite(tmp_path, {"metric": "agreement"}, private=["x2", "group"])
    flips = SuiteRun(load_suite(path)).run_check("agree").measurements[0].extra["flips"]
    assert "x2" not in flips["columns"] and "group" not in flips["columns"]
    assert flips["left_out"] == ["group", "x2"]
    assert all("x2" not in r and r["slice"] == "" for r in flips["rows"])


def test_the_cap_and_flips_0(tmp_path: Path) -> None:
    path, d = _suite(tmp_path / "a", {"metric": "negative_flip_rate", "flips": 3})
    flips = SuiteRun(load_suite(path)).run_check("agree").measurements[0].extra["flips"]
    assert len(flips["rows"]) == 3 and flips["cap"] == 3
    assert sum(flips["counts"].values()) == len(_expected(d["eval"], d["models"]))
    path, _ = _suite(tmp_path / "b", {"metric": "agreement", "flips": 0})
    m = SuiteRun(load_suite(path)).run_check("agree").measurements[0]
    assert "flips" not in m.extra


def test_written_beside_the_report_from_the_json_alone(tmp_path: Path) -> None:
    path, d = _suite(tmp_path, {"metric": "agreement"}, private=["x2"])
    report = SuiteRun(load_suite(path)).report().to_dict()
    out = write_flips(report, tmp_path / "r.flips.csv")
    assert out is not None
    back = pd.read_csv(out)
    flips = flips_of(report)
    assert flips is not None
    assert list(back.columns) == flips["columns"]
    assert back["eval_row"].tolist() == [r["eval_row"] for r in flips["rows"]]
    assert "x2" not in back.columns
    parquet = write_flips(report, tmp_path / "r.flips.parquet")
    assert parquet is not None and pd.read_parquet(parquet)["eval_row"].tolist() == \
        back["eval_row"].tolist()


def test_the_html_shows_the_first_rows(tmp_path: Path) -> None:
    from audit.report.html import render_html

    path, _ = _suite(tmp_path, {"metric": "agreement"})
    report = SuiteRun(load_suite(path)).report().to_dict()
    html = render_html(report)
    assert "Rows where the models disagree, worst first" in html


def test_run_writes_the_flip_table_beside_the_report_or_where_asked(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    from audit.cli import main

    path, _ = _suite(tmp_path / "s", {"metric": "agreement"})
    monkeypatch.chdir(tmp_path)
    assert main(["run", str(path), "--report-dir", str(tmp_path / "r"), "-q"]) == 0
    written = sorted((tmp_path / "r" / "flips").glob("2*.flips.csv"))
    assert len(written) == 1 and f"report: {written[0]}" in capsys.readouterr().out
    assert main(["run", str(path), "--report-dir", str(tmp_path / "r2"), "--no-flips",
                 "-q"]) == 0
    assert not list((tmp_path / "r2" / "flips").glob("*.flips.*"))
    assert main(["run", str(path), "--report-dir", str(tmp_path / "r3"), "--flips",
                 str(tmp_path / "f.parquet"), "-q"]) == 0
    assert len(pd.read_parquet(tmp_path / "f.parquet")) > 0
