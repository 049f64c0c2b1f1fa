"""The perturbation space of the robustness and decision-boundary checks: which rows and
numeric columns an attack moves, scaled to [0, 1] by their observed [min, max]; how a scaled
point maps back to a feature row (integer columns rounded, categorical columns kept); and the
moves within it (projection onto an eps ball, uniform noise).

See :mod:`audit.checks.robustness` for how eps is defined on this space.
"""

from __future__ import annotations

import dataclasses
from functools import cached_property
from typing import Any

import numpy as np
import pandas as pd

from audit.errors import DataError

__all__ = ["AttackSpace", "attack_space", "project", "noise", "norm_order", "column_listing"]


@dataclasses.dataclass(frozen=True)
class AttackSpace:
    """The attacked rows and the scaled numeric columns the attacks move."""

    rows: np.ndarray  # eval row positions, sorted
    frame: pd.DataFrame  # their feature rows (index 0..m-1)
    columns: tuple[str, ...]  # perturbed columns (numeric, non-constant)
    integer: np.ndarray  # bool per perturbed column
    low: np.ndarray
    span: np.ndarray
    fixed: tuple[str, ...]  # numeric columns with one value: never moved
    categorical: tuple[str, ...]
    # the perturbed columns of ``frame`` as float64 (computed from ``frame`` when not given)
    raw: np.ndarray | None = dataclasses.field(default=None, repr=False, compare=False)

    @cached_property
    def _arrays(self) -> dict[Any, np.ndarray]:
        return {c: self.frame[c].to_numpy() for c in self.frame.columns}

    @cached_property
    def _matrix(self) -> np.ndarray:
        return self.frame.to_numpy(dtype=np.float64)

    @cached_property
    def _moved(self) -> np.ndarray:
        position: dict[str, int] = {}
        for j, c in enumerate(self.frame.columns):
            position.setdefault(str(c), j)
        return np.array([position[c] for c in self.columns])

    @cached_property
    def _single_dtype(self) -> Any:
        """The one dtype of an all-numeric frame (the fast path of ``frame_with``), else None."""
        dtypes = set(self.frame.dtypes)
        return next(iter(dtypes)) if len(dtypes) == 1 and not self.categorical else None

    @cached_property
    def _moved_dtypes(self) -> dict[str, tuple[int, Any]]:
        return {c: (j, self.frame[c].dtype) for j, c in enumerate(self.columns)}

    @cached_property
    def _scaled(self) -> np.ndarray:
        raw = self.raw
        if raw is None:
            raw = self.frame[list(self.columns)].to_numpy(dtype=np.float64)
        return np.clip((raw - self.low) / self.span, 0.0, 1.0)

    def scaled(self) -> np.ndarray:
        """The perturbed columns of the attacked rows, scaled to [0, 1] (a fresh copy)."""
        return self._scaled.copy()

    def unscale(self, x01: np.ndarray) -> np.ndarray:
        """Back to the columns' units: rounded for integer columns, clipped to [min, max]."""
        raw = self.low + np.clip(np.asarray(x01, np.float64), 0.0, 1.0) * self.span
        raw[:, self.integer] = np.rint(raw[:, self.integer])
        return np.clip(raw, self.low, self.low + self.span)

    def frame_with(self, x01: np.ndarray, rows: np.ndarray | None = None) -> pd.DataFrame:
        """The feature rows (all, or positions ``rows``) with the perturbed columns replaced."""
        raw = self.unscale(x01)
        dtype = self._single_dtype
        if dtype is not None:  # all numeric, one dtype: one block, fast
            full = self._matrix.copy() if rows is None else self._matrix[rows]
            full[:, self._moved] = raw
            return pd.DataFrame(full.astype(dtype), columns=self.frame.columns)
        moved = self._moved_dtypes
        data = {}
        for col in self.frame.columns:
            hit = moved.get(col)
            if hit is None:
                values = self._arrays[col]
                data[col] = values if rows is None else values[rows]
            else:
                j, col_dtype = hit
                data[col] = raw[:, j].astype(col_dtype) if self.integer[j] else raw[:, j]
        return pd.DataFrame(data, columns=self.frame.columns)


def attack_space(table: Any, samples: int, seed: int, *, who: str = "robustness checks",
                 rows_of: str = "the eval table") -> AttackSpace:
    """Draw ``samples`` rows of ``table`` (seeded) and describe the numeric columns to perturb.

    ``who`` (the checks attacking) and ``rows_of`` (where the rows come from) word the errors.
    """
    features: pd.DataFrame = table.features
    n = len(features)
    rng = np.random.default_rng(seed)
    rows = np.sort(rng.choice(n, size=min(samples, n), replace=False))
    dtypes = features.dtypes
    numeric = [c for c, t in zip(features.columns, dtypes, strict=True)
               if pd.api.types.is_numeric_dtype(t) and not pd.api.types.is_bool_dtype(t)]
    numeric_set = set(numeric)
    categorical = tuple(str(c) for c in features.columns if c not in numeric_set)
    every = len(numeric) == features.shape[1]  # all numeric: no column selection to build
    single = every and len(set(dtypes)) == 1 and isinstance(dtypes.iloc[0], np.dtype)
    if single:  # one numpy dtype: one matrix, and the attacked rows are a slice of it
        native = features.to_numpy()
        values = native.astype(np.float64)
    else:
        values = (features if every else features[numeric]).to_numpy(dtype=np.float64)
    if np.isnan(values).any():
        col = numeric[int(np.flatnonzero(np.isnan(values).any(axis=0))[0])]
        raise DataError(f"{who}: numeric column {col!r} of {rows_of} has missing values; the "
                        "attacks perturb numbers, so fill them or leave the column out with "
                        "data.features")
    low, high = values.min(axis=0), values.max(axis=0)
    moving = high > low
    if not moving.any():
        raise DataError(f"{who} perturb numeric feature columns, but {rows_of} has none that "
                        f"vary (columns: {', '.join(map(str, features.columns))})")
    cols = [c for c, m in zip(numeric, moving, strict=True) if m]
    frame = (pd.DataFrame(native[rows], columns=features.columns) if single
             else features.iloc[rows].reset_index(drop=True))
    return AttackSpace(rows=rows, frame=frame, raw=values[rows][:, moving],
                       columns=tuple(map(str, cols)),
                       integer=np.array([pd.api.types.is_integer_dtype(dtypes[c]) for c in cols],
                                        dtype=bool),
                       low=low[moving], span=(high - low)[moving],
                       fixed=tuple(str(c) for c, m in zip(numeric, moving, strict=True) if not m),
                       categorical=categorical)


def norm_order(norm: str) -> float:
    """The numpy/ART norm order of a suite's ``norm`` (``inf`` or ``2``)."""
    return np.inf if str(norm) == "inf" else 2.0


def project(x0: np.ndarray, x: np.ndarray, eps: float, norm: str) -> np.ndarray:
    """``x`` moved onto the eps ball around ``x0`` (in the scaled space), clipped to [0, 1]."""
    delta = x - x0
    if norm_order(norm) == np.inf:
        delta = np.clip(delta, -eps, eps)
    else:
        size = np.linalg.norm(delta, axis=1, keepdims=True)
        delta = delta * np.minimum(1.0, eps / np.maximum(size, 1e-300))
    return np.clip(x0 + delta, 0.0, 1.0)


def noise(rng: np.random.Generator, shape: tuple[int, ...], eps: float, norm: str) -> np.ndarray:
    """Uniform random points of the eps ball (L-inf: per coordinate; L2: uniform in the ball)."""
    if norm_order(norm) == np.inf:
        return rng.uniform(-eps, eps, size=shape)
    direction = rng.standard_normal(shape)
    direction /= np.maximum(np.linalg.norm(direction, axis=1, keepdims=True), 1e-300)
    radius = eps * rng.uniform(0.0, 1.0, size=(shape[0], 1)) ** (1.0 / shape[1])
    return direction * radius


def column_listing(columns: Any, most: int = 12) -> str:
    """Column names for a note, the first ``most`` of them when there are more."""
    columns = list(columns)
    if len(columns) <= most:
        return ", ".join(columns)
    return f"{', '.join(columns[:most])}, ... ({len(columns)} in all)"
