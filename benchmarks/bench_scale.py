#!/usr/bin/env python
"""Scale: the performance benchmark's workload streamed from Parquet, as whole processes.

The workload of ``bench_performance.py`` (the Arrests random-forest teacher as skops, the ONNX
student, the example suite's performance and fidelity checks: accuracy, balanced_accuracy, f1,
roc_auc, log_loss, agreement, negative_flip_rate, js_divergence with their gates and 1000
bootstrap replicates) on eval tables of 1M and 10M rows (30M with ``--sizes``) sampled with
replacement (seed 0) from the fixture's eval rows and written as Parquet in row groups of
``--batch-rows``. Each run is a fresh process under ``/usr/bin/time -v`` (wall seconds and peak
RSS of the whole process, imports included):

* **floor**: what a script without distill-audit does at the least on the same batches:
  ``pyarrow`` row-group batches, both models' ``predict_proba`` per batch, a ``bincount`` of
  (label, teacher, student) per batch. No intervals, no other metric.
* **stream**: ``distill-audit``'s streaming engine (``settings.engine: stream``, the same batch
  size): reads and hashes the file, predicts each batch once per model, keeps the additive
  tables and a 100,000-row seeded sample, measures every check with intervals and gates.
* **memory** (1M rows only; ``--memory-at`` for more): the in-memory engine on the same file,
  for the memory comparison.

* **ray**: ``settings.engine: ray`` on a local Ray started in the timed process with this
  machine's cores (its start-up is in the figure; the workers' memory is not in the driver's
  peak RSS).

Targets (issue 18): stream within 1.3x of the floor at 10M rows; stream's peak RSS at 10M within
1.5x of its 1M-row run; Ray on one machine within 2x of the local streaming engine.

Usage::

    .venv/bin/python benchmarks/bench_scale.py                      # 1M and 10M rows
    .venv/bin/python benchmarks/bench_scale.py --sizes 1000000      # one size
    .venv/bin/python benchmarks/bench_scale.py --check              # exit 1 on a missed target
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

RESULTS = ROOT / "benchmarks" / "results"
DATA = RESULTS / "data"
SIZES = (1_000_000, 10_000_000)
BATCH_ROWS = 250_000
TARGET_TIME = 1.3
TARGET_RSS = 1.5
TARGET_RAY = 2.0  # Ray on one machine vs the local streaming engine
TRUSTED = ["sklearn.tree._tree.Tree"]


def make_table(n: int, batch_rows: int) -> Path:
    """``scale_<n>.parquet``: ``n`` rows sampled with replacement from the fixture's eval rows."""
    import numpy as np
    import pandas as pd
    import pyarrow as pa
    import pyarrow.parquet as pq

    from fixtures.build import build_all

    paths = build_all()
    path = DATA / f"scale_{n}.parquet"
    if path.exists():
        return path
    DATA.mkdir(parents=True, exist_ok=True)
    rows = pd.read_csv(paths["arrests/eval.csv"])
    rng = np.random.default_rng(0)
    tmp = path.with_suffix(".tmp")
    with pq.ParquetWriter(tmp, pa.Table.from_pandas(rows.iloc[:1], preserve_index=False).schema) as w:
        for start in range(0, n, batch_rows):
            take = rng.integers(0, len(rows), min(batch_rows, n - start))
            w.write_table(pa.Table.from_pandas(rows.iloc[take], preserve_index=False),
                          row_group_size=batch_rows)
    tmp.replace(path)
    return path


def write_suite(table: Path, batch_rows: int, engine: str) -> Path:
    import yaml

    from benchmarks.bench_performance import FLOOR_METRICS, REFERENCE_SUITE, without_baseline
    from fixtures.build import build_all

    paths = build_all()
    ref = yaml.safe_load(REFERENCE_SUITE.read_text())
    data = dict(ref["data"])
    data["eval"] = str(table)
    data.pop("train", None)
    suite = {"version": 1, "name": f"scale-{table.stem}", "data": data,
             "teacher": {"skops": str(paths["arrests/teacher.skops"]), "trusted_types": TRUSTED},
             "student": str(paths["arrests/student.onnx"]),
             "settings": {"seed": 0, "bootstrap": 1000, "engine": engine,
                          "batch_rows": batch_rows},
             "checks": {name: without_baseline(c) for name, c in ref["checks"].items()
                        if c["metric"] in FLOOR_METRICS}}
    out = DATA / f"{table.stem}.{engine}.audit.yaml"
    out.write_text(yaml.safe_dump(suite, sort_keys=False))
    return out


# --------------------------------------------------------------------------- workers
def floor_worker(table: Path, batch_rows: int) -> dict[str, Any]:
    """Batched predict + bincount, nothing else."""
    import numpy as np
    import onnxruntime as ort
    import pyarrow.parquet as pq
    import skops.io as sio

    from fixtures.build import build_all

    paths = build_all()
    teacher = sio.load(paths["arrests/teacher.skops"], trusted=TRUSTED)
    session = ort.InferenceSession(str(paths["arrests/student.onnx"]),
                                   providers=["CPUExecutionProvider"])
    classes = list(teacher.classes_)
    student_classes = json.loads(session.get_modelmeta().custom_metadata_map["classes"])
    order = [student_classes.index(c) for c in classes]
    joint = np.zeros(8, dtype=np.int64)
    rows = 0
    for record in pq.ParquetFile(table).iter_batches(batch_size=batch_rows):
        frame = record.to_pandas()
        X = frame.drop(columns=["released"])
        p_t = teacher.predict_proba(X)
        feed = {i.name: (X[i.name].to_numpy(dtype=object) if i.type == "tensor(string)"
                         else X[i.name].to_numpy(dtype=np.int64)).reshape(-1, 1)
                for i in session.get_inputs()}
        p_s = np.asarray(session.run(["probabilities"], feed)[0])[:, order]
        y = (frame["released"].to_numpy() == classes[1]).astype(np.int64)
        joint += np.bincount((y * 2 + p_t.argmax(1)) * 2 + p_s.argmax(1), minlength=8)
        rows += len(frame)
    J = joint.reshape(2, 2, 2)  # [label, teacher, student]
    return {"rows": rows, "accuracy_teacher": float((J[0, 0].sum() + J[1, 1].sum()) / rows)}


def engine_worker(suite_path: Path, ray_cpus: int = 0) -> dict[str, Any]:
    from audit import load_suite
    from audit.runner import AuditSession

    if ray_cpus:  # a local Ray on this machine's cores, started in the timed process
        import ray

        ray.init(num_cpus=ray_cpus, include_dashboard=False, log_to_driver=False)
    session = AuditSession(cache_dir=None)
    run = session.run_for(load_suite(suite_path))
    results = run.run_all()
    errors = [c.error for c in results if c.error]
    if errors:
        raise SystemExit(errors[0])
    acc = next(c for c in results if c.name == "accuracy").measurements[0]
    return {"rows": int(acc.evidence["trials"]),
            "accuracy_teacher": acc.teacher.value if acc.teacher else None,
            "statuses": {c.name: c.status.value for c in results}}


# --------------------------------------------------------------------------- driver
def timed(args: list[str]) -> dict[str, Any]:
    """Run ``args`` under /usr/bin/time -v: wall seconds, peak RSS (MiB) and the JSON it prints."""
    proc = subprocess.run(["/usr/bin/time", "-v", *args], capture_output=True, text=True,
                          cwd=ROOT, env={**os.environ, "PYTHONHASHSEED": "0"})
    if proc.returncode != 0:
        raise SystemExit(f"{' '.join(args)} failed:\n{proc.stderr[-3000:]}")
    rss = int(re.search(r"Maximum resident set size \(kbytes\): (\d+)", proc.stderr).group(1))
    wall = re.search(r"Elapsed \(wall clock\) time \(h:mm:ss or m:ss\): ([\d:.]+)", proc.stderr)
    parts = [float(p) for p in wall.group(1).split(":")]
    seconds = sum(p * 60 ** i for i, p in enumerate(reversed(parts)))
    out = json.loads(proc.stdout.strip().splitlines()[-1])
    return {"seconds": seconds, "rss_mib": rss / 1024, **out}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--sizes", default=",".join(map(str, SIZES)))
    ap.add_argument("--batch-rows", type=int, default=BATCH_ROWS)
    ap.add_argument("--memory-at", default="1000000", help="sizes also run in memory")
    ap.add_argument("--check", action="store_true")
    ap.add_argument("--no-ray", action="store_true", help="skip the Ray engine's runs")
    ap.add_argument("--worker", choices=("floor", "engine"), help=argparse.SUPPRESS)
    ap.add_argument("--ray-cpus", type=int, default=0, help=argparse.SUPPRESS)
    ap.add_argument("--path", type=Path, help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.worker == "floor":
        print(json.dumps(floor_worker(args.path, args.batch_rows)))
        return 0
    if args.worker == "engine":
        print(json.dumps(engine_worker(args.path, args.ray_cpus)))
        return 0
    sizes = [int(s) for s in args.sizes.split(",") if s]
    in_memory = {int(s) for s in args.memory_at.split(",") if s}
    me = [sys.executable, str(Path(__file__).resolve())]
    rows: list[dict[str, Any]] = []
    started = time.perf_counter()
    for n in sizes:
        table = make_table(n, args.batch_rows)
        runs = {"floor": me + ["--worker", "floor", "--path", str(table),
                               "--batch-rows", str(args.batch_rows)],
                "stream": me + ["--worker", "engine", "--path",
                                str(write_suite(table, args.batch_rows, "stream"))]}
        if not args.no_ray:
            runs["ray"] = me + ["--worker", "engine", "--ray-cpus", str(os.cpu_count() or 2),
                                "--path", str(write_suite(table, args.batch_rows, "ray"))]
        if n in in_memory:
            runs["memory"] = me + ["--worker", "engine", "--path",
                                   str(write_suite(table, args.batch_rows, "memory"))]
        for name, cmd in runs.items():
            got = timed(cmd)
            rows.append({**got, "counted": got["rows"], "rows": n, "run": name})
            print(f"  {n:>11,} {name:<7} {got['seconds']:8.1f} s  {got['rss_mib']:8.0f} MiB",
                  flush=True)
    print()
    print(f"{'rows':>11} | {'run':<7} | {'wall s':>8} | {'rows/s':>10} | {'peak RSS MiB':>12} | "
          f"{'x floor':>7}")
    print("-" * 72)
    floor = {r["rows"]: r for r in rows if r["run"] == "floor"}
    for r in rows:
        ratio = r["seconds"] / floor[r["rows"]]["seconds"]
        print(f"{r['rows']:>11,} | {r['run']:<7} | {r['seconds']:>8.1f} | "
              f"{r['rows'] / r['seconds']:>10,.0f} | {r['rss_mib']:>12,.0f} | {ratio:>7.2f}")
    ok = True
    stream = {r["rows"]: r for r in rows if r["run"] == "stream"}
    big = max(sizes)
    if big in stream:
        t = stream[big]["seconds"] / floor[big]["seconds"]
        met = t <= TARGET_TIME
        ok &= met
        print(f"\ntarget stream <= {TARGET_TIME}x floor at {big:,} rows: {t:.2f}x "
              f"{'met' if met else 'MISSED'}")
    on_ray = {r["rows"]: r for r in rows if r["run"] == "ray"}
    if big in on_ray and big in stream:
        t = on_ray[big]["seconds"] / stream[big]["seconds"]
        met = t <= TARGET_RAY
        ok &= met
        print(f"target ray <= {TARGET_RAY}x local stream at {big:,} rows: {t:.2f}x "
              f"{'met' if met else 'MISSED'}")
    if 1_000_000 in stream and big != 1_000_000:
        m = stream[big]["rss_mib"] / stream[1_000_000]["rss_mib"]
        met = m <= TARGET_RSS
        ok &= met
        print(f"target stream peak RSS at {big:,} <= {TARGET_RSS}x the 1,000,000-row run: "
              f"{m:.2f}x {'met' if met else 'MISSED'}")
    for r in rows:  # every engine counts the floor's rows and its teacher accuracy
        f = floor[r["rows"]]
        if r["counted"] != r["rows"] or abs(r["accuracy_teacher"] - f["accuracy_teacher"]) > 1e-12:
            raise SystemExit(f"{r['run']} at {r['rows']:,} rows disagrees with the floor: "
                             f"accuracy {r['accuracy_teacher']} vs {f['accuracy_teacher']}")
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "bench_scale.json").write_text(json.dumps(
        {"rows": rows, "batch_rows": args.batch_rows, "cores": os.cpu_count(),
         "python": platform.python_version()}, indent=2))
    print(f"machine: {os.cpu_count()} cores, Python {platform.python_version()}; "
          f"wall time {time.perf_counter() - started:.0f} s; raw: benchmarks/results/bench_scale.json")
    return 0 if ok or not args.check else 1


if __name__ == "__main__":
    raise SystemExit(main())
