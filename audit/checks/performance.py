"""Predictive performance of each model: accuracy, balanced accuracy, precision, recall, F1,
ROC AUC and log loss.

Count-based metrics are functions of the confusion matrix ``C[..., true, pred]`` and work on a
whole stack of bootstrap replicates at once. They follow scikit-learn's definitions: classes
that appear neither in the labels nor in the predictions are left out of macro averages, and
an undefined ratio (no predicted positives) counts as 0, as ``zero_division="warn"`` does.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from audit.checks.registry import Family, Metric, Param, register, register_family

__all__ = ["confusion", "AVERAGES", "CLT_INTERVAL"]

AVERAGES = ("binary", "macro", "micro", "weighted")


def confusion(y: np.ndarray, pred: np.ndarray, k: int) -> np.ndarray:
    """Confusion counts ``C[true, pred]`` of shape ``(k, k)``."""
    return np.bincount(y.astype(np.int64) * k + pred.astype(np.int64), minlength=k * k).reshape(k, k)


def _ratio(num: np.ndarray, den: np.ndarray) -> np.ndarray:
    out = np.zeros(np.broadcast(num, den).shape, dtype=np.float64)
    np.divide(num, den, out=out, where=den > 0)
    return out


def _accuracy(C: np.ndarray, k: int, pos: int | None, params: Mapping[str, Any]) -> np.ndarray:
    total = C.sum(axis=(-2, -1))
    return _ratio(np.trace(C, axis1=-2, axis2=-1), total)


def _balanced_accuracy(C: np.ndarray, k: int, pos: int | None, params: Mapping[str, Any]) -> np.ndarray:
    support = C.sum(axis=-1)
    recall = np.where(support > 0, _ratio(np.diagonal(C, axis1=-2, axis2=-1), support), np.nan)
    present = support > 0
    with np.errstate(invalid="ignore"):
        return np.nansum(recall, axis=-1) / present.sum(axis=-1)


def _prf(which: str):
    def fn(C: np.ndarray, k: int, pos: int | None, params: Mapping[str, Any]) -> np.ndarray:
        average = params.get("average") or ("binary" if k == 2 else "macro")
        tp = np.diagonal(C, axis1=-2, axis2=-1).astype(np.float64)
        pred_tot = C.sum(axis=-2)  # column sums: predicted as class j
        true_tot = C.sum(axis=-1)  # row sums: support of class i
        fp = pred_tot - tp
        fn_ = true_tot - tp
        if average == "micro":
            tp, fp, fn_ = tp.sum(-1), fp.sum(-1), fn_.sum(-1)
        elif average == "binary":
            assert pos is not None
            tp, fp, fn_ = tp[..., pos], fp[..., pos], fn_[..., pos]
        if which == "precision":
            score = _ratio(tp, tp + fp)
        elif which == "recall":
            score = _ratio(tp, tp + fn_)
        else:
            score = _ratio(2 * tp, 2 * tp + fp + fn_)
        if average in ("micro", "binary"):
            return score
        present = (true_tot + pred_tot) > 0
        if average == "macro":
            return np.where(present, score, 0.0).sum(-1) / np.maximum(present.sum(-1), 1)
        return _ratio((score * true_tot).sum(-1), true_tot.sum(-1))  # weighted

    return fn


def log_loss_rows(y: np.ndarray, P: np.ndarray, pos: int | None,
                  params: Mapping[str, Any]) -> np.ndarray:
    """Per-row negative log-likelihood of the true label (clipped to the dtype's eps)."""
    eps = np.finfo(P.dtype).eps
    p_true = np.clip(P[np.arange(y.shape[0]), y], eps, 1 - eps)
    return -np.log(p_true)


def log_loss_influence(y: np.ndarray, P: np.ndarray, pos: int | None,
                       params: Mapping[str, Any]) -> tuple[float, np.ndarray]:
    return mean_with_influence(log_loss_rows(y, P, pos, params))


def mean_with_influence(values: np.ndarray) -> tuple[float, np.ndarray]:
    n = values.shape[0]
    mean = float(values.mean())
    if n < 2:
        return mean, np.full(n, np.nan)
    # scaled so that sum(influence**2) is the unbiased variance of the mean
    return mean, (values - mean) / np.sqrt(n * (n - 1))


def _auc_binary(scores: np.ndarray, positive: np.ndarray) -> tuple[float, np.ndarray]:
    """AUC and DeLong influence per row (sum of squares = DeLong's variance)."""
    n = scores.shape[0]
    m = int(positive.sum())
    q = n - m
    infl = np.zeros(n)
    if m == 0 or q == 0:
        return float("nan"), np.full(n, np.nan)
    from scipy.stats import rankdata

    r_all = rankdata(scores)
    r_pos = rankdata(scores[positive])
    r_neg = rankdata(scores[~positive])
    v10 = (r_all[positive] - r_pos) / q  # P(score_pos > score_neg), per positive row
    v01 = 1.0 - (r_all[~positive] - r_neg) / m  # per negative row
    auc = float(v10.mean())
    infl[positive] = (v10 - auc) / np.sqrt(m * max(m - 1, 1))
    infl[~positive] = (v01 - auc) / np.sqrt(q * max(q - 1, 1))
    return auc, infl


def _roc_auc(y: np.ndarray, P: np.ndarray, pos: int | None,
             params: Mapping[str, Any]) -> tuple[float, np.ndarray]:
    if pos is not None:
        return _auc_binary(P[:, pos], y == pos)
    k = P.shape[1]
    aucs, infls = [], []
    for c in range(k):
        auc, infl = _auc_binary(P[:, c], y == c)
        aucs.append(auc)
        infls.append(infl)
    if not np.all(np.isfinite(aucs)):
        return float("nan"), np.full(y.shape[0], np.nan)
    return float(np.mean(aucs)), np.mean(infls, axis=0)


_AVG = {"average": Param("str", "Averaging over classes for precision/recall/f1: binary (the "
                                "positive class; the default for two classes), macro (the default "
                                "otherwise), micro or weighted.", choices=AVERAGES)}
CLT_INTERVAL = "normal approximation of a mean of per-row values (paired for the regression)"

register(Metric("accuracy", "higher", "performance", False, (0.0, 1.0),
                "Share of rows whose top-1 prediction is the true label. Interval: paired bootstrap "
                "over the count table, joined with exact intervals (Clopper-Pearson, Tango for the "
                "regression).", counts=_accuracy))
register(Metric("balanced_accuracy", "higher", "performance", False, (0.0, 1.0),
                "Mean recall over the classes present in the labels. Interval: paired bootstrap "
                "over the count table.", counts=_balanced_accuracy))
register(Metric("precision", "higher", "performance", False, (0.0, 1.0),
                "Precision; average binary (positive class) by default for two classes, macro "
                "otherwise. Interval: paired bootstrap over the count table; binary and micro "
                "precision joined with exact intervals (binary precision's regression: bootstrap "
                "only).", counts=_prf("precision"), params=_AVG))
register(Metric("recall", "higher", "performance", False, (0.0, 1.0),
                "Recall; average binary (positive class) by default for two classes, macro "
                "otherwise. Interval: paired bootstrap over the count table; binary and micro "
                "recall joined with exact intervals.", counts=_prf("recall"), params=_AVG))
register(Metric("f1", "higher", "performance", False, (0.0, 1.0),
                "F1 score; average binary (positive class) by default for two classes, macro "
                "otherwise. Interval: paired bootstrap over the count table; micro F1 joined with "
                "exact intervals.", counts=_prf("f1"), params=_AVG))
register(Metric("roc_auc", "higher", "performance", False, (0.0, 1.0),
                "ROC AUC of the positive class (binary) or one-vs-rest macro average (multiclass). "
                "Interval: DeLong (paired).", influence=_roc_auc,
                interval="DeLong normal approximation (paired for the regression)"))
register(Metric("log_loss", "lower", "performance", False, (0.0, float("inf")),
                "Mean negative log-likelihood of the true label (natural log), probabilities "
                "clipped to [eps, 1-eps] as scikit-learn does. Interval: normal approximation of "
                "a mean (paired).", influence=log_loss_influence, rows=log_loss_rows,
                interval=CLT_INTERVAL))


FAMILY = register_family(Family("performance", "Predictive performance", order=10))
