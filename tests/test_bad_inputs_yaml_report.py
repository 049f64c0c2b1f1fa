"""Bad YAML, bad suite names, bad JSON reports and report locations that cannot be written.

One small case each, asserting the exact located message and that no traceback shows. The
suites start from ``BASE`` (line numbers below); the working directory is the case's
``tmp_path``, so paths in messages are relative. Reports that cannot go where they were asked
go to the fallback folder, which the tests point at ``tmp_path/tmp`` (``tempfile.tempdir``).
"""

from __future__ import annotations

import errno
import json
import multiprocessing
import tempfile
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest

from audit.cli import main
from audit.errors import SuiteError, display_path
from audit.report import writer
from audit.report.writer import write_report
from audit.results import AuditReport, CheckResult
from audit.suite import load_suite
from fixtures.synthetic import BASE_SUITE, edit_suite, write_pair

# The valid base suite. Line numbers, for reading the expected messages:
#  1 version   2 name   3 data   4 eval   5 target   6 teacher   7 student   8 settings
#  9 checks   10 acc   11 metric   12 gate
BASE = BASE_SUITE
edit = edit_suite
TAG = "YAML tag {} is not allowed; suites hold plain mappings, lists, strings and numbers " \
      "(remove the tag)"
CHARS = "use letters, digits, '_', '.' and '-' only (it names the report files)"


def laughs(levels: int) -> str:
    """The billion-laughs bomb: each level an anchored list of nine aliases of the last."""
    lines = ["lol0: &l0 [lol, lol, lol, lol, lol, lol, lol, lol, lol]"]
    lines += [f"lol{i}: &l{i} [{', '.join([f'*l{i - 1}'] * 9)}]" for i in range(1, levels + 1)]
    return "\n".join(lines) + "\n"


BOMB = laughs(8)  # 9**9 = 387 million strings from about 500 bytes
assert len(BOMB) < 600


@pytest.fixture
def here(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """``tmp_path`` as the working directory (holding the synthetic pair); the fallback
    report folder under ``tmp_path/tmp``."""
    write_pair(tmp_path, n=40)
    monkeypatch.chdir(tmp_path)
    (tmp_path / "tmp").mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path / "tmp"))
    return tmp_path


# -- YAML and suite names ---------------------------------------------------------------------
SUITES = [
    pytest.param(edit("version: 1\n", "version: 1\n" + BOMB),
                 "x.audit.yaml:7: alias *l4 expands the file past 100000 values (aliases of "
                 "aliases multiply); a suite needs far fewer, use fewer nested aliases",
                 id="billion-laughs"),
    pytest.param(edit("version: 1\n", "version: 1\nlol: &a [1, [2, *a]]\n"),
                 "x.audit.yaml:2: alias *a is inside the value &a names (a loop); point it at a "
                 "value defined before it",
                 id="alias-inside-its-anchor"),
    pytest.param(edit("name: synth", "name: " + "[" * 5000 + "]" * 5000),
                 "x.audit.yaml:2: mappings and lists nested more than 64 levels deep; a suite "
                 "needs a few levels, remove the extra nesting",
                 id="5000-nested-brackets"),
    pytest.param(edit("name: synth", "name: " + "{a: " * 5000 + "1" + "}" * 5000),
                 "x.audit.yaml:2: mappings and lists nested more than 64 levels deep; a suite "
                 "needs a few levels, remove the extra nesting",
                 id="5000-nested-mappings"),
    pytest.param(edit("name: synth\n", "name: synth\ndescription:\n" + "".join(
                     " " * (2 * i) + "-\n" for i in range(1, 70))),
                 "x.audit.yaml:67: mappings and lists nested more than 64 levels deep; a suite "
                 "needs a few levels, remove the extra nesting",
                 id="deep-block-lists"),
    pytest.param(edit("checks:\n", "checks: !!python/object:audit.suite.Suite\n"),
                 "x.audit.yaml:9: " + TAG.format("!!python/object:audit.suite.Suite"),
                 id="python-tag-on-a-mapping"),
    pytest.param(edit("teacher.csv, columns: [p_No", "teacher.csv, columns: !!python/tuple [p_No"),
                 "x.audit.yaml:6: " + TAG.format("!!python/tuple"),
                 id="python-tag-on-a-list"),
    pytest.param(edit("name: synth", "name: !!python/name:os.system synth"),
                 "x.audit.yaml:2: " + TAG.format("!!python/name:os.system"),
                 id="python-tag-on-a-scalar"),
    pytest.param(edit("settings: {", "settings: !local {"),
                 "x.audit.yaml:8: " + TAG.format("!local"),
                 id="local-tag-on-a-mapping"),
    pytest.param(edit("settings: {seed: 0, bootstrap: 200}", "settings: !!set {seed, bootstrap}"),
                 "x.audit.yaml:8: " + TAG.format("!!set"),
                 id="set-tag"),
    pytest.param(edit("settings: {seed: 0, bootstrap: 200}",
                      "settings: !!omap [seed: 0, bootstrap: 200]"),
                 "x.audit.yaml:8: " + TAG.format("!!omap"),
                 id="omap-tag"),
    pytest.param(edit("name: synth", "name: !!binary c3ludGg="),
                 "x.audit.yaml:2: " + TAG.format("!!binary"),
                 id="binary-tag"),
    pytest.param(edit("name: synth", "name: !!timestamp 2026-11-28"),
                 "x.audit.yaml:2: " + TAG.format("!!timestamp"),
                 id="timestamp-tag"),
    pytest.param(edit("name: synth", "name: ! synth"),
                 "x.audit.yaml:2: " + TAG.format("!"),
                 id="non-specific-tag"),
    pytest.param(edit("name: synth", "name: !<tag:example.com,2026:x> synth"),
                 "x.audit.yaml:2: " + TAG.format("tag:example.com,2026:x"),
                 id="verbatim-tag"),
    pytest.param(edit("teacher.csv, columns: [p_No", "teacher.csv, columns: !!str [p_No"),
                 "x.audit.yaml:6: " + TAG.format("!!str"),
                 id="scalar-tag-on-a-list"),
    pytest.param(edit("seed: 0", "seed: !!int zero"),
                 "x.audit.yaml:8: ='zero': tagged !!int but is not an integer; remove the tag",
                 id="int-tag-on-text"),
    pytest.param(edit("seed: 0", "seed: " + "9" * 4400),
                 "x.audit.yaml:8: ='" + "9" * 56 + "...: cannot be read as !!int (Exceeds the "
                 "limit (4300 digits) for integer string conversion: value has 4400 digits); "
                 "quote it to keep it as text",
                 id="4400-digit-integer"),
    pytest.param(edit("name: synth", "name: syn\x07th"),
                 "x.audit.yaml:2: invalid YAML at column 10: character U+0007 is not allowed in "
                 "YAML text; remove it",
                 id="control-character-in-the-file"),
    pytest.param(edit("name: synth", "name: " + "s" * 300),
                 "x.audit.yaml:2 name='" + "s" * 56 + "...: is 300 characters long; use at most "
                 "100 (it names the report folder)",
                 id="name-300-characters"),
    pytest.param(edit("name: synth", 'name: "synth\\n"'),
                 f"x.audit.yaml:2 name='synth\\n': {CHARS}",
                 id="name-ends-in-a-newline"),
    pytest.param(edit("name: synth", 'name: "syn\\nth"'),
                 f"x.audit.yaml:2 name='syn\\nth': {CHARS}",
                 id="name-with-a-newline"),
    pytest.param(edit("name: synth", "name: ../../etc/synth"),
                 f"x.audit.yaml:2 name='../../etc/synth': {CHARS}",
                 id="name-with-slashes"),
    pytest.param(edit("name: synth", 'name: "syn\\e[31mth"'),
                 f"x.audit.yaml:2 name='syn\\x1b[31mth': {CHARS}",
                 id="name-with-an-escape-sequence"),
    pytest.param(edit("name: synth", 'name: "syn\\tth"'),
                 f"x.audit.yaml:2 name='syn\\tth': {CHARS}",
                 id="name-with-a-tab"),
    pytest.param(edit("  acc:\n", '  "acc\\n":\n'),
                 "x.audit.yaml:10 checks['acc\\n']='acc\\n': check names use letters, digits, '_', "
                 "'.' and '-' only (they name test items), e.g. 'acc'",
                 id="check-name-ends-in-a-newline"),
    pytest.param(edit("  acc:\n", '  "acc\\e[32m PASS":\n'),
                 "x.audit.yaml:10 checks['acc\\x1b[32m PASS']='acc\\x1b[32m PASS': check names use "
                 "letters, digits, '_', '.' and '-' only (they name test items), e.g. 'acc_32m_PASS'",
                 id="check-name-with-an-escape-sequence"),
]


@pytest.mark.parametrize(("text", "expected"), SUITES)
def test_bad_suite_message(here: Path, text: str, expected: str) -> None:
    (here / "x.audit.yaml").write_text(text, encoding="utf-8")
    with pytest.raises(SuiteError) as excinfo:
        load_suite("x.audit.yaml")
    assert str(excinfo.value) == expected
    assert "Traceback" not in str(excinfo.value)


@pytest.mark.parametrize("text", [
    pytest.param(edit("name: synth\n", "name: synth\ndescription: !!str 2026\n"), id="str-tag"),
    pytest.param(edit("seed: 0", "seed: !!int 0"), id="int-tag"),
    pytest.param(edit("{min: 0.5,", "{min: !!float 0.5,"), id="float-tag"),
    pytest.param(edit("settings: {", "settings: !!map {"), id="map-tag"),
    pytest.param(edit("teacher.csv, columns: [p_No", "teacher.csv, columns: !!seq [p_No"), id="seq-tag"),
    pytest.param(edit("name: synth\n", "name: synth\ndescription: 2026-11-28\n"), id="date-is-text"),
    pytest.param(edit("checks:\n", "defaults: &gate {min: 0.5}\nchecks:\n")
                 .replace("defaults:", "x-defaults:"), id="anchor-in-an-unknown-key-still-refused"),
    pytest.param(edit("settings: {seed: 0, bootstrap: 200}\n",
                      "settings: &s {seed: 0, bootstrap: 200}\n",
                      "gate: {min: 0.5, max_regression: 0.02}\n",
                      "gate: {<<: {min: 0.5}, max_regression: 0.02}\n"), id="merge-key"),
    pytest.param(edit("name: synth", "name: " + "s" * 100), id="name-100-characters"),
])
def test_core_tags_merge_keys_and_long_names_stay_valid(here: Path, text: str) -> None:
    (here / "x.audit.yaml").write_text(text, encoding="utf-8")
    if "x-defaults" in text:  # an unknown key is still an unknown key
        with pytest.raises(SuiteError, match="x-defaults: unknown key"):
            load_suite("x.audit.yaml")
        return
    suite = load_suite("x.audit.yaml")
    assert [c.name for c in suite.checks] == ["acc"]
    if "2026-11-28" in text:
        assert suite.description == "2026-11-28"


def test_a_huge_suite_file_is_refused_unread(here: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import audit.yamlsrc

    monkeypatch.setattr(audit.yamlsrc, "MAX_BYTES", 1000)  # 10 MB in the real reader
    (here / "x.audit.yaml").write_text(BASE + "# " + "x" * 1000 + "\n", encoding="utf-8")
    with pytest.raises(SuiteError) as excinfo:
        load_suite("x.audit.yaml")
    assert str(excinfo.value) == ("x.audit.yaml: is larger than 1,000 bytes; a suite is a short text "
                                  "file (put data in the files it names)")


def test_a_chain_of_500_includes_is_refused_at_depth_16(here: Path) -> None:
    (here / "x.audit.yaml").write_text(edit("version: 1\n", "version: 1\ninclude: i1.yaml\n"))
    for i in range(1, 500):
        (here / f"i{i}.yaml").write_text(f"include: i{i + 1}.yaml\n")
    (here / "i500.yaml").write_text("description: deep\n")
    with pytest.raises(SuiteError) as excinfo:
        load_suite("x.audit.yaml")
    assert str(excinfo.value) == ("i16.yaml:1 include='i17.yaml': includes nested more than 16 "
                                  "deep (x.audit.yaml -> ... -> i16.yaml); include the shared "
                                  "files from the suite itself")


def test_the_bomb_is_refused_quickly(here: Path) -> None:
    """The refusal comes from counting, not from building 387 million strings."""
    import time

    (here / "x.audit.yaml").write_text(BASE + laughs(12), encoding="utf-8")
    start = time.perf_counter()
    with pytest.raises(SuiteError, match="expands the file past 100000 values"):
        load_suite("x.audit.yaml")
    assert time.perf_counter() - start < 2.0


# -- JSON reports given to `distill-audit report` ---------------------------------------------
def _tiny_report(description: str = "", **changes: Any) -> AuditReport:
    suite = {"name": "demo", "path": "/x/demo.audit.yaml", "sha256": "ab" * 32,
             "description": description, "text": "version: 1\n", "includes": [], "not_run": [],
             "settings": {"seed": 0, "confidence": 0.95, "bootstrap": 1000, "inconclusive": "fail"}}
    suite.update(changes)
    return AuditReport(
        suite=suite, verdict="pass", checks=(CheckResult("acc", "pass", (), ()),),
        provenance={"teacher": {"kind": "skops", "path": "t.skops", "sha256": "1" * 64},
                    "student": {"kind": "onnx", "path": "s.onnx", "sha256": "2" * 64},
                    "data": {"sha256": "3" * 64,
                             "eval": {"path": "e.csv", "sha256": "3" * 64, "rows": 9}},
                    "versions": {"numpy": "2"}, "environment": {"command": "pytest"},
                    "git": None, "created": "t0", "finished": "t1", "seed": 0, "warnings": []})


def _changed(change: Callable[[dict[str, Any]], Any]) -> str:
    data = _tiny_report().to_dict()
    change(data)
    return json.dumps(data)


def _set(path: tuple[str | int, ...], value: Any) -> Callable[[dict[str, Any]], None]:
    def change(data: dict[str, Any]) -> None:
        target: Any = data
        for p in path[:-1]:
            target = target[p]
        target[path[-1]] = value
    return change


INVALID = "error: r.json: not a valid distill-audit report: "
REPORTS = [
    pytest.param(_changed(_set(("verdict",), "great")),
                 INVALID + "verdict='great': must be one of pass, warn, inconclusive, error, fail",
                 id="report-verdict-invalid"),
    pytest.param(_changed(_set(("checks", 0, "status"), "passed")),
                 INVALID + "checks[0].status='passed': must be one of pass, info, warn, "
                 "inconclusive, error, fail",
                 id="report-check-status-invalid"),
    pytest.param(_changed(_set(("counts", "pass"), -1)),
                 INVALID + "counts.pass=-1: -1 is less than the minimum of 0",
                 id="report-negative-count"),
    pytest.param(_changed(lambda d: d.pop("verdict")),
                 INVALID + "missing required key 'verdict'",
                 id="report-missing-verdict"),
    pytest.param(_changed(lambda d: d["checks"][0].pop("status")),
                 INVALID + "checks[0]: missing required key 'status'",
                 id="report-check-missing-status"),
    pytest.param(_changed(_set(("forged",), True)),
                 INVALID + "unknown key 'forged'",
                 id="report-unknown-top-level-key"),
    pytest.param(_changed(_set(("suite", "name"), 5)),
                 INVALID + "suite.name=5: must be of JSON type string",
                 id="report-suite-name-not-text"),
    pytest.param(_changed(_set(("checks",), {"acc": "pass"})),
                 INVALID + "checks={'acc': 'pass'}: must be of JSON type array",
                 id="report-checks-not-a-list"),
    pytest.param(_changed(_set(("schema_version",), "2.0")),
                 "error: r.json: report schema_version '2.0' is not supported (this distill-audit "
                 "reads 1.0)",
                 id="report-future-schema-version"),
    pytest.param("[1, 2]", "error: r.json: not a distill-audit JSON report (no schema_version)",
                 id="report-a-json-list"),
    pytest.param("", "error: r.json: not JSON (Expecting value: line 1 column 1 (char 0))",
                 id="report-empty-file"),
    pytest.param(b"\xff{}", "error: r.json: not JSON ('utf-8' codec can't decode byte 0xff in "
                 "position 0: invalid start byte)",
                 id="report-not-utf8"),
    pytest.param(None, "error: r.json: is a folder, not a JSON report", id="report-is-a-folder"),
]


@pytest.mark.parametrize(("content", "expected"), REPORTS)
def test_report_command_refuses_a_bad_report_and_writes_nothing(
        here: Path, capsys: pytest.CaptureFixture[str], content: str | bytes | None,
        expected: str) -> None:
    target = here / "r.json"
    if content is None:
        target.mkdir()
    elif isinstance(content, bytes):
        target.write_bytes(content)
    else:
        target.write_text(content, encoding="utf-8")
    before = sorted(p.name for p in here.rglob("*"))
    assert main(["report", "r.json"]) == 2
    out, err = capsys.readouterr()
    assert (out, err) == ("", expected + "\n")
    assert "Traceback" not in err
    assert sorted(p.name for p in here.rglob("*")) == before  # no HTML, nothing moved aside


def test_report_command_to_an_unwritable_path(here: Path, capsys: pytest.CaptureFixture[str]) -> None:
    write_report(_tiny_report(), json_path=here / "r.json")
    (here / "out").write_text("a file")
    assert main(["report", "r.json", "-o", "out/r.html"]) == 2
    assert capsys.readouterr() == ("", "error: out/r.html: cannot write the HTML report (out is "
                                       "a file, not a folder); choose another path with -o\n")


@pytest.mark.parametrize("output", ["r.json", "r.pdf"])
def test_report_command_refuses_an_output_that_is_not_html(
        here: Path, capsys: pytest.CaptureFixture[str], output: str) -> None:
    write_report(_tiny_report(), json_path=here / "r.json")
    before = (here / "r.json").read_bytes()
    assert main(["report", "r.json", "-o", output]) == 2
    assert capsys.readouterr() == ("", f"error: -o {output}: the HTML report's path must end in "
                                       ".html (and not be the JSON report)\n")
    assert sorted(p.name for p in here.glob("r*")) == ["r.json", "r.md"]  # the summary beside it
    assert (here / "r.json").read_bytes() == before


def test_report_command_on_a_valid_report_still_renders(here: Path,
                                                         capsys: pytest.CaptureFixture[str]) -> None:
    write_report(_tiny_report("mine"), json_path=here / "r.json")
    assert main(["report", "r.json"]) == 0
    assert capsys.readouterr().out == "r.html\n"
    assert "mine" in (here / "r.html").read_text()


# -- report locations that cannot be written --------------------------------------------------
def _read_only(monkeypatch: pytest.MonkeyPatch, folder: Path) -> None:
    """Make ``folder`` refuse new files as a read-only folder would (the tests run as root,
    for whom chmod changes nothing)."""
    real = tempfile.mkstemp

    def mkstemp(*args: Any, dir: Any = None, **kwargs: Any) -> Any:  # noqa: A002
        if dir is not None and Path(dir).resolve().is_relative_to(folder.resolve()):
            raise PermissionError(13, "Permission denied", str(dir))
        return real(*args, dir=dir, **kwargs)

    monkeypatch.setattr(tempfile, "mkstemp", mkstemp)


def _report_dir_is_a_file(here: Path, mp: pytest.MonkeyPatch) -> dict[str, Any]:
    (here / "reports").write_text("not a folder")
    return {"report_dir": here / "reports"}


def _report_dir_read_only(here: Path, mp: pytest.MonkeyPatch) -> dict[str, Any]:
    (here / "reports" / "demo").mkdir(parents=True)
    _read_only(mp, here / "reports")
    return {"report_dir": here / "reports"}


def _report_dir_under_a_file(here: Path, mp: pytest.MonkeyPatch) -> dict[str, Any]:
    (here / "reports").write_text("not a folder")
    return {"report_dir": here / "reports" / "nightly"}


def _json_path_read_only(here: Path, mp: pytest.MonkeyPatch) -> dict[str, Any]:
    (here / "out").mkdir()
    _read_only(mp, here / "out")
    return {"json_path": here / "out" / "r.json", "html_path": here / "out" / "r.html"}


def _json_path_under_a_file(here: Path, mp: pytest.MonkeyPatch) -> dict[str, Any]:
    (here / "out").write_text("a file")
    return {"json_path": here / "out" / "r.json"}


def _html_path_is_a_folder(here: Path, mp: pytest.MonkeyPatch) -> dict[str, Any]:
    (here / "r.html").mkdir()
    return {"json_path": here / "r.json", "html_path": here / "r.html"}


RESCUED = "wrote it to tmp/distill-audit-reports instead"
LOCATIONS = [
    pytest.param(_report_dir_is_a_file,
                 f"could not write the report to reports/demo (reports is a file, not a folder); "
                 f"{RESCUED}", ("demo/2*.json", "demo/2*.html", "demo/latest.json"),
                 id="report-dir-is-a-file"),
    pytest.param(_report_dir_read_only,
                 f"could not write the report to reports/demo (Permission denied); {RESCUED}",
                 ("demo/2*.json", "demo/2*.html", "demo/latest.html"),
                 id="report-dir-read-only"),
    pytest.param(_report_dir_under_a_file,
                 "could not write the report to reports/nightly/demo (reports is a file, not a "
                 f"folder); {RESCUED}", ("demo/2*.json", "demo/2*.html"),
                 id="report-dir-below-a-file"),
    pytest.param(_json_path_read_only,
                 f"could not write the report to out/r.json (Permission denied); {RESCUED}",
                 ("r.json", "r.html"),
                 id="explicit-paths-read-only"),
    pytest.param(_json_path_under_a_file,
                 f"could not write the report to out/r.json (out is a file, not a folder); "
                 f"{RESCUED}", ("r.json",),
                 id="explicit-json-below-a-file"),
    pytest.param(_html_path_is_a_folder,
                 f"could not write the report to r.html (is a folder, not a report file); "
                 f"{RESCUED}; incomplete files left at r.json", ("r.json", "r.html"),
                 id="explicit-html-is-a-folder"),
]


@pytest.mark.parametrize(("prepare", "note", "rescued"), LOCATIONS)
def test_an_unwritable_location_falls_back_and_says_where(
        here: Path, monkeypatch: pytest.MonkeyPatch, prepare: Any, note: str,
        rescued: tuple[str, ...]) -> None:
    paths = write_report(_tiny_report("kept"), **prepare(here, monkeypatch))
    assert paths.notes[0] == note
    assert f"({note})" in paths.lines() and "Traceback" not in note
    rescue = here / "tmp" / "distill-audit-reports"
    for pattern in rescued:
        (found,) = rescue.glob(pattern)
        assert found in (paths.json, paths.html) or found.name.startswith("latest")
    assert json.loads(paths.json.read_text())["suite"]["description"] == "kept"
    assert paths.html is None or "kept" in paths.html.read_text()


@pytest.mark.parametrize("kind", ["symlink", "other-owner"])
def test_a_fallback_folder_someone_else_controls_is_not_used(
        here: Path, monkeypatch: pytest.MonkeyPatch, kind: str) -> None:
    planted = here / "tmp" / "distill-audit-reports"
    if kind == "symlink":
        (here / "elsewhere").mkdir()
        planted.symlink_to(here / "elsewhere")
    else:
        planted.mkdir()
        monkeypatch.setattr(writer.os, "getuid", lambda: planted.stat().st_uid + 1)
    (here / "reports").write_text("not a folder")
    paths = write_report(_tiny_report("kept"), report_dir=here / "reports")
    assert paths.json is not None and paths.json.parent.parent.name.startswith(
        "distill-audit-reports-")
    assert paths.json.parent.parent.parent == here / "tmp"
    if kind == "symlink":
        assert not list((here / "elsewhere").iterdir())
    assert f"wrote it to {display_path(paths.json.parent.parent)} instead" in paths.notes[0]


@pytest.fixture
def suite_dir(pytester: pytest.Pytester) -> Path:
    write_pair(pytester.path, n=200, degrade=0.3)
    pytester.makefile(".audit.yaml", synth=BASE)
    (pytester.path / "reports").write_text("a file where the report folder should be")
    return pytester.path


@pytest.mark.parametrize(("gate", "code"), [("{min: 0.0001}", 0), ("{min: 0.99}", 1)])
def test_a_run_whose_report_folder_is_a_file_keeps_its_report_and_exit_code(
        pytester: pytest.Pytester, suite_dir: Path, monkeypatch: pytest.MonkeyPatch, gate: str,
        code: int) -> None:
    (suite_dir / "synth.audit.yaml").write_text(BASE.replace(
        "{min: 0.5, max_regression: 0.02}", gate))
    monkeypatch.setattr(writer, "fallback_dir", lambda: suite_dir / "tmp" / "distill-audit-reports")
    result = pytester.runpytest("--audit-report-dir", "reports")
    assert result.ret == code
    result.stdout.fnmatch_lines(["  report: (could not write the report to *reports/synth "
                                 "(*reports is a file, not a folder); wrote it to "
                                 "*tmp/distill-audit-reports instead)"])
    assert "Traceback" not in result.stdout.str() and "INTERNALERROR" not in result.stdout.str()
    (written,) = (suite_dir / "tmp" / "distill-audit-reports" / "synth").glob("2*.json")
    assert json.loads(written.read_text())["verdict"] == ("pass" if code == 0 else "fail")


def test_when_the_fallback_fails_too_the_run_still_ends_with_its_verdict(
        pytester: pytest.Pytester, suite_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (suite_dir / "tmp").write_text("not a folder either")
    monkeypatch.setattr(writer, "fallback_dir", lambda: suite_dir / "tmp" / "distill-audit-reports")
    (suite_dir / "synth.audit.yaml").write_text(BASE.replace("{min: 0.5, max_regression: 0.02}",
                                                             "{min: 0.99}"))
    result = pytester.runpytest("--audit-report-dir", "reports")
    assert result.ret == 1
    result.stdout.fnmatch_lines(["synth: FAIL (1 fail)",
                                 "  report: (no report written: could not write it to "
                                 "*reports/synth (*reports is a file, not a folder) nor to "
                                 "*tmp/distill-audit-reports (*tmp is a file, not a folder); "
                                 "the verdict above is the run's only record)"])
    assert "Traceback" not in result.stdout.str() and "INTERNALERROR" not in result.stdout.str()


# -- concurrent writers in one folder ---------------------------------------------------------
def _check_folder(folder: Path, n: int) -> None:
    """``n`` distinct complete pairs, each HTML rendered from its own JSON; latest.* a pair."""
    stems = sorted(p.stem for p in folder.glob("2*.json"))
    assert len(stems) == n and sorted(p.stem for p in folder.glob("2*.html")) == stems
    seen = set()
    for stem in stems:
        mark = json.loads((folder / f"{stem}.json").read_text())["suite"]["description"]
        html = (folder / f"{stem}.html").read_text()
        assert f"<p>{mark}</p>" in html and html.count("<p>writer-") == 1
        seen.add(mark)
    assert len(seen) == n
    latest = json.loads((folder / "latest.json").read_text())["suite"]["description"]
    assert f"<p>{latest}</p>" in (folder / "latest.html").read_text()
    assert not list(folder.glob(".*"))  # no temporary files left behind


@pytest.mark.parametrize("links", [True, False], ids=["hard-links", "no-hard-links"])
def test_60_concurrent_writes_from_threads(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                           links: bool) -> None:
    if not links:  # a file system without hard links: names are claimed with O_EXCL instead
        def no_link(*args: Any, **kwargs: Any) -> None:
            raise PermissionError(errno.EPERM, "Operation not permitted")
        monkeypatch.setattr(writer.os, "link", no_link)
    start = threading.Barrier(60)

    def write(i: int) -> None:
        report = _tiny_report(f"writer-{i}")
        start.wait()
        write_report(report, report_dir=tmp_path)

    with ThreadPoolExecutor(60) as pool:
        list(pool.map(write, range(60)))
    _check_folder(tmp_path / "demo", 60)


def _write_in_process(args: tuple[str, int, Any]) -> None:
    folder, i, start = args
    report = _tiny_report(f"writer-{i}")
    start.wait()
    write_report(report, report_dir=Path(folder))


def test_60_concurrent_writes_from_processes(tmp_path: Path) -> None:
    context = multiprocessing.get_context("fork")
    with context.Manager() as manager:
        start = manager.Barrier(12, timeout=60)  # each batch of 12 writes starts at once
        with context.Pool(12) as pool:
            for batch in range(5):
                pool.map(_write_in_process, [(str(tmp_path), 12 * batch + i, start)
                                             for i in range(12)], chunksize=1)
    _check_folder(tmp_path / "demo", 60)
