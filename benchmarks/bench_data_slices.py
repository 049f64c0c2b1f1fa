"""Benchmark: the cost of each data and slice-discovery check at 100k and 1M rows, and of the
efficiency checks at their default budget.

Rows are the real Arrests rows (eval and train tables, and both fixture models' predictions),
sampled with replacement to N rows each; the models are precomputed predictions so the timing
is of the checks alone (reading the tables and predictions is timed once, separately).

    python benchmarks/bench_data_slices.py [--sizes 100000,1000000]
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd
import yaml

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

CHECKS = {
    "max_psi": {"metric": "max_psi"},
    "drifted_columns": {"metric": "drifted_columns"},
    "missing_rate": {"metric": "missing_rate"},
    "constant_columns": {"metric": "constant_columns"},
    "duplicate_rows": {"metric": "duplicate_rows"},
    "min_class_share": {"metric": "min_class_share"},
    "leakage": {"metric": "leakage"},
    "slice_regression": {"metric": "slice_regression"},
}


def prepare(folder: Path, n: int) -> Path:
    from audit import SuiteRun, load_suite
    from fixtures.build import build_all

    build_all()
    run = SuiteRun(load_suite(ROOT / "suites" / "arrests.audit.yaml"))
    inputs = run.inputs
    rng = np.random.default_rng(0)
    idx = rng.integers(0, inputs.n, n)
    evals = pd.read_csv(run.suite.data.eval).iloc[idx]
    train = pd.read_csv(run.suite.data.train)
    train = train.iloc[rng.integers(0, len(train), n)]
    evals.to_csv(folder / "eval.csv", index=False)
    train.to_csv(folder / "train.csv", index=False)
    classes = [str(c) for c in inputs.classes]
    for who, P in (("teacher", inputs.p_teacher), ("student", inputs.p_student)):
        pd.DataFrame(P[idx], columns=[f"p_{c}" for c in classes]).to_csv(
            folder / f"{who}.csv", index=False, float_format="%.17g")

    def model(who: str) -> dict:
        return {"predictions": f"{who}.csv", "columns": [f"p_{c}" for c in classes],
                "classes": classes}

    raw = {"version": 1, "name": "bench", "data": {"eval": "eval.csv", "train": "train.csv",
                                                    "target": "released", "positive": "Yes"},
           "teacher": model("teacher"), "student": model("student"), "checks": CHECKS}
    path = folder / "bench.audit.yaml"
    path.write_text(yaml.safe_dump(raw))
    return path


def efficiency_costs() -> dict[str, float]:
    from audit import SuiteRun, load_suite

    run = SuiteRun(load_suite(ROOT / "suites" / "arrests.audit.yaml"))
    run.inputs  # noqa: B018 - predictions and tables first: not part of the checks' cost
    out = {}
    for name, spec in (("speedup", {"metric": "speedup"}), ("latency_ms", {"metric": "latency_ms"}),
                       ("size_ratio", {"metric": "size_ratio"})):
        t0 = time.perf_counter()
        result = run.check(name, spec)
        out[name] = time.perf_counter() - t0
        assert result.status != "error", result.error
    return out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="100000,1000000")
    args = parser.parse_args()
    from audit import SuiteRun, load_suite

    print("distill-audit benchmark: data and slice-discovery checks (and efficiency)")
    print(f"machine: cores={os.cpu_count()}, python={platform.python_version()}, "
          f"numpy={np.__version__}, pandas={pd.__version__}")
    rows = []
    for n in (int(s) for s in args.sizes.split(",")):
        with tempfile.TemporaryDirectory() as tmp:
            path = prepare(Path(tmp), n)
            run = SuiteRun(load_suite(path))
            t0 = time.perf_counter()
            run.inputs  # noqa: B018
            run.train_table()
            load = time.perf_counter() - t0
            costs = {}
            for name in CHECKS:
                t0 = time.perf_counter()
                result = run.run_check(name)
                costs[name] = time.perf_counter() - t0
                assert result.status != "error", result.error
            rows.append((n, load, costs))
            print(f"  {n:,} rows: tables and predictions read in {load:.2f} s")
    print()
    head = f"{'check':>18} | " + " | ".join(f"{n:>10,} rows" for n, _, _ in rows)
    print(head)
    print("-" * len(head))
    print(f"{'(read tables)':>18} | " + " | ".join(f"{load:>13.3f} s" for _, load, _ in rows))
    for name in CHECKS:
        print(f"{name:>18} | " + " | ".join(f"{c[name]:>13.3f} s" for _, _, c in rows))
    print()
    print("efficiency checks on the example models (cost independent of the eval size; "
          "default budget: batches 1/32/1024, 30 runs, max 30 s):")
    for name, seconds in efficiency_costs().items():
        print(f"  {name:>12}: {seconds:.2f} s (one set of timings is shared by speedup and latency)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
