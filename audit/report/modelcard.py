"""A Hugging Face model-card fragment from one audit: the student's results, as the Hub reads them.

:func:`model_card` is a pure function of an :class:`~audit.results.AuditReport` (so of the JSON
report alone). It returns two parts, to paste into (or merge with) a model repository's
``README.md``:

* a YAML front-matter block with the ``model-index`` the Hub's model-card metadata spec
  describes (``huggingface/hub-docs``, ``modelcard.md``): one result per measured check, each
  with its ``task`` (``tabular-classification``, ``text-classification`` or
  ``image-classification``, from what the models read), its ``dataset`` (the eval table:
  packaged loader ``csv`` or ``parquet`` as ``type``, its file as ``name`` and ``args``, its
  SHA-256 as ``revision``) and its ``metrics``: each measurement's metric as ``type``, the
  student's value as ``value``, a readable ``name``, the check's name as ``config``, the
  check's parameters as ``args`` and ``verified: false`` (self-reported, not run by the Hub);
* a Markdown "Evaluation" section: every gated measurement with the student's and teacher's
  values and intervals, the gates and their verdicts; the fairness results by group; the
  limitations the report states (gates that failed or were undecided, checks that could not
  run, what checks say they do not measure, families not measured at all); and the provenance
  (model and data hashes, distill-audit's version, the date).

Everything that comes from users' files (check names, descriptions, group values, file names)
is made harmless where it lands: in the YAML it is a quoted scalar on one line (control, bidi
and line-break characters written as escapes, non-ASCII escaped by the YAML emitter), so
nothing can end the front matter; in the Markdown, ``| [ ] * _ ` ~ \\`` are escaped and
``& < >`` written as entities, so nothing can add a table cell, a link, an image or markup.
Absolute paths are not shown (a card is published): files are named by their name and hash.
"""

from __future__ import annotations

import math
import sys
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

from audit.report.terminal import gate_line
from audit.results import AuditReport, CheckResult, GateResult, Measurement, Status, format_estimate
from audit.safe import visible
from audit.spec import TABLES, TEXTS

__all__ = ["model_card", "model_index", "gated_measurements", "task_of", "human_name",
           "limitation_notes", "cmd_model_card", "TASKS"]

# what the models read -> (Hub task type, its pretty name)
TASKS = {"tabular": ("tabular-classification", "Tabular Classification"),
         "text": ("text-classification", "Text Classification"),
         "images": ("image-classification", "Image Classification")}
_ACRONYMS = {"ece": "ECE", "mce": "MCE", "ace": "ACE", "auc": "AUC", "roc": "ROC", "f1": "F1",
             "js": "JS", "kl": "KL", "mia": "MIA", "tpr": "TPR", "fpr": "FPR", "psi": "PSI",
             "ms": "(ms)"}
# the families a model card should say were not measured, when no check of them ran
_FAMILY_WORDS = {"calibration": "calibration", "fairness": "fairness across groups",
                 "robustness": "adversarial robustness", "privacy": "membership inference",
                 "data": "drift between the training and evaluation data"}
# notes that say what a number rests on or leaves out (the rest say how it was computed)
_LIMIT_WORDS = ("not ", "no ", "cannot", "never", "upper bound", "floor", "excluded", "undefined",
                "too few", "fewer than", "flatters", "only ", "identical")
_HOW_NOTES = ("timed with ", "no slice where ")  # how a check ran, or its finding: not a limit
_MD_ESCAPES = {"\\": "\\\\", "`": "\\`", "*": "\\*", "_": "\\_", "[": "\\[", "]": "\\]",
               "|": "\\|", "~": "\\~", "&": "&amp;", "<": "&lt;", ">": "&gt;"}
_DASH = "\u2014"


# -- text made safe -------------------------------------------------------------------------
def _line(text: object) -> str:
    """One line of plain text: whitespace runs (line breaks included) become one space, and
    control, bidi and zero-width characters are written as their escapes."""
    return visible(" ".join(str(text).split()))


def _md(text: object) -> str:
    """Untrusted text as inert Markdown on one line (safe in a table cell and in running text)."""
    return "".join(_MD_ESCAPES.get(ch, ch) for ch in _line(text))


def _plain(value: Any) -> Any:
    """A parameter value for the YAML: text through :func:`_line`, numbers kept, containers
    walked (mappings in key order, as the JSON report keeps them); anything else as text."""
    if isinstance(value, dict):
        return {_line(k): _plain(value[k]) for k in sorted(value, key=str)}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if isinstance(value, bool) or value is None:
        return value
    if isinstance(value, (int, float)):
        return value if math.isfinite(value) else None
    return _line(value)


# -- what the report holds ------------------------------------------------------------------
def task_of(report: AuditReport) -> tuple[str, str]:
    """The Hub task (type, name): what the models read, as the report's data provenance says
    (``data.inputs.eval`` holds ``text`` or ``images`` for those suites; tabular otherwise)."""
    data = report.provenance.get("data") or {}
    inputs = ((data.get("inputs") or {}).get("eval")) or {}
    modality = "text" if "text" in inputs else "images" if "images" in inputs else "tabular"
    return TASKS[modality]


def human_name(metric: str) -> str:
    """A metric's name in words: ``demographic_parity_difference`` -> ``Demographic parity
    difference``, ``roc_auc`` -> ``ROC AUC``, ``latency_ms`` -> ``Latency (ms)``.

    >>> human_name("mia_tpr_at_fpr"), human_name("accuracy")
    ('MIA TPR at FPR', 'Accuracy')
    """
    words = [_ACRONYMS.get(w, w) for w in metric.split("_") if w]
    if words and words[0] == words[0].lower():
        words[0] = words[0][:1].upper() + words[0][1:]
    return " ".join(words)


def _finite(x: float | None) -> bool:
    return x is not None and math.isfinite(x)


def gated_measurements(report: AuditReport) -> Iterator[tuple[CheckResult, Measurement,
                                                              tuple[GateResult, ...]]]:
    """Every measurement a gate judged, in report order, with the bounds that judged it (a
    gate's ``scope`` names the measurement it applies to)."""
    for check in report.checks:
        for m in check.measurements:
            gates = tuple(g for g in check.gates if g.scope == m.scope)
            if gates:
                yield check, m, gates


def _dataset(report: AuditReport) -> dict[str, Any]:
    data = report.provenance.get("data") or {}
    table = data.get("eval") or {}
    file = Path(str(table.get("path") or "eval")).name
    dataset: dict[str, Any] = {
        "type": "parquet" if file.lower().endswith((".parquet", ".pq")) else "csv",
        "name": _line(file), "split": "eval"}
    sha = table.get("sha256") or data.get("sha256")
    if sha:
        dataset["revision"] = _line(sha)
    dataset["args"] = {"data_files": _line(file)}
    return dataset


def _metric_name(m: Measurement) -> str:
    """``Demographic parity difference (by colour)``; a pair's value says it is one
    (``Agreement (with the teacher)``), a data check's that it describes the data."""
    name = human_name(m.metric)
    if m.scope:
        name += f" ({m.scope})"
    if m.family == "data":
        name += " (of the data)"
    elif m.teacher is None:
        name += " (with the teacher)"
    return _line(name)


def model_index(report: AuditReport) -> list[dict[str, Any]]:
    """The ``model-index`` value: one entry named after the suite, with one result per check
    that has a measured (finite) student value."""
    task_type, task_name = task_of(report)
    results = []
    for check in report.checks:
        metrics = []
        for m in check.measurements:
            if not _finite(m.student.value):
                continue
            entry: dict[str, Any] = {"type": _line(m.metric), "value": float(m.student.value),
                                     "name": _metric_name(m), "config": _line(check.name)}
            if m.params:
                entry["args"] = _plain(dict(m.params))
            entry["verified"] = False
            metrics.append(entry)
        if metrics:
            results.append({"task": {"type": task_type, "name": task_name},
                            "dataset": _dataset(report), "metrics": metrics})
    return [{"name": _line(report.suite.get("name", "")), "results": results}]


def _front_matter(report: AuditReport) -> str:
    import yaml

    text = yaml.safe_dump({"model-index": model_index(report)}, sort_keys=False,
                          allow_unicode=False, default_flow_style=False, width=1_000_000)
    # every scalar is one quoted-if-needed line under the top-level key, so no line can end
    # the block; checked anyway, since a broken card would be published
    if any(line.startswith(("---", "...")) for line in text.splitlines()):
        raise AssertionError("the model-index YAML has a document marker line")  # pragma: no cover
    return f"---\n{text}---\n"


# -- the Markdown section -------------------------------------------------------------------
def _row(cells: Iterable[str]) -> str:
    return "| " + " | ".join(cells) + " |"


def _table(header: list[str], rows: list[list[str]]) -> list[str]:
    return [_row(header), _row(["---"] * len(header)), *(_row(r) for r in rows)]


def _verdict_of(gates: tuple[GateResult, ...]) -> str:
    """A measurement's verdict from its bounds: a warn-severity bound that does not pass warns."""
    states = [g.status if g.status is Status.PASS or g.severity != "warn" else Status.WARN
              for g in gates]
    return max(states, key=lambda s: s.severity).upper()


def _gated_rows(report: AuditReport) -> list[list[str]]:
    rows = []
    for check, m, gates in gated_measurements(report):
        bounds = "; ".join(f"{g.kind} {g.threshold:g}: {g.status.value}"
                           + (" (warn)" if g.severity == "warn" else "") for g in gates)
        rows.append([_md(check.name), _md(m.metric), _md(m.scope) or _DASH,
                     format_estimate(m.student),
                     _DASH if m.teacher is None else format_estimate(m.teacher),
                     _DASH if m.regression is None else format_estimate(m.regression, signed=True),
                     bounds, _verdict_of(gates)])
    return rows


def _group_values(m: Measurement) -> tuple[str, ...]:
    """The per-group values a fairness metric compares."""
    if m.metric.startswith("demographic_parity"):
        return ("selection_rate",)
    if m.metric.startswith("equalized_odds"):
        return ("tpr", "fpr")
    return (str(m.params.get("group_metric") or "accuracy"),)


def _cell(values: dict[str, Any], name: str) -> str:
    v = values.get(name)
    if not isinstance(v, (int, float)) or isinstance(v, bool):
        return _DASH
    ci = values.get(f"{name}_ci")
    text = format_estimate(None) if not math.isfinite(v) else f"{v:.3f}"
    if isinstance(ci, list) and len(ci) == 2 and all(isinstance(x, (int, float)) for x in ci):
        text += f" [{ci[0]:.3f}, {ci[1]:.3f}]"
    return text


def _fairness_lines(report: AuditReport) -> list[str]:
    """One table per slicing (and minimum group size): each group's n, whether it counted, and
    each model's values of what the suite's fairness checks of that slicing compare."""
    slicings: dict[tuple[str, Any], tuple[list[dict[str, Any]], list[str]]] = {}
    for check in report.checks:
        for m in check.measurements:
            groups = [r for r in m.breakdown if r.get("kind") == "group"]
            if m.family != "fairness" or not groups:
                continue
            key = (m.scope, m.params.get("min_group_size"))
            values = slicings.setdefault(key, (groups, []))[1]
            values += [v for v in _group_values(m) if v not in values]
    lines: list[str] = []
    for (scope, min_size), (groups, values) in slicings.items():
        title = f"Groups, {scope}" if scope else "Groups"
        if min_size is not None:
            title += f" (groups under {min_size} rows not counted in a disparity)"
        header = ["Group", "n", "Counted", *(f"{who} {human_name(v)}" for v in values
                                              for who in ("Student", "Teacher"))]
        rows = [[_md(g.get("group", "")), str(g.get("n", "")),
                 "yes" if g.get("included") else _md(g.get("status") or "no"),
                 *(_cell(g.get(who) or {}, v) for v in values for who in ("student", "teacher"))]
                for g in groups]
        lines += [f"#### {_md(title)}", "", *_table(header, rows), ""]
    return lines


def limitation_notes(report: AuditReport) -> list[tuple[str, str]]:
    """``(check, note)`` for each distinct note that says what a number rests on or leaves out
    (excluded groups, upper bounds, identical rows, undefined values), in report order."""
    seen: set[str] = set()
    out = []
    for check in report.checks:
        for m in check.measurements:
            for note in m.notes:
                lower = note.lower()
                if (note in seen or lower.startswith(_HOW_NOTES) or " beside it: " in lower
                        or not any(w in lower for w in _LIMIT_WORDS)):
                    continue
                seen.add(note)
                out.append((check.name, note))
    return out


def _limitations(report: AuditReport) -> list[str]:
    items: list[str] = []
    for check in report.checks:
        described = f" ({_md(check.description)})" if check.description else ""
        if check.status is Status.ERROR:
            error = (check.error or "").strip().splitlines()
            items.append(f"- **{_md(check.name)}** could not run{described}: "
                         f"{_md(error[0] if error else 'no message')}")
            continue
        undecided = [g for g in check.gates if g.status is not Status.PASS]
        for g in undecided:
            what = "did not pass" if g.status is Status.FAIL else "was undecided"
            items.append(f"- **{_md(check.name)}** {what}{described}: {_md(gate_line(g).strip())}")
            described = ""  # said once per check
    for skipped in report.suite.get("not_run") or []:
        items.append(f"- **{_md(skipped)}** was not run in this audit.")
    for name, note in limitation_notes(report):
        items.append(f"- {_md(name)}: {_md(note)}")
    measured = {m.family for c in report.checks for m in c.measurements}
    absent = [words for family, words in _FAMILY_WORDS.items() if family not in measured]
    if absent:
        items.append(f"- Not measured in this audit: {', '.join(absent)}.")
    data = report.provenance.get("data") or {}
    rows = (data.get("eval") or {}).get("rows")
    scope = f"the {rows:,} rows of the evaluation table" if isinstance(rows, int) else (
        "the evaluation table")
    intro = (f"These results hold for {scope} named under Provenance, and for data like it; "
             "they say nothing about data unlike it.")
    if not any(item.startswith("- **") for item in items):
        intro += " Every gate passed."
    return [intro, "", *items]


def _file_line(entry: dict[str, Any]) -> str:
    parts = [_md(entry.get("kind") or "")] if entry.get("kind") else []
    if entry.get("path"):
        parts.append(_md(Path(str(entry["path"])).name))
    if entry.get("sha256"):
        parts.append(f"sha256 {_md(entry['sha256'])}")
    if isinstance(entry.get("size_bytes"), int):
        parts.append(f"{entry['size_bytes']:,} bytes")
    if isinstance(entry.get("rows"), int):
        parts.append(f"{entry['rows']:,} rows")
    return ", ".join(parts) or _DASH


def _provenance(report: AuditReport) -> list[str]:
    prov = report.provenance
    data = prov.get("data") or {}
    rows = [["Teacher", _file_line(prov.get("teacher") or {})],
            ["Student", _file_line(prov.get("student") or {})]]
    rows += [[f"{role.replace('_', ' ').capitalize()} data", _file_line(data[role])]
             for role in (*TABLES, *TEXTS) if isinstance(data.get(role), dict)]
    suite = report.suite
    if suite.get("sha256"):
        rows.append(["Suite", _file_line({"path": suite.get("path"), "sha256": suite["sha256"]})])
    versions = prov.get("versions") or {}
    rows.append(["distill-audit", _md(versions.get("distill-audit") or "unknown")])
    rows.append(["Date", _md(prov.get("created") or "unknown")])
    git = prov.get("git") or {}
    if git.get("commit"):
        rows.append(["Git commit", _md(git["commit"]) + (" (uncommitted changes)"
                                                         if git.get("dirty") else "")])
    signoff = {k: v for k, v in report.signoff.items() if v}
    if signoff:
        rows.append(["Sign-off", _md(", ".join(f"{k}: {v}" for k, v in signoff.items()))])
    return _table(["", ""], rows)


def _evaluation(report: AuditReport) -> str:
    prov = report.provenance
    settings = report.suite.get("settings") or {}
    confidence = settings.get("confidence")
    counts = ", ".join(f"{n} {s.value}" for s, n in report.counts.items() if n)
    version = (prov.get("versions") or {}).get("distill-audit") or "unknown"
    lines = ["## Evaluation", "",
             f"Audited with distill-audit {_md(version)}: the student against the teacher it "
             f"replaces, suite {_md(report.suite.get('name', ''))}"
             + (f", on {_md(prov.get('created'))}" if prov.get("created") else "") + "."
             + (f" {_md(report.suite['description'])}" if report.suite.get("description") else ""),
             "",
             f"**Verdict: {report.verdict.upper()}** ({counts or 'no checks'})."
             + (f" Intervals are {round(100 * confidence)}% intervals." if isinstance(
                 confidence, (int, float)) else ""),
             "", "### Gated metrics", ""]
    gated = _gated_rows(report)
    if gated:
        lines += _table(["Check", "Metric", "Scope", "Student", "Teacher", "Regression", "Gate",
                         "Result"], gated)
        lines += ["", "Regression is oriented so that positive means the student is worse than "
                      "the teacher."]
    else:
        lines.append("No check of this audit has a gate.")
    fairness = _fairness_lines(report)
    if fairness:
        lines += ["", "### Fairness by group", "", *fairness]
    else:
        lines.append("")
    lines += ["### Limitations", "", *_limitations(report), "", "### Provenance", "",
              *_provenance(report), ""]
    return "\n".join(lines)


def model_card(report: AuditReport) -> str:
    """The model-card fragment of ``report``: YAML front matter, then the Evaluation section.

    Parameters
    ----------
    report : AuditReport
        A run's report (or one read back with :func:`audit.report.jsonio.read_report`).

    Returns
    -------
    str
        Markdown text starting with a ``---`` front-matter block whose ``model-index`` follows
        the Hugging Face model-card metadata spec.
    """
    return _front_matter(report) + "\n" + _evaluation(report)


# -- command --------------------------------------------------------------------------------
def _error(message: str) -> int:
    print(visible(f"error: {message}"), file=sys.stderr)
    return 2


def cmd_model_card(json_path: Path, output: Path | None) -> int:
    """``distill-audit model-card REPORT.json [-o PATH]``: print the card, or write it to PATH.

    Returns 0, or 2 with an ``error: ...`` line on stderr when the report cannot be read or
    the card cannot be written.
    """
    from audit.errors import AuditError, display_path
    from audit.report.jsonio import read_report

    json_path, output = Path(json_path), None if output is None else Path(output)
    if output is not None and output.resolve() == json_path.resolve():
        return _error(f"-o {display_path(output)}: that is the JSON report; choose another path "
                      "(e.g. README.md)")
    try:
        report = read_report(json_path)
    except AuditError as exc:
        return _error(str(exc))
    text = model_card(report)
    if output is None:
        sys.stdout.write(text)
        return 0
    try:
        from audit.report.writer import atomic_write_bytes

        if output.is_dir():
            raise IsADirectoryError(21, "is a folder", str(output))
        if not output.parent.is_dir():  # a typo'd folder is not silently created
            raise FileNotFoundError(2, "No such file or directory", str(output.parent))
        atomic_write_bytes(output, text.encode("utf-8"))
    except OSError as exc:
        return _error(f"{display_path(output)}: cannot write the model card "
                      f"({exc.strerror or exc}); choose another path with -o")
    print(visible(display_path(output)))
    return 0
