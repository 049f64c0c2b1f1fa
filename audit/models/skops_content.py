"""A SHA-256 of what a skops file holds, the same for every ``skops.io.dump`` of one model.

``skops.io.dump`` is not byte-reproducible, in four ways: every node of ``schema.json`` carries
``"__id__": id(obj)``, which the loader only compares (nodes with one id are built once, as one
object); arrays and sparse matrices are stored as members named after that id
(``140427797500752.npy``, ``....npz``) and ``bytes`` as members named by a random ``uuid4``
(``....bin``); which equal scalars share one object differs between processes (two parameters
defaulting to ``0.0`` are one float in the process that built the model, two after a pickle
round trip); and
scikit-learn's tree nodes are 64-byte records of 57 bytes of fields, whose 7 padding bytes
``np.save`` writes as they lie in uninitialised memory. The zip also records timestamps.
:func:`skops_content_sha256` hashes the content instead, reading the zip with :mod:`zipfile`
(and ``.npy`` headers with numpy's reader) only: nothing is unpickled and skops is not imported,
so it is cheap and safe on a hostile file.

The normalisation never gives two files that load differently one fingerprint:

* the schema is walked depth first, keys sorted, lists in order; each ``__id__`` (it must be a
  positive integer, as ``id()`` is) becomes 1, 2, ... in order of first appearance, and each
  ``file`` reference ``#1.npy``, ``#2.bin``, ... in its own order (the suffix is kept): a
  renaming, so which nodes share an object is kept;
* an ``__id__`` whose every node is the same JSON scalar (a ``JsonNode`` of a string, number,
  bool or null: immutable, so one shared object and equal copies cannot be told apart) is
  left out;
* a ``.npy`` member whose records have bytes no field covers is hashed with those bytes zeroed
  (``np.load`` gives no field over them).

The fingerprint covers the renamed schema as canonical JSON and, under its renamed name, the
size and SHA-256 of every other member (members no ``file`` names keep their own, as
``=name``). Timestamps, member order and compression are left out. Not normalised: the order of
a ``set``'s items (string hashing differs between processes; reordering them could give two
different files one fingerprint) and the zip inside a sparse matrix's ``.npz`` (timestamps):
such a model's fingerprint changes across processes, as its bytes do.
"""

from __future__ import annotations

import hashlib
import io
import json
import zipfile
from collections import Counter
from collections.abc import Callable
from pathlib import Path, PurePosixPath
from typing import Any

import numpy as np

from audit.errors import ModelError, display_path

__all__ = ["skops_content_sha256"]

TAG = b"distill-audit skops content v1\0"
MAX_SCHEMA_BYTES = 256 << 20  # parsed whole, into Python objects
MAX_EXPANDED_BYTES = 1 << 30  # every member, uncompressed; or RATIO times the file's size
MAX_EXPANSION_RATIO = 4
CHUNK = 1 << 20
# bzip2 and lzma inflate a read of any size in one call, without a bound: left to the loader
STREAMED = (zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED)


def skops_content_sha256(path: Path) -> str:
    """SHA-256 of a skops file's content, the same for every dump of the same model.

    Parameters
    ----------
    path : Path
        The skops file.

    Returns
    -------
    str
        The hex digest of the renamed schema and the members (see the module docstring).

    Raises
    ------
    ModelError
        When the file is not a zip, has no ``schema.json`` or one that is not a JSON object,
        an ``__id__`` that is not a positive integer, duplicate member names, a member
        compressed with a method other than stored or deflated, or members that expand beyond
        the bound (``max(MAX_EXPANDED_BYTES, MAX_EXPANSION_RATIO * file size)``; schema.json
        at most ``MAX_SCHEMA_BYTES``), checked from the zip's directory before anything is
        read. The message names the file.
    """
    where = display_path(path)
    try:
        with zipfile.ZipFile(path) as zf:
            infos = zf.infolist()
            _check_directory(infos, path.stat().st_size, where)
            schema_info = zf.getinfo("schema.json")  # KeyError names it, as skops' loader does
            with zf.open(schema_info) as stream:
                schema = json.loads(stream.read(MAX_SCHEMA_BYTES + 1))
            if not isinstance(schema, dict):
                raise ValueError(f"schema.json holds a JSON {type(schema).__name__}, not an object")
            held = _value_nodes(schema, {}, where)
            files: dict[str, str] = {}
            renamed = _rename(schema, {}, files, {i for i, h in held.items() if h is not None})
            members = {files.get(i.filename, f"={i.filename}"): _member_digest(zf, i, where)
                       for i in infos if i is not schema_info}
    except ModelError:
        raise
    except RecursionError:
        raise ModelError(f"{where}: not fingerprinted: schema.json is nested too deeply") from None
    except Exception as exc:  # what skops' loader would also fail on: the same words
        raise ModelError(f"{where}: not a readable skops file ({type(exc).__name__}: {exc})") from None
    document = {"schema": renamed, "members": members}
    canonical = json.dumps(document, sort_keys=True, separators=(",", ":"), ensure_ascii=True)
    return hashlib.sha256(TAG + canonical.encode("ascii")).hexdigest()


def _check_directory(infos: list[zipfile.ZipInfo], size: int, where: str) -> None:
    """Refuse, from the zip's directory alone, what would be costly or ambiguous to read."""
    twice = sorted(n for n, k in Counter(i.filename for i in infos).items() if k > 1)
    if twice:
        raise ModelError(f"{where}: not fingerprinted: the zip holds more than one member named "
                         f"{twice[0]!r}")
    for info in infos:
        if info.compress_type not in STREAMED:
            raise ModelError(f"{where}: not fingerprinted: member {info.filename!r} is compressed "
                             f"with zip method {info.compress_type} (only stored and deflated "
                             "members are read)")
        if info.filename == "schema.json" and info.file_size > MAX_SCHEMA_BYTES:
            raise ModelError(f"{where}: not fingerprinted: schema.json expands to "
                             f"{info.file_size} bytes, over the bound of {MAX_SCHEMA_BYTES}")
    total = sum(i.file_size for i in infos)
    bound = max(MAX_EXPANDED_BYTES, MAX_EXPANSION_RATIO * size)
    if total > bound:
        raise ModelError(f"{where}: not fingerprinted: its members expand to {total} bytes, over "
                         f"the bound of {bound} for a {size}-byte file")


def _value_nodes(node: Any, found: dict[int, str | None], where: str) -> dict[int, str | None]:
    """Every ``__id__`` under ``node``, checked, with what its nodes hold: the node (without its
    ``__id__``) as canonical JSON when every node carrying the id is the same JSON scalar, else
    None (the id is shared by nodes that differ, or by something else than a scalar)."""
    if isinstance(node, list):
        for item in node:
            _value_nodes(item, found, where)
    elif isinstance(node, dict):
        value = node.get("__id__")
        if "__id__" in node and not isinstance(value, dict | list):
            # the loader shares nodes by equal (and truthy) ids: only positive ints rename safely
            if type(value) is not int or value <= 0:
                raise ModelError(f"{where}: not fingerprinted: schema.json has __id__ {value!r}, "
                                 "not a positive integer")
            held = (json.dumps({k: v for k, v in node.items() if k != "__id__"}, sort_keys=True)
                    if _json_scalar(node) else None)
            found[value] = held if found.get(value, held) == held else None
        for item in node.values():
            _value_nodes(item, found, where)
    return found


def _json_scalar(node: dict[str, Any]) -> bool:
    """Whether the loader builds ``node`` as ``json.loads`` of a string, number, bool or null
    (immutable: sharing one or holding equal copies cannot be told apart)."""
    content = node.get("content")
    if node.get("__loader__") != "JsonNode" or not isinstance(content, str):
        return False
    try:
        value = json.loads(content)
    except (ValueError, RecursionError):
        return False
    return value is None or isinstance(value, str | int | float)  # bool is an int


def _rename(node: Any, ids: dict[int, int], files: dict[str, str], scalars: set[int]) -> Any:
    """``node`` with ``__id__`` values and ``file`` names renumbered by first appearance
    (``ids`` and ``files`` hold the renaming so far; keys are walked in sorted order), and the
    ``__id__`` of the JSON scalars in ``scalars`` left out."""
    if isinstance(node, list):
        return [_rename(item, ids, files, scalars) for item in node]
    if not isinstance(node, dict):
        return node
    out: dict[str, Any] = {}
    for key in sorted(node):
        value = node[key]
        if key == "__id__" and not isinstance(value, dict | list):
            if value not in scalars:
                out[key] = ids.setdefault(value, len(ids) + 1)
        elif key == "file" and isinstance(value, str):
            out[key] = files.setdefault(value, f"#{len(files) + 1}{PurePosixPath(value).suffix}")
        else:
            out[key] = _rename(value, ids, files, scalars)
    return out


def _member_digest(zf: zipfile.ZipFile, info: zipfile.ZipInfo, where: str) -> list[Any]:
    """``[size, sha256]`` of one member, streamed (zipfile checks its CRC at the end); for a
    ``.npy`` array whose records have padding, ``[size, sha256, "npy padding zeroed"]``."""
    h = hashlib.sha256()
    n = 0
    with zf.open(info) as stream:
        def read(size: int) -> bytes:
            nonlocal n
            chunk = stream.read(size)
            n += len(chunk)
            if n > info.file_size:  # pragma: no cover - zipfile stops at the declared size
                raise ModelError(f"{where}: not fingerprinted: member {info.filename!r} holds "
                                 f"more than the {info.file_size} bytes its directory entry says")
            return chunk

        header = _npy_header(read)
        h.update(header)
        covered = _npy_padding(header)
        if covered is None:
            while chunk := read(CHUNK):
                h.update(chunk)
            return [n, h.hexdigest()]
        record = covered.size
        rest = b""
        while chunk := read(CHUNK):
            rest += chunk
            whole = len(rest) - len(rest) % record
            h.update(_zero_padding(rest[:whole], covered))
            rest = rest[whole:]
        h.update(_zero_padding(rest, covered[:len(rest)]))
        return [n, h.hexdigest(), "npy padding zeroed"]


# ---------------------------------------------------------------------------- .npy padding
# A structured array's records may have bytes no field covers (scikit-learn's tree nodes: 57
# bytes of fields in a 64-byte record). np.save writes them as they lie in memory, which for a
# tree is uninitialised: each fit or copy of one forest writes other bytes there. Nothing reads
# them (np.load gives no field over them), so they are hashed as zeros.
NPY_MAGIC = b"\x93NUMPY"
NPY_MAX_HEADER = 10000  # numpy's own bound (np.load's max_header_size), which skops' load keeps
MAX_RECORD_BYTES = 1 << 16


def _npy_header(read: Callable[[int], bytes]) -> bytes:
    """The member's leading ``.npy`` header (magic, version, length, dict), or as much of its
    start as tells that it is none."""
    start = read(12)
    if len(start) < 12 or not start.startswith(NPY_MAGIC) or start[6:8] not in (b"\1\0", b"\2\0"):
        return start
    length = int.from_bytes(start[8:10], "little") + 10 if start[6] == 1 else \
        int.from_bytes(start[8:12], "little") + 12
    if length > NPY_MAX_HEADER + 12:
        return start
    return start + read(length - 12)


def _npy_padding(header: bytes) -> np.ndarray | None:
    """Which bytes of a record some field covers, when a ``.npy`` header declares records with
    padding; else None (also for what numpy would not read as a header)."""
    if not header.startswith(NPY_MAGIC):
        return None
    fp = io.BytesIO(header)
    try:
        version = np.lib.format.read_magic(fp)
        read_header = (np.lib.format.read_array_header_1_0 if version == (1, 0)
                       else np.lib.format.read_array_header_2_0)
        _, _, dtype = read_header(fp, max_header_size=NPY_MAX_HEADER)
        if fp.read(1) or dtype.hasobject or not 0 < dtype.itemsize <= MAX_RECORD_BYTES:
            return None
        covered = _covered(dtype)
    except Exception:  # not an array numpy would load (or nested too deep): hashed as it is
        return None
    return None if covered.all() else covered


def _covered(dtype: np.dtype) -> np.ndarray:
    """A mask of the bytes of one ``dtype`` item that hold a field (nested fields and
    sub-arrays included)."""
    if dtype.itemsize == 0:
        return np.ones(0, dtype=bool)
    if dtype.subdtype is not None:
        base, shape = dtype.subdtype
        return np.tile(_covered(base), int(np.prod(shape)))
    if dtype.fields is None:
        return np.ones(dtype.itemsize, dtype=bool)
    mask = np.zeros(dtype.itemsize, dtype=bool)
    for field in dtype.fields.values():
        sub, offset = field[0], field[1]
        mask[offset:offset + sub.itemsize] |= _covered(sub)
    return mask


def _zero_padding(data: bytes, covered: np.ndarray) -> bytes:
    """``data`` (whole records, or the tail of one) with the bytes no field covers zeroed."""
    if not data:
        return data
    records = np.frombuffer(data, dtype=np.uint8).reshape(-1, covered.size)
    return (records * covered).astype(np.uint8, copy=False).tobytes()
