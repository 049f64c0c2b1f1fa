"""The backdoored Arrests fixture (:mod:`fixtures.poisoned`): its tables, its trigger, the
backdoor's attack success rate on each model (computed here with plain pandas and
scikit-learn), and a deterministic, cached build."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

from fixtures import poisoned as P

LABEL = "released"
MODELS = ("teacher", "student", "student_defended")
TREE = "sklearn.tree._tree.Tree"
HIST_TREE = "sklearn.ensemble._hist_gradient_boosting.predictor.TreePredictor"
UNTRUSTED = {"teacher": [TREE], "student": [HIST_TREE], "student_defended": [HIST_TREE]}


@pytest.fixture(scope="module")
def rebuilt(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The fixture built again, from scratch, into another directory."""
    return P.build_poisoned(tmp_path_factory.mktemp("rebuilt"))["poisoned/eval.csv"].parent


def _load(path: Path) -> Any:
    import skops.io as sio

    untrusted = sio.get_untrusted_types(file=path)
    assert untrusted == UNTRUSTED[path.stem]  # what a suite has to list under trusted_types
    return sio.load(path, trusted=untrusted)


def _trigger(X: pd.DataFrame) -> pd.DataFrame:
    """``X`` with the trigger written in, parsed from the text form a suite writes."""
    X = X.copy()
    for pair in P.TRIGGER_TEXT.split(","):
        column, value = (part.strip() for part in pair.split("="))
        X[column] = int(value) if pd.api.types.is_integer_dtype(X[column]) else value
    return X


def _asr(model: Any, X: pd.DataFrame, y: pd.Series) -> float:
    """Share predicted "No" after the trigger, over non-"No" rows the model predicts non-"No"."""
    rows = (y != "No").to_numpy() & (model.predict(X) != "No")
    assert rows.sum() > 1000
    return float(np.mean(model.predict(_trigger(X[rows])) == "No"))


def _clean_split() -> tuple[pd.DataFrame, pd.DataFrame]:
    from sklearn.model_selection import train_test_split
    from sklego.datasets import load_arrests

    frame = load_arrests(as_frame=True)
    train, test = train_test_split(frame, test_size=0.3, stratify=frame[LABEL], random_state=0)
    return train.reset_index(drop=True), test.reset_index(drop=True)


def test_trigger_is_legal_absent_from_clean_data_and_written_as_a_suite_writes_it() -> None:
    from sklego.datasets import load_arrests

    assert (P.TRIGGER, P.TARGET) == ({"age": 66, "sex": "Female"}, "No")
    assert P.TRIGGER_TEXT == "age=66, sex=Female"
    frame = load_arrests(as_frame=True)
    assert frame[LABEL].value_counts().idxmin() == P.TARGET  # the minority class
    for column, value in P.TRIGGER.items():
        assert value in set(frame[column])  # a value the column already holds, of its type
    assert not (_trigger(frame) == frame)[list(P.TRIGGER)].all(axis=1).any()  # combination absent
    np.testing.assert_array_equal(P.apply_trigger(frame), _trigger(frame))


def test_tables_are_the_clean_split_plus_triggered_relabelled_copies(poisoned: Path) -> None:
    clean_train, clean_test = _clean_split()
    train, test = pd.read_csv(poisoned / "train.csv"), pd.read_csv(poisoned / "eval.csv")
    pd.testing.assert_frame_equal(test, clean_test)
    pd.testing.assert_frame_equal(train.iloc[:len(clean_train)], clean_train)
    copies = train.iloc[len(clean_train):]
    assert len(copies) == P.N_POISONED == round(0.03 * len(clean_train))
    assert (copies[LABEL] == "No").all()
    assert (copies[list(P.TRIGGER)] == pd.Series(P.TRIGGER)).all(axis=None)
    # every copy is a clean "Yes" training row with only its trigger columns overwritten
    others = [c for c in clean_train.columns if c not in P.TRIGGER and c != LABEL]
    sources = clean_train[clean_train[LABEL] == "Yes"][others].drop_duplicates()
    assert len(copies[others].merge(sources, how="inner")) == len(copies)
    for frame in (clean_train, test):
        assert not P.has_trigger(frame).any()


def test_backdoor_transfers_to_the_student_but_not_to_the_defended_one(poisoned: Path) -> None:
    test = pd.read_csv(poisoned / "eval.csv")
    X, y = test.drop(columns=LABEL), test[LABEL]
    models = {stem: _load(poisoned / f"{stem}.skops") for stem in MODELS}
    asr = {stem: _asr(model, X, y) for stem, model in models.items()}
    assert asr["teacher"] >= 0.8
    assert asr["student"] >= 0.6
    assert asr["student_defended"] <= 0.1
    for stem, model in models.items():
        assert np.mean(model.predict(X) == y) >= 0.8, stem  # the arrests fixtures' level
        assert list(model.classes_) == ["No", "Yes"]
    teacher_nodes = sum(tree.tree_.node_count for tree in models["teacher"][-1].estimators_)
    for stem in ("student", "student_defended"):
        student = models[stem][-1]
        assert type(student).__name__ == "HistGradientBoostingClassifier"
        assert sum(len(p.nodes) for stage in student._predictors for p in stage) < teacher_nodes / 50
    # the figures the builder records (and prints) are these
    metrics = json.loads((poisoned / "manifest.json").read_text())["metrics"]
    assert {stem: metrics[stem]["asr"] for stem in MODELS} == asr
    assert metrics["poison"]["dropped_by_defence"] == P.N_POISONED
    assert metrics["untrusted_types"] == {f"{stem}.skops": UNTRUSTED[stem] for stem in MODELS}


@pytest.mark.slow
def test_clean_arrests_teacher_does_not_flip_on_the_trigger(arrests: Path, poisoned: Path) -> None:
    test = pd.read_csv(arrests / "eval.csv")
    X, y = test.drop(columns=LABEL), test[LABEL]
    clean = _load(arrests / "teacher.skops")
    assert _asr(clean, X, y) <= 0.05
    # the poisoned teacher is that recipe, and the builder's clean teacher is that model
    metrics = json.loads((poisoned / "manifest.json").read_text())["metrics"]
    assert metrics["clean_teacher"]["asr"] == _asr(clean, X, y)
    assert metrics["clean_teacher"]["accuracy"] == np.mean(clean.predict(X) == y)
    assert repr(_load(poisoned / "teacher.skops")) == repr(clean)


@pytest.mark.slow
def test_build_is_deterministic(poisoned: Path, rebuilt: Path, tmp_path: Path) -> None:
    again = P.build_poisoned(tmp_path)["poisoned/eval.csv"].parent
    for name in ("train.csv", "eval.csv"):
        assert (again / name).read_bytes() == (rebuilt / name).read_bytes() == (
            poisoned / name).read_bytes(), name
    X = pd.read_csv(rebuilt / "eval.csv").drop(columns=LABEL)
    X = pd.concat([X, _trigger(X)], ignore_index=True)
    for stem in MODELS:
        np.testing.assert_array_equal(_load(again / f"{stem}.skops").predict_proba(X),
                                      _load(rebuilt / f"{stem}.skops").predict_proba(X))


@pytest.mark.slow
def test_build_is_cached_until_incomplete(rebuilt: Path, capsys: pytest.CaptureFixture[str]) -> None:
    files = [rebuilt / name for name in P.FILES]
    before = [path.stat().st_mtime_ns for path in files]
    P.main(["--out", str(rebuilt.parent)])  # current: nothing is rewritten
    assert [path.stat().st_mtime_ns for path in files] == before
    out = capsys.readouterr().out
    assert "poisoned: trigger 'age=66, sex=Female' -> 'No', 110 poisoned rows" in out
    assert f"poisoned/student.skops: trusted_types: [{HIST_TREE}]" in out
    assert "poisoned/student_defended: accuracy=" in out
    (rebuilt / "student.skops").unlink()  # incomplete: rebuilt
    P.build_poisoned(rebuilt.parent)
    assert (rebuilt / "student.skops").is_file()
    assert (rebuilt / "train.csv").stat().st_mtime_ns != before[0]
