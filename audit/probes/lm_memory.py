"""The memory a causal language model's generation needs, measured in this process.

One untimed generation (:func:`generation_peak`; the timing probe runs one per prompt, model
and measurement pass, after its timed calls, so they cost the timings nothing): the prompt is
tokenized beforehand (a tokenizer's caches are not the model's memory), and the peak of the
bytes the process has allocated with ``malloc`` (glibc's ``mallinfo2``: in-use chunks plus
``mmap``-ed ones; torch's CPU tensors come from there, so does a BLAS library's scratch space),
sampled before and after every module's forward pass, is taken above its value when the
generation starts: what generating needs besides the resident model (activations, logits, the
KV cache, at module granularity; a kernel's temporaries inside one module are not seen). Two
measurements of the same generation differ by a few hundred bytes (glibc's per-thread cache
keeps freed small blocks counted as allocated).

The model's own parameter and buffer bytes are counted from its tensors
(:func:`parameter_bytes`). ``resource.getrusage``'s peak RSS cannot separate two models in one
process (it never goes down) and ``tracemalloc`` does not see torch's allocations, so neither
is used. Without ``mallinfo2`` (not glibc: macOS, musl) the KV cache's bytes at the end of the
generation stand in for the peak (:func:`cache_bytes`), and the method says so; on CUDA
torch's own allocator statistics (``max_memory_allocated``) are read.
"""

from __future__ import annotations

import ctypes
from collections.abc import Callable, Mapping
from typing import Any

__all__ = ["heap_meter", "cache_bytes", "parameter_bytes", "generation_peak", "memory_method"]


class _MallInfo2(ctypes.Structure):
    _fields_ = [(name, ctypes.c_size_t) for name in (
        "arena", "ordblks", "smblks", "hblks", "hblkhd", "usmblks", "fsmblks", "uordblks",
        "fordblks", "keepcost")]


def heap_meter() -> Callable[[], int] | None:
    """The bytes this process has allocated with ``malloc`` and not freed (glibc's
    ``mallinfo2``: ``uordblks + hblkhd``), as a function; ``None`` without glibc 2.33+."""
    try:
        libc = ctypes.CDLL(None)
    except (OSError, TypeError):
        return None
    fn = getattr(libc, "mallinfo2", None)
    if fn is None:
        return None
    fn.restype, fn.argtypes = _MallInfo2, []

    def used() -> int:
        info = fn()
        return int(info.uordblks + info.hblkhd)

    return used


def cache_bytes(cache: Any, torch: Any) -> int:
    """The bytes of the tensors a KV cache holds (each storage once), whatever its class."""
    storages: dict[int, int] = {}

    def walk(x: Any, depth: int) -> None:
        if isinstance(x, torch.Tensor):
            s = x.untyped_storage()
            storages[s.data_ptr()] = int(s.nbytes())
        elif depth < 4 and isinstance(x, (list, tuple)):
            for v in x:
                walk(v, depth + 1)
        elif depth < 4 and isinstance(x, dict):
            for v in x.values():
                walk(v, depth + 1)
        elif depth < 4 and hasattr(x, "__dict__") and not isinstance(x, type):
            for v in vars(x).values():
                walk(v, depth + 1)

    walk(cache, 0)
    return sum(storages.values())


def parameter_bytes(model: Any) -> int:
    """The bytes of a torch model's parameters and buffers (tied weights counted once)."""
    storages = {}
    for t in (*model.parameters(), *model.buffers()):
        s = t.untyped_storage()
        storages[s.data_ptr()] = int(s.nbytes())
    return sum(storages.values())


def generation_peak(generate: Any, ids: list[int], new_tokens: int,
                    meter: Callable[[], int] | None) -> tuple[int, int, list[int]]:
    """One untimed generation (``generate``: an :class:`audit.probes.lm_timings.Generator`)
    after the prompt ``ids`` (tokenized beforehand: a tokenizer's
    caches are not the model's memory): its peak bytes above its start, the KV cache's bytes
    at its end, and its tokens. Run with Python's garbage collector off (no collection frees
    memory inside the window; a collection per prompt would cost more than the
    generation)."""
    lm = generate.lm
    torch = lm.torch
    if lm.device.type == "cuda":
        torch.cuda.synchronize(lm.device)
        torch.cuda.reset_peak_memory_stats(lm.device)
        start = torch.cuda.memory_allocated(lm.device)
        tokens, cache = generate.after(ids, new_tokens)
        torch.cuda.synchronize(lm.device)
        return (int(torch.cuda.max_memory_allocated(lm.device) - start),
                cache_bytes(cache, torch), tokens)
    if meter is None:
        tokens, cache = generate.after(ids, new_tokens)
        kv = cache_bytes(cache, torch)
        return kv, kv, tokens
    start = meter()
    peak = [start]

    def sample(*_: Any) -> None:
        used = meter()
        if used > peak[0]:
            peak[0] = used

    handles = []
    for module in lm.model.modules():
        handles.append(module.register_forward_pre_hook(sample))
        handles.append(module.register_forward_hook(sample))
    try:
        tokens, cache = generate.after(ids, new_tokens, mark=sample)
        sample()
    finally:
        for h in handles:
            h.remove()
    return peak[0] - start, cache_bytes(cache, torch), tokens


def memory_method(lms: Mapping[str, Any], meter: Callable[[], int] | None) -> dict[str, str]:
    """How each model's memory is measured: ``cuda`` (torch's allocator statistics), ``heap``
    (glibc's ``mallinfo2``) or ``kv_cache`` (neither: the KV cache's bytes stand in)."""
    out = {}
    for who, lm in lms.items():
        if lm.device.type == "cuda":
            out[who] = "cuda"
        else:
            out[who] = "heap" if meter is not None else "kv_cache"
    return out
