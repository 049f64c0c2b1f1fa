"""The predictions adapter: probabilities computed elsewhere, one column per class, one row per
eval row, in order.

Its hash is the file's SHA-256; the prediction cache also keys on the columns read (see
:attr:`audit.models.LoadedModel.cache_identity`), so two models' columns in one file never
share cached predictions. It predicts on the eval table only.
"""

from __future__ import annotations

import difflib

import numpy as np
import pandas as pd

from audit.data import Table, file_sha256, read_table
from audit.errors import ModelError, display_path
from audit.models.base import LoadedModel, first_bad, model_label
from audit.spec import ModelSpec

__all__ = ["load_predictions"]


def load_predictions(spec: ModelSpec, role: str) -> LoadedModel:
    """Read the probability columns the suite names, checked to be numbers, one per class."""
    assert spec.path is not None and spec.columns is not None and spec.classes is not None
    label = model_label(role, spec)
    if len(spec.columns) != len(spec.classes):
        raise ModelError(f"{label}: {len(spec.columns)} columns {list(spec.columns)} but "
                         f"{len(spec.classes)} classes {list(spec.classes)}; give one probability "
                         "column per class, in the same order")
    frame = read_table(spec.path)
    names = [str(c) for c in frame.columns]
    for col in spec.columns:
        if col not in frame.columns:
            close = difflib.get_close_matches(col, names, n=1, cutoff=0.6)
            hint = f"; did you mean {close[0]!r}?" if close else ""
            raise ModelError(f"{label}: probability column {col!r} ({role}.columns) not "
                             f"found{hint} (columns: {', '.join(names)})")
    for col in spec.columns:
        numbers = pd.to_numeric(frame[col], errors="coerce")
        if numbers.isna().any():
            i, value = first_bad(frame[col], numbers.notna())
            raise ModelError(f"{label}: column {col!r} holds {value!r} at data row "
                             f"{i + 1}; every cell must be a probability (a number in [0, 1])")
    values = frame[list(spec.columns)].apply(pd.to_numeric).to_numpy(dtype=np.float64)
    # The provenance hash is the file's; the prediction cache keys on it together with the
    # column selection (see LoadedModel.cache_identity), so models sharing a file never share
    # cached predictions.
    sha256 = file_sha256(spec.path)

    def predict(table: Table) -> np.ndarray:
        if table.role != "eval":
            raise ModelError(f"{label}: precomputed predictions cover the eval table only, not "
                             f"the {table.role} table ({display_path(table.path)}); checks on it "
                             "need a model that can predict (skops, onnx or callable)")
        if len(values) != table.n_rows:
            raise ModelError(f"{label}: has {len(values)} rows but {display_path(table.path)} has "
                             f"{table.n_rows}; predictions must follow the eval rows one to one")
        return values

    return LoadedModel(role, spec, tuple(spec.classes), sha256, spec.path.stat().st_size, predict)
