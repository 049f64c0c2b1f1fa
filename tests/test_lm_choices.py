"""Language models on multiple-choice items: each choice scored by its log-likelihood after the
context exactly as lm-evaluation-harness scores it (checked against a plain transformers loop,
and against lm-evaluation-harness itself when it is installed), items read from JSONL or from
the harness's ``--log_samples`` output, and every choice-level check run on the result."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from audit.data.items import read_items, template_fields
from audit.errors import DataError, SuiteError
from audit.runner import SuiteRun
from audit.suite import suite_from_dict

torch = pytest.importorskip("torch")
transformers = pytest.importorskip("transformers")


@pytest.fixture(scope="module")
def small() -> Path:
    from fixtures import lm

    return lm.build(small=True)["lm-small/cloze.jsonl"].parent


def lm_suite(folder: Path, items: Path, checks: dict[str, Any], teacher: Any = None,
             student: Any = None, **data: Any) -> Any:
    return suite_from_dict({
        "version": 1, "name": "lm",
        "data": {"eval": str(items), "target": "answer", **data},
        "teacher": teacher or {"causal_lm": str(folder / "teacher")},
        "student": student or {"causal_lm": str(folder / "student")},
        "settings": {"bootstrap": 300},
        "checks": checks}, base_dir=folder)


def plain_loglikelihood(folder: Path, context: str, continuation: str) -> float:
    """lm-evaluation-harness's log-likelihood of ``continuation`` after ``context``, with one
    unbatched forward pass of plain transformers (its tokenisation: trailing whitespace moves
    to the continuation, the whole string is tokenized and the continuation sliced off)."""
    model = transformers.AutoModelForCausalLM.from_pretrained(folder, local_files_only=True)
    tok = transformers.AutoTokenizer.from_pretrained(folder, local_files_only=True)
    spaces = len(context) - len(context.rstrip())
    if spaces:
        context, continuation = context[:-spaces], context[-spaces:] + continuation
    whole = tok(context + continuation)["input_ids"]
    n = len(whole) - len(tok(context)["input_ids"])
    ids = torch.tensor([whole[:-1]])
    with torch.no_grad():
        logp = torch.log_softmax(model.eval()(ids).logits[0], dim=-1)
    return float(sum(logp[len(whole) - 1 - n + t, whole[len(whole) - n + t]]
                     for t in range(n)))


def raw_scores(folder: Path, items: Path, who: str = "teacher") -> tuple[Any, np.ndarray]:
    """The items' table and ``who``'s log-likelihood of each choice (the audit's scorer)."""
    from audit.data.tables import load_table
    from audit.models.causal_lm import ChoiceScorer

    table = load_table(lm_suite(folder, items, {"a": {"metric": "accuracy"}}).data)
    model = transformers.AutoModelForCausalLM.from_pretrained(folder / who,
                                                              local_files_only=True).eval()
    tok = transformers.AutoTokenizer.from_pretrained(folder / who, local_files_only=True)
    scorer = ChoiceScorer(torch, model, tok, torch.device("cpu"), 2048, 8)
    return table, scorer(table.texts, table.choices)


def test_choice_scores_equal_a_plain_transformers_loop(small: Path, tmp_path: Path) -> None:
    from audit.data.tables import load_table
    from audit.models import load_model

    items = tmp_path / "items.jsonl"
    lines = (small / "cloze.jsonl").read_text().splitlines()[:6]
    first = json.loads(lines[0])
    first["context"] += " "  # a trailing space moves to the continuation
    items.write_text("\n".join([json.dumps(first), *lines[1:]]) + "\n")
    suite = lm_suite(small, items, {"a": {"metric": "accuracy"}},
                     teacher={"causal_lm": str(small / "teacher"), "batch_size": 5})
    table = load_table(suite.data)
    model = load_model(suite.teacher, "teacher")
    import audit.models.causal_lm as causal

    got = {}
    original = causal.ChoiceScorer.__call__

    def spy(self: Any, contexts: Any, continuations: Any) -> np.ndarray:
        got["ll"] = original(self, contexts, continuations)
        return got["ll"]

    causal.ChoiceScorer.__call__ = spy  # type: ignore[method-assign]
    try:
        p = model.predict_proba(table)
    finally:
        causal.ChoiceScorer.__call__ = original  # type: ignore[method-assign]
    want = np.array([[plain_loglikelihood(small / "teacher", table.texts[i], c)
                      for c in table.choices[i]] for i in range(table.n_rows)])
    assert np.allclose(got["ll"], want, rtol=0, atol=1e-4)
    e = np.exp(want - want.max(axis=1, keepdims=True))
    assert np.allclose(p, e / e.sum(axis=1, keepdims=True), atol=1e-6)


def test_accuracy_and_per_character_accuracy_are_the_harness_acc_and_acc_norm(
        small: Path, tmp_path: Path) -> None:
    items = small / "cloze.jsonl"
    checks = {"acc": {"metric": "accuracy"}}
    summed = SuiteRun(lm_suite(small, items, checks)).run_all()[0].measurements[0]
    norm = SuiteRun(lm_suite(small, items, checks,
                             teacher={"causal_lm": str(small / "teacher"), "scoring": "per_char"},
                             student={"causal_lm": str(small / "student"), "scoring": "per_char"})
                    ).run_all()[0].measurements[0]
    # by hand: argmax of the sums, and of the sums per character of the bare choice
    table, ll = raw_scores(small, items)
    answers = table.labels.to_numpy()
    assert summed.teacher.value == pytest.approx(float((ll.argmax(1) == answers).mean()))
    chars = np.array([[len(c.removeprefix(" ")) for c in row] for row in table.choices])
    assert norm.teacher.value == pytest.approx(float(((ll / chars).argmax(1) == answers).mean()))


LM_EVAL = shutil.which("lm_eval") or str(Path(sys.executable).parent / "lm_eval")


@pytest.mark.slow
@pytest.mark.skipif(not Path(LM_EVAL).exists(), reason="lm-evaluation-harness is not installed")
def test_the_scores_equal_lm_evaluation_harness_on_the_same_model_and_task(
        small: Path, tmp_path: Path) -> None:
    """lm_eval itself (0.4.13, offline, CPU) on the small teacher and the cloze items: its
    logged per-choice log-likelihoods equal ours (to float32 rounding: it batches by other
    widths), and the suite run on its --log_samples files gives its acc and acc_norm exactly."""
    items = tmp_path / "cloze.jsonl"
    items.write_text("".join((small / "cloze.jsonl").read_text().splitlines(keepends=True)[:40]))
    tasks = tmp_path / "tasks"
    tasks.mkdir()
    (tasks / "cloze.yaml").write_text(f"""\
task: audit_cloze
dataset_path: json
dataset_kwargs:
  data_files:
    test: {items}
test_split: test
output_type: multiple_choice
doc_to_text: "{{{{context}}}}"
doc_to_choice: "{{{{choices}}}}"
doc_to_target: answer
metric_list:
  - {{metric: acc, aggregation: mean, higher_is_better: true}}
  - {{metric: acc_norm, aggregation: mean, higher_is_better: true}}
""")
    logs = {}
    for who in ("teacher", "student"):
        out = tmp_path / f"out-{who}"
        env = {"HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1",
               "HF_HOME": str(tmp_path / "hf"), "PATH": str(Path(sys.executable).parent)}
        subprocess.run([LM_EVAL, "--model", "hf", "--model_args",
                        f"pretrained={small / who},dtype=float32", "--tasks", "audit_cloze",
                        "--include_path", str(tasks), "--device", "cpu", "--batch_size", "8",
                        "--log_samples", "--output_path", str(out)],
                       check=True, env=env, capture_output=True, timeout=600)
        logs[who] = next(out.glob("*/samples_audit_cloze_*.jsonl"))
    samples = [json.loads(line) for line in logs["teacher"].read_text().splitlines()]
    harness = np.array([[float(r[0]) for r in s["filtered_resps"]] for s in samples])
    table, ours = raw_scores(small, items)
    order = [s["doc_id"] for s in samples]
    # to float32 rounding: the harness pads its batches to other widths (4e-6 nats seen)
    np.testing.assert_allclose(ours[order], harness, rtol=0, atol=1e-4)
    assert (ours[order].argmax(1) == harness.argmax(1)).all()
    # the suite on the two --log_samples files: the harness's own acc and acc_norm
    for scoring, metric in (("sum", "acc"), ("per_char", "acc_norm")):
        run = SuiteRun(lm_suite(small, logs["teacher"], {"a": {"metric": "accuracy"}},
                                teacher={"lm_eval": str(logs["teacher"]), "scoring": scoring},
                                student={"lm_eval": str(logs["student"]), "scoring": scoring},
                                target="target")).run_all()[0]
        want = {who: np.mean([json.loads(line)[metric] for line in
                              logs[who].read_text().splitlines()]) for who in logs}
        m = run.measurements[0]
        assert (m.teacher.value, m.student.value) == pytest.approx(
            (want["teacher"], want["student"]), abs=1e-12), scoring


def test_the_choice_level_checks_run_and_the_overconfident_student_fails(small: Path) -> None:
    checks = {"accuracy": {"metric": "accuracy", "gate": {"max_regression": 0.2}},
              "agreement": {"metric": "agreement"},
              "kl": {"metric": "kl_divergence"},
              "flips": {"metric": "negative_flip_rate"},
              "calibration": {"metric": "ece", "gate": {"max_regression": 0.02}},
              "by_length": {"metric": "worst_group_accuracy", "by": ["length"]}}
    faithful = SuiteRun(lm_suite(small, small / "cloze.jsonl", checks, sensitive=["length"],
                                 student={"causal_lm": str(small / "teacher")})).run_all()
    assert {c.name: c.status.value for c in faithful} == {
        "accuracy": "pass", "agreement": "info", "kl": "info", "flips": "info",
        "calibration": "pass", "by_length": "info"}
    assert faithful[1].measurements[0].student.value == 1.0
    loud = SuiteRun(lm_suite(small, small / "cloze.jsonl", checks, sensitive=["length"],
                             student={"causal_lm": str(small / "overconfident")})).run_all()
    status = {c.name: c.status.value for c in loud}
    assert status["calibration"] == "fail", loud[4].measurements[0]
    assert all(c.status.value != "error" for c in loud), [c.error for c in loud]


def write(path: Path, *items: Any) -> Path:
    path.write_text("".join((i if isinstance(i, str) else json.dumps(i)) + "\n" for i in items))
    return path


ITEM = {"context": "Two and two make", "choices": ["four", "five"], "answer": 0}


@pytest.mark.parametrize(("lines", "message"), [
    ([ITEM, "{not json"], "items.jsonl:2: not a JSON object (Expecting property name enclosed in "
                          "double quotes: line 1 column 2 (char 1)); write one item per line as "
                          "a JSON object"),
    ([ITEM, [1, 2]], "items.jsonl:2: a JSON list, not an object; write one item per line as a "
                     "JSON object"),
    ([ITEM, {"context": "x", "answer": 0}],
     "items.jsonl:2: the item has no field 'choices' (fields: context, answer); add it, or name "
     "another with data.choices"),
    ([ITEM, {**ITEM, "choices": ["a", "b", "c"]}],
     "items.jsonl:2: 3 choices but the first item has 2; every item of a suite has the same "
     "number of choices (split the file by it)"),
    ([ITEM, {**ITEM, "answer": 2}], "items.jsonl:2: the answer 2 is neither a choice's index (0 "
                                    "to 1) nor one of the choices"),
    ([{**ITEM, "choices": ["four", ""]}], "items.jsonl:1: field 'choices' is not a list of "
                                          "non-empty strings"),
    ([], "items.jsonl: no items; write one JSON object per line"),
], ids=["json", "list", "no-choices", "choice-count", "answer", "empty-choice", "empty"])
def test_bad_items_are_named_by_their_line(tmp_path: Path, lines: list[Any], message: str,
                                           monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    path = write(tmp_path / "items.jsonl", *lines)
    with pytest.raises(DataError) as info:
        read_items(path)
    assert str(info.value) == message


def test_items_read_their_fields_the_answer_by_value_and_a_template(tmp_path: Path) -> None:
    path = write(tmp_path / "items.jsonl",
                 {"q": "Two and two make", "opts": ["four", "five"], "gold": "five", "topic": "x"})
    frame, answers, contexts, conts = read_items(path, template="Q: {q}\nA:", choices="opts",
                                                 target="gold")
    assert answers.tolist() == [1] and contexts.tolist() == ["Q: Two and two make\nA:"]
    assert conts[0] == (" four", " five") and frame.columns.tolist() == ["q", "topic"]


@pytest.mark.parametrize(("template", "message"), [
    ("{q.__class__}", "has the field {q.__class__}; a template names item fields only, as "
                      "{name} (no attribute, index, conversion or format)"),
    ("{q[0]}", "has the field {q[0]}; a template names item fields only, as {name} (no "
               "attribute, index, conversion or format)"),
    ("{q!r}", "has the field {q!r}; a template names item fields only, as {name} (no "
              "attribute, index, conversion or format)"),
    ("no fields", "names no item field; write e.g. \"Question: {question}\\nAnswer:\""),
    ("{q", "is not a valid template (expected '}' before end of string); write fields as "
           "{name} and a literal brace as {{ or }}"),
])
def test_a_template_runs_no_code(template: str, message: str) -> None:
    with pytest.raises(ValueError) as info:
        template_fields(template)
    assert str(info.value) == message


def test_what_a_suite_of_items_refuses_when_parsed(small: Path, tmp_path: Path) -> None:
    items = write(tmp_path / "items.jsonl", ITEM)
    with pytest.raises(SuiteError, match="is not a language model, and data.eval is a .jsonl"):
        lm_suite(small, items, {"a": {"metric": "accuracy"}},
                 student={"skops": str(tmp_path / "m.skops")})
    with pytest.raises(SuiteError, match="'robust_accuracy': does not apply here: this suite's "
                                         "models read multiple-choice items"):
        lm_suite(small, items, {"a": {"metric": "robust_accuracy"}})
    with pytest.raises(SuiteError, match=r"mia_auc reads data.train \(the rows the student was "
                                         r"trained on\), which the suite's data section does not "
                                         r"name; add data.train: <a .jsonl file of documents>"):
        lm_suite(small, items, {"a": {"metric": "mia_auc"}})
    with pytest.raises(SuiteError, match="a template names item fields only"):
        lm_suite(small, items, {"a": {"metric": "accuracy"}}, context="{context.__class__}")
    (tmp_path / "t.csv").write_text("x,answer\n1,0\n")
    with pytest.raises(SuiteError, match="scores multiple-choice items, but data.eval is a table"):
        lm_suite(small, tmp_path / "t.csv", {"a": {"metric": "accuracy"}})


def test_lm_eval_samples_join_item_by_item_and_refuse_another_task(small: Path,
                                                                   tmp_path: Path) -> None:
    """A --log_samples file written as the harness writes it: the suite's numbers are its."""
    def samples(ll: np.ndarray, hashes: list[str]) -> list[dict[str, Any]]:
        return [{"doc_id": i, "doc": {"topic": "t" if i % 2 else "u"}, "target": str(i % 3),
                 "arguments": {f"gen_args_{j}": {"arg_0": f"Q{i}", "arg_1": f" c{j}"}
                               for j in range(3)},
                 "filtered_resps": [[repr(float(v)), "False"] for v in ll[i]],
                 "doc_hash": hashes[i], "acc": float(ll[i].argmax() == i % 3)}
                for i in range(len(ll))]

    rng = np.random.default_rng(0)
    n = 60
    hashes = [f"h{i}" for i in range(n)]
    t_ll, s_ll = -rng.gamma(2, 2, (n, 3)), -rng.gamma(2, 2, (n, 3))
    teacher = write(tmp_path / "samples_t.jsonl", *samples(t_ll, hashes))
    student = write(tmp_path / "samples_s.jsonl", *reversed(samples(s_ll, hashes)))  # any order
    suite = lm_suite(small, teacher, {"acc": {"metric": "accuracy"},
                                      "agree": {"metric": "agreement"}},
                     teacher={"lm_eval": str(teacher)}, student={"lm_eval": str(student)},
                     target="target", sensitive=["topic"])
    acc, agree = SuiteRun(suite).run_all()
    gold = np.arange(n) % 3
    assert acc.measurements[0].teacher.value == pytest.approx((t_ll.argmax(1) == gold).mean())
    assert acc.measurements[0].student.value == pytest.approx((s_ll.argmax(1) == gold).mean())
    assert agree.measurements[0].student.value == pytest.approx(
        (t_ll.argmax(1) == s_ll.argmax(1)).mean())
    other = write(tmp_path / "samples_o.jsonl", *samples(s_ll, [*hashes[:7], "zz", *hashes[8:]]))
    (c,) = SuiteRun(lm_suite(small, teacher, {"acc": {"metric": "accuracy"}},
                             teacher={"lm_eval": str(teacher)}, student={"lm_eval": str(other)},
                             target="target")).run_all()
    assert c.status.value == "error"
    assert "doc_id 7 is another item than in" in c.error


@pytest.mark.slow
def test_the_lm_example_fails_on_its_real_finding(lm_pair: Path, tmp_path: Path) -> None:
    """suites/cloze-lm.audit.yaml on the full pair: the student is less accurate within its
    budget and agrees with its teacher on most items, but is clearly worse calibrated."""
    from audit import load_suite

    root = Path(__file__).resolve().parents[1]
    report = SuiteRun(load_suite(root / "suites" / "cloze-lm.audit.yaml")).report()
    status = {c.name: c.status.value for c in report.checks}
    assert status["accuracy"] == "pass" and status["agreement"] == "pass"
    assert status["calibration"] == "fail"
    accuracy = next(c for c in report.checks if c.name == "accuracy").measurements[0]
    assert accuracy.teacher.value > accuracy.student.value > 0.25  # both above chance
    # documents, pairs, membership, typos and speed: every check measured, none an error
    assert not [c.name for c in report.checks if c.status.value == "error"]
    by = {c.name: c.measurements[0] for c in report.checks}
    assert 0.1 < by["next_token"].student.value < by["acceptance"].student.value < 1
    assert by["bits_per_byte"].regression.ci[0] > 0  # the student predicts text worse
    # its teacher memorised its training passages (Min-K%++ AUC well above 0.5), it did not
    assert by["membership"].teacher.value > 0.7 > 0.6 > by["membership"].student.value
    assert any("the teacher leaks too" in n for n in by["membership"].notes)


def test_what_identifies_items_and_models_follows_how_they_are_read(small: Path,
                                                                     tmp_path: Path) -> None:
    """The items' hash (the prediction cache's key) covers the template and the choices field;
    a causal LM's covers a tokenizer of its own; ids and prompt fields are not features."""
    from audit.data.tables import load_table
    from audit.models.fingerprint import content_sha256

    items = write(tmp_path / "items.jsonl", {**ITEM, "id": "a", "topic": "x"},
                  {**ITEM, "id": "b", "topic": "y"})
    plain = lm_suite(small, items, {"a": {"metric": "accuracy"}})
    other = lm_suite(small, items, {"a": {"metric": "accuracy"}}, context="Q: {context}")
    assert load_table(plain.data).sha256 != load_table(other.data).sha256
    assert load_table(plain.data).features.columns.tolist() == ["topic"]
    shutil.copytree(small / "teacher", tmp_path / "tok")
    tokenized = lm_suite(small, items, {"a": {"metric": "accuracy"}},
                         teacher={"causal_lm": str(small / "teacher"),
                                  "tokenizer": str(tmp_path / "tok")})
    assert content_sha256(tokenized.teacher) != content_sha256(plain.teacher)


@pytest.mark.parametrize(("item", "message"), [
    ({**ITEM, "context": "Caf\ud83d"}, "items.jsonl:1: holds a character that is not text"),
], ids=["surrogate"])
def test_items_that_are_not_text_are_named(tmp_path: Path, item: Any, message: str,
                                           monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    path = tmp_path / "items.jsonl"
    path.write_text(json.dumps(item) + "\n")  # ensure_ascii: the surrogate as \\ud83d
    with pytest.raises(DataError, match=message):
        read_items(path)


def test_a_digit_answer_that_is_a_choice_names_that_choice(tmp_path: Path) -> None:
    path = write(tmp_path / "items.jsonl", {"context": "n", "choices": ["1", "2", "3"],
                                            "answer": "2"})
    assert read_items(path)[1].tolist() == [1]  # the choice "2", as the harness reads it


def test_a_continuation_longer_than_max_length_is_a_clear_error(small: Path,
                                                                tmp_path: Path) -> None:
    items = write(tmp_path / "items.jsonl", {**ITEM, "choices": ["four " * 20, "five"]})
    (c,) = SuiteRun(lm_suite(small, items, {"a": {"metric": "accuracy"}},
                             teacher={"causal_lm": str(small / "teacher"), "max_length": 8})
                    ).run_all()
    assert c.status.value == "error"
    assert "choice 1: the continuation is" in c.error and "more than max_length 8" in c.error


def test_a_context_that_starts_with_the_bos_text_gets_no_second_bos(small: Path) -> None:
    from audit.models.causal_lm import ChoiceScorer

    tok = transformers.AutoTokenizer.from_pretrained(small / "teacher", local_files_only=True)
    scorer = ChoiceScorer(torch, None, tok, None, 512, 1)
    ctx, cont = scorer.encode_pair(tok.bos_token + "The sky is", " blue")
    assert ctx.count(tok.bos_token_id) == 1 and ctx == scorer.encode_pair("The sky is", " b")[0]
