"""The label-only decision-boundary membership attack: its distances equal ART's
LabelOnlyDecisionBoundary called directly with the same HopSkipJump settings, rank rows like
the exact distance of a linear model, a memorising student scores higher than its teacher, and
a wall-clock cap is an error, never a smaller sample."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from scipy.stats import spearmanr
from sklearn.metrics import roc_auc_score

from audit import SuiteRun, load_suite
from audit.probes.boundary import boundary_distances
from audit.probes.membership import sample_side
from tests.test_privacy import _by_name, _synthetic

CHECK = {"metric": "mia_auc", "attack": "decision_boundary"}


def _art_distances(model: Any, x01: np.ndarray, y: np.ndarray, low: np.ndarray,
                   span: np.ndarray) -> np.ndarray:
    """ART's LabelOnlyDecisionBoundary on the same scaled rows and HopSkipJump budget; with a
    fixed threshold tau its membership probability is sigmoid(distance - tau), inverted here."""
    from art.attacks.inference.membership_inference import LabelOnlyDecisionBoundary
    from art.estimators.classification import BlackBoxClassifier

    def predict(x: np.ndarray) -> np.ndarray:
        raw = low + np.asarray(x, np.float64) * span
        return model.predict_proba(pd.DataFrame(raw, columns=["x1", "x2"]))

    clf = BlackBoxClassifier(predict, input_shape=(2,), nb_classes=2, clip_values=(0.0, 1.0))
    tau = 1e-12
    state = np.random.get_state()
    np.random.seed(0)
    try:
        P = LabelOnlyDecisionBoundary(clf, distance_threshold_tau=tau).infer(
            x01.astype(np.float32), y, probabilities=True, norm=2, max_iter=10, max_eval=200,
            init_eval=20, init_size=100, verbose=False)
    finally:
        np.random.set_state(state)
    return np.log(P[:, 1] / P[:, 0]) + tau


@pytest.mark.slow
def test_distances_equal_art_called_directly(tmp_path: Path) -> None:
    path, d = _synthetic(tmp_path, {"db": CHECK})
    run = SuiteRun(load_suite(path))
    assert run.inputs.n == 300  # reads the eval table, loads the models, encodes the labels
    rng = np.random.default_rng(0)
    rows_in, y_in, _ = sample_side(run, "train", 30, rng)
    rows_out, y_out, _ = sample_side(run, "eval", 30, rng)
    distances = boundary_distances(run.probes, "train", rows_in, y_in, "eval", rows_out, y_out,
                                   max_seconds=600)
    assert distances.columns == ("x1", "x2")
    found = distances.found
    ours = found["teacher"]["distance"]
    assert not found["teacher"]["no_start"].any()

    lr = d["models"]["teacher"]
    X = np.vstack([d["train"][["x1", "x2"]].to_numpy()[rows_in],
                   d["eval"][["x1", "x2"]].to_numpy()[rows_out]])
    low, span = X.min(axis=0), X.max(axis=0) - X.min(axis=0)
    y = np.r_[y_in, y_out]
    art = _art_distances(lr, (X - low) / span, y, low, span)
    z = lr.decision_function(pd.DataFrame(X, columns=["x1", "x2"]))
    correct = (z > 0).astype(int) == y
    assert np.all(ours[~correct] == 0) and np.allclose(art[~correct], 0, atol=1e-9)
    # HopSkipJump is a randomised search from different starts: the same distance per row
    # within a few percent (both about 1.3x the exact distance after 10 iterations)
    ratio = ours[correct] / art[correct]
    assert np.all(np.abs(ratio - 1) < 0.05), ratio
    labels = np.r_[np.ones(30), np.zeros(30)]
    assert roc_auc_score(labels, ours) == pytest.approx(roc_auc_score(labels, art), abs=0.02)
    # a linear model's exact L2 distance to its boundary in the scaled space ranks the rows alike
    exact = np.abs(z) / np.linalg.norm(lr.coef_[0] * span)
    assert spearmanr(ours[correct], exact[correct]).statistic > 0.99


@pytest.mark.slow
def test_a_memorising_student_sits_further_from_its_boundary_on_members(tmp_path: Path) -> None:
    """The student is a fully grown tree on the training rows, the teacher a logistic
    regression: label-only, the tree's members are told apart and the teacher's are not."""
    path, _ = _synthetic(tmp_path, {"db": {**CHECK, "samples": 50, "max_seconds": 300}})
    result = _by_name(path)["db"]
    assert result.status == "info", result.error
    (m,) = result.measurements
    assert m.params["attack"] == "decision_boundary" and m.n == 100
    assert m.teacher.ci[0] < 0.5 < m.teacher.ci[1]
    assert m.student.value > 0.6 and m.regression.value > 0.1
    assert "label-only decision boundary (as ART's LabelOnlyDecisionBoundary)" in m.method


def _slow_clock(monkeypatch: pytest.MonkeyPatch) -> None:
    """A clock that moves one second per reading makes the cap deterministic."""
    import types

    import audit.probes.attacks as attacks

    ticks = iter(range(10**9))
    monkeypatch.setattr(attacks, "time",
                        types.SimpleNamespace(perf_counter=lambda: float(next(ticks))))


def test_the_wall_clock_cap_is_an_error_never_a_smaller_sample(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Which rows are scored must not depend on the machine's speed: a cap reached part way is
    an error naming the rows done and asked, not a score on the rows that finished."""
    _slow_clock(monkeypatch)
    path, _ = _synthetic(tmp_path, {"db": {**CHECK, "samples": 20, "max_seconds": 60}})
    result = _by_name(path)["db"]
    assert result.status == "error" and not result.measurements
    found = re.fullmatch(
        r"the wall-clock cap \(max_seconds 60\) stopped the decision-boundary attack on the "
        r"(teacher|student) \(\S+\.pkl\) after (\d+) of the (\d+) rows it had to attack \(the "
        r"ones it classifies correctly among the 20 sampled members and 20 non-members, samples: "
        r"20\); a result must cover the whole sample, so none is reported: raise max_seconds or "
        r"lower samples", result.error)
    assert found, result.error
    assert int(found[2]) < int(found[3]) <= 40


@pytest.mark.slow
def test_a_slow_machine_gives_the_same_scores(tmp_path: Path,
                                              monkeypatch: pytest.MonkeyPatch) -> None:
    path, _ = _synthetic(tmp_path, {"db": {**CHECK, "samples": 10, "max_seconds": 10**7}})
    fast = _by_name(path)["db"]
    with monkeypatch.context() as patched:
        _slow_clock(patched)  # thousands of "seconds" pass, within a cap large enough
        slow = _by_name(path)["db"]
    assert fast.status == slow.status == "info", (fast.error, slow.error)
    assert [m.to_dict() for m in fast.measurements] == [m.to_dict() for m in slow.measurements]
    assert fast.measurements[0].n == 20


def test_a_cap_reached_at_once_is_an_error(tmp_path: Path) -> None:
    path, _ = _synthetic(tmp_path, {"db": {**CHECK, "samples": 50, "max_seconds": 1e-9}})
    result = _by_name(path)["db"]
    assert result.status == "error"
    assert result.error.startswith("the wall-clock cap (max_seconds 1e-09) stopped the "
                                   "decision-boundary attack on the teacher (")
    assert " after 0 of the " in result.error
    assert result.error.endswith("; a result must cover the whole sample, so none is reported: "
                                 "raise max_seconds or lower samples")
