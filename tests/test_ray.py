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


@pytest.mark.parametrize("suite_name", ["arrests.audit.yaml", "digits.audit.yaml"])
def test_the_example_suites_on_ray_give_the_in_memory_numbers(built: Any, tmp_path: Path,
                                                              suite_name: str) -> None:
    """A tabular example suite with its eval table written as Parquet (row groups of 500
    rows), on Ray and in memory: every measurement equal (timings aside)."""
    import dataclasses

    from audit import load_suite
    from audit.checks.registry import get_metric
    from audit.reuse import measures_the_machine
    from tests.test_stream import close, untimed

    root = Path(__file__).resolve().parents[1]
    suite = load_suite(root / "suites" / suite_name)
    checks = tuple(c for c in suite.checks
                   if not measures_the_machine(get_metric(c.metric), c.params))
    parquet = tmp_path / "eval.parquet"
    pd.read_csv(suite.data.eval, dtype={c: str for c in (suite.data.target,
                                                         *suite.data.sensitive)}
                ).to_parquet(parquet, row_group_size=500)
    suite = dataclasses.replace(suite, checks=checks)
    memory = SuiteRun(suite, AuditSession()).run_all()
    on_ray = ray_run(dataclasses.replace(suite, data=dataclasses.replace(suite.data, eval=parquet))
                     ).run_all()

    for a, b in zip(memory, on_ray, strict=True):
        assert b.status != "error", b.error
        assert close(untimed(b), untimed(a)), a.name
