"""Are two checkouts' example reports identical, measurement by measurement?

Two modes:

    # run every suites/*.audit.yaml of a checkout through that checkout's own code
    python benchmarks/compare_reports.py --baseline benchmarks/results/baseline-issue11 \\
        --checkout /tmp/base11
    # compare two such folders; prints a table of differences, exit 1 on any
    python benchmarks/compare_reports.py benchmarks/results/baseline-issue11 \\
        benchmarks/results/current-issue11

Each suite runs in a fresh process, ``PYTHONPATH=<checkout> python -m audit.cli run <suite>
--no-cache -q --json <out>`` with the checkout as working directory and
``PYTEST_ADDOPTS=--assert=plain`` (see ``_env``); the script first checks that ``audit`` and
``audit.plugin`` really load from the checkout there. The folder gets one
``<suite>.json`` (and ``.html``) per suite and a ``manifest.json`` naming the checkout, its
commit and each run's exit code.

The comparison walks every leaf of both JSON documents (checks by name, everything else by
key and index): every check's status, every measurement's values, intervals, notes and
breakdown, every gate verdict and reason. It ignores only what is inherently a timing, as the
determinism test does (``EXCLUDED`` in ``tests/test_determinism.py``, reused here with its
reasons), and normalises what is a location: the checkout's absolute path (and the output
folder's) becomes ``<checkout>`` (``<out>``) wherever it occurs in a string. Of the timing
checks (latency, speedup) it still compares what is not a timing: which metrics and gates they
have and with which parameters and thresholds.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import subprocess
import sys
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.test_determinism import EXCLUDED as _DETERMINISM_EXCLUDED  # noqa: E402

# What may differ between the two folders, each with the reason: nothing else may.
EXCLUDED: dict[str, str] = {
    **_DETERMINISM_EXCLUDED,
    # both checkouts are at different commits by construction
    "provenance.git.commit": "the checkout's HEAD: differs between checkouts by construction",
    "provenance.git.dirty": "the checkout's state: differs between checkouts by construction",
}
# Of a timing check (an ``EXCLUDED`` entry ``checks[...]``), the leaves that are not timings:
# the last key of the path (list indices stripped), and prefixes of ``params``.
TIMING_CHECK_KEPT = frozenset({
    "name", "description", "location", "source",  # the check
    "metric", "family", "direction",  # its measurements
    "kind", "threshold", "severity", "scope",  # its gates
})
ABSENT = "<absent>"
MANIFEST = "manifest.json"


# -- running a checkout -------------------------------------------------------------------------

def _env(checkout: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "PYTEST_ADDOPTS")}
    env["PYTHONPATH"] = str(checkout)
    # Loaded from PYTHONPATH (not through the editable install's finder), the plugin's package
    # is already imported when pytest marks it for assertion rewriting, and the checkout's
    # filterwarnings=error turns that warning into an error. A suite has no assert to rewrite.
    env["PYTEST_ADDOPTS"] = "--assert=plain"
    return env


def _imported_from(checkout: Path) -> list[Path]:
    """Where ``audit`` and its pytest plugin load from, with the environment of the runs."""
    code = "import audit, audit.plugin; print(audit.__file__); print(audit.plugin.__file__)"
    done = subprocess.run([sys.executable, "-c", code], cwd=checkout, env=_env(checkout),
                          capture_output=True, text=True, check=True)
    return [Path(line).resolve() for line in done.stdout.split()]


def _commit(checkout: Path) -> str:
    done = subprocess.run(["git", "rev-parse", "HEAD"], cwd=checkout, capture_output=True,
                          text=True)
    return done.stdout.strip() or "unknown"


def _uncommitted(checkout: Path) -> list[str]:
    """The files under ``audit/`` that differ from the commit (the code that was run)."""
    done = subprocess.run(["git", "status", "--porcelain", "--", "audit"], cwd=checkout,
                          capture_output=True, text=True)
    return done.stdout.splitlines()


def run_checkout(checkout: Path, out: Path) -> int:
    """Write the JSON report of every ``suites/*.audit.yaml`` of ``checkout`` into ``out``.

    Returns 0 if every suite gave a report (whatever its verdict), 2 otherwise.
    """
    checkout = checkout.resolve()
    loaded = _imported_from(checkout)
    if not all(path.is_relative_to(checkout) for path in loaded):
        print(f"compare_reports: PYTHONPATH={checkout} imports {', '.join(map(str, loaded))}, "
              f"not the checkout's code", file=sys.stderr)
        return 2
    out = out.resolve()
    out.mkdir(parents=True, exist_ok=True)
    suites = sorted(p.relative_to(checkout) for p in (checkout / "suites").glob("*.audit.yaml"))
    runs: dict[str, int] = {}
    for suite in suites:
        stem = suite.name.removesuffix(".audit.yaml")
        report = out / f"{stem}.json"
        report.unlink(missing_ok=True)
        print(f"compare_reports: {checkout} {suite} -> {report}", flush=True)
        done = subprocess.run(
            [sys.executable, "-m", "audit.cli", "run", str(suite), "--no-cache", "-q",
             "--json", str(report), "--report", str(out / f"{stem}.html")],
            cwd=checkout, env=_env(checkout), capture_output=True, text=True)
        runs[stem] = done.returncode
        if not report.exists():
            print(done.stdout[-3000:] + done.stderr[-3000:], file=sys.stderr)
    manifest = {"checkout": str(checkout), "commit": _commit(checkout),
                "uncommitted": _uncommitted(checkout), "audit": [str(p) for p in loaded],
                "out": str(out),
                "python": sys.executable, "exit_codes": runs}
    (out / MANIFEST).write_text(json.dumps(manifest, indent=1, sort_keys=True) + "\n")
    missing = [s for s in runs if not (out / f"{s}.json").exists()]
    if missing:
        print(f"compare_reports: no report for {', '.join(missing)}", file=sys.stderr)
        return 2
    return 0


# -- comparing ----------------------------------------------------------------------------------

def leaves(value: Any, path: str = "") -> Iterator[tuple[str, Any]]:
    """Every leaf of a JSON document with its path (checks named by their name, not index).

    Empty containers are leaves too, so ``[]`` and ``{}`` differ from each other and from an
    absent key.
    """
    if isinstance(value, dict) and value:
        for key, item in value.items():
            yield from leaves(item, f"{path}.{key}" if path else key)
    elif isinstance(value, list) and value and path == "checks":
        for item in value:
            yield from leaves(item, f"checks[{item['name']}]")
    elif isinstance(value, list) and value:
        for i, item in enumerate(value):
            yield from leaves(item, f"{path}[{i}]")
    else:
        yield path, value


def _timing_check(path: str) -> bool:
    return any(path.startswith(f"{key}.") for key in EXCLUDED if key.startswith("checks["))


def excluded(path: str) -> str | None:
    """The reason ``path`` is not compared, or None if it is."""
    last = path.split(".")[-1]
    if last == "seconds":
        return EXCLUDED["seconds"]
    if path in EXCLUDED:
        return EXCLUDED[path]
    if _timing_check(path):
        keys = [part.split("[")[0] for part in path.split(".")[1:]]
        if keys and (keys[-1] in TIMING_CHECK_KEPT or "params" in keys):
            return None
        return EXCLUDED[path.split(".")[0]]
    return None


def normalise(value: Any, roots: Mapping[str, str]) -> Any:
    """``value`` with every root path in its strings replaced by its placeholder."""
    if isinstance(value, str):
        for root in sorted(roots, key=len, reverse=True):
            value = value.replace(root, roots[root])
        return value
    if isinstance(value, dict):
        return {k: normalise(v, roots) for k, v in value.items()}
    if isinstance(value, list):
        return [normalise(v, roots) for v in value]
    return value


def _same(a: Any, b: Any) -> bool:
    if isinstance(a, float) and isinstance(b, float) and math.isnan(a) and math.isnan(b):
        return True
    return type(a) is type(b) and a == b


def differences(a: Mapping[str, Any], b: Mapping[str, Any]) -> list[tuple[str, Any, Any]]:
    """``(path, a's value, b's value)`` for every compared leaf that differs."""
    la, lb = dict(leaves(a)), dict(leaves(b))
    paths = list(dict.fromkeys([*la, *lb]))
    return [(p, la.get(p, ABSENT), lb.get(p, ABSENT)) for p in paths
            if excluded(p) is None and not _same(la.get(p, ABSENT), lb.get(p, ABSENT))]


def _roots(folder: Path) -> dict[str, str]:
    roots = {str(folder.resolve()): "<out>"}
    manifest = folder / MANIFEST
    if manifest.exists():
        written = json.loads(manifest.read_text())
        if "out" in written:  # the folder the reports were written to (it may have moved since)
            roots[written["out"]] = "<out>"
        checkout = Path(written["checkout"])
        roots[str(checkout)] = "<checkout>"
        # a checkout's fixtures may be a link into another checkout (the builder is the same)
        build = checkout / "fixtures" / "build"
        if build.exists():
            roots[str(build.resolve())] = "<checkout>/fixtures/build"
    return roots


def compare_folders(a: Path, b: Path) -> list[tuple[str, str, Any, Any]]:
    """``(report, path, a's value, b's value)`` for every difference between two folders."""
    names = sorted(({p.name for p in a.glob("*.json")} | {p.name for p in b.glob("*.json")})
                   - {MANIFEST})
    found: list[tuple[str, str, Any, Any]] = []
    for name in names:
        if not (a / name).exists() or not (b / name).exists():
            found.append((name, "", "present" if (a / name).exists() else ABSENT,
                          "present" if (b / name).exists() else ABSENT))
            continue
        ra = normalise(json.loads((a / name).read_text()), _roots(a))
        rb = normalise(json.loads((b / name).read_text()), _roots(b))
        found += [(name, *d) for d in differences(ra, rb)]
    return found


def _cell(value: Any, width: int = 60) -> str:
    text = json.dumps(value) if not isinstance(value, str) else value
    return text if len(text) <= width else text[: width - 3] + "..."


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("folders", nargs="*", type=Path, help="two report folders to compare")
    parser.add_argument("--baseline", type=Path, metavar="DIR",
                        help="run the checkout's example suites and write their reports here")
    parser.add_argument("--checkout", type=Path, default=ROOT,
                        help="checkout to run with --baseline (default: this one)")
    parser.add_argument("--limit", type=int, default=200, help="rows of the table to print")
    args = parser.parse_args(argv)
    if args.baseline is not None:
        if args.folders:
            parser.error("--baseline takes no folders")
        return run_checkout(args.checkout, args.baseline)
    if len(args.folders) != 2:
        parser.error("give two report folders, or --baseline DIR")
    a, b = args.folders
    for folder in (a, b):
        if not folder.is_dir():
            parser.error(f"not a folder: {folder}")
    found = compare_folders(a, b)
    reports = sorted({p.name for p in a.glob("*.json")} - {MANIFEST})
    if not found:
        counts = []
        for name in reports:
            paths = [p for p, _ in leaves(json.loads((a / name).read_text()))]
            counts.append(f"{name} {sum(excluded(p) is None for p in paths)} of {len(paths)} leaves")
        print(f"compare_reports: {len(reports)} reports identical ({'; '.join(counts)} compared); "
              f"not compared: {', '.join(EXCLUDED)} (see EXCLUDED)")
        return 0
    rows = [("report", "path", str(a), str(b))]
    rows += [(r, p, _cell(x), _cell(y)) for r, p, x, y in found[: args.limit]]
    widths = [max(len(row[i]) for row in rows) for i in range(4)]
    for row in rows:
        print("  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip())
    if len(found) > args.limit:
        print(f"... and {len(found) - args.limit} more")
    print(f"compare_reports: {len(found)} differences")
    return 1


if __name__ == "__main__":
    sys.exit(main())
