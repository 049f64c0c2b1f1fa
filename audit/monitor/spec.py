"""The monitor file: what a deployed student is watched with, parsed into frozen objects.

A monitor file (``*.monitor.yaml``) names the release audit it watches (``suite:``: its
models, target, sensitive columns and labelled eval table, the reference), the production
batches, where each model's outputs come from, the labels that arrive later, the alerts and
the store. It is read like a suite: every key validated against a field table (which the
published JSON Schema is generated from), errors located by file and line with the fix, and
the same gate grammar for the alerts, plus ``for:`` (consecutive windows before an alert
fires).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from audit.checks.registry import Metric
from audit.errors import SuiteError, did_you_mean
from audit.fields import NAME_RE, SECTIONS, Field, field_schema
from audit.spec import GateSpec
from audit.suite import SuiteParser
from audit.yamlsrc import KeyPath, Located, load_yaml

__all__ = ["MonitorSpec", "AlertSpec", "load_monitor", "monitor_json_schema", "MONITOR_METRICS",
           "MONITOR_SUFFIX", "WINDOWS"]

MONITOR_SUFFIX = ".monitor.yaml"
WINDOWS = ("batch", "rows", "hour", "day", "week")

# what a window is measured by (directions and ranges for the gates; docs for the schema)
MONITOR_METRICS: dict[str, Metric] = {m.name: m for m in (
    Metric("agreement", "higher", "monitor", True, (0.0, 1.0),
           "Top-1 agreement of the student with the teacher (label-free)."),
    Metric("estimated_accuracy", "higher", "monitor", False, (0.0, 1.0),
           "Each model's accuracy estimated from its confidence, calibrated on the labelled "
           "reference (CBPE); regression = teacher - student."),
    Metric("estimated_accuracy_drop", "lower", "monitor", False, (-1.0, 1.0),
           "Each model's accuracy on the reference minus its estimated accuracy in the window; "
           "regression = the student's drop - the teacher's."),
    Metric("realized_accuracy", "higher", "monitor", False, (0.0, 1.0),
           "Each model's accuracy on the window's rows whose labels have arrived."),
    Metric("demographic_parity_difference", "lower", "monitor", False, (0.0, 1.0),
           "Label-free group parity: the largest difference between groups' shares predicted "
           "positive, on the suite's data.sensitive column (logged in the batches) where the "
           "student's gap is widest; regression = student - teacher."),
    Metric("prediction_drift", "lower", "monitor", True, (0.0, float("inf")),
           "PSI of the student's predicted-class shares against the reference."),
    Metric("drifted_columns", "lower", "monitor", True, (0.0, float("inf")),
           "Feature columns whose distribution drifted from the reference (PSI >= 0.1 and "
           "Benjamini-Hochberg q < 0.05)."),
    Metric("max_psi", "lower", "monitor", True, (0.0, float("inf")),
           "The largest PSI of any feature column against the reference."),
)}

_SECTIONS: dict[str, dict[str, Field]] = {
    "monitor": {
        "version": Field("int", "Monitor format version.", required=True, choices=(1,)),
        "name": Field("str", "Monitor name; names the store and the trend page (letters, "
                             "digits, _ . -).", required=True,
                      schema=(("pattern", NAME_RE.pattern), ("maxLength", 100))),
        "description": Field("str", "What is watched, in words."),
        "suite": Field("path", "The release audit (*.audit.yaml): its teacher, student, target "
                               "and sensitive columns, and its labelled eval table (the "
                               "reference).", required=True),
        "reference": Field("path", "A labelled reference table (.csv or .parquet) instead of the "
                                   "suite's eval table."),
        "batches": Field("section:batches", "The production batches and their windows.",
                         required=True),
        "outputs": Field("section:outputs", "Where each model's probabilities come from (default: "
                                            "run both suite models on every row)."),
        "labels": Field("section:labels", "Labels that arrive later, joined by row id."),
        "store": Field("path", "The SQLite store (default: reports/<name>/monitor.sqlite beside "
                               "the suite's reports folder)."),
        "settings": Field("section:monitor_settings", "Statistical settings."),
        "alerts": Field("alerts", "Named alerts, each a window metric with a gate.",
                        required=True),
    },
    "batches": {
        "folder": Field("path", "A folder of .csv/.parquet files, one batch each, processed in "
                                "file-name order."),
        "table": Field("path", "One table (.csv/.parquet) of every production row."),
        "window": Field("str", "batch (one window per file), rows (every `rows` rows), hour, day "
                               "or week (by `timestamp`).", default="batch", choices=WINDOWS),
        "rows": Field("int", "Rows per window (window: rows).", schema=(("minimum", 10),)),
        "timestamp": Field("str", "The timestamp column (window: hour, day, week)."),
        "id": Field("str", "The row id column labels are joined on (default: file and row)."),
    },
    "outputs": {
        "student": Field("str_list", "Columns of the student's logged probabilities, one per "
                                     "class in the models' class order (default: run the "
                                     "student)."),
        "teacher": Field("str_list", "Columns of the teacher's logged probabilities (default: run "
                                     "the teacher, on every row or a shadow share)."),
        "shadow": Field("number", "Run the teacher on this share of each window's rows only "
                                  "(seeded), as a shadow deployment would.",
                        schema=(("exclusiveMinimum", 0), ("maximum", 1))),
    },
    "labels": {
        "files": Field("str_list", "Label files (.csv/.parquet), read on every run; new rows are "
                                   "added; a label that differs from its first delivery is "
                                   "reported and the first kept.", required=True),
        "id": Field("str", "Their row id column.", required=True),
        "column": Field("str", "Their label column (default: the suite's data.target)."),
    },
    "monitor_settings": {
        "confidence": Field("number", "Interval confidence.", default=0.95,
                            schema=(("exclusiveMinimum", 0.5), ("exclusiveMaximum", 1))),
        "bootstrap": Field("int", "Bootstrap replicates per window.", default=1000,
                           schema=(("minimum", 100),)),
        "seed": Field("int", "Seed of the bootstrap and the shadow sample.", default=0),
    },
    "alert": {
        "metric": Field("str", "The window metric: " + ", ".join(MONITOR_METRICS) + ".",
                        required=True, choices=tuple(MONITOR_METRICS)),
        "gate": Field("section:gate", "The bounds a window must satisfy.", required=True),
        "for": Field("int", "Consecutive windows out of bounds before the alert fires.",
                     default=1, schema=(("minimum", 1),)),
        "description": Field("str", "What the alert guards, in words."),
    },
}


@dataclass(frozen=True)
class AlertSpec:
    """One alert: a window metric, its gate and how many windows in a row must miss it."""

    name: str
    metric: str
    gate: GateSpec
    persist: int = 1
    description: str = ""
    line: int | None = None


@dataclass(frozen=True)
class MonitorSpec:
    """A parsed monitor file (paths resolved against the file's folder)."""

    name: str
    path: Path
    suite: Path
    alerts: tuple[AlertSpec, ...]
    store: Path
    folder: Path | None = None
    table: Path | None = None
    window: str = "batch"
    rows: int | None = None
    timestamp: str | None = None
    id: str | None = None
    student_columns: tuple[str, ...] | None = None
    teacher_columns: tuple[str, ...] | None = None
    shadow: float | None = None
    label_files: tuple[Path, ...] = ()
    label_id: str | None = None
    label_column: str | None = None
    reference: Path | None = None
    description: str = ""
    confidence: float = 0.95
    bootstrap: int = 1000
    seed: int = 0


class _MonitorParser(SuiteParser):
    """The suite parser's machinery (located errors, scalars, gates) on the monitor's tables."""

    def fields(self, section: str) -> dict[str, Field]:
        return _SECTIONS[section] if section in _SECTIONS else SECTIONS[section]

    def monitor(self) -> MonitorSpec:
        top = self.section((), self.located.value, "monitor")
        if not isinstance(top, dict):  # pragma: no cover - section() raises first
            raise SuiteError("a monitor file is a mapping", file=self.path)
        name = self.get((), top, "name", "monitor")
        self.get((), top, "version", "monitor")
        if not NAME_RE.fullmatch(name):
            raise self.bad(("name",), name, "use letters, digits, '_', '.' and '-' only")
        suite = self.path_of(("suite",), self.get((), top, "suite", "monitor"))
        reference = top.get("reference")
        ref = None if reference is None else self.path_of(
            ("reference",), self.get((), top, "reference", "monitor"))
        b = self.section(("batches",), top["batches"], "batches")
        window = self.get(("batches",), b, "window", "batches")
        sources = [k for k in ("folder", "table") if k in b]
        if len(sources) != 1:
            raise self.bad(("batches",), b, "name exactly one of folder (one file per batch) or "
                                            "table (every row in one file)")
        where = ("batches", sources[0])
        raw = self.get(("batches",), b, sources[0], "batches")
        source = self.path_of(where, raw, must_exist=False)
        if sources[0] == "folder" and not source.is_dir():
            raise self.bad(where, raw, f"folder not found ({source}); paths are relative to "
                                       "the monitor file")
        if sources[0] == "table" and not source.is_file():
            raise self.bad(where, raw, f"file not found ({source}); paths are relative to the "
                                       "monitor file")
        rows = self.get(("batches",), b, "rows", "batches")
        timestamp = self.get(("batches",), b, "timestamp", "batches")
        if window == "rows" and rows is None:
            raise self.bad(("batches", "window"), window, "needs rows: the rows per window")
        if rows is not None and window != "rows":
            raise self.bad(("batches", "rows"), rows, f"applies to window: rows only (window is "
                                                      f"{window}); remove it or set window: rows")
        if window in ("hour", "day", "week") and timestamp is None:
            raise self.bad(("batches", "window"), window, "needs timestamp: the column of each "
                                                          "row's time")
        if window == "batch" and sources[0] == "table":
            raise self.bad(("batches", "window"), window, "a single table has no batches; use "
                                                          "rows, hour, day or week")
        for key in ("rows", "timestamp", "id"):
            if key in b:
                f = self.fields("batches")[key]
                self.in_range(("batches", key), b[key], dict(f.schema))
        out = self.section(("outputs",), top.get("outputs", {}), "outputs")
        student = self.get(("outputs",), out, "student", "outputs")
        teacher = self.get(("outputs",), out, "teacher", "outputs")
        shadow = self.get(("outputs",), out, "shadow", "outputs")
        if shadow is not None:
            self.in_range(("outputs", "shadow"), shadow, {"exclusiveMinimum": 0, "maximum": 1})
            if teacher is not None:
                raise self.bad(("outputs", "shadow"), shadow, "the teacher's outputs are logged "
                                                              "(outputs.teacher); remove shadow, "
                                                              "or the teacher columns")
        labels = top.get("labels")
        files: tuple[Path, ...] = ()
        label_id = label_column = None
        if labels is not None:
            lab = self.section(("labels",), labels, "labels")
            names = self.get(("labels",), lab, "files", "labels")
            files = tuple(self.path_of(("labels", "files", i), n, must_exist=False)
                          for i, n in enumerate(names))
            label_id = self.get(("labels",), lab, "id", "labels")
            label_column = self.get(("labels",), lab, "column", "labels")
        settings = self.section(("settings",), top.get("settings", {}), "monitor_settings")
        vals = {k: self.get(("settings",), settings, k, "monitor_settings")
                for k in self.fields("monitor_settings")}
        for k, f in self.fields("monitor_settings").items():
            self.in_range(("settings", k), vals[k], dict(f.schema))
        alerts = self.alerts(top["alerts"])
        store = top.get("store")
        store_path = (self.path_of(("store",), self.get((), top, "store", "monitor"),
                                   must_exist=False) if store is not None else
                      suite.parent.parent / "reports" / name / "monitor.sqlite"
                      if suite.parent.name == "suites" else
                      suite.parent / "reports" / name / "monitor.sqlite")
        assert self.path is not None
        return MonitorSpec(
            name=name, path=self.path, suite=suite, alerts=alerts, store=store_path,
            folder=source if sources[0] == "folder" else None,
            table=source if sources[0] == "table" else None, window=window, rows=rows,
            timestamp=timestamp, id=self.get(("batches",), b, "id", "batches"),
            student_columns=student, teacher_columns=teacher, shadow=shadow, label_files=files,
            label_id=label_id, label_column=label_column, reference=ref,
            description=self.get((), top, "description", "monitor") or "",
            confidence=float(vals["confidence"]), bootstrap=int(vals["bootstrap"]),
            seed=int(vals["seed"]))

    def alerts(self, value: Any) -> tuple[AlertSpec, ...]:
        kp: KeyPath = ("alerts",)
        if not isinstance(value, dict) or not value:
            raise self.bad(kp, value, "must be a non-empty mapping of alert name -> {metric: ..., "
                                      "gate: {...}}")
        out = []
        for name, raw in value.items():
            akp = (*kp, name)
            if not isinstance(name, str) or not NAME_RE.fullmatch(name):
                raise self.bad(akp, name, "alert names use letters, digits, '_', '.' and '-' "
                                          "only")
            a = self.section(akp, raw, "alert")
            metric = a["metric"]
            if metric not in MONITOR_METRICS:
                hint = did_you_mean(str(metric), list(MONITOR_METRICS))
                raise self.bad((*akp, "metric"), metric, f"unknown window metric{hint} (valid: "
                                                         f"{', '.join(MONITOR_METRICS)})")
            gate = self.gate((*akp, "gate"), a["gate"], MONITOR_METRICS[metric])
            persist = self.get(akp, a, "for", "alert")
            self.in_range((*akp, "for"), persist, {"minimum": 1})
            out.append(AlertSpec(name=name, metric=metric, gate=gate, persist=int(persist),
                                 description=self.get(akp, a, "description", "alert") or "",
                                 line=self.located.origin(akp).line))
        return tuple(out)


def load_monitor(path: str | Path) -> MonitorSpec:
    """Parse and validate a monitor file (raises :class:`~audit.errors.SuiteError` with file,
    line, key path, value and fix)."""
    path = Path(path)
    located: Located = load_yaml(path)
    return _MonitorParser(located, path).monitor()


def monitor_json_schema() -> dict[str, Any]:
    """The JSON Schema (draft 2020-12) of the monitor file, generated from its field tables."""

    def section(name: str) -> dict[str, Any]:
        fields = _SECTIONS[name] if name in _SECTIONS else SECTIONS[name]
        out: dict[str, Any] = {"type": "object", "additionalProperties": False,
                               "properties": {}}
        for key, f in fields.items():
            if f.kind == "alerts":
                out["properties"][key] = {"type": "object", "minProperties": 1,
                                          "propertyNames": {"pattern": NAME_RE.pattern},
                                          "additionalProperties": {"$ref": "#/$defs/alert"},
                                          "description": f.doc}
            else:
                out["properties"][key] = field_schema(f)
        required = [k for k, f in fields.items() if f.required]
        if required:
            out["required"] = required
        return out

    top = section("monitor")
    defs = {name: section(name) for name in (*_SECTIONS, "gate") if name != "monitor"}
    defs["batches"]["oneOf"] = [{"required": ["folder"]}, {"required": ["table"]}]
    return {"$schema": "https://json-schema.org/draft/2020-12/schema",
            "$id": "https://distill-audit.invalid/schemas/monitor-v1.json",
            "title": "distill-audit monitor file", **top, "$defs": defs}
