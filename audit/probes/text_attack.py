"""Black-box, query-budgeted text attacks: greedy character and word edits to a label flip.

ART has no text attacks. This one attacks any classifier given as ``predict(texts: list[str])
-> (len(texts), k)`` class probabilities (standard library and numpy only): :func:`candidates`
are the distinct single edits of a text, :func:`attack` a greedy search for a label flip within
``max_edits`` of them, batched across rows, and :class:`TextAttackResult` what it found. Words
are maximal runs of non-space characters; an edit keeps the spacing elsewhere intact, and
character edits change letters only (never punctuation or digits).
"""

from __future__ import annotations

import difflib
import re
import warnings
from collections.abc import Callable, Collection, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, fields
from types import MappingProxyType
from typing import Any

import numpy as np

__all__ = ["EDIT_KINDS", "CHARACTER_EDITS", "WORD_EDITS", "KEYBOARD_NEIGHBOURS", "NOT_FLIPPED",
           "EXHAUSTED", "swap", "drop", "insert", "keyboard", "case", "whitespace", "word_drop",
           "word_duplicate", "word_swap", "candidates", "attack", "TextAttackResult"]

CHARACTER_EDITS: tuple[str, ...] = ("swap", "drop", "insert", "keyboard", "case", "whitespace")
WORD_EDITS: tuple[str, ...] = ("word_drop", "word_duplicate", "word_swap")
EDIT_KINDS: tuple[str, ...] = CHARACTER_EDITS + WORD_EDITS

NOT_FLIPPED = -1  # flipped_at of a row not flipped within max_edits (or with no edit to try)
EXHAUSTED = -2  # flipped_at of a row whose query budget ran out first

_WORD = re.compile(r"\S+")
_ROWS = ("qwertyuiop", "asdfghjkl", "zxcvbnm")
_ROW_OFFSETS = (0.0, 0.25, 0.75)  # the letter rows' stagger, in key widths

Predict = Callable[[list[str]], Any]
Spans = list[tuple[int, int]]


def _qwerty() -> dict[str, str]:
    """Each lowercase letter's QWERTY neighbours (the keys touching it), in alphabetical order."""
    place = {c: (r, col + _ROW_OFFSETS[r]) for r, row in enumerate(_ROWS) for col, c in enumerate(row)}
    return {c: "".join(sorted(d for d, (r2, x2) in place.items()
                              if d != c and abs(r2 - r) <= 1 and abs(x2 - x) <= 1))
            for c, (r, x) in place.items()}


KEYBOARD_NEIGHBOURS: Mapping[str, str] = MappingProxyType(_qwerty())
"""``{"g": "bfhtvy", ...}``: the keys touching each letter on a QWERTY keyboard."""


def _words(text: str) -> Spans:
    return [m.span() for m in _WORD.finditer(text)]


def _word_at(text: str, i: int) -> tuple[int, int]:
    """The span of the word (run of non-spaces) holding position ``i``."""
    start, end = i, i + 1
    while start > 0 and not text[start - 1].isspace():
        start -= 1
    while end < len(text) and not text[end].isspace():
        end += 1
    return start, end


def _letter(text: str, i: int, kind: str) -> str:  # the letter at i, or a clean error
    if not 0 <= i < len(text) or not text[i].isalpha():
        raise ValueError(f"{kind}: position {i} of {text!r} is not a letter; character edits "
                         f"change letters only")
    return text[i]


def swap(text: str, position: int) -> str:
    """Swap the letter at ``position`` with the next one, which must be a letter too."""
    _letter(text, position, "swap")
    _letter(text, position + 1, "swap")
    return text[:position] + text[position + 1] + text[position] + text[position + 2:]


def drop(text: str, position: int) -> str:
    """Delete the letter at ``position`` from a word of at least two characters."""
    _letter(text, position, "drop")
    start, end = _word_at(text, position)
    if end - start < 2:
        raise ValueError(f"drop: {text[start:end]!r} has one character; dropping it would delete "
                         f"the word (that is word_drop)")
    return text[:position] + text[position + 1:]


def insert(text: str, position: int, letter: str) -> str:
    """Insert ``letter`` before the letter at ``position`` (:func:`candidates` doubles letters)."""
    _letter(text, position, "insert")
    if len(letter) != 1 or not letter.isalpha():
        raise ValueError(f"insert: {letter!r} is not one letter")
    return text[:position] + letter + text[position:]


def keyboard(text: str, position: int, key: str) -> str:
    """Replace the letter at ``position`` by ``key``, one of its QWERTY neighbours, in its case."""
    c = _letter(text, position, "keyboard")
    near = KEYBOARD_NEIGHBOURS.get(c.lower(), "")
    if len(key) != 1 or key.lower() not in near:
        raise ValueError(f"keyboard: {key!r} is not a QWERTY neighbour of {c!r}; its neighbours "
                         f"are {near!r}")
    return text[:position] + (key.upper() if c.isupper() else key.lower()) + text[position + 1:]


def case(text: str, position: int) -> str:
    """Flip the case of the letter at ``position``."""
    c = _letter(text, position, "case")
    flipped = c.swapcase()
    if len(flipped) != 1 or flipped == c:
        raise ValueError(f"case: {c!r} has no other case of one letter")
    return text[:position] + flipped + text[position + 1:]


def whitespace(text: str, position: int) -> str:
    """At a space between two words, remove the whole run of spaces (joining the words); between
    two letters of a word, insert one space (splitting it)."""
    if 0 <= position < len(text) and text[position].isspace():
        start, end = position, position + 1
        while start > 0 and text[start - 1].isspace():
            start -= 1
        while end < len(text) and text[end].isspace():
            end += 1
        if start > 0 and end < len(text):
            return text[:start] + text[end:]
    elif 0 < position < len(text) and text[position - 1].isalpha() and text[position].isalpha():
        return text[:position] + " " + text[position:]
    raise ValueError(f"whitespace: position {position} of {text!r} is neither a space between two "
                     f"words nor between two letters of a word")


def _word_edit(text: str, spans: Spans, kind: str, j: int) -> str:
    (s1, e1), (s2, e2) = spans[j], spans[min(j + 1, len(spans) - 1)]
    if kind == "word_duplicate":
        return text[:e1] + " " + text[s1:]
    if kind == "word_swap":
        return text[:s1] + text[s2:e2] + text[e1:s2] + text[s1:e1] + text[e2:]
    # word_drop: a word goes with the spaces after it, the last word with the spaces before it
    return text[:s1] + text[s2:] if j < len(spans) - 1 else text[:spans[j - 1][1]] + text[e1:]


def _word(text: str, index: int, kind: str) -> str:
    spans, least = _words(text), 1 if kind == "word_duplicate" else 2
    if len(spans) < least or not 0 <= index < len(spans) - (kind == "word_swap"):
        raise ValueError(f"{kind}: cannot edit word {index} of {text!r} (words: {len(spans)}; {kind} "
                         f"needs at least {least} and an index below {len(spans) - (kind == 'word_swap')})")
    return _word_edit(text, spans, kind, index)


def word_drop(text: str, index: int) -> str:
    """Delete word ``index`` (and the spaces after it; the last word, the spaces before it)."""
    return _word(text, index, "word_drop")


def word_duplicate(text: str, index: int) -> str:
    """Repeat word ``index``, the copy after it and one space between them."""
    return _word(text, index, "word_duplicate")


def word_swap(text: str, index: int) -> str:
    """Swap word ``index`` with the next word, keeping the spaces between them."""
    return _word(text, index, "word_swap")


def _kinds(kinds: Iterable[str]) -> tuple[str, ...]:
    """The requested kinds in :data:`EDIT_KINDS` order, or one clean error naming the unknown one."""
    asked = [kinds] if isinstance(kinds, str) else list(kinds)
    for kind in asked:
        if kind not in EDIT_KINDS:
            close = difflib.get_close_matches(str(kind), EDIT_KINDS, n=1)
            hint = f"did you mean {close[0]!r}? " if close else ""
            raise ValueError(f"unknown text edit {kind!r}: {hint}the edits are {', '.join(EDIT_KINDS)}")
    if not asked:
        raise ValueError(f"no text edit asked for: choose among {', '.join(EDIT_KINDS)}")
    return tuple(k for k in EDIT_KINDS if k in asked)


def _enumerate(text: str, kind: str, spans: Spans) -> Iterator[tuple[int, str]]:
    """``(position, edited)`` of every valid single edit of ``kind``, by position then choice
    (no-ops included: :func:`candidates` drops them)."""
    letters = [i for i, c in enumerate(text) if c.isalpha()]
    if kind == "swap":
        yield from ((i, swap(text, i)) for i in letters if text[i + 1:i + 2].isalpha())
    elif kind == "drop":
        yield from ((i, drop(text, i)) for i in letters if _word_at(text, i) != (i, i + 1))
    elif kind == "insert":
        yield from ((i, insert(text, i, text[i])) for i in letters)
    elif kind == "keyboard":
        yield from ((i, keyboard(text, i, key)) for i in letters
                    for key in KEYBOARD_NEIGHBOURS.get(text[i].lower(), ""))
    elif kind == "case":
        yield from ((i, case(text, i)) for i in letters
                    if len(text[i].swapcase()) == 1 and text[i].swapcase() != text[i])
    elif kind == "whitespace":
        splits = {i for i in letters if i > 0 and text[i - 1].isalpha()}
        joins = {e for (_, e), _ in zip(spans, spans[1:])}
        yield from ((i, whitespace(text, i)) for i in sorted(splits | joins))
    else:
        count = {"word_drop": len(spans) if len(spans) > 1 else 0, "word_duplicate": len(spans),
                 "word_swap": len(spans) - 1}[kind]
        yield from ((j, _word_edit(text, spans, kind, j)) for j in range(count))


def _describe(text: str, edited: str, kind: str, position: int, spans: Spans) -> str:
    """``"swap 'good'->'godo'"``: the kind and the word(s) it changed, before and after."""
    if kind in ("word_drop", "word_duplicate"):
        return f"{kind} {text[spans[position][0]:spans[position][1]]!r}"
    if kind == "word_swap":
        start, end = spans[position][0], spans[position + 1][1]
    elif text[position].isspace():  # whitespace joining two words
        start, end = _word_at(text, position - 1)[0], _word_at(text, position + len(text) - len(edited))[1]
    else:
        start, end = _word_at(text, position)
    return f"{kind} {text[start:end]!r}->{edited[start:end + len(edited) - len(text)]!r}"


def candidates(text: str, kinds: Iterable[str], rng: np.random.Generator, limit: int | None = None, *,
               exclude: Collection[str] = ()) -> list[tuple[str, str]]:
    """The distinct single edits of ``text`` that change it, as ``(description, edited text)``.

    Parameters
    ----------
    text, kinds : str, iterable of str
        The text, and edits among :data:`EDIT_KINDS` (enumerated in that order, whatever the
        order given; within a kind by position, then choice; the first edit to reach a text kept).
    rng, limit : numpy.random.Generator, int or None
        With more than ``limit`` candidates, ``rng.choice`` draws ``limit`` of them without
        replacement, kept in enumeration order (the only use of ``rng``); ``None`` keeps all.
    exclude : collection of str
        Edited texts to leave out (the attack passes the texts its path already visited).

    Returns
    -------
    list of (str, str)

    Examples
    --------
    >>> candidates("good film", ["swap"], np.random.default_rng(0))[:2]
    [("swap 'good'->'ogod'", 'ogod film'), ("swap 'good'->'godo'", 'godo film')]
    >>> len(candidates("good film", ["swap"], np.random.default_rng(0), limit=3))
    3
    """
    if limit is not None and limit < 1:
        raise ValueError(f"limit={limit}: must be >= 1 (or None for every candidate)")
    spans = _words(text)
    seen = {text, *exclude}
    found: list[tuple[str, int, str]] = []
    for kind in _kinds(kinds):
        for position, edited in _enumerate(text, kind, spans):
            if edited not in seen:
                seen.add(edited)
                found.append((kind, position, edited))
    if limit is not None and len(found) > limit:
        found = [found[i] for i in np.sort(rng.choice(len(found), size=limit, replace=False))]
    return [(_describe(text, edited, kind, position, spans), edited) for kind, position, edited in found]


@dataclass(frozen=True, eq=False)
class TextAttackResult:
    """What :func:`attack` found, per row (frozen plain data; arrays are read-only).

    Attributes
    ----------
    original, texts : tuple of str
        The rows as given, and where each row's greedy path ended: the adversarial text of a
        flipped row, the text after the last edit of a row never flipped (its most edited version
        still classified correctly), the original of a row wrong at the start or with no edit.
    labels, clean_correct : ndarray
        The true labels; whether the model gets the original right (only those are attacked).
    flipped_at : ndarray of int
        The number of edits at which the predicted label first differed from the true one: ``0``
        for rows wrong at the start, :data:`NOT_FLIPPED` (-1) for rows not flipped within
        ``max_edits`` (or left with no edit to try), :data:`EXHAUSTED` (-2) for rows whose next
        step would have taken their queries beyond ``max_queries``.
    queries : ndarray of int
        Texts sent to ``predict`` for the row, its clean prediction (1) included.
    edits : tuple of tuple of str
        Each row's edits, described in order (``len`` = edits made).
    max_edits, kinds, seed, candidates_per_step, max_queries
        The settings of the attack, kept with its results.
    """

    original: tuple[str, ...]
    texts: tuple[str, ...]
    labels: np.ndarray
    clean_correct: np.ndarray
    flipped_at: np.ndarray
    queries: np.ndarray
    edits: tuple[tuple[str, ...], ...]
    max_edits: int
    kinds: tuple[str, ...]
    seed: int
    candidates_per_step: int
    max_queries: int | None = None

    def __post_init__(self) -> None:
        for name, dtype in (("labels", int), ("clean_correct", bool), ("flipped_at", int), ("queries", int)):
            array = np.array(getattr(self, name), dtype=dtype)
            array.setflags(write=False)
            object.__setattr__(self, name, array)

    @property
    def exhausted(self) -> int:
        """How many rows ran out of query budget (``flipped_at == EXHAUSTED``)."""
        return int(np.sum(self.flipped_at == EXHAUSTED))

    def _budget(self, budget: int) -> None:
        if not 0 <= budget <= self.max_edits:
            raise ValueError(f"budget={budget}: must be between 0 and max_edits={self.max_edits}, the "
                             f"most edits the attack tried")

    def robust_at(self, budget: int) -> np.ndarray:
        """Rows correct at the start and not flipped within ``budget`` edits.

        A row that ran out of queries (:data:`EXHAUSTED`) counts as robust, also at budgets it did
        not reach: :meth:`undecided_at` says which, :attr:`exhausted` how many.
        """
        self._budget(budget)
        return self.clean_correct & ((self.flipped_at < 0) | (self.flipped_at > budget))

    def undecided_at(self, budget: int) -> np.ndarray:
        """Rows counted robust at ``budget`` only because their query budget ran out first."""
        self._budget(budget)
        made = np.array([len(e) for e in self.edits], dtype=int)
        return (self.flipped_at == EXHAUSTED) & (made < budget)

    def robust_accuracy(self, budget: int) -> float:
        """The share of all rows robust at ``budget`` (``nan``, with a warning, for no rows)."""
        robust = self.robust_at(budget)
        if robust.size == 0:
            warnings.warn("robust accuracy of no rows is undefined", RuntimeWarning, stacklevel=2)
            return float("nan")
        return float(np.mean(robust))

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-ready data (lists, ints, strings); :meth:`from_dict` reads it back."""
        out = {f.name: getattr(self, f.name) for f in fields(self)}
        return {k: v.tolist() if isinstance(v, np.ndarray) else
                [list(e) for e in v] if k == "edits" else list(v) if isinstance(v, tuple) else v
                for k, v in out.items()}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> TextAttackResult:
        return cls(**{**data, "original": tuple(data["original"]), "texts": tuple(data["texts"]),
                      "kinds": tuple(data["kinds"]), "edits": tuple(tuple(e) for e in data["edits"])})


def _predict(predict: Predict, texts: Sequence[str], batch_size: int, k: int | None) -> np.ndarray:
    """``predict`` on ``texts`` in chunks of ``batch_size``, each answer checked."""
    parts = []
    for start in range(0, len(texts), batch_size):
        chunk = list(texts[start:start + batch_size])
        out = np.asarray(predict(chunk), dtype=float)
        if out.ndim != 2 or out.shape[0] != len(chunk) or not 2 <= out.shape[1] == (k or out.shape[1]):
            raise ValueError(f"predict returned shape {out.shape} for {len(chunk)} texts: expected "
                             f"({len(chunk)}, {k or 'k >= 2'}) class probabilities")
        if not np.all(np.isfinite(out)):
            raise ValueError("predict returned non-finite probabilities")
        parts.append(out)
    return np.concatenate(parts) if parts else np.empty((0, k or 0))


def attack(predict: Predict, texts: Sequence[str], labels: Sequence[int] | np.ndarray, *, max_edits: int,
           kinds: Iterable[str] = EDIT_KINDS, seed: int = 0, candidates_per_step: int = 32,
           batch_size: int = 256, max_queries: int | None = None) -> TextAttackResult:
    """Greedy search for a label flip within ``max_edits`` single edits, batched across rows.

    Rows the model gets wrong are not attacked (``flipped_at`` 0, one query). At each step every
    unflipped row draws up to ``candidates_per_step`` :func:`candidates` of its text (never one
    its path visited) with its own ``np.random.default_rng([seed, row])``; those of all rows go to
    ``predict`` together, ``batch_size`` at a time. A row keeps the candidate giving its true label
    the lowest probability (the first on ties), even one that raises it, flips when that one's
    argmax is another label, and stops when it flips, has no candidate or made ``max_edits``.
    Results depend on the seed and the row's index only, not on batching or other rows (given a
    ``predict`` that scores each text alone).

    Parameters
    ----------
    predict : callable
        ``predict(list_of_texts)`` -> array of shape ``(len(texts), k)``, class probabilities.
    texts, labels : sequence
        The rows and their true labels (integers in ``[0, k)``).
    max_edits, candidates_per_step, batch_size : int
        The edits per row (>= 0), the candidates scored per row and step, the texts per call.
    kinds : iterable of str
        The edits to try, among :data:`EDIT_KINDS`.
    seed : int
        With the row's index, seeds each row's sampling of candidates.
    max_queries : int, optional
        Per row, its clean prediction included: a row whose next step would go beyond it stops
        there, ``flipped_at`` :data:`EXHAUSTED`, its path a prefix of the one it takes without.

    Returns
    -------
    TextAttackResult
    """
    texts = list(texts)
    if not all(isinstance(t, str) for t in texts):
        raise ValueError("texts: every row must be a str")
    labels = np.asarray(labels)
    if labels.shape != (len(texts),) or (labels.size and not np.issubdtype(labels.dtype, np.integer)):
        raise ValueError(f"labels: expected {len(texts)} integer labels, one per text; got shape "
                         f"{labels.shape} of {labels.dtype}")
    for name, value, least in (("max_edits", max_edits, 0), ("seed", seed, 0),
                               ("candidates_per_step", candidates_per_step, 1),
                               ("batch_size", batch_size, 1), ("max_queries", max_queries, 1)):
        if value is not None and (not isinstance(value, (int, np.integer)) or value < least):
            raise ValueError(f"{name}={value!r}: must be an integer >= {least}")
    chosen = _kinds(kinds)
    n = len(texts)
    clean = _predict(predict, texts, batch_size, None)
    k = clean.shape[1] if n else 2
    if labels.size and (labels.min() < 0 or labels.max() >= k):
        raise ValueError(f"labels: must be in [0, {k}) for predict's {k} classes; got {labels.min()} to "
                         f"{labels.max()}")
    correct = clean.argmax(axis=1) == labels if n else np.zeros(0, dtype=bool)
    flipped_at = np.where(correct, NOT_FLIPPED, 0)
    queries = np.ones(n, dtype=int)
    current: list[str] = list(texts)
    paths: list[list[str]] = [[] for _ in range(n)]
    visited = [{t} for t in texts]
    active = [i for i in range(n) if correct[i]]
    rngs = {i: np.random.default_rng([seed, i]) for i in active}
    for step in range(1, max_edits + 1):
        batch: list[str] = []
        owners: list[tuple[int, list[tuple[str, str]]]] = []
        for i in active:
            found = candidates(current[i], chosen, rngs[i], candidates_per_step, exclude=visited[i])
            if not found:
                continue  # nothing left to try: robust to this attack
            if max_queries is not None and queries[i] + len(found) > max_queries:
                flipped_at[i] = EXHAUSTED
                continue
            owners.append((i, found))
            batch.extend(edited for _, edited in found)
        scores = _predict(predict, batch, batch_size, k)
        active, start = [], 0
        for i, found in owners:
            probs = scores[start:start + len(found)]
            start += len(found)
            queries[i] += len(found)
            best = int(np.argmin(probs[:, labels[i]]))
            paths[i].append(found[best][0])
            current[i] = found[best][1]
            visited[i].add(current[i])
            if int(np.argmax(probs[best])) != labels[i]:
                flipped_at[i] = step
            else:
                active.append(i)
        if not active:
            break
    return TextAttackResult(original=tuple(texts), texts=tuple(current), labels=labels.astype(int),
                            clean_correct=correct, flipped_at=flipped_at, queries=queries,
                            edits=tuple(tuple(p) for p in paths), max_edits=int(max_edits), kinds=chosen,
                            seed=int(seed), candidates_per_step=int(candidates_per_step),
                            max_queries=None if max_queries is None else int(max_queries))
