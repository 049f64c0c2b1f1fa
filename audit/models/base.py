"""The loaded model every adapter returns, and the checks and helpers they share.

A :class:`LoadedModel` is a function from a feature table to class probabilities, with the
model's classes and a fingerprint of its content. :func:`check_probabilities` validates any
model's output; :func:`numeric_matrix` and :func:`first_bad` turn a table into the matrix a
model takes, naming the first cell that does not fit. No format module is imported here.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from audit.data import Table
from audit.errors import ModelError, display_path
from audit.models.isolation import guarded_error
from audit.spec import ModelSpec

__all__ = ["PredictFn", "LoadedModel", "model_label", "check_probabilities", "weights_digest",
           "cache_identity", "first_bad", "numeric_matrix", "normalisation"]

PredictFn = Callable[[Table], np.ndarray]


@dataclass(frozen=True, eq=False)
class LoadedModel:
    """A model ready to predict: classes, a content fingerprint and a predict function."""

    role: str
    spec: ModelSpec
    classes: tuple[Any, ...]
    sha256: str
    size_bytes: int | None
    predict: PredictFn = field(repr=False)
    warnings: tuple[str, ...] = ()
    module: Any = field(default=None, repr=False)  # the torch.nn.Module of a torch model
    input_dtype: np.dtype | None = None  # numpy dtype of the matrix a torch model is fed
    native: Any = field(default=None, repr=False)  # the estimator of a skops/pickle model
    untrusted_types: tuple[str, ...] = ()  # a skops file's types beyond skops' trusted defaults
    # for a model run in a worker process: its own time on the last predict call, in ms, timed
    # there (the pipe to the process is not the model's cost); None for in-process models
    own_call_ms: Callable[[], float | None] | None = field(default=None, repr=False)
    n_parameters: int | None = None  # learned numbers, when the adapter counts them itself
    # a causal LM's audit.models.lm_text.LanguageModel: what the token-level probes read
    language_model: Any = field(default=None, repr=False)

    @property
    def cache_identity(self) -> str:
        """What the raw predictions depend on (see :func:`audit.models.model_fingerprint`)."""
        return cache_identity(self.spec, self.sha256)

    @property
    def label(self) -> str:
        """``role (where)``, as the load-time messages name the model."""
        return model_label(self.role, self.spec)

    def predict_proba(self, table: Table) -> np.ndarray:
        """Class probabilities for ``table``, validated: shape (n, k), finite, rows sum to 1."""
        try:
            raw = self.predict(table)
        except (ModelError, KeyboardInterrupt):
            raise
        except Exception as exc:  # a model that crashes is reported with its own message
            raise ModelError(f"{self.label} failed to predict on {display_path(table.path)}: "
                             f"{type(exc).__name__}: {exc}") from exc
        except BaseException as exc:  # SystemExit from a model must not end the audit
            raise guarded_error(exc, self.label,
                                f"predicting on {display_path(table.path)}") from None
        return check_probabilities(raw, table.n_rows, len(self.classes), self.label,
                                   where=display_path(table.path), fix=self.output_fix)

    @property
    def output_fix(self) -> str | None:
        """How to fix output that is not probabilities, for models whose suite entry says what
        they return (``output:``)."""
        if self.spec.output == "probabilities":
            return ("the suite says output: probabilities; if the module returns logits, set "
                    "output: logits (the default), which applies softmax")
        return None


def model_label(role: str, spec: ModelSpec) -> str:
    """``role (where)``: the model as messages name it, e.g. ``student (models/s.onnx)``."""
    if spec.kind == "object":
        return f"{role} (a {type(spec.obj).__name__} in memory)"
    where = display_path(spec.path) if spec.path is not None else f"{spec.kind} {spec.target}"
    return f"{role} ({where})"


def check_probabilities(raw: Any, n: int, k: int, label: str,
                        where: str | None = None, fix: str | None = None) -> np.ndarray:
    """Validate and normalise model output to a float64 ``(n, k)`` probability matrix.

    A binary model may return a single column (the probability of the second class), as a
    vector ``(n,)`` or a matrix ``(n, 1)``. ``where`` names the data file the rows come from;
    ``fix``, when given, replaces the generic advice for values that are not probabilities.
    """
    try:
        P = np.asarray(raw, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise ModelError(f"{label} returned {type(raw).__name__} values that are not numbers "
                         f"({exc}); expected an ({n}, {k}) array of class probabilities") from None
    if k == 2 and P.shape in ((n,), (n, 1)):
        P = P.reshape(n)
        P = np.column_stack([1.0 - P, P])
    if P.ndim != 2 or P.shape != (n, k):
        raise ModelError(f"{label} returned shape {P.shape}; expected ({n}, {k}) class "
                         "probabilities (one row per data row, one column per class)")
    tol = 1e-6
    finite = np.isfinite(P)
    bad = ~finite.all(axis=1) | (P < -tol).any(axis=1) | (P > 1 + tol).any(axis=1)
    if bad.any():
        i = int(np.flatnonzero(bad)[0])
        row = f"data row {i + 1}" + (f" of {where}" if where else "")
        fix_for_scores = fix
        if not finite[i].all():
            problem = "NaN or infinite values"
            fix_generic = "every probability must be a finite number in [0, 1]"
            fix_for_scores = None
        elif (P[i] < -tol).any():
            problem = "negative values"
            fix_generic = "probabilities lie in [0, 1]; pass probabilities, not logits or scores"
        else:
            problem = "values above 1"
            fix_generic = ("probabilities lie in [0, 1]; pass probabilities, not logits (apply "
                           "softmax)")
        raise ModelError(f"{label} returned {problem} at {row}: {_short(P[i])}; "
                         f"{fix_for_scores or fix_generic}")
    sums = P.sum(axis=1)
    off = np.abs(sums - 1.0) > 1e-3
    if off.any():
        i = int(np.flatnonzero(off)[0])
        row = f"data row {i + 1}" + (f" of {where}" if where else "")
        raise ModelError(f"{label} returned probabilities that sum to {sums[i]:.6g} at {row}: "
                         f"{_short(P[i])}; " + (fix or "each row must sum to 1 (normalise it, "
                                                      "or apply softmax to scores)"))
    return np.clip(P, 0.0, 1.0)


def _short(row: np.ndarray, most: int = 10) -> str:
    """A row of model output for a message: every value up to ``most``, then how many more."""
    values = row.tolist()
    if len(values) <= most:
        return str(values)
    return f"{str(values[:most])[:-1]}, ... ({len(values)} values)]"


def cache_identity(spec: ModelSpec, sha256: str) -> str:
    """What a model's raw predictions depend on: its kind, content hash, and the columns,
    classes and output the suite names (see :func:`audit.models.model_fingerprint`)."""
    columns = "\0".join(spec.columns or ())
    classes = "\0".join(map(repr, spec.classes or ()))
    identity = f"{spec.kind}\0{sha256}\0{columns}\0{classes}"
    output = spec.output or ("logits" if spec.kind == "torch" else None)
    identity = identity if output is None else f"{identity}\0{output}"
    # truncation, padding within a batch and the device change a network's outputs
    running = [f"{key}={getattr(spec, key)}" for key in ("max_length", "batch_size", "device",
                                                          "mean", "std")
               if getattr(spec, key) is not None]
    if spec.kind in ("causal_lm", "lm_eval"):  # sums or per character: other probabilities
        running.append(f"scoring={spec.scoring}")
    return identity if not running else identity + "\0" + "\0".join(running)


def first_bad(column: pd.Series, ok: pd.Series) -> tuple[int, Any]:
    """Index of the first row where ``ok`` is false, and its value as a plain Python object."""
    i = int(np.flatnonzero(~ok.to_numpy(dtype=bool))[0])
    value = column.iloc[i]
    return i, value.item() if isinstance(value, np.generic) else value


def numeric_matrix(frame: pd.DataFrame, dtype: Any, label: str, where: str, what: str,
                   matrix: str, fix: str) -> np.ndarray:
    """All feature columns as one ``dtype`` matrix, or an error naming the first cell that is not
    a number (``what`` says what takes the matrix; ``fix`` what to do)."""
    if all(pd.api.types.is_numeric_dtype(t) for t in set(frame.dtypes)):
        # a copy, never a view of the table: a module may edit its input tensor in place
        return frame.to_numpy(dtype=dtype, na_value=np.nan, copy=True)
    for name in frame.columns:
        column = frame[name]
        if pd.api.types.is_numeric_dtype(column):
            continue
        numbers = pd.to_numeric(column, errors="coerce")
        ok = numbers.notna() | column.isna()
        if not ok.all():
            i, value = first_bad(column, ok)
            raise ModelError(f"{label}: {what} takes all feature columns as one {matrix} matrix, "
                             f"but column {name!r} of {where} holds {value!r} at data row "
                             f"{i + 1}; {fix}")
    return frame.apply(pd.to_numeric).to_numpy(dtype=dtype, na_value=np.nan)


def normalisation(spec: ModelSpec, images: np.ndarray, label: str) -> tuple[np.ndarray, np.ndarray]:
    """An image model's ``(mean, std)``, shaped ``(1, C, 1, 1)`` for ``images`` (one value per
    channel, or one for all), or an error when the suite gives another number of values."""
    assert spec.mean is not None and spec.std is not None
    channels = images.shape[1]
    if len(spec.mean) not in (1, channels):
        raise ModelError(f"{label}: mean and std give {len(spec.mean)} values but the images have "
                         f"{channels} channel(s); give one value per channel")
    shape = (1, len(spec.mean), 1, 1)
    return (np.asarray(spec.mean, np.float64).reshape(shape),
            np.asarray(spec.std, np.float64).reshape(shape))


def weights_digest(module: Any) -> bytes:
    """SHA-256 of a torch module's parameters and buffers (names, dtypes, shapes and bytes);
    torch is the module's own, already imported."""
    import hashlib
    import sys

    torch = sys.modules["torch"]
    digest = hashlib.sha256()
    for name, tensor in module.state_dict().items():
        t = tensor.detach().cpu().contiguous()
        digest.update(f"\0{name}\0{t.dtype}\0{tuple(t.shape)}\0".encode())
        digest.update(t.reshape(-1).view(torch.uint8).numpy().tobytes())
    return digest.digest()
