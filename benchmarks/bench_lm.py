#!/usr/bin/env python
"""Language models: the audit's passes against plain transformers loops and lm-evaluation-harness.

On the LM fixtures (``fixtures.lm.build()``: the full pair, ``fixtures/build/lm/``, a 4x192
Llama teacher and a 2x96 student, 500 cloze items, 200 documents; ``--small``: the small pair,
``fixtures/build/lm-small/``), in one process, five tables:

1. **Choice scoring throughput** (target: audit time <= 1.2x plain), items per second of the
   cloze items (4 choices each; all 100 of the small pair, the first 100 of the full pair's 500,
   ``--items``). Audit: ``run.model(who).predict_proba(run.eval_table)`` of a
   ``SuiteRun`` over the fixture (``load_causal_lm``'s ``ChoiceScorer`` inside: the harness's
   tokenisation, batches of 16 sequences longest first, log-softmax, gather; then the softmax
   over the choices and the probability checks). Plain, with the model and tokenizer loaded
   again by ``AutoModelForCausalLM`` / ``AutoTokenizer.from_pretrained(dir,
   local_files_only=True)``: per batch of 16 (context, continuation) pairs in file order, the
   tokenizer on the whole strings and the contexts (one batched call each; trailing spaces of
   a context move to its continuation), the context's tokens plus the rest of the whole
   string's, right-padded, one forward, ``log_softmax``, one ``gather`` and a masked sum; a
   second plain row uses the audit's batches (all pairs tokenized first, longest first), which
   isolates the audit's overhead from its batching. No attention mask on either side (right
   padding: a causal model's outputs at a position do not see the padding after it). The
   log-likelihoods of the audit's ``ChoiceScorer`` (built from the loaded model's pieces) must
   equal the plain loop's (max |diff| printed; 1e-4 allowed: other batches pad to other
   widths, float32).
2. **Token-fidelity throughput** (target: audit <= 1.2x plain), predicted tokens per second of
   the documents (all 50 of the small pair, the first 100 of the full pair's 200,
   ``--documents``), both models. Audit: ``Probes(run).build(ArtifactRequest.of("token_agreement",
   ...))`` (the public builder of ``audit.probes.tokens``; it reads ``data.documents``, checks
   the two vocabularies and runs the private ``_run``: per position top-1 agreement, top-k
   overlap for k = 1..20, KL both ways, TV, and each model's log p, mu and sigma). Plain:
   ``[BOS] + tokens`` per document, batches of 16 in file order, one forward per model,
   ``log_softmax``, top-1 agreement, KL both ways and TV at the real positions, summed per
   document (``index_add_``); a second plain row batches the documents longest first (the
   audit's batches); "plain same outputs" (longest first) also computes the top-k overlaps
   (k = 1..20, vectorised: the teacher's i-th likeliest token counts for every k above both i
   and its rank in the student's top 20) and each model's log p, mu and sigma. The
   per-document sums and per-token values must agree (max |diff| printed).
3. **Bootstrap cost**: ``audit.stats.cluster_ratio_replicates`` at 10,000 documents holding
   1,000,000 tokens (synthetic per-document sums; one statistic, and two as bits per byte
   resamples), 1,000 and 2,000 replicates; and the choice-level paired bootstrap at 10,000
   items (synthetic 4-choice probabilities): ``audit.checks.measure.Resampler`` (the
   multinomial replicates of the joint count table) and ``measure_all`` for the metrics of
   ``suites/cloze-lm.audit.yaml`` (accuracy, agreement, negative_flip_rate, kl_divergence,
   ece). Seconds, best of 3 after a warm-up.
4. **Equality with lm-evaluation-harness**: the ``lm_eval`` CLI (0.4.13, ``--model hf``,
   offline: ``HF_HUB_OFFLINE=1``, ``HF_DATASETS_OFFLINE=1``, a task yaml over the local cloze
   jsonl of table 1's items, ``--batch_size 16``, CPU, float32, ``--log_samples``; one process
   per model, the two side by side) on each model; its ``acc`` and ``acc_norm`` against the
   audit's ``accuracy`` check (a ``SuiteRun`` with ``scoring: sum`` and ``per_char``) on the
   same model and items, and the max |diff| between its logged log-likelihoods and the
   audit's ``ChoiceScorer``'s. The processes' wall time (imports included) is shown, not
   compared.
5. **Published formulas**: CrowS-Pairs ``pct_stereotype`` (the share of pairs whose more
   stereotypical sentence has the strictly higher log-likelihood after BOS) from the audit's
   pair scores (``pair_scores`` artifact, ``audit.checks.stereotype.preferences``) and by hand;
   membership scores of 10 member and 10 non-member documents (the ``membership`` artifact's
   sample) by ``audit.checks.privacy.document_scores`` and by hand from the formulas: loss =
   mean NLL per token, zlib = NLL sum / len(zlib.compress(UTF-8 bytes)), min-k% = mean of the
   floor(0.2 n) lowest token log-probs, min-k%++ = the same over (log p - mu) / sigma with mu =
   sum_v p log p and sigma^2 = sum_v p (log p)^2 - mu^2. The audit's scores are "higher = more
   likely a member": minus loss and minus zlib. By hand is float32 ``log_softmax`` as the model
   computes it, sums in float64: CrowS-Pairs sentences in batches of 16 in file order
   (right-padded), the membership documents one unbatched forward each.

Timing: ``time.perf_counter``, a warm-up call per side, the sides interleaved (the order
rotates every round), the best of ``--rounds`` (default 3; the best, not the median, because
the machine this runs on is shared). torch runs one thread on every side
(``torch.set_num_threads(1)``, ``--threads``) and BLAS/OpenMP one (environment, set before numpy
and torch load), so the comparison is per core. Nothing is read from or written to the
prediction cache (``AuditSession(cache_dir=None)``; models are called directly). A row that
misses its target is profiled with cProfile (the audit side); ``--profile`` profiles every row.

Usage (from the repository root)::

    .venv/bin/python benchmarks/bench_lm.py --small        # the small pair (~2 min)
    .venv/bin/python benchmarks/bench_lm.py                # the full pair (built first if absent)
    .venv/bin/python benchmarks/bench_lm.py --rounds 3 --no-lm-eval --profile
    .venv/bin/python benchmarks/bench_lm.py --check        # exit 1 if a target is missed
"""

from __future__ import annotations

import os

THREADS = {k: "1" for k in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS",
                            "NUMEXPR_NUM_THREADS")}
os.environ.update(THREADS)  # before numpy and torch are imported
for _key in ("HF_HUB_OFFLINE", "HF_DATASETS_OFFLINE", "TRANSFORMERS_OFFLINE"):
    os.environ.setdefault(_key, "1")

import argparse  # noqa: E402
import cProfile  # noqa: E402
import json  # noqa: E402
import math  # noqa: E402
import platform  # noqa: E402
import pstats  # noqa: E402
import shlex  # noqa: E402
import shutil  # noqa: E402
import subprocess  # noqa: E402
import sys  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
import zlib  # noqa: E402
from collections.abc import Callable, Sequence  # noqa: E402
from dataclasses import dataclass, field  # noqa: E402
from importlib.metadata import version  # noqa: E402
from pathlib import Path  # noqa: E402
from typing import Any  # noqa: E402

import numpy as np  # noqa: E402
import torch  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import audit.checks.catalogue  # noqa: E402,F401  (fills the metric registry)
from audit import AuditSession, SuiteRun  # noqa: E402
from audit.checks.measure import Resampler, measure_all  # noqa: E402
from audit.checks.privacy import document_scores  # noqa: E402
from audit.checks.registry import MetricInput, get_metric  # noqa: E402
from audit.checks.stereotype import preferences  # noqa: E402
from audit.models.causal_lm import ChoiceScorer  # noqa: E402
from audit.probes.artifacts import ArtifactRequest  # noqa: E402
from audit.probes.probe import Probes  # noqa: E402
from audit.stats import cluster_ratio_replicates  # noqa: E402
from audit.suite import suite_from_dict  # noqa: E402
from fixtures.lm import build  # noqa: E402

TARGET = 1.2
FULL_ITEMS = 100  # of the full pair's 500 cloze items (tables 1 and 4), to stay near 10 minutes
FULL_DOCUMENTS = 100  # of the full pair's 200 documents (table 2)
BATCH = 16  # the audit's default (audit.models.causal_lm.DEFAULT_LM_BATCH), both sides
MAX_K = 20  # the top-k overlaps the audit's token pass measures (audit.probes.tokens.MAX_K)
FRACTION = 0.2  # min-k% and min-k%++ (audit.checks.privacy.DEFAULT_FRACTION)
LL_TOL = 1e-4  # nats: other batches pad to other widths (float32)
MIN_SAMPLE_S = 0.2  # a timed sample repeats a faster call until it lasts about this long
WHO = ("teacher", "student")
BOOT_DOCS, BOOT_TOKENS, BOOT_ITEMS = 10_000, 1_000_000, 10_000
CHOICE_METRICS = ("accuracy", "agreement", "negative_flip_rate", "kl_divergence", "ece")
LM_EVAL = shutil.which("lm_eval") or str(Path(sys.executable).parent / "lm_eval")
TASK_YAML = """\
task: audit_cloze
dataset_path: json
dataset_kwargs:
  data_files:
    test: {items}
test_split: test
output_type: multiple_choice
doc_to_text: "{{{{context}}}}"
doc_to_choice: "{{{{choices}}}}"
doc_to_target: answer
metric_list:
  - {{metric: acc, aggregation: mean, higher_is_better: true}}
  - {{metric: acc_norm, aggregation: mean, higher_is_better: true}}
"""


# ----------------------------------------------------------------------------- timing
@dataclass
class Row:
    """One comparison: the audit's call and its plain counterpart (seconds per call)."""

    what: str
    model: str
    units: int  # items or tokens per call
    unit: str
    audit: list[float] = field(default_factory=list)
    plain: list[float] = field(default_factory=list)
    profile: Callable[[], Any] | None = None  # the audit's call, to profile

    @property
    def ratio(self) -> float:
        return min(self.audit) / min(self.plain)

    @property
    def ok(self) -> bool:
        return self.ratio <= TARGET


def _per_call(fn: Callable[[], Any], number: int) -> float:
    start = time.perf_counter()
    for _ in range(number):
        fn()
    return (time.perf_counter() - start) / number


def interleaved(sides: Sequence[Callable[[], Any]], rounds: int
                ) -> tuple[list[list[float]], list[Any]]:
    """Seconds per call of each side and what its warm-up call returned: a warm-up call each,
    then ``rounds`` samples each, the order rotating from round to round; a call under
    ``MIN_SAMPLE_S`` repeats within a sample (the same count for every side)."""
    # the warm-up call (first-call costs: allocators, lazy imports) also sizes the samples
    once, results = [], []
    for fn in sides:
        start = time.perf_counter()
        results.append(fn())
        once.append(time.perf_counter() - start)
    number = max(1, math.ceil(MIN_SAMPLE_S / max(min(once), 1e-6)))
    out: list[list[float]] = [[] for _ in sides]
    for r in range(rounds):
        order = list(range(len(sides)))
        order = order[r % len(order):] + order[:r % len(order)]
        for i in order:
            out[i].append(_per_call(sides[i], number))
    return out, results


def best_of(fn: Callable[[], Any], repeat: int = 3) -> float:
    fn()  # warm-up
    return min(_per_call(fn, 1) for _ in range(repeat))


# ----------------------------------------------------------------------------- the suite
def _suite(folder: Path, items: Path, documents: Path, scoring: str = "sum") -> Any:
    """The fixture's data (``items``, ``documents``, pairs, members, non-members) and models."""
    models = {who: {"causal_lm": str(folder / who), "scoring": scoring} for who in WHO}
    return suite_from_dict({
        "version": 1, "name": "bench-lm",
        "data": {"eval": str(items), "target": "answer",
                 "documents": str(documents),
                 "pairs": str(folder / "crows_pairs.jsonl"),
                 "train": str(folder / "members.jsonl"),
                 "holdout": str(folder / "nonmembers.jsonl")},
        **models, "settings": {"bootstrap": 200},
        "checks": {"acc": {"metric": "accuracy"}}}, base_dir=folder)


def _plain_model(folder: Path) -> tuple[Any, Any]:
    import transformers

    transformers.utils.logging.set_verbosity_error()
    transformers.utils.logging.disable_progress_bar()
    model = transformers.AutoModelForCausalLM.from_pretrained(folder, local_files_only=True)
    tok = transformers.AutoTokenizer.from_pretrained(folder, local_files_only=True)
    return model.eval(), tok


# ------------------------------------------------------------------- 1. choice scoring
def _split(context: str, continuation: str) -> tuple[str, str]:
    """lm-evaluation-harness's: a context's trailing whitespace moves to the continuation."""
    spaces = len(context) - len(context.rstrip())
    if spaces:
        return context[:-spaces], context[-spaces:] + continuation
    return context, continuation


def _encode(tok: Any, pairs: list[tuple[str, str]], max_length: int
            ) -> list[tuple[list[int], int, list[int]]]:
    """(inputs, start of the continuation in them, continuation tokens) per pair."""
    wholes = tok([c + k for c, k in pairs])["input_ids"]
    contexts = tok([c for c, _ in pairs])["input_ids"]
    out = []
    for ctx, whole in zip(contexts, wholes, strict=True):
        cont = whole[len(ctx):]
        inputs = (ctx + cont)[-(max_length + 1):][:-1]
        out.append((inputs, len(inputs) - len(cont), cont))
    return out


def _forward_choices(model: Any, pad: int, batch: list[tuple[list[int], int, list[int]]]
                     ) -> torch.Tensor:
    """Summed log-probability of each sequence's continuation, one forward for the batch."""
    width = max(len(b[0]) for b in batch)
    ids = torch.full((len(batch), width), pad, dtype=torch.long)
    target = torch.zeros((len(batch), width), dtype=torch.long)
    mask = torch.zeros((len(batch), width), dtype=torch.bool)
    for r, (inputs, start, cont) in enumerate(batch):
        ids[r, :len(inputs)] = torch.tensor(inputs)
        target[r, start:start + len(cont)] = torch.tensor(cont)
        mask[r, start:start + len(cont)] = True
    with torch.inference_mode():
        logprobs = torch.log_softmax(model(ids).logits, dim=-1)
        picked = logprobs.gather(2, target[..., None])[..., 0]
        return (picked * mask).sum(1)


def plain_choices(model: Any, tok: Any, contexts: Sequence[str], choices: Sequence[Sequence[str]],
                  max_length: int, sort: bool) -> np.ndarray:
    """The log-likelihood of every choice: batches of ``BATCH`` pairs in file order (tokenized
    per batch), or (``sort``) all pairs tokenized first, then batched longest first."""
    k = len(choices[0])
    pairs = [_split(str(c), str(x)) for c, row in zip(contexts, choices, strict=True) for x in row]
    pad = tok.pad_token_id if tok.pad_token_id is not None else 0
    out = np.zeros(len(pairs))
    if sort:
        encoded = _encode(tok, pairs, max_length)
        order = sorted(range(len(encoded)), key=lambda i: -len(encoded[i][0]))
        for start in range(0, len(order), BATCH):
            rows = order[start:start + BATCH]
            out[rows] = _forward_choices(model, pad, [encoded[i] for i in rows]).double().numpy()
    else:
        for start in range(0, len(pairs), BATCH):
            batch = _encode(tok, pairs[start:start + BATCH], max_length)
            out[start:start + len(batch)] = _forward_choices(model, pad, batch).double().numpy()
    return out.reshape(len(contexts), k)


def choice_rows(run: Any, folder: Path, rounds: int, lls: dict[str, np.ndarray],
                diffs: list[tuple[str, str, float]]) -> list[Row]:
    table = run.eval_table
    rows = []
    for who in WHO:
        loaded = run.model(who)
        lm = loaded.language_model
        scorer = ChoiceScorer(torch, lm.model, lm.tokenizer, lm.device, lm.max_length,
                              lm.batch_size)
        model, tok = _plain_model(folder / who)
        texts, choices = list(table.texts), list(table.choices)

        def audit_call(loaded: Any = loaded) -> Any:
            return loaded.predict_proba(table)

        def file_call(model: Any = model, tok: Any = tok, max_length: int = lm.max_length
                      ) -> Any:
            return plain_choices(model, tok, texts, choices, max_length, sort=False)

        def sorted_call(model: Any = model, tok: Any = tok, max_length: int = lm.max_length
                        ) -> Any:
            return plain_choices(model, tok, texts, choices, max_length, sort=True)

        (audit_s, file_s, sorted_s), (p, plain_file, plain_sorted) = interleaved(
            [audit_call, file_call, sorted_call], rounds)
        audit_ll = scorer(table.texts, table.choices)  # the log-likelihoods predict_proba used
        lls[who] = audit_ll
        diffs += [(who, "audit ChoiceScorer vs plain, file order",
                   float(np.abs(audit_ll - plain_file).max())),
                  (who, "audit ChoiceScorer vs plain, longest first",
                   float(np.abs(audit_ll - plain_sorted).max()))]
        e = np.exp(plain_file - plain_file.max(axis=1, keepdims=True))
        diffs.append((who, "audit predict_proba vs softmax(plain ll)",
                      float(np.abs(p - e / e.sum(axis=1, keepdims=True)).max())))
        n = table.n_rows
        rows.append(Row("choices, plain in file order", f"{who} ({_params(model)})", n, "items",
                        audit_s, file_s, audit_call))
        rows.append(Row("choices, plain longest first (the audit's batches)",
                        f"{who} ({_params(model)})", n, "items", audit_s, sorted_s, audit_call))
    return rows


def _params(model: Any) -> str:
    return f"{sum(p.numel() for p in model.parameters()) / 1e6:.2f}M params"


# ------------------------------------------------------------------- 2. token fidelity
def _doc_tokens(tok: Any, texts: Sequence[str]) -> list[list[int]]:
    bos = tok.bos_token_id if tok.bos_token_id is not None else tok.eos_token_id
    return [[bos, *ids] for ids in tok(list(texts), add_special_tokens=False)["input_ids"]]


def _topk_overlap(lt: torch.Tensor, ls: torch.Tensor, k: int) -> torch.Tensor:
    """(M, k): for each j = 1..k the share of the teacher's j likeliest tokens among the
    student's j likeliest. The teacher's i-th token (rank i) with rank r in the student's top k
    (k when absent) counts for every j > max(i, r)."""
    tk, sk = lt.topk(k, dim=-1).indices, ls.topk(k, dim=-1).indices
    eq = tk[:, :, None] == sk[:, None, :]
    rank = torch.where(eq.any(-1), eq.to(torch.uint8).argmax(-1), k)
    first = torch.maximum(torch.arange(k)[None, :], rank)
    js = torch.arange(1, k + 1)
    return (first[:, :, None] < js).sum(1).double() / js


def _own_scores(lp: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """(M, 3): log p of the target, mu and sigma of log p under the model's distribution."""
    p = lp.exp()
    mu = (p * lp).sum(-1)
    sigma = ((p * lp.square()).sum(-1) - mu.square()).clamp_min(0).sqrt()
    return torch.stack([lp.gather(1, targets[:, None])[:, 0], mu, sigma], 1).double()


def plain_tokens(models: dict[str, Any], tok: Any, texts: Sequence[str], full: bool,
                 sort: bool) -> dict[str, Any]:
    """Both models on every document (``[BOS] + tokens``, batches of ``BATCH`` in file order,
    or longest first with ``sort``): per-document sums of top-1 agreement, KL(t||s), KL(s||t)
    and TV; with ``full`` also the top-k overlaps (k = 1..MAX_K) and each model's per-token
    log p, mu and sigma."""
    seqs = _doc_tokens(tok, texts)
    pad = tok.pad_token_id if tok.pad_token_id is not None else 0
    sums = torch.zeros((len(seqs), 4), dtype=torch.float64)
    topk = torch.zeros((len(seqs), MAX_K), dtype=torch.float64)
    own: dict[str, list[torch.Tensor]] = {who: [] for who in models}
    owners = []
    order = sorted(range(len(seqs)), key=lambda i: -len(seqs[i])) if sort else range(len(seqs))
    for start in range(0, len(seqs), BATCH):
        docs = torch.tensor(order[start:start + BATCH])
        chunk = [seqs[i] for i in docs.tolist()]
        width = max(len(s) for s in chunk) - 1
        ids = torch.full((len(chunk), width), pad, dtype=torch.long)
        mask = torch.zeros((len(chunk), width), dtype=torch.bool)
        target = torch.zeros((len(chunk), width), dtype=torch.long)
        for r, s in enumerate(chunk):
            ids[r, :len(s) - 1] = torch.tensor(s[:-1])
            target[r, :len(s) - 1] = torch.tensor(s[1:])
            mask[r, :len(s) - 1] = True
        owner = docs[:, None].expand(-1, width)[mask]
        with torch.inference_mode():
            lt, ls = (torch.log_softmax(models[who](ids).logits.float(), dim=-1)[mask]
                      for who in WHO)
            pt, ps = lt.exp(), ls.exp()
            stats = torch.stack([(lt.argmax(-1) == ls.argmax(-1)).double(),
                                 (pt * (lt - ls)).sum(-1).double(),
                                 (ps * (ls - lt)).sum(-1).double(),
                                 (0.5 * (pt - ps).abs().sum(-1)).double()], 1)
            sums.index_add_(0, owner, stats)
            if full:
                topk.index_add_(0, owner, _topk_overlap(lt, ls, MAX_K))
                targets = target[mask]
                own["teacher"].append(_own_scores(lt, targets))
                own["student"].append(_own_scores(ls, targets))
                owners.append(owner)
    out: dict[str, Any] = {"sums": sums.numpy(), "tokens": np.array([len(s) - 1 for s in seqs])}
    if full:  # per token, documents one after another
        back = torch.argsort(torch.cat(owners), stable=True)
        out["topk"] = topk.numpy()
        out["own"] = {who: torch.cat(v)[back].numpy() for who, v in own.items()}
    return out


def _agreement_request() -> ArtifactRequest:
    return ArtifactRequest.of("token_agreement", table="documents", metric="token-level fidelity")


def token_rows(run: Any, folder: Path, rounds: int, diffs: list[tuple[str, str, float]]
               ) -> list[Row]:
    from audit.data.documents import read_documents

    for who in WHO:
        run.model(who)  # loaded before timing, as for the plain side
    texts = read_documents(run.suite.data.documents).texts
    plain = {who: _plain_model(folder / who)[0] for who in WHO}
    tok = _plain_model(folder / "teacher")[1]

    def audit_call() -> Any:
        return Probes(run).build(_agreement_request())  # a fresh memo: the pass runs again

    variants = {"plain top-1/KL/TV, file order": (False, False),
                "plain top-1/KL/TV, longest first (the audit's batches)": (False, True),
                "plain same outputs, longest first": (True, True)}
    calls = [audit_call] + [lambda full=full, sort=sort: plain_tokens(plain, tok, texts, full, sort)
                            for full, sort in variants.values()]
    seconds, results = interleaved(calls, rounds)
    art = results[0]
    audit_sums = np.column_stack([art.top1, art.kl_forward, art.kl_reverse, art.tv])
    for name, got in zip(variants, results[1:], strict=True):
        if not np.array_equal(art.tokens, got["tokens"]):
            diffs.append(("pair", f"token counts per document, audit vs {name}", math.inf))
        diffs.append(("pair", f"per-document sums of top-1 agreements / KL(t||s) / KL(s||t) / "
                              f"TV, audit vs {name}",
                      float(np.abs(audit_sums - got["sums"]).max())))
    full = results[-1]
    diffs.append(("pair", "per-document top-k overlap sums (k = 1..20), audit vs plain",
                  float(np.abs(art.topk - full["topk"]).max())))
    for who in WHO:
        s = art.scores[who]
        mine = full["own"][who]
        diffs.append((who, "per-token log p / mu / sigma, audit vs plain",
                      float(max(np.abs(s.logp - mine[:, 0]).max(), np.abs(s.mu - mine[:, 1]).max(),
                                np.abs(s.sigma - mine[:, 2]).max()))))
    n = int(art.tokens.sum())
    label = f"teacher + student, {len(texts)} documents"
    return [Row(f"token fidelity, {name}", label, n, "tokens", seconds[0], plain_s, audit_call)
            for name, plain_s in zip(variants, seconds[1:], strict=True)]


# ------------------------------------------------------------------- 3. bootstrap
def bootstrap_rows() -> list[tuple[str, int, float]]:
    rng = np.random.default_rng(0)
    tokens = rng.multinomial(BOOT_TOKENS, np.full(BOOT_DOCS, 1.0 / BOOT_DOCS)).astype(np.float64)
    agree = rng.binomial(tokens.astype(np.int64), 0.8).astype(np.float64)
    nll = np.column_stack([rng.gamma(tokens * 4, 1.0), rng.gamma(tokens * 4.2, 1.0)])
    out: list[tuple[str, int, float]] = []
    for n_boot in (1000, 2000):
        for what, num in (("1 statistic", agree), ("2 statistics (bits_per_byte)", nll)):
            def draw(num: np.ndarray = num, n: int = n_boot) -> Any:
                return cluster_ratio_replicates(num, tokens, n, 0)

            out.append((f"cluster_ratio_replicates: {BOOT_DOCS:,} documents, "
                        f"{int(tokens.sum()):,} tokens, {what}", n_boot, best_of(draw)))
    y = rng.integers(0, 4, BOOT_ITEMS)
    sharp = rng.dirichlet(np.full(4, 0.5), BOOT_ITEMS)
    noisy = 0.8 * sharp + 0.2 * rng.dirichlet(np.ones(4), BOOT_ITEMS)
    inputs = MetricInput(y, sharp, noisy, (0, 1, 2, 3), None)
    metrics = [get_metric(name) for name in CHOICE_METRICS]
    for n_boot in (1000, 2000):
        def tables(n: int = n_boot) -> Any:
            return Resampler(inputs, n, 0).replicates

        def checks(n: int = n_boot) -> Any:
            resampler = Resampler(inputs, n, 0)
            return [measure_all(m, {}, inputs, resampler, 0.95) for m in metrics]

        out.append((f"choice level, {BOOT_ITEMS:,} items: Resampler replicates of the 4x4x4 "
                    "joint table", n_boot, best_of(tables)))
        out.append((f"choice level, {BOOT_ITEMS:,} items: replicates + measure_all of "
                    f"{', '.join(CHOICE_METRICS)}", n_boot, best_of(checks)))
        for m in metrics:
            resampler = Resampler(inputs, n_boot, 0)
            resampler.replicates  # shared by the count metrics: drawn once per run

            def one(m: Any = m, r: Any = resampler) -> Any:
                return measure_all(m, {}, inputs, r, 0.95)

            out.append((f"  {m.name} alone (replicates drawn)", n_boot, best_of(one)))
    return out


# ------------------------------------------------------------------- 4. lm-evaluation-harness
def lm_eval_rows(folder: Path, items: Path, tmp: Path, lls: dict[str, np.ndarray]
                 ) -> list[dict[str, Any]]:
    """Both models through the ``lm_eval`` CLI (two processes side by side), and the audit's
    ``accuracy`` with ``scoring: sum`` and ``per_char`` on the same items."""
    tasks = tmp / "tasks"
    tasks.mkdir()
    (tasks / "cloze.yaml").write_text(TASK_YAML.format(items=items))
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1",
           "TRANSFORMERS_OFFLINE": "1", "HF_HOME": str(tmp / "hf"),
           "PATH": f"{Path(sys.executable).parent}:{os.environ.get('PATH', '')}"}
    procs = {}
    for who in WHO:
        log = (tmp / f"lm_eval-{who}.log").open("w")
        procs[who] = (time.perf_counter(), log, subprocess.Popen(
            [LM_EVAL, "--model", "hf", "--model_args",
             f"pretrained={folder / who},dtype=float32", "--tasks", "audit_cloze",
             "--include_path", str(tasks), "--device", "cpu", "--batch_size", str(BATCH),
             "--log_samples", "--output_path", str(tmp / f"out-{who}")],
            env=env, stdout=log, stderr=subprocess.STDOUT, cwd=tmp))
    runs = {scoring: SuiteRun(_suite(folder, items, items.parent / "documents.jsonl", scoring),
                              AuditSession(cache_dir=None)).run_check("acc")
            for scoring in ("sum", "per_char")}
    out = []
    for who, (start, log, proc) in procs.items():
        code = proc.wait(timeout=1800)
        seconds = time.perf_counter() - start
        log.close()
        if code != 0:
            text = (tmp / f"lm_eval-{who}.log").read_text()
            raise RuntimeError(f"lm_eval failed for the {who} (exit {code}):\n{text[-3000:]}")
        dest = tmp / f"out-{who}"
        results = json.loads(next(dest.glob("*/results_*.json")).read_text())
        metrics = results["results"]["audit_cloze"]
        samples = [json.loads(line) for line in
                   next(dest.glob("*/samples_audit_cloze_*.jsonl")).read_text().splitlines()]
        order = [s["doc_id"] for s in samples]
        harness = np.array([[float(r[0]) for r in s["filtered_resps"]] for s in samples])
        ours = lls[who][order]
        measured = {s: getattr(runs[s].measurements[0], who).value for s in runs}
        out.append({"model": who, "items": len(samples),
                    "lm_eval_acc": metrics["acc,none"], "audit_acc": measured["sum"],
                    "lm_eval_acc_norm": metrics["acc_norm,none"],
                    "audit_acc_norm": measured["per_char"],
                    "ll_diff": float(np.abs(ours - harness).max()),
                    "same_argmax": int((ours.argmax(1) == harness.argmax(1)).sum()),
                    "seconds": seconds})
    return out


# ------------------------------------------------------------------- 5. published formulas
def _by_hand(model: Any, tok: Any, text: str) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """One unbatched forward of ``[BOS] + tokens``: per predicted token log p, mu, sigma
    (float32 ``log_softmax``, sums in float64)."""
    seq = _doc_tokens(tok, [text])[0]
    with torch.inference_mode():
        lp = torch.log_softmax(model(torch.tensor([seq[:-1]])).logits[0].float(), dim=-1)
    lp64 = lp.double()
    p = lp64.exp()
    mu = (p * lp64).sum(-1)
    sigma = ((p * lp64.square()).sum(-1) - mu.square()).clamp_min(0).sqrt()
    logp = lp64.gather(1, torch.tensor(seq[1:])[:, None])[:, 0]
    return logp.numpy(), mu.numpy(), sigma.numpy()


def _sentence_ll(model: Any, tok: Any, texts: Sequence[str]) -> np.ndarray:
    """Each sentence's log-likelihood after BOS (float32 ``log_softmax``, summed in float64),
    batches of ``BATCH`` sentences in file order, right-padded."""
    seqs = _doc_tokens(tok, texts)
    pad = tok.pad_token_id if tok.pad_token_id is not None else 0
    out = np.zeros(len(seqs))
    for start in range(0, len(seqs), BATCH):
        chunk = seqs[start:start + BATCH]
        width = max(len(q) for q in chunk) - 1
        ids = torch.full((len(chunk), width), pad, dtype=torch.long)
        target = torch.zeros((len(chunk), width), dtype=torch.long)
        mask = torch.zeros((len(chunk), width), dtype=torch.bool)
        for r, q in enumerate(chunk):
            ids[r, :len(q) - 1], target[r, :len(q) - 1] = torch.tensor(q[:-1]), torch.tensor(q[1:])
            mask[r, :len(q) - 1] = True
        with torch.inference_mode():
            lp = torch.log_softmax(model(ids).logits.float(), dim=-1)
            picked = lp.gather(2, target[..., None])[..., 0].double()
        out[start:start + len(chunk)] = (picked * mask).sum(1).numpy()
    return out


def _lowest(values: np.ndarray, fraction: float) -> float:
    n = math.floor(fraction * len(values))  # the published floor(k * n)
    return float(np.sort(values)[:n].mean())


def formula_rows(run: Any, folder: Path) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    from audit.data.documents import read_documents, read_pairs

    plain = {who: _plain_model(folder / who) for who in WHO}
    # CrowS-Pairs
    start = time.perf_counter()
    scores = Probes(run).build(ArtifactRequest.of("pair_scores", metric="stereotype_preference"))
    audit_s = time.perf_counter() - start
    pairs = read_pairs(folder / "crows_pairs.jsonl")
    crows = []
    for who in WHO:
        model, tok = plain[who]
        start = time.perf_counter()
        hand = {side: _sentence_ll(model, tok, texts)
                for side, texts in (("more", pairs.more), ("less", pairs.less))}
        hand_s = time.perf_counter() - start
        audit_pct = float(preferences(scores.more[who], scores.less[who]).mean())
        crows.append({"model": who, "pairs": len(pairs), "audit": audit_pct,
                      "by_hand": float(np.mean(hand["more"] > hand["less"])),
                      "ll_diff": float(max(np.abs(scores.more[who] - hand["more"]).max(),
                                           np.abs(scores.less[who] - hand["less"]).max())),
                      "near_ties": int((np.abs(hand["more"] - hand["less"]) < 1e-4).sum()),
                      "audit_s": audit_s, "hand_s": hand_s})
    # membership scores of the sampled documents
    sample = Probes(run).build(ArtifactRequest.of(
        "membership", attack="loss", samples=10, default_samples=500, members=None,
        non_members=None, max_seconds=30.0))
    texts: dict[str, str] = {}
    for name in ("members", "nonmembers"):
        read = read_documents(folder / f"{name}.jsonl")
        texts.update(zip(read.ids, read.texts, strict=True))
    members = []
    for who in WHO:
        model, tok = plain[who]
        docs = [doc for side in sample.scores[who] for doc in side.ids]
        formulas = {d: _by_hand(model, tok, texts[d]) for d in docs}
        want: dict[str, list[float]] = {a: [] for a in ("loss", "zlib", "min_k", "min_k_plus")}
        for d in docs:
            logp, mu, sigma = formulas[d]
            nll = -logp.sum()
            want["loss"].append(-(nll / len(logp)))
            want["zlib"].append(-(nll / len(zlib.compress(texts[d].encode("utf-8")))))
            want["min_k"].append(_lowest(logp, FRACTION))
            want["min_k_plus"].append(_lowest((logp - mu) / sigma, FRACTION))
        for attack, values in want.items():
            got = np.concatenate([document_scores(side, attack, FRACTION)
                                  for side in sample.scores[who]])
            members.append({"model": who, "attack": attack, "documents": len(docs),
                            "audit_mean": float(got.mean()),
                            "by_hand_mean": float(np.mean(values)),
                            "diff": float(np.abs(got - np.array(values)).max())})
    return crows, members


# ----------------------------------------------------------------------------- report
def _rate(units: int, seconds: float, unit: str) -> str:
    return f"{units / seconds:,.0f} {unit}/s ({seconds * 1e3:,.1f} ms)"


def throughput_table(title: str, rows: list[Row]) -> str:
    lines = [f"**{title}**", "", "| what | model | audit | plain | ratio | target | ok |",
             "|---|---|---|---|---|---|---|"]
    for r in rows:
        lines.append(f"| {r.what} | {r.model} | "
                     f"{_rate(r.units, min(r.audit), r.unit)} | "
                     f"{_rate(r.units, min(r.plain), r.unit)} | {r.ratio:.2f}x | "
                     f"<= {TARGET:g}x | {'pass' if r.ok else 'FAIL'} |")
    return "\n".join(lines)


def diff_lines(diffs: list[tuple[str, str, float]], tol: float) -> str:
    return "\n".join(f"- {who}: {what}: max |diff| {d:.2e}"
                     f"{'' if d <= tol else f'  MISMATCH (> {tol:g})'}" for who, what, d in diffs)


def profile_of(fn: Callable[[], Any], top: int = 16) -> str:
    """The audit's call under cProfile: most cumulative time (below 95% of the total), then
    most own time; paths shortened."""
    profiler = cProfile.Profile()
    profiler.enable()
    fn()
    profiler.disable()
    stats = pstats.Stats(profiler)
    total = stats.total_tt  # type: ignore[attr-defined]
    rows = [(func, nc, tt, ct) for func, (_, nc, tt, ct, _) in
            stats.stats.items()]  # type: ignore[attr-defined]
    site = str(Path(np.__file__).parents[1]) + "/"

    def name(func: tuple[str, int, str]) -> str:
        file, line, fn_name = func
        where = file.replace(site, "").replace(str(ROOT) + "/", "")
        return f"{where}:{line}({fn_name})" if line else fn_name

    head = f"{'cumtime':>9} {'tottime':>9} {'calls':>9}  function"

    def lines(chosen: list[Any]) -> list[str]:
        return [f"{ct:9.3f} {tt:9.3f} {nc:9d}  {name(func)}" for func, nc, tt, ct in chosen]

    below = sorted((r for r in rows if r[3] < 0.95 * total), key=lambda r: -r[3])[:top]
    own = sorted(rows, key=lambda r: -r[2])[:top]
    return "\n".join([f"{total:.3f} s in all (profiled); by cumulative time:", head,
                      *lines(below), "", "by own time:", head, *lines(own)])


def machine(load: tuple[float, ...]) -> str:
    def ver(pkg: str) -> str:
        try:
            return version(pkg)
        except Exception:
            return "?"

    cpu = "?"
    try:
        cpu = next(line.split(":", 1)[1].strip() for line in
                   Path("/proc/cpuinfo").read_text().splitlines() if line.startswith("model name"))
    except (OSError, StopIteration):
        pass
    git = ["git", "--no-optional-locks"]
    head = subprocess.run([*git, "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True,
                          text=True).stdout.strip() or "?"
    dirty = [line[3:] for line in subprocess.run(
        [*git, "status", "--porcelain", "--", "audit"], cwd=ROOT, capture_output=True,
        text=True).stdout.split("\n") if line]
    versions = ", ".join(f"{p}={ver(p)}" for p in ("torch", "transformers", "tokenizers",
                                                   "lm_eval", "numpy"))
    return (f"machine: {cpu}, cores={os.cpu_count()} (usable {len(os.sched_getaffinity(0))}), "
            f"python={platform.python_version()}, {versions}\n"
            f"load average (1/5/15 min) at start {'/'.join(f'{v:.2f}' for v in load)}, "
            f"at end {'/'.join(f'{v:.2f}' for v in os.getloadavg())}\n"
            f"threads: torch {torch.get_num_threads()} (torch.set_num_threads, every side), "
            "BLAS/OpenMP 1\n"
            f"code: git {head}" + (f", uncommitted under audit/: {', '.join(dirty)}" if dirty
                                   else ", audit/ clean"))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--small", action="store_true", help="the small pair (fixtures/build/lm-small)")
    parser.add_argument("--rounds", type=int, default=3, help="interleaved rounds (best of)")
    parser.add_argument("--items", type=int, default=None,
                        help="the first N cloze items for tables 1 and 4 (default: all 100 of the "
                             f"small pair, {FULL_ITEMS} of the full pair's 500)")
    parser.add_argument("--documents", type=int, default=None,
                        help="the first N documents for table 2 (default: all 50 of the small "
                             f"pair, {FULL_DOCUMENTS} of the full pair's 200)")
    parser.add_argument("--threads", type=int, default=1, help="torch threads, every side")
    parser.add_argument("--no-lm-eval", action="store_true", help="leave table 4 out")
    parser.add_argument("--profile", action="store_true", help="profile every audit row")
    parser.add_argument("--check", action="store_true", help="exit 1 if a target is missed")
    args = parser.parse_args()
    load = os.getloadavg()
    started = time.perf_counter()
    torch.set_num_threads(args.threads)
    folder = build(small=args.small)[f"{'lm-small' if args.small else 'lm'}/cloze.jsonl"].parent
    with tempfile.TemporaryDirectory() as tmp:
        shown = []
        for name, asked, default in (("cloze", args.items, FULL_ITEMS),
                                     ("documents", args.documents, FULL_DOCUMENTS)):
            lines = (folder / f"{name}.jsonl").read_text(encoding="utf-8").splitlines(True)
            n = min(asked or (len(lines) if args.small else default), len(lines))
            (Path(tmp) / f"{name}.jsonl").write_text("".join(lines[:n]), encoding="utf-8")
            shown.append(f"the first {n} of {len(lines)} "
                         + ("cloze items" if name == "cloze" else "documents"))
        print(f"## bench_lm: {folder.relative_to(ROOT)}, {' and '.join(shown)}; best of "
              f"{args.rounds} interleaved rounds after a warm-up; torch threads {args.threads}\n")
        return bench(args, folder, Path(tmp) / "cloze.jsonl", Path(tmp), load, started)


def bench(args: argparse.Namespace, folder: Path, items: Path, tmp: Path,
          load: tuple[float, ...], started: float) -> int:
    run = SuiteRun(_suite(folder, items, tmp / "documents.jsonl"), AuditSession(cache_dir=None))
    lls: dict[str, np.ndarray] = {}
    diffs: list[tuple[str, str, float]] = []
    choices = choice_rows(run, folder, args.rounds, lls, diffs)
    print(throughput_table(f"1. Choice scoring throughput, {run.eval_table.n_rows} cloze items "
                           f"x {len(run.eval_table.choices[0])} choices, batch {BATCH} (target: "
                           f"audit time <= {TARGET:g}x plain)", choices))
    print()
    print(diff_lines(diffs, LL_TOL))
    print()
    token_diffs: list[tuple[str, str, float]] = []
    tokens = token_rows(run, folder, args.rounds, token_diffs)
    print(throughput_table(f"2. Token-fidelity throughput, batch {BATCH} (target: audit time "
                           f"<= {TARGET:g}x plain)", tokens))
    print()
    print(diff_lines(token_diffs, 1e-4))
    print()
    print("**3. Bootstrap cost (best of 3 after a warm-up)**\n")
    print("| what | replicates | seconds |\n|---|---|---|")
    for what, n_boot, seconds in bootstrap_rows():
        print(f"| {what} | {n_boot:,} | {seconds:.3f} |")
    print()
    harness: list[dict[str, Any]] = []
    if not args.no_lm_eval and Path(LM_EVAL).exists():
        harness = lm_eval_rows(folder, items, tmp, lls)
        print("**4. Equality with lm-evaluation-harness (lm_eval CLI, offline, --batch_size "
              f"{BATCH}, float32, CPU)**\n")
        print("| model | items | lm_eval acc | audit acc | lm_eval acc_norm | audit acc_norm | "
              "max abs ll diff | same argmax | lm_eval process wall |")
        print("|---|---|---|---|---|---|---|---|---|")
        for r in harness:
            print(f"| {r['model']} | {r['items']} | {r['lm_eval_acc']:.4f} | {r['audit_acc']:.4f} "
                  f"| {r['lm_eval_acc_norm']:.4f} | {r['audit_acc_norm']:.4f} | "
                  f"{r['ll_diff']:.2e} | {r['same_argmax']}/{r['items']} | {r['seconds']:.1f} s |")
        print()
    else:
        print("4. lm-evaluation-harness: skipped (--no-lm-eval, or lm_eval not installed)\n")
    crows, members = formula_rows(run, folder)
    print("**5a. CrowS-Pairs pct_stereotype: audit (pair_scores + preferences) vs by hand "
          "(whole-sentence log-likelihood after BOS, strict >)**\n")
    print("| model | pairs | audit | by hand | max abs ll diff | pairs within 1e-4 nats | "
          "audit s (both models) | by hand s |")
    print("|---|---|---|---|---|---|---|---|")
    for r in crows:
        print(f"| {r['model']} | {r['pairs']} | {r['audit']:.4f} | {r['by_hand']:.4f} | "
              f"{r['ll_diff']:.2e} | {r['near_ties']} | {r['audit_s']:.1f} | {r['hand_s']:.1f} |")
    print()
    print(f"**5b. Membership scores (document_scores vs the published formulas; min-k at "
          f"{FRACTION:.0%}; higher = more likely a member, so loss and zlib are negated)**\n")
    print("| model | attack | documents | audit mean score | by-hand mean | max abs diff |")
    print("|---|---|---|---|---|---|")
    for r in members:
        print(f"| {r['model']} | {r['attack']} | {r['documents']} | {r['audit_mean']:.5f} | "
              f"{r['by_hand_mean']:.5f} | {r['diff']:.2e} |")
    print()
    print(machine(load))
    print(f"command: {shlex.join([os.path.relpath(sys.executable, ROOT), *sys.argv])} "
          f"({time.perf_counter() - started:.0f} s)")
    bad = [f"{w}: {what} {d:.2e}" for w, what, d in diffs if not d <= LL_TOL]
    bad += [f"{w}: {what} {d:.2e}" for w, what, d in token_diffs if not d <= 1e-4]
    bad += [f"{r['model']}: lm_eval acc/acc_norm {r['lm_eval_acc']}/{r['lm_eval_acc_norm']} vs "
            f"audit {r['audit_acc']}/{r['audit_acc_norm']}, ll diff {r['ll_diff']:.2e}"
            for r in harness if abs(r["lm_eval_acc"] - r["audit_acc"]) > 1e-12
            or abs(r["lm_eval_acc_norm"] - r["audit_acc_norm"]) > 1e-12 or r["ll_diff"] > LL_TOL]
    bad += [f"{r['model']}: pct_stereotype {r['audit']} vs by hand {r['by_hand']}" for r in crows
            if r["audit"] != r["by_hand"]]
    bad += [f"{r['model']} {r['attack']}: {r['diff']:.2e}" for r in members if r["diff"] > 1e-4]
    missed = [r for r in choices + tokens if not r.ok]
    if missed:
        print("missed targets: " + "; ".join(f"{r.what}, {r.model}: {r.ratio:.2f}x > "
                                             f"{TARGET:g}x" for r in missed))
    for problem in bad:
        print(f"MISMATCH {problem}")
    profiled: dict[int, tuple[Row, Callable[[], Any]]] = {}
    for row in choices + tokens:
        if row.profile is not None and (args.profile or not row.ok):
            profiled.setdefault(id(row.profile), (row, row.profile))
    for row, fn in profiled.values():
        print(f"\n### cProfile, audit: {row.what}, {row.model}\n\n```\n{profile_of(fn)}\n```")
    return 1 if bad or (args.check and missed) else 0


if __name__ == "__main__":
    sys.exit(main())
