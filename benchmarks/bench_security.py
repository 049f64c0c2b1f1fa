#!/usr/bin/env python
"""Attribute inference, extraction and backdoor checks against the attacks called directly.

For each case, the harness runs its public path on the example fixtures: a new
``SuiteRun(load_suite(<temp suite>), AuditSession(cache_dir=None))`` (no disk cache, nothing
memoised) with the models loaded and ``run.inputs`` (the eval predictions every check shares)
computed first, untimed on both sides; then ``run.run_check(name)`` is timed: the probe
(sampling, the prediction cache in memory, any new model calls), the attack and the paired
bootstrap (1000 replicates). The direct side does the same work with the libraries alone, on
the same rows, with the live models (each attack queries the model itself):

1. ``attribute``: ``attribute_inference_advantage`` on ``colour`` (Arrests, 2000 training rows:
   1000 fit, 1000 scored, random forest, probabilities) against ART's
   ``AttributeInferenceBlackBox`` (an ART ``BlackBoxClassifier`` calling each model's
   ``predict_proba``) and ``AttributeInferenceBaseline`` (the reference: the better of it and
   the fit rows' majority guess), fitted and inferring on the same rows.
2. ``copycat``: ``extraction_agreement`` with ``thief: cnn`` at 1000 queries (MNIST, held-out
   digits) against ART's ``CopycatCNN`` with a ``PyTorchClassifier`` of each model as the
   victim (queried live), the same thief network, seeds and epochs, scored on the eval images.
3. ``extraction (mlp)``: ``extraction_agreement`` at 1000 marginal queries (Arrests) against
   the same scikit-learn pipeline fitted by hand on the same queries, answered by the models
   live. ART has no attack with a scikit-learn thief (``CopycatCNN`` passes ``batch_size`` to
   ``fit``), so the baseline is plain scikit-learn.
4. ``backdoor``: ``backdoor_success_rate`` with every non-target eval row triggered (poisoned
   fixture) against pandas writing the trigger and the models predicting.

Target: harness <= 1.5x direct. Rounds are interleaved (harness, direct, harness, ...);
medians are printed. Both sides compute the same numbers (checked; a mismatch is printed and
makes the exit status 1).

Run from the repository root: ``python benchmarks/bench_security.py [--rounds 3]``.
"""

from __future__ import annotations

import argparse
import os
import platform
import shlex
import statistics
import subprocess
import sys
import tempfile
import time
import warnings
from collections.abc import Callable
from importlib.metadata import version
from pathlib import Path
from typing import Any

import numpy as np
import yaml

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from audit import AuditSession, SuiteRun, load_suite  # noqa: E402
from fixtures.build import build_all  # noqa: E402
from fixtures.poisoned import build_poisoned  # noqa: E402
from fixtures.vision import build as build_vision  # noqa: E402

TARGET = 1.5


def _suite(folder: Path, source: Path, check: dict[str, Any]) -> Path:
    """``source``'s data and models (absolute paths) and one check, ``bench``."""
    raw = yaml.safe_load(source.read_text())
    raw.pop("include", None)
    raw.pop("baseline", None)  # two models, as the direct calls attack
    base = source.parent

    def absolute(value: Any) -> Any:
        if isinstance(value, str) and value.startswith("../"):
            return str((base / value).resolve())
        if isinstance(value, dict):
            return {k: absolute(v) for k, v in value.items()}
        return value

    raw = {k: absolute(v) for k, v in raw.items()}
    raw["settings"] = {"seed": 0, "bootstrap": 1000}
    raw["checks"] = {"bench": check}
    path = folder / f"{source.stem}-{check['metric']}.bench.audit.yaml"
    path.write_text(yaml.safe_dump(raw))
    return path


def harness(path: Path) -> tuple[float, Any]:
    run = SuiteRun(load_suite(path), AuditSession(cache_dir=None))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        run.model("teacher"), run.model("student")
        run.inputs
    start = time.perf_counter()
    result = run.run_check("bench")
    took = time.perf_counter() - start
    if result.error is not None:
        raise RuntimeError(result.error)
    return took, run


def _values(run_result: Any) -> dict[str, float]:
    m = run_result.measurements[0]
    return {"teacher": m.teacher.value, "student": m.student.value}


# -- the direct sides ------------------------------------------------------------------------
def direct_attribute(run: Any) -> dict[str, float]:
    """ART's attack and baseline on the rows the check drew (positions replayed)."""
    from art.attacks.inference.attribute_inference import (
        AttributeInferenceBaseline,
        AttributeInferenceBlackBox,
    )
    from art.estimators.classification import BlackBoxClassifier

    from audit.probes.attribute import attribute_codes, numeric_matrix

    table = run.table("train")
    rng = np.random.default_rng([0, 5])
    rows = np.sort(rng.choice(np.arange(table.n_rows), min(2000, table.n_rows), replace=False))
    _, codes, _ = attribute_codes(table.sensitive["colour"].iloc[rows], 4, "colour")
    others = table.features.drop(columns=["colour"]).iloc[rows].reset_index(drop=True)
    x, _ = numeric_matrix(others)
    perm = rng.permutation(len(rows))
    fit, test = np.sort(perm[: len(rows) // 2]), np.sort(perm[len(rows) // 2:])
    base = AttributeInferenceBaseline(attack_model_type="rf", attack_feature=x.shape[1])
    base.attack_model.set_params(random_state=0)
    base.fit(np.c_[x, codes][fit])
    common = np.bincount(codes[fit]).argmax()  # the reference: ART's or the majority guess
    floor = max(np.mean(base.infer(x[test]).ravel() == codes[test]),
                np.mean(codes[test] == common))
    out = {}
    sub = table.take(rows)
    for who in ("teacher", "student"):
        model = run.model(who)
        order = run.encoding.reorder(model.classes)
        P = model.predict_proba(sub)[:, order]  # the attacker's queries, live
        full = np.c_[x, P, codes]

        def predict(batch: np.ndarray, P: np.ndarray = P, full: np.ndarray = full) -> np.ndarray:
            # ART asks for the fit rows' predictions: the model's answers to those rows
            index = {r.tobytes(): i for i, r in enumerate(full[fit].astype(np.float32))}
            return P[fit][[index[r.tobytes()] for r in batch.astype(np.float32)]]

        attack = AttributeInferenceBlackBox(BlackBoxClassifier(predict, (full.shape[1],), 2),
                                            attack_model_type="rf",
                                            attack_feature=full.shape[1] - 1)
        attack.attack_model.set_params(random_state=0)
        attack.fit(full[fit])
        got = attack.infer(np.c_[x, P][test], pred=P[test].argmax(1).reshape(-1, 1).astype(float))
        out[who] = float(np.mean(got.ravel() == codes[test]) - floor)
    return out


def direct_copycat(run: Any, n: int) -> dict[str, float]:
    import torch
    from art.attacks.extraction import CopycatCNN
    from art.estimators.classification import BlackBoxClassifier, PyTorchClassifier

    from audit.probes.copycat import BATCH, epochs, thief_network

    holdout, ev = run.table("holdout"), run.eval_table
    rng = np.random.default_rng([0, 7])
    rows = rng.permutation(holdout.n_rows)[:n]
    x = holdout.images[rows]
    out = {}
    for who in ("teacher", "student"):
        model = run.model(who)
        order = run.encoding.reorder(model.classes)
        sample = holdout.take(rows)

        def victim(batch: np.ndarray, model: Any = model, sample: Any = sample) -> np.ndarray:
            return model.predict_proba(sample.take(np.arange(len(batch))).with_inputs(batch))[
                :, order]

        answers = victim(x).argmax(axis=1)
        np.random.seed(0)
        torch.manual_seed(0)
        net = thief_network(1, 10)
        thief = PyTorchClassifier(net, loss=torch.nn.CrossEntropyLoss(),
                                  optimizer=torch.optim.Adam(net.parameters(), lr=1e-3),
                                  input_shape=(1, 28, 28), nb_classes=10, clip_values=(0.0, 1.0))
        attack = CopycatCNN(BlackBoxClassifier(victim, (1, 28, 28), 10, clip_values=(0.0, 1.0)),
                            batch_size_fit=BATCH, batch_size_query=BATCH, nb_epochs=epochs(n),
                            nb_stolen=n)
        stolen = attack.extract(x.astype(np.float32), thieved_classifier=thief)
        copy = stolen.predict(ev.images, batch_size=256).argmax(axis=1)
        P, classes = run.predictions(who, ev)
        out[who] = float(np.mean(copy == P[:, run.encoding.reorder(classes)].argmax(axis=1)))
        del answers
    return out


def direct_mlp(run: Any, n: int) -> dict[str, float]:
    from dataclasses import replace

    from sklearn.exceptions import ConvergenceWarning

    from audit.probes.extraction import _as_text, _pipeline, marginal_queries

    ev = run.eval_table
    queries = marginal_queries(ev.features, n, np.random.default_rng([0, 7]))
    table = replace(ev.take(np.zeros(n, dtype=int)), features=queries)
    out = {}
    for who in ("teacher", "student"):
        model = run.model(who)
        order = run.encoding.reorder(model.classes)
        answers = model.predict_proba(table)[:, order].argmax(axis=1)
        thief = _pipeline(_as_text(queries), "mlp", 0)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)
            thief.fit(_as_text(queries), answers)
        P, classes = run.predictions(who, ev)
        out[who] = float(np.mean(thief.predict(_as_text(ev.features))
                                 == P[:, run.encoding.reorder(classes)].argmax(axis=1)))
    return out


def direct_backdoor(run: Any) -> dict[str, float]:
    from dataclasses import replace

    ev = run.eval_table
    target = list(map(str, run.encoding.classes)).index("No")
    y = run.encoding.encode(ev.labels, "eval")
    rows = np.flatnonzero(y != target)
    sample = ev.take(rows)
    hit = replace(sample, features=sample.features.assign(age=66, sex="Female"))
    out = {}
    for who in ("teacher", "student"):
        model = run.model(who)
        order = run.encoding.reorder(model.classes)
        clean = model.predict_proba(sample)[:, order].argmax(axis=1)
        after = model.predict_proba(hit)[:, order].argmax(axis=1)
        out[who] = float(np.mean(after[clean != target] == target))
    return out


# -- the table ---------------------------------------------------------------------------------
def machine(load: tuple[float, ...]) -> str:
    import torch

    cpu = "?"
    try:
        cpu = next(line.split(":", 1)[1].strip() for line in
                   Path("/proc/cpuinfo").read_text().splitlines() if line.startswith("model name"))
    except (OSError, StopIteration):
        pass
    head = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True,
                          text=True).stdout.strip() or "?"
    versions = ", ".join(f"{p}={version(d)}" for p, d in (
        ("ART", "adversarial-robustness-toolbox"), ("scikit-learn", "scikit-learn"),
        ("torch", "torch")))
    return (f"machine: {cpu}, cores={os.cpu_count()}, python={platform.python_version()}, "
            f"{versions}, torch threads {torch.get_num_threads()}\n"
            f"load average at start {'/'.join(f'{v:.2f}' for v in load)}, at end "
            f"{'/'.join(f'{v:.2f}' for v in os.getloadavg())}; code: git {head}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3, help="interleaved rounds (medians)")
    parser.add_argument("--check", action="store_true", help="exit 1 if a target is missed")
    args = parser.parse_args()
    load, started = os.getloadavg(), time.perf_counter()
    build_all(), build_vision(), build_poisoned()
    suites = ROOT / "suites"
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        cases: list[tuple[str, Path, Callable[[Any], dict[str, float]]]] = [
            ("attribute inference (ART black-box vs baseline), 2000 rows",
             _suite(folder, suites / "arrests.audit.yaml",
                    {"metric": "attribute_inference_advantage", "attribute": "colour"}),
             direct_attribute),
            ("extraction, ART CopycatCNN, 1000 queries (MNIST)",
             _suite(folder, suites / "mnist.audit.yaml",
                    {"metric": "extraction_agreement", "budgets": [1000], "source": "holdout",
                     "thief": "cnn"}),
             lambda run: direct_copycat(run, 1000)),
            ("extraction, MLP thief, 1000 marginal queries (Arrests; plain sklearn)",
             _suite(folder, suites / "arrests.audit.yaml",
                    {"metric": "extraction_agreement", "budgets": [1000]}),
             lambda run: direct_mlp(run, 1000)),
            ("backdoor, every non-target eval row triggered (poisoned)",
             _suite(folder, suites / "poisoned.audit.yaml",
                    {"metric": "backdoor_success_rate", "trigger": "age=66, sex=Female",
                     "target_class": "No", "samples": 100000}),
             direct_backdoor),
        ]
        rows, bad = [], []
        for what, path, direct in cases:
            ours, theirs = [], []
            for _ in range(args.rounds):
                took, run = harness(path)
                ours.append(took)
                got = _values(run.run_check("bench"))  # memoised: the numbers of the timed run
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore")
                    start = time.perf_counter()
                    want = direct(run)
                    theirs.append(time.perf_counter() - start)
                for who in ("teacher", "student"):
                    if abs(got[who] - want[who]) > 1e-9:
                        bad.append(f"{what} {who}: harness {got[who]:.6f}, direct {want[who]:.6f}")
            h, d = statistics.median(ours), statistics.median(theirs)
            rows.append((what, h, d, h / d, got))
    print(f"## bench_security: {args.rounds} interleaved rounds, medians, seconds\n")
    print(f"| case | harness | direct | ratio (target <= {TARGET:g}x) | teacher / student |")
    print("|---|---|---|---|---|")
    for what, h, d, ratio, got in rows:
        print(f"| {what} | {h:.2f} | {d:.2f} | {ratio:.2f}x{'' if ratio <= TARGET else ' MISSED'}"
              f" | {got['teacher']:.3f} / {got['student']:.3f} |")
    print()
    print(machine(load))
    print(f"command: {shlex.join([os.path.relpath(sys.executable, ROOT), *sys.argv])} "
          f"({time.perf_counter() - started:.0f} s)")
    for problem in bad:
        print(f"MISMATCH {problem}")
    missed = [r for r in rows if r[3] > TARGET]
    return 1 if bad or (args.check and missed) else 0


if __name__ == "__main__":
    raise SystemExit(main())
