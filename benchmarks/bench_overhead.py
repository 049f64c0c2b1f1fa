#!/usr/bin/env python
"""What does distill-audit cost over the bare floor? Whole processes, cold and cached.

Workload (the one issue 12 measures): 20 numeric features and 2 sensitive columns, a
HistGradientBoosting teacher and a LogisticRegression student (both skops files), checks
accuracy, f1, roc_auc, log_loss, agreement, ece, demographic parity and equalized odds by
two columns plus their intersection, worst-group accuracy and max_psi, JSON + HTML report.

Three commands are timed, each as a fresh process (``os.wait4`` gives wall time and the peak
RSS of that process), interleaved round by round, one BLAS/OpenMP thread:

* **floor**: ``python bench_overhead.py floor DIR`` -- read the eval and train CSVs with
  pandas, ``skops.io.load`` both models, one ``predict_proba`` each, then every metric of the
  workload with direct numpy / scikit-learn calls (point values only: no intervals, no report).
  torch is hidden from this process, as in an install without it: the floor pays for none of
  what the workload does not use.
* **cold**: ``distill-audit run SUITE --no-cache`` (pytest, the suite, both models loaded and
  predicting once, 1000 bootstrap replicates, every gate, the JSON and HTML reports).
* **cached**: the same command without ``--no-cache``, over a cache one untimed run filled.

The cached run's values are checked equal to the cold run's, and the cold run's point values
equal to the floor's (to 1e-9), at every size. The table shows medians of the rounds.

Usage (from the repository root; the data are generated once under ``benchmarks/results/data``)::

    .venv/bin/python benchmarks/bench_overhead.py                  # 10k, 100k, 1M; 3 rounds
    .venv/bin/python benchmarks/bench_overhead.py --sizes 10000 --rounds 1
    .venv/bin/python benchmarks/bench_overhead.py --check          # exit 1 if a target is missed
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT / "benchmarks" / "results" / "data" / "overhead"
RESULTS = ROOT / "benchmarks" / "results"
FEATURES = [f"x{i}" for i in range(20)]
SENSITIVE = ["group", "region"]
TARGET = "label"
TRAIN_ROWS = 20_000
BINS = 15
PSI_BINS = 10
THREADS = {k: "1" for k in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS",
                            "NUMEXPR_NUM_THREADS")}
# (size, ratio name) -> target, from the issue
TARGETS = {
    "cold/floor": {10_000: 2.0, 100_000: 1.5, 1_000_000: 1.3},
    "cached/cold": {10_000: 0.6, 100_000: 0.3, 1_000_000: 0.3},
    "rss/floor": {10_000: 1.5, 100_000: 1.5, 1_000_000: 1.3},
}
CHECKS = {
    "accuracy": {"metric": "accuracy", "gate": {"max_regression": 0.05}},
    "f1": {"metric": "f1", "gate": {"max_regression": 0.05}},
    "roc_auc": {"metric": "roc_auc", "gate": {"max_regression": 0.05}},
    "log_loss": {"metric": "log_loss", "gate": {"max_relative_regression": 0.5}},
    "agreement": {"metric": "agreement", "gate": {"min": 0.7}},
    "ece": {"metric": "ece", "bins": BINS, "gate": {"max_regression": 0.05}},
    "parity": {"metric": "demographic_parity_difference", "by": SENSITIVE,
               "gate": {"max_regression": 0.05}},
    "odds": {"metric": "equalized_odds_difference", "by": SENSITIVE,
             "gate": {"max_regression": 0.05}},
    "worst_group": {"metric": "worst_group_accuracy", "by": SENSITIVE,
                    "gate": {"max_regression": 0.05}},
    "psi": {"metric": "max_psi", "bins": PSI_BINS, "gate": {"max": 0.25}},
}


# --------------------------------------------------------------------------- data and models
def _frame(n: int, seed: int) -> Any:
    import numpy as np
    import pandas as pd

    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, len(FEATURES)))
    group = rng.choice(["a", "b", "c"], size=n, p=[0.5, 0.3, 0.2])
    region = rng.choice(["north", "south"], size=n, p=[0.6, 0.4])
    logit = (x[:, :5] @ np.array([1.0, -0.8, 0.6, 0.4, -0.3]) + 0.8 * np.sin(2 * x[:, 5])
             + 0.5 * x[:, 6] * x[:, 7] + np.where(group == "c", -0.4, 0.0) + 0.2 * x[:, 0] ** 2)
    y = (rng.random(n) < 1 / (1 + np.exp(-logit))).astype(int)
    frame = pd.DataFrame(np.round(x, 6), columns=FEATURES)
    frame["group"], frame["region"], frame[TARGET] = group, region, y
    return frame


def build(sizes: list[int]) -> dict[str, Path]:
    """The train table, both models and one eval table per size (reused when present)."""
    DATA.mkdir(parents=True, exist_ok=True)
    paths = {"train": DATA / "train.csv", "teacher": DATA / "teacher.skops",
             "student": DATA / "student.skops"}
    if not all(p.exists() for p in paths.values()):
        import skops.io as sio
        from sklearn.ensemble import HistGradientBoostingClassifier
        from sklearn.linear_model import LogisticRegression

        train = _frame(TRAIN_ROWS, seed=1)
        train.to_csv(paths["train"], index=False)
        x, y = train[FEATURES], train[TARGET].to_numpy()
        teacher = HistGradientBoostingClassifier(max_iter=200, random_state=0).fit(x, y)
        student = LogisticRegression(max_iter=1000).fit(x, teacher.predict(x))
        sio.dump(teacher, paths["teacher"])
        sio.dump(student, paths["student"])
    for n in sizes:
        paths[f"eval{n}"] = DATA / f"eval_{n}.csv"
        if not paths[f"eval{n}"].exists():
            _frame(n, seed=2 + n).to_csv(paths[f"eval{n}"], index=False)
    return paths


def write_suite(paths: dict[str, Path], n: int) -> Path:
    import skops.io as sio
    import yaml

    trusted = sorted(set(sio.get_untrusted_types(file=paths["teacher"]))
                     | set(sio.get_untrusted_types(file=paths["student"])))
    suite = {
        "version": 1, "name": f"overhead-{n}",
        "data": {"eval": str(paths[f"eval{n}"]), "train": str(paths["train"]), "target": TARGET,
                 "positive": 1, "sensitive": SENSITIVE, "features": FEATURES},
        "teacher": {"skops": str(paths["teacher"]), "trusted_types": trusted},
        "student": {"skops": str(paths["student"]), "trusted_types": trusted},
        "settings": {"seed": 0, "bootstrap": 1000},
        "checks": CHECKS,
    }
    out = DATA / f"overhead_{n}.audit.yaml"
    out.write_text(yaml.safe_dump(suite, sort_keys=False))
    return out


# --------------------------------------------------------------------------- the floor
class _NoTorch:
    """A meta-path finder that makes ``import torch`` fail, as in an install without it."""

    def find_spec(self, name: str, path: Any, target: Any = None) -> None:
        if name == "torch" or name.startswith("torch."):
            raise ModuleNotFoundError(f"No module named {name!r}", name=name)


def floor(folder: Path, n: int) -> dict[str, float]:
    """Every point value of the workload, computed directly; printed as JSON."""
    sys.meta_path.insert(0, _NoTorch())  # type: ignore[arg-type]
    import numpy as np
    import pandas as pd
    import skops.io as sio
    from sklearn.metrics import accuracy_score, f1_score, log_loss, roc_auc_score

    ev = pd.read_csv(folder / f"eval_{n}.csv")
    train = pd.read_csv(folder / "train.csv")
    x, y = ev[FEATURES], ev[TARGET].to_numpy()
    out: dict[str, float] = {}
    preds = {}
    for role in ("teacher", "student"):
        path = folder / f"{role}.skops"
        model = sio.load(path, trusted=sio.get_untrusted_types(file=path))
        preds[role] = model.predict_proba(x)
    groups = {c: ev[c].to_numpy() for c in SENSITIVE}
    groups["group&region"] = (ev["group"] + "&" + ev["region"]).to_numpy()
    for role, p in preds.items():
        pos, top = p[:, 1], p.argmax(1)
        out[f"{role}.accuracy"] = accuracy_score(y, top)
        out[f"{role}.f1"] = f1_score(y, top)
        out[f"{role}.roc_auc"] = roc_auc_score(y, pos)
        out[f"{role}.log_loss"] = log_loss(y, p, labels=[0, 1])
        conf = p.max(1)
        idx = np.minimum((conf * BINS).astype(int), BINS - 1)
        hits = (top == y).astype(float)
        ece = sum(abs(hits[idx == b].mean() - conf[idx == b].mean()) * (idx == b).sum()
                  for b in range(BINS) if (idx == b).any()) / len(y)
        out[f"{role}.ece"] = float(ece)
        parity, odds, worst = 0.0, 0.0, 1.0
        for g in groups.values():
            names = np.unique(g)
            rates = [top[g == k].mean() for k in names]
            parity = max(parity, max(rates) - min(rates))
            tpr = [top[(g == k) & (y == 1)].mean() for k in names]
            fpr = [top[(g == k) & (y == 0)].mean() for k in names]
            odds = max(odds, max(max(tpr) - min(tpr), max(fpr) - min(fpr)))
            worst = min(worst, min(hits[g == k].mean() for k in names))
        out[f"{role}.parity"], out[f"{role}.odds"] = float(parity), float(odds)
        out[f"{role}.worst_group"] = float(worst)
    out["agreement"] = float((preds["teacher"].argmax(1) == preds["student"].argmax(1)).mean())
    psi = 0.0
    for col in FEATURES:
        ref, cur = train[col].to_numpy(), ev[col].to_numpy()
        edges = np.unique(np.quantile(ref, np.linspace(0, 1, PSI_BINS + 1)))
        edges[0], edges[-1] = -np.inf, np.inf
        a = np.histogram(ref, edges)[0] / len(ref)
        b = np.histogram(cur, edges)[0] / len(cur)
        a, b = np.clip(a, 1e-4, None), np.clip(b, 1e-4, None)
        psi = max(psi, float(((b - a) * np.log(b / a)).sum()))
    out["max_psi"] = psi
    return out


# --------------------------------------------------------------------------- processes
def timed(cmd: list[str], cwd: Path) -> tuple[float, float, str]:
    """Wall seconds, peak RSS (MB) and stdout of one whole process."""
    env = {**os.environ, **THREADS}
    start = time.perf_counter()
    proc = subprocess.Popen(cmd, cwd=cwd, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    assert proc.stdout is not None
    out = proc.stdout.read().decode()
    _, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - start
    proc.returncode = os.waitstatus_to_exitcode(status)
    if proc.returncode not in (0, 1):  # 1 = a gate failed, still a measurement
        raise SystemExit(f"{' '.join(cmd)} exited {proc.returncode}:\n{out[-3000:]}")
    return wall, usage.ru_maxrss / 1024, out


def harness_cmd(suite: Path, report: Path, cold: bool, cache: Path) -> list[str]:
    exe = Path(sys.executable).with_name("distill-audit")
    cmd = [str(exe), "run", str(suite), "-q", "--json", str(report.with_suffix(".json")),
           "--report", str(report.with_suffix(".html"))]
    return cmd + (["--no-cache"] if cold else []) + ["--cache-dir", str(cache)]


def values(report: Path) -> dict[str, Any]:
    doc = json.loads(report.read_text())
    out = {}
    for check in doc["checks"]:
        for m in check.get("measurements", []):
            out[f"{check['name']}.{m.get('metric')}"] = (m.get("teacher"), m.get("student"))
    return out


def compare_floor(report: Path, fl: dict[str, float]) -> list[str]:
    """Which of the floor's values the harness's report does not reproduce (to 1e-9)."""
    doc = json.loads(report.read_text())
    got: dict[str, float] = {}
    for check in doc["checks"]:
        for m in check.get("measurements", []):
            for role in ("teacher", "student"):
                if isinstance(m.get(role), dict) and "value" in m[role]:
                    got[f"{role}.{check['name']}"] = m[role]["value"]
            if check["name"] in ("agreement", "psi"):  # pairwise: one value, under "student"
                got["agreement" if check["name"] == "agreement" else "max_psi"] = m["student"]["value"]
    return [f"{k}: floor {v!r} harness {got.get(k)!r}" for k, v in fl.items()
            if k not in got or abs(got[k] - v) > 1e-9]


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("mode", nargs="?", default="bench", choices=["bench", "floor", "prepare"])
    p.add_argument("folder", nargs="?", type=Path)
    p.add_argument("--n", type=int)
    p.add_argument("--sizes", default="10000,100000,1000000")
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--check", action="store_true")
    args = p.parse_args()
    sizes = [int(s) for s in args.sizes.split(",")]
    if args.mode == "floor":
        print(json.dumps(floor(args.folder, args.n)))
        return 0
    if args.mode == "prepare":
        paths = build(sizes)
        print(json.dumps({n: str(write_suite(paths, n)) for n in sizes}))
        return 0
    # This process stays small (standard library only) and builds the data in a child: a
    # child's peak RSS starts at its parent's RSS when it was forked (Linux carries the
    # high-water mark across fork and exec), so a parent holding scikit-learn would raise
    # every measured peak to its own.
    prepared = subprocess.run([sys.executable, __file__, "prepare", "--sizes", args.sizes],
                              check=True, capture_output=True, text=True, env={**os.environ, **THREADS})
    suites = {int(n): Path(p) for n, p in json.loads(prepared.stdout.splitlines()[-1]).items()}
    work = RESULTS / "overhead"
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    runs: dict[tuple[int, str], list[tuple[float, float]]] = {}
    problems: list[str] = []
    for n in sizes:  # fill each size's cache once, untimed
        timed(harness_cmd(suites[n], work / f"fill{n}", False, work / f"cache{n}"), ROOT)
    for r in range(args.rounds):
        for n in sizes:
            order = ["floor", "cold", "cached"]
            order = order if r % 2 == 0 else order[::-1]
            for kind in order:
                if kind == "floor":
                    cmd = [sys.executable, __file__, "floor", str(DATA), "--n", str(n)]
                else:
                    cmd = harness_cmd(suites[n], work / f"{kind}{n}", kind == "cold",
                                      work / f"cache{n}")
                wall, rss, out = timed(cmd, ROOT)
                runs.setdefault((n, kind), []).append((wall, rss))
                if kind == "floor":
                    fl = json.loads(out.strip().splitlines()[-1])
            problems += [f"{n} rows: {m}" for m in compare_floor(work / f"cold{n}.json", fl)]
            if values(work / f"cold{n}.json") != values(work / f"cached{n}.json"):
                problems.append(f"{n} rows: the cached run's values differ from the cold run's")
    print(table(sizes, runs))
    misses = targets(sizes, runs)
    for line in problems + misses:
        print("MISS" if line in misses else "DIFF", line)
    if not problems:
        print("values: the harness's point values equal the floor's to 1e-9 at every size; "
              "cached values equal cold ones")
    (RESULTS / "bench_overhead.json").write_text(json.dumps(
        {f"{n}:{k}": v for (n, k), v in runs.items()}, indent=1))
    return 1 if problems or (args.check and misses) else 0


def _median(runs: dict[tuple[int, str], list[tuple[float, float]]], n: int, kind: str,
            i: int) -> float:
    return statistics.median(r[i] for r in runs[(n, kind)])


def ratios(runs: dict[tuple[int, str], list[tuple[float, float]]], n: int) -> dict[str, float]:
    f, c, h = (_median(runs, n, k, 0) for k in ("floor", "cold", "cached"))
    rf, rc = _median(runs, n, "floor", 1), _median(runs, n, "cold", 1)
    rh = _median(runs, n, "cached", 1)
    return {"cold/floor": c / f, "cached/cold": h / c, "rss/floor": max(rc, rh) / rf}


def table(sizes: list[int], runs: dict[tuple[int, str], list[tuple[float, float]]]) -> str:
    head = ("| rows | floor s | cold s | cached s | cold/floor | cached/cold | floor MB | cold MB "
            "| cached MB | RSS/floor |\n|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    lines = [head]
    for n in sizes:
        r = ratios(runs, n)
        w = [_median(runs, n, k, 0) for k in ("floor", "cold", "cached")]
        m = [_median(runs, n, k, 1) for k in ("floor", "cold", "cached")]
        lines.append(f"| {n:,} | {w[0]:.2f} | {w[1]:.2f} | {w[2]:.2f} | {r['cold/floor']:.2f}x "
                     f"| {r['cached/cold']:.2f}x | {m[0]:.0f} | {m[1]:.0f} | {m[2]:.0f} "
                     f"| {r['rss/floor']:.2f}x |")
    return "\n".join(lines)


def targets(sizes: list[int], runs: dict[tuple[int, str], list[tuple[float, float]]]) -> list[str]:
    out = []
    for n in sizes:
        r = ratios(runs, n)
        for name, by_size in TARGETS.items():
            if n in by_size and r[name] > by_size[n]:
                out.append(f"{n:,} rows: {name} {r[name]:.2f}x > target {by_size[n]}x")
    return out


if __name__ == "__main__":
    raise SystemExit(main())
