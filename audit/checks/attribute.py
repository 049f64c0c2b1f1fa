"""Attribute inference: can a model's outputs reveal a sensitive attribute?

An attacker knows some people's attribute (``colour``, say), the other features of everyone,
and can query the model. Does seeing the model's outputs let them infer the attribute of
the others better than the other features alone would? The audit runs the same attack on
both models, on the same rows (:mod:`audit.probes.attribute`):

* ``samples`` rows of ``rows`` (``train`` by default when the suite names it: the people the
  models learned from; else ``eval``) split in two disjoint halves with the suite's seed: the
  attack is fitted on the first and scored on the second.
* The attack is ART's ``AttributeInferenceBlackBox`` (``attack_model_type``, a random forest
  by default, seeded), fitted on the other features and the model's outputs. With
  ``outputs: probabilities`` (default, the stronger attacker an API that returns scores
  allows) the model's class probabilities are given to the attack as features; with
  ``outputs: labels`` only the predicted class is, as ART's attack does by itself.
* The reference is ART's ``AttributeInferenceBaseline`` (the same attack model type on the
  other features only, no model outputs), or guessing the most common value of the fit rows
  when that scores higher (ART's baseline, unscaled and reading one-hot outputs by argmax, can
  fall below it, which would credit the outputs with what any guess achieves). It is one
  reference for both models.

Metrics (lower = less leakage): ``attribute_inference_accuracy`` (the share of scored rows
whose attribute the attack infers) and ``attribute_inference_advantage`` (that accuracy minus
the reference's: what the model's outputs add). Intervals: a paired bootstrap over the scored
rows; the fitted attacks are held fixed, so the interval reflects which rows were scored, not
the randomness of fitting.

When the attribute is one of the models' inputs, the attack (which never sees it) measures
how much the outputs reveal about an input the model read (ART's model-inversion setting),
not a leak of an attribute the model was never given; the check says so.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import replace
from typing import Any

import numpy as np

from audit.checks.registry import Family, Metric, MetricInput, Param, register, register_family
from audit.errors import DataError
from audit.probes.artifacts import ArtifactRequest, AttributeSample
from audit.results import Figure, Measurement, Table

__all__ = ["ATTACK_MODELS", "blackbox_inference", "baseline_inference"]

ATTACK_MODELS = ("rf", "gb", "lr", "dt", "knn")  # ART's attack model types (nn needs torch)
OUTPUTS = ("probabilities", "labels")
DEFAULT_SAMPLES = 2000
DEFAULT_BINS = 4


# -- the attacks (ART, fed the predictions the run already has) ---------------------------
def _art() -> Any:
    from audit.extras import hiding_torch

    with hiding_torch():  # ART imports torch whenever it is installed; these attacks never use it
        from art.attacks.inference import attribute_inference
        from art.estimators.classification import BlackBoxClassifier
    return attribute_inference, BlackBoxClassifier


def _seeded(attack: Any, seed: int) -> None:
    model = attack.attack_model
    if model is not None and "random_state" in model.get_params():
        model.set_params(random_state=seed)


def _replaying(x: np.ndarray, P: np.ndarray) -> Callable[[np.ndarray], np.ndarray]:
    """A predict function that hands back ``P`` for the rows of ``x``, in the order ART asks
    for them (in batches, once): the attack sees the run's predictions, the model is not
    called again."""
    cursor = [0]

    def predict(batch: np.ndarray) -> np.ndarray:
        start, stop = cursor[0], cursor[0] + len(batch)
        if stop > len(x) or not np.array_equal(batch, x[start:stop].astype(batch.dtype),
                                                     equal_nan=True):
            raise AssertionError("the attribute attack asked for predictions of rows it was not "
                                 "given")
        cursor[0] = stop % len(x)
        return P[start:stop]

    return predict


def blackbox_inference(x: np.ndarray, codes: np.ndarray, P: np.ndarray, fit: np.ndarray,
                       test: np.ndarray, *, attack_model: str, outputs: str, seed: int
                       ) -> np.ndarray:
    """ART's ``AttributeInferenceBlackBox`` fitted on rows ``fit`` (the other features ``x``,
    the attribute's ``codes`` and the model's probabilities ``P``) and inferring the codes of
    rows ``test``. ``outputs="probabilities"`` gives the attack ``P`` as features as well as
    the predicted class ART gives it; ``"labels"`` gives it the predicted class only."""
    attribute_inference, BlackBoxClassifier = _art()
    known = np.c_[x, P] if outputs == "probabilities" else x
    full = np.c_[known, codes.astype(float)]
    clf = BlackBoxClassifier(_replaying(full[fit], P[fit]), input_shape=(full.shape[1],),
                             nb_classes=P.shape[1])
    attack = attribute_inference.AttributeInferenceBlackBox(
        clf, attack_model_type=attack_model, attack_feature=full.shape[1] - 1)
    _seeded(attack, seed)
    attack.fit(full[fit])
    pred = P[test].argmax(axis=1).reshape(-1, 1).astype(float)
    inferred = attack.infer(known[test], pred=pred)
    return np.asarray(inferred, float).reshape(-1)


def baseline_inference(x: np.ndarray, codes: np.ndarray, fit: np.ndarray, test: np.ndarray, *,
                       attack_model: str, seed: int) -> np.ndarray:
    """ART's ``AttributeInferenceBaseline``: the same attack model on the other features
    only (no model outputs), fitted on rows ``fit``, inferring the codes of rows ``test``."""
    attribute_inference, _ = _art()
    full = np.c_[x, codes.astype(float)]
    attack = attribute_inference.AttributeInferenceBaseline(
        attack_model_type=attack_model, attack_feature=full.shape[1] - 1)
    _seeded(attack, seed)
    attack.fit(full[fit])
    inferred = attack.infer(x[test])
    return np.asarray(inferred, float).reshape(-1)


def _run(sample: AttributeSample, attack_model: str, outputs: str, seed: int) -> dict[str, Any]:
    truth = sample.codes[sample.test]
    base = baseline_inference(sample.x, sample.codes, sample.fit, sample.test,
                              attack_model=attack_model, seed=seed) == truth
    # an attacker who knows nothing but the fit rows guesses their most common value
    common = int(np.bincount(sample.codes[sample.fit]).argmax())
    majority = truth == common
    hits = {who: blackbox_inference(sample.x, sample.codes, P, sample.fit, sample.test,
                                    attack_model=attack_model, outputs=outputs, seed=seed) == truth
            for who, P in sample.probs.items()}
    return {"baseline": base, "majority": majority, "common": sample.values[common],
            "hits": hits, "truth": truth}


# -- the metrics ---------------------------------------------------------------------------
def _measure(metric: Metric, params: Mapping[str, Any], inputs: MetricInput, resampler: Any,
             confidence: float) -> tuple[Measurement, ...]:
    from audit.checks.measure import paired_measurement
    from audit.checks.robustness import paired_boot

    sample: AttributeSample | None = inputs.artifacts.get("attribute")
    if sample is None:
        raise DataError(f"{metric.name} reads a table and both models' outputs; run it through "
                        "a suite")
    attack_model = str(params.get("attack_model", "rf"))
    outputs = str(params.get("outputs", "probabilities"))
    # the artifact is this check's own sample (one per request, memoised by the probes)
    result = resampler.memo(("attribute", id(sample), attack_model, outputs),
                            lambda: _run(sample, attack_model, outputs, resampler.seed))
    base, hits, truth = result["baseline"], result["hits"], result["truth"]
    majority = result["majority"]
    # the reference is the better of ART's baseline and the majority guess: ART's baseline (a
    # model of the other features, unscaled, argmax of one-hot outputs) can score below
    # guessing the most common value, which would credit the outputs with what any guess gets
    reference = base if base.mean() >= majority.mean() else majority
    reps = paired_boot({"t": hits["teacher"], "s": hits["student"], "b": reference},
                       resampler.n_boot, resampler.seed)
    acc = {who: float(h.mean()) for who, h in hits.items()}
    floor = float(reference.mean())
    if metric.name == "attribute_inference_advantage":
        t, s = acc["teacher"] - floor, acc["student"] - floor
        rep_t, rep_s = reps["t"] - reps["b"], reps["s"] - reps["b"]
    else:
        t, s, rep_t, rep_s = acc["teacher"], acc["student"], reps["t"], reps["s"]
    attr, role = sample.attribute, sample.table
    shown = "class probabilities" if outputs == "probabilities" else "predicted class"
    how = (f"ART AttributeInferenceBlackBox (attack_model_type={attack_model!r}, seeded) on the "
           f"other {len(sample.columns)} feature column(s) and each model's {shown}, against "
           f"ART AttributeInferenceBaseline (the same attack model, no model outputs); fitted on "
           f"{len(sample.fit)} rows of data.{role} whose {attr} the attacker knows, scored on "
           f"{len(truth)} other rows")
    notes = list(sample.notes)
    if sample.is_input:
        notes.append(f"{attr} is one of the models' inputs: the attack, which never sees it, "
                     "infers it from the other inputs and the outputs, so this measures how much "
                     f"the outputs reveal about an input the models read (model inversion), not "
                     f"a leak of an attribute they were never given")
    art_floor, guess = float(base.mean()), float(majority.mean())
    which = ("ART's AttributeInferenceBaseline" if reference is base else
             f"guessing the fit rows' most common value ({result['common']!r})")
    notes.append(f"the reference is {which}: {floor:.3f} of the scored rows (ART's baseline "
                 f"{art_floor:.3f}, the majority guess {guess:.3f}); the advantage is the "
                 "attack's accuracy above it")
    breakdown: list[dict[str, Any]] = [
        {"kind": "attack", "attribute": attr, "rows": role, "how": how,
         "fitted_on": len(sample.fit), "scored_on": len(truth), "values": len(sample.values),
         "model_input": sample.is_input, "baseline_accuracy": art_floor,
         "majority_accuracy": guess, "reference_accuracy": floor}]
    for who in ("teacher", "student"):
        breakdown.append({"kind": "inference", "model": who, "accuracy": acc[who],
                          "reference_accuracy": floor, "advantage": acc[who] - floor})
    for code, value in enumerate(sample.values):
        rows = truth == code
        if rows.any():
            breakdown.append({"kind": "by_value", "value": value, "n": int(rows.sum()),
                              "baseline": float(base[rows].mean()),
                              **{who: float(h[rows].mean()) for who, h in hits.items()}})
    method = (f"{how}; paired bootstrap over the scored rows (attacks held fixed), "
              f"{resampler.n_boot} replicates")
    m = paired_measurement(metric, t, s, rep_t, rep_s, confidence, method=method, n=len(truth),
                           params={"attribute": attr, "rows": role,
                                   "attack_model": attack_model, "outputs": outputs},
                           breakdown=breakdown, notes=tuple(notes))
    if metric.name == "attribute_inference_advantage":  # a fraction of an advantage near 0
        m = replace(m, relative_regression=None)     # means nothing
    return (m,)


def _request(params: Mapping[str, Any]) -> ArtifactRequest:
    if "attribute" not in params:
        raise DataError("attribute inference needs attribute: the column the attacker infers "
                        "(a data.sensitive column)")
    return ArtifactRequest.of("attribute", attribute=str(params["attribute"]),
                              rows=params.get("rows"),
                              samples=int(params.get("samples", DEFAULT_SAMPLES)),
                              bins=int(params.get("bins", DEFAULT_BINS)))


def _tables_read(params: Mapping[str, Any]) -> tuple[tuple[str, str], ...]:
    rows = params.get("rows")
    return ((str(rows), "rows"),) if rows and rows != "eval" else ()


_PARAMS = {
    "attribute": Param("str", "The column the attacker infers: a data.sensitive column (or a "
                              "feature, which the check then says it measures differently)."),
    "rows": Param("str", "The rows attacked: train (default when the suite names it: the people "
                         "the models learned from), eval, holdout or teacher_train.",
                  choices=("train", "eval", "holdout", "teacher_train")),
    "samples": Param("int", "Rows drawn (half fit the attack, half score it).",
                     default=DEFAULT_SAMPLES, minimum=10),
    "bins": Param("int", "Quantile bins of a numeric attribute with more distinct values.",
                  default=DEFAULT_BINS, minimum=2),
    "attack_model": Param("str", "ART's attack model: rf (random forest), gb, lr, dt or knn.",
                          default="rf", choices=ATTACK_MODELS),
    "outputs": Param("str", "What the attacker sees of each model: probabilities or labels "
                            "(the predicted class only).", default="probabilities",
                     choices=OUTPUTS),
}
for _name, _bounds, _doc in (
    ("attribute_inference_advantage", (-1.0, 1.0),
     "How much better an attacker infers a sensitive attribute with the model's outputs than "
     "without (ART black-box attack minus ART baseline accuracy); 0 = the outputs add nothing."),
    ("attribute_inference_accuracy", (0.0, 1.0),
     "Share of rows whose sensitive attribute ART's black-box attack infers from the other "
     "features and the model's outputs."),
):
    register(Metric(_name, "lower", "attribute", False, _bounds, _doc, custom=_measure,
                    params=_PARAMS, tables=_tables_read,
                    needs=lambda params: (_request(params),), modalities=("tabular",)))


# -- report section ----------------------------------------------------------------------
def _by_value(m: Measurement) -> tuple[Figure, ...]:
    rows = [r for r in m.breakdown if r.get("kind") == "by_value"]
    if not rows:
        return ()
    bars = tuple({"group": r["value"], "n": r["n"], "included": True,
                  "teacher": {"value": r["teacher"]}, "student": {"value": r["student"]}}
                 for r in rows)
    attr = m.params.get("attribute", "")
    return (Figure("bars", f"Rows whose {attr} the attack infers, by true value", bars,
                   value="value"),)


FAMILY = register_family(Family(
    "attribute", "Attribute inference", order=71, figures=_by_value,
    tables=lambda m: tuple(t for t in (
        Table.of_rows(m.breakdown, "attack", "Attack", ("attribute", "rows", "how", "fitted_on",
                                                        "scored_on", "values", "model_input")),
        Table.of_rows(m.breakdown, "inference", "Accuracy of the attack",
                      ("model", "accuracy", "reference_accuracy", "advantage")),
        Table.of_rows(m.breakdown, "by_value", "By true value",
                      ("value", "n", "baseline", "teacher", "student"))) if t is not None)))
