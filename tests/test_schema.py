"""The published JSON Schema and the parser come from the same field tables, so they agree.

A check's parameter keys come from the metrics' own declarations (``Metric.params``), merged
by :func:`audit.fields.param_fields`; the schema and the parser both read that merge.

The schema is what an editor validates a suite file against: the file as written, where
``include`` is a valid key. The merged suite (after includes) must validate as well.
"""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml
from jsonschema import Draft202012Validator

from audit.checks.catalogue import metrics
from audit.errors import SuiteError
from audit.fields import param_fields, section_fields
from audit.suite import SECTIONS, load_suite, suite_from_dict, suite_json_schema
from audit.yamlsrc import load_yaml, resolve_includes
from fixtures.synthetic import write_pair

ROOT = Path(__file__).resolve().parents[1]
EXAMPLES = sorted((ROOT / "suites").glob("*.audit.yaml"))


@pytest.fixture(scope="module")
def validator() -> Draft202012Validator:
    schema = suite_json_schema()
    Draft202012Validator.check_schema(schema)
    return Draft202012Validator(schema, format_checker=Draft202012Validator.FORMAT_CHECKER)


def test_schema_is_valid_draft_2020_12() -> None:
    schema = suite_json_schema()
    Draft202012Validator.check_schema(schema)
    assert schema["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    assert jsonschema.validators.validator_for(schema) is Draft202012Validator


def test_schema_lists_every_key_of_the_field_tables() -> None:
    schema = suite_json_schema()
    assert list(schema["properties"]) == list(SECTIONS["suite"])
    assert schema["required"] == [k for k, f in SECTIONS["suite"].items() if f.required]
    for section in SECTIONS:
        if section == "suite":
            continue
        fields = section_fields(section)
        block = schema["$defs"][section]
        assert list(block["properties"]) == list(fields), section
        assert block["additionalProperties"] is False
        for key, f in fields.items():
            assert block["properties"][key]["description"] == f.doc


def test_check_keys_are_every_metrics_declared_parameters() -> None:
    schema = suite_json_schema()
    declared = {key for m in metrics().values() for key in m.params}
    check = schema["$defs"]["check"]
    assert set(check["properties"]) == declared | {"metric", "description", "baseline", "gate"}
    assert list(check["properties"])[0] == "metric"
    assert list(check["properties"])[-3:] == ["description", "baseline", "gate"]
    # a parameter key is refused on every metric that does not declare it, and only there
    for rule in check["allOf"][:len(declared)]:
        (key,) = rule["then"]["not"]["required"]
        assert sorted(rule["if"]["properties"]["metric"]["enum"]) == sorted(
            n for n, m in metrics().items() if key not in m.params)


def test_a_parameter_key_takes_the_union_of_its_declarations() -> None:
    fields = param_fields()
    assert fields["attack"].choices == ("auto", "strongest", "fgsm", "pgd", "hopskipjump", "noise",
                                        "loss_threshold", "blackbox", "label_only",
                                        "decision_boundary", "loss", "zlib", "min_k",
                                        "min_k_plus", "reference")  # robustness's, then privacy's
    assert fields["bins"].default is None  # 15, 10 and 5: the description says which is whose
    assert "(default 15)" in fields["bins"].doc and "(default 5)" in fields["bins"].doc
    assert fields["intersections"].default is True  # one declaration: its default
    assert dict(fields["samples"].schema) == {"minimum": 10}


def test_example_suites_exist() -> None:
    assert [p.name for p in EXAMPLES] == ["arrests-quantized.audit.yaml",
                                          "arrests-security.audit.yaml", "arrests.audit.yaml",
                                          "cloze-lm.audit.yaml",
                                          "digits-torch.audit.yaml", "digits.audit.yaml",
                                          "mnist.audit.yaml", "poisoned-defended.audit.yaml",
                                          "poisoned.audit.yaml", "rotten.audit.yaml"]


@pytest.mark.parametrize("path", EXAMPLES, ids=lambda p: p.name)
def test_example_suite_files_validate_as_written(validator: Draft202012Validator, path: Path) -> None:
    raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    assert "include" in raw
    assert _errors(validator, raw) == []


@pytest.mark.parametrize("path", EXAMPLES, ids=lambda p: p.name)
def test_example_suites_validate_after_includes(validator: Draft202012Validator, path: Path,
                                                built: dict[str, Path], poisoned: Path,
                                                quantized: Path) -> None:
    merged, includes = resolve_includes(load_yaml(path), path, seen=(path.resolve(),))
    assert "include" not in merged.value and "settings" in merged.value  # from _defaults.yaml
    assert [Path(p).name for p, _ in includes] == ["_defaults.yaml"]
    assert _errors(validator, merged.value) == []
    load_suite(path)  # and the parser agrees


def test_included_defaults_file_is_a_partial_suite(validator: Draft202012Validator) -> None:
    defaults = yaml.safe_load((ROOT / "suites" / "_defaults.yaml").read_text(encoding="utf-8"))
    errors = _errors(validator, defaults)
    assert errors and all("is a required property" in e for e in errors)  # only keys are missing


# -- schema and parser reject the same suites ------------------------------------------------
BASE: dict[str, Any] = {
    "version": 1,
    "name": "synth",
    "data": {"eval": "eval.csv", "target": "label", "sensitive": ["group"]},
    "teacher": {"predictions": "teacher.csv", "columns": ["p_No", "p_Yes"], "classes": ["No", "Yes"]},
    "student": {"predictions": "student.csv", "columns": ["p_No", "p_Yes"], "classes": ["No", "Yes"]},
    "settings": {"seed": 0, "bootstrap": 200},
    "checks": {"acc": {"metric": "accuracy", "gate": {"min": 0.5, "max_regression": 0.02}}},
}


def changed(path: str, value: Any) -> dict[str, Any]:
    """``BASE`` with the key at dotted ``path`` set to ``value`` (``DELETE`` removes it)."""
    d = copy.deepcopy(BASE)
    *parents, last = path.split(".")
    node = d
    for p in parents:
        node = node[p]
    if value is DELETE:
        del node[last]
    else:
        node[last] = value
    return d


DELETE = object()

INVALID = [
    # structural: unknown key, wrong type, unknown metric, missing required key, bad enum
    pytest.param(changed("chekcs", {}), id="unknown-top-level-key"),
    pytest.param(changed("checks.acc.gaet", {"min": 0.5}), id="unknown-check-key"),
    pytest.param(changed("teacher.klasses", ["a"]), id="unknown-model-key"),
    pytest.param(changed("settings.sed", 1), id="unknown-settings-key"),
    pytest.param(changed("version", "1"), id="version-as-string"),
    pytest.param(changed("settings.seed", 1.5), id="seed-as-float"),
    pytest.param(changed("settings.seed", True), id="seed-as-bool"),
    pytest.param(changed("name", ""), id="name-empty"),
    pytest.param(changed("data.sensitive", "group"), id="sensitive-not-a-list"),
    pytest.param(changed("data.sensitive", ["group", "group"]), id="sensitive-duplicate"),
    pytest.param(changed("data.positive", True), id="positive-boolean"),
    pytest.param(changed("checks.acc.gate.min", "0.5"), id="gate-quoted-number"),
    pytest.param(changed("settings", "fast"), id="settings-not-a-mapping"),
    pytest.param(changed("checks", {}), id="checks-empty"),
    pytest.param(changed("checks", ["accuracy"]), id="checks-a-list"),
    pytest.param(changed("checks.acc", "accuracy"), id="check-not-a-mapping"),
    pytest.param(changed("checks.acc.metric", "acuracy"), id="unknown-metric"),
    pytest.param(changed("data", DELETE), id="missing-data"),
    pytest.param(changed("checks", DELETE), id="missing-checks"),
    pytest.param(changed("data.target", DELETE), id="missing-target"),
    pytest.param(changed("checks.acc.metric", DELETE), id="missing-metric"),
    pytest.param(changed("version", 2), id="unsupported-version"),
    pytest.param(changed("settings.inconclusive", "wran"), id="bad-inconclusive"),
    pytest.param(changed("checks.acc.gate.severity", "fatal"), id="bad-severity"),
    pytest.param(changed("checks.acc", {"metric": "f1", "average": "samples"}), id="bad-average"),
    # what the schema also states beyond types, from the same tables
    pytest.param(changed("name", "my suite"), id="bad-suite-name"),
    pytest.param(changed("checks.my acc", {"metric": "accuracy"}), id="bad-check-name"),
    pytest.param(changed("settings.seed", -1), id="seed-negative"),
    pytest.param(changed("settings.confidence", 1.0), id="confidence-out-of-range"),
    pytest.param(changed("settings.bootstrap", 10), id="bootstrap-too-small"),
    pytest.param(changed("checks.acc.gate.max_regression", -0.01), id="negative-max-regression"),
    pytest.param(changed("checks.acc.gate", {"severity": "warn"}), id="gate-without-bounds"),
    pytest.param(changed("checks.acc.metric", "agreement"), id="max-regression-on-pairwise"),
    pytest.param(changed("checks.acc.average", "macro"), id="average-on-accuracy"),
    pytest.param(changed("teacher", "teacher.pkl"), id="model-path-unknown-suffix"),
    pytest.param(changed("teacher", 3), id="model-not-a-path-or-mapping"),
    pytest.param(changed("teacher", {"classes": ["No", "Yes"]}), id="model-no-kind"),
    pytest.param(changed("teacher", {"onnx": "m.onnx", "skops": "m.skops"}), id="model-two-kinds"),
    pytest.param(changed("teacher", {"onnx": "m.onnx", "trusted_types": ["a.B"]}),
                 id="trusted-types-on-onnx"),
    pytest.param(changed("teacher", {"pickle": "m.pkl"}), id="pickle-without-trust"),
    pytest.param(changed("teacher", {"pickle": "m.pkl", "trust": False}), id="pickle-trust-false"),
    pytest.param(changed("teacher.columns", DELETE), id="predictions-without-columns"),
    pytest.param(changed("teacher", {"callable": "mymodels.predict"}), id="callable-without-colon"),
    # parameter keys, from the metrics' declarations
    pytest.param(changed("checks.acc", {"metric": "ece", "bins": 1}), id="bins-below-range"),
    pytest.param(changed("checks.acc", {"metric": "ece", "binning": "quantile"}), id="bad-binning"),
    pytest.param(changed("checks.acc", {"metric": "ece", "bins": 10.5}), id="bins-not-an-integer"),
    pytest.param(changed("checks.acc", {"metric": "speedup", "batch_sizes": [0]}),
                 id="batch-size-zero"),
    pytest.param(changed("checks.acc", {"metric": "robust_accuracy", "eps": [0]}), id="eps-zero"),
    pytest.param(changed("checks.acc", {"metric": "robust_accuracy", "attack": "hopskipjmp"}),
                 id="attack-unknown"),
    pytest.param(changed("checks.acc", {"metric": "ece", "attack": "pgd"}), id="attack-on-ece"),
]


@pytest.fixture(scope="module")
def pair(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("pair")
    write_pair(folder, n=40)
    for name in ("m.onnx", "m.skops", "m.pkl", "teacher.pkl"):
        (folder / name).write_bytes(b"")
    return folder


def test_base_is_valid_for_both(validator: Draft202012Validator, pair: Path) -> None:
    assert _errors(validator, BASE) == []
    suite_from_dict(BASE, base_dir=pair)


@pytest.mark.parametrize("suite", INVALID)
def test_schema_and_parser_both_reject(validator: Draft202012Validator, pair: Path,
                                       suite: dict[str, Any]) -> None:
    assert _errors(validator, suite), "the schema accepts it"
    with pytest.raises(SuiteError):
        suite_from_dict(suite, base_dir=pair)


VALID_VARIANTS = [
    pytest.param(changed("teacher", {"onnx": "m.onnx", "classes": ["No", "Yes"]}), id="onnx-mapping"),
    pytest.param(changed("teacher", "m.onnx"), id="onnx-path"),
    pytest.param(changed("teacher", "M.ONNX"), id="onnx-path-upper-case"),
    pytest.param(changed("teacher", {"skops": "m.skops", "trusted_types": ["a.B"]}), id="skops"),
    pytest.param(changed("teacher", {"pickle": "m.pkl", "trust": True}), id="trusted-pickle"),
    pytest.param(changed("teacher", {"callable": "mymodels:predict", "classes": ["No", "Yes"]}),
                 id="callable"),
    pytest.param(changed("checks.acc", {"metric": "f1", "average": "macro",
                                        "gate": {"max_relative_regression": 0}}), id="f1-macro"),
    pytest.param(changed("checks.acc", {"metric": "agreement", "gate": {"min": 0.9, "severity": "warn"}}),
                 id="pairwise-min"),
    pytest.param(changed("checks.acc", {"metric": "kl_divergence"}), id="check-without-gate"),
    pytest.param(changed("checks.acc", {"metric": "ece", "bins": 10, "binning": "equal_mass"}),
                 id="ece-with-parameters"),
    pytest.param(changed("checks.acc", {"metric": "demographic_parity_difference", "by": ["group"],
                                        "intersections": False, "min_group_size": 5}),
                 id="fairness-with-parameters"),
    pytest.param(changed("data.positive", "Yes"), id="positive"),
    pytest.param(changed("settings", {"confidence": 0.9, "bootstrap": 100000, "inconclusive": "warn"}),
                 id="settings-edges"),
]


@pytest.mark.parametrize("suite", VALID_VARIANTS)
def test_schema_and_parser_both_accept(validator: Draft202012Validator, pair: Path,
                                       suite: dict[str, Any]) -> None:
    if suite["teacher"] == "M.ONNX":
        (pair / "M.ONNX").write_bytes(b"")
    assert _errors(validator, suite) == []
    suite_from_dict(suite, base_dir=pair)


# What only the parser can judge (files, data, ranges that depend on the metric, relations
# between two values). The schema accepts these; the parser rejects them with a message.
PARSER_ONLY = [
    pytest.param(changed("data.eval", "missing.csv"), id="missing-file"),
    pytest.param(changed("data.eval", "eval.txt"), id="eval-not-a-table"),
    pytest.param(changed("checks.acc.gate", {"min": 0.9, "max": 0.8}), id="min-above-max"),
    pytest.param(changed("checks.acc.gate", {"min": 78}), id="min-above-metric-range"),
    pytest.param(changed("data.features", ["x", "label"]), id="target-in-features"),
    pytest.param(changed("teacher.classes", ["No", "Yes", "Maybe"]), id="columns-classes-mismatch"),
]


@pytest.mark.parametrize("suite", PARSER_ONLY)
def test_checks_only_the_parser_makes(validator: Draft202012Validator, pair: Path,
                                      suite: dict[str, Any]) -> None:
    (pair / "eval.txt").write_text("x,label\n1,No\n")
    assert _errors(validator, suite) == []
    with pytest.raises(SuiteError):
        suite_from_dict(suite, base_dir=pair)


def _errors(validator: Draft202012Validator, instance: Any) -> list[str]:
    return sorted(e.message for e in validator.iter_errors(instance))
