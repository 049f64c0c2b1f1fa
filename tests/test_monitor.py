"""The production monitor: CBPE against a hand computation, alerts on the simulation (never on
the in-distribution windows), persistence at its edges, an idempotent store that survives a
killed run and concurrent runs, late labels, changed batches, shadow teachers, the trend
page from its JSON alone, and located errors in the monitor file."""

from __future__ import annotations

import json
import shutil
import sqlite3
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
import yaml

from audit.errors import SuiteError
from audit.monitor.measures import fit_calibration, paired_means
from audit.monitor.run import run_monitor
from audit.monitor.spec import load_monitor, monitor_json_schema
from audit.monitor.trend import alert_track

ROOT = Path(__file__).resolve().parents[1]
ALERTS = {"agreement": {"metric": "agreement", "gate": {"min": 0.9}, "for": 3},
          "accuracy_drop": {"metric": "estimated_accuracy_drop", "gate": {"max": 0.03},
                            "for": 2},
          "realized": {"metric": "realized_accuracy", "gate": {"max_regression": 0.05}},
          "parity": {"metric": "demographic_parity_difference", "gate": {"max_regression": 0.05},
                     "for": 2}}


def _monitor(folder: Path, batches: Path, *, labels: list[Path] | None = None,
             outputs: dict[str, Any] | None = None, alerts: dict[str, Any] | None = None,
             **extra: Any) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    raw: dict[str, Any] = {
        "version": 1, "name": "mon", "suite": str(ROOT / "suites" / "arrests.audit.yaml"),
        "batches": {"folder": str(batches), "window": "batch", "id": "row_id"},
        "outputs": outputs if outputs is not None else {
            "student": ["student_No", "student_Yes"], "teacher": ["teacher_No", "teacher_Yes"]},
        "alerts": alerts or ALERTS, "store": str(folder / "store.sqlite"),
        "settings": {"bootstrap": 200}, **extra}
    if labels is not None:
        raw["labels"] = {"files": [str(p) for p in labels], "id": "row_id", "column": "released"}
    path = folder / "m.monitor.yaml"
    path.write_text(yaml.safe_dump(raw))
    return path


def _batches(monitor_batches: Path, tmp: Path, first: int = 20) -> Path:
    """A copy of the simulation's first ``first`` batches (so a test can add, change and
    remove files)."""
    out = tmp / "batches"
    out.mkdir(parents=True)
    for p in sorted((monitor_batches / "batches").glob("*.csv"))[:first]:
        shutil.copy(p, out / p.name)
    return out


def _dump(store: Path) -> dict[str, list[Any]]:
    """Every table of a store but the timestamps of when things were written."""
    db = sqlite3.connect(store)
    out = {
        "windows": db.execute("SELECT key, position, content, rows, start, end, models FROM "
                              "windows ORDER BY position").fetchall(),
        "measurements": db.execute("SELECT w.key, m.metric, m.body FROM measurements m JOIN "
                                   "windows w ON w.id = m.window_id ORDER BY w.position, "
                                   "m.metric").fetchall(),
        "predictions": db.execute("SELECT row_id, student, teacher FROM predictions ORDER BY "
                                  "row_id").fetchall(),
        "labels": db.execute("SELECT row_id, label FROM labels ORDER BY row_id").fetchall(),
        "batches": db.execute("SELECT name, sha256, rows FROM batches ORDER BY name").fetchall()}
    db.close()
    return out


# -- CBPE ------------------------------------------------------------------------------------
def test_calibration_is_pool_adjacent_violators_by_hand() -> None:
    """Correct 1, 0, 0 at the three lowest confidences pool to 1/3 (1 > 0 violates, then the
    pooled 1/2 > 0 violates again); the rest are right."""
    conf = np.array([0.55, 0.6, 0.7, 0.8, 0.9, 0.95])
    correct = np.array([1, 0, 0, 1, 1, 1])
    cal = fit_calibration(conf, correct)
    assert cal.expected(conf).tolist() == pytest.approx([1 / 3] * 3 + [1.0] * 3)
    # between the steps the map is linear (0.7 -> 1/3, 0.8 -> 1), outside it is clipped
    assert cal.expected(np.array([0.75, 0.1, 0.99])).tolist() == pytest.approx([2 / 3, 1 / 3, 1])
    # the window's estimated accuracy is the mean of the mapped confidences
    window = np.array([0.58, 0.75, 0.99, 0.99])
    assert float(cal.expected(window).mean()) == pytest.approx((1 / 3 + 2 / 3 + 1 + 1) / 4)


def test_paired_means_resample_rows_as_a_row_bootstrap_does() -> None:
    rng = np.random.default_rng(0)
    a = (rng.uniform(size=400) < 0.7).astype(float)
    b = np.round(rng.uniform(size=400), 1)  # few distinct values, as a calibration's steps
    reps = paired_means({"a": a, "b": b}, 4000, 1)
    idx = rng.integers(0, 400, (4000, 400))
    direct = {"a": a[idx].mean(axis=1), "b": b[idx].mean(axis=1)}
    for k in ("a", "b"):
        assert reps[k].mean() == pytest.approx(direct[k].mean(), abs=2e-3)
        assert reps[k].std() == pytest.approx(direct[k].std(), rel=0.08)
    # paired: the same rows for both, so the difference's spread is the paired one
    assert np.std(reps["a"] - reps["b"]) == pytest.approx(np.std(direct["a"] - direct["b"]),
                                                          rel=0.08)


# -- the simulation ------------------------------------------------------------------------
@pytest.fixture(scope="module")
def judged(monitor_batches: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    folder = tmp_path_factory.mktemp("judged")
    path = _monitor(folder, monitor_batches / "batches",
                    labels=[monitor_batches / "labels.csv", monitor_batches / "labels_late.csv"])
    outcome = run_monitor(load_monitor(path))
    return {"path": path, "outcome": outcome, "doc": outcome.document, "folder": folder}


def test_no_alert_on_the_in_distribution_windows_and_agreement_fires_on_the_drift(
        judged: dict[str, Any]) -> None:
    doc = judged["doc"]
    assert len(doc["windows"]) == 20 and doc["verdict"] == "alert"
    alerts = {a["name"]: a for a in doc["alerts"]}
    for a in alerts.values():
        assert not any(a["firing"][:8]), a["name"]  # days 1-8: in distribution
    agreement = alerts["agreement"]
    assert agreement["statuses"][:8] == ["pass"] * 8
    first = agreement["fired_at"][0]
    assert 8 < first and all(agreement["firing"][first:])  # fires on the drift and stays
    # the estimate catches the decay on the drift's first days, before any label of them
    assert alerts["accuracy_drop"]["fired_at"][0] <= 10
    assert agreement["firing_now"] and alerts["accuracy_drop"]["firing_now"]


def test_estimates_track_realized_accuracy_in_distribution(judged: dict[str, Any]) -> None:
    for w in judged["doc"]["windows"][:8]:
        est = w["measurements"]["estimated_accuracy"]
        real = w["measurements"]["realized_accuracy"]
        assert w["labelled"] == 500
        for who in ("teacher", "student"):
            lo, hi = real[who]["ci"]
            e_lo, e_hi = est[who]["ci"]
            assert e_lo <= hi and lo <= e_hi, (w["key"], who)  # the intervals overlap
            error = real["extra"]["estimation_error"][who]
            assert error == pytest.approx(est[who]["value"] - real[who]["value"])


def test_realized_accuracy_equals_a_count_of_the_labels(judged: dict[str, Any],
                                                        monitor_batches: Path) -> None:
    labels = pd.concat([pd.read_csv(monitor_batches / "labels.csv"),
                        pd.read_csv(monitor_batches / "labels_late.csv")])
    by_id = dict(zip(labels["row_id"], labels["released"], strict=True))
    for i, w in enumerate(judged["doc"]["windows"]):
        batch = pd.read_csv(monitor_batches / "batches" / w["key"])
        known = batch["row_id"].map(by_id)
        if i >= 12:
            assert known.isna().all() and "realized_accuracy" not in w["measurements"]
            continue
        for who in ("teacher", "student"):
            pred = np.where(batch[f"{who}_Yes"] >= batch[f"{who}_No"], "Yes", "No")
            want = float(np.mean(pred == known.to_numpy()))
            assert w["measurements"]["realized_accuracy"][who]["value"] == pytest.approx(want)


def test_the_trend_json_follows_its_schema_and_the_html_is_drawn_from_it_alone(
        judged: dict[str, Any], tmp_path: Path) -> None:
    import jsonschema

    from audit.cli import _write_trend
    from audit.report.trend import render_trend

    doc = judged["doc"]
    html = _write_trend(doc, tmp_path / "trend.json")
    back = json.loads((tmp_path / "trend.json").read_text())
    schema = json.loads((ROOT / "audit" / "schemas" / "trend-v1.json").read_text())
    jsonschema.Draft202012Validator(schema).validate(back)
    assert render_trend(back) == html.read_text()
    page = html.read_text()
    assert "<script" not in page and "http" not in page.replace(
        "http://www.w3.org/2000/svg", "")
    assert page.count("<svg") >= 7 and "alert agreement fired" in page


# -- persistence -------------------------------------------------------------------------------
@pytest.mark.parametrize(("statuses", "persist", "want"), [
    (["fail", "fail"], 3, [False, False]),
    (["fail", "fail", "fail"], 3, [False, False, True]),
    (["fail", "fail", "inconclusive", "fail", "fail", "fail"], 3,
     [False, False, False, True, True, True]),
    (["fail", None, "fail"], 2, [False, False, True]),
    (["fail", "fail", "inconclusive", None, "pass"], 2, [False, True, True, True, False]),
    (["pass", "fail", "pass"], 1, [False, True, False]),
    ([], 2, []),
], ids=["one-short", "exactly", "inconclusive-holds", "no-data-holds", "only-a-pass-clears",
        "for-1", "empty"])
def test_persistence_at_its_edges(statuses: list[str | None], persist: int,
                                  want: list[bool]) -> None:
    assert alert_track(statuses, persist) == want


# -- the store ---------------------------------------------------------------------------------
def test_a_rerun_changes_nothing_and_new_batches_are_judged_once(monitor_batches: Path,
                                                                 tmp_path: Path) -> None:
    batches = _batches(monitor_batches, tmp_path, first=5)
    path = _monitor(tmp_path / "m", batches)
    first = run_monitor(load_monitor(path))
    assert len(first.judged) == 5
    before = _dump(tmp_path / "m" / "store.sqlite")
    again = run_monitor(load_monitor(path))
    assert again.judged == [] and again.skipped == 5
    assert _dump(tmp_path / "m" / "store.sqlite") == before
    for p in sorted((monitor_batches / "batches").glob("*.csv"))[5:7]:
        shutil.copy(p, batches / p.name)
    more = run_monitor(load_monitor(path))
    assert more.judged == ["batch-006.csv", "batch-007.csv"] and more.skipped == 5


def test_a_changed_batch_is_noticed_and_not_rejudged(monitor_batches: Path,
                                                     tmp_path: Path) -> None:
    batches = _batches(monitor_batches, tmp_path, first=3)
    path = _monitor(tmp_path / "m", batches)
    run_monitor(load_monitor(path))
    before = _dump(tmp_path / "m" / "store.sqlite")["measurements"]
    frame = pd.read_csv(batches / "batch-002.csv")
    frame.loc[0, "age"] = 99
    frame.to_csv(batches / "batch-002.csv", index=False)
    outcome = run_monitor(load_monitor(path))
    assert outcome.judged == []
    assert any(n.startswith("batch batch-002.csv changed since it was first seen") for n in
               outcome.notes)
    assert any(n.startswith("window batch-002.csv changed since it was judged") for n in
               outcome.notes)
    assert _dump(tmp_path / "m" / "store.sqlite")["measurements"] == before
    kinds = [e["kind"] for e in outcome.document["events"]]
    assert kinds == ["changed_batch", "changed_window"]


def test_labels_arriving_later_update_past_windows(monitor_batches: Path,
                                                   tmp_path: Path) -> None:
    late = tmp_path / "late.csv"
    path = _monitor(tmp_path / "m", monitor_batches / "batches",
                    labels=[monitor_batches / "labels.csv", late])
    first = run_monitor(load_monitor(path))
    assert any("not delivered yet" in n for n in first.notes)
    w = first.document["windows"]
    assert w[8]["labelled"] == 0 and "realized_accuracy" not in w[8]["measurements"]
    shutil.copy(monitor_batches / "labels_late.csv", late)
    second = run_monitor(load_monitor(path))
    assert second.judged == [] and second.labels_added == 2000
    w = second.document["windows"]
    assert [x["labelled"] for x in w[8:13]] == [500, 500, 500, 500, 0]
    assert w[11]["measurements"]["realized_accuracy"]["student"]["value"] < 0.75


def test_a_conflicting_label_keeps_the_first_and_says_so(monitor_batches: Path,
                                                         tmp_path: Path) -> None:
    other = tmp_path / "other.csv"
    labels = pd.read_csv(monitor_batches / "labels.csv").head(3)
    labels["released"] = labels["released"].map({"Yes": "No", "No": "Yes"})
    labels.to_csv(other, index=False)
    path = _monitor(tmp_path / "m", _batches(monitor_batches, tmp_path, first=1),
                    labels=[monitor_batches / "labels.csv", other])
    outcome = run_monitor(load_monitor(path))
    assert any("3 label(s) differ from the first delivery (kept the first)" in n
               for n in outcome.notes)


_KILLER = textwrap.dedent("""
    import os, signal, sys
    from audit.monitor import store
    from audit.monitor.run import run_monitor
    from audit.monitor.spec import load_monitor

    mode, after = sys.argv[2], int(sys.argv[3])
    original = store.Store.add_window
    done = [0]

    def add_window(self, *args, **kwargs):
        if mode == "between" and done[0] == after:
            os.kill(os.getpid(), signal.SIGKILL)
        if mode == "inside" and done[0] == after:
            real = self.db.executemany
            class Dying:
                def __getattr__(self, name):
                    return getattr(self.db, name)
            def executemany(sql, rows):
                if "predictions" in sql:  # the window and its measurements are written
                    os.kill(os.getpid(), signal.SIGKILL)
                return real(sql, rows)
            self.db = type("Conn", (), {"execute": self.db.execute,
                                          "executemany": staticmethod(executemany)})()
        done[0] += 1
        return original(self, *args, **kwargs)

    store.Store.add_window = add_window
    run_monitor(load_monitor(sys.argv[1]))
""")


@pytest.mark.slow
@pytest.mark.parametrize("mode", ["between", "inside"])
def test_a_killed_run_leaves_a_consistent_store_the_next_run_completes(
        monitor_batches: Path, tmp_path: Path, mode: str) -> None:
    batches = _batches(monitor_batches, tmp_path, first=8)
    path = _monitor(tmp_path / "m", batches)
    script = tmp_path / "killer.py"
    script.write_text(_KILLER)
    proc = subprocess.run([sys.executable, str(script), str(path), mode, "4"], cwd=ROOT,
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == -9, proc.stderr
    store = tmp_path / "m" / "store.sqlite"
    db = sqlite3.connect(store)
    assert db.execute("PRAGMA integrity_check").fetchone() == ("ok",)
    windows = [r[0] for r in db.execute("SELECT id FROM windows")]
    assert len(windows) == 4  # the fifth was never written, or rolled back whole
    for wid in windows:
        assert db.execute("SELECT COUNT(*) FROM measurements WHERE window_id = ?",
                          (wid,)).fetchone()[0] == 7
        assert db.execute("SELECT COUNT(*) FROM predictions WHERE window_id = ?",
                          (wid,)).fetchone()[0] == 500
    db.close()
    outcome = run_monitor(load_monitor(path))
    assert len(outcome.judged) == 4 and outcome.skipped == 4
    clean = _monitor(tmp_path / "clean", batches)
    run_monitor(load_monitor(clean))
    assert _dump(store) == _dump(tmp_path / "clean" / "store.sqlite")


@pytest.mark.slow
def test_concurrent_runs_never_judge_a_window_twice(monitor_batches: Path,
                                                    tmp_path: Path) -> None:
    path = _monitor(tmp_path / "m", _batches(monitor_batches, tmp_path, first=10))
    code = "import sys; from audit.monitor.run import run_monitor; " \
           "from audit.monitor.spec import load_monitor; " \
           "o = run_monitor(load_monitor(sys.argv[1])); print(len(o.judged))"
    procs = [subprocess.Popen([sys.executable, "-c", code, str(path)], cwd=ROOT,
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
             for _ in range(2)]
    outs = [p.communicate(timeout=300) for p in procs]
    assert all(p.returncode == 0 for p in procs), [o[1][-500:] for o in outs]
    assert sum(int(o[0].split()[-1]) for o in outs) == 10
    db = sqlite3.connect(tmp_path / "m" / "store.sqlite")
    assert db.execute("SELECT COUNT(*), COUNT(DISTINCT key) FROM windows").fetchone() == (10, 10)
    assert db.execute("SELECT COUNT(*) FROM predictions").fetchone() == (5000,)


# -- shadow teacher and models run by the monitor -------------------------------------------
def test_a_shadow_teacher_runs_on_a_seeded_share(monitor_batches: Path, tmp_path: Path) -> None:
    path = _monitor(tmp_path / "m", _batches(monitor_batches, tmp_path, first=2),
                    outputs={"shadow": 0.1})
    doc = run_monitor(load_monitor(path)).document
    agree = doc["windows"][0]["measurements"]["agreement"]
    assert agree["n"] == 50 and "the 50 of 500 window rows the teacher ran on" in agree["method"]
    db = sqlite3.connect(tmp_path / "m" / "store.sqlite")
    assert db.execute("SELECT COUNT(*) FROM predictions WHERE teacher IS NOT NULL").fetchone() \
        == (100,)
    # the student was run by the monitor (no logged columns): its outputs equal the logged ones
    batch = pd.read_csv(monitor_batches / "batches" / "batch-001.csv")
    logged = np.where(batch["student_Yes"] >= batch["student_No"], 1, 0)
    stored = [r[0] for r in db.execute("SELECT student FROM predictions p JOIN windows w ON "
                                       "w.id = p.window_id WHERE w.key = 'batch-001.csv' "
                                       "ORDER BY p.rowid")]
    assert np.array_equal(stored, logged)


# -- the monitor file --------------------------------------------------------------------------
def _write(folder: Path, text: str) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "b").mkdir(exist_ok=True)
    suite = ROOT / "suites" / "arrests.audit.yaml"
    path = folder / "x.monitor.yaml"
    path.write_text(text.replace("SUITE", str(suite)))
    return path


GOOD = """version: 1
name: m
suite: SUITE
batches: {folder: b}
alerts:
  a: {metric: agreement, gate: {min: 0.9}}
"""


@pytest.mark.parametrize(("edit", "message"), [
    (("batches: {folder: b}", "batches: {}"), "x.monitor.yaml:4 batches={}: name exactly one of "
     "folder (one file per batch) or table (every row in one file)"),
    (("batches: {folder: b}", "batches: {folder: nowhere}"), "x.monitor.yaml:4 "
     "batches.folder='nowhere': folder not found"),
    (("batches: {folder: b}", "batches: {folder: b, window: rows}"), "x.monitor.yaml:4 "
     "batches.window='rows': needs rows: the rows per window"),
    (("batches: {folder: b}", "batches: {folder: b, window: day}"), "x.monitor.yaml:4 "
     "batches.window='day': needs timestamp: the column of each row's time"),
    (("batches: {folder: b}", "batches: {folder: b, rows: 100}"), "x.monitor.yaml:4 "
     "batches.rows=100: applies to window: rows only (window is batch); remove it or set "
     "window: rows"),
    (("metric: agreement", "metric: agrement"), "x.monitor.yaml:6 alerts.a.metric='agrement': "
     "unknown window metric; did you mean 'agreement'? (valid: agreement, estimated_accuracy, "
     "estimated_accuracy_drop, realized_accuracy, demographic_parity_difference, "
     "prediction_drift, drifted_columns, max_psi)"),
    (("gate: {min: 0.9}", "gate: {max_regression: 0.1}"), "x.monitor.yaml:6 "
     "alerts.a.gate.max_regression=0.1: agreement compares the student with the teacher, so it "
     "has no regression; use min or max"),
    (("gate: {min: 0.9}", "gate: {min: 90}"), "x.monitor.yaml:6 alerts.a.gate.min=90: agreement lies in "
     "[0, 1]; this bound can never be met; bounds are fractions, write 0.9 for 90%"),
    (("gate: {min: 0.9}}", "gate: {min: 0.9}, for: 0}"), "x.monitor.yaml:6 alerts.a.for=0: "
     "must be at least 1"),
    (("name: m", "name: m\nwindow: day"), "x.monitor.yaml:3 window: unknown key (valid: "
     "version, name, description, suite, reference, batches, outputs, labels, store, settings, "
     "alerts)"),
    (("batches: {folder: b}", "batches: {folder: b}\noutputs: {teacher: [t0, t1], shadow: 0.1}"),
     "x.monitor.yaml:5 outputs.shadow=0.1: the teacher's outputs are logged (outputs.teacher); "
     "remove shadow, or the teacher columns"),
], ids=["no-source", "missing-folder", "rows-without-rows", "day-without-timestamp",
        "rows-without-window", "unknown-metric", "pairwise-regression", "percent-bound",
        "for-zero", "unknown-key", "shadow-and-logged"])
def test_monitor_file_errors(tmp_path: Path, edit: tuple[str, str], message: str) -> None:
    path = _write(tmp_path, GOOD.replace(*edit))
    with pytest.raises(SuiteError) as info:
        load_monitor(path)
    assert message in str(info.value), str(info.value)


def test_the_example_monitor_file_validates_against_its_schema() -> None:
    import jsonschema

    schema = monitor_json_schema()
    jsonschema.Draft202012Validator.check_schema(schema)
    raw = yaml.safe_load((ROOT / "suites" / "arrests.monitor.yaml").read_text())
    jsonschema.Draft202012Validator(schema).validate(raw)
    spec = load_monitor(ROOT / "suites" / "arrests.monitor.yaml")
    assert spec.store == ROOT / "reports" / "arrests-monitor" / "monitor.sqlite"
    assert [a.persist for a in spec.alerts] == [3, 2, 2, 2, 1]


def test_a_store_of_another_monitor_or_a_newer_schema_is_refused(tmp_path: Path) -> None:
    from audit.errors import DataError
    from audit.monitor.store import Store

    Store(tmp_path / "s.sqlite", "one").close()
    with pytest.raises(DataError, match="belongs to monitor 'one', not 'two'"):
        Store(tmp_path / "s.sqlite", "two")
    db = sqlite3.connect(tmp_path / "s.sqlite")
    db.execute("UPDATE meta SET value = '9' WHERE key = 'schema_version'")
    db.commit()
    db.close()
    with pytest.raises(DataError, match="schema version 9, newer than this distill-audit reads"):
        Store(tmp_path / "s.sqlite", "one")


# -- the CLI -----------------------------------------------------------------------------------
def test_cli_monitor_ends_with_the_trend_page_and_exits_1_while_an_alert_fires(
        judged: dict[str, Any], capsys: pytest.CaptureFixture[str]) -> None:
    from audit.cli import main

    code = main(["monitor", str(judged["path"])])
    out = capsys.readouterr().out.splitlines()
    assert code == 1
    assert out[0].startswith("mon: ALERT (0 window(s) judged now, 20 already in the store")
    assert out[-1] == f"distill-audit: trend {judged['folder'] / 'trend.html'}"
    assert any(line.strip().startswith("FIRING       agreement (agreement, for 3)")
               for line in out)


def test_cli_history_traces_release_audits_and_flags_flips(tmp_path: Path,
                                                           capsys: pytest.CaptureFixture[str],
                                                           arrests_report: Any) -> None:
    from audit.cli import main
    from audit.report.jsonio import report_to_json

    folder = tmp_path / "arrests-distilled"
    folder.mkdir()
    data = json.loads(report_to_json(arrests_report))
    data["provenance"]["created"] = "2026-11-01T00:00:00Z"
    (folder / "20261101T000000Z.json").write_text(json.dumps(data))
    flipped = json.loads(json.dumps(data))
    check = next(c for c in flipped["checks"] if c["name"] == "accuracy")
    m = check["measurements"][0]
    m["student"]["value"], m["student"]["ci"] = 0.5, [0.45, 0.55]  # below min 0.78
    check["status"] = "fail"
    for g in check["gates"]:  # as that release judged it (history re-judges nothing)
        if g["kind"] == "min":
            g["status"], g["observed"] = "fail", m["student"]
    flipped["provenance"]["created"] = "2026-12-01T00:00:00Z"
    (folder / "20261201T000000Z.json").write_text(json.dumps(flipped))
    assert main(["history", str(folder)]) == 0
    out = capsys.readouterr().out.splitlines()
    assert "  20261201T000000Z: accuracy: accuracy min: pass -> fail" in out
    assert out[0] == "arrests-distilled: 2 release audit(s), 41 gate bound(s), 1 flip(s)"
    assert out[-1] == f"distill-audit: trend {folder / 'history' / 'history.html'}"


# -- from the review: bad stores, resent batches, bad labels, rows windows, time zones ----------
def test_a_store_that_is_not_a_store_is_a_located_error(monitor_batches: Path,
                                                        tmp_path: Path) -> None:
    from audit.errors import DataError

    path = _monitor(tmp_path / "m", _batches(monitor_batches, tmp_path, first=1))
    (tmp_path / "m" / "store.sqlite").write_text("not a database\n" * 100)
    with pytest.raises(DataError, match="cannot use it as the monitor's store"):
        run_monitor(load_monitor(path))
    other = sqlite3.connect(tmp_path / "m" / "store.sqlite.other")
    other.execute("CREATE TABLE users (name TEXT)")
    other.commit()
    other.close()
    (tmp_path / "m" / "store.sqlite").unlink()
    (tmp_path / "m" / "store.sqlite.other").rename(tmp_path / "m" / "store.sqlite")
    with pytest.raises(DataError, match=r"an SQLite database of something else \(tables users\)"):
        run_monitor(load_monitor(path))


def test_a_batch_sent_again_under_another_name_is_a_located_error(monitor_batches: Path,
                                                                   tmp_path: Path) -> None:
    from audit.errors import DataError

    batches = _batches(monitor_batches, tmp_path, first=2)
    path = _monitor(tmp_path / "m", batches)
    run_monitor(load_monitor(path))
    (batches / "batch-002.csv").rename(batches / "batch-002-resent.csv")  # renamed, resent
    with pytest.raises(DataError, match=r"window batch-002-resent.csv: row id 'r000501' was judged "
                                        r"in window batch-002.csv already"):
        run_monitor(load_monitor(path))
    shutil.copy(batches / "batch-002-resent.csv", batches / "batch-002.csv")  # both at once
    with pytest.raises(DataError, match=r"line 2: row id 'r000501' repeats batch-002-resent.csv "
                                        r"line 2; row ids must be unique across batches"):
        run_monitor(load_monitor(path))


def test_labels_of_unknown_classes_are_refused_before_they_are_stored(
        monitor_batches: Path, tmp_path: Path) -> None:
    from audit.errors import DataError

    bad = tmp_path / "bad.csv"
    frame = pd.read_csv(monitor_batches / "labels.csv").head(5)
    frame.loc[3, "released"] = "Maybe"
    frame.to_csv(bad, index=False)
    path = _monitor(tmp_path / "m", _batches(monitor_batches, tmp_path, first=1), labels=[bad])
    with pytest.raises(DataError, match=r"bad.csv column 'released': labels \['Maybe'\]"):
        run_monitor(load_monitor(path))
    db = sqlite3.connect(tmp_path / "m" / "store.sqlite")
    assert db.execute("SELECT COUNT(*) FROM labels").fetchone() == (0,)
    frame.loc[3, "released"] = "Yes"
    frame.to_csv(bad, index=False)
    assert run_monitor(load_monitor(path)).labels_added == 5  # the fixed delivery goes in


def test_rows_windows_never_skip_a_row_that_arrives_late(monitor_batches: Path,
                                                         tmp_path: Path) -> None:
    batches = _batches(monitor_batches, tmp_path, first=3)
    late = batches / "batch-002.csv"
    held = tmp_path / "held.csv"
    late.rename(held)
    path = _monitor(tmp_path / "m", batches)
    raw = yaml.safe_load(path.read_text())
    raw["batches"].update(window="rows", rows=300)
    path.write_text(yaml.safe_dump(raw))
    first = run_monitor(load_monitor(path))
    assert len(first.judged) == 3  # 1000 rows: three windows of 300, 100 rows wait
    held.rename(late)  # a batch that sorts earlier arrives late
    second = run_monitor(load_monitor(path))
    assert len(second.judged) == 2  # the 100 that waited and the late 500: 600 rows
    db = sqlite3.connect(tmp_path / "m" / "store.sqlite")
    stored = [r[0] for r in db.execute("SELECT row_id FROM predictions")]
    every = set(pd.concat([pd.read_csv(p) for p in batches.glob("*.csv")])["row_id"])
    assert len(stored) == len(set(stored)) == 1500 and set(stored) == every


def test_time_windows_read_iso_8601_with_zones(monitor_batches: Path, tmp_path: Path) -> None:
    batches = _batches(monitor_batches, tmp_path, first=3)
    frame = pd.read_csv(batches / "batch-002.csv")
    frame.loc[0, "ts"] = "2026-01-02T05:00:00+05:00"  # midnight UTC, written in another zone
    frame.to_csv(batches / "batch-002.csv", index=False)
    path = _monitor(tmp_path / "m", batches)
    raw = yaml.safe_load(path.read_text())
    raw["batches"].update(window="day", timestamp="ts")
    path.write_text(yaml.safe_dump(raw))
    outcome = run_monitor(load_monitor(path))
    assert [w["key"] for w in outcome.document["windows"]] == [
        "day 2026-01-01T00:00:00", "day 2026-01-02T00:00:00"]
    assert any("the day from 2026-01-03T00:00:00 is open" in n for n in outcome.notes)


def test_logged_outputs_are_checked_against_the_suite_models(monitor_batches: Path,
                                                             tmp_path: Path) -> None:
    """Swapped class columns: CBPE alone cannot see it; the cross-check does."""
    batches = _batches(monitor_batches, tmp_path, first=2)
    path = _monitor(tmp_path / "ok", batches)
    assert not any("logged outputs" in n for n in run_monitor(load_monitor(path)).notes)
    swapped = _monitor(tmp_path / "bad", batches, outputs={
        "student": ["student_Yes", "student_No"], "teacher": ["teacher_No", "teacher_Yes"]})
    notes = run_monitor(load_monitor(swapped)).notes
    found = [n for n in notes if "logged outputs" in n]
    assert len(found) == 1 and found[0].startswith(
        "window batch-001.csv: the student's logged outputs (outputs.student) differ from the "
        "suite's student on 20 of the 20 rows checked")
    assert "are the columns in the classes' order (No, Yes)" in found[0]


def test_group_parity_per_window_equals_a_count(judged: dict[str, Any],
                                                monitor_batches: Path) -> None:
    w = judged["doc"]["windows"][10]  # day 11: the drift widens the student's colour gap
    m = w["measurements"]["demographic_parity_difference"]
    batch = pd.read_csv(monitor_batches / "batches" / w["key"])
    for who in ("teacher", "student"):
        yes = batch[f"{who}_Yes"] >= batch[f"{who}_No"]
        rates = yes.groupby(batch["colour"]).mean()
        assert m[who]["value"] == pytest.approx(rates.max() - rates.min())
    assert m["params"] == {"by": "colour"} and m["regression"]["ci"][0] > 0.05
    parity = next(a for a in judged["doc"]["alerts"] if a["name"] == "parity")
    assert not any(parity["firing"][:8]) and parity["fired_at"] and parity["fired_at"][0] >= 9
