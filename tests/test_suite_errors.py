"""Invalid suites and inputs, one small case each, asserting the exact message.

Every case starts from ``BASE`` (below, with its line numbers), changes one thing and names
the file, line, key path, value and fix it expects. The working directory is the case's
``tmp_path``, so file names in messages are relative (``x.audit.yaml:12 ...``).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

from audit.checks.registry import get_metric, metric_names
from audit.errors import SuiteError
from audit.runner import SuiteRun
from audit.suite import GateSpec, load_suite, suite_from_dict
from fixtures.synthetic import BASE_SUITE, edit_suite, write_pair

# The valid base suite. Line numbers, for reading the expected messages:
#  1 version   2 name   3 data   4 eval   5 target   6 teacher   7 student   8 settings
#  9 checks   10 acc   11 metric   12 gate
BASE = BASE_SUITE
edit = edit_suite
TEACHER = 'teacher: {predictions: teacher.csv, columns: [p_No, p_Yes], classes: ["No", "Yes"]}'
GATE = "gate: {min: 0.5, max_regression: 0.02}"
METRICS = ", ".join(metric_names())  # the registry is the list the message shows
TOP_KEYS = ("version, name, description, include, data, teacher, student, baseline, settings, "
            "checks")
# the base with a baseline model after the student (line 8; later lines move down by one)
WITH_BASELINE = ("settings: {", "baseline: {predictions: teacher.csv, columns: [p_No, p_Yes], "
                                "classes: [\"No\", \"Yes\"]}\nsettings: {")
KINDS = "skops, onnx, callable, predictions, pickle, torch, transformers, causal_lm, lm_eval"


def case(text: str | bytes, expected: str, *, files: dict[str, str | bytes] | None = None,
         id: str) -> Any:  # noqa: A002 - mirrors pytest.param
    return pytest.param(text, files or {}, expected, id=id)


def write(folder: Path, files: dict[str, str | bytes]) -> None:
    for name, content in files.items():
        path = folder / name
        path.parent.mkdir(parents=True, exist_ok=True)
        if isinstance(content, bytes):
            path.write_bytes(content)
        else:
            path.write_text(content, encoding="utf-8")


@pytest.fixture
def here(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """``tmp_path`` as the working directory, holding eval.csv, teacher.csv and student.csv."""
    write_pair(tmp_path, n=40)
    monkeypatch.chdir(tmp_path)
    return tmp_path


MODEL_FILES: dict[str, str | bytes] = {"m.pkl": b"", "m.onnx": b"", "m.skops": b"", "m.bin": b""}

CASES = [
    # -- the file itself ------------------------------------------------------------------
    case("version: 1\nname: [a\n",
         "x.audit.yaml:3: invalid YAML at column 1: expected ',' or ']', but got '<stream end>' "
         "(while parsing a flow sequence that starts at line 2, column 7)",
         id="yaml-syntax-error"),
    case("version: 1\nname: x\n\tdata: 1\n",
         "x.audit.yaml:3: invalid YAML at column 1: found character '\\t' that cannot start any "
         "token; indent with spaces, not tabs",
         id="yaml-tab-indent"),
    case("version: 1\n---\nname: x\n",
         "x.audit.yaml:2: invalid YAML at column 1: expected a single document in the stream, but "
         "found another document; a suite is one YAML document, remove the '---' line",
         id="yaml-two-documents"),
    case("version: !!python/object:os.system 1\n",
         "x.audit.yaml:1: YAML tag !!python/object:os.system is not allowed; suites hold plain "
         "mappings, lists, strings and numbers (remove the tag)",
         id="yaml-python-tag"),
    case("",
         "x.audit.yaml:1: the file is empty; a suite needs at least version, name, data, teacher, "
         "student and checks",
         id="empty-file"),
    case("# nothing here yet\n",
         "x.audit.yaml:1: the file is empty; a suite needs at least version, name, data, teacher, "
         "student and checks",
         id="comments-only"),
    case(b"version: 1\nname: caf\xe9\n",
         "x.audit.yaml:2: not UTF-8 text (invalid continuation byte at byte 20); save the file "
         "as UTF-8",
         id="not-utf8"),
    case("- accuracy\n- agreement\n",
         f"x.audit.yaml:1: the file holds a list; a suite is a mapping with keys {TOP_KEYS}",
         id="top-level-list"),
    case(BASE + "name: other\n",
         "x.audit.yaml:13 name: duplicate key (first defined on line 2); keep one of them",
         id="duplicate-key"),
    case(BASE + "1: one\n",
         "x.audit.yaml:13: key 1 must be a string; quote it ('1')",
         id="non-string-key"),
    # -- unknown and missing keys ---------------------------------------------------------
    case(BASE + "chekcs: {}\n",
         f"x.audit.yaml:13 chekcs: unknown key; did you mean 'checks'? (valid: {TOP_KEYS})",
         id="unknown-top-level-key"),
    case(BASE + "owner: ml-platform\n",
         f"x.audit.yaml:13 owner: unknown key (valid: {TOP_KEYS})",
         id="unknown-top-level-key-no-suggestion"),
    case(edit("gate: {min", "gaet: {min"),
         "x.audit.yaml:12 checks.acc.gaet: unknown key; did you mean 'gate'? "
         "(valid: metric, description, baseline, gate)",
         id="unknown-check-key-gaet"),
    case(edit("{min: 0.5,", "{minimum: 0.5,"),
         "x.audit.yaml:12 checks.acc.gate.minimum: unknown key; did you mean 'min'? "
         "(valid: min, max, max_regression, max_relative_regression, max_baseline_regression, "
         "severity)",
         id="unknown-gate-key"),
    case(edit(TEACHER, "teacher: {onnx: m.onnx, klasses: [a, b]}"),
         "x.audit.yaml:6 teacher.klasses: unknown key; did you mean 'classes'? (valid: skops, "
         "onnx, callable, predictions, pickle, torch, transformers, causal_lm, lm_eval, scoring, "
         "classes, columns, trusted_types, trust, output, tokenizer, max_length, batch_size, "
         "device, mean, std)",
         files=MODEL_FILES, id="unknown-model-key"),
    case(edit("metric: accuracy", "metric: acuracy"),
         f"x.audit.yaml:11 checks.acc.metric='acuracy': unknown metric; did you mean 'accuracy'? "
         f"(valid: {METRICS})",
         id="unknown-metric"),
    case(edit("data:\n  eval: eval.csv\n  target: label\n", ""),
         "x.audit.yaml:1: missing required key 'data' (the evaluation table and, optionally, the "
         "training table); add a data: mapping",
         id="missing-data"),
    case(edit("checks:\n  acc:\n    metric: accuracy\n    " + GATE + "\n", ""),
         "x.audit.yaml:1: missing required key 'checks' (named checks, each a metric with a "
         "gate); add a checks: mapping",
         id="missing-checks"),
    case(edit("  target: label\n", ""),
         "x.audit.yaml:3 data: missing required key 'target'; add target: <name of the label "
         "column>",
         id="missing-target"),
    case(edit("    metric: accuracy\n", ""),
         f"x.audit.yaml:10 checks.acc: missing required key 'metric'; add metric: <one of "
         f"{METRICS}>",
         id="missing-metric"),
    case(edit("version: 1\n", ""),
         "x.audit.yaml:1: missing required key 'version'; add version: 1",
         id="missing-version"),
    case(edit(TEACHER + "\n", ""),
         "x.audit.yaml:1: missing required key 'teacher' (the reference model); add teacher: <a "
         ".skops, .onnx, .pt, .pth or .pt2 file, or a mapping such as {predictions: ..., columns: [...], "
         "classes: "
         "[...]}>",
         id="missing-teacher"),
    # -- types and ranges -----------------------------------------------------------------
    case(edit("version: 1", "version: '1'"),
         "x.audit.yaml:1 version='1': must be an integer; write 1 without quotes",
         id="version-as-string"),
    case(edit("version: 1", "version: 2"),
         "x.audit.yaml:1 version=2: unsupported suite version; this distill-audit reads version 1 "
         "(upgrade distill-audit to read newer suites)",
         id="unsupported-version"),
    case(edit("seed: 0", "seed: 1.5"),
         "x.audit.yaml:8 settings.seed=1.5: must be an integer",
         id="seed-as-float"),
    case(edit("seed: 0", "seed: -1"),
         "x.audit.yaml:8 settings.seed=-1: must be >= 0",
         id="seed-negative"),
    case(edit("seed: 0", "seed: 0, confidence: 1.5"),
         "x.audit.yaml:8 settings.confidence=1.5: must be between 0.5 and 1 (exclusive), e.g. 0.95",
         id="confidence-out-of-range"),
    case(edit("bootstrap: 200", "bootstrap: 10"),
         "x.audit.yaml:8 settings.bootstrap=10: must be between 100 and 100000 replicates",
         id="bootstrap-too-small"),
    case(edit("bootstrap: 200", "inconclusive: wran"),
         "x.audit.yaml:8 settings.inconclusive='wran': must be one of fail, warn; did you mean "
         "'warn'?",
         id="inconclusive-typo"),
    case(edit("settings: {seed: 0, bootstrap: 200}", "settings: fast"),
         "x.audit.yaml:8 settings='fast': must be a mapping with keys seed, confidence, "
         "bootstrap, inconclusive, model_timeout, engine, batch_rows, sample_rows",
         id="settings-not-a-mapping"),
    case(edit("name: synth", "name: my suite"),
         "x.audit.yaml:2 name='my suite': use letters, digits, '_', '.' and '-' only (it names "
         "the report files)",
         id="bad-suite-name"),
    case(edit("name: synth", "name:"),
         "x.audit.yaml:2 name=null: must be a non-empty string",
         id="suite-name-empty"),
    # -- data -----------------------------------------------------------------------------
    case(edit("eval: eval.csv", "eval: evals.csv"),
         "x.audit.yaml:4 data.eval='evals.csv': file not found (evals.csv); paths are relative to "
         "the file that names them",
         id="missing-eval-file"),
    case(edit("eval: eval.csv", "eval: eval.txt"),
         "x.audit.yaml:4 data.eval='eval.txt': must be a .csv or .parquet file (or, for a "
         "language model's items, a .jsonl file)",
         files={"eval.txt": "x,label\n1,No\n"}, id="eval-not-csv-or-parquet"),
    case(edit("  target: label\n", "  target: label\n  features: [x, label]\n"),
         "x.audit.yaml:6 data.features=['x', 'label']: lists the target 'label'; the label must "
         "not be a model input",
         id="target-in-features"),
    case(edit("  target: label\n", "  target: label\n  sensitive: [group, label]\n"),
         "x.audit.yaml:6 data.sensitive=['group', 'label']: lists the target 'label'; slice by "
         "other columns",
         id="target-in-sensitive"),
    case(edit("  target: label\n", "  target: label\n  sensitive: [group, group]\n"),
         "x.audit.yaml:6 data.sensitive=['group', 'group']: lists 'group' twice",
         id="sensitive-listed-twice"),
    case(edit("  target: label\n", "  target: label\n  sensitive: [group, {column: x, bins: [1, 0]}]\n"),
         "x.audit.yaml:6 data.sensitive[1].bins=[1, 0]: edges must be strictly increasing (0 "
         "follows 1); write [0, 1]",
         id="bins-not-increasing"),
    case(edit("  target: label\n", "  target: label\n  sensitive: [{column: x, bins: [0, 0.5, 0.5]}]\n"),
         "x.audit.yaml:6 data.sensitive[0].bins=[0, 0.5, 0.5]: edges must be strictly "
         "increasing (0.5 twice); write [0, 0.5]",
         id="bins-repeated"),
    case(edit("  target: label\n", "  target: label\n  sensitive: [{column: x, bins: []}]\n"),
         "x.audit.yaml:6 data.sensitive[0].bins=[]: must be a non-empty list of numbers (the "
         "bin edges), e.g. [25, 40, 60]",
         id="bins-empty"),
    case(edit("  target: label\n", "  target: label\n  sensitive: [{column: x, bins: 25}]\n"),
         "x.audit.yaml:6 data.sensitive[0].bins=25: must be a non-empty list of numbers (the "
         "bin edges), e.g. [25, 40, 60]",
         id="bins-not-a-list"),
    case(edit("  target: label\n", "  target: label\n  sensitive: [{column: x, bins: [\"1\"]}]\n"),
         "x.audit.yaml:6 data.sensitive[0].bins[0]='1': must be a number; write 1 without "
         "quotes",
         id="bins-quoted-number"),
    case(edit("  target: label\n", "  target: label\n  sensitive: [{column: x, bins: [0, .nan]}]\n"),
         "x.audit.yaml:6 data.sensitive[0].bins[1]=nan: must be a finite number",
         id="bins-nan"),
    case(edit("  target: label\n", "  target: label\n  sensitive: [{column: x, quantiles: 1}]\n"),
         "x.audit.yaml:6 data.sensitive[0].quantiles=1: must be at least 2 (one bin is no "
         "slicing); e.g. 4 for quartiles",
         id="quantiles-one"),
    case(edit("  target: label\n", "  target: label\n  sensitive: [{column: x, quantiles: 2.5}]\n"),
         "x.audit.yaml:6 data.sensitive[0].quantiles=2.5: must be an integer",
         id="quantiles-fraction"),
    case(edit("  target: label\n", "  target: label\n  sensitive: [{column: x, bins: [0], quantiles: 4}]\n"),
         "x.audit.yaml:6 data.sensitive[0]={'column': 'x', 'bins': [0], 'quantiles': 4}: gives"
         " both bins and quantiles; keep one",
         id="bins-and-quantiles"),
    case(edit("  target: label\n", "  target: label\n  sensitive: [{column: x}]\n"),
         "x.audit.yaml:6 data.sensitive[0]={'column': 'x'}: gives no bins; add bins: [25, 40, "
         "60] (the bin edges) or quantiles: 4 (bins of about equal size) (a column whose "
         "values are its groups is listed by its name alone: x)",
         id="binned-without-bins"),
    case(edit("  target: label\n", "  target: label\n  sensitive: [{x: [0, 1]}]\n"),
         "x.audit.yaml:6 data.sensitive[0]={'x': [0, 1]}: a binned column is written {column: "
         "x, bins: [0, 1]} (or {column: x, quantiles: 4})",
         id="binned-shorthand"),
    case(edit("  target: label\n", "  target: label\n  sensitive: [{column: x, edges: [0, 1]}]\n"),
         "x.audit.yaml:6 data.sensitive[0].edges: unknown key; did you mean 'bins'? (valid: "
         "column, bins, quantiles)",
         id="binned-edges-key"),
    case(edit("  target: label\n", "  target: label\n  sensitive: [{bins: [0, 1]}]\n"),
         "x.audit.yaml:6 data.sensitive[0]={'bins': [0, 1]}: names no column; add column: <the"
         " numeric column to bin>",
         id="binned-without-column"),
    case(edit("  target: label\n", "  target: label\n  sensitive: group\n"),
         "x.audit.yaml:6 data.sensitive='group': must be a non-empty list of column names, or "
         "of mappings that bin a numeric column such as {column: age, bins: [25, 40, 60]}; "
         "write [group]",
         id="sensitive-not-a-list"),
    case(edit("  target: label\n", "  target: label\n  sensitive: [group, {column: group, bins: [1]}]\n"),
         "x.audit.yaml:6 data.sensitive=['group', {'column': 'group', 'bins': [1]}]: lists "
         "'group' twice",
         id="sensitive-binned-and-named"),
    case(edit("  target: label\n", "  target: label\n  sensitive: [{column: x, bins: [0]}]\n"
                                    "  categorical: [x]\n"),
         "x.audit.yaml:6 data.sensitive[0].column='x': is binned by its values, but "
         "data.categorical or data.dtypes reads it as text; keep one of the two",
         id="binned-and-categorical"),
    case(edit("  target: label\n", "  target: label\n  positive: Yes\n"),
         'x.audit.yaml:6 data.positive=Yes: YAML reads unquoted Yes as the boolean true; quote '
         'it ("Yes") to use it as a class label',
         id="positive-unquoted-yes"),
    # -- gates ----------------------------------------------------------------------------
    case(edit("max_regression: 0.02", "max_regression: -0.01"),
         "x.audit.yaml:12 checks.acc.gate.max_regression=-0.01: must be >= 0: it bounds how much "
         "worse than the teacher the student may be, and 0 allows no loss at all (requiring a "
         "gain over the teacher is not supported)",
         id="negative-max-regression"),
    case(edit("metric: accuracy", "metric: log_loss",
              GATE, "gate: {max_relative_regression: -0.1}"),
         "x.audit.yaml:12 checks.acc.gate.max_relative_regression=-0.1: must be >= 0: it bounds "
         "how much worse than the teacher the student may be, and 0 allows no loss at all "
         "(requiring a gain over the teacher is not supported)",
         id="negative-relative-regression-lower-is-better"),
    case(edit("metric: accuracy", "metric: agreement"),
         "x.audit.yaml:12 checks.acc.gate.max_regression=0.02: agreement compares the student "
         "with the teacher, so it has no regression; use min or max",
         id="max-regression-on-pairwise-metric"),
    case(edit(GATE, "gate: {min: 0.9, max: 0.8}"),
         "x.audit.yaml:12 checks.acc.gate.min=0.9: is above max=0.8; no value can pass "
         "(swap them?)",
         id="min-above-max"),
    case(edit(GATE, "gate: {min: 78}"),
         "x.audit.yaml:12 checks.acc.gate.min=78: accuracy lies in [0, 1]; this bound can never "
         "be met; bounds are fractions, write 0.78 for 78%",
         id="min-above-metric-range-percent"),
    case(edit("metric: accuracy", "metric: js_divergence", GATE, "gate: {max: -0.1}"),
         "x.audit.yaml:12 checks.acc.gate.max=-0.1: js_divergence lies in [0, 0.693147]; this "
         "bound can never be met; use a value in [0, 0.693147]",
         id="max-below-metric-range"),
    case(edit(GATE, "gate: {min: -0.5}"),
         "x.audit.yaml:12 checks.acc.gate.min=-0.5: accuracy lies in [0, 1]; this bound is always "
         "met (it can never fail); remove it",
         id="min-always-met"),
    case(edit(GATE, "gate: {min: 0}"),
         "x.audit.yaml:12 checks.acc.gate.min=0: accuracy lies in [0, 1]; this bound is always "
         "met (it can never fail); remove it",
         id="min-at-the-lower-edge"),
    case(edit("metric: accuracy", "metric: brier", GATE, "gate: {max: 1}"),
         "x.audit.yaml:12 checks.acc.gate.max=1: brier lies in [0, 1]; this bound is always "
         "met (it can never fail); remove it",
         id="max-at-the-upper-edge"),
    case(edit(GATE, "gate: {max_regression: 1}"),
         "x.audit.yaml:12 checks.acc.gate.max_regression=1: accuracy lies in [0, 1], so the "
         "student can be at most 1 worse than the teacher; this bound is always met (it can "
         "never fail); use a smaller value",
         id="max-regression-always-met"),
    case(edit(GATE, "gate: {max_relative_regression: 1.5}"),
         "x.audit.yaml:12 checks.acc.gate.max_relative_regression=1.5: accuracy is at least 0, "
         "so the student can lose at most all (1) of the teacher's value; this bound is always "
         "met (it can never fail); use a fraction below 1",
         id="max-relative-regression-always-met"),
    # a suite baseline (line 8 below: the base's lines 8-12 move down by one)
    case(edit(GATE, "gate: {max_baseline_regression: 0.01}"),
         "x.audit.yaml:12 checks.acc.gate.max_baseline_regression=0.01: bounds the student "
         "against the suite's baseline model, but the suite names none; add baseline: <the "
         "model in production today> at the top level, or remove this bound",
         id="baseline-gate-without-baseline"),
    case(edit(*WITH_BASELINE, GATE, "baseline: false\n    gate: {max_baseline_regression: 0.01}"),
         "x.audit.yaml:14 checks.acc.gate.max_baseline_regression=0.01: needs the baseline "
         "measured, but this check sets baseline: false; remove one of the two",
         id="baseline-gate-on-a-check-without-baseline"),
    case(edit(*WITH_BASELINE, "metric: accuracy\n    " + GATE,
              "metric: agreement\n    gate: {max_baseline_regression: 0.01}"),
         "x.audit.yaml:13 checks.acc.gate.max_baseline_regression=0.01: agreement compares the "
         "student with the teacher, so it has no regression against the baseline; bound the "
         "student's own value with min or max (the report shows the baseline's value beside it)",
         id="baseline-gate-on-a-pairwise-metric"),
    case(edit(*WITH_BASELINE, GATE, "gate: {max_baseline_regression: -0.01}"),
         "x.audit.yaml:13 checks.acc.gate.max_baseline_regression=-0.01: must be >= 0: it bounds "
         "how much worse than the baseline the student may be, and 0 allows no loss at all "
         "(requiring a gain over the baseline is not supported)",
         id="baseline-gate-negative"),
    case(edit(*WITH_BASELINE, GATE, "gate: {max_baseline_regression: 1}"),
         "x.audit.yaml:13 checks.acc.gate.max_baseline_regression=1: accuracy lies in [0, 1], so "
         "the student can be at most 1 worse than the baseline; this bound is always met (it can "
         "never fail); use a smaller value",
         id="baseline-gate-always-met"),
    case(edit(*WITH_BASELINE, GATE, "baseline: maybe\n    " + GATE),
         "x.audit.yaml:13 checks.acc.baseline='maybe': must be true or false",
         id="check-baseline-not-a-bool"),
    case(edit("student: {predictions: student.csv, columns: [p_No, p_Yes], classes: [\"No\", "
              "\"Yes\"]}\n", "student: {predictions: student.csv, columns: [p_No, p_Yes], "
              "classes: [\"No\", \"Yes\"]}\nbaseline: {predictions: nowhere.csv}\n"),
         "x.audit.yaml:8 baseline.predictions='nowhere.csv': file not found (nowhere.csv); paths "
         "are relative to the file that names them",
         id="baseline-file-not-found"),
    case(edit(GATE, "gate: {severity: warn}"),
         "x.audit.yaml:12 checks.acc.gate={'severity': 'warn'}: sets no bound; give at least one "
         "of min, max, max_regression, max_relative_regression, max_baseline_regression",
         id="gate-without-bounds"),
    case(edit(GATE, "gate: {min: .nan}"),
         "x.audit.yaml:12 checks.acc.gate.min=nan: must be a finite number",
         id="gate-nan"),
    case(edit(GATE, "gate: {min: '0.8'}"),
         "x.audit.yaml:12 checks.acc.gate.min='0.8': must be a number; write 0.8 without quotes",
         id="gate-quoted-number"),
    case(edit(GATE, "gate: {min: 0.5, severity: fatal}"),
         "x.audit.yaml:12 checks.acc.gate.severity='fatal': must be one of block, warn",
         id="bad-severity"),
    case(edit("metric: accuracy", "metric: accuracy\n    average: macro"),
         "x.audit.yaml:12 checks.acc.average='macro': accuracy takes no average (only f1, "
         "precision, recall do); remove it",
         id="average-on-metric-without-average"),
    case(edit("metric: accuracy", "metric: f1\n    average: mcaro"),
         "x.audit.yaml:12 checks.acc.average='mcaro': must be one of binary, macro, micro, "
         "weighted; did you mean 'macro'?",
         id="bad-average-choice"),
    # -- checks ---------------------------------------------------------------------------
    case(edit("  acc:\n", "  my acc:\n"),
         "x.audit.yaml:10 checks.my acc='my acc': check names use letters, digits, '_', '.' and "
         "'-' only (they name test items), e.g. 'my_acc'",
         id="bad-check-name"),
    case(edit("checks:\n  acc:\n    metric: accuracy\n    " + GATE + "\n", "checks: {}\n"),
         "x.audit.yaml:9 checks={}: must be a non-empty mapping of check name -> {metric: ..., "
         "gate: {...}}",
         id="checks-empty"),
    case(edit("  acc:\n    metric: accuracy\n    " + GATE + "\n", "  acc: accuracy\n"),
         "x.audit.yaml:10 checks.acc='accuracy': must be a mapping with keys metric, average, "
         "flips, bins, binning, by, intersections, min_group_size, group_metric, batch_sizes, repeats, "
         "max_seconds, columns, fdr, max_conditions, attack, eps, norm, samples, fraction, "
         "members, non_members, attribute, rows, attack_model, outputs, budgets, source, thief, "
         "trigger, target_class, patch, patch_value, position, corruptions, severities, edits, "
         "candidates, k, bias_type, typos, prompt_tokens, new_tokens, prompts, description, "
         "baseline, gate",
         id="check-not-a-mapping"),
    # -- metric parameters ----------------------------------------------------------------
    case(edit("    metric: accuracy\n", "    metric: accuracy\n    bins: 10\n"),
         "x.audit.yaml:12 checks.acc.bins=10: accuracy takes no bins (only "
         + ", ".join(n for n in metric_names() if "bins" in get_metric(n).params)
         + " do); remove it",
         id="bins-on-accuracy"),
    case(edit("    metric: accuracy\n", "    metric: ece\n    bins: 1\n"),
         "x.audit.yaml:12 checks.acc.bins=1: must be at least 2",
         id="too-few-bins"),
    case(edit("    metric: accuracy\n", "    metric: ece\n    binning: quantile\n"),
         "x.audit.yaml:12 checks.acc.binning='quantile': must be one of equal_width, equal_mass",
         id="bad-binning"),
    case(edit("    metric: accuracy\n    gate: {min: 0.5, max_regression: 0.02}\n",
              "    metric: demographic_parity_difference\n    gate: {max_regression: 0.02}\n"),
         "x.audit.yaml:11 checks.acc.metric='demographic_parity_difference': slices by sensitive "
         "columns, but data.sensitive names none; add data.sensitive: [...]",
         id="fairness-without-sensitive"),
    case(edit("  target: label\n", "  target: label\n  sensitive: [group]\n",
              "    metric: accuracy\n    gate: {min: 0.5, max_regression: 0.02}\n",
              "    metric: worst_group_accuracy\n    by: [grup]\n    gate: {min: 0.5}\n"),
         "x.audit.yaml:13 checks.acc.by[0]='grup': is not a sensitive column; did you mean "
         "'group'?; list it in data.sensitive (now: group)",
         id="by-not-a-sensitive-column"),
    case(edit("  target: label\n", "  target: label\n  missing_sensitive: drop\n"),
         "x.audit.yaml:6 data.missing_sensitive='drop': must be one of error, group; did you mean "
         "'group'?",
         id="bad-missing-sensitive"),
    # -- models ---------------------------------------------------------------------------
    case(edit(TEACHER, "teacher: {pickle: m.pkl}"),
         "x.audit.yaml:6 teacher.pickle='m.pkl': loading a pickle runs code; add trust: true only "
         "if you trust whoever wrote this file (prefer skops or onnx)",
         files=MODEL_FILES, id="pickle-without-trust"),
    case(edit(TEACHER, "teacher: m.pkl"),
         "x.audit.yaml:6 teacher='m.pkl': loading a pickle runs code; if you trust this file "
         "write {pickle: m.pkl, trust: true}",
         files=MODEL_FILES, id="pickle-path-without-trust"),
    case(edit(TEACHER, "teacher: m.bin"),
         "x.audit.yaml:6 teacher='m.bin': cannot tell the model kind from the suffix '.bin'; use "
         f"a .skops, .onnx, .pt, .pth or .pt2 file, or write a mapping with one of {KINDS}",
         files=MODEL_FILES, id="model-unknown-suffix"),
    case(edit(TEACHER, "teacher: 3"),
         "x.audit.yaml:6 teacher=3: must be a model file (.skops, .onnx, .pt, .pth or .pt2) or a mapping "
         f"with one of {KINDS}",
         id="model-not-a-path-or-mapping"),
    case(edit(TEACHER, "teacher: {onnx: m.onnx, skops: m.skops}"),
         "x.audit.yaml:6 teacher={'onnx': 'm.onnx', 'skops': 'm.skops'}: names 2 models (skops, "
         "onnx); keep exactly one",
         files=MODEL_FILES, id="model-two-kinds"),
    case(edit(TEACHER, "teacher: {classes: [a, b]}"),
         f"x.audit.yaml:6 teacher={{'classes': ['a', 'b']}}: names no model; add exactly one of "
         f"{KINDS}",
         id="model-no-kind"),
    case(edit(TEACHER, "teacher: {onnx: m.onnx, trusted_types: [sklearn.tree._tree.Tree]}"),
         "x.audit.yaml:6 teacher.trusted_types=['sklearn.tree._tree.Tree']: does not apply to an "
         "onnx model (it takes classes, output, tokenizer, max_length, batch_size, mean, std); remove it",
         files=MODEL_FILES, id="trusted-types-on-onnx"),
    case(edit(TEACHER, "teacher: {skops: m.skops, trust: true}"),
         "x.audit.yaml:6 teacher.trust=True: does not apply to a skops model (it takes classes, "
         "trusted_types); remove it",
         files=MODEL_FILES, id="trust-on-skops"),
    case(edit(TEACHER, "teacher: {skops: gone.skops}"),
         "x.audit.yaml:6 teacher.skops='gone.skops': file not found (gone.skops); paths are "
         "relative to the file that names them",
         id="missing-model-file"),
    case(edit(TEACHER, 'teacher: {predictions: teacher.csv, classes: ["No", "Yes"]}'),
         "x.audit.yaml:6 teacher.predictions='teacher.csv': a predictions model needs columns "
         "(the probability columns) and classes (their labels, in the same order); add columns: "
         "[...]",
         id="predictions-without-columns"),
    case(edit(TEACHER, 'teacher: {predictions: teacher.csv, columns: [p_No, p_Yes], '
                       'classes: ["No", "Yes", "Maybe"]}'),
         "x.audit.yaml:6 teacher.columns=['p_No', 'p_Yes']: has 2 columns but classes has 3; give "
         "one probability column per class, in the same order",
         id="columns-classes-length-mismatch"),
    case(edit(TEACHER, "teacher: {predictions: m.onnx, columns: [a, b], classes: [a, b]}"),
         "x.audit.yaml:6 teacher.predictions='m.onnx': must be a .csv or .parquet file",
         files=MODEL_FILES, id="predictions-not-a-table"),
    case(edit(TEACHER, "teacher: {predictions: teacher.csv, columns: [p_No, p_Yes], "
                       "classes: [No, Yes]}"),
         'x.audit.yaml:6 teacher.classes[0]=No: YAML reads unquoted No as the boolean false; '
         'quote it ("No") to use it as a class label',
         id="class-label-unquoted-no"),
    case(edit(TEACHER, "teacher: {callable: mymodels.predict, classes: [a, b]}"),
         "x.audit.yaml:6 teacher.callable='mymodels.predict': must be 'module:function' (e.g. "
         "mypkg.models:predict)",
         id="callable-not-module-function"),
    # -- include --------------------------------------------------------------------------
    case(edit("version: 1\n", "version: 1\ninclude: defaults.yaml\n"),
         "x.audit.yaml:2 include='defaults.yaml': file not found (defaults.yaml); paths are "
         "relative to the file that names them",
         id="include-missing-file"),
    case(edit("version: 1\n", "version: 1\ninclude: a.yaml\n"),
         "b.yaml:1 include='a.yaml': include cycle (x.audit.yaml -> a.yaml -> b.yaml -> a.yaml); "
         "remove this include",
         files={"a.yaml": "include: b.yaml\n", "b.yaml": "include: a.yaml\n"},
         id="include-cycle"),
    case(edit("version: 1\n", "version: 1\ninclude: x.audit.yaml\n"),
         "x.audit.yaml:2 include='x.audit.yaml': include cycle (x.audit.yaml -> x.audit.yaml); "
         "remove this include",
         id="include-itself"),
    case(edit("version: 1\n", "version: 1\ninclude: []\n"),
         "x.audit.yaml:2 include=[]: names no file; name a file (or a list of files), or remove "
         "include",
         id="include-empty-list"),
    case(edit("version: 1\n", "version: 1\ninclude: [defaults.yaml, 3]\n"),
         "x.audit.yaml:2 include[1]=3: must be a path (or a list of paths)",
         files={"defaults.yaml": "description: shared\n"}, id="include-not-a-path"),
    case(edit("version: 1\n", "version: 1\ninclude: list.yaml\n"),
         "list.yaml:1: an included file must hold a mapping of suite keys, not a list (included "
         "from x.audit.yaml:2)",
         files={"list.yaml": "- settings\n"}, id="include-not-a-mapping"),
    case(edit("version: 1\n", "version: 1\ninclude: defaults.yaml\n"),
         "defaults.yaml:3 settings.sed: unknown key; did you mean 'seed'? (valid: seed, "
         "confidence, bootstrap, inconclusive, model_timeout, engine, batch_rows, sample_rows)",
         files={"defaults.yaml": "# shared\nsettings:\n  sed: 0\n"},
         id="include-unknown-key-names-included-file"),
    case(edit("version: 1\n", "version: 1\ninclude: defaults.yaml\n",
              "settings: {seed: 0, bootstrap: 200}\n", ""),
         "defaults.yaml:4 settings.bootstrap=5: must be between 100 and 100000 replicates",
         files={"defaults.yaml": "settings:\n  seed: 0\n\n  bootstrap: 5\n"},
         id="include-bad-value-names-included-file"),
    case(edit("version: 1\n", "version: 1\ninclude: shared/data.yaml\n",
              "  eval: eval.csv\n", ""),
         "shared/data.yaml:2 data.eval='eval.csv': file not found (shared/eval.csv); paths are "
         "relative to the file that names them",
         files={"shared/data.yaml": "data:\n  eval: eval.csv\n"},
         id="include-paths-relative-to-included-file"),
    case(edit("version: 1\n", "version: 1\ninclude: defaults.yaml\n",
              "settings: {seed: 0, bootstrap: 200}\n", "settings: {bootstrap: 50}\n"),
         "x.audit.yaml:9 settings.bootstrap=50: must be between 100 and 100000 replicates",
         files={"defaults.yaml": "settings:\n  seed: 0\n  bootstrap: 1000\n"},
         id="include-overridden-key-names-suite"),
]


@pytest.mark.parametrize(("text", "files", "expected"), CASES)
def test_invalid_suite_message(here: Path, text: str | bytes, files: dict[str, str | bytes],
                               expected: str) -> None:
    write(here, {"x.audit.yaml": text, **files})
    with pytest.raises(SuiteError) as excinfo:
        load_suite("x.audit.yaml")
    assert str(excinfo.value) == expected
    assert isinstance(excinfo.value, ValueError)


def test_base_suite_is_valid(here: Path) -> None:
    write(here, {"x.audit.yaml": BASE})
    suite = load_suite("x.audit.yaml")
    assert [c.name for c in suite.checks] == ["acc"]
    assert suite.checks[0].gate == GateSpec(min=0.5, max_regression=0.02)
    assert suite.checks[0].where() == "x.audit.yaml:10"


def test_included_keys_merge_under_the_suite(here: Path) -> None:
    write(here, {"defaults.yaml": "description: shared\nsettings:\n  seed: 7\n  bootstrap: 300\n",
                 "x.audit.yaml": edit("version: 1\n", "version: 1\ninclude: defaults.yaml\n")})
    suite = load_suite("x.audit.yaml")
    assert suite.description == "shared"
    assert (suite.settings.seed, suite.settings.bootstrap) == (0, 200)  # the suite's own win
    assert [Path(p).name for p, _ in suite.includes] == ["defaults.yaml"]


def test_absolute_paths_outside_the_working_directory(tmp_path: Path,
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    write_pair(tmp_path / "suite", n=40)
    write(tmp_path / "suite", {"x.audit.yaml": edit("eval: eval.csv", "eval: evals.csv")})
    (tmp_path / "elsewhere").mkdir()
    monkeypatch.chdir(tmp_path / "elsewhere")
    with pytest.raises(SuiteError) as excinfo:
        load_suite(tmp_path / "suite" / "x.audit.yaml")
    folder = tmp_path / "suite"
    assert str(excinfo.value) == (
        f"{folder / 'x.audit.yaml'}:4 data.eval='evals.csv': file not found "
        f"({folder / 'evals.csv'}); paths are relative to the file that names them")


def test_missing_suite_file(here: Path) -> None:
    with pytest.raises(SuiteError) as excinfo:
        load_suite("nope.audit.yaml")
    assert str(excinfo.value) == "nope.audit.yaml: file not found"


def test_unknown_check_name_has_did_you_mean(here: Path) -> None:
    write(here, {"x.audit.yaml": BASE})
    suite = load_suite("x.audit.yaml")
    with pytest.raises(SuiteError) as excinfo:
        suite.check("acc_")
    assert str(excinfo.value) == ("x.audit.yaml checks: no check named 'acc_'; did you mean 'acc'? "
                                  "(valid: acc)")
    with pytest.raises(SuiteError) as excinfo:
        SuiteRun(suite).run_check("calibration")
    assert str(excinfo.value) == "x.audit.yaml checks: no check named 'calibration' (valid: acc)"


# -- suites built in code ---------------------------------------------------------------------
def _dict_suite(**changes: Any) -> dict[str, Any]:
    d: dict[str, Any] = yaml.safe_load(BASE)
    d.update(changes)
    return d


@pytest.mark.parametrize(("data", "expected"), [
    pytest.param({"version": 1, "name": "x"},
                 "<suite>: missing required key 'data' (the evaluation table and, optionally, the "
                 "training table); add a data: mapping",
                 id="dict-missing-data"),
    pytest.param(_dict_suite(include="defaults.yaml"),
                 "<suite> include='defaults.yaml': include is only supported in suite files; merge "
                 "the shared keys into the dict in Python",
                 id="dict-include"),
    pytest.param(_dict_suite(checks={"acc": {"metric": "accuracy", "gate": {"min": 2}}}),
                 "<suite> checks.acc.gate.min=2: accuracy lies in [0, 1]; this bound can never be "
                 "met; bounds are fractions, write 0.02 for 2%",
                 id="dict-bad-gate"),
    pytest.param(_dict_suite(data={"eval": "evals.csv", "target": "label"}),
                 "<suite> data.eval='evals.csv': file not found (evals.csv); paths are relative to "
                 "the file that names them",
                 id="dict-missing-file"),
])
def test_invalid_dict_suite_message(here: Path, data: dict[str, Any], expected: str) -> None:
    with pytest.raises(SuiteError) as excinfo:
        suite_from_dict(data, base_dir=here)
    assert str(excinfo.value) == expected


# -- inputs that only show when the suite runs --------------------------------------------------
def _csv(path: Path, change: Any) -> None:
    change(pd.read_csv(path)).to_csv(path, index=False, float_format="%.17g")


def _set(row: int, column: str, value: Any) -> Any:
    def change(frame: pd.DataFrame) -> pd.DataFrame:
        frame[column] = frame[column].astype(object)
        frame.loc[row, column] = value
        return frame
    return change


def _write_k3(folder: Path) -> None:
    write_pair(folder, n=40, k=3)


RUNTIME = [
    pytest.param(BASE, lambda d: _csv(d / "eval.csv", _set(3, "label", "Maybe")),
                 "eval.csv column 'label': labels ['Maybe'] (1 row, first at data row 4) are not "
                 "among the models' classes ['No', 'Yes']; drop those rows or audit models that "
                 "know those classes",
                 id="labels-the-models-do-not-know"),
    pytest.param(BASE, lambda d: _csv(d / "teacher.csv", lambda f: f.iloc[:10]),
                 "teacher (teacher.csv): has 10 rows but eval.csv has 40; predictions must follow "
                 "the eval rows one to one",
                 id="predictions-wrong-row-count"),
    pytest.param(BASE, lambda d: _csv(d / "student.csv", lambda f: _set(4, "p_Yes", 0.9)(
                     _set(4, "p_No", 0.5)(f))),
                 "student (student.csv) returned probabilities that sum to 1.4 at data row 5 of "
                 "eval.csv: [0.5, 0.9]; each row must sum to 1 (normalise it, or apply softmax to "
                 "scores)",
                 id="probabilities-do-not-sum-to-one"),
    pytest.param(edit("target: label", "target: labels"), None,
                 "eval.csv: target column 'labels' (data.target) not found; did you mean 'label'? "
                 "(columns: x, group, label)",
                 id="missing-target-column"),
    pytest.param(edit(TEACHER, "teacher: {predictions: teacher.csv, columns: [p_0, p_1, p_2], "
                               "classes: [0, 1, 2]}",
                      'student: {predictions: student.csv, columns: [p_No, p_Yes], classes: ["No", '
                      '"Yes"]}', "student: {predictions: student.csv, columns: [p_0, p_1, p_2], "
                                 "classes: [0, 1, 2]}",
                      "metric: accuracy", "metric: f1\n    average: binary",
                      GATE, "gate: {min: 0.1}"),
                 _write_k3,
                 "x.audit.yaml:10 checks.acc.average='binary': the models have 3 classes; use macro, "
                 "micro or weighted",
                 id="average-binary-on-three-classes"),
]


@pytest.mark.parametrize(("text", "prepare", "expected"), RUNTIME)
def test_runtime_input_error(here: Path, text: str, prepare: Any, expected: str) -> None:
    if prepare is not None:
        prepare(here)
    write(here, {"x.audit.yaml": text})
    run = SuiteRun(load_suite("x.audit.yaml"))
    result = run.run_check("acc")
    assert (result.status, result.error) == ("error", expected)


# -- property: valid gates parse and keep their thresholds ------------------------------------
PER_MODEL = [n for n in metric_names()  # the pair has no train table, and is a table
             if not get_metric(n).pairwise and get_metric(n).tables is None
             and "tabular" in get_metric(n).modalities]
PAIRWISE_UNIT = [n for n in metric_names() if get_metric(n).pairwise
                 and get_metric(n).bounds == (0.0, 1.0) and get_metric(n).tables is None]
unit = st.floats(min_value=0.0, max_value=1.0, allow_nan=False)
nonneg = st.floats(min_value=0.0, max_value=10.0, allow_nan=False)


@st.composite
def gates(draw: st.DrawFn) -> tuple[str, dict[str, Any]]:
    pairwise = draw(st.booleans())
    metric = draw(st.sampled_from(PAIRWISE_UNIT if pairwise else PER_MODEL))
    gate: dict[str, Any] = {}
    low, high = get_metric(metric).bounds  # strictly inside: a bound at the edge never fails
    inside = unit.filter(lambda v: low < v < high)
    lo, hi = sorted((draw(inside), draw(inside)))
    if draw(st.booleans()):
        gate["min"] = lo
    if draw(st.booleans()):
        gate["max"] = hi
    if not pairwise:  # below the bounds that can never fail (refused, tested above)
        m = get_metric(metric)
        width = m.bounds[1] - m.bounds[0]
        caps = {"max_regression": width,
                "max_relative_regression": 1.0 if m.direction == "higher" and m.bounds[0] >= 0
                else np.inf}
        for key, cap in caps.items():
            if draw(st.booleans()):
                gate[key] = draw((nonneg | st.integers(0, 3)).filter(lambda v, c=cap: v < c))
    if not gate:
        gate["min" if draw(st.booleans()) else "max"] = lo
    if draw(st.booleans()):
        gate["severity"] = draw(st.sampled_from(["block", "warn"]))
    return metric, gate


@pytest.fixture(scope="module")
def pair_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("pair")
    write_pair(folder, n=40)
    return folder


@settings(max_examples=150, deadline=None)
@given(gates())
def test_valid_gates_parse_and_round_trip(pair_dir: Path, metric_gate: tuple[str, dict[str, Any]]) -> None:
    metric, gate = metric_gate
    d = _dict_suite(checks={"c": {"metric": metric, "gate": gate}})
    d["data"]["sensitive"] = ["group"]  # fairness metrics slice by it
    spec = suite_from_dict(d, base_dir=pair_dir).check("c")
    assert spec.metric == metric and spec.gate is not None
    expected = [(k, float(gate[k])) for k in ("min", "max", "max_regression", "max_relative_regression")
                if k in gate]
    assert spec.gate.bounds() == expected
    assert all(type(v) is float for _, v in spec.gate.bounds())
    assert spec.gate.severity == gate.get("severity", "block")
    # and the same gate written as YAML reads back identically
    text = yaml.safe_dump({"checks": {"c": {"metric": metric, "gate": gate}}})
    again = suite_from_dict({**d, **yaml.safe_load(text)}, base_dir=pair_dir).check("c")
    assert again.gate == spec.gate
