"""``settings.engine: ray``: the streaming pass on a local Ray (2 CPUs, no network) gives every
number the local streaming engine gives (the same additive tables, the same seeded sample),
names a bad row by its row and file, and refuses what it cannot read."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

from audit.runner import AuditSession, SuiteRun

ray = pytest.importorskip("ray")

from tests.test_stream import (  # noqa: E402 - after the skip: these need nothing of Ray
    EXACT,
    SAMPLED,
    StreamRun,
    close,
    make_suite,
    numbers,
    write_data,
)

pytestmark = pytest.mark.slow  # a local Ray takes a few seconds to start


@pytest.fixture(scope="module", autouse=True)
def local_ray() -> Any:
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    yield
    ray.shutdown()


@pytest.fixture(autouse=True)
def _here(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)


def ray_run(suite: Any) -> SuiteRun:
    session = AuditSession()
    session.engine = "ray"
    run = SuiteRun(suite, session)
    assert run.stream is not None and run.stream.kind == "ray"
    return run


def test_every_number_equals_the_local_streaming_engine(tmp_path: Path) -> None:
    write_data(tmp_path, fmt="parquet")  # row groups of 1,000: six items for two workers
    checks = {**EXACT, **SAMPLED}
    suite = make_suite(tmp_path, checks, eval_name="eval.parquet", batch_rows=1000,
                       sample_rows=2000)
    local = numbers(StreamRun(suite).run_all())
    run = ray_run(suite)
    # the same tables and sample: the same numbers (counts exactly; means to summation order,
    # as the workers' tables arrive in any order)
    got = numbers(run.run_all())
    assert close(got, local)
    assert {k: v for k, v in got.items() if k in ("accuracy", "agreement", "f1")} == \
        {k: v for k, v in local.items() if k in ("accuracy", "agreement", "f1")}
    sample = run.stream.stream["sample"]
    local_sample = StreamRun(suite).stream.stream["sample"]
    assert len(sample) == 2000 and sample["__row__"].tolist() == local_sample["__row__"].tolist()
    assert sample.drop(columns=["__row__"]).equals(local_sample.drop(columns=["__row__"]))


def test_a_folder_dataset_and_a_bad_row_named_by_its_row_and_file(tmp_path: Path) -> None:
    write_data(tmp_path, n=4000, fmt="parquet")
    whole = pd.read_parquet(tmp_path / "eval.parquet")
    folder = tmp_path / "parts"
    folder.mkdir()
    for i in range(4):
        whole.iloc[i * 1000:(i + 1) * 1000].to_parquet(folder / f"part-{i}.parquet",
                                                       row_group_size=500)
    suite = make_suite(tmp_path, EXACT, eval_name="parts", batch_rows=1000)
    assert close(numbers(ray_run(suite).run_all()), numbers(StreamRun(suite).run_all()))
    bad = whole.iloc[3000:4000].copy()
    bad.iloc[612, bad.columns.get_loc("label")] = "Maybe"
    bad.to_parquet(folder / "part-3.parquet", row_group_size=500)
    (c,) = ray_run(make_suite(tmp_path, {"a": {"metric": "accuracy"}}, eval_name="parts")
                   ).run_all()
    assert c.error == ("parts/part-3.parquet column 'label': labels ['Maybe'] (1 row, first at "
                       "data row 3,613) are not among the models' classes ['No', 'Yes']; drop "
                       "those rows or audit models that know those classes")


def test_a_csv_is_refused_with_the_fix(tmp_path: Path) -> None:
    write_data(tmp_path)
    (c,) = ray_run(make_suite(tmp_path, {"a": {"metric": "accuracy"}})).run_all()
    assert c.error == ("eval.csv: settings.engine: ray reads Parquet (row groups are its units "
                       "of work); convert the CSV, or use engine: stream")


def test_partials_travel_as_plain_arrays() -> None:
    from audit.checks.performance import log_loss_rows
    from audit.stream.distributed import from_bytes, sample_indices, to_bytes
    from audit.stream.partials import Partials

    rng = np.random.default_rng(0)
    p = Partials(2, 1, (("log_loss", log_loss_rows, False),), auc=True)
    p.add(rng.integers(0, 2, 50), rng.dirichlet([1, 1], 50).round(2),
          rng.dirichlet([1, 1], 50).round(2))
    back = from_bytes(to_bytes(p), p)
    assert (back.joint == p.joint).all() and back.rows == 50
    assert back.moments["log_loss"]["diff"] == p.moments["log_loss"]["diff"]
    assert (back.auc_keys == p.auc_keys).all() and (back.auc_counts == p.auc_counts).all()
    # the sample's rows: the smallest keys of one seeded stream, drawn in any chunking
    keys = np.random.default_rng(7).random(10_000)
    want = np.sort(np.argsort(keys, kind="stable")[:300])
    assert (sample_indices(10_000, 300, 7, chunk=999) == want).all()


def test_the_baseline_is_counted_on_the_workers_too(tmp_path: Path) -> None:
    import dataclasses

    from audit.spec import ModelSpec
    from tests.test_stream import MODEL

    write_data(tmp_path, fmt="parquet")
    (tmp_path / "models.py").write_text(MODEL + '''

def baseline(X):
    p = 1 / (1 + np.exp(-0.7 * X["x"].to_numpy()))
    return np.column_stack([1 - p, p])
''')
    raw = make_suite(tmp_path, EXACT, eval_name="eval.parquet", batch_rows=1000,
                     sample_rows=1000)
    suite = dataclasses.replace(raw, baseline=ModelSpec(kind="callable", target="models:baseline",
                                                        classes=("No", "Yes"), base_dir=tmp_path))
    local = StreamRun(suite).run_all()
    on_ray = ray_run(suite).run_all()
    for a, b in zip(local, on_ray, strict=True):
        assert b.status == a.status, (b.name, b.error)
        assert close([m.to_dict() for m in b.baseline], [m.to_dict() for m in a.baseline])
        assert close([m.to_dict() for m in b.versus_baseline],
                     [m.to_dict() for m in a.versus_baseline])


# every example suite but those of a language model's multiple-choice items, which are read
# whole (tests/test_lm_choices.py: streaming them is refused with the fix)
EXAMPLES = sorted(p.name for p in (Path(__file__).resolve().parents[1] / "suites").glob(
    "*.audit.yaml") if "-lm" not in p.name)
BUILDS = {"mnist": "mnist", "rotten": "rotten", "poisoned": "poisoned", "quantized": "quantized"}
# a dynamically quantized (int8) model scales each batch by that batch's own range, so a row's
# probabilities depend on the rows predicted with it: these suites are read in one batch
ONE_BATCH = {"arrests-quantized.audit.yaml"}


@pytest.mark.parametrize("suite_name", EXAMPLES)
def test_every_example_suite_gives_the_same_numbers_on_every_engine(
        request: pytest.FixtureRequest, tmp_path: Path, suite_name: str) -> None:
    """An example suite in memory, streamed (its CSV in batches of 1,000 rows) and on Ray (its
    eval table written as Parquet, row groups of 500 rows): every measurement equal, timings
    aside. Exactly (1e-9) but for the text suite: a transformers model pads each batch to its
    longest text, so its float32 outputs round differently where the batches are cut (1e-6);
    in one batch it too gives the in-memory numbers to 1e-9. Counts and verdicts: identical.
    A dynamically quantized model (``ONE_BATCH``) is read in one batch: its outputs depend on
    the rows batched with it."""
    import dataclasses

    from audit import load_suite
    from audit.checks.registry import get_metric
    from audit.reuse import measures_the_machine
    from tests.test_stream import close, untimed

    request.getfixturevalue("built")
    for key, fixture in BUILDS.items():
        if key in suite_name:
            request.getfixturevalue(fixture)
    root = Path(__file__).resolve().parents[1]
    suite = load_suite(root / "suites" / suite_name)
    checks = tuple(c for c in suite.checks
                   if not measures_the_machine(get_metric(c.metric), c.params))
    rows = len(pd.read_csv(suite.data.eval, usecols=[suite.data.target]))
    one = suite_name in ONE_BATCH
    suite = dataclasses.replace(suite, checks=checks, settings=dataclasses.replace(
        suite.settings, batch_rows=max(rows, 1000) if one else 1000))
    parquet = tmp_path / "eval.parquet"
    pd.read_csv(suite.data.eval, dtype={c: str for c in (suite.data.target,
                                                         *suite.data.sensitive)},
                keep_default_na=False, na_values=[""]).to_parquet(
                    parquet, row_group_size=rows if one else 500)
    memory = SuiteRun(suite, AuditSession()).run_all()
    streamed = StreamRun(suite).run_all()
    on_ray = ray_run(dataclasses.replace(suite, data=dataclasses.replace(suite.data, eval=parquet))
                     ).run_all()
    text = suite.data.text is not None
    for engine, results, rel in (("stream", streamed, 1e-6 if text and rows > 1000 else 1e-9),
                                 ("ray", on_ray, 1e-6 if text else 1e-9)):
        for a, b in zip(memory, results, strict=True):
            assert a.status != "error", a.error
            assert b.status == a.status, (engine, b.name, b.error)
            assert close(untimed(b), untimed(a), rel), (engine, a.name)


def test_text_and_image_suites_on_ray_equal_the_local_engine(tmp_path: Path) -> None:
    """Texts from a Parquet column, images from a .npy read by position on the workers and
    from the sample's rows on the driver: the local streaming engine's numbers, exactly."""
    from tests.test_stream_inputs import CHECKS, image_table, suite_of, text_table

    text_table(tmp_path)
    pd.read_csv(tmp_path / "eval.csv", keep_default_na=False).to_parquet(
        tmp_path / "text.parquet", row_group_size=400)
    suite = suite_of(tmp_path, {"text": "review", "eval": "text.parquet"}, CHECKS,
                     sample_rows=1000)
    assert close(numbers(ray_run(suite).run_all()), numbers(StreamRun(suite).run_all()))
    frame, x = image_table(tmp_path)
    np.save(tmp_path / "eval.npy", x)
    frame.to_parquet(tmp_path / "images.parquet", row_group_size=300)
    suite = suite_of(tmp_path, {"images": {"eval": "eval.npy"}, "eval": "images.parquet"},
                     CHECKS, sample_rows=1000)
    local = StreamRun(suite)
    assert close(numbers(ray_run(suite).run_all()), numbers(local.run_all()))
    # a short array: the worker whose row group runs past it names the first row with no image
    np.save(tmp_path / "eval.npy", x[:1500])
    (c,) = ray_run(suite_of(tmp_path, {"images": {"eval": "eval.npy"}, "eval": "images.parquet"},
                            {"a": {"metric": "accuracy"}})).run_all()
    assert c.error == ("eval.npy: 1,500 images but images.parquet has more rows (data row 1,501 "
                       "has no image); the array's first axis must be aligned with the table's "
                       "rows")
