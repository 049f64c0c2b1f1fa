#!/usr/bin/env python
"""What running a model in its worker process costs (see :mod:`audit.models.isolation`).

Times, in one fresh process:

* **worker start** -- the first ``callable:`` load (it also starts the fork server, which
  imports ``audit.models.isolation.PRELOAD``), then later loads (fork, import the module, answer);
* **pickle load** -- a plain scikit-learn pickle: unpickled in a worker, pickled again there and
  handed back through the restricted unpickler (``audit.models.pickle.load_plain``), against
  ``pickle.load`` here;
* **per predict call** -- ``LoadedModel.predict`` of a callable (worker: the frame pickled over
  a pipe, the answer as raw float64 bytes) against calling the same function here, for batches
  of 1 to 10,000 rows of a 30-column frame (28 numbers, 2 text columns);
* **black-box attack pattern** -- 2,000 calls of 10 rows, as HopSkipJump makes them;
* **in-process guard** -- what :func:`audit.models.isolation.call_guarded` adds to each predict call
  of the one model run here (a torch module a callable names): a thread and a timed join.

Usage (from the repository root)::

    .venv/bin/python benchmarks/bench_isolation.py            # about 30 s
    .venv/bin/python benchmarks/bench_isolation.py --repeat 200
"""

from __future__ import annotations

import argparse
import pickle
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

MODEL = """\
import numpy as np


def predict(X):
    z = X.select_dtypes("number").to_numpy().sum(axis=1) / 10
    p = 1 / (1 + np.exp(-z))
    return np.column_stack([1 - p, p])
"""


def _median_ms(fn, repeat: int) -> float:  # type: ignore[no-untyped-def]
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        times.append((time.perf_counter() - t0) * 1000)
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeat", type=int, default=50, help="timed calls per row count")
    args = parser.parse_args()

    import dataclasses

    import numpy as np
    import pandas as pd

    from audit.data import Table
    from audit.models import load_model
    from audit.spec import ModelSpec

    folder = Path(tempfile.mkdtemp(prefix="bench_isolation_"))
    (folder / "bench_model.py").write_text(MODEL)
    spec = ModelSpec(kind="callable", target="bench_model:predict", classes=("No", "Yes"),
                     base_dir=folder)
    rows: list[tuple[str, str, str]] = []

    t0 = time.perf_counter()
    model = load_model(spec, "student")
    rows.append(("first worker (starts the fork server)", f"{(time.perf_counter() - t0) * 1000:.0f} ms",
                 "once per process"))
    starts = []
    for _ in range(10):
        t0 = time.perf_counter()
        other = load_model(spec, "teacher")
        starts.append((time.perf_counter() - t0) * 1000)
        del other
    rows.append(("later worker start + load", f"{statistics.median(starts):.0f} ms",
                 "median of 10; per callable/pickle model"))

    from sklearn.linear_model import LogisticRegression

    rng = np.random.default_rng(0)
    X = pd.DataFrame(rng.normal(size=(2000, 28)), columns=[f"f{i}" for i in range(28)])
    X["c1"] = rng.choice(["a", "b", "c"], len(X))
    X["c2"] = rng.choice(["u", "v"], len(X))
    y = np.where(X["f0"] > 0, "Yes", "No")
    lr = LogisticRegression(max_iter=500).fit(X.select_dtypes("number"), y)
    (folder / "lr.pkl").write_bytes(pickle.dumps(lr))
    pspec = ModelSpec(kind="pickle", path=folder / "lr.pkl", trust=True)
    load_model(pspec, "teacher")  # warm-up, not timed
    worker_ms = _median_ms(lambda: load_model(pspec, "teacher"), 10)

    def plain() -> None:
        with (folder / "lr.pkl").open("rb") as fh:
            pickle.load(fh)

    rows.append(("plain sklearn pickle: worker, then handed back", f"{worker_ms:.0f} ms",
                 f"median of 10; pickle.load here: {_median_ms(plain, 10):.2f} ms"))

    sys.path.insert(0, str(folder))
    import bench_model  # type: ignore[import-not-found]

    print("| what | in the worker | in this process | overhead per call |")
    print("|---|---|---|---|")
    for n in (1, 32, 1024, 10_000):
        frame = X.iloc[np.arange(n) % len(X)].reset_index(drop=True)
        table = Table("eval", folder / "eval.csv", "", frame, pd.Series(["No"] * n),
                      frame.iloc[:, :0])
        model.predict(table)  # warm
        worker = _median_ms(lambda: model.predict(table), args.repeat)  # noqa: B023
        here = _median_ms(lambda: bench_model.predict(frame.copy(deep=False)), args.repeat)  # noqa: B023
        print(f"| predict, {n} rows | {worker:.3f} ms | {here:.3f} ms | {worker - here:+.3f} ms |")
    frame = X.iloc[:10].reset_index(drop=True)
    table = dataclasses.replace(Table("eval", folder / "eval.csv", "", frame,
                                      pd.Series(["No"] * 10), frame.iloc[:, :0]))
    t0 = time.perf_counter()
    for _ in range(2000):
        model.predict(table)
    worker = time.perf_counter() - t0
    t0 = time.perf_counter()
    for _ in range(2000):
        bench_model.predict(frame.copy(deep=False))
    here = time.perf_counter() - t0
    print(f"| 2,000 calls of 10 rows (HopSkipJump's pattern) | {worker:.2f} s | {here:.2f} s | "
          f"{(worker - here) / 2000 * 1000:+.3f} ms |")
    from audit.models.isolation import call_guarded

    guarded = _median_ms(lambda: call_guarded(lambda: None, "m", 60.0, "predicting"), args.repeat)
    bare = _median_ms(lambda: None, args.repeat)
    print(f"| in-process guard of a torch module callable (a thread per call) | - | - | "
          f"{guarded - bare:+.3f} ms |")
    print()
    print("| start-up | time | note |")
    print("|---|---|---|")
    for what, value, note in rows:
        print(f"| {what} | {value} | {note} |")


if __name__ == "__main__":
    main()
