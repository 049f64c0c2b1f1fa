"""Texts under black-box edits: the artifact of the text robustness check (``edit_accuracy``).

Both models are attacked on the same ``samples`` eval texts (drawn with the suite's seed) by
:func:`audit.probes.text_attack.attack`: greedy single edits (character and word edits),
up to the largest budget asked, each model queried through its own ``predict_proba`` (for a
transformers model: tokenization included, in batches). The wall-clock cap (``max_seconds``)
is a safety stop: a model it stops makes the check an error, never a measurement on fewer
rows.
"""

from __future__ import annotations

import time
from typing import Any

import numpy as np

from audit.errors import DataError
from audit.probes.artifacts import ArtifactRequest, TextEdits
from audit.probes.attacks import Cap

__all__ = ["edited_texts"]


class _Stopped(Exception):
    """The cap passed during an attack."""


def edited_texts(probes: Any, request: ArtifactRequest) -> TextEdits:
    """Attack both models with text edits up to the largest budget of ``request``."""
    from audit.probes.text_attack import attack

    run = probes.run
    table = run.eval_table
    if table.texts is None:
        raise DataError(f"{request.get('metric')} edits texts; this suite's models read "
                        f"{table.modality} (data.text names the text column)")
    rows = probes.sample(int(request.get("samples")))
    sample = table.take(rows)
    inputs = run.inputs
    y = inputs.y[rows]
    cap = Cap.starting_now(float(request.get("max_seconds")))
    results, seconds = {}, {}
    for who in ("teacher", "student"):
        model = run.model(who)
        order = run.encoding.reorder(model.classes)

        def predict(texts: list[str], model: Any = model, order: np.ndarray = order) -> np.ndarray:
            if cap.passed():
                raise _Stopped
            one = sample.take(np.zeros(len(texts), dtype=int)).with_inputs(texts)
            return model.predict_proba(one)[:, order]

        start = time.perf_counter()
        try:
            results[who] = attack(predict, [str(t) for t in sample.texts], y,
                                  max_edits=int(max(request.get("budgets"))),
                                  kinds=tuple(request.get("edits")), seed=probes.seed,
                                  candidates_per_step=int(request.get("candidates")))
        except _Stopped:
            raise DataError(f"the wall-clock cap (max_seconds {cap.seconds:g}) stopped the text "
                            f"edit attack on the {model.label}; a result must cover the whole "
                            f"sample of {len(rows)} texts, so none is reported: raise "
                            "max_seconds or lower samples or budgets") from None
        seconds[who] = time.perf_counter() - start
    return TextEdits(rows=len(rows), results=results, seconds=seconds)
