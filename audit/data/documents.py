"""Text a language model reads whole: documents and minimal pairs (JSONL, one per line).

A multiple-choice suite (:mod:`audit.data.items`) may also name

* **documents**: ``{"id": ..., "text": ...}`` per line. ``data.documents`` are held-out
  documents the token-level fidelity checks read; in such a suite ``data.train``,
  ``data.teacher_train`` and ``data.holdout`` are documents too (the members and non-members
  of membership inference);
* **minimal pairs**: ``{"more": ..., "less": ..., "bias_type": ...}`` per line
  (``data.pairs``): a more and a less stereotypical sentence that differ in a few words, as
  CrowS-Pairs writes them (``sent_more`` / ``sent_less``, its own field names, are read too).
  ``bias_type`` is optional (the pairs form one group, ``all``, without it).

A problem is named by its file and line; an empty text is refused (a model scores nothing).
"""

from __future__ import annotations

import difflib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from audit.data.hashing import file_sha256
from audit.data.items import json_lines
from audit.errors import DataError, display_path

__all__ = ["Documents", "Pairs", "read_documents", "read_pairs", "PAIR_FIELDS",
           "unknown_bias_type"]

# (more, less) field names, the suite's own first, then CrowS-Pairs' (lm-evaluation-harness's)
PAIR_FIELDS = (("more", "less"), ("sent_more", "sent_less"))
NO_BIAS_TYPE = "all"


@dataclass(frozen=True)
class Documents:
    """The documents of one file: ``ids`` (the ``id`` field, else ``line <n>``) and ``texts``."""

    path: Path
    ids: tuple[str, ...]
    texts: tuple[str, ...]
    sha256: str

    def __len__(self) -> int:
        return len(self.texts)

    @property
    def n_bytes(self) -> int:
        """The documents' UTF-8 bytes (what bits per byte divides by)."""
        return sum(len(t.encode("utf-8")) for t in self.texts)


@dataclass(frozen=True)
class Pairs:
    """Minimal pairs: ``more[i]`` the more stereotypical sentence of pair ``i``, ``less[i]`` the
    less, ``bias_types[i]`` its bias type (``all`` when the file gives none)."""

    path: Path
    ids: tuple[str, ...]
    more: tuple[str, ...]
    less: tuple[str, ...]
    bias_types: tuple[str, ...]
    sha256: str

    def __len__(self) -> int:
        return len(self.more)


def _text(item: dict[str, Any], key: str, at: str, fix: str) -> str:
    value = item.get(key)
    if not isinstance(value, str) or not value.strip():
        got = "missing" if key not in item else f"{type(value).__name__} {value!r}"[:80]
        raise DataError(f"{at}: field {key!r} is {got}, not a non-empty string; {fix}")
    return value


def _id(item: dict[str, Any], number: int) -> str:
    value = item.get("id")
    return f"line {number}" if value is None else str(value)


def read_documents(path: Path, key: str = "documents") -> Documents:
    """The documents of the JSONL file ``path`` (``key``: the suite key naming it, for
    messages)."""
    where = display_path(path)
    if path.suffix.lower() != ".jsonl":
        raise DataError(f"{where}: data.{key} of a language-model suite is a .jsonl file of "
                        "documents, one {\"text\": ...} object per line")
    lines = json_lines(path, "documents")
    texts, ids = [], []
    for number, item in lines:
        texts.append(_text(item, "text", f"{where}:{number}",
                           f"write each document as {{\"text\": \"...\"}} (data.{key})"))
        ids.append(_id(item, number))
    return Documents(path, tuple(ids), tuple(texts), file_sha256(path))


def read_pairs(path: Path) -> Pairs:
    """The minimal pairs of the JSONL file ``path`` (``data.pairs``)."""
    where = display_path(path)
    if path.suffix.lower() != ".jsonl":
        raise DataError(f"{where}: data.pairs is a .jsonl file of minimal pairs, one "
                        "{\"more\": ..., \"less\": ..., \"bias_type\": ...} object per line")
    lines = json_lines(path, "pairs")
    first = lines[0][1]
    names = next((p for p in PAIR_FIELDS if p[0] in first or p[1] in first), PAIR_FIELDS[0])
    fix = (f"write each pair as {{\"{names[0]}\": <the more stereotypical sentence>, "
           f"\"{names[1]}\": <the less>, \"bias_type\": ...}}")
    more, less, bias, ids = [], [], [], []
    for number, item in lines:
        at = f"{where}:{number}"
        a, b = _text(item, names[0], at, fix), _text(item, names[1], at, fix)
        if a == b:
            raise DataError(f"{at}: the two sentences are the same ({a[:60]!r}); a minimal pair "
                            "differs in the words that carry the stereotype")
        kind = item.get("bias_type", NO_BIAS_TYPE)
        if not isinstance(kind, str) or not kind:
            raise DataError(f"{at}: bias_type {kind!r} is not a non-empty string")
        more.append(a)
        less.append(b)
        bias.append(kind)
        ids.append(_id(item, number))
    return Pairs(path, tuple(ids), tuple(more), tuple(less), tuple(bias), file_sha256(path))


def unknown_bias_type(chosen: str, bias_types: tuple[str, ...]) -> str | None:
    """Why ``chosen`` names no bias type of the pairs (with a did-you-mean), or ``None``.

    >>> unknown_bias_type("gendre", ("gender", "age"))
    "bias_type 'gendre' is not in data.pairs; did you mean 'gender'? (its bias types: age, gender)"
    """
    known = sorted(set(bias_types))
    if chosen in known:
        return None
    close = difflib.get_close_matches(str(chosen), known, n=1)
    hint = f"; did you mean {close[0]!r}?" if close else ""
    return f"bias_type {chosen!r} is not in data.pairs{hint} (its bias types: {', '.join(known)})"
