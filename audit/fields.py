"""The suite format's keys, declared once: the field tables and the JSON Schema made from them.

The parser (:mod:`audit.suite`) reads these tables to reject unknown keys and wrong types, and
:func:`suite_json_schema` turns the same tables into the published JSON Schema, so the two
cannot drift apart. A check's parameter keys are not listed here: each metric declares its
own (:class:`audit.checks.registry.Param`, next to its code), and :func:`param_fields` merges
those declarations into the check section (:func:`check_fields`).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from audit.checks.catalogue import metrics
from audit.checks.registry import Metric, Param
from audit.spec import DTYPES, GATE_KINDS, MODEL_TIMEOUT, TABLES

__all__ = ["Field", "SECTIONS", "MODEL_KINDS", "LM_KINDS", "MODEL_KEYS", "MODEL_NEEDS", "param_fields",
           "check_fields", "section_fields", "suite_json_schema", "field_schema"]

SUITE_SUFFIX = ".audit.yaml"
SUPPORTED_VERSIONS = (1,)
MODEL_KINDS = ("skops", "onnx", "callable", "predictions", "pickle", "torch", "transformers",
               "causal_lm", "lm_eval")
LM_KINDS = ("causal_lm", "lm_eval")  # the models of multiple-choice items
SUFFIX_KINDS = {".skops": "skops", ".onnx": "onnx", ".pt": "torch", ".pth": "torch",
                ".pt2": "torch"}
PICKLE_SUFFIXES = {".pkl", ".pickle", ".joblib"}
NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")
MAX_NAME = 100  # a suite's name names its report folder; file systems allow 255 bytes
CALLABLE_RE = re.compile(r"^[A-Za-z_][\w.]*:[A-Za-z_][\w.]*$")
# keys a model mapping may have besides its kind
MODEL_KEYS = {"skops": ("classes", "trusted_types"),
              "onnx": ("classes", "output", "tokenizer", "max_length", "batch_size", "mean", "std"),
              "callable": ("classes", "output"), "predictions": ("classes", "columns"),
              "pickle": ("classes", "trust"),
              "torch": ("classes", "output", "trust", "batch_size", "device", "mean", "std"),
              "transformers": ("classes", "trust", "max_length", "batch_size", "device"),
              "causal_lm": ("scoring", "tokenizer", "max_length", "batch_size", "device"),
              "lm_eval": ("scoring",)}
MAX_TOKENS = 8192  # the longest max_length a suite may ask for
# keys a model of that kind must have besides its kind
MODEL_NEEDS = {"predictions": ("columns", "classes"), "pickle": ("trust",)}



@dataclass(frozen=True)
class Field:
    """One key of a section: its kind, whether it is required, and what it means."""

    # str | int | number | bool | path | str_list | label | label_list | section:<name> | model
    # | include | checks | dtype_map (column -> one of DTYPES) | sensitive_list (column names
    # or {column, bins | quantiles} mappings)
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
        "baseline": Field("model", "Optional third model: the one in production today, or the "
                                   "student trained without distillation. Every check that "
                                   "measures models measures it on the same rows, with paired "
                                   "intervals; gates may bound max_baseline_regression."),
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
        "sensitive": Field("sensitive_list", "Columns used to slice results (still model "
                                             "inputs unless features: leaves them out): a "
                                             "column's values are its groups; bin a numeric "
                                             "column with {column: age, bins: [25, 40, 60]} or "
                                             "{column: age, quantiles: 4}.", default=()),
        "positive": Field("label", "Positive class for binary metrics (default: inferred and stated)."),
        "missing_sensitive": Field("str", "Missing values in a sensitive column: error, or group "
                                          "(their own group, 'missing').", choices=("error", "group"),
                                   default="error"),
        "private": Field("str_list", "Columns never exported: left out of the flip table "
                                     "written beside the report and of the rows it shows."),
        "categorical": Field("str_list", "Columns that hold categories: read as text however they "
                                         "look (codes 0, 1, 2 stay '0', '1', '2'); only an empty "
                                         "cell is missing."),
        "dtypes": Field("dtype_map", "Column types, {column: string|integer|float|boolean}: the "
                                     "cells are read as that type (string: as written; only an "
                                     "empty cell is missing)."),
        "text": Field("str", "The column of texts a text model reads (its other columns, but "
                             "the target, are metadata: slices, drift)."),
        "images": Field("section:images", "The images an image model reads: an array file per "
                                          "table, or a column of image file paths."),
        "choices": Field("str", "Multiple-choice items (data.eval a .jsonl file): the field "
                                "holding each item's list of choices (default choices)."),
        "context": Field("str", "Multiple-choice items: the context the choices are scored "
                                "after, filled from the item's fields with {name} fields only "
                                "(default \"{context}\")."),

        "options": Field("str", "Multiple-choice items whose context lists the options: the "
                                "field of each item's list of options, named once in "
                                "data.context and shown there lettered (A. ..., B. ...); the "
                                "choices scored are then the letters, and answer-order checks "
                                "can rotate them."),
        "documents": Field("path", "Language models: held-out documents (.jsonl, one {\"text\": "
                                   "...} per line) the token-level checks read; in such a suite "
                                   "train, teacher_train and holdout are documents too."),
        "pairs": Field("path", "Language models: minimal pairs (.jsonl, one {\"more\": ..., "
                               "\"less\": ..., \"bias_type\": ...} per line; CrowS-Pairs' "
                               "sent_more and sent_less are read too) for stereotype checks."),
    },
    "images": {
        "eval": Field("path", "Images of the eval rows: .npy, or .npz with one array; shape "
                              "(N, H, W) or (N, C, H, W), uint8 (0-255) or float (0-1)."),
        "train": Field("path", "Images of the train rows (same format)."),
        "holdout": Field("path", "Images of the holdout rows (same format)."),
        "teacher_train": Field("path", "Images of the teacher_train rows (same format)."),
        "column": Field("str", "A column of each table holding PNG/JPEG paths, relative to the "
                               "table's folder (instead of array files)."),
        "size": Field("int_list", "[height, width] to resize path-column images to (default: "
                                  "all must share the first image's size).",
                      schema=(("minItems", 2), ("maxItems", 2), ("uniqueItems", False),
                              ("items", {"type": "integer", "minimum": 1, "maximum": 4096}))),
        "channels": Field("int", "1 (grey) or 3 (RGB) for path-column images (default: 1 "
                                 "unless an image has colour).", choices=(1, 3)),
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
        "transformers": Field("path", "A Hugging Face sequence classifier: a local folder with "
                                      "config.json, safetensors weights and its tokenizer (never "
                                      "downloaded; a pytorch_model.bin needs trust: true)."),
        "causal_lm": Field("path", "A Hugging Face causal language model: a local folder with "
                                   "config.json, safetensors weights and its tokenizer (never "
                                   "downloaded, never its code); it scores multiple-choice items."),
        "lm_eval": Field("path", "A model's lm-evaluation-harness --log_samples file "
                                 "(samples_<task>_<time>.jsonl): its choice scores, no model run."),
        "scoring": Field("str", "How a language model's choice log-likelihoods become "
                                "probabilities: sum (softmax of the sums; the harness's acc) or "
                                "per_char (per character of the choice; its acc_norm).",
                         choices=("sum", "per_char"), default="sum"),
        "classes": Field("label_list", "Class labels in output column order."),
        "columns": Field("str_list", "Probability columns of a predictions file, in class order."),
        "trusted_types": Field("str_list", "Extra types a skops file may load (review them first)."),
        "trust": Field("bool", "Set true to allow loading a pickle (or a torch.export archive "
                               "with pickled parts, or a transformers pytorch_model.bin), which "
                               "can run arbitrary code."),
        "output": Field("str", "What a torch module or an ONNX model returns: logits (softmax "
                               "is applied; the default for torch, and for an ONNX output named "
                               "logits) or probabilities.", choices=("logits", "probabilities")),
        "tokenizer": Field("path", "The tokenizer folder (tokenizer.json) an ONNX text model's "
                                   "texts are tokenized with."),
        "max_length": Field("int", "Tokens per text; longer texts are truncated (default: the "
                                   "tokenizer's model_max_length, at most 512).",
                            schema=(("minimum", 1), ("maximum", MAX_TOKENS))),
        "batch_size": Field("int", "Rows per forward pass of a network (default 64 for text, "
                                   "256 for images, 4096 for tables).",
                            schema=(("minimum", 1), ("maximum", 1_000_000))),
        "device": Field("str", "Where a torch or transformers model runs: cpu (default) or cuda "
                               "(when present).", choices=("cpu", "cuda")),
        "mean": Field("number_list", "An image model's input normalisation: the per-channel mean "
                                     "subtracted from pixels in [0, 1] before the model (with "
                                     "std; e.g. [0.485, 0.456, 0.406])."),
        "std": Field("number_list", "The per-channel standard deviation the pixels are divided "
                                    "by after subtracting mean (e.g. [0.229, 0.224, 0.225]).",
                     schema=(("items", {"type": "number", "exclusiveMinimum": 0}),)),
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
        "engine": Field("str", "memory (default) reads the whole eval table; stream reads it in "
                               "batches of batch_rows, keeping additive tables (exact for count "
                               "metrics, means and binary ROC AUC) and a seeded uniform sample "
                               "of sample_rows for the checks that need rows.",
                        choices=("memory", "stream", "ray"), default="memory"),
        "batch_rows": Field("int", "Rows per batch of a streamed run.", default=250_000,
                            schema=(("minimum", 1000), ("maximum", 50_000_000))),
        "sample_rows": Field("int", "Rows of a streamed run's seeded uniform sample (the checks "
                                    "without an additive form run on it, and say so).",
                             default=100_000, schema=(("minimum", 1000), ("maximum", 50_000_000))),
    },
    "check": {
        "metric": Field("str", "Registered metric name.", required=True),
        # then each metric's parameters (param_fields), merged from the metrics' declarations
        "description": Field("str", "Why this check exists, in words."),
        "baseline": Field("bool", "Measure the suite's baseline model in this check too "
                                  "(default true when the suite names a baseline; false skips "
                                  "it, e.g. for a long timing or attack).", default=True),
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
        "max_baseline_regression": Field("number", "How much worse than the suite's baseline "
                                                   "model the student may be (absolute, in the "
                                                   "metric's units; >= 0): \"better than what we "
                                                   "ship\" at 0.", schema=(("minimum", 0),)),
        "severity": Field("str", "block fails the run; warn only reports.", choices=("block", "warn"),
                          default="block"),
    },
}


_LIST_ITEM = {"int_list": "integer", "number_list": "number"}


def _param_field(key: str, declared: list[tuple[Metric, Param]]) -> Field:
    """One check key from every metric's declaration of it: their kind (they must agree), the
    union of their choices, their range and default where all agree, and their docs."""
    first_metric, first = declared[0]
    for metric, p in declared[1:]:
        if p.kind != first.kind:
            raise AssertionError(f"parameter {key!r} is {first.kind} in {first_metric.name} but "
                                 f"{p.kind} in {metric.name}; one key has one kind")
    choices: list[Any] = []
    for _, p in declared:
        choices += [c for c in p.choices if c not in choices]
    if any(not p.choices for _, p in declared):
        choices = []  # some metric takes any value of the kind
    ranges = [p.range for _, p in declared]
    schema: tuple[tuple[str, Any], ...] = ()
    if all(r == ranges[0] for r in ranges) and ranges[0]:
        if first.kind in _LIST_ITEM:
            schema = (("items", {"type": _LIST_ITEM[first.kind], **ranges[0]}),)
        else:
            schema = tuple(ranges[0].items())
    defaults = [p.default for _, p in declared]
    default = defaults[0] if all(d == defaults[0] for d in defaults) else None
    docs: dict[str, list[str]] = {}  # doc (with its default, if they differ) -> its families
    for metric, p in declared:
        text = p.doc
        if default is None and p.default is not None:
            text = f"{p.doc.rstrip('.')} (default {p.default_text})."
        families = docs.setdefault(text, [])
        if metric.family not in families:
            families.append(metric.family)
    if len(docs) == 1:
        doc = next(iter(docs))
    else:
        doc = " ".join(f"{'/'.join(families).capitalize()}: {d[:1].lower()}{d[1:]}"
                       for d, families in docs.items())
    return Field(first.kind, doc, choices=tuple(choices),
                 default=list(default) if isinstance(default, tuple) else default, schema=schema)


def param_fields() -> dict[str, Field]:
    """Every check parameter key, merged from the metrics' declarations, in catalogue order
    (each key where the first family that declares it puts it)."""
    declared: dict[str, list[tuple[Metric, Param]]] = {}
    for metric in metrics().values():
        for key, p in metric.params.items():
            declared.setdefault(key, []).append((metric, p))
    return {key: _param_field(key, pairs) for key, pairs in declared.items()}


def check_fields() -> dict[str, Field]:
    """The keys of a check: ``metric``, every metric parameter, ``description`` and ``gate``."""
    fixed = SECTIONS["check"]
    params = param_fields()
    clash = set(params) & set(fixed)
    if clash:
        raise AssertionError(f"a metric declares a parameter named like a check key: {clash}")
    return {"metric": fixed["metric"], **params,
            **{k: f for k, f in fixed.items() if k != "metric"}}


def section_fields(section: str) -> dict[str, Field]:
    """The field table of ``section`` (a check's includes the metrics' parameters)."""
    return check_fields() if section == "check" else SECTIONS[section]


def field_schema(f: Field) -> dict[str, Any]:
    """The JSON Schema of one field (a ``section:<name>`` kind refers to ``#/$defs/<name>``)."""
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
    elif kind == "sensitive_list":
        binned = {"type": "object", "additionalProperties": False, "required": ["column"],
                  "properties": {
                      "column": {"type": "string", "minLength": 1},
                      "bins": {"type": "array", "items": {"type": "number"}, "minItems": 1,
                               "description": "Bin edges, strictly increasing."},
                      "quantiles": {"type": "integer", "minimum": 2,
                                    "description": "Bins at the eval table's quantiles."}},
                  "oneOf": [{"required": ["bins"]}, {"required": ["quantiles"]}]}
        s = {"type": "array", "items": {"oneOf": [{"type": "string", "minLength": 1}, binned]},
             "minItems": 1, "uniqueItems": True}
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
    if f.choices and s.get("type") == "array":
        s["items"] = {**s["items"], "enum": list(f.choices)}
    elif f.choices:
        s["enum"] = list(f.choices)
    if f.default is not None and f.default != ():
        s["default"] = f.default
    s.update(f.schema)
    s["description"] = f.doc
    return s



def suite_json_schema() -> dict[str, Any]:
    """The JSON Schema (draft 2020-12) of the suite format, generated from the field tables."""

    def section_schema(name: str) -> dict[str, Any]:
        fields = section_fields(name)
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
    registered = metrics()
    names = sorted(registered)
    defs["check"]["properties"]["metric"]["enum"] = names
    # what the parser checks beyond each key's own type, as far as a schema can say it
    pairwise = [n for n in names if registered[n].pairwise]
    rules: list[dict[str, Any]] = []
    for key in param_fields():  # a parameter only on the metrics that declare it
        without = [n for n in names if key not in registered[n].params]
        rules.append({"if": {"properties": {"metric": {"enum": without}}, "required": ["metric"]},
                      "then": {"not": {"required": [key]}}})
    for key, f in param_fields().items():  # a range that differs between metrics: per metric
        if f.schema or f.kind not in ("int", "number", *_LIST_ITEM):
            continue
        for n in names:
            p = registered[n].params.get(key)
            if p is not None and p.range:
                bound = ({"items": p.range} if p.kind in _LIST_ITEM else p.range)
                rules.append({"if": {"properties": {"metric": {"const": n}}, "required": ["metric"]},
                              "then": {"properties": {key: bound}}})
    rules.append(
        {"if": {"properties": {"metric": {"enum": pairwise}}, "required": ["metric"]},
         "then": {"properties": {"gate": {"not": {"anyOf": [
             {"required": ["max_regression"]}, {"required": ["max_relative_regression"]},
             {"required": ["max_baseline_regression"]}]}}}}})
    defs["check"]["allOf"] = rules
    defs["gate"]["anyOf"] = [{"required": [k]} for k in GATE_KINDS]
    branches = []
    for kind in MODEL_KINDS:
        branch: dict[str, Any] = {"required": [kind, *MODEL_NEEDS.get(kind, ())]}
        others = [k for k in SECTIONS["model"] if k != kind and k not in MODEL_KEYS[kind]]
        branch["not"] = {"anyOf": [{"required": [k]} for k in others]}
        if kind == "pickle":
            branch["properties"] = {"trust": {"const": True}}
        branches.append(branch)
    defs["model"]["oneOf"] = branches
    # data.images: a path column, or an array file per table (eval's at least, .npy or .npz;
    # size and channels are for image files); never beside data.text
    arrays = [{"required": [role]} for role in TABLES]
    defs["images"]["oneOf"] = [
        {"required": ["column"], "not": {"anyOf": arrays}},
        {"required": ["eval"], "not": {"anyOf": [{"required": [k]} for k in
                                                 ("column", "size", "channels")]}}]
    for role in TABLES:
        defs["images"]["properties"][role]["pattern"] = r"\.[nN][pP][yYzZ]$"
    data_rules: list[dict[str, Any]] = [{"not": {"required": ["text", "images"]}}]
    for role in TABLES[1:]:  # an array for each table data names, and only for those
        data_rules.append({"if": {"required": ["images"],
                                  "properties": {"images": {"required": [role]}}},
                           "then": {"required": [role]}})
        data_rules.append({"if": {"required": [role, "images"],
                                  "properties": {"images": {"not": {"required": ["column"]}}}},
                           "then": {"properties": {"images": {"required": [role]}}}})
    defs["data"]["allOf"] = data_rules
    top = section_schema("suite")
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "$id": "https://distill-audit.dev/schemas/suite-v1.json",
        "title": "distill-audit suite",
        **top,
        "$defs": defs,
    }
