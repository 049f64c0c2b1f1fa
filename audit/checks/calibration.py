"""Calibration of each model: ECE, MCE, ACE, class-wise ECE, Brier score and NLL.

What each computes (all in [0, 1] except NLL):

* ``ece`` -- **top-label** expected calibration error: rows are binned by their top-class
  confidence ``max_c P[:, c]``; ECE is the row-weighted mean over non-empty bins of
  ``|accuracy - mean confidence|``. This is *not* netcal's binary mode (which scores the
  positive class's probability); we pass netcal the top-label confidence and correctness so its
  numbers are top-label for binary and multiclass alike.
* ``mce`` -- the largest ``|accuracy - confidence|`` over non-empty bins.
* ``ace`` -- netcal's ACE: the *unweighted* mean of ``|accuracy - confidence|`` over non-empty
  bins (not the adaptive, equal-mass ECE; for that use ``ece`` with ``binning: equal_mass``).
* ``classwise_ece`` -- the mean over classes ``c`` of the ECE of ``P[:, c]`` against
  ``y == c`` (every class's probability, not just the top one).
* ``brier`` -- mean over rows of ``sum_c (P[:, c] - onehot(y)_c)^2 / 2`` for any number of
  classes (for binary this equals scikit-learn's ``brier_score_loss`` on the positive class).
* ``nll`` -- the negative log-likelihood; the same number as ``log_loss``.

Binning follows netcal exactly: probabilities clipped to ``[eps, 1 - eps]``, equal-width edges
``linspace(0, 1, bins + 1)`` (or, for ``equal_mass``, quantiles of the model's own confidences
with the outer edges at 0 and 1), bins ``[a, b)`` with the last one closed.

Intervals: the paired bootstrap runs over the table of rows grouped by (teacher bin, teacher hit,
student bin, student hit): one multinomial draw over its cells per replicate, with each cell's
confidence taken as its mean. Point values are exact; in replicates the within-cell spread of
confidence (inside one narrow bin) is ignored.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from audit.checks.performance import (
    CLT_INTERVAL,
    log_loss_influence,
    log_loss_rows,
    mean_with_influence,
)
from audit.checks.registry import Family, Metric, MetricInput, Param, register, register_family
from audit.results import Figure, Measurement, Table

__all__ = ["bin_edges", "bin_index", "calibration_errors", "reliability", "BINNINGS"]

BINNINGS = ("equal_width", "equal_mass")
DEFAULT_BINS = 15
ADVICE_ROWS = 20_000  # at most this many rows to fit the temperature, and as many to check it


def bin_edges(conf: np.ndarray, bins: int, binning: str = "equal_width") -> np.ndarray:
    """Bin edges over [0, 1] (netcal's: equal width, or quantiles of ``conf`` for equal mass)."""
    if binning == "equal_width":
        return np.linspace(0.0, 1.0, bins + 1)
    edges = np.quantile(_clip(conf), np.linspace(0.0, 1.0, bins + 1))
    edges[0], edges[-1] = 0.0, 1.0
    return edges


def _clip(conf: np.ndarray) -> np.ndarray:
    eps = np.finfo(np.float64).eps
    return np.clip(conf, eps, 1.0 - eps)


def bin_index(conf: np.ndarray, edges: np.ndarray) -> np.ndarray:
    """Bin of each value: ``[a, b)`` bins, the last one closed (scipy's binned_statistic_dd)."""
    idx = np.searchsorted(edges, _clip(conf), side="right") - 1
    return np.clip(idx, 0, len(edges) - 2)


def calibration_errors(hits: np.ndarray, confsum: np.ndarray) -> tuple[np.ndarray, ...]:
    """ECE, MCE and ACE from per-bin counts.

    ``hits[..., b, h]`` counts rows in bin ``b`` with outcome ``h`` (0 wrong, 1 right);
    ``confsum[..., b]`` sums their confidences. Works on stacks of bootstrap replicates.
    """
    n_b = hits.sum(axis=-1).astype(np.float64)
    with np.errstate(invalid="ignore", divide="ignore"):
        gap = np.abs(hits[..., 1] / n_b - confsum / n_b)
    filled = n_b > 0
    gap = np.where(filled, gap, 0.0)
    n = n_b.sum(axis=-1)
    ece = (n_b * gap).sum(axis=-1) / n
    mce = gap.max(axis=-1)
    ace = gap.sum(axis=-1) / np.maximum(filled.sum(axis=-1), 1)
    return ece, mce, ace


@dataclass(frozen=True, eq=False)
class _Component:
    """One binned view of one model: bin, outcome and confidence per row."""

    bins: np.ndarray
    hit: np.ndarray
    conf: np.ndarray
    n_bins: int
    edges: np.ndarray


def calibration_components(y: np.ndarray, P: np.ndarray, metric: str, bins: int,
                           binning: str) -> list[_Component]:
    if metric == "classwise_ece":
        out = []
        for c in range(P.shape[1]):
            conf = P[:, c]
            edges = bin_edges(conf, bins, binning)
            out.append(_Component(bin_index(conf, edges), (y == c).astype(np.int64), conf, bins,
                                  edges))
        return out
    conf = P.max(axis=1)
    hit = (P.argmax(axis=1) == y).astype(np.int64)
    edges = bin_edges(conf, bins, binning)
    return [_Component(bin_index(conf, edges), hit, conf, bins, edges)]


def _exact(comp: _Component) -> tuple[np.ndarray, np.ndarray]:
    """Per-bin (hits, confsum) of one component from its rows."""
    flat = comp.bins * 2 + comp.hit
    hits = np.bincount(flat, minlength=2 * comp.n_bins).reshape(comp.n_bins, 2)
    confsum = np.bincount(comp.bins, weights=_clip(comp.conf), minlength=comp.n_bins)
    return hits, confsum


_WHICH = {"ece": 0, "mce": 1, "ace": 2, "classwise_ece": 0}


def calibration_value(comps: list[_Component], metric: str) -> float:
    values = [calibration_errors(*_exact(c))[_WHICH[metric]] for c in comps]
    return float(np.mean(values))


def _replicates(teacher: list[_Component], student: list[_Component], n_boot: int, seed: int,
                ) -> tuple[list[tuple[np.ndarray, np.ndarray]], list[tuple[np.ndarray, np.ndarray]]]:
    """Paired bootstrap replicates of every component's per-bin (hits, confsum), over the cells
    of rows that share every component's (bin, hit) for both models."""
    comps = teacher + student
    keys = pd.DataFrame({f"k{i}": c.bins * 2 + c.hit for i, c in enumerate(comps)})
    cell = keys.groupby(list(keys.columns), sort=True).ngroup().to_numpy()  # order-free
    n_cells = int(cell.max()) + 1
    counts = np.bincount(cell, minlength=n_cells).astype(np.float64)
    rng = np.random.default_rng(seed)
    R = rng.multinomial(int(counts.sum()), counts / counts.sum(), size=n_boot).astype(np.float64)
    out = []
    for i, c in enumerate(comps):
        code = np.zeros(n_cells, dtype=np.int64)
        code[cell] = keys[f"k{i}"].to_numpy()  # the (bin, hit) code is constant in a cell
        mean_conf = np.bincount(cell, weights=_clip(c.conf), minlength=n_cells) / counts
        onehot = np.zeros((n_cells, 2 * c.n_bins))
        onehot[np.arange(n_cells), code] = 1.0
        hits = (R @ onehot).reshape(n_boot, c.n_bins, 2)
        bin_onehot = np.zeros((n_cells, c.n_bins))
        bin_onehot[np.arange(n_cells), code // 2] = mean_conf
        out.append((hits, R @ bin_onehot))
    return out[: len(teacher)], out[len(teacher):]


def _replicate_values(reps: list[tuple[np.ndarray, np.ndarray]], metric: str) -> np.ndarray:
    return np.mean([calibration_errors(h, c)[_WHICH[metric]] for h, c in reps], axis=0)


def reliability(y: np.ndarray, P: np.ndarray, bins: int, binning: str) -> list[dict[str, Any]]:
    """Reliability-diagram rows (top-label): per bin its edges, count, confidence and accuracy."""
    return _reliability_rows(calibration_components(y, P, "ece", bins, binning)[0])


def _reliability_rows(comp: _Component) -> list[dict[str, Any]]:
    hits, confsum = _exact(comp)
    edges, bins = comp.edges, comp.n_bins
    rows = []
    for b in range(bins):
        n = int(hits[b].sum())
        rows.append({"bin": b, "lower": float(edges[b]), "upper": float(edges[b + 1]), "count": n,
                     "confidence": float(confsum[b] / n) if n else None,
                     "accuracy": float(hits[b, 1] / n) if n else None})
    return rows


def temperature_advice(y: np.ndarray, P: np.ndarray, seed: int, bins: int) -> dict[str, Any]:
    """The temperature that would fix a model's calibration, as advice (never applied).

    The temperature is fitted on one half of the rows (seeded; at most ``ADVICE_ROWS``) and the
    top-label ECE is measured on rows of the other half before and after dividing the logits
    by it. The fit is netcal's ``TemperatureScaling`` (method ``mle``) computed natively:
    netcal's inputs (probabilities clipped to ``[eps, 1 - eps]``; for binary the logit of
    ``P[:, 1]`` under a sigmoid, otherwise ``log P`` under a softmax), one parameter ``w`` that
    multiplies them, chosen to minimise the mean negative log-likelihood, so ``T = 1 / w``.
    netcal stops its L-BFGS-B once the gradient is below 1e-5; we solve for the exact optimum
    (see ``_fit_multiplier``), so its temperature and ours differ by up to about 1e-4
    relative. ``tests/test_temperature.py`` checks the two against each other.
    """
    n = y.shape[0]
    if n < 20:
        return {"available": False, "reason": f"too few rows ({n}) to fit and evaluate"}
    order = np.random.default_rng(seed).permutation(n)
    half = min(n // 2, ADVICE_ROWS)  # one parameter: 20k rows pin it down
    fit, held = order[:half], order[n // 2:n // 2 + half]
    binary = P.shape[1] == 2
    multiplier = _fit_multiplier(_scaling_inputs(P[fit], binary), y[fit], binary)
    if multiplier is None:
        return {"available": False,
                "reason": "on the fit rows the likelihood rises without bound as T approaches 0 "
                          "(the model ranks every row's label first, or every row's last)"}

    def ece(probs: np.ndarray) -> float:
        return calibration_value(calibration_components(y[held], probs, "ece", bins, "equal_width"), "ece")

    scaled = _scaled(_scaling_inputs(P[held], binary), multiplier, binary)
    return {"available": True, "temperature": 1.0 / multiplier if multiplier else float("inf"),
            "ece_before": ece(P[held]), "ece_after": ece(scaled), "fit_rows": int(fit.size),
            "eval_rows": int(held.size),
            "note": "fitted by maximum likelihood (netcal's temperature scaling) on half of the "
                    "eval rows; ECE measured on the other half; logits divided by T; advice "
                    "only, not applied"}


_MAX_MULTIPLIER = 2.0 ** 20  # |w| searched up to about 1e6 (T down to about 1e-6)


def _scaling_inputs(P: np.ndarray, binary: bool) -> np.ndarray:
    """What netcal's temperature scaling scales: the logit of the clipped ``P[:, 1]`` (binary),
    or the log of the clipped ``P`` (multiclass; not renormalised after clipping)."""
    from scipy.special import logit

    if binary:
        return np.asarray(logit(_clip(P[:, 1])), dtype=np.float64)
    return np.log(_clip(P))


def _scaled(x: np.ndarray, w: float, binary: bool) -> np.ndarray:
    """Probabilities after scaling netcal's inputs ``x`` by ``w``: sigmoid or softmax."""
    from scipy.special import expit, softmax

    if binary:
        q = expit(w * x)
        return np.column_stack([1.0 - q, q])
    return np.asarray(softmax(w * x, axis=1), dtype=np.float64)


def _fit_multiplier(x: np.ndarray, y: np.ndarray, binary: bool) -> float | None:
    """The ``w`` minimising the mean NLL of ``sigmoid(w x)`` (binary, ``y`` in {0, 1}) or of
    ``softmax(w x)`` (multiclass); ``None`` when the NLL has no minimum.

    The NLL is convex in ``w``, so its derivative ``g(w)`` (``mean(x (sigmoid(w x) - y))``, or
    ``mean(E_softmax[x] - x_y)``) never decreases: from ``w = 1`` (netcal's start) we step out
    in doubling steps until ``g`` changes sign, then ``brentq`` finds its root to rounding.
    No sign change out to ``|w| = _MAX_MULTIPLIER`` means the NLL falls without bound (in
    floating point ``g`` reaches exactly 0 there once the sigmoid or softmax saturates).

    netcal's binary loss is torch's ``BCELoss`` on sigmoid outputs, which clamps each log at
    -100: it equals this NLL except on rows whose scaled probability of their label rounds to
    0 (``|w x|`` above about 37 on a wrong row), where it is flat instead of linear in ``w``.
    """
    from scipy.optimize import brentq
    from scipy.special import expit, softmax

    rows = np.arange(y.shape[0])

    def grad(w: float) -> float:
        if binary:
            return float(np.mean(x * (expit(w * x) - y)))
        q = softmax(w * x, axis=1)
        return float(np.mean((q * x).sum(axis=1) - x[rows, y]))

    g = grad(1.0)
    if g == 0.0:
        return 1.0
    sign = 1.0 if g < 0 else -1.0  # the root lies above 1 when g(1) < 0
    inner, step = 1.0, 1.0
    while step <= _MAX_MULTIPLIER:
        outer = 1.0 + sign * step
        g_out = grad(outer)
        if g_out * sign > 0:  # strictly: far out, an exact 0 is the softmax saturating
            lo, hi = sorted((inner, outer))
            return float(brentq(grad, lo, hi, xtol=1e-15, rtol=4 * np.finfo(np.float64).eps))
        inner, step = outer, 2.0 * step
    return None


def _measure_binned(metric: Metric, params: Mapping[str, Any], inputs: MetricInput,
                    resampler: Any, confidence: float) -> tuple[Measurement, ...]:
    from audit.checks.measure import paired_measurement

    bins = int(params.get("bins", DEFAULT_BINS))
    binning = str(params.get("binning", "equal_width"))
    view = "classwise" if metric.name == "classwise_ece" else "top-label"

    def build() -> tuple[Any, ...]:
        t = calibration_components(inputs.y, inputs.p_teacher, metric.name, bins, binning)
        s = calibration_components(inputs.y, inputs.p_student, metric.name, bins, binning)
        rows = [{"kind": "reliability", "model": who, **row}
                for who, comps in (("teacher", t), ("student", s))
                for row in _reliability_rows(comps[0])] if view == "top-label" else []
        return (t, s, *_replicates(t, s, resampler.n_boot, resampler.seed), rows)

    t, s, reps_t, reps_s, breakdown = resampler.memo(("binned", view, bins, binning), build)
    rep_t, rep_s = _replicate_values(reps_t, metric.name), _replicate_values(reps_s, metric.name)
    extra: dict[str, Any] = {}
    if metric.name == "ece":
        extra["advice"] = temperature_advice(inputs.y, inputs.p_student, resampler.seed, bins)
    method = (f"paired bootstrap, {resampler.n_boot} multinomial replicates of the (bin, hit) "
              f"table; {bins} {binning.replace('_', '-')} bins")
    m = paired_measurement(metric, calibration_value(t, metric.name),
                           calibration_value(s, metric.name), rep_t, rep_s, confidence,
                           method=method, n=inputs.n,
                           params={"bins": bins, "binning": binning}, breakdown=breakdown,
                           extra=extra)
    return (m,)


def _brier_rows(y: np.ndarray, P: np.ndarray, pos: int | None,
                params: Mapping[str, Any]) -> np.ndarray:
    onehot = np.zeros_like(P)
    onehot[np.arange(y.shape[0]), y] = 1.0
    return ((P - onehot) ** 2).sum(axis=1) / 2.0


def _brier(y: np.ndarray, P: np.ndarray, pos: int | None,
           params: Mapping[str, Any]) -> tuple[float, np.ndarray]:
    return mean_with_influence(_brier_rows(y, P, pos, params))


_BIN_PARAMS = {
    "bins": Param("int", "Number of confidence bins.", default=DEFAULT_BINS, minimum=2,
                  maximum=1000),
    "binning": Param("str", "Bin edges: equal_width, or equal_mass (quantiles of the model's own "
                            "confidences).", default="equal_width", choices=BINNINGS),
}
register(Metric("ece", "lower", "calibration", False, (0.0, 1.0),
                "Top-label expected calibration error (netcal's binning): rows binned by their "
                "top-class confidence; the row-weighted mean of |accuracy − confidence| over "
                "non-empty bins.", custom=_measure_binned, params=_BIN_PARAMS))
register(Metric("mce", "lower", "calibration", False, (0.0, 1.0),
                "Maximum calibration error: the largest |accuracy − confidence| over non-empty "
                "bins (top-label).", custom=_measure_binned, params=_BIN_PARAMS))
register(Metric("ace", "lower", "calibration", False, (0.0, 1.0),
                "netcal's ACE: the unweighted mean gap over non-empty bins (top-label). Not the "
                "adaptive ECE: for equal-mass bins use ece with binning: equal_mass.",
                custom=_measure_binned, params=_BIN_PARAMS))
register(Metric("classwise_ece", "lower", "calibration", False, (0.0, 1.0),
                "The mean over classes c of the ECE of P(c) against y == c.",
                custom=_measure_binned, params=_BIN_PARAMS))
register(Metric("brier", "lower", "calibration", False, (0.0, 1.0),
                "Brier score: mean of Σ_c (p_c − onehot_c)² / 2 (for binary: scikit-learn's "
                "brier_score_loss).", influence=_brier, rows=_brier_rows, interval=CLT_INTERVAL))
register(Metric("nll", "lower", "calibration", False, (0.0, float("inf")),
                "Negative log-likelihood of the true label; the same number as log_loss.",
                influence=log_loss_influence, rows=log_loss_rows, interval=CLT_INTERVAL))


# -- report section ----------------------------------------------------------------------
def _reliability_figures(m: Measurement) -> tuple[Figure, ...]:
    rows = tuple(r for r in m.breakdown if r.get("kind") == "reliability")
    return (Figure("reliability", f"Reliability: {m.metric}", rows),) if rows else ()


def _reliability_tables(m: Measurement) -> tuple[Table, ...]:
    """Teacher and student bins side by side: range, count, confidence, accuracy (bins with
    rows of either model)."""
    by_bin: dict[int, dict[str, Any]] = {}
    for r in m.breakdown:
        if r.get("kind") != "reliability":
            continue
        row = by_bin.setdefault(r["bin"], {"range": f"[{r['lower']:.3f}, {r['upper']:.3f})"})
        who = r["model"]
        row[f"{who}_n"] = r["count"]
        for key, name in (("conf", "confidence"), ("acc", "accuracy")):
            row[f"{who}_{key}"] = None if r[name] is None else float(r[name])
    keys = ("range", *(f"{w}_{k}" for w in ("teacher", "student") for k in ("n", "conf", "acc")))
    rows = tuple(tuple(by_bin[b].get(k) for k in keys) for b in sorted(by_bin)
                 if any(by_bin[b].get(f"{w}_n", -1) != 0 for w in ("teacher", "student")))
    if not rows:
        return ()
    return (Table("Reliability table", ("Confidence bin", *("n", "confidence", "accuracy") * 2),
                  rows, spans=(("", 1), ("Teacher", 3), ("Student", 3))),)


def _advice_words(m: Measurement) -> tuple[str, ...]:
    """The recalibration advice (temperature scaling), in words."""
    from audit.results import format_value

    advice = m.extra.get("advice")
    if not advice:
        return ()
    if not advice.get("available"):
        return (f"No recalibration advice: {advice.get('reason', '')}",)
    before, after = advice["ece_before"], advice["ece_after"]
    b, a = format_value(float(before)), format_value(float(after))
    if after >= before:
        return (f"No recalibration advised: temperature scaling (T = {advice['temperature']:.3f}) "
                f"would not lower the student's ECE on held-out rows ({b} -> {a}; "
                f"{advice['note']}).",)
    return (f"Temperature scaling with T = {advice['temperature']:.3f} would take the student's "
            f"ECE from {b} to {a} on held-out rows ({advice['note']}).",)


FAMILY = register_family(Family("calibration", "Calibration", order=30,
                                figures=_reliability_figures, tables=_reliability_tables,
                                notes=_advice_words))
