"""Black-box, query-budgeted text attacks: greedy character and word edits to a label flip.

ART has no text attacks. This one attacks any classifier given as ``predict(texts: list[str])
-> (len(texts), k)`` class probabilities (standard library and numpy only): the single edits of
:mod:`audit.probes.edits` are the moves, :func:`attack` a greedy search for a label flip within
``max_edits`` of them, batched across rows, and :class:`TextAttackResult` what it found.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, fields
from typing import Any

import numpy as np

from audit.probes.edits import (
    CHARACTER_EDITS,
    EDIT_KINDS,
    KEYBOARD_NEIGHBOURS,
    WORD_EDITS,
    candidates,
    case,
    checked_kinds,
    drop,
    insert,
    keyboard,
    swap,
    whitespace,
    word_drop,
    word_duplicate,
    word_swap,
)

# the edits are re-exported: the attack family's one public face
__all__ = ["EDIT_KINDS", "CHARACTER_EDITS", "WORD_EDITS", "KEYBOARD_NEIGHBOURS", "NOT_FLIPPED",
           "EXHAUSTED", "swap", "drop", "insert", "keyboard", "case", "whitespace", "word_drop",
           "word_duplicate", "word_swap", "candidates", "attack", "TextAttackResult"]

NOT_FLIPPED = -1  # flipped_at of a row not flipped within max_edits (or with no edit to try)
EXHAUSTED = -2  # flipped_at of a row whose query budget ran out first

Predict = Callable[[list[str]], Any]


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
    chosen = checked_kinds(kinds)
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
