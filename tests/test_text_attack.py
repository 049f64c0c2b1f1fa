"""The black-box text attack (audit.probes.text_attack): its edits, candidates and greedy search."""

from __future__ import annotations

import doctest
import json
import re
from collections.abc import Callable

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from audit.probes import text_attack as ta
from audit.probes.text_attack import (
    CHARACTER_EDITS,
    EDIT_KINDS,
    EXHAUSTED,
    KEYBOARD_NEIGHBOURS,
    NOT_FLIPPED,
    WORD_EDITS,
    TextAttackResult,
    attack,
    candidates,
)

# ---------------------------------------------------------------------------------------------
# toy classifiers


def keyword(texts: list[str]) -> np.ndarray:
    """Classes (negative, positive); P(positive) by the count of the exact word "good" (split on
    spaces): 0.2 without it, 0.55 with one, 0.9 with two or more."""
    p = np.array([{0: 0.2, 1: 0.55}.get(t.split().count("good"), 0.9) for t in texts])
    return np.column_stack([1 - p, p])


WEIGHTS = {"good": 2.0, "great": 2.5, "fine": 1.0, "bad": -2.0, "awful": -2.5, "dull": -1.0}


def lexicon(texts: list[str]) -> np.ndarray:
    """A bag-of-words score plus a small letter-level term, so most edits move it a little."""
    scores = []
    for t in texts:
        words = t.lower().split()
        score = sum(WEIGHTS.get(w.strip(".,!"), 0.0) for w in words)
        score += 0.3 * sum(c in "aeiou" for c in t) / max(len(t), 1) - 0.01 * len(words)
        scores.append(score)
    p = 1 / (1 + np.exp(-np.array(scores, dtype=float)))
    return np.column_stack([1 - p, p])


def constant(texts: list[str]) -> np.ndarray:
    return np.tile([0.3, 0.7], (len(texts), 1))


REVIEWS = ["a good film", "great acting but a dull plot", "bad, awful and dull", "fine",
           "not good at all", "the ending was great", "Good! Really good.", "awful film",
           "a fine, fine day", "dull but fine", "great great great", "bad"]
REVIEW_LABELS = [1, 1, 0, 1, 0, 1, 1, 0, 1, 0, 1, 0]


# ---------------------------------------------------------------------------------------------
# the hand-worked example

HAND_TEXTS = ["good good film", "bad film", "dull film"]
HAND_LABELS = [1, 1, 0]


def test_hand_worked_example() -> None:
    # Only swaps, and room for every candidate (candidates_per_step=100), so no sampling: the
    # rng is never used and the run is the same for every seed.
    #
    # Clean: "good good film" P(pos)=0.9 -> pos, right; "bad film" 0.2 -> neg, wrong (label pos);
    # "dull film" 0.2 -> neg, right. 1 query each; row 1 is not attacked: flipped_at 0.
    #
    # Row 0, step 1, the swaps of differing adjacent letters, by position (o-o is no swap):
    #   ogod good film, godo good film, good ogod film, good godo film  (one "good": 0.55)
    #   good good iflm, good good flim, good good fiml                  (two: 0.9)
    #   7 candidates; the lowest P(pos)=0.55 is first met at "ogod good film"; argmax still pos.
    # Row 0, step 2, from "ogod good film": ogod -> good (the original, visited: left out),
    #   oogd, ogdo (0.55); good -> ogod, godo ("ogod ogod film", "ogod godo film": 0.2);
    #   film -> 3 (0.55). 7 candidates; "ogod ogod film" has P(pos)=0.2 -> neg: flipped at 2.
    #   queries = 1 + 7 + 7 = 15.
    # Row 2 (label neg, P(neg)=0.8 whatever a swap does: no candidate makes "good"): every step
    #   is a tie, so the first candidate wins.
    #   step 1, "dull film": udll, dlul (l-l no swap), iflm, flim, fiml: 5 -> "udll film"
    #   step 2, "udll film": dull (visited), uldl, iflm, flim, fiml: 4 -> "uldl film"
    #   step 3, "uldl film": ludl, udll (visited), ulld, iflm, flim, fiml: 5 -> "ludl film"
    #   not flipped within 3 edits: flipped_at -1, queries = 1 + 5 + 4 + 5 = 15.
    calls: list[int] = []

    def counted(texts: list[str]) -> np.ndarray:
        calls.append(len(texts))
        return keyword(texts)

    result = attack(counted, HAND_TEXTS, HAND_LABELS, max_edits=3, kinds=["swap"],
                    candidates_per_step=100)
    assert result.flipped_at.tolist() == [2, 0, NOT_FLIPPED]
    assert result.queries.tolist() == [15, 1, 15]
    assert result.edits == (("swap 'good'->'ogod'", "swap 'good'->'ogod'"), (),
                            ("swap 'dull'->'udll'", "swap 'udll'->'uldl'", "swap 'uldl'->'ludl'"))
    assert result.texts == ("ogod ogod film", "bad film", "ludl film")
    assert result.original == tuple(HAND_TEXTS)
    assert result.clean_correct.tolist() == [True, False, True]
    # one call for the clean rows, then one per step with every active row's candidates
    assert calls == [3, 7 + 5, 7 + 4, 5]
    assert sum(calls) == result.queries.sum()
    assert [result.robust_at(b).tolist() for b in range(4)] == [
        [True, False, True], [True, False, True], [False, False, True], [False, False, True]]
    assert [result.robust_accuracy(b) for b in range(4)] == [2 / 3, 2 / 3, 1 / 3, 1 / 3]
    assert result.exhausted == 0


def test_hand_worked_example_with_a_query_budget() -> None:
    # The same rows with max_queries=10 (the clean prediction included):
    # row 0: step 1 takes it to 1 + 7 = 8; step 2 would need 8 + 7 = 15 > 10: exhausted after
    #   1 edit, 8 queries. Row 2: 1 + 5 = 6, then 6 + 4 = 10 (allowed: not beyond 10), then
    #   10 + 5 = 15 > 10: exhausted after 2 edits, 10 queries. Paths are prefixes of the above.
    result = attack(keyword, HAND_TEXTS, HAND_LABELS, max_edits=3, kinds=["swap"],
                    candidates_per_step=100, max_queries=10)
    assert result.flipped_at.tolist() == [EXHAUSTED, 0, EXHAUSTED]
    assert result.queries.tolist() == [8, 1, 10]
    assert result.edits == (("swap 'good'->'ogod'",), (), ("swap 'dull'->'udll'", "swap 'udll'->'uldl'"))
    assert result.exhausted == 2
    # counted robust at every budget, but undecided where the budget ran out first
    assert result.robust_at(3).tolist() == [True, False, True]
    assert result.undecided_at(1).tolist() == [False, False, False]
    assert result.undecided_at(2).tolist() == [True, False, False]
    assert result.undecided_at(3).tolist() == [True, False, True]


# ---------------------------------------------------------------------------------------------
# the edits


@pytest.mark.parametrize(("call", "expected"), [
    pytest.param(lambda: ta.swap("good film", 2), "godo film", id="swap"),
    pytest.param(lambda: ta.swap("good", 1), "good", id="swap-equal-letters-is-a-no-op"),
    pytest.param(lambda: ta.drop("good!", 3), "goo!", id="drop-keeps-punctuation"),
    pytest.param(lambda: ta.drop("a  bc", 3), "a  c", id="drop-keeps-spacing"),
    pytest.param(lambda: ta.insert("good", 0, "g"), "ggood", id="insert-doubles"),
    pytest.param(lambda: ta.insert("ok", 1, "x"), "oxk", id="insert-any-letter"),
    pytest.param(lambda: ta.keyboard("Good", 0, "h"), "Hood", id="keyboard-keeps-upper-case"),
    pytest.param(lambda: ta.keyboard("good", 3, "S"), "goos", id="keyboard-keeps-lower-case"),
    pytest.param(lambda: ta.case("good", 0), "Good", id="case-up"),
    pytest.param(lambda: ta.case("ÉTÉ", 2), "ÉTé", id="case-down-non-ascii"),
    pytest.param(lambda: ta.whitespace("very good", 4), "verygood", id="whitespace-join"),
    pytest.param(lambda: ta.whitespace("a \t b c", 2), "ab c", id="whitespace-join-whole-run"),
    pytest.param(lambda: ta.whitespace("good", 2), "go od", id="whitespace-split"),
    pytest.param(lambda: ta.word_drop("a  b\tc", 0), "b\tc", id="word_drop-first"),
    pytest.param(lambda: ta.word_drop("a  b\tc", 1), "a  c", id="word_drop-middle"),
    pytest.param(lambda: ta.word_drop(" a  b\tc ", 2), " a  b ", id="word_drop-last-keeps-ends"),
    pytest.param(lambda: ta.word_duplicate("very good", 0), "very very good", id="word_duplicate"),
    pytest.param(lambda: ta.word_duplicate("ok", 0), "ok ok", id="word_duplicate-single-word"),
    pytest.param(lambda: ta.word_swap("one,  two!", 0), "two!  one,", id="word_swap-keeps-spacing"),
])
def test_each_edit(call: Callable[[], str], expected: str) -> None:
    assert call() == expected


@pytest.mark.parametrize(("call", "message"), [
    pytest.param(lambda: ta.swap("a,b", 0),
                 "swap: position 1 of 'a,b' is not a letter; character edits change letters only",
                 id="swap-into-punctuation"),
    pytest.param(lambda: ta.drop("a b", 0),
                 "drop: 'a' has one character; dropping it would delete the word (that is word_drop)",
                 id="drop-one-letter-word"),
    pytest.param(lambda: ta.drop("b2", 1),
                 "drop: position 1 of 'b2' is not a letter; character edits change letters only",
                 id="drop-digit"),
    pytest.param(lambda: ta.insert("ab", 0, "1"), "insert: '1' is not one letter", id="insert-digit"),
    pytest.param(lambda: ta.keyboard("g", 0, "p"),
                 "keyboard: 'p' is not a QWERTY neighbour of 'g'; its neighbours are 'bfhtvy'",
                 id="keyboard-not-a-neighbour"),
    pytest.param(lambda: ta.case("ab", 5),
                 "case: position 5 of 'ab' is not a letter; character edits change letters only",
                 id="case-out-of-range"),
    pytest.param(lambda: ta.whitespace(" a", 0),
                 "whitespace: position 0 of ' a' is neither a space between two words nor between "
                 "two letters of a word", id="whitespace-leading-space"),
    pytest.param(lambda: ta.whitespace("a-b", 1),
                 "whitespace: position 1 of 'a-b' is neither a space between two words nor between "
                 "two letters of a word", id="whitespace-split-at-punctuation"),
    pytest.param(lambda: ta.word_drop("one", 0),
                 "word_drop: cannot edit word 0 of 'one' (words: 1; word_drop needs at least 2 and "
                 "an index below 1)", id="word_drop-only-word"),
    pytest.param(lambda: ta.word_swap("a b", 1),
                 "word_swap: cannot edit word 1 of 'a b' (words: 2; word_swap needs at least 2 and "
                 "an index below 1)", id="word_swap-last-word"),
    pytest.param(lambda: candidates("a", ["swop"], np.random.default_rng(0)),
                 "unknown text edit 'swop': did you mean 'swap'? the edits are swap, drop, insert, "
                 "keyboard, case, whitespace, word_drop, word_duplicate, word_swap", id="unknown-kind"),
    pytest.param(lambda: candidates("a", [], np.random.default_rng(0)),
                 "no text edit asked for: choose among swap, drop, insert, keyboard, case, "
                 "whitespace, word_drop, word_duplicate, word_swap", id="no-kind"),
    pytest.param(lambda: candidates("a", ["swap"], np.random.default_rng(0), 0),
                 "limit=0: must be >= 1 (or None for every candidate)", id="limit-zero"),
])
def test_invalid_edits(call: Callable[[], object], message: str) -> None:
    with pytest.raises(ValueError, match=f"^{re.escape(message)}$"):
        call()


CANDIDATES = {  # "Hi, 2 cats": punctuation and digits are never edited; "Go" for the keyboard
    "swap": [("swap 'Hi,'->'iH,'", "iH, 2 cats"), ("swap 'cats'->'acts'", "Hi, 2 acts"),
             ("swap 'cats'->'ctas'", "Hi, 2 ctas"), ("swap 'cats'->'cast'", "Hi, 2 cast")],
    "drop": [("drop 'Hi,'->'i,'", "i, 2 cats"), ("drop 'Hi,'->'H,'", "H, 2 cats"),
             ("drop 'cats'->'ats'", "Hi, 2 ats"), ("drop 'cats'->'cts'", "Hi, 2 cts"),
             ("drop 'cats'->'cas'", "Hi, 2 cas"), ("drop 'cats'->'cat'", "Hi, 2 cat")],
    "insert": [("insert 'Hi,'->'HHi,'", "HHi, 2 cats"), ("insert 'Hi,'->'Hii,'", "Hii, 2 cats"),
               ("insert 'cats'->'ccats'", "Hi, 2 ccats"), ("insert 'cats'->'caats'", "Hi, 2 caats"),
               ("insert 'cats'->'catts'", "Hi, 2 catts"), ("insert 'cats'->'catss'", "Hi, 2 catss")],
    "keyboard": [(f"keyboard 'Go'->{t!r}", t) for t in
                 ["Bo", "Fo", "Ho", "To", "Vo", "Yo", "Gi", "Gk", "Gl", "Gp"]],
    "case": [("case 'Hi,'->'hi,'", "hi, 2 cats"), ("case 'Hi,'->'HI,'", "HI, 2 cats"),
             ("case 'cats'->'Cats'", "Hi, 2 Cats"), ("case 'cats'->'cAts'", "Hi, 2 cAts"),
             ("case 'cats'->'caTs'", "Hi, 2 caTs"), ("case 'cats'->'catS'", "Hi, 2 catS")],
    "whitespace": [("whitespace 'Hi,'->'H i,'", "H i, 2 cats"), ("whitespace 'Hi, 2'->'Hi,2'", "Hi,2 cats"),
                   ("whitespace '2 cats'->'2cats'", "Hi, 2cats"),
                   ("whitespace 'cats'->'c ats'", "Hi, 2 c ats"),
                   ("whitespace 'cats'->'ca ts'", "Hi, 2 ca ts"),
                   ("whitespace 'cats'->'cat s'", "Hi, 2 cat s")],
    "word_drop": [("word_drop 'Hi,'", "2 cats"), ("word_drop '2'", "Hi, cats"),
                  ("word_drop 'cats'", "Hi, 2")],
    "word_duplicate": [("word_duplicate 'Hi,'", "Hi, Hi, 2 cats"), ("word_duplicate '2'", "Hi, 2 2 cats"),
                       ("word_duplicate 'cats'", "Hi, 2 cats cats")],
    "word_swap": [("word_swap 'Hi, 2'->'2 Hi,'", "2 Hi, cats"),
                  ("word_swap '2 cats'->'cats 2'", "Hi, cats 2")],
}


@pytest.mark.parametrize("kind", EDIT_KINDS)
def test_candidates_of_each_kind(kind: str) -> None:
    text = "Go" if kind == "keyboard" else "Hi, 2 cats"
    assert candidates(text, [kind], np.random.default_rng(0)) == CANDIDATES[kind]


def test_candidates_are_distinct_across_kinds_and_in_edit_kinds_order() -> None:
    # "good good" drops to "good" by either word: one candidate; drop before word_drop
    found = candidates("aa", ["word_drop", "drop", "swap"], np.random.default_rng(0))
    assert found == [("drop 'aa'->'a'", "a")]
    both = candidates("good good", ["word_drop", "drop"], np.random.default_rng(0))
    assert [t for _, t in both] == ["ood good", "god good", "goo good", "good ood", "good god",
                                    "good goo", "good"]


def test_candidates_with_nothing_to_edit() -> None:
    assert candidates("", EDIT_KINDS, np.random.default_rng(0)) == []
    assert candidates("12 ?!", CHARACTER_EDITS, np.random.default_rng(0)) == [
        ("whitespace '12 ?!'->'12?!'", "12?!")]
    assert candidates("x", ["word_drop", "word_swap"], np.random.default_rng(0)) == []


def test_candidate_sampling_is_seeded_and_keeps_enumeration_order() -> None:
    text = "a good film, really"
    everything = candidates(text, EDIT_KINDS, np.random.default_rng(0))
    assert len(everything) > 40
    first = candidates(text, EDIT_KINDS, np.random.default_rng(7), 10)
    assert first == candidates(text, EDIT_KINDS, np.random.default_rng(7), 10)
    assert first != candidates(text, EDIT_KINDS, np.random.default_rng(8), 10)
    assert len(first) == 10
    positions = [everything.index(c) for c in first]
    assert positions == sorted(positions)
    # the documented draw: rng.choice over the enumeration, without replacement, sorted
    picked = np.sort(np.random.default_rng(7).choice(len(everything), size=10, replace=False))
    assert first == [everything[i] for i in picked]
    # the rng is not touched when there are no more candidates than the limit
    rng = np.random.default_rng(3)
    state = rng.bit_generator.state
    candidates(text, EDIT_KINDS, rng, len(everything))
    assert rng.bit_generator.state == state


def test_exclude_leaves_out_texts() -> None:
    found = candidates("ab", ["swap", "case"], np.random.default_rng(0), exclude={"ba", "Ab"})
    assert [t for _, t in found] == ["aB"]


def test_keyboard_neighbours_are_symmetric() -> None:
    assert KEYBOARD_NEIGHBOURS["g"] == "bfhtvy"
    assert KEYBOARD_NEIGHBOURS["a"] == "qswz"
    assert sorted(KEYBOARD_NEIGHBOURS) == list("abcdefghijklmnopqrstuvwxyz")
    for key, near in KEYBOARD_NEIGHBOURS.items():
        assert all(key in KEYBOARD_NEIGHBOURS[n] for n in near), key


def test_the_docstring_examples() -> None:
    assert doctest.testmod(ta, raise_on_error=False).failed == 0


# ---------------------------------------------------------------------------------------------
# property: every candidate is exactly one edit of its kind


def _levenshtein(a: str, b: str) -> int:
    row = list(range(len(b) + 1))
    for i, ca in enumerate(a, 1):
        prev, row[0] = row[0], i
        for j, cb in enumerate(b, 1):
            prev, row[j] = row[j], min(row[j] + 1, row[j - 1] + 1, prev + (ca != cb))
    return row[-1]


def _one_edit_of(kind: str, text: str, edited: str) -> bool:
    words, after = text.split(), edited.split()
    spaces = re.findall(r"\s+", text) == re.findall(r"\s+", edited)
    diff = [i for i, (a, b) in enumerate(zip(text, edited)) if a != b] if len(text) == len(edited) else []
    removals = [i for i in range(len(edited) + 1) if edited[:i] + edited[i + 1:] == text]
    dropped = [i for i in range(len(text)) if text[:i] + text[i + 1:] == edited]
    if kind == "swap":
        i = diff[0] if len(diff) == 2 else -1
        return (spaces and diff == [i, i + 1] and text[i:i + 2].isalpha()
                and edited[i:i + 2] == text[i + 1] + text[i] and _levenshtein(text, edited) == 2)
    if kind == "drop":
        return spaces and len(words) == len(after) and any(text[i].isalpha() for i in dropped)
    if kind == "insert":
        return spaces and any(edited[i].isalpha() for i in removals) and _levenshtein(text, edited) == 1
    if kind in ("keyboard", "case"):
        if not (spaces and len(diff) == 1 and text[diff[0]].isalpha()):
            return False
        a, b = text[diff[0]], edited[diff[0]]
        if kind == "case":
            return b == a.swapcase()
        return b.lower() in KEYBOARD_NEIGHBOURS[a.lower()] and a.isupper() == b.isupper()
    if kind == "whitespace":
        if len(after) == len(words) + 1:  # one space inside a word, between two letters
            return any(edited[i] == " " and edited[i - 1:i].isalpha() and edited[i + 1:i + 2].isalpha()
                       for i in removals)
        joins = [m for m in re.finditer(r"\s+", text) if 0 < m.start() and m.end() < len(text)]
        return any(text[:m.start()] + text[m.end():] == edited for m in joins)
    j_range = range(len(words))
    if kind == "word_drop":
        return any(words[:j] + words[j + 1:] == after for j in j_range)
    if kind == "word_duplicate":
        return any(words[:j + 1] + words[j:] == after for j in j_range)
    return any(words[:j] + [words[j + 1], words[j]] + words[j + 2:] == after for j in j_range[:-1])


@pytest.mark.parametrize(("kind", "text", "edited"), [
    ("swap", "abc", "acb"), ("swap", "ab", "ba"), ("drop", "ab cd", "ab d"), ("insert", "ab", "aab"),
    ("keyboard", "Go", "Ho"), ("case", "ab", "aB"), ("whitespace", "ab cd", "abcd"),
    ("whitespace", "abcd", "ab cd"), ("word_drop", "a b c", "a c"), ("word_duplicate", "a b", "a b b"),
    ("word_swap", "a b c", "a c b"),
])
def test_the_property_checker_accepts_and_refuses(kind: str, text: str, edited: str) -> None:
    assert _one_edit_of(kind, text, edited)
    others = {"swap": "drop", "drop": "insert", "insert": "drop", "keyboard": "case", "case": "keyboard",
              "whitespace": "word_drop", "word_drop": "word_swap", "word_duplicate": "word_drop",
              "word_swap": "word_duplicate"}
    assert not _one_edit_of(others[kind], text, edited)
    assert not _one_edit_of(kind, text, edited + "x!")


texts_strategy = st.text(alphabet="abAB éÉ,.1!\t", max_size=14)


@settings(max_examples=300, deadline=None)
@given(text=texts_strategy, kind=st.sampled_from(EDIT_KINDS))
def test_every_candidate_is_one_edit_of_its_kind(text: str, kind: str) -> None:
    found = candidates(text, [kind], np.random.default_rng(0))
    edited = [t for _, t in found]
    assert len(set(edited)) == len(edited)
    assert text not in edited
    for description, after in found:
        assert description.startswith(kind + " ")
        assert _one_edit_of(kind, text, after), (kind, text, after)
        change = len(after.split()) - len(text.split())
        if kind in WORD_EDITS:
            assert change == {"word_drop": -1, "word_duplicate": 1, "word_swap": 0}[kind]
        elif kind != "whitespace":
            assert change == 0


@settings(max_examples=100, deadline=None)
@given(text=texts_strategy, seed=st.integers(0, 2**32), limit=st.integers(1, 8))
def test_a_sample_is_a_subset_in_order(text: str, seed: int, limit: int) -> None:
    everything = candidates(text, EDIT_KINDS, np.random.default_rng(0))
    sample = candidates(text, EDIT_KINDS, np.random.default_rng(seed), limit)
    assert len(sample) == min(limit, len(everything))
    positions = [everything.index(c) for c in sample]
    assert positions == sorted(set(positions))


# ---------------------------------------------------------------------------------------------
# the attack


def _row(result: TextAttackResult, i: int) -> tuple[object, ...]:
    return (result.texts[i], int(result.flipped_at[i]), int(result.queries[i]), result.edits[i])


def test_the_same_seed_gives_the_same_result() -> None:
    runs = [attack(lexicon, REVIEWS, REVIEW_LABELS, max_edits=4, seed=5, candidates_per_step=8)
            for _ in range(2)]
    assert runs[0].to_dict() == runs[1].to_dict()
    # the sample matters: candidates_per_step is far below the candidates of a review
    assert (runs[0].flipped_at > 0).any() and (runs[0].flipped_at == NOT_FLIPPED).any()


def test_a_row_does_not_depend_on_batching_or_other_rows() -> None:
    full = attack(lexicon, REVIEWS, REVIEW_LABELS, max_edits=4, seed=5, candidates_per_step=8)
    one_by_one = attack(lexicon, REVIEWS, REVIEW_LABELS, max_edits=4, seed=5, candidates_per_step=8,
                        batch_size=1)
    assert one_by_one.to_dict() == full.to_dict()
    head = attack(lexicon, REVIEWS[:5], REVIEW_LABELS[:5], max_edits=4, seed=5, candidates_per_step=8,
                  batch_size=3)
    assert [_row(head, i) for i in range(5)] == [_row(full, i) for i in range(5)]
    # the later rows labelled against the model, so not attacked: the first rows are unchanged
    others_wrong = [*REVIEW_LABELS[:5], *(1 - lexicon(REVIEWS[5:]).argmax(axis=1))]
    fewer = attack(lexicon, REVIEWS, others_wrong, max_edits=4, seed=5, candidates_per_step=8)
    assert [_row(fewer, i) for i in range(5)] == [_row(full, i) for i in range(5)]
    assert fewer.queries[5:].tolist() == [1] * 7


def test_predict_is_called_in_chunks_of_batch_size() -> None:
    sizes: list[int] = []

    def counted(texts: list[str]) -> np.ndarray:
        sizes.append(len(texts))
        return lexicon(texts)

    result = attack(counted, REVIEWS, REVIEW_LABELS, max_edits=3, candidates_per_step=8, batch_size=10)
    assert max(sizes) <= 10
    assert sum(sizes) == result.queries.sum()
    assert sizes[:2] == [10, 2]  # the clean rows


def test_rows_the_model_gets_wrong_are_not_attacked() -> None:
    labels = 1 - np.array(REVIEW_LABELS)  # the model is now right on two rows only
    clean = lexicon(REVIEWS).argmax(axis=1) == labels
    result = attack(lexicon, REVIEWS, labels, max_edits=3, candidates_per_step=8)
    assert result.clean_correct.tolist() == clean.tolist()
    wrong = ~clean
    assert wrong.any()
    assert result.queries[wrong].tolist() == [1] * int(wrong.sum())
    assert result.flipped_at[wrong].tolist() == [0] * int(wrong.sum())
    assert all(result.edits[i] == () and result.texts[i] == REVIEWS[i] for i in np.flatnonzero(wrong))
    assert not result.robust_at(0)[wrong].any()


def test_a_classifier_that_ignores_its_input_is_never_flipped() -> None:
    labels = [1, 0, 1, 1, 0, 1]
    result = attack(constant, REVIEWS[:6], labels, max_edits=3, candidates_per_step=5)
    assert result.flipped_at.tolist() == [NOT_FLIPPED, 0, NOT_FLIPPED, NOT_FLIPPED, 0, NOT_FLIPPED]
    for budget in range(4):
        assert result.robust_accuracy(budget) == pytest.approx(4 / 6)
    # every attacked row made its 3 edits at up to 5 candidates a step
    assert all(len(result.edits[i]) == 3 for i in (0, 2, 3, 5))
    assert result.queries.tolist() == [16, 1, 16, 16, 1, 16]


def test_a_row_with_nothing_to_edit_stops_unflipped() -> None:
    result = attack(constant, ["12 34", "!"], [1, 1], max_edits=3, kinds=CHARACTER_EDITS)
    # "12 34": one join ("1234"), then nothing new (its only candidate is the visited original)
    assert result.flipped_at.tolist() == [NOT_FLIPPED, NOT_FLIPPED]
    assert result.queries.tolist() == [2, 1]
    assert result.texts == ("1234", "!")
    assert result.robust_accuracy(3) == 1.0


def test_result_is_plain_frozen_data() -> None:
    result = attack(keyword, HAND_TEXTS, HAND_LABELS, max_edits=3, kinds=["swap"], candidates_per_step=4)
    data = json.loads(json.dumps(result.to_dict()))
    again = TextAttackResult.from_dict(data)
    assert again.to_dict() == result.to_dict()
    assert again.edits == result.edits and again.kinds == ("swap",)
    with pytest.raises(ValueError, match="read-only"):
        result.flipped_at[0] = 5
    with pytest.raises(AttributeError):
        result.seed = 3  # type: ignore[misc]


def test_no_rows() -> None:
    result = attack(keyword, [], [], max_edits=2)
    assert result.texts == () and result.queries.tolist() == []
    with pytest.warns(RuntimeWarning, match="robust accuracy of no rows is undefined"):
        assert np.isnan(result.robust_accuracy(1))


def test_max_edits_zero_only_scores_the_clean_rows() -> None:
    result = attack(keyword, HAND_TEXTS, HAND_LABELS, max_edits=0)
    assert result.queries.tolist() == [1, 1, 1]
    assert result.robust_accuracy(0) == pytest.approx(2 / 3)


def _wrong_shape(texts: list[str]) -> np.ndarray:
    return np.ones((len(texts), 1))


@pytest.mark.parametrize(("kwargs", "message"), [
    pytest.param({"labels": [1, 0]},
                 "labels: expected 3 integer labels, one per text; got shape (2,) of int64",
                 id="labels-length"),
    pytest.param({"labels": [1.0, 0.0, 1.0]},
                 "labels: expected 3 integer labels, one per text; got shape (3,) of float64",
                 id="labels-float"),
    pytest.param({"labels": [1, 2, 0]}, "labels: must be in [0, 2) for predict's 2 classes; got 0 to 2",
                 id="labels-out-of-range"),
    pytest.param({"max_edits": -1}, "max_edits=-1: must be an integer >= 0", id="max-edits"),
    pytest.param({"batch_size": 0}, "batch_size=0: must be an integer >= 1", id="batch-size"),
    pytest.param({"max_queries": 0}, "max_queries=0: must be an integer >= 1", id="max-queries"),
    pytest.param({"kinds": ["typo"]}, "unknown text edit 'typo': the edits are swap, drop, insert, "
                 "keyboard, case, whitespace, word_drop, word_duplicate, word_swap", id="kind"),
    pytest.param({"predict": _wrong_shape},
                 "predict returned shape (3, 1) for 3 texts: expected (3, k >= 2) class probabilities",
                 id="predict-shape"),
])
def test_invalid_attack_inputs(kwargs: dict[str, object], message: str) -> None:
    call: dict[str, object] = {"predict": keyword, "texts": HAND_TEXTS, "labels": HAND_LABELS,
                               "max_edits": 2, **kwargs}
    with pytest.raises(ValueError, match=f"^{re.escape(message)}$"):
        attack(**call)  # type: ignore[arg-type]


def test_a_budget_beyond_the_attack_is_refused() -> None:
    result = attack(keyword, HAND_TEXTS, HAND_LABELS, max_edits=2, kinds=["swap"])
    with pytest.raises(ValueError, match=r"^budget=3: must be between 0 and max_edits=2, the most "
                                         r"edits the attack tried$"):
        result.robust_at(3)


def test_the_metrics_name_the_same_edits_and_corruptions_as_the_probes() -> None:
    """audit.checks.corruption may not import the probes (metrics stand above them): its lists
    of edit kinds and corruptions are copies, kept equal here."""
    from audit.checks import corruption
    from audit.probes import corruptions, edits

    assert corruption.EDITS == edits.EDIT_KINDS
    assert corruption.CORRUPTIONS == corruptions.CORRUPTIONS
