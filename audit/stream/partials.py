"""The additive tables a streamed run accumulates, batch by batch, and how they merge.

Most metrics are functions of small tables that add up over the rows, so a run over any
number of rows keeps only these (the batches themselves are dropped once counted):

* the joint count table ``J[true, teacher, student]`` (``k**3`` integers): every count metric
  (accuracy, balanced accuracy, precision, recall, F1, agreement, flips) and their paired
  bootstrap, which resamples this table; the numbers equal the in-memory run's exactly (the
  same table, the same multinomial draws);
* the moments (rows, mean, sum of squared deviations; merged with Chan et al.'s update) of each
  mean metric's per-row values (log loss, Brier, KL, JS) for teacher, student and their
  per-row difference: the value and its normal interval, equal to the in-memory run's to
  floating-point summation order (tested to 1e-9 relative);
* for binary ROC AUC, the rows counted by distinct (label, teacher score, student score): DeLong's
  variance and the paired difference's, exactly as the in-memory ranks give them. Its size is
  the number of distinct score pairs, not the rows (small for models of coarse inputs, up to
  the rows for continuous ones).

:meth:`Partials.merge` adds two of them (what a distributed run's workers return).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np

__all__ = ["Moments", "Partials", "auc_from_counts", "table_plan"]


@dataclass
class Moments:
    """Count, mean and sum of squared deviations of a stream of values (mergeable)."""

    n: int = 0
    mean: float = 0.0
    m2: float = 0.0

    def add(self, values: np.ndarray) -> None:
        v = np.asarray(values, dtype=np.float64)
        if v.size == 0:
            return
        mean = float(v.mean())
        self.merge(Moments(int(v.size), mean, float(np.square(v - mean).sum())))

    def merge(self, other: Moments) -> None:
        if other.n == 0:
            return
        if self.n == 0:
            self.n, self.mean, self.m2 = other.n, other.mean, other.m2
            return
        n = self.n + other.n
        delta = other.mean - self.mean
        self.mean += delta * other.n / n
        self.m2 += other.m2 + delta * delta * self.n * other.n / n
        self.n = n

    @property
    def se(self) -> float:
        """The standard error of the mean (unbiased variance): NaN below two values."""
        if self.n < 2:
            return float("nan")
        return math.sqrt(max(self.m2, 0.0) / (self.n * (self.n - 1)))


def _unique_counts(rows: np.ndarray, counts: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    keys, inverse = np.unique(rows, axis=0, return_inverse=True)
    return keys, np.bincount(inverse.ravel(), weights=counts, minlength=len(keys)).astype(np.int64)


@dataclass
class Partials:
    """The additive tables of one run over ``k`` classes (``pos``: the positive class)."""

    k: int
    pos: int | None
    means: tuple[tuple[str, Any, bool], ...] = ()  # (name, rows function, pairwise)
    joint: np.ndarray = field(init=False)
    moments: dict[str, dict[str, Moments]] = field(init=False)
    _auc_keys: np.ndarray = field(init=False)  # distinct (is positive, teacher, student score)
    _auc_counts: np.ndarray = field(init=False)
    _pending: list[tuple[np.ndarray, np.ndarray]] = field(init=False)
    _pending_rows: int = field(init=False, default=0)
    rows: int = 0
    auc: bool = False

    def __post_init__(self) -> None:
        self.joint = np.zeros((self.k,) * 3, dtype=np.int64)
        self.moments = {name: {"teacher": Moments(), "student": Moments(), "diff": Moments()}
                        for name, _, _ in self.means}
        self._auc_keys = np.zeros((0, 3))
        self._auc_counts = np.zeros(0, dtype=np.int64)
        self._pending = []
        self._pending_rows = 0

    def blank(self) -> Partials:
        """Empty tables of the same shape (classes, mean metrics, AUC or not)."""
        return Partials(self.k, self.pos, self.means, auc=self.auc)

    def add(self, y: np.ndarray, p_teacher: np.ndarray, p_student: np.ndarray,
            params: Mapping[str, Mapping[str, Any]] | None = None) -> None:
        """Count one batch: labels ``y`` (class indices) and both models' probabilities."""
        from audit.stats import joint_table

        self.rows += int(y.shape[0])
        self.joint += joint_table(y, p_teacher.argmax(axis=1), p_student.argmax(axis=1), self.k)
        for name, fn, pairwise in self.means:
            got = self.moments[name]
            if pairwise:
                got["student"].add(fn(y, p_teacher, p_student))
                continue
            p = (params or {}).get(name, {})
            vt, vs = fn(y, p_teacher, self.pos, p), fn(y, p_student, self.pos, p)
            got["teacher"].add(vt)
            got["student"].add(vs)
            got["diff"].add(vt - vs)
        if self.auc and self.pos is not None:
            rows = np.column_stack([(y == self.pos).astype(np.float64),
                                    p_teacher[:, self.pos], p_student[:, self.pos]])
            keys, counts = _unique_counts(rows, np.ones(len(rows)))
            self._add_auc(keys, counts)

    def _add_auc(self, keys: np.ndarray, counts: np.ndarray) -> None:
        # batches wait until they hold as many keys as the table (amortised: each key is
        # sorted O(log n) times, not once per batch)
        self._pending.append((keys, counts))
        self._pending_rows += len(keys)
        if self._pending_rows > max(1 << 20, len(self._auc_keys)):
            self._consolidate()

    def _consolidate(self) -> None:
        if not self._pending:
            return
        keys = np.concatenate([self._auc_keys, *(k for k, _ in self._pending)])
        counts = np.concatenate([self._auc_counts, *(c for _, c in self._pending)])
        self._auc_keys, self._auc_counts = _unique_counts(keys, counts)
        self._pending, self._pending_rows = [], 0

    @property
    def auc_keys(self) -> np.ndarray:
        """The distinct (is positive, teacher score, student score) rows counted so far."""
        self._consolidate()
        return self._auc_keys

    @auc_keys.setter
    def auc_keys(self, keys: np.ndarray) -> None:
        self._auc_keys, self._pending, self._pending_rows = keys, [], 0

    @property
    def auc_counts(self) -> np.ndarray:
        """How many rows each of :attr:`auc_keys` counts."""
        self._consolidate()
        return self._auc_counts

    @auc_counts.setter
    def auc_counts(self, counts: np.ndarray) -> None:
        self._auc_counts = counts

    def merge(self, other: Partials) -> None:
        """Add ``other`` (the tables of other rows) into this one."""
        self.rows += other.rows
        self.joint += other.joint
        for name, got in self.moments.items():
            for who, m in got.items():
                m.merge(other.moments[name][who])
        if len(other.auc_counts):
            self._add_auc(other.auc_keys, other.auc_counts)


def _delong(pos: np.ndarray, score: np.ndarray, counts: np.ndarray
            ) -> tuple[float, np.ndarray, int, int]:
    """AUC and each key's DeLong component (v10 for a positive key, v01 for a negative), from
    rows counted per key; midranks, as :func:`scipy.stats.rankdata` gives them."""
    m = int(counts[pos].sum())
    q = int(counts[~pos].sum())
    values, inverse = np.unique(score, return_inverse=True)
    inverse = inverse.ravel()
    neg_at = np.bincount(inverse, weights=np.where(pos, 0, counts), minlength=len(values))
    pos_at = np.bincount(inverse, weights=np.where(pos, counts, 0), minlength=len(values))
    neg_below = np.concatenate([[0.0], np.cumsum(neg_at)[:-1]])
    pos_above = pos_at.sum() - np.cumsum(pos_at)
    comp = np.where(pos, (neg_below[inverse] + 0.5 * neg_at[inverse]) / max(q, 1),
                    (pos_above[inverse] + 0.5 * pos_at[inverse]) / max(m, 1))
    auc = float((comp * counts)[pos].sum() / m) if m and q else float("nan")
    return auc, comp, m, q


def auc_from_counts(keys: np.ndarray, counts: np.ndarray
                    ) -> tuple[tuple[float, float], tuple[float, float], tuple[float, float]]:
    """``(value, DeLong standard error)`` of the teacher's AUC, the student's, and of their
    difference (teacher - student, paired), from rows counted by (is positive, teacher score,
    student score): the numbers :func:`audit.checks.performance._auc_binary` gives on the rows."""
    pos = keys[:, 0] > 0.5
    at, ct, m, q = _delong(pos, keys[:, 1], counts)
    as_, cs, _, _ = _delong(pos, keys[:, 2], counts)
    if not (m and q):
        nan = (float("nan"), float("nan"))
        return nan, nan, nan
    scale = np.where(pos, 1.0 / (m * max(m - 1, 1)), 1.0 / (q * max(q - 1, 1)))
    # each row's influence: (component - auc) / sqrt(m (m - 1)) (positives; q for negatives)
    it, is_ = ct - at, cs - as_

    def se(x: np.ndarray) -> float:
        return math.sqrt(float((counts * np.square(x) * scale).sum()))

    return (at, se(it)), (as_, se(is_)), (at - as_, se(it - is_))


def table_plan(suite: Any) -> tuple[tuple[tuple[str, Any, bool], ...],
                                     dict[str, dict[str, Any]], bool]:
    """What a pass over ``suite``'s eval table counts beyond the count table: each mean
    metric once ``(name, per-row values, pairwise)``, its parameters (its first check's), and
    whether a check reads binary ROC AUC. The registry is loaded here, so a worker process
    (:mod:`audit.stream.distributed`) gets the same plan from the suite alone."""
    from audit.checks.catalogue import metrics

    registry = metrics()
    means: list[tuple[str, Any, bool]] = []
    params: dict[str, dict[str, Any]] = {}
    for spec in suite.checks:
        metric = registry[spec.metric]
        fn = metric.rows if metric.rows is not None else metric.pair_rows
        if fn is not None and spec.metric not in params:
            means.append((spec.metric, fn, metric.pair_rows is not None))
            params[spec.metric] = dict(spec.params)
    return tuple(means), params, any(spec.metric == "roc_auc" for spec in suite.checks)
