"""Models held in memory (``audit.compare``): a fitted scikit-learn-style estimator, a
Hugging Face ``pipeline``, or a function of the inputs. A torch module is wrapped by the torch
adapter (:func:`audit.models.load_model` dispatches it there).

Nothing is loaded from a file, so nothing needs a trust flag: the caller already runs the
object. Each model is fingerprinted by its learned content where that can be told, for
provenance and the in-run prediction cache:

* an estimator: the content hash of its skops serialisation (the same fingerprint a skops file
  of it gets: :mod:`audit.models.skops_content`), or, when skops cannot serialise it, the
  SHA-256 of its pickle bytes (``pickle.dumps``; nothing is ever unpickled);
* a pipeline: the weights of its model (names, dtypes, shapes and bytes);
* a function: its qualified name and its code's bytecode and constants (what it reads from
  outside is not covered: its predictions are never reused across runs).
"""

from __future__ import annotations

import hashlib
import pickle
import tempfile
import warnings
from pathlib import Path
from typing import Any

import numpy as np

from audit.data import Table
from audit.errors import ModelError
from audit.models.base import LoadedModel, model_label, weights_digest
from audit.models.estimator import classes_of, estimator_predict
from audit.spec import ModelSpec

__all__ = ["load_object", "object_fingerprint", "is_pipeline"]


def is_pipeline(obj: Any) -> bool:
    """A Hugging Face text-classification ``pipeline`` (duck-typed: no transformers import)."""
    return callable(obj) and hasattr(obj, "model") and hasattr(obj, "tokenizer") and hasattr(
        getattr(obj, "model", None), "config")


def _estimator_sha256(obj: Any) -> tuple[str, str]:
    try:
        import skops.io as sio

        from audit.models.skops_content import skops_content_sha256

        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            data = sio.dumps(obj)
        with tempfile.TemporaryDirectory() as tmp:
            path = Path(tmp) / "model.skops"
            path.write_bytes(data)
            return skops_content_sha256(path), "skops content of the estimator"
    except Exception:  # an estimator skops cannot serialise (custom classes, lambdas)
        try:
            return (hashlib.sha256(pickle.dumps(obj, protocol=5)).hexdigest(),
                    "pickle bytes of the estimator (never unpickled)")
        except Exception:
            return (hashlib.sha256(f"{type(obj).__qualname__}:{id(obj)}".encode()).hexdigest(),
                    "the object's identity only (it could not be serialised)")


def _function_sha256(fn: Any) -> str:
    code = getattr(fn, "__code__", None)
    digest = hashlib.sha256(f"{getattr(fn, '__module__', '')}:"
                            f"{getattr(fn, '__qualname__', type(fn).__qualname__)}".encode())
    if code is not None:
        digest.update(code.co_code)
        digest.update(repr(code.co_consts).encode())
    else:
        digest.update(str(id(fn)).encode())
    return digest.hexdigest()


def object_fingerprint(obj: Any) -> tuple[str, str]:
    """The SHA-256 of a model object's learned content, and what it covers."""
    if is_pipeline(obj):
        return weights_digest(obj.model).hex(), "the pipeline model's weights"
    if hasattr(obj, "predict_proba"):
        return _estimator_sha256(obj)
    return _function_sha256(obj), "the function's name and code"


def _pipeline_predict(pipe: Any, label: str) -> tuple[tuple[Any, ...], Any]:
    config = pipe.model.config
    id2label = getattr(config, "id2label", None) or {}
    classes = tuple(id2label[i] for i in sorted(id2label))
    if len(classes) < 2:
        raise ModelError(f"{label}: the pipeline's model config has no id2label with two or more "
                         "classes")
    index = {c: i for i, c in enumerate(classes)}

    def predict(table: Table) -> np.ndarray:
        if table.texts is None:
            raise ModelError(f"{label}: a text pipeline needs texts: pass a list of str as X")
        out = pipe([str(t) for t in table.texts], top_k=None)
        P = np.zeros((len(out), len(classes)))
        for r, row in enumerate(out):
            for item in row:
                P[r, index[item["label"]]] = float(item["score"])
        return P

    return classes, predict


def load_object(spec: ModelSpec, role: str) -> LoadedModel:
    """Wrap the estimator, pipeline or function ``spec.obj`` as a :class:`LoadedModel`."""
    obj = spec.obj
    label = model_label(role, spec)
    sha, covers = object_fingerprint(obj)
    notes: tuple[str, ...] = ()
    if covers.startswith("the object's identity"):  # a hash that says nothing about content
        notes = (f"{role} could not be serialised: its fingerprint is its identity in this "
                 "process, not its learned content",)
    if is_pipeline(obj):
        classes, predict = _pipeline_predict(obj, label)
        if spec.classes is not None:
            classes = tuple(spec.classes)
        return LoadedModel(role, spec, classes, sha, None, predict, notes)
    if hasattr(obj, "predict_proba"):
        return LoadedModel(role, spec, classes_of(obj, spec, label), sha, None,
                           estimator_predict(obj, label), notes, native=obj)
    if not callable(obj):
        raise ModelError(f"{label}: a {type(obj).__name__} is not a model: pass a fitted "
                         "estimator (predict_proba), a torch module, a transformers pipeline or "
                         "a function of the inputs returning class probabilities")
    if spec.classes is None:
        raise ModelError(f"{label}: a function does not say its classes; pass classes=[...] in "
                         "the order of its probability columns")

    def call(table: Table) -> np.ndarray:
        given: Any = (list(table.texts) if table.texts is not None else
                      np.array(table.images) if table.images is not None else
                      table.features.copy(deep=False))
        return np.asarray(obj(given))

    return LoadedModel(role, spec, tuple(spec.classes), sha, None, call, notes)
