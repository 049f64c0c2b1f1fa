"""``settings.engine: stream``: the eval table read batch by batch gives the in-memory numbers
(exactly for count metrics, to summation order for means and ROC AUC), whatever the batch size;
the checks with no additive form run on a seeded sample and say so; a bad value deep in a
table is named by its row and file; the additive tables merge as one pass."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from audit.errors import DataError
from audit.runner import AuditSession, SuiteRun
from audit.stream.engine import streamable
from audit.stream.partials import Moments, Partials, auc_from_counts
from audit.suite import suite_from_dict

PRED = {"classes": ["No", "Yes"]}
EXACT = {  # every streamed family of metric: counts, means, pairwise means, binary ROC AUC
    "accuracy": {"metric": "accuracy", "gate": {"max_regression": 0.05}},
    "balanced_accuracy": {"metric": "balanced_accuracy"},
    "f1": {"metric": "f1"},
    "precision": {"metric": "precision"},
    "agreement": {"metric": "agreement", "gate": {"min": 0.8}},
    "negative_flips": {"metric": "negative_flip_rate"},
    "log_loss": {"metric": "log_loss", "gate": {"max_relative_regression": 0.1}},
    "brier": {"metric": "brier"},
    "js": {"metric": "js_divergence"},
    "kl": {"metric": "kl_divergence"},
    "roc_auc": {"metric": "roc_auc", "gate": {"max_regression": 0.05}},
}
SAMPLED = {"ece": {"metric": "ece"},
           "parity": {"metric": "demographic_parity_difference", "by": ["group"]}}

MODEL = """\
import numpy as np


def teacher(X):
    p = 1 / (1 + np.exp(-1.3 * X["x"].to_numpy() - 0.2 * X["z"].to_numpy()))
    return np.column_stack([1 - p, p])


def student(X):
    p = 1 / (1 + np.exp(-0.9 * X["x"].to_numpy() + 0.1))
    return np.column_stack([1 - p, p])
"""


@pytest.fixture(autouse=True)
def _here(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)  # file names in messages are relative to it


def write_data(folder: Path, n: int = 6000, *, seed: int = 0, fmt: str = "csv") -> Path:
    rng = np.random.default_rng(seed)
    x = rng.normal(size=n)
    frame = pd.DataFrame({
        "x": np.round(x, 2),  # coarse: ties in the scores, as real tables have
        "z": rng.integers(0, 3, n).astype(float),
        "group": rng.choice(["a", "b", "c"], n),
        "label": np.where(rng.random(n) < 1 / (1 + np.exp(-1.5 * x)), "Yes", "No")})
    (folder / "models.py").write_text(MODEL)
    path = folder / f"eval.{fmt}"
    if fmt == "csv":
        frame.to_csv(path, index=False)
    else:
        frame.to_parquet(path, row_group_size=1000)
    return path


def StreamRun(suite: Any) -> SuiteRun:  # noqa: N802 - reads as the run it makes
    """A run of ``suite`` that streams (its settings say so, or the session does)."""
    session = AuditSession()
    session.engine = "stream"
    run = SuiteRun(suite, session)
    assert run.stream is not None
    return run


def make_suite(folder: Path, checks: dict[str, Any], *, eval_name: str = "eval.csv",
               **settings_: Any) -> Any:
    return suite_from_dict({
        "version": 1, "name": "stream",
        "data": {"eval": eval_name, "target": "label", "sensitive": ["group"],
                 "positive": "Yes", "features": ["x", "z"]},
        "teacher": {"callable": "models:teacher", **PRED},
        "student": {"callable": "models:student", **PRED},
        "settings": {"seed": 4, "bootstrap": 300, **settings_},
        "checks": checks}, base_dir=folder)


def numbers(results: list[Any]) -> dict[str, Any]:
    out = {}
    for c in results:
        out[c.name] = {"status": c.status.value,
                       "measurements": [{k: m.to_dict()[k] for k in
                                         ("teacher", "student", "regression", "n", "evidence")}
                                        for m in c.measurements]}
    return out


def close(a: Any, b: Any, rel: float = 1e-9) -> bool:
    if isinstance(a, dict):
        return a.keys() == b.keys() and all(close(a[k], b[k], rel) for k in a)
    if isinstance(a, list):
        return len(a) == len(b) and all(close(x, y, rel) for x, y in zip(a, b, strict=True))
    if isinstance(a, float) and isinstance(b, float):
        return a == pytest.approx(b, rel=rel, abs=1e-12)
    return bool(a == b)


@pytest.mark.parametrize("fmt", ["csv", "parquet"])
def test_streamed_numbers_equal_the_in_memory_run(tmp_path: Path, fmt: str) -> None:
    write_data(tmp_path, fmt=fmt)
    name = f"eval.{fmt}"
    memory = numbers(SuiteRun(make_suite(tmp_path, EXACT, eval_name=name)).run_all())
    for batch in (1000, 2500):  # batches that split the table unevenly too
        run = StreamRun(make_suite(tmp_path, EXACT, eval_name=name, engine="stream",
                                   batch_rows=batch))
        streamed = numbers(run.run_all())
        for check, got in streamed.items():
            want = memory[check]
            if EXACT[check]["metric"] in ("log_loss", "brier", "js_divergence", "kl_divergence",
                                          "roc_auc"):
                assert close(got, want), check  # summation order: equal to 1e-9
            else:
                assert got == want, check  # the same count table, the same draws: exact
        assert run.prediction_sources == {"teacher/eval": "streamed", "student/eval": "streamed"}


def test_checks_without_an_additive_form_run_on_the_sample_and_say_so(tmp_path: Path) -> None:
    write_data(tmp_path)
    run = StreamRun(make_suite(tmp_path, SAMPLED, engine="stream", batch_rows=1000,
                               sample_rows=2000))
    results = {c.name: c for c in run.run_all()}
    sample = run.stream.stream["sample"]
    assert len(sample) == 2000
    for c in results.values():
        assert c.status != "error", c.error
        for m in c.measurements:
            assert m.notes[-1] == ("measured on a seeded uniform sample of 2,000 of the 6,000 eval "
                                   "rows (settings.engine: stream; this metric has no additive "
                                   "form)")
            assert m.n == 2000
    # the sample is the in-memory run of the same rows: ece on them equals a run on a file of them
    rows = pd.read_csv(tmp_path / "eval.csv")
    keys = np.random.default_rng(4).random(len(rows))
    chosen = rows.iloc[np.sort(np.argsort(keys, kind="stable")[:2000])]
    assert sorted(sample["x"].tolist()) == sorted(chosen["x"].tolist())
    # the same keys whatever the batch size
    other = StreamRun(make_suite(tmp_path, SAMPLED, engine="stream", batch_rows=1500,
                                 sample_rows=2000))
    assert other.stream.stream["sample"].equals(sample)


def test_a_sample_as_large_as_the_table_adds_no_note(tmp_path: Path) -> None:
    write_data(tmp_path, n=3000)
    run = StreamRun(make_suite(tmp_path, {"ece": {"metric": "ece"}}, engine="stream",
                               batch_rows=1000, sample_rows=5000))
    (c,) = run.run_all()
    memory = SuiteRun(make_suite(tmp_path, {"ece": {"metric": "ece"}})).run_all()[0]
    assert [m.notes for m in c.measurements] == [m.notes for m in memory.measurements]
    assert [m.student for m in c.measurements] == [m.student for m in memory.measurements]


def test_a_bad_label_deep_in_a_table_is_named_by_its_row(tmp_path: Path) -> None:
    write_data(tmp_path, n=6000)
    frame = pd.read_csv(tmp_path / "eval.csv")
    frame.loc[4321, "label"] = "Maybe"
    frame.to_csv(tmp_path / "eval.csv", index=False)
    run = StreamRun(make_suite(tmp_path, {"a": {"metric": "accuracy"}}, engine="stream",
                               batch_rows=1000))
    (c,) = run.run_all()
    assert c.status == "error"
    assert c.error == ("eval.csv column 'label': labels ['Maybe'] (1 row, first at data row 4,322) "
                       "are not among the models' classes ['No', 'Yes']; drop those rows or "
                       "audit models that know those classes")


def test_a_folder_of_parquet_files_is_one_dataset_and_errors_name_the_file(tmp_path: Path) -> None:
    write_data(tmp_path, n=4000, fmt="parquet")
    whole = pd.read_parquet(tmp_path / "eval.parquet")
    folder = tmp_path / "parts"
    folder.mkdir()
    for i in range(4):
        whole.iloc[i * 1000:(i + 1) * 1000].to_parquet(folder / f"part-{i}.parquet")
    one = numbers(StreamRun(make_suite(tmp_path, EXACT, eval_name="eval.parquet",
                                       engine="stream", batch_rows=1000)).run_all())
    parts = numbers(StreamRun(make_suite(tmp_path, EXACT, eval_name="parts", engine="stream",
                                         batch_rows=1000)).run_all())
    assert parts == one
    # the in-memory engine reads the folder as one table too
    memory = numbers(SuiteRun(make_suite(tmp_path, EXACT, eval_name="parts")).run_all())
    assert close(memory, one)
    bad = whole.iloc[2000:3000].copy()
    bad.iloc[17, bad.columns.get_loc("label")] = None
    bad.to_parquet(folder / "part-2.parquet")
    (c,) = StreamRun(make_suite(tmp_path, {"a": {"metric": "accuracy"}}, eval_name="parts",
                                engine="stream", batch_rows=1000)).run_all()
    assert c.status == "error"
    assert c.error == ("parts/part-2.parquet: target column 'label' has a missing value at data "
                       "row 2,018; drop or label those rows")


def test_what_streaming_refuses(tmp_path: Path) -> None:
    write_data(tmp_path)
    suite = make_suite(tmp_path, {"a": {"metric": "accuracy"}}, engine="stream")
    binned = dataclasses.replace(suite, data=dataclasses.replace(
        suite.data, sensitive=("x",), bins=(__import__("audit.spec").spec.Binning("x", quantiles=3),)))
    (c,) = StreamRun(binned).run_all()
    assert c.error == ("settings.engine: stream cannot cut 'x' at quantiles (they need the whole "
                       "column before the first batch); give fixed edges, e.g. bins: [25, 40, 60]")


def test_the_session_engine_overrides_the_suite(tmp_path: Path) -> None:
    write_data(tmp_path)
    session = AuditSession()
    session.engine = "stream"
    assert session.run_for(make_suite(tmp_path, EXACT)).stream is not None
    assert AuditSession().run_for(make_suite(tmp_path, EXACT)).stream is None
    assert SuiteRun(make_suite(tmp_path, EXACT, engine="stream")).stream is not None
    memory = AuditSession()
    memory.engine = "memory"
    assert memory.run_for(make_suite(tmp_path, EXACT, engine="stream")).stream is None


def test_which_metrics_stream() -> None:
    from audit.checks.registry import get_metric

    assert all(streamable(get_metric(c["metric"])) for c in EXACT.values())
    assert not any(streamable(get_metric(c["metric"])) for c in SAMPLED.values())


@settings(max_examples=40, deadline=None)
@given(n=st.integers(2, 300), cut=st.integers(0, 300), seed=st.integers(0, 10_000))
def test_partials_of_two_parts_merge_into_the_whole(n: int, cut: int, seed: int) -> None:
    from audit.checks.performance import log_loss_rows

    rng = np.random.default_rng(seed)
    y = rng.integers(0, 2, n)
    pt = rng.dirichlet([1, 1], n).round(2)  # coarse scores: ties
    ps = rng.dirichlet([1, 1], n).round(2)
    cut = min(cut, n)
    means = (("log_loss", log_loss_rows, False),)

    def part(rows: slice) -> Partials:
        p = Partials(2, 1, means, auc=True)
        p.add(y[rows], pt[rows], ps[rows])
        return p

    whole, merged = part(slice(None)), part(slice(0, cut))
    merged.merge(part(slice(cut, None)))
    assert (merged.joint == whole.joint).all() and merged.rows == whole.rows == n
    for who in ("teacher", "student", "diff"):
        a, b = merged.moments["log_loss"][who], whole.moments["log_loss"][who]
        assert a.n == b.n and a.mean == pytest.approx(b.mean, rel=1e-12, abs=1e-12)
        assert a.m2 == pytest.approx(b.m2, rel=1e-9, abs=1e-12)
    got = np.array(auc_from_counts(merged.auc_keys, merged.auc_counts))
    want = np.array(auc_from_counts(whole.auc_keys, whole.auc_counts))
    np.testing.assert_allclose(got, want, rtol=1e-9, atol=1e-12)


def test_auc_from_counts_is_delong_on_the_rows() -> None:
    from audit.checks.performance import _auc_binary

    rng = np.random.default_rng(1)
    y = rng.integers(0, 2, 500)
    st_, ss = rng.random(500).round(1), rng.random(500).round(2)
    keys, counts = np.unique(np.column_stack([y, st_, ss]), axis=0, return_counts=True)
    t, s, r = auc_from_counts(keys, counts)
    at, it = _auc_binary(st_, y == 1)
    as_, is_ = _auc_binary(ss, y == 1)
    from sklearn.metrics import roc_auc_score

    assert t[0] == pytest.approx(roc_auc_score(y, st_)) == pytest.approx(at)
    assert t[1] == pytest.approx(np.sqrt(np.sum(it ** 2)))
    assert r[1] == pytest.approx(np.sqrt(np.sum((it - is_) ** 2)))
    assert s[0] == pytest.approx(as_)


def test_moments_merge_like_numpy() -> None:
    rng = np.random.default_rng(0)
    v = rng.normal(size=1000)
    m = Moments()
    for part in np.array_split(v, 7):
        m.add(part)
    assert m.mean == pytest.approx(v.mean()) and m.n == 1000
    assert m.se == pytest.approx(v.std(ddof=1) / np.sqrt(1000))


def test_a_missing_file_is_a_data_error(tmp_path: Path) -> None:
    from audit.stream.batches import dataset_files

    with pytest.raises(DataError, match="file not found"):
        dataset_files(tmp_path / "nope.parquet")


@pytest.mark.parametrize("suite_name", ["arrests.audit.yaml", "digits.audit.yaml"])
def test_the_example_suites_give_the_same_numbers_streamed(built: Any, suite_name: str) -> None:
    """Every measurement of a tabular example suite, streamed (in batches of 500 rows, the
    whole table in the sample) and in memory: equal (timings aside: they measure the machine)."""
    from audit import load_suite
    from audit.checks.registry import get_metric
    from audit.reuse import measures_the_machine

    root = Path(__file__).resolve().parents[1]
    suite = load_suite(root / "suites" / suite_name)
    checks = tuple(c for c in suite.checks
                   if not measures_the_machine(get_metric(c.metric), c.params))
    suite = dataclasses.replace(suite, checks=checks, settings=dataclasses.replace(
        suite.settings, batch_rows=1000))
    memory = SuiteRun(suite, AuditSession()).run_all()
    streamed = StreamRun(suite).run_all()

    for a, b in zip(memory, streamed, strict=True):
        assert b.status != "error", b.error
        assert close(untimed(b), untimed(a)), a.name


def untimed(c: Any) -> dict[str, Any]:
    """A check result as a dict without what measures the machine or names the engine."""
    d = c.to_dict()
    d["details"] = {k: v for k, v in d["details"].items() if k not in ("seconds", "engine")}
    for key in ("measurements", "baseline", "versus_baseline"):
        for m in d.get(key, []):
            m["breakdown"] = [{k: v for k, v in r.items() if k != "seconds"}
                              for r in m["breakdown"]]
    return d


def test_a_long_pass_reports_progress(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import audit.stream.engine as engine

    write_data(tmp_path, fmt="parquet")
    monkeypatch.setattr(engine, "PROGRESS_EVERY", 0.0)
    session = AuditSession()
    session.engine = "stream"
    lines: list[str] = []
    session.progress = lines.append
    run = session.run_for(make_suite(tmp_path, {"a": {"metric": "accuracy"}},
                                     eval_name="eval.parquet", batch_rows=1000))
    run.run_all()
    assert lines and lines[0].startswith("streaming eval.parquet: 1,000 rows (")
    assert "rows/s, about" in lines[0] and lines[0].endswith(" s left)")  # Parquet: rows known


def test_the_cli_streams_with_engine_stream(tmp_path: Path) -> None:
    import json

    import yaml

    from audit.cli import main

    write_data(tmp_path, fmt="parquet")
    suite = {"version": 1, "name": "cli-stream",
             "data": {"eval": "eval.parquet", "target": "label", "positive": "Yes",
                      "features": ["x", "z"]},
             "teacher": {"callable": "models:teacher", **PRED},
             "student": {"callable": "models:student", **PRED},
             "settings": {"bootstrap": 200, "batch_rows": 1000},
             "checks": {"accuracy": {"metric": "accuracy", "gate": {"max_regression": 0.1}},
                        "ece": {"metric": "ece"}}}
    (tmp_path / "s.audit.yaml").write_text(yaml.safe_dump(suite))
    code = main(["run", str(tmp_path / "s.audit.yaml"), "--engine", "stream",
                 "--report-dir", str(tmp_path / "reports"), "--no-cache"])
    assert code == 0
    (report,) = (tmp_path / "reports" / "cli-stream").glob("2*.json")
    data = json.loads(report.read_text())
    assert data["provenance"]["predictions"] == {"teacher/eval": "streamed",
                                                 "student/eval": "streamed"}
    assert data["provenance"]["data"]["eval"]["rows"] == 6000
    acc = next(c for c in data["checks"] if c["name"] == "accuracy")
    assert acc["details"]["engine"] == "stream" and acc["measurements"][0]["n"] == 6000


def test_a_missing_group_deep_in_a_table_is_named_by_its_row(tmp_path: Path) -> None:
    write_data(tmp_path)
    frame = pd.read_csv(tmp_path / "eval.csv")
    frame.loc[[3499, 5000], "group"] = None
    frame.to_csv(tmp_path / "eval.csv", index=False)
    checks = {"p": {"metric": "demographic_parity_difference", "by": ["group"]}}
    (c,) = StreamRun(make_suite(tmp_path, checks, batch_rows=1000)).run_all()
    assert c.error == ("eval.csv: sensitive column 'group' has 1 row with a missing value, first "
                       "at data row 3,500; fill them, or set data.missing_sensitive: group to "
                       "slice them as their own group 'missing'")


def test_a_fact_of_the_whole_table_is_not_judged_on_a_sample(tmp_path: Path) -> None:
    write_data(tmp_path)
    checks = {"missing": {"metric": "missing_rate", "gate": {"max": 0}}}
    (c,) = StreamRun(make_suite(tmp_path, checks, batch_rows=1000, sample_rows=1000)).run_all()
    assert c.status == "error"
    assert c.error == ("missing_rate is an exact fact of the whole table (judged with no "
                       "interval), which settings.engine: stream would only see on its sample; "
                       "run this check with settings.engine: memory")
    # a table no larger than the sample is its own sample: the fact is exact there
    (c,) = StreamRun(make_suite(tmp_path, checks, batch_rows=1000, sample_rows=6000)).run_all()
    assert c.status == "pass"


def test_the_baseline_is_counted_in_the_same_pass(tmp_path: Path) -> None:
    """Streamed, the baseline's count, mean and AUC measurements come from the whole table
    (as in memory), not from the sample."""
    write_data(tmp_path)
    (tmp_path / "models.py").write_text(MODEL + '''

def baseline(X):
    p = 1 / (1 + np.exp(-0.7 * X["x"].to_numpy()))
    return np.column_stack([1 - p, p])
''')
    raw = make_suite(tmp_path, EXACT, batch_rows=1000, sample_rows=1000)
    from audit.spec import ModelSpec

    suite = dataclasses.replace(raw, baseline=ModelSpec(kind="callable",
                                                        target="models:baseline",
                                                        classes=("No", "Yes"),
                                                        base_dir=tmp_path))
    memory = SuiteRun(suite, AuditSession()).run_all()
    run = StreamRun(suite)
    streamed = run.run_all()
    for a, b in zip(memory, streamed, strict=True):
        for key in ("baseline", "versus_baseline"):
            got = [m.to_dict() for m in getattr(b, key)]
            want = [m.to_dict() for m in getattr(a, key)]
            assert close(got, want), (a.name, key)
            assert all(m["n"] == 6000 for m in got)
    assert run.prediction_sources["baseline/eval"] == "streamed"


def test_a_streamed_suite_with_quantile_bins_is_refused_when_read(tmp_path: Path) -> None:
    from audit.errors import SuiteError
    from audit.suite import load_suite

    write_data(tmp_path)
    (tmp_path / "q.audit.yaml").write_text(
        "version: 1\nname: q\ndata:\n  eval: eval.csv\n  target: label\n"
        "  sensitive: [{column: x, quantiles: 4}]\n"
        "teacher: {callable: 'models:teacher', classes: [No, Yes]}\n"
        "student: {callable: 'models:student', classes: [No, Yes]}\n"
        "settings: {engine: stream}\nchecks:\n  a: {metric: accuracy}\n")
    with pytest.raises(SuiteError) as info:
        load_suite(tmp_path / "q.audit.yaml")
    assert str(info.value) == (
        "q.audit.yaml:9 settings.engine='stream': cannot cut data.sensitive 'x' at quantiles: a "
        "streamed run reads no column whole before its first batch; give fixed edges (bins: "
        "[25, 40, 60]) or use engine: memory")
