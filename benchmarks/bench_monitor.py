#!/usr/bin/env python
"""The production monitor's throughput: windows per second, as whole processes.

Workload: 100 batch files of 10,000 rows each (1M rows), drawn with a fixed seed from the
Arrests eval rows (``fixtures/build/arrests/eval.csv``), with both models' probabilities logged
beside the features (computed once, before timing). Each case is one whole process,
``distill-audit monitor <file>`` on a fresh store, measured with ``/usr/bin/time -v`` (wall
seconds and peak RSS), after one untimed warm-up run that fills the prediction cache for the
reference (a deployed monitor has it):

1. ``logged``: both models' outputs logged (``outputs.student`` and ``outputs.teacher``);
2. ``shadow 10%``: the student's outputs logged, the teacher (the skops forest) run by the
   monitor on a seeded 10% of each window's rows;
3. ``rerun``: the ``logged`` monitor again on its full store: nothing to judge (reading the
   batches, hashing them and rebuilding the trend page only).

Each window's work: reading its file, typing the columns, 6 measurements with a paired
bootstrap of 1000 replicates, drift of 7 columns (PSI, KS / chi-squared), one SQLite
transaction with 10,000 per-row predictions; then the trend export (every window's
measurements and realized accuracy) and its HTML page.

Run from the repository root: ``python benchmarks/bench_monitor.py [--windows 100]
[--rows 10000]``.
"""

from __future__ import annotations

import argparse
import os
import platform
import re
import shlex
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd
import yaml

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from fixtures.build import build_all  # noqa: E402


def _workload(folder: Path, windows: int, rows: int) -> Path:
    """``windows`` batch files of ``rows`` rows with both models' logged probabilities."""
    import skops.io as sio

    arrests = ROOT / "fixtures" / "build" / "arrests"
    ev = pd.read_csv(arrests / "eval.csv").drop(columns="released")
    models = {who: sio.load(arrests / f"{who}.skops",
                            trusted=sio.get_untrusted_types(file=arrests / f"{who}.skops"))
              for who in ("teacher", "student")}
    P = {who: m.predict_proba(ev) for who, m in models.items()}
    rng = np.random.default_rng(0)
    out = folder / "batches"
    out.mkdir()
    for b in range(windows):
        idx = rng.integers(0, len(ev), rows)
        frame = ev.iloc[idx].reset_index(drop=True)
        frame.insert(0, "row_id", [f"b{b:03d}r{i:06d}" for i in range(rows)])
        for who in ("student", "teacher"):
            frame[f"{who}_No"], frame[f"{who}_Yes"] = P[who][idx, 0], P[who][idx, 1]
        frame.to_csv(out / f"batch-{b + 1:03d}.csv", index=False)
    return out


def _monitor(folder: Path, batches: Path, name: str, outputs: dict[str, object]) -> Path:
    raw = {"version": 1, "name": name, "suite": str(ROOT / "suites" / "arrests.audit.yaml"),
           "batches": {"folder": str(batches), "window": "batch", "id": "row_id"},
           "outputs": outputs, "store": str(folder / name / "monitor.sqlite"),
           "alerts": {"agreement": {"metric": "agreement", "gate": {"min": 0.9}, "for": 3},
                      "drop": {"metric": "estimated_accuracy_drop", "gate": {"max": 0.03}}}}
    path = folder / f"{name}.monitor.yaml"
    path.write_text(yaml.safe_dump(raw))
    return path


def _timed(path: Path, cache: Path) -> tuple[float, float, int]:
    """Wall seconds, peak RSS (MB) and exit code of one whole monitor process."""
    cli = str(Path(sys.executable).parent / "distill-audit")
    cmd = ["/usr/bin/time", "-v", cli, "monitor", str(path), "--cache-dir", str(cache)]
    proc = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True)
    if proc.returncode not in (0, 1):
        raise RuntimeError(proc.stderr[-2000:])
    wall = re.search(r"Elapsed \(wall clock\) time .*: (?:(\d+):)?(\d+):([\d.]+)", proc.stderr)
    rss = re.search(r"Maximum resident set size \(kbytes\): (\d+)", proc.stderr)
    assert wall and rss, proc.stderr[-1000:]
    h, m, s = wall.groups()
    seconds = int(h or 0) * 3600 + int(m) * 60 + float(s)
    return seconds, int(rss.group(1)) / 1024, proc.returncode


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--windows", type=int, default=100)
    parser.add_argument("--rows", type=int, default=10_000)
    args = parser.parse_args()
    load, started = os.getloadavg(), time.perf_counter()
    build_all()
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        cache = folder / "cache"
        batches = _workload(folder, args.windows, args.rows)
        logged = {"student": ["student_No", "student_Yes"],
                  "teacher": ["teacher_No", "teacher_Yes"]}
        warm = _monitor(folder, _workload_copy(batches, folder, 1), "warm", logged)
        _timed(warm, cache)  # fills the reference's prediction cache
        cases = [("logged (both models' outputs in the batches)",
                  _monitor(folder, batches, "logged", logged)),
                 ("shadow 10% (teacher run by the monitor)",
                  _monitor(folder, batches, "shadow", {"student": logged["student"],
                                                       "shadow": 0.1}))]
        rows = []
        for what, path in cases:
            wall, rss, _ = _timed(path, cache)
            rows.append((what, wall, rss))
        wall, rss, _ = _timed(cases[0][1], cache)
        rows.append(("rerun of logged (nothing new to judge)", wall, rss))
    n = args.windows
    print(f"## bench_monitor: {n} windows of {args.rows:,} rows, whole processes "
          "(/usr/bin/time -v)\n")
    print("| case | wall s | windows / s | rows / s | peak RSS MB |")
    print("|---|---|---|---|---|")
    for what, wall, rss in rows:
        rate = "" if what.startswith("rerun") else f"{n / wall:.1f}"
        per = "" if what.startswith("rerun") else f"{n * args.rows / wall:,.0f}"
        print(f"| {what} | {wall:.1f} | {rate} | {per} | {rss:.0f} |")
    cpu = "?"
    try:
        cpu = next(line.split(":", 1)[1].strip() for line in
                   Path("/proc/cpuinfo").read_text().splitlines() if line.startswith("model name"))
    except (OSError, StopIteration):
        pass
    head = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True,
                          text=True).stdout.strip()
    print(f"\nmachine: {cpu}, cores={os.cpu_count()}, python={platform.python_version()}; load "
          f"{'/'.join(f'{v:.2f}' for v in load)} at start; code: git {head}")
    print(f"command: {shlex.join([os.path.relpath(sys.executable, ROOT), *sys.argv])} "
          f"({time.perf_counter() - started:.0f} s)")
    return 0


def _workload_copy(batches: Path, folder: Path, first: int) -> Path:
    out = folder / "warm-batches"
    out.mkdir()
    for p in sorted(batches.glob("*.csv"))[:first]:
        (out / p.name).write_bytes(p.read_bytes())
    return out


if __name__ == "__main__":
    raise SystemExit(main())
