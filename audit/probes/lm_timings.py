"""Timed greedy generation of two causal language models: the language-model speed artifact.

What is timed, per call: one prompt (an eval item's context) through one model, as a user of a
deployed model waits for it, in four phases, each with its wall time (``perf_counter``) and its
CPU time (``process_time``: this process, every thread):

1. ``tokenize``: the context to token ids (:meth:`LanguageModel.tokens
   <audit.models.lm_text.LanguageModel.tokens>`: the BOS token, else EOS, then the text's
   tokens), cut to the last ``prompt_tokens`` (the prefix token kept);
2. ``prefill``: one forward pass over the prompt that fills the KV cache (with
   ``logits_to_keep=1`` when the model takes it, as ``generate`` asks: no logits for the other
   positions);
3. ``first_token``: the first new token picked from the prefill's logits;
4. ``decode``: the ``new_tokens - 1`` further tokens, one at a time, each a forward pass of
   the one token just picked with the cache.

The loop is ours, not ``model.generate``: four phase times need marks inside it. It is greedy
decoding as ``generate(do_sample=False, max_new_tokens=N, min_new_tokens=N)`` does it (the
likeliest token, the EOS tokens masked so that exactly ``N`` tokens come out), batch size one,
no padding; the tests check its tokens against ``generate``'s. A generation config that adds
other logits processors (a repetition penalty) would make ``generate`` differ; the speed does
not depend on the tokens picked.

Interleaving and blocks, as :mod:`audit.probes.timings` does for classifiers: each model is
warmed up (``WARMUP`` generations), then timed calls go in pairs, one of each model, alternating
which goes first; the two pairs of a block (``2b``, ``2b + 1``) read the same prompt, so a
block holds each model on one prompt twice, once first and once second. Blocks cycle through
the prompts (``prompts`` eval items drawn with the suite's seed, in a seeded random order, so
the run's two halves are alike under an unchanged machine). ``max_seconds`` caps the timed
calls, keeping whole blocks and at least ``MIN_PAIRS`` pairs. Threads are pinned
(:func:`~audit.probes.timings.pinned_threads`, one thread) and Python's garbage collector is off
(:func:`~audit.probes.timings.collector_off`) while timing. On a CUDA device every phase ends
with a synchronize, and only its wall time means anything (the CPU waits for the GPU).

Memory, after the timed calls (so it costs them nothing): each model generates
:data:`MEMORY_PASSES` times more from every prompt, teacher and student alternating, measured by
:mod:`audit.probes.lm_memory` (the peak of the bytes malloc'd above the generation's start).
"""

from __future__ import annotations

import inspect
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from audit.errors import DataError
from audit.probes.artifacts import ArtifactRequest
from audit.probes.lm_memory import generation_peak, heap_meter, memory_method, parameter_bytes
from audit.probes.timings import collector_off, pinned_threads
from audit.probes.tokens import language_models

__all__ = ["LMTimings", "PHASES", "MIN_PAIRS", "WARMUP", "MEMORY_PASSES", "lm_timings",
           "Generator", "prompt_ids"]

PHASES = ("tokenize", "prefill", "first_token", "decode")
# pairs kept under the cap: 15 blocks of two pairs, 30 timed calls per model, the fewest the
# gates judge a family without a floor of its own on (audit.gates.MIN_ROWS); the stability
# check's halves then have 7 and 8 blocks, each enough for a 95% interval of its median
MIN_PAIRS = 30
WARMUP = 3
# untimed generations per prompt and model for the memory: the second shows how far two
# measurements of the same generation differ (glibc's per-thread cache of freed small blocks
# counts them as allocated, so the peak moves by a few hundred bytes)
MEMORY_PASSES = 2
_WHO = ("teacher", "student")


@dataclass(frozen=True)
class LMTimings:
    """Interleaved timed generations of both models (see the module docstring).

    ``rows`` are the eval rows used as prompts (0-based), in the order blocks cycle through them;
    ``prompt_tokens[who][j]`` the length of prompt ``j`` in ``who``'s own tokens;
    ``prompt_of_pair[i]`` the prompt pair ``i`` read; ``wall[who]`` and ``cpu[who]`` the times
    of pair ``i``'s call of ``who`` in milliseconds, one column per phase of :data:`PHASES`
    (``decode``: all ``new_tokens - 1`` steps); ``memory[who]`` holds ``method`` (``heap``,
    ``kv_cache`` or ``cuda``), ``parameter_bytes``, ``peak_bytes[k, j]`` (above the start of
    measurement pass ``k``'s generation from prompt ``j``) and ``kv_cache_bytes[j]`` (at its
    end); ``generated[who][j]`` the tokens generated from prompt ``j``; ``settings`` the
    threads, clock and loop the calls ran with."""

    rows: np.ndarray
    prompt_tokens: Mapping[str, np.ndarray]
    prompt_of_pair: np.ndarray
    wall: Mapping[str, np.ndarray]
    cpu: Mapping[str, np.ndarray]
    new_tokens: int
    warmup: int
    memory: Mapping[str, Mapping[str, Any]]
    generated: Mapping[str, tuple[tuple[int, ...], ...]]
    settings: Mapping[str, Any] = field(default_factory=dict)

    @property
    def pairs(self) -> int:
        return int(len(self.prompt_of_pair))


def prompt_ids(lm: Any, text: str, prompt_tokens: int) -> list[int]:
    """``text``'s prompt for ``lm``: its prefix token and the last ``prompt_tokens - 1`` of the
    text's tokens."""
    tokens = lm.tokens(text)
    keep = prompt_tokens - 1
    if len(tokens) <= prompt_tokens:
        return tokens
    return tokens[:1] + (tokens[len(tokens) - keep:] if keep else [])


class Generator:
    """Greedy generation with the KV cache for one :class:`~audit.models.lm_text.LanguageModel`.

    Knows how to call its model's forward: the keyword its transformers version takes for the
    cache (``cache`` in transformers 5, ``past_key_values`` before), whether it takes
    ``logits_to_keep``, and the EOS tokens of its generation config (masked, as
    ``min_new_tokens`` masks them)."""

    def __init__(self, lm: Any) -> None:
        self.lm = lm
        model = lm.model
        try:
            names = set(inspect.signature(model.forward).parameters)
        except (TypeError, ValueError):
            names = set()
        self.cache_key = "cache" if "cache" in names else "past_key_values"
        self.keep_last = "logits_to_keep" in names
        eos = getattr(getattr(model, "generation_config", None), "eos_token_id", None)
        if eos is None:
            eos = getattr(getattr(model, "config", None), "eos_token_id", None)
        listed = eos if isinstance(eos, (list, tuple)) else [] if eos is None else [eos]
        self.eos = [int(e) for e in listed]

    def _cache(self, out: Any) -> Any:
        found = getattr(out, self.cache_key, None)
        return found if found is not None else getattr(out, "past_key_values", None)

    def _pick(self, logits: Any) -> Any:
        if self.eos:
            logits[:, self.eos] = float("-inf")  # min_new_tokens: no EOS before the last token
        return logits.argmax(-1)

    def __call__(self, text: str, prompt_tokens: int, new_tokens: int,
                 mark: Callable[[], None] = lambda: None) -> tuple[list[int], list[int], Any]:
        """``new_tokens`` tokens after ``text``'s prompt, calling ``mark`` before tokenizing
        and after each phase of :data:`PHASES` (five calls). Returns the prompt's ids, the
        generated ids and the cache at the end."""
        mark()
        ids = prompt_ids(self.lm, text, prompt_tokens)
        return (ids, *self.after(ids, new_tokens, mark))

    def after(self, ids: list[int], new_tokens: int, mark: Callable[[], None] = lambda: None
              ) -> tuple[list[int], Any]:
        """``new_tokens`` tokens after the prompt ``ids`` (the phases after tokenizing, with a
        ``mark`` before and after each): the generated ids and the cache at the end."""
        lm = self.lm
        torch = lm.torch
        inputs = torch.tensor([ids], dtype=torch.long, device=lm.device)
        mark()
        keep = {"logits_to_keep": 1} if self.keep_last else {}
        with torch.inference_mode():
            out = lm.model(input_ids=inputs, use_cache=True, **keep)
            logits = out.logits[:, -1]
            mark()
            token = self._pick(logits)
            mark()
            cache = self._cache(out)
            picked = [token]
            for _ in range(new_tokens - 1):
                out = lm.model(input_ids=token[:, None], use_cache=True,
                               **{self.cache_key: cache})
                cache = self._cache(out)
                token = self._pick(out.logits[:, -1])
                picked.append(token)
            mark()
        return [int(t) for t in torch.cat(picked).tolist()], cache


class _Marks:
    """The clocks at each mark: ``(wall_ns, cpu_ns)``; ``sync`` waits for a GPU first."""

    def __init__(self, sync: Callable[[], None] | None) -> None:
        self.sync = sync
        self.at: list[tuple[int, int]] = []

    def __call__(self) -> None:
        if self.sync is not None:
            self.sync()
        self.at.append((time.perf_counter_ns(), time.process_time_ns()))

    def phases(self) -> tuple[list[float], list[float]]:
        """Milliseconds of each phase, wall and CPU."""
        wall = [(b[0] - a[0]) / 1e6 for a, b in zip(self.at, self.at[1:])]
        cpu = [(b[1] - a[1]) / 1e6 for a, b in zip(self.at, self.at[1:])]
        return wall, cpu


def _synchronize(lm: Any) -> Callable[[], None]:
    """Waiting for ``lm``'s CUDA device to finish what it was given."""
    def sync() -> None:
        lm.torch.cuda.synchronize(lm.device)

    return sync


def _prompts(probes: Any, count: int) -> tuple[np.ndarray, list[str]]:
    """The eval rows used as prompts (drawn with the suite's seed, in a seeded random order)
    and their contexts."""
    table = probes.run.eval_table
    if table.texts is None:
        raise DataError("timing generation reads the items' contexts as prompts; data.eval is "
                        "not a .jsonl file of items")
    rows = np.asarray(probes.sample(count))
    rows = rows[np.random.default_rng(probes.seed).permutation(len(rows))]
    return rows, [str(table.texts[i]) for i in rows]


def lm_timings(probes: Any, request: ArtifactRequest) -> LMTimings:
    """Both models' timed greedy generations on the same prompts, interleaved in blocks, then
    :data:`MEMORY_PASSES` untimed generations per prompt and model for the peak memory."""
    prompt_tokens, new_tokens = int(request.get("prompt_tokens")), int(request.get("new_tokens"))
    repeats, max_seconds = int(request.get("repeats")), float(request.get("max_seconds"))
    threads = int(request.get("threads", 1))
    models = probes.run.runnable_models("timing generation runs")
    lms = language_models(probes, "timing generation")
    generators = {who: Generator(lm) for who, lm in lms.items()}
    rows, texts = _prompts(probes, int(request.get("prompts")))
    lengths = {who: np.array([len(prompt_ids(lm, t, prompt_tokens)) for t in texts])
               for who, lm in lms.items()}
    for who, lm in lms.items():
        longest = int(lengths[who].max())
        if longest + new_tokens > lm.max_length:
            raise DataError(f"timing generation: the {who}'s longest prompt is {longest} tokens "
                            f"and new_tokens is {new_tokens}, {longest + new_tokens} positions, "
                            f"more than its max_length {lm.max_length}; lower prompt_tokens or "
                            "new_tokens")
    cuda = {who: lm.device.type == "cuda" for who, lm in lms.items()}
    syncs = {who: _synchronize(lm) if cuda[who] else None for who, lm in lms.items()}
    wall: dict[str, list[list[float]]] = {who: [] for who in _WHO}
    cpu: dict[str, list[list[float]]] = {who: [] for who in _WHO}
    of_pair: list[int] = []
    meter = heap_meter()
    memory: dict[str, dict[str, Any]] = {}
    generated: dict[str, list[tuple[int, ...]]] = {who: [] for who in _WHO}
    with pinned_threads(threads, models) as settings, collector_off():
        settings["gc"] = False
        for generate in generators.values():
            for _ in range(WARMUP):
                generate(texts[0], prompt_tokens, new_tokens)
        deadline = time.perf_counter() + max_seconds
        for r in range(repeats):
            j = (r // 2) % len(texts)
            order = _WHO if r % 2 == 0 else _WHO[::-1]
            for who in order:
                marks = _Marks(syncs[who])
                generators[who](texts[j], prompt_tokens, new_tokens, mark=marks)
                w, c = marks.phases()
                wall[who].append(w)
                cpu[who].append(c)
            of_pair.append(j)
            if r % 2 and r + 1 >= MIN_PAIRS and time.perf_counter() > deadline:  # whole blocks
                break
        methods = memory_method(lms, meter)
        ids = {who: [prompt_ids(lm, t, prompt_tokens) for t in texts] for who, lm in lms.items()}
        peaks = {who: np.zeros((MEMORY_PASSES, len(texts)), dtype=np.int64) for who in _WHO}
        kv = {who: np.zeros(len(texts), dtype=np.int64) for who in _WHO}
        for k in range(MEMORY_PASSES):
            for j in range(len(texts)):
                for who in (_WHO if (k + j) % 2 == 0 else _WHO[::-1]):
                    p, kv[who][j], tokens = generation_peak(generators[who], ids[who][j], new_tokens,
                                                            meter)
                    peaks[who][k, j] = p
                    if k == 0:
                        generated[who].append(tuple(tokens))
        for who, lm in lms.items():
            memory[who] = {"method": methods[who], "parameter_bytes": parameter_bytes(lm.model),
                           "peak_bytes": peaks[who], "kv_cache_bytes": kv[who]}
    clock = "wall" if threads != 1 or any(cuda.values()) else "cpu"
    settings = {**settings, "clock": clock, "devices": {w: str(lm.device) for w, lm in lms.items()},
                "cache_keyword": {w: g.cache_key for w, g in generators.items()},
                "logits_to_keep": {w: g.keep_last for w, g in generators.items()},
                "loop": "greedy, batch 1, KV cache, EOS masked until new_tokens"}
    return LMTimings(rows, lengths, np.array(of_pair, dtype=np.int64),
                     {who: np.array(v, dtype=np.float64).reshape(-1, len(PHASES))
                      for who, v in wall.items()},
                     {who: np.array(v, dtype=np.float64).reshape(-1, len(PHASES))
                      for who, v in cpu.items()},
                     new_tokens, WARMUP, memory,
                     {who: tuple(v) for who, v in generated.items()}, settings)
