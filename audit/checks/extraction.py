"""Extraction risk: how many queries does it take to copy each model?

Distillation *is* model extraction: a small, cheap, queryable student may be far easier to
copy than its teacher. The audit plays the thief against both models with the same queries
and the same thief (:mod:`audit.probes.extraction`): at each query budget ``n`` (``budgets``,
e.g. ``[100, 1000, 10000]``) a thief is trained on ``n`` of the model's answers, then scored
on eval rows it never queried.

Metrics (one measurement per budget; lower = harder to copy, the defender's direction):
``extraction_agreement`` (the share of scored rows where the thief decides as the model
does) and ``extraction_accuracy`` (the thief's accuracy against the labels: how useful the
copy is). A gate ``max: 0.95`` on ``extraction_agreement`` at budget 1000 reads "the student
must not be copyable to 95% agreement with 1,000 queries"; ``max_regression`` reads "no
easier to copy than its teacher". Intervals: a paired bootstrap over the scored rows (the
thieves held fixed, so it reflects which rows were scored, not the randomness of fitting).

What it does not measure: a thief that chooses its queries adaptively (ART's
``KnockoffNets`` with an adaptive policy) or uses more than hard labels can do better; the
numbers are what a first, non-adaptive attempt achieves, a floor on the risk.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import numpy as np

from audit.checks.registry import Family, Metric, MetricInput, Param, register, register_family
from audit.errors import DataError
from audit.probes.artifacts import ArtifactRequest, Extraction
from audit.results import Estimate, Figure, Measurement, Table

__all__ = ["DEFAULT_BUDGETS", "SOURCES"]

DEFAULT_BUDGETS = (100, 1000)
SOURCES = ("marginals", "train", "holdout", "teacher_train", "eval")
THIEF_CHOICES = ("mlp", "logistic", "forest", "tree", "boosting", "cnn")


def _measure(metric: Metric, params: Mapping[str, Any], inputs: MetricInput, resampler: Any,
             confidence: float) -> tuple[Measurement, ...]:
    from audit.checks.measure import paired_measurement
    from audit.checks.robustness import paired_boot

    found: Extraction | None = inputs.artifacts.get("extraction")
    if found is None:
        raise DataError(f"{metric.name} queries the models; run it through a suite")
    what = {"mlp": "an MLP (100 hidden units)", "logistic": "a logistic regression",
            "forest": "a random forest", "tree": "a decision tree",
            "boosting": "a gradient-boosted ensemble",
            "cnn": "a small CNN (ART CopycatCNN, Adam, batches of 64, at least 400 steps)"}[
                found.thief]
    source = ("columns drawn independently from the eval rows' values" if found.source ==
              "marginals" else f"rows of data.{found.source}")
    victim_acc = {who: float(np.mean(v == found.y)) for who, v in found.victim.items()}
    # what a thief that always gives a model's most common answer gets, without any query
    constant = {who: float(np.bincount(v).max() / len(v)) for who, v in found.victim.items()}
    k = inputs.k
    out: list[Measurement] = []
    for n in found.budgets:
        thief = found.thieves[n]
        if metric.name == "extraction_agreement":
            hits = {who: thief[who] == found.victim[who] for who in ("teacher", "student")}
        else:
            hits = {who: thief[who] == found.y for who in ("teacher", "student")}
        reps = paired_boot({"t": hits["teacher"], "s": hits["student"]}, resampler.n_boot,
                           resampler.seed)
        rows = [{"kind": "extraction", "model": who, "queries": n,
                 "agreement": float(np.mean(thief[who] == found.victim[who])),
                 "constant_copy_agreement": constant[who],
                 "thief_accuracy": float(np.mean(thief[who] == found.y)),
                 "model_accuracy": victim_acc[who], "seconds": found.seconds[n][who]}
                for who in ("teacher", "student")]
        method = (f"{what} trained on {n} queries ({source}) and each model's predicted "
                  f"classes, scored on {found.scored} eval rows it did not query; paired "
                  f"bootstrap over the scored rows (thieves held fixed), {resampler.n_boot} "
                  "replicates")
        notes: tuple[str, ...] = ()
        if not out:  # once per check, not per budget
            notes = (*found.notes, (
                f"a constant copy (always a model's most common answer, no query) already agrees "
                f"with the teacher on {constant['teacher']:.3f} and the student on "
                f"{constant['student']:.3f} of the scored rows"
                + ("; read the agreement against that floor" if max(constant.values()) > 1 / k + 0.2
                   else "")))
        out.append(paired_measurement(
            metric, float(hits["teacher"].mean()), float(hits["student"].mean()), reps["t"],
            reps["s"], confidence, method=method, n=found.scored,
            params={"queries": n, "source": found.source, "thief": found.thief},
            breakdown=rows, notes=tuple(notes)))
    return tuple(out)


def _request(params: Mapping[str, Any]) -> ArtifactRequest:
    budgets = tuple(sorted({int(b) for b in (params.get("budgets") or DEFAULT_BUDGETS)}))
    return ArtifactRequest.of("extraction", budgets=budgets,
                              source=str(params.get("source", "marginals")),
                              thief=str(params.get("thief", "mlp")),
                              max_seconds=float(params.get("max_seconds", 300.0)))


def _tables_read(params: Mapping[str, Any]) -> tuple[tuple[str, str], ...]:
    source = params.get("source")
    return ((str(source), "source"),) if source and source not in ("marginals", "eval") else ()


_PARAMS = {
    "budgets": Param("int_list", "Query budgets: one thief per budget, one measurement each "
                                 "(at most a million: the queries are held in memory).",
                     default=DEFAULT_BUDGETS, minimum=10, maximum=1_000_000),
    "source": Param("str", "Where the queries come from: marginals (each column drawn from the "
                           "eval rows' values; tabular) or a table: train, holdout, "
                           "teacher_train, eval (the thief is then scored on the other eval "
                           "rows).", default="marginals", choices=SOURCES),
    "thief": Param("str", "The thief: a scikit-learn family (mlp, logistic, forest, tree, "
                          "boosting) or cnn (ART CopycatCNN, image suites, needs torch).",
                   default="mlp", choices=THIEF_CHOICES),
    "max_seconds": Param("number", "A safety stop on fitting the thieves (checked after each "
                                   "thief's fit: one fit is not interrupted).", default=300.0,
                         exclusive_minimum=0),
}
for _name, _doc in (
    ("extraction_agreement",
     "Agreement with the model of a thief trained on a budget of queries to it (one "
     "measurement per budget); 1 = a perfect copy."),
    ("extraction_accuracy",
     "Accuracy against the labels of a thief trained on a budget of queries to the model."),
):
    register(Metric(_name, "lower", "extraction", False, (0.0, 1.0), _doc, custom=_measure,
                    params=_PARAMS, tables=_tables_read, needs=lambda p: (_request(p),),
                    modalities=("tabular", "images")))


# -- report section ----------------------------------------------------------------------
def _triple(e: Estimate | None) -> tuple[float, float | None, float | None] | None:
    if e is None:
        return None
    lo, hi = e.ci if e.ci is not None else (None, None)
    return (e.value, lo, hi)


def _curve(c: Any) -> tuple[Figure, ...]:
    """The check's measurements as one curve over log10(queries)."""
    points = []
    for m in c.measurements:
        n = m.params.get("queries")
        if not isinstance(n, int) or n <= 0:
            return ()
        points.append({"x": math.log10(n), "teacher": _triple(m.teacher),
                       "student": _triple(m.student)})
    if len(points) < 2:
        return ()
    metric = c.measurements[0].metric
    return (Figure("curve", f"{metric} by query budget", tuple(points),
                   x_label="log10(queries)", y_label=metric),)


FAMILY = register_family(Family(
    "extraction", "Model extraction", order=72, check_figures=_curve,
    tables=lambda m: tuple(t for t in (Table.of_rows(
        m.breakdown, "extraction", f"Thieves at {m.params.get('queries')} queries",
        ("model", "queries", "agreement", "constant_copy_agreement", "thief_accuracy",
         "model_accuracy", "seconds")),) if t is not None)))
