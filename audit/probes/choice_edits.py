"""Multiple-choice items under perturbation: the artifact of the choice-robustness checks.

* **Typos**: ``samples`` items (drawn with the suite's seed), each context given ``typos``
  random single character edits (:mod:`audit.probes.edits`: swaps, drops, insertions,
  keyboard neighbours), one after another, drawn with the seed; the same edited contexts for
  both models. The choices are left as they are: the question is whether the model still
  picks the same answer when its prompt carries the typos real users make.

* **Answer order**: the same items with their options rotated (``k - 1`` rotations of ``k``
  options, so every option takes every position once), for items whose context lists the
  options (``data.options``); each pick is mapped back to the option its letter names.

Both models' clean picks come from the prediction cache (one prediction per dataset).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from audit.errors import DataError
from audit.probes.artifacts import ArtifactRequest, ChoiceEdits, ChoiceOrders

__all__ = ["typo_text", "edited_items", "rotated_items", "DEFAULT_TYPO_EDITS"]

DEFAULT_TYPO_EDITS = ("swap", "drop", "insert", "keyboard")


def typo_text(text: str, typos: int, kinds: tuple[str, ...], rng: np.random.Generator
              ) -> tuple[str, tuple[str, ...]]:
    """``text`` with ``typos`` random single edits of ``kinds`` made one after another, and
    their descriptions (fewer when the text runs out of letters to edit).

    >>> typo_text("good film", 1, ("swap",), np.random.default_rng(0))[0] != "good film"
    True
    """
    from audit.probes.edits import candidates

    made = []
    for _ in range(typos):
        found = candidates(text, kinds, rng, limit=1)
        if not found:
            break
        description, text = found[0]
        made.append(description)
    return text, tuple(made)


def _rescorable(run: Any, metric: Any, what: str) -> None:
    """Both models can score items anew (an lm_eval samples file holds its scores only)."""
    for who in ("teacher", "student"):
        if run.model(who).spec.kind == "lm_eval":
            raise DataError(f"{metric} scores {what}, but the {who} is a lm_eval samples file "
                            "(scores of the items as they were); name a causal_lm folder")


def _clean_picks(run: Any, who: str, rows: np.ndarray) -> np.ndarray:
    """``who``'s picks on the eval ``rows`` as written (from the prediction cache)."""
    P, classes = run.predictions(who, run.eval_table)
    return P[:, run.encoding.reorder(classes)].argmax(axis=1)[rows]


def _picks(run: Any, who: str, table: Any) -> np.ndarray:
    model = run.model(who)
    return model.predict_proba(table)[:, run.encoding.reorder(model.classes)].argmax(axis=1)


def edited_items(probes: Any, request: ArtifactRequest) -> ChoiceEdits:
    """Both models' picks on ``samples`` items, clean and with ``typos`` typos per context."""
    run = probes.run
    table = run.eval_table
    if table.choices is None:
        raise DataError(f"{request.get('metric')} edits multiple-choice items; this suite's "
                        "models read another kind of input")
    _rescorable(run, request.get("metric"), "edited items")
    rows = probes.sample(int(request.get("samples")))
    typos, kinds = int(request.get("typos")), tuple(request.get("edits"))
    rng = np.random.default_rng([probes.seed, 11])
    edited, made = [], []
    for text in table.texts[rows]:
        new, edits = typo_text(str(text), typos, kinds, rng)
        edited.append(new)
        made.append(edits)
    sample = table.take(rows)
    perturbed = sample.with_inputs(edited)
    clean, typo = {}, {}
    for who in ("teacher", "student"):
        clean[who] = _clean_picks(run, who, rows)
        typo[who] = _picks(run, who, perturbed)
    y = run.inputs.y[rows]
    examples = tuple({"original": str(table.texts[r]), "edited": edited[i], "edits": list(made[i]),
                      "answer": int(y[i]), **{f"{who}_clean": int(clean[who][i]) for who in clean},
                      **{f"{who}_edited": int(typo[who][i]) for who in typo}}
                     for i, r in enumerate(rows[:5]))
    return ChoiceEdits(rows=len(rows), y=y, clean=clean, edited=typo,
                       edits_made=np.array([len(m) for m in made]), examples=examples)


def rotated_items(probes: Any, request: ArtifactRequest) -> ChoiceOrders:
    """Both models' picks on ``samples`` items under every rotation of their options."""
    from audit.data.items import with_options

    run = probes.run
    table = run.eval_table
    metric = request.get("metric")
    if table.layouts is None:
        raise DataError(f"{metric} lists each item's options in other orders, so the context must "
                        "show them: name the field of options with data.options (and {<field>} in "
                        "data.context); a cloze item, whose context does not list its choices, "
                        "scores the same in any order")
    _rescorable(run, metric, "items with their options reordered")
    rows = probes.sample(int(request.get("samples")))
    sample = table.take(rows)
    k = len(table.choices[0])
    picks = {who: np.zeros((len(rows), k), dtype=np.int64) for who in ("teacher", "student")}
    for who in ("teacher", "student"):
        picks[who][:, 0] = _clean_picks(run, who, rows)
    for r in range(1, k):
        order = [(j + r) % k for j in range(k)]  # position j shows option (j + r) % k
        moved = sample.with_inputs([with_options(layout, order) for layout in sample.layouts])
        for who in ("teacher", "student"):
            picks[who][:, r] = (_picks(run, who, moved) + r) % k  # back to the option it names
    return ChoiceOrders(rows=len(rows), k=k, y=run.inputs.y[rows], picks=picks,
                        example=with_options(sample.layouts[0], [(j + 1) % k for j in range(k)]))
