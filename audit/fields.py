"""The suite format's keys, declared once: the field tables and the JSON Schema made from them.

The parser (:mod:`audit.suite`) reads these tables to reject unknown keys and wrong types, and
:func:`suite_json_schema` turns the same tables into the published JSON Schema, so the two
cannot drift apart.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from audit.checks.registry import get_metric, metric_names
from audit.spec import DTYPES, MODEL_TIMEOUT

__all__ = ["Field", "SECTIONS", "PARAM_KEYS", "MODEL_KINDS", "MODEL_KEYS", "MODEL_NEEDS", "suite_json_schema"]

SUITE_SUFFIX = ".audit.yaml"
# check keys that are metric parameters: a metric accepts only those it declares
PARAM_KEYS = ("average", "bins", "binning", "by", "intersections", "min_group_size", "group_metric",
              "batch_sizes", "repeats", "max_seconds", "columns", "fdr", "max_conditions",
              "attack", "eps", "norm", "samples", "members", "non_members")
SUPPORTED_VERSIONS = (1,)
MODEL_KINDS = ("skops", "onnx", "callable", "predictions", "pickle", "torch")
SUFFIX_KINDS = {".skops": "skops", ".onnx": "onnx", ".pt": "torch", ".pth": "torch",
                ".pt2": "torch"}
PICKLE_SUFFIXES = {".pkl", ".pickle", ".joblib"}
NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")
MAX_NAME = 100  # a suite's name names its report folder; file systems allow 255 bytes
CALLABLE_RE = re.compile(r"^[A-Za-z_][\w.]*:[A-Za-z_][\w.]*$")
# keys a model mapping may have besides its kind
MODEL_KEYS = {"skops": ("classes", "trusted_types"), "onnx": ("classes",),
              "callable": ("classes", "output"), "predictions": ("classes", "columns"),
              "pickle": ("classes", "trust"), "torch": ("classes", "output", "trust")}
# keys a model of that kind must have besides its kind
MODEL_NEEDS = {"predictions": ("columns", "classes"), "pickle": ("trust",)}



@dataclass(frozen=True)
class Field:
    """One key of a section: its kind, whether it is required, and what it means."""

    # str | int | number | bool | path | str_list | label | label_list | section:<name> | model
    # | include | checks | dtype_map (column -> one of DTYPES)
    kind: str
    doc: str
    required: bool = False
    choices: tuple[Any, ...] = ()
    default: Any = None
    schema: tuple[tuple[str, Any], ...] = ()  # extra JSON Schema keywords (ranges the parser checks)


SECTIONS: dict[str, dict[str, Field]] = {
    "suite": {
        "version": Field("int", "Suite format version.", required=True, choices=SUPPORTED_VERSIONS),
        "name": Field("str", "Suite name; used in report file names (letters, digits, _ . -).",
                      required=True, schema=(("pattern", NAME_RE.pattern), ("maxLength", MAX_NAME))),
        "description": Field("str", "What is being released, in words."),
        "include": Field("include", "File(s) with shared defaults, merged under this one."),
        "data": Field("section:data", "The evaluation table and, optionally, the training table.",
                      required=True),
        "teacher": Field("model", "The reference model.", required=True),
        "student": Field("model", "The distilled model under audit.", required=True),
        "settings": Field("section:settings", "Statistical settings."),
        "checks": Field("checks", "Named checks, each a metric with a gate.", required=True),
    },
    "data": {
        "eval": Field("path", "Evaluation table (.csv or .parquet).", required=True),
        "train": Field("path", "Training table: the members, for privacy and drift checks."),
        "holdout": Field("path", "Rows neither model was trained on: the non-members of "
                                 "membership inference (default: the eval rows)."),
        "teacher_train": Field("path", "The teacher's training rows, when they differ from "
                                       "data.train: does the student leak the teacher's members?"),
        "target": Field("str", "Name of the label column.", required=True),
        "features": Field("str_list", "Columns fed to the models (default: all but target)."),
        "sensitive": Field("str_list", "Columns used to slice results (kept aside).", default=()),
        "positive": Field("label", "Positive class for binary metrics (default: inferred and stated)."),
        "missing_sensitive": Field("str", "Missing values in a sensitive column: error, or group "
                                          "(their own group, 'missing').", choices=("error", "group"),
                                   default="error"),
        "categorical": Field("str_list", "Columns that hold categories: read as text however they "
                                         "look (codes 0, 1, 2 stay '0', '1', '2'); only an empty "
                                         "cell is missing."),
        "dtypes": Field("dtype_map", "Column types, {column: string|integer|float|boolean}: the "
                                     "cells are read as that type (string: as written; only an "
                                     "empty cell is missing)."),
    },
    "model": {
        "skops": Field("path", "A scikit-learn model saved with skops (loaded securely)."),
        "onnx": Field("path", "An ONNX model run with onnxruntime."),
        "callable": Field("str", "module:function returning class probabilities (runs code).",
                          schema=(("pattern", CALLABLE_RE.pattern),)),
        "predictions": Field("path", "Precomputed class probabilities for the eval rows."),
        "pickle": Field("path", "A pickle/joblib file (runs code; needs trust: true)."),
        "torch": Field("path", "A TorchScript file (.pt/.pth, saved with torch.jit) or an exported "
                               "program (.pt2, saved with torch.export), run on the CPU."),
        "classes": Field("label_list", "Class labels in output column order."),
        "columns": Field("str_list", "Probability columns of a predictions file, in class order."),
        "trusted_types": Field("str_list", "Extra types a skops file may load (review them first)."),
        "trust": Field("bool", "Set true to allow loading a pickle (or a torch.export archive "
                               "with pickled parts), which can run arbitrary code."),
        "output": Field("str", "What a torch module returns: logits (default; softmax is applied) "
                               "or probabilities.", choices=("logits", "probabilities")),
    },
    "settings": {
        "seed": Field("int", "Seed for every random draw.", default=0, schema=(("minimum", 0),)),
        "confidence": Field("number", "Confidence level of intervals, in (0.5, 1).", default=0.95,
                            schema=(("exclusiveMinimum", 0.5), ("exclusiveMaximum", 1))),
        "bootstrap": Field("int", "Bootstrap replicates (100 to 100000).", default=1000,
                           schema=(("minimum", 100), ("maximum", 100_000))),
        "inconclusive": Field("str", "What an inconclusive gate does.", choices=("fail", "warn"),
                              default="fail"),
        "model_timeout": Field("number", "Seconds a model may take to load, or to answer one "
                                         "predict call, before its checks are ERROR (a model that "
                                         "exits or is killed is ERROR at once).",
                               default=MODEL_TIMEOUT,
                               schema=(("exclusiveMinimum", 0), ("maximum", 86_400))),
    },
    "check": {
        "metric": Field("str", "Registered metric name.", required=True),
        "average": Field("str", "Averaging for precision/recall/f1.",
                         choices=("binary", "macro", "micro", "weighted")),
        "bins": Field("int", "Number of bins: confidence bins for ece/mce/ace/classwise_ece "
                             "(default 15), quantile bins of numeric columns for drift (10) and "
                             "slice discovery (5).", schema=(("minimum", 2), ("maximum", 1000))),
        "binning": Field("str", "Bin edges: equal_width (default), or equal_mass (quantiles).",
                         choices=("equal_width", "equal_mass")),
        "by": Field("str_list", "Sensitive columns to slice by (default: all of data.sensitive)."),
        "intersections": Field("bool", "Also slice by the intersection of the by columns.",
                               default=True),
        "min_group_size": Field("int", "Groups (or discovered slices) with fewer rows are "
                                       "reported but excluded (default 30 for fairness, 50 for "
                                       "slice discovery).", schema=(("minimum", 1),)),
        "group_metric": Field("str", "The group metric max_gap_to_overall compares (default "
                                     "accuracy).", choices=("accuracy", "selection_rate", "tpr", "fpr")),
        "batch_sizes": Field("int_list", "Batch sizes to time (default 1, 32, 1024).",
                             schema=(("items", {"type": "integer", "minimum": 1}),)),
        "repeats": Field("int", "Timed calls per model and batch size (default 30).",
                         schema=(("minimum", 3), ("maximum", 10_000))),
        "max_seconds": Field("number", "Wall-clock cap per check: on timing (efficiency) or on "
                                       "black-box attacks (robustness, the decision-boundary "
                                       "membership attack); default 30.",
                             schema=(("exclusiveMinimum", 0),)),
        "columns": Field("str_list", "Columns a data check looks at (default: all feature "
                                     "columns)."),
        "fdr": Field("number", "False-discovery rate across the slices tried (default 0.05).",
                     schema=(("exclusiveMinimum", 0), ("exclusiveMaximum", 1))),
        "max_conditions": Field("int", "Conditions per discovered slice: 1 or 2 (default 2).",
                                choices=(1, 2)),
        "attack": Field("str", "Robustness: auto (default: PGD when both models give gradients, "
                               "else HopSkipJump, the same for both), strongest (each model's "
                               "own strongest; no regression), fgsm, pgd, hopskipjump or noise. "
                               "Privacy: loss_threshold "
                               "(default), blackbox, label_only or decision_boundary.",
                        choices=("auto", "strongest", "fgsm", "pgd", "hopskipjump", "noise",
                                 "loss_threshold",
                                 "blackbox", "label_only", "decision_boundary")),
        "eps": Field("number_list", "Perturbation budgets (a robustness curve), in units of each "
                                    "numeric column's observed range (default [0.05, 0.1]).",
                     schema=(("items", {"type": "number", "exclusiveMinimum": 0}),)),
        "norm": Field("str", "Norm of the perturbation: inf (default) or 2.", choices=("inf", "2")),
        "samples": Field("int", "Rows attacked (robustness; default 200) or members and "
                                "non-members each (privacy; default 500, 50 for "
                                "decision_boundary).", schema=(("minimum", 10),)),
        "members": Field("str", "Privacy: the members' table, train (default) or teacher_train "
                                "(does the student leak the teacher's training rows?).",
                         choices=("train", "teacher_train")),
        "non_members": Field("str", "Privacy: the non-members' table, eval or holdout (default: "
                                    "holdout when the suite names one, else eval).",
                             choices=("eval", "holdout")),
        "description": Field("str", "Why this check exists, in words."),
        "gate": Field("section:gate", "Bounds the check must satisfy."),
    },
    "gate": {
        "min": Field("number", "Lower bound on the student's value."),
        "max": Field("number", "Upper bound on the student's value."),
        "max_regression": Field("number", "How much worse than the teacher the student may be "
                                          "(absolute, in the metric's units; >= 0).",
                                schema=(("minimum", 0),)),
        "max_relative_regression": Field("number", "How much worse than the teacher, as a fraction "
                                                   "of the teacher's value (>= 0).",
                                         schema=(("minimum", 0),)),
        "severity": Field("str", "block fails the run; warn only reports.", choices=("block", "warn"),
                          default="block"),
    },
}



def suite_json_schema() -> dict[str, Any]:
    """The JSON Schema (draft 2020-12) of the suite format, generated from the field tables."""

    def field_schema(f: Field) -> dict[str, Any]:
        kind = f.kind
        if kind.startswith("section:"):
            return {"$ref": f"#/$defs/{kind.split(':', 1)[1]}", "description": f.doc}
        s: dict[str, Any]
        if kind in ("str", "path"):
            s = {"type": "string", "minLength": 1}
        elif kind == "int":
            s = {"type": "integer"}
        elif kind == "number":
            s = {"type": "number"}
        elif kind == "bool":
            s = {"type": "boolean"}
        elif kind == "label":
            s = {"type": ["string", "integer"]}
        elif kind == "str_list":
            s = {"type": "array", "items": {"type": "string"}, "minItems": 1, "uniqueItems": True}
        elif kind == "int_list":
            s = {"type": "array", "items": {"type": "integer"}, "minItems": 1, "uniqueItems": True}
        elif kind == "number_list":
            s = {"type": "array", "items": {"type": "number"}, "minItems": 1, "uniqueItems": True}
        elif kind == "label_list":
            s = {"type": "array", "items": {"type": ["string", "integer"]}, "minItems": 1,
                 "uniqueItems": True}
        elif kind == "dtype_map":
            s = {"type": "object", "minProperties": 1, "propertyNames": {"minLength": 1},
                 "additionalProperties": {"enum": list(DTYPES)}}
        elif kind == "include":
            s = {"oneOf": [{"type": "string", "minLength": 1},
                           {"type": "array", "items": {"type": "string", "minLength": 1},
                            "minItems": 1}]}
        elif kind == "model":
            suffixes = "|".join("".join(f"[{c.lower()}{c.upper()}]" for c in suffix[1:])
                                for suffix in SUFFIX_KINDS)  # matched case-insensitively
            s = {"oneOf": [{"type": "string", "pattern": rf"\.({suffixes})$"},
                           {"$ref": "#/$defs/model"}]}
        elif kind == "checks":
            s = {"type": "object", "minProperties": 1,
                 "propertyNames": {"pattern": NAME_RE.pattern},
                 "additionalProperties": {"$ref": "#/$defs/check"}}
        else:  # pragma: no cover - the tables only use the kinds above
            raise AssertionError(kind)
        if f.choices:
            s["enum"] = list(f.choices)
        if f.default is not None and f.default != ():
            s["default"] = f.default
        s.update(f.schema)
        s["description"] = f.doc
        return s

    def section_schema(name: str) -> dict[str, Any]:
        fields = SECTIONS[name]
        out: dict[str, Any] = {
            "type": "object",
            "additionalProperties": False,
            "properties": {k: field_schema(f) for k, f in fields.items()},
        }
        required = [k for k, f in fields.items() if f.required]
        if required:
            out["required"] = required
        return out

    defs = {name: section_schema(name) for name in SECTIONS if name != "suite"}
    names = metric_names()
    defs["check"]["properties"]["metric"]["enum"] = names
    # what the parser checks beyond each key's own type, as far as a schema can say it
    pairwise = [n for n in names if get_metric(n).pairwise]
    rules: list[dict[str, Any]] = []
    for key in PARAM_KEYS:  # a parameter only on the metrics that declare it
        without = [n for n in names if key not in get_metric(n).params]
        rules.append({"if": {"properties": {"metric": {"enum": without}}, "required": ["metric"]},
                      "then": {"not": {"required": [key]}}})
    rules.append(
        {"if": {"properties": {"metric": {"enum": pairwise}}, "required": ["metric"]},
         "then": {"properties": {"gate": {"not": {"anyOf": [
             {"required": ["max_regression"]}, {"required": ["max_relative_regression"]}]}}}}})
    defs["check"]["allOf"] = rules
    defs["gate"]["anyOf"] = [{"required": [k]} for k in
                             ("min", "max", "max_regression", "max_relative_regression")]
    branches = []
    for kind in MODEL_KINDS:
        branch: dict[str, Any] = {"required": [kind, *MODEL_NEEDS.get(kind, ())]}
        others = [k for k in SECTIONS["model"] if k != kind and k not in MODEL_KEYS[kind]]
        branch["not"] = {"anyOf": [{"required": [k]} for k in others]}
        if kind == "pickle":
            branch["properties"] = {"trust": {"const": True}}
        branches.append(branch)
    defs["model"]["oneOf"] = branches
    top = section_schema("suite")
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "$id": "https://distill-audit.dev/schemas/suite-v1.json",
        "title": "distill-audit suite",
        **top,
        "$defs": defs,
    }
