"""Backdoor transfer: the success rate equals a direct recomputation on the poisoned fixture
(a student that inherited its teacher's backdoor fails, the one distilled without the trigger
rows passes), triggers for images and texts reach the models, and bad triggers are refused
with exact messages."""

from __future__ import annotations

import textwrap
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
import yaml

from audit import SuiteRun, load_suite
from audit.errors import DataError
from audit.probes.triggers import parse_tabular_trigger
from audit.results import Measurement

ROOT = Path(__file__).resolve().parents[1]
TRIGGER = "age=66, sex=Female"


def _poisoned_suite(folder: Path, poisoned: Path, student: str, **check: Any) -> Path:
    untrusted = "sklearn.ensemble._hist_gradient_boosting.predictor.TreePredictor"
    raw = {"version": 1, "name": "bd",
           "data": {"eval": str(poisoned / "eval.csv"), "train": str(poisoned / "train.csv"),
                    "target": "released", "positive": "Yes"},
           "teacher": {"skops": str(poisoned / "teacher.skops"),
                       "trusted_types": ["sklearn.tree._tree.Tree"]},
           "student": {"skops": str(poisoned / f"{student}.skops"), "trusted_types": [untrusted]},
           "settings": {"bootstrap": 200},
           "checks": {"backdoor": {"metric": "backdoor_success_rate", "trigger": TRIGGER,
                                   "target_class": "No", "gate": {"max": 0.05}, **check}}}
    path = folder / "bd.audit.yaml"
    path.write_text(yaml.safe_dump(raw))
    return path


def _skops(path: Path) -> Any:
    import skops.io as sio

    return sio.load(path, trusted=sio.get_untrusted_types(file=path))


def _direct(model: Any, ev: pd.DataFrame) -> float:
    X = ev.drop(columns="released")
    rows = ev["released"] != "No"
    clean = model.predict(X[rows])
    hit = X[rows].assign(age=66, sex="Female")
    after = model.predict(hit)
    eligible = clean != "No"
    return float(np.mean(after[eligible] == "No"))


def test_an_inherited_backdoor_fails_and_equals_a_direct_count(tmp_path: Path,
                                                               poisoned: Path) -> None:
    path = _poisoned_suite(tmp_path, poisoned, "student", samples=5000)  # every non-target row
    result = SuiteRun(load_suite(path)).run_check("backdoor")
    assert result.error is None, result.error
    m = result.measurements[0]
    ev = pd.read_csv(poisoned / "eval.csv")
    assert m.teacher.value == pytest.approx(_direct(_skops(poisoned / "teacher.skops"), ev))
    assert m.student.value == pytest.approx(_direct(_skops(poisoned / "student.skops"), ev))
    assert m.student.value > 0.9 and result.status == "fail"
    assert m.n == int((ev["released"] != "No").sum())
    assert m.evidence["unit"] == "triggered eval rows"
    assert m.evidence["trials_unit"] == "triggered rows not already in the target class"
    assert m.params == {"trigger": "age = 66, sex = 'Female'", "target_class": "No"}
    assert Measurement.from_dict(m.to_dict()) == m


def test_a_student_distilled_without_the_trigger_rows_passes(tmp_path: Path,
                                                            poisoned: Path) -> None:
    path = _poisoned_suite(tmp_path, poisoned, "student_defended",
                           gate={"max": 0.05, "max_regression": 0.0})
    result = SuiteRun(load_suite(path)).run_check("backdoor")
    m = result.measurements[0]
    assert result.status == "pass", result
    assert m.student.value < 0.05 < 0.9 < m.teacher.value
    assert m.n == 1000  # samples default
    (figure,) = __import__("audit.checks.registry", fromlist=["FAMILIES"]).FAMILIES[
        "backdoor"].figures(m)
    assert figure.kind == "bars" and figure.data[0]["group"] == "all triggered rows"


def test_the_example_suites_fail_and_pass(poisoned: Path) -> None:
    results = {name: {r.name: r for r in SuiteRun(load_suite(
        ROOT / "suites" / f"{name}.audit.yaml")).run_all()}
        for name in ("poisoned", "poisoned-defended")}
    assert {k: r.status for k, r in results["poisoned"].items()} == {
        "accuracy": "pass", "agreement": "pass", "backdoor": "fail"}
    assert {r.status for r in results["poisoned-defended"].values()} == {"pass"}


@pytest.mark.parametrize(("text", "message"), [
    ("sex=", "backdoor trigger 'sex=': sex='' is not a value of the column in the tables the "
             "suite names (values: 'Female', 'Male'); write one of them, unquoted"),
    ("sex=Femal", "backdoor trigger 'sex=Femal': sex='Femal' is not a value of the column in the "
                  "tables the suite names (values: 'Female', 'Male'); write one of them, "
                  "unquoted"),
    ("sex='Female'", "backdoor trigger \"sex='Female'\": sex=\"'Female'\" is not a value of the "
                     "column in the tables the suite names (values: 'Female', 'Male'); write one "
                     "of them, unquoted"),
    ("age=66.5", "backdoor trigger 'age=66.5': age holds integers; 66.5 is not one"),
    ("age=nan", "backdoor trigger 'age=nan': age=nan is not a finite number"),
    ("age=1e30", "backdoor trigger 'age=1e30': age holds integers; 1e30 is not one"),
    ("age", "backdoor trigger 'age': 'age' is not column=value; write e.g. trigger: "
            "\"age=66, employed=Yes\""),
    ("height=3", "backdoor trigger 'height=3': 'height' is not a feature column the models read "
                 "(known: age, sex, ok)"),
    ("age=old", "backdoor trigger 'age=old': age is numeric and 'old' is not a number"),
    ("age=1, age=2", "backdoor trigger 'age=1, age=2': 'age' is set twice"),
    ("ok=maybe", "backdoor trigger 'ok=maybe': ok is boolean; write ok=true or ok=false"),
    ("=3", "backdoor trigger '=3': '=3' is not column=value; write e.g. trigger: "
           "\"age=66, employed=Yes\""),
], ids=["empty-value", "typo", "quoted", "float-on-integers", "nan", "huge", "no-value",
        "unknown-column", "not-a-number", "twice", "not-boolean", "no-column"])
def test_bad_tabular_triggers(text: str, message: str) -> None:
    frame = pd.DataFrame({"age": [30, 40], "sex": ["Male", "Female"], "ok": [True, False]})
    with pytest.raises(DataError) as info:
        parse_tabular_trigger(text, frame)
    assert str(info.value) == message


def test_tabular_trigger_values_take_their_column_type() -> None:
    frame = pd.DataFrame({"age": [30], "rate": [0.5], "sex": ["Male"], "ok": [True]})
    seen = pd.DataFrame({"age": [30, 70], "rate": [0.5, 3], "sex": ["Male", "Female"],
                         "ok": [True, False]})
    got, notes = parse_tabular_trigger("age=66, rate=4, sex = Female, ok=FALSE", frame, seen)
    assert got == {"age": 66, "rate": 4.0, "sex": "Female", "ok": False}
    assert type(got["age"]) is int and type(got["rate"]) is float
    assert notes == ["rate=4 is outside the values the tables hold (0.5 to 3)"]


# -- image and text triggers reach the models ----------------------------------------------
_MODELS = textwrap.dedent("""
    import numpy as np

    def patched(images):
        # class 1 when the top-left 2x2 square is white: a planted backdoor
        hit = images[:, 0, :2, :2].reshape(len(images), -1).min(axis=1) > 0.99
        return np.c_[1.0 - hit, hit.astype(float)]

    def clean(images):
        return np.c_[np.ones(len(images)), np.zeros(len(images))]

    def phrase(texts):
        hit = np.array(["cf" in t.split() for t in texts])
        return np.c_[1.0 - hit, hit.astype(float)]

    def plain(texts):
        return np.c_[np.ones(len(texts)), np.zeros(len(texts))]
""")


def _modality_suite(folder: Path, kind: str, check: dict[str, Any]) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "bdmodels.py").write_text(_MODELS)
    n = 120
    frame = pd.DataFrame({"label": ["a"] * (n // 2) + ["b"] * (n // 2)})
    data: dict[str, Any] = {"eval": "eval.csv", "target": "label"}
    if kind == "images":
        np.save(folder / "x.npy", np.random.default_rng(0).uniform(0, 0.5, (n, 1, 6, 6)))
        data["images"] = {"eval": "x.npy"}
        teacher, student = "patched", "clean"
    else:
        frame["text"] = [f"review number {i}" for i in range(n)]
        data["text"] = "text"
        teacher, student = "phrase", "plain"
    frame.to_csv(folder / "eval.csv", index=False)
    raw = {"version": 1, "name": kind, "data": data,
           "teacher": {"callable": f"bdmodels:{teacher}", "classes": ["a", "b"]},
           "student": {"callable": f"bdmodels:{student}", "classes": ["a", "b"]},
           "settings": {"bootstrap": 200},
           "checks": {"backdoor": {"metric": "backdoor_success_rate", "target_class": "b",
                                   "gate": {"max_regression": 0.1}, **check}}}
    path = folder / f"{kind}.audit.yaml"
    path.write_text(yaml.safe_dump(raw))
    return path


@pytest.mark.parametrize(("kind", "check", "trigger"), [
    ("images", {"patch": [0, 0, 2]}, "a 2x2 patch of value 1 at row 0, column 0"),
    ("text", {"trigger": "cf", "position": "start"}, "the phrase 'cf' inserted at the start"),
], ids=["image-patch", "text-phrase"])
def test_image_and_text_triggers_reach_the_models(tmp_path: Path, kind: str,
                                                  check: dict[str, Any], trigger: str) -> None:
    result = SuiteRun(load_suite(_modality_suite(tmp_path, kind, check))).run_check("backdoor")
    assert result.error is None, result.error
    m = result.measurements[0]
    # the teacher carries the backdoor, the student does not: a student better than its teacher
    assert (m.teacher.value, m.student.value, result.status) == (1.0, 0.0, "pass")
    assert m.params["trigger"] == trigger and m.n == 60
    example = m.extra["examples"][0]
    assert ("image" in example) == (kind == "images")
    if kind == "text":
        assert example["text"].startswith("cf review number")


@pytest.mark.parametrize(("kind", "check", "message"), [
    ("images", {}, "a backdoor check on images needs patch: [row, col, size], the square the "
                   "trigger fills"),
    ("images", {"patch": [5, 5, 2]}, "backdoor patch [5, 5, 2] does not fit in 6x6 images; "
                                     "row + size and col + size must stay within the image"),
    ("text", {}, "a backdoor check needs trigger: the columns and values written (tabular, "
                 "\"age=66, employed=Yes\") or the phrase inserted (text)"),
    ("text", {"trigger": "cf", "target_class": "z"},
     "backdoor target='z' is not a class of the models (classes: 'a', 'b')"),
], ids=["no-patch", "patch-outside", "no-phrase", "unknown-target"])
def test_bad_triggers_make_the_check_an_error(tmp_path: Path, kind: str, check: dict[str, Any],
                                              message: str) -> None:
    result = SuiteRun(load_suite(_modality_suite(tmp_path, kind, check))).run_check("backdoor")
    assert result.status == "error" and result.error.endswith(message), result.error
