"""The ``distill-audit`` command: validate, schema, run (exit codes, report paths) and report.

Commands run in-process through :func:`audit.cli.main`; ``run`` calls ``pytest.main`` inside
this pytest process, which works because tests/conftest.py has already imported everything the
plugin needs (numpy cannot be imported twice). One test goes through the installed console
script in a subprocess, to check the real process exit code.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from audit.cli import main
from audit.suite import suite_json_schema
from fixtures.synthetic import write_pair, write_suite

ROOT = Path(__file__).resolve().parents[1]
PASSING = {
    "accuracy": {"metric": "accuracy", "gate": {"min": 0.5, "max_regression": 0.02}},
    "agreement": {"metric": "agreement", "gate": {"min": 0.95}},
}
FAILING = {
    "accuracy": {"metric": "accuracy", "gate": {"min": 0.99}},  # the teacher itself is ~0.75
    "agreement": {"metric": "agreement", "gate": {"min": 0.95}},
}
INVALID = """\
version: 1
name: broken
data: {eval: eval.csv, target: label}
teacher: {predictions: teacher.csv, columns: [p_No, p_Yes], classes: ["No", "Yes"]}
student: {predictions: student.csv, columns: [p_No, p_Yes], classes: ["No", "Yes"]}
checks:
  acc: {metric: accuracy, gaet: {min: 0.5}}
"""
INVALID_MESSAGE = ("suites/broken.audit.yaml:7 checks.acc.gaet: unknown key; did you mean 'gate'? "
                   "(valid: metric, description, baseline, gate)")


@pytest.fixture
def work(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A working directory with ``suites/`` holding a passing, a failing and an invalid suite."""
    monkeypatch.chdir(tmp_path)
    suites = tmp_path / "suites"
    write_pair(suites, n=300)
    write_suite(suites, PASSING, name="good")
    write_suite(suites, FAILING, name="bad")
    (suites / "broken.audit.yaml").write_text(INVALID, encoding="utf-8")
    return tmp_path


def run(*argv: str) -> int:
    return main(["run", *argv, "--report-dir", "reports", "-q"])


# -- validate ---------------------------------------------------------------------------------
def test_validate_prints_one_ok_line_per_suite(work: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code = main(["validate", "suites/good.audit.yaml", "suites/bad.audit.yaml"])
    out, err = capsys.readouterr()
    assert code == 0
    assert out == ("ok: suites/good.audit.yaml: suite 'good', 2 checks (accuracy, agreement)\n"
                   "ok: suites/bad.audit.yaml: suite 'bad', 2 checks (accuracy, agreement)\n")
    assert err == ""


def test_validate_a_folder_reports_the_invalid_suite_and_exits_2(
        work: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code = main(["validate", "suites"])
    out, err = capsys.readouterr()
    assert code == 2
    assert out == ("ok: suites/bad.audit.yaml: suite 'bad', 2 checks (accuracy, agreement)\n"
                   "ok: suites/good.audit.yaml: suite 'good', 2 checks (accuracy, agreement)\n")
    assert err == f"error: {INVALID_MESSAGE}\n"


def test_validate_missing_path_and_empty_folder(work: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["validate", "suites/nope.audit.yaml"]) == 2
    assert capsys.readouterr() == ("", "error: suites/nope.audit.yaml: file not found\n")
    (work / "empty").mkdir()
    assert main(["validate", "empty"]) == 2
    assert capsys.readouterr() == ("", "distill-audit: no suite files (*.audit.yaml) in empty\n")


def test_validate_the_example_suites(built: dict[str, Path], mnist: Path, rotten: Path,
                                     poisoned: Path, quantized: Path, lm_pair: Path,
                                     monkeypatch: pytest.MonkeyPatch,
                                     capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.chdir(ROOT)
    assert main(["validate", "suites"]) == 0
    out, err = capsys.readouterr()
    assert out.splitlines() == [
        "ok: suites/arrests-quantized.audit.yaml: suite 'arrests-quantized', 6 checks (agreement, "
        "divergence, accuracy, calibration, size, speedup)",
        "ok: suites/arrests-security.audit.yaml: suite 'arrests-security', 4 checks "
        "(colour_inversion, sex_inversion, copy_cost, copy_usefulness)",
        "ok: suites/arrests.audit.yaml: suite 'arrests-distilled', 21 checks (accuracy, "
        "balanced_accuracy, f1, roc_auc, log_loss, agreement, negative_flips, divergence, "
        "calibration, brier, parity_amplification, equalized_odds, worst_group, slices, speedup, "
        "latency, size, drift, leakage, robustness, membership)",
        "ok: suites/cloze-lm.audit.yaml: suite 'cloze-lm-distilled', 16 checks (accuracy, "
        "agreement, flips, divergence, calibration, by_length, slices, next_token, token_kl, "
        "acceptance, bits_per_byte, stereotypes, membership, beyond_teacher, typos, "
        "decode_speedup)",
        "ok: suites/digits-torch.audit.yaml: suite 'digits-torch-distilled', 6 checks (accuracy, "
        "agreement, robustness, transfer, membership, label_only_membership)",
        "ok: suites/digits.audit.yaml: suite 'digits-distilled', 8 checks (accuracy, macro_f1, "
        "roc_auc, agreement, negative_flips, kl, calibration, classwise_calibration)",
        "ok: suites/mnist.audit.yaml: suite 'mnist-distilled', 10 checks (accuracy, agreement, "
        "calibration, slices, adversarial, transfer, corruptions, membership, copy_cost, speed)",
        "ok: suites/poisoned-defended.audit.yaml: suite 'poisoned-defended', 3 checks (accuracy, "
        "agreement, backdoor)",
        "ok: suites/poisoned.audit.yaml: suite 'poisoned', 3 checks (accuracy, agreement, "
        "backdoor)",
        "ok: suites/rotten.audit.yaml: suite 'rotten-distilled', 7 checks (accuracy, agreement, "
        "calibration, slices, edits, membership, latency)",
    ]
    assert err == ""


# -- schema -----------------------------------------------------------------------------------
def test_schema_prints_the_suite_schema(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["schema"]) == 0
    out, err = capsys.readouterr()
    assert json.loads(out) == suite_json_schema()
    assert out == json.dumps(suite_json_schema(), indent=2) + "\n"
    assert err == ""


def test_schema_to_a_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    target = tmp_path / "suite.schema.json"
    assert main(["schema", "-o", str(target)]) == 0
    assert capsys.readouterr() == ("", "")
    assert json.loads(target.read_text(encoding="utf-8")) == suite_json_schema()


# -- run --------------------------------------------------------------------------------------
def test_run_a_passing_suite_exits_0_and_writes_timestamped_reports(
        work: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert run("suites/good.audit.yaml") == 0
    out = capsys.readouterr().out
    assert "good: PASS (2 pass)" in out
    folder = work / "reports" / "good"
    names = sorted(p.name for p in folder.iterdir())
    assert names[-3:] == ["latest.html", "latest.json", "latest.md"]
    (stem,) = {n.split(".")[0] for n in names if not n.startswith("latest.")}  # one run's set
    assert {f"{stem}.json", f"{stem}.html", f"{stem}.md"} <= set(names)
    assert json.loads((folder / "latest.json").read_text())["verdict"] == "pass"
    assert not (ROOT / "reports" / "good").exists()


def test_run_a_failing_gate_exits_1(work: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert run("suites/bad.audit.yaml") == 1
    out = capsys.readouterr().out
    assert "<  min 0.99   -> FAIL" in out  # a verdict, not a traceback
    assert "Traceback" not in out
    report = json.loads((work / "reports" / "bad" / "latest.json").read_text())
    assert report["verdict"] == "fail"
    assert [c["status"] for c in report["checks"]] == ["fail", "pass"]


def test_run_an_invalid_suite_exits_2_with_the_message(work: Path,
                                                        capsys: pytest.CaptureFixture[str]) -> None:
    assert run("suites/broken.audit.yaml") == 2
    out = capsys.readouterr().out
    assert INVALID_MESSAGE in out
    assert not (work / "reports").exists()


def test_run_a_missing_path_exits_2(work: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert run("suites/good.audit.yaml", "suites/gone.audit.yaml") == 2
    assert capsys.readouterr() == ("", "distill-audit: not found: suites/gone.audit.yaml\n")
    assert not (work / "reports").exists()


def test_run_a_file_that_is_not_a_suite_exits_2(work: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert run("suites/eval.csv") == 2
    assert capsys.readouterr() == ("", "distill-audit: not a suite file: suites/eval.csv (suite "
                                       "files end in .audit.yaml)\n")


def test_run_a_folder_without_suites_exits_2(work: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (work / "empty").mkdir()
    (work / "empty" / "notes.yaml").write_text("a: 1\n")
    assert run("empty") == 2
    assert capsys.readouterr().err == ("distill-audit: no checks collected (suite files must end in "
                                       ".audit.yaml)\n")


def test_run_writes_the_report_and_json_paths_given(work: Path,
                                                     capsys: pytest.CaptureFixture[str]) -> None:
    code = run("suites/good.audit.yaml", "--report", "out/audit.html", "--json", "out/audit.json")
    assert code == 0
    out = capsys.readouterr().out
    assert "  report: out/audit.html\n  report: out/audit.json\n" in out
    # the run ends with the report's path, after pytest's own summary line
    assert out.splitlines()[-1] == "distill-audit: report out/audit.html"
    html = (work / "out" / "audit.html").read_text(encoding="utf-8")
    data = json.loads((work / "out" / "audit.json").read_text(encoding="utf-8"))
    assert html.lower().startswith("<!doctype html>") and "<title>distill-audit: good (PASS)</title>" in html
    assert data["suite"]["name"] == "good" and data["verdict"] == "pass"
    assert not (work / "reports").exists()  # explicit paths replace the timestamped pair


def unrendered(html: bytes) -> bytes:
    """The HTML without its render timestamp (the one line allowed to differ)."""
    return re.sub(rb"Rendered [0-9T:+-]+ from", b"Rendered <time> from", html)


def test_report_re_renders_the_same_html(work: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert run("suites/bad.audit.yaml", "--report", "out/audit.html", "--json", "out/audit.json") == 1
    capsys.readouterr()
    assert main(["report", "out/audit.json", "-o", "out/again.html"]) == 0
    assert capsys.readouterr() == ("out/again.html\n", "")
    again = (work / "out" / "again.html").read_bytes()
    first = (work / "out" / "audit.html").read_bytes()
    assert unrendered(again) == unrendered(first)  # byte-identical apart from the render time
    assert again.count(b"<p class=\"muted\">Rendered ") == 1


def test_report_next_to_the_json_keeps_the_earlier_html(work: Path,
                                                        capsys: pytest.CaptureFixture[str]) -> None:
    assert run("suites/good.audit.yaml") == 0
    folder = Path("reports") / "good"
    written = (work / folder / "latest.html").read_bytes()
    capsys.readouterr()
    assert main(["report", str(folder / "latest.json")]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0] == str(folder / "latest.html")
    kept = out[1].removeprefix("(kept earlier latest.html as ").removesuffix(")")
    assert unrendered((work / folder / "latest.html").read_bytes()) == unrendered(written)
    assert (work / kept).read_bytes() == written


def test_report_of_a_missing_or_foreign_json_exits_2(work: Path,
                                                     capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["report", "gone.json"]) == 2
    assert capsys.readouterr() == ("", "error: gone.json: file not found\n")
    Path("other.json").write_text('{"hello": 1}')
    assert main(["report", "other.json"]) == 2
    assert capsys.readouterr().err.startswith("error: other.json: not a distill-audit JSON report (")


def test_usage_errors_exit_2(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as excinfo:
        main(["frobnicate"])
    assert excinfo.value.code == 2
    assert "invalid choice: 'frobnicate'" in capsys.readouterr().err


# -- the installed console script -----------------------------------------------------------
def test_console_script_exit_code_and_stderr(work: Path) -> None:
    script = Path(sys.executable).with_name("distill-audit")
    assert script.is_file(), "pip install -e . installs the distill-audit console script"
    proc = subprocess.run([str(script), "validate", "suites"], capture_output=True, text=True,
                          cwd=work, timeout=60)
    assert proc.returncode == 2
    assert proc.stderr == f"error: {INVALID_MESSAGE}\n"
    assert proc.stdout.splitlines() == [
        "ok: suites/bad.audit.yaml: suite 'bad', 2 checks (accuracy, agreement)",
        "ok: suites/good.audit.yaml: suite 'good', 2 checks (accuracy, agreement)",
    ]


def test_validate_deep_reads_the_data_and_loads_the_models(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                          capsys: pytest.CaptureFixture[str]) -> None:
    from fixtures.synthetic import write_pair, write_suite

    monkeypatch.chdir(tmp_path)
    write_pair(tmp_path, n=50)
    path = write_suite(tmp_path, {"acc": {"metric": "accuracy"}})
    assert main(["validate", "--deep", str(path.name)]) == 0
    text = path.read_text().replace("target: label", "target: lable")
    path.write_text(text)
    assert main(["validate", str(path.name)]) == 0  # the file itself is fine
    capsys.readouterr()
    assert main(["validate", "--deep", str(path.name)]) == 2
    err = capsys.readouterr().err
    assert err == ("error: synthetic.audit.yaml: eval.csv: target column 'lable' (data.target) "
                   "not found; did you mean 'label'? (columns: x, group, label)\n")


def test_model_card_and_init_are_commands(arrests_report: Any, built: dict[str, Path],
                                          tmp_path: Path,
                                          capsys: pytest.CaptureFixture[str]) -> None:
    from audit.report.jsonio import report_to_json

    report = tmp_path / "r.json"
    report.write_text(report_to_json(arrests_report))
    assert main(["model-card", str(report)]) == 0
    card = capsys.readouterr().out
    assert card.startswith("---\n") and "model-index:" in card
    arrests = built["arrests/eval.csv"].parent
    out = tmp_path / "new.audit.yaml"
    assert main(["init", str(arrests / "teacher.skops"), str(arrests / "student.onnx"),
                 str(arrests / "eval.csv"), "--target", "released", "-o", str(out)]) == 0
    assert out.is_file() and "checks:" in out.read_text()
    assert main(["init", str(arrests / "teacher.skops"), str(arrests / "student.onnx"),
                 str(arrests / "eval.csv"), "-o", str(out)]) == 2  # never overwritten


def test_report_format_md_prints_the_summary(arrests_report: Any, tmp_path: Path,
                                             capsys: pytest.CaptureFixture[str]) -> None:
    from audit.report.jsonio import report_to_json

    report = tmp_path / "r.json"
    report.write_text(report_to_json(arrests_report))
    assert main(["report", str(report), "--format", "md"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("# distill-audit: arrests-distilled\n") and "## Scorecard" in out
