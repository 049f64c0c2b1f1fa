"""Robustness to common corruptions and to text edits: accuracy under natural perturbations.

* ``corruption_accuracy`` (image suites) -- each model's accuracy on the same ``samples`` eval
  images under each common corruption (``gaussian_noise``, ``gaussian_blur``, ``brightness``,
  ``contrast``, ``jpeg``; the CIFAR-10-C parameters, :mod:`audit.probes.corruptions`) at each
  named severity (1 to 5), one measurement per (corruption, severity); the regression is
  teacher minus student with a paired bootstrap over the images. Compressed students often
  keep their clean accuracy and lose it here first.
* ``edit_accuracy`` (text suites) -- robust accuracy under a black-box, greedy text-edit attack
  (:mod:`audit.probes.text_attack`: character swaps, drops, insertions, keyboard typos, case and
  whitespace, word drops, duplicates and swaps), one measurement per edit ``budget``: the share
  of the sampled texts a model classifies correctly and that no chain of up to ``budget`` edits
  flips. Both models face the same attack on the same texts; queries are counted.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from audit.checks.registry import Family, Metric, MetricInput, Param, register, register_family
from audit.errors import DataError, did_you_mean
from audit.probes.artifacts import ArtifactRequest, Corrupted, TextEdits
from audit.results import Estimate, Figure, Measurement, Table
from audit.thumbnails import data_uri

__all__ = ["CORRUPTIONS", "EDITS", "DEFAULT_SEVERITIES", "DEFAULT_BUDGETS"]

CORRUPTIONS = ("gaussian_noise", "gaussian_blur", "brightness", "contrast", "jpeg")
EDITS = ("swap", "drop", "insert", "keyboard", "case", "whitespace", "word_drop",
         "word_duplicate", "word_swap")
DEFAULT_SEVERITIES = (1, 3, 5)
DEFAULT_BUDGETS = (1, 2, 3)
DEFAULT_IMAGES = 1000
DEFAULT_TEXTS = 200


def _choices(name: str, key: str, given: Any, valid: tuple[str, ...]) -> tuple[str, ...]:
    values = tuple(str(v) for v in (given or valid))
    for v in values:
        if v not in valid:
            raise DataError(f"{name}: {key} {v!r} is not known{did_you_mean(v, list(valid))} "
                            f"(valid: {', '.join(valid)})")
    return values


def _corruption_request(params: Mapping[str, Any]) -> ArtifactRequest:
    severities = tuple(int(s) for s in (params.get("severities") or DEFAULT_SEVERITIES))
    for s in severities:
        if not 1 <= s <= 5:
            raise DataError(f"corruption_accuracy: severity {s} is not one of 1, 2, 3, 4, 5")
    return ArtifactRequest.of(
        "corrupted", metric="corruption_accuracy",
        corruptions=_choices("corruption_accuracy", "corruption", params.get("corruptions"),
                             CORRUPTIONS),
        severities=severities, samples=int(params.get("samples", DEFAULT_IMAGES)))


def _edit_request(params: Mapping[str, Any]) -> ArtifactRequest:
    return ArtifactRequest.of(
        "text_edits", metric="edit_accuracy",
        budgets=tuple(sorted({int(b) for b in (params.get("budgets") or DEFAULT_BUDGETS)})),
        edits=_choices("edit_accuracy", "edit", params.get("edits"), EDITS),
        samples=int(params.get("samples", DEFAULT_TEXTS)),
        candidates=int(params.get("candidates", 32)),
        max_seconds=float(params.get("max_seconds", 300.0)))


def _paired(metric: Metric, t: np.ndarray, s: np.ndarray, resampler: Any, confidence: float, *,
            method: str, params: dict[str, Any], notes: tuple[str, ...], breakdown: Any,
            extra: dict[str, Any]) -> Measurement:
    from audit.checks.measure import paired_measurement
    from audit.checks.robustness import paired_boot

    reps = paired_boot({"t": t, "s": s}, resampler.n_boot, resampler.seed)
    return paired_measurement(metric, float(t.mean()), float(s.mean()), reps["t"], reps["s"],
                              confidence, method=method, n=len(t), params=params,
                              breakdown=breakdown, notes=notes, extra=extra)


def _measure_corruption(metric: Metric, params: Mapping[str, Any], inputs: MetricInput,
                        resampler: Any, confidence: float) -> tuple[Measurement, ...]:
    found: Corrupted | None = inputs.artifacts.get("corrupted")
    if found is None:
        raise DataError(f"{metric.name} needs the models themselves; run it through a suite")
    out: list[Measurement] = []
    clean = {who: float(c.mean()) for who, c in found.clean.items()}
    for (kind, severity), correct in found.correct.items():
        t, s = correct["teacher"], correct["student"]
        rows = [{"kind": "corruption", "model": who, "corruption": kind, "severity": severity,
                 "rows": found.rows, "clean_accuracy": clean[who],
                 "corrupted_accuracy": float(c.mean())} for who, c in correct.items()]
        method = (f"{kind} at severity {severity} (CIFAR-10-C parameters); paired bootstrap over "
                  f"the {found.rows} images, {resampler.n_boot} replicates")
        example = found.examples.get((kind, severity))
        extra = {} if example is None else {"examples": [{
            "image": data_uri(example[0]), "caption": f"{kind}, severity {severity}"}]}
        said = (f"the same {found.rows} eval images corrupted for both models (clean "
                f"accuracy: teacher {clean['teacher']:.3f}, student {clean['student']:.3f})",)
        out.append(_paired(metric, t, s, resampler, confidence, method=method,
                           params={"corruption": kind, "severity": severity},
                           notes=() if out else said,  # once per check, not per corruption
                           breakdown=rows, extra=extra))
    return tuple(out)


def _measure_edits(metric: Metric, params: Mapping[str, Any], inputs: MetricInput,
                   resampler: Any, confidence: float) -> tuple[Measurement, ...]:
    found: TextEdits | None = inputs.artifacts.get("text_edits")
    if found is None:
        raise DataError(f"{metric.name} needs the models themselves; run it through a suite")
    request = _edit_request(params)
    out = []
    for budget in request.get("budgets"):
        robust = {who: r.robust_at(budget) for who, r in found.results.items()}
        rows = []
        for who, r in found.results.items():
            attacked = int(r.clean_correct.sum())
            flipped = int(((r.flipped_at >= 1) & (r.flipped_at <= budget)).sum())
            rows.append({"kind": "text_edits", "model": who, "budget": budget, "rows": found.rows,
                         "clean_accuracy": float(r.clean_correct.mean()),
                         "robust_accuracy": float(robust[who].mean()),
                         "success_rate": None if attacked == 0 else flipped / attacked,
                         "queries": int(r.queries.sum()),
                         "seconds": round(float(found.seconds[who]), 3)})
        student, teacher = found.results["student"], found.results["teacher"]
        examples = []  # the texts this budget flips first (each budget shows its own)
        for i in np.flatnonzero(student.flipped_at == budget)[:3]:
            kept = bool(teacher.robust_at(budget)[i])
            examples.append({
                "text": str(student.original[i])[:300], "edited": str(student.texts[i])[:300],
                "caption": (f"the student's answer flipped after {budget} edit(s) ("
                            + "; ".join(student.edits[i])[:200] + "); the teacher's "
                            + ("held" if kept else "did not") + f" within {budget} edit(s) of "
                            "its own attack on this text")})
        method = (f"greedy black-box edits ({', '.join(request.get('edits'))}), up to {budget} "
                  f"edit(s), {request.get('candidates')} candidates per step; paired bootstrap "
                  f"over the {found.rows} texts, {resampler.n_boot} replicates")
        out.append(_paired(metric, robust["teacher"], robust["student"], resampler, confidence,
                           method=method, params={"budget": budget},
                           notes=(f"the same {found.rows} eval texts attacked for both models; "
                                  "a text counts as robust when the model is right on it and no "
                                  f"chain of up to {budget} edit(s) flips it",),
                           breakdown=rows, extra={"examples": examples} if examples else {}))
    return tuple(out)


register(Metric(
    "corruption_accuracy", "higher", "corruption", False, (0.0, 1.0),
    "Accuracy of each model on the same eval images under common corruptions (noise, blur, "
    "brightness, contrast, JPEG) at named severities, one measurement per (corruption, "
    "severity); image suites.",
    custom=_measure_corruption, needs=lambda p: (_corruption_request(p),), modalities=("images",),
    params={
        "corruptions": Param("str_list", "Corruptions to apply (default: all).",
                             default=CORRUPTIONS, choices=CORRUPTIONS),
        "severities": Param("int_list", "Severities, 1 (mild) to 5 (severe), as in CIFAR-10-C.",
                            default=DEFAULT_SEVERITIES, minimum=1, maximum=5),
        "samples": Param("int", "Eval rows attacked, drawn with the suite's seed.",
                         default=DEFAULT_IMAGES, minimum=10),
    }))
register(Metric(
    "edit_accuracy", "higher", "corruption", False, (0.0, 1.0),
    "Robust accuracy of each model under a black-box greedy text-edit attack (character and "
    "word edits), one measurement per edit budget; text suites.",
    custom=_measure_edits, needs=lambda p: (_edit_request(p),), modalities=("text",), params={
        "budgets": Param("int_list", "Edit budgets: the most edits an attacker may make.",
                         default=DEFAULT_BUDGETS, minimum=1, maximum=20),
        "edits": Param("str_list", "Edit kinds (default: all).", default=EDITS, choices=EDITS),
        "samples": Param("int", "Eval rows attacked, drawn with the suite's seed.",
                         default=DEFAULT_TEXTS, minimum=10),
        "candidates": Param("int", "Edits tried per text and step (a seeded sample).",
                            default=32, minimum=1, maximum=1000),
        "max_seconds": Param("number", "A safety stop on the black-box attack (HopSkipJump; for "
                                       "edit_accuracy, the text-edit attack).",
                             default=300.0, exclusive_minimum=0),
    }))


def _curve(c: Any) -> tuple[Figure, ...]:
    """Accuracy by severity (one curve per corruption) or by edit budget."""
    by: dict[str, list[dict[str, Any]]] = {}
    for m in c.measurements:
        if m.metric not in ("corruption_accuracy", "edit_accuracy"):
            return ()
        x = m.params.get("severity", m.params.get("budget"))
        line = str(m.params.get("corruption", "edits"))

        def triple(e: Estimate | None) -> tuple[float, float | None, float | None] | None:
            if e is None:
                return None
            lo, hi = e.ci if e.ci is not None else (None, None)
            return (e.value, lo, hi)

        by.setdefault(line, []).append({"x": float(x), "teacher": triple(m.teacher),
                                        "student": triple(m.student)})
    label = "severity" if c.measurements and "severity" in c.measurements[0].params else "edits"
    return tuple(Figure("curve", f"{c.measurements[0].metric}: {line} by {label}", tuple(points),
                        x_label=label, y_label="accuracy")
                 for line, points in by.items() if len(points) >= 2)


FAMILY = register_family(Family(
    "corruption", "Corruptions and text edits", order=61, check_figures=_curve,
    tables=lambda m: tuple(t for t in (Table.of_rows(
        m.breakdown, "corruption", "Corruptions", ("model", "corruption", "severity", "rows",
                                                  "clean_accuracy", "corrupted_accuracy")),
        Table.of_rows(m.breakdown, "text_edits", "Text edits", (
            "model", "budget", "rows", "clean_accuracy", "robust_accuracy", "success_rate",
            "queries", "seconds"))) if t is not None)))
