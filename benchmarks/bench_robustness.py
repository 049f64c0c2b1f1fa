#!/usr/bin/env python
"""Seconds per 100 attacked rows, per attack and model type, against ART called directly.

Models (digits fixture, 64 pixel columns): the TorchScript teacher (torch), a bare scikit-learn
LogisticRegression fitted here (sklearn LR, pickled), and the ONNX student (black box). For each
attack (noise, FGSM, PGD, HopSkipJump) the harness runs ``robust_accuracy`` with one eps on a
suite whose teacher and student are the same model (so each model is attacked twice; the time
is halved), after the clean predictions are cached. The direct run calls ART (or numpy, for
noise) on the same scaled rows with the same settings, predicting with the model itself.
HopSkipJump uses fewer rows (its cost is per row); every time is scaled to 100 rows.

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
from audit.checks import robustness as rb  # noqa: E402
from audit.suite import suite_from_dict  # noqa: E402
from fixtures.build import build_all  # noqa: E402

EPS = 0.1


def _models(paths: dict[str, Path], folder: Path) -> dict[str, Any]:
    from sklearn.linear_model import LogisticRegression

    train = pd.read_csv(paths["digits/eval.csv"].parent / "train.csv")
    lr = LogisticRegression(C=0.01, max_iter=5000).fit(train.drop(columns="digit"), train["digit"])
    (folder / "lr.pkl").write_bytes(pickle.dumps(lr))
    return {"torch": {"torch": str(paths["digits/teacher.pt"]), "classes": list(range(10))},
            "sklearn LR": {"pickle": str(folder / "lr.pkl"), "trust": True},
            "ONNX black-box": str(paths["digits/student.onnx"])}


def _harness(paths: dict[str, Path], model: Any, attack: str, rows: int) -> float:
    raw = {"version": 1, "name": "bench", "data": {"eval": str(paths["digits/eval.csv"]),
                                                  "target": "digit"},
           "teacher": model, "student": model,
           "checks": {"r": {"metric": "robust_accuracy", "attack": attack, "eps": [EPS],
                            "samples": rows, "max_seconds": 600}}}
    run = SuiteRun(suite_from_dict(raw, base_dir=paths["digits/eval.csv"].parent))
    run.inputs  # clean predictions and model loads are not part of the attack's cost
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
    space = rb.attack_space(run.eval_table, rows, 0)
    x0 = space.scaled()
    y = np.asarray(run.inputs.y)[space.rows]
    columns = [str(c) for c in run.eval_table.features.columns]
    start = time.perf_counter()
    if attack == "noise":
        x = np.clip(x0 + np.random.default_rng(0).uniform(-EPS, EPS, x0.shape), 0, 1)
        loaded.predict(_table(run, space.frame_with(x)))
    elif attack in ("fgsm", "pgd"):
        clf = rb._art_torch(rb.gradient_module(loaded, space, columns), x0.shape[1], 10)
        art = (ProjectedGradientDescent(clf, eps=EPS, eps_step=EPS / 8, max_iter=20,
                                        batch_size=len(x0), verbose=False) if attack == "pgd"
               else FastGradientMethod(clf, eps=EPS, batch_size=len(x0)))
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", "X does not have valid feature names", UserWarning)
            x = art.generate(x0.astype(np.float32), y=y)
        loaded.predict(_table(run, space.frame_with(x)))
    else:
        def predict_fn(x: np.ndarray) -> np.ndarray:
            return loaded.predict(_table(run, space.frame_with(np.asarray(x, np.float64),
                                                               np.zeros(len(x), int))))
        for i in range(len(x0)):
            clf = BlackBoxClassifier(predict_fn, input_shape=(x0.shape[1],), nb_classes=10,
                                     clip_values=(0.0, 1.0))
            HopSkipJump(clf, norm="inf", init_size=rb.HSJ_INIT_SIZE, verbose=False,
                        **rb.HSJ).generate(x0[i:i + 1].astype(np.float32))
    return time.perf_counter() - start


def _table(run: SuiteRun, frame: pd.DataFrame) -> Any:
    import dataclasses

    t = run.eval_table
    return dataclasses.replace(t, features=frame, labels=t.labels.iloc[:len(frame)])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=100)
    parser.add_argument("--hsj-rows", type=int, default=20)
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
                h = _harness(paths, model, attack, rows) * 100 / rows
                d = _direct(paths, model, attack, rows) * 100 / rows
                print(f"{name:<16} {attack:<12} {h:>10.3f} {d:>10.3f} {h / d:>8.2f}x")


if __name__ == "__main__":
    main()
