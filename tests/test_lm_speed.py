"""Language-model speed (:mod:`audit.checks.lm_speed`, :mod:`audit.probes.lm_timings`): the
generation loop against ``transformers.generate``, every metric against a model whose forward
spends a known CPU time and allocates known bytes, the estimators and the stability rule on
hand-made timings, and suites on the small Llama pair: the numbers against independent
computations (tokenizer, config, tensors), gates that must fail, the CLI end to end, and the
clear error for a model that is only an lm-evaluation-harness samples file."""

from __future__ import annotations

import json
import time
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import numpy as np
import pytest
import yaml

from audit.checks.catalogue import get_metric
from audit.checks.efficiency import UNIT, median_interval
from audit.checks.lm_speed import MEMORY_UNIT, block_values
from audit.checks.measure import measure_all
from audit.errors import SuiteError
from audit.gates import evaluate_gate
from audit.probes.artifacts import ArtifactRequest
from audit.probes.lm_memory import heap_meter
from audit.probes.lm_timings import (
    MEMORY_PASSES,
    PHASES,
    Generator,
    LMTimings,
    lm_timings,
    prompt_ids,
)
from audit.probes.probe import Probes
from audit.results import Measurement, Status
from audit.runner import SuiteRun
from audit.spec import GateSpec
from audit.suite import suite_from_dict

torch = pytest.importorskip("torch")
transformers = pytest.importorskip("transformers")

METRICS = ("prefill_tokens_per_s", "decode_tokens_per_s", "time_to_first_token_ms",
           "per_token_latency_ms", "peak_memory_mb", "decode_speedup")
FAST = {"new_tokens": 4, "repeats": 30, "prompts": 30}  # 15 blocks: the gates' floor of 30 calls
NOISY = "the machine was too noisy: "


@pytest.fixture(scope="module")
def small() -> Path:
    from fixtures import lm

    return lm.build(small=True)["lm-small/cloze.jsonl"].parent


@pytest.fixture(scope="module")
def items(small: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The first 30 cloze items: as many prompts as the gates need, few to score."""
    path = tmp_path_factory.mktemp("items") / "cloze.jsonl"
    path.write_text("".join((small / "cloze.jsonl").read_text(encoding="utf-8")
                            .splitlines(keepends=True)[:30]), encoding="utf-8")
    return path


def lm_suite(small: Path, items: Path, checks: dict[str, Any], student: str = "student") -> Any:
    return suite_from_dict({
        "version": 1, "name": "lm-speed",
        "data": {"eval": str(items), "target": "answer"},
        "teacher": {"causal_lm": str(small / "teacher")},
        "student": {"causal_lm": str(small / student)},
        "settings": {"bootstrap": 300}, "checks": checks}, base_dir=small)


def _status(m: Measurement, **bound: float) -> tuple[Status, str]:
    (g,) = evaluate_gate(GateSpec(**bound), m)
    return g.status, g.reason


def _measure(name: str, art: Any, params: dict[str, Any] | None = None) -> Measurement:
    (m,) = measure_all(get_metric(name), params or {}, SimpleNamespace(artifacts={"lm_timings": art}),
                       SimpleNamespace(n_boot=300, seed=0), 0.95)
    return m


# -- the loop is greedy generation with the KV cache ----------------------------------------
def _language_model(model: Any, tokenizer: Any) -> Any:
    from audit.models.lm_text import LanguageModel

    return LanguageModel(torch, model.eval(), tokenizer, torch.device("cpu"), 512, 8, "model")


@pytest.mark.slow
def test_the_loop_is_transformers_generate_with_min_new_tokens(small: Path) -> None:
    """A randomly initialised Llama of the small pair's shape (varied greedy tokens, unlike the
    trained tiny pair's), then the same with its EOS row of lm_head scaled up so that EOS is
    often the likeliest token: the loop's tokens are ``generate(do_sample=False,
    max_new_tokens=N, min_new_tokens=N)``'s, exactly N of them, none EOS; without
    min_new_tokens generate would have stopped early, so the masking is what makes them agree."""
    config = transformers.AutoConfig.from_pretrained(small / "teacher", local_files_only=True)
    tokenizer = transformers.AutoTokenizer.from_pretrained(small / "teacher", local_files_only=True)
    torch.manual_seed(0)
    model = transformers.LlamaForCausalLM(config)
    contexts = [json.loads(line)["context"] for line in
                (small / "cloze.jsonl").read_text(encoding="utf-8").splitlines()[:6]]
    n, eos = 12, config.eos_token_id
    stopped_early = 0
    for boost in (1.0, 40.0):
        with torch.no_grad():
            model.lm_head.weight[eos] *= boost
        lm = _language_model(model, tokenizer)
        generate = Generator(lm)
        seen = set()
        for context in contexts:
            ids, tokens, _ = generate(context, 32, n)
            assert ids[0] == tokenizer.bos_token_id and len(ids) <= 32
            inputs = torch.tensor([ids])
            with torch.inference_mode():
                want = model.generate(inputs, attention_mask=torch.ones_like(inputs),
                                      do_sample=False, max_new_tokens=n, min_new_tokens=n)
                free = model.generate(inputs, attention_mask=torch.ones_like(inputs),
                                      do_sample=False, max_new_tokens=n)
            assert tokens == want[0, len(ids):].tolist()
            assert len(tokens) == n and eos not in tokens
            seen |= set(tokens)
            stopped_early += int(free.shape[1] < len(ids) + n)
        assert len(seen) > 3  # not one token repeated
    assert stopped_early > 0  # the boosted EOS: generate without min_new_tokens stops


def test_a_prompt_is_the_bos_token_and_the_contexts_last_tokens(small: Path) -> None:
    tokenizer = transformers.AutoTokenizer.from_pretrained(small / "teacher", local_files_only=True)
    model = transformers.AutoModelForCausalLM.from_pretrained(small / "teacher",
                                                              local_files_only=True)
    lm = _language_model(model, tokenizer)
    text = "the quick brown fox jumps over the lazy dog " * 5
    words = tokenizer(text, add_special_tokens=False)["input_ids"]
    assert prompt_ids(lm, text, 10) == [tokenizer.bos_token_id, *words[-9:]]
    assert prompt_ids(lm, text, 1) == [tokenizer.bos_token_id]
    assert prompt_ids(lm, "fox", 10) == [tokenizer.bos_token_id,
                                         *tokenizer("fox", add_special_tokens=False)["input_ids"]]


# -- every metric against a model of known cost ---------------------------------------------
def _spin(ms: float) -> None:
    """Spend ``ms`` milliseconds of this process's CPU time."""
    end = time.process_time_ns() + int(ms * 1e6)
    while time.process_time_ns() < end:
        pass


class _Tokenizer:
    bos_token_id, eos_token_id, pad_token_id, bos_token = 1, 2, 0, "<s>"

    def __call__(self, text: str, add_special_tokens: bool = False) -> dict[str, list[int]]:
        return {"input_ids": [3 + ord(c) % 50 for c in text]}

    def __len__(self) -> int:
        return 64


class _KnownCost(torch.nn.Module):
    """A causal 'model' whose forward spends ``step_ms`` + ``token_ms`` per input token of CPU
    time, holds ``scratch`` bytes while its submodule runs, and keeps a cache of ``kv`` bytes
    per token; its next token is the last input + 1 (EOS skipped by the loop's mask)."""

    def __init__(self, step_ms: float, token_ms: float, scratch: int, kv: int) -> None:
        super().__init__()
        self.step_ms, self.token_ms, self.scratch, self.kv = step_ms, token_ms, scratch, kv
        self.inner = torch.nn.Identity()
        self.weight = torch.nn.Parameter(torch.zeros(1000))
        self.generation_config = SimpleNamespace(eos_token_id=2)

    def forward(self, input_ids: Any, cache: Any = None, use_cache: bool = True,
                logits_to_keep: int = 0) -> Any:
        n = input_ids.shape[1]
        _spin(self.step_ms + n * self.token_ms)
        scratch = torch.empty(self.scratch // 4)  # malloc'd (mallinfo counts it), not filled
        self.inner(scratch)
        del scratch
        cache = [*(cache or []), torch.zeros(n * self.kv // 4)]
        logits = torch.zeros(1, 1 if logits_to_keep else n, 64)
        logits[0, -1, (int(input_ids[0, -1]) + 1) % 64] = 1.0
        return SimpleNamespace(logits=logits, cache=cache)


def _probes(models: dict[str, Any], texts: list[str]) -> Probes:
    from audit.models.lm_text import LanguageModel

    loaded = {who: SimpleNamespace(
        language_model=LanguageModel(torch, m, _Tokenizer(), torch.device("cpu"), 512, 8, who),
        spec=SimpleNamespace(kind="causal_lm"), own_call_ms=None, predict=lambda table: None)
        for who, m in models.items()}
    run = SimpleNamespace(runnable_models=lambda doing: loaded,
                          eval_table=SimpleNamespace(texts=np.array(texts, dtype=object),
                                                     n_rows=len(texts)),
                          suite=SimpleNamespace(settings=SimpleNamespace(seed=0)))
    return Probes(run)


def test_each_metric_measures_the_cpu_time_and_bytes_a_model_spends() -> None:
    """The teacher's forward spends 2 ms + 0.02 ms a token of CPU time, the student's 0.5 ms +
    0.01 ms, on prompts of 16 tokens: prefill 2.32 and 0.66 ms (6,897 and 24,242 tokens/s), a
    decoded token 2.02 and 0.51 ms (495 and 1,961 tokens/s), a decode speedup of 3.96. Python's
    own time per forward comes on top (a small, bounded amount). Memory: 1 MiB of scratch held
    inside the forward and 1 KiB of cache a token, the parameters 4,000 bytes."""
    teacher, student = _KnownCost(2.0, 0.02, 2 ** 20, 1024), _KnownCost(0.5, 0.01, 2 ** 19, 256)
    texts = [f"prompt number {i} with more than sixteen characters" for i in range(10)]
    request = ArtifactRequest.of("lm_timings", prompt_tokens=16, new_tokens=4, repeats=30,
                                 prompts=10, max_seconds=60.0, threads=1)
    art = lm_timings(_probes({"teacher": teacher, "student": student}, texts), request)
    assert art.pairs == 30 and art.cpu["teacher"].shape == (30, len(PHASES))
    assert all(len(set(art.prompt_of_pair[2 * b:2 * b + 2])) == 1 for b in range(15))  # blocks
    assert sorted(art.rows.tolist()) == list(range(10)) and art.rows.tolist() != list(range(10))
    overhead = 0.5  # ms of Python and torch per forward beyond the spin, at most (median)
    for who, (step, token) in (("teacher", (2.0, 0.02)), ("student", (0.5, 0.01))):
        cpu = art.cpu[who]
        assert (cpu[:, 1] >= step + 16 * token).all()  # never less than the CPU time it spent
        assert np.median(cpu[:, 1]) < step + 16 * token + overhead
        assert (cpu[:, 3] >= 3 * (step + token)).all()
        assert np.median(cpu[:, 3]) < 3 * (step + token + overhead)
        assert (art.wall[who] >= cpu - 0.05).all()  # one thread: CPU time is within wall time
        assert art.generated[who][0] == (3 + ord("s") % 50 + 1, 3 + ord("s") % 50 + 2,
                                         3 + ord("s") % 50 + 3, 3 + ord("s") % 50 + 4)
    m = {name: _measure(name, art) for name in METRICS}
    rate, latency = m["prefill_tokens_per_s"], m["per_token_latency_ms"]
    assert 16 / (2.32e-3 + overhead / 1000) < rate.teacher.value <= 16 / 2.32e-3
    assert 16 / (0.66e-3 + overhead / 1000) < rate.student.value <= 16 / 0.66e-3
    assert 2.02 <= latency.teacher.value < 2.02 + overhead
    assert 0.51 <= latency.student.value < 0.51 + overhead
    assert m["decode_tokens_per_s"].teacher.value == pytest.approx(
        1000 / m["per_token_latency_ms"].teacher.value)  # 15 blocks: the median of reciprocals
    assert m["time_to_first_token_ms"].teacher.value > 2.32
    assert 2.3 < m["decode_speedup"].student.value < 4.0  # 3.96 without Python's own time
    assert m["decode_speedup"].student.ci[0] > 2.0
    assert m["per_token_latency_ms"].regression.value < 0  # the student is faster: negative
    assert m["prefill_tokens_per_s"].regression.value < 0
    for name in METRICS:
        assert m[name].n == 30 if name != "peak_memory_mb" else m[name].n == 10
    assert m["decode_speedup"].evidence == {"confidence": 0.95, "unit": UNIT}
    assert _status(m["decode_speedup"], min=2.0) == (Status.PASS, "")
    assert _status(m["decode_speedup"], min=5.0)[0] is Status.FAIL
    # memory: 1 MiB of scratch + the cache of 19 tokens (16 + 3 fed back) of 1 KiB
    mem = art.memory["teacher"]
    assert mem["parameter_bytes"] == 4000
    assert mem["kv_cache_bytes"].tolist() == [19 * 1024] * 10
    assert mem["peak_bytes"].shape == (MEMORY_PASSES, 10)
    if heap_meter() is not None:
        assert mem["method"] == "heap"
        assert (mem["peak_bytes"] >= 2 ** 20).all()
        assert (mem["peak_bytes"] < 2 ** 20 + 19 * 1024 + 64 * 1024).all()
        peak = m["peak_memory_mb"]
        assert peak.teacher.value == pytest.approx((4000 + mem["peak_bytes"].max()) / 2 ** 20)
        assert 0.5 < peak.student.value < 0.6 and peak.regression.value < -0.4
        assert peak.evidence == {"confidence": 0.95, "unit": MEMORY_UNIT}
        assert peak.teacher.ci[0] <= peak.teacher.value <= peak.teacher.ci[1]


# -- the estimators and the stability rule, by hand -----------------------------------------
RATIOS = [4.0, 8.4, 5.2, 7.2, 6.0, 6.8, 4.4, 8.0, 4.8, 7.6, 5.6, 6.4, 5.0, 7.0, 6.2]


def _hand_made(ratios: list[float], *, slower_second_half: float = 1.0) -> LMTimings:
    """15 blocks: the teacher's two decode phases take 10 and 12 ms of CPU (a mean of 11, 1.1
    ms a token with new_tokens 11), the student's 0.9 and 1.1 x 11 / ratio; its second half
    ``slower_second_half`` times slower; prefill 4 ms and 1 ms for prompts of 20 tokens; wall
    time = CPU time x 1.5."""
    cpu: dict[str, list[list[float]]] = {"teacher": [], "student": []}
    for b, r in enumerate(ratios):
        slow = slower_second_half if b >= len(ratios) // 2 else 1.0
        for t, s in ((10.0, 0.9), (12.0, 1.1)):
            cpu["teacher"].append([0.1, 4.0, 0.01, t])
            cpu["student"].append([0.1, 1.0, 0.01, s * 11 / r * slow])
    arrays = {who: np.array(v) for who, v in cpu.items()}
    memory = {who: {"method": "heap", "parameter_bytes": 2 ** 20 * (4 if who == "teacher" else 1),
                    "peak_bytes": np.array([[1000, 2000], [1100, 1900]]),
                    "kv_cache_bytes": np.array([500, 600])} for who in arrays}
    settings = {"threads": 1, "blas": [], "torch": {"intra_op": 1, "before": 2, "inter_op": 1},
                "onnxruntime": {}, "worker": [], "gc": False, "clock": "cpu"}
    return LMTimings(rows=np.arange(2),
                     prompt_tokens={"teacher": np.array([20, 20]), "student": np.array([20, 20])},
                     prompt_of_pair=np.repeat(np.arange(len(ratios)) % 2, 2),
                     wall={who: a * 1.5 for who, a in arrays.items()}, cpu=arrays, new_tokens=11,
                     warmup=3, memory=memory, generated={"teacher": (), "student": ()},
                     settings=settings)


def test_the_decode_speedup_is_the_median_of_block_ratios_with_its_exact_interval() -> None:
    """15 block ratios: median 6.2; at 95% with 15 values the order statistics 4 and 12
    (2 P(B <= 3) = 0.035): 5.0 and 7.2; wall time, 1.5x the CPU time for both models, gives the
    same ratios beside it."""
    m = _measure("decode_speedup", _hand_made(RATIOS))
    assert m.student.value == pytest.approx(6.2)
    low, high, coverage = median_interval(np.array(RATIOS), 0.95)
    assert (low, high) == (5.0, 7.2) and m.student.ci == pytest.approx((low, high))
    assert m.extra["coverage"] == pytest.approx(coverage)
    assert m.extra["wall_speedup"]["value"] == pytest.approx(6.2)
    assert "too_noisy" not in m.extra and m.n == 30
    assert m.method.startswith("median over blocks of the ratio teacher / student time per "
                               "decoded token, CPU time; 30 interleaved pairs")
    per_token = _measure("per_token_latency_ms", _hand_made(RATIOS))
    assert per_token.teacher.value == pytest.approx(1.1)
    assert per_token.student.value == pytest.approx(np.median([1.1 / r for r in RATIOS]))
    rate = _measure("prefill_tokens_per_s", _hand_made(RATIOS))
    assert (rate.teacher.value, rate.student.value) == (pytest.approx(5000), pytest.approx(20000))
    assert rate.regression.value == pytest.approx(-15000)  # higher is better: teacher - student
    ttft = _measure("time_to_first_token_ms", _hand_made(RATIOS))
    assert ttft.teacher.value == pytest.approx(4.11) and ttft.extra["wall"]["teacher"] == \
        pytest.approx(4.11 * 1.5)


def test_a_half_three_times_slower_is_inconclusive_because_the_machine_was_noisy() -> None:
    art = _hand_made(RATIOS, slower_second_half=3.0)
    m = _measure("decode_speedup", art)
    assert m.extra["too_noisy"]["student"].startswith(NOISY + "the first 7 blocks give a decode "
                                                      "speedup of ")
    status, reason = _status(m, min=3.0)
    assert status is Status.INCONCLUSIVE and reason.startswith(NOISY), reason
    assert _status(m, min=1.0)[0] is Status.PASS  # both halves clear it
    latency = _measure("per_token_latency_ms", art)
    assert set(latency.extra["too_noisy"]) == {"student", "regression", "relative_regression"}
    late = np.median(block_values("per_token_latency_ms", art, "student", "cpu")[7:])
    assert latency.student.ci[1] >= late  # widened to hold the slow half
    assert _status(latency, max=0.3)[0] is Status.INCONCLUSIVE  # between the halves' medians
    assert _status(latency, max_regression=0.0)[0] is Status.PASS  # faster than the teacher still


def test_fewer_than_30_timed_calls_are_not_judged_and_memory_needs_30_prompts() -> None:
    few = _measure("decode_speedup", _hand_made(RATIOS[:12]))
    status, reason = _status(few, min=1.0)
    assert status is Status.INCONCLUSIVE
    assert reason.startswith("only 24 timed calls per model: decode_speedup needs at least 30 "
                             "timed calls per model to be judged"), reason
    memory = _measure("peak_memory_mb", _hand_made(RATIOS))
    assert memory.student.value == pytest.approx(1 + 2000 / 2 ** 20)
    assert memory.student.ci == pytest.approx((1 + 1900 / 2 ** 20, 1 + 2100 / 2 ** 20))
    assert memory.regression.value == pytest.approx(-3.0)
    status, reason = _status(memory, max_regression=0.0)
    assert status is Status.INCONCLUSIVE
    assert reason.startswith("only 2 prompts measured per model: the peak_memory_mb regression "
                             "needs at least 30 prompts measured per model"), reason


# -- the small pair, through suites -------------------------------------------------------------
def _artifact(run: SuiteRun, name: str = "decode_speedup") -> LMTimings:
    spec = next(c for c in run.suite.checks if c.name == name)
    (request,) = get_metric(spec.metric).needs(spec.params)
    return run.probes.build(request)


@pytest.mark.slow
def test_the_small_pair_every_metric_against_independent_numbers(small: Path, items: Path) -> None:
    """Every metric on the small pair (teacher 2 layers x 64, student 1 x 32): no error, the
    student faster and smaller; prompt lengths from the tokenizer, the KV cache's bytes from
    the config, the parameter bytes from the tensors, the generated tokens from ``generate``."""
    checks = {name: {"metric": name, **FAST} for name in METRICS}
    checks["decode_speedup"]["gate"] = {"min": 1.0}
    checks["peak_memory_mb"]["gate"] = {"max_regression": 0.0}
    run = SuiteRun(lm_suite(small, items, checks))
    results = {c.name: c for c in run.run_all()}
    assert {n: c.status.value for n, c in results.items()} == {
        **dict.fromkeys(METRICS, "info"), "decode_speedup": "pass", "peak_memory_mb": "pass"}, \
        {n: c.error for n, c in results.items()}
    m = {n: c.measurements[0] for n, c in results.items()}
    art = _artifact(run)
    assert art.pairs == 30 and len(art.rows) == 30
    contexts = [json.loads(line)["context"] for line in items.read_text().splitlines()]
    tokenizer = transformers.AutoTokenizer.from_pretrained(small / "teacher", local_files_only=True)
    lengths = [min(128, 1 + len(tokenizer(contexts[i], add_special_tokens=False)["input_ids"]))
               for i in art.rows]
    assert art.prompt_tokens["teacher"].tolist() == lengths == art.prompt_tokens["student"].tolist()
    # prefill tokens per second: each block's prompt tokens over its mean prefill seconds
    for who in ("teacher", "student"):
        per_block = [lengths[art.prompt_of_pair[2 * b]] / (art.cpu[who][2 * b:2 * b + 2, 1].mean()
                                                           / 1000) for b in range(15)]
        assert getattr(m["prefill_tokens_per_s"], who).value == pytest.approx(np.median(per_block))
        assert getattr(m["decode_tokens_per_s"], who).value == pytest.approx(
            1000 / getattr(m["per_token_latency_ms"], who).value)
        assert getattr(m["time_to_first_token_ms"], who).value > np.median(art.cpu[who][:, 1])
        assert np.median(art.cpu[who]) <= np.median(art.wall[who]) * 1.1
        model = run.model(who).language_model.model
        config = model.config
        assert all(len(g) == 4 and config.eos_token_id not in g for g in art.generated[who])
        for j in range(3):
            ids = prompt_ids(run.model(who).language_model, contexts[art.rows[j]], 128)
            with torch.inference_mode():
                out = model.generate(torch.tensor([ids]), attention_mask=torch.ones(1, len(ids),
                                                                                    dtype=torch.long),
                                     do_sample=False, max_new_tokens=4, min_new_tokens=4)
            assert list(art.generated[who][j]) == out[0, len(ids):].tolist()
        mem = art.memory[who]
        assert mem["parameter_bytes"] == sum(p.numel() * p.element_size()
                                             for p in model.parameters()) + sum(
            b.numel() * b.element_size() for b in model.buffers())
        per_position = (2 * config.num_hidden_layers * config.num_key_value_heads
                        * config.head_dim * 4)  # keys and values, float32
        assert mem["kv_cache_bytes"].tolist() == [per_position * (n + 3) for n in lengths]
        if mem["method"] == "heap":
            assert (mem["peak_bytes"] >= mem["kv_cache_bytes"]).all()
    assert m["decode_speedup"].student.value > 1.0
    assert m["peak_memory_mb"].student.value < m["peak_memory_mb"].teacher.value
    assert m["peak_memory_mb"].n == 30
    row = next(r for r in m["peak_memory_mb"].breakdown if r["kind"] == "memory")
    assert row["model"] == "teacher" and row["method"] in ("heap", "kv_cache")


@pytest.mark.slow
def test_the_teacher_as_its_own_student_fails_a_speedup_gate(small: Path, items: Path) -> None:
    """The teacher audited against itself decodes at the same speed: ``decode_speedup`` about 1
    fails ``min: 1.5``; its peak memory differs by at most the spread of two measurements."""
    checks = {"speedup": {"metric": "decode_speedup", **FAST, "gate": {"min": 1.5}},
              "memory": {"metric": "peak_memory_mb", **FAST, "gate": {"max_regression": 0.01}}}
    speedup, memory = SuiteRun(lm_suite(small, items, checks, student="teacher")).run_all()
    assert speedup.status is Status.FAIL, speedup.measurements[0]
    value = speedup.measurements[0].student
    assert 0.7 < value.value < 1.3 and value.ci[1] < 1.5
    assert memory.status is Status.PASS, memory.gates
    reg = memory.measurements[0].regression
    assert abs(reg.value) < 0.005 and reg.ci[0] <= 0 <= reg.ci[1]


@pytest.mark.slow
def test_a_suite_through_the_cli_fails_an_impossible_speedup(small: Path, items: Path,
                                                              tmp_path: Path,
                                                              monkeypatch: pytest.MonkeyPatch,
                                                              capsys: pytest.CaptureFixture[str]
                                                              ) -> None:
    from audit.cli import main

    monkeypatch.chdir(tmp_path)
    suite = {"version": 1, "name": "lm-speed",
             "data": {"eval": str(items), "target": "answer"},
             "teacher": {"causal_lm": str(small / "teacher")},
             "student": {"causal_lm": str(small / "student")},
             "checks": {"decode": {"metric": "decode_speedup", **FAST, "gate": {"min": 100}},
                        "ttft": {"metric": "time_to_first_token_ms", **FAST,
                                 "gate": {"max": 10_000}}}}
    path = tmp_path / "lm-speed.audit.yaml"
    path.write_text(yaml.safe_dump(suite), encoding="utf-8")
    assert main(["run", str(path), "--report-dir", "reports", "-q"]) == 1
    out = capsys.readouterr().out
    assert "<  min 100   -> FAIL" in out, out
    assert "n=30 timed calls per model, median over blocks of the ratio teacher / student time " \
           "per decoded token, CPU time; 30 interleaved pairs of greedy generations (4 new tokens " \
           "each, batch 1, KV cache)" in out.replace("\n  ", " ")
    assert "Traceback" not in out
    report = json.loads((tmp_path / "reports" / "lm-speed" / "latest.json").read_text())
    assert [c["status"] for c in report["checks"]] == ["fail", "pass"]
    assert {m["family"] for c in report["checks"] for m in c["measurements"]} == {"lm_speed"}
    html = (tmp_path / "reports" / "lm-speed" / "latest.html").read_text(encoding="utf-8")
    assert "Language-model speed" in html and "decode tokens s" in html


@pytest.mark.parametrize("name", METRICS)
def test_generation_timings_are_never_reused_from_the_cache(name: str) -> None:
    from audit.reuse import measures_the_machine

    assert measures_the_machine(get_metric(name), FAST)


# -- what cannot be timed ---------------------------------------------------------------------
def test_an_lm_eval_samples_file_is_a_clear_error(small: Path, tmp_path: Path) -> None:
    """lm_eval's --log_samples hold the choices' scores, no model to run."""
    lines = [{"doc_id": i, "doc": {}, "target": str(i % 2),
              "arguments": {f"gen_args_{j}": {"arg_0": f"Q{i}", "arg_1": f" c{j}"}
                            for j in range(2)},
              "filtered_resps": [["-1.5", "False"], ["-2.5", "False"]], "doc_hash": f"h{i}"}
             for i in range(30)]
    samples = tmp_path / "samples.jsonl"
    samples.write_text("".join(json.dumps(line) + "\n" for line in lines), encoding="utf-8")
    suite = suite_from_dict({
        "version": 1, "name": "samples", "data": {"eval": str(samples), "target": "target"},
        "teacher": {"lm_eval": str(samples)}, "student": {"lm_eval": str(samples)},
        "checks": {"decode": {"metric": "decode_speedup", **FAST}}}, base_dir=tmp_path)
    (result,) = SuiteRun(suite).run_all()
    assert result.status is Status.ERROR
    assert result.error == ("timing generation runs the teacher on whole texts, but the teacher "
                            "is a lm_eval model; name a causal_lm folder (lm_eval sample files "
                            "hold only the choices' scores)"), result.error


def test_a_classifier_suite_refuses_the_language_model_metrics(tmp_path: Path) -> None:
    from fixtures.synthetic import write_pair

    write_pair(tmp_path, n=50)
    with pytest.raises(SuiteError, match="decode_speedup"):
        suite_from_dict({
            "version": 1, "name": "tabular", "data": {"eval": "eval.csv", "target": "label"},
            "teacher": {"predictions": "teacher.csv", "columns": ["p_No", "p_Yes"],
                        "classes": ["No", "Yes"]},
            "student": {"predictions": "student.csv", "columns": ["p_No", "p_Yes"],
                        "classes": ["No", "Yes"]},
            "checks": {"decode": {"metric": "decode_speedup"}}}, base_dir=tmp_path)
