"""Language-model speed: what distilling a causal language model buys at generation time.

Per model (teacher vs student; regression oriented by the metric's direction, so positive is
a student worse than its teacher):

* ``prefill_tokens_per_s`` (higher): prompt tokens per second of the forward pass that reads
  the prompt and fills the KV cache;
* ``decode_tokens_per_s`` (higher): tokens per second of greedy decoding with the KV cache, one
  token at a time, after the first (``new_tokens - 1`` forward passes of one token each);
* ``time_to_first_token_ms`` (lower): tokenizing the context, the prefill and picking the
  first token, in milliseconds;
* ``per_token_latency_ms`` (lower): the mean time of one decoded token after the first;
* ``peak_memory_mb`` (lower): the model's parameter and buffer bytes plus the peak of what one
  generation allocates above its start, the largest over the prompts, in MiB (2^20 bytes).

Pairwise: ``decode_speedup`` (higher): teacher time / student time per decoded token, the number
a distillation is usually gated on (``min: 3`` reads "decodes at least 3x faster").

The timings are one artifact per run (:mod:`audit.probes.lm_timings` builds it; every check of
this family with the same settings shares it): each model warmed up, then teacher and student
generations interleaved in pairs, alternating which goes first, two pairs a block on the same
prompt (an eval item's context cut to its last ``prompt_tokens`` tokens), ``new_tokens`` new
tokens each, batch size one, one thread, Python's garbage collector off; the wall time and the
CPU time of each phase recorded. The loop is a manual one with the KV cache, not
``model.generate``, so that the phases can be timed; its tokens are ``generate(do_sample=False,
max_new_tokens=N, min_new_tokens=N)``'s (the tests check it).

How the numbers are judged, as :mod:`audit.checks.efficiency` judges a classifier's:

* **The clock.** CPU time (one thread: a call's CPU time is its wall time on an idle machine,
  without the waits for a core another process causes); wall time is reported beside it, and
  judged on a CUDA device (the CPU time of a GPU call is not its cost).
* **The unit.** A block: one prompt, each model on it twice, once first and once second. Per
  model, a block's value is its two calls' mean time (or the prompt's tokens over it, for a
  rate); the measurement is the median over blocks, with a paired bootstrap interval over
  blocks (teacher and student share the draws) for both models and the regression.
  ``decode_speedup`` is the median over blocks of the ratio of the two models' mean time per
  decoded token, with the order-statistic interval of that median
  (:func:`~audit.checks.efficiency.median_interval`: exact, no bootstrap).
* **The stability check.** The blocks are split in time, and each half's median gets its exact
  interval; the prompts are in a seeded random order, so the halves read alike prompts. Halves
  that do not overlap mean the machine changed under the run: the interval is widened to hold
  both, and a gate it then straddles is INCONCLUSIVE with "the machine was too noisy".
* **The evidence.** ``n`` counts timed calls per model; the gates judge this family on 30 or
  more (15 blocks), so the probe keeps at least 30 pairs under its ``max_seconds`` cap.

Memory is measured, not timed: after the timed calls each model generates twice more from
every prompt, and the peak of the bytes the process has allocated with ``malloc`` (glibc's
``mallinfo2``; torch's CPU tensors and a BLAS library's scratch come from there), sampled before
and after every module's forward pass, is taken above its value when the generation starts.
That is what generating needs besides the resident model: activations, logits and the KV cache,
at module granularity (a kernel's temporaries inside one module are not seen). The parameter
and buffer bytes are counted from the model's tensors, not from the process: the whole process
(Python, torch, the other model) is no model's cost, and its peak RSS never goes down, so it
cannot tell two models in one process apart. The value is the largest over the prompts and the
two passes. Nothing is sampled (the same generation allocates the same tensors), but two passes
differ by a few hundred bytes (glibc's per-thread cache counts freed small blocks as
allocated): the interval is the value plus or minus the largest difference between the passes
on one prompt, so a student identical to its teacher straddles a zero regression rather than
failing it. Its ``n`` counts the prompts measured, and the gates judge it on 30 or more.
Without ``mallinfo2`` (not glibc) the KV cache's bytes at the end of the generation stand in
for the peak, and on CUDA torch's ``max_memory_allocated`` is read; the method says which.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import Any, Literal

import numpy as np

from audit.checks.efficiency import (
    UNIT,
    block_ratios,
    blocks,
    halves,
    halves_disagree,
    median_estimate,
    threads_note,
)
from audit.checks.registry import Family, Metric, MetricInput, Param, register, register_family
from audit.errors import DataError
from audit.probes.artifacts import ArtifactRequest
from audit.results import Estimate, Measurement, Table, format_estimate

__all__ = ["DEFAULT_PROMPT_TOKENS", "DEFAULT_NEW_TOKENS", "DEFAULT_REPEATS", "DEFAULT_PROMPTS",
           "DEFAULT_MAX_SECONDS", "MIB", "MEMORY_UNIT", "block_values", "memory_estimate"]

DEFAULT_PROMPT_TOKENS = 128
DEFAULT_NEW_TOKENS = 32
DEFAULT_PROMPTS = 30
DEFAULT_REPEATS = 60  # 30 blocks: every one of the 30 prompts timed once per model and order
DEFAULT_MAX_SECONDS = 120.0
THREADS = 1
MIB = 2 ** 20
MEMORY_UNIT = "prompts measured per model"
_WHO = ("teacher", "student")
_CLOCK_WORDS = {"cpu": "CPU time", "wall": "wall time"}
# columns of LMTimings.wall / .cpu (audit.probes.lm_timings.PHASES)
_TOKENIZE, _PREFILL, _FIRST, _DECODE = range(4)


def _settings(params: Mapping[str, Any]) -> dict[str, Any]:
    """The probe's settings, defaults applied."""
    return {"prompt_tokens": int(params.get("prompt_tokens", DEFAULT_PROMPT_TOKENS)),
            "new_tokens": int(params.get("new_tokens", DEFAULT_NEW_TOKENS)),
            "repeats": int(params.get("repeats", DEFAULT_REPEATS)),
            "prompts": int(params.get("prompts", DEFAULT_PROMPTS)),
            "max_seconds": float(params.get("max_seconds", DEFAULT_MAX_SECONDS))}


def _needs(params: Mapping[str, Any]) -> tuple[ArtifactRequest, ...]:
    """One set of timed generations for every check of the family with these settings."""
    return (ArtifactRequest.of("lm_timings", **_settings(params), threads=THREADS),)


def _artifact(metric: Metric, inputs: MetricInput) -> Any:
    art = inputs.artifacts.get("lm_timings")
    if art is None:
        raise DataError(f"{metric.name} times the models' generation; run it through a suite")
    return art


def _times(art: Any, who: str, clock: str) -> np.ndarray:
    """``who``'s phase times in milliseconds, one row per timed call, on ``clock``."""
    return np.asarray(art.cpu[who] if clock == "cpu" else art.wall[who], dtype=np.float64)


def block_values(name: str, art: Any, who: str, clock: str) -> np.ndarray:
    """Per block of two pairs (one prompt, each model first once), the value ``name`` takes
    for ``who``: the mean of the block's two calls for a time, the prompt's tokens over that
    mean for a rate.

    ``prefill_tokens_per_s``: prompt tokens / mean prefill seconds; ``decode_tokens_per_s``:
    ``new_tokens - 1`` / mean decode seconds; ``time_to_first_token_ms``: mean of tokenize +
    prefill + first token; ``per_token_latency_ms``: mean decode milliseconds /
    ``new_tokens - 1``.
    """
    times = _times(art, who, clock)
    steps = art.new_tokens - 1
    if name == "prefill_tokens_per_s":
        tokens = art.prompt_tokens[who][art.prompt_of_pair][0::2][:len(times) // 2]
        with np.errstate(divide="ignore"):
            return tokens / (blocks(times[:, _PREFILL]) / 1000.0)
    if name == "decode_tokens_per_s":
        with np.errstate(divide="ignore"):
            return steps / (blocks(times[:, _DECODE]) / 1000.0)
    if name == "time_to_first_token_ms":
        return blocks(times[:, :_DECODE].sum(axis=1))
    if name == "per_token_latency_ms":
        return blocks(times[:, _DECODE]) / steps
    raise KeyError(name)


def _bootstrap(t: np.ndarray, s: np.ndarray, n_boot: int, seed: int
               ) -> tuple[np.ndarray, np.ndarray]:
    """Medians of paired bootstrap draws of the blocks (block ``b`` of each model together)."""
    idx = np.random.default_rng(seed).integers(0, len(t), size=(n_boot, len(t)))
    return np.median(t[idx], axis=1), np.median(s[idx], axis=1)


def _widened(full: Estimate, *parts: Estimate | None) -> Estimate:
    """``full`` with its interval stretched to hold the other estimates' values and intervals."""
    ends = [v for e in (full, *parts) if e is not None
            for v in ((e.value,) if e.ci is None else e.ci) if np.isfinite(v)]
    return Estimate(full.value, (min(ends), max(ends))) if ends else full


def _noisy(halves_text: str, widened: Estimate) -> tuple[str, str]:
    """(the note, the gate's reason) for two halves of a run that disagree."""
    halves_text += ", intervals that do not overlap"
    note = (f"the two halves of the run disagree: {halves_text}; the interval is widened to "
            f"hold both: {format_estimate(widened)}")
    reason = (f"the machine was too noisy: {halves_text}; the interval that holds both, "
              f"{format_estimate(widened)}, straddles the threshold; time again on a quieter "
              "machine, or raise repeats")
    return note, reason


def _too_few(b: int, confidence: float) -> str:
    return (f"stability check skipped: {b} blocks of two pairs give halves of {b // 2} and "
            f"{b - b // 2}, too few for a {confidence:.0%} interval each (6 per half at 95%, "
            "24 timed calls per model); raise repeats")


def _clock(art: Any) -> tuple[str, str | None]:
    clock = str(art.settings.get("clock", "cpu"))
    if clock == "cpu":
        return clock, None
    if int(art.settings.get("threads", THREADS)) != 1:
        return clock, "more than one thread per model: judged on wall time"
    return clock, ("a model on a CUDA device: judged on wall time (each phase ends with a "
                   "synchronize; the CPU time of a GPU call is not its cost)")


def _common_notes(art: Any, clock_note: str | None, rates: bool) -> list[str]:
    notes = [threads_note(art)]
    if clock_note:
        notes.append(clock_note)
    lt, ls = (np.asarray(art.prompt_tokens[w]) for w in _WHO)
    if rates and not np.array_equal(lt, ls):
        notes.append(f"the two tokenizers cut the same contexts into different numbers of tokens "
                     f"(teacher {lt.mean():.1f}, student {ls.mean():.1f} a prompt on average): "
                     "tokens per second counts each model's own tokens")
    return notes


def _method(what: str, art: Any, clock: str, interval: str) -> str:
    return (f"{what}, {_CLOCK_WORDS[clock]}; {art.pairs} interleaved pairs of greedy generations "
            f"({art.new_tokens} new tokens each, batch 1, KV cache) after {art.warmup} warm-up "
            f"generations per model, in blocks of two pairs on one prompt (each model first "
            f"once); {interval}; stability: the run's two halves compared")


def _measure_model(metric: Metric, params: Mapping[str, Any], inputs: MetricInput,
                   resampler: Any, confidence: float) -> tuple[Measurement, ...]:
    """A per-model speed metric: medians over blocks, paired bootstrap over blocks, the
    stability check on the halves' medians."""
    from audit.checks.measure import paired_measurement

    art = _artifact(metric, inputs)
    clock, clock_note = _clock(art)
    t, s = (block_values(metric.name, art, who, clock) for who in _WHO)
    b = len(t)
    if b == 0:
        raise DataError(f"{metric.name}: no whole block of two pairs was timed; raise repeats")
    notes = _common_notes(art, clock_note, metric.name.endswith("_per_s"))
    shown = {k: v for k, v in _settings(params).items() if k != "max_seconds"}

    def measured(sl: slice) -> Measurement:
        rt, rs = _bootstrap(t[sl], s[sl], resampler.n_boot, resampler.seed)
        return paired_measurement(metric, float(np.median(t[sl])), float(np.median(s[sl])),
                                  rt, rs, confidence, method="", n=art.pairs, params=shown)

    full = measured(slice(0, b))
    split = {"teacher": halves(t, confidence), "student": halves(s, confidence)}
    extra: dict[str, Any] = {"clock": clock, "blocks": b, "settings": dict(art.settings),
                             "halves": {"blocks": [b // 2, b - b // 2],
                                        **{f"{who}_median": [h.to_dict() for h in split[who]]
                                           for who in _WHO}}}
    if clock == "cpu":
        wt, ws = (float(np.median(block_values(metric.name, art, who, "wall"))) for who in _WHO)
        extra["wall"] = {"teacher": wt, "student": ws}
        notes.append(f"wall time beside it: student {ws:.4g}, teacher {wt:.4g}")
    assert full.teacher is not None and full.regression is not None
    est = {"student": full.student, "teacher": full.teacher, "regression": full.regression}
    shifted = [who for who in _WHO if halves_disagree(*split[who])]
    if any(h.ci is None for who in _WHO for h in split[who]):
        notes.append(_too_few(b, confidence))
    elif shifted:
        first, second = measured(slice(0, b // 2)), measured(slice(b // 2, b))
        noisy: dict[str, str] = {}
        for name in [*shifted, "regression"]:
            est[name] = _widened(est[name], getattr(first, name), getattr(second, name))
        for who in shifted:
            h1, h2 = split[who]
            note, reason = _noisy(
                f"the {who}'s median was {format_estimate(h1)} in the first {b // 2} blocks and "
                f"{format_estimate(h2)} in the last {b - b // 2} ({_CLOCK_WORDS[clock]})",
                est[who])
            notes.append(note)
            if who == "student":
                noisy["student"] = reason
            noisy.setdefault("regression", reason)
            noisy.setdefault("relative_regression", reason)
        extra["too_noisy"] = noisy
    method = _method("median over blocks", art, clock,
                     f"paired bootstrap over the blocks, {resampler.n_boot} replicates")
    m = dataclasses.replace(full, student=est["student"], teacher=est["teacher"],
                            regression=est["regression"],
                            relative_regression=_relative(est["regression"], est["teacher"]),
                            method=method, notes=tuple(notes), extra=extra,
                            breakdown=tuple(_rows(art, clock)))
    return (dataclasses.replace(m, evidence={"confidence": confidence, "unit": UNIT}),)


def _relative(reg: Estimate, teacher: Estimate) -> Estimate:
    """The regression over ``|teacher|`` (as :func:`audit.checks.measure.paired_measurement`)."""
    denom = abs(teacher.value)
    if not np.isfinite(denom) or denom == 0:
        return Estimate(float("nan"))
    ci = None if reg.ci is None else (reg.ci[0] / denom, reg.ci[1] / denom)
    return Estimate(reg.value / denom, ci)


def _measure_speedup(metric: Metric, params: Mapping[str, Any], inputs: MetricInput,
                     resampler: Any, confidence: float) -> tuple[Measurement, ...]:
    """Teacher / student time per decoded token: the median of the block ratios with its
    exact interval, the stability check on the halves' medians."""
    art = _artifact(metric, inputs)
    clock, clock_note = _clock(art)
    t, s = (_times(art, who, clock)[:, _DECODE] for who in _WHO)
    ratios = block_ratios(t, s)
    b = len(ratios)
    if b == 0:
        raise DataError(f"{metric.name}: no whole block of two pairs was timed; raise repeats")
    notes = _common_notes(art, clock_note, rates=False)
    value, coverage = median_estimate(ratios, confidence)
    if coverage is not None and coverage < confidence:
        notes.append(f"{b} blocks of two pairs are too few for a {confidence:.0%} interval of "
                     f"the median: [min, max] of their ratios covers it with probability "
                     f"{coverage:.1%}; raise repeats")
    first, second = halves(ratios, confidence)
    extra: dict[str, Any] = {"clock": clock, "coverage": coverage, "blocks": b,
                             "settings": dict(art.settings),
                             "halves": {"blocks": [b // 2, b - b // 2], "first": first.to_dict(),
                                        "second": second.to_dict()}}
    if clock == "cpu":
        beside, _ = median_estimate(block_ratios(*(_times(art, who, "wall")[:, _DECODE]
                                                   for who in _WHO)), confidence)
        extra["wall_speedup"] = beside.to_dict()
        notes.append(f"wall time beside it: decode speedup {format_estimate(beside)}")
    if first.ci is None or second.ci is None:
        notes.append(_too_few(b, confidence))
    elif halves_disagree(first, second):
        value = _widened(value, first, second)
        note, reason = _noisy(f"the first {b // 2} blocks give a decode speedup of "
                              f"{format_estimate(first)}, the last {b - b // 2} "
                              f"{format_estimate(second)} ({_CLOCK_WORDS[clock]})", value)
        notes.append(note)
        extra["too_noisy"] = {"student": reason}
    method = _method("median over blocks of the ratio teacher / student time per decoded "
                     "token", art, clock,
                     "order-statistic interval of the median (distribution-free)")
    shown = {k: v for k, v in _settings(params).items() if k != "max_seconds"}
    return (Measurement(metric.name, metric.direction, value, method=method, n=art.pairs,
                        params=shown, notes=tuple(notes), extra=extra,
                        breakdown=tuple(_rows(art, clock)), family=metric.family,
                        evidence={"confidence": confidence, "unit": UNIT}),)


_MEMORY_WORDS = {
    "heap": "the model's parameter and buffer bytes + the peak of the bytes malloc'd above the "
            "start of one generation (glibc mallinfo2, sampled before and after every module's "
            "forward)",
    "kv_cache": "the model's parameter and buffer bytes + the KV cache's bytes at the end of one "
                "generation (no mallinfo2 here, not glibc: activations are not seen)",
    "cuda": "the model's parameter and buffer bytes + torch's CUDA max_memory_allocated above "
            "the start of one generation",
}


def _peaks(art: Any, who: str) -> np.ndarray:
    """``who``'s peak memory in MiB, one row per measurement pass, one column per prompt."""
    mem = art.memory[who]
    peaks = np.atleast_2d(np.asarray(mem["peak_bytes"], dtype=np.float64))
    return (int(mem["parameter_bytes"]) + peaks) / MIB


def memory_estimate(peaks: np.ndarray) -> tuple[float, float]:
    """The peak over every prompt and pass, and the spread of repeated measurements: the
    largest difference between two passes on one prompt (MiB)."""
    return float(peaks.max()), float((peaks.max(axis=0) - peaks.min(axis=0)).max())


def _measure_memory(metric: Metric, params: Mapping[str, Any], inputs: MetricInput,
                    resampler: Any, confidence: float) -> tuple[Measurement, ...]:
    """Peak memory, the largest over the prompts; its interval is the spread of repeated
    measurements of one generation (there is no sampling of calls to speak of)."""
    art = _artifact(metric, inputs)
    (t, bt), (s, bs) = (memory_estimate(_peaks(art, who)) for who in _WHO)
    prompts = len(art.rows)
    methods = {who: str(art.memory[who]["method"]) for who in _WHO}
    notes = []
    if methods["teacher"] != methods["student"]:
        notes.append(f"the two models' memory was measured differently (teacher: "
                     f"{_MEMORY_WORDS[methods['teacher']]}; student: "
                     f"{_MEMORY_WORDS[methods['student']]}): the values do not compare")
    elif methods["teacher"] == "kv_cache":
        notes.append("glibc's mallinfo2 is not available: the peak is the parameters and the KV "
                     "cache only; activations and logits are not counted")
    passes = _peaks(art, "teacher").shape[0]
    method = (f"{_MEMORY_WORDS[methods['student']]}, the largest over {prompts} prompts "
              f"({art.new_tokens} new tokens each) and {passes} measurement passes, in MiB "
              "(2^20 bytes); interval: +- the largest difference between two passes on one "
              "prompt (no sampling of calls: the generations are the same)")
    shown = {k: v for k, v in _settings(params).items() if k not in ("max_seconds", "repeats")}
    teacher = Estimate(t, (max(t - bt, 0.0), t + bt))
    student = Estimate(s, (max(s - bs, 0.0), s + bs))
    regression = Estimate(s - t, (s - t - bt - bs, s - t + bt + bs))
    clock = str(art.settings.get("clock", "cpu"))
    return (Measurement(metric.name, metric.direction, student, teacher=teacher,
                        regression=regression, relative_regression=_relative(regression, teacher),
                        method=method, n=prompts, params=shown, notes=tuple(notes),
                        breakdown=tuple(_rows(art, clock)),
                        extra={"methods": methods, "spread_mib": {"teacher": bt, "student": bs}},
                        family=metric.family,
                        evidence={"confidence": confidence, "unit": MEMORY_UNIT}),)


def _p(x: np.ndarray, q: float) -> float:
    return float(np.percentile(x, q)) if len(x) else float("nan")


def _rows(art: Any, clock: str) -> list[dict[str, Any]]:
    """Per model: the medians per call of each phase and rate, and the memory."""
    rows: list[dict[str, Any]] = []
    steps = art.new_tokens - 1
    for who in _WHO:
        times, wall = _times(art, who, clock), _times(art, who, "wall")
        tokens = np.asarray(art.prompt_tokens[who])[art.prompt_of_pair]
        with np.errstate(divide="ignore", invalid="ignore"):
            prefill_rate = tokens / (times[:, _PREFILL] / 1000.0)
            decode_rate = steps / (times[:, _DECODE] / 1000.0)
        ttft = times[:, :_DECODE].sum(axis=1)
        rows.append({"kind": "speed", "model": who, "clock": clock, "calls": int(len(times)),
                     "prompts": int(len(set(art.prompt_of_pair.tolist()))),
                     "prompt_tokens": float(np.median(tokens)) if len(tokens) else None,
                     "new_tokens": int(art.new_tokens),
                     "tokenize_ms": _p(times[:, _TOKENIZE], 50),
                     "prefill_ms": _p(times[:, _PREFILL], 50),
                     "ttft_ms": _p(ttft, 50), "ttft_p95_ms": _p(ttft, 95),
                     "per_token_ms": _p(times[:, _DECODE] / steps, 50),
                     "per_token_p95_ms": _p(times[:, _DECODE] / steps, 95),
                     "prefill_tokens_s": _p(prefill_rate, 50),
                     "decode_tokens_s": _p(decode_rate, 50),
                     "wall_ttft_ms": _p(wall[:, :_DECODE].sum(axis=1), 50),
                     "wall_per_token_ms": _p(wall[:, _DECODE] / steps, 50)})
    for who in _WHO:
        mem = art.memory[who]
        peaks = np.asarray(mem["peak_bytes"], dtype=np.float64)
        kv = np.asarray(mem["kv_cache_bytes"], dtype=np.float64)
        peak, spread = memory_estimate(_peaks(art, who))
        rows.append({"kind": "memory", "model": who, "method": str(mem["method"]),
                     "prompts": int(peaks.shape[-1]),
                     "parameters_mib": int(mem["parameter_bytes"]) / MIB,
                     "kv_cache_mib": float(kv.max()) / MIB,
                     "generation_mib": float(peaks.max()) / MIB,
                     "peak_mib": peak, "spread_bytes": round(spread * MIB)})
    return rows


_PARAMS = {
    "prompt_tokens": Param("int", "Tokens of each prompt: an eval item's context, cut to its last "
                                  "tokens (the BOS token kept).",
                           default=DEFAULT_PROMPT_TOKENS, minimum=1),
    "new_tokens": Param("int", "Tokens each timed generation produces (greedy, the EOS token "
                               "masked until then).", default=DEFAULT_NEW_TOKENS, minimum=2),
    "prompts": Param("int", "Eval items used as prompts, drawn with the suite's seed (the "
                            "memory gates need 30).", default=DEFAULT_PROMPTS, minimum=1),
    "repeats": Param("int", "Timed generations per model (interleaved pairs; two pairs a "
                            "prompt; the gates need 30).", default=DEFAULT_REPEATS, minimum=2,
                     maximum=10_000),
    "max_seconds": Param("number", "Wall-clock cap on the timed generations (at least 30 a "
                                   "model are always kept).", default=DEFAULT_MAX_SECONDS,
                         exclusive_minimum=0),
}
_LM = ("choices",)
_PER_MODEL: tuple[tuple[str, Literal["higher", "lower"], str], ...] = (
    ("prefill_tokens_per_s", "higher",
     "Prompt tokens per second of the prefill (the forward pass that fills the KV cache; CPU "
     "time, one thread), median over blocks of interleaved generations, for both models."),
    ("decode_tokens_per_s", "higher",
     "Tokens per second of greedy decoding with the KV cache, one token at a time after the "
     "first (CPU time, one thread), median over blocks, for both models."),
    ("time_to_first_token_ms", "lower",
     "Milliseconds from the context's text to the first new token: tokenizing, prefill and "
     "picking it (CPU time, one thread), median over blocks, for both models."),
    ("per_token_latency_ms", "lower",
     "Mean milliseconds per decoded token after the first (CPU time, one thread), median over "
     "blocks, for both models."),
)
for _name, _direction, _doc in _PER_MODEL:
    register(Metric(_name, _direction, "lm_speed", False, (0.0, float("inf")), _doc,
                    custom=_measure_model, params=_PARAMS, needs=_needs, modalities=_LM))
register(Metric("peak_memory_mb", "lower", "lm_speed", False, (0.0, float("inf")),
                "Parameter and buffer bytes plus the peak bytes one generation allocates above "
                "its start (glibc mallinfo2 at every module), the largest over the prompts, in "
                "MiB, for both models.", custom=_measure_memory, params=_PARAMS, needs=_needs,
                modalities=_LM))
register(Metric("decode_speedup", "higher", "lm_speed", True, (0.0, float("inf")),
                "Teacher time / student time per decoded token (CPU time, one thread): the "
                "median over blocks of interleaved generations of their ratio, with an exact "
                "interval; inconclusive when the run's two halves disagree across the "
                "threshold.", custom=_measure_speedup, params=_PARAMS, needs=_needs,
                modalities=_LM))


# -- report section ----------------------------------------------------------------------
def _tables(m: Measurement) -> tuple[Table, ...]:
    first = next((r for r in m.breakdown if r.get("kind") == "speed"), {})
    clock = _CLOCK_WORDS.get(str(first.get("clock")), "CPU time")
    tables = (
        Table.of_rows(m.breakdown, "speed", f"Generation per model (medians per call, {clock}; "
                                            "wall: wall time)",
                      ("model", "calls", "prompts", "prompt_tokens", "new_tokens",
                       "tokenize_ms", "prefill_ms", "ttft_ms", "ttft_p95_ms", "per_token_ms",
                       "per_token_p95_ms", "prefill_tokens_s", "decode_tokens_s",
                       "wall_ttft_ms", "wall_per_token_ms")),
        Table.of_rows(m.breakdown, "memory", "Memory per model (MiB; generation: the peak "
                                             "above a generation's start)",
                      ("model", "method", "prompts", "parameters_mib", "kv_cache_mib",
                       "generation_mib", "peak_mib", "spread_bytes")))
    return tuple(t for t in tables if t is not None)


FAMILY = register_family(Family("lm_speed", "Language-model speed", order=81, tables=_tables))
