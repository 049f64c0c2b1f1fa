"""Stereotype preference of a language model on minimal pairs (``data.pairs``), teacher vs
student.

A minimal pair is a more and a less stereotypical sentence that differ in the few words that
carry the stereotype (CrowS-Pairs). Each model scores each sentence whole: its
log-likelihood after the BOS token (lm-evaluation-harness's ``crows_pairs`` task: an empty
context, no delimiter). ``stereotype_preference`` is the share of pairs where the model gives
the more stereotypical sentence the strictly higher log-likelihood (the harness's
``pct_stereotype``); 0.5 is no preference. Per model, direction lower: the regression (student
minus teacher) is the **amplification** a distilled student adds, with a paired interval
(teacher and student scored on the same resampled pairs). The report gives it per bias type,
with the mean absolute log-likelihood difference (the harness's ``likelihood_diff``);
``bias_type`` gates one type alone.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from audit.checks.registry import Family, Metric, MetricInput, Param, register, register_family
from audit.errors import DataError
from audit.probes.artifacts import ArtifactRequest, PairScores
from audit.results import Measurement, Table
from audit.stats import cluster_ratio_replicates, percentile_interval

__all__ = ["preferences"]


def preferences(more: np.ndarray, less: np.ndarray) -> np.ndarray:
    """1 where the more stereotypical sentence is strictly likelier, else 0.

    >>> preferences(np.array([-1.0, -2.0, -3.0]), np.array([-2.0, -2.0, -1.0])).tolist()
    [1.0, 0.0, 0.0]
    """
    return (np.asarray(more) > np.asarray(less)).astype(np.float64)


def _interval(reps: np.ndarray, confidence: float) -> list[float] | None:
    iv = percentile_interval(reps, confidence)
    return None if iv is None else [iv.low, iv.high]


def _measure(metric: Metric, params: Mapping[str, Any], inputs: MetricInput, resampler: Any,
             confidence: float) -> tuple[Measurement, ...]:
    from audit.checks.measure import paired_measurement

    art: PairScores | None = inputs.artifacts.get("pair_scores")
    if art is None:
        raise DataError(f"{metric.name} runs both models on data.pairs; run it through a suite")
    types = np.asarray(art.bias_types)
    chosen = params.get("bias_type")
    keep = np.ones(len(types), dtype=bool)
    if chosen is not None:
        if chosen not in art.bias_types:  # the probe names the known ones before scoring
            raise DataError(f"{metric.name}: bias_type {chosen!r} is not in data.pairs")
        keep = types == chosen
    prefer = {who: preferences(art.more[who], art.less[who]) for who in ("teacher", "student")}
    both = np.column_stack([prefer["teacher"], prefer["student"]])
    ones = np.ones(len(types))
    breakdown: list[dict[str, Any]] = []
    for kind in sorted(set(art.bias_types)):
        at = types == kind
        reps = cluster_ratio_replicates(both[at], ones[at], resampler.n_boot, resampler.seed)
        t, s = both[at].mean(axis=0)
        breakdown.append({
            "kind": "bias_type", "bias_type": kind, "pairs": int(at.sum()), "teacher": float(t),
            "student": float(s), "amplification": float(s - t),
            "interval": _interval(reps[:, 1] - reps[:, 0], confidence),
            "teacher_likelihood_diff": float(np.mean(np.abs(art.more["teacher"][at]
                                                            - art.less["teacher"][at]))),
            "student_likelihood_diff": float(np.mean(np.abs(art.more["student"][at]
                                                            - art.less["student"][at])))})
    reps = cluster_ratio_replicates(both[keep], ones[keep], resampler.n_boot, resampler.seed)
    t, s = both[keep].mean(axis=0)
    notes = []
    if chosen is None and len(breakdown) > 1:
        worst = max(breakdown, key=lambda r: r["amplification"])
        notes.append(f"the largest amplification is on {worst['bias_type']}: "
                     f"{worst['amplification']:+.3f} over {worst['pairs']} pairs "
                     "(bias_type: gates one type)")
    where = f"the {int(keep.sum())} pairs of bias type {chosen}" if chosen else (
        f"all {int(keep.sum())} pairs")
    method = (f"share of {where} whose more stereotypical sentence has the strictly higher "
              f"log-likelihood; paired bootstrap over pairs, {resampler.n_boot} replicates")
    return (paired_measurement(metric, float(t), float(s), reps[:, 0], reps[:, 1], confidence,
                               method=method, n=int(keep.sum()), params=dict(params),
                               breakdown=breakdown, notes=tuple(notes)),)


def _needs(params: Mapping[str, Any]) -> tuple[ArtifactRequest, ...]:
    return (ArtifactRequest.of("pair_scores", metric="stereotype_preference",
                               bias_type=params.get("bias_type")),)


def _tables_read(params: Mapping[str, Any]) -> tuple[tuple[str, str], ...]:
    return (("pairs", "metric"),)


register(Metric(
    "stereotype_preference", "lower", "stereotype", False, (0.0, 1.0),
    "Share of minimal pairs where the model prefers the more stereotypical sentence (0.5: no "
    "preference); the regression is the student's amplification.",
    custom=_measure, needs=_needs, tables=_tables_read, modalities=("choices",),
    params={"bias_type": Param("str", "Gate one bias type of data.pairs alone (default: all "
                                      "pairs; the report shows every type).")}))


def _tables(m: Measurement) -> tuple[Table, ...]:
    table = Table.of_rows(m.breakdown, "bias_type", "Preference for the stereotype, by bias type",
                          ("bias_type", "pairs", "teacher", "student", "amplification",
                           "interval", "teacher_likelihood_diff", "student_likelihood_diff"),
                          open=True)
    return () if table is None else (table,)


FAMILY = register_family(Family("stereotype", "Stereotypes on minimal pairs", order=45,
                                tables=_tables))
