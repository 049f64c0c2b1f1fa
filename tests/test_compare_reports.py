"""The report comparison of ``benchmarks/compare_reports.py`` on small hand-made reports: a
changed interval is a difference, a changed timing or checkout path is not."""

from __future__ import annotations

import copy
import importlib.util
import json
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[1]


def _load() -> ModuleType:
    path = ROOT / "benchmarks" / "compare_reports.py"
    spec = importlib.util.spec_from_file_location("compare_reports", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


cr = _load()


def _report(checkout: str) -> dict[str, Any]:
    def est() -> dict[str, Any]:
        return {"value": 0.83, "ci": [0.81, 0.85]}

    return {
        "provenance": {"created": "2026-12-01T11:20:26+00:00", "git": {"commit": "a" * 40, "dirty": False},
                       "teacher": {"path": f"{checkout}/fixtures/build/arrests/teacher.skops"}},
        "checks": [
            {"name": "accuracy", "status": "pass", "details": {"seconds": 3.5},
             "measurements": [{"metric": "accuracy", "student": est(), "regression": est(),
                               "notes": [], "breakdown": []}],
             "gates": [{"kind": "min", "status": "pass", "reason": "", "threshold": 0.78}]},
            {"name": "latency", "status": "pass",
             "measurements": [{"metric": "latency_ms", "student": {"value": 0.5, "ci": [0.4, 0.6]},
                               "params": {"batch": 1}}],
             "gates": [{"kind": "max", "status": "pass", "threshold": 5.0}]},
        ],
    }


def test_a_changed_interval_is_reported_with_its_path() -> None:
    a, b = _report("/base"), _report("/base")
    b["checks"][0]["measurements"][0]["regression"]["ci"][1] = 0.8500000000000001
    assert cr.differences(a, b) == [
        ("checks[accuracy].measurements[0].regression.ci[1]", 0.85, 0.8500000000000001)]


@pytest.mark.parametrize("change", [
    pytest.param(lambda r: r["checks"][0]["details"].update(seconds=9.9), id="seconds"),
    pytest.param(lambda r: r["provenance"].update(created="2026-12-02T00:00:00+00:00"), id="created"),
    pytest.param(lambda r: r["provenance"]["git"].update(commit="b" * 40, dirty=True), id="commit"),
    pytest.param(lambda r: r["checks"][1]["measurements"][0]["student"].update(value=0.7), id="latency"),
    pytest.param(lambda r: r["checks"][1].update(status="fail"), id="latency-verdict"),
])
def test_a_changed_timing_is_not_reported(change: Any) -> None:
    a, b = _report("/base"), _report("/base")
    change(b)
    assert cr.differences(a, b) == []


@pytest.mark.parametrize("change, path", [
    (lambda r: r["checks"][1]["gates"][0].update(threshold=4.0), "checks[latency].gates[0].threshold"),
    (lambda r: r["checks"][1]["measurements"][0]["params"].update(batch=32),
     "checks[latency].measurements[0].params.batch"),
    (lambda r: r["checks"][0]["gates"][0].update(status="fail"), "checks[accuracy].gates[0].status"),
], ids=["timing-check-threshold", "timing-check-params", "gate-verdict"])
def test_what_is_not_a_timing_is_compared_even_in_a_timing_check(change: Any, path: str) -> None:
    a, b = _report("/base"), _report("/base")
    change(b)
    assert [d[0] for d in cr.differences(a, b)] == [path]


def test_an_empty_list_differs_from_a_filled_one() -> None:
    a, b = _report("/base"), _report("/base")
    b["checks"][0]["measurements"][0]["notes"].append("n")
    notes = "checks[accuracy].measurements[0].notes"
    assert cr.differences(a, b) == [(notes, [], "<absent>"), (f"{notes}[0]", "<absent>", "n")]


def test_a_value_of_another_type_differs() -> None:
    a, b = _report("/base"), _report("/base")
    b["checks"][0]["gates"][0]["threshold"] = "0.78"
    assert len(cr.differences(a, b)) == 1


def test_folders_are_compared_with_their_checkout_paths_normalised(tmp_path: Path) -> None:
    for name, checkout in (("a", "/tmp/base"), ("b", "/work/main")):
        folder = tmp_path / name
        folder.mkdir()
        (folder / "arrests.json").write_text(json.dumps(_report(checkout)))
        (folder / cr.MANIFEST).write_text(json.dumps({"checkout": checkout, "commit": name}))
    assert cr.compare_folders(tmp_path / "a", tmp_path / "b") == []
    assert cr.main([str(tmp_path / "a"), str(tmp_path / "b")]) == 0
    changed = copy.deepcopy(_report("/work/main"))
    changed["checks"][0]["status"] = "warn"
    (tmp_path / "b" / "arrests.json").write_text(json.dumps(changed))
    assert cr.compare_folders(tmp_path / "a", tmp_path / "b") == [
        ("arrests.json", "checks[accuracy].status", "pass", "warn")]
    assert cr.main([str(tmp_path / "a"), str(tmp_path / "b")]) == 1
    (tmp_path / "b" / "digits.json").write_text("{}")
    assert ("digits.json", "", "<absent>", "present") in cr.compare_folders(tmp_path / "a", tmp_path / "b")
