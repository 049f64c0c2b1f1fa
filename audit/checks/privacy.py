"""Privacy: membership inference against the teacher and the student.

Can an attacker who sees a model's outputs tell whether a row was in its training set? The
audit runs the same attack on both models, on the same rows:

* **members** are rows of ``data.train`` (the data the student, and usually the teacher, was
  trained on); **non-members** are held-out rows (eval, or ``data.holdout``; see below).
  ``samples`` of each (default ``min(len(members), len(non-members), 500)``), drawn with the
  suite's seed, so the problem is balanced.
* ``attack: loss_threshold`` (default): the score of a row is the probability the model gives
  its true label (minus the loss, up to a monotone map). No training: the ROC is computed on all
  sampled rows.
* ``attack: blackbox``: ART's ``MembershipInferenceBlackBox`` (a random forest on the model's
  probabilities and the one-hot label, ``attack_model_type="rf"``, seeded) is fitted on half the
  members and half the non-members, from predictions computed once, and scores the other,
  disjoint halves with ``infer(None, y, pred=P, probabilities=True)``.
* ``attack: label_only``: the gap attack (ART's ``LabelOnlyGapAttack``): a row is called a
  member when the model classifies it correctly. It needs only labels; its ROC has one point.
* ``attack: decision_boundary``: label-only too, but graded: the score is the row's distance to
  the model's decision boundary, measured with HopSkipJump as ART's
  ``LabelOnlyDecisionBoundary`` does (:mod:`audit.probes.boundary`). It queries the live model
  hundreds of times per row, so it runs on fewer rows (``samples`` default 50 of each), all of
  them scored; a wall-clock cap (``max_seconds``, default 30) is a safety stop that makes the
  check an error, never a smaller sample.

Members come from ``data.train`` (``members: train``, default) or ``data.teacher_train``
(``members: teacher_train``: does the student leak the rows its teacher was trained on?);
non-members from ``data.holdout`` when the suite names it, else the eval rows
(``non_members: eval | holdout``).

A language-model suite's members and non-members are documents (``data.train``,
``data.teacher_train``; non-members ``data.holdout``, else ``data.documents``), each model's
every token scored once (:mod:`audit.probes.tokens`), and the attacks are the published
scores of a document's membership (higher = more likely a member), ``fraction`` (default 0.2)
for the min-k attacks:

* ``attack: loss`` (default; Yeom et al. 2018): minus the mean negative log-likelihood per token;
* ``attack: zlib`` (Carlini et al. 2021): minus the summed NLL divided by the document's
  zlib-compressed size in bytes (text that is easy to compress is easy to predict);
* ``attack: min_k`` (Min-K% Prob, Shi et al. 2024): the mean log-probability of the
  ``max(1, floor(fraction * n))`` least likely of the document's ``n`` tokens;
* ``attack: min_k_plus`` (Min-K%++, Zhang et al. 2025): the same over each token's
  ``(log p - mu) / sigma``, ``mu`` and ``sigma`` the mean and standard deviation of ``log p``
  under the model's own next-token distribution at that position;
* ``attack: reference`` (Carlini et al. 2022): the teacher as the reference model: the student's
  score is the teacher's mean NLL minus the student's, what the student knows of a document
  beyond what its teacher does. It has one value, the student's: gate it with ``max``.

Metrics (direction lower = less leakage; per model, the regression is student minus teacher):
``mia_auc`` (ROC AUC, members positive), ``mia_advantage`` (max over thresholds of TPR - FPR)
and ``mia_tpr_at_fpr`` (TPR at 1% FPR; 0.1% is in the breakdown). With ``m`` non-members the
smallest non-zero FPR is ``1/m``: below that level the number is the TPR at FPR 0.

Intervals: a paired, stratified bootstrap over the scored rows: each replicate resamples
members among members and non-members among non-members, and the same resampled rows score
teacher and student. For ``blackbox`` the fitted attack is held fixed: the interval reflects
which rows were scored, not the randomness of fitting the attack.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import replace
from typing import Any

import numpy as np

from audit.checks.perturbation import column_listing
from audit.checks.registry import Family, Metric, MetricInput, Param, register, register_family
from audit.checks.roc import (
    FPR_LEVELS,
    resampled_roc_stats,
    roc_points,
    roc_stats,
    stratified_counts,
)
from audit.errors import DataError
from audit.probes.artifacts import ArtifactRequest, DocumentMembership, MembershipSample
from audit.results import Figure, Measurement, Table
from audit.stats import z_value

__all__ = ["ATTACKS", "CLASSIFIER_ATTACKS", "DOCUMENT_ATTACKS", "DEFAULT_SAMPLES",
           "document_scores"]

CLASSIFIER_ATTACKS = ("loss_threshold", "blackbox", "label_only", "decision_boundary")
DOCUMENT_ATTACKS = ("loss", "zlib", "min_k", "min_k_plus", "reference")  # a language model's
ATTACKS = CLASSIFIER_ATTACKS + DOCUMENT_ATTACKS
DEFAULT_ATTACK = "loss_threshold"
DEFAULT_DOCUMENT_ATTACK = "loss"
DEFAULT_FRACTION = 0.2  # of a document's tokens, the least likely, for min_k and min_k_plus
DEFAULT_SAMPLES = 500
BOUNDARY_SAMPLES = 50  # members and non-members each: HopSkipJump costs a query budget per row
DEFAULT_MAX_SECONDS = 30.0  # the decision-boundary attack's safety stop


# -- the attack --------------------------------------------------------------------------
def _true_class_probability(P: np.ndarray, y: np.ndarray) -> np.ndarray:
    return P[np.arange(len(y)), y]


def _blackbox_scores(P_in: np.ndarray, y_in: np.ndarray, P_out: np.ndarray, y_out: np.ndarray,
                     fit_in: np.ndarray, fit_out: np.ndarray, score_in: np.ndarray,
                     score_out: np.ndarray, k: int, seed: int) -> np.ndarray:
    """ART's black-box attack (random forest), fitted on ``fit_*`` rows and scoring ``score_*``
    rows (members first); the model is never called: its predictions are passed in."""
    from audit.extras import hiding_torch

    with hiding_torch():  # ART imports torch whenever it is installed; this attack never uses it
        from art.attacks.inference.membership_inference import MembershipInferenceBlackBox
        from art.estimators.classification import BlackBoxClassifier

    def never(x: np.ndarray) -> np.ndarray:  # the attack only reads precomputed predictions
        raise AssertionError("the black-box attack must not call the model")

    clf = BlackBoxClassifier(never, input_shape=(1,), nb_classes=k)
    attack = MembershipInferenceBlackBox(clf, input_type="prediction", attack_model_type="rf")
    attack.attack_model.set_params(random_state=seed)
    attack.fit(y=y_in[fit_in], pred=P_in[fit_in], test_y=y_out[fit_out], test_pred=P_out[fit_out])
    y = np.r_[y_in[score_in], y_out[score_out]]
    P = np.vstack([P_in[score_in], P_out[score_out]])
    return np.asarray(attack.infer(None, y, pred=P, probabilities=True), dtype=float).reshape(-1)


def _halves(n: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    perm = rng.permutation(n)
    return np.sort(perm[: n // 2]), np.sort(perm[n // 2:])


def _scores(sample: MembershipSample, attack: str, k: int, seed: int) -> dict[str, Any]:
    """Score the sampled members and non-members for both models with ``attack``."""
    m, members, non_members = sample.m, sample.members, sample.non_members
    y_in, y_out, probs = sample.y_in, sample.y_out, sample.probs
    notes = list(sample.notes)
    rng = np.random.default_rng()
    rng.bit_generator.state = dict(sample.rng_state)  # where the sampling left the seeded draws
    if attack == "blackbox":
        fit_in, score_in = _halves(m, rng)
        fit_out, score_out = _halves(m, rng)
        labels = np.r_[np.ones(len(score_in)), np.zeros(len(score_out))]
        scores = {who: _blackbox_scores(P_in, y_in, P_out, y_out, fit_in, fit_out, score_in,
                                        score_out, k, seed)
                  for who, (P_in, P_out) in probs.items()}
        how = (f"ART MembershipInferenceBlackBox (attack_model_type='rf', random_state={seed}) "
               f"fitted on {len(fit_in)} members and {len(fit_out)} non-members, scored on the "
               f"other {len(score_in)} and {len(score_out)}")
    elif attack == "decision_boundary":
        assert sample.boundary is not None
        found = sample.boundary.found
        labels = np.r_[np.ones(m), np.zeros(m)]
        scores = {who: found[who]["distance"] for who in ("teacher", "student")}
        hsj = ", ".join(f"{key} {v}" for key, v in sample.boundary.hsj.items())
        moved = column_listing(sample.boundary.columns, most=6)
        how = (f"label-only decision boundary (as ART's LabelOnlyDecisionBoundary): score = L2 "
               f"distance from the row to HopSkipJump's adversarial example (norm 2, {hsj}) in "
               f"the scaled numeric columns ({moved}), 0 when the model "
               f"misclassifies the row; {m} members and {m} non-members")
        for who in ("teacher", "student"):
            unstarted = int(found[who]["no_start"].sum())
            if unstarted:
                notes.append(f"hopskipjump found no point of another class for {unstarted} of "
                             f"the {who}'s {len(labels)} scored row(s): their distance is the "
                             "box's diagonal, an upper bound")
    else:
        labels = np.r_[np.ones(m), np.zeros(m)]
        scores = {}
        for who, (P_in, P_out) in probs.items():
            if attack == "loss_threshold":
                scores[who] = np.r_[_true_class_probability(P_in, y_in),
                                    _true_class_probability(P_out, y_out)]
            else:  # label_only: the gap attack, correct = member
                scores[who] = np.r_[P_in.argmax(axis=1) == y_in,
                                    P_out.argmax(axis=1) == y_out].astype(float)
        how = ("loss threshold: score = the model's probability of the true label"
               if attack == "loss_threshold" else
               "label-only gap attack: a correctly classified row is called a member")
        how += f", on all {m} members and {m} non-members"
    how += f" (members: rows of data.{members}; non-members: rows of data.{non_members})"
    accuracy = {who: {"members": float(np.mean(P_in.argmax(axis=1) == y_in)),
                      "non_members": float(np.mean(P_out.argmax(axis=1) == y_out))}
                for who, (P_in, P_out) in probs.items()}
    return {"labels": labels, "scores": scores, "how": how, "notes": notes, "m": m,
            "accuracy": accuracy, "members": members, "non_members": non_members}


def _lowest_mean(values: np.ndarray, fraction: float) -> float:
    n = max(1, math.floor(fraction * len(values)))
    return float(np.mean(np.sort(values)[:n]))


def document_scores(scores: Any, attack: str, fraction: float = DEFAULT_FRACTION,
                    reference: Any = None) -> np.ndarray:
    """Each document's membership score under ``attack`` (higher = more likely a member),
    from a model's :class:`~audit.probes.artifacts.TokenScores` (and the reference model's,
    for ``reference``)."""
    per_token = scores.nll / scores.tokens
    if attack == "loss":
        return -per_token
    if attack == "zlib":
        return -scores.nll / scores.zlib
    if attack == "reference":
        assert reference is not None
        return reference.nll / reference.tokens - per_token
    out = np.empty(scores.n)
    for i in range(scores.n):
        logp = scores.document(i, scores.logp)
        if attack == "min_k_plus":
            sigma = scores.document(i, scores.sigma)
            logp = (logp - scores.document(i, scores.mu)) / np.where(sigma > 0, sigma, np.inf)
        out[i] = _lowest_mean(logp, fraction)
    return out


_DOCUMENT_HOW = {
    "loss": "loss: score = minus the mean negative log-likelihood per token",
    "zlib": "zlib: score = minus the summed NLL over the document's zlib-compressed bytes",
    "min_k": "Min-K% Prob: score = the mean log-probability of the {pct} least likely tokens",
    "min_k_plus": "Min-K%++: score = the mean of the {pct} lowest (log p - mu) / sigma",
    "reference": "reference (the teacher): score = the teacher's mean NLL per token minus the "
                 "student's"}


def _document_attack(sample: DocumentMembership, attack: str, fraction: float) -> dict[str, Any]:
    """Score the sampled member and non-member documents of both models with ``attack``."""
    m = sample.m
    labels = np.r_[np.ones(m), np.zeros(m)]
    who_scored = ("student",) if attack == "reference" else ("teacher", "student")
    scores = {}
    for who in who_scored:
        sides = sample.scores[who]
        ref = sample.scores["teacher"] if attack == "reference" else (None, None)
        scores[who] = np.r_[document_scores(sides[0], attack, fraction, ref[0]),
                            document_scores(sides[1], attack, fraction, ref[1])]
    how = _DOCUMENT_HOW[attack].format(pct=f"{fraction:.0%}")
    how += f", on {m} member and {m} non-member documents"
    loss = {who: {side: float(s.nll.sum() / s.tokens.sum())
                  for side, s in zip(("members", "non_members"), sides, strict=True)}
            for who, sides in sample.scores.items()}
    return {"labels": labels, "scores": scores, "how": how, "notes": list(sample.notes), "m": m,
            "loss": loss, "members": sample.members, "non_members": sample.non_members}


def _replicates(result: dict[str, Any], n_boot: int, seed: int) -> dict[str, dict[str, np.ndarray]]:
    """Stratified paired bootstrap: the same resampled rows for teacher and student."""
    counts = stratified_counts(result["labels"], n_boot, np.random.default_rng([seed, 1]))
    return {who: resampled_roc_stats(s, result["labels"], counts)
            for who, s in result["scores"].items()}


def _run(sample: Any, attack: str, k: int, fraction: float, resampler: Any) -> dict[str, Any]:
    result = (_document_attack(sample, attack, fraction) if isinstance(sample, DocumentMembership)
              else _scores(sample, attack, k, resampler.seed))
    labels = result["labels"]
    result["points"] = {who: roc_stats(s, labels) for who, s in result["scores"].items()}
    result["replicates"] = _replicates(result, resampler.n_boot, resampler.seed)
    result["roc"] = {who: roc_points(s, labels) for who, s in result["scores"].items()}
    return result


def _measure_privacy(metric: Metric, params: Mapping[str, Any], inputs: MetricInput,
                     resampler: Any, confidence: float) -> tuple[Any, ...]:
    from audit.checks.measure import paired_measurement

    sample: MembershipSample | DocumentMembership | None = inputs.artifacts.get("membership")
    if sample is None:
        raise DataError(f"{metric.name} reads the training table and the models; run it through "
                        "a suite")
    request = _request(metric.name, params)
    documents = isinstance(sample, DocumentMembership)
    attack = request.get("attack") or (DEFAULT_DOCUMENT_ATTACK if documents else DEFAULT_ATTACK)
    if (attack in DOCUMENT_ATTACKS) != documents:
        raise DataError(f"{metric.name}: attack {attack} scores "
                        f"{'documents' if attack in DOCUMENT_ATTACKS else 'table rows'}, but this "
                        f"suite's members are {'documents' if documents else 'rows'}; use one of "
                        f"{', '.join(DOCUMENT_ATTACKS if documents else CLASSIFIER_ATTACKS)}")
    samples = request.get("samples")
    fraction = float(params.get("fraction", DEFAULT_FRACTION))
    members, non_members = sample.members, sample.non_members
    max_seconds = request.get("max_seconds")
    result = resampler.memo(("privacy", attack, samples, members, non_members, max_seconds,
                             fraction),
                            lambda: _run(sample, attack, inputs.k, fraction, resampler))
    key = {"mia_auc": "auc", "mia_advantage": "advantage",
           "mia_tpr_at_fpr": f"tpr@{FPR_LEVELS[0]:g}"}[metric.name]
    labels = result["labels"]
    n_in, n_out = int(labels.sum()), int((1 - labels).sum())
    floor = 1.0 / n_out
    notes = list(result["notes"])
    if metric.name == "mia_tpr_at_fpr":
        notes.append(f"with {n_out} scored non-members the smallest non-zero FPR is 1/{n_out} = "
                     f"{floor:.2g}" + ("; below it the TPR reported is the TPR at FPR 0"
                                       if min(FPR_LEVELS) < floor else ""))
    if "max_seconds" in params and attack != "decision_boundary":
        notes.append(f"max_seconds {max_seconds:g} did not apply: only the decision_boundary "
                     f"attack is capped, and {attack} makes no model calls of its own")
    if attack == "label_only":
        notes.append("the label-only gap attack has a single ROC point: AUC = (1 + advantage) / 2")
    breakdown: list[dict[str, Any]] = [{"kind": "attack", "attack": attack, "how": result["how"],
                                        "members": n_in, "non_members": n_out,
                                        "member_table": members, "non_member_table": non_members,
                                        "sampled_each": result["m"], "fpr_floor": floor}]
    if "fraction" in params and attack not in ("min_k", "min_k_plus"):
        notes.append(f"fraction {fraction:g} did not apply: only min_k and min_k_plus read it")
    for who in result["scores"]:
        fpr, tpr = result["roc"][who]
        point = result["points"][who]
        breakdown.append({"kind": "roc", "model": who, "fpr": fpr, "tpr": tpr,
                          "auc": float(point["auc"])})
        for level in FPR_LEVELS:
            breakdown.append({"kind": "tpr_at_fpr", "model": who, "fpr": level,
                              "tpr": float(point[f"tpr@{level:g}"]),
                              "below_floor": bool(level < floor)})
    for who in ("teacher", "student"):
        if documents:
            loss = result["loss"][who]
            breakdown.append({"kind": "generalisation_loss", "model": who,
                              "nll_members": loss["members"],
                              "nll_non_members": loss["non_members"],
                              "gap": loss["non_members"] - loss["members"]})
            continue
        acc = result["accuracy"][who]
        breakdown.append({"kind": "generalisation", "model": who,
                          "accuracy_members": acc["members"],
                          "accuracy_non_members": acc["non_members"],
                          "gap": acc["members"] - acc["non_members"]})
    reps = result["replicates"]
    rows = "documents" if documents else "rows"
    method = (f"{result['how']}; stratified paired bootstrap over the scored {rows}, "
              f"{resampler.n_boot} replicates")
    shown = {"attack": attack, "samples": result["m"], "members": members,
             "non_members": non_members}
    if attack in ("min_k", "min_k_plus"):
        shown["fraction"] = fraction
    if attack == "reference":  # the student's score, calibrated by its teacher: one value
        from audit.checks.measure import pair_measurement

        return (pair_measurement(metric, float(result["points"]["student"][key]),
                                 reps["student"][key], confidence,
                                 method=method.replace("paired bootstrap", "bootstrap"),
                                 n=n_in + n_out, params=shown, breakdown=breakdown,
                                 notes=tuple(notes)),)
    m = paired_measurement(metric, float(result["points"]["teacher"][key]),
                           float(result["points"]["student"][key]), reps["teacher"][key],
                           reps["student"][key], confidence, method=method, n=n_in + n_out,
                           params=shown, breakdown=breakdown, notes=tuple(notes))
    if metric.name == "mia_auc" and m.teacher is not None and n_in and n_out:
        # the teacher's AUC against 0.5 by the Mann-Whitney null spread: a function of the
        # point value and the counts only, so the note never depends on the resampling
        z = (m.teacher.value - 0.5) / math.sqrt((n_in + n_out + 1) / (12.0 * n_in * n_out))
        if z > z_value(confidence):
            m = replace(m, notes=(*m.notes, (
                f"the teacher leaks too: its mia_auc {m.teacher.value:.3g} is above 0.5 beyond "
                f"chance (Mann-Whitney z = {z:.1f} on {n_in} members and {n_out} non-members); a "
                "regression gate only says the student leaks no more than a leaking teacher, so "
                "bound the student's own value (max) as well")))
    return (m,)


def _needs_for(name: str) -> Callable[[Mapping[str, Any]], tuple[ArtifactRequest, ...]]:
    def needs(params: Mapping[str, Any]) -> tuple[ArtifactRequest, ...]:
        return (_request(name, params),)

    return needs


def _request(name: str, params: Mapping[str, Any]) -> ArtifactRequest:
    """The sampled members and non-members (with their boundary distances for
    ``decision_boundary``), shaped by the attack, samples, tables and cap."""
    attack = params.get("attack")
    if attack is not None and attack not in ATTACKS:
        raise DataError(f"{name} runs a membership-inference attack; attack={attack!r} is "
                        f"a robustness attack (use one of {', '.join(ATTACKS)})")
    return ArtifactRequest.of(
        "membership", attack=attack, samples=params.get("samples"),
        default_samples=BOUNDARY_SAMPLES if attack == "decision_boundary" else DEFAULT_SAMPLES,
        members=params.get("members"), non_members=params.get("non_members"),
        max_seconds=float(params.get("max_seconds", DEFAULT_MAX_SECONDS)))


def _tables_read(params: Mapping[str, Any]) -> tuple[tuple[str, str], ...]:
    """The members' table (and the non-members' when named; eval is always there)."""
    members = (str(params.get("members", "train")), "members" if "members" in params else "metric")
    if "non_members" in params and params["non_members"] != "eval":
        return members, (str(params["non_members"]), "non_members")
    return (members,)


_PARAMS = {
    "attack": Param("str", "The membership-inference attack: loss_threshold, blackbox, label_only "
                           "or decision_boundary; on a language model's documents loss "
                           "(default), zlib, min_k, min_k_plus or reference.",
                    default=DEFAULT_ATTACK, choices=ATTACKS,
                    modality_choices=(("tabular", CLASSIFIER_ATTACKS),
                                      ("text", CLASSIFIER_ATTACKS),
                                      ("images", CLASSIFIER_ATTACKS),
                                      ("choices", DOCUMENT_ATTACKS))),
    "fraction": Param("number", "min_k and min_k_plus: the share of a document's tokens, the "
                                "least likely, whose scores are averaged.",
                      default=DEFAULT_FRACTION, exclusive_minimum=0, maximum=1),
    "samples": Param("int", "Members and non-members each (default min(members, non-members, "
                            f"{DEFAULT_SAMPLES}); {BOUNDARY_SAMPLES} for decision_boundary).",
                     minimum=10),
    "members": Param("str", "The members' table: train, or teacher_train (does the student leak "
                            "the teacher's training rows?).", default="train",
                     choices=("train", "teacher_train")),
    "non_members": Param("str", "The non-members' table: eval or holdout (default: holdout when "
                                "the suite names one, else eval; for a language model holdout, "
                                "else documents).", choices=("eval", "holdout", "documents")),
    "max_seconds": Param("number", "A safety stop on the decision-boundary attack.",
                         default=DEFAULT_MAX_SECONDS, exclusive_minimum=0),
}
for _name, _doc in (
    ("mia_auc", "ROC AUC of a membership-inference attack (members positive); 0.5 = the attack "
                "cannot tell."),
    ("mia_advantage", "Membership-inference advantage: max over thresholds of TPR − FPR."),
    ("mia_tpr_at_fpr", "Membership-inference TPR at 1% FPR (0.1% is in the report)."),
):
    register(Metric(_name, "lower", "privacy", False, (0.0, 1.0), _doc, custom=_measure_privacy,
                    params=_PARAMS, tables=_tables_read, needs=_needs_for(_name)))


# -- report section ----------------------------------------------------------------------
def _roc_figures(m: Measurement) -> tuple[Figure, ...]:
    rows = tuple(r for r in m.breakdown if r.get("kind") == "roc")
    return (Figure("roc", f"Membership ROC: {m.metric}", rows),) if rows else ()


def _privacy_tables(m: Measurement) -> tuple[Table, ...]:
    tables = (
        Table.of_rows(m.breakdown, "attack", "Membership attack",
                      ("attack", "how", "member_table", "members", "non_member_table",
                       "non_members", "fpr_floor")),
        Table.of_rows(m.breakdown, "tpr_at_fpr", "True-positive rate at low false-positive rates",
                      ("model", "fpr", "tpr", "below_floor")),
        Table.of_rows(m.breakdown, "generalisation", "Accuracy on members and non-members",
                      ("model", "accuracy_members", "accuracy_non_members", "gap")),
        Table.of_rows(m.breakdown, "generalisation_loss",
                      "Loss per token on members and non-members",
                      ("model", "nll_members", "nll_non_members", "gap")))
    return tuple(t for t in tables if t is not None)


FAMILY = register_family(Family("privacy", "Membership inference", order=70,
                                figures=_roc_figures,
                                tables=_privacy_tables))
