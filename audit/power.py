"""What a run's evidence can decide, and how many rows a gate needs: pure functions.

A gate passes when its whole interval lies on the allowed side of the threshold. With ``n``
rows, an estimate ``d`` of the true effect ``delta`` and a per-row standard deviation
``sigma`` (so the standard error is ``sigma / sqrt(n)``), the upper end of a two-sided
interval at confidence ``1 - alpha`` is about ``d + z(1 - alpha/2) sigma / sqrt(n)``. It stays
under a threshold ``t > delta`` with probability ``power`` when

    n >= ((z(1 - alpha/2) + z(power)) * sigma / (t - delta))^2

(and symmetrically for a lower bound, or for showing a FAIL when ``delta`` is beyond ``t``).
That normal approximation is the whole model: the effect is taken as fixed, the spread per
row as the pilot's, and the interval as shrinking like ``1 / sqrt(n)``.

``sigma`` comes from closed forms where the metric is a proportion (:func:`sigma_paired`
for a regression of paired proportions, from the discordant pairs; :func:`sigma_proportion`
for a bound on one proportion; :func:`sigma_two_proportions` for a difference of two
independent ones) and otherwise from the pilot's own interval (:func:`sigma_from_interval`).

>>> rows_for_power(sigma_paired(0.10), 0.03)  # 10% discordant rows, max_regression 0.03
873
"""

from __future__ import annotations

import math
from typing import Any

from audit.stats import z_value

__all__ = ["rows_for_power", "rows_for_power_exact", "sigma_paired", "sigma_proportion",
           "sigma_two_proportions", "sigma_from_interval", "spread", "tightest_bound", "POWER",
           "UPPER_KINDS"]

POWER = 0.8
UPPER_KINDS = ("max", "max_regression", "max_relative_regression")


def _z(p: float) -> float:
    """The standard normal quantile at ``p`` (``z_value`` takes a two-sided confidence)."""
    return z_value(2.0 * p - 1.0)


def rows_for_power(sigma: float, margin: float, *, confidence: float = 0.95,
                   power: float = POWER) -> int | None:
    """The rows at which an estimate ``margin`` away from the threshold (its true distance,
    on the side it is to be shown) is decided with probability ``power``; ``None`` when no
    number of rows decides it (``margin`` is 0, or ``sigma`` is not finite)."""
    if not (math.isfinite(sigma) and math.isfinite(margin)) or margin <= 0.0:
        return None
    if sigma <= 0.0:
        return 1
    n = ((z_value(confidence) + _z(power)) * sigma / margin) ** 2
    return max(1, math.ceil(n - 1e-9))


def rows_for_power_exact(p: float, threshold: float, kind: str, *, confidence: float = 0.95,
                         power: float = POWER, limit: int = 10_000_000) -> int | None:
    """Like :func:`rows_for_power` for a bound on one proportion judged by its exact
    (Clopper-Pearson) interval, computed exactly: the fewest rows ``n`` at which a true rate
    ``p`` passes ``min``/``max`` ``threshold`` with probability ``power``, the number of
    successes being binomial. The exact interval is conservative, so this is above the normal
    approximation (at ``p`` 0.96 and ``min`` 0.94, 996 rows against 754). ``None`` when
    ``p`` is not on the passing side, or beyond ``limit`` rows."""
    from scipy.stats import beta, binom

    alpha = 1.0 - confidence
    if (kind == "min" and p <= threshold) or (kind == "max" and p >= threshold):
        return None

    def chance(n: int) -> float:  # P(the exact interval passes) on n rows
        lo, hi = 0, n + 1  # the fewest (min) / most (max) successes that pass
        if kind == "min":  # low(k) = beta.ppf(alpha/2, k, n-k+1) >= threshold, increasing in k
            while lo < hi:
                mid = (lo + hi) // 2
                ok = mid > 0 and beta.ppf(alpha / 2, mid, n - mid + 1) >= threshold
                lo, hi = (lo, mid) if ok else (mid + 1, hi)
            return float(binom.sf(lo - 1, n, p)) if lo <= n else 0.0
        while lo < hi:  # high(k) = beta.ppf(1-alpha/2, k+1, n-k) <= threshold, decreasing
            mid = (lo + hi) // 2
            ok = mid < n and beta.ppf(1 - alpha / 2, mid + 1, n - mid) <= threshold
            lo, hi = (mid + 1, hi) if ok else (lo, mid)
        return float(binom.cdf(lo - 1, n, p)) if lo > 0 else 0.0

    n = rows_for_power(sigma_proportion(p), abs(p - threshold), confidence=confidence,
                       power=power) or 1
    step = max(1, n // 64)
    while chance(n) < power:  # up in steps, then back to the first n that reaches it
        n += step
        if n > limit:
            return None
    while n - 1 >= 1 and chance(n - 1) >= power and step > 1:
        n -= 1
    return n


def sigma_paired(discordance: float, delta: float = 0.0) -> float:
    """Per-row SD of a paired difference of proportions (McNemar): ``p_b + p_c`` discordant
    rows and true difference ``delta = p_b - p_c`` give ``sqrt(p_b + p_c - delta^2)``."""
    return math.sqrt(max(discordance - delta * delta, 0.0))


def sigma_proportion(p: float) -> float:
    """Per-row SD of one proportion: ``sqrt(p (1 - p))``."""
    return math.sqrt(max(p * (1.0 - p), 0.0))


def sigma_two_proportions(p1: float, share1: float, p2: float, share2: float) -> float:
    """Per-row SD (over all rows) of a difference of two independent proportions measured on
    shares ``share1`` and ``share2`` of the rows: ``sqrt(p1 q1 / share1 + p2 q2 / share2)``."""
    if share1 <= 0.0 or share2 <= 0.0:
        return float("inf")
    return math.sqrt(p1 * (1 - p1) / share1 + p2 * (1 - p2) / share2)


def sigma_from_interval(value: float, ci: tuple[float, float], n: int, toward: float,
                        confidence: float = 0.95) -> float:
    """Per-row SD implied by a pilot's interval: the half-width on the side of ``toward``
    (an asymmetric interval is read on the side that matters), times ``sqrt(n)``, over z."""
    low, high = ci
    half = (high - value) if toward >= value else (value - low)
    if not math.isfinite(half) or n <= 0:
        return float("nan")
    return max(half, 0.0) * math.sqrt(n) / z_value(confidence)


def spread(kind: str, threshold: float, value: float, ci: tuple[float, float] | None, n: int,
           evidence: dict[str, Any], delta: float) -> tuple[float, int, str]:
    """The per-trial spread a decision on a ``kind`` bound rests on, the trials it is per, and
    its source: ``"paired"`` (a regression of paired proportions: McNemar's variance of the
    recorded discordant rows at true difference ``delta``), ``"proportion"`` (a bound on one
    proportion, at rate ``delta``) or ``"interval"`` (the interval's half-width on the
    threshold's side, for everything else)."""
    confidence = float(evidence.get("confidence", 0.95))
    if kind == "max_regression" and evidence.get("paired") and "discordant" in evidence:
        pairs = int(evidence["paired"])
        return sigma_paired(int(evidence["discordant"]) / pairs, delta), pairs, "paired"
    if kind in ("min", "max") and evidence.get("trials") and 0 <= value <= 1:
        return sigma_proportion(delta), int(evidence["trials"]), "proportion"
    return (sigma_from_interval(value, ci or (value, value), n, threshold, confidence), n,
            "interval")


def tightest_bound(kind: str, ci: tuple[float, float]) -> float:
    """The tightest threshold of this kind the interval decides as a pass: its upper end for
    ``max``-type bounds, its lower end for ``min``."""
    return ci[1] if kind in UPPER_KINDS else ci[0]
