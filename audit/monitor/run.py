"""One monitor run: judge the windows not judged yet, add the labels that arrived, export.

The reference is the release audit's labelled eval table (or ``reference:``), read and
predicted through the audit's own run (:class:`audit.runner.SuiteRun`: the same models,
label encoding and prediction cache). Each new closed window gets both models' outputs
(logged columns, or the suite's models run on its rows: the teacher on every row or, with
``shadow``, on a seeded share), its measurements (:mod:`audit.monitor.measures`) and is
written to the store whole (:mod:`audit.monitor.store`). Labels are read on every run and
joined by row id; the trend document (:mod:`audit.monitor.trend`) is rebuilt from the store
alone, and so are the alerts, which depend on every window judged so far.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from audit.data.hashing import file_sha256
from audit.data.tables import read_table
from audit.errors import DataError, display_path
from audit.monitor.measures import Reference, fit_calibration, measure_window
from audit.monitor.spec import MonitorSpec
from audit.monitor.store import Store
from audit.monitor.windows import Window, cut_windows, model_frame, read_batches

__all__ = ["MonitorOutcome", "run_monitor", "reference_of"]


@dataclass
class MonitorOutcome:
    """What a run did and found: the windows judged now, notes, the trend document."""

    judged: list[str] = field(default_factory=list)
    skipped: int = 0
    notes: list[str] = field(default_factory=list)
    document: dict[str, Any] = field(default_factory=dict)
    labels_added: int = 0

    @property
    def firing(self) -> list[dict[str, Any]]:
        """The alerts firing at the latest window."""
        return [a for a in self.document.get("alerts", []) if a.get("firing_now")]


def reference_of(run: Any) -> Reference:
    """Calibrations, accuracies and shares of both models on the run's labelled eval table."""
    inputs = run.inputs
    calibration, accuracy = {}, {}
    for who, P in (("teacher", inputs.p_teacher), ("student", inputs.p_student)):
        correct = P.argmax(axis=1) == inputs.y
        calibration[who] = fit_calibration(P.max(axis=1), correct)
        accuracy[who] = float(correct.mean())
    features = run.eval_table.features
    shares = np.bincount(inputs.p_student.argmax(axis=1), minlength=inputs.k)
    binned = {b.column for b in run.suite.data.bins}
    return Reference(calibration=calibration, accuracy=accuracy, shares=shares,
                     features=features, n=inputs.n, columns=tuple(map(str, features.columns)),
                     pos=inputs.pos, sensitive=tuple(c for c in run.suite.data.sensitive
                                                     if c not in binned))


def _typed(frame: pd.DataFrame, reference: pd.DataFrame, where: str) -> pd.DataFrame:
    """The window's feature columns with the reference's types."""
    out = frame.copy()
    for col, dtype in reference.dtypes.items():
        if out[col].dtype == dtype:
            continue
        try:
            out[col] = out[col].astype(dtype)
        except (TypeError, ValueError) as exc:
            raise DataError(f"{where}: column {col!r} cannot be read as the reference's "
                            f"{dtype} ({exc})") from None
    return out


def _logged(frame: pd.DataFrame, columns: tuple[str, ...], k: int, who: str,
            where: str) -> np.ndarray:
    from audit.models import check_probabilities

    missing = [c for c in columns if c not in frame.columns]
    if missing:
        raise DataError(f"{where}: no column(s) {', '.join(map(repr, missing))} of the {who}'s "
                        f"logged outputs (outputs.{who})")
    if len(columns) != k:
        raise DataError(f"outputs.{who} names {len(columns)} column(s); the models have {k} "
                        "classes: name one probability column per class, in the models' order")
    values = frame[list(columns)].apply(pd.to_numeric, errors="coerce").to_numpy(float)
    return check_probabilities(values, len(frame), k, f"the {who}'s logged outputs", where=where)


def _shadow_rows(n: int, share: float | None, seed: int, key: str) -> np.ndarray:
    """The rows the teacher runs on: all, or a seeded share (stable per window across runs)."""
    if share is None or share >= 1.0:
        return np.ones(n, dtype=bool)
    salt = int.from_bytes(hashlib.sha256(key.encode()).digest()[:8], "little")
    rng = np.random.default_rng([seed, salt])
    m = max(1, int(round(share * n)))
    mask = np.zeros(n, dtype=bool)
    mask[rng.choice(n, m, replace=False)] = True
    return mask


def _outputs(run: Any, spec: MonitorSpec, w: Window, features: pd.DataFrame
             ) -> tuple[dict[str, np.ndarray], np.ndarray]:
    """Both models' probabilities on the window (the teacher's on its shadow rows only) and
    the shadow mask."""
    k = len(run.encoding.classes)
    where = f"window {w.key}"
    n = len(features)
    base = run.eval_table

    def table(rows: np.ndarray) -> Any:
        return replace(base.take(np.zeros(int(rows.sum()), dtype=int)),
                       features=features[rows].reset_index(drop=True), role=where,
                       path=Path(str(w.rows["__batch"].iloc[0])), sha256=w.content)

    def predict(who: str, rows: np.ndarray) -> np.ndarray:
        model = run.model(who)
        return model.predict_proba(table(rows))[:, run.encoding.reorder(model.classes)]

    everything = np.ones(n, dtype=bool)
    student = (_logged(w.rows, spec.student_columns, k, "student", where)
               if spec.student_columns else predict("student", everything))
    if spec.teacher_columns:
        shadow = everything
        teacher = _logged(w.rows, spec.teacher_columns, k, "teacher", where)
    else:
        shadow = _shadow_rows(n, spec.shadow, spec.seed, w.key)
        teacher = predict("teacher", shadow)
    return {"student": student, "teacher": teacher}, shadow


CROSS_CHECK_ROWS = 20  # rows of the first window judged in a run that logged outputs are checked on
CROSS_CHECK_TOLERANCE = 1e-3


def _cross_check(run: Any, spec: MonitorSpec, w: Window, features: pd.DataFrame,
                 P: dict[str, np.ndarray]) -> list[str]:
    """Logged outputs against the suite's own models on a few rows: a swapped column order,
    or a deployed model that is not the audited one, shows here (the teacher's agreement can
    look plausible with swapped columns of both)."""
    notes = []
    rows = np.arange(min(CROSS_CHECK_ROWS, len(features)))
    mask = np.zeros(len(features), dtype=bool)
    mask[rows] = True
    base = run.eval_table
    for who, columns in (("student", spec.student_columns), ("teacher", spec.teacher_columns)):
        if not columns:
            continue
        model = run.model(who)
        table = replace(base.take(np.zeros(len(rows), dtype=int)),
                        features=features[mask].reset_index(drop=True),
                        role=f"window {w.key}", sha256=w.content)
        mine = model.predict_proba(table)[:, run.encoding.reorder(model.classes)]
        gap = np.abs(mine - P[who][rows]).max(axis=1)
        off = int((gap > CROSS_CHECK_TOLERANCE).sum())
        if off:
            notes.append(f"window {w.key}: the {who}'s logged outputs (outputs.{who}) differ from "
                         f"the suite's {who} on {off} of the {len(rows)} rows checked (largest "
                         f"|difference| {gap.max():.3g}): are the columns in the classes' order "
                         f"({', '.join(map(str, run.encoding.classes))}), and is the deployed "
                         "model the audited one?")
    return notes


def _model_hashes(run: Any) -> dict[str, str | None]:
    out: dict[str, str | None] = {}
    for who in ("teacher", "student"):
        path = getattr(run.suite, who).path
        out[who] = file_sha256(path) if path is not None and Path(path).is_file() else None
    return out


def _read_labels(spec: MonitorSpec, store: Store, target: str, encoding: Any,
                 notes: list[str]) -> int:
    added = 0
    column = spec.label_column or target
    for path in spec.label_files:
        if not path.is_file():
            notes.append(f"labels {display_path(path)}: not delivered yet")
            continue
        frame = read_table(path)
        for col, key in ((spec.label_id, "labels.id"), (column, "labels.column")):
            if col not in frame.columns:
                raise DataError(f"{display_path(path)}: no column {col!r} ({key}); columns: "
                                f"{', '.join(map(str, frame.columns))}")
        frame = frame[frame[column].notna()]
        try:  # checked before anything is stored: a bad delivery must not poison the store
            encoding.encode(frame[column].reset_index(drop=True), f"{display_path(path)} column "
                                                                  f"{column!r}")
        except DataError as exc:
            raise DataError(f"{exc} (data row n is line n + 1 of the file)") from None
        new, conflicts = store.add_labels(path.name, frame[spec.label_id].astype(str).tolist(),
                                          frame[column].astype(str).tolist())
        added += new
        if conflicts:
            notes.append(f"{display_path(path)}: {len(conflicts)} label(s) differ from the "
                         f"first delivery (kept the first): {conflicts[0]}")
    return added


def run_monitor(spec: MonitorSpec, *, session: Any = None,
                progress: Callable[[str], None] | None = None) -> MonitorOutcome:
    """Judge every closed window not in the store yet, add the labels, rebuild the trend."""
    from audit.monitor.trend import monitor_document
    from audit.runner import AuditSession, SuiteRun
    from audit.suite import load_suite

    suite = load_suite(spec.suite)
    if spec.reference is not None:
        suite = replace(suite, data=replace(suite.data, eval=spec.reference))
    run = SuiteRun(suite, session or AuditSession())
    reference = reference_of(run)
    outcome = MonitorOutcome()
    store = Store(spec.store, spec.name)
    try:
        batches = read_batches(spec.folder, spec.table, spec.id)
        for b in batches:
            message = store.note_batch(b.name, b.sha256, len(b.frame))
            if message:
                outcome.notes.append(message)
        judged = store.judged_rows() if spec.window == "rows" else None
        windows, open_note = cut_windows(batches, spec.window, spec.rows, spec.timestamp,
                                         judged=judged, start=len(store.windows()))
        if open_note:
            outcome.notes.append(open_note)
        models = _model_hashes(run)
        checked = False
        for w in windows:
            stored = store.window(w.key)
            if stored is not None:
                outcome.skipped += 1
                if stored.content != w.content:
                    message = (f"window {w.key} changed since it was judged (content "
                               f"{stored.content[:12]}... -> {w.content[:12]}...); its stored "
                               "results are kept: give changed data a new batch")
                    outcome.notes.append(message)
                    if message not in {e["message"] for e in store.events()}:
                        store.event("changed_window", message)
                continue
            where = f"window {w.key}"
            features = _typed(model_frame(w, reference.columns), reference.features, where)
            P, shadow = _outputs(run, spec, w, features)
            if not checked and (spec.student_columns or spec.teacher_columns):
                checked = True  # once per run, on the first new window
                for message in _cross_check(run, spec, w, features, P):
                    outcome.notes.append(message)
                    store.event("logged_outputs", message)
            logged = [c for c in reference.sensitive if c in w.rows.columns]
            measured = measure_window(reference, P, shadow, features,
                                      confidence=spec.confidence, n_boot=spec.bootstrap,
                                      seed=spec.seed,
                                      groups=w.rows[logged].reset_index(drop=True))
            teacher = np.full(w.n, -1, dtype=np.int64)
            teacher[shadow] = P["teacher"].argmax(axis=1)
            if store.add_window(w.key, w.position, w.content, w.n, w.start, w.end, models,
                                measured, w.rows["__row_id"].to_numpy(),
                                P["student"].argmax(axis=1), teacher):
                outcome.judged.append(w.key)
                if progress is not None:
                    progress(f"judged {where} ({w.n} rows)")
            else:
                outcome.skipped += 1
        outcome.labels_added = _read_labels(spec, store, suite.data.target, run.encoding,
                                            outcome.notes)
        unmatched = store.unmatched_labels() if spec.label_files else 0
        if unmatched:
            outcome.notes.append(f"{unmatched} delivered label(s) match no judged row id (yet): "
                                 "rows still to come, or ids written differently (case, "
                                 "padding) from the batches' batches.id column")
        outcome.document = monitor_document(spec, store, run.encoding, reference)
    finally:
        store.close()
    return outcome
