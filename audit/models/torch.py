"""The PyTorch adapter: TorchScript files, ``torch.export`` programs (.pt2), or an
``nn.Module`` a callable names.

TorchScript loads without unpickling arbitrary Python objects; an exported program does too
when it holds plain tensors only, which is checked first (anything ``torch.export.load`` would
unpickle needs ``trust: true``, as a pickle does). The model
runs in eval mode (an exported program as it was exported) under ``no_grad``, in batches, on
the feature columns as one matrix cast to the parameters' dtype (so float64 data never crashes
a float32 model); ``output: logits`` (the default) applies a softmax. torch is imported only
when a torch model is loaded.

A ``callable:`` naming a torch module is detected in its worker process
(:func:`audit.models.imports.torch_module_of`), then loaded here by
:func:`load_torch_callable`, in the guarded thread :mod:`audit.models.callable` runs it in.
"""

from __future__ import annotations

import hashlib
import json
import sys
import warnings
import zipfile
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from audit.data import Table, file_sha256
from audit.errors import ModelError, display_path
from audit.extras import MissingExtra, require
from audit.models.base import LoadedModel, model_label, numeric_matrix
from audit.models.base import weights_digest as torch_weights_digest
from audit.models.imports import resolve_callable, torch_module_of
from audit.spec import ModelSpec

__all__ = ["load_torch", "load_torch_callable", "load_torch_object", "torch_model",
           "torch_weights_digest"]


_TORCH_BATCH = 4096  # rows per forward pass: bounds the memory of activations
_IMAGE_BATCH = 256  # images per forward pass
_TORCHSCRIPT_DEPRECATION = r"`torch\.jit\.\w+` is (deprecated|not supported)"


def _import_torch(label: str) -> Any:
    try:
        return require("torch", f"{label}: a torch model")
    except MissingExtra as exc:
        raise ModelError(str(exc)) from None
    except ImportError as exc:
        raise ModelError(f"{label}: a torch model needs PyTorch, which cannot be imported "
                         f"({exc}); reinstall it with pip install 'distill-audit[torch]'") from None


def _archive_kind(path: Path) -> tuple[str | None, str | None]:
    """``("torchscript" | "export", None)`` from the zip listing of ``path``, without reading
    any pickle; ``(None, why not)`` for anything else."""
    if not zipfile.is_zipfile(path):
        return None, "not a TorchScript or torch.export archive (not a zip file)"
    with zipfile.ZipFile(path) as archive:
        names = archive.namelist()
    leaves = {n.partition("/")[2] for n in names}
    if any(n.rpartition("/")[2] == "constants.pkl" for n in names):
        return "torchscript", None
    if "archive_format" in leaves and any(n.startswith("models/") and n.endswith(".json")
                                          for n in leaves):
        return "export", None
    return None, ("written by torch.save (a pickle, such as a state_dict or a whole pickled "
                  "model), not TorchScript or torch.export")


def load_torch(spec: ModelSpec, role: str) -> LoadedModel:
    """Load a TorchScript file (``torch.jit.load(path, map_location="cpu")``) or a program
    saved with ``torch.export.save`` (``torch.export.load(path).module()``).

    A TorchScript archive holds tensors and TorchScript code, which torch's own interpreter
    runs; loading it does not unpickle arbitrary Python objects or import Python modules
    (unlike ``torch.load`` of a pickled model, which is refused with a pointer to
    ``callable:``). An exported program holds a graph (JSON) and its weights; the parts
    ``torch.export.load`` would unpickle (:func:`_pickled_parts`) are refused unless the suite
    sets ``trust: true``. Files written by ``torch.save`` are recognised from their zip listing
    and refused before torch reads them.
    An exported program's class labels may be stored with it:
    ``torch.export.save(program, path, extra_files={"classes": json.dumps([...])})``.
    """
    assert spec.path is not None
    label = model_label(role, spec)
    fix = ("save the model with torch.export.save(torch.export.export(model, (example,), "
           "dynamic_shapes=...), path) or torch.jit.script(model).save(path), or build it in "
           "code and name it with {callable: 'module:function'}")
    kind, problem = _archive_kind(spec.path)
    if kind is None:
        raise ModelError(f"{label}: {problem}; {fix}")
    if kind == "export" and spec.trust is not True:
        pickled = _pickled_parts(spec.path)
        if pickled:
            raise ModelError(
                f"{label}: this torch.export archive holds {'; '.join(pickled)}, which "
                "torch.export.load unpickles (unpickling can run arbitrary code); save the "
                "program again with torch.export.save from plain tensors, or add trust: true to "
                "the model only if you trust whoever wrote the file")
    torch = _import_torch(label)
    notes: tuple[str, ...] = ()
    try:
        if kind == "export":
            extra = {"classes": ""}
            module = torch.export.load(str(spec.path), extra_files=extra).module()
            if extra["classes"]:
                module.classes = _json_classes(extra["classes"], label)
        else:
            with warnings.catch_warnings():  # TorchScript is deprecated in favour of torch.export
                warnings.filterwarnings("ignore", _TORCHSCRIPT_DEPRECATION, DeprecationWarning)
                module = torch.jit.load(str(spec.path), map_location="cpu")
    except ModelError:
        raise
    except Exception as exc:
        what = "an exported program" if kind == "export" else "TorchScript"
        raise ModelError(f"{label}: torch cannot load it as {what} ({_torch_error(exc)}); "
                         f"{fix}") from None
    return torch_model(torch, module, spec, role, file_sha256(spec.path),
                       spec.path.stat().st_size, notes)


def _pickled_parts(path: Path) -> list[str]:
    """The parts of a torch.export archive that ``torch.export.load`` would unpickle without
    restriction, read from the archive's listing and JSON configs (nothing is unpickled here
    except with ``torch.load(weights_only=True)``, which runs no code).

    torch 2.13 reads weights and constants flagged ``use_pickle``, custom and opaque objects,
    legacy ``data/weights|constants/<model>.pt`` files and the sample inputs with pickle; the
    sample inputs first with ``weights_only=True``, falling back to full unpickling when that
    fails. A program saved from plain tensors has none of these.
    """
    import io

    import torch

    found: list[str] = []
    with zipfile.ZipFile(path) as archive:
        for name in archive.namelist():
            inner = name.partition("/")[2]
            folder, _, leaf = inner.rpartition("/")
            if folder in ("data/weights", "data/constants") and leaf.endswith("_config.json"):
                try:
                    config = json.loads(archive.read(name)).get("config", {})
                except (ValueError, AttributeError):
                    found.append(f"an unreadable {leaf}")
                    continue
                for fqn, entry in config.items():
                    entry = entry if isinstance(entry, dict) else {}
                    stored = str(entry.get("path_name", ""))
                    if entry.get("use_pickle") or stored.startswith(("custom_obj_", "opaque_obj_")):
                        found.append(f"pickled {folder.rpartition('/')[2][:-1]} {fqn!r}")
            elif folder in ("data/weights", "data/constants") and leaf.endswith(".pt"):
                found.append(f"legacy pickled {folder.rpartition('/')[2]} ({leaf})")
            elif folder == "data/sample_inputs" or inner.endswith(".forward.sample_input.pt"):
                try:
                    torch.load(io.BytesIO(archive.read(name)), weights_only=True)
                except Exception:
                    found.append(f"sample inputs that need unrestricted unpickling ({leaf})")
    return found


def _json_classes(text: str, label: str) -> list[Any]:
    try:
        listed = json.loads(text)
    except ValueError:
        listed = None
    if not isinstance(listed, list):
        raise ModelError(f"{label}: the program's extra file 'classes' is {text[:80]!r}, not a "
                         "JSON list of class labels; fix it or add classes: [...] to the model "
                         "in the suite")
    return listed


def torch_model(torch: Any, module: Any, spec: ModelSpec, role: str, sha256: str,
                 size_bytes: int | None, notes: tuple[str, ...]) -> LoadedModel:
    """Wrap an ``nn.Module`` (TorchScript or Python) as a :class:`LoadedModel`.

    The feature columns become one float matrix in the dtype of the module's parameters, fed
    in batches under ``torch.no_grad()`` with the module in eval mode. ``output: logits`` (the
    default) applies softmax (a sigmoid to a single logit column of a binary model);
    ``output: probabilities`` passes the output through.
    """
    label = model_label(role, spec)
    classes = _torch_classes(module, spec, label)
    try:
        module.eval()
    except NotImplementedError:  # an exported program runs as it was exported (eval or not)
        pass
    if spec.mean is not None:  # inside the module: gradient attacks see it too
        module = _normalised(torch, module, spec)
    dtype = next((t.dtype for t in (*module.parameters(), *module.buffers())
                  if t.is_floating_point()), torch.float32)
    input_dtype = np.dtype({torch.float64: np.float64, torch.float16: np.float16}.get(
        dtype, np.float32))
    logits = (spec.output or "logits") == "logits"
    device = torch.device("cpu")
    if spec.device == "cuda":
        if not torch.cuda.is_available():
            raise ModelError(f"{label}: device: cuda, but torch sees no CUDA device here; "
                             "remove device: to run on the CPU")
        device = torch.device("cuda")
        module.to(device)

    def fed(table: Table) -> tuple[np.ndarray, str]:
        """The array the module takes, and how to say what it was in a message."""
        where = display_path(table.path)
        if table.texts is not None:
            raise ModelError(f"{label}: a torch model takes tensors of numbers, not texts; "
                             "audit a text classifier as {transformers: <folder>}, or as ONNX "
                             "with a tokenizer: folder")
        if table.images is not None:
            return table.images.astype(input_dtype, copy=True), (
                f"the images (data.images) as one {tuple(table.images.shape)} {input_dtype} tensor "
                "in [0, 1]; the module must take (N, C, H, W) images")
        columns = [str(c) for c in table.features.columns]
        shown = ", ".join(columns[:6]) + (f", ... ({len(columns)} in all)"
                                          if len(columns) > 6 else "")
        X = _torch_matrix(table.features, input_dtype, label, where)
        return X, (f"the feature columns ({shown}) as one {tuple(X.shape)} {input_dtype} matrix; "
                   "list the model's inputs, in its order, under data.features")

    def predict(table: Table) -> np.ndarray:
        where = display_path(table.path)
        X, what = fed(table)
        batch = spec.batch_size or (_IMAGE_BATCH if table.images is not None else _TORCH_BATCH)
        outputs = []
        with torch.no_grad():
            for start in range(0, len(X), batch):
                x = torch.from_numpy(X[start:start + batch]).to(device, dtype)
                try:
                    out = module(x)
                except Exception as exc:
                    raise ModelError(
                        f"{label} failed to predict on {where}: {_torch_error(exc)}; it was fed "
                        f"{what}") from None
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


def _normalised(torch: Any, module: Any, spec: ModelSpec) -> Any:
    """``module`` behind the suite's ``(x - mean) / std`` per channel (in the module's dtype)."""
    assert spec.mean is not None and spec.std is not None
    mean, std = spec.mean, spec.std
    dtype = next((t.dtype for t in (*module.parameters(), *module.buffers())
                  if t.is_floating_point()), torch.float32)

    class Normalised(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.inner = module
            shape = (1, len(mean), 1, 1)
            self.register_buffer("mean", torch.tensor(mean, dtype=dtype).reshape(shape))
            self.register_buffer("std", torch.tensor(std, dtype=dtype).reshape(shape))

        def forward(self, x: Any) -> Any:
            if x.shape[1] != self.mean.shape[1] and self.mean.shape[1] != 1:
                raise ValueError(f"mean and std give {self.mean.shape[1]} values but the images "
                                 f"have {x.shape[1]} channel(s); give one value per channel")
            return self.inner((x - self.mean) / self.std)

        def train(self, mode: bool = True) -> Any:  # an exported program cannot be switched
            self.training = mode
            return self

    return Normalised().eval()


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
                         "classes attribute (a list of labels, kept by TorchScript; a torch.export "
                         "program keeps them when saved with extra_files={'classes': "
                         "json.dumps([...])})")
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
    return numeric_matrix(frame, dtype, label, where, "the torch model", str(dtype),
                          "leave it out with data.features or encode it as numbers")


def load_torch_callable(spec: ModelSpec, role: str) -> LoadedModel:
    """In this process (in a guarded thread): the torch module a callable names, wrapped by
    :func:`torch_model`; its fingerprint covers the code and the module's weights."""
    label = model_label(role, spec)
    obj, attr_path, digest, warnings = resolve_callable(spec, role)
    torch_module = torch_module_of(obj, label, attr_path)
    if torch_module is None:  # pragma: no cover - the worker found one from the same code
        raise ModelError(f"{label}: {attr_path} built a torch module in its worker process but "
                         "not here; make building it deterministic")
    # its weights may come from files the code hash cannot see
    digest.update(torch_weights_digest(torch_module))
    return torch_model(sys.modules["torch"], torch_module, spec, role, digest.hexdigest(), None,
                       warnings)


def load_torch_object(spec: ModelSpec, role: str) -> LoadedModel:
    """A torch module held in memory (``audit.compare``), wrapped by :func:`torch_model`; its
    fingerprint is its weights' digest."""
    module = spec.obj
    digest = hashlib.sha256(type(module).__qualname__.encode())
    digest.update(torch_weights_digest(module))
    return torch_model(sys.modules["torch"], module, spec, role, digest.hexdigest(), None, ())
