"""Model sizes, parameter counts and timings: the efficiency metrics' artifacts.

Timing on a noisy machine: each model is warmed up, then teacher and student calls are
interleaved (alternating which goes first), so drift in the machine's speed hits both; a
wall-clock cap (``max_seconds``) bounds the whole probe, which then keeps the runs it has (at
least ``MIN_RUNS`` per model and batch size). The timed call is the model's own prediction on a
batch of eval rows (inputs prepared as for the audit), without our output validation. A model
run in a worker process (a callable, a pickle of its own classes) is timed inside that process
(``LoadedModel.own_call_ms``): the pipe to it, about half a millisecond a call, is not the
model's cost. Its peak memory is not seen from here (it is another process's heap).

Parameter count: scikit-learn: the learned arrays; ONNX: the initializers; torch: ``numel`` of
the parameters. Peak memory: the Python heap during one call on the largest batch
(``tracemalloc``: numpy and Python objects; a native runtime's own arenas are not seen).
"""

from __future__ import annotations

import time
import tracemalloc
from typing import Any

import numpy as np

from audit.probes.artifacts import ArtifactRequest, ModelSizes, Timings

__all__ = ["parameter_count", "model_sizes", "timings", "MIN_RUNS", "WARMUP"]

MIN_RUNS = 5
WARMUP = 3


def parameter_count(model: Any) -> int | None:
    """The number of learned numbers in a loaded model, or ``None`` when it cannot be told."""
    native = getattr(model, "native", None)
    module = getattr(model, "module", None)
    if module is not None:
        return int(sum(p.numel() for p in module.parameters()))
    if model.spec.kind == "onnx" and model.spec.path is not None:
        try:
            import onnx
            from onnx import numpy_helper
        except ImportError:
            return None
        graph = onnx.load(str(model.spec.path)).graph
        return int(sum(numpy_helper.to_array(t).size for t in graph.initializer))
    if native is not None:
        return _sklearn_count(native, set())
    return None


_NOT_PARAMETERS = {"classes_", "feature_names_in_"}


def _sklearn_count(obj: Any, seen: set[int]) -> int:
    """Numeric arrays in fitted attributes (names ending in '_'), recursively; trees count
    their thresholds and leaf values."""
    if id(obj) in seen:
        return 0
    seen.add(id(obj))
    total = 0
    if hasattr(obj, "threshold") and hasattr(obj, "value") and hasattr(obj, "node_count"):
        return int(obj.threshold.size + obj.value.size)  # a fitted sklearn Tree
    attrs = getattr(obj, "__dict__", {})
    for name, value in attrs.items():
        if name in _NOT_PARAMETERS or ((not name.endswith("_") or name.startswith("n_"))
                                        and name not in ("steps", "transformers", "estimators")):
            continue  # fitted attributes end in '_'; labels and counts are not parameters
        total += _count_value(value, seen)
    return total


def _count_value(value: Any, seen: set[int]) -> int:
    if isinstance(value, np.ndarray):
        return int(value.size) if value.dtype.kind in "fiub" else sum(
            _count_value(v, seen) for v in value.ravel()) if value.dtype == object else 0
    if isinstance(value, (list, tuple)):
        return sum(_count_value(v, seen) for v in value)
    if isinstance(value, dict):
        return sum(_count_value(v, seen) for v in value.values())
    if hasattr(value, "__dict__") or hasattr(value, "node_count"):
        return _sklearn_count(value, seen)
    return 0


def _size(model: Any) -> dict[str, Any]:
    return {"kind": model.spec.kind, "bytes": model.size_bytes, "parameters": parameter_count(model)}


def model_sizes(probes: Any, request: ArtifactRequest) -> ModelSizes:
    """Both models' kind, size on disk and parameter count (precomputed predictions too)."""
    return ModelSizes({who: _size(probes.run.model(who)) for who in ("teacher", "student")})


def _batch(table: Any, size: int) -> Any:
    return table.take(np.arange(size) % table.n_rows)


def timings(probes: Any, request: ArtifactRequest) -> Timings:
    """Interleaved timed calls of both models per batch size (``batch_sizes``), up to
    ``repeats`` each, within ``max_seconds``; then one traced call on the largest batch."""
    batch_sizes: tuple[int, ...] = request.get("batch_sizes")
    repeats, max_seconds = int(request.get("repeats")), float(request.get("max_seconds"))
    models = probes.run.runnable_models("efficiency checks time")
    table = probes.run.eval_table
    runs_by_size: dict[int, dict[str, np.ndarray]] = {}
    memory: dict[str, int] = {}
    deadline = time.perf_counter() + max_seconds
    per_batch = max_seconds / len(batch_sizes)
    for size in batch_sizes:
        batch = _batch(table, size)
        for m in models.values():
            for _ in range(WARMUP):
                m.predict(batch)
        runs: dict[str, list[float]] = {"teacher": [], "student": []}
        stop = min(deadline, time.perf_counter() + per_batch)
        for r in range(repeats):
            order = ("teacher", "student") if r % 2 == 0 else ("student", "teacher")
            for who in order:
                t0 = time.perf_counter_ns()
                models[who].predict(batch)
                elapsed = (time.perf_counter_ns() - t0) / 1e6
                own = models[who].own_call_ms  # a worker process's model: its own time
                runs[who].append(elapsed if own is None else (own() or elapsed))
            if r + 1 >= MIN_RUNS and time.perf_counter() > stop:
                break
        runs_by_size[size] = {who: np.array(v) for who, v in runs.items()}
    largest = _batch(table, max(batch_sizes))
    for who, m in models.items():
        tracemalloc.start()
        try:
            m.predict(largest)
            memory[who] = tracemalloc.get_traced_memory()[1]
        finally:
            tracemalloc.stop()
    return Timings(runs_by_size, memory, {who: _size(m) for who, m in models.items()}, WARMUP)
