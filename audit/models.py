"""Model adapters: every model becomes a function from a feature table to class probabilities.

Supported kinds (see :class:`audit.suite.ModelSpec`):

* ``skops`` -- scikit-learn estimators saved with skops, loaded without running code. Types
  outside skops' default trusted set are refused unless the suite lists them.
* ``onnx`` -- run with onnxruntime on the CPU (:mod:`audit.onnx_models`). Inputs are matched to
  columns by name, or a single input takes all feature columns as one float matrix. Class labels
  come from the suite's ``classes`` or the model's ``classes`` metadata entry (a JSON list).
* ``callable`` -- ``module:function``, explicitly named in the suite; runs code by design. A
  module next to the suite is executed afresh on each load under a private name, so suites in
  different folders never share a same-named module and the fingerprint hashes the code that runs.
* ``predictions`` -- probabilities computed elsewhere, one column per class, one row per eval row.
  Its hash is the file's SHA-256; the prediction cache also keys on the columns read, so two
  models' columns in one file never share cached predictions.
* ``pickle`` -- only with ``trust: true``; the report carries a warning.
* ``torch`` -- a TorchScript file (``.pt``/``.pth``), loaded with ``torch.jit.load`` on the CPU
  (no arbitrary unpickling; see :mod:`audit.torch_models`). A ``callable`` that is, or builds with no
  arguments, a ``torch.nn.Module`` is wrapped the same way. The feature columns are fed as one
  float matrix in the parameters' dtype; ``output: logits`` (default) applies softmax. The
  loaded model keeps ``module`` and ``input_dtype`` for gradient-based checks. torch is imported
  only when such a model loads.
"""

from __future__ import annotations

import difflib
import hashlib
import sys
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np
import pandas as pd

from audit.data import Table, file_sha256, read_table
from audit.errors import ModelError, display_path
from audit.imports import import_module_isolated
from audit.isolation import ModelWorker, call_guarded, guarded_error, load_plain
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


def _label(role: str, spec: ModelSpec) -> str:
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


def _identity(spec: ModelSpec, sha256: str) -> str:
    columns = "\0".join(spec.columns or ())
    classes = "\0".join(map(repr, spec.classes or ()))
    identity = f"{spec.kind}\0{sha256}\0{columns}\0{classes}"
    output = spec.output or ("logits" if spec.kind == "torch" else None)
    return identity if output is None else f"{identity}\0{output}"


def check_skops_trust(spec: ModelSpec, role: str, untrusted: list[str] | None = None) -> list[str]:
    """Refuse a skops file holding types neither skops nor the suite trusts; return the types
    skops does not trust by default. The runner also calls this on a prediction-cache hit, with
    the list recorded when the file was first loaded only when that record is authenticated or
    was verified against the loaded model (it depends only on the file's content), else with
    ``None`` (the file is scanned), so the verdict never depends on the cache's state."""
    assert spec.path is not None
    if untrusted is None:
        import skops.io as sio

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
    external-data files an ONNX model names (its weights may live beside it). Those are checked
    first, by the loader's own check (:func:`audit.onnx_models.onnx_external_files`): a location
    outside the model's folder or not a regular file is a ModelError, never read."""
    assert spec.path is not None
    digest = file_sha256(spec.path)
    if spec.kind != "onnx":
        return digest
    from audit.onnx_models import onnx_external_files

    external = onnx_external_files(spec.path)
    if not external:
        return digest
    h = hashlib.sha256(digest.encode())
    folder = spec.path.parent.resolve()
    for path in external:
        h.update(b"\0" + path.relative_to(folder).as_posix().encode() + b"\0"
                 + file_sha256(path).encode())
    return h.hexdigest()


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
    if spec.kind == "onnx":
        from audit.onnx_models import load_onnx

        return load_onnx(spec, role)
    if spec.kind == "torch":
        from audit.torch_models import load_torch

        return load_torch(spec, role)
    loader = {"skops": _load_skops, "callable": _load_callable,
              "predictions": _load_predictions, "pickle": _load_pickle}[spec.kind]
    return loader(spec, role)


def _estimator_predict(model: Any, label: str) -> PredictFn:
    if not hasattr(model, "predict_proba"):
        raise ModelError(f"{label}: {type(model).__name__} has no predict_proba; the audit needs "
                         "class probabilities")

    from audit.coltypes import conform, explain_failure, model_column_types

    # columns the fitted model declares as text (its encoders' categories) are fed as text,
    # whatever type the table's reader gave them (a CSV's 0/1/2 codes come back as integers)
    declared = model_column_types(model)

    def predict(table: Table) -> np.ndarray:
        frame = conform(table.features, declared)
        try:
            # a frame of its own: a model that edits its input must not change what the other
            # model is fed (copy-on-write makes this cheap; its .values are read-only views)
            return model.predict_proba(frame.copy(deep=False))
        except Exception as exc:  # say which column, dtype and row, and the fix
            why = explain_failure(model, frame, exc, model.predict_proba)
            raise ModelError(f"{label} failed to predict on {display_path(table.path)}{why}") from exc
        except BaseException as exc:  # SystemExit from a model must not end the audit
            raise guarded_error(exc, label, f"predicting on {display_path(table.path)}") from None

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


# ------------------------------------------------------------------ pickle and callable: in a worker
# Both run code the audit did not write, so they load and predict in a worker process
# (audit.isolation): a model that exits, is killed or hangs makes its checks ERROR, never ends
# the run. The functions named serve_* run in the worker; they return (info, predict, blob).
def _load_pickle(spec: ModelSpec, role: str) -> LoadedModel:
    assert spec.path is not None
    label = _label(role, spec)
    if spec.trust is not True:  # not an assert: python -O must not load untrusted pickles
        raise ModelError(f"{label}: loading a pickle runs code; set trust: true only if you trust "
                         "whoever wrote this file (prefer skops or onnx)")
    worker = ModelWorker(label, spec.timeout)
    info, blob = worker.load("audit.models", "serve_pickle", (spec, role), "unpickling it")
    classes = tuple(info["classes"])
    native = load_plain(blob) if blob is not None else None
    if native is not None:  # plain scikit-learn: it runs here (gradients, sizes), like skops
        worker.close()
        predict = _estimator_predict(native, label)
    else:
        predict = _worker_predict(worker, len(classes))
    warning = (f"{role} was loaded from a pickle ({display_path(spec.path)}) because the suite set "
               "trust: true; unpickling can run arbitrary code")
    return LoadedModel(role, spec, classes, file_sha256(spec.path), spec.path.stat().st_size,
                       predict, (warning,), native=native)


def serve_pickle(spec: ModelSpec, role: str) -> tuple[dict[str, Any], Callable[[Any], Any],
                                                     bytes | None]:
    """In the worker: unpickle the file. The blob is the model pickled again, when it is a
    scikit-learn estimator: the parent runs it itself if it is made of plain data and
    scikit-learn's own classes only (see :func:`audit.isolation.load_plain`)."""
    assert spec.path is not None
    label = _label(role, spec)
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
    predict = _estimator_predict(model, label)
    classes = _plain_classes(_classes_of(model, spec, label), label)
    blob = None
    if type(model).__module__.startswith("sklearn."):  # the parent may run it (load_plain)
        import pickle

        try:
            blob = pickle.dumps(model, protocol=4)
        except Exception:  # it stays in the worker
            blob = None
    return {"classes": classes}, _worker_table(predict), blob


def _worker_predict(worker: ModelWorker, k: int) -> PredictFn:
    def predict(table: Table) -> np.ndarray:
        n = len(table.features)
        return worker.predict((table.role, table.path, table.features), display_path(table.path),
                              f"an ({n}, {k}) array of class probabilities")

    return predict


class _Rows:
    """In the worker: what a predict function reads of a table (its features and file)."""

    __slots__ = ("role", "path", "features")

    def __init__(self, role: str, path: Any, features: pd.DataFrame) -> None:
        self.role, self.path, self.features = role, path, features


def _worker_table(predict: PredictFn) -> Callable[[Any], Any]:
    """In the worker: a predict function of ``(role, path, features)``, as requests carry it."""
    def serve(request: tuple[str, Any, pd.DataFrame]) -> Any:
        return predict(_Rows(*request))  # type: ignore[arg-type]

    return serve


def _plain_classes(classes: tuple[Any, ...], label: str) -> list[Any]:
    """Class labels as JSON carries them from the worker (text, numbers or booleans)."""
    for c in classes:
        if not isinstance(c, (str, int, float, bool)):
            raise ModelError(f"{label}: its classes_ hold a {type(c).__name__} ({c!r}); add "
                             "classes: [...] (text or integers) to the model in the suite, in "
                             "the order of the probability columns")
    return list(classes)


def _load_callable(spec: ModelSpec, role: str) -> LoadedModel:
    assert spec.target is not None
    label = _label(role, spec)
    module_name, sep, attr_path = spec.target.partition(":")
    if not sep or not module_name or not attr_path:
        raise ModelError(f"{label}: {spec.target!r} must be 'module:function' (e.g. "
                         "mypkg.models:predict)")
    worker = ModelWorker(label, spec.timeout)
    info, _ = worker.load("audit.models", "serve_callable", (spec, role),
                          f"importing {module_name!r}")
    if info.get("torch"):  # white-box attacks need the module here: the one in-process case
        worker.close()
        model = call_guarded(lambda: _torch_callable(spec, role), label, spec.timeout,
                             f"importing {module_name!r}")
        return replace(model, predict=_guarded_predict(model.predict, label, spec.timeout))
    classes = tuple(info["classes"])
    return LoadedModel(role, spec, classes, info["sha256"], None,
                       _worker_predict(worker, len(classes)), tuple(info["warnings"]))


def serve_callable(spec: ModelSpec, role: str) -> tuple[dict[str, Any],
                                                       Callable[[Any], Any] | None, None]:
    """In the worker: import the module and find the object; a torch module is only detected
    (``{"torch": True}``), the parent loads it itself."""
    label = _label(role, spec)
    obj, attr_path, digest, warnings = _resolve_callable(spec, role)
    from audit.torch_models import torch_module_of

    if torch_module_of(obj, label, attr_path) is not None:
        return {"torch": True}, None, None
    if spec.output is not None:
        raise ModelError(f"{label}: output: {spec.output} applies to torch modules, but "
                         f"{attr_path} is a {type(obj).__name__}, which must return class "
                         "probabilities; remove output")
    if hasattr(obj, "predict_proba"):
        predict = _estimator_predict(obj, label)
    elif callable(obj):
        fn = obj

        def predict(table: Table) -> np.ndarray:
            return fn(table.features)  # its own frame: the worker unpickled it for this call
    else:
        raise ModelError(f"{label}: {attr_path} is a {type(obj).__name__}, neither a function nor "
                         "a model with predict_proba")
    classes = _plain_classes(_classes_of(obj, spec, label), label)
    return ({"classes": classes, "sha256": digest.hexdigest(), "warnings": list(warnings)},
            _worker_table(predict), None)


def _resolve_callable(spec: ModelSpec, role: str) -> tuple[Any, str, Any, tuple[str, ...]]:
    """Import the module a callable names and walk to its object: ``(object, attribute path,
    sha256 of the name and source, warnings)``."""
    assert spec.target is not None
    label = _label(role, spec)
    module_name, _, attr_path = spec.target.partition(":")
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
    return obj, attr_path, digest, warnings


def _torch_callable(spec: ModelSpec, role: str) -> LoadedModel:
    """In this process (in a guarded thread): the torch module a callable names."""
    from audit.torch_models import torch_model, torch_module_of, torch_weights_digest

    label = _label(role, spec)
    obj, attr_path, digest, warnings = _resolve_callable(spec, role)
    torch_module = torch_module_of(obj, label, attr_path)
    if torch_module is None:  # pragma: no cover - the worker found one from the same code
        raise ModelError(f"{label}: {attr_path} built a torch module in its worker process but "
                         "not here; make building it deterministic")
    # its weights may come from files the code hash cannot see
    digest.update(torch_weights_digest(torch_module))
    return torch_model(sys.modules["torch"], torch_module, spec, role, digest.hexdigest(), None,
                       warnings)


def _guarded_predict(predict: PredictFn, label: str, timeout: float) -> PredictFn:
    """An in-process predict function with the worker's guarantees short of a process: a
    timeout, and SystemExit caught (see :func:`audit.isolation.call_guarded`)."""
    def guarded(table: Table) -> np.ndarray:
        return call_guarded(lambda: predict(table), label, timeout,
                            f"predicting on {display_path(table.path)}")

    return guarded


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


# --------------------------------------------------------------------------- torch
