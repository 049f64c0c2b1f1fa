"""Model adapters: every model becomes a function from a feature table to class probabilities.

Supported kinds (see :class:`audit.suite.ModelSpec`):

* ``skops`` -- scikit-learn estimators saved with skops, loaded without running code. Types
  outside skops' default trusted set are refused unless the suite lists them.
* ``onnx`` -- run with onnxruntime on the CPU. Inputs are matched to columns by name, or a single
  input takes all feature columns as one float matrix. Class labels come from the suite's
  ``classes`` or the model's ``classes`` metadata entry (a JSON list).
* ``callable`` -- ``module:function``, explicitly named in the suite; runs code by design. A
  module next to the suite is executed afresh on each load under a private name, so suites in
  different folders never share a same-named module and the fingerprint hashes the code that runs.
* ``predictions`` -- probabilities computed elsewhere, one column per class, one row per eval row.
  Its hash is the file's SHA-256; the prediction cache also keys on the columns read, so two
  models' columns in one file never share cached predictions.
* ``pickle`` -- only with ``trust: true``; the report carries a warning.
* ``torch`` -- a TorchScript file (``.pt``/``.pth``), loaded with ``torch.jit.load`` on the CPU
  (no arbitrary unpickling; see :func:`_load_torch`). A ``callable`` that is, or builds with no
  arguments, a ``torch.nn.Module`` is wrapped the same way. The feature columns are fed as one
  float matrix in the parameters' dtype; ``output: logits`` (default) applies softmax. The
  loaded model keeps ``module`` and ``input_dtype`` for gradient-based checks. torch is imported
  only when such a model loads.
"""

from __future__ import annotations

import difflib
import hashlib
import inspect
import json
import sys
import warnings
import zipfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from audit.data import Table, file_sha256, read_table
from audit.errors import ModelError, display_path
from audit.imports import import_module_isolated
from audit.suite import ModelSpec

__all__ = ["LoadedModel", "load_model", "check_probabilities", "model_fingerprint",
           "check_skops_trust"]

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

    @property
    def cache_identity(self) -> str:
        """What the raw predictions depend on (see :func:`model_fingerprint`)."""
        return _identity(self.spec, self.sha256)

    @property
    def label(self) -> str:
        """``role (where)``, as the load-time messages name the model."""
        return _label(self.role, self.spec)

    def predict_proba(self, table: Table) -> np.ndarray:
        """Class probabilities for ``table``, validated: shape (n, k), finite, rows sum to 1."""
        try:
            raw = self.predict(table)
        except ModelError:
            raise
        except Exception as exc:  # a model that crashes is reported with its own message
            raise ModelError(f"{self.label} failed to predict on {display_path(table.path)}: "
                             f"{type(exc).__name__}: {exc}") from exc
        return check_probabilities(raw, table.n_rows, len(self.classes), self.label,
                                   where=display_path(table.path))


def _label(role: str, spec: ModelSpec) -> str:
    where = display_path(spec.path) if spec.path is not None else f"{spec.kind} {spec.target}"
    return f"{role} ({where})"


def check_probabilities(raw: Any, n: int, k: int, label: str,
                        where: str | None = None) -> np.ndarray:
    """Validate and normalise model output to a float64 ``(n, k)`` probability matrix.

    A binary model may return a single column (the probability of the second class), as a
    vector ``(n,)`` or a matrix ``(n, 1)``. ``where`` names the data file the rows come from.
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
        if not finite[i].all():
            problem = "NaN or infinite values"
            fix = "every probability must be a finite number in [0, 1]"
        elif (P[i] < -tol).any():
            problem = "negative values"
            fix = "probabilities lie in [0, 1]; pass probabilities, not logits or scores"
        else:
            problem = "values above 1"
            fix = "probabilities lie in [0, 1]; pass probabilities, not logits (apply softmax)"
        raise ModelError(f"{label} returned {problem} at {row}: {P[i].tolist()}; {fix}")
    sums = P.sum(axis=1)
    off = np.abs(sums - 1.0) > 1e-3
    if off.any():
        i = int(np.flatnonzero(off)[0])
        row = f"data row {i + 1}" + (f" of {where}" if where else "")
        raise ModelError(f"{label} returned probabilities that sum to {sums[i]:.6g} at {row}: "
                         f"{P[i].tolist()}; each row must sum to 1 (normalise it, or apply "
                         "softmax to scores)")
    return np.clip(P, 0.0, 1.0)


def _identity(spec: ModelSpec, sha256: str) -> str:
    columns = "\0".join(spec.columns or ())
    classes = "\0".join(map(repr, spec.classes or ()))
    identity = f"{spec.kind}\0{sha256}\0{columns}\0{classes}"
    output = spec.output or ("logits" if spec.kind == "torch" else None)
    return identity if output is None else f"{identity}\0{output}"


def check_skops_trust(spec: ModelSpec, role: str, untrusted: list[str] | None = None) -> list[str]:
    """Refuse a skops file holding types neither skops nor the suite trusts; return the types
    skops does not trust by default. The runner also calls this on a prediction-cache hit
    (with the list recorded when the file was first loaded: it depends only on the file's
    content), so the verdict never depends on the cache's state."""
    import skops.io as sio

    assert spec.path is not None
    if untrusted is None:
        try:
            untrusted = list(sio.get_untrusted_types(file=spec.path))
        except Exception as exc:
            raise ModelError(f"{_label(role, spec)}: not a readable skops file "
                             f"({type(exc).__name__}: {exc})") from None
    refused = [t for t in untrusted if t not in spec.trusted_types]
    if refused:
        listing = "\n".join(f"      - {t}" for t in refused)
        raise ModelError(f"{_label(role, spec)}: the file holds types skops does not trust by "
                         f"default:\n{listing}\n  Review them; if you trust them, list them in "
                         f"the suite under {role}.trusted_types (use the mapping form: {role}: "
                         f"{{skops: {spec.path.name}, trusted_types: [...]}}).")
    return untrusted


def content_sha256(spec: ModelSpec) -> str:
    """SHA-256 of everything a file-based model's predictions depend on: the file, plus the
    external-data files an ONNX model names (its weights may live beside it)."""
    assert spec.path is not None
    digest = file_sha256(spec.path)
    if spec.kind != "onnx":
        return digest
    external = _onnx_external_files(spec.path)
    if not external:
        return digest
    h = hashlib.sha256(digest.encode())
    for path in external:
        h.update(b"\0" + path.name.encode() + b"\0" + file_sha256(path).encode())
    return h.hexdigest()


def _onnx_external_files(path: Path) -> list[Path]:
    import onnx

    try:
        model = onnx.load(str(path), load_external_data=False)
    except Exception:
        return []  # onnxruntime will say what is wrong with the file
    names = set()
    for tensor in model.graph.initializer:
        if tensor.data_location == onnx.TensorProto.EXTERNAL:
            names |= {e.value for e in tensor.external_data if e.key == "location"}
    return sorted(path.parent / n for n in names)


def model_fingerprint(spec: ModelSpec, role: str = "model") -> tuple[str, str] | None:
    """``(sha256, cache identity)`` of a model, known without loading it.

    For file-based models (skops, onnx, predictions) the identity is the kind, the content's
    SHA-256 (:func:`content_sha256`), and the columns and classes the suite names, so a
    prediction-cache hit needs no model load at all (the runner still checks a skops file's
    recorded types against the suite's trust list). Callables (whose behaviour may depend on files we cannot
    see) and pickles (whose loading carries a warning) return ``None``: load them.
    """
    if spec.kind in ("callable", "pickle") or spec.path is None:
        return None
    sha256 = content_sha256(spec)
    return sha256, _identity(spec, sha256)


def load_model(spec: ModelSpec, role: str) -> LoadedModel:
    """Load the model ``spec`` describes, for ``role`` (``teacher`` or ``student``)."""
    loader = {"skops": _load_skops, "onnx": _load_onnx, "callable": _load_callable,
              "predictions": _load_predictions, "pickle": _load_pickle,
              "torch": _load_torch}[spec.kind]
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
        raise ModelError(f"{label}: cannot tell the class labels ({type(obj).__name__} has no "
                         "classes_); add classes: [...] to the model in the suite, in the order of "
                         "the probability columns")
    return tuple(c.item() if isinstance(c, np.generic) else c for c in classes)


def _load_skops(spec: ModelSpec, role: str) -> LoadedModel:
    import skops.io as sio

    assert spec.path is not None
    label = _label(role, spec)
    from skops.io.exceptions import UntrustedTypesFoundException

    try:  # one parse in the common case; the type scan runs only to explain a refusal
        model = sio.load(spec.path, trusted=list(spec.trusted_types) or None)
    except UntrustedTypesFoundException:
        check_skops_trust(spec, role)
        raise  # pragma: no cover - the check above raises for the same types
    except Exception as exc:
        raise ModelError(f"{label}: not a readable skops file ({type(exc).__name__}: {exc})") from None
    # recorded with the cached predictions, so a cache hit can be checked without a parse
    untrusted = tuple(sio.get_untrusted_types(file=spec.path))
    return LoadedModel(role, spec, _classes_of(model, spec, label), file_sha256(spec.path),
                       spec.path.stat().st_size, _estimator_predict(model, label), native=model,
                       untrusted_types=untrusted)


def _load_pickle(spec: ModelSpec, role: str) -> LoadedModel:
    assert spec.path is not None
    label = _label(role, spec)
    if spec.trust is not True:  # not an assert: python -O must not load untrusted pickles
        raise ModelError(f"{label}: loading a pickle runs code; set trust: true only if you trust "
                         "whoever wrote this file (prefer skops or onnx)")
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
                       spec.path.stat().st_size, _estimator_predict(model, label), (warning,),
                       native=model)


def _load_onnx(spec: ModelSpec, role: str) -> LoadedModel:
    import onnxruntime as ort

    assert spec.path is not None
    label = _label(role, spec)
    try:
        session = ort.InferenceSession(str(spec.path), providers=["CPUExecutionProvider"])
    except Exception as exc:
        raise ModelError(f"{label}: onnxruntime cannot open the model ({exc})") from None
    meta = session.get_modelmeta().custom_metadata_map
    if spec.classes is not None:
        classes = tuple(spec.classes)
    elif "classes" in meta:
        try:
            listed = json.loads(meta["classes"])
        except ValueError:
            listed = None
        if not isinstance(listed, list) or len(listed) < 2 or not all(
                isinstance(c, (str, int)) and not isinstance(c, bool) for c in listed):
            raise ModelError(f"{label}: metadata 'classes' is {meta['classes'][:80]!r}, not a JSON "
                             "list of at least two class labels (strings or integers); fix the "
                             "metadata or add classes: [...] to the model in the suite")
        classes = tuple(listed)
    else:
        raise ModelError(f"{label}: cannot tell the class labels; add classes: [...] to the model "
                         "in the suite, or store a JSON list under the ONNX metadata key 'classes'")
    output = _probability_output(session, label)
    inputs = session.get_inputs()
    ordered = _feature_names(meta, label)  # the matrix input's columns, in order, if recorded
    warnings: tuple[str, ...] = ()
    if len(inputs) == 1 and ordered is None:
        warnings = (f"{role}: the ONNX model's single input takes the feature columns in the "
                    "table's order, which nothing checks; store their names as a JSON list under "
                    "the model's metadata key 'features' to have the order checked",)

    def feed(table: Table) -> dict[str, np.ndarray]:
        frame = table.features
        where = display_path(table.path)
        names = [i.name for i in inputs]
        if all(n in frame.columns for n in names):
            return {i.name: _column_as(frame[i.name], i.type, label, where) for i in inputs}
        if len(inputs) == 1 and ordered is not None:
            missing = [c for c in ordered if c not in frame.columns]
            if missing:
                shown = ", ".join(missing[:5]) + (f", ... ({len(missing)} in all)"
                                                  if len(missing) > 5 else "")
                raise ModelError(f"{label}: the model's input takes columns that are not feature "
                                 f"columns of {where}: {shown} (from its 'features' metadata); "
                                 "include them in data.features")
            frame = frame[ordered]  # in the model's order, whatever the table's
        if len(inputs) == 1:
            width = inputs[0].shape[-1] if len(inputs[0].shape) == 2 else None
            if isinstance(width, int) and width != frame.shape[1]:
                raise ModelError(f"{label}: the model's single input {names[0]!r} takes {width} "
                                 f"features but {where} has {frame.shape[1]} feature columns "
                                 f"({', '.join(map(str, frame.columns))}); list the model's "
                                 "columns, in its order, under data.features")
            return {inputs[0].name: _matrix_as(frame, inputs[0].type, label, where)}
        missing = [n for n in names if n not in frame.columns]
        raise ModelError(f"{label}: the model's inputs {missing} are not feature columns of "
                         f"{where} (feature columns: {', '.join(map(str, frame.columns))}); name "
                         "the model's inputs after the columns, or export a single input that "
                         "takes all feature columns")

    def predict(table: Table) -> np.ndarray:
        out = session.run([output], feed(table))[0]
        if isinstance(out, list):  # ZipMap: a list of {class: probability} dicts
            out = np.array([[row[c] for c in classes] for row in out])
        return out

    return LoadedModel(role, spec, classes, content_sha256(spec), spec.path.stat().st_size, predict,
                       warnings)


def _feature_names(meta: dict[str, str], label: str) -> list[str] | None:
    if "features" not in meta:
        return None
    try:
        names = json.loads(meta["features"])
    except ValueError:
        names = None
    if not isinstance(names, list) or not all(isinstance(n, str) for n in names):
        raise ModelError(f"{label}: metadata 'features' is {meta['features'][:80]!r}, not a JSON "
                         "list of column names")
    return names


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


def _first_bad(column: pd.Series, ok: pd.Series) -> tuple[int, Any]:
    """Index of the first row where ``ok`` is false, and its value as a plain Python object."""
    i = int(np.flatnonzero(~ok.to_numpy(dtype=bool))[0])
    value = column.iloc[i]
    return i, value.item() if isinstance(value, np.generic) else value


def _column_as(column: pd.Series, onnx_type: str, label: str, where: str) -> np.ndarray:
    dtype = _ONNX_DTYPES.get(onnx_type)
    name = column.name
    if dtype is None:
        raise ModelError(f"{label}: unsupported ONNX input type {onnx_type} for column {name!r}; "
                         f"supported: {', '.join(_ONNX_DTYPES)}")
    if dtype is object:
        return column.astype(str).to_numpy(dtype=object).reshape(-1, 1)
    if pd.api.types.is_integer_dtype(column) and dtype is not np.bool_ and not column.hasnans or (
            dtype in (np.float32, np.float64) and pd.api.types.is_numeric_dtype(column)):
        return column.to_numpy(dtype=dtype).reshape(-1, 1)  # nothing to check
    numbers = pd.to_numeric(column, errors="coerce")
    ok = numbers.notna() | column.isna() if dtype in (np.float32, np.float64) else numbers.notna()
    if dtype in (np.int64, np.int32):
        filled = numbers.astype(np.float64).fillna(0.5)
        ok &= np.isfinite(filled) & (filled == np.round(filled))
    elif dtype is np.bool_:
        ok &= numbers.isin([0, 1])
    if not ok.all():
        i, value = _first_bad(column, ok)
        need = {np.int64: "whole numbers", np.int32: "whole numbers", np.bool_: "booleans"}.get(
            dtype, "numbers")
        raise ModelError(f"{label}: column {name!r} of {where} holds {value!r} at data row "
                         f"{i + 1}, but the model's input {name!r} is {onnx_type}, which takes "
                         f"{need}; fix the data or re-export the model with a matching input type")
    return numbers.to_numpy(dtype=dtype).reshape(-1, 1)


def _matrix_as(frame: pd.DataFrame, onnx_type: str, label: str, where: str) -> np.ndarray:
    dtype = _ONNX_DTYPES.get(onnx_type)
    if dtype is None or dtype is object or dtype is np.bool_:
        raise ModelError(f"{label}: a single {onnx_type} input cannot take the feature table; "
                         "export one input per column")
    if all(pd.api.types.is_numeric_dtype(t) for t in frame.dtypes):
        return frame.to_numpy(dtype=dtype)
    for name in frame.columns:
        column = frame[name]
        if pd.api.types.is_numeric_dtype(column):
            continue
        numbers = pd.to_numeric(column, errors="coerce")
        ok = numbers.notna() | column.isna()
        if not ok.all():
            i, value = _first_bad(column, ok)
            raise ModelError(f"{label}: the model's single input takes all feature columns as one "
                             f"{onnx_type} matrix, but column {name!r} of {where} holds {value!r} "
                             f"at data row {i + 1}; leave it out with data.features or export "
                             "one input per column")
    return frame.apply(pd.to_numeric).to_numpy(dtype=dtype)


def _load_callable(spec: ModelSpec, role: str) -> LoadedModel:
    assert spec.target is not None
    label = _label(role, spec)
    module_name, sep, attr_path = spec.target.partition(":")
    if not sep or not module_name or not attr_path:
        raise ModelError(f"{label}: {spec.target!r} must be 'module:function' (e.g. "
                         "mypkg.models:predict)")
    module, source = import_module_isolated(module_name, spec.base_dir, label)
    obj: Any = module
    parts = attr_path.split(".")
    for depth, part in enumerate(parts):
        if not hasattr(obj, part):
            owner = f"module {module_name!r}" if depth == 0 else repr(".".join(parts[:depth]))
            file = getattr(module, "__file__", None)
            at = f" ({display_path(file)})" if file else ""
            names = [n for n in dir(obj) if not n.startswith("_")]
            close = difflib.get_close_matches(part, names, n=1, cutoff=0.6)
            hint = f" (did you mean {close[0]!r}?)" if close else ""
            raise ModelError(f"{label}: {owner}{at} has no attribute {part!r}{hint}; define it or "
                             "fix the name after ':'")
        obj = getattr(obj, part)
    digest = hashlib.sha256(spec.target.encode())
    warnings: tuple[str, ...] = ()
    if source is not None:
        digest.update(source)
    else:
        warnings = (f"{role} callable {spec.target} has no source file; its fingerprint covers "
                    "only its name, so cached predictions are keyed by name",)
    torch_module = _torch_module_of(obj, label, attr_path)
    if torch_module is not None:  # its weights may come from files the code hash cannot see
        digest.update(_torch_weights_digest(torch_module))
        return _torch_model(sys.modules["torch"], torch_module, spec, role, digest.hexdigest(),
                            None, warnings)
    if spec.output is not None:
        raise ModelError(f"{label}: output: {spec.output} applies to torch modules, but "
                         f"{attr_path} is a {type(obj).__name__}, which must return class "
                         "probabilities; remove output")
    if hasattr(obj, "predict_proba"):
        predict = _estimator_predict(obj, label)
    elif callable(obj):
        fn = obj

        def predict(table: Table) -> np.ndarray:
            return fn(table.features)
    else:
        raise ModelError(f"{label}: {attr_path} is a {type(obj).__name__}, neither a function nor "
                         "a model with predict_proba")
    return LoadedModel(role, spec, _classes_of(obj, spec, label), digest.hexdigest(), None, predict,
                       warnings)


def _load_predictions(spec: ModelSpec, role: str) -> LoadedModel:
    assert spec.path is not None and spec.columns is not None and spec.classes is not None
    label = _label(role, spec)
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
            i, value = _first_bad(frame[col], numbers.notna())
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


# --------------------------------------------------------------------------- torch
_TORCH_BATCH = 4096  # rows per forward pass: bounds the memory of activations
_TORCHSCRIPT_DEPRECATION = r"`torch\.jit\.\w+` is (deprecated|not supported)"


def _import_torch(label: str) -> Any:
    try:
        import torch
    except ImportError as exc:
        raise ModelError(f"{label}: a torch model needs PyTorch, which cannot be imported "
                         f"({exc}); install torch (CPU build) into this environment") from None
    return torch


def _torchscript_problem(path: Path) -> str | None:
    """Why ``path`` is not a TorchScript archive, judged from its zip listing without reading
    any pickle; ``None`` when it looks like one."""
    if not zipfile.is_zipfile(path):
        return "not a TorchScript archive (not a zip file)"
    with zipfile.ZipFile(path) as archive:
        names = archive.namelist()
    if not any(n.rpartition("/")[2] == "constants.pkl" for n in names):
        return ("written by torch.save (a pickle, such as a state_dict or a whole pickled "
                "model), not TorchScript")
    return None


def _load_torch(spec: ModelSpec, role: str) -> LoadedModel:
    """Load a TorchScript file with ``torch.jit.load(path, map_location="cpu")``.

    A TorchScript archive holds tensors and TorchScript code, which torch's own interpreter
    runs: loading it does not unpickle arbitrary Python objects or import Python modules
    (unlike ``torch.load`` of a pickled model, which is refused with a pointer to
    ``callable:``). Files written by ``torch.save`` are recognised from their zip listing and
    refused before torch reads them.
    """
    assert spec.path is not None
    label = _label(role, spec)
    fix = ("save the model with torch.jit.script(model).save(path) (or torch.jit.trace), or build "
           "it in code and name it with {callable: 'module:function'}")
    problem = _torchscript_problem(spec.path)
    if problem is not None:
        raise ModelError(f"{label}: {problem}; {fix}")
    torch = _import_torch(label)
    try:
        with warnings.catch_warnings():  # TorchScript is deprecated in favour of torch.export
            warnings.filterwarnings("ignore", _TORCHSCRIPT_DEPRECATION, DeprecationWarning)
            module = torch.jit.load(str(spec.path), map_location="cpu")
    except Exception as exc:
        raise ModelError(f"{label}: torch cannot load it as TorchScript ({_torch_error(exc)}); "
                         f"{fix}") from None
    return _torch_model(torch, module, spec, role, file_sha256(spec.path),
                        spec.path.stat().st_size, ())


def _torch_model(torch: Any, module: Any, spec: ModelSpec, role: str, sha256: str,
                 size_bytes: int | None, notes: tuple[str, ...]) -> LoadedModel:
    """Wrap an ``nn.Module`` (TorchScript or Python) as a :class:`LoadedModel`.

    The feature columns become one float matrix in the dtype of the module's parameters, fed
    in batches under ``torch.no_grad()`` with the module in eval mode. ``output: logits`` (the
    default) applies softmax (a sigmoid to a single logit column of a binary model);
    ``output: probabilities`` passes the output through.
    """
    label = _label(role, spec)
    classes = _torch_classes(module, spec, label)
    module.eval()
    dtype = next((t.dtype for t in (*module.parameters(), *module.buffers())
                  if t.is_floating_point()), torch.float32)
    input_dtype = np.dtype({torch.float64: np.float64, torch.float16: np.float16}.get(
        dtype, np.float32))
    logits = (spec.output or "logits") == "logits"

    def predict(table: Table) -> np.ndarray:
        where = display_path(table.path)
        X = _torch_matrix(table.features, input_dtype, label, where)
        outputs = []
        with torch.no_grad():
            for start in range(0, len(X), _TORCH_BATCH):
                x = torch.from_numpy(X[start:start + _TORCH_BATCH]).to(dtype)
                try:
                    out = module(x)
                except Exception as exc:
                    columns = [str(c) for c in table.features.columns]
                    shown = ", ".join(columns[:6]) + (f", ... ({len(columns)} in all)"
                                                      if len(columns) > 6 else "")
                    raise ModelError(
                        f"{label} failed to predict on {where}: {_torch_error(exc)}; it was fed "
                        f"the feature columns ({shown}) as one {tuple(X.shape)} {input_dtype} "
                        "matrix; list the model's inputs, in its order, under data.features"
                    ) from None
                if not isinstance(out, torch.Tensor):
                    raise ModelError(f"{label} returned a {type(out).__name__}; the module must "
                                     "return one tensor of class scores, shape (rows, classes)")
                outputs.append(out.detach().cpu().to(torch.float64).numpy())
        raw = np.concatenate(outputs) if outputs else np.empty((0, len(classes)))
        if not logits:
            return raw
        if len(classes) == 2 and (raw.ndim == 1 or raw.ndim == 2 and raw.shape[1] == 1):
            return 1.0 / (1.0 + np.exp(-raw.reshape(-1)))  # one logit of the second class
        if raw.ndim != 2:
            return raw  # check_probabilities names the shape
        z = np.exp(raw - raw.max(axis=1, keepdims=True))
        return z / z.sum(axis=1, keepdims=True)

    return LoadedModel(role, spec, classes, sha256, size_bytes, predict, notes,
                       module=module, input_dtype=input_dtype)


def _torch_error(exc: Exception) -> str:
    """A one-line account of a torch error (TorchScript adds a traceback of its own code)."""
    lines = [line for line in str(exc).strip().splitlines() if line.strip()]
    if not lines:
        return type(exc).__name__
    if "TorchScript interpreter" in lines[0]:
        return lines[-1].strip()  # "RuntimeError: ..." raised inside the scripted code
    return f"{type(exc).__name__}: {lines[0].strip()[:300]}"


def _torch_classes(module: Any, spec: ModelSpec, label: str) -> tuple[Any, ...]:
    if spec.classes is not None:
        return tuple(spec.classes)
    listed = getattr(module, "classes", None)
    if listed is None:
        raise ModelError(f"{label}: cannot tell the class labels; add classes: [...] to the model "
                         "in the suite, in the order of the model's outputs, or give the module a "
                         "classes attribute (a list of labels, kept by TorchScript)")
    items = None
    if isinstance(listed, (list, tuple, np.ndarray)):
        items = [c.item() if isinstance(c, np.generic) else c for c in listed]
    if items is None or len(items) < 2 or len(set(items)) != len(items) or not all(
            isinstance(c, (str, int)) and not isinstance(c, bool) for c in items):
        raise ModelError(f"{label}: the module's classes attribute is {str(listed)[:80]!r}, not a "
                         "list of at least two distinct class labels (strings or integers); fix "
                         "the attribute or add classes: [...] to the model in the suite")
    return tuple(items)


def _torch_matrix(frame: pd.DataFrame, dtype: np.dtype, label: str, where: str) -> np.ndarray:
    """All feature columns as one ``dtype`` matrix, or an error naming the first non-number."""
    if all(pd.api.types.is_numeric_dtype(t) for t in frame.dtypes):
        return frame.to_numpy(dtype=dtype, na_value=np.nan)
    for name in frame.columns:
        column = frame[name]
        if pd.api.types.is_numeric_dtype(column):
            continue
        numbers = pd.to_numeric(column, errors="coerce")
        ok = numbers.notna() | column.isna()
        if not ok.all():
            i, value = _first_bad(column, ok)
            raise ModelError(f"{label}: the torch model takes all feature columns as one {dtype} "
                             f"matrix, but column {name!r} of {where} holds {value!r} at data row "
                             f"{i + 1}; leave it out with data.features or encode it as numbers")
    return frame.apply(pd.to_numeric).to_numpy(dtype=dtype, na_value=np.nan)


def _torch_module_of(obj: Any, label: str, attr_path: str) -> Any:
    """The ``nn.Module`` a callable model names: the object itself, or what calling it with no
    arguments returns (an ``nn.Module`` subclass, or a function without parameters). ``None``
    for anything else, which keeps the other callable forms (a function of the feature table,
    an object with predict_proba) as they were; torch is never imported here."""
    torch = sys.modules.get("torch")
    if torch is not None and isinstance(obj, torch.nn.Module):
        return obj
    if isinstance(obj, type):
        factory = torch is not None and issubclass(obj, torch.nn.Module)
    elif callable(obj) and not hasattr(obj, "predict_proba"):
        try:
            factory = not inspect.signature(obj).parameters  # a model function takes the table
        except (TypeError, ValueError):
            factory = False
    else:
        factory = False
    if not factory:
        return None
    try:
        made = obj()
    except Exception as exc:
        raise ModelError(f"{label}: calling {attr_path}() to build the torch module failed: "
                         f"{type(exc).__name__}: {exc}") from None
    torch = sys.modules.get("torch")
    if torch is None or not isinstance(made, torch.nn.Module):
        raise ModelError(f"{label}: {attr_path}() returned a {type(made).__name__}, not a "
                         "torch.nn.Module; a callable model is a function of the feature table, "
                         "an object with predict_proba, or a torch.nn.Module (or a function of no "
                         "arguments that returns one)")
    return made


def _torch_weights_digest(module: Any) -> bytes:
    """SHA-256 of a module's parameters and buffers (names, dtypes, shapes and bytes)."""
    torch = sys.modules["torch"]
    digest = hashlib.sha256()
    for name, tensor in module.state_dict().items():
        t = tensor.detach().cpu().contiguous()
        digest.update(f"\0{name}\0{t.dtype}\0{tuple(t.shape)}\0".encode())
        digest.update(t.reshape(-1).view(torch.uint8).numpy().tobytes())
    return digest.digest()
