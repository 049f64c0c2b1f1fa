"""What a run can decide and how many rows a gate needs (issue 13): the formulas against
scipy's normal quantiles and against simulation, the INCONCLUSIVE wording, ``plan``."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest
from scipy.stats import norm

from audit.cli import main
from audit.gates import evaluate_gate
from audit.plan import plan_rows
from audit.power import (
    rows_for_power,
    rows_for_power_exact,
    sigma_paired,
    sigma_proportion,
    sigma_two_proportions,
)
from audit.results import Estimate, Measurement
from audit.runner import AuditSession, SuiteRun
from audit.spec import GateSpec
from audit.stats import clopper_pearson, tango_interval
from audit.suite import load_suite
from fixtures.synthetic import small_arrests_suite


def closed_form(sigma: float, margin: float, confidence: float = 0.95, power: float = 0.8) -> int:
    """The textbook sample size, from scipy's quantiles."""
    z = norm.ppf(1 - (1 - confidence) / 2) + norm.ppf(power)
    return math.ceil((z * sigma / margin) ** 2)


@pytest.mark.parametrize("discordance, delta, threshold", [(0.10, 0.0, 0.03), (0.05, 0.0, 0.02),
                                                           (0.20, 0.01, 0.05), (0.30, 0.0, 0.10)])
def test_paired_proportions_match_mcnemars_closed_form(discordance: float, delta: float,
                                                        threshold: float) -> None:
    # McNemar: the paired difference's per-row variance is p_b + p_c - (p_b - p_c)^2
    sigma = math.sqrt(discordance - delta ** 2)
    assert sigma_paired(discordance, delta) == pytest.approx(sigma)
    assert rows_for_power(sigma_paired(discordance, delta), threshold - delta) == \
        closed_form(sigma, threshold - delta)


def test_one_and_two_proportions_match_their_closed_forms() -> None:
    assert rows_for_power(sigma_proportion(0.85), 0.05) == closed_form(math.sqrt(0.85 * 0.15), 0.05)
    # two groups of 30% and 70% of the rows, rates 0.40 and 0.45, detect 0.10
    sigma = sigma_two_proportions(0.40, 0.3, 0.45, 0.7)
    assert sigma == pytest.approx(math.sqrt(0.4 * 0.6 / 0.3 + 0.45 * 0.55 / 0.7))
    assert rows_for_power(sigma, 0.10, power=0.9) == closed_form(sigma, 0.10, power=0.9)


def test_no_rows_decide_an_effect_on_the_threshold() -> None:
    assert rows_for_power(0.3, 0.0) is None and rows_for_power(float("nan"), 0.1) is None


def test_the_paired_plan_gives_the_power_it_promises_in_simulation() -> None:
    """A faithful student (true regression 0, 10% of rows discordant) on the planned rows
    passes max_regression 0.03 judged by Tango's interval (what the gate uses) about 80% of
    the time."""
    n = rows_for_power(sigma_paired(0.10), 0.03)
    assert n == 873
    rng = np.random.default_rng(0)
    draws = rng.multinomial(n, [0.05, 0.05, 0.90], size=2000)  # b, c, concordant
    passed = 0
    for b, c, _ in draws:
        ci = tango_interval(int(b), int(c), n, 0.95)
        assert ci is not None
        passed += ci.high <= 0.03
    assert 0.76 <= passed / len(draws) <= 0.86, passed / len(draws)


@pytest.mark.parametrize("p, threshold, kind", [(0.96, 0.94, "min"), (0.83, 0.78, "min"),
                                                 (0.02, 0.04, "max")])
def test_the_one_proportion_plan_gives_the_power_it_promises_in_simulation(
        p: float, threshold: float, kind: str) -> None:
    """A bound on one proportion is judged by its exact (Clopper-Pearson) interval, which is
    conservative: at the normal approximation's rows a true 0.96 passes min 0.94 only ~68% of
    the time, so the plan searches the binomial exactly; on its rows the simulated power is
    80%."""
    approx = rows_for_power(sigma_proportion(p), abs(p - threshold))
    assert approx == closed_form(math.sqrt(p * (1 - p)), abs(p - threshold))
    n = rows_for_power_exact(p, threshold, kind)
    assert n is not None and n >= approx
    rng = np.random.default_rng(1)
    hits = rng.binomial(n, p, size=4000)
    cis = [clopper_pearson(int(k), n, 0.95) for k in hits]
    passed = [(ci.low >= threshold) if kind == "min" else (ci.high <= threshold)
              for ci in cis if ci is not None]
    assert 0.77 <= np.mean(passed) <= 0.86, np.mean(passed)


def _paired_measurement() -> Measurement:
    # 400 rows, 24 discordant (b=14, c=10): regression +0.01 [-0.011, +0.031] (Tango)
    b, c, n = 14, 10, 400
    ci = tango_interval(b, c, n, 0.95)
    assert ci is not None
    return Measurement(metric="accuracy", direction="higher", n=n,
                       teacher=Estimate(0.80), student=Estimate(0.79),
                       regression=Estimate((b - c) / n, (ci.low, ci.high)),
                       family="performance",
                       evidence={"confidence": 0.95, "unit": "eval rows", "trials": n,
                                 "paired": n, "discordant": b + c})


def test_an_inconclusive_gate_says_what_the_run_decides_and_the_rows_it_needs() -> None:
    m = _paired_measurement()
    (gate,) = evaluate_gate(GateSpec(max_regression=0.03), m)
    assert gate.status == "inconclusive"
    assert m.regression is not None and m.regression.ci is not None
    assert gate.decidable == m.regression.ci[1]
    # independent: McNemar's variance at the observed discordance and difference
    sigma = math.sqrt(24 / 400 - 0.01 ** 2)
    assert gate.rows_needed == closed_form(sigma, 0.03 - 0.01)
    assert (f"with 400 eval rows this run can only show regression <= {m.regression.ci[1]:.4g}; "
            f"about {gate.rows_needed:,} eval rows would show regression <= 0.03 with 80% power, "
            "if the regression stays at +0.01 with this spread (paired proportions, from the "
            "discordant rows; normal approximation)") in gate.reason
    assert evaluate_gate(GateSpec(max_regression=0.2), m)[0].decidable is None  # decided: pass


@pytest.fixture(scope="module")
def small(tmp_path_factory: pytest.TempPathFactory, built: dict[str, Path]) -> Path:
    return small_arrests_suite(tmp_path_factory.mktemp("small"), built["arrests/eval.csv"].parent)


def test_on_400_rows_every_inconclusive_verdict_carries_both_numbers(small: Path) -> None:
    """The issue's case: a realistic gate on 400 rows of a real dataset blocks a faithful
    student as INCONCLUSIVE; each such verdict names what the run can decide and the rows
    that would decide it, both equal to an independent computation."""
    run = SuiteRun(load_suite(small), AuditSession(None))
    results = run.run_all()
    undecided = [(r, g) for r in results for g in r.gates if g.status == "inconclusive"]
    assert len(undecided) >= 4
    for r, g in undecided:
        m = next(m for m in r.measurements if m.scope == g.scope)
        est = m.student if g.kind in ("min", "max") else m.regression
        assert est is not None and est.ci is not None
        assert g.decidable == (est.ci[1] if g.kind != "min" else est.ci[0])
        assert "this run can only show" in g.reason and "80% power" in g.reason
        ev = m.evidence
        if g.kind == "max_regression" and "discordant" in ev:
            sigma = math.sqrt(ev["discordant"] / ev["paired"] - est.value ** 2)
        elif g.kind in ("min", "max") and "trials" in ev:
            if (est.value >= g.threshold) == (g.kind == "min"):  # the exact search
                assert g.rows_needed == rows_for_power_exact(est.value, g.threshold, g.kind)
                continue
            sigma = math.sqrt(est.value * (1 - est.value))
        else:  # from the interval's half-width on the threshold's side
            half = (est.ci[1] - est.value) if g.threshold >= est.value else (est.value - est.ci[0])
            sigma = half * math.sqrt(m.n) / norm.ppf(0.975)
        assert g.rows_needed == closed_form(sigma, abs(est.value - g.threshold)), (r.name, g)


def test_plan_prints_the_rows_each_gate_needs(small: Path, tmp_path: Path,
                                              capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["plan", str(small), "--cache-dir", str(tmp_path / "cache")]) == 0
    out = capsys.readouterr().out
    assert out.startswith("rows each gate needs to pass a faithful student with 80% power:")
    run = SuiteRun(load_suite(small), AuditSession(None))
    results = run.run_all()
    acc = next(r for r in results if r.name == "accuracy")
    ev = acc.measurements[0].evidence
    # a faithful student: true regression 0, the pilot's discordance
    expected = closed_form(math.sqrt(ev["discordant"] / ev["paired"]), 0.03)
    rows = {(p.check, p.bound): p for p in plan_rows(results)}
    plan = rows[("accuracy", "accuracy regression (teacher - student) <= 0.03")]
    assert plan.rows_needed == expected and plan.rows_now == 400
    assert (f"  accuracy: accuracy regression (teacher - student) <= 0.03: now 400, needs "
            f"{expected:,} eval rows\n      (a true regression of 0; spread from paired "
            f"proportions (McNemar), {ev['discordant']} of 400 pilot rows discordant)\n") in out
    # a stated true regression needs more rows; higher power too
    assert plan_rows(results, regression=0.01)[0].rows_needed == closed_form(
        math.sqrt(ev["discordant"] / ev["paired"] - 0.01 ** 2), 0.02)
    assert plan_rows(results, power=0.9)[0].rows_needed > expected


def test_plan_reads_a_pilot_report_too(small: Path, tmp_path: Path,
                                       capsys: pytest.CaptureFixture[str]) -> None:
    report = tmp_path / "pilot.json"
    assert main(["run", str(small), "--no-cache", "-q", "--json", str(report)]) in (0, 1)
    capsys.readouterr()
    assert main(["plan", str(report)]) == 0
    from_json = capsys.readouterr().out
    assert main(["plan", str(small), "--cache-dir", str(tmp_path / "cache")]) == 0
    assert capsys.readouterr().out == from_json
    assert json.loads(report.read_text())["checks"][0]["gates"][0]["rows_needed"] > 400


def test_plan_refuses_a_power_below_a_half(small: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["plan", str(small), "--power", "0.3"]) == 2
    assert capsys.readouterr().err == "error: --power 0.3: must be in [0.5, 1)\n"


def test_the_html_and_the_example_suite_carry_both_numbers(small: Path, built: dict[str, Path]) -> None:
    from audit.report.html import render_html

    run = SuiteRun(load_suite(small), AuditSession(None))
    report = run.report()
    html = render_html(report.to_dict())
    undecided = [g for c in report.checks for g in c.gates if g.status == "inconclusive"]
    assert undecided
    for g in undecided:
        assert "this run can only show" in g.reason
        # the generic sentence, or (fairness) the family's, which gives the same total
        assert (f"about {g.rows_needed:,} eval rows would" in html
                or f"or {g.rows_needed:,} eval rows at today&#39;s group shares" in html)
    # the example suite's two undecided warn gates (parity by sex, by colour x sex)
    example = Path(__file__).resolve().parents[1] / "suites" / "arrests.audit.yaml"
    results = SuiteRun(load_suite(example), AuditSession(None)).run_all()
    gates = [g for r in results for g in r.gates if g.status == "inconclusive"]
    assert gates and all(g.decidable is not None and g.rows_needed for g in gates), gates


def test_an_undecided_fairness_gate_names_the_group_that_limits_it(small: Path) -> None:
    """The fairness family adds which group carries the spread and the rows it would need
    (audit.checks.group_bounds.rows_to_decide); its total equals the gate's rows_needed."""
    results = {r.name: r for r in SuiteRun(load_suite(small), AuditSession(None)).run_all()}
    (gate,) = results["parity"].gates
    assert gate.status == "inconclusive" and gate.rows_needed is not None
    assert "sex=" in gate.reason and "of this amplification's spread: about " in gate.reason
    assert f"or {gate.rows_needed:,} eval rows at today's group shares" in gate.reason


def test_plan_never_asks_for_fewer_rows_than_a_run_judges(tmp_path: Path, built: dict[str, Path],
                                                          capsys: pytest.CaptureFixture[str]) -> None:
    """On a 2-row pilot with no discordant row the spread is 0, so the power formula alone
    would say 1 row; a run needs 125 rows to show max_regression 0.03 (Tango, no discordant
    row) and 30 to judge anything: plan says so."""
    from audit.stats import rows_to_pass

    path = small_arrests_suite(tmp_path / "two", built["arrests/eval.csv"].parent, rows=2)
    rows = {(p.check, p.bound): p for p in plan_rows(
        SuiteRun(load_suite(path), AuditSession(None)).run_all())}
    acc = rows[("accuracy", "accuracy regression (teacher - student) <= 0.03")]
    assert acc.rows_needed == rows_to_pass("max_regression", 0.03, 0.95) == 125
    assert acc.how.endswith("raised to the 125 eval rows a run needs to judge it")
    assert all(r.rows_needed is None or r.rows_needed == 0 or r.rows_needed >= 30
               for r in rows.values())


def test_plan_lists_timing_gates_and_fails_when_nothing_can_be_planned(
        tmp_path: Path, built: dict[str, Path], capsys: pytest.CaptureFixture[str]) -> None:
    import yaml

    path = small_arrests_suite(tmp_path / "t", built["arrests/eval.csv"].parent)
    raw = yaml.safe_load(path.read_text())
    raw["checks"] = {"speed": {"metric": "speedup", "gate": {"min": 2}},
                     "acc": {"metric": "accuracy", "gate": {"min": 0.5}}}
    path.write_text(yaml.safe_dump(raw))
    assert main(["plan", str(path), "--cache-dir", str(tmp_path / "cache")]) == 0
    out = capsys.readouterr().out
    assert ("  speed: speedup min 2: needs -\n      (a timing: its n counts timed calls, not "
            "eval rows; more rows do not decide it)\n") in out
    raw["checks"] = {"acc": {"metric": "accuracy", "gate": {"min": 0.5}}}
    raw["data"]["target"] = "nope"
    path.write_text(yaml.safe_dump(raw))
    assert main(["plan", str(path), "--cache-dir", str(tmp_path / "cache")]) == 1
    err = capsys.readouterr().err
    assert err.splitlines()[-1] == "error: no gate to plan: acc could not run (fix them first)"
