"""Whoever can write the cache folder cannot change a verdict (issue: trust the verdict).

An attacker with write access to the cache (a CI cache restored from shared storage) can
rewrite an entry's ``.npy`` together with the SHA-256 recorded beside it. These tests do
exactly that to the weak example student's cached predictions and check that the verdict
stays the one the real model earns: the forged entry is refused (its MAC does not match, and
re-predicting a fresh sample of rows disagrees with it), recomputed, and named in the report.
"""

from __future__ import annotations

import hashlib
import io
import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import yaml

from audit.cache import KEY_ENV, CacheKey, PredictionCache
from audit.runner import AuditSession, SuiteRun
from audit.suite import load_suite


@pytest.fixture(autouse=True)
def _predictions_only(monkeypatch: pytest.MonkeyPatch) -> None:
    """These tests are about cached predictions and attack artifacts: a rerun must read them,
    not reuse whole measurements (tests/test_reuse.py covers that)."""
    monkeypatch.setattr(AuditSession, "reuse_measurements", False)

ROOT = Path(__file__).resolve().parents[1]


def weak_suite(tmp_path: Path, built: dict[str, Path], **teacher: Any) -> Path:
    """The arrests pair with the weak student: it fails ``accuracy min 0.78``."""
    arrests = built["arrests/eval.csv"].parent
    raw = {"version": 1, "name": "forgery",
           "data": {"eval": str(arrests / "eval.csv"), "target": "released"},
           "teacher": {"skops": str(arrests / "teacher.skops"),
                       "trusted_types": ["sklearn.tree._tree.Tree"], **teacher},
           "student": str(arrests / "student_weak.onnx"),
           "settings": {"bootstrap": 200},
           "checks": {"accuracy": {"metric": "accuracy", "gate": {"min": 0.78}},
                      "agreement": {"metric": "agreement", "gate": {"min": 0.93}}}}
    path = tmp_path / "forgery.audit.yaml"
    path.write_text(yaml.safe_dump(raw))
    return path


def run(path: Path, cache: Path, **kw: Any) -> SuiteRun:
    r = SuiteRun(load_suite(path), AuditSession(cache, **kw))
    r.results = r.run_all()  # type: ignore[attr-defined]
    return r


def statuses(r: SuiteRun) -> dict[str, str]:
    return {c.name: c.status for c in r.results}  # type: ignore[attr-defined]


def entry_for(cache: Path, predicts: np.ndarray) -> Path:
    """The cache record whose array equals ``predicts``."""
    for meta in cache.glob("*.json"):
        value = np.load(cache / f"{meta.stem}.npy")
        if value.shape == predicts.shape and np.allclose(value, predicts):
            return meta
    raise AssertionError("no cache entry holds these predictions")


def forge(meta: Path, value: np.ndarray, *, mac: str | None = None) -> None:
    """Rewrite an entry's array and the SHA-256 beside it, as an attacker would."""
    buf = io.BytesIO()
    np.save(buf, value, allow_pickle=False)
    data = buf.getvalue()
    (meta.parent / f"{meta.stem}.npy").write_bytes(data)
    record = json.loads(meta.read_text())
    record["sha256"] = hashlib.sha256(data).hexdigest()
    if mac is not None:
        record["mac"] = mac
    meta.write_text(json.dumps(record))


@pytest.fixture(params=["keyed", "keyless"])
def key_mode(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    """With this machine's key (the MAC breaks) and without one (CI without a secret: only
    re-predicting a sample of rows stands between the forgery and the verdict)."""
    if request.param == "keyless":
        monkeypatch.setenv(KEY_ENV, "")
    return str(request.param)


def test_a_forged_prediction_entry_cannot_turn_a_fail_into_a_pass(
        tmp_path: Path, built: dict[str, Path], key_mode: str) -> None:
    path = weak_suite(tmp_path, built)
    cache = tmp_path / "cache"
    honest = run(path, cache)
    assert statuses(honest) == {"accuracy": "fail", "agreement": "fail"}
    # the attacker replaces the weak student's predictions with the teacher's (now it "agrees
    # perfectly" and is as accurate as the teacher)
    student = honest.inputs.p_student
    meta = entry_for(cache, np.asarray(honest.predictions("student", honest.eval_table)[0]))
    forge(meta, _teacher_in_student_order(honest))
    forged_run = run(path, cache)
    assert statuses(forged_run) == {"accuracy": "fail", "agreement": "fail"}
    np.testing.assert_array_equal(forged_run.inputs.p_student, student)
    refused = forged_run.session.cache.stats.refused
    assert len(refused) == 1 and "student predictions on eval" in refused[0]
    assert "re-predicted rows differ from it" in refused[0]
    report = forged_run.report(forged_run.results)  # type: ignore[attr-defined]
    assert any("a cache entry was refused" in w for w in report.provenance["warnings"])
    assert report.provenance["cache"]["refused"] == refused
    # the recomputed (honest) entry was written back and is accepted next time
    again = run(path, cache)
    assert again.session.cache.stats.refused == [] and statuses(again) == statuses(honest)


def _teacher_in_student_order(r: SuiteRun) -> np.ndarray:
    teacher = np.asarray(r.predictions("teacher", r.eval_table)[0])
    # both models know ["No", "Yes"] in the same order here
    assert r.predictions("teacher", r.eval_table)[1] == r.predictions("student", r.eval_table)[1]
    return teacher


def test_a_forgery_with_a_valid_looking_mac_from_another_key_is_refused(
        tmp_path: Path, built: dict[str, Path]) -> None:
    """The attacker may sign with a key of their own: it is not ours, so the entry is verified
    (and refused) like an unsigned one."""
    path = weak_suite(tmp_path, built)
    cache = tmp_path / "cache"
    honest = run(path, cache)
    meta = entry_for(cache, np.asarray(honest.predictions("student", honest.eval_table)[0]))
    forge(meta, _teacher_in_student_order(honest))
    theirs = PredictionCache(cache, key=CacheKey(b"attacker-key-0123456789", "theirs"))
    record = json.loads(meta.read_text())
    forge(meta, _teacher_in_student_order(honest), mac=theirs._mac(meta.stem, record))
    forged_run = run(path, cache)
    assert statuses(forged_run) == {"accuracy": "fail", "agreement": "fail"}
    assert len(forged_run.session.cache.stats.refused) == 1


def test_an_authenticated_hit_loads_no_model_and_a_keyless_one_verifies(
        tmp_path: Path, built: dict[str, Path], monkeypatch: pytest.MonkeyPatch) -> None:
    path = weak_suite(tmp_path, built)
    cache = tmp_path / "cache"
    first = run(path, cache)
    again = run(path, cache)
    assert again._models == {}  # authenticated: neither model was loaded
    entries = again.artifacts()["cache"]["entries"]
    assert set(entries) == {"teacher/eval", "student/eval"}
    assert all(how.startswith("read from the cache, authenticated (HMAC-SHA256, key file ")
               for how in entries.values()), entries
    monkeypatch.setenv(KEY_ENV, "")  # CI with no secret: the machine's key is not used
    keyless = run(path, cache)
    assert sorted(keyless._models) == ["student", "teacher"]
    n = first.eval_table.n_rows
    assert keyless.artifacts()["cache"]["entries"] == {
        who: f"read from the cache, verified: 256 of {n} rows, drawn at random this run, "
             "re-predicted by the model and matched" for who in ("teacher/eval", "student/eval")}
    assert statuses(keyless) == statuses(first)
    prov = keyless.artifacts()["cache"]
    assert prov["mode"] == "verified" and prov["authentication"] is None
    assert f"{KEY_ENV} is set empty" in prov["summary"]


def test_trust_cache_skips_verification_and_the_report_says_so(
        tmp_path: Path, built: dict[str, Path], monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(KEY_ENV, "")
    path = weak_suite(tmp_path, built)
    cache = tmp_path / "cache"
    honest = run(path, cache)
    meta = entry_for(cache, np.asarray(honest.predictions("student", honest.eval_table)[0]))
    forge(meta, _teacher_in_student_order(honest))
    trusting = run(path, cache, trust_cache=True)
    # the escape hatch does what it says (the forged entry is used) and the report says so
    assert statuses(trusting)["agreement"] == "pass"
    report = trusting.report(trusting.results)  # type: ignore[attr-defined]
    assert report.provenance["cache"]["mode"] == "trusted"
    assert report.provenance["cache"]["entries"]["student/eval"] == (
        "read from the cache without verification (--audit-trust-cache)")
    assert any("used without verification (--audit-trust-cache)" in w
               for w in report.provenance["warnings"])


@pytest.mark.parametrize("trust", [False, True], ids=["verified", "trust-cache"])
def test_skops_trust_is_decided_by_the_file_not_the_cache(
        tmp_path: Path, built: dict[str, Path], monkeypatch: pytest.MonkeyPatch,
        trust: bool) -> None:
    """Item 2: setting ``untrusted_types: []`` in a cached entry must not let a suite without
    ``trusted_types`` run a model holding types skops does not trust; not even with
    --audit-trust-cache, whose promise covers predictions, not code."""
    monkeypatch.setenv(KEY_ENV, "")
    path = weak_suite(tmp_path, built)
    cache = tmp_path / "cache"
    honest = run(path, cache)
    teacher = np.asarray(honest.predictions("teacher", honest.eval_table)[0])
    meta = entry_for(cache, teacher)
    record = json.loads(meta.read_text())
    assert record["info"]["untrusted_types"] == ["sklearn.tree._tree.Tree"]
    record["info"]["untrusted_types"] = []
    meta.write_text(json.dumps(record))
    raw = yaml.safe_load(path.read_text())
    raw["teacher"].pop("trusted_types")
    path.write_text(yaml.safe_dump(raw))
    refused = run(path, cache, trust_cache=trust)
    for result in refused.results:  # type: ignore[attr-defined]
        assert result.status == "error"
        assert "the file holds types skops does not trust by default" in result.error
        assert "sklearn.tree._tree.Tree" in result.error


def test_adversarial_examples_are_reused_only_when_authenticated(tmp_path: Path) -> None:
    """An artifact nothing can cheaply re-check (a claimed failure to find an adversarial
    example) is used from disk only with a valid MAC."""
    cache = tmp_path / "cache"
    key = PredictionCache.key("adversarial", "x")
    signed = PredictionCache(cache, key=CacheKey(b"k" * 32, "test"))
    signed.get_with_info(key, lambda: (np.zeros(3), {"done": [0]}))
    assert PredictionCache(cache, key=CacheKey(b"k" * 32, "test")).get_with_info(
        key, lambda: pytest.fail("recomputed"))[2] == "disk"
    for other in (None, CacheKey(b"z" * 32, "other")):
        fresh = PredictionCache(cache, key=other)
        value, _, source = fresh.get_with_info(key, lambda: (np.ones(3), {"done": [0]}))
        assert source == "computed" and value.tolist() == [1.0, 1.0, 1.0]


@pytest.mark.parametrize("value,problem", [
    ("short", "shorter than 16 characters"),
    ("", "is set empty"),
], ids=["too-short", "empty"])
def test_a_weak_or_empty_environment_key_is_not_used(monkeypatch: pytest.MonkeyPatch,
                                                     tmp_path: Path, value: str,
                                                     problem: str) -> None:
    from audit.cache import load_cache_key

    monkeypatch.setenv(KEY_ENV, value)
    key, note = load_cache_key(tmp_path)
    assert key is None and problem in note


def test_the_key_file_is_private_and_refused_when_others_may_write_it(
        monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    from audit.cache import load_cache_key

    monkeypatch.delenv(KEY_ENV, raising=False)
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "config"))
    key, note = load_cache_key(tmp_path / "cache")
    path = tmp_path / "config" / "distill-audit" / "cache.key"
    assert key is not None and note == "" and key.source == f"key file {path}"
    assert path.stat().st_mode & 0o777 == 0o600
    assert load_cache_key(tmp_path / "cache")[0] == key  # the same key next time
    path.chmod(0o666)
    key, note = load_cache_key(tmp_path / "cache")
    assert key is None and "may be written by others" in note
    # a key file inside the cache folder could be forged with the cache: not used
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "cache"))
    key, note = load_cache_key(tmp_path / "cache")
    assert key is None and "inside the cache folder" in note
