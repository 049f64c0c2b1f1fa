"""Benchmark: calibration + fairness checks (with intervals) against the numpy floor.

The harness runs, on cached predictions, the checks ``ece``, ``mce``, ``ace``, ``brier``,
``demographic_parity_difference``, ``equalized_odds_difference`` and ``worst_group_accuracy``
over two sensitive columns and their intersection, for both models, each with 1000-replicate
paired bootstrap intervals, the reliability data, per-group rows (accuracy, selection rate, TPR,
FPR with intervals, and ECE) and the temperature advice. The floor computes the same point
numbers (no intervals, no advice) with direct numpy calls. Both read the same in-memory
predictions: this measures the checks, not the models.

Rows: the real Arrests eval rows (with both fixture models' predictions), sampled with
replacement to N rows; probabilities get a tiny seeded jitter so confidences are continuous.

    python benchmarks/bench_calibration_fairness.py [--sizes 100000,1000000] [--repeat 3]
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

CHECKS = ("ece", "mce", "ace", "brier", "demographic_parity_difference",
          "equalized_odds_difference", "worst_group_accuracy")
BY = ["colour", "sex"]
BINS = 15
TARGET = 2.0


def base_inputs() -> Any:
    from audit import SuiteRun, load_suite
    from fixtures.build import build_all

    build_all()
    run = SuiteRun(load_suite(ROOT / "suites" / "arrests.audit.yaml"))
    return run.inputs


def sampled(base: Any, n: int, seed: int = 0) -> Any:
    from audit.checks.registry import MetricInput

    rng = np.random.default_rng(seed)
    idx = rng.integers(0, base.n, n)

    def jitter(P: np.ndarray) -> np.ndarray:
        Q = np.clip(P[idx] + rng.normal(scale=1e-4, size=(n, P.shape[1])), 1e-6, None)
        return Q / Q.sum(axis=1, keepdims=True)

    return MetricInput(y=base.y[idx], p_teacher=jitter(base.p_teacher), p_student=jitter(base.p_student),
                       classes=base.classes, pos=base.pos,
                       sensitive=base.sensitive.iloc[idx].reset_index(drop=True))


def harness(inputs: Any) -> tuple[dict[str, float], dict[str, float]]:
    from audit.checks.measure import Resampler, measure_all
    from audit.checks.registry import get_metric

    resampler = Resampler(inputs, 1000, 0)
    times, values = {}, {}
    for name in CHECKS:
        params = {"bins": BINS} if name in ("ece", "mce", "ace") else {}
        if get_metric(name).family == "fairness":
            params = {"by": BY, "min_group_size": 30}
        t0 = time.perf_counter()
        ms = measure_all(get_metric(name), params, inputs, resampler, 0.95)
        times[name] = time.perf_counter() - t0
        for m in ms:
            values[f"{name}{m.scope and ' ' + m.scope}/teacher"] = m.teacher.value
            values[f"{name}{m.scope and ' ' + m.scope}/student"] = m.student.value
    return times, values


def _ece_family(y: np.ndarray, P: np.ndarray) -> tuple[float, float, float]:
    conf = np.clip(P.max(axis=1), np.finfo(float).eps, 1 - np.finfo(float).eps)
    hit = P.argmax(axis=1) == y
    b = np.clip(np.searchsorted(np.linspace(0, 1, BINS + 1), conf, side="right") - 1, 0, BINS - 1)
    n_b = np.bincount(b, minlength=BINS)
    with np.errstate(invalid="ignore", divide="ignore"):
        gap = np.abs(np.bincount(b, weights=hit, minlength=BINS) / n_b
                     - np.bincount(b, weights=conf, minlength=BINS) / n_b)
    filled = n_b > 0
    return (float((n_b[filled] * gap[filled]).sum() / n_b.sum()), float(gap[filled].max()),
            float(gap[filled].mean()))


def floor(inputs: Any) -> tuple[float, dict[str, float]]:
    """The same point numbers with direct numpy calls."""
    t0 = time.perf_counter()
    y, pos, values = inputs.y, inputs.pos, {}
    onehot = np.eye(inputs.k)[y]
    for who, P in (("teacher", inputs.p_teacher), ("student", inputs.p_student)):
        ece, mce, ace = _ece_family(y, P)
        values[f"ece/{who}"], values[f"mce/{who}"], values[f"ace/{who}"] = ece, mce, ace
        values[f"brier/{who}"] = float(((P - onehot) ** 2).sum(axis=1).mean() / 2)
    sens = inputs.sensitive
    codes = {c: pd.factorize(sens[c], sort=True)[0] for c in BY}
    slicings = [(c, codes[c], int(codes[c].max()) + 1) for c in BY]
    n1 = int(codes[BY[1]].max()) + 1
    slicings.append((" x ".join(BY), codes[BY[0]] * n1 + codes[BY[1]],
                     (int(codes[BY[0]].max()) + 1) * n1))
    for name, g, G in slicings:
        n_g = np.bincount(g, minlength=G)
        keep = n_g >= 30
        for who, P in (("teacher", inputs.p_teacher), ("student", inputs.p_student)):
            pred = P.argmax(axis=1)
            right = np.bincount(g, weights=pred == y, minlength=G)
            sel = np.bincount(g, weights=pred == pos, minlength=G)
            tp = np.bincount(g, weights=(pred == pos) & (y == pos), minlength=G)
            positives = np.bincount(g, weights=y == pos, minlength=G)
            with np.errstate(invalid="ignore", divide="ignore"):
                acc, rate = right / n_g, sel / n_g
                tpr, fpr = tp / positives, (sel - tp) / (n_g - positives)
            for grp in range(G):  # per-group ECE, as the group rows report it
                if n_g[grp]:
                    mask = g == grp
                    _ece_family(y[mask], P[mask])
            values[f"demographic_parity_difference by {name}/{who}"] = float(
                rate[keep].max() - rate[keep].min())
            values[f"equalized_odds_difference by {name}/{who}"] = float(max(
                tpr[keep].max() - tpr[keep].min(), fpr[keep].max() - fpr[keep].min()))
            values[f"worst_group_accuracy by {name}/{who}"] = float(acc[keep].min())
    return time.perf_counter() - t0, values


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="100000,1000000")
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    sizes = [int(s) for s in args.sizes.split(",")]
    import sklearn

    print("distill-audit benchmark: calibration + fairness checks vs the numpy floor")
    print(f"machine: cores={os.cpu_count()}, python={platform.python_version()}, "
          f"numpy={np.__version__}, pandas={pd.__version__}, scikit-learn={sklearn.__version__}")
    print(f"checks: {', '.join(CHECKS)}; by {', '.join(BY)} and their intersection; "
          f"1000 paired replicates; {BINS} bins")
    base = base_inputs()
    harness(sampled(base, 5_000))  # warm-up: imports (netcal pulls torch) are not per-check costs
    rows = []
    for n in sizes:
        inputs = sampled(base, n)
        floors, firsts, parts = [], [], []
        for _ in range(args.repeat):
            f, fvals = floor(inputs)
            times, hvals = harness(inputs)
            floors.append(f)
            firsts.append(sum(times.values()))
            parts.append(times)
            for key, v in fvals.items():
                assert abs(hvals[key] - v) < 1e-9, (key, hvals[key], v)
        rows.append((n, statistics.median(floors), statistics.median(firsts),
                     {k: statistics.median(p[k] for p in parts) for k in CHECKS}))
        print(f"  {n:,} rows: floor {rows[-1][1]:.3f} s, harness {rows[-1][2]:.3f} s "
              "(point values equal the floor's to 1e-9)")
    print()
    print(f"{'rows':>10} | {'floor s':>8} | {'harness s':>9} | {'ratio':>6} | " +
          " | ".join(f"{c[:12]:>12}" for c in CHECKS))
    print("-" * (46 + 15 * len(CHECKS)))
    missed = []
    for n, f, h, part in rows:
        print(f"{n:>10,} | {f:>8.3f} | {h:>9.3f} | {h / f:>5.2f}x | " +
              " | ".join(f"{part[c]:>12.3f}" for c in CHECKS))
        if h / f > TARGET:
            missed.append(f"{h / f:.2f}x > {TARGET}x at {n:,} rows")
    print()
    print("targets: " + ("all met" if not missed else "MISSED -- " + "; ".join(missed)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
