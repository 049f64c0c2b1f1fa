"""The trend document: windows (or releases) over time, their measurements and the alerts.

One JSON document (schema ``audit/schemas/trend-v1.json``) that the trend page is rendered
from alone (:mod:`audit.report.trend`). Two builders make it:

* :func:`monitor_document`, from a monitor's store: each judged window's measurements, the
  realized accuracy of the rows whose labels have arrived (recomputed on every export, so a
  late label updates a past window), the alerts judged window by window with their
  persistence, annotations where an alert fired or a model file changed, and the events;
* :func:`history_document`, from the saved JSON reports of one suite's release audits: each
  release a point, each gated measurement a series, each gate an alert (``for: 1``), and an
  annotation wherever a gate flipped.

Alerts: a window's status for an alert is its gate's verdict on that window's measurement
(``fail`` when any bound fails, ``inconclusive`` when one is undecided, ``pass``; ``None``
when the window has no such measurement, e.g. realized accuracy before labels). An alert
with ``for: N`` *fires* at the window that makes N ``fail`` windows in a row (inconclusive and
unmeasured windows in between neither count nor reset), and stays firing until a window
passes (:func:`alert_track`).
"""

from __future__ import annotations

import json
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from audit.errors import DataError, display_path
from audit.results import Measurement, Status

__all__ = ["monitor_document", "history_document", "alert_track", "TREND_SCHEMA"]

TREND_SCHEMA = "distill-audit/trend/1"


def alert_track(statuses: Sequence[str | None], persist: int) -> list[bool]:
    """For each window, whether an alert needing ``persist`` consecutive failures is firing.

    A failing window counts, a passing one resets the count; an inconclusive or unmeasured
    window (too few rows to tell, no labels yet) does neither: it holds the state, so a firing
    alert stays firing until a window shows it passes.

    >>> alert_track(["fail", "fail", "pass", "fail", "inconclusive", "fail", None], 2)
    [False, True, False, False, False, True, True]
    """
    out, streak = [], 0
    for s in statuses:
        if s == "fail":
            streak += 1
        elif s == "pass":
            streak = 0
        out.append(streak >= persist)
    return out


def _status(gate: Any, m: Measurement | None) -> tuple[str | None, list[dict[str, Any]]]:
    from audit.gates import evaluate_gate

    if m is None:
        return None, []
    results = evaluate_gate(gate, m)
    statuses = {r.status for r in results}
    status = ("fail" if Status.FAIL in statuses else
              "inconclusive" if Status.INCONCLUSIVE in statuses else "pass")
    return status, [r.to_dict() for r in results]


def _gate_dict(gate: Any) -> dict[str, Any]:
    return {k: (int(v) if float(v).is_integer() and k in ("min", "max") else v)
            for k, v in (("min", gate.min), ("max", gate.max),
                         ("max_regression", gate.max_regression),
                         ("max_relative_regression", gate.max_relative_regression))
            if v is not None} | {"severity": gate.severity}


def _alerts(alerts: Sequence[Any], windows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    from audit.results import Measurement

    out = []
    for a in alerts:
        statuses, judged = [], []
        for w in windows:
            body = w["measurements"].get(a.metric)
            m = None if body is None else Measurement.from_dict(body)
            status, bounds = _status(a.gate, m)
            statuses.append(status)
            judged.append(bounds)
        firing = alert_track(statuses, a.persist)
        started = [i for i, f in enumerate(firing) if f and (i == 0 or not firing[i - 1])]
        out.append({"name": a.name, "metric": a.metric, "gate": _gate_dict(a.gate),
                    "for": a.persist, "description": a.description, "statuses": statuses,
                    "bounds": judged, "firing": firing, "fired_at": started,
                    "firing_now": bool(firing and firing[-1]),
                    "severity": a.gate.severity})
    return out


def _annotations(windows: list[dict[str, Any]], alerts: list[dict[str, Any]]
                 ) -> list[dict[str, Any]]:
    notes: list[dict[str, Any]] = []
    for i in range(1, len(windows)):
        for who in ("teacher", "student"):
            before, now = windows[i - 1]["models"].get(who), windows[i]["models"].get(who)
            if before != now:
                notes.append({"window": i, "kind": "release",
                              "text": f"the {who} changed (model file sha256 "
                                      f"{str(before)[:12]}... -> {str(now)[:12]}...)"})
    for a in alerts:
        for i in a["fired_at"]:
            notes.append({"window": i, "kind": "alert",
                          "text": f"alert {a['name']} fired ({a['metric']}, {a['for']} window(s) "
                                  "in a row out of bounds)"})
    return sorted(notes, key=lambda n: (n["window"], n["kind"]))


def _realized(store: Any, window_id: int, labels: dict[str, str], encoding: Any,
              confidence: float, n_boot: int, seed: int) -> tuple[Measurement | None, int]:
    from audit.monitor.measures import realized

    ids, student, teacher = store.predictions(window_id)
    have = np.array([rid in labels for rid in ids], dtype=bool)
    if not have.any():
        return None, 0
    y = np.full(len(ids), -1, dtype=np.int64)
    y[have] = encoding.encode(pd.Series([labels[r] for r, h in zip(ids, have, strict=True) if h]),
                              "the delivered labels")
    known = {"student": have, "teacher": have & (teacher >= 0)}
    return realized(y, {"student": student, "teacher": teacher}, known, confidence, n_boot,
                    seed), int(have.sum())


def monitor_document(spec: Any, store: Any, encoding: Any, reference: Any) -> dict[str, Any]:
    """The trend document of a monitor, from its store (and the reference it was judged
    against)."""
    labels = store.labels()
    windows: list[dict[str, Any]] = []
    for w in store.windows():
        measured = {k: m.to_dict() for k, m in store.measurements(w.id).items()}
        real, labelled = _realized(store, w.id, labels, encoding, spec.confidence,
                                   spec.bootstrap, spec.seed)
        if real is not None:
            measured["realized_accuracy"] = real.to_dict()
            est = measured.get("estimated_accuracy")
            if est is not None:  # how far the estimate was from what the labels say
                measured["realized_accuracy"]["extra"] = {"estimation_error": {
                    who: (est[who]["value"] - measured["realized_accuracy"][who]["value"])
                    if est.get(who) and measured["realized_accuracy"].get(who) else None
                    for who in ("teacher", "student")}}
        windows.append({"key": w.key, "position": w.position, "start": w.start, "end": w.end,
                        "rows": w.rows, "labelled": labelled, "judged": w.judged,
                        "models": dict(w.models), "measurements": measured})
    alerts = _alerts(spec.alerts, windows)
    return {
        "schema": TREND_SCHEMA, "kind": "monitor", "name": spec.name,
        "description": spec.description,
        "generated": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "source": {
            "monitor": str(spec.path), "suite": str(spec.suite), "store": str(spec.store),
            "window": spec.window if spec.window != "rows" else f"{spec.rows} rows",
            "outputs": {"student": list(spec.student_columns) if spec.student_columns else "run",
                        "teacher": (list(spec.teacher_columns) if spec.teacher_columns else
                                    f"shadow {spec.shadow:g}" if spec.shadow else "run")},
            "reference": {"rows": reference.n, "accuracy": dict(reference.accuracy),
                          "calibration": {w: c.to_dict() for w, c in
                                          reference.calibration.items()}},
            "labels": len(labels), "confidence": spec.confidence,
            "bootstrap": spec.bootstrap, "seed": spec.seed},
        "windows": windows, "alerts": alerts,
        "annotations": _annotations(windows, alerts), "events": store.events(),
        "verdict": "alert" if any(a["firing_now"] and a["severity"] != "warn"
                                  for a in alerts) else "ok",
    }


def history_document(folder: Path) -> dict[str, Any]:
    """The trend document of a suite's saved release audits (``<folder>/*.json``, each a JSON
    report), oldest first."""
    from audit.errors import AuditError
    from audit.report.jsonio import read_report

    if not folder.is_dir():
        raise DataError(f"{display_path(folder)}: folder not found; name one suite's report "
                        "folder (reports/<suite>)")
    paths = sorted(p for p in folder.glob("*.json") if not p.name.startswith("latest"))
    if not paths:
        raise DataError(f"{display_path(folder)}: no saved JSON reports (<timestamp>.json) to "
                        "trace; run the suite first")
    reports = []
    for p in paths:
        try:
            reports.append((p, read_report(p)))
        except AuditError as exc:
            raise DataError(str(exc)) from None
    names = {r.suite.get("name") for _, r in reports}
    if len(names) > 1:
        raise DataError(f"{display_path(folder)}: reports of several suites "
                        f"({', '.join(sorted(map(str, names)))}); point at one suite's folder")
    reports.sort(key=lambda pr: (pr[1].provenance.created or pr[0].stem))
    windows: list[dict[str, Any]] = []
    # each gate bound as each release judged it: its saved status and threshold
    saved: dict[tuple[str, str], dict[int, tuple[str, float, str]]] = {}
    for i, (p, r) in enumerate(reports):
        measured: dict[str, Any] = {}
        for c in r.checks:
            for m in c.measurements:
                key = f"{c.name}: {m.metric}" + (f" [{m.scope}]" if m.scope else "")
                measured[key] = m.to_dict()
                for g in c.gates:
                    if g.scope == m.scope:
                        saved.setdefault((key, g.kind), {})[i] = (
                            g.status.value, float(g.threshold), g.severity)
        prov = r.provenance
        windows.append({"key": p.stem, "position": prov.created or p.stem,
                        "start": prov.created or None, "end": None, "rows": None,
                        "labelled": None, "judged": prov.created or None,
                        "models": {"teacher": prov.teacher.get("sha256"),
                                   "student": prov.student.get("sha256")},
                        "verdict": r.verdict.value, "measurements": measured})
    judged: list[dict[str, Any]] = []
    for (key, kind), by_release in sorted(saved.items()):
        statuses = [by_release[i][0] if i in by_release else None for i in range(len(reports))]
        latest = by_release[max(by_release)]
        firing = [st == "fail" for st in statuses]
        judged.append({"name": f"{key} {kind}", "metric": key,
                       "gate": {kind: latest[1], "severity": latest[2]}, "for": 1,
                       "description": "", "statuses": statuses, "bounds": [],
                       "thresholds": [by_release[i][1] if i in by_release else None
                                      for i in range(len(reports))],
                       "firing": firing,
                       "fired_at": [i for i, f in enumerate(firing) if f and (
                           i == 0 or not firing[i - 1])],
                       "firing_now": bool(firing and firing[-1]), "severity": latest[2]})
    notes = [n for n in _annotations(windows, judged) if n["kind"] != "alert"]
    for a in judged:
        st, th = a["statuses"], a["thresholds"]
        for i in range(1, len(st)):
            if st[i] is not None and st[i - 1] is not None and st[i] != st[i - 1]:
                moved = (f" (threshold {th[i - 1]:g} -> {th[i]:g})"
                         if th[i] is not None and th[i - 1] is not None and th[i] != th[i - 1]
                         else "")
                notes.append({"window": i, "kind": "flip",
                              "text": f"{a['name']}: {st[i - 1]} -> {st[i]}{moved}"})
    latest_verdict = reports[-1][1].verdict.value
    return {"schema": TREND_SCHEMA, "kind": "history", "name": str(names.pop()),
            "description": f"release audits in {display_path(folder)}",
            "generated": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
            "source": {"folder": str(folder), "reports": [p.name for p, _ in reports],
                       "latest_verdict": latest_verdict},
            "windows": windows, "alerts": judged,
            "annotations": sorted(notes, key=lambda n: (n["window"], n["kind"])), "events": [],
            "verdict": "alert" if latest_verdict in ("fail", "error", "inconclusive") else "ok"}


def write_document(document: dict[str, Any], path: Path) -> Path:
    """Write the trend document as JSON (NaN refused: every number is finite or null)."""
    from audit.cache import atomic_write_bytes

    text = json.dumps(document, indent=1, allow_nan=False, default=_plain)
    atomic_write_bytes(path, text.encode("utf-8"))  # a unique temporary file: runs may overlap
    return path


def _plain(value: Any) -> Any:
    if isinstance(value, (np.integer,)):
        return int(value)
    if isinstance(value, (np.floating,)):
        return float(value)
    raise TypeError(f"not JSON: {type(value).__name__}")
