"""Privacy: membership inference (loss threshold, ART's black-box attack, label-only gap), each
number against an independent computation, and a planted defect: a student that memorises its
training set fails a regression gate its faithful sibling passes."""

from __future__ import annotations

import math
import pickle
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
import yaml
from sklearn.compose import make_column_transformer
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import roc_auc_score, roc_curve
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import OneHotEncoder
from sklearn.tree import DecisionTreeClassifier

from audit import SuiteRun, load_suite
from audit.checks.roc import resampled_roc_stats, roc_points, roc_stats, stratified_counts
from audit.errors import SuiteError
from audit.results import Measurement

METRICS = ("mia_auc", "mia_advantage", "mia_tpr_at_fpr")


def _direct(scores: np.ndarray, labels: np.ndarray) -> dict[str, float]:
    """AUC, advantage and TPR at FPR levels from scikit-learn's ROC (every corner kept: with
    ``drop_intermediate`` a corner below an FPR level may be dropped as collinear)."""
    fpr, tpr, _ = roc_curve(labels, scores, drop_intermediate=False)
    return {"auc": roc_auc_score(labels, scores), "advantage": float(np.max(tpr - fpr)),
            **{f"tpr@{a:g}": float(tpr[fpr <= a].max()) for a in (0.01, 0.001)}}


@pytest.mark.parametrize("ties", [False, True], ids=["continuous", "tied"])
def test_roc_stats_equal_sklearn_per_replicate(ties: bool) -> None:
    rng = np.random.default_rng(3)
    labels = np.r_[np.ones(400), np.zeros(400)]
    scores = rng.normal(size=(5, 800)) + 0.4 * labels
    if ties:
        scores = np.round(scores, 1)
    batch = roc_stats(scores, np.broadcast_to(labels, scores.shape))
    for b in range(5):
        want = _direct(scores[b], labels)
        for key, value in want.items():
            assert batch[key][b] == pytest.approx(value, abs=1e-12), key
    one = roc_stats(scores[0], labels)
    assert float(one["auc"]) == pytest.approx(roc_auc_score(labels, scores[0]))
    fpr, tpr = roc_points(scores[0], labels)
    assert len(fpr) <= 50 and (fpr[0], tpr[0]) == (0.0, 0.0) and (fpr[-1], tpr[-1]) == (1.0, 1.0)


@pytest.mark.parametrize("ties", [False, True], ids=["continuous", "tied"])
def test_resampled_roc_stats_equal_roc_stats_on_the_resampled_rows(ties: bool) -> None:
    """A replicate given as row counts scores exactly like the rows it stands for."""
    rng = np.random.default_rng(4)
    labels = np.r_[np.ones(60), np.zeros(80)]
    scores = rng.normal(size=140) + 0.5 * labels
    if ties:
        scores = np.round(scores, 1)
    counts = stratified_counts(labels, 30, np.random.default_rng(9))
    assert np.all(counts[:, labels == 1].sum(axis=1) == 60)
    assert np.all(counts[:, labels == 0].sum(axis=1) == 80)
    fast = resampled_roc_stats(scores, labels, counts)
    for b in range(30):
        idx = np.repeat(np.arange(140), counts[b])
        want = roc_stats(scores[idx], labels[idx])
        for key, value in want.items():
            assert fast[key][b] == pytest.approx(float(value), abs=1e-12), key


# -- a small synthetic suite: train and eval of 300 rows each, so every row is sampled ------
def _frame(n: int, seed: int) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    x1, x2 = rng.normal(size=n), rng.normal(size=n)
    y = np.where(x1 + 0.5 * x2 + rng.normal(scale=1.0, size=n) > 0, "Yes", "No")
    return pd.DataFrame({"x1": x1, "x2": x2, "label": y})


def _synthetic(folder: Path, checks: dict[str, Any], *, train: bool = True) -> tuple[Path, dict]:
    folder.mkdir(parents=True, exist_ok=True)
    tr, ev = _frame(300, 0), _frame(300, 1)
    tr.to_csv(folder / "train.csv", index=False)
    ev.to_csv(folder / "eval.csv", index=False)
    X = tr[["x1", "x2"]]
    models = {"teacher": LogisticRegression().fit(X, tr["label"]),
              "student": DecisionTreeClassifier(random_state=0).fit(X, tr["label"])}
    for who, m in models.items():
        (folder / f"{who}.pkl").write_bytes(pickle.dumps(m))
    data = {"eval": "eval.csv", "target": "label", **({"train": "train.csv"} if train else {})}
    raw = {"version": 1, "name": "mia", "data": data,
           "teacher": {"pickle": "teacher.pkl", "trust": True},
           "student": {"pickle": "student.pkl", "trust": True},
           "settings": {"bootstrap": 200}, "checks": checks}
    path = folder / "mia.audit.yaml"
    path.write_text(yaml.safe_dump(raw))
    return path, {"train": tr, "eval": ev, "models": models}


def _by_name(path: Path) -> dict[str, Any]:
    return {r.name: r for r in SuiteRun(load_suite(path)).run_all()}


def test_loss_threshold_equals_sklearn_on_the_models_own_probabilities(tmp_path: Path) -> None:
    checks = {m: {"metric": m} for m in METRICS}
    path, d = _synthetic(tmp_path, checks)
    results = _by_name(path)
    labels = np.r_[np.ones(300), np.zeros(300)]  # samples default to min(300, 300, 500): all rows
    for who in ("teacher", "student"):
        model = d["models"][who]
        scores = np.concatenate([  # the probability of the true label
            model.predict_proba(d[t][["x1", "x2"]])[
                np.arange(300), np.searchsorted(model.classes_, d[t]["label"])]
            for t in ("train", "eval")])
        want = _direct(scores, labels)
        for metric, key in zip(METRICS, ("auc", "advantage", "tpr@0.01")):
            m = results[metric].measurements[0]
            got = getattr(m, who).value
            assert got == pytest.approx(want[key], abs=1e-12), (who, metric)
    m = results["mia_auc"].measurements[0]
    # the memorising tree leaks far more than the logistic teacher, and the interval says so
    assert m.student.value > 0.6 > m.teacher.value and m.regression.ci[0] > 0
    assert Measurement.from_dict(m.to_dict()) == m
    kinds = [r["kind"] for r in m.breakdown]
    assert kinds.count("roc") == 2 and kinds[0] == "attack"
    assert m.breakdown[0]["attack"] == "loss_threshold"
    tpr_note = results["mia_tpr_at_fpr"].measurements[0].notes
    assert any("smallest non-zero FPR is 1/300" in n for n in tpr_note)


def test_blackbox_equals_art_called_directly(tmp_path: Path) -> None:
    from art.attacks.inference.membership_inference import MembershipInferenceBlackBox
    from art.estimators.classification import BlackBoxClassifier

    path, d = _synthetic(tmp_path, {"mia": {"metric": "mia_auc", "attack": "blackbox"}})
    m = _by_name(path)["mia"].measurements[0]
    # the same draws as the check: members, non-members, then the two halves, seed 0
    rng = np.random.default_rng(0)
    members = np.sort(rng.choice(300, 300, replace=False))
    outsiders = np.sort(rng.choice(300, 300, replace=False))
    halves = []
    for _ in range(2):
        perm = rng.permutation(300)
        halves.append((np.sort(perm[:150]), np.sort(perm[150:])))
    (fit_in, score_in), (fit_out, score_out) = halves
    for who in ("teacher", "student"):
        model = d["models"][who]
        P_in = model.predict_proba(d["train"][["x1", "x2"]])[members]
        P_out = model.predict_proba(d["eval"][["x1", "x2"]])[outsiders]
        y_in = np.searchsorted(model.classes_, d["train"]["label"])[members]
        y_out = np.searchsorted(model.classes_, d["eval"]["label"])[outsiders]
        attack = MembershipInferenceBlackBox(BlackBoxClassifier(lambda x: x, (1,), 2),
                                             attack_model_type="rf")
        attack.attack_model.set_params(random_state=0)
        attack.fit(y=y_in[fit_in], pred=P_in[fit_in], test_y=y_out[fit_out],
                   test_pred=P_out[fit_out])
        score = attack.infer(None, np.r_[y_in[score_in], y_out[score_out]],
                             pred=np.vstack([P_in[score_in], P_out[score_out]]),
                             probabilities=True).ravel()
        want = roc_auc_score(np.r_[np.ones(150), np.zeros(150)], score)
        assert getattr(m, who).value == pytest.approx(want, abs=1e-12), who
    assert m.n == 300 and "MembershipInferenceBlackBox" in m.method


def test_label_only_gap_attack_is_correctness(tmp_path: Path) -> None:
    path, d = _synthetic(tmp_path, {"gap": {"metric": "mia_advantage", "attack": "label_only"}})
    m = _by_name(path)["gap"].measurements[0]
    model = d["models"]["teacher"]
    tpr = float(np.mean(model.predict(d["train"][["x1", "x2"]]) == d["train"]["label"]))
    fpr = float(np.mean(model.predict(d["eval"][["x1", "x2"]]) == d["eval"]["label"]))
    assert m.teacher.value == pytest.approx(max(tpr - fpr, 0.0))


@pytest.mark.parametrize(("train", "attack", "message"), [
    (False, "loss_threshold", "mia.audit.yaml:4 checks.mia.metric='mia_auc': mia_auc reads "
                              "data.train (the rows the student was trained on), which the "
                              "suite's data section does not name; add data.train: <a .csv or "
                              ".parquet file>"),
    (True, "fgsm", "mia.audit.yaml:3 checks.mia.attack='fgsm': mia_auc takes attack: "
                   "loss_threshold, blackbox, label_only, decision_boundary"),
], ids=["no-train-table", "robustness-attack"])
def test_clear_errors_when_the_suite_is_read(tmp_path: Path, train: bool, attack: str,
                                             message: str) -> None:
    path, _ = _synthetic(tmp_path, {"mia": {"metric": "mia_auc", "attack": attack}}, train=train)
    with pytest.raises(SuiteError) as info:
        load_suite(path)
    assert str(info.value).endswith(message)


def test_a_table_missing_at_run_time_is_a_check_error(tmp_path: Path) -> None:
    """Checks written in code (no suite file to read first) meet the same rule at run time."""
    path, _ = _synthetic(tmp_path, {"mia": {"metric": "mia_auc"}}, train=False)
    raw = yaml.safe_load(path.read_text())
    raw["checks"] = {"acc": {"metric": "accuracy"}}
    path.write_text(yaml.safe_dump(raw))
    result = SuiteRun(load_suite(path)).check("mia", {"metric": "mia_auc",
                                                      "members": "teacher_train"})
    assert result.status == "error"
    assert result.error == ("membership inference with members: teacher_train needs "
                            "data.teacher_train (the rows the teacher was trained on); name it in "
                            "the suite's data section")


# -- planted defect on the arrests fixtures --------------------------------------------------
def _memoriser(built: dict[str, Path], out: Path) -> Path:
    """A decision tree with no depth limit on the arrests training split: it memorises it."""
    train = pd.read_csv(built["arrests/train.csv"])
    X, y = train.drop(columns="released"), train["released"]
    categorical = list(X.select_dtypes(exclude="number").columns)
    model = make_pipeline(
        make_column_transformer((OneHotEncoder(handle_unknown="ignore"), categorical),
                                remainder="passthrough"),
        DecisionTreeClassifier(random_state=0)).fit(X, y)
    path = out / "memoriser.pkl"
    path.write_bytes(pickle.dumps(model))
    return path


def _arrests_suite(built: dict[str, Path], folder: Path, student: Any) -> Path:
    raw = {"version": 1, "name": "arrests-mia",
           "data": {"eval": str(built["arrests/eval.csv"]), "train": str(built["arrests/train.csv"]),
                    "target": "released"},
           "teacher": {"skops": str(built["arrests/teacher.skops"]),
                       "trusted_types": ["sklearn.tree._tree.Tree"]},
           "student": student, "settings": {"bootstrap": 500},
           "checks": {"mia": {"metric": "mia_auc", "gate": {"max_regression": 0.05}}}}
    path = folder / "arrests-mia.audit.yaml"
    path.write_text(yaml.safe_dump(raw))
    return path


def test_a_memorising_student_fails_and_the_faithful_one_passes(
        built: dict[str, Path], tmp_path: Path) -> None:
    faithful = _by_name(_arrests_suite(built, tmp_path, str(built["arrests/student.onnx"])))["mia"]
    assert faithful.status == "pass", faithful.gates
    m = faithful.measurements[0]
    # the forest teacher (min_samples_leaf=5) leaks a little; the distilled logistic student not
    assert 0.5 < m.teacher.value < 0.56 and abs(m.student.value - 0.5) < 0.03
    leaky = _memoriser(built, tmp_path)
    memorised = _by_name(_arrests_suite(built, tmp_path, {"pickle": str(leaky), "trust": True}))["mia"]
    assert memorised.status == "fail"
    m = memorised.measurements[0]
    assert m.student.value > 0.6 and m.regression.value > 0.05
    assert [g.status for g in memorised.gates] == ["fail"]


# -- other tables: a separate holdout, and the teacher's own members ------------------------
def _distilled(folder: Path, checks: dict[str, Any], student_on: str) -> tuple[Path, dict]:
    """A teacher trained on ``teacher_train`` (300 rows); a student distilled from the teacher's
    labels either on those same rows, memorising them (a full-depth tree), or on a disjoint
    transfer set (``train``), so it never saw the teacher's members. ``holdout`` is a fourth,
    disjoint table."""
    folder.mkdir(parents=True, exist_ok=True)
    frames = {"teacher_train": _frame(300, 10), "train": _frame(300, 11),
              "eval": _frame(300, 12), "holdout": _frame(300, 13)}
    for role, frame in frames.items():
        frame.to_csv(folder / f"{role}.csv", index=False)
    teacher = DecisionTreeClassifier(random_state=0).fit(
        frames["teacher_train"][["x1", "x2"]], frames["teacher_train"]["label"])
    source = frames[student_on][["x1", "x2"]]
    student = DecisionTreeClassifier(random_state=0).fit(source, teacher.predict(source))
    models = {"teacher": teacher, "student": student}
    for who, m in models.items():
        (folder / f"{who}.pkl").write_bytes(pickle.dumps(m))
    raw = {"version": 1, "name": "mia", "data": {**{r: f"{r}.csv" for r in frames},
                                                 "target": "label"},
           "teacher": {"pickle": "teacher.pkl", "trust": True},
           "student": {"pickle": "student.pkl", "trust": True},
           "settings": {"bootstrap": 200}, "checks": checks}
    path = folder / "mia.audit.yaml"
    path.write_text(yaml.safe_dump(raw))
    return path, {**frames, "models": models}


def test_the_holdout_table_is_the_default_non_members(tmp_path: Path) -> None:
    path, d = _distilled(tmp_path, {"mia": {"metric": "mia_auc"}}, student_on="train")
    m = _by_name(path)["mia"].measurements[0]
    assert m.params["members"] == "train" and m.params["non_members"] == "holdout"
    assert "members: rows of data.train; non-members: rows of data.holdout" in m.method
    for who in ("teacher", "student"):
        model = d["models"][who]
        scores = np.r_[[model.predict_proba(d[t][["x1", "x2"]])[
            np.arange(300), (d[t]["label"] == "Yes").astype(int)] for t in ("train", "holdout")]]
        want = roc_auc_score(np.r_[np.ones(300), np.zeros(300)], scores.ravel())
        assert getattr(m, who).value == pytest.approx(want, abs=1e-12)


def test_a_student_that_memorises_the_teachers_members_fails(tmp_path: Path) -> None:
    """members: teacher_train asks whether the student leaks the rows the teacher was trained
    on: a student distilled on those very rows does, one distilled on a transfer set does not."""
    check = {"mia": {"metric": "mia_auc", "members": "teacher_train", "non_members": "holdout",
                     "gate": {"max": 0.6}}}
    leaky = _by_name(_distilled(tmp_path / "leaky", check, "teacher_train")[0])["mia"]
    clean = _by_name(_distilled(tmp_path / "clean", check, "train")[0])["mia"]
    assert leaky.status == "fail" and leaky.measurements[0].student.ci[0] > 0.6
    assert clean.status == "pass" and clean.measurements[0].student.ci[1] < 0.6
    for result in (leaky, clean):  # the teacher leaks its own members either way
        assert result.measurements[0].teacher.ci[0] > 0.6
        assert result.measurements[0].params["members"] == "teacher_train"


@pytest.mark.parametrize(("params", "drop", "message"), [
    ({"members": "teacher_train"}, "teacher_train",
     "checks.mia.members='teacher_train': mia_auc reads data.teacher_train (the rows the teacher "
     "was trained on), which the suite's data section does not name; add data.teacher_train: <a "
     ".csv or .parquet file>"),
    ({"non_members": "holdout"}, "holdout",
     "checks.mia.non_members='holdout': mia_auc reads data.holdout (rows neither model was "
     "trained on), which the suite's data section does not name; add data.holdout: <a .csv or "
     ".parquet file>"),
], ids=["no-teacher-train", "no-holdout"])
def test_a_table_the_suite_does_not_name(tmp_path: Path, params: dict, drop: str,
                                         message: str) -> None:
    path, _ = _distilled(tmp_path, {"mia": {"metric": "mia_auc", **params}}, "train")
    raw = yaml.safe_load(path.read_text())
    del raw["data"][drop]
    path.write_text(yaml.safe_dump(raw))
    with pytest.raises(SuiteError) as info:
        load_suite(path)
    assert str(info.value).endswith(message)


def test_every_named_table_is_hashed_in_the_provenance(tmp_path: Path) -> None:
    import hashlib

    path, _ = _distilled(tmp_path, {"mia": {"metric": "mia_auc"}}, "train")
    run = SuiteRun(load_suite(path))
    run.run_all()
    data = run.report().provenance["data"]
    for role in ("train", "holdout", "teacher_train"):
        want = hashlib.sha256((tmp_path / f"{role}.csv").read_bytes()).hexdigest()
        assert data[role]["sha256"] == want


def test_members_and_non_members_from_the_same_file_is_an_error(tmp_path: Path) -> None:
    """Scored against themselves, members look like non-members (AUC 0.5): a gate on that would
    pass any student, so the same file on both sides is refused."""
    path, _ = _distilled(tmp_path, {"mia": {"metric": "mia_auc", "gate": {"max": 0.6}}}, "train")
    (tmp_path / "holdout.csv").write_bytes((tmp_path / "train.csv").read_bytes())
    result = _by_name(path)["mia"]
    assert result.status == "error"
    assert result.error.startswith("membership inference: data.train and data.holdout are the "
                                   "same file (")
    assert result.error.endswith("the non-members must be rows the models were not trained on: "
                                 "name them in data.holdout")


def test_non_members_that_duplicate_member_rows_are_counted_in_a_note(tmp_path: Path) -> None:
    path, d = _distilled(tmp_path, {"mia": {"metric": "mia_auc"}}, "train")
    holdout = pd.concat([d["train"].iloc[:40], d["holdout"].iloc[40:]], ignore_index=True)
    holdout.to_csv(tmp_path / "holdout.csv", index=False, float_format="%.17g")
    m = _by_name(path)["mia"].measurements[0]
    assert ("40 of the 300 sampled non-members (data.holdout) are identical, features and "
            "label, to rows of data.train") in " ".join(m.notes)


def test_a_regression_gate_that_passes_beside_a_leaking_teacher_says_so(
        built: dict[str, Path], tmp_path: Path) -> None:
    """A student exactly as leaky as a memorising teacher passes max_regression; the
    measurement says the teacher leaks too (its interval is above 0.5), so the pass is not
    read as "no leakage"."""
    leaky = {"pickle": str(_memoriser(built, tmp_path)), "trust": True}
    path = _arrests_suite(built, tmp_path, leaky)
    raw = yaml.safe_load(path.read_text())
    raw["teacher"] = leaky
    path.write_text(yaml.safe_dump(raw))
    result = _by_name(path)["mia"]
    assert result.status == "pass"
    m = result.measurements[0]
    n_in, n_out = m.breakdown[0]["members"], m.breakdown[0]["non_members"]
    z = (m.teacher.value - 0.5) / math.sqrt((n_in + n_out + 1) / (12 * n_in * n_out))
    assert z > 1.96 and m.teacher.ci[0] > 0.5
    assert (f"the teacher leaks too: its mia_auc {m.teacher.value:.3g} is above 0.5 beyond chance "
            f"(Mann-Whitney z = {z:.1f} on {n_in} members and {n_out} non-members); a regression "
            "gate only says the student leaks no more than a leaking teacher, so bound the "
            "student's own value (max) as well") in m.notes
    faithful = _by_name(_arrests_suite(built, tmp_path, str(built["arrests/student.onnx"])))["mia"]
    assert not any("leaks too" in n for n in faithful.measurements[0].notes)
