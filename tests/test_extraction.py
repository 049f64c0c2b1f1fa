"""Extraction risk: each thief's agreement equals the same thief fitted by hand on the same
queries, and a planted defect: a student far easier to copy than its teacher fails the gates
its teacher would pass."""

from __future__ import annotations

import pickle
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
import yaml
from sklearn.dummy import DummyClassifier
from sklearn.ensemble import RandomForestClassifier
from sklearn.exceptions import ConvergenceWarning
from sklearn.linear_model import LogisticRegression

from audit import SuiteRun, load_suite
from audit.probes.extraction import _pipeline, marginal_queries
from audit.results import Measurement


def _frame(n: int, seed: int) -> pd.DataFrame:
    """A ring: the label is whether the point lies within radius 1, which no line separates."""
    rng = np.random.default_rng(seed)
    x1, x2 = rng.normal(size=n), rng.normal(size=n)
    colour = rng.choice(["red", "blue"], size=n)
    y = np.where(x1 ** 2 + x2 ** 2 + rng.normal(scale=0.3, size=n) < 1.4, "in", "out")
    return pd.DataFrame({"x1": x1, "x2": x2, "colour": colour, "label": y})


def _suite(folder: Path, checks: dict[str, Any], student: str = "linear") -> tuple[Path, dict]:
    folder.mkdir(parents=True, exist_ok=True)
    tr, ev = _frame(800, 0), _frame(400, 1)
    tr.to_csv(folder / "train.csv", index=False)
    ev.to_csv(folder / "eval.csv", index=False)
    X = tr[["x1", "x2"]]
    teacher = RandomForestClassifier(n_estimators=50, min_samples_leaf=3, random_state=0)
    models = {"teacher": teacher.fit(X, tr["label"]),
              # a line through a ring: useless, and trivially copied
              "student": (LogisticRegression().fit(X, tr["label"]) if student == "linear"
                          else DummyClassifier().fit(X, tr["label"]) if student == "constant"
                          else teacher)}
    for who, m in models.items():
        (folder / f"{who}.pkl").write_bytes(pickle.dumps(m))
    raw = {"version": 1, "name": "steal",
           "data": {"eval": "eval.csv", "train": "train.csv", "target": "label",
                    "features": ["x1", "x2"]},
           "teacher": {"pickle": "teacher.pkl", "trust": True},
           "student": {"pickle": "student.pkl", "trust": True},
           "settings": {"bootstrap": 200}, "checks": checks}
    path = folder / "steal.audit.yaml"
    path.write_text(yaml.safe_dump(raw))
    return path, {"train": tr, "eval": ev, "models": models}


def _run(path: Path) -> dict[str, Any]:
    return {r.name: r for r in SuiteRun(load_suite(path)).run_all()}


def test_marginal_queries_draw_each_column_from_its_own_values() -> None:
    frame = pd.DataFrame({"a": [1, 2, 3], "b": ["x", "y", "z"]})
    q = marginal_queries(frame, 500, np.random.default_rng(0))
    assert q.dtypes.to_dict() == frame.dtypes.to_dict() and len(q) == 500
    assert set(q["a"]) == {1, 2, 3} and set(q["b"]) == {"x", "y", "z"}
    pairs = set(zip(q["a"], q["b"], strict=True))
    assert len(pairs) == 9  # independent draws: combinations the table never had


@pytest.mark.parametrize("source", ["marginals", "train"])
def test_agreement_equals_the_same_thief_fitted_by_hand(tmp_path: Path, source: str) -> None:
    budgets = [50, 300]
    path, d = _suite(tmp_path, {"copy": {"metric": "extraction_agreement", "budgets": budgets,
                                         "source": source, "thief": "mlp"},
                                "useful": {"metric": "extraction_accuracy", "budgets": budgets,
                                           "source": source, "thief": "mlp"}})
    results = _run(path)
    ev = d["eval"][["x1", "x2"]]
    rng = np.random.default_rng([0, 7])
    if source == "marginals":
        queries = marginal_queries(ev, max(budgets), rng)
    else:
        queries = d["train"][["x1", "x2"]].iloc[rng.permutation(800)[:max(budgets)]]
    queries = queries.reset_index(drop=True)
    for i, n in enumerate(budgets):
        agree, useful = (results[c].measurements[i] for c in ("copy", "useful"))
        assert agree.params["queries"] == n and agree.scope == f"{n} queries"
        for who, model in d["models"].items():
            answers = model.predict(queries.iloc[:n])
            thief = _pipeline(queries.iloc[:n], "mlp", 0)
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", ConvergenceWarning)
                thief.fit(queries.iloc[:n], answers)
            stolen = thief.predict(ev)
            assert getattr(agree, who).value == pytest.approx(
                float(np.mean(stolen == model.predict(ev))), abs=1e-12), (who, n)
            assert getattr(useful, who).value == pytest.approx(
                float(np.mean(stolen == d["eval"]["label"])), abs=1e-12), (who, n)
    assert Measurement.from_dict(agree.to_dict()) == agree


def test_a_student_far_easier_to_copy_than_its_teacher_fails(tmp_path: Path) -> None:
    gate = {"max": 0.95, "max_regression": 0.05}
    path, _ = _suite(tmp_path, {"copy": {"metric": "extraction_agreement", "budgets": [100],
                                         "thief": "logistic", "gate": gate}})
    result = _run(path)["copy"]
    m = result.measurements[0]
    assert result.status == "fail"
    # a logistic thief copies the logistic student exactly; the forest's ring it cannot
    assert m.student.value > 0.97 and m.teacher.value < 0.8 and m.regression.ci[0] > 0.1
    kinds = {g.kind: g.status for g in result.gates}
    assert kinds == {"max": "fail", "max_regression": "fail"}


def test_identical_student_has_zero_regression_and_a_curve(tmp_path: Path) -> None:
    path, _ = _suite(tmp_path, {"copy": {"metric": "extraction_agreement",
                                         "budgets": [30, 100, 300], "thief": "tree",
                                         "gate": {"max_regression": 0.0}}}, student="same")
    result = _run(path)["copy"]
    assert result.status == "pass"
    assert [m.regression.value for m in result.measurements] == [0.0, 0.0, 0.0]
    from audit.checks.registry import FAMILIES

    (curve,) = FAMILIES["extraction"].check_figures(result)
    assert curve.kind == "curve" and [p["x"] for p in curve.data] == pytest.approx(
        [np.log10(30), 2.0, np.log10(300)])


def test_a_constant_answer_is_copied_as_a_constant_and_said(tmp_path: Path) -> None:
    path, d = _suite(tmp_path, {"copy": {"metric": "extraction_agreement", "budgets": [10, 200],
                                         "source": "train"}}, student="constant")
    result = _run(path)["copy"]
    assert result.error is None, result.error
    first, second = result.measurements
    assert first.student.value == second.student.value == 1.0
    assert first.notes[0] == ("the student answered the first 200 queries with one class "
                              "('in'): the thief at 10, 200 queries is that constant")
    assert first.notes[1].startswith("a constant copy (always a model's most common answer, no "
                                     "query) already agrees with the teacher on ")
    assert first.breakdown[1]["constant_copy_agreement"] == 1.0
    assert second.notes == ()  # said once per check


@pytest.mark.parametrize(("params", "message"), [
    ({"source": "holdout"}, "checks.copy.source='holdout': extraction_agreement reads "
                            "data.holdout"),
    ({"source": "train", "budgets": [5000]},
     "extraction: the largest budget (5000 queries) needs more rows than data.train has (800"),
    ({"source": "eval", "budgets": [390]},
     "keeping 20 eval rows to score the thief); lower the budgets or use source: marginals"),
], ids=["table-not-named", "budget-beyond-table", "eval-leaves-no-rows"])
def test_clear_errors(tmp_path: Path, params: dict[str, Any], message: str) -> None:
    path, _ = _suite(tmp_path, {"copy": {"metric": "extraction_agreement", **params}})
    try:
        result = _run(path)["copy"]
    except Exception as exc:  # a table the suite does not name is refused when it is read
        assert message in str(exc)
        return
    assert result.status == "error" and message in result.error


def test_queries_from_eval_rows_are_not_scored(tmp_path: Path) -> None:
    path, _ = _suite(tmp_path, {"copy": {"metric": "extraction_agreement", "budgets": [100],
                                         "source": "eval"}})
    m = _run(path)["copy"].measurements[0]
    assert m.n == 300 and any("scored on the other 300 eval rows" in n for n in m.notes)


def _images(n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """8x8 grey images; class 1 when the left half is brighter than the right."""
    rng = np.random.default_rng(seed)
    x = rng.uniform(0, 1, (n, 1, 8, 8)).astype(np.float32)
    y = (x[:, 0, :, :4].mean(axis=(1, 2)) > x[:, 0, :, 4:].mean(axis=(1, 2))).astype(int)
    return x, y


def test_cnn_thief_equals_art_copycat_called_directly_on_the_live_model() -> None:
    """The check's thief replays the run's answers; ART's own CopycatCNN queries the model
    live. With the same seeds they train the same network to the same predictions."""
    import torch
    from art.attacks.extraction import CopycatCNN
    from art.estimators.classification import BlackBoxClassifier, PyTorchClassifier

    from audit.probes.copycat import BATCH, copycat, epochs, thief_network

    x, _ = _images(300, 0)
    target, _ = _images(200, 1)

    def victim(batch: np.ndarray) -> np.ndarray:  # a model: brighter left half -> class 1
        left = batch[:, 0, :, :4].mean(axis=(1, 2)) > batch[:, 0, :, 4:].mean(axis=(1, 2))
        return np.eye(2, dtype=np.float32)[left.astype(int)]

    ours = copycat(x, victim(x).argmax(axis=1), target, 2, seed=3)
    np.random.seed(3)
    torch.manual_seed(3)
    net = thief_network(1, 2)
    thief = PyTorchClassifier(net, loss=torch.nn.CrossEntropyLoss(),
                              optimizer=torch.optim.Adam(net.parameters(), lr=1e-3),
                              input_shape=(1, 8, 8), nb_classes=2, clip_values=(0.0, 1.0))
    attack = CopycatCNN(BlackBoxClassifier(victim, (1, 8, 8), 2, clip_values=(0.0, 1.0)),
                        batch_size_fit=BATCH, batch_size_query=BATCH, nb_epochs=epochs(300),
                        nb_stolen=300)
    theirs = attack.extract(x, thieved_classifier=thief).predict(target).argmax(axis=1)
    assert np.array_equal(ours, theirs)
    assert np.mean(ours == victim(target).argmax(axis=1)) > 0.8  # it did learn the rule


def test_copycat_leaves_numpy_global_state_as_it_found_it() -> None:
    from audit.probes.copycat import copycat

    x, y = _images(64, 0)
    np.random.seed(123)
    before = np.random.get_state()[1].copy()
    copycat(x, y, x[:5], 2, seed=0)
    assert np.array_equal(np.random.get_state()[1], before)


def test_marginals_on_an_image_suite_say_why_not(tmp_path: Path) -> None:
    x, y = _images(60, 0)
    np.save(tmp_path / "x.npy", x)
    pd.DataFrame({"label": np.where(y == 1, "b", "a")}).to_csv(tmp_path / "eval.csv", index=False)
    (tmp_path / "imgmodels.py").write_text(
        "import numpy as np\n\ndef predict(images):\n    return np.full((len(images), 2), 0.5)\n")
    raw = {"version": 1, "name": "img",
           "data": {"eval": "eval.csv", "target": "label", "images": {"eval": "x.npy"}},
           "teacher": {"callable": "imgmodels:predict", "classes": ["a", "b"]},
           "student": {"callable": "imgmodels:predict", "classes": ["a", "b"]},
           "checks": {"copy": {"metric": "extraction_agreement", "budgets": [20]}}}
    (tmp_path / "img.audit.yaml").write_text(yaml.safe_dump(raw))
    result = SuiteRun(load_suite(tmp_path / "img.audit.yaml")).run_check("copy")
    assert result.status == "error"
    assert result.error.endswith(
        "extraction with source: marginals draws each feature column independently; an image or "
        "text suite's inputs have no columns to draw: name a table (source: train, holdout or "
        "teacher_train)")


def test_a_budget_measures_the_same_whatever_other_budgets_are_asked(tmp_path: Path) -> None:
    """Queries are drawn so that a budget's are a prefix of any larger draw."""
    for source in ("marginals", "train"):
        alone, _ = _suite(tmp_path / f"a-{source}", {"c": {
            "metric": "extraction_agreement", "budgets": [100], "source": source}})
        more, _ = _suite(tmp_path / f"b-{source}", {"c": {
            "metric": "extraction_agreement", "budgets": [100, 700], "source": source}})
        first = _run(alone)["c"].measurements[0]
        again = _run(more)["c"].measurements[0]
        assert (first.teacher.value, first.student.value) == (
            again.teacher.value, again.student.value), source


def test_a_cnn_thief_on_a_table_says_why_not(tmp_path: Path) -> None:
    path, _ = _suite(tmp_path, {"copy": {"metric": "extraction_agreement", "thief": "cnn"}})
    result = _run(path)["copy"]
    assert result.status == "error" and result.error.endswith(
        "thief: cnn trains a small CNN on images (ART CopycatCNN); this suite's models read "
        "feature columns: use mlp, logistic, forest, tree or boosting")
