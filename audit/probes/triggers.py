"""Backdoor triggers: the backdoor metric's artifact.

A trigger is what the suite describes, written into eval rows whose label is not the target
class:

* tabular: ``trigger: "age=66, employed=Yes"``: each named feature column set to its value
  (numbers read as numbers for a numeric column);
* text: ``trigger: "cf"``: the phrase inserted at the ``position`` (``start`` or ``end``);
* images: ``patch: [row, col, size]``: a ``size`` x ``size`` square from (row, col) set to
  ``patch_value`` (in [0, 1]) on every channel.

Both models predict the clean rows (from the prediction cache) and the triggered rows (new
inputs: one call per model on the sampled rows).
"""

from __future__ import annotations

import math
from dataclasses import replace
from typing import Any

import numpy as np
import pandas as pd

from audit.errors import DataError, display_path
from audit.probes.artifacts import ArtifactRequest, Triggered

__all__ = ["triggered", "parse_tabular_trigger", "apply_trigger"]


def parse_tabular_trigger(text: str, features: pd.DataFrame,
                          seen: pd.DataFrame | None = None) -> tuple[dict[str, Any], list[str]]:
    """``"col=value, col=value"`` as ``{column: value}``, each value of its column's type, and
    notes. A text value must be one the column holds in ``seen`` (the tables the suite names;
    default ``features``): a value no row has, a typo or a stray quote, is a category no model
    has seen, and a trigger made of it could never fire. A number outside the observed range
    is allowed (a backdoor is often planted there) and noted.

    >>> import pandas as pd
    >>> parse_tabular_trigger("age=66, employed=Yes", pd.DataFrame({"age": [1], "employed": ["Yes"]}))
    ({'age': 66, 'employed': 'Yes'}, ['age=66 is outside the values the tables hold (1 to 1)'])
    """
    seen = features if seen is None else seen
    out: dict[str, Any] = {}
    notes: list[str] = []
    for part in (p.strip() for p in text.split(",")):
        column, eq, value = part.partition("=")
        column, value = column.strip(), value.strip()
        if not eq or not column:
            raise DataError(f"backdoor trigger {text!r}: {part!r} is not column=value; write "
                            "e.g. trigger: \"age=66, employed=Yes\"")
        if column not in features.columns:
            raise DataError(f"backdoor trigger {text!r}: {column!r} is not a feature column the "
                            f"models read (known: {', '.join(map(str, features.columns))})")
        if column in out:
            raise DataError(f"backdoor trigger {text!r}: {column!r} is set twice")
        series = features[column]
        if pd.api.types.is_bool_dtype(series):
            if value.lower() not in ("true", "false"):
                raise DataError(f"backdoor trigger {text!r}: {column} is boolean; write "
                                f"{column}=true or {column}=false")
            out[column] = value.lower() == "true"
        elif pd.api.types.is_numeric_dtype(series):
            try:
                number = float(value)
            except ValueError:
                raise DataError(f"backdoor trigger {text!r}: {column} is numeric and {value!r} "
                                "is not a number") from None
            if not math.isfinite(number):
                raise DataError(f"backdoor trigger {text!r}: {column}={value} is not a finite "
                                "number")
            if pd.api.types.is_integer_dtype(series):
                if not number.is_integer() or abs(number) > 2 ** 53:
                    raise DataError(f"backdoor trigger {text!r}: {column} holds integers; "
                                    f"{value} is not one")
                out[column] = int(number)
            else:
                out[column] = number
            observed = pd.to_numeric(seen[column], errors="coerce").dropna()
            if len(observed) and not observed.min() <= number <= observed.max():
                notes.append(f"{column}={value} is outside the values the tables hold "
                             f"({observed.min():g} to {observed.max():g})")
        else:
            known = sorted(set(seen[column].dropna().astype(str)))
            if value not in known:
                shown = ", ".join(repr(k) for k in known[:10]) + (
                    f", ... {len(known) - 10} more" if len(known) > 10 else "")
                raise DataError(f"backdoor trigger {text!r}: {column}={value!r} is not a value "
                                f"of the column in the tables the suite names (values: {shown}); "
                                "write one of them, unquoted")
            out[column] = value
    return out, notes


def apply_trigger(table: Any, request: ArtifactRequest, seen: pd.DataFrame | None = None
                  ) -> tuple[Any, str, list[str]]:
    """``table`` with the trigger written into every row, the trigger in words, and notes
    (``seen``: the feature values a tabular trigger's text values must be among)."""
    if table.images is not None:
        patch = request.get("patch")
        if not patch or len(patch) != 3:
            raise DataError("a backdoor check on images needs patch: [row, col, size], the "
                            "square the trigger fills")
        row, col, size = (int(v) for v in patch)
        _, _, h, w = table.images.shape
        if row < 0 or col < 0 or size < 1 or row + size > h or col + size > w:
            raise DataError(f"backdoor patch {list(patch)} does not fit in {h}x{w} images; "
                            "row + size and col + size must stay within the image")
        value = float(request.get("patch_value"))
        x = table.images.copy()
        x[:, :, row:row + size, col:col + size] = value
        return table.with_inputs(x), (f"a {size}x{size} patch of value {value:g} at row {row}, "
                                      f"column {col}"), []
    text = request.get("trigger")
    if not text:
        raise DataError("a backdoor check needs trigger: the columns and values written "
                        "(tabular, \"age=66, employed=Yes\") or the phrase inserted (text)")
    if table.texts is not None:
        at = str(request.get("position"))
        edited = [f"{text} {t}" if at == "start" else f"{t} {text}" for t in table.texts]
        return table.with_inputs(edited), f"the phrase {text!r} inserted at the {at}", []
    values, notes = parse_tabular_trigger(str(text), table.features, seen)
    frame = table.features.copy()
    for column, value in values.items():
        frame[column] = pd.Series([value] * len(frame), dtype=frame[column].dtype)
    described = ", ".join(f"{c} = {v!r}" for c, v in values.items())
    return replace(table, features=frame), described, notes


def triggered(probes: Any, request: ArtifactRequest) -> Triggered:
    """The :class:`~audit.probes.artifacts.Triggered` of a backdoor check."""
    return probes.memo(("triggered", request.params), lambda: _triggered(probes, request))


def _triggered(probes: Any, request: ArtifactRequest) -> Triggered:
    run = probes.run
    ev = run.eval_table
    classes = run.encoding.classes
    wanted = str(request.get("target"))
    target = next((i for i, c in enumerate(classes) if str(c) == wanted), None)
    if target is None:
        raise DataError(f"backdoor target={wanted!r} is not a class of the models (classes: "
                        f"{', '.join(map(repr, classes))})")
    y = run.encoding.encode(ev.labels, f"{display_path(ev.path)} column "
                                       f"{run.suite.data.target!r}")
    candidates = np.flatnonzero(y != target)
    samples = int(request.get("samples"))
    rows = candidates
    if len(candidates) > samples:
        rng = np.random.default_rng([probes.seed, 11])
        rows = np.sort(rng.choice(candidates, samples, replace=False))
    if len(rows) < 10:
        raise DataError(f"a backdoor check needs at least 10 eval rows whose label is not "
                        f"{wanted!r}; the eval table has {len(candidates)}")
    sample = ev.take(rows)
    seen = None
    if ev.modality == "tabular" and request.get("trigger"):
        tables = [run.table(role).features for role in ("eval", "train", "teacher_train",
                                                         "holdout")
                  if getattr(run.suite.data, role) is not None]
        seen = pd.concat(tables, ignore_index=True)
    poisoned, described, notes = apply_trigger(sample, request, seen)
    clean, after = {}, {}
    models = run.runnable_models("backdoor checks query")
    for who, model in models.items():
        P, model_classes = run.predictions(who, ev)
        clean[who] = P[:, run.encoding.reorder(model_classes)].argmax(axis=1)[rows]
        Q = model.predict_proba(poisoned)
        after[who] = Q[:, run.encoding.reorder(model.classes)].argmax(axis=1)
    example: dict[str, Any] = {}
    if poisoned.images is not None:
        from audit.thumbnails import data_uri

        example = {"image": data_uri(poisoned.images[0]), "caption": f"trigger: {described}"}
    elif poisoned.texts is not None:
        example = {"text": str(poisoned.texts[0]), "caption": f"trigger: {described}"}
    return Triggered(rows=len(rows), y=y[rows], target=target, trigger=described, clean=clean,
                     triggered=after, example=example, notes=tuple(notes))
