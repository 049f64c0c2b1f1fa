"""Robustness of a language model's choices: to typos in the prompt, and to the order of the
options it lists.

``samples`` multiple-choice items (default 500, drawn with the suite's seed) are re-scored with
``typos`` random character edits in each context (default 3; ``edits`` among swap, drop,
insert, keyboard, case, whitespace; :mod:`audit.probes.choice_edits`), the same edited
contexts for both models:

* ``typo_accuracy`` (per model): the share of the items answered right with the typos;
* ``typo_consistency`` (per model): the share of the items whose pick the typos leave
  unchanged (it needs no answers: a student that breaks where its teacher holds is fragile).

For items whose context lists their options (``data.options``: lettered, as MMLU prompts do),
``samples`` items (default 200) are re-scored under every rotation of the options (each option
takes each position once; :mod:`audit.probes.choice_edits`):

* ``order_consistency`` (per model): the share of the items where the model picks the same
  option whatever its position (a position-biased model picks the same *letter* instead);
* ``circular_accuracy`` (per model): the share answered right under every rotation
  (MMBench's CircularEval).

The report gives each model's pick rate per position (``1/k`` each for a model without
position bias). All four are per model, higher is better; the regression is teacher minus
student, with a paired bootstrap interval over the items (the same resampled items for both
models).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from audit.checks.registry import Family, Metric, MetricInput, Param, register, register_family
from audit.errors import DataError
from audit.probes.artifacts import ArtifactRequest, ChoiceEdits, ChoiceOrders
from audit.results import Measurement, Table
from audit.stats import cluster_ratio_replicates

__all__ = ["DEFAULT_TYPOS", "DEFAULT_ITEMS"]

DEFAULT_TYPOS = 3
DEFAULT_ITEMS = 500
DEFAULT_ORDER_ITEMS = 200  # each scored k times
_EDITS = ("swap", "drop", "insert", "keyboard")  # audit.probes.choice_edits.DEFAULT_TYPO_EDITS
_KINDS = ("swap", "drop", "insert", "keyboard", "case", "whitespace")


def _request(params: Mapping[str, Any]) -> ArtifactRequest:
    return ArtifactRequest.of("choice_edits", metric="typo checks",
                              samples=int(params.get("samples", DEFAULT_ITEMS)),
                              typos=int(params.get("typos", DEFAULT_TYPOS)),
                              edits=tuple(params.get("edits") or _EDITS))


def _needs(params: Mapping[str, Any]) -> tuple[ArtifactRequest, ...]:
    return (_request(params),)


def _order_needs(params: Mapping[str, Any]) -> tuple[ArtifactRequest, ...]:
    return (ArtifactRequest.of("choice_orders", metric="answer-order checks",
                               samples=int(params.get("samples", DEFAULT_ORDER_ITEMS))),)


def _measure_order(metric: Metric, params: Mapping[str, Any], inputs: MetricInput,
                   resampler: Any, confidence: float) -> tuple[Measurement, ...]:
    from audit.checks.measure import paired_measurement

    art: ChoiceOrders | None = inputs.artifacts.get("choice_orders")
    if art is None:
        raise DataError(f"{metric.name} re-scores reordered items with both models; run it "
                        "through a suite")
    per = {}
    breakdown: list[dict[str, Any]] = []
    for who in ("teacher", "student"):
        picks = art.picks[who]
        same = np.all(picks == picks[:, :1], axis=1)
        right = np.all(picks == art.y[:, None], axis=1)
        per[who] = (same if metric.name == "order_consistency" else right).astype(float)
        # the position of each pick: option o shown under rotation r sits at (o - r) % k
        positions = (picks - np.arange(art.k)[None, :]) % art.k
        rates = np.bincount(positions.reshape(-1), minlength=art.k) / positions.size
        breakdown.append({"kind": "positions", "model": who,
                          **{f"picks_{chr(65 + j)}": float(rates[j]) for j in range(art.k)},
                          "largest_excess": float(np.max(np.abs(rates - 1.0 / art.k))),
                          "consistent": float(np.mean(same)), "circular_accuracy":
                          float(np.mean(right)), "accuracy_as_written":
                          float(np.mean(picks[:, 0] == art.y))})
    both = np.column_stack([per["teacher"], per["student"]])
    reps = cluster_ratio_replicates(both, np.ones(art.rows), resampler.n_boot, resampler.seed)
    t, s = both.mean(axis=0)
    method = (f"{art.rows} items scored under each of the {art.k} rotations of their options; "
              f"paired bootstrap over the items, {resampler.n_boot} replicates")
    return (paired_measurement(metric, float(t), float(s), reps[:, 0], reps[:, 1], confidence,
                               method=method, n=art.rows, params={"samples": art.rows},
                               breakdown=breakdown, extra={"example": art.example}),)


def _measure(metric: Metric, params: Mapping[str, Any], inputs: MetricInput, resampler: Any,
             confidence: float) -> tuple[Measurement, ...]:
    from audit.checks.measure import paired_measurement

    art: ChoiceEdits | None = inputs.artifacts.get("choice_edits")
    if art is None:
        raise DataError(f"{metric.name} re-scores edited items with both models; run it "
                        "through a suite")
    request = _request(params)
    if metric.name == "typo_accuracy":
        per = {who: (art.edited[who] == art.y).astype(float) for who in ("teacher", "student")}
    else:
        per = {who: (art.edited[who] == art.clean[who]).astype(float)
               for who in ("teacher", "student")}
    both = np.column_stack([per["teacher"], per["student"]])
    reps = cluster_ratio_replicates(both, np.ones(art.rows), resampler.n_boot, resampler.seed)
    breakdown = [{"kind": "typos", "model": who,
                  "clean_accuracy": float(np.mean(art.clean[who] == art.y)),
                  "typo_accuracy": float(np.mean(art.edited[who] == art.y)),
                  "unchanged": float(np.mean(art.edited[who] == art.clean[who]))}
                 for who in ("teacher", "student")]
    breakdown += [{"kind": "typo_example", **dict(e)} for e in art.examples]
    notes = []
    short = int(np.sum(art.edits_made < request.get("typos")))
    if short:
        notes.append(f"{short} item(s) had fewer letters to edit than typos={request.get('typos')}"
                     "; they carry every edit they could")
    method = (f"{request.get('typos')} random edits ({', '.join(request.get('edits'))}) per "
              f"context on {art.rows} items; paired bootstrap over the items, "
              f"{resampler.n_boot} replicates")
    shown = {"samples": art.rows, "typos": request.get("typos"),
             "edits": list(request.get("edits"))}
    t, s = both.mean(axis=0)
    return (paired_measurement(metric, float(t), float(s), reps[:, 0], reps[:, 1], confidence,
                               method=method, n=art.rows, params=shown, breakdown=breakdown,
                               notes=tuple(notes)),)


_PARAMS = {
    "samples": Param("int", "Items re-scored with typos (all of them when fewer).",
                     default=DEFAULT_ITEMS, minimum=10),
    "typos": Param("int", "Random character edits made in each item's context.",
                   default=DEFAULT_TYPOS, minimum=1, maximum=50),
    "edits": Param("str_list", "The kinds of edit drawn from.", default=_EDITS, choices=_KINDS),
}
for _name, _doc in (
    ("typo_accuracy", "Share of multiple-choice items answered right with typos in the context."),
    ("typo_consistency", "Share of multiple-choice items whose pick typos in the context leave "
                         "unchanged."),
):
    register(Metric(_name, "higher", "choice_robustness", False, (0.0, 1.0), _doc,
                    custom=_measure, needs=_needs, params=_PARAMS, modalities=("choices",)))
_ORDER_PARAMS = {"samples": Param("int", "Items re-scored under every rotation of their options "
                                         "(all of them when fewer).",
                                  default=DEFAULT_ORDER_ITEMS, minimum=10)}
for _name, _doc in (
    ("order_consistency", "Share of items (their options listed in the context) where the model "
                          "picks the same option in every order."),
    ("circular_accuracy", "Share of items (their options listed in the context) answered right "
                          "in every order of the options."),
):
    register(Metric(_name, "higher", "choice_robustness", False, (0.0, 1.0), _doc,
                    custom=_measure_order, needs=_order_needs, params=_ORDER_PARAMS,
                    modalities=("choices",)))


def _tables(m: Measurement) -> tuple[Table, ...]:
    first = next((r for r in m.breakdown if r.get("kind") == "positions"), {})
    out = (Table.of_rows(m.breakdown, "positions", "Picks by position, pooled over the orders",
                         tuple(c for c in first if c != "kind"), open=True),
           Table.of_rows(m.breakdown, "typos", "Clean and with typos",
                         ("model", "clean_accuracy", "typo_accuracy", "unchanged"), open=True),
           Table.of_rows(m.breakdown, "typo_example", "Items with typos",
                         ("original", "edited", "answer", "teacher_clean", "teacher_edited",
                          "student_clean", "student_edited")))
    return tuple(t for t in out if t is not None)


FAMILY = register_family(Family("choice_robustness", "Robustness of the choices", order=55,
                                tables=_tables))
