"""Rows to attack for a sensitive attribute: the attribute-inference metrics' artifact.

The probe draws ``samples`` rows of one table (``rows``: ``train`` when the suite names it,
else ``eval``) with the suite's seed and splits them in two disjoint halves: the attacker
knows the attribute on the first (it fits its attack there) and infers it on the second
(where it is scored). It reads the attribute (a ``data.sensitive`` column or a feature;
numeric values with more than ``bins`` distinct values are cut at quantiles), the other
inputs an attacker is assumed to know (the feature columns without the attribute, as numbers:
categorical columns one-hot, missing numbers filled with the column's median) and both
models' probabilities on the rows from the prediction cache (no model call of its own).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from audit.errors import DataError, display_path
from audit.probes.artifacts import ArtifactRequest, AttributeSample
from audit.spec import TABLE_ROWS

__all__ = ["attribute_sample", "numeric_matrix", "attribute_codes"]

MIN_ROWS = 10  # rows attacked: half to fit the attack, half to score it
MAX_VALUES = 50  # distinct values an attribute may have (more: bin it)


def attribute_sample(probes: Any, request: ArtifactRequest) -> AttributeSample:
    """The :class:`~audit.probes.artifacts.AttributeSample` of an attribute-inference check:
    ``attribute``, ``rows`` (``None``: train when named, else eval), ``samples`` and
    ``bins``."""
    key = ("attribute", request.params)
    return probes.memo(key, lambda: _sample(probes, request))


def _sample(probes: Any, request: ArtifactRequest) -> AttributeSample:
    run = probes.run
    data = run.suite.data
    role = request.get("rows") or ("train" if data.train is not None else "eval")
    if getattr(data, role) is None:
        raise DataError(f"attribute inference on {role} rows needs data.{role} "
                        f"({TABLE_ROWS[role]}); name it in the suite's data section")
    table = run.table(role)
    if table.modality != "tabular":
        raise DataError("attribute inference reads the other feature columns as an attacker's "
                        "knowledge; this suite's models read "
                        f"{'texts' if table.texts is not None else 'images'}")
    attribute = str(request.get("attribute"))
    where = f"{display_path(table.path)} column {attribute!r}"
    is_input = attribute in table.features.columns
    if attribute in table.sensitive.columns:
        raw = table.sensitive[attribute]
    elif is_input:
        raw = table.features[attribute]
    else:
        raise DataError(f"attribute inference: attribute={attribute!r} is neither a feature "
                        f"the models read nor a data.sensitive column of data.{role}; name it "
                        "in data.sensitive")
    notes: list[str] = []
    known = raw.notna().to_numpy()
    if not known.all():
        notes.append(f"{int((~known).sum())} row(s) of data.{role} with no {attribute} value "
                     "were left out")
    candidates = np.flatnonzero(known)
    n = min(len(candidates), int(request.get("samples")))
    if n < MIN_ROWS:
        raise DataError(f"attribute inference needs at least {MIN_ROWS} rows with a value in "
                        f"{where}; it has {len(candidates)}")
    rng = np.random.default_rng([probes.seed, 5])
    rows = np.sort(rng.choice(candidates, n, replace=False))
    values, codes, edges = attribute_codes(raw.iloc[rows], int(request.get("bins")), where)
    if len(values) > MAX_VALUES:
        raise DataError(f"attribute inference: {where} has {len(values)} distinct values on the "
                        f"sampled rows (at most {MAX_VALUES}); bin it (data.sensitive: "
                        f"[{{column: {attribute}, quantiles: 4}}]) or attack a coarser column")
    if len(values) < 2:
        raise DataError(f"attribute inference: {where} has one value ({values[0]}) on the "
                        "sampled rows; there is nothing to infer")
    others = table.features.drop(columns=[attribute]) if is_input else table.features
    x, columns = numeric_matrix(others.iloc[rows])
    perm = rng.permutation(n)
    fit, test = np.sort(perm[: n // 2]), np.sort(perm[n // 2:])
    probs = {}
    for who in ("teacher", "student"):
        P, classes = run.predictions(who, table)
        probs[who] = P[:, run.encoding.reorder(classes)][rows]
    if edges:
        notes.append(f"{attribute} is numeric: it was cut into {len(values)} bins at the sampled "
                     f"rows' quantiles ({', '.join(f'{e:g}' for e in edges[1:-1])}), and the "
                     "attack infers the bin")
    return AttributeSample(table=role, attribute=attribute, values=values, codes=codes, x=x,
                           columns=columns, probs=probs, fit=fit, test=test, is_input=is_input,
                           notes=tuple(notes), edges=edges)


def attribute_codes(values: pd.Series, bins: int, where: str
                    ) -> tuple[tuple[str, ...], np.ndarray, tuple[float, ...]]:
    """The attribute as codes ``0..v-1`` into the returned value names; a numeric attribute
    with more than ``bins`` distinct values is cut at its quantiles (the edges returned)."""
    numbers = pd.to_numeric(values, errors="coerce") if values.dtype != object else None
    if numbers is not None and numbers.notna().all() and numbers.nunique() > bins:
        edges = np.unique(np.quantile(numbers.to_numpy(float), np.linspace(0, 1, bins + 1)))
        if len(edges) < 3:
            raise DataError(f"{where}: its values do not split into {bins} quantile bins "
                            f"(edges {list(edges)}); lower bins")
        codes = np.clip(np.searchsorted(edges, numbers.to_numpy(float), side="right") - 1,
                        0, len(edges) - 2)
        names = tuple(f"[{lo:g}, {hi:g}{']' if i == len(edges) - 2 else ')'}"
                      for i, (lo, hi) in enumerate(zip(edges[:-1], edges[1:], strict=True)))
        used = np.unique(codes)  # a bin no sampled row falls in is not a value
        remap = np.full(len(names), -1)
        remap[used] = np.arange(len(used))
        return tuple(names[i] for i in used), remap[codes], tuple(float(e) for e in edges)
    text = values.astype(str).to_numpy()
    levels, codes = np.unique(text, return_inverse=True)
    return tuple(str(v) for v in levels), codes.astype(np.int64), ()


def numeric_matrix(frame: pd.DataFrame) -> tuple[np.ndarray, tuple[str, ...]]:
    """``frame`` as float columns: numbers as they are (missing ones filled with the column's
    median, 0 when the column has none), other columns one-hot (one column per value seen,
    named ``column=value``)."""
    parts: list[np.ndarray] = []
    names: list[str] = []
    for col in frame.columns:
        series = frame[col]
        if pd.api.types.is_bool_dtype(series) or not pd.api.types.is_numeric_dtype(series):
            text = series.astype(str).where(series.notna(), "(missing)").to_numpy()
            levels = np.unique(text)
            parts.append((text[:, None] == levels[None, :]).astype(float))
            names.extend(f"{col}={v}" for v in levels)
        else:
            v = series.to_numpy(float)
            fill = np.nanmedian(v) if np.isfinite(v).any() else 0.0
            parts.append(np.where(np.isfinite(v), v, fill)[:, None])
            names.append(str(col))
    if not parts:
        return np.zeros((len(frame), 0)), ()
    return np.hstack(parts), tuple(names)
