"""Choice-level perturbations of language models: typos in the contexts (the text edits) and
the answer order of items whose context lists their options (``data.options``), checked by
hand against the models' own scores."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from audit.checks.registry import get_metric
from audit.data.items import read_items, render_options, with_options
from audit.errors import SuiteError
from audit.gates import evaluate_gate
from audit.probes.artifacts import ChoiceOrders
from audit.probes.choice_edits import typo_text
from audit.runner import SuiteRun
from audit.spec import GateSpec
from audit.suite import suite_from_dict

torch = pytest.importorskip("torch")
pytest.importorskip("transformers")


@pytest.fixture(scope="module")
def small() -> Path:
    from fixtures import lm

    return lm.build(small=True)["lm-small/cloze.jsonl"].parent


def lettered(small: Path, tmp_path: Path, n: int = 40) -> Path:
    """The cloze items with their choices listed in the context as lettered options."""
    path = tmp_path / "lettered.jsonl"
    rows = [json.loads(line) for line in (small / "cloze.jsonl").read_text().splitlines()[:n]]
    path.write_text("".join(json.dumps({"id": r["id"], "context": r["context"],
                                        "options": r["choices"], "answer": r["answer"]}) + "\n"
                            for r in rows), encoding="utf-8")
    return path


def lm_suite(small: Path, items: Path, checks: dict[str, Any], **data: Any) -> Any:
    return suite_from_dict({
        "version": 1, "name": "perturb",
        "data": {"eval": str(items), "target": "answer", **data},
        "teacher": {"causal_lm": str(small / "teacher")},
        "student": {"causal_lm": str(small / "student")},
        "settings": {"bootstrap": 200}, "checks": checks}, base_dir=items.parent)


def test_typos_are_seeded_edits_of_letters() -> None:
    rng = np.random.default_rng(0)
    text, made = typo_text("the quick brown fox", 3, ("swap", "drop"), rng)
    assert len(made) == 3 and text != "the quick brown fox"
    again = typo_text("the quick brown fox", 3, ("swap", "drop"), np.random.default_rng(0))
    assert again == (text, made)
    assert typo_text("12 34", 2, ("swap",), rng) == ("12 34", ())  # no letters: nothing to edit


def test_typo_checks_equal_a_rescoring_by_hand(small: Path, tmp_path: Path) -> None:
    from audit.data.tables import load_table
    from audit.models import load_model

    items = tmp_path / "items.jsonl"
    items.write_text("\n".join((small / "cloze.jsonl").read_text().splitlines()[:30]) + "\n")
    checks = {"acc": {"metric": "typo_accuracy", "samples": 20, "typos": 4},
              "same": {"metric": "typo_consistency", "samples": 20, "typos": 4}}
    suite = lm_suite(small, items, checks)
    got = {r.name: r.measurements[0] for r in SuiteRun(suite).run_all()}
    table = load_table(suite.data)
    rows = np.sort(np.random.default_rng(suite.settings.seed).choice(table.n_rows, 20,
                                                                     replace=False))
    rng = np.random.default_rng([suite.settings.seed, 11])
    edited = [typo_text(str(t), 4, ("swap", "drop", "insert", "keyboard"), rng)[0]
              for t in table.texts[rows]]
    y = table.labels.to_numpy()[rows]
    for who in ("teacher", "student"):
        model = load_model(getattr(suite, who), who)
        clean = model.predict_proba(table.take(rows)).argmax(axis=1)
        typo = model.predict_proba(table.take(rows).with_inputs(edited)).argmax(axis=1)
        assert getattr(got["acc"], who).value == pytest.approx(np.mean(typo == y))
        assert getattr(got["same"], who).value == pytest.approx(np.mean(typo == clean))
    shown = [r for r in got["acc"].breakdown if r["kind"] == "typo_example"]
    assert shown and shown[0]["edited"] == edited[0] and len(shown[0]["edits"]) == 4


def test_lettered_options_render_as_the_harness_mmlu_prompt(tmp_path: Path) -> None:
    path = tmp_path / "items.jsonl"
    path.write_text(json.dumps({"q": "Capital of France?", "opts": ["Rome", "Paris"],
                                "answer": "Paris"}) + "\n" +
                    json.dumps({"q": "2+2?", "opts": ["4", "5"], "answer": "A"}) + "\n",
                    encoding="utf-8")
    frame, answers, contexts, conts = read_items(path, template="{q}\n{opts}\nAnswer:",
                                                 options="opts")
    assert contexts[0] == "Capital of France?\nA. Rome\nB. Paris\nAnswer:"
    assert conts[0] == (" A", " B") and answers.tolist() == [1, 0]
    assert render_options(["x", "y", "z"]) == "A. x\nB. y\nC. z"
    layout = ("Q\n", "\nAnswer:", ("x", "y", "z"))
    assert with_options(layout, [1, 2, 0]) == "Q\nA. y\nB. z\nC. x\nAnswer:"


def test_order_checks_map_picks_back_to_the_options(small: Path, tmp_path: Path) -> None:
    from audit.data.tables import load_table
    from audit.models import load_model

    items = lettered(small, tmp_path, 16)
    data = {"options": "options", "context": "{context}\n{options}\nAnswer:"}
    checks = {"same": {"metric": "order_consistency", "samples": 16},
              "circular": {"metric": "circular_accuracy", "samples": 16},
              "letters": {"metric": "accuracy"}}
    suite = lm_suite(small, items, checks, **data)
    got = {r.name: r.measurements[0] for r in SuiteRun(suite).run_all()}
    table = load_table(suite.data)
    y = table.labels.to_numpy()
    for who in ("teacher", "student"):
        model = load_model(getattr(suite, who), who)
        picks = np.zeros((table.n_rows, 4), dtype=int)
        for r in range(4):
            order = [(j + r) % 4 for j in range(4)]
            moved = table.with_inputs([with_options(lay, order) for lay in table.layouts])
            picks[:, r] = (model.predict_proba(moved).argmax(axis=1) + r) % 4
        assert getattr(got["same"], who).value == pytest.approx(
            np.mean(np.all(picks == picks[:, :1], axis=1)))
        assert getattr(got["circular"], who).value == pytest.approx(
            np.mean(np.all(picks == y[:, None], axis=1)))
    # the tiny pair reads no options: each answers one letter whatever it says (the position
    # bias a consistency gate exists for)
    rates = {r["model"]: r for r in got["same"].breakdown if r["kind"] == "positions"}
    assert max(rates["teacher"][f"picks_{c}"] for c in "ABCD") > 0.9


def _orders(picks: dict[str, np.ndarray], y: np.ndarray) -> Any:
    from audit.checks.measure import measure_all

    class Resampler:
        n_boot, seed = 200, 0

    art = ChoiceOrders(rows=len(y), k=picks["teacher"].shape[1], y=y, picks=picks)
    inputs = type("I", (), {"artifacts": {"choice_orders": art}})()
    return {name: measure_all(get_metric(name), {}, inputs, Resampler(), 0.95)[0]
            for name in ("order_consistency", "circular_accuracy")}


def test_a_position_biased_student_loses_consistency_its_teacher_keeps() -> None:
    n, k = 60, 4
    y = np.arange(n) % k
    content = np.repeat(y[:, None], k, axis=1)  # the teacher picks the right option every time
    letter_a = np.array([[r % k for r in range(k)]] * n)  # position A shows option r
    m = _orders({"teacher": content, "student": letter_a}, y)
    assert m["order_consistency"].teacher.value == 1.0
    assert m["order_consistency"].student.value == 0.0
    assert m["order_consistency"].regression.value == 1.0
    assert m["circular_accuracy"].teacher.value == 1.0
    pos = {r["model"]: r for r in m["order_consistency"].breakdown}
    assert pos["student"]["picks_A"] == 1.0 and pos["teacher"]["largest_excess"] == 0.0
    gate = GateSpec(max_regression=0.1)
    assert [g.status.value for g in evaluate_gate(gate, m["order_consistency"])] == ["fail"]
    fair = _orders({"teacher": content, "student": content}, y)["order_consistency"]
    assert [g.status.value for g in evaluate_gate(gate, fair)] == ["pass"]


@pytest.mark.parametrize("data, message", [
    ({"options": "options", "choices": "choices", "context": "{context}\n{options}"},
     "data.options='options': and data.choices both name the choices"),
    ({"options": "options", "context": "{context}"},
     "data.options='options': must be named once in data.context, as {options}"),
], ids=["both", "not-in-template"])
def test_bad_option_settings(small: Path, tmp_path: Path, data: dict[str, Any],
                             message: str) -> None:
    with pytest.raises(SuiteError) as err:
        lm_suite(small, lettered(small, tmp_path, 3), {"a": {"metric": "accuracy"}}, **data)
    assert message in str(err.value)


def test_order_checks_need_listed_options(small: Path) -> None:
    got = SuiteRun(lm_suite(small, small / "cloze.jsonl",
                            {"o": {"metric": "order_consistency"}})).run_all()[0]
    assert got.status == "error"
    assert "name the field of options with data.options" in got.error
