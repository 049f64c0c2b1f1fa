"""The prediction probe's model-side half: checking a cached prediction entry against the real
model (the cache's integrity rule for entries it cannot authenticate).

The suite run (:meth:`audit.runner.SuiteRun.predictions`) gets each model's predictions on a
table from the prediction cache (:mod:`audit.cache`), computing them with
``LoadedModel.predict_proba`` on a miss, the call every probe uses; an unauthenticated hit is
accepted only after :func:`verify_predictions` re-predicts a fresh random sample of its rows.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from audit.coltypes import plain_value

__all__ = ["verify_predictions", "VERIFY_ROWS", "VERIFY_ATOL"]


VERIFY_ROWS = 256  # rows re-predicted to verify an unauthenticated cached prediction entry
VERIFY_ATOL = 1e-5  # batch size may move float32 outputs by ~1e-7; a forgery moves them more


def verify_predictions(model: Any, table: Any, cached: np.ndarray,
                       info: Mapping[str, Any]) -> str:
    """Check a cached prediction entry against the real model, or raise ``CacheRejected``.

    The model re-predicts ``VERIFY_ROWS`` rows drawn afresh (from the operating system's
    randomness, never stored), so whoever wrote the entry cannot know which rows will be
    checked; every other field of the entry (classes, a skops file's type list) must equal
    what the loaded model says. A forgery of a share f of the rows escapes one run with
    probability (1 - f) ** 256: 7.6% for f = 1%, 0.6% for f = 2%. Tables of up to 256 rows are
    checked whole.
    """
    from audit.cache import CacheRejected

    classes = [plain_value(c) for c in model.classes]
    if list(info.get("classes", ())) != classes:
        raise CacheRejected(f"it records classes {info.get('classes')!r}, the model has {classes!r}")
    if model.spec.kind == "skops" and list(info.get("untrusted_types", ())) != list(
            model.untrusted_types):
        raise CacheRejected("its record of the file's skops types differs from the file's")
    n = table.n_rows
    if cached.shape != (n, len(classes)):
        raise CacheRejected(f"shape {cached.shape}, expected ({n}, {len(classes)})")
    if model.spec.kind == "predictions" or n <= VERIFY_ROWS:
        rows = np.arange(n)
        fresh = model.predict_proba(table)
    else:
        import secrets

        rng = np.random.default_rng(secrets.randbits(128))
        rows = np.sort(rng.choice(n, size=VERIFY_ROWS, replace=False))
        fresh = model.predict_proba(table.take(rows))
    diff = np.abs(fresh - cached[rows])
    bad = diff.max(axis=1) > VERIFY_ATOL
    if bad.any():
        first = int(rows[np.flatnonzero(bad)[0]])
        raise CacheRejected(f"{int(bad.sum())} of {len(rows)} re-predicted rows differ from it, "
                            f"first at data row {first + 1} (largest difference "
                            f"{float(diff.max()):.3g})")
    return (f"all {n} rows re-predicted by the model and matched" if len(rows) == n else
            f"{len(rows)} of {n} rows, drawn at random this run, re-predicted by the model and "
            "matched")
