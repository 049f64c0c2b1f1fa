"""The pickle adapter: pickle/joblib files, only with ``trust: true`` (the report warns).

Unpickling runs code the audit did not write, so the file loads and predicts in a worker
process (:mod:`audit.models.isolation`): a model that exits, is killed or hangs makes its
checks ERROR, never ends the run. A plain scikit-learn estimator is pickled again there and
handed back through a restricted unpickler (:func:`load_plain`); it then runs in this
process, like a skops model.
"""

from __future__ import annotations

import pickle
from collections.abc import Callable
from importlib import import_module
from typing import Any

from audit.data import file_sha256
from audit.errors import ModelError, display_path
from audit.models.base import LoadedModel, model_label
from audit.models.estimator import classes_of, estimator_predict
from audit.models.isolation import ModelWorker
from audit.models.worker import plain_classes, worker_predict, worker_table
from audit.spec import ModelSpec

__all__ = ["load_pickle", "serve_pickle", "load_plain"]


def load_pickle(spec: ModelSpec, role: str) -> LoadedModel:
    """Unpickle in a worker; run a plain scikit-learn estimator here, anything else there."""
    assert spec.path is not None
    label = model_label(role, spec)
    if spec.trust is not True:  # not an assert: python -O must not load untrusted pickles
        raise ModelError(f"{label}: loading a pickle runs code; set trust: true only if you trust "
                         "whoever wrote this file (prefer skops or onnx)")
    worker = ModelWorker(label, spec.timeout)
    info, blob = worker.load("audit.models.pickle", "serve_pickle", (spec, role), "unpickling it")
    classes = tuple(info["classes"])
    native = load_plain(blob) if blob is not None else None
    if native is not None:  # plain scikit-learn: it runs here (gradients, sizes), like skops
        worker.close()
        predict = estimator_predict(native, label)
        own_call_ms: Callable[[], float | None] | None = None
    else:
        predict = worker_predict(worker, len(classes))

        def own_call_ms() -> float | None:
            return worker.last_call_ms
    warning = (f"{role} was loaded from a pickle ({display_path(spec.path)}) because the suite set "
               "trust: true; unpickling can run arbitrary code")
    return LoadedModel(role, spec, classes, file_sha256(spec.path), spec.path.stat().st_size,
                       predict, (warning,), native=native, own_call_ms=own_call_ms)


def serve_pickle(spec: ModelSpec, role: str) -> tuple[dict[str, Any], Callable[[Any], Any],
                                                     bytes | None]:
    """In the worker: unpickle the file. The blob is the model pickled again, when it is a
    scikit-learn estimator: the parent runs it itself if it is made of plain data and
    scikit-learn's own classes only (see :func:`load_plain`)."""
    assert spec.path is not None
    label = model_label(role, spec)
    if spec.trust is not True:  # checked again where the code runs (not an assert: python -O)
        raise ModelError(f"{label}: loading a pickle runs code; set trust: true only if you trust "
                         "whoever wrote this file (prefer skops or onnx)")
    try:
        if spec.path.suffix.lower() == ".joblib":
            import joblib

            model = joblib.load(spec.path)  # trusted: the suite set trust: true
        else:
            with spec.path.open("rb") as fh:
                model = pickle.load(fh)  # trusted: the suite set trust: true
    except Exception as exc:
        raise ModelError(f"{label}: could not unpickle ({type(exc).__name__}: {exc})") from None
    predict = estimator_predict(model, label)
    classes = plain_classes(classes_of(model, spec, label), label)
    blob = None
    if type(model).__module__.startswith("sklearn."):  # the parent may run it (load_plain)
        try:
            blob = pickle.dumps(model, protocol=4)
        except Exception:  # it stays in the worker
            blob = None
    return {"classes": classes}, worker_table(predict), blob


_PLAIN_GLOBALS = {
    ("copyreg", "_reconstructor"), ("builtins", "object"), ("builtins", "set"),
    ("builtins", "frozenset"), ("builtins", "slice"), ("builtins", "complex"),
    ("builtins", "bytearray"), ("collections", "OrderedDict"),
    ("numpy", "ndarray"), ("numpy", "dtype"),
    ("numpy._core.multiarray", "_reconstruct"), ("numpy.core.multiarray", "_reconstruct"),
    ("numpy._core.multiarray", "scalar"), ("numpy.core.multiarray", "scalar"),
    ("numpy.random._pickle", "__randomstate_ctor"),
    ("numpy.random._pickle", "__bit_generator_ctor"),
    ("numpy.random._pickle", "__generator_ctor"),
    ("numpy.random.bit_generator", "__pyx_unpickle_SeedSequence"),
}


class _PlainUnpickler(pickle.Unpickler):
    """Unpickles data, numpy arrays and scikit-learn's own classes, nothing else."""

    def find_class(self, module: str, name: str) -> Any:
        if (module, name) in _PLAIN_GLOBALS:
            return super().find_class(module, name)
        if module.partition(".")[0] in ("sklearn", "numpy") and "." not in name:
            found = getattr(import_module(module), name, None)
            import numpy as np

            numpy_data = (np.generic, np.dtype, np.random.BitGenerator, np.random.RandomState,
                          np.random.Generator, np.random.SeedSequence)  # scalars, random states
            # a class defined in scikit-learn itself (its modules re-export operator.attrgetter,
            # threading.Thread and such: a blob could call anything through those), or numpy data
            defined = str(getattr(found, "__module__", "")).partition(".")[0]
            if isinstance(found, type) and ((module.startswith("sklearn") and defined == "sklearn")
                                            or issubclass(found, numpy_data)):
                return found  # constructing it runs scikit-learn's code, not theirs
        raise pickle.UnpicklingError(f"{module}.{name} is not plain scikit-learn")


def load_plain(blob: bytes) -> Any:
    """A scikit-learn estimator a worker pickled again after loading the user's pickle, when it
    is made of plain data, numpy arrays and scikit-learn's own classes only; else ``None`` (it
    stays in the worker). Whatever code the user's pickle ran, ran there; this runs none of it."""
    import io

    try:
        return _PlainUnpickler(io.BytesIO(blob)).load()
    except Exception:
        return None
