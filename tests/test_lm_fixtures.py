"""The causal language-model fixtures (fixtures/lm.py), on the small build: the folders load
offline, the planted overconfidence is exact, the data files are well formed and disjoint, the
teacher beats chance on the cloze items, and a rebuild from scratch gives the same bytes."""

from __future__ import annotations

import hashlib
import json
import re
from pathlib import Path
from typing import Any

import pytest

from fixtures import lm
from fixtures.vision import _deterministic_torch

torch = pytest.importorskip("torch")
transformers = pytest.importorskip("transformers")


@pytest.fixture(scope="module")
def small() -> Path:
    """The small build (built once, about 30 s on 2 cores, or reused from an earlier run)."""
    return lm.build(small=True)["lm-small/cloze.jsonl"].parent


def _rows(path: Path) -> list[dict[str, Any]]:
    lines = path.read_bytes().decode("utf-8").split("\n")
    assert lines[-1] == "", f"{path}: must end with a newline"
    rows = [json.loads(line) for line in lines[:-1]]
    assert all(isinstance(row, dict) for row in rows)
    return rows


def _model(folder: Path) -> Any:
    return transformers.AutoModelForCausalLM.from_pretrained(folder, local_files_only=True).eval()


def _tokenizer(folder: Path) -> Any:
    return transformers.AutoTokenizer.from_pretrained(folder, local_files_only=True)


def test_every_file_is_built(small: Path) -> None:
    assert sorted(lm.build(small=True)) == sorted(f"lm-small/{name}" for name in lm.FILES)
    assert all((small / name).is_file() for name in lm.FILES)


def test_rebuild_is_skipped_when_current(small: Path) -> None:
    before = (small / "manifest.json").stat().st_mtime_ns
    lm.build(small=True)
    assert (small / "manifest.json").stat().st_mtime_ns == before


@pytest.mark.parametrize("name", ["teacher", "student", "overconfident"])
def test_folders_load_offline(small: Path, name: str) -> None:
    model, tokenizer = _model(small / name), _tokenizer(small / name)
    assert type(model).__name__ == "LlamaForCausalLM"
    assert model.config.tie_word_embeddings is False
    assert model.config.vocab_size == len(tokenizer)
    assert (tokenizer.bos_token, tokenizer.eos_token, tokenizer.pad_token) == ("<s>", "</s>", "<pad>")
    encoded = tokenizer("The river -- a test")
    assert encoded["input_ids"][0] == tokenizer.bos_token_id
    assert tokenizer.decode(encoded["input_ids"], skip_special_tokens=True) == "The river -- a test"
    layers = {"teacher": 2, "student": 1, "overconfident": 1}[name]
    assert model.config.num_hidden_layers == layers


def test_models_share_one_tokenizer(small: Path) -> None:
    for name in ("tokenizer.json", "tokenizer_config.json"):
        assert len({(small / model / name).read_bytes() for model in ("teacher", "student",
                                                                      "overconfident")}) == 1


def test_overconfident_logits_are_three_times_the_students(small: Path) -> None:
    student, over = _model(small / "student"), _model(small / "overconfident")
    student_weights, over_weights = student.state_dict(), over.state_dict()
    assert student_weights.keys() == over_weights.keys()
    for key, value in student_weights.items():
        expected = value * lm.OVERCONFIDENCE if key == "lm_head.weight" else value
        assert torch.equal(over_weights[key], expected), key
    tokenizer = _tokenizer(small / "student")
    texts = [row["text"] for row in _rows(small / "documents.jsonl")[:4]]
    batch = tokenizer(texts, return_tensors="pt", padding=True)
    with torch.no_grad():
        ratio_of = student(**batch).logits * lm.OVERCONFIDENCE
        torch.testing.assert_close(over(**batch).logits, ratio_of, rtol=1e-5, atol=1e-5)


def test_cloze_items_are_well_formed(small: Path) -> None:
    items = _rows(small / "cloze.jsonl")
    assert len(items) == lm.PLANS["small"].counts["cloze"]
    assert len({item["id"] for item in items}) == len(items)
    train = {row["text"] for row in _rows(small / "train.jsonl")}
    vocabulary = {word for text in train for word in re.findall(r"[A-Za-z]+", text)}  # a superset
    passages = lm._load_passages()
    for item in items:
        choices, answer = item["choices"], item["answer"]
        assert len(choices) == 4 and len(set(choices)) == 4, item
        assert isinstance(answer, int) and 0 <= answer < 4, item
        assert all(re.fullmatch(r"[A-Za-z]+", choice) for choice in choices), item  # bare words
        assert all(choice in vocabulary for choice in choices), item
        assert item["length"] in {"short", "medium", "long"} and item["source"] == "boolq"
        assert not item["context"].endswith(" ")
        prefix = item["context"] + " " + choices[answer]
        sources = [p for p in passages if p.startswith(prefix)]  # passages of one article may
        assert sources and not set(sources) & train  # share their first sentences
        assert any(not p[len(prefix):len(prefix) + 1].isalpha() for p in sources), "a whole word"
    assert len({item["answer"] for item in items}) == 4


def test_membership_sets_are_disjoint(small: Path) -> None:
    sets = {name: _rows(small / f"{name}.jsonl")
            for name in ("train", "members", "nonmembers", "documents")}
    assert {name: len(rows) for name, rows in sets.items()} == {
        name: lm.PLANS["small"].counts[name] for name in sets}
    texts = {name: {row["text"] for row in rows} for name, rows in sets.items()}
    assert all(len(texts[name]) == len(rows) for name, rows in sets.items())
    assert texts["members"] <= texts["train"]
    assert not texts["nonmembers"] & texts["train"] and not texts["documents"] & texts["train"]
    assert not texts["nonmembers"] & texts["documents"]
    assert not {row["id"] for row in sets["members"]} & {row["id"] for row in sets["nonmembers"]}
    # held out by article: no non-member shares its title with a training passage
    titles = {text.split(" -- ")[0] for text in texts["train"]}
    assert not {text.split(" -- ")[0] for text in texts["nonmembers"]} & titles


def _accuracy(model: Any, tokenizer: Any, items: list[dict[str, Any]]) -> float:
    """Cloze accuracy scored item by item, independently of the builder's batching."""
    correct = 0
    for item in items:
        context = tokenizer(item["context"])["input_ids"]
        rows = [context + tokenizer(" " + choice, add_special_tokens=False)["input_ids"]
                for choice in item["choices"]]
        width = max(map(len, rows))
        ids = torch.tensor([row + [tokenizer.pad_token_id] * (width - len(row)) for row in rows])
        mask = torch.tensor([[1] * len(row) + [0] * (width - len(row)) for row in rows])
        with torch.no_grad():
            log_probs = torch.log_softmax(model(input_ids=ids, attention_mask=mask).logits, dim=-1)
        scores = [sum(float(log_probs[k, i - 1, row[i]]) for i in range(len(context), len(row)))
                  for k, row in enumerate(rows)]
        correct += int(max(range(4), key=scores.__getitem__) == item["answer"])
    return correct / len(items)


def test_teacher_beats_chance_on_cloze(small: Path) -> None:
    items = _rows(small / "cloze.jsonl")
    with _deterministic_torch():  # one thread: much faster for these tiny models on 2 cores
        accuracy = _accuracy(_model(small / "teacher"), _tokenizer(small / "teacher"), items)
    assert accuracy > 0.25 + 3 * (0.25 * 0.75 / len(items)) ** 0.5  # three standard errors
    metrics = json.loads((small / "manifest.json").read_text())["metrics"]
    assert metrics["teacher"]["cloze_accuracy"] == pytest.approx(accuracy, abs=0.02)
    assert metrics["student"]["kl_from_teacher"] < metrics["overconfident"]["kl_from_teacher"]


def test_mmlu_and_crows_pairs_are_well_formed(small: Path) -> None:
    mmlu = _rows(small / "mmlu.jsonl")
    assert len(mmlu) == lm.PLANS["small"].counts["mmlu"] and len({row["id"] for row in mmlu}) == len(mmlu)
    for item in mmlu:
        assert item["context"].endswith("\nAnswer:") and len(item["choices"]) == 4
        assert all(choice and not choice[0].isspace() for choice in item["choices"])
        assert item["answer"] in range(4)
    pairs = _rows(small / "crows_pairs.jsonl")
    assert len(pairs) == 1018
    assert all(row["more"] != row["less"] and "[MASK]" not in row["more"] + row["less"] for row in pairs)
    assert {row["bias_type"] for row in pairs} >= {"gender", "race-color", "religion"}


def _digests(folder: Path) -> dict[str, str]:
    return {name: hashlib.sha256((folder / name).read_bytes()).hexdigest() for name in lm.FILES}


@pytest.mark.slow
def test_rebuild_from_scratch_is_identical(small: Path, tmp_path: Path) -> None:
    rebuilt = lm.build(tmp_path, small=True)["lm-small/cloze.jsonl"].parent
    assert _digests(rebuilt) == _digests(small)
