"""Single edits of a text: the moves of the text attack (:mod:`audit.probes.text_attack`).

Character edits inside a word (``swap`` two adjacent letters, ``drop`` one, ``insert`` one,
``keyboard``: a QWERTY neighbour keeping its case, ``case``, ``whitespace``: join two words or
split one) and word edits (``word_drop``, ``word_duplicate``, ``word_swap`` of adjacent words).
Words are maximal runs of non-space characters; an edit keeps the spacing elsewhere intact, and
character edits change letters only (never punctuation or digits). :func:`candidates` lists the
distinct single edits of a text (a seeded sample of them when there are more than asked).
Standard library and numpy only.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Collection, Iterable, Iterator, Mapping
from types import MappingProxyType

import numpy as np

__all__ = ["EDIT_KINDS", "CHARACTER_EDITS", "WORD_EDITS", "KEYBOARD_NEIGHBOURS", "swap", "drop",
           "insert", "keyboard", "case", "whitespace", "word_drop", "word_duplicate", "word_swap",
           "candidates", "checked_kinds"]

CHARACTER_EDITS: tuple[str, ...] = ("swap", "drop", "insert", "keyboard", "case", "whitespace")
WORD_EDITS: tuple[str, ...] = ("word_drop", "word_duplicate", "word_swap")
EDIT_KINDS: tuple[str, ...] = CHARACTER_EDITS + WORD_EDITS


_WORD = re.compile(r"\S+")
_ROWS = ("qwertyuiop", "asdfghjkl", "zxcvbnm")
_ROW_OFFSETS = (0.0, 0.25, 0.75)  # the letter rows' stagger, in key widths

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


def checked_kinds(kinds: Iterable[str]) -> tuple[str, ...]:
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
    for kind in checked_kinds(kinds):
        for position, edited in _enumerate(text, kind, spans):
            if edited not in seen:
                seen.add(edited)
                found.append((kind, position, edited))
    if limit is not None and len(found) > limit:
        found = [found[i] for i in np.sort(rng.choice(len(found), size=limit, replace=False))]
    return [(_describe(text, edited, kind, position, spans), edited) for kind, position, edited in found]
