"""The Hugging Face model-card fragment (:mod:`audit.report.modelcard`): its YAML front matter
read back with ``yaml.safe_load`` against the report's own numbers, its Markdown tables parsed
cell by cell against the gated measurements, and hostile text from users' files that must not
break either."""

from __future__ import annotations

import dataclasses
import json
import math
import re
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
import yaml

from audit.report.jsonio import report_to_json
from audit.report.modelcard import cmd_model_card, human_name, model_card
from audit.results import AuditReport, Provenance, format_estimate

HOSTILE = "a|b ---\n<script>alert(1)</script> [x](javascript:y) `c` *d* \\"
HOSTILE_COLUMN = "grp|--- <b>"
DESCRIPTION = "---\n| evil | row |\n<script>x</script>\n..."
GATED_HEADER = ["Check", "Metric", "Scope", "Student", "Teacher", "Regression", "Gate", "Result"]


def split_card(card: str) -> tuple[dict[str, Any], str]:
    """The front matter, parsed, and the Markdown after it (the block must be the first thing
    and end at the first line that is exactly ``---``)."""
    lines = card.split("\n")
    assert lines[0] == "---"
    end = lines.index("---", 1)
    return yaml.safe_load("\n".join(lines[1:end])), "\n".join(lines[end + 1:])


def cells(row: str) -> list[str]:
    """The cells of one Markdown table row, splitting on pipes that are not escaped."""
    assert row.startswith("| ") and row.endswith(" |"), row
    out, buf, i = [], "", 1
    body = row[1:-1]
    while i <= len(body):
        ch = body[i - 1]
        if ch == "\\" and i < len(body):
            buf += ch + body[i]
            i += 2
            continue
        if ch == "|":
            out.append(buf.strip())
            buf = ""
        else:
            buf += ch
        i += 1
    return [*out, buf.strip()]


def table_after(markdown: str, heading: str) -> list[list[str]]:
    """The rows (header first, the --- row dropped) of the first table after ``heading``."""
    lines = markdown.split("\n")
    start = lines.index(heading)
    first = next(i for i in range(start, len(lines)) if lines[i].startswith("| "))
    rows = []
    for line in lines[first:]:
        if not line.startswith("| "):
            break
        rows.append(cells(line))
    assert set(rows[1]) == {"---"}
    return [rows[0], *rows[2:]]


def unescape(cell: str) -> str:
    out, i = "", 0
    while i < len(cell):
        if cell[i] == "\\" and i + 1 < len(cell):
            out += cell[i + 1]
            i += 2
            continue
        out += cell[i]
        i += 1
    return out.replace("&lt;", "<").replace("&gt;", ">").replace("&amp;", "&")


def expected_gated_rows(report: AuditReport) -> list[list[str]]:
    """The gated measurements as the card's table should show them, computed here."""
    rows = []
    for check in report.checks:
        for m in check.measurements:
            gates = [g for g in check.gates if g.scope == m.scope]
            if not gates:
                continue
            blocking = [g for g in gates if g.status.value != "pass" and g.severity != "warn"]
            warned = [g for g in gates if g.status.value != "pass" and g.severity == "warn"]
            result = (max((g.status for g in blocking), key=lambda s: s.severity).value
                      if blocking else "warn" if warned else "pass")
            rows.append([check.name, m.metric, m.scope or "\u2014", format_estimate(m.student),
                         "\u2014" if m.teacher is None else format_estimate(m.teacher),
                         "\u2014" if m.regression is None
                         else format_estimate(m.regression, signed=True),
                         "; ".join(f"{g.kind} {g.threshold:g}: {g.status.value}"
                                   + (" (warn)" if g.severity == "warn" else "") for g in gates),
                         result.upper()])
    return rows


@pytest.fixture(scope="module")
def card(arrests_report: AuditReport) -> str:
    return model_card(arrests_report)


def test_front_matter_is_a_model_index_of_the_students_values(arrests_report: AuditReport,
                                                              card: str) -> None:
    meta, _ = split_card(card)
    assert list(meta) == ["model-index"]
    (entry,) = meta["model-index"]
    assert entry["name"] == "arrests-distilled"
    data = json.loads(report_to_json(arrests_report))  # the JSON report's numbers
    measured = [c for c in data["checks"] if any(m["student"]["value"] is not None
                                                 for m in c["measurements"])]
    assert len(entry["results"]) == len(measured) == 21
    sha = data["provenance"]["data"]["eval"]["sha256"]
    for result, check in zip(entry["results"], measured, strict=True):
        assert result["task"] == {"type": "tabular-classification",
                                  "name": "Tabular Classification"}
        assert result["dataset"] == {"type": "csv", "name": "eval.csv", "split": "eval",
                                     "revision": sha, "args": {"data_files": "eval.csv"}}
        values = [m["student"]["value"] for m in check["measurements"]]
        assert [m["value"] for m in result["metrics"]] == values  # exact, not rounded
        for metric, m in zip(result["metrics"], check["measurements"], strict=True):
            assert metric["type"] == m["metric"]
            assert metric["config"] == check["name"]
            assert metric["verified"] is False
            assert metric.get("args", {}) == m["params"]
            assert metric["name"].startswith(human_name(m["metric"]))
    by_config = {m["config"]: m for r in entry["results"] for m in r["metrics"]}
    assert by_config["accuracy"]["name"] == "Accuracy"
    assert by_config["agreement"]["name"] == "Agreement (with the teacher)"
    assert by_config["drift"]["name"] == "Drifted columns (of the data)"
    assert by_config["robustness"]["name"] == "Robust accuracy (eps 0.1)"


def test_the_card_is_a_pure_function_of_the_json_report(arrests_report: AuditReport,
                                                        card: str) -> None:
    again = AuditReport.from_dict(json.loads(report_to_json(arrests_report)))
    assert model_card(again) == card


def test_the_gated_table_has_one_row_per_gated_measurement(arrests_report: AuditReport,
                                                           card: str) -> None:
    _, markdown = split_card(card)
    header, *rows = table_after(markdown, "### Gated metrics")
    assert header == GATED_HEADER
    assert [[unescape(c) for c in row] for row in rows] == expected_gated_rows(arrests_report)
    assert len(rows) == 30  # 21 checks, one ungated (leakage), 3 slicings x 3 + 3 batches x 2
    results = {(unescape(r[0]), r[2]): r[-1] for r in rows}
    assert results[("parity_amplification", "by colour")] == "WARN"  # the example's finding
    assert results[("accuracy", "\u2014")] == "PASS"


def test_the_evaluation_section_has_the_verdict_groups_limitations_and_provenance(
        arrests_report: AuditReport, card: str) -> None:
    _, markdown = split_card(card)
    assert "**Verdict: WARN** (19 pass, 1 info, 1 warn)." in markdown
    header, *rows = table_after(markdown, "#### Groups, by colour (groups under 30 rows not "
                                          "counted in a disparity)")
    assert header[:3] == ["Group", "n", "Counted"]
    assert [(r[0], r[1], r[2]) for r in rows] == [("colour=Black", "383", "yes"),
                                                   ("colour=White", "1185", "yes")]
    parity = next(c for c in arrests_report.checks if c.name == "parity_amplification")
    black = parity.measurements[0].breakdown[0]
    assert black["group"] == "colour=Black"
    column = header.index("Student Selection rate")
    assert rows[0][column].startswith(f"{black['student']['selection_rate']:.3f} [")
    limits = markdown[markdown.index("### Limitations"):markdown.index("### Provenance")]
    assert "**parity\\_amplification** did not pass" in limits
    assert limits.count("**parity\\_amplification** was undecided") == 2
    assert "excluded from the disparity: colour=Black &amp; sex=Female (n=21)" in limits
    assert "upper bound" in limits  # what the black-box robustness check says it cannot show
    assert "Every gate passed" not in limits
    provenance = table_after(markdown, "### Provenance")
    prov = arrests_report.provenance
    assert [r[0] for r in provenance[1:]][:4] == ["Teacher", "Student", "Eval data", "Train data"]
    assert prov["teacher"]["sha256"] in provenance[1][1]
    assert prov["student"]["sha256"] in provenance[2][1]
    assert prov["data"]["eval"]["sha256"] in provenance[3][1]
    assert ["distill-audit", prov["versions"]["distill-audit"]] in provenance
    assert ["Date", prov["created"]] in provenance
    assert "/work" not in card and str(Path.cwd()) not in card  # no absolute path is published


@pytest.mark.parametrize(("inputs", "task"), [
    ({}, "tabular-classification"),
    ({"eval": {"text": "review"}}, "text-classification"),
    ({"eval": {"images": {"path": "eval.npy"}}}, "image-classification"),
], ids=["tabular", "text", "images"])
def test_the_task_follows_what_the_models_read(arrests_report: AuditReport,
                                               inputs: dict[str, Any], task: str) -> None:
    prov = arrests_report.provenance.to_dict()
    prov["data"] = {**prov["data"], "inputs": inputs}
    report = dataclasses.replace(arrests_report, provenance=Provenance.from_dict(prov))
    meta, _ = split_card(model_card(report))
    assert {r["task"]["type"] for r in meta["model-index"][0]["results"]} == {task}


@pytest.fixture(scope="module")
def hostile_report(tmp_path_factory: pytest.TempPathFactory) -> AuditReport:
    """A real run whose sensitive column, group values and check description are hostile."""
    from audit import SuiteRun, load_suite
    from fixtures.synthetic import write_pair

    folder = tmp_path_factory.mktemp("hostile")
    write_pair(folder, n=600)
    table = pd.read_csv(folder / "eval.csv")
    table[HOSTILE_COLUMN] = table.pop("group").map({"a": HOSTILE, "b": "---"})
    table.to_csv(folder / "eval.csv", index=False)
    cols = ["p_No", "p_Yes"]
    suite = {"version": 1, "name": "hostile",
             "data": {"eval": "eval.csv", "target": "label", "sensitive": [HOSTILE_COLUMN]},
             "teacher": {"predictions": "teacher.csv", "columns": cols, "classes": ["No", "Yes"]},
             "student": {"predictions": "student.csv", "columns": cols, "classes": ["No", "Yes"]},
             "settings": {"seed": 0, "bootstrap": 200},
             "checks": {"acc": {"metric": "accuracy", "description": DESCRIPTION,
                                "gate": {"min": 0.99}},
                        "parity": {"metric": "demographic_parity_difference",
                                   "gate": {"max_regression": 0.02}}}}
    path = folder / "hostile.audit.yaml"
    path.write_text(yaml.safe_dump(suite), encoding="utf-8")
    report = SuiteRun(load_suite(path)).report()
    # a forged JSON report can carry any check name; the suite parser would refuse this one
    renamed = dataclasses.replace(report.checks[0], name="acc|---\n<script>")
    return dataclasses.replace(report, checks=(renamed, *report.checks[1:]))


def test_hostile_text_cannot_break_the_yaml_block(hostile_report: AuditReport) -> None:
    card = model_card(hostile_report)
    assert card.split("\n").count("---") == 2  # the block's own two markers, nothing else
    meta, markdown = split_card(card)
    assert markdown.startswith("\n## Evaluation")
    results = meta["model-index"][0]["results"]
    assert [m["config"] for r in results for m in r["metrics"]] == ["acc|--- <script>", "parity"]
    parity = results[1]["metrics"][0]
    assert parity["args"]["by"] == HOSTILE_COLUMN
    assert parity["name"] == f"Demographic parity difference (by {HOSTILE_COLUMN})"
    assert [r["metrics"][0]["value"] for r in results] == [
        c.measurements[0].student.value for c in hostile_report.checks]


def test_hostile_text_cannot_break_the_tables_or_add_markup(hostile_report: AuditReport) -> None:
    card = model_card(hostile_report)
    _, markdown = split_card(card)
    # (the YAML keeps the values as data: a quoted or plain scalar, which the Hub shows as text)
    assert "<script" not in markdown and "<b>" not in markdown
    assert "\\](javascript" in markdown and not re.search(r"(?<!\\)\]\(", markdown)  # no link
    header, *rows = table_after(markdown, "### Gated metrics")
    assert all(len(row) == len(GATED_HEADER) for row in rows)
    assert [unescape(c) for c in rows[0][:3]] == ["acc|--- <script>", "accuracy", "\u2014"]
    assert unescape(rows[1][2]) == f"by {HOSTILE_COLUMN}"
    heading = next(line for line in markdown.split("\n") if line.startswith("#### Groups"))
    header, *groups = table_after(markdown, heading)
    assert all(len(row) == len(header) == 5 for row in groups)
    flat = " ".join(HOSTILE.split())  # line breaks inside a value become spaces
    assert sorted(unescape(r[0]) for r in groups) == sorted(
        [f"{HOSTILE_COLUMN}=---", f"{HOSTILE_COLUMN}={flat}"])
    limit = next(line for line in markdown.split("\n") if "did not pass" in line)
    assert unescape(limit).startswith(f"- **acc|--- <script>** did not pass "
                                      f"({' '.join(DESCRIPTION.split())}): student")
    assert not any(line.startswith(("---", "| evil", "...")) for line in markdown.split("\n"))


def test_an_undefined_value_is_left_out_of_the_model_index(arrests_report: AuditReport) -> None:
    check = arrests_report.checks[0]
    nan = dataclasses.replace(check.measurements[0], student=dataclasses.replace(
        check.measurements[0].student, value=math.nan, ci=None))
    report = dataclasses.replace(arrests_report, checks=(
        dataclasses.replace(check, measurements=(nan,)), *arrests_report.checks[1:]))
    meta, markdown = split_card(model_card(report))
    assert [m["config"] for m in meta["model-index"][0]["results"][0]["metrics"]] == [
        "balanced_accuracy"]
    assert "| accuracy | accuracy | \u2014 | undefined |" in markdown


def test_cmd_model_card_prints_or_writes_the_card(arrests_report: AuditReport, tmp_path: Path,
                                                  capsys: pytest.CaptureFixture[str],
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "audit.json").write_text(report_to_json(arrests_report), encoding="utf-8")
    assert cmd_model_card(Path("audit.json"), None) == 0
    out, err = capsys.readouterr()
    assert out == model_card(arrests_report) and err == ""
    assert cmd_model_card(Path("audit.json"), Path("README.md")) == 0
    assert capsys.readouterr() == ("README.md\n", "")
    assert (tmp_path / "README.md").read_text(encoding="utf-8") == out
    assert (tmp_path / "README.md").stat().st_mode & 0o777 == 0o644


@pytest.mark.parametrize(("argv", "message"), [
    (("nope.json", None), "error: nope.json: file not found\n"),
    (("bad.json", None), "error: bad.json: not a distill-audit JSON report (no schema_version)\n"),
    (("audit.json", "audit.json"), "error: -o audit.json: that is the JSON report; choose another "
                                   "path (e.g. README.md)\n"),
    (("audit.json", "gone/README.md"), "error: gone/README.md: cannot write the model card (No "
                                       "such file or directory); choose another path with -o\n"),
], ids=["missing", "not-a-report", "onto-the-report", "no-folder"])
def test_cmd_model_card_errors(arrests_report: AuditReport, tmp_path: Path,
                               capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch,
                               argv: tuple[str, str | None], message: str) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "audit.json").write_text(report_to_json(arrests_report), encoding="utf-8")
    (tmp_path / "bad.json").write_text("{}", encoding="utf-8")
    source, output = argv
    assert cmd_model_card(Path(source), None if output is None else Path(output)) == 2
    assert capsys.readouterr() == ("", message)
