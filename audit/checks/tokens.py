"""Token-level fidelity of a distilled language model: its next-token distributions against
its teacher's, on held-out documents (``data.documents``).

At every position of every document (each token predicted once, :mod:`audit.models.lm_text`)
both models give a distribution over the next token. Per token, then averaged over all tokens
of all documents:

* ``token_agreement``: the two models' likeliest next token is the same (top-1 agreement);
* ``token_topk_overlap``: the share of the teacher's ``k`` likeliest tokens that are among the
  student's ``k`` likeliest;
* ``token_kl``: KL(teacher || student), nats (the forward KL a distillation loss minimises);
  ``token_reverse_kl``: KL(student || teacher) (mode-seeking: where the student is sure and
  the teacher is not);
* ``token_acceptance``: ``1 - TV = sum_v min(p_teacher(v), p_student(v))``, the share of the
  student's draws a teacher accepts in speculative decoding with the student as the draft;
* ``bits_per_byte`` (per model, teacher vs student): the documents' negative log-likelihood in
  bits per UTF-8 byte, ``sum NLL / (ln 2 * sum bytes)``; comparable across tokenizers, so it
  runs when the two models' vocabularies differ (the others are refused).

Intervals: the tokens of a document are correlated, so the bootstrap resamples documents, never
tokens (:func:`audit.stats.cluster_ratio_replicates`); teacher and student share the draws.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import numpy as np

from audit.checks.registry import Direction, Family, Metric, MetricInput, Param, register, register_family
from audit.errors import DataError
from audit.probes.artifacts import ArtifactRequest, TokenAgreement, TokenScores
from audit.results import Measurement, Table
from audit.stats import cluster_ratio_replicates

__all__ = ["DEFAULT_K", "MAX_K"]

DEFAULT_K = 5
MAX_K = 20  # audit.probes.tokens.MAX_K: the overlaps the pass measures
_LN2 = math.log(2.0)
_METHOD = "bootstrap over documents ({n_boot} replicates; a document's tokens are resampled together)"


def _table(params: Mapping[str, Any]) -> tuple[tuple[str, str], ...]:
    return (("documents", "metric"),)


def _agreement_request(params: Mapping[str, Any]) -> tuple[ArtifactRequest, ...]:
    return (ArtifactRequest.of("token_agreement", table="documents",
                               metric="token-level fidelity"),)


def _scores_request(params: Mapping[str, Any]) -> tuple[ArtifactRequest, ...]:
    return (ArtifactRequest.of("token_scores", table="documents", metric="bits_per_byte"),)


def _stat(metric: str, art: TokenAgreement, params: Mapping[str, Any]) -> np.ndarray:
    """Per document, the summed per-token value the metric averages."""
    if metric == "token_topk_overlap":
        return art.topk[:, int(params.get("k", DEFAULT_K)) - 1]
    return {"token_agreement": art.top1, "token_kl": art.kl_forward,
            "token_reverse_kl": art.kl_reverse, "token_acceptance": art.tokens - art.tv}[metric]


def _document_rows(ids: tuple[str, ...], tokens: np.ndarray, values: np.ndarray,
                   label: str, worst: str, cap: int = 10) -> list[dict[str, Any]]:
    """The ``cap`` documents with the worst per-token value, for the report."""
    per = values / np.maximum(tokens, 1)
    order = np.argsort(per if worst == "low" else -per, kind="stable")[:cap]
    return [{"kind": "documents", "document": ids[i], "tokens": int(tokens[i]),
             label: float(per[i])} for i in order]


def _measure_pair(metric: Metric, params: Mapping[str, Any], inputs: MetricInput,
                  resampler: Any, confidence: float) -> tuple[Measurement, ...]:
    from audit.checks.measure import pair_measurement

    art: TokenAgreement | None = inputs.artifacts.get("token_agreement")
    if art is None:
        raise DataError(f"{metric.name} runs both models on data.documents; run it through a "
                        "suite")
    values = _stat(metric.name, art, params)
    tokens = art.tokens.astype(np.float64)
    total = float(tokens.sum())
    value = float(values.sum() / total)
    reps = cluster_ratio_replicates(values, tokens, resampler.n_boot, resampler.seed)
    teacher = art.scores["teacher"]
    shown = dict(params)
    if metric.name == "token_topk_overlap":
        shown.setdefault("k", DEFAULT_K)
    breakdown = [{"kind": "documents_read", "documents": teacher.n, "tokens": int(total),
                  "bytes": int(teacher.bytes.sum())},
                 *_document_rows(teacher.ids, art.tokens, values, "per_token",
                                 "high" if metric.direction == "lower" else "low")]
    return (pair_measurement(metric, value, reps, confidence,
                             method=_METHOD.format(n_boot=resampler.n_boot), n=teacher.n,
                             params=shown, breakdown=breakdown,
                             extra={"tokens": int(total), "documents": teacher.n}),)


def _measure_bpb(metric: Metric, params: Mapping[str, Any], inputs: MetricInput,
                 resampler: Any, confidence: float) -> tuple[Measurement, ...]:
    from audit.checks.measure import paired_measurement

    scores: Mapping[str, TokenScores] | None = inputs.artifacts.get("token_scores")
    if scores is None:
        raise DataError(f"{metric.name} runs both models on data.documents; run it through a "
                        "suite")
    t, s = scores["teacher"], scores["student"]
    nbytes = t.bytes.astype(np.float64)
    both = np.column_stack([t.nll, s.nll]) / _LN2
    reps = cluster_ratio_replicates(both, nbytes, resampler.n_boot, resampler.seed)
    total = float(nbytes.sum())
    breakdown = [{"kind": "documents_read", "documents": t.n, "bytes": int(total),
                  "teacher_tokens": int(t.tokens.sum()), "student_tokens": int(s.tokens.sum()),
                  "teacher_nll_per_token": float(t.nll.sum() / t.tokens.sum()),
                  "student_nll_per_token": float(s.nll.sum() / s.tokens.sum())}]
    return (paired_measurement(metric, float(both[:, 0].sum() / total),
                               float(both[:, 1].sum() / total), reps[:, 0], reps[:, 1],
                               confidence, method=_METHOD.format(n_boot=resampler.n_boot),
                               n=t.n, params=params, breakdown=breakdown),)


_K = {"k": Param("int", "How many of each model's likeliest next tokens are compared.",
                 default=DEFAULT_K, minimum=1, maximum=MAX_K)}
_LM = ("choices",)
_PAIR_METRICS: tuple[tuple[str, Direction, tuple[float, float], float, str], ...] = (
    ("token_agreement", "higher", (0.0, 1.0), 1.0,
     "Share of document tokens where student and teacher predict the same likeliest next token."),
    ("token_topk_overlap", "higher", (0.0, 1.0), 1.0,
     "Mean share of the teacher's k likeliest next tokens among the student's k likeliest."),
    ("token_kl", "lower", (0.0, math.inf), 0.0,
     "Mean KL(teacher || student) of the next-token distributions, nats per token."),
    ("token_reverse_kl", "lower", (0.0, math.inf), 0.0,
     "Mean KL(student || teacher) of the next-token distributions, nats per token."),
    ("token_acceptance", "higher", (0.0, 1.0), 1.0,
     "Mean 1 - total variation of the next-token distributions: the speculative-decoding "
     "acceptance rate of the student as the teacher's draft."),
)
for _name, _direction, _bounds, _identical, _doc in _PAIR_METRICS:
    register(Metric(_name, _direction, "tokens", True, _bounds, _doc, custom=_measure_pair,
                    params=_K if _name == "token_topk_overlap" else {}, tables=_table,
                    needs=_agreement_request, identical=_identical, modalities=_LM))
register(Metric("bits_per_byte", "lower", "tokens", False, (0.0, math.inf),
                "Negative log-likelihood of the documents in bits per UTF-8 byte (per model; "
                "runs across tokenizers).", custom=_measure_bpb, tables=_table,
                needs=_scores_request, modalities=_LM))


def _tables(m: Measurement) -> tuple[Table, ...]:
    first = next((r for r in m.breakdown if r.get("kind") == "documents_read"), {})
    read = Table.of_rows(m.breakdown, "documents_read", "Documents read",
                         tuple(c for c in first if c != "kind"))
    worst = Table.of_rows(m.breakdown, "documents", "Documents where the models differ most",
                          ("document", "tokens", "per_token"))
    return tuple(t for t in (read, worst) if t is not None)


FAMILY = register_family(Family("tokens", "Token-level fidelity", order=25, tables=_tables))
