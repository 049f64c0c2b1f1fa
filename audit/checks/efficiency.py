"""Efficiency: the reason to distil, measured with the same rigour as the quality gates.

* ``speedup`` -- teacher time / student time per call, per batch size: the median over blocks
  of interleaved calls of the ratio, with a distribution-free interval for that median. Gate
  ``min: 3`` reads "at least 3x faster".
* ``latency_ms`` -- the 95th-percentile time of one call per batch size, for both models
  (regression: student minus teacher), with a paired bootstrap interval over the pairs. Gate
  ``max: 50`` is a latency budget for the student.
* ``size_ratio`` -- student size on disk / teacher size on disk (exact). Gate ``max: 0.25``.

The timings are an artifact (:mod:`audit.probes.timings` builds them; all efficiency checks of a
run share one set): each model warmed up, then teacher and student calls interleaved in pairs,
alternating which goes first, with every thread pool pinned to one thread, and the wall time
and the CPU time of every call recorded. The metrics here are pure functions of them. A
timing's ``n`` counts timed calls per model (``evidence["unit"]``), never eval rows.

Timing that does not flip with load
-----------------------------------
Another process on the machine takes cores from the audit: a call then waits for one, and its
wall time grows, the more the longer the call (a 13 ms call is preempted far more often than a
0.5 ms one). On the example pair (a random forest against an ONNX logistic regression) the
wall-clock speedup rose from about 30 to 45-80 with two busy processes beside it, so a gate on
it flips. Three things keep the verdict still:

* **The clock.** With one thread, a call's CPU time (``process_time``) is its wall time on an
  idle machine, and the time it spends waiting for a core is not in it: the gates judge CPU
  time (the example's speedup stayed at 25-35 under the same load), and the wall time is
  reported beside it. Wall time is judged only when CPU time is not seen for a model (one run
  in a worker process), and the note says so.
* **The estimator.** The calls are taken in blocks of two pairs, one with each model first: on
  the example the student's call took 0.6 ms right after the forest's and 0.33 ms right after
  its own, so per-pair ratios are two clusters (22 and 40) whose median falls in the gap;
  per block the order effect is the same in every ratio. The speedup is the median of the
  block ratios (mean teacher time / mean student time in the block), not a ratio of medians:
  a slowdown that hits both models of a block (the machine's speed drifting) cancels, and the
  median ignores the blocks a burst of load hit, up to half of them. Its interval is the
  order-statistic interval of the median (ranks 4 and 12 of 15 blocks at 95%,
  :func:`median_interval`): exact whatever the distribution of the ratios, with no bootstrap.
  Min-of-k (the fastest call of each model) resists bursts as well, but it measures a best
  case no user sees, rests on two single calls, and gives no interval a gate could read.
* **The stability check.** The blocks are split in time, first half and second half, and the
  median is taken on each with its exact interval (for the latency, each model's median time
  per call; a p95 of a dozen calls is too noisy to tell a changed machine from chance). When
  the two intervals do not overlap, the machine changed under the run: the measurement's
  interval is widened to hold both halves, and a gate it then straddles is INCONCLUSIVE with
  the reason "the machine was too noisy" and both halves' values (``extra["too_noisy"]``,
  read by :mod:`audit.gates`), never a verdict from the luckier half. When the widened
  interval still clears the gate, a note says the halves disagreed and the verdict stands: it
  could not have flipped. The check needs 6 blocks per half at 95% (24 timed calls per model;
  the probe keeps at least that many under its cap); with fewer it is skipped, and a note says
  so.

The report also lists, per model: parameter count (scikit-learn: the learned arrays; ONNX: the
initializers; torch: ``numel`` of the parameters), peak Python-heap memory during one call on the
largest batch (``tracemalloc``: numpy and Python objects; a native runtime's own arenas are not
seen), wall and CPU time per call, throughput in rows per second, and the thread settings the
calls ran with.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import Any

import numpy as np

from audit.checks.registry import Family, Metric, MetricInput, Param, register, register_family
from audit.errors import DataError
from audit.probes.artifacts import ArtifactRequest, ModelSizes, Timings
from audit.results import Estimate, Figure, Measurement, Table, format_estimate, format_value

__all__ = ["DEFAULT_BATCH_SIZES", "UNIT", "median_interval", "median_estimate", "blocks",
           "block_ratios", "halves", "halves_disagree", "threads_note"]

DEFAULT_BATCH_SIZES = (1, 32, 1024)
DEFAULT_REPEATS = 30
DEFAULT_MAX_SECONDS = 30.0
THREADS = 1  # threads per model while timed (onnxruntime intra-op, BLAS/OpenMP, torch)
_CLOCK_WORDS = {"cpu": "CPU time", "wall": "wall time"}
UNIT = "timed calls per model"  # what a timing's n counts: pairs of calls, one of each model
_WHO = ("teacher", "student")


def median_interval(x: np.ndarray, confidence: float) -> tuple[float, float, float] | None:
    """Distribution-free interval for the median of ``x``, as ``(low, high, coverage)``.

    The order statistics ``x_(k)`` and ``x_(n+1-k)`` (1-based) with the largest ``k`` for which
    ``2 P(B <= k - 1) <= 1 - confidence``, ``B ~ Binomial(n, 1/2)``: the median lies below
    ``x_(k)`` only if fewer than ``k`` values fall below it, so the coverage
    ``1 - 2 P(B <= k - 1)`` is at least ``confidence`` for independent draws of any continuous
    distribution. ``None`` when ``x`` is too short for ``confidence`` (fewer than 6 values at
    95%) or holds NaN.

    Examples
    --------
    >>> median_interval(np.array([3.0, 1, 4, 1, 5, 9, 2, 6]), 0.9)
    (1.0, 6.0, 0.9296875)
    """
    x = np.sort(np.asarray(x, dtype=np.float64))
    n = len(x)
    if n == 0 or np.isnan(x).any():
        return None
    alpha, total = 1.0 - confidence, 2 ** n
    k, below, term = 0, 0, 1  # term = C(n, k); below = sum of C(n, i) for i < k
    while 2 * k < n and 2 * (below + term) / total <= alpha:
        below += term
        term = term * (n - k) // (k + 1)
        k += 1
    if k == 0:
        return None
    return float(x[k - 1]), float(x[n - k]), 1.0 - 2 * below / total


def blocks(x: np.ndarray) -> np.ndarray:
    """The mean time per call of each block of two consecutive pairs, ``(2b, 2b + 1)``: one
    where the teacher went first and one where the student did (the probe alternates), so what
    a call gains or loses from what ran just before it is in every block alike. An odd last
    pair is left out.

    >>> blocks(np.array([10.0, 12, 9, 11, 7]))
    array([11., 10.])
    """
    x = np.asarray(x, dtype=np.float64)
    return x[: len(x) // 2 * 2].reshape(-1, 2).mean(axis=1)


def block_ratios(teacher: np.ndarray, student: np.ndarray) -> np.ndarray:
    """Teacher time / student time per block of two pairs (see :func:`blocks`).

    >>> block_ratios(np.array([10.0, 12, 9, 11]), np.array([1.0, 3, 2, 2]))
    array([5.5, 5. ])
    """
    n = min(len(teacher), len(student))
    with np.errstate(divide="ignore", invalid="ignore"):
        return blocks(teacher[:n]) / blocks(student[:n])


def median_estimate(values: np.ndarray, confidence: float, exact: bool = False
                    ) -> tuple[Estimate, float | None]:
    """The median of ``values`` with its order-statistic interval, and that interval's coverage.
    Too few values for ``confidence``: ``[min, max]`` and its coverage ``1 - 2^(1-n)``, or no
    interval if ``exact``."""
    if len(values) == 0 or np.isnan(values).any():
        return Estimate(float("nan")), None
    value = float(np.median(values))
    iv = median_interval(values, confidence)
    if iv is not None:
        return Estimate(value, (iv[0], iv[1])), iv[2]
    if exact:
        return Estimate(value), None
    return (Estimate(value, (float(values.min()), float(values.max()))),
            1.0 - 2.0 ** (1 - len(values)))


def halves(values: np.ndarray, confidence: float) -> tuple[Estimate, Estimate]:
    """The medians, with exact intervals (none when a half is too short), of the first
    ``len // 2`` values and of the rest: the two halves of a run, in time order."""
    h = len(values) // 2
    first, _ = median_estimate(values[:h], confidence, exact=True)
    second, _ = median_estimate(values[h:], confidence, exact=True)
    return first, second


def halves_disagree(first: Estimate, second: Estimate) -> bool:
    """Whether two halves' intervals do not overlap (``False`` when either has none)."""
    if first.ci is None or second.ci is None:
        return False
    return bool(first.ci[1] < second.ci[0] or second.ci[1] < first.ci[0])


def _widened(full: Estimate, *parts: Estimate | None) -> Estimate:
    """``full`` with its interval stretched to hold the halves' values and intervals."""
    ends = [v for e in (full, *parts) if e is not None
            for v in ((e.value,) if e.ci is None else e.ci) if np.isfinite(v)]
    return Estimate(full.value, (min(ends), max(ends))) if ends else full


def _too_few(b: int, confidence: float) -> str:
    return (f"stability check skipped: {b} blocks of two pairs give halves of {b // 2} and "
            f"{b - b // 2}, too few for a {confidence:.0%} interval each (6 per half at 95%, "
            "24 timed calls per model); raise repeats")


def _noisy(halves_text: str, widened: Estimate, then: str = "") -> tuple[str, str]:
    """(the note, the gate's reason) for two halves of a run that disagree: ``halves_text``
    gives both halves' values, ``then`` what else they showed."""
    halves_text += ", intervals that do not overlap" + (f"; {then}" if then else "")
    note = (f"the two halves of the run disagree: {halves_text}; the interval is widened to "
            f"hold both: {format_estimate(widened)}")
    reason = (f"the machine was too noisy: {halves_text}; the interval that holds both, "
              f"{format_estimate(widened)}, straddles the threshold; time again on a quieter "
              "machine, or raise repeats")
    return note, reason


def _bootstrap(runs_t: np.ndarray, runs_s: np.ndarray, stat: Any, n_boot: int,
               seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Paired bootstrap over timed pairs (call i of the teacher pairs with call i of the
    student)."""
    n = min(len(runs_t), len(runs_s))
    idx = np.random.default_rng(seed).integers(0, n, size=(n_boot, n))
    return stat(runs_t[:n][idx], axis=1), stat(runs_s[:n][idx], axis=1)


def _p95(a: np.ndarray, axis: int | None = None) -> Any:
    return np.percentile(a, 95, axis=axis)


def _settings(params: Mapping[str, Any]) -> tuple[tuple[int, ...], int, float]:
    """``batch_sizes`` (sorted, distinct), ``repeats`` and ``max_seconds``, defaults applied."""
    return (tuple(sorted(set(params.get("batch_sizes") or DEFAULT_BATCH_SIZES))),
            int(params.get("repeats", DEFAULT_REPEATS)),
            float(params.get("max_seconds", DEFAULT_MAX_SECONDS)))


def _needs(params: Mapping[str, Any]) -> tuple[ArtifactRequest, ...]:
    """Timings shaped by the batch sizes, repeats and cap, with one thread per model (one set
    for every efficiency check of a run with those settings)."""
    batch_sizes, repeats, max_seconds = _settings(params)
    return (ArtifactRequest.of("timings", batch_sizes=batch_sizes, repeats=repeats,
                               max_seconds=max_seconds, threads=THREADS),)


def _size_needs(params: Mapping[str, Any]) -> tuple[ArtifactRequest, ...]:
    return (ArtifactRequest.of("model_sizes"),)  # sizes need no timing


def _clock(timing: Timings, size: int) -> tuple[str, str | None]:
    """The clock the gates judge at ``size``: CPU time with one thread per model when it was
    seen for both models, else wall time, with a note saying why."""
    threads = int(timing.settings.get("threads", THREADS))
    if threads != 1:
        return "wall", (f"{threads} threads per model: judged on wall time (CPU time adds up "
                        "every thread's work), which load from other processes can move")
    if "cpu" in _seen(timing, size):
        return "cpu", None
    cpu = timing.cpu.get(size) or {}
    unseen = [who for who in _WHO if who not in cpu or not np.isfinite(cpu[who]).all()]
    return "wall", (f"CPU time is not seen for the {' and '.join(unseen)} (a model run in a "
                    "worker process): judged on wall time, which load from other processes can "
                    "move (the stability check still applies)")


def _times(timing: Timings, size: int, clock: str) -> tuple[np.ndarray, np.ndarray]:
    runs = timing.cpu[size] if clock == "cpu" else timing.runs[size]
    n = min(len(runs["teacher"]), len(runs["student"]))
    return (np.asarray(runs["teacher"][:n], dtype=np.float64),
            np.asarray(runs["student"][:n], dtype=np.float64))


def threads_note(timing: Timings) -> str:
    """The settings the timed calls ran with, in words (from ``Timings.settings``)."""
    t = timing.settings
    if not t:
        return "thread settings not recorded"
    parts = []
    blas = t.get("blas")
    if blas is None:
        parts.append("BLAS/OpenMP not pinned (threadpoolctl is missing)")
    elif blas:
        seen = [(b["library"], b["threads"], b["before"]) for b in blas]
        parts.append("BLAS/OpenMP " + ", ".join(
            f"{lib} {n}" + (f" (was {was})" if was != n else "") + (
                f" ({seen.count((lib, n, was))} copies loaded)" if seen.count((lib, n, was)) > 1
                else "")
            for lib, n, was in dict.fromkeys(seen)))
    for who, ort in sorted((t.get("onnxruntime") or {}).items()):
        parts.append(f"onnxruntime for the {who}: intra-op {ort['intra_op']}, inter-op "
                     f"{ort['inter_op']} (a session of its own for timing; its predictions "
                     "keep the default session)")
    torch = t.get("torch")
    parts.append("torch not imported" if torch is None else
                 f"torch intra-op {torch['intra_op']} (was {torch['before']}), inter-op "
                 f"{torch['inter_op']} (fixed when torch started)")
    for who in t.get("worker") or ():
        parts.append(f"the {who} runs in a worker process, with that process's own threads")
    gc_off = " (Python's garbage collector off, as timeit does)" if t.get("gc") is False else ""
    return f"timed with threads pinned to {t.get('threads')}{gc_off}: " + "; ".join(parts)


def _measure_efficiency(metric: Metric, params: Mapping[str, Any], inputs: MetricInput,
                        resampler: Any, confidence: float) -> tuple[Measurement, ...]:
    if not inputs.artifacts:
        raise DataError(f"{metric.name} needs the models themselves; run it through a suite")
    batch_sizes = _settings(params)[0]
    if metric.name == "size_ratio":
        sizes: ModelSizes = inputs.artifacts["model_sizes"]
        t, s = sizes.sizes["teacher"]["bytes"], sizes.sizes["student"]["bytes"]
        if not t or s is None:
            raise DataError("size_ratio needs both models as files (a callable has no size on "
                            "disk)")
        ratio = s / t
        rows = [{"kind": "size", "model": who, **info} for who, info in sizes.sizes.items()]
        return (Measurement(metric.name, metric.direction, Estimate(ratio, (ratio, ratio)),
                            method="exact: student bytes / teacher bytes on disk", n=0,
                            params={}, breakdown=tuple(rows), family=metric.family),)
    timing: Timings = inputs.artifacts["timings"]
    breakdown = tuple(_rows(timing))
    out = []
    for size in batch_sizes:
        clock, clock_note = _clock(timing, size)
        t, s = _times(timing, size, clock)
        notes = ([threads_note(timing)] if size == batch_sizes[0] else []) + (
            [clock_note] if clock_note else [])
        if size == batch_sizes[0] and timing.settings.get("inputs") == "text":
            notes.append("each timed call includes tokenizing its texts (each model with its own "
                         "tokenizer), as a deployed text model does")
        elif size == batch_sizes[0] and timing.settings.get("inputs") == "images":
            notes.append("each timed call takes decoded float images (reading and decoding image "
                         "files is not timed)")
        common = {"clock": clock, "settings": dict(timing.settings)}
        if metric.name == "speedup":
            m = _speedup(metric, timing, size, clock, t, s, confidence, notes, common)
        else:
            m = _latency(metric, timing, size, clock, t, s, resampler, confidence, notes, common)
        out.append(dataclasses.replace(m, breakdown=breakdown if size == batch_sizes[0] else (),
                                       evidence={"confidence": confidence, "unit": UNIT}))
    return tuple(out)


def _method(what: str, n: int, timing: Timings, clock: str, interval: str) -> str:
    return (f"{what}, {_CLOCK_WORDS[clock]} per call; {n} interleaved pairs of timed calls "
            f"after {timing.warmup} warm-up calls per model, in blocks of two pairs (each model "
            f"first once); {interval}; stability: the run's two halves compared")


def _beside(timing: Timings, size: int, clock: str) -> str | None:
    """The clock not judged, if it was recorded for both models."""
    other = "wall" if clock == "cpu" else "cpu"
    return other if other in _seen(timing, size) else None


def _seen(timing: Timings, size: int) -> tuple[str, ...]:
    """The clocks recorded for both models at ``size`` (CPU time is not seen for a model run in
    a worker process)."""
    cpu = timing.cpu.get(size) or {}
    seen = all(who in cpu and np.isfinite(cpu[who]).all() for who in _WHO)
    return ("cpu", "wall") if seen else ("wall",)


def _speedup(metric: Metric, timing: Timings, size: int, clock: str, t: np.ndarray,
             s: np.ndarray, confidence: float, notes: list[str], extra: dict[str, Any]
             ) -> Measurement:
    ratios = block_ratios(t, s)
    b = len(ratios)
    student, coverage = median_estimate(ratios, confidence)
    if coverage is not None and coverage < confidence:
        notes.append(f"{b} blocks of two pairs are too few for a {confidence:.0%} interval of "
                     f"the median: [min, max] of their ratios covers it with probability "
                     f"{coverage:.1%}; raise repeats")
    first, second = halves(ratios, confidence)
    extra = {**extra, "coverage": coverage, "blocks": b,
             "halves": {"blocks": [b // 2, b - b // 2], "first": first.to_dict(),
                        "second": second.to_dict()}}
    other = _beside(timing, size, clock)
    if other is not None:
        beside, _ = median_estimate(block_ratios(*_times(timing, size, other)), confidence)
        extra[f"{other}_speedup"] = beside.to_dict()
        notes.append(f"{_CLOCK_WORDS[other]} beside it: speedup {format_estimate(beside)}")
    if first.ci is None or second.ci is None:
        notes.append(_too_few(b, confidence))
    elif halves_disagree(first, second):
        student = _widened(student, first, second)
        note, reason = _noisy(f"the first {b // 2} blocks give a speedup of "
                              f"{format_estimate(first)}, the last {b - b // 2} "
                              f"{format_estimate(second)} ({_CLOCK_WORDS[clock]})", student)
        notes.append(note)
        extra["too_noisy"] = {"student": reason}
    method = _method("median over blocks of the ratio teacher / student", len(t), timing, clock,
                     "order-statistic interval of the median (distribution-free)")
    return Measurement(metric.name, metric.direction, student, method=method, n=len(t),
                       params={"batch": size}, notes=tuple(notes), extra=extra,
                       family=metric.family)


def _latency(metric: Metric, timing: Timings, size: int, clock: str, t: np.ndarray,
             s: np.ndarray, resampler: Any, confidence: float, notes: list[str],
             extra: dict[str, Any]) -> Measurement:
    """The p95 of each model with a paired bootstrap interval; the stability check compares the
    halves' median time per call (exact intervals: a p95 of a dozen calls is too noisy to tell
    a changed machine from chance), and a model whose halves disagree has its p95's interval
    (and the regression's) widened to hold both halves' p95."""
    from audit.checks.measure import paired_measurement

    def p95s(sl: slice) -> Measurement:
        rt, rs = _bootstrap(t[sl], s[sl], _p95, resampler.n_boot, resampler.seed)
        return paired_measurement(metric, float(_p95(t[sl])), float(_p95(s[sl])), rt, rs,
                                  confidence, method="", n=len(t), params={})

    n, b = len(t), len(t) // 2
    full = p95s(slice(0, n))
    split = {who: halves(blocks(x), confidence) for who, x in (("teacher", t), ("student", s))}
    extra = {**extra, "blocks": b, "halves": {
        "blocks": [b // 2, b - b // 2],
        **{f"{who}_median_ms": [h.to_dict() for h in split[who]] for who in _WHO}}}
    other = _beside(timing, size, clock)
    if other is not None:
        ot, os_ = (float(_p95(x)) for x in _times(timing, size, other))
        extra[f"{other}_p95_ms"] = {"teacher": ot, "student": os_}
        notes.append(f"{_CLOCK_WORDS[other]} beside it: p95 student {os_:.3g} ms, teacher "
                     f"{ot:.3g} ms")
    assert full.teacher is not None and full.regression is not None
    est = {"student": full.student, "teacher": full.teacher, "regression": full.regression}
    shifted = [who for who in _WHO if halves_disagree(*split[who])]
    if any(h.ci is None for who in _WHO for h in split[who]):
        notes.append(_too_few(b, confidence))
    elif shifted:
        cut = 2 * (b // 2)  # the halves' pairs: whole blocks
        first, second = p95s(slice(0, cut)), p95s(slice(cut, n))
        noisy: dict[str, str] = {}
        for name in [*shifted, "regression"]:
            est[name] = _widened(est[name], getattr(first, name), getattr(second, name))
        for who in shifted:
            h1, h2 = split[who]
            note, reason = _noisy(
                f"the {who}'s median call took {format_estimate(h1)} ms in the first {b // 2} "
                f"blocks and {format_estimate(h2)} ms in the last {b - b // 2} "
                f"({_CLOCK_WORDS[clock]})", est[who],
                f"the halves' p95 are {format_value(getattr(first, who).value)} and "
                f"{format_value(getattr(second, who).value)} ms")
            notes.append(note)
            if who == "student":
                noisy["student"] = reason
            noisy.setdefault("regression", reason)
            noisy.setdefault("relative_regression", reason)
        extra["too_noisy"] = noisy
    method = _method("95th percentile", n, timing, clock,
                     f"paired bootstrap over the pairs, {resampler.n_boot} replicates")
    return dataclasses.replace(full, student=est["student"], teacher=est["teacher"],
                               regression=est["regression"],
                               relative_regression=_relative(est["regression"], est["teacher"]),
                               method=method, params={"batch": size}, notes=tuple(notes),
                               extra=extra)


def _relative(reg: Estimate | None, teacher: Estimate | None) -> Estimate | None:
    """The regression over ``|teacher|`` (as :func:`audit.checks.measure.paired_measurement`)."""
    if reg is None or teacher is None:
        return None
    denom = abs(teacher.value)
    if not np.isfinite(denom) or denom == 0:
        return Estimate(float("nan"))
    ci = None if reg.ci is None else (reg.ci[0] / denom, reg.ci[1] / denom)
    return Estimate(reg.value / denom, ci)


def _rows(timing: Timings) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = []
    for who, info in timing.models.items():
        rows.append({"kind": "size", "model": who, **info,
                     "peak_memory_bytes": int(timing.memory[who])})
    for size, runs in timing.runs.items():
        for who, r in runs.items():
            med = float(np.median(r))
            cpu = (timing.cpu.get(size) or {}).get(who)
            if cpu is not None and not np.isfinite(cpu).all():
                cpu = None  # a model in a worker process: its CPU time is not seen
            rows.append({"kind": "latency", "model": who, "batch": int(size), "runs": int(r.size),
                         "p50_ms": med, "p95_ms": float(_p95(r)),
                         "cpu_p50_ms": None if cpu is None else float(np.median(cpu)),
                         "cpu_p95_ms": None if cpu is None else float(_p95(cpu)),
                         "throughput_rows_s": float(size / (med / 1000.0)) if med > 0 else None})
    return rows


_PARAMS = {
    "batch_sizes": Param("int_list", "Batch sizes to time.", default=DEFAULT_BATCH_SIZES,
                         minimum=1),
    "repeats": Param("int", "Timed calls per model and batch size (interleaved pairs).",
                     default=DEFAULT_REPEATS, minimum=3, maximum=10_000),
    "max_seconds": Param("number", "Wall-clock cap on the timing of a check (at least 24 timed "
                                   "calls per model are always kept).", default=DEFAULT_MAX_SECONDS,
                         exclusive_minimum=0),
}
register(Metric("speedup", "higher", "efficiency", True, (0.0, float("inf")),
                "Teacher time / student time per call (CPU time, one thread): the median over "
                "blocks of interleaved calls of their ratio, one measurement per batch size, "
                "with an exact interval for that median; inconclusive when the run's two "
                "halves disagree across the threshold.",
                custom=_measure_efficiency, params=_PARAMS, needs=_needs))
register(Metric("latency_ms", "lower", "efficiency", False, (0.0, float("inf")),
                "95th-percentile time of one call (CPU time, one thread), in milliseconds, per "
                "batch size, for both models (regression: student − teacher); inconclusive "
                "when the run's two halves disagree across the threshold.",
                custom=_measure_efficiency, params=_PARAMS, needs=_needs))
register(Metric("size_ratio", "lower", "efficiency", True, (0.0, float("inf")),
                "Student size on disk / teacher size on disk (exact).",
                custom=_measure_efficiency, params=_PARAMS, needs=_size_needs, identical=1.0))


# -- report section ----------------------------------------------------------------------
def _latency_figures(m: Measurement) -> tuple[Figure, ...]:
    rows = tuple(r for r in m.breakdown if r.get("kind") == "latency")
    return (Figure("log_bars", "Median latency per call (ms, log scale)", rows,
                   value="p50_ms"),) if rows else ()


def _efficiency_tables(m: Measurement) -> tuple[Table, ...]:
    tables = (
        Table.of_rows(m.breakdown, "latency", "Time per call (p50, p95: wall time; cpu: CPU time)",
                      ("model", "batch", "runs", "p50_ms", "p95_ms", "cpu_p50_ms", "cpu_p95_ms",
                       "throughput_rows_s")),
        Table.of_rows(m.breakdown, "size", "Size",
                      ("model", "bytes", "parameters", "peak_memory_bytes")))
    return tuple(t for t in tables if t is not None)


FAMILY = register_family(Family("efficiency", "Efficiency", order=80, figures=_latency_figures,
                                tables=_efficiency_tables))
