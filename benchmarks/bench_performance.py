#!/usr/bin/env python
"""Time the performance + fidelity checks (with intervals) against the bare floor.

For each eval-table size (10k, 100k and 1M rows by default), in one process:

* **floor** -- what a script without distill-audit would do at the least: read the CSV with
  pandas, load both models (skops, onnxruntime), one ``predict_proba`` per model, then direct
  scikit-learn / numpy calls for every metric of ``suites/arrests.audit.yaml``. No intervals.
* **harness first run** -- ``SuiteRun(load_suite(path), AuditSession(cache_dir=<empty>)).run_all()``
  on a suite with the same checks and gates: reads and hashes the CSV, loads both models,
  predicts once per model (and writes the prediction cache), draws 1000 bootstrap replicates,
  and measures every check with its intervals and gates.
* **harness cached rerun** -- the same in a *new* session over the *same* cache directory, so the
  predictions come from disk.

The three are interleaved (the order alternates between repetitions) and the table reports
medians. The harness's point values are checked against the floor's scikit-learn values
(to 1e-9) at every size.

The data are the real Arrests fixture (``python -m fixtures.build``): eval rows sampled with
replacement (seeded) up to the requested size and written as CSV under ``--data-dir``.

Usage (from the repository root)::

    .venv/bin/python benchmarks/bench_performance.py                 # 10k, 100k, 1M; 3 repeats
    .venv/bin/python benchmarks/bench_performance.py --quick         # 10k only, 1 repeat
    .venv/bin/python benchmarks/bench_performance.py --sizes 100000 --repeat 5
    .venv/bin/python benchmarks/bench_performance.py --profile 1000000   # + cProfile of the harness
"""

from __future__ import annotations

import argparse
import cProfile
import gc
import io
import json
import os
import platform
import pstats
import shutil
import statistics
import sys
import tempfile
import time
import warnings
from importlib.metadata import version
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import yaml  # noqa: E402

DEFAULT_SIZES = (10_000, 100_000, 1_000_000)
RESULTS = ROOT / "benchmarks" / "results"
TRUSTED = ["sklearn.tree._tree.Tree"]
TARGET, POSITIVE = "released", "Yes"
REFERENCE_SUITE = ROOT / "suites" / "arrests.audit.yaml"
# the performance and fidelity metrics of suites/arrests.audit.yaml, which floor() computes
# directly
FLOOR_METRICS = ("accuracy", "balanced_accuracy", "f1", "roc_auc", "log_loss",
                 "agreement", "negative_flip_rate", "js_divergence")
TOLERANCE = 1e-9
TARGET_FIRST_OVER_FLOOR = 2.0      # at 100k and 1M rows
TARGET_CACHED_OVER_FIRST = 0.3
TARGET_SIZES = (100_000, 1_000_000)

perf = time.perf_counter


# --------------------------------------------------------------------------- data and suites
def fixtures() -> dict[str, Path]:
    from fixtures.build import build_all

    return build_all()


def make_table(eval_csv: Path, n: int, data_dir: Path, seed: int) -> Path:
    """Eval rows sampled with replacement to ``n`` rows, as CSV (reused if already written)."""
    out = data_dir / f"arrests_eval_{n}_seed{seed}.csv"
    if out.exists():
        return out
    base = pd.read_csv(eval_csv)
    idx = np.random.default_rng(seed).integers(0, len(base), size=n)
    data_dir.mkdir(parents=True, exist_ok=True)
    tmp = out.with_suffix(".csv.tmp")
    base.iloc[idx].to_csv(tmp, index=False)
    os.replace(tmp, out)
    return out


def without_baseline(check: dict[str, Any]) -> dict[str, Any]:
    """A check without its bound on the baseline (the floor computes two models)."""
    gate = {k: v for k, v in (check.get("gate") or {}).items() if k != "max_baseline_regression"}
    return {**check, "gate": gate} if gate else {k: v for k, v in check.items() if k != "gate"}


def write_suite(table: Path, paths: dict[str, Path], out: Path) -> Path:
    """A suite with the checks, gates and settings of ``suites/arrests.audit.yaml`` on ``table``."""
    ref = yaml.safe_load(REFERENCE_SUITE.read_text())
    settings = {}
    if "include" in ref:
        settings = dict(yaml.safe_load((REFERENCE_SUITE.parent / ref.pop("include")).read_text())
                        .get("settings", {}))
    settings.update(ref.get("settings", {}))
    settings["bootstrap"] = 1000
    data = dict(ref["data"])
    data["eval"] = str(table.resolve())
    data["train"] = str(paths["arrests/train.csv"].resolve())
    suite = {
        "version": ref.get("version", 1),
        "name": f"bench-{table.stem}",
        "data": data,
        "teacher": {"skops": str(paths["arrests/teacher.skops"].resolve()),
                    "trusted_types": TRUSTED},
        "student": str(paths["arrests/student.onnx"].resolve()),
        "settings": settings,
        # the performance and fidelity checks of the example suite (other families have
        # their own benchmarks)
        "checks": {name: without_baseline(c) for name, c in ref["checks"].items()
                   if c["metric"] in FLOOR_METRICS},
    }
    metrics = sorted(c["metric"] for c in suite["checks"].values())
    if metrics != sorted(FLOOR_METRICS):
        raise SystemExit(f"{REFERENCE_SUITE} now has metrics {metrics}; the floor computes "
                         f"{sorted(FLOOR_METRICS)} -- update FLOOR_METRICS and floor()")
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(yaml.safe_dump(suite, sort_keys=False))
    return out


# --------------------------------------------------------------------------- floor
def floor(csv: Path, teacher_path: Path,
          student_path: Path) -> tuple[dict[str, float], dict[Any, float]]:
    """Read, load, one predict per model, direct sklearn/numpy metrics. Returns (phases, values)."""
    import onnxruntime as ort
    import skops.io as sio

    t0 = perf()
    frame = pd.read_csv(csv)
    X = frame.drop(columns=[TARGET])
    t1 = perf()
    teacher = sio.load(teacher_path, trusted=TRUSTED)
    session = ort.InferenceSession(str(student_path), providers=["CPUExecutionProvider"])
    perf()
    p_t = np.asarray(teacher.predict_proba(X), dtype=np.float64)
    feed = {}
    for i in session.get_inputs():
        col = X[i.name]
        is_str = i.type == "tensor(string)"
        arr = col.to_numpy(dtype=object) if is_str else col.to_numpy(dtype=np.int64)
        feed[i.name] = arr.reshape(-1, 1)
    p_s = np.asarray(session.run(["probabilities"], feed)[0], dtype=np.float64)
    t3 = perf()
    with warnings.catch_warnings():
        # onnxruntime's float32 probabilities miss 1.0 by ~1e-8; sklearn warns, the audit does not
        warnings.filterwarnings("ignore", message="The y_prob values do not sum to one")
        values = _floor_metrics(p_t, p_s, teacher, session, frame)
    t4 = perf()
    phases = {"read": t1 - t0, "load+predict": t3 - t1, "metrics": t4 - t3,
              "total": t4 - t0}
    return phases, values


def _floor_metrics(p_t: np.ndarray, p_s: np.ndarray, teacher: Any, session: Any,
                   frame: pd.DataFrame) -> dict[Any, float]:
    from scipy.special import xlogy
    from sklearn.metrics import (
        accuracy_score,
        balanced_accuracy_score,
        f1_score,
        log_loss,
        roc_auc_score,
    )

    classes = list(teacher.classes_)
    student_classes = json.loads(session.get_modelmeta().custom_metadata_map["classes"])
    if student_classes != classes:  # the fixture's student uses the teacher's order
        p_s = p_s[:, [student_classes.index(c) for c in classes]]
    pos = classes.index(POSITIVE)
    y = pd.Categorical(frame[TARGET], categories=classes).codes.astype(np.int64)
    assert (y >= 0).all(), "labels outside the models' classes"
    pred_t, pred_s = p_t.argmax(axis=1), p_s.argmax(axis=1)
    labels = list(range(len(classes)))
    v: dict[str, Any] = {}
    for who, P, pred in (("teacher", p_t, pred_t), ("student", p_s, pred_s)):
        v[("accuracy", who)] = accuracy_score(y, pred)
        v[("balanced_accuracy", who)] = balanced_accuracy_score(y, pred)
        v[("f1", who)] = f1_score(y, pred, pos_label=pos)
        v[("roc_auc", who)] = roc_auc_score(y == pos, P[:, pos])
        v[("log_loss", who)] = log_loss(y, P, labels=labels)
    v[("agreement", "student")] = float(np.mean(pred_t == pred_s))
    v[("negative_flip_rate", "student")] = float(np.mean((pred_t == y) & (pred_s != y)))
    m = (p_t + p_s) / 2.0
    js = (0.5 * (xlogy(p_t, p_t) - xlogy(p_t, m)).sum(axis=1)
          + 0.5 * (xlogy(p_s, p_s) - xlogy(p_s, m)).sum(axis=1))
    v[("js_divergence", "student")] = float(js.mean())
    return v


# --------------------------------------------------------------------------- harness
def harness(suite_path: Path,
            cache_dir: Path) -> tuple[dict[str, float], list[Any], dict[str, str]]:
    """Time ``SuiteRun(load_suite(path), AuditSession(cache_dir)).run_all()``, by phase.

    The run's lazily loaded pieces are touched in the order ``run_all`` would load them, so the
    work is the same as one ``run_all()`` call; "total" covers everything from creating the
    session to the last check.
    """
    from audit.runner import AuditSession, SuiteRun
    from audit.suite import load_suite

    t0 = perf()
    session = AuditSession(cache_dir=cache_dir)
    run = SuiteRun(load_suite(suite_path), session)
    t1 = perf()
    run.eval_table          # read the CSV + SHA-256 of the file
    t2 = perf()
    t3 = t2
    run.inputs              # per model: hash the file, then read the cache (a hit loads no
                            # model) or load + predict + validate + write; encode labels
    t4 = perf()
    run.resampler.replicates  # joint count table + 1000 multinomial replicates
    t5 = perf()
    results = run.run_all()   # measure every check (intervals, gates, details)
    t6 = perf()
    phases = {"suite": t1 - t0, "read": t2 - t1, "load+predict": t4 - t3,
              "bootstrap": t5 - t4, "checks": t6 - t5, "total": t6 - t0}
    return phases, results, dict(run.prediction_sources)


def harness_plain(suite_path: Path, cache_dir: Path) -> list[Any]:
    """Exactly the call the issue names (used for profiling)."""
    from audit.runner import AuditSession, SuiteRun
    from audit.suite import load_suite

    return SuiteRun(load_suite(suite_path), AuditSession(cache_dir=cache_dir)).run_all()


def harness_values(results: list[Any]) -> dict[tuple[str, str], float]:
    out: dict[tuple[str, str], float] = {}
    for r in results:
        if r.status == "error":
            raise AssertionError(f"check {r.name} errored: {r.error}")
        m = r.measurements[0]
        out[(m.metric, "student")] = m.student.value
        if m.teacher is not None:
            out[(m.metric, "teacher")] = m.teacher.value
    return out


def verify(n: int, harness_results: list[Any], floor_values: dict[Any, float]) -> float:
    """Assert the harness's point values equal the floor's; return the largest difference."""
    got = harness_values(harness_results)
    if set(got) != set(floor_values):
        raise AssertionError(f"n={n}: harness measured {sorted(got)}, floor {sorted(floor_values)}")
    worst = 0.0
    for key, expected in floor_values.items():
        diff = abs(got[key] - float(expected))
        worst = max(worst, diff)
        if not diff <= TOLERANCE:
            raise AssertionError(f"n={n}: {key[0]} ({key[1]}) harness {got[key]!r} != "
                                 f"floor {float(expected)!r} (|diff| {diff:.3g} > {TOLERANCE})")
    return worst



# --------------------------------------------------------------------------- reporting
def source_state() -> dict[str, Any]:
    """Which code is measured: git HEAD, uncommitted files under audit/, a hash of audit/*.py."""
    import hashlib
    import subprocess

    def git(*args: str) -> str:
        try:
            return subprocess.run(["git", *args], cwd=ROOT, capture_output=True, text=True,
                                  timeout=10).stdout
        except (OSError, subprocess.SubprocessError):
            return "?"

    h = hashlib.sha256()
    for f in sorted((ROOT / "audit").rglob("*.py")):
        h.update(str(f.relative_to(ROOT)).encode() + b"\0" + f.read_bytes())
    dirty = [line[3:] for line in git("status", "--porcelain", "--", "audit").splitlines() if line]
    return {"git_head": git("rev-parse", "--short", "HEAD").strip() or "?",
            "audit_uncommitted": dirty,
            "audit_sha256": h.hexdigest()[:12]}


def machine_info() -> dict[str, Any]:
    def ver(pkg: str) -> str:
        try:
            return version(pkg)
        except Exception:
            return "?"

    cpu = "?"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    usable = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    return {"cpu": cpu, "cores": os.cpu_count(), "usable_cores": usable,
            "platform": platform.platform(), "python": platform.python_version(),
            **{p: ver(p) for p in ("numpy", "pandas", "scipy", "scikit-learn", "onnxruntime",
                                   "skops")}}


def fmt_s(x: float) -> str:
    return f"{x:8.3f}" if x < 100 else f"{x:8.1f}"


def print_tables(rows: list[dict[str, Any]], repeat: int) -> list[str]:
    """Print the summary and breakdown tables; return the list of missed targets."""
    med = statistics.median
    print()
    print(f"Summary (medians of {repeat} interleaved repetition(s); seconds)")
    head = (f"{'rows':>9} | {'floor s':>8} | {'first s':>8} | {'first/floor':>11} | "
            f"{'cached s':>8} | {'cached/first':>12} | {'first/floor per rep':>19}")
    print(head)
    print("-" * len(head))
    missed: list[str] = []
    for row in rows:
        fl = med(r["total"] for r in row["floor"])
        fi = med(r["total"] for r in row["first"])
        ca = med(r["total"] for r in row["cached"])
        per_rep = [a["total"] / b["total"] for a, b in zip(row["first"], row["floor"])]
        spread = (f"{min(per_rep):.2f}-{max(per_rep):.2f}" if len(per_rep) > 1
                  else f"{per_rep[0]:.2f}")
        r1, r2 = fi / fl, ca / fi
        print(f"{row['n']:>9,} | {fmt_s(fl)} | {fmt_s(fi)} | {r1:>10.2f}x | {fmt_s(ca)} | "
              f"{r2:>11.2f}x | {spread:>19}")
        if row["n"] in TARGET_SIZES and r1 > TARGET_FIRST_OVER_FLOOR:
            missed.append(f"first/floor {r1:.2f}x > {TARGET_FIRST_OVER_FLOOR}x "
                          f"at {row['n']:,} rows")
        if r2 > TARGET_CACHED_OVER_FIRST:
            missed.append(f"cached/first {r2:.2f}x > {TARGET_CACHED_OVER_FIRST}x "
                          f"at {row['n']:,} rows")

    print()
    print("Breakdown (medians, seconds)")
    fcols = ("read", "load+predict", "metrics")
    hcols = ("suite", "read", "load+predict", "bootstrap", "checks")
    head = (f"{'rows':>9} {'run':<7} | " + " | ".join(f"{c:>12}" for c in hcols)
            + f" | {'total':>8}")
    print(head)
    print("-" * len(head))
    for row in rows:
        for label, key, cols in (("floor", "floor", fcols), ("first", "first", hcols),
                                 ("cached", "cached", hcols)):
            cells = []
            for c in hcols:
                name = {"checks": "metrics"}.get(c, c) if key == "floor" else c
                if key == "floor" and name not in fcols:
                    cells.append(f"{'':>12}")
                else:
                    cells.append(f"{med(r[name] for r in row[key]):>12.3f}")
            print(f"{row['n']:>9,} {label:<7} | " + " | ".join(cells)
                  + f" | {med(r['total'] for r in row[key]):>8.3f}")
    print()
    print("  floor : read = pd.read_csv; load+predict = skops.io.load + ort.InferenceSession + "
          "one predict_proba per model; checks column = sklearn/numpy metric calls")
    print("  first/cached : suite = load_suite; read = load_table (CSV + SHA-256); "
          "load+predict = run.inputs (model file SHA-256,")
    print("                 cache read, or load + predict + validation + cache write; "
          "label encoding);")
    print("                 bootstrap = joint table + 1000 replicates; checks = run_all() "
          "(measure, gates, details)")
    return missed


def profile(suite_path: Path, cache_root: Path, n: int, top: int) -> None:
    """cProfile one harness first run and one cached rerun; print the top functions."""
    cache = Path(tempfile.mkdtemp(prefix=f"cache_prof_{n}_", dir=cache_root))
    try:
        for label in ("first", "cached"):
            gc.collect()
            prof = cProfile.Profile()
            prof.enable()
            harness_plain(suite_path, cache)
            prof.disable()
            out = RESULTS / f"profile_{n}_{label}.prof"
            prof.dump_stats(str(out))
            for sort in ("cumulative", "tottime"):
                buf = io.StringIO()
                pstats.Stats(prof, stream=buf).strip_dirs().sort_stats(sort).print_stats(top)
                text = buf.getvalue()
                start = text.find("   ncalls")
                print(f"\n=== cProfile, harness {label} run, {n:,} rows, sorted by {sort} "
                      f"(full stats: {out.relative_to(ROOT)}) ===")
                print(text[start:].rstrip() if start >= 0 else text)
    finally:
        shutil.rmtree(cache, ignore_errors=True)


# --------------------------------------------------------------------------- main
def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--sizes", type=lambda s: [int(float(x)) for x in s.split(",")],
                    default=list(DEFAULT_SIZES), help="comma-separated row counts "
                    "(default: 10000,100000,1000000)")
    ap.add_argument("--quick", action="store_true", help="10k rows only, 1 repetition")
    ap.add_argument("--repeat", type=int, default=None,
                    help="repetitions per size, interleaved (default 3; 1 with --quick)")
    ap.add_argument("--seed", type=int, default=0, help="seed of the row sampling (default 0)")
    ap.add_argument("--data-dir", type=Path, default=RESULTS / "data",
                    help="where the N-row CSVs and suites are written "
                         "(default benchmarks/results/data)")
    ap.add_argument("--profile", type=lambda s: [int(float(x)) for x in s.split(",")], default=[],
                    metavar="ROWS[,ROWS]",
                    help="also cProfile one harness first run and cached rerun at these sizes")
    ap.add_argument("--profile-top", type=int, default=25, help="functions shown per profile")
    ap.add_argument("--check", action="store_true",
                    help="exit 1 when a target (first <= 2x floor at 100k/1M, cached <= 0.3x "
                         "first) is missed")
    args = ap.parse_args(argv)
    sizes = [10_000] if args.quick and args.sizes == list(DEFAULT_SIZES) else args.sizes
    repeat = args.repeat if args.repeat is not None else (1 if args.quick else 3)

    wall0 = perf()
    info = machine_info()
    print("distill-audit benchmark: performance + fidelity checks vs the bare floor")
    print("machine: " + ", ".join(f"{k}={v}" for k, v in info.items()))
    state = source_state()
    print(f"code: git {state['git_head']}, audit/*.py sha256 {state['audit_sha256']}, "
          f"{len(state['audit_uncommitted'])} uncommitted file(s) under audit/"
          + (f" ({', '.join(state['audit_uncommitted'])})" if state["audit_uncommitted"] else ""))
    print(f"sizes: {', '.join(f'{n:,}' for n in sizes)}; repetitions: {repeat}; "
          f"bootstrap: 1000; sample seed: {args.seed}")
    from audit.cache import KEY_ENV, load_cache_key

    key, why = load_cache_key(None)
    print("cached rerun: " + (f"entries authenticated (HMAC key from {key.source}); no model is "
                              "loaded" if key else
                              f"no key ({why}): each entry verified by loading the model and "
                              "re-predicting 256 random rows")
          + f" [{KEY_ENV}= for the keyless mode]")

    paths = fixtures()
    data_dir = args.data_dir.resolve()
    RESULTS.mkdir(parents=True, exist_ok=True)
    cache_root = Path(tempfile.mkdtemp(prefix="bench_caches_", dir=RESULTS))
    teacher, student = paths["arrests/teacher.skops"], paths["arrests/student.onnx"]

    try:
        # Warm-up on the fixture's own eval table: imports and first-call costs are paid here,
        # by neither side of the comparison.
        warm = write_suite(paths["arrests/eval.csv"], paths, data_dir / "bench_warmup.audit.yaml")
        floor(paths["arrests/eval.csv"], teacher, student)
        wcache = Path(tempfile.mkdtemp(prefix="warm_", dir=cache_root))
        harness(warm, wcache)
        harness(warm, wcache)

        rows: list[dict[str, Any]] = []
        for n in sizes:
            t = perf()
            table = make_table(paths["arrests/eval.csv"], n, data_dir, args.seed)
            suite = write_suite(table, paths, data_dir / f"bench_{n}.audit.yaml")
            prep = perf() - t
            row: dict[str, Any] = {"n": n, "csv": str(table), "csv_bytes": table.stat().st_size,
                                   "floor": [], "first": [], "cached": [], "max_abs_diff": 0.0,
                                   "sources": []}
            print(f"\n{n:,} rows: {table.stat().st_size / 1e6:.1f} MB CSV "
                  f"({prep:.1f} s to prepare)", flush=True)
            for rep in range(repeat):
                cache = Path(tempfile.mkdtemp(prefix=f"cache_{n}_{rep}_", dir=cache_root))
                order = ("floor", "harness") if rep % 2 == 0 else ("harness", "floor")
                floor_values: dict[Any, float] = {}
                first_results: list[Any] = []
                for what in order:
                    gc.collect()
                    if what == "floor":
                        phases, floor_values = floor(table, teacher, student)
                        row["floor"].append(phases)
                    else:
                        phases, first_results, src1 = harness(suite, cache)
                        row["first"].append(phases)
                        gc.collect()
                        phases2, cached_results, src2 = harness(suite, cache)
                        row["cached"].append(phases2)
                        row["sources"].append({"first": src1, "cached": src2})
                        if set(src1.values()) != {"computed"}:
                            raise AssertionError(f"first run did not predict: {src1}")
                        if set(src2.values()) != {"disk"}:
                            raise AssertionError(f"cached rerun did not read the cache: {src2}")
                        if harness_values(cached_results) != harness_values(first_results):
                            raise AssertionError("cached rerun measured different values")
                row["max_abs_diff"] = max(row["max_abs_diff"],
                                          verify(n, first_results, floor_values))
                shutil.rmtree(cache, ignore_errors=True)
                print(f"  rep {rep + 1}/{repeat} ({' then '.join(order)}): "
                      f"floor {row['floor'][-1]['total']:.3f} s, "
                      f"first {row['first'][-1]['total']:.3f} s, "
                      f"cached {row['cached'][-1]['total']:.3f} s", flush=True)
            print(f"  correctness: harness point values == floor sklearn/numpy values "
                  f"(max |diff| {row['max_abs_diff']:.2e} <= {TOLERANCE:g})")
            rows.append(row)

        missed = print_tables(rows, repeat)
        print()
        after = source_state()["audit_sha256"]
        if after != state["audit_sha256"]:
            print(f"NOTE: audit/ sources changed during the run ({state['audit_sha256']} -> "
                  f"{after}); the timings are of the code imported at the start")
        for n in TARGET_SIZES:
            if n not in sizes:
                print(f"target first <= {TARGET_FIRST_OVER_FLOOR}x floor at {n:,} rows: "
                      "not measured")
        print("targets: " + ("all met" if not missed else "MISSED -- " + "; ".join(missed)))

        out = RESULTS / "bench_performance.json"
        out.write_text(json.dumps({"machine": info, "code": state, "repeat": repeat,
                                   "seed": args.seed,
                                   "rows": rows, "missed": missed}, indent=2, default=str))
        print(f"raw timings: {out.relative_to(ROOT)}")

        for n in args.profile:
            table = make_table(paths["arrests/eval.csv"], n, data_dir, args.seed)
            suite = write_suite(table, paths, data_dir / f"bench_{n}.audit.yaml")
            profile(suite, cache_root, n, args.profile_top)
    finally:
        shutil.rmtree(cache_root, ignore_errors=True)
    print(f"\nwall time: {perf() - wall0:.1f} s")
    return 1 if (args.check and missed) else 0


if __name__ == "__main__":
    sys.exit(main())
