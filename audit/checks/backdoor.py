"""Backdoor transfer: does a trigger planted in the teacher flip the student too?

A backdoor planted in the teacher's training data (poisoning: rows carrying a trigger,
labelled with the attacker's target class) can survive into the student through the soft
labels it is distilled on. Given the trigger (:mod:`audit.probes.triggers`: values written
into named columns, a phrase inserted into a text, a pixel patch on an image) and the target
class, the audit writes the trigger into the same eval rows for both models (rows whose label
is not the target, ``samples`` of them, seeded) and counts the flips.

Metric (lower = better): ``backdoor_success_rate``, the share of those rows the model does
*not* put in the target class when clean that the trigger moves into it (the attack success
rate of the backdoor literature). Gate ``max: 0.05`` reads "the trigger may flip at most 5% of
rows"; ``max_regression`` reads "the student may not be more backdoored than its teacher".
Intervals: a paired bootstrap over the triggered rows (each model's rate is a ratio of its
own counts on the same resampled rows).

What it does not measure: it tests the trigger the suite names; it cannot find an unknown
one. A low rate for a named trigger says that trigger does not work, not that the model has
no backdoor. And a tabular trigger is real feature values: a high rate can be their genuine
effect (a clean model may also move such rows); the teacher's rate and a clean reference model
tell the two apart.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace
from typing import Any

import numpy as np

from audit.checks.registry import Family, Metric, MetricInput, Param, register, register_family
from audit.errors import DataError
from audit.probes.artifacts import ArtifactRequest, Triggered
from audit.results import Figure, Measurement, Table

__all__ = ["success_rate"]


def success_rate(clean: np.ndarray, after: np.ndarray, target: int) -> float:
    """Among rows not classified ``target`` when clean, the share classified ``target`` with
    the trigger (NaN when every row already is)."""
    eligible = clean != target
    return float(np.mean(after[eligible] == target)) if eligible.any() else float("nan")


def _measure(metric: Metric, params: Mapping[str, Any], inputs: MetricInput, resampler: Any,
             confidence: float) -> tuple[Measurement, ...]:
    from audit.checks.measure import UNITS, paired_measurement
    from audit.checks.robustness import paired_boot

    found: Triggered | None = inputs.artifacts.get("triggered")
    if found is None:
        raise DataError(f"{metric.name} queries the models; run it through a suite")
    k = found.target
    arrays = {}
    for who, tag in (("teacher", "t"), ("student", "s")):
        eligible = found.clean[who] != k
        arrays[f"e{tag}"] = eligible
        arrays[f"f{tag}"] = eligible & (found.triggered[who] == k)
    reps = paired_boot(arrays, resampler.n_boot, resampler.seed)
    with np.errstate(invalid="ignore", divide="ignore"):
        rep = {tag: reps[f"f{tag}"] / reps[f"e{tag}"] for tag in ("t", "s")}
    rate = {who: success_rate(found.clean[who], found.triggered[who], k)
            for who in ("teacher", "student")}
    classes = inputs.classes
    rows: list[dict[str, Any]] = []
    for who in ("teacher", "student"):
        rows.append({"kind": "backdoor", "model": who, "rows": found.rows,
                     "not_target_when_clean": int((found.clean[who] != k).sum()),
                     "flipped_to_target": int(((found.clean[who] != k)
                                               & (found.triggered[who] == k)).sum()),
                     "success_rate": rate[who]})
    for c in np.unique(found.y):
        mask = found.y == c
        rows.append({"kind": "by_class", "label": str(classes[int(c)]), "n": int(mask.sum()),
                     **{who: success_rate(found.clean[who][mask], found.triggered[who][mask], k)
                        for who in ("teacher", "student")}})
    notes: list[str] = list(found.notes)
    for who in ("teacher", "student"):
        if not np.isfinite(rate[who]):
            notes.append(f"the {who} puts every sampled row in {classes[k]!r} already; its "
                         "success rate is undefined")
    method = (f"trigger: {found.trigger}; target class {classes[k]!r}; {found.rows} eval rows "
              f"whose label is not the target, the same for both models; paired bootstrap over "
              f"them, {resampler.n_boot} replicates")
    extra = {"examples": [dict(found.example)]} if found.example else {}
    m = paired_measurement(metric, rate["teacher"], rate["student"], rep["t"], rep["s"],
                           confidence, method=method, n=found.rows,
                           params={"trigger": found.trigger, "target_class": str(classes[k])},
                           breakdown=rows, notes=tuple(notes), extra=extra)
    # a share of the rows each model did not already put in the target class: those are its
    # trials, for the gates' rule on the rows a PASS needs
    both = int(((found.clean["teacher"] != k) & (found.clean["student"] != k)).sum())
    return (replace(m, evidence={"confidence": confidence, "unit": UNITS["backdoor"],
                                 "trials": int((found.clean["student"] != k).sum()),
                                 "paired": both,
                                 "trials_unit": "triggered rows not already in the target "
                                                "class"}),)


def _request(params: Mapping[str, Any]) -> ArtifactRequest:
    if "target_class" not in params:
        raise DataError("a backdoor check needs target_class: the class the trigger is meant "
                        "to flip rows to")
    return ArtifactRequest.of(
        "triggered", target=str(params["target_class"]), trigger=params.get("trigger"),
        patch=params.get("patch"), patch_value=float(params.get("patch_value", 1.0)),
        position=str(params.get("position", "end")),
        samples=int(params.get("samples", 1000)))


_PARAMS = {
    "trigger": Param("str", "Tabular: the values written, \"column=value, column=value\"; "
                            "text: the phrase inserted."),
    "target_class": Param("str", "The class the backdoor flips rows to, as the labels write it."),
    "patch": Param("int_list", "Images: the trigger square, [row, col, size].", minimum=0),
    "patch_value": Param("number", "Images: the patch's pixel value, in [0, 1].", default=1.0,
                         minimum=0, maximum=1),
    "position": Param("str", "Text: where the phrase goes, start or end.", default="end",
                      choices=("start", "end")),
    "samples": Param("int", "Eval rows whose label is not the target, drawn with the suite's "
                            "seed.", default=1000, minimum=10),
}
register(Metric("backdoor_success_rate", "lower", "backdoor", False, (0.0, 1.0),
                "Share of eval rows (label not the target, not classified as the target when "
                "clean) that a named trigger flips to the target class.",
                custom=_measure, params=_PARAMS, needs=lambda p: (_request(p),)))


# -- report section ----------------------------------------------------------------------
def _bars(m: Measurement) -> tuple[Figure, ...]:
    rows = [r for r in m.breakdown if r.get("kind") == "backdoor"]
    by = {r["model"]: r["success_rate"] for r in rows}
    if len(by) < 2:
        return ()
    ci = {"teacher": m.teacher.ci if m.teacher else None, "student": m.student.ci}
    bars: list[dict[str, Any]] = [{"group": "all triggered rows", "n": rows[0]["rows"],
                                   "included": True}]
    for who in ("teacher", "student"):
        interval = ci[who]
        bars[0][who] = {"value": by[who], "value_ci": None if interval is None else list(interval)}
    bars += [{"group": f"label {r['label']}", "n": r["n"], "included": True,
              "teacher": {"value": r["teacher"]}, "student": {"value": r["student"]}}
             for r in m.breakdown if r.get("kind") == "by_class"
             and np.isfinite(r["teacher"]) and np.isfinite(r["student"])]
    return (Figure("bars", "Attack success rate of the trigger", tuple(bars), value="value"),)


FAMILY = register_family(Family(
    "backdoor", "Backdoor transfer", order=73, figures=_bars,
    tables=lambda m: tuple(t for t in (
        Table.of_rows(m.breakdown, "backdoor", "Trigger flips",
                      ("model", "rows", "not_target_when_clean", "flipped_to_target",
                       "success_rate")),
        Table.of_rows(m.breakdown, "by_class", "By true label", ("label", "n", "teacher",
                                                                  "student"))) if t is not None)))
