"""Confidence intervals: paired multinomial bootstrap over count tables, and influence-based
normal intervals for metrics that are means (or U-statistics) of per-row values.

Two engines, chosen per metric where it is registered:

* **counts** -- accuracy, F1, agreement, flips and every other metric that is a function of the
  joint table of (true label, teacher prediction, student prediction) counts. Resampling rows
  with replacement is the same as drawing the table's cells from one multinomial, so the
  paired bootstrap costs ``n_boot x cells`` whatever the number of rows (exact, not an
  approximation). Intervals are percentile intervals.
* **influence** -- log loss, KL/JS divergence (means of per-row values) and ROC AUC (a
  U-statistic, DeLong's structural components). Each metric returns its per-row influence
  values; the variance is their sum of squares and a paired difference uses the difference of
  the two models' influences, so the correlation between teacher and student is accounted for.
  For binary ROC AUC this is exactly DeLong's (paired) variance.
"""

from __future__ import annotations

from dataclasses import dataclass
from statistics import NormalDist

import numpy as np

__all__ = [
    "Interval",
    "joint_table",
    "bootstrap_tables",
    "percentile_interval",
    "normal_interval",
    "z_value",
]


@dataclass(frozen=True)
class Interval:
    """A two-sided interval with the method that produced it."""

    low: float
    high: float


def z_value(confidence: float) -> float:
    """Two-sided standard-normal quantile for ``confidence`` (0.95 -> 1.95996...)."""
    return NormalDist().inv_cdf(0.5 + confidence / 2.0)


def joint_table(y: np.ndarray, pred_teacher: np.ndarray, pred_student: np.ndarray, k: int) -> np.ndarray:
    """Count rows per (true, teacher prediction, student prediction) cell.

    Returns an int64 array of shape ``(k, k, k)``.

    >>> joint_table(np.array([0, 1, 1]), np.array([0, 1, 0]), np.array([0, 0, 0]), 2)[1]
    array([[1, 0],
           [1, 0]])
    """
    flat = (y.astype(np.int64) * k + pred_teacher.astype(np.int64)) * k + pred_student.astype(np.int64)
    return np.bincount(flat, minlength=k**3).reshape(k, k, k)


def bootstrap_tables(table: np.ndarray, n_boot: int, seed: int) -> np.ndarray:
    """Draw ``n_boot`` bootstrap replicates of a count table.

    Equivalent to resampling the underlying rows with replacement: one multinomial draw per
    replicate with the observed cell frequencies. Returns shape ``(n_boot, *table.shape)``.
    """
    flat = table.reshape(-1).astype(np.float64)
    n = int(flat.sum())
    rng = np.random.default_rng(seed)
    draws = rng.multinomial(n, flat / n, size=n_boot)
    return draws.reshape((n_boot, *table.shape))


def percentile_interval(samples: np.ndarray, confidence: float) -> Interval | None:
    """Percentile interval of bootstrap replicates; ``None`` when no replicate is defined."""
    finite = samples[np.isfinite(samples)]
    if finite.size == 0:
        return None
    alpha = 1.0 - confidence
    low, high = np.quantile(finite, [alpha / 2.0, 1.0 - alpha / 2.0])
    return Interval(float(low), float(high))


def normal_interval(value: float, influence: np.ndarray, confidence: float) -> Interval | None:
    """Normal interval ``value +- z * sqrt(sum(influence**2))``; ``None`` if undefined."""
    if not np.isfinite(value):
        return None
    se = float(np.sqrt(np.sum(np.square(influence))))
    if not np.isfinite(se):
        return None
    half = z_value(confidence) * se
    return Interval(value - half, value + half)
