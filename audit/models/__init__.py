"""Model adapters: every model becomes a function from a feature table to class probabilities.

:mod:`audit.models.base` holds what every adapter returns (:class:`LoadedModel`) and the checks
they share (:func:`check_probabilities`); each format has a module of its own, loaded by
:func:`load_model` only when a suite uses it (torch and onnxruntime are imported then):

* ``skops`` (:mod:`~audit.models.skops`) -- scikit-learn estimators saved with skops, loaded
  without running code. Types outside skops' default trusted set are refused unless the suite
  lists them.
* ``onnx`` (:mod:`~audit.models.onnx`) -- run with onnxruntime on the CPU. Inputs are matched to
  columns by name, or a single input takes all feature columns as one float matrix. Class labels
  come from the suite's ``classes`` or the model's ``classes`` metadata entry (a JSON list).
* ``callable`` (:mod:`~audit.models.callable`) -- ``module:function``, explicitly named in the
  suite; runs code by design, in a worker process (:mod:`~audit.models.isolation`). A module
  next to the suite is executed afresh on each load under a private name
  (:mod:`~audit.models.imports`), so suites in different folders never share a same-named module
  and the fingerprint hashes the code that runs.
* ``predictions`` (:mod:`~audit.models.predictions`) -- probabilities computed elsewhere, one
  column per class, one row per eval row. Its hash is the file's SHA-256; the prediction cache
  also keys on the columns read, so two models' columns in one file never share cached
  predictions.
* ``pickle`` (:mod:`~audit.models.pickle`) -- only with ``trust: true``, in a worker process;
  the report carries a warning.
* ``torch`` (:mod:`~audit.models.torch`) -- a TorchScript file (``.pt``/``.pth``) or a
  ``torch.export`` program (``.pt2``), on the CPU (no arbitrary unpickling). A ``callable`` that
  is, or builds with no arguments, a ``torch.nn.Module`` is wrapped the same way. The feature
  columns are fed as one float matrix in the parameters' dtype; ``output: logits`` (default)
  applies softmax. The loaded model keeps ``module`` and ``input_dtype`` for gradient-based
  checks. torch is imported only when such a model loads. A model fed images takes them as one
  float ``(N, C, H, W)`` tensor in [0, 1].
* ``transformers`` (:mod:`~audit.models.transformers`) -- a Hugging Face sequence classifier
  from a local folder (config, safetensors weights, tokenizer), offline, reading the suite's
  text column; its fingerprint covers every file of the folder (:mod:`~audit.models.folder`).

Scikit-learn-style estimators (skops, pickle, callable) share :mod:`~audit.models.estimator`;
the worker-process models share :mod:`~audit.models.worker`. No format module imports another,
and nothing this package imports (data, spec, errors, coltypes) imports it back.
"""

from __future__ import annotations

from typing import Any

from audit.models.base import LoadedModel, PredictFn, check_probabilities, model_label
from audit.models.fingerprint import content_bytes, content_sha256, model_fingerprint
from audit.models.skops import check_skops_trust
from audit.spec import ModelSpec

__all__ = ["LoadedModel", "PredictFn", "load_model", "check_probabilities", "model_fingerprint",
           "content_sha256", "content_bytes", "check_skops_trust", "model_label"]


def load_model(spec: ModelSpec, role: str) -> LoadedModel:
    """Load the model ``spec`` describes, for ``role`` (``teacher`` or ``student``).

    Each format's module is imported here, when a suite uses it.
    """
    if spec.kind == "onnx":
        from audit.models.onnx import load_onnx

        return load_onnx(spec, role)
    if spec.kind == "torch":
        from audit.models.torch import load_torch

        return load_torch(spec, role)
    if spec.kind == "skops":
        from audit.models.skops import load_skops

        return load_skops(spec, role)
    if spec.kind == "callable":
        from audit.models.callable import load_callable

        return load_callable(spec, role, in_process=_load_torch_callable)
    if spec.kind == "predictions":
        from audit.models.predictions import load_predictions

        return load_predictions(spec, role)
    if spec.kind == "pickle":
        from audit.models.pickle import load_pickle

        return load_pickle(spec, role)
    if spec.kind == "transformers":
        from audit.models.transformers import load_transformers

        return load_transformers(spec, role)
    if spec.kind == "causal_lm":
        from audit.models.causal_lm import load_causal_lm

        return load_causal_lm(spec, role)
    if spec.kind == "lm_eval":
        from audit.models.lm_eval import load_lm_eval

        return load_lm_eval(spec, role)
    if spec.kind == "object":  # in memory (audit.compare): a torch module goes to its adapter
        if _is_torch_module(spec.obj):
            from audit.models.torch import load_torch_object

            return load_torch_object(spec, role)
        from audit.models.memory import load_object

        return load_object(spec, role)
    raise KeyError(spec.kind)


def _is_torch_module(obj: Any) -> bool:
    import sys

    torch = sys.modules.get("torch")  # an object of torch's exists only if torch is imported
    return torch is not None and isinstance(obj, torch.nn.Module)


def _load_torch_callable(spec: ModelSpec, role: str) -> LoadedModel:
    """The torch module a ``callable:`` names, loaded in this process (see
    :func:`audit.models.callable.load_callable`)."""
    from audit.models.torch import load_torch_callable

    return load_torch_callable(spec, role)
