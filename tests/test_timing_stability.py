"""Timing that does not flip with load: the speedup estimator against hand-worked numbers, the
stability rule on hand-made timings, the thread settings of a real timing, and a real timing
check run quietly and then beside CPU hogs, whose verdicts must not change.

The load test is ``slow``. ``AUDIT_HOG_REPETITIONS=20 pytest tests/test_timing_stability.py -k
hog`` runs it 20 times (one test per repetition; default 1).
"""

from __future__ import annotations

import dataclasses
import gc
import math
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import numpy as np
import pytest
import yaml

from audit import SuiteRun, load_suite
from audit.checks.catalogue import get_metric
from audit.checks.efficiency import UNIT, block_ratios, blocks, halves, median_interval
from audit.checks.measure import measure_all
from audit.gates import evaluate_gate
from audit.probes.artifacts import ArtifactRequest, Timings
from audit.report.terminal import format_check
from audit.results import CheckResult, Measurement, Status
from audit.spec import GateSpec

NOISY = "the machine was too noisy: "
# the ratios of 12 blocks, in time order: each half spans the range, so the halves agree
RATIOS = [4.0, 8.4, 5.2, 7.2, 6.0, 6.8, 4.4, 8.0, 4.8, 7.6, 5.6, 6.4]


# -- the estimator, by hand ---------------------------------------------------------------
def test_the_median_interval_is_the_order_statistics_a_binomial_table_gives() -> None:
    """n = 8 at 90%: P(B <= 1) = 9/256, so 2 x 9/256 = 0.0703 <= 0.10 and k = 2 (ranks 2 and 7
    of the sorted values), coverage 1 - 18/256; P(B <= 2) = 37/256 would be too much. n = 30 at
    95%: ranks 10 and 21, coverage 1 - 2 P(B <= 9). n = 5 at 95%: even [min, max] covers only
    1 - 2/32 = 93.75%, so there is no interval."""
    assert median_interval(np.array([3.0, 1, 4, 1, 5, 9, 2, 6]), 0.90) == (1.0, 6.0, 1 - 18 / 256)
    low, high, coverage = median_interval(np.arange(1.0, 31.0)[::-1], 0.95)
    assert (low, high) == (10.0, 21.0)
    assert coverage == pytest.approx(1 - 2 * sum(math.comb(30, i) for i in range(10)) / 2**30)
    assert median_interval(np.arange(5.0), 0.95) is None
    assert median_interval(np.arange(6.0), 0.95) == (0.0, 5.0, 1 - 2 / 64)
    assert median_interval(np.array([1.0, np.nan] * 5), 0.95) is None


@pytest.mark.parametrize("n", [6, 7, 12, 15, 24, 30, 101, 1000])
@pytest.mark.parametrize("confidence", [0.9, 0.95, 0.99])
def test_the_median_interval_matches_scipys_binomial(n: int, confidence: float) -> None:
    """The largest k with 2 P(B <= k - 1) <= 1 - confidence, from scipy's binomial."""
    from scipy.stats import binom

    got = median_interval(np.arange(1.0, n + 1), confidence)
    ks = [k for k in range(1, n // 2 + 1) if 2 * binom.cdf(k - 1, n, 0.5) <= 1 - confidence]
    if not ks:
        assert got is None
        return
    k = max(ks)
    assert got is not None and got[:2] == (float(k), float(n + 1 - k))
    assert got[2] == pytest.approx(1 - 2 * binom.cdf(k - 1, n, 0.5), abs=1e-12)


def test_blocks_pair_each_models_calls_with_either_one_first() -> None:
    """Pairs (0, 1) make block 0: the teacher first in pair 0, the student in pair 1. Block
    ratio = mean teacher time / mean student time; an odd last pair is left out."""
    teacher = np.array([10.0, 12, 9, 11, 100])
    student = np.array([1.0, 3, 2, 2, 100])
    assert list(blocks(teacher)) == [11.0, 10.0]
    assert list(block_ratios(teacher, student)) == [5.5, 5.0]


def _timings(ratios: list[float], *, slower_second_half: float = 1.0,
             wall_teacher: float = 1.0) -> Timings:
    """Hand-made timings of one batch size: block b's teacher calls take 10 and 12 ms of CPU
    (mean 11), its student calls 0.9 and 1.1 x 11 / ratios[b] (mean 11 / ratios[b]); the
    second half's student calls ``slower_second_half`` times slower; wall time = CPU time,
    the teacher's ``wall_teacher`` times it (a loaded machine stretching the longer calls)."""
    t, s = [], []
    for b, r in enumerate(ratios):
        slow = slower_second_half if b >= len(ratios) // 2 else 1.0
        t += [10.0, 12.0]
        s += [0.9 * 11 / r * slow, 1.1 * 11 / r * slow]
    cpu = {"teacher": np.array(t), "student": np.array(s)}
    wall = {"teacher": np.array(t) * wall_teacher, "student": np.array(s)}
    models = {who: {"kind": "onnx", "bytes": 100, "parameters": 10} for who in cpu}
    settings = {"threads": 1, "blas": [{"library": "openblas", "api": "blas", "threads": 1,
                                        "before": 2}],
                "torch": None, "onnxruntime": {"student": {"intra_op": 1, "inter_op": 1}},
                "worker": [], "gc": False}
    return Timings({1: wall}, {"teacher": 0, "student": 0}, models, 3, cpu={1: cpu},
                   settings=settings)


def _measure(metric: str, timing: Timings, batch_sizes: tuple[int, ...] = (1,)) -> list[Measurement]:
    return list(measure_all(get_metric(metric), {"batch_sizes": list(batch_sizes)},
                            SimpleNamespace(artifacts={"timings": timing}),
                            SimpleNamespace(n_boot=200, seed=0), 0.95))


def _status(m: Measurement, **bound: float) -> tuple[Status, str]:
    (g,) = evaluate_gate(GateSpec(**bound), m)
    return g.status, g.reason


def test_the_speedup_is_the_median_of_block_ratios_with_its_exact_interval() -> None:
    """12 block ratios 4.0, 4.4, ..., 8.4: median (6.0 + 6.4) / 2 = 6.2; at 95% with 12 values
    k = 3 (2 P(B <= 2) = 2 x 79/4096 = 0.039), so ranks 3 and 10: 4.8 and 7.6. Judged on CPU
    time: the wall times, the teacher's stretched 3x by a loaded machine, give 18.6 beside it."""
    (m,) = _measure("speedup", _timings(RATIOS, wall_teacher=3.0))
    assert m.student.value == pytest.approx(6.2)
    assert m.student.ci == pytest.approx((4.8, 7.6))
    assert m.extra["coverage"] == pytest.approx(1 - 2 * 79 / 4096)
    assert m.extra["clock"] == "cpu"
    assert m.extra["wall_speedup"]["value"] == pytest.approx(18.6)
    assert m.n == 24 and m.evidence == {"confidence": 0.95, "unit": UNIT}
    assert "too_noisy" not in m.extra  # halves 4.0-8.4 and 4.4-8.0 overlap
    first, second = halves(np.array(RATIOS), 0.95)
    assert (first.value, first.ci) == (pytest.approx(6.4), (4.0, 8.4))  # 6 values: [min, max]
    assert (second.value, second.ci) == (pytest.approx(6.0), (4.4, 8.0))
    assert _status(m, min=4.0) == (Status.PASS, "")
    assert _status(m, min=8.0)[0] is Status.FAIL


def test_a_half_three_times_slower_is_inconclusive_because_the_machine_was_noisy() -> None:
    """The second half's student calls 3x slower: its ratios are a third (median 2.0, [1.467,
    2.667]) while the first half's are 6.4 [4.0, 8.4]. The intervals do not overlap, so the
    speedup's interval is widened to hold both: 3.333 [1.467, 8.4] (the whole run alone gives
    [1.867, 6.8]). A gate that interval straddles is INCONCLUSIVE with the noisy-machine reason,
    even min 1.5, which the whole run's interval alone would pass; a gate both halves clear
    passes, and one both halves miss fails: the disagreement never picks a side."""
    (m,) = _measure("speedup", _timings(RATIOS, slower_second_half=3.0))
    assert m.student.value == pytest.approx(10 / 3)
    assert m.student.ci == pytest.approx((11 / 7.5, 8.4))
    assert m.extra["halves"]["first"]["value"] == pytest.approx(6.4)
    assert m.extra["halves"]["second"]["value"] == pytest.approx(2.0)
    halves_text = ("the first 6 blocks give a speedup of 6.400 [4.000, 8.400], the last 6 "
                   "2.000 [1.467, 2.667] (CPU time), intervals that do not overlap")
    for threshold in (1.5, 3.0, 8.0):
        status, reason = _status(m, min=threshold)
        assert status is Status.INCONCLUSIVE, threshold
        assert reason.startswith(NOISY + halves_text), reason
        assert "straddles the threshold" in reason
    assert _status(m, min=1.2) == (Status.PASS, "")
    assert _status(m, min=9.0)[0] is Status.FAIL
    assert any(n.startswith("the two halves of the run disagree: " + halves_text) for n in m.notes)


def test_latency_halves_that_disagree_widen_the_p95_and_say_why() -> None:
    """The student's calls 3x slower in the second half: its median call time shifts from
    about 1.8 to 5.5 ms, intervals apart, so its p95 interval (and the regression's) holds both
    halves' p95 and a budget between them is INCONCLUSIVE, noisy; the teacher did not shift."""
    (m,) = _measure("latency_ms", _timings(RATIOS, slower_second_half=3.0))
    assert set(m.extra["too_noisy"]) == {"student", "regression", "relative_regression"}
    second_p95 = float(np.percentile(_timings(RATIOS, slower_second_half=3.0).cpu[1]["student"][12:], 95))
    assert m.student.ci[1] >= second_p95
    status, reason = _status(m, max=4.0)
    assert status is Status.INCONCLUSIVE
    assert reason.startswith(NOISY + "the student's median call took "), reason
    assert _status(m, max_regression=0.0)[0] is Status.PASS  # far faster than the teacher still
    (steady,) = _measure("latency_ms", _timings(RATIOS))
    assert "too_noisy" not in steady.extra
    assert steady.student.value == pytest.approx(np.percentile(_timings(RATIOS).cpu[1]["student"], 95))


def test_too_few_pairs_skip_the_stability_check_and_say_so() -> None:
    (m,) = _measure("speedup", _timings(RATIOS[:4]))  # 8 pairs, 4 blocks
    assert any(n.startswith("stability check skipped: 4 blocks of two pairs give halves of 2 "
                            "and 2") for n in m.notes), m.notes
    assert any("[min, max] of their ratios covers it with probability 87.5%" in n for n in m.notes)
    assert m.student.ci == pytest.approx((4.0, 8.4))


def test_without_cpu_time_for_a_model_the_gates_judge_wall_time_and_say_so() -> None:
    """A model run in a worker process has no CPU time here (NaN): both models are judged on
    wall time, the note says why, and the stability check still applies."""
    timing = _timings(RATIOS, wall_teacher=3.0)
    cpu = {1: {"teacher": np.full(24, np.nan), "student": timing.cpu[1]["student"]}}
    (m,) = _measure("speedup", dataclasses.replace(timing, cpu=cpu))
    assert m.extra["clock"] == "wall" and m.student.value == pytest.approx(18.6)
    assert "CPU time is not seen for the teacher (a model run in a worker process): judged on " \
           "wall time" in " ".join(m.notes)
    assert "wall_speedup" not in m.extra and "cpu_speedup" not in m.extra
    assert m.method.startswith("median over blocks of the ratio teacher / student, wall time")


def test_timing_words_count_timed_calls_not_eval_rows() -> None:
    (m,) = _measure("speedup", _timings(RATIOS))
    text = format_check(CheckResult("speedup", Status.PASS, (m,)))
    assert "n=24 timed calls per model, median over blocks of the ratio teacher / student, " \
           "CPU time per call; 24 interleaved pairs of timed calls" in text
    assert "eval rows" not in text and "n=30" not in text
    assert "timed with threads pinned to 1 (Python's garbage collector off, as timeit does): " \
           "BLAS/OpenMP openblas 1 (was 2); onnxruntime for the student: intra-op 1, inter-op 1" \
           in text
    (few,) = _measure("speedup", _timings(RATIOS[:2]))  # 4 pairs: below the floor of 5
    status, reason = _status(few, min=1.0)
    assert status is Status.INCONCLUSIVE
    assert reason.startswith("only 4 timed calls per model: speedup needs at least 5 timed calls "
                             "per model to be judged")


# -- a real timing: threads pinned and stated --------------------------------------------
def _suite(folder: Path, built: dict[str, Path], *, repeats: int = 30,
           batch_sizes: tuple[int, ...] = (1, 32, 1024)) -> Path:
    """The example pair: the arrests random forest (skops) and its ONNX student."""
    timing = {"batch_sizes": list(batch_sizes), "repeats": repeats, "max_seconds": 60}
    raw = {"version": 1, "name": "timing",
           "data": {"eval": str(built["arrests/eval.csv"]), "target": "released"},
           "teacher": {"skops": str(built["arrests/teacher.skops"]),
                       "trusted_types": ["sklearn.tree._tree.Tree"]},
           "student": str(built["arrests/student.onnx"]),
           "checks": {"speedup": {"metric": "speedup", **timing, "gate": {"min": 3.0}},
                      "latency": {"metric": "latency_ms", **timing, "gate": {"max": 50.0}}}}
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "timing.audit.yaml"
    path.write_text(yaml.safe_dump(raw))
    return path


def _timed(path: Path) -> tuple[dict[str, CheckResult], Timings]:
    """Both checks run for real, and the one set of timings they shared."""
    run = SuiteRun(load_suite(path))
    results = {name: run.run_check(name) for name in ("speedup", "latency")}
    spec = next(c for c in run.suite.checks if c.name == "speedup")
    (request,) = get_metric("speedup").needs(spec.params)
    assert isinstance(request, ArtifactRequest)
    return results, run.probes.build(request)  # built once, shared by both checks


def test_a_real_timing_pins_threads_states_them_and_restores_them(tmp_path: Path,
                                                                 built: dict[str, Path]) -> None:
    from threadpoolctl import threadpool_info

    path = _suite(tmp_path, built, repeats=4, batch_sizes=(1,))
    run = SuiteRun(load_suite(path))
    table = run.eval_table
    predicted = run.model("student").predict(table)
    run.model("teacher").predict(table)  # every library the models load, loaded
    before = {i["filepath"]: i["num_threads"] for i in threadpool_info()}
    result = run.run_check("speedup")
    assert {i["filepath"]: i["num_threads"] for i in threadpool_info()} == before  # restored
    (m,) = result.measurements
    threads = m.extra["settings"]
    assert threads["threads"] == 1 and threads["blas"] and threads["gc"] is False
    assert gc.isenabled()  # on again
    assert all(b["threads"] == 1 for b in threads["blas"])
    assert threads["onnxruntime"] == {"student": {"intra_op": 1, "inter_op": 1}}
    assert threads["torch"] is None or threads["torch"]["intra_op"] == 1  # skops may bring torch
    assert m.notes[0].startswith("timed with threads pinned to 1 (Python's garbage collector off, "
                                 "as timeit does): BLAS/OpenMP ")
    student = run.model("student")
    (session,) = student.predict.sessions.values()  # the timing session of its own
    options = session.get_session_options()
    assert (options.intra_op_num_threads, options.inter_op_num_threads) == (1, 1)
    assert np.array_equal(student.predict(table), predicted)  # predictions: the default session
    cpu = [r for r in m.breakdown if r["kind"] == "latency"]
    assert all(r["cpu_p50_ms"] is not None and r["cpu_p50_ms"] > 0 for r in cpu)
    assert m.extra["clock"] == "cpu"


# -- the load test ----------------------------------------------------------------------
REPETITIONS = int(os.environ.get("AUDIT_HOG_REPETITIONS", "1"))
HOGS = 2  # as many as this machine's cores: the audit's process then gets well under one
HOG_SECONDS = 300  # a bound on each hog, whatever happens to the test


@contextmanager
def cpu_hogs(n: int, seconds: float) -> Iterator[list[subprocess.Popen[bytes]]]:
    """``n`` processes spinning on a core each for at most ``seconds``, killed on exit."""
    code = f"import time\nend = time.monotonic() + {seconds}\nwhile time.monotonic() < end:\n    pass\n"
    procs = [subprocess.Popen([sys.executable, "-c", code]) for _ in range(n)]
    try:
        time.sleep(0.5)  # started and spinning
        yield procs
    finally:
        for p in procs:
            p.kill()
        for p in procs:
            p.wait(timeout=30)


def _swapped(t: Timings) -> Timings:
    """The same calls with the roles swapped: the forest as the "student"."""
    def swap(d: Any) -> Any:
        return {k: {"teacher": v["student"], "student": v["teacher"]} for k, v in d.items()}

    return dataclasses.replace(t, runs=swap(t.runs), cpu=swap(t.cpu),
                               memory={"teacher": t.memory["student"], "student": t.memory["teacher"]},
                               models={"teacher": t.models["student"], "student": t.models["teacher"]})


def _gates(quiet: dict[str, list[Measurement]]) -> list[tuple[str, int, GateSpec, Status]]:
    """Gates set from the quiet run with a margin of 2x, and the verdict each gave it:
    speedup min at half the interval's low end (PASS) and at twice its high end (FAIL), both
    ways round; the forest-as-student's latency budget at twice its p95's high end (PASS)."""
    out = []
    for name, ms in quiet.items():
        for i, m in enumerate(ms):
            assert m.student.ci is not None
            low, high = m.student.ci
            if name.startswith("speedup"):
                out += [(name, i, GateSpec(min=low / 2), Status.PASS),
                        (name, i, GateSpec(min=high * 2), Status.FAIL)]
            elif name == "latency swapped":
                out.append((name, i, GateSpec(max=high * 2), Status.PASS))
    return out


def _all(results: dict[str, CheckResult], timing: Timings) -> dict[str, list[Measurement]]:
    return {"speedup": list(results["speedup"].measurements),
            "speedup swapped": _measure("speedup", _swapped(timing), (1, 32, 1024)),
            "latency swapped": _measure("latency_ms", _swapped(timing), (1, 32, 1024))}


@pytest.mark.slow
@pytest.mark.parametrize("repetition", range(REPETITIONS))
def test_a_cpu_hog_beside_the_timing_does_not_flip_a_verdict(repetition: int, tmp_path: Path,
                                                           built: dict[str, Path]) -> None:
    """The example pair timed quietly, then beside two CPU-bound processes (the audit then gets
    well under a core: wall times of the forest's calls triple). Every verdict must stay: the
    suite's own gates (speedup >= 3, latency <= 50 ms) and gates set 2x either side of the quiet
    measurement, in both role orders (a slow student too). Wall-clock judging fails this: the
    forest's long calls are preempted far more than the 0.5 ms ONNX calls, so the wall-clock
    speedup rises from ~30 to 45-80 (the FAIL gate at 2x would pass) and the forest's wall p95
    from ~35 to ~110 ms (its 2x budget would fail).

    No speedup gate may even turn INCONCLUSIVE: the hogs run through the whole loaded timing,
    so its halves see the same load, and a too-noisy verdict at a 2x margin would need one
    half's CPU times twice the other's. A latency budget may (never FAIL): a p95 of 30 calls is
    the slowest two, and contention also stretches some calls' CPU time (shared caches and
    memory bandwidth, the hypervisor: 10-15% on most calls here, up to 2x on single ones when
    other work shares the machine), so the p95's interval can reach a 2x budget. Seen once in
    60 repetitions; the speedup, a median, never moved that far."""
    path = _suite(tmp_path, built)
    quiet_results, quiet_timing = _timed(path)
    with cpu_hogs(HOGS, HOG_SECONDS) as procs:
        loaded_results, loaded_timing = _timed(path)
        assert all(p.poll() is None for p in procs), "a hog ended before the timing did"
    for name in ("speedup", "latency"):
        assert quiet_results[name].status == loaded_results[name].status == Status.PASS, (
            name, format_check(quiet_results[name]), format_check(loaded_results[name]))
    quiet, loaded = _all(quiet_results, quiet_timing), _all(loaded_results, loaded_timing)
    flips = []
    for name, i, gate, expected in _gates(quiet):
        (q,) = evaluate_gate(gate, quiet[name][i])
        (got,) = evaluate_gate(gate, loaded[name][i])
        assert q.status is expected, (name, i, gate, q)
        seen = (f"{name} [{quiet[name][i].scope}] {gate}: quiet {q.status} "
                f"{quiet[name][i].student}, loaded {got.status} {loaded[name][i].student} "
                f"({got.reason})")
        if got.status is Status.INCONCLUSIVE and name.startswith("latency"):
            print("tolerated:", seen)  # a p95's tail under contention: see the docstring
        elif got.status is not expected:
            flips.append(seen)
    assert not flips, "\n".join(flips)
