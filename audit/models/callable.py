"""The callable adapter: ``module:function``, explicitly named in the suite; runs code by design.

The object named is a function of the feature table (of a list of texts in a text suite, of a
float32 ``(N, C, H, W)`` image array in an image suite), an object with ``predict_proba``, or a
``torch.nn.Module`` (or a function of no arguments that returns one). It is imported and run
in a worker process (:mod:`audit.models.isolation`), so a model that exits, is killed or hangs
makes its checks ERROR. A module next to the suite is executed afresh on each load under a
private name (:mod:`audit.models.imports`), so suites in different folders never share a
same-named module and the fingerprint hashes the code that runs.

A torch module is the one model that runs in this process (white-box attacks need its
gradients): the worker only detects it, then :func:`load_model` loads it here in a guarded
thread, with the torch adapter the caller passes (``in_process``); its predict calls are
guarded the same way (:func:`guarded_predict`).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from typing import Any

import numpy as np

from audit.data import Table
from audit.errors import ModelError, display_path
from audit.models.base import LoadedModel, PredictFn, model_label
from audit.models.estimator import classes_of, estimator_predict
from audit.models.imports import resolve_callable, torch_module_of
from audit.models.isolation import ModelWorker, call_guarded
from audit.models.worker import plain_classes, worker_predict, worker_table
from audit.spec import ModelSpec

__all__ = ["load_callable", "serve_callable", "guarded_predict"]


def load_callable(spec: ModelSpec, role: str,
                  in_process: Callable[[ModelSpec, str], LoadedModel]) -> LoadedModel:
    """Import the module in a worker and predict there; a torch module is loaded in this
    process instead, by ``in_process(spec, role)`` run in a guarded thread (the torch adapter's
    :func:`audit.models.torch.load_torch_callable`, which :func:`audit.models.load_model`
    passes: no format module imports another)."""
    assert spec.target is not None
    label = model_label(role, spec)
    module_name, sep, attr_path = spec.target.partition(":")
    if not sep or not module_name or not attr_path:
        raise ModelError(f"{label}: {spec.target!r} must be 'module:function' (e.g. "
                         "mypkg.models:predict)")
    worker = ModelWorker(label, spec.timeout)
    info, _ = worker.load("audit.models.callable", "serve_callable", (spec, role),
                          f"importing {module_name!r}")
    if info.get("torch"):  # white-box attacks need the module here: the one in-process case
        worker.close()
        model = call_guarded(lambda: in_process(spec, role), label, spec.timeout,
                             f"importing {module_name!r}")
        return replace(model, predict=guarded_predict(model.predict, label, spec.timeout))
    classes = tuple(info["classes"])
    return LoadedModel(role, spec, classes, info["sha256"], None,
                       worker_predict(worker, len(classes)), tuple(info["warnings"]),
                       own_call_ms=lambda: worker.last_call_ms)


def serve_callable(spec: ModelSpec, role: str) -> tuple[dict[str, Any],
                                                       Callable[[Any], Any] | None, None]:
    """In the worker: import the module and find the object; a torch module is only detected
    (``{"torch": True}``), the parent loads it itself."""
    label = model_label(role, spec)
    obj, attr_path, digest, warnings = resolve_callable(spec, role)

    if torch_module_of(obj, label, attr_path) is not None:
        return {"torch": True}, None, None
    if spec.output is not None:
        raise ModelError(f"{label}: output: {spec.output} applies to torch modules, but "
                         f"{attr_path} is a {type(obj).__name__}, which must return class "
                         "probabilities; remove output")
    if hasattr(obj, "predict_proba"):
        predict = estimator_predict(obj, label)
    elif callable(obj):
        fn = obj

        def predict(table: Table) -> np.ndarray:
            if table.texts is not None:  # a text suite: the function takes the texts
                return fn([str(t) for t in table.texts])
            if table.images is not None:  # an image suite: a float32 (N, C, H, W) array
                return fn(table.images)
            return fn(table.features)  # its own frame: the worker unpickled it for this call
    else:
        raise ModelError(f"{label}: {attr_path} is a {type(obj).__name__}, neither a function nor "
                         "a model with predict_proba")
    classes = plain_classes(classes_of(obj, spec, label), label)
    return ({"classes": classes, "sha256": digest.hexdigest(), "warnings": list(warnings)},
            worker_table(predict), None)


def guarded_predict(predict: PredictFn, label: str, timeout: float) -> PredictFn:
    """An in-process predict function with the worker's guarantees short of a process: a
    timeout, and SystemExit caught (see :func:`audit.models.isolation.call_guarded`)."""
    def guarded(table: Table) -> np.ndarray:
        return call_guarded(lambda: predict(table), label, timeout,
                            f"predicting on {display_path(table.path)}")

    return guarded
