#!/usr/bin/env python
"""Seconds per 100 scored rows for each membership-inference attack and model type, against
ART (or scikit-learn) called directly.

Models (digits fixture, 64 pixel columns): the TorchScript teacher (torch), a scikit-learn
LogisticRegression fitted here (sklearn LR, pickled) and the ONNX student (black box). Members
are training rows, non-members eval rows. The harness runs ``mia_auc`` on a suite whose
teacher and student are the same model (each model is attacked once; the time is halved),
after both tables' predictions are cached. The direct side does the same work for one model:

* ``loss_threshold``: the true-label probability of the sampled rows (from the same cached
  predictions) and scikit-learn's ``roc_auc_score``;
* ``blackbox``: ART's ``MembershipInferenceBlackBox`` (random forest) fitted on half the rows
  from the predictions, scoring the other half, and ``roc_auc_score``;
* ``decision_boundary``: ART's ``LabelOnlyDecisionBoundary.infer`` on the same rows, drawn and
  scaled into (0, 1), with the same HopSkipJump budget, through ART's ``BlackBoxClassifier``
  around the loaded model, and ``roc_auc_score`` on its scores.

The harness also computes the paired bootstrap interval, the ROC points and TPR at low FPR,
which the direct side does not; for ``loss_threshold`` (whose attack is a lookup) a second row
times the direct side with the interval done by hand, as a user would: a stratified bootstrap
of scikit-learn's ``roc_auc_score``, 1000 replicates. ``decision_boundary`` uses fewer rows
(its cost is per row).

Usage (from the repository root)::

    .venv/bin/python benchmarks/bench_privacy.py               # 500 rows (20 for the boundary)
    .venv/bin/python benchmarks/bench_privacy.py --rows 300 --boundary-rows 40
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_robustness import _models, _table  # noqa: E402

from audit import SuiteRun  # noqa: E402
from audit.checks.privacy import _side  # noqa: E402
from audit.probes import attacks as rb  # noqa: E402
from audit.suite import suite_from_dict  # noqa: E402
from fixtures.build import build_all  # noqa: E402

ATTACKS = ("loss_threshold", "blackbox", "decision_boundary")
N_BOOT = 1000  # the harness's default bootstrap replicates


def _run(paths: dict[str, Path], model: Any, attack: str, rows: int) -> SuiteRun:
    raw = {"version": 1, "name": "bench",
           "data": {"eval": str(paths["digits/eval.csv"]),
                    "train": str(paths["digits/eval.csv"].parent / "train.csv"),
                    "target": "digit"},
           "teacher": model, "student": model,
           "checks": {"m": {"metric": "mia_auc", "attack": attack, "samples": rows,
                            "max_seconds": 3600}}}
    run = SuiteRun(suite_from_dict(raw, base_dir=paths["digits/eval.csv"].parent))
    run.inputs  # model loads and the predictions of both tables are not the attack's cost
    for who in ("teacher", "student"):
        run.predictions(who, run.train_table())
    return run


def _harness(paths: dict[str, Path], model: Any, attack: str, rows: int) -> float:
    run = _run(paths, model, attack, rows)
    start = time.perf_counter()
    result = run.run_check("m")
    assert result.status == "info", result.error
    return (time.perf_counter() - start) / 2


def _direct(paths: dict[str, Path], model: Any, attack: str, rows: int,
            interval: bool = False) -> float:
    from sklearn.metrics import roc_auc_score

    run = _run(paths, model, attack, rows)
    loaded = run.model("teacher")
    order = run.encoding.reorder(loaded.classes)
    start = time.perf_counter()
    rng = np.random.default_rng(0)
    rows_in, y_in, P_in = _side(run, "train", rows, rng)
    rows_out, y_out, P_out = _side(run, "eval", rows, rng)
    labels = np.r_[np.ones(rows), np.zeros(rows)]
    if attack == "loss_threshold":
        P = np.vstack([P_in["teacher"], P_out["teacher"]])
        y = np.r_[y_in, y_out]
        scores = P[np.arange(len(y)), y]
        roc_auc_score(labels, scores)
        if interval:  # the interval by hand: a stratified bootstrap of scikit-learn's AUC
            boot = np.random.default_rng(1)
            for _ in range(N_BOOT):
                idx = np.r_[boot.integers(0, rows, rows), rows + boot.integers(0, rows, rows)]
                roc_auc_score(labels[idx], scores[idx])
    elif attack == "blackbox":
        from art.attacks.inference.membership_inference import MembershipInferenceBlackBox
        from art.estimators.classification import BlackBoxClassifier

        half = rows // 2
        clf = BlackBoxClassifier(lambda x: x, input_shape=(1,), nb_classes=10)
        mia = MembershipInferenceBlackBox(clf, input_type="prediction", attack_model_type="rf")
        mia.fit(y=y_in[:half], pred=P_in["teacher"][:half], test_y=y_out[:half],
                test_pred=P_out["teacher"][:half])
        scores = mia.infer(None, np.r_[y_in[half:], y_out[half:]],
                           pred=np.vstack([P_in["teacher"][half:], P_out["teacher"][half:]]),
                           probabilities=True)
        roc_auc_score(np.r_[np.ones(rows - half), np.zeros(rows - half)], np.ravel(scores))
    else:
        import dataclasses

        import pandas as pd
        from art.attacks.inference.membership_inference import LabelOnlyDecisionBoundary
        from art.estimators.classification import BlackBoxClassifier

        t_in, t_out = run.train_table(), run.eval_table
        table = dataclasses.replace(
            t_in, features=pd.concat([t_in.features.iloc[rows_in],
                                      t_out.features.iloc[rows_out]], ignore_index=True),
            labels=pd.concat([t_in.labels.iloc[rows_in], t_out.labels.iloc[rows_out]],
                             ignore_index=True))
        space = rb.attack_space(table, 2 * rows, 0)
        x01 = space.scaled()

        def predict(x: np.ndarray) -> np.ndarray:
            frame = space.frame_with(np.asarray(x, np.float64), np.zeros(len(x), int))
            return np.asarray(loaded.predict(_table(run, frame)))[:, order]

        clf = BlackBoxClassifier(predict, input_shape=(x01.shape[1],), nb_classes=10,
                                 clip_values=(0.0, 1.0))
        scores = LabelOnlyDecisionBoundary(clf, distance_threshold_tau=1e-9).infer(
            x01.astype(np.float32), np.r_[y_in, y_out], probabilities=True, norm=2,
            init_size=rb.HSJ_INIT_SIZE, verbose=False, **rb.HSJ)[:, 1]
        roc_auc_score(labels, scores)
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=500, help="members and non-members each")
    parser.add_argument("--boundary-rows", type=int, default=20)
    parser.add_argument("--repeat", type=int, default=5,
                        help="best of this many runs for the cheap attacks (not the boundary)")
    parser.add_argument("--attacks", nargs="+", default=list(ATTACKS), choices=ATTACKS)
    args = parser.parse_args()
    paths = build_all()
    with tempfile.TemporaryDirectory() as tmp:
        models = _models(paths, Path(tmp))
        print("seconds per 100 scored rows (members + non-members; digits); harness / direct")
        print(f"{'model':<16} {'attack':<18} {'harness s':>10} {'direct s':>10} {'overhead':>9}")
        for name, model in models.items():
            for attack in args.attacks:
                rows = args.boundary_rows if attack == "decision_boundary" else args.rows
                repeat = 1 if attack == "decision_boundary" else args.repeat
                per = 100 / (2 * rows)
                h = min(_harness(paths, model, attack, rows) for _ in range(repeat)) * per
                d = min(_direct(paths, model, attack, rows) for _ in range(repeat)) * per
                print(f"{name:<16} {attack:<18} {h:>10.4f} {d:>10.4f} {h / d:>8.2f}x")
                if attack == "loss_threshold":  # the harness's time is mostly its interval
                    d = _direct(paths, model, attack, rows, interval=True) * per
                    print(f"{name:<16} {'  direct + CI':<18} {h:>10.4f} {d:>10.4f} "
                          f"{h / d:>8.2f}x")


if __name__ == "__main__":
    main()
