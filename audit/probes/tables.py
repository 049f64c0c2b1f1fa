"""The data tables as plain frames: the dataset and slice metrics' artifact."""

from __future__ import annotations

from typing import Any

import pandas as pd

from audit.probes.artifacts import ArtifactRequest, DataTables

__all__ = ["data_tables"]


def data_tables(probes: Any, request: ArtifactRequest) -> DataTables:
    """The eval table, and the training table when ``train`` is asked for and the suite names
    one (read once per run). With ``derived``, the eval features of a text or image suite
    also hold the properties of its inputs (:mod:`audit.data.derived`)."""
    run = probes.run
    ev = run.eval_table
    named = run.suite.data.train is not None
    train = run.train_table() if named and request.get("train", False) else None
    features = ev.features
    train_features = None if train is None else train.features
    if request.get("derived", False) and ev.modality != "tabular":
        features = _with_properties(run, features)
    if request.get("inputs", False) and ev.modality != "tabular":
        features = with_inputs(ev)
        train_features = None if train is None else with_inputs(train)
    return DataTables(target=run.suite.data.target, eval_features=features,
                      eval_labels=ev.labels, train_named=named, train_features=train_features,
                      train_labels=None if train is None else train.labels)


def with_inputs(table: Any) -> pd.DataFrame:
    """A table's features and its model inputs as one more column: ``(text)`` the texts, or
    ``(image)`` each image's SHA-256 (equal images, equal digests)."""
    import hashlib

    import numpy as np

    if table.texts is not None:
        return table.features.assign(**{"(text)": table.texts})
    digests = [hashlib.sha256(np.ascontiguousarray(x).tobytes()).hexdigest() for x in table.images]
    return table.features.assign(**{"(image)": digests})


def _with_properties(run: Any, features: pd.DataFrame) -> pd.DataFrame:
    """The eval features and the properties derived from the eval inputs (a text suite's
    out-of-vocabulary share against the training texts, when the suite names them)."""
    from audit.data.derived import image_properties, text_properties, vocabulary

    ev = run.eval_table
    if ev.texts is not None:
        known = None
        data = run.suite.data
        if data.train is not None and data.choices is None:
            known = vocabulary(run.train_table().texts)
        elif data.train is not None:  # a language model's training documents
            from audit.probes.tokens import documents

            known = vocabulary(documents(run.probes, "train").texts)
        derived = text_properties(ev.texts, known)
    else:
        derived = image_properties(ev.images)
    clash = [c for c in derived.columns if c in features.columns]
    derived = derived.rename(columns={c: f"{c} (derived)" for c in clash})
    return pd.concat([features.reset_index(drop=True), derived], axis=1)
