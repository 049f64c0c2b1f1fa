"""Model sizes, parameter counts and timings: the efficiency metrics' artifacts.

Timing on a noisy machine: each model is warmed up, then teacher and student calls are
interleaved (alternating which goes first), so drift in the machine's speed hits both: call
``i`` of each model is one pair, adjacent in time. A wall-clock cap (``max_seconds``) bounds the
whole probe, which then keeps the pairs it has: at least ``MIN_RUNS`` per batch size, so that
the stability check's two halves have an interval each, and whole blocks of two pairs (one with
each model first). The timed call is the model's own prediction on a batch of eval rows
(inputs prepared as for the audit), without our output validation.

Every call records its wall time (``perf_counter``) and its CPU time (``process_time``: this
process, every thread, so a model computing in a thread of its own is counted). Another process
on the machine adds to the wall time (the call waits for a core) but not to the CPU time.

Threads are pinned while timing (:func:`pinned_threads`, default 1): BLAS/OpenMP pools through
threadpoolctl, torch's intra-op threads when torch is already imported (it is never imported for
this), and for an ONNX model a session of its own with that many intra-op threads and one
inter-op thread (onnxruntime reads thread counts only when a session is created; the
predictions keep their default session, so their numbers are unchanged). Everything is restored
afterwards. Python's cyclic garbage collector is off during the timed calls (after a
collection), as ``timeit`` does: a collection's pause grows with every object in the audit's
process, not with the model, and one pause in 30 calls (13 ms on a 13 ms call here, more in a
test process) moves a p95. What was set is recorded in ``Timings.settings``.

A model run in a worker process (a callable, a pickle of its own classes) is timed inside that
process (``LoadedModel.own_call_ms``): the pipe to it, about half a millisecond a call, is not
the model's cost. Its threads are that process's own (not pinned from here), its CPU time is not
seen (recorded as ``NaN``) and neither is its peak memory (another process's heap).

Parameter count: scikit-learn: the learned arrays; ONNX: the initializers; torch: ``numel`` of
the parameters. Peak memory: the Python heap during one call on the largest batch
(``tracemalloc``: numpy and Python objects; a native runtime's own arenas are not seen).
"""

from __future__ import annotations

import gc
import sys
import time
import tracemalloc
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from typing import Any

import numpy as np

from audit.probes.artifacts import ArtifactRequest, ModelSizes, Timings

__all__ = ["parameter_count", "model_sizes", "timings", "pinned_threads", "collector_off",
           "MIN_RUNS", "WARMUP", "DEFAULT_THREADS"]

# pairs kept under the cap: 12 blocks of two pairs (the speedup's unit), so that each half of the
# run has 6, the fewest with a 95% interval of their median (the stability check)
MIN_RUNS = 24
DEFAULT_THREADS = 1
WARMUP = 3


def parameter_count(model: Any) -> int | None:
    """The number of learned numbers in a loaded model, or ``None`` when it cannot be told."""
    native = getattr(model, "native", None)
    module = getattr(model, "module", None)
    if getattr(model, "n_parameters", None) is not None:
        return int(model.n_parameters)
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


@contextmanager
def pinned_threads(threads: int, models: dict[str, Any]) -> Iterator[dict[str, Any]]:
    """Pin every thread pool a timed call may use to ``threads`` until the block ends.

    Yields the settings as plain data (the measurement records them): ``threads``; ``blas``,
    one entry per BLAS/OpenMP library loaded (``library``, ``api``, ``threads``, ``before``);
    ``torch`` (``intra_op``, ``before``, ``inter_op``: fixed at torch's start, not changed) or
    ``None`` when torch is not imported; ``onnxruntime``, per ONNX model, its timing session's
    ``intra_op``/``inter_op``; ``worker``, the models run in a worker process (not pinned).
    """
    settings: dict[str, Any] = {"threads": int(threads), "blas": [], "torch": None,
                                "onnxruntime": {}, "worker": []}
    with ExitStack() as stack:
        try:
            from threadpoolctl import threadpool_info, threadpool_limits
        except ImportError:  # scikit-learn depends on it; say so if it is missing all the same
            settings["blas"] = None
        else:
            before = {i["filepath"]: i["num_threads"] for i in threadpool_info()}
            stack.enter_context(threadpool_limits(limits=threads))
            settings["blas"] = [{"library": i["internal_api"], "api": i["user_api"],
                                 "threads": int(i["num_threads"]),
                                 "before": int(before.get(i["filepath"], i["num_threads"]))}
                                for i in threadpool_info()]
        torch = sys.modules.get("torch")  # never imported here: only if a model brought it
        if torch is not None and hasattr(torch, "set_num_threads"):
            old = int(torch.get_num_threads())
            torch.set_num_threads(threads)
            stack.callback(torch.set_num_threads, old)
            settings["torch"] = {"intra_op": int(torch.get_num_threads()), "before": old,
                                 "inter_op": int(torch.get_num_interop_threads())}
        for who, m in models.items():
            if m.own_call_ms is not None:
                settings["worker"].append(who)
            elif callable(getattr(m.predict, "with_threads", None)):
                settings["onnxruntime"][who] = {"intra_op": int(threads), "inter_op": 1}
        yield settings


@contextmanager
def collector_off() -> Iterator[None]:
    """Python's cyclic garbage collector off until the block ends, after one collection."""
    was = gc.isenabled()
    gc.collect()
    gc.disable()
    try:
        yield
    finally:
        if was:
            gc.enable()


def _timed_call(model: Any, threads: int) -> Callable[[Any], Any]:
    """What is timed for ``model``: its predict function, or for an ONNX model the same model
    in a session with ``threads`` intra-op threads and one inter-op thread."""
    with_threads = getattr(model.predict, "with_threads", None)
    if model.own_call_ms is None and callable(with_threads):
        return with_threads(threads, 1)
    return model.predict


def timings(probes: Any, request: ArtifactRequest) -> Timings:
    """Interleaved timed calls of both models per batch size (``batch_sizes``), up to
    ``repeats`` pairs, within ``max_seconds``, with ``threads`` pinned (wall and CPU time of
    every call); then one traced call on the largest batch."""
    batch_sizes: tuple[int, ...] = request.get("batch_sizes")
    repeats, max_seconds = int(request.get("repeats")), float(request.get("max_seconds"))
    threads = int(request.get("threads", DEFAULT_THREADS))
    models = probes.run.runnable_models("efficiency checks time")
    table = probes.run.eval_table
    runs_by_size: dict[int, dict[str, np.ndarray]] = {}
    cpu_by_size: dict[int, dict[str, np.ndarray]] = {}
    memory: dict[str, int] = {}
    deadline = time.perf_counter() + max_seconds
    per_batch = max_seconds / len(batch_sizes)
    with pinned_threads(threads, models) as settings, collector_off():
        settings["gc"] = False
        calls = {who: _timed_call(m, threads) for who, m in models.items()}
        for size in batch_sizes:
            batch = _batch(table, size)
            for call in calls.values():
                for _ in range(WARMUP):
                    call(batch)
            runs: dict[str, list[float]] = {"teacher": [], "student": []}
            cpu: dict[str, list[float]] = {"teacher": [], "student": []}
            stop = min(deadline, time.perf_counter() + per_batch)
            for r in range(repeats):
                order = ("teacher", "student") if r % 2 == 0 else ("student", "teacher")
                for who in order:
                    c0 = time.process_time_ns()
                    t0 = time.perf_counter_ns()
                    calls[who](batch)
                    elapsed = (time.perf_counter_ns() - t0) / 1e6
                    used = (time.process_time_ns() - c0) / 1e6
                    own = models[who].own_call_ms  # a worker process's model: its own time
                    runs[who].append(elapsed if own is None else (own() or elapsed))
                    cpu[who].append(used if own is None else float("nan"))
                if r % 2 and r + 1 >= MIN_RUNS and time.perf_counter() > stop:  # whole blocks
                    break
            runs_by_size[size] = {who: np.array(v) for who, v in runs.items()}
            cpu_by_size[size] = {who: np.array(v) for who, v in cpu.items()}
    largest = _batch(table, max(batch_sizes))
    for who, m in models.items():
        tracemalloc.start()
        try:
            m.predict(largest)
            memory[who] = tracemalloc.get_traced_memory()[1]
        finally:
            tracemalloc.stop()
    # what one call covers: a text model's calls tokenize their texts, an image model's take
    # the decoded images (decoding image files happens once, when the table is read)
    settings = {**settings, "inputs": table.modality}
    return Timings(runs_by_size, memory, {who: _size(m) for who, m in models.items()}, WARMUP,
                   cpu=cpu_by_size, settings=settings)
