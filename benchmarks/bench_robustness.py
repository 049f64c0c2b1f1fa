#!/usr/bin/env python
"""Seconds per 100 attacked rows, per attack and model type, against ART called directly.

Models (digits fixture, 64 pixel columns): the TorchScript teacher (torch), a bare scikit-learn
LogisticRegression and a linear SVM (``CalibratedClassifierCV(StandardScaler + LinearSVC)``)
fitted here (pickled; both white-box through their exact torch rebuilds), and the ONNX student
(black box). For each
attack (noise, FGSM, PGD, HopSkipJump) the harness runs ``robust_accuracy`` with one eps on a
suite whose teacher and student are the same model (so each model is attacked twice; the time
is halved), after the clean predictions are cached. The direct run calls ART (or numpy, for
noise) on the same scaled rows with the same settings, predicting with the model itself, and
does the same work as the harness: it draws the rows and scales them into ART's clip values
(0, 1), predicts them clean, attacks the ones the model gets
right (HopSkipJump one row at a time, from ART's own random start, its result projected onto
the eps ball) and predicts the adversarial rows, which is how the attack's success is measured.
HopSkipJump uses fewer rows (its cost is per row); every time is scaled to 100 rows. The
attacks that take milliseconds (noise, FGSM, PGD) are timed as the best of ``--repeat`` runs on
both sides, so one scheduling hiccup does not decide the ratio.

Usage (from the repository root)::

    .venv/bin/python benchmarks/bench_robustness.py            # 100 rows (20 for HopSkipJump)
    .venv/bin/python benchmarks/bench_robustness.py --rows 200 --hsj-rows 40
"""

from __future__ import annotations

import argparse
import pickle
import sys
import tempfile
import time
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from audit import SuiteRun  # noqa: E402
from audit.probes import attacks as rb  # noqa: E402
from audit.suite import suite_from_dict  # noqa: E402
from fixtures.build import build_all  # noqa: E402

EPS = 0.1


def _models(paths: dict[str, Path], folder: Path) -> dict[str, Any]:
    from sklearn.calibration import CalibratedClassifierCV
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler
    from sklearn.svm import LinearSVC

    train = pd.read_csv(paths["digits/eval.csv"].parent / "train.csv")
    lr = LogisticRegression(C=0.01, max_iter=5000).fit(train.drop(columns="digit"), train["digit"])
    (folder / "lr.pkl").write_bytes(pickle.dumps(lr))
    svm = CalibratedClassifierCV(make_pipeline(StandardScaler(), LinearSVC(C=0.01)))
    svm.fit(train.drop(columns="digit"), train["digit"])
    (folder / "svm.pkl").write_bytes(pickle.dumps(svm))
    return {"torch": {"torch": str(paths["digits/teacher.pt"]), "classes": list(range(10))},
            "sklearn LR": {"pickle": str(folder / "lr.pkl"), "trust": True},
            "sklearn SVM": {"pickle": str(folder / "svm.pkl"), "trust": True},
            "ONNX black-box": str(paths["digits/student.onnx"])}


def _harness(paths: dict[str, Path], model: Any, attack: str, rows: int) -> float:
    raw = {"version": 1, "name": "bench", "data": {"eval": str(paths["digits/eval.csv"]),
                                                  "target": "digit"},
           "teacher": model, "student": model,
           "checks": {"r": {"metric": "robust_accuracy", "attack": attack, "eps": [EPS],
                            "samples": rows, "max_seconds": 600}}}
    run = SuiteRun(suite_from_dict(raw, base_dir=paths["digits/eval.csv"].parent))
    run.inputs  # clean predictions of the eval table and model loads are not part of the
    run.model("teacher"), run.model("student")  # attack's cost (nor of the direct run's)
    start = time.perf_counter()
    result = run.run_check("r")
    assert result.status == "info", result.error
    return (time.perf_counter() - start) / 2


def _direct(paths: dict[str, Path], model: Any, attack: str, rows: int) -> float:
    """ART (or numpy) on the same scaled rows, predicting with the loaded model directly."""
    from art.attacks.evasion import FastGradientMethod, HopSkipJump, ProjectedGradientDescent
    from art.estimators.classification import BlackBoxClassifier

    raw = {"version": 1, "name": "bench", "data": {"eval": str(paths["digits/eval.csv"]),
                                                  "target": "digit"},
           "teacher": model, "student": model,
           "checks": {"a": {"metric": "accuracy"}}}
    run = SuiteRun(suite_from_dict(raw, base_dir=paths["digits/eval.csv"].parent))
    run.inputs
    loaded = run.model("teacher")
    columns = [str(c) for c in run.eval_table.features.columns]
    order = run.encoding.reorder(loaded.classes)
    start = time.perf_counter()
    # ART needs the rows drawn and scaled into its clip values, (0, 1) here: the same space
    space = rb.attack_space(run.eval_table, rows, 0)
    x0 = space.scaled()
    y = np.asarray(run.inputs.y)[space.rows]

    def predict(x: np.ndarray, rows: np.ndarray | None = None) -> np.ndarray:
        return np.asarray(loaded.predict(_table(run, space.frame_with(x, rows))))[:, order]

    # the same work as the harness: the clean predictions of the rows (robust accuracy counts
    # only rows that are right clean, and only those are attacked), the attack, and the
    # predictions on the adversarial rows (which decide the result)
    correct = np.flatnonzero(predict(x0).argmax(axis=1) == y)
    x = x0.copy()
    if attack == "noise":
        noise = np.random.default_rng(0).uniform(-EPS, EPS, x0.shape)
        x[correct] = np.clip(x0[correct] + noise[correct], 0, 1)
    elif attack in ("fgsm", "pgd"):
        clf = rb.art_torch(rb.gradient_module(loaded, space, columns), x0.shape[1], 10)
        art = (ProjectedGradientDescent(clf, eps=EPS, eps_step=EPS / 8, max_iter=20,
                                        batch_size=len(correct), verbose=False) if attack == "pgd"
               else FastGradientMethod(clf, eps=EPS, batch_size=len(correct)))
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", "X does not have valid feature names", UserWarning)
            x[correct] = art.generate(x0[correct].astype(np.float32), y=order[y[correct]])
    else:
        for i in correct:
            def predict_fn(q: np.ndarray, i: int = int(i)) -> np.ndarray:
                return predict(np.asarray(q, np.float64), np.full(len(q), i))
            clf = BlackBoxClassifier(predict_fn, input_shape=(x0.shape[1],), nb_classes=10,
                                     clip_values=(0.0, 1.0))
            adv = HopSkipJump(clf, norm="inf", init_size=rb.HSJ_INIT_SIZE, verbose=False,
                              **rb.HSJ).generate(x0[i:i + 1].astype(np.float32))[0]
            x[i] = rb.project(x0[i:i + 1], adv[None].astype(np.float64), EPS, "inf")[0]
    predict(x).argmax(axis=1)
    return time.perf_counter() - start


def _table(run: SuiteRun, frame: pd.DataFrame) -> Any:
    import dataclasses

    t = run.eval_table
    return dataclasses.replace(t, features=frame, labels=t.labels.iloc[:len(frame)])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=100)
    parser.add_argument("--hsj-rows", type=int, default=20)
    parser.add_argument("--repeat", type=int, default=5,
                        help="best of this many runs for the millisecond attacks (not HSJ)")
    args = parser.parse_args()
    paths = build_all()
    with tempfile.TemporaryDirectory() as tmp:
        models = _models(paths, Path(tmp))
        print(f"seconds per 100 attacked rows (digits, eps {EPS}, inf-norm); harness / direct ART")
        print(f"{'model':<16} {'attack':<12} {'harness s':>10} {'direct s':>10} {'overhead':>9}")
        for name, model in models.items():
            for attack in ("noise", "fgsm", "pgd", "hopskipjump"):
                if attack in ("fgsm", "pgd") and name == "ONNX black-box":
                    print(f"{name:<16} {attack:<12} {'n/a (no gradients)':>31}")
                    continue
                rows = args.hsj_rows if attack == "hopskipjump" else args.rows
                repeat = 1 if attack == "hopskipjump" else args.repeat
                h = min(_harness(paths, model, attack, rows) for _ in range(repeat)) * 100 / rows
                d = min(_direct(paths, model, attack, rows) for _ in range(repeat)) * 100 / rows
                print(f"{name:<16} {attack:<12} {h:>10.3f} {d:>10.3f} {h / d:>8.2f}x")


if __name__ == "__main__":
    main()
