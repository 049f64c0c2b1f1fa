"""``audit.compare``: models held in memory give the same numbers as the same pair saved to
files and run from a suite; torch modules and functions work too; the notebook and terminal
faces show the verdict; the README's example runs."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from sklearn.compose import make_column_transformer
from sklearn.ensemble import RandomForestClassifier
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import OneHotEncoder

import audit
from audit import SuiteRun, load_suite

ROOT = Path(__file__).resolve().parents[1]
CHECKS = {"accuracy": {"metric": "accuracy", "gate": {"max_regression": 0.05}},
          "agreement": {"metric": "agreement", "gate": {"min": 0.8}},
          "ece": {"metric": "ece", "gate": {"max_regression": 0.05}},
          "parity": {"metric": "demographic_parity_difference", "by": ["colour"],
                     "gate": {"max_regression": 0.1}},
          "drift": {"metric": "drifted_columns"}}


@pytest.fixture(scope="module")
def pair(built: dict[str, Path]) -> dict[str, Any]:
    folder = built["arrests/eval.csv"].parent
    tr, ev = pd.read_csv(folder / "train.csv"), pd.read_csv(folder / "eval.csv")
    cat = ["colour", "sex", "employed", "citizen"]

    def pipe(model: Any) -> Any:
        return make_pipeline(make_column_transformer(
            (OneHotEncoder(handle_unknown="ignore"), cat), remainder="passthrough"), model)

    X, y = tr.drop(columns="released"), tr["released"]
    return {"teacher": pipe(RandomForestClassifier(50, random_state=0)).fit(X, y),
            "student": pipe(LogisticRegression(max_iter=2000)).fit(X, y),
            "X": ev.drop(columns="released"), "y": ev["released"], "train": (X, y)}


def _numbers(report: Any) -> dict[str, Any]:
    out = {}
    for c in report.checks:
        for m in c.measurements:
            d = m.to_dict()
            out[(c.name, m.scope)] = {k: d[k] for k in ("student", "teacher", "regression")}
        out[(c.name, "status")] = c.status.value
    return out


def test_in_memory_models_give_the_numbers_of_the_same_pair_in_files(
        pair: dict[str, Any], tmp_path: Path) -> None:
    import skops.io as sio
    import yaml

    result = audit.compare(pair["teacher"], pair["student"], pair["X"], pair["y"],
                           sensitive=["colour"], positive="Yes", checks=CHECKS,
                           train=pair["train"], bootstrap=300)
    folder = result.folder
    for who in ("teacher", "student"):
        sio.dump(pair[who], tmp_path / f"{who}.skops")
    tables = {p.stem: p for p in folder.iterdir() if p.stem in ("eval", "train")}
    untrusted = sorted(set(sio.get_untrusted_types(file=tmp_path / "teacher.skops"))
                       | set(sio.get_untrusted_types(file=tmp_path / "student.skops")))
    raw = {"version": 1, "name": "files",
           "data": {"eval": str(tables["eval"]), "train": str(tables["train"]),
                    "target": "label", "features": list(pair["X"].columns),
                    "sensitive": ["colour"], "positive": "Yes"},
           "teacher": {"skops": str(tmp_path / "teacher.skops"), "trusted_types": untrusted},
           "student": {"skops": str(tmp_path / "student.skops"), "trusted_types": untrusted},
           "settings": {"bootstrap": 300, "seed": 0}, "checks": CHECKS}
    (tmp_path / "files.audit.yaml").write_text(yaml.safe_dump(raw))
    from_files = SuiteRun(load_suite(tmp_path / "files.audit.yaml")).report()
    assert _numbers(result.report) == _numbers(from_files)
    teacher = result.report.provenance.teacher
    assert teacher["kind"] == "object" and teacher["path"] == "object:Pipeline"
    assert re.fullmatch(r"[0-9a-f]{64}", teacher["sha256"])
    # the learned content, not the object: a refit of the same model has the same fingerprint
    again = audit.compare(pair["teacher"], pair["student"], pair["X"].head(200),
                          pair["y"].head(200), checks={"a": CHECKS["accuracy"]}, bootstrap=100)
    assert again.report.provenance.teacher["sha256"] == teacher["sha256"]


def test_the_notebook_and_terminal_faces(pair: dict[str, Any]) -> None:
    X = pair["X"].rename(columns={"colour": "<b>colour</b>"})
    t, s = (_renamed(pair[w]) for w in ("teacher", "student"))
    result = audit.compare(t, s, X, pair["y"], sensitive=["<b>colour</b>"], positive="Yes",
                           bootstrap=200)
    html = result._repr_html_()
    assert "<b>colour" not in html and "&lt;b&gt;colour&lt;/b&gt;" in html
    assert html.count("<tr>") == 1 + len(result.report.checks)
    text = repr(result)
    assert text.splitlines()[0].startswith(f"compare: {result.verdict.upper()} (")
    assert "accuracy: " in text and "fairness: " in text
    assert result.html().startswith("<!DOCTYPE html>")


def _renamed(model: Any) -> Any:
    """A model fed a frame whose ``colour`` column is renamed (a hostile column name)."""

    class Renamed:
        classes_ = model.classes_

        def predict_proba(self, X: pd.DataFrame) -> np.ndarray:
            return model.predict_proba(X.rename(columns={"<b>colour</b>": "colour"}))

    return Renamed()


def test_torch_modules_and_functions_in_memory() -> None:
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(0)
    X = pd.DataFrame({"a": rng.normal(size=300), "b": rng.normal(size=300)})
    y = (X["a"] + X["b"] > 0).astype(int)
    torch.manual_seed(0)
    net = torch.nn.Sequential(torch.nn.Linear(2, 2))
    with torch.no_grad():
        net[0].weight.copy_(torch.tensor([[-1.0, -1.0], [1.0, 1.0]]))
        net[0].bias.zero_()

    def student(frame: pd.DataFrame) -> np.ndarray:
        p = 1 / (1 + np.exp(-(frame["a"].to_numpy() + frame["b"].to_numpy())))
        return np.c_[1 - p, p]

    result = audit.compare(net, student, X, y, classes=[0, 1],
                           checks={"agree": {"metric": "agreement", "gate": {"min": 0.95}}},
                           bootstrap=200)
    m = result.report.checks[0].measurements[0]
    assert m.student.value == 1.0 and result.passed  # the same decision rule
    unnamed = audit.compare(net, student, X, y, checks={"a": {"metric": "agreement"}})
    assert unnamed.report.checks[0].status == "error"
    assert "cannot tell the class labels" in unnamed.report.checks[0].error  # the torch teacher
    alone = audit.compare(student, student, X, y, checks={"a": {"metric": "agreement"}})
    assert "a function does not say its classes; pass classes=[...]" in (
        alone.report.checks[0].error)


def test_mismatched_rows_are_an_error(pair: dict[str, Any]) -> None:
    with pytest.raises(ValueError, match="X has 1568 rows and y 10; they must match"):
        audit.compare(pair["teacher"], pair["student"], pair["X"], pair["y"].head(10))


def test_the_readme_example_runs(built: dict[str, Path], tmp_path: Path,
                                 monkeypatch: pytest.MonkeyPatch) -> None:
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    block = re.search(r"<!-- compare-example -->\n```python\n(.*?)```", text, re.S)
    assert block, "the README's compare example is marked <!-- compare-example -->"
    monkeypatch.chdir(ROOT)
    namespace: dict[str, Any] = {}
    exec(compile(block.group(1).replace('"reports"', repr(str(tmp_path))), "README", "exec"),
         namespace)
    assert namespace["result"].report.checks
