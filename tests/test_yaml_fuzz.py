"""Fuzz the suite reader: whatever the bytes, the only exception is :class:`SuiteError`.

Three sources of input: random bytes, random text, and random valid-ish YAML built from nested
mappings, lists and scalars with anchors, aliases (defined or not) and tags (allowed or not),
read on its own and as the value of a key of a valid suite (so the suite parser sees it too).
"""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from audit.errors import SuiteError
from audit.suite import load_suite
from audit.yamlsrc import load_yaml_text
from fixtures.synthetic import BASE_SUITE, write_pair

FUZZ = settings(max_examples=200, deadline=None,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])

SUITE = BASE_SUITE
# where a random value goes: (the text it replaces, what it becomes with {v} the value)
SLOTS = [("name: synth", "name: {v}"), ("version: 1", "version: {v}"),
         ("eval: eval.csv", "eval: {v}"), ("target: label", "target: {v}"),
         ("columns: [p_No, p_Yes], classes", "columns: {v}, classes"),
         ("settings: {seed: 0, bootstrap: 200}", "settings: {v}"),
         ("seed: 0", "seed: {v}"), ("    metric: accuracy", "    metric: {v}"),
         ("gate: {min: 0.5, max_regression: 0.02}", "gate: {v}"),
         ("min: 0.5", "min: {v}"), ("  acc:\n", "  {v}:\n"), ("checks:\n  acc:", "checks: {v}\n  acc:"),
         ("version: 1\n", "version: 1\ninclude: {v}\n"),
         ("version: 1\n", "version: 1\ndescription: {v}\n"),
         ("data:\n  eval", "data: {v}\n  eval"), ("  target: label\n", "  target: label\n  {v}\n"),
         ("  target: label\n", "  target: label\n  sensitive: {v}\n"),
         ("  target: label\n", "  target: label\n  dtypes: {v}\n"),
         ("  target: label\n", "  target: label\n  categorical: {v}\n"),
         ("  target: label\n", "  target: label\n  positive: {v}\n"),
         ('teacher: {predictions: teacher.csv', "teacher: {v}\nx: {predictions: teacher.csv"),
         ('classes: ["No", "Yes"]}\nstudent', 'classes: {v}}\nstudent'),
         ("bootstrap: 200}", "bootstrap: 200, inconclusive: {v}}"),
         ("bootstrap: 200}", "bootstrap: 200, model_timeout: {v}}"),
         ("    metric: accuracy\n", "    metric: accuracy\n    {v}\n"),
         ("    metric: accuracy\n", "    metric: demographic_parity_difference\n    by: {v}\n"),
         ("    metric: accuracy\n", "    metric: ece\n    bins: {v}\n"),
         ("max_regression: 0.02}", "max_regression: 0.02, severity: {v}}")]

SCALARS = ["1", "-1", "0", "0.5", "1e400", ".nan", "-.inf", "0x1F", "0o17", "1_000", "yes", "no",
           "on", "null", "~", "true", "2026-11-28", "2020-13-45", "12:30:00", "<<", "=", "''",
           '"x\\ty"', "'a b'", "accuracy", "eval.csv", "x.audit.yaml", "1" * 4400, "é", "a:b",
           "[]", "{}", "-", "?", "|", ">"]
TAGS = ["", "", "", "!!str ", "!!int ", "!!float ", "!!bool ", "!!null ", "!!seq ", "!!map ",
        "!!set ", "!!binary ", "!!omap ", "!!pairs ", "!!timestamp ", "!!merge ", "!!value ",
        "!!python/object:os.system ", "!!python/tuple ", "!!python/name:os.system ", "!foo ", "! ",
        "!<tag:yaml.org,2002:str> ", "!<x> "]
ANCHORS = ["a", "b", "c"]


@st.composite
def yaml_values(draw: st.DrawFn, depth: int = 0) -> str:
    """A flow-style YAML value: a scalar, a list, a mapping or an alias, maybe tagged/anchored."""
    kind = draw(st.sampled_from(["scalar", "scalar", "alias", "list", "map"] if depth < 4
                                else ["scalar", "alias"]))
    if kind == "alias":
        return "*" + draw(st.sampled_from(ANCHORS))
    if kind == "scalar":
        body = draw(st.sampled_from(SCALARS) | st.text(
            st.characters(blacklist_categories=("Cs",)), max_size=8))
    else:
        items = draw(st.lists(yaml_values(depth + 1), max_size=4))
        if kind == "list":
            body = "[" + ", ".join(items) + "]"
        else:
            keys = draw(st.lists(st.sampled_from(["k", "x", "<<", "1", "[a]", "? q"]) |
                                 yaml_values(depth + 1), min_size=len(items),
                                 max_size=len(items)))
            body = "{" + ", ".join(f"{k}: {v}" for k, v in zip(keys, items, strict=True)) + "}"
    anchor = draw(st.sampled_from(["", "", *(f"&{a} " for a in ANCHORS)]))
    return anchor + draw(st.sampled_from(TAGS)) + body


@st.composite
def documents(draw: st.DrawFn) -> str:
    """Block mappings (sometimes nested) of flow values, with the odd bomb or deep nesting."""
    lines = []
    for i in range(draw(st.integers(1, 5))):
        value = draw(yaml_values())
        extra = draw(st.sampled_from(["", "", "", "deep", "bomb", "merge"]))
        if extra == "deep":
            n = draw(st.sampled_from([63, 64, 65, 5000]))
            value = "[" * n + "]" * n
        elif extra == "bomb":
            value = "&b" + str(i) + " [" + ", ".join(["*a"] * 9) + "]"
        elif extra == "merge":
            value = "{<<: " + draw(yaml_values()) + "}"
        lines.append(f"k{i}: {value}")
    return "a: &a [" + ", ".join(["x"] * 9) + "]\n" + "\n".join(lines) + "\n"


@pytest.fixture(scope="module")
def pair(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("fuzz")
    write_pair(folder, n=40)
    return folder


def _load(folder: Path, data: bytes) -> None:
    path = folder / "x.audit.yaml"
    path.write_bytes(data)
    try:
        load_suite(path)
    except SuiteError as exc:
        assert "Traceback" not in str(exc)


@FUZZ
@given(data=st.binary(max_size=400))
def test_random_bytes_raise_only_suite_error(pair: Path, data: bytes) -> None:
    _load(pair, data)


@FUZZ
@given(text=st.text(max_size=300))
def test_random_text_raises_only_suite_error(text: str) -> None:
    try:
        load_yaml_text(text, Path("x.audit.yaml"))
    except SuiteError:
        pass


@FUZZ
@given(text=documents())
def test_valid_ish_documents_raise_only_suite_error(pair: Path, text: str) -> None:
    try:
        load_yaml_text(text, Path("x.audit.yaml"))
    except SuiteError:
        pass
    _load(pair, text.encode("utf-8"))


@FUZZ
@given(slot=st.sampled_from(SLOTS), value=yaml_values())
def test_a_random_value_in_a_suite_raises_only_suite_error(pair: Path, slot: tuple[str, str],
                                                           value: str) -> None:
    old, new = slot
    _load(pair, SUITE.replace(old, new.replace("{v}", value), 1).encode("utf-8"))
