"""Bad inputs, one small case each, asserting the exact message: ONNX external-data locations
(issue 10 item 4) and hostile strings that must reach no terminal, JUnit XML or HTML raw
(item 5).

ONNX cases build a model in ``tmp_path/models`` (the working directory is ``tmp_path``) whose
tensor keeps its data at a location the case chooses; the same check must refuse it from the
hashing (``content_sha256``, which a run calls first), the loader and ``validate --deep``,
before anything reads the location.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from audit.errors import ModelError
from audit.models import content_sha256, load_model
from audit.spec import ModelSpec

# ------------------------------------------------------------------ ONNX external data
FIX = ("keep external data in files inside the model's folder: re-save the model with "
       "onnx.save_model(model, path, save_as_external_data=True, location=\"<file name>\")")
WEIGHTS = np.array([[1.0, -1.0]], dtype=np.float32)  # 8 bytes


def _external(name: str, location: str, **extra: str) -> Any:
    """A float [1, 2] tensor that keeps its data at ``location`` (with ``offset``/``length``)."""
    import onnx

    t = onnx.TensorProto(name=name, data_type=onnx.TensorProto.FLOAT, dims=[1, 2])
    t.data_location = onnx.TensorProto.EXTERNAL
    for key, value in {"location": location, **extra}.items():
        t.external_data.add(key=key, value=value)
    return t


def _model(initializer: list[Any] | None = None, nodes: list[Any] | None = None,
           sparse: list[Any] | None = None) -> Any:
    from onnx import TensorProto, helper

    nodes = nodes or [helper.make_node("MatMul", ["x", "W"], ["z"])]
    nodes = [*nodes, helper.make_node("Softmax", ["z"], ["probabilities"])]
    graph = helper.make_graph(
        nodes, "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [None, 1])],
        [helper.make_tensor_value_info("probabilities", TensorProto.FLOAT, [None, 2])],
        initializer or [], sparse_initializer=sparse or [])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    helper.set_model_props(model, {"classes": json.dumps(["No", "Yes"])})
    return model


def _in_initializer(location: str, **extra: str) -> Any:
    return _model([_external("W", location, **extra)])


def _in_attribute(location: str) -> Any:
    from onnx import helper

    node = helper.make_node("Constant", [], ["W"], value=_external("C", location))
    return _model(nodes=[node, helper.make_node("MatMul", ["x", "W"], ["z"])])


def _in_sparse_initializer(location: str) -> Any:
    import onnx

    values = _external("W", location)
    values.dims[:] = [2]
    indices = onnx.numpy_helper.from_array(np.array([0, 1], dtype=np.int64), "W_indices")
    sparse = onnx.helper.make_sparse_tensor(values, indices, [1, 2])
    return _model(sparse=[sparse])


def _in_subgraph(location: str) -> Any:
    from onnx import TensorProto, helper

    def branch(name: str, init: list[Any]) -> Any:
        return helper.make_graph([helper.make_node("Identity", ["B"], [f"{name}_out"])], name, [],
                                 [helper.make_tensor_value_info(f"{name}_out", TensorProto.FLOAT,
                                                                [1, 2])], init)

    cond = helper.make_tensor("cond", TensorProto.BOOL, [], [True])
    if_node = helper.make_node("If", ["cond"], ["W"],
                               then_branch=branch("then", [_external("B", location)]),
                               else_branch=branch("else", [helper.make_tensor(
                                   "B", TensorProto.FLOAT, [1, 2], [0.0, 0.0])]))
    return _model([cond], nodes=[if_node, helper.make_node("MatMul", ["x", "W"], ["z"])])


def _save(model: Any, folder: Path) -> Path:
    import onnx

    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "m.onnx"
    onnx.save_model(model, str(path))
    return path


def _setup(tmp: Path) -> None:
    """``models/w.bin`` (the 8 weight bytes), ``models/short.bin`` (4 bytes), a folder, a
    fifo, symlinks out of the folder and ``outside.bin`` beside the folder."""
    models = tmp / "models"
    (models / "sub").mkdir(parents=True)
    (models / "w.bin").write_bytes(WEIGHTS.tobytes())
    (models / "short.bin").write_bytes(b"\0" * 4)
    (tmp / "outside.bin").write_bytes(WEIGHTS.tobytes())
    os.mkfifo(models / "pipe")
    (models / "out.bin").symlink_to(tmp / "outside.bin")
    (models / "zero").symlink_to("/dev/zero")


def onnx_case(build: Callable[[Path], Any], problem: str, *, id: str,  # noqa: A002
              fix: str = FIX, tensor: str = "W", location: str | None = None) -> Any:
    return pytest.param(build, problem, fix, tensor, location, id=id)


MISSING_FIX = "copy the model's external-data file there with it, or " + FIX
SHORT_FIX = "the file is truncated or is not this model's: copy it again with the model, or " + FIX
ONNX_CASES = [
    onnx_case(lambda t: _in_initializer("../../../../../../../../dev/zero"),
              "leaves the model's folder {folder} (it resolves to /dev/zero)", id="dotdot-dev-zero"),
    onnx_case(lambda t: _in_initializer("/dev/zero"), "is an absolute path", id="absolute-device"),
    onnx_case(lambda t: _in_initializer(str(t / "outside.bin")), "is an absolute path",
              id="absolute-regular-file"),
    onnx_case(lambda t: _in_initializer("C:\\weights\\w.bin"), "is an absolute path",
              id="absolute-windows-drive"),
    onnx_case(lambda t: _in_initializer("../outside.bin"),
              "leaves the model's folder {folder} (it resolves to {tmp}/outside.bin)",
              id="dotdot-regular-file"),
    onnx_case(lambda t: _in_initializer("sub/../../outside.bin"),
              "leaves the model's folder {folder} (it resolves to {tmp}/outside.bin)",
              id="dotdot-inside-a-subfolder"),
    onnx_case(lambda t: _in_initializer("out.bin"),
              "leaves the model's folder {folder} (it resolves to {tmp}/outside.bin)",
              id="symlink-out-of-the-folder"),
    onnx_case(lambda t: _in_initializer("zero"),
              "leaves the model's folder {folder} (it resolves to /dev/zero)",
              id="symlink-to-a-device"),
    onnx_case(lambda t: _in_initializer("missing.bin"),
              "does not exist (looked for models/missing.bin)", fix=MISSING_FIX, id="missing-file"),
    onnx_case(lambda t: _in_initializer("sub"), "is a folder, not a regular file",
              id="a-folder"),
    onnx_case(lambda t: _in_initializer("pipe"), "is a fifo, not a regular file", id="a-fifo"),
    onnx_case(lambda t: _in_initializer(""), "is empty", id="empty-location"),
    onnx_case(lambda t: _in_initializer("w.bin\0../../dev/zero"), "contains a NUL character",
              id="nul-in-location"),
    onnx_case(lambda t: _in_initializer("w.bin", offset="64"),
              "is 8 bytes long, shorter than offset 64 + the tensor's 8 bytes", fix=SHORT_FIX,
              id="offset-past-the-end"),
    onnx_case(lambda t: _in_initializer("w.bin", offset="0", length="4096"),
              "is 8 bytes long, shorter than offset 0 + length 4096", fix=SHORT_FIX,
              id="length-past-the-end"),
    onnx_case(lambda t: _in_initializer("short.bin"),
              "is 4 bytes long, shorter than offset 0 + the tensor's 8 bytes", fix=SHORT_FIX,
              location="short.bin", id="truncated-file"),
    onnx_case(lambda t: _in_initializer("w.bin", offset="-4"),
              "has offset '-4', not a whole number >= 0", id="negative-offset"),
    onnx_case(lambda t: _in_initializer("w.bin", length="lots"),
              "has length 'lots', not a whole number >= 0", id="length-not-a-number"),
    onnx_case(lambda t: _in_attribute("../../../../../../../../dev/zero"),
              "leaves the model's folder {folder} (it resolves to /dev/zero)", tensor="C",
              id="attribute-tensor"),
    onnx_case(lambda t: _in_sparse_initializer("/dev/zero"), "is an absolute path",
              id="sparse-initializer"),
    onnx_case(lambda t: _in_subgraph("../outside.bin"),
              "leaves the model's folder {folder} (it resolves to {tmp}/outside.bin)",
              tensor="B", id="subgraph-initializer"),
]


@pytest.fixture
def onnx_here(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    _setup(tmp_path)
    monkeypatch.chdir(tmp_path)
    return tmp_path


@pytest.mark.parametrize(("build", "problem", "fix", "tensor", "location"), ONNX_CASES)
def test_onnx_external_data_is_refused_before_anything_reads_it(
        onnx_here: Path, build: Callable[[Path], Any], problem: str, fix: str, tensor: str,
        location: str | None) -> None:
    model = build(onnx_here)
    path = _save(model, onnx_here / "models")
    raw = location if location is not None else next(
        e.value for t in _tensors(model) for e in t.external_data if e.key == "location")
    folder = (onnx_here / "models").resolve()
    expected = (f"models/m.onnx: tensor {tensor!r} keeps its data at external location {raw!r}, "
                f"which {problem.format(folder=folder, tmp=onnx_here.resolve())}; {fix}")
    spec = ModelSpec(kind="onnx", path=path)
    for action in (lambda: content_sha256(spec), lambda: load_model(spec, "student")):
        with pytest.raises(ModelError) as info:
            action()
        assert str(info.value) == expected
        assert "Traceback" not in str(info.value) and "\n" not in str(info.value)


def _tensors(model: Any) -> list[Any]:
    from audit.models.onnx import _all_tensors

    return list(_all_tensors(model))


def test_onnx_external_data_in_the_folder_and_below_it_loads_and_is_hashed(onnx_here: Path) -> None:
    """The real thing, saved by onnx: weights beside the model and in a subfolder."""
    import onnx
    from onnx.external_data_helper import convert_model_to_external_data

    from audit.data import load_table
    from audit.spec import DataSpec

    model = _model([onnx.numpy_helper.from_array(WEIGHTS, "W")])
    convert_model_to_external_data(model, location="sub/weights.bin", size_threshold=0)
    path = onnx_here / "models" / "m.onnx"
    onnx.save_model(model, str(path))
    spec = ModelSpec(kind="onnx", path=path)
    before = content_sha256(spec)
    loaded = load_model(spec, "student")
    assert loaded.sha256 == before
    (onnx_here / "eval.csv").write_text("x,label\n1,Yes\n-1,No\n", encoding="utf-8")
    table = load_table(DataSpec(eval=onnx_here / "eval.csv", target="label", features=("x",)))
    assert loaded.predict_proba(table).argmax(axis=1).tolist() == [0, 1]
    weights = onnx_here / "models" / "sub" / "weights.bin"
    weights.write_bytes(weights.read_bytes()[::-1])
    assert content_sha256(spec) != before


ONNX_SUITE = """\
version: 1
name: ext
data: {eval: eval.csv, target: label, features: [x]}
teacher: {predictions: teacher.csv, columns: [p_No, p_Yes], classes: ["No", "Yes"]}
student: models/m.onnx
settings: {seed: 0, bootstrap: 200}
checks:
  acc: {metric: accuracy}
"""


def test_run_and_validate_deep_refuse_dev_zero_with_one_line(
        onnx_here: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """Today ``run`` hashed ``../../dev/zero`` forever; both commands now stop at the check."""
    from audit.cli import main
    from fixtures.synthetic import write_pair

    write_pair(onnx_here, n=40)
    _save(_in_initializer("../../../../../../../../dev/zero"), onnx_here / "models")
    (onnx_here / "x.audit.yaml").write_text(ONNX_SUITE, encoding="utf-8")
    folder = (onnx_here / "models").resolve()
    message = ("models/m.onnx: tensor 'W' keeps its data at external location "
               "'../../../../../../../../dev/zero', which leaves the model's folder "
               f"{folder} (it resolves to /dev/zero); {FIX}")
    assert main(["validate", "--deep", "x.audit.yaml"]) == 2
    assert capsys.readouterr().err == f"error: x.audit.yaml: {message}\n"
    assert main(["run", "x.audit.yaml", "--report-dir", "reports", "-q"]) == 1
    out = capsys.readouterr().out
    assert f"  ERROR: {message}" in out.splitlines()
    assert "Traceback" not in out
    html = next((onnx_here / "reports" / "ext").glob("2*.html")).read_text(encoding="utf-8")
    assert "Traceback" not in html and "dev/zero" in html


# ------------------------------------------------------------------ hostile strings
def esc_case(text: str, shown: str, *, id: str) -> Any:  # noqa: A002
    return pytest.param(text, shown, id=id)


HOSTILE_CASES = [
    esc_case("\x1b[2K\r  accuracy PASSED", "\\x1b[2K\\r  accuracy PASSED",
             id="ansi-erase-line-fake-pass"),
    esc_case("\x1b[1A\x1b[2K-> PASS", "\\x1b[1A\\x1b[2K-> PASS", id="ansi-cursor-up"),
    esc_case("\x9b2Kc1", "\\x9b2Kc1", id="c1-csi"),
    esc_case("\x1b]8;;https://evil.example\x1b\\link\x1b]8;;\x1b\\",
             "\\x1b]8;;https://evil.example\\x1b\\link\\x1b]8;;\\x1b\\", id="osc8-hyperlink"),
    esc_case("FAIL\b\b\b\bPASS", "FAIL\\x08\\x08\\x08\\x08PASS", id="backspaces"),
    esc_case("bell\x07", "bell\\x07", id="bell"),
    esc_case("nul\x00byte", "nul\\x00byte", id="nul"),
    esc_case("del\x7f", "del\\x7f", id="del"),
    esc_case("a\n  student 0.99 -> PASS", "a\\n  student 0.99 -> PASS", id="newline-fake-line"),
    esc_case("tab\there", "tab\\there", id="tab"),
    esc_case("\u202eSSAP", "\\u202eSSAP", id="bidi-override-rlo"),
    esc_case("\u202a\u202b\u202c\u202d", "\\u202a\\u202b\\u202c\\u202d", id="bidi-embeddings"),
    esc_case("\u2066\u2067\u2068\u2069", "\\u2066\\u2067\\u2068\\u2069", id="bidi-isolates"),
    esc_case("\u200e\u200f\u061c", "\\u200e\\u200f\\u061c", id="bidi-marks"),
    esc_case("zero\u200bwidth\u200c\u200d\u2060", "zero\\u200bwidth\\u200c\\u200d\\u2060",
             id="zero-width"),
    esc_case("\ufeffbom", "\\ufeffbom", id="byte-order-mark"),
    esc_case("soft\u00adhyphen", "soft\\xadhyphen", id="soft-hyphen"),
    esc_case("line\u2028para\u2029", "line\\u2028para\\u2029", id="line-paragraph-separators"),
    esc_case("tag\U000e0041", "tag\\U000e0041", id="tag-character"),
]
KEPT = ["café", "名前", "Ελληνικά", "שלום", "مرحبا", "🙂", "a\u00a0b", "x_1.y-2 (n=3)"]


@pytest.mark.parametrize(("text", "shown"), HOSTILE_CASES)
def test_a_hostile_string_is_shown_escaped_in_terminal_junit_and_html(text: str, shown: str) -> None:
    from markupsafe import escape

    from audit.plugin import _junit_properties
    from audit.report.html import render_html
    from audit.report.terminal import format_check
    from audit.results import CheckResult, Estimate, GateResult, Measurement
    from audit.safe import visible

    assert visible(text) == shown
    assert visible(shown) == shown  # nothing left to escape
    m = Measurement("accuracy", "higher", Estimate(0.8, (0.7, 0.9)), teacher=Estimate(0.9),
                    params={"by": text}, notes=(f"group {text} is small",),
                    breakdown=({"kind": "group", "group": text, "n": 5, "status": "ok",
                                "teacher": {"accuracy": 0.9}, "student": {"accuracy": 0.8}},))
    g = GateResult("min", 0.95, "fail", "block", "min 0.95", Estimate(0.8, (0.7, 0.9)),
                   scope=f"by {text}")
    result = CheckResult("acc", "fail", (m,), (g,), description=text, location=text)
    assert format_check(result).splitlines()[:3] == [
        f"  accuracy [by {shown}] student 0.800 [0.700, 0.900]   teacher 0.900",
        f"  student [by {shown}] 0.800 [0.700, 0.900]  <  min 0.95   -> FAIL",
        f"  note: group {shown} is small"]
    error = CheckResult("acc", "error", error=f"eval.csv: column {text} is bad")
    assert format_check(error) == visible(f"  ERROR: eval.csv: column {text} is bad",
                                          newlines=True)
    props = dict(_junit_properties(result))
    assert props[f"audit.accuracy[by {shown}].student"] == "0.8"
    assert props[f"audit.gate.min[by {shown}]"] == "fail (threshold 0.95)"
    html = render_html(_escape_report((result, error)))
    raw = [ch for ch in text if visible(ch) != ch and ch not in "\n\t"]
    assert not [ch for ch in raw if ch in html]
    assert "Traceback" not in html
    escaped = str(escape(visible(text, newlines=True)))  # a line break is harmless in HTML
    assert html.count(escaped) >= 4  # the gate row, the note, the group row, the plot


@pytest.mark.parametrize(("text", "shown"), HOSTILE_CASES[:6])
def test_the_diff_page_shows_hostile_names_escaped(text: str, shown: str) -> None:
    """``distill-audit diff`` renders its own page: the same escaping applies there."""
    from audit.report.diff import diff_reports, format_diff, render_diff_html
    from audit.results import AuditReport, CheckResult

    old = AuditReport.from_dict(_escape_report((CheckResult(text, "pass"),)))
    new = AuditReport.from_dict(_escape_report((CheckResult(text, "fail"),)))
    d = diff_reports(old, new)
    html = render_diff_html(d)
    raw = [ch for ch in text if visible_char(ch) and ch not in "\n\t"]
    assert not [ch for ch in raw if ch in html]
    assert shown.strip() and any(shown in line or text not in line for line in format_diff(d))


def visible_char(ch: str) -> bool:
    from audit.safe import visible

    return visible(ch) != ch


def _escape_report(checks: tuple[Any, ...]) -> dict[str, Any]:
    from audit.results import AuditReport

    settings = {"seed": 0, "confidence": 0.95, "bootstrap": 100, "inconclusive": "fail"}
    return AuditReport(
        suite={"name": "demo", "path": "demo.audit.yaml", "sha256": "ab" * 32, "description": "",
               "text": "version: 1\n", "includes": [], "not_run": [], "settings": settings},
        verdict="fail", checks=checks,
        provenance={"teacher": {"kind": "skops", "path": "t.skops", "sha256": "1" * 64},
                    "student": {"kind": "onnx", "path": "s.onnx", "sha256": "2" * 64},
                    "data": {}, "versions": {}, "environment": {}, "git": None, "created": "t0",
                    "finished": "t1", "seed": 0, "warnings": []}).to_dict()


@pytest.mark.parametrize("text", KEPT)
def test_ordinary_text_of_every_script_is_kept(text: str) -> None:
    from audit.safe import visible

    assert visible(text) == text


# a sensitive column named with an escape, holding a value that would erase the line and
# print a fake PASS (ESC [1G moves to column 1, as a carriage return would) and a bidi override
COLUMN = "gr\x1b[31moup"
FAKE = "\x1b[2K\x1b[1G  synthetic.audit.yaml::worst PASSED \u202eSSAP\u2066"
HIDDEN = ["\x1b", "\x9b", "\u202e", "\u2066"]
CHECKS = {"parity": {"metric": "demographic_parity_difference", "by": [COLUMN],
                     "gate": {"max_regression": 0.0}},
          "worst": {"metric": "worst_group_accuracy", "by": [COLUMN], "gate": {"min": 0.99}}}


def _hostile_suite(folder: Path) -> Path:
    import pandas as pd
    import yaml

    from fixtures.synthetic import write_pair, write_suite

    write_pair(folder, n=200, degrade=0.2)
    frame = pd.read_csv(folder / "eval.csv")
    frame["group"] = frame["group"].map({"a": FAKE, "b": "b"})
    frame.rename(columns={"group": COLUMN}).to_csv(folder / "eval.csv", index=False)
    path = write_suite(folder, CHECKS)
    suite = yaml.safe_load(path.read_text(encoding="utf-8"))
    suite["data"]["sensitive"] = [COLUMN]
    path.write_text(yaml.safe_dump(suite, sort_keys=False), encoding="utf-8")
    return path


def _assert_rendered_safely(report_dir: Path, *texts: str) -> None:
    from audit.safe import visible

    for text in texts:
        assert not [ch for ch in HIDDEN if ch in text], visible(text)[:300]
        assert "Traceback" not in text
    html = next(report_dir.glob("2*.html")).read_text(encoding="utf-8")
    assert not [ch for ch in HIDDEN + ["\u200b", "\r"] if ch in html]
    assert visible(FAKE) in html and visible(COLUMN) in html
    record = json.loads(next(report_dir.glob("2*.json")).read_text(encoding="utf-8"))
    groups = {b["group"] for c in record["checks"] for m in c["measurements"]
              for b in m["breakdown"] if b.get("kind") == "group"}
    assert groups == {f"{COLUMN}={FAKE}", f"{COLUMN}=b"}  # the JSON is the record: exact values


@pytest.mark.parametrize("xdist", [pytest.param([], id="one-process"),
                                   pytest.param(["-n", "2"], id="xdist", marks=pytest.mark.slow)])
def test_pytest_run_prints_no_raw_escape_to_the_terminal_or_the_junit_xml(
        pytester: pytest.Pytester, xdist: list[str]) -> None:
    from audit.safe import visible

    _hostile_suite(pytester.path)
    result = pytester.runpytest("--junitxml=out.xml", *xdist)
    result.assert_outcomes(failed=2)
    shown = visible(COLUMN)
    result.stdout.fnmatch_lines([p.replace("[", "[[]") for p in (
        f"  student [by {shown}] * -> FAIL",
        f"  FAIL         worst: student [by {shown}] *-> FAIL")])
    xml = (pytester.path / "out.xml").read_text(encoding="utf-8")
    assert f'name="audit.worst_group_accuracy[by {shown}].student"' in xml
    _assert_rendered_safely(pytester.path / "reports" / "synthetic", result.stdout.str(),
                            result.stderr.str(), xml)


def test_cli_run_and_validate_print_no_raw_escape(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                  capsys: pytest.CaptureFixture[str]) -> None:
    from audit.cli import main

    monkeypatch.chdir(tmp_path)
    suite = _hostile_suite(tmp_path)
    assert main(["run", suite.name, "--report-dir", "reports", "-q"]) == 1
    out, err = capsys.readouterr()
    _assert_rendered_safely(tmp_path / "reports" / "synthetic", out, err)
    # a suite file whose very name would clear the line
    evil = tmp_path / "\x1b[2Kx.audit.yaml"
    evil.write_text(suite.read_text(encoding="utf-8"), encoding="utf-8")
    assert main(["validate", evil.name]) == 0
    assert capsys.readouterr() == (
        "ok: \\x1b[2Kx.audit.yaml: suite 'synthetic', 2 checks (parity, worst)\n", "")


def test_the_summary_keeps_a_failing_gate_whose_group_is_named_pass() -> None:
    """The summary picked gate lines by the word PASS anywhere in them, so a column named
    PASS hid its failing gate; a passing gate line is the one that ends in -> PASS."""
    from audit.report.terminal import format_summary
    from audit.results import AuditReport, CheckResult, Estimate, GateResult, Measurement

    m = Measurement("worst_group_accuracy", "higher", Estimate(0.7, (0.6, 0.8)),
                    params={"by": "PASS"})
    g = GateResult("min", 0.9, "fail", "block", "min 0.9", Estimate(0.7, (0.6, 0.8)),
                   scope="by PASS")
    report = AuditReport.from_dict(_escape_report((CheckResult("worst", "fail", (m,), (g,)),)))
    assert format_summary([(report, [])])[1] == (
        "  FAIL         worst: student [by PASS] 0.700 [0.600, 0.800]  <  min 0.9   -> FAIL")


def test_onnxruntime_writes_no_coloured_log_line_to_stderr(
        onnx_here: Path, monkeypatch: pytest.MonkeyPatch, capfd: pytest.CaptureFixture[str]) -> None:
    """onnxruntime logs its load errors to stderr with ANSI colours, besides raising them;
    the loader silences the log (the exception carries the message). The external-data check
    is switched off here so that onnxruntime itself meets the folder."""
    monkeypatch.setattr("audit.models.onnx.onnx_external_files", lambda path: [])
    path = _save(_in_initializer("sub"), onnx_here / "models")
    with pytest.raises(ModelError, match=r"^student \(models/m.onnx\): onnxruntime cannot open"):
        load_model(ModelSpec(kind="onnx", path=path), "student")
    assert "\x1b" not in capfd.readouterr().err
