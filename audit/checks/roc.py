"""ROC statistics of membership-inference scores: AUC, advantage (max TPR - FPR) and TPR at low
FPR, for one score vector, a batch of them, or bootstrap replicates drawn as row counts.

The bootstrap does not re-sort anything: the rows are sorted by score once, a replicate is a
vector of counts (how often each row was drawn), and the ROC's corners are cumulative sums of
those counts in the sorted order, so a replicate costs O(n) instead of O(n log n) plus the
copies. :func:`resampled_roc_stats` equals :func:`roc_stats` on the explicitly resampled rows
(tested).
"""

from __future__ import annotations

import numpy as np

__all__ = ["FPR_LEVELS", "roc_stats", "roc_points", "stratified_counts", "resampled_roc_stats"]

FPR_LEVELS = (0.01, 0.001)  # the gated level first
ROC_POINTS = 50


def roc_stats(scores: np.ndarray, labels: np.ndarray,
              fpr_levels: tuple[float, ...] = FPR_LEVELS) -> dict[str, np.ndarray]:
    """ROC AUC, advantage and TPR at FPR levels, for each row of ``scores``.

    Parameters
    ----------
    scores : ndarray, shape (b, n) or (n,)
        Attack scores (higher = more likely a member), one row per replicate.
    labels : ndarray, same shape
        1 for members, 0 for non-members; every row must hold both.
    fpr_levels : tuple of float
        FPR levels for the TPR (the largest TPR on the ROC with FPR <= level, no interpolation).

    Returns
    -------
    dict
        ``auc``, ``advantage`` (max of TPR - FPR over thresholds, at least 0) and ``tpr@<level>``
        arrays of shape (b,) (or scalars' 0-d arrays for 1-D input).

    Examples
    --------
    >>> r = roc_stats(np.array([0.9, 0.8, 0.3, 0.1]), np.array([1, 0, 1, 0]))
    >>> float(r["auc"]), float(r["advantage"])
    (0.75, 0.5)
    """
    s = np.atleast_2d(np.asarray(scores, dtype=float))
    y = np.atleast_2d(np.asarray(labels, dtype=float))
    n_pos, n_neg = y.sum(axis=1), (1 - y).sum(axis=1)
    # the ROC's corners: sort by score, descending, and keep the last row of each tie group
    order = np.argsort(-s, axis=1, kind="stable")
    ss = np.take_along_axis(s, order, axis=1)
    ys = np.take_along_axis(y, order, axis=1)
    tpr = np.cumsum(ys, axis=1) / n_pos[:, None]
    fpr = np.cumsum(1 - ys, axis=1) / n_neg[:, None]
    corner = np.ones_like(ss, dtype=bool)
    corner[:, :-1] = ss[:, :-1] != ss[:, 1:]
    # AUC: the trapezoids between consecutive corners (ties counted half, as Mann-Whitney U)
    last = np.maximum.accumulate(np.where(corner, np.arange(ss.shape[1]), -1), axis=1)
    prev = np.full_like(last, -1)
    prev[:, 1:] = last[:, :-1]
    safe = np.maximum(prev, 0)
    prev_tpr = np.where(prev >= 0, np.take_along_axis(tpr, safe, axis=1), 0.0)
    prev_fpr = np.where(prev >= 0, np.take_along_axis(fpr, safe, axis=1), 0.0)
    auc = np.where(corner, (fpr - prev_fpr) * (tpr + prev_tpr) / 2, 0.0).sum(axis=1)
    out = {"auc": auc, "advantage": np.maximum(np.where(corner, tpr - fpr, -np.inf).max(axis=1), 0.0)}
    for level in fpr_levels:
        ok = corner & (fpr <= level + 1e-12)
        out[f"tpr@{level:g}"] = np.where(ok, tpr, 0.0).max(axis=1)
    if np.ndim(scores) == 1:
        return {k: v[0] for k, v in out.items()}
    return out


def roc_points(scores: np.ndarray, labels: np.ndarray, max_points: int = ROC_POINTS
               ) -> tuple[list[float], list[float]]:
    """The ROC curve (scikit-learn's points, from (0, 0) to (1, 1)), downsampled to about
    ``max_points`` points, keeping both ends."""
    from sklearn.metrics import roc_curve

    fpr, tpr, _ = roc_curve(labels, scores)
    if len(fpr) > max_points:
        keep = np.unique(np.round(np.linspace(0, len(fpr) - 1, max_points)).astype(int))
        fpr, tpr = fpr[keep], tpr[keep]
    return [float(v) for v in fpr], [float(v) for v in tpr]


def stratified_counts(labels: np.ndarray, n_boot: int, rng: np.random.Generator) -> np.ndarray:
    """Bootstrap counts, shape ``(n_boot, n)``: each replicate draws as many members among the
    members (``labels == 1``) and non-members among the non-members as there are, with
    replacement, and counts how often each row was drawn."""
    labels = np.asarray(labels)
    counts = np.zeros((n_boot, len(labels)), np.int32)
    for side in (1, 0):
        rows = np.flatnonzero(labels == side)
        m = len(rows)
        drawn = rng.integers(0, m, size=(n_boot, m)) + (np.arange(n_boot) * m)[:, None]
        counts[:, rows] = np.bincount(drawn.ravel(), minlength=n_boot * m).reshape(n_boot, m)
    return counts


def resampled_roc_stats(scores: np.ndarray, labels: np.ndarray, counts: np.ndarray,
                        fpr_levels: tuple[float, ...] = FPR_LEVELS) -> dict[str, np.ndarray]:
    """:func:`roc_stats` of each bootstrap replicate given as row ``counts`` (n_boot, n)."""
    s = np.asarray(scores, dtype=float)
    y = np.asarray(labels).astype(bool)
    order = np.argsort(-s, kind="stable")
    s, y, w = s[order], y[order], np.asarray(counts)[:, order]
    # the last row of each tie group is a corner of every replicate's ROC (a group no row of
    # which was drawn repeats the previous point: no area, no new maximum)
    corner = np.ones(len(s), dtype=bool)
    corner[:-1] = s[:-1] != s[1:]
    tp = np.cumsum(w * y, axis=1, dtype=np.int32)
    fp = np.cumsum(w, axis=1, dtype=np.int32) - tp
    if not corner.all():
        tp, fp = tp[:, corner], fp[:, corner]
    n_pos, n_neg = tp[:, -1:].astype(float), fp[:, -1:].astype(float)
    tpr, fpr = tp / n_pos, fp / n_neg
    # AUC: the trapezoids between corners, in whole counts (exact) until the one division
    d_fp = np.diff(fp, axis=1, prepend=0)
    area = (d_fp * (2 * tp - np.diff(tp, axis=1, prepend=0)).astype(np.int64)).sum(axis=1)
    out = {"auc": area / (2 * n_pos[:, 0] * n_neg[:, 0]),
           "advantage": np.maximum((tpr - fpr).max(axis=1), 0.0)}
    for level in fpr_levels:
        out[f"tpr@{level:g}"] = np.where(fpr <= level + 1e-12, tpr, 0.0).max(axis=1)
    return out
