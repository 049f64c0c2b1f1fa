"""Fairness at small n: exact intervals for group rates, bounds for disparities built from
them, and which group limits a disparity's interval and how many rows it would need.

Pure functions over the per-group counts of one slicing (:func:`group_counts`); the fairness
engine (:mod:`audit.checks.fairness`) calls them.

**Group rates.** A group's accuracy, selection rate, TPR or FPR is ``k`` successes in ``n``
trials (the group's rows, its positives or its negatives). Its interval is the union of the
paired-bootstrap percentile interval and the Clopper-Pearson interval of ``k / n``
(:func:`audit.stats.clopper_pearson`), always: never narrower than either, so a group of 3 rows
all predicted positive has a selection-rate interval of [0.29, 1], not the bootstrap's [1, 1].

**Disparities over tiny groups.** When a group counted in a disparity has fewer than
:data:`EXACT_BELOW` rows (only when ``min_group_size`` is set below it), the bootstrap of the
disparity is no evidence either (the replicates of a group of 3 rows on which both models
agree all say the same), so the disparity's intervals (teacher, student, and the
amplification) are widened to hold a bound built by interval arithmetic on exact intervals
that hold **simultaneously** (Bonferroni: each at ``1 - alpha / m`` for the ``m`` intervals
used), so the bound's coverage is at least the nominal level whatever the group sizes:

* a model's disparity, from each group's Clopper-Pearson interval ``[L_g, U_g]`` of each rate it
  reads: a difference ``max - min`` lies in ``[max(0, max L - min U), max U - min L]``, a ratio
  ``min / max`` in ``[min L / max U, min U / max L]``, the worst group in ``[min L, min U]``,
  the largest gap to the overall rate between the gaps of the intervals; equalized odds take
  the larger (the ratio the smaller) of the TPR and FPR bounds;
* the amplification (student minus teacher, oriented so positive is worse): from the two
  models' bounds (``[S_L - T_U, S_U - T_L]``) and, for differences and the worst group, from
  each group's paired change ``s_g - t_g`` with Tango's interval
  (:func:`audit.stats.tango_interval`): a difference's amplification lies within
  ``+-(max U_delta - min L_delta)``, the worst group's in ``[-max U_delta, -min L_delta]``; the
  tighter of the two holds.

From :data:`EXACT_BELOW` rows on the bound is not joined: Bonferroni makes it wider than it
needs to be, and the bootstrap sees each group's spread. It still cannot see the spread of a
group's *paired change* when the two models disagree on none of its rows (then a gap of 15
rows has a Tango interval of +-0.2 and a bootstrap of [0, 0]); raising the threshold to the
gates' 30-row floor would cover that too, and would make an identical student on groups of
10 to 29 rows inconclusive rather than passing (``tests/test_metrics.py`` asserts it passes).

**Rows needed.** Which group's rows limit a disparity's interval: each group's share of the
disparity's variance, from the groups the disparity reads (the extreme pair of the rate it
compares, of either model for the amplification) with a binomial variance at the observed
rates (Agresti-Coull smoothed, so a rate of 0 or 1 still counts) for a model's value, and the
paired variance of the group's change for the amplification. :func:`rows_to_decide` turns an
undecided bound into the rows that group would need, the other groups as they are, for the
interval to clear the threshold with :data:`audit.power.POWER` power if the observed value
stays: the normal approximation of :mod:`audit.power` (the interval's half-width on the side
of the threshold is read as ``z * sqrt(V)``; each group's part of ``V`` shrinks as ``1 /
rows``), so the rows at today's group shares equal the gates' own rows-needed figure.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from audit.power import POWER
from audit.stats import clopper_pearson, tango_interval, z_value

__all__ = ["EXACT_BELOW", "RATES", "group_counts", "rate_interval", "exact_bounds",
           "spread_shares", "rows_to_decide"]

EXACT_BELOW = 10  # a counted group with fewer rows: the disparity's intervals hold the exact bound
# the group rates each disparity reads
RATES = {"demographic_parity_difference": ("selection_rate",),
         "demographic_parity_ratio": ("selection_rate",),
         "equalized_odds_difference": ("tpr", "fpr"),
         "equalized_odds_ratio": ("tpr", "fpr"),
         "worst_group_accuracy": ("accuracy",)}
_KIND = {"demographic_parity_difference": "difference", "demographic_parity_ratio": "ratio",
         "equalized_odds_difference": "difference", "equalized_odds_ratio": "ratio",
         "worst_group_accuracy": "worst", "max_gap_to_overall": "gap"}
_UPPER = ("max", "max_regression", "max_relative_regression")

Counts = dict[str, dict[str, np.ndarray]]


def rates_of(metric: str, group_metric: str = "accuracy") -> tuple[str, ...]:
    """The group rates ``metric`` reads (``max_gap_to_overall``: its ``group_metric``)."""
    return RATES.get(metric, (group_metric,))


def group_counts(J: np.ndarray, pos: int | None) -> Counts:
    """Per rate, per group, from ``J[group, true, teacher, student]``: the trials, each model's
    successes (``t``, ``s``) and the paired discordant rows (``b``: a success for the student
    only, ``c``: for the teacher only), so ``s - t = (b - c) / trials``."""
    k = J.shape[1]
    idx = np.arange(k)
    shape = (k, k, k)
    every = np.ones(shape, dtype=bool)

    def pack(rows: np.ndarray, t_ok: np.ndarray, s_ok: np.ndarray) -> dict[str, np.ndarray]:
        rows, t_ok, s_ok = (np.broadcast_to(a, shape) for a in (rows, t_ok, s_ok))

        def total(mask: np.ndarray) -> np.ndarray:
            return (J * (rows & mask)).sum(axis=(1, 2, 3)).astype(np.int64)

        return {"trials": total(every), "t": total(t_ok), "s": total(s_ok),
                "b": total(s_ok & ~t_ok), "c": total(t_ok & ~s_ok)}

    y = idx[:, None, None]
    out = {"accuracy": pack(every, y == idx[None, :, None], y == idx[None, None, :])}
    if pos is not None:
        t_pos, s_pos, is_pos = idx[None, :, None] == pos, idx[None, None, :] == pos, y == pos
        out["selection_rate"] = pack(every, t_pos, s_pos)
        out["tpr"] = pack(is_pos, t_pos, s_pos)
        out["fpr"] = pack(~is_pos, t_pos, s_pos)
    return out


def rate_interval(boot: tuple[float, float] | None, k: int, n: int,
                  confidence: float) -> tuple[float, float] | None:
    """A group rate's interval: the union of its bootstrap interval and Clopper-Pearson's."""
    exact = clopper_pearson(k, n, confidence)
    if exact is None:
        return boot
    if boot is None:
        return exact.low, exact.high
    return min(boot[0], exact.low), max(boot[1], exact.high)


def _cp(k: np.ndarray, n: np.ndarray, confidence: float) -> tuple[np.ndarray, np.ndarray]:
    ivs = [clopper_pearson(int(a), int(b), confidence) for a, b in zip(k, n)]
    return (np.array([iv.low for iv in ivs if iv is not None]),
            np.array([iv.high for iv in ivs if iv is not None]))


def _model_bound(kind: str, rate: dict[str, np.ndarray], overall: dict[str, int], who: str,
                 groups: np.ndarray, confidence: float) -> tuple[float, float] | None:
    """Bounds of one model's disparity on one rate from simultaneous exact group intervals."""
    n = rate["trials"][groups]
    ok = n > 0
    if kind != "worst" and kind != "gap" and ok.sum() < 2:
        return None
    if not ok.any():
        return None
    low, high = _cp(rate[who][groups][ok], n[ok], confidence)
    if kind == "difference":
        return max(0.0, float(low.max() - high.min())), float(high.max() - low.min())
    if kind == "ratio":
        lo = float(low.min() / high.max()) if high.max() > 0 else 0.0
        hi = float(min(1.0, high.min() / low.max())) if low.max() > 0 else 1.0
        return lo, hi
    if kind == "worst":
        return float(low.min()), float(high.min())
    o = clopper_pearson(int(overall[who]), int(overall["trials"]), confidence)
    if o is None:
        return None
    gap_low = np.maximum.reduce([np.zeros_like(low), low - o.high, o.low - high])
    gap_high = np.maximum(high - o.low, o.high - low)
    return float(gap_low.max()), float(gap_high.max())


def _combine(metric: str, bounds: list[tuple[float, float]]) -> tuple[float, float] | None:
    """Equalized odds compare the larger of two differences (the smaller of two ratios)."""
    if not bounds:
        return None
    pick = min if _KIND[metric] == "ratio" else max
    return pick(b[0] for b in bounds), pick(b[1] for b in bounds)


def _values(metric: str, counts: Counts, overall: dict[str, dict[str, int]], groups: np.ndarray,
            rates: tuple[str, ...], who: str, confidence: float) -> tuple[float, float] | None:
    found = [_model_bound(_KIND[metric], counts[r], overall[r], who, groups, confidence)
             for r in rates]
    return _combine(metric, [b for b in found if b is not None])


def exact_bounds(metric: str, direction: str, counts: Counts, keep: np.ndarray,
                 group_metric: str, confidence: float) -> dict[str, tuple[float, float]]:
    """The exact bounds of a disparity (``t``, ``s``) and of its regression (``reg``; positive
    is worse) over the groups ``keep`` marks; a key is absent where the bound is undefined."""
    rates = rates_of(metric, group_metric)
    groups = np.flatnonzero(keep)
    overall = {r: {"trials": int(counts[r]["trials"].sum()), "t": int(counts[r]["t"].sum()),
                   "s": int(counts[r]["s"].sum())} for r in rates}
    alpha = 1.0 - confidence
    per_model = len(rates) * len(groups) + (len(rates) if metric == "max_gap_to_overall" else 0)
    out: dict[str, tuple[float, float]] = {}
    for who in ("t", "s"):
        b = _values(metric, counts, overall, groups, rates, who, 1.0 - alpha / per_model)
        if b is not None:
            out[who] = b
    joint = 1.0 - alpha / (2 * per_model + len(rates) * len(groups))
    t = _values(metric, counts, overall, groups, rates, "t", joint)
    s = _values(metric, counts, overall, groups, rates, "s", joint)
    if t is None or s is None:
        return out
    lo, hi = (s[0] - t[1], s[1] - t[0]) if direction == "lower" else (t[0] - s[1], t[1] - s[0])
    kind = _KIND[metric]
    if kind in ("difference", "worst"):
        spans, low_d, high_d = [], [], []
        for r in rates:
            n = counts[r]["trials"][groups]
            found = [tango_interval(int(b), int(c), int(m), joint)
                     for b, c, m in zip(counts[r]["b"][groups], counts[r]["c"][groups], n)]
            ivs = [iv for iv in found if iv is not None]
            if not ivs:
                continue
            low_d.append(min(iv.low for iv in ivs))
            high_d.append(max(iv.high for iv in ivs))
            spans.append(high_d[-1] - low_d[-1])
        if spans and kind == "difference":
            lo, hi = max(lo, -max(spans)), min(hi, max(spans))
        elif spans:  # the worst group: teacher - student lies in [-max U_delta, -min L_delta]
            lo, hi = max(lo, -high_d[0]), min(hi, -low_d[0])
    out["reg"] = (lo, hi)
    return out


def _smoothed(k: float, n: float) -> float:
    """Agresti-Coull's centre ``(k + 2) / (n + 4)``: a rate of 0 or 1 still has a spread."""
    return (k + 2.0) / (n + 4.0)


def _extremes(kind: str, rate: np.ndarray, overall: float) -> list[int]:
    """Positions (into ``rate``) of the groups a disparity of ``kind`` is decided by."""
    finite = np.flatnonzero(np.isfinite(rate))
    if finite.size == 0:
        return []
    values = rate[finite]
    if kind == "worst":
        return [int(finite[values.argmin()])]
    if kind == "gap":
        return [int(finite[np.abs(values - overall).argmax()])]
    return list(dict.fromkeys([int(finite[values.argmax()]), int(finite[values.argmin()])]))


def spread_shares(metric: str, counts: Counts, keep: np.ndarray, labels: list[str],
                  group_metric: str) -> dict[str, list[dict[str, Any]]]:
    """Per judged estimate (``student``: the student's disparity; ``regression``: the
    amplification), the groups its variance comes from, with their rows and share of it,
    largest first."""
    kind = _KIND[metric]
    groups = np.flatnonzero(keep)
    rates = rates_of(metric, group_metric)
    if groups.size == 0:
        return {}

    def rate(r: str, who: str) -> np.ndarray:
        n = counts[r]["trials"][groups].astype(np.float64)
        with np.errstate(invalid="ignore", divide="ignore"):
            return counts[r][who][groups] / n

    def overall(r: str, who: str) -> float:
        return float(counts[r][who].sum() / max(int(counts[r]["trials"].sum()), 1))

    def spread(r: str, who: str) -> float:
        v = rate(r, who)
        v = v[np.isfinite(v)]
        if v.size == 0:
            return float("nan")
        if kind == "ratio":
            return float(v.min() / v.max()) if v.max() > 0 else float("nan")
        if kind == "worst":
            return float(v.min())
        if kind == "gap":
            return float(np.abs(v - overall(r, who)).max())
        return float(v.max() - v.min())

    # the rate that decides equalized odds: the student's larger difference (smaller ratio)
    values = [spread(r, "s") for r in rates]
    finite = [i for i, v in enumerate(values) if math.isfinite(v)]
    if not finite:
        return {}
    r = rates[(min if kind == "ratio" else max)(finite, key=lambda i: values[i])]
    n = counts[r]["trials"][groups].astype(np.float64)
    out: dict[str, list[dict[str, Any]]] = {}
    for key, whos in (("student", ("s",)), ("regression", ("t", "s"))):
        picked = list(dict.fromkeys(i for who in whos
                                    for i in _extremes(kind, rate(r, who), overall(r, who))))
        var = {}
        for i in picked:
            m = n[i]
            p = _smoothed(float(counts[r]["s"][groups][i]), m)
            if key == "student":
                v = p * (1.0 - p) / m
            else:
                b, c = float(counts[r]["b"][groups][i]), float(counts[r]["c"][groups][i])
                v = ((b + c + 1.0) / (m + 2.0) - ((b - c) / (m + 2.0)) ** 2) / m
            var[i] = v / (p * p) if kind == "ratio" else v
        total = sum(var.values())
        if total <= 0:
            continue
        rows = counts["accuracy"]["trials"][groups]  # every row is an accuracy trial
        out[key] = [{"group": labels[groups[i]], "n": int(rows[i]), "share": var[i] / total}
                    for i in sorted(var, key=lambda i: -var[i])]
    return out


def rows_to_decide(m: Any, kind: str, threshold: float) -> tuple[str, int | None, str] | None:
    """For a fairness measurement ``m`` whose ``kind`` bound at ``threshold`` its interval does
    not decide: the group that limits the interval, the rows that group would need (the other
    groups as they are; ``None`` when it alone cannot), and both in words. Where the disparity
    is undefined because groups were excluded as too small: the largest of them and the rows it
    lacks. ``None`` when the bound is decided, or ``m`` carries no group shares (see the module
    docstring)."""
    judged = "student" if kind in ("min", "max") else "regression"
    est = m.student if judged == "student" else m.regression
    excluded = m.extra.get("excluded_groups") or []
    if (est is None or not math.isfinite(est.value)) and excluded:
        # undefined: too few groups count; the largest excluded one is the nearest to counting
        top = excluded[0]
        size = m.params.get("min_group_size")
        return top["group"], int(top["needs"]), (
            f"too few groups have min_group_size={size} rows for the disparity; the largest "
            f"excluded group, {top['group']} (n={top['n']}), would count with {top['needs']} "
            "more rows")
    shares = (m.extra.get("spread_by_group") or {}).get(judged)
    if est is None or est.ci is None or not shares:
        return None
    value, (low, high) = est.value + 0.0, est.ci  # + 0.0: -0.0 reads 0
    tau = threshold
    if kind == "max_relative_regression":
        if m.teacher is None or not math.isfinite(m.teacher.value) or m.teacher.value == 0:
            return None
        tau = threshold * abs(m.teacher.value)
    if not all(map(math.isfinite, (value, low, high))):
        return None
    upper = kind in _UPPER
    if (upper and (high <= tau or low > tau)) or (not upper and (low >= tau or high < tau)):
        return None
    top = shares[0]
    name = "amplification" if judged == "regression" else m.metric
    op = "<=" if upper else ">="
    where = f"{top['group']} (n={top['n']})"
    if value == tau:
        return top["group"], None, (f"the observed {name} equals the threshold: no number of "
                                    f"rows decides {name} {op} {threshold:g} at this value")
    half = (high - value) if tau > value else (value - low)
    margin = abs(value - tau)
    confidence = float(m.evidence.get("confidence", 0.95))
    z_a, z_p = z_value(confidence), z_value(2.0 * POWER - 1.0)
    now, target = (half / z_a) ** 2, (margin / (z_a + z_p)) ** 2
    mine = top["share"] * now
    total = math.ceil(m.n * now / target - 1e-9) if target > 0 else None
    outcome = "show" if (value <= tau) == upper else "rule out"
    assume = (f"{POWER:.0%} power if the {name} stays at {value:.4g}; each group's share of the "
              "spread from its binomial variance")
    at_shares = f"{total:,} eval rows at today's group shares" if total else "more eval rows"
    if target <= now - mine:
        return top["group"], None, (
            f"{where} carries {top['share']:.0%} of this {name}'s spread, but more rows there "
            f"alone cannot {outcome} {name} {op} {threshold:g} (the other groups' spread "
            f"already exceeds the margin); about {at_shares} would ({assume})")
    rows = math.ceil(top["n"] * mine / (target - now + mine) - 1e-9)
    return top["group"], rows, (
        f"{where} carries {top['share']:.0%} of this {name}'s spread: about {rows:,} rows in "
        f"that group (the others as they are), or {at_shares}, would {outcome} {name} {op} "
        f"{threshold:g} ({assume})")
