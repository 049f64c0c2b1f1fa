"""A rerun reuses a check's measurements only when nothing they depend on changed and the
entry is authenticated (audit/reuse.py); gates are always judged afresh."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import yaml

import audit.reuse
from audit.cache import KEY_ENV, CacheKey, PredictionCache
from audit.runner import AuditSession, SuiteRun
from audit.suite import load_suite

CHECKS: dict[str, Any] = {
    "accuracy": {"metric": "accuracy", "gate": {"min": 0.5}},
    "calibration": {"metric": "ece", "bins": 10, "gate": {"max": 0.5}},
    "parity": {"metric": "demographic_parity_difference", "by": ["sex"]},
    "drift": {"metric": "max_psi"},
    "latency": {"metric": "latency_ms", "batch_sizes": [1], "repeats": 5, "gate": {"max": 1000}},
}


def suite(tmp_path: Path, built: dict[str, Path], checks: dict[str, Any] | None = None,
          **settings: Any) -> Path:
    arrests = built["arrests/eval.csv"].parent
    raw = {"version": 1, "name": "reuse",
           "data": {"eval": str(arrests / "eval.csv"), "train": str(arrests / "train.csv"),
                    "target": "released", "sensitive": ["sex"], "positive": "Yes"},
           "teacher": {"skops": str(arrests / "teacher.skops"),
                       "trusted_types": ["sklearn.tree._tree.Tree"]},
           "student": str(arrests / "student.onnx"),
           "settings": {"bootstrap": 100, **settings},
           "checks": checks or CHECKS}
    path = tmp_path / "reuse.audit.yaml"
    path.write_text(yaml.safe_dump(raw))
    return path


def run(path: Path, cache: Path, **kw: Any) -> SuiteRun:
    r = SuiteRun(load_suite(path), AuditSession(cache, **kw))
    r.results = r.run_all()  # type: ignore[attr-defined]
    return r


def plain(r: SuiteRun) -> list[dict[str, Any]]:
    """Every result as data, without the seconds a check took."""
    out = []
    for res in r.results:  # type: ignore[attr-defined]
        d = res.to_dict()
        d["details"].pop("seconds", None)
        if res.name == "latency":  # a timing: measured afresh, its numbers differ
            d.pop("measurements"), d.pop("gates")
        out.append(d)
    return out


def entries(r: SuiteRun) -> dict[str, str]:
    return {k: v for k, v in r.artifacts()["cache"]["entries"].items()
            if k.startswith("measurements/")}


def test_a_rerun_reuses_every_measurement_but_timings_and_reads_neither_table_nor_model(
        tmp_path: Path, built: dict[str, Path]) -> None:
    path, cache = suite(tmp_path, built, checks={k: v for k, v in CHECKS.items()
                                                 if k != "latency"}), tmp_path / "cache"
    first = run(path, cache)
    again = run(path, cache)
    assert plain(again) == plain(first)
    assert set(entries(again)) == {f"measurements/{c}" for c in CHECKS if c != "latency"}
    assert all(how.startswith("read from the cache, authenticated") for how in
               entries(again).values())
    assert again._models == {} and "eval_table" not in again.__dict__
    # the report still describes the data and models it was judged on
    a, b = first.artifacts(), again.artifacts()
    assert b["data"]["eval"] == a["data"]["eval"]
    for role in ("teacher", "student"):
        assert {k: v for k, v in b[role].items() if k != "loaded"} == \
            {k: v for k, v in a[role].items() if k != "loaded"}
    assert b["teacher"]["loaded"] is False


def test_timings_are_measured_on_every_run(tmp_path: Path, built: dict[str, Path]) -> None:
    path, cache = suite(tmp_path, built), tmp_path / "cache"
    run(path, cache)
    again = run(path, cache)
    assert "measurements/latency" not in entries(again)
    assert "measurements/accuracy" in entries(again)
    assert again._models.keys() == {"teacher", "student"}  # loaded to be timed


def test_an_edited_gate_applies_to_reused_measurements(tmp_path: Path,
                                                      built: dict[str, Path]) -> None:
    cache = tmp_path / "cache"
    first = run(suite(tmp_path, built, checks={"accuracy": CHECKS["accuracy"]}), cache)
    assert first.results[0].status == "pass"  # type: ignore[attr-defined]
    strict = {"accuracy": {"metric": "accuracy", "gate": {"min": 0.99}}}
    again = run(suite(tmp_path, built, checks=strict), cache)
    assert entries(again)["measurements/accuracy"].startswith("read from the cache")
    assert again.results[0].status == "fail"  # type: ignore[attr-defined]
    assert again.results[0].measurements == first.results[0].measurements  # type: ignore[attr-defined]


@pytest.mark.parametrize("change", ["param", "seed", "bootstrap", "confidence", "data", "code"])
def test_anything_a_measurement_depends_on_makes_it_computed_again(
        tmp_path: Path, built: dict[str, Path], change: str,
        monkeypatch: pytest.MonkeyPatch) -> None:
    checks = {"calibration": CHECKS["calibration"]}
    cache = tmp_path / "cache"
    run(suite(tmp_path, built, checks=checks), cache)
    settings: dict[str, Any] = {}
    if change == "param":
        checks = {"calibration": {**CHECKS["calibration"], "bins": 12}}
    elif change == "seed":
        settings["seed"] = 7
    elif change == "bootstrap":
        settings["bootstrap"] = 101
    elif change == "confidence":
        settings["confidence"] = 0.9
    elif change == "code":
        audit.reuse.code_fingerprint.cache_clear()
        monkeypatch.setattr(audit.reuse, "code_fingerprint", lambda: "another version")
    path = suite(tmp_path, built, checks=checks, **settings)
    if change == "data":  # same rows, one more blank line at the end: other bytes
        copy = tmp_path / "eval.csv"
        copy.write_bytes(built["arrests/eval.csv"].read_bytes() + b"\n")
        raw = yaml.safe_load(path.read_text())
        raw["data"]["eval"] = str(copy)
        path.write_text(yaml.safe_dump(raw))
    again = run(path, cache)
    assert entries(again) == {"measurements/calibration": "computed in this run"}


def forge_measurements(cache: Path, mac_key: bytes | None) -> int:
    """Turn every stored accuracy into 0.99 (an attacker's pass), signing with ``mac_key``
    (the attacker's own key) or not at all; the count of entries forged."""
    forged = 0
    theirs = PredictionCache(cache, key=CacheKey(mac_key, "theirs")) if mac_key else None
    for meta_path in cache.glob("*.json"):
        meta = json.loads(meta_path.read_text())
        for m in meta.get("info", {}).get("measurements", []):
            if m["metric"] == "accuracy":
                for role in ("teacher", "student"):
                    m[role]["value"], m[role]["ci"] = 0.99, [0.985, 0.995]
                meta.pop("mac", None)
                if theirs is not None:
                    meta["mac"] = theirs._mac(meta_path.stem, meta)
                meta_path.write_text(json.dumps(meta))
                forged += 1
    return forged


@pytest.mark.parametrize("mac_key", [None, b"attacker-key-0123456789"], ids=["unsigned", "theirs"])
def test_a_forged_measurement_is_never_used(tmp_path: Path, built: dict[str, Path],
                                            mac_key: bytes | None) -> None:
    checks = {"accuracy": {"metric": "accuracy", "gate": {"min": 0.95}}}
    path, cache = suite(tmp_path, built, checks=checks), tmp_path / "cache"
    honest = run(path, cache)
    assert honest.results[0].status == "fail"  # type: ignore[attr-defined]
    assert forge_measurements(cache, mac_key) == 1
    again = run(path, cache)
    assert again.results[0].status == "fail"  # type: ignore[attr-defined]
    assert plain(again) == plain(honest)
    assert entries(again) == {"measurements/accuracy": "computed in this run"}


def test_without_a_key_measurements_are_computed(tmp_path: Path, built: dict[str, Path],
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    """A measurement cannot be re-verified by re-predicting a sample: with no key, none is
    reused (predictions still are, verified)."""
    monkeypatch.setenv(KEY_ENV, "")
    path, cache = suite(tmp_path, built, checks={"accuracy": CHECKS["accuracy"]}), tmp_path / "cache"
    run(path, cache)
    again = run(path, cache)
    assert entries(again) == {}
    assert again.artifacts()["cache"]["entries"]["teacher/eval"].startswith(
        "read from the cache, verified")


def test_a_reused_check_still_refuses_a_skops_file_the_suite_no_longer_trusts(
        tmp_path: Path, built: dict[str, Path]) -> None:
    path, cache = suite(tmp_path, built, checks={"accuracy": CHECKS["accuracy"]}), tmp_path / "cache"
    run(path, cache)
    raw = yaml.safe_load(path.read_text())
    raw["teacher"] = raw["teacher"]["skops"]  # the trust list removed
    path.write_text(yaml.safe_dump(raw))
    again = run(path, cache)
    result = again.results[0]  # type: ignore[attr-defined]
    assert result.status == "error"
    assert "sklearn.tree._tree.Tree" in (result.error or "")
    assert entries(again)["measurements/accuracy"].startswith("read from the cache")


def test_callables_are_never_reused(tmp_path: Path, built: dict[str, Path]) -> None:
    """A callable's behaviour may depend on files nothing hashes: its checks are measured on
    every run."""
    (tmp_path / "echo_model.py").write_text(
        "import numpy as np\n\n\ndef predict(X):\n"
        "    p = np.full(len(X), 0.8)\n    return np.column_stack([1 - p, p])\n")
    path = suite(tmp_path, built, checks={"accuracy": CHECKS["accuracy"]})
    raw = yaml.safe_load(path.read_text())
    raw["student"] = {"callable": "echo_model:predict", "classes": ["No", "Yes"]}
    path.write_text(yaml.safe_dump(raw))
    cache = tmp_path / "cache"
    run(path, cache)
    again = run(path, cache)
    assert entries(again) == {}
    assert again.results[0].status == "pass"  # type: ignore[attr-defined]


def test_the_terminal_summary_says_what_a_rerun_reused(tmp_path: Path, built: dict[str, Path]) -> None:
    from audit.report.terminal import format_summary

    path, cache = suite(tmp_path, built), tmp_path / "cache"
    first = run(path, cache)
    assert not any("cache:" in line for line in format_summary([(first.report(first.results), [])]))  # type: ignore[attr-defined]
    again = run(path, cache)
    lines = format_summary([(again.report(again.results), [])])  # type: ignore[attr-defined]
    assert lines[1] == ("  cache: 4 of 5 checks' measurements reused (authenticated); the rest "
                        "measured in this run")
