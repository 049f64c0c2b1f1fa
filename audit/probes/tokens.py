"""Language models over whole texts: the token-level artifacts.

* ``token_agreement`` (:class:`~audit.probes.artifacts.TokenAgreement`): teacher and student
  read the same windows of the same documents (:mod:`audit.models.lm_text`), in the same
  padded batches; at every predicted position the two next-token distributions are compared
  (top-1 agreement, top-k overlap, KL both ways, total variation) and summed per document.
  This needs one vocabulary: two tokenizers that differ are refused, naming both sizes and the
  first token id that differs.
* ``token_scores`` (:class:`~audit.probes.artifacts.TokenScores`): one model's log-probability
  of every token (and the mean and spread of ``log p`` under its own distribution there), for
  bits per byte and membership inference. When the two models share a vocabulary this comes
  from the ``token_agreement`` pass, so each model reads each document once.
* ``pair_scores``: the whole-sentence log-likelihoods of minimal pairs.

Documents are read once per run (``data.documents``, or the members and non-members:
``data.train``, ``data.teacher_train``, ``data.holdout``).
"""

from __future__ import annotations

import time
import zlib
from typing import Any

import numpy as np

from audit.errors import DataError
from audit.probes.artifacts import ArtifactRequest, PairScores, TokenAgreement, TokenScores

__all__ = ["MAX_K", "token_agreement", "token_scores", "pair_scores", "documents",
           "language_models", "document_membership"]

MAX_K = 20  # top-k overlap is measured for every k up to this


def documents(probes: Any, table: str) -> Any:
    """The documents ``data.<table>`` names (read once per run)."""
    from audit.data.documents import read_documents

    path = getattr(probes.run.suite.data, table, None)
    if path is None:
        raise DataError(f"the suite names no data.{table}; add data.{table}: <a .jsonl file of "
                        "documents, one {\"text\": ...} per line>")
    return probes.memo(("documents", table), lambda: read_documents(path, table))


def language_models(probes: Any, doing: str) -> dict[str, Any]:
    """Both models' :class:`~audit.models.lm_text.LanguageModel` (a ``causal_lm`` model each)."""
    models = probes.run.runnable_models(doing)
    out = {}
    for who, model in models.items():
        lm = getattr(model, "language_model", None)
        if lm is None:
            raise DataError(f"{doing} runs the {who} on whole texts, but the {who} is a "
                            f"{model.spec.kind} model; name a causal_lm folder (lm_eval sample "
                            "files hold only the choices' scores)")
        out[who] = lm
    return out


def _positions(torch: Any, lp: Any, chunk: list[Any]) -> tuple[Any, np.ndarray, Any]:
    """The predicted positions of a batch as rows: ``(log-probs (M, V), window of each row,
    targets (M,))``."""
    rows, owners, targets = [], [], []
    for r, w in enumerate(chunk):
        end = len(w.inputs)
        rows.append(lp[r, end - w.n:end])
        owners.extend([r] * w.n)
        targets.extend(w.targets)
    return (torch.cat(rows), np.asarray(owners),
            torch.tensor(targets, dtype=torch.long, device=lp.device))


def _own(lp: Any, p: Any, targets: Any) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per position: the target's log-probability, and the mean and deviation of log p."""
    mu = (p * lp).sum(-1)
    second = (p * lp.square()).sum(-1)
    sigma = (second - mu.square()).clamp_min(0).sqrt()
    logp = lp.gather(1, targets[:, None])[:, 0]
    return (logp.double().cpu().numpy(), mu.double().cpu().numpy(),
            sigma.double().cpu().numpy())


def _agreement(lt: Any, ls: Any, pt: Any, ps: Any, max_k: int) -> dict[str, np.ndarray]:
    """Per position: top-1 agreement, top-k overlaps (k = 1..max_k), KL both ways, TV."""
    k = min(max_k, lt.shape[-1])
    tk, sk = lt.topk(k, dim=-1).indices, ls.topk(k, dim=-1).indices
    # shared[:, a, b]: the teacher's a-th likeliest is the student's b-th; the overlap at j
    # counts the matches with a, b < j (a token is in each list once): a 2-D prefix sum
    shared = (tk[:, :, None] == sk[:, None, :]).int().cumsum(1).cumsum(2)
    overlap = np.zeros((lt.shape[0], max_k))
    overlap[:, :k] = (shared.diagonal(dim1=1, dim2=2).double().cpu().numpy()
                      / np.arange(1, k + 1))
    return {"top1": (tk[:, 0] == sk[:, 0]).double().cpu().numpy(),
            "kl_forward": (pt * (lt - ls)).sum(-1).double().cpu().numpy(),
            "kl_reverse": (ps * (ls - lt)).sum(-1).double().cpu().numpy(),
            "tv": (0.5 * (pt - ps).abs().sum(-1)).double().cpu().numpy(), "topk": overlap}


def _scores(table: str, docs: Any, windows: list[Any], parts: dict[int, tuple[np.ndarray, ...]],
            seconds: float) -> TokenScores:
    """Assemble per-window token arrays (window index -> logp, mu, sigma) document by document."""
    order = sorted(range(len(windows)), key=lambda i: (windows[i].text, i))
    logp = np.concatenate([parts[i][0] for i in order])
    mu = np.concatenate([parts[i][1] for i in order])
    sigma = np.concatenate([parts[i][2] for i in order])
    tokens = np.zeros(len(docs), dtype=np.int64)
    np.add.at(tokens, [w.text for w in windows], [w.n for w in windows])
    offsets = np.r_[0, np.cumsum(tokens)]
    nll = np.array([-logp[offsets[i]:offsets[i + 1]].sum() for i in range(len(docs))])
    raw = [t.encode("utf-8") for t in docs.texts]
    return TokenScores(table, docs.ids, tokens, np.array([len(b) for b in raw]), nll,
                       np.array([len(zlib.compress(b)) for b in raw]), offsets, logp, mu, sigma,
                       seconds)


def _run(models: dict[str, Any], table: str, docs: Any, max_k: int) -> tuple[Any, ...]:
    """One pass of ``models`` over the documents' windows (the same batches for each)."""
    first = next(iter(models.values()))
    length = min(lm.max_length for lm in models.values())
    windows = first.windows(docs.texts, length)
    index = {id(w): i for i, w in enumerate(windows)}
    parts: dict[str, dict[int, tuple[np.ndarray, ...]]] = {who: {} for who in models}
    sums = {key: np.zeros(len(docs)) for key in ("top1", "kl_forward", "kl_reverse", "tv")}
    topk = np.zeros((len(docs), max_k))
    seconds = dict.fromkeys(models, 0.0)
    smallest = min(models.values(), key=lambda lm: lm.batch_size)
    for ids, chunk in smallest.batches(windows):
        rows: dict[str, Any] = {}
        probs: dict[str, Any] = {}
        for who, lm in models.items():
            start = time.perf_counter()
            lp, owners, targets = _positions(lm.torch, lm.logprobs(ids), chunk)
            seconds[who] += time.perf_counter() - start
            rows[who], probs[who] = lp, lp.exp()
            logp, mu, sigma = _own(lp, probs[who], targets)
            for r, w in enumerate(chunk):
                at = owners == r
                parts[who][index[id(w)]] = (logp[at], mu[at], sigma[at])
        if len(models) == 2:
            stats = _agreement(rows["teacher"], rows["student"], probs["teacher"],
                               probs["student"], max_k)
            docs_of = np.array([chunk[r].text for r in owners])
            for key in sums:
                np.add.at(sums[key], docs_of, stats[key])
            np.add.at(topk, docs_of, stats["topk"])
    scores = {who: _scores(table, docs, windows, parts[who], seconds[who]) for who in models}
    return scores, sums, topk


def _shared_vocabulary(lms: dict[str, Any]) -> str | None:
    return lms["teacher"].differs_from(lms["student"])


def token_agreement(probes: Any, request: ArtifactRequest) -> TokenAgreement:
    """Both models on the documents of ``data.<table>``, compared token by token."""
    table = str(request.get("table", "documents"))
    lms = language_models(probes, str(request.get("metric", "token-level checks")))
    differs = _shared_vocabulary(lms)
    if differs is not None:
        raise DataError(f"{request.get('metric')} compares the two models' next-token "
                        f"distributions, which needs one vocabulary: {differs}. The choice-level "
                        "checks and bits_per_byte (each model on its own tokens) still run")
    return probes.memo(("token-agreement", table), lambda: _pair(probes, lms, table))


def _split_differently(lms: dict[str, Any], docs: Any, table: str) -> str | None:
    """Where the two tokenizers first split a document differently (one vocabulary, other
    merges), or ``None``."""
    teacher, student = lms["teacher"], lms["student"]
    for i, text in enumerate(docs.texts):
        a, b = teacher.tokens(text), student.tokens(text)
        if a != b:
            at = next((j for j, (x, y) in enumerate(zip(a, b, strict=False)) if x != y),
                      min(len(a), len(b)))
            name = teacher.tokenizer.convert_ids_to_tokens
            return (f"the two tokenizers share a vocabulary but split the text differently: "
                    f"data.{table} document {docs.ids[i]!r} is {len(a)} tokens for the teacher "
                    f"and {len(b)} for the student, first differing at token {at}: "
                    f"{name(a[at]) if at < len(a) else None!r} against "
                    f"{name(b[at]) if at < len(b) else None!r}")
    return None


def _pair(probes: Any, lms: dict[str, Any], table: str) -> TokenAgreement:
    docs = documents(probes, table)
    differs = _split_differently(lms, docs, table)
    if differs is not None:
        raise DataError(f"token-level fidelity compares the two models' next-token distributions "
                        f"on the same tokens: {differs}. The choice-level checks and "
                        "bits_per_byte (each model on its own tokens) still run")
    start = time.perf_counter()
    scores, sums, topk = _run(lms, table, docs, MAX_K)
    return TokenAgreement(table, scores["teacher"].tokens, sums["top1"], sums["kl_forward"],
                          sums["kl_reverse"], sums["tv"], topk, scores,
                          time.perf_counter() - start)


def token_scores(probes: Any, request: ArtifactRequest) -> dict[str, TokenScores]:
    """Each model's token scores on ``data.<table>`` (from the shared pass when the two
    models have one vocabulary, else each on its own tokens)."""
    table = str(request.get("table", "documents"))
    lms = language_models(probes, str(request.get("metric", "token-level checks")))
    docs = documents(probes, table)
    if _shared_vocabulary(lms) is None and _split_differently(lms, docs, table) is None:
        return dict(probes.memo(("token-agreement", table),
                                lambda: _pair(probes, lms, table)).scores)
    return {who: probes.memo(("token-scores", table, who),
                             lambda who=who: _run({who: lm}, table, docs, MAX_K)[0][who])
            for who, lm in lms.items()}


def pair_scores(probes: Any, request: ArtifactRequest) -> PairScores:
    """Both models' log-likelihood of each minimal pair's two sentences (``data.pairs``)."""
    from audit.data.documents import Documents, read_pairs, unknown_bias_type

    path = probes.run.suite.data.pairs
    if path is None:
        raise DataError(f"{request.get('metric')} reads minimal pairs; add data.pairs: <a .jsonl "
                        "file of {\"more\": ..., \"less\": ..., \"bias_type\": ...} per line>")
    pairs = probes.memo(("pairs",), lambda: read_pairs(path))
    chosen = request.get("bias_type")
    problem = None if chosen is None else unknown_bias_type(chosen, pairs.bias_types)
    if problem:  # said before a pair is scored
        raise DataError(f"{request.get('metric')}: {problem}")
    lms = language_models(probes, str(request.get("metric", "stereotype checks")))
    texts = Documents(pairs.path, pairs.ids + pairs.ids, pairs.more + pairs.less, pairs.sha256)

    def score() -> PairScores:
        out = {who: _run({who: lm}, "pairs", texts, 1)[0][who] for who, lm in lms.items()}
        n = len(pairs)
        return PairScores(pairs.ids, pairs.bias_types,
                          {who: -s.nll[:n] for who, s in out.items()},
                          {who: -s.nll[n:] for who, s in out.items()})

    return probes.memo(("pair-scores",), score)


def document_membership(probes: Any, members: str, non_members: str, samples: int | None,
                        default: int) -> Any:
    """Members and non-members of a language-model suite: ``m`` documents of each (drawn with
    the suite's seed; ``m = min(available, default)`` unless ``samples`` says), each model's
    token scores on them."""
    from audit.data.documents import Documents
    from audit.probes.artifacts import DocumentMembership

    def build() -> DocumentMembership:
        lms = language_models(probes, "membership inference")
        inside, outside = documents(probes, members), documents(probes, non_members)
        if inside.sha256 == outside.sha256:
            raise DataError(f"membership inference: data.{members} and data.{non_members} are the "
                            "same file; the non-members must be documents the models were not "
                            "trained on: name them in data.holdout")
        available = min(len(inside), len(outside))
        notes: list[str] = []
        m = min(available, default) if samples is None else int(samples)
        if m > available:
            notes.append(f"samples={m} asked for, but only {available} documents are available on "
                         f"the smaller side ({members} {len(inside)}, {non_members} "
                         f"{len(outside)}); used {available} of each")
            m = available
        if m < 10:
            raise DataError(f"membership inference needs at least 10 member and 10 non-member "
                            f"documents; data.{members} has {len(inside)}, data.{non_members} "
                            f"{len(outside)}")
        rng = np.random.default_rng(probes.seed)
        picked = []
        for docs in (inside, outside):
            rows = np.sort(rng.choice(len(docs), m, replace=False))
            picked.append(Documents(docs.path, tuple(docs.ids[i] for i in rows),
                                    tuple(docs.texts[i] for i in rows), docs.sha256))
        shared = len(set(picked[1].texts) & set(inside.texts))
        if shared:
            notes.append(f"{shared} of the {m} sampled non-members (data.{non_members}) are "
                         f"texts of data.{members}; no attack can tell those apart from members")
        scores = {}
        for who, lm in lms.items():
            sides = tuple(_run({who: lm}, table, docs, 1)[0][who]
                          for table, docs in ((members, picked[0]), (non_members, picked[1])))
            scores[who] = (sides[0], sides[1])
        return DocumentMembership(members, non_members, m, tuple(notes), scores, shared)

    return probes.memo(("document-membership", members, non_members, samples, default), build)
