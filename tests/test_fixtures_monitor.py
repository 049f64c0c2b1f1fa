"""The Arrests production simulation (:mod:`fixtures.monitor`): its batches, its late label
deliveries, the logged probabilities against the models, the drift targets (recomputed here
with plain pandas from the files) and a deterministic, cached build."""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

from fixtures import monitor as M

LABEL = "released"
FEATURES = ["colour", "year", "age", "sex", "employed", "citizen", "checks"]
PROBA = ["student_No", "student_Yes", "teacher_No", "teacher_Yes"]
COLUMNS = ["row_id", "ts", *FEATURES, *PROBA]
N_BATCHES, ROWS = 20, 500


def _batches(folder: Path) -> pd.DataFrame:
    """Every batch file, in order, with a ``batch`` column (1-based) added."""
    frames = []
    for batch in range(1, N_BATCHES + 1):
        frame = pd.read_csv(folder / "batches" / f"batch-{batch:03d}.csv")
        assert list(frame.columns) == COLUMNS, batch
        frames.append(frame.assign(batch=batch))
    return pd.concat(frames, ignore_index=True)


def _share(batch: int) -> float:
    """The drift share the fixture promises: none on days 1-8, then 20% rising to 100% on day 20."""
    return 0.0 if batch <= 8 else 0.2 + 0.8 * (batch - 9) / 11


def _figures(folder: Path) -> pd.DataFrame:
    """Per batch: top-1 agreement, each model's accuracy and mean largest probability."""
    rows = _batches(folder).merge(pd.read_csv(folder / "truth.csv")[["row_id", LABEL]],
                                  on="row_id", validate="one_to_one")
    for model in ("student", "teacher"):
        columns = [f"{model}_No", f"{model}_Yes"]
        rows[f"pred_{model}"] = rows[columns].idxmax(axis=1).str.removeprefix(f"{model}_")
        rows[f"right_{model}"] = rows[f"pred_{model}"] == rows[LABEL]
        rows[f"conf_{model}"] = rows[columns].max(axis=1)
    rows["agree"] = rows["pred_student"] == rows["pred_teacher"]
    return rows.groupby("batch")[["agree", "right_teacher", "right_student", "conf_student",
                                  "conf_teacher"]].mean()


def _copy_arrests_build(src: Path, dst: Path) -> Path:
    """A copy of the current ``fixtures/build`` tabular fixtures (so building into ``dst`` does
    not refit them) without any monitor build."""
    for name in ("arrests", "digits"):
        shutil.copytree(src / name, dst / name)
    shutil.copy2(src / "manifest.json", dst / "manifest.json")
    return dst


@pytest.fixture(scope="module")
def rebuilt(tmp_path_factory: pytest.TempPathFactory, arrests: Path) -> Path:
    """The simulation built again, from scratch, into another directory."""
    out = _copy_arrests_build(arrests.parent, tmp_path_factory.mktemp("rebuilt"))
    return M.build_monitor(out)["monitor/labels.csv"].parent


def test_batches_are_daily_unlabelled_and_uniquely_identified(monitor_batches: Path,
                                                             arrests: Path) -> None:
    rows = _batches(monitor_batches)
    assert rows.groupby("batch").size().tolist() == [ROWS] * N_BATCHES
    assert LABEL not in rows.columns
    assert rows["row_id"].is_unique
    assert rows["row_id"].tolist() == [f"r{i:06d}" for i in range(1, N_BATCHES * ROWS + 1)]
    # the feature columns read back exactly as the eval table's do
    eval_ = pd.read_csv(arrests / "eval.csv")
    assert rows[FEATURES].dtypes.to_dict() == eval_[FEATURES].dtypes.to_dict()
    for batch, group in rows.groupby("batch"):
        assert all(re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d", ts) for ts in group["ts"])
        ts = pd.to_datetime(group["ts"])
        day = pd.Timestamp("2026-01-01") + pd.Timedelta(days=int(batch) - 1)
        assert (ts.dt.normalize() == day).all(), batch
        assert ts.is_monotonic_increasing and ts.is_unique, batch
    np.testing.assert_allclose(rows[["student_No", "teacher_No"]].to_numpy()
                               + rows[["student_Yes", "teacher_Yes"]].to_numpy(), 1.0, atol=1e-12)


def test_rows_are_real_eval_rows_drawn_with_the_promised_drift(monitor_batches: Path,
                                                               arrests: Path) -> None:
    eval_ = pd.read_csv(arrests / "eval.csv")
    rows, truth = _batches(monitor_batches), pd.read_csv(monitor_batches / "truth.csv")
    assert list(truth.columns) == ["row_id", "batch", "eval_row", "drifted", LABEL]
    assert truth["row_id"].tolist() == rows["row_id"].tolist()
    assert truth["batch"].tolist() == rows["batch"].tolist()
    source = eval_.iloc[truth["eval_row"]].reset_index(drop=True)
    pd.testing.assert_frame_equal(rows[FEATURES], source[FEATURES])  # copies of real rows
    assert truth[LABEL].tolist() == source[LABEL].tolist()  # with their true labels
    region = ((source["colour"] == "Black") & (source["employed"] == "No")
              & (source["checks"] >= 3))
    assert region[truth["drifted"]].all()
    drifted = truth.groupby("batch")["drifted"].sum()
    assert drifted.tolist() == [round(_share(b) * ROWS) for b in range(1, N_BATCHES + 1)]
    # in-distribution draws cover the eval split (about 92% of it in 4,000 draws, with replacement)
    early = truth[truth["batch"] <= 8]
    assert early["eval_row"].nunique() > 0.85 * len(eval_)
    assert (truth["eval_row"].value_counts() > 1).any()  # with replacement


def test_labels_arrive_for_batches_1_to_8_then_9_to_12(monitor_batches: Path) -> None:
    truth = pd.read_csv(monitor_batches / "truth.csv")
    first = pd.read_csv(monitor_batches / "labels.csv")
    late = pd.read_csv(monitor_batches / "labels_late.csv")
    for labels, batches in ((first, range(1, 9)), (late, range(9, 13))):
        assert list(labels.columns) == ["row_id", LABEL]
        expected = truth[truth["batch"].isin(batches)]
        assert labels["row_id"].tolist() == expected["row_id"].tolist()
        assert labels[LABEL].tolist() == expected[LABEL].tolist()
        assert set(labels[LABEL]) == {"No", "Yes"}
    assert len(first) == 8 * ROWS and len(late) == 4 * ROWS
    assert not set(first["row_id"]) & set(late["row_id"])


def test_agreement_and_accuracy_targets(monitor_batches: Path, arrests: Path) -> None:
    f = _figures(monitor_batches)
    early, middle, late = f.loc[1:8], f.loc[9:11], f.loc[12:]
    eval_accuracy = json.loads((arrests.parent / "manifest.json").read_text())["metrics"]["arrests"]
    # in distribution: the eval split's agreement (0.97) and accuracies (0.83)
    assert (early["agree"] >= 0.93).all()
    for model in ("teacher", "student"):
        assert (early[f"right_{model}"] - eval_accuracy[model]["accuracy"]).abs().max() <= 0.05
    # drifted: agreement under 0.88, the student >= 5 points down, the teacher clearly less
    reference = early.mean()
    student_drop = reference["right_student"] - late["right_student"]
    teacher_drop = reference["right_teacher"] - late["right_teacher"]
    assert (late["agree"] < 0.88).all()
    assert (student_drop >= 0.05).all()
    assert (student_drop - teacher_drop >= 0.04).all()
    assert teacher_drop.mean() <= 0.6 * student_drop.mean()
    # gradual: days 9-11 lie between, and the agreement falls with the drift share
    for column in ("agree", "right_student"):
        assert early[column].mean() > middle[column].mean() > late[column].mean()
    assert middle["agree"].max() < early["agree"].min()
    shares = pd.Series([_share(b) for b in f.index], index=f.index)
    assert f["agree"].corr(shares, method="spearman") < -0.9
    # the student's own confidence falls with its accuracy here (a confidence estimate sees it)
    assert late["conf_student"].iloc[-1] < early["conf_student"].min() - 0.2
    # the figures the builder records (and prints) are these
    recorded = pd.DataFrame(json.loads((monitor_batches / "manifest.json").read_text())
                            ["metrics"]["batches"]).set_index("batch")
    names = {"agree": "agreement", "right_teacher": "accuracy_teacher",
             "right_student": "accuracy_student", "conf_student": "confidence_student",
             "conf_teacher": "confidence_teacher"}
    np.testing.assert_allclose(recorded[list(names.values())].to_numpy(),
                               f.rename(columns=names)[list(names.values())].to_numpy(),
                               rtol=0, atol=1e-12)
    assert recorded["drift_share"].tolist() == [round(_share(b), 4) for b in f.index]


def _load(path: Path) -> Any:
    import skops.io as sio

    return sio.load(path, trusted=sio.get_untrusted_types(file=path))


@pytest.mark.slow
def test_logged_probabilities_are_the_models_predict_proba(monitor_batches: Path,
                                                          arrests: Path) -> None:
    rows = _batches(monitor_batches)
    for model in ("student", "teacher"):
        fitted = _load(arrests / f"{model}.skops")
        assert list(fitted.classes_) == ["No", "Yes"]
        for batch, group in rows.groupby("batch"):
            np.testing.assert_array_equal(group[[f"{model}_No", f"{model}_Yes"]].to_numpy(),
                                          fitted.predict_proba(group[FEATURES]),
                                          err_msg=f"{model}, batch {batch}")


@pytest.mark.slow
def test_build_is_deterministic(monitor_batches: Path, rebuilt: Path, arrests: Path,
                                tmp_path: Path) -> None:
    out = _copy_arrests_build(arrests.parent, tmp_path)
    again = M.build_monitor(out)["monitor/labels.csv"].parent
    names = [*(f"batches/batch-{b:03d}.csv" for b in range(1, N_BATCHES + 1)),
             "labels.csv", "labels_late.csv", "truth.csv"]
    assert sorted(M.FILES) == sorted(names)
    for name in names:
        assert (again / name).read_bytes() == (rebuilt / name).read_bytes() == (
            monitor_batches / name).read_bytes(), name


@pytest.mark.slow
def test_build_is_cached_until_incomplete(rebuilt: Path, capsys: pytest.CaptureFixture[str]) -> None:
    files = [rebuilt / name for name in M.FILES]
    before = [path.stat().st_mtime_ns for path in files]
    M.main(["--out", str(rebuilt.parent)])  # current: nothing is rewritten
    assert [path.stat().st_mtime_ns for path in files] == before
    out = capsys.readouterr().out
    assert "batch  drift  agreement  acc teacher  acc student  conf student  conf teacher" in out
    assert "monitor/drift_region: rows=65," in out
    assert re.search(r"^20 +1\.000 ", out, re.MULTILINE)
    (rebuilt / "labels_late.csv").unlink()  # incomplete: rebuilt
    M.build_monitor(rebuilt.parent)
    assert (rebuilt / "labels_late.csv").is_file()
    assert (rebuilt / "labels.csv").stat().st_mtime_ns != before[M.FILES.index("labels.csv")]
