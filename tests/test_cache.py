"""Prediction caching (audit/cache.py through audit/runner.py): once per model and dataset per
session, on disk across sessions, misses on any change, corrupt entries recomputed, atomic writes.

The models are callables written to ``tmp_path`` that append a line to ``<module>.calls`` on
every call, so a test can count exactly how often each model predicted.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

import audit.cache
from audit.cache import PredictionCache, atomic_write_bytes
from audit.runner import AuditSession, SuiteRun
from audit.suite import Suite, suite_from_dict
from fixtures.synthetic import write_pair


@pytest.fixture(autouse=True)
def _predictions_only(monkeypatch: pytest.MonkeyPatch) -> None:
    """These tests are about cached predictions and attack artifacts: a rerun must read them,
    not reuse whole measurements (tests/test_reuse.py covers that)."""
    monkeypatch.setattr(AuditSession, "reuse_measurements", False)

COUNTING = """\
from pathlib import Path

import numpy as np

CALLS = Path(__file__).with_name("{name}.calls")
SCALE = {scale}


def predict(X):
    with CALLS.open("a") as fh:
        fh.write("call\\n")
    p = 1 / (1 + np.exp(-SCALE * X["x"].to_numpy()))
    return np.column_stack([1 - p, p])
"""

CHECKS = {
    "accuracy": {"metric": "accuracy", "gate": {"min": 0.5}},
    "agreement": {"metric": "agreement"},
    "log_loss": {"metric": "log_loss"},
    "roc_auc": {"metric": "roc_auc"},
    "f1": {"metric": "f1", "gate": {"max_regression": 0.5}},
    "divergence": {"metric": "js_divergence"},
}


def write_model(folder: Path, name: str, scale: float) -> Path:
    path = folder / f"{name}.py"
    path.write_text(COUNTING.format(name=name, scale=scale))
    return path


def calls(folder: Path, name: str) -> int:
    path = folder / f"{name}.calls"
    return len(path.read_text().splitlines()) if path.exists() else 0


def make_suite(folder: Path, student: str = "student_model") -> Suite:
    return suite_from_dict({
        "version": 1,
        "name": "counting",
        "data": {"eval": "eval.csv", "target": "label", "sensitive": ["group"]},
        "teacher": {"callable": "teacher_model:predict", "classes": ["No", "Yes"]},
        "student": {"callable": f"{student}:predict", "classes": ["No", "Yes"]},
        "settings": {"seed": 0, "bootstrap": 200},
        "checks": CHECKS,
    }, base_dir=folder)


def make_file_suite(folder: Path) -> Suite:
    """The same pair as precomputed predictions: file-based models, cached on disk."""
    return suite_from_dict({
        "version": 1,
        "name": "counting",
        "data": {"eval": "eval.csv", "target": "label", "sensitive": ["group"]},
        "teacher": {"predictions": "teacher.csv", "columns": ["p_No", "p_Yes"],
                    "classes": ["No", "Yes"]},
        "student": {"predictions": "student.csv", "columns": ["p_No", "p_Yes"],
                    "classes": ["No", "Yes"]},
        "settings": {"seed": 0, "bootstrap": 200},
        "checks": CHECKS,
    }, base_dir=folder)


@pytest.fixture
def loads(monkeypatch: pytest.MonkeyPatch) -> dict[str, int]:
    """How often each role's model is loaded (a disk-cache hit loads nothing)."""
    import audit.runner

    counts = {"teacher": 0, "student": 0}
    real = audit.runner.load_model

    def counting(spec: Any, role: str) -> Any:
        counts[role] += 1
        return real(spec, role)

    monkeypatch.setattr(audit.runner, "load_model", counting)
    return counts


def write_student(folder: Path, scale: float) -> None:
    x = pd.read_csv(folder / "eval.csv")["x"].to_numpy()
    p = 1 / (1 + np.exp(-scale * x))
    pd.DataFrame({"p_No": 1 - p, "p_Yes": p}).to_csv(folder / "student.csv", index=False,
                                                      float_format="%.17g")


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    """eval.csv (x, group, label) and two counting models next to the suite."""
    write_pair(tmp_path, n=300, seed=5)
    write_student(tmp_path, 1.0)  # the file-based student differs from the teacher
    write_model(tmp_path, "teacher_model", 1.5)
    write_model(tmp_path, "student_model", 1.0)
    return tmp_path


def comparable(results: list[Any]) -> list[dict[str, Any]]:
    out = []
    for r in results:
        d = r.to_dict()
        d["details"].pop("seconds")
        out.append(d)
    return out


def run_suite(session: AuditSession, suite: Suite) -> tuple[SuiteRun, list[Any]]:
    run = session.run_for(suite)
    results = run.run_all()
    assert all(r.status != "error" for r in results), [r.error for r in results]
    return run, results


def entries(cache: Path) -> list[str]:
    return sorted(p.name for p in cache.iterdir())


def no_temporary_files(cache: Path) -> bool:
    return not [p for p in cache.iterdir() if p.name.endswith(".tmp")]


# --------------------------------------------------------------------------- one session
def test_each_model_predicts_once_per_session(folder: Path) -> None:
    session = AuditSession(None)
    suite = make_suite(folder)
    run, results = run_suite(session, suite)
    assert len(results) == len(CHECKS)
    ad_hoc = run.check("balanced", {"metric": "balanced_accuracy", "gate": {"max_regression": 0.9}})
    assert ad_hoc.status == "pass"
    assert run.run_check("accuracy").status == results[0].status
    assert session.run_for(suite) is run
    assert (calls(folder, "teacher_model"), calls(folder, "student_model")) == (1, 1)
    assert session.cache.stats.computed == 2
    assert run.prediction_sources == {"teacher/eval": "computed", "student/eval": "computed"}


def test_a_teacher_shared_by_two_suites_predicts_once(folder: Path) -> None:
    write_model(folder, "other_student", 0.5)
    session = AuditSession(None)
    run_suite(session, make_suite(folder))
    second, _ = run_suite(session, make_suite(folder, student="other_student"))
    assert calls(folder, "teacher_model") == 1
    assert calls(folder, "student_model") == calls(folder, "other_student") == 1
    assert second.prediction_sources == {"teacher/eval": "memory", "student/eval": "computed"}
    stats = session.cache.stats
    assert (stats.computed, stats.memory_hits, stats.disk_hits) == (3, 1, 0)


def test_no_cache_dir_never_writes(folder: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def refuse(path: Path, data: bytes) -> None:
        raise AssertionError(f"wrote {path}")

    monkeypatch.setattr(audit.cache, "atomic_write_bytes", refuse)
    monkeypatch.chdir(folder)
    before = entries(folder)
    session = AuditSession(None)
    run_suite(session, make_suite(folder))
    after = set(entries(folder)) - set(before)
    assert after == {"teacher_model.calls", "student_model.calls"}  # written by the models
    assert session.cache.directory is None
    assert (session.cache.stats.computed, session.cache.stats.disk_hits) == (2, 0)


# --------------------------------------------------------------------------- on disk
def test_a_second_session_reads_from_disk(folder: Path, loads: dict[str, int]) -> None:
    cache = folder / "cache"
    suite = make_file_suite(folder)
    _, first = run_suite(AuditSession(cache), suite)
    names = entries(cache)
    assert len(names) == 4 and {Path(n).suffix for n in names} == {".npy", ".json"}
    assert no_temporary_files(cache)

    session = AuditSession(cache)
    run, second = run_suite(session, suite)
    stats = session.cache.stats
    assert (stats.disk_hits, stats.computed, stats.corrupt) == (2, 0, [])
    assert loads == {"teacher": 1, "student": 1}  # loaded in the first session only
    assert run.prediction_sources == {"teacher/eval": "disk", "student/eval": "disk"}
    assert comparable(second) == comparable(first)
    assert entries(cache) == names


def test_changing_the_data_misses(folder: Path, loads: dict[str, int]) -> None:
    cache = folder / "cache"
    run_suite(AuditSession(cache), make_file_suite(folder))
    frame = pd.read_csv(folder / "eval.csv")
    frame.loc[0, "x"] += 1.0
    frame.to_csv(folder / "eval.csv", index=False)
    session = AuditSession(cache)
    run_suite(session, make_file_suite(folder))
    assert (session.cache.stats.computed, session.cache.stats.disk_hits) == (2, 0)
    assert loads == {"teacher": 2, "student": 2}
    assert len(entries(cache)) == 8


def test_changing_a_model_misses_for_that_model_only(folder: Path, loads: dict[str, int]) -> None:
    cache = folder / "cache"
    write_student(folder, 1.0)
    _, before = run_suite(AuditSession(cache), make_file_suite(folder))
    write_student(folder, 0.25)
    session = AuditSession(cache)
    run, after = run_suite(session, make_file_suite(folder))
    assert run.prediction_sources == {"teacher/eval": "disk", "student/eval": "computed"}
    assert loads == {"teacher": 1, "student": 2}
    assert comparable(after) != comparable(before)  # the new student predictions were read
    np.testing.assert_allclose(run.inputs.p_student[:, 1],
                               1 / (1 + np.exp(-0.25 * run.eval_table.features["x"])))


def test_feature_columns_are_part_of_the_key(folder: Path) -> None:
    cache = folder / "cache"
    run_suite(AuditSession(cache), make_suite(folder))
    suite = make_suite(folder)
    narrowed = suite_from_dict({
        "version": 1, "name": "counting",
        "data": {"eval": "eval.csv", "target": "label", "features": ["x"]},
        "teacher": {"callable": "teacher_model:predict", "classes": ["No", "Yes"]},
        "student": {"callable": "student_model:predict", "classes": ["No", "Yes"]},
        "checks": {"accuracy": CHECKS["accuracy"]},
    }, base_dir=folder)
    assert narrowed.data.features != suite.data.features
    session = AuditSession(cache)
    run_suite(session, narrowed)
    assert session.cache.stats.computed == 2


def _corrupt_truncate(npy: Path, meta: Path) -> str:
    npy.write_bytes(npy.read_bytes()[:-40])
    return f"{npy.name}: content does not match its recorded sha256; recomputed"


def _corrupt_flip(npy: Path, meta: Path) -> str:
    data = bytearray(npy.read_bytes())
    data[-3] ^= 0xFF
    npy.write_bytes(bytes(data))
    return f"{npy.name}: content does not match its recorded sha256; recomputed"


def _corrupt_json(npy: Path, meta: Path) -> str:
    meta.write_text("{not json")
    return (f"{meta.name}: Expecting property name enclosed in double quotes: line 1 column 2 "
            "(char 1); recomputed")


def _corrupt_json_list(npy: Path, meta: Path) -> str:
    meta.write_text("[1, 2]")
    return f"{meta.name}: holds list, not a record; recomputed"


def _corrupt_json_key(npy: Path, meta: Path) -> str:
    record = json.loads(meta.read_text())
    del record["sha256"]
    meta.write_text(json.dumps(record))
    return f"{meta.name}: missing key 'sha256'; recomputed"


def _corrupt_missing_json(npy: Path, meta: Path) -> str:
    meta.unlink()
    return f"{meta.name}: [Errno 2] No such file or directory: '{meta}'; recomputed"


def _corrupt_shape(npy: Path, meta: Path) -> str:
    """A well-formed entry whose array no longer matches its record."""
    import hashlib
    import io

    buf = io.BytesIO()
    np.save(buf, np.full((3, 2), 0.5))
    npy.write_bytes(buf.getvalue())
    record = json.loads(meta.read_text())
    shape = record["shape"]
    record["sha256"] = hashlib.sha256(buf.getvalue()).hexdigest()
    meta.write_text(json.dumps(record))
    return f"{npy.name}: shape [3, 2] does not match its record {shape}; recomputed"


def _corrupt_not_npy(npy: Path, meta: Path) -> str:
    import hashlib

    npy.write_bytes(b"this is not numpy")
    record = json.loads(meta.read_text())
    record["sha256"] = hashlib.sha256(b"this is not numpy").hexdigest()
    meta.write_text(json.dumps(record))
    return re.escape(f"{npy.name}: ") + r".+; recomputed"


@pytest.mark.parametrize("corrupt", [_corrupt_truncate, _corrupt_flip, _corrupt_json,
                                     _corrupt_json_list, _corrupt_json_key, _corrupt_missing_json,
                                     _corrupt_shape, _corrupt_not_npy],
                         ids=lambda f: f.__name__.removeprefix("_corrupt_"))
def test_a_corrupt_entry_is_recomputed(folder: Path, corrupt: Any, loads: dict[str, int]) -> None:
    cache = folder / "cache"
    suite = make_file_suite(folder)
    _, first = run_suite(AuditSession(cache), suite)
    expected = []
    for npy in sorted(cache.glob("*.npy")):
        expected.append(corrupt(npy, npy.with_suffix(".json")))

    session = AuditSession(cache)
    run, second = run_suite(session, suite)
    stats = session.cache.stats
    assert len(stats.corrupt) == 2
    if corrupt is _corrupt_not_npy:
        for message, pattern in zip(sorted(stats.corrupt), sorted(expected)):
            assert re.fullmatch(pattern, message), message
    else:
        assert sorted(stats.corrupt) == sorted(expected)
    assert (stats.computed, stats.disk_hits) == (2, 0)
    assert loads == {"teacher": 2, "student": 2}
    assert comparable(second) == comparable(first)
    assert no_temporary_files(cache)

    third = AuditSession(cache)  # the recomputed entries were written back, whole
    run_suite(third, suite)
    assert (third.cache.stats.disk_hits, third.cache.stats.corrupt) == (2, [])


def test_a_cache_that_cannot_be_written_does_not_fail_the_audit(
        folder: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def read_only(path: Path, data: bytes) -> None:
        raise PermissionError(13, "Permission denied", str(path))

    monkeypatch.setattr(audit.cache, "atomic_write_bytes", read_only)
    session = AuditSession(folder / "cache")
    _, results = run_suite(session, make_file_suite(folder))
    assert len(results) == len(CHECKS)
    assert len(session.cache.stats.corrupt) == 2
    for message in session.cache.stats.corrupt:
        assert re.fullmatch(r"could not write [0-9a-f]{64}\.npy: \[Errno 13\] Permission denied: "
                            r"'.+\.npy'", message), message


def test_models_sharing_a_predictions_file_do_not_share_cached_predictions(tmp_path: Path) -> None:
    paths = write_pair(tmp_path, n=200, degrade=0.5, seed=2)
    teacher, student = pd.read_csv(paths["teacher"]), pd.read_csv(paths["student"])
    both = pd.DataFrame({"t_No": teacher["p_No"], "t_Yes": teacher["p_Yes"],
                         "s_No": student["p_No"], "s_Yes": student["p_Yes"]})
    both.to_csv(tmp_path / "both.csv", index=False, float_format="%.17g")
    suite = suite_from_dict({
        "version": 1, "name": "shared",
        "data": {"eval": "eval.csv", "target": "label"},
        "teacher": {"predictions": "both.csv", "columns": ["t_No", "t_Yes"],
                    "classes": ["No", "Yes"]},
        "student": {"predictions": "both.csv", "columns": ["s_No", "s_Yes"],
                    "classes": ["No", "Yes"]},
        "checks": {"agreement": {"metric": "agreement"}},
    }, base_dir=tmp_path)
    session = AuditSession(tmp_path / "cache")
    run = session.run_for(suite)
    assert run.run_check("agreement").status == "info"
    np.testing.assert_allclose(run.inputs.p_teacher, teacher.to_numpy(), rtol=0, atol=1e-15)
    np.testing.assert_allclose(run.inputs.p_student, student.to_numpy(), rtol=0, atol=1e-15)
    assert session.cache.stats.computed == 2


# --------------------------------------------------------------------------- PredictionCache
def test_prediction_cache_memory_and_read_only_values(tmp_path: Path) -> None:
    cache = PredictionCache.open(tmp_path)  # with this machine's key: entries authenticated
    key = PredictionCache.key("model", "data", "x")
    assert key != PredictionCache.key("model", "data", "y")
    assert key != PredictionCache.key("model", "datax")  # parts are separated
    value, source = cache.get(key, lambda: np.eye(2))
    assert source == "computed" and not value.flags.writeable
    again, source = cache.get(key, lambda: pytest.fail("computed twice"))
    assert source == "memory" and again is value
    fresh, source = PredictionCache.open(tmp_path).get(key, lambda: pytest.fail("not read from disk"))
    assert source == "disk"
    np.testing.assert_array_equal(fresh, np.eye(2))
    assert json.loads((tmp_path / f"{key}.json").read_text())["shape"] == [2, 2]


# --------------------------------------------------------------------------- atomic writes
def test_atomic_write_bytes_writes_and_replaces(tmp_path: Path) -> None:
    target = tmp_path / "sub" / "entry.bin"
    atomic_write_bytes(target, b"one")
    atomic_write_bytes(target, b"two")
    assert target.read_bytes() == b"two"
    assert sorted(p.name for p in target.parent.iterdir()) == ["entry.bin"]


def test_atomic_write_bytes_permissions(tmp_path: Path) -> None:
    """Not the 0600 of the temporary file: reports and shared caches must stay readable."""
    new = tmp_path / "new.json"
    atomic_write_bytes(new, b"{}")
    assert new.stat().st_mode & 0o777 == 0o644
    private = tmp_path / "private.json"
    private.write_bytes(b"")
    private.chmod(0o600)
    atomic_write_bytes(private, b"{}")
    assert private.stat().st_mode & 0o777 == 0o600


def test_atomic_write_bytes_leaves_nothing_when_the_rename_fails(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def fail(src: Any, dst: Any) -> None:
        raise OSError(28, "No space left on device")

    target = tmp_path / "entry.bin"
    monkeypatch.setattr(os, "replace", fail)
    with pytest.raises(OSError, match="No space left on device"):
        atomic_write_bytes(target, b"x" * 1000)
    assert list(tmp_path.iterdir()) == []


def test_atomic_write_bytes_keeps_the_old_content_when_writing_fails(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    target = tmp_path / "entry.bin"
    target.write_bytes(b"old")

    def fail(fd: int) -> None:
        raise OSError(5, "Input/output error")

    monkeypatch.setattr(os, "fsync", fail)
    with pytest.raises(OSError, match="Input/output error"):
        atomic_write_bytes(target, b"new content")
    assert target.read_bytes() == b"old"
    assert [p.name for p in tmp_path.iterdir()] == ["entry.bin"]


def test_a_cache_hit_does_not_load_file_based_models(tmp_path: Path, built: dict) -> None:
    """An unchanged teacher is neither re-run nor even loaded on the next CI run."""
    from audit import load_suite
    from audit.checks.registry import get_metric
    from audit.runner import AuditSession, SuiteRun

    suite = load_suite(Path(__file__).resolve().parents[1] / "suites" / "arrests.audit.yaml")
    # every check that reads predictions (efficiency and robustness checks run the models)
    names = [c.name for c in suite.checks
             if get_metric(c.metric).family not in ("efficiency", "robustness")]
    first = SuiteRun(suite, AuditSession(tmp_path / "cache"))
    before = [first.run_check(n).to_dict() for n in names]
    assert sorted(first._models) == ["baseline", "student", "teacher"]
    again = SuiteRun(suite, AuditSession(tmp_path / "cache"))
    after = [again.run_check(n).to_dict() for n in names]
    assert again._models == {}
    assert again.prediction_sources == {f"{role}/{table}": "disk" for table in ("eval", "train")
                                        for role in ("teacher", "student", "baseline")}
    for b, a in zip(before, after, strict=True):
        b["details"].pop("seconds"), a["details"].pop("seconds")
        assert a == b
    art, ref = again.artifacts(), first.artifacts()
    for role in ("teacher", "student", "baseline"):
        assert art[role]["sha256"] == ref[role]["sha256"]
        assert art[role]["classes"] == ref[role]["classes"] == ["No", "Yes"]
        assert (art[role]["loaded"], ref[role]["loaded"]) == (False, True)


def test_callables_are_never_served_from_disk(folder: Path) -> None:
    """A callable's output may depend on files we cannot hash (weights it reads): every run
    calls it again; within one run it still predicts once."""
    cache = folder / "cache"
    run_suite(AuditSession(cache), make_suite(folder))
    assert not cache.exists() or entries(cache) == []
    run, _ = run_suite(AuditSession(cache), make_suite(folder))
    assert (calls(folder, "teacher_model"), calls(folder, "student_model")) == (2, 2)
    assert run.prediction_sources == {"teacher/eval": "computed", "student/eval": "computed"}


def test_a_cache_hit_still_refuses_an_untrusted_skops_file(tmp_path: Path, built: dict) -> None:
    """The trust check does not depend on the cache's state."""
    import yaml

    from audit import load_suite

    source = Path(__file__).resolve().parents[1] / "suites" / "arrests.audit.yaml"
    suite = load_suite(source)
    raw = {"version": 1, "name": "trust",
           "data": {"eval": str(suite.data.eval), "target": "released"},
           "teacher": {"skops": str(suite.teacher.path), "trusted_types": ["sklearn.tree._tree.Tree"]},
           "student": str(suite.student.path),
           "checks": {"accuracy": {"metric": "accuracy"}}}
    path = tmp_path / "trust.audit.yaml"
    path.write_text(yaml.safe_dump(raw))
    cache = tmp_path / "cache"
    assert SuiteRun(load_suite(path), AuditSession(cache)).run_check("accuracy").status == "info"
    raw["teacher"] = str(suite.teacher.path)  # no trusted_types any more
    path.write_text(yaml.safe_dump(raw))
    result = SuiteRun(load_suite(path), AuditSession(cache)).run_check("accuracy")
    assert result.status == "error"
    assert "the file holds types skops does not trust by default" in result.error


def test_onnx_external_weights_are_part_of_the_hash(tmp_path: Path) -> None:
    """Weights stored beside an ONNX file change its identity (and its provenance hash)."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    from audit.models import content_sha256
    from audit.spec import ModelSpec

    w = numpy_helper.from_array(np.arange(4, dtype=np.float32).reshape(2, 2), name="W")
    graph = helper.make_graph([helper.make_node("MatMul", ["X", "W"], ["Y"])], "g",
                              [helper.make_tensor_value_info("X", TensorProto.FLOAT, [None, 2])],
                              [helper.make_tensor_value_info("Y", TensorProto.FLOAT, [None, 2])], [w])
    model = helper.make_model(graph)
    path = tmp_path / "m.onnx"
    onnx.save_model(model, str(path), save_as_external_data=True, all_tensors_to_one_file=True,
                    location="m.onnx.data", size_threshold=0)
    spec = ModelSpec(kind="onnx", path=path)
    before = content_sha256(spec)
    assert before != hashlib.sha256(path.read_bytes()).hexdigest()
    data = tmp_path / "m.onnx.data"
    data.write_bytes(data.read_bytes()[::-1])
    assert content_sha256(spec) != before
