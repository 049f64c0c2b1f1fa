"""Where each check family's evidence bears on the texts reviewers cite: data, not prose.

For every check family, the clauses of the EU AI Act (Regulation (EU) 2024/1689: Art. 15 on
accuracy, robustness and cybersecurity, Art. 10 on data and data governance, the technical
documentation of Annex IV) and the subcategories of the NIST AI Risk Management Framework
(AI 100-1, MEASURE 2.x) that its results are evidence for, with what the audit provides and
what it does not. The HTML report shows the rows of the families a report has, in its
provenance section.

The audit is evidence, not compliance: it measures a student against its teacher on the data a
suite names. Whether that evidence meets a clause depends on the system's intended purpose, its
risk classification and the rest of its documentation, which this package cannot see.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

__all__ = ["MAPPING", "CAVEAT", "SOURCES", "mapping_for"]

CAVEAT = ("Pointers for reviewers, not a claim of compliance: each row names the clauses this "
          "family's results are evidence for, and what they leave to the provider. Whether the "
          "evidence is sufficient depends on the system's intended purpose, its risk "
          "classification and the rest of its technical documentation. Once a responsible "
          "person fills in the sign-off block, the report is a dated, signed test report of the "
          "kind Annex IV 2(g) asks to be kept; it is not a conformity assessment.")
SOURCES = ("EU AI Act: Regulation (EU) 2024/1689. NIST AI RMF: NIST AI 100-1, AI Risk Management "
           "Framework 1.0 (2023), MEASURE function.")

_TESTING = "Annex IV 2(g): validation and testing procedures, data and metrics; test reports"
_LIMITS = "Annex IV 3: capabilities and limitations in performance"
_ACCURACY = ("Art. 15(1): appropriate accuracy, robustness and cybersecurity, consistent "
             "through the lifecycle")
_CONFIDENTIALITY = "Art. 15(5): resilience to attacks exploiting vulnerabilities (confidentiality attacks)"
_CYBER = "Annex IV 2(h): cybersecurity measures"
_VALID = "MEASURE 2.5: valid and reliable; limits of generalisation documented"
_SECURITY = "MEASURE 2.7: security and resilience evaluated and documented"
_PRIVACY = "MEASURE 2.10: privacy risk examined and documented"

MAPPING: tuple[dict[str, Any], ...] = (
    {"family": "performance",
     "eu_ai_act": (_ACCURACY,
                   "Art. 15(3): accuracy levels and metrics declared in the instructions for use",
                   _TESTING, _LIMITS),
     "nist_ai_rmf": ("MEASURE 2.3: performance measured in conditions like deployment", _VALID),
     "provides": "Each model's predictive performance on the suite's evaluation table, the "
                 "student's regression from its teacher with paired intervals, judged against "
                 "thresholds fixed in the suite before the run.",
     "does_not": "Show that the evaluation table represents the deployment population, that the "
                 "metrics and thresholds suit the intended purpose (Annex IV 4), or how the "
                 "system performs once deployed."},
    {"family": "fidelity",
     "eu_ai_act": (_ACCURACY, _TESTING,
                   "Annex IV 6: changes made to the system through its lifecycle"),
     "nist_ai_rmf": (_VALID,),
     "provides": "How often the student decides as the teacher it replaces, where it newly errs "
                 "(negative flips) and how far its output distributions diverge: evidence about "
                 "the change from teacher to student.",
     "does_not": "Show that the teacher is fit for purpose (a faithful student inherits its "
                 "errors and biases), or decide whether the change is a substantial "
                 "modification (Art. 3(23)), which is a legal question."},
    {"family": "confidence",
     "eu_ai_act": (_ACCURACY, _LIMITS),
     "nist_ai_rmf": (_VALID, "MEASURE 2.9: output interpreted within its context"),
     "provides": "Where, by the teacher's confidence, the student overrules it: the "
                 "disagreement rate per confidence bin, with intervals.",
     "does_not": "Show that either model's confidence is calibrated (see Calibration) or how "
                 "people overseeing the system act on it (Art. 14)."},
    {"family": "calibration",
     "eu_ai_act": (_ACCURACY,
                   "Art. 15(3): accuracy levels and metrics declared in the instructions for use",
                   _TESTING, _LIMITS),
     "nist_ai_rmf": (_VALID, "MEASURE 2.9: output interpreted within its context"),
     "provides": "Whether each model's probabilities match observed frequencies (ECE, Brier, "
                 "NLL), the student's change from its teacher, and reliability diagrams.",
     "does_not": "Show that calibration holds within groups or after deployment, or that "
                 "decision thresholds built on the probabilities are appropriate."},
    {"family": "fairness",
     "eu_ai_act": ("Art. 10(2)(f)-(g): examination of possible biases; measures to detect, "
                   "prevent and mitigate them",
                   "Annex IV 2(g): metrics for potentially discriminatory impacts",
                   "Annex IV 3: accuracy for specific persons or groups of persons"),
     "nist_ai_rmf": ("MEASURE 2.11: fairness and bias evaluated and documented",),
     "provides": "Group metrics and disparities of both models for the sensitive columns the "
                 "suite names (and their intersections), with intervals, and whether "
                 "distillation widened a gap; groups too small to judge are listed, not passed.",
     "does_not": "Decide which groups, fairness notion or threshold is appropriate, examine the "
                 "training data for bias (Art. 10 asks that of the data), cover attributes the "
                 "data lacks, or establish non-discrimination under EU or national law."},
    {"family": "slices",
     "eu_ai_act": (_ACCURACY,
                   "Annex IV 3: limitations and foreseeable unintended outcomes"),
     "nist_ai_rmf": (_VALID,),
     "provides": "A search of one- and two-condition slices of the feature columns for where "
                 "the student is significantly worse than its teacher (false discovery rate "
                 "controlled), the worst slices listed.",
     "does_not": "Cover slices below the minimum size, columns the table lacks, or regressions "
                 "too small for the data to detect: finding no slice is not proof there is "
                 "none."},
    {"family": "robustness",
     "eu_ai_act": ("Art. 15(5): resilience to adversarial examples and model evasion",
                   "Annex IV 2(g): metrics used to measure robustness", _CYBER),
     "nist_ai_rmf": ("MEASURE 2.6: safety risks evaluated; reliability and robustness",
                     _SECURITY),
     "provides": "Both models' accuracy under the same evasion attacks (ART) at the "
                 "perturbation budgets the suite sets, on the same rows, and the student's "
                 "accuracy on examples crafted on its teacher.",
     "does_not": "Bound what stronger or adaptive attacks, other threat models or larger "
                 "budgets achieve: robust accuracy under the attacks run is an upper bound, "
                 "not a guarantee."},
    {"family": "corruption",
     "eu_ai_act": ("Art. 15(4): resilience to errors, faults or inconsistencies in the "
                   "environment", "Annex IV 2(g): metrics used to measure robustness"),
     "nist_ai_rmf": (_VALID, "MEASURE 2.6: safety risks evaluated; reliability and robustness"),
     "provides": "Both models' accuracy under the common corruptions or text edits the suite "
                 "names, at each severity or edit budget, with paired intervals.",
     "does_not": "Cover corruptions, severities or real-world shifts that were not configured: "
                 "synthetic corruptions are proxies for field conditions."},
    {"family": "privacy",
     "eu_ai_act": (_CONFIDENTIALITY, _CYBER),
     "nist_ai_rmf": (_PRIVACY, _SECURITY),
     "provides": "The success (ROC AUC) of the configured membership-inference attack against "
                 "both models, on the same member and non-member rows.",
     "does_not": "Establish compliance with data protection law, give a formal privacy "
                 "guarantee (such as differential privacy) or bound stronger attacks; it holds "
                 "only if the member rows are the real training rows."},
    {"family": "attribute",
     "eu_ai_act": (_CONFIDENTIALITY, _CYBER),
     "nist_ai_rmf": (_PRIVACY, _SECURITY),
     "provides": "Whether either model's outputs let an attacker infer the named sensitive "
                 "attribute better than the other features alone do (ART's attribute "
                 "inference, against a baseline).",
     "does_not": "Cover attributes not named, attackers with other knowledge, or whether "
                 "processing the attribute is lawful."},
    {"family": "extraction",
     "eu_ai_act": (_CONFIDENTIALITY, _CYBER),
     "nist_ai_rmf": (_SECURITY,),
     "provides": "How closely a thief trained on a given number of each model's answers copies "
                 "it (agreement and accuracy per query budget), for both models.",
     "does_not": "Bound adaptive or better-informed thieves (a first, non-adaptive attempt is a "
                 "floor on the risk), or assess access controls and rate limits."},
    {"family": "backdoor",
     "eu_ai_act": ("Art. 15(5): resilience to data poisoning and model poisoning", _CYBER),
     "nist_ai_rmf": (_SECURITY,),
     "provides": "Whether the trigger the suite names moves each model's predictions to the "
                 "target class, and so whether a backdoor in the teacher carried over to the "
                 "student.",
     "does_not": "Find unknown triggers: a low rate says the named trigger does not work, not "
                 "that the model has no backdoor; nor does it assess the data supply chain."},
    {"family": "efficiency",
     "eu_ai_act": ("Annex IV 1: general description, including the hardware the system is "
                   "intended to run on",),
     "nist_ai_rmf": ("MEASURE 2.3: performance measured in conditions like deployment",),
     "provides": "The student's latency, speed-up and size on disk against its teacher, timed "
                 "interleaved on the audit's machine (recorded in the provenance), with "
                 "intervals.",
     "does_not": "Measure energy use or emissions (MEASURE 2.12), or timings on the deployment "
                 "hardware unless the audit ran there; it bears on no accuracy, robustness or "
                 "cybersecurity requirement."},
    {"family": "data",
     "eu_ai_act": ("Art. 10(3): data sets relevant, sufficiently representative, free of "
                   "errors and complete",
                   "Art. 10(2)(h): identification of data gaps or shortcomings",
                   "Annex IV 2(d): data requirements and main characteristics of the data sets",
                   "Annex IV 2(g): the testing data used and their main characteristics"),
     "nist_ai_rmf": ("MEASURE 2.1: test sets, metrics and tools documented", _VALID),
     "provides": "Per-column drift between the training and evaluation tables, data quality "
                 "(missing values, constant columns, duplicates, the rarest class) and rows "
                 "shared between them (leakage); every table's SHA-256 in the provenance.",
     "does_not": "Assess whether the data represents the people the system will be used on, "
                 "the quality of its labels, its lawful basis, or the data governance practices "
                 "Art. 10(2) requires."},
    {"family": "tokens",
     "eu_ai_act": (_ACCURACY, _TESTING,
                   "Annex IV 6: changes made to the system through its lifecycle"),
     "nist_ai_rmf": (_VALID,),
     "provides": "How closely a distilled language model's next-token distributions follow its "
                 "teacher's on held-out documents (agreement, KL, acceptance rate) and each "
                 "model's bits per byte, with intervals over documents.",
     "does_not": "Show that the documents represent the deployment's text, or that the teacher's "
                 "distributions are fit for purpose; generated text is not judged."},
    {"family": "stereotype",
     "eu_ai_act": ("Art. 10(2)(f)-(g): examination of possible biases; measures to detect, "
                   "prevent and mitigate them",
                   "Annex IV 2(g): metrics for potentially discriminatory impacts"),
     "nist_ai_rmf": ("MEASURE 2.11: fairness and bias evaluated and documented",),
     "provides": "How often each model prefers the more stereotypical sentence of minimal pairs "
                 "(CrowS-Pairs style), per bias type, and the student's amplification with a "
                 "paired interval.",
     "does_not": "Measure harms in generated text or in the deployment's use; minimal-pair "
                 "benchmarks cover the stereotypes their authors wrote and have known noise."},
    {"family": "choice_robustness",
     "eu_ai_act": ("Art. 15(4): resilience to errors, faults or inconsistencies in the "
                   "environment", "Annex IV 2(g): metrics used to measure robustness"),
     "nist_ai_rmf": (_VALID, "MEASURE 2.6: safety risks evaluated; reliability and robustness"),
     "provides": "Whether each model's answers survive typos in the prompt and a change in the "
                 "order of the options, with paired intervals.",
     "does_not": "Cover adversarial prompts, paraphrases or other perturbations not configured."},
    {"family": "lm_speed",
     "eu_ai_act": ("Annex IV 1: general description, including the hardware the system is "
                   "intended to run on",),
     "nist_ai_rmf": ("MEASURE 2.3: performance measured in conditions like deployment",),
     "provides": "Prefill and decode throughput, time to first token, per-token latency, memory "
                 "and the decode speed-up of the student, timed interleaved on the audit's "
                 "machine, with intervals.",
     "does_not": "Measure energy use, batched serving throughput or the deployment hardware "
                 "unless the audit ran there."},
)

_BY_FAMILY = {row["family"]: row for row in MAPPING}


def mapping_for(families: Iterable[str]) -> list[dict[str, Any]]:
    """The rows of :data:`MAPPING` for ``families``, in their order; a family with no row (an
    "other" section, a family this mapping does not know) is left out.

    >>> [row["family"] for row in mapping_for(["fairness", "other", "performance"])]
    ['fairness', 'performance']
    """
    return [_BY_FAMILY[f] for f in dict.fromkeys(families) if f in _BY_FAMILY]
