"""Adversarial robustness: teacher and student attacked under the same budget.

* ``robust_accuracy`` -- accuracy of each model on adversarial versions of the same ``samples``
  eval rows (default 200, drawn with the suite's seed), one measurement per ``eps``; the
  regression is teacher minus student with a paired bootstrap interval over the attacked rows.
* ``transfer_accuracy`` -- the student's accuracy on adversarial examples crafted on the
  *teacher* (pairwise): a student that mimics its teacher inherits its teacher's blind spots,
  and an attacker who has the teacher needs no access to the student.

The perturbation space. Only numeric feature columns are perturbed; categorical columns stay
as they are. Each numeric column is scaled to [0, 1] by the observed [min, max] of the eval
table, the attack runs there with clip values (0, 1), and the result is scaled back: ``eps`` is
in units of each column's (max - min) range, for the L-inf norm per column, for the L2 norm over
the vector of scaled columns. Columns with a single value are left fixed. Integer columns are
rounded to the nearest integer after the attack (and clipped to [min, max]), so a perturbation
may reach half a unit beyond the budget: on the digits pixels (0..16) eps 0.1 is 1.6 levels,
which rounds to 2; eps 0.05 (0.8 levels) rounds to 1. Models are always evaluated on the
rounded table they would really receive.

Attacks (``attack``):

* ``pgd`` -- ART's ProjectedGradientDescent (20 iterations, step eps/8, no random start)
  through ART's PyTorchClassifier. Gradients exist for torch models (``torch:`` files and
  callables that build an ``nn.Module``) and for the scikit-learn models
  :mod:`audit.checks.differentiable` rebuilds exactly as float64 torch modules (logistic
  regression, calibrated linear SVMs, behind affine scalers); the copy is checked against the
  model's own probabilities before it is attacked.
* ``fgsm`` -- ART's FastGradientMethod, one step of size eps (same models).
* ``hopskipjump`` -- ART's HopSkipJump, a black-box decision-based attack, through ART's
  BlackBoxClassifier around the model's own prediction (one row at a time, with that row's
  categorical values). It finds a minimal perturbation, not one within eps: its result is
  projected onto the eps ball (clipped to eps per column for L-inf, scaled down for L2) and
  the model's prediction on the projection decides. It starts from the nearest eval or train
  row the model puts in another class (with the attacked row's categorical values), else from
  seeded random points of the box and its corners: ART's own random start is unseeded, and HSJ
  returns the input unchanged when it finds no start, so success is always measured, never
  assumed.
* ``noise`` -- uniform random noise within eps (the same draws for both models): a cheap,
  model-agnostic baseline.
* ``auto`` (default) -- ``pgd`` when both models give gradients, else ``hopskipjump`` for both:
  both models always face the same attack and budget, or the comparison would measure the
  attacks rather than the models.
* ``strongest`` -- each model its own strongest attack (``pgd`` with gradients, else
  ``hopskipjump``): for absolute bounds on the student. When the two differ the measurement has
  no regression (a regression gate is inconclusive, saying why).

Only rows a model classifies correctly are attacked; a row counts as robust when the model is
right on it both clean and attacked. The success rate is the share of originally-correct rows
whose prediction flipped. Which rows are measured is decided by ``samples`` and the seed alone,
never by the machine's speed: every correctly classified row of the sample is attacked, for
both models. The wall-clock cap (``max_seconds``, default 30, for all the attacks of a check) is
only a safety stop: an attack it stops makes the check an error that names the rows done and
asked, never a measurement on fewer rows. Adversarial examples are computed once per (model,
attack, eps, norm, samples) per run, so ``robust_accuracy`` and ``transfer_accuracy`` share them;
each model's clean predictions on the attacked rows are computed once per run.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import Any

import numpy as np

from audit.checks.perturbation import column_listing
from audit.checks.registry import Family, Metric, MetricInput, Param, register, register_family
from audit.errors import DataError
from audit.probes.artifacts import Adversarial, ArtifactRequest, AttackOutcome
from audit.results import Estimate, Figure, Measurement, Table
from audit.stats import bootstrap_tables, percentile_interval

# the attacks themselves: audit.probes
__all__ = ["DEFAULT_EPS", "DEFAULT_SAMPLES", "DEFAULT_MAX_SECONDS", "paired_boot"]

DEFAULT_EPS = (0.05, 0.1)
DEFAULT_SAMPLES = 200
DEFAULT_MAX_SECONDS = 30.0


def paired_boot(values: Mapping[str, np.ndarray], n_boot: int, seed: int) -> dict[str, np.ndarray]:
    """Paired bootstrap of the means of 0/1 rows: the same resampled rows for every array.

    The rows take one of ``2**len(values)`` patterns, so resampling them with replacement is
    one multinomial draw over the pattern counts per replicate (:func:`bootstrap_tables`, as
    for the count-based metrics): exact, and independent of the number of rows.
    """
    m = len(next(iter(values.values())))
    code = np.zeros(m, np.int64)
    for b, v in enumerate(values.values()):
        code |= np.asarray(v, bool).astype(np.int64) << b
    cells = 1 << len(values)
    draws = bootstrap_tables(np.bincount(code, minlength=cells), n_boot, seed)
    patterns = np.arange(cells)
    return {k: draws[:, (patterns >> b) & 1 == 1].sum(axis=1) / m for b, k in enumerate(values)}


def _measure_robustness(metric: Metric, params: Mapping[str, Any], inputs: MetricInput,
                        resampler: Any, confidence: float) -> tuple[Measurement, ...]:
    from audit.checks.measure import paired_measurement

    found: Adversarial | None = inputs.artifacts.get("adversarial")
    if found is None:
        raise DataError(f"{metric.name} needs the models themselves; run it through a suite")
    request = _request(metric.name, params)
    requested = request.get("attack")
    attacks = found.attacks
    same = len(set(attacks.values())) == 1
    attack = attacks["teacher"] if same else "strongest"
    eps_list, norm = request.get("eps"), request.get("norm")
    samples, max_seconds = request.get("samples"), request.get("max_seconds")
    space = found  # the perturbed, categorical and fixed columns
    results = found.outcomes
    out = []
    perturbed = space.space or (f"perturbed {len(space.columns)} numeric column(s) in units "
                                f"of their eval [min, max] range: {column_listing(space.columns)}")
    if space.categorical:
        perturbed += f"; kept fixed, not numeric: {column_listing(space.categorical)}"
    if space.fixed:
        perturbed += f"; kept fixed, a single value in the eval table: {column_listing(space.fixed)}"
    for eps in eps_list:
        scope = {"eps": eps, "attack": attack, "norm": norm}
        arts = results[eps]
        m = space.rows
        faced = (f"attack {attack} (requested {requested}) on both models" if same else
                 "each model's strongest attack (requested strongest): "
                 + ", ".join(f"{attacks[who]} on the {who}" for who in arts))
        units = "in pixel units of [0, 1]" if space.space else "in units of each column's range"
        notes = [f"{faced}, eps {eps:g} ({norm}-norm, {units}), {m} rows", perturbed]
        if "hopskipjump" in attacks.values():
            notes.append("hopskipjump is a black-box attack: it finds fewer adversarial examples "
                         "within eps than a white-box one (PGD) does, so its robust accuracy is an "
                         "upper bound, often far above PGD's on the same model")
        if "max_seconds" in params and "hopskipjump" not in attacks.values():
            notes.append(f"max_seconds {max_seconds:g} did not apply: only hopskipjump is "
                         f"capped, and {attack} makes one quick pass over the rows")
        if m < samples:
            notes.append(f"samples {samples} asked for, but the eval table has {m} rows: every "
                         "row was attacked")
        rows = [_row(who, attacks[who], eps, norm, a) for who, a in arts.items()]
        for who, a in arts.items():
            unstarted = int(a.no_start.sum()) if a.no_start is not None else 0
            if attacks[who] == "hopskipjump" and unstarted:
                searched = ("the sampled images" if space.space else
                            "the nearest data rows the model puts in another class (with the "
                            "row's categorical values) and random points of the whole [min, max] "
                            "box" + (" and its corners" if found.corners else ""))
                notes.append(f"hopskipjump found no starting point of another class for "
                             f"{unstarted} of the {who}'s {m} measured row(s), searching "
                             + searched
                             + "; they count as robust: the model kept its prediction wherever "
                             "the search looked, far beyond eps")
        how = (f"{attack} attack" if same else
               " / ".join(f"{attacks[who]} ({who})" for who in arts) + " attacks")
        method = (f"{how}, eps {eps:g} ({norm}-norm); paired bootstrap over the "
                  f"{m} attacked rows, {resampler.n_boot} replicates")
        if metric.name == "robust_accuracy":
            t, s = arts["teacher"].adv, arts["student"].adv
            reps = paired_boot({"t": t, "s": s}, resampler.n_boot, resampler.seed)
            measured = paired_measurement(metric, float(t.mean()), float(s.mean()), reps["t"],
                                          reps["s"], confidence, method=method, n=m,
                                          params=scope, breakdown=rows, notes=tuple(notes),
                                          extra=_fooled(found, eps))
            if not same:  # different attacks: the difference would measure the attacks too
                why = (f"the teacher faced {attacks['teacher']} and the student "
                       f"{attacks['student']}, so their difference is not a regression of the "
                       "model; gate the student with min, or use attack: auto (the same attack "
                       "for both) for a regression")
                short = (f"no regression: the teacher faced {attacks['teacher']}, the student "
                         f"{attacks['student']}; use attack: auto for one")
                measured = dataclasses.replace(
                    measured, regression=None, relative_regression=None,
                    notes=(*measured.notes, why), extra={**measured.extra, "no_regression": short})
            out.append(measured)
        else:
            s, clean_s = found.transfer[eps]["adv"], found.transfer[eps]["clean"]
            moved = arts["teacher"].clean  # rows the teacher's attack perturbed
            reps_s = paired_boot({"s": s}, resampler.n_boot, resampler.seed)["s"]
            ci = percentile_interval(reps_s, confidence)
            rows.append({"kind": "robustness", "model": "student", "crafted_on": "teacher",
                         "attack": attacks["teacher"], "eps": eps, "norm": norm, "rows": m,
                         "clean_accuracy": float(clean_s.mean()),
                         "transfer_accuracy": float(s.mean()),
                         "success_rate": _rate(clean_s & moved, s)})
            notes[0] = (f"adversarial examples crafted on the teacher with {attacks['teacher']} "
                        f"(requested {requested}), eps {eps:g} ({norm}-norm), fed to the "
                        f"student, {m} rows")
            out.append(Measurement(metric.name, metric.direction,
                                   Estimate(float(s.mean()), None if ci is None else (ci.low, ci.high)),
                                   method=method.replace("paired bootstrap", "bootstrap"), n=m,
                                   params=scope, notes=tuple(notes), breakdown=tuple(rows),
                                   family=metric.family))
    return tuple(out)


def _fooled(found: Adversarial, eps: float, most: int = 3) -> dict[str, Any]:
    """For an image suite: the first attacked images that fooled the student, as thumbnails."""
    if not found.space or "student" not in found.outcomes[eps]:
        return {}
    from audit.thumbnails import data_uri

    a = found.outcomes[eps]["student"]
    rows = np.flatnonzero(a.clean & ~a.adv)[:most]
    where = (lambda i: f"eval row {found.positions[i] + 1}") if found.positions else (
        lambda i: f"sampled row {i + 1}")
    return {"examples": [{"image": data_uri(np.asarray(a.x[i])),
                          "caption": f"{where(i)}: the student, right on the clean image, is "
                                     f"wrong on this one (eps {eps:g})"}
                         for i in rows]} if len(rows) else {}


def _rate(originally: np.ndarray, still: np.ndarray) -> float | None:
    """Share of originally-correct rows whose prediction flipped."""
    n = int(originally.sum())
    return None if n == 0 else float((originally & ~still).sum() / n)


def _request(name: str, params: Mapping[str, Any]) -> ArtifactRequest:
    """The adversarial examples a check asks for, its parameters resolved (defaults applied)."""
    requested = str(params.get("attack", "auto"))
    if requested not in ATTACKS:
        raise DataError(f"{name}: attack {requested!r} is not a robustness attack; use "
                        f"{', '.join(ATTACKS[:-1])} or {ATTACKS[-1]}")
    transfer = name == "transfer_accuracy"
    return ArtifactRequest.of(
        "adversarial", metric=name, attack=requested,
        eps=tuple(float(e) for e in (params.get("eps") or DEFAULT_EPS)),
        norm=str(params.get("norm", "inf")), samples=int(params.get("samples", DEFAULT_SAMPLES)),
        max_seconds=float(params.get("max_seconds", DEFAULT_MAX_SECONDS)),
        roles=("teacher",) if transfer else ("teacher", "student"), transfer=transfer)


def _needs_robust(params: Mapping[str, Any]) -> tuple[ArtifactRequest, ...]:
    return (_request("robust_accuracy", params),)


def _needs_transfer(params: Mapping[str, Any]) -> tuple[ArtifactRequest, ...]:
    return (_request("transfer_accuracy", params),)


def _row(who: str, attack: str, eps: float, norm: str, a: AttackOutcome) -> dict[str, Any]:
    clean, adv = a.clean, a.adv
    return {"kind": "robustness", "model": who, "attack": attack, "eps": eps, "norm": norm,
            "rows": len(clean), "clean_accuracy": float(clean.mean()),
            "robust_accuracy": float(adv.mean()), "success_rate": _rate(clean, adv),
            "seconds": round(float(a.seconds), 3)}


ATTACKS = ("auto", "strongest", "fgsm", "pgd", "hopskipjump", "noise")
_PARAMS = {
    "attack": Param("str", "auto (PGD when both models give gradients, else HopSkipJump, the same "
                           "for both), strongest (each model's own strongest; no regression), "
                           "fgsm, pgd, hopskipjump or noise.", default="auto", choices=ATTACKS),
    "eps": Param("number_list", "Perturbation budgets (a robustness curve), in units of each "
                                "numeric column's observed range (image suites: pixel units of "
                                "[0, 1]).", default=DEFAULT_EPS,
                 exclusive_minimum=0),
    "norm": Param("str", "Norm of the perturbation.", default="inf", choices=("inf", "2")),
    "samples": Param("int", "Eval rows attacked, drawn with the suite's seed.", default=DEFAULT_SAMPLES,
                     minimum=10),
    "max_seconds": Param("number", "A safety stop on the black-box attack (HopSkipJump).",
                         default=DEFAULT_MAX_SECONDS, exclusive_minimum=0),
}
register(Metric("robust_accuracy", "higher", "robustness", False, (0.0, 1.0),
                "Accuracy of each model on adversarial versions of the same samples eval rows, "
                "one measurement per eps; regression with a paired bootstrap over the attacked "
                "rows.",
                custom=_measure_robustness, params=_PARAMS, needs=_needs_robust,
                modalities=("tabular", "images")))
register(Metric("transfer_accuracy", "higher", "robustness", True, (0.0, 1.0),
                "The student's accuracy on adversarial examples crafted on the teacher (an "
                "attacker with the teacher needs no access to the student), per eps.",
                custom=_measure_robustness, params=_PARAMS, needs=_needs_transfer,
                modalities=("tabular", "images")))


# -- report section ----------------------------------------------------------------------
def _budget_curve(c: Any) -> tuple[Figure, ...]:
    """A check measured at several budgets (robust accuracy per eps) as one curve."""
    points = []
    for m in c.measurements:
        eps = m.params.get("eps")
        if not isinstance(eps, (int, float)):
            return ()

        def triple(e: Estimate | None) -> tuple[float, float | None, float | None] | None:
            if e is None:
                return None
            lo, hi = e.ci if e.ci is not None else (None, None)
            return (e.value, lo, hi)

        points.append({"x": float(eps), "teacher": triple(m.teacher), "student": triple(m.student)})
    if len(points) < 2:
        return ()
    metric = c.measurements[0].metric
    return (Figure("curve", f"{metric} by perturbation budget", tuple(points), x_label="epsilon",
                   y_label=metric),)


FAMILY = register_family(Family(
    "robustness", "Adversarial robustness", order=60, check_figures=_budget_curve,
    tables=lambda m: tuple(t for t in (Table.of_rows(
        m.breakdown, "robustness", "Attacks", ("model", "crafted_on", "attack", "eps", "norm",
                                               "rows", "clean_accuracy", "robust_accuracy",
                                               "transfer_accuracy", "success_rate", "seconds")),)
        if t is not None)))
