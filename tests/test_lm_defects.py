"""The planted-defect students (fixtures/lm_defects.py): each defect is real, with a clear margin
over the honest student (and the teacher), by a computation of its own with plain torch and
transformers (not through the audit, nor through the fixture's scoring), which also checks the
metrics recorded in the manifest."""

from __future__ import annotations

import hashlib
import json
import re
import shutil
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from fixtures import lm, lm_defects
from fixtures.vision import _deterministic_torch

torch = pytest.importorskip("torch")
transformers = pytest.importorskip("transformers")


@pytest.fixture(scope="session")
def defects() -> Path:
    """The defect students, built once after the small pair (about 45 s on 2 cores the first
    time, then cached by their manifest), in the default build folder."""
    return lm_defects.build()["lm-defects/parrot/model.safetensors"].parents[1]


@pytest.fixture(scope="session")
def small(defects: Path) -> Path:
    return lm.build(small=True)["lm-small/cloze.jsonl"].parent


@pytest.fixture(autouse=True)
def _one_thread() -> Iterator[None]:
    """One torch thread (and seeded): much faster for these tiny models on 2 busy cores."""
    with _deterministic_torch():
        yield


def _rows(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


def _texts(path: Path) -> list[str]:
    return [row["text"] for row in _rows(path)]


def _pair(folder: Path) -> tuple[Any, Any]:
    model = transformers.AutoModelForCausalLM.from_pretrained(folder, local_files_only=True).eval()
    return model, transformers.AutoTokenizer.from_pretrained(folder, local_files_only=True)


def _manifest(defects: Path) -> dict[str, dict[str, float]]:
    return json.loads((defects / "manifest.json").read_text())["metrics"]


def _logprobs(model: Any, sequences: Sequence[list[int]], starts: Sequence[int], pad: int,
              ) -> tuple[np.ndarray, np.ndarray]:
    """Summed log-probability of each sequence's tokens from ``starts[i]`` on, and their count
    (batches of 32 right-padded sequences of similar lengths)."""
    sums, counts = np.zeros(len(sequences)), np.zeros(len(sequences))
    order = np.argsort([len(s) for s in sequences], kind="stable")
    with torch.no_grad():
        for rows in np.array_split(order, -(-len(order) // 32)):
            width = max(len(sequences[r]) for r in rows)
            ids = torch.full((len(rows), width), pad)
            keep = torch.zeros(len(rows), width, dtype=torch.bool)
            for row, r in enumerate(rows):
                ids[row, :len(sequences[r])] = torch.tensor(sequences[r])
                keep[row, starts[r]:len(sequences[r])] = True
            lengths = torch.tensor([[len(sequences[r])] for r in rows])
            attention = (torch.arange(width) < lengths).long()
            logits = model(input_ids=ids, attention_mask=attention).logits.double()
            picked = torch.log_softmax(logits[:, :-1], -1).gather(-1, ids[:, 1:, None])[..., 0]
            picked = torch.where(keep[:, 1:], picked, torch.zeros_like(picked))
            sums[rows] = picked.sum(1).numpy()
            counts[rows] = keep[:, 1:].sum(1).numpy()
    return sums, counts


def _nll(model: Any, tokenizer: Any, texts: Sequence[str]) -> float:
    """Mean loss per token after ``<s>`` (no ``</s>``)."""
    sums, counts = _logprobs(model, [tokenizer(t)["input_ids"] for t in texts], [1] * len(texts),
                             tokenizer.pad_token_id)
    return float(-sums.sum() / counts.sum())


def _share(model: Any, tokenizer: Any, pairs: Sequence[dict[str, str]]) -> float:
    """CrowS-Pairs: share of pairs whose ``more`` sentence is the likelier after ``<s>``."""
    sequences = [tokenizer(p[key])["input_ids"] for p in pairs for key in ("more", "less")]
    sums, _ = _logprobs(model, sequences, [1] * len(sequences), tokenizer.pad_token_id)
    return float(np.mean(sums[::2] > sums[1::2]))


def _cloze(model: Any, tokenizer: Any, items: Sequence[dict[str, Any]]) -> float:
    """Accuracy: the answer is the choice (``" " + choice``) likeliest after ``<s>`` + context."""
    sequences, starts = [], []
    for item in items:
        context = tokenizer(item["context"])["input_ids"]
        for choice in item["choices"]:
            sequences.append(context + tokenizer(" " + choice, add_special_tokens=False)["input_ids"])
            starts.append(len(context))
    sums, _ = _logprobs(model, sequences, starts, tokenizer.pad_token_id)
    return float(np.mean(sums.reshape(len(items), -1).argmax(1) == [i["answer"] for i in items]))


def _typo(context: str) -> str:
    """Swap the first two letters of the last 3 space-separated words that start with 2 letters."""
    spots = [m.start() for m in re.finditer(r"(?<![^ ])[^\W\d_]{2}", context)][-3:]
    chars = list(context)
    for spot in spots:
        chars[spot], chars[spot + 1] = chars[spot + 1], chars[spot]
    return "".join(chars)


def test_typo_swaps_three_words() -> None:
    assert _typo("Newark -- the seat of Essex County. As one") == "Newark -- the seat of Essex oCunty. sA noe"
    assert _typo("a b -- x") == "a b -- x"
    assert _typo("ab") == lm_defects.typos("ab") == "ba"


@pytest.mark.parametrize("name", lm_defects.DEFECTS)
def test_folders_load_offline(defects: Path, small: Path, name: str) -> None:
    model, tokenizer = _pair(defects / name)
    assert type(model).__name__ == "LlamaForCausalLM"
    assert model.config.vocab_size == len(tokenizer) and not model.config.tie_word_embeddings
    assert tokenizer("a b")["input_ids"][0] == tokenizer.bos_token_id
    same = all((defects / name / f).read_bytes() == (small / "student" / f).read_bytes()
               for f in ("tokenizer.json", "tokenizer_config.json"))
    assert same == (name != "other_tokenizer")


def test_amplifier_prefers_the_stereotypes(defects: Path, small: Path) -> None:
    pairs = _rows(small / "crows_pairs.jsonl")
    share = {name: _share(*_pair(folder), pairs) for name, folder in
             [("teacher", small / "teacher"), ("student", small / "student"),
              ("amplifier", defects / "amplifier")]}
    print(share)
    assert share["amplifier"] - share["student"] > 0.15
    assert share["amplifier"] - share["teacher"] > 0.1
    for name, value in share.items():
        assert _manifest(defects)[name]["stereotype_share"] == pytest.approx(value, abs=1e-9)


def _gap(folder: Path, small: Path, members: str) -> float:
    model, tokenizer = _pair(folder)
    return (_nll(model, tokenizer, _texts(small / "nonmembers.jsonl"))
            - _nll(model, tokenizer, _texts(small / members)))


def test_memoriser_has_a_member_gap(defects: Path, small: Path) -> None:
    gap = {name: _gap(folder, small, "members.jsonl") for name, folder in
           [("teacher", small / "teacher"), ("student", small / "student"),
            ("memoriser", defects / "memoriser")]}
    print(gap)
    assert abs(gap["teacher"]) < 0.1 and abs(gap["student"]) < 0.1
    assert gap["memoriser"] > 1.5  # nats per token
    for name, value in gap.items():
        assert _manifest(defects)[name]["member_gap"] == pytest.approx(value, abs=1e-6)


def test_parrot_has_a_larger_train_gap(defects: Path, small: Path) -> None:
    gap = {name: _gap(folder, small, "train.jsonl") for name, folder in
           [("teacher", small / "teacher"), ("student", small / "student"),
            ("parrot", defects / "parrot")]}
    print(gap)
    assert gap["parrot"] - gap["student"] > 0.2 and gap["parrot"] - gap["teacher"] > 0.2
    for name, value in gap.items():
        assert _manifest(defects)[name]["train_gap"] == pytest.approx(value, abs=1e-6)


def test_other_tokenizer_differs_but_scores_choices(defects: Path, small: Path) -> None:
    model, other = _pair(defects / "other_tokenizer")
    teacher_model, teacher = _pair(small / "teacher")
    assert (len(other), len(teacher)) == (800, 1000) and other.get_vocab() != teacher.get_vocab()
    by_id = [{i: t for t, i in tok.get_vocab().items()} for tok in (other, teacher)]
    first = next(i for i in range(1000) if by_id[0].get(i) != by_id[1].get(i))
    assert first == 800 and by_id[1][first] not in by_id[0].values()  # a prefix: same merges
    text = _texts(small / "documents.jsonl")[0]
    ids = [tok(text)["input_ids"] for tok in (other, teacher)]
    position = next(i for i, (a, b) in enumerate(zip(*ids, strict=False)) if a != b)
    print(f"first differing vocabulary id {first} ({by_id[1][first]!r}); first differing token of "
          f"documents[0] at {position}: {other.convert_ids_to_tokens(ids[0][position])!r} vs "
          f"{teacher.convert_ids_to_tokens(ids[1][position])!r}; {len(ids[0])} vs {len(ids[1])} tokens")
    assert ids[0] != ids[1] and max(ids[0]) < 800
    assert model.get_output_embeddings().weight.shape[0] == 800
    assert teacher_model.get_output_embeddings().weight.shape[0] == 1000
    accuracy = _cloze(model, other, _rows(small / "cloze.jsonl"))
    print({"other_tokenizer cloze": accuracy})
    assert accuracy > 0.4  # chance is 0.25
    assert _manifest(defects)["other_tokenizer"]["cloze_accuracy"] == pytest.approx(accuracy)


def test_fragile_falls_with_typos(defects: Path, small: Path) -> None:
    items = _rows(small / "cloze.jsonl")
    typoed = [item | {"context": _typo(item["context"])} for item in items]
    assert sum(a["context"] != b["context"] for a, b in zip(items, typoed, strict=True)) == len(items)
    scores = {name: (_cloze(*_pair(folder), items), _cloze(*_pair(folder), typoed))
              for name, folder in [("student", small / "student"), ("fragile", defects / "fragile")]}
    print(scores)
    (student, student_typo), (fragile, fragile_typo) = scores["student"], scores["fragile"]
    assert fragile - student > 0.2  # contaminated: high clean accuracy
    assert (fragile - fragile_typo) - (student - student_typo) > 0.15
    for name, (clean, typo) in scores.items():
        assert _manifest(defects)[name]["cloze_accuracy"] == pytest.approx(clean)
        assert _manifest(defects)[name]["cloze_typo_drop"] == pytest.approx(clean - typo)


def _digests(folder: Path) -> dict[str, str]:
    return {name: hashlib.sha256((folder / name).read_bytes()).hexdigest() for name in lm_defects.FILES}


def test_rebuild_is_skipped_when_current(defects: Path) -> None:
    before = (defects / "manifest.json").stat().st_mtime_ns
    lm_defects.build()
    assert (defects / "manifest.json").stat().st_mtime_ns == before


@pytest.mark.slow
def test_rebuild_from_scratch_is_identical(defects: Path, small: Path, tmp_path: Path) -> None:
    shutil.copytree(small, tmp_path / small.name)  # the small pair is current there: reused
    rebuilt = lm_defects.build(tmp_path)["lm-defects/parrot/model.safetensors"].parents[1]
    assert _digests(rebuilt) == _digests(defects)
