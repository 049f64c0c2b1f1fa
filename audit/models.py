"""Model adapters: every model becomes a function from a feature table to class probabilities.

Supported kinds (see :class:`audit.suite.ModelSpec`):

* ``skops`` -- scikit-learn estimators saved with skops, loaded without running code. Types
  outside skops' default trusted set are refused unless the suite lists them.
* ``onnx`` -- run with onnxruntime on the CPU. Inputs are matched to columns by name, or a single
  input takes all feature columns as one float matrix. Class labels come from the suite's
  ``classes`` or the model's ``classes`` metadata entry (a JSON list).
* ``callable`` -- ``module:function``, explicitly named in the suite; runs code by design.
* ``predictions`` -- probabilities computed elsewhere, one column per class, one row per eval row.
* ``pickle`` -- only with ``trust: true``; the report carries a warning.
"""

from __future__ import annotations

import hashlib
import importlib
import json
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from audit.data import Table, file_sha256, read_table
from audit.errors import ModelError, display_path
from audit.suite import ModelSpec

__all__ = ["LoadedModel", "load_model", "check_probabilities"]

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

    @property
    def label(self) -> str:
        return f"{self.role} ({self.spec.label})"

    def predict_proba(self, table: Table) -> np.ndarray:
        """Class probabilities for ``table``, validated: shape (n, k), finite, rows sum to 1."""
        try:
            raw = self.predict(table)
        except ModelError:
            raise
        except Exception as exc:  # a model that crashes is reported with its own message
            raise ModelError(f"{self.label} failed to predict on {display_path(table.path)}: "
                             f"{type(exc).__name__}: {exc}") from exc
        return check_probabilities(raw, table.n_rows, len(self.classes), self.label)


def check_probabilities(raw: Any, n: int, k: int, label: str) -> np.ndarray:
    """Validate and normalise model output to a float64 ``(n, k)`` probability matrix.

    A binary model may return a single column (the probability of the second class).
    """
    P = np.asarray(raw, dtype=np.float64)
    if P.ndim == 1 and k == 2:
        P = np.column_stack([1.0 - P, P])
    if P.ndim != 2 or P.shape != (n, k):
        raise ModelError(f"{label} returned shape {P.shape}; expected ({n}, {k}) class "
                         "probabilities (one row per data row, one column per class)")
    bad = ~np.isfinite(P).all(axis=1) | (P < -1e-6).any(axis=1) | (P > 1 + 1e-6).any(axis=1)
    if bad.any():
        i = int(np.flatnonzero(bad)[0])
        raise ModelError(f"{label} returned non-probabilities at row {i + 1}: {P[i].tolist()}; "
                         "expected values in [0, 1] (pass probabilities, not logits)")
    sums = P.sum(axis=1)
    off = np.abs(sums - 1.0) > 1e-3
    if off.any():
        i = int(np.flatnonzero(off)[0])
        raise ModelError(f"{label} returned probabilities that sum to {sums[i]:.6g} at row {i + 1}; "
                         "each row must sum to 1 (apply softmax)")
    return np.clip(P, 0.0, 1.0)


def load_model(spec: ModelSpec, role: str) -> LoadedModel:
    """Load the model ``spec`` describes, for ``role`` (``teacher`` or ``student``)."""
    loader = {"skops": _load_skops, "onnx": _load_onnx, "callable": _load_callable,
              "predictions": _load_predictions, "pickle": _load_pickle}[spec.kind]
    return loader(spec, role)


def _estimator_predict(model: Any, label: str) -> PredictFn:
    if not hasattr(model, "predict_proba"):
        raise ModelError(f"{label}: {type(model).__name__} has no predict_proba; the audit needs "
                         "class probabilities")

    def predict(table: Table) -> np.ndarray:
        return model.predict_proba(table.features)

    return predict


def _classes_of(obj: Any, spec: ModelSpec, label: str) -> tuple[Any, ...]:
    if spec.classes is not None:
        return tuple(spec.classes)
    classes = getattr(obj, "classes_", None)
    if classes is None:
        raise ModelError(f"{label}: cannot tell the class labels; add classes: [...] to the model "
                         "in the suite, in the order of the probability columns")
    return tuple(c.item() if isinstance(c, np.generic) else c for c in classes)


def _load_skops(spec: ModelSpec, role: str) -> LoadedModel:
    import skops.io as sio

    assert spec.path is not None
    label = f"{role} ({display_path(spec.path)})"
    try:
        untrusted = sio.get_untrusted_types(file=spec.path)
    except Exception as exc:
        raise ModelError(f"{label}: not a readable skops file ({type(exc).__name__}: {exc})") from None
    refused = [t for t in untrusted if t not in spec.trusted_types]
    if refused:
        listing = "\n".join(f"      - {t}" for t in refused)
        raise ModelError(f"{label}: the file holds types skops does not trust by default:\n{listing}\n"
                         f"  Review them; if you trust them, list them in the suite under "
                         f"{role}.trusted_types (use the mapping form: {role}: {{skops: "
                         f"{spec.path.name}, trusted_types: [...]}}).")
    try:
        model = sio.load(spec.path, trusted=untrusted or None)
    except Exception as exc:
        raise ModelError(f"{label}: skops could not load the model ({type(exc).__name__}: {exc})") from None
    return LoadedModel(role, spec, _classes_of(model, spec, label), file_sha256(spec.path),
                       spec.path.stat().st_size, _estimator_predict(model, label))


def _load_pickle(spec: ModelSpec, role: str) -> LoadedModel:
    assert spec.path is not None and spec.trust
    label = f"{role} ({display_path(spec.path)})"
    try:
        if spec.path.suffix.lower() == ".joblib":
            import joblib

            model = joblib.load(spec.path)  # trusted: the suite set trust: true
        else:
            import pickle

            with spec.path.open("rb") as fh:
                model = pickle.load(fh)  # trusted: the suite set trust: true
    except Exception as exc:
        raise ModelError(f"{label}: could not unpickle ({type(exc).__name__}: {exc})") from None
    warning = (f"{role} was loaded from a pickle ({display_path(spec.path)}) because the suite set "
               "trust: true; unpickling can run arbitrary code")
    return LoadedModel(role, spec, _classes_of(model, spec, label), file_sha256(spec.path),
                       spec.path.stat().st_size, _estimator_predict(model, label), (warning,))


def _load_onnx(spec: ModelSpec, role: str) -> LoadedModel:
    import onnxruntime as ort

    assert spec.path is not None
    label = f"{role} ({display_path(spec.path)})"
    try:
        session = ort.InferenceSession(str(spec.path), providers=["CPUExecutionProvider"])
    except Exception as exc:
        raise ModelError(f"{label}: onnxruntime cannot open the model ({exc})") from None
    meta = session.get_modelmeta().custom_metadata_map
    if spec.classes is not None:
        classes = tuple(spec.classes)
    elif "classes" in meta:
        try:
            classes = tuple(json.loads(meta["classes"]))
        except ValueError:
            raise ModelError(f"{label}: metadata 'classes' is not a JSON list") from None
    else:
        raise ModelError(f"{label}: cannot tell the class labels; add classes: [...] to the model "
                         "in the suite, or store a JSON list under the ONNX metadata key 'classes'")
    output = _probability_output(session, label)
    inputs = session.get_inputs()

    def feed(table: Table) -> dict[str, np.ndarray]:
        frame = table.features
        names = [i.name for i in inputs]
        if all(n in frame.columns for n in names):
            return {i.name: _column_as(frame[i.name], i.type, label) for i in inputs}
        if len(inputs) == 1:
            return {inputs[0].name: _matrix_as(frame, inputs[0].type, label)}
        missing = [n for n in names if n not in frame.columns]
        raise ModelError(f"{label}: the model's inputs {missing} are not columns of "
                         f"{display_path(table.path)}; name the inputs after the feature columns")

    def predict(table: Table) -> np.ndarray:
        out = session.run([output], feed(table))[0]
        if isinstance(out, list):  # ZipMap: a list of {class: probability} dicts
            out = np.array([[row[c] for c in classes] for row in out])
        return out

    return LoadedModel(role, spec, classes, file_sha256(spec.path), spec.path.stat().st_size, predict)


def _probability_output(session: Any, label: str) -> str:
    outputs = session.get_outputs()
    for o in outputs:
        if o.name == "probabilities" or "prob" in o.name.lower():
            return str(o.name)
    floats = [o for o in outputs if o.type == "tensor(float)" or o.type == "tensor(double)"]
    if len(floats) == 1:
        return str(floats[0].name)
    raise ModelError(f"{label}: cannot tell which output holds the class probabilities "
                     f"(outputs: {[o.name for o in outputs]}); name it 'probabilities'")


_ONNX_DTYPES = {"tensor(float)": np.float32, "tensor(double)": np.float64,
                "tensor(int64)": np.int64, "tensor(int32)": np.int32, "tensor(string)": object,
                "tensor(bool)": np.bool_}


def _column_as(column: pd.Series, onnx_type: str, label: str) -> np.ndarray:
    dtype = _ONNX_DTYPES.get(onnx_type)
    if dtype is None:
        raise ModelError(f"{label}: unsupported ONNX input type {onnx_type} for column {column.name!r}")
    try:
        if dtype is object:
            values = column.astype(str).to_numpy(dtype=object)
        else:
            values = column.to_numpy(dtype=dtype)
    except (TypeError, ValueError) as exc:
        raise ModelError(f"{label}: column {column.name!r} cannot be fed as {onnx_type} ({exc})") from None
    return values.reshape(-1, 1)


def _matrix_as(frame: pd.DataFrame, onnx_type: str, label: str) -> np.ndarray:
    dtype = _ONNX_DTYPES.get(onnx_type)
    if dtype is None or dtype is object:
        raise ModelError(f"{label}: a single {onnx_type} input cannot take the feature table; "
                         "export one input per column")
    try:
        return frame.to_numpy(dtype=dtype)
    except (TypeError, ValueError) as exc:
        raise ModelError(f"{label}: the feature columns cannot be fed as one {onnx_type} matrix "
                         f"({exc}); export one input per column") from None


def _load_callable(spec: ModelSpec, role: str) -> LoadedModel:
    assert spec.target is not None
    label = f"{role} ({spec.target})"
    module_name, attr_path = spec.target.split(":", 1)
    added = spec.base_dir is not None and str(spec.base_dir) not in sys.path
    if added:
        sys.path.insert(0, str(spec.base_dir))
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        raise ModelError(f"{label}: cannot import module {module_name!r} ({exc}); it is looked up "
                         "next to the suite file and on sys.path") from None
    finally:
        if added:
            sys.path.remove(str(spec.base_dir))
    obj: Any = module
    for part in attr_path.split("."):
        if not hasattr(obj, part):
            raise ModelError(f"{label}: module {module_name!r} has no attribute {attr_path!r}")
        obj = getattr(obj, part)
    source = getattr(module, "__file__", None)
    digest = hashlib.sha256(spec.target.encode())
    warnings: tuple[str, ...] = ()
    if source and Path(source).is_file():
        digest.update(Path(source).read_bytes())
    else:
        warnings = (f"{role} callable {spec.target} has no source file; its fingerprint covers "
                    "only its name, so cached predictions are keyed by name",)
    if hasattr(obj, "predict_proba"):
        predict = _estimator_predict(obj, label)
    elif callable(obj):
        fn = obj

        def predict(table: Table) -> np.ndarray:
            return fn(table.features)
    else:
        raise ModelError(f"{label}: {attr_path} is neither callable nor a model with predict_proba")
    return LoadedModel(role, spec, _classes_of(obj, spec, label), digest.hexdigest(), None, predict,
                       warnings)


def _load_predictions(spec: ModelSpec, role: str) -> LoadedModel:
    assert spec.path is not None and spec.columns is not None and spec.classes is not None
    label = f"{role} ({display_path(spec.path)})"
    frame = read_table(spec.path)
    missing = [c for c in spec.columns if c not in frame.columns]
    if missing:
        raise ModelError(f"{label}: columns {missing} not found (columns: {list(frame.columns)})")
    values = frame[list(spec.columns)].to_numpy(dtype=np.float64)

    def predict(table: Table) -> np.ndarray:
        if table.role != "eval":
            raise ModelError(f"{label}: precomputed predictions cover the eval table only, not "
                             f"{table.role}")
        if len(values) != table.n_rows:
            raise ModelError(f"{label}: has {len(values)} rows but {display_path(table.path)} has "
                             f"{table.n_rows}; predictions must follow the eval rows one to one")
        return values

    return LoadedModel(role, spec, tuple(spec.classes), file_sha256(spec.path),
                       spec.path.stat().st_size, predict)
