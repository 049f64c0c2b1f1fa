"""The ONNX adapter: onnxruntime on the CPU.

Inputs are matched to feature columns by name, or a single input takes all feature columns as
one matrix (in the order recorded under the model's ``features`` metadata, when present). Class
labels come from the suite's ``classes`` or the model's ``classes`` metadata (a JSON list).
"""

from __future__ import annotations

import hashlib
import json
import stat
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from audit.coltypes import text_of
from audit.data import Table, file_sha256
from audit.errors import ModelError, display_path
from audit.models.base import LoadedModel, first_bad, model_label, normalisation, numeric_matrix
from audit.spec import ModelSpec

__all__ = ["load_onnx", "onnx_external_files", "onnx_sha256", "OnnxPredict"]


def onnx_external_files(path: Path) -> list[Path]:
    """The external-data files an ONNX model reads, each checked before anything reads it.

    Every tensor that keeps its data outside the model file is found: initializers, sparse
    initializers, tensors in node attributes, subgraphs (``If``, ``Loop``, ``Scan`` bodies),
    functions and training graphs. Each ``location`` must be a relative path that stays in the
    model's folder once symlinks are resolved and names a regular file (not a device, a fifo or
    a folder) holding the ``offset``/``length`` bytes the tensor declares. Both the hashing
    (:func:`onnx_sha256`) and the loader call this, so neither the hash nor
    onnxruntime ever opens a file the check refused.

    Returns the resolved files, sorted, each once; ``[]`` for a file onnx cannot parse (the
    loader then reports what onnxruntime says about it).

    Raises
    ------
    ModelError
        One line naming the model file, the tensor, the location and the fix.
    """
    if not _may_name_external_data(path):
        return []  # no tensor can keep its data outside: nothing to parse (or import onnx for)
    import onnx

    try:
        model = onnx.load(str(path), load_external_data=False)
    except Exception:
        return []  # onnxruntime will say what is wrong with the file
    folder = Path(path).parent.resolve()
    files: dict[Path, int] = {}
    for tensor in _all_tensors(model):
        if tensor.data_location != onnx.TensorProto.EXTERNAL:
            continue
        entries = {e.key: e.value for e in tensor.external_data}
        target = _external_target(path, folder, tensor.name, entries.get("location", ""))
        if target not in files:
            files[target] = target.stat().st_size
        _check_extent(path, tensor, entries, files[target])
    return sorted(files)


def _may_name_external_data(path: Path) -> bool:
    """Whether the file's bytes hold ``location`` anywhere. Every tensor stored outside the
    model names its file under the key ``location`` (the ONNX external-data spec), and a
    protobuf string is stored as its raw bytes: a file without them names no external data,
    told by one scan of the bytes, without importing onnx (~0.6 s) or parsing the graph."""
    needle = b"location"
    tail = b""
    try:
        with Path(path).open("rb") as fh:
            while chunk := fh.read(1 << 22):
                if needle in tail + chunk[: len(needle) - 1] or needle in chunk:
                    return True
                tail = chunk[-(len(needle) - 1):]
    except OSError:
        return True  # let the parse (and then onnxruntime) say what is wrong
    return False


def onnx_sha256(path: Path) -> str:
    """SHA-256 of an ONNX model and of the external-data files it names (its weights may live
    beside it), each checked first by :func:`onnx_external_files`; the file's own SHA-256 when
    it names none."""
    digest = file_sha256(path)
    external = onnx_external_files(path)
    if not external:
        return digest
    h = hashlib.sha256(digest.encode())
    folder = path.parent.resolve()
    for file in external:
        h.update(b"\0" + file.relative_to(folder).as_posix().encode() + b"\0"
                 + file_sha256(file).encode())
    return h.hexdigest()


_EXTERNAL_FIX = ("keep external data in files inside the model's folder: re-save the model with "
                 "onnx.save_model(model, path, save_as_external_data=True, location=\"<file name>\")")


def _external_problem(model: Path, tensor: str, location: str, problem: str,
                      fix: str = _EXTERNAL_FIX) -> ModelError:
    return ModelError(f"{display_path(model)}: tensor {tensor!r} keeps its data at external "
                      f"location {location!r}, which {problem}; {fix}")


def _external_target(model: Path, folder: Path, tensor: str, location: str) -> Path:
    """The regular file inside ``folder`` that ``location`` names, or a located ModelError."""
    if not location:
        raise _external_problem(model, tensor, location, "is empty")
    if "\0" in location:
        raise _external_problem(model, tensor, location, "contains a NUL character")
    if Path(location).is_absolute() or location.startswith(("/", "\\")) or (
            len(location) > 1 and location[1] == ":"):
        raise _external_problem(model, tensor, location, "is an absolute path")
    target = (folder / location).resolve()
    if not target.is_relative_to(folder):
        raise _external_problem(model, tensor, location, f"leaves the model's folder {folder} "
                                f"(it resolves to {target})")
    try:
        mode = target.stat().st_mode
    except FileNotFoundError:
        raise _external_problem(model, tensor, location,
                                f"does not exist (looked for {display_path(target)})",
                                "copy the model's external-data file there with it, or "
                                + _EXTERNAL_FIX) from None
    except OSError as exc:
        raise _external_problem(model, tensor, location,
                                f"cannot be read ({exc.strerror or exc})") from None
    if not stat.S_ISREG(mode):
        kind = ("a folder" if stat.S_ISDIR(mode) else "a fifo" if stat.S_ISFIFO(mode) else
                "a device" if stat.S_ISCHR(mode) or stat.S_ISBLK(mode) else
                "a socket" if stat.S_ISSOCK(mode) else "not a regular file")
        raise _external_problem(model, tensor, location, f"is {kind}, not a regular file")
    return target


def _check_extent(model: Path, tensor: Any, entries: dict[str, str], size: int) -> None:
    """``offset`` and ``length`` (or the tensor's own size) must lie inside the file."""
    numbers: dict[str, int] = {}
    for key in ("offset", "length"):
        raw = entries.get(key)
        if raw is None:
            continue
        try:
            numbers[key] = int(raw)
        except ValueError:
            numbers[key] = -1
        if numbers[key] < 0:
            raise _external_problem(model, tensor.name, entries["location"],
                                    f"has {key} {raw!r}, not a whole number >= 0")
    offset = numbers.get("offset", 0)
    length = numbers.get("length", _tensor_bytes(tensor) or 0)
    if offset + length > size:
        span = (f"offset {offset} + length {length}" if "length" in numbers
                else f"offset {offset} + the tensor's {length} bytes")
        raise _external_problem(model, tensor.name, entries["location"],
                                f"is {size} bytes long, shorter than {span}",
                                "the file is truncated or is not this model's: copy it again "
                                "with the model, or " + _EXTERNAL_FIX)


def _tensor_bytes(tensor: Any) -> int | None:
    """How many bytes a fixed-size tensor's raw data takes, or ``None`` (strings, packed
    sub-byte types, types this onnx does not know)."""
    import onnx
    from onnx.helper import tensor_dtype_to_np_dtype

    packed = {getattr(onnx.TensorProto, n, -1) for n in ("STRING", "UINT4", "INT4", "FLOAT4E2M1",
                                                           "UINT2", "INT2")}
    if tensor.data_type in packed:
        return None
    try:
        itemsize = np.dtype(tensor_dtype_to_np_dtype(tensor.data_type)).itemsize
    except Exception:
        return None
    return int(np.prod([int(d) for d in tensor.dims], dtype=np.int64)) * itemsize


def _all_tensors(model: Any) -> Iterator[Any]:
    """Every TensorProto of ``model``: graphs (with their subgraphs), functions, training."""
    graphs = [model.graph]
    for info in model.training_info:
        graphs += [info.initialization, info.algorithm]
    for graph in graphs:
        yield from _graph_tensors(graph)
    for function in model.functions:
        yield from _node_tensors(function.node)


def _graph_tensors(graph: Any) -> Iterator[Any]:
    yield from graph.initializer
    for sparse in graph.sparse_initializer:
        yield from (sparse.values, sparse.indices)
    yield from _node_tensors(graph.node)


def _node_tensors(nodes: Any) -> Iterator[Any]:
    for node in nodes:
        for a in node.attribute:
            if a.HasField("t"):
                yield a.t
            yield from a.tensors
            sparse = ([a.sparse_tensor] if a.HasField("sparse_tensor") else []) + list(
                a.sparse_tensors)
            for s in sparse:
                yield from (s.values, s.indices)
            if a.HasField("g"):
                yield from _graph_tensors(a.g)
            for g in a.graphs:
                yield from _graph_tensors(g)


def load_onnx(spec: ModelSpec, role: str) -> LoadedModel:
    import onnxruntime as ort

    assert spec.path is not None
    label = model_label(role, spec)
    onnx_external_files(spec.path)  # before onnxruntime opens any external file
    options = ort.SessionOptions()
    options.log_severity_level = 4  # no coloured log lines on stderr: errors come as exceptions
    try:
        session = ort.InferenceSession(str(spec.path), sess_options=options,
                                       providers=["CPUExecutionProvider"])
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
    as_logits = spec.output == "logits" or (spec.output is None and "logit" in output.lower())
    inputs = session.get_inputs()
    text = None if spec.tokenizer is None else _text_encoder(spec, inputs, label)
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
        if table.texts is not None:
            if text is None:
                takes = ", ".join(f"{i.name} {i.type} {i.shape}" for i in inputs)
                raise ModelError(f"{label}: the suite's models read texts (data.text), but this "
                                 f"model takes {takes}; an ONNX text model takes token ids "
                                 "(input_ids): name its tokenizer folder with tokenizer: <folder>")
            return text(table.texts)
        if table.images is not None:
            images = table.images
            if spec.mean is not None:  # the suite's normalisation, in front of the model
                mean, std = normalisation(spec, images, label)
                images = (images - mean) / std
            return _image_feed(images, inputs, label, where)
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
            if list(frame.columns) != ordered:  # in the model's order, whatever the table's
                frame = frame[ordered]
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

    predict = OnnxPredict(spec.path, session, output, feed, classes, as_logits,
                          spec.batch_size)
    size = spec.path.stat().st_size
    sha256 = onnx_sha256(spec.path)
    if spec.tokenizer is not None:  # the model and its tokenizer, as model_fingerprint has them
        from audit.models.folder import with_tokenizer

        sha256, size = with_tokenizer(sha256, size, spec.tokenizer, label)
    return LoadedModel(role, spec, classes, sha256, size, predict, warnings)


class OnnxPredict:
    """An ONNX model's predict function (a table -> its output), which can also give the same
    model in a session of its own with fixed thread counts, for timing
    (:meth:`with_threads`). onnxruntime reads thread counts only when a session is created, so
    the predictions keep the default session (its numbers unchanged) and the timing gets its
    own."""

    def __init__(self, path: Path, session: Any, output: str,
                 feed: Callable[[Table], dict[str, np.ndarray]], classes: tuple[Any, ...],
                 as_logits: bool = False, batch_size: int | None = None) -> None:
        self._path, self._session, self._output = path, session, output
        self._feed, self._classes = feed, classes
        self._logits, self._batch = as_logits, batch_size
        self._pinned: dict[tuple[int, int], Any] = {}  # (intra_op, inter_op) -> session

    def __call__(self, table: Table) -> np.ndarray:
        return self._run(self._session, table)

    @property
    def sessions(self) -> dict[tuple[int, int], Any]:
        """The timing sessions made so far, by ``(intra_op, inter_op)``."""
        return dict(self._pinned)

    def _run(self, session: Any, table: Table) -> np.ndarray:
        batch = self._batch or (_TEXT_BATCH if table.texts is not None else
                                _IMAGE_BATCH if table.images is not None else None)
        if batch is None or table.n_rows <= batch:
            out = self._once(session, table)
        elif table.images is not None:  # one feed, sliced: no table per batch
            feed = self._feed(table)
            out = np.concatenate([self._once(session, table, {k: v[i:i + batch] for k, v in
                                                              feed.items()})
                                  for i in range(0, table.n_rows, batch)])
        else:  # texts: each batch tokenized and padded on its own
            out = np.concatenate([self._once(session, table.take(slice(i, i + batch)))
                                  for i in range(0, table.n_rows, batch)])
        if self._logits:
            z = np.exp(out - out.max(axis=1, keepdims=True))
            out = z / z.sum(axis=1, keepdims=True)
        return out

    def _once(self, session: Any, table: Table, feed: dict[str, np.ndarray] | None = None
              ) -> np.ndarray:
        out = session.run([self._output], self._feed(table) if feed is None else feed)[0]
        if isinstance(out, list):  # ZipMap: a list of {class: probability} dicts
            out = np.array([[row[c] for c in self._classes] for row in out])
        return np.asarray(out, dtype=np.float64) if self._logits else out

    def with_threads(self, intra_op: int, inter_op: int = 1) -> Callable[[Table], np.ndarray]:
        """The model in a session with ``intra_op`` and ``inter_op`` threads, run sequentially
        (made once per pair of counts, on the first call; ``sessions`` holds them)."""
        key = (int(intra_op), int(inter_op))
        if key not in self._pinned:
            import onnxruntime as ort

            options = ort.SessionOptions()
            options.log_severity_level = 4
            options.intra_op_num_threads, options.inter_op_num_threads = key
            options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
            self._pinned[key] = ort.InferenceSession(str(self._path), sess_options=options,
                                                     providers=["CPUExecutionProvider"])
        session = self._pinned[key]
        return lambda table: self._run(session, table)


_TEXT_BATCH = 64
_IMAGE_BATCH = 256


def _image_feed(images: np.ndarray, inputs: list[Any], label: str, where: str
                ) -> dict[str, np.ndarray]:
    """The images as the model's single image input, in its float type, shape checked."""
    if len(inputs) != 1 or len(inputs[0].shape) != 4:
        shown = ", ".join(f"{i.name} {i.shape}" for i in inputs)
        raise ModelError(f"{label}: the suite's models read images (data.images), but the model's "
                         f"inputs are {shown}; an image model takes one (N, C, H, W) tensor")
    inp = inputs[0]
    dtype = _ONNX_DTYPES.get(inp.type)
    if dtype not in (np.float32, np.float64):
        raise ModelError(f"{label}: the model's image input {inp.name!r} is {inp.type}; images "
                         "are fed as float tensors in [0, 1]")
    for axis, (want, have) in enumerate(zip(inp.shape[1:], images.shape[1:]), start=1):
        if isinstance(want, int) and want != have:
            raise ModelError(f"{label}: the model's input {inp.name!r} takes shape {inp.shape} "
                             f"but the images of {where} are {tuple(images.shape)} (axis {axis}: "
                             f"{have}, not {want}); give images of the size the model takes "
                             "(data.images.size resizes image files)")
    return {inp.name: images.astype(dtype, copy=False)}


def _text_encoder(spec: ModelSpec, inputs: list[Any], label: str
                  ) -> Callable[[np.ndarray], dict[str, np.ndarray]]:
    """Texts -> the model's token-id inputs (``input_ids``, ``attention_mask``,
    ``token_type_ids``: whichever it takes), with the suite's tokenizer folder."""
    from audit.models.text import load_tokenizer, max_length_of

    assert spec.tokenizer is not None
    tokenizer = load_tokenizer(spec.tokenizer, label)
    names = [i.name for i in inputs]
    unknown = [n for n in names if n not in ("input_ids", "attention_mask", "token_type_ids")]
    if unknown or "input_ids" not in names:
        raise ModelError(f"{label}: a text model's inputs are input_ids (and attention_mask, "
                         f"token_type_ids); this one takes {names}")
    length = max_length_of(tokenizer, spec.max_length, None, label)
    types = {i.name: _ONNX_DTYPES.get(i.type, np.int64) for i in inputs}

    def encode(texts: np.ndarray) -> dict[str, np.ndarray]:
        encoded = tokenizer([str(t) for t in texts], padding=True, truncation=True,
                            max_length=length, return_tensors="np")
        ids = np.asarray(encoded["input_ids"])
        return {n: np.asarray(encoded[n] if n in encoded else np.zeros_like(ids)).astype(types[n])
                for n in names}

    return encode


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


def _column_as(column: pd.Series, onnx_type: str, label: str, where: str) -> np.ndarray:
    dtype = _ONNX_DTYPES.get(onnx_type)
    name = column.name
    if dtype is None:
        raise ModelError(f"{label}: unsupported ONNX input type {onnx_type} for column {name!r}; "
                         f"supported: {', '.join(_ONNX_DTYPES)}")
    if dtype is object:  # numbers as the text they were written as: 1, not 1.0
        text = text_of(column)
        if text.isna().any():
            i, _ = first_bad(text, text.notna())
            raise ModelError(f"{label}: column {name!r} of {where} has an empty cell at data row "
                             f"{i + 1}, but the model's input {name!r} is {onnx_type}, which takes "
                             "text and has no missing value; fill the cells or drop those rows")
        return text.to_numpy(dtype=object).reshape(-1, 1)
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
        i, value = first_bad(column, ok)
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
    return numeric_matrix(frame, dtype, label, where, "the model's single input", onnx_type,
                          "leave it out with data.features or export one input per column")
