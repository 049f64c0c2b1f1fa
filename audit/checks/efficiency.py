"""Efficiency: the reason to distil, measured with the same rigour as the quality gates.

* ``speedup`` -- teacher latency / student latency (medians) per batch size, with a paired
  bootstrap interval over the timed runs. Gate ``min: 3`` reads "at least 3x faster".
* ``latency_ms`` -- the 95th-percentile latency of one call per batch size, for both models
  (regression: student minus teacher). Gate ``max: 50`` is a latency budget for the student.
* ``size_ratio`` -- student size on disk / teacher size on disk (exact). Gate ``max: 0.25``.

Timing on a noisy machine: each model is warmed up, then teacher and student calls are
interleaved (alternating which goes first), so drift in the machine's speed hits both; medians
and percentiles, not means; a wall-clock cap (``max_seconds``) bounds the whole check, which
then uses the runs it has (at least 5 per model and batch size). The timed call is the model's
own prediction on a batch of eval rows (inputs prepared as for the audit), without our output
validation. All efficiency checks of a run share one set of timings.

The timings and sizes are artifacts (:mod:`audit.probes.timings` builds them); the metrics
here are pure functions of them, with paired bootstrap intervals over the timed runs.

The report also lists, per model: parameter count (scikit-learn: the learned arrays; ONNX: the
initializers; torch: ``numel`` of the parameters), peak Python-heap memory during one call on the
largest batch (``tracemalloc``: numpy and Python objects; a native runtime's own arenas are not
seen), and throughput in rows per second.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from audit.checks.registry import Family, Metric, MetricInput, Param, register, register_family
from audit.errors import DataError
from audit.probes.artifacts import ArtifactRequest, ModelSizes, Timings
from audit.results import Estimate, Figure, Measurement, Table
from audit.stats import percentile_interval

__all__ = ["DEFAULT_BATCH_SIZES"]

DEFAULT_BATCH_SIZES = (1, 32, 1024)
DEFAULT_REPEATS = 30
DEFAULT_MAX_SECONDS = 30.0


def _bootstrap(runs_t: np.ndarray, runs_s: np.ndarray, stat: Any, n_boot: int,
               seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Paired bootstrap over timed runs (run i of the teacher pairs with run i of the student)."""
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
    """Timings shaped by the batch sizes, repeats and cap (one set for every efficiency check
    of a run with those settings)."""
    batch_sizes, repeats, max_seconds = _settings(params)
    return (ArtifactRequest.of("timings", batch_sizes=batch_sizes, repeats=repeats,
                               max_seconds=max_seconds),)


def _size_needs(params: Mapping[str, Any]) -> tuple[ArtifactRequest, ...]:
    return (ArtifactRequest.of("model_sizes"),)  # sizes need no timing


def _measure_efficiency(metric: Metric, params: Mapping[str, Any], inputs: MetricInput,
                        resampler: Any, confidence: float) -> tuple[Measurement, ...]:
    from audit.checks.measure import paired_measurement

    if not inputs.artifacts:
        raise DataError(f"{metric.name} needs the models themselves; run it through a suite")
    batch_sizes, repeats, max_seconds = _settings(params)
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
    breakdown = _rows(timing)
    out = []
    for size in batch_sizes:
        runs = timing.runs[size]
        n_runs = min(len(runs["teacher"]), len(runs["student"]))
        method = (f"{n_runs} interleaved timed calls per model after {timing.warmup} warm-up calls; "
                  f"paired bootstrap over runs, {resampler.n_boot} replicates")
        scope = {"batch": size}
        if metric.name == "speedup":
            rt, rs = _bootstrap(runs["teacher"], runs["student"], np.median, resampler.n_boot,
                                resampler.seed)
            value = float(np.median(runs["teacher"]) / np.median(runs["student"]))
            ci = percentile_interval(rt / rs, confidence)
            out.append(Measurement(metric.name, metric.direction,
                                   Estimate(value, None if ci is None else (ci.low, ci.high)),
                                   method=method, n=n_runs, params=scope,
                                   breakdown=tuple(breakdown) if size == batch_sizes[0] else (),
                                   family=metric.family))
        else:  # latency_ms: p95 of one call
            rt, rs = _bootstrap(runs["teacher"], runs["student"], _p95, resampler.n_boot,
                                resampler.seed)
            out.append(paired_measurement(
                metric, float(_p95(runs["teacher"])), float(_p95(runs["student"])), rt, rs,
                confidence, method=method, n=n_runs, params=scope,
                breakdown=breakdown if size == batch_sizes[0] else ()))
    return tuple(out)


def _rows(timing: Timings) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = []
    for who, info in timing.models.items():
        rows.append({"kind": "size", "model": who, **info,
                     "peak_memory_bytes": int(timing.memory[who])})
    for size, runs in timing.runs.items():
        for who, r in runs.items():
            med = float(np.median(r))
            rows.append({"kind": "latency", "model": who, "batch": int(size), "runs": int(r.size),
                         "p50_ms": med, "p95_ms": float(_p95(r)),
                         "throughput_rows_s": float(size / (med / 1000.0)) if med > 0 else None})
    return rows


_PARAMS = {
    "batch_sizes": Param("int_list", "Batch sizes to time.", default=DEFAULT_BATCH_SIZES,
                         minimum=1),
    "repeats": Param("int", "Timed calls per model and batch size.", default=DEFAULT_REPEATS,
                     minimum=3, maximum=10_000),
    "max_seconds": Param("number", "Wall-clock cap on the timing of a check (at least 5 runs are "
                                   "always kept).", default=DEFAULT_MAX_SECONDS,
                         exclusive_minimum=0),
}
register(Metric("speedup", "higher", "efficiency", True, (0.0, float("inf")),
                "Teacher latency / student latency (medians), one measurement per batch size, "
                "with a paired bootstrap interval over the timed runs.",
                custom=_measure_efficiency, params=_PARAMS, needs=_needs))
register(Metric("latency_ms", "lower", "efficiency", False, (0.0, float("inf")),
                "95th-percentile latency of one call, in milliseconds, per batch size, for both "
                "models (regression: student − teacher).",
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
        Table.of_rows(m.breakdown, "latency", "Latency per call",
                      ("model", "batch", "runs", "p50_ms", "p95_ms", "throughput_rows_s")),
        Table.of_rows(m.breakdown, "size", "Size",
                      ("model", "bytes", "parameters", "peak_memory_bytes")))
    return tuple(t for t in tables if t is not None)


FAMILY = register_family(Family("efficiency", "Efficiency", order=80, figures=_latency_figures,
                                tables=_efficiency_tables))
