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

Exact intervals for proportions, and how they join the bootstrap. A bootstrap of a handful of
rows is not evidence: with two rows that both models get right, every replicate is the same,
so the percentile interval of the difference is [0, 0]. Metrics that are a proportion of rows
(accuracy, agreement, flip rates, binary or micro recall and precision) therefore also get a
closed-form interval, and the interval reported is the **union** of the two (the lower of the
two lows, the higher of the two highs): never narrower than the bootstrap, never narrower
than the exact interval. At a few thousand rows the two nearly coincide; at ten rows the exact
one decides.

* a single proportion ``k / n``: **Clopper-Pearson** (:func:`clopper_pearson`), exact: its
  coverage is at least the nominal level for every true proportion;
* a paired difference ``(b - c) / n`` of two proportions measured on the same ``n`` rows
  (``b`` rows only the first model gets right, ``c`` only the second): **Tango's score
  interval** (:func:`tango_interval`; Tango 1998, the interval Fagerland, Lydersen and Laake
  2014 recommend). With no discordant row it is ``+-z^2 / (n + z^2)``: two rows the models
  agree on give [-0.66, +0.66], not [0, 0]. Newcombe's hybrid score interval (method 10 of
  Newcombe 1998) was the other candidate and agrees closely (tested); Tango's was chosen
  because with no discordant row its width depends on ``n`` alone, not on how the agreed rows
  split between right and wrong, so "the rows a PASS needs" has a closed form.

:func:`rows_to_pass` inverts these: the fewest rows at which even a perfect result could
clear a bound, which the gates quote when they call a small sample inconclusive.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from statistics import NormalDist

import numpy as np

__all__ = [
    "Interval",
    "joint_table",
    "bootstrap_tables",
    "cluster_ratio_replicates",
    "percentile_interval",
    "normal_interval",
    "normal_interval_se",
    "z_value",
    "clopper_pearson",
    "tango_interval",
    "union",
    "rows_to_pass",
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


def cluster_ratio_replicates(numerators: np.ndarray, denominators: np.ndarray, n_boot: int,
                             seed: int, chunk: int = 256) -> np.ndarray:
    """Bootstrap replicates of ``sum(numerators) / sum(denominators)``, resampling clusters.

    Row ``i`` is one cluster (a document): ``numerators[i]`` (or ``numerators[i, j]`` for
    ``j`` several statistics at once) sums a value over its units (tokens), ``denominators[i]``
    counts them. Units inside a cluster are correlated, so the clusters are what is resampled,
    with replacement, the same draws for every column: a replicate is
    ``counts @ numerators / counts @ denominators`` with ``counts`` one multinomial draw of
    how often each cluster is picked. Returns shape ``(n_boot,)`` or ``(n_boot, j)``; a
    replicate whose clusters hold no unit is ``NaN``.

    >>> reps = cluster_ratio_replicates(np.array([1.0, 3.0]), np.array([1.0, 1.0]), 4, 0)
    >>> bool(np.all((reps >= 1) & (reps <= 3)))
    True
    """
    num = np.asarray(numerators, dtype=np.float64)
    den = np.asarray(denominators, dtype=np.float64)
    n = len(den)
    rng = np.random.default_rng([seed, 7])
    out = np.empty((n_boot, *num.shape[1:]))
    for start in range(0, n_boot, chunk):
        counts = rng.multinomial(n, np.full(n, 1.0 / n), size=min(chunk, n_boot - start))
        counts = counts.astype(np.float64)
        total = counts @ den
        with np.errstate(invalid="ignore", divide="ignore"):
            out[start:start + len(counts)] = (counts @ num) / (
                total[:, None] if num.ndim > 1 else total)
    return out


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
    return normal_interval_se(value, float(np.sqrt(np.sum(np.square(influence)))), confidence)


def normal_interval_se(value: float, se: float, confidence: float) -> Interval | None:
    """Normal interval ``value +- z * se``; ``None`` if either is undefined."""
    if not np.isfinite(value):
        return None
    if not np.isfinite(se):
        return None
    half = z_value(confidence) * se
    return Interval(value - half, value + half)


def clopper_pearson(k: int, n: int, confidence: float) -> Interval | None:
    """Clopper-Pearson (exact binomial) interval for ``k`` successes in ``n`` trials.

    The equal-tailed beta-quantile form; ``None`` when ``n`` is 0.

    >>> iv = clopper_pearson(2, 2, 0.95)
    >>> round(iv.low, 4), iv.high
    (0.1581, 1.0)
    """
    from scipy.stats import beta

    if n <= 0:
        return None
    alpha = 1.0 - confidence
    low = 0.0 if k <= 0 else float(beta.ppf(alpha / 2.0, k, n - k + 1))
    high = 1.0 if k >= n else float(beta.ppf(1.0 - alpha / 2.0, k + 1, n - k))
    return Interval(low, high)


def _tango_score(delta: float, b: int, c: int, n: int) -> float:
    """Tango's score statistic for ``p_b - p_c = delta``: ``(b - c - n delta) / sd``, with the
    variance at the maximum-likelihood cell probabilities under that ``delta``."""
    w = -b - c + (2 * n - b + c) * delta
    p_c = (math.sqrt(max(w * w + 8.0 * n * c * delta * (1.0 - delta), 0.0)) - w) / (4.0 * n)
    var = n * (2.0 * p_c + delta * (1.0 - delta))
    num = b - c - n * delta
    if var <= 0.0:
        return math.copysign(math.inf, num) if num else 0.0
    return num / math.sqrt(var)


def tango_interval(b: int, c: int, n: int, confidence: float) -> Interval | None:
    """Tango's (1998) asymptotic score interval for a paired difference of proportions.

    On ``n`` paired rows, ``b`` are a success for the first model only and ``c`` for the second
    only; the difference is ``(b - c) / n``. The interval is every ``delta`` whose score test is
    not rejected at ``1 - confidence``. ``None`` when ``n`` is 0.

    >>> iv = tango_interval(0, 0, 2, 0.95)  # z^2 / (n + z^2) either side with no discordant row
    >>> round(iv.low, 4), round(iv.high, 4)
    (-0.6576, 0.6576)
    """
    from scipy.optimize import brentq

    if n <= 0:
        return None
    z = z_value(confidence)
    theta = (b - c) / n
    edge = 1e-12
    if theta <= -1.0 + edge:
        low = -1.0
    else:
        low = float(brentq(lambda d: _tango_score(d, b, c, n) - z, -1.0 + edge, theta,
                           xtol=1e-13))
    if theta >= 1.0 - edge:
        high = 1.0
    else:
        high = float(brentq(lambda d: _tango_score(d, b, c, n) + z, theta, 1.0 - edge,
                            xtol=1e-13))
    return Interval(low, high)


def union(*intervals: Interval | None) -> Interval | None:
    """The smallest interval holding every given one (``None`` entries are skipped)."""
    given = [iv for iv in intervals if iv is not None]
    if not given:
        return None
    return Interval(min(iv.low for iv in given), max(iv.high for iv in given))


def rows_to_pass(kind: str, threshold: float, confidence: float) -> int | None:
    """The fewest rows on which a perfect result could clear a bound on a proportion.

    ``kind`` is ``min`` (all rows succeed: the Clopper-Pearson low ``(alpha/2)**(1/n)`` must
    reach the bound), ``max`` (no row succeeds: the high ``1 - (alpha/2)**(1/n)`` must stay
    under it) or ``max_regression`` (no discordant row: Tango's high ``z^2 / (n + z^2)`` must
    stay under it). ``None`` when no number of rows can (a bound of 0 or 1).

    >>> rows_to_pass("max_regression", 0.02, 0.95), rows_to_pass("min", 0.78, 0.95)
    (189, 15)
    """
    alpha = 1.0 - confidence
    if kind == "min":
        if not 0.0 < threshold < 1.0:
            return None if threshold >= 1.0 else 1
        return max(1, math.ceil(math.log(alpha / 2.0) / math.log(threshold) - 1e-9))
    if kind == "max":
        if not 0.0 < threshold < 1.0:
            return None if threshold <= 0.0 else 1
        return max(1, math.ceil(math.log(alpha / 2.0) / math.log(1.0 - threshold) - 1e-9))
    if threshold <= 0.0:
        return None
    if threshold >= 1.0:
        return 1
    z2 = z_value(confidence) ** 2
    return max(1, math.ceil(z2 * (1.0 - threshold) / threshold - 1e-9))
