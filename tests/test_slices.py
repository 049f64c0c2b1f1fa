"""Slice discovery: a student broken only in one region is found there, first; a faithful
student yields no significant slice."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml
from scipy import stats

from audit import SuiteRun, load_suite
from audit.checks.slices import conditions, discover

ROOT = Path(__file__).resolve().parents[1]


def _pair(folder: Path, broken: np.ndarray | None, n: int = 4000, seed: int = 0) -> Path:
    rng = np.random.default_rng(seed)
    frame = pd.DataFrame({"age": rng.integers(18, 80, n), "score": rng.normal(size=n),
                          "region": rng.choice(["north", "south", "east", "west"], n)})
    logit = 1.5 * frame["score"].to_numpy()
    y = rng.random(n) < 1 / (1 + np.exp(-logit))
    frame["label"] = np.where(y, "Yes", "No")
    p_t = 1 / (1 + np.exp(-logit))
    p_s = p_t.copy()
    mask = broken(frame) if broken is not None else np.zeros(n, bool)
    p_s[mask] = 1 - p_s[mask]  # the student flips its decisions inside the region
    folder.mkdir(parents=True, exist_ok=True)
    frame.to_csv(folder / "eval.csv", index=False)
    for name, p in (("teacher", p_t), ("student", p_s)):
        pd.DataFrame({"p_No": 1 - p, "p_Yes": p}).to_csv(folder / f"{name}.csv", index=False)

    def model(name: str) -> dict:
        return {"predictions": f"{name}.csv", "columns": ["p_No", "p_Yes"], "classes": ["No", "Yes"]}

    raw = {"version": 1, "name": "slices", "data": {"eval": "eval.csv", "target": "label"},
           "teacher": model("teacher"), "student": model("student"),
           "checks": {"slices": {"metric": "slice_regression", "gate": {"max": 0.05}}}}
    path = folder / "slices.audit.yaml"
    path.write_text(yaml.safe_dump(raw))
    return path


def test_conditions_bin_numeric_columns_and_list_categories() -> None:
    frame = pd.DataFrame({"x": np.arange(100, dtype=float), "c": ["a", "b"] * 50})
    (xname, xcodes, xlabels), (cname, ccodes, clabels) = conditions(frame, bins=4)
    assert xlabels == ["x < 24.75", "24.75 <= x < 49.5", "49.5 <= x < 74.25", "x >= 74.25"]
    assert np.bincount(xcodes).tolist() == [25, 25, 25, 25]
    assert clabels == ["c = a", "c = b"] and ccodes[:2].tolist() == [0, 1]


def test_mcnemar_p_values_and_benjamini_hochberg() -> None:
    rng = np.random.default_rng(1)
    n = 600
    t_right = rng.random(n) < 0.8
    s_right = t_right.copy()
    s_right[:60] = False  # the student is wrong on the first 60 rows
    features = pd.DataFrame({"g": np.where(np.arange(n) < 100, "first", "rest")})
    found = discover(t_right, s_right, features, bins=5, min_size=50, max_conditions=1, fdr=0.05)
    first = next(s for s in found if s["slice"] == "g = first")
    b = int((t_right[:100] & ~s_right[:100]).sum())
    assert (first["b"], first["c"]) == (b, 0)
    assert first["p_value"] == pytest.approx(stats.binomtest(b, b, 0.5, alternative="greater").pvalue)
    q = stats.false_discovery_control([s["p_value"] for s in found])
    assert sorted(s["q_value"] for s in found) == pytest.approx(sorted(q))
    assert found[0]["slice"] == "g = first" and found[0]["significant"]


def test_the_planted_region_ranks_first(tmp_path: Path) -> None:
    def region(frame: pd.DataFrame) -> np.ndarray:
        return ((frame["region"] == "east") & (frame["age"] >= 60)).to_numpy()

    run = SuiteRun(load_suite(_pair(tmp_path, region)))
    result = run.run_check("slices")
    assert result.status == "fail"
    m = result.measurements[0]
    top = m.breakdown[0]
    assert top["significant"] and top["rank"] == 1
    assert "region = east" in top["slice"] and "age" in top["slice"]
    assert m.student.value == pytest.approx(top["regression"]) and m.student.value > 0.3
    assert top["teacher_accuracy"] > top["student_accuracy"]
    low, high = top["regression_ci"]
    assert low <= top["regression"] <= high


def test_a_faithful_student_yields_no_significant_slice(tmp_path: Path) -> None:
    result = SuiteRun(load_suite(_pair(tmp_path, None))).run_check("slices")
    assert result.status == "pass"
    m = result.measurements[0]
    assert m.student.value == 0.0 and not any(r["significant"] for r in m.breakdown)
    assert m.notes[0].startswith("no slice where the student is significantly worse")


def test_the_faithful_example_student_has_no_significant_slice(built: dict) -> None:
    run = SuiteRun(load_suite(ROOT / "suites" / "arrests.audit.yaml"))
    result = run.check("slices", {"metric": "slice_regression", "gate": {"max": 0.05}})
    assert result.status == "pass", result.measurements[0].notes
