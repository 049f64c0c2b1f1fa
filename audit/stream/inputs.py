"""What a text or image model reads, batch by batch, for the streaming engines.

A streamed table's rows carry the labels and groups; a text or image model reads more:

* ``data.text``: the text column is a column of the table, read with each batch (a CSV's
  cells as written, as :func:`~audit.data.tables.load_table` reads them);
* ``data.images`` arrays: the eval array (``.npy``, or the one array of an ``.npz``) is opened
  once and read by position, ``rows start..stop`` for each batch (a ``.npy`` by seeking, an
  ``.npz`` member by reading on: its batches come in order); the whole array is never in
  memory. Its header is checked before anything is read (a forged shape is refused);
* ``data.images.column``: the files a batch's rows name, read with Pillow as in memory.

So a batch's images are exactly the rows of what the in-memory engine reads, scaled the same
way, and a problem is named by its row in the whole table. What the in-memory reader decides
from the whole table is decided here before the first batch (:meth:`InputReader.prepare`):
the colour mode of image files without ``data.images.channels`` (grey unless one has colour:
a pass over the files' headers) and the size every image must share without
``data.images.size`` (the first image's). A Ray worker is handed those two decisions.
"""

from __future__ import annotations

import math
import zipfile
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from audit.data.inputs import (
    as_images,
    check_claimed_size,
    image_mode,
    image_paths,
    read_image_files,
    read_texts,
)
from audit.errors import DataError, display_path
from audit.spec import DataSpec

__all__ = ["ArrayRows", "InputReader", "is_npz"]


def is_npz(fh: Any) -> bool:
    """Whether the file ``fh`` is a zip archive (an ``.npz``) by its first bytes, as
    ``numpy.load`` decides (a zip record at the end of a ``.npy`` does not make it one)."""
    start = fh.tell()
    try:
        return bool(fh.read(4) == b"PK\x03\x04")
    finally:
        fh.seek(start)


def _header_problem(shape: tuple[int, ...], dtype: np.dtype, fortran: bool) -> str:
    """What makes an array header unfit to stream as images (``""``: nothing), checked before
    any pixel is read: what the in-memory reader would refuse once it had read them all."""
    if dtype.hasobject:
        return ("cannot read as a numpy array (an object array, which only a pickle can hold; it "
                "is never unpickled); save plain uint8 or float images with numpy.save")
    if dtype.subdtype is not None or dtype.names is not None or not (
            dtype == np.uint8 or dtype.kind == "f"):
        return (f"images of dtype {dtype}; expected uint8 (0-255) or float (0-1)")
    if any(d < 0 for d in shape) or len(shape) not in (3, 4) or (
            len(shape) == 4 and not 1 <= shape[1] <= 4):
        return (f"images of shape {shape}; expected (N, H, W) or (N, C, H, W) with 1 to 4 "
                "channels first (move a channels-last axis with numpy.moveaxis(x, -1, 1))")
    if fortran:
        return ("the array is stored in Fortran order, which cannot be read row by row; save "
                "numpy.ascontiguousarray(images) instead")
    return ""


class ArrayRows:
    """The rows of an image array file (``.npy``, or an ``.npz`` holding one array) read by
    position, without loading the array: :meth:`read` a range, :meth:`take` sorted rows.

    The header is read and checked when the file is opened: its dtype must be plain numbers
    (``allow_pickle`` is never needed) in C order, and the array it claims must fit in the
    file (an ``.npz`` member may not inflate past :data:`~audit.data.inputs.MAX_ARRAY_BYTES`)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.where = where = display_path(path)
        try:
            self._file = path.open("rb")
        except FileNotFoundError:
            raise DataError(f"{where}: file not found") from None
        self._zip: zipfile.ZipFile | None = None
        self.compressed = False  # an .npz member inflated as it is read (seeking back re-reads)
        try:
            check_claimed_size(self._file, where)
            fh: Any = self._file
            if is_npz(self._file):  # by its first bytes, as numpy.load decides
                self._zip = zipfile.ZipFile(self._file)
                names = self._zip.namelist()
                if len(names) != 1:
                    raise DataError(f"{where}: holds {len(names)} arrays "
                                    f"({', '.join(n.removesuffix('.npy') for n in names[:5])}); "
                                    "save the images as the only array of the .npz, or as a .npy")
                info = self._zip.getinfo(names[0])
                self.compressed = info.compress_type != zipfile.ZIP_STORED
                fh = self._zip.open(names[0])
                size = info.file_size
            else:
                self._file.seek(0, 2)
                size = self._file.tell()
                self._file.seek(0)
            fmt = np.lib.format
            version = fmt.read_magic(fh)
            if version not in ((1, 0), (2, 0), (3, 0)):
                raise ValueError(f"the .npy format version {version} is not one numpy writes")
            header = fmt.read_array_header_1_0 if version == (1, 0) else fmt.read_array_header_2_0
            shape, fortran, dtype = header(fh)
        except DataError:
            self.close()
            raise
        except (ValueError, OSError, EOFError, zipfile.BadZipFile) as exc:
            self.close()
            raise DataError(f"{where}: cannot read as a numpy array ({type(exc).__name__}: "
                            f"{str(exc).strip()[:200]}); save plain uint8 or float images with "
                            "numpy.save") from None
        problem = _header_problem(tuple(int(d) for d in shape), dtype, fortran)
        if problem:
            self.close()
            raise DataError(f"{where}: {problem}")
        self._fh, self._data = fh, fh.tell()
        self.shape, self.dtype = tuple(int(d) for d in shape), dtype
        self.row_bytes = math.prod(self.shape[1:]) * dtype.itemsize  # Python ints: no overflow
        if self._data + self.rows * self.row_bytes > size:
            self.close()
            raise DataError(f"{where}: its header claims an array of shape {self.shape} but the "
                            "file holds less; it is truncated or forged: save the images again "
                            "with numpy.save")

    @property
    def rows(self) -> int:
        return self.shape[0]

    def read(self, start: int, stop: int) -> np.ndarray:
        """Rows ``start`` to ``stop`` (exclusive) of the array, as stored."""
        n = stop - start
        self._fh.seek(self._data + start * self.row_bytes)
        raw = self._fh.read(n * self.row_bytes)
        if len(raw) != n * self.row_bytes:  # pragma: no cover - the header was checked
            raise DataError(f"{self.where}: the file ended before image {stop:,}; it changed "
                            "while it was read")
        return np.frombuffer(raw, dtype=self.dtype).reshape((n, *self.shape[1:]))

    def take(self, rows: np.ndarray) -> np.ndarray:
        """The rows at the sorted positions ``rows``, each run of neighbours read at once."""
        rows = np.asarray(rows, dtype=np.int64)
        if len(rows) == 0:
            return np.zeros((0, *self.shape[1:]), dtype=self.dtype)
        breaks = np.flatnonzero(np.diff(rows) != 1) + 1
        return np.concatenate([self.read(int(run[0]), int(run[-1]) + 1)
                               for run in np.split(rows, breaks)])

    def close(self) -> None:
        for handle in (getattr(self, "_fh", None), self._zip, self._file):
            if handle is not None:
                handle.close()


class InputReader:
    """The model inputs of a streamed table ``role`` of ``spec``, batch by batch (see the
    module doc). ``mode`` and ``first`` are the decisions :meth:`prepare` makes (a Ray worker
    is handed the driver's)."""

    def __init__(self, spec: DataSpec, role: str = "eval", *, mode: str | None = None,
                 first: tuple[int, int] | None = None) -> None:
        self.spec, self.role = spec, role
        self.table: Path = getattr(spec, role)  # image paths are relative to its folder
        self.mode, self.first = mode, first
        self._array: ArrayRows | None = None

    @property
    def decisions(self) -> dict[str, Any]:
        """What :meth:`prepare` decided, as keyword arguments of another reader."""
        return {"mode": self.mode, "first": self.first}

    def prepare(self, frames: Any) -> None:
        """Decide what the in-memory reader decides from the whole table, for image files:
        the colour mode (unless ``data.images.channels`` is set: a pass over the files'
        headers, ``frames`` being the table's batches of its path column) and, without
        ``data.images.size``, the size of the first image, which every image must have."""
        images = self.spec.images
        if images is None or images.column is None:
            return
        mode = self.mode or {1: "L", 3: "RGB"}.get(images.channels or 0)
        start = 0
        for frame in frames:
            if start == 0 and self.first is None and images.size is None and len(frame):
                head = read_image_files(images, frame.iloc[:1], self.table, mode=mode or "L")
                self.first = (head.shape[2], head.shape[3])
            if mode is not None and (self.first is not None or images.size is not None):
                break
            if image_mode(images, image_paths(images, frame, self.table, start)) == "RGB":
                mode = "RGB"
            start += len(frame)
        self.mode = mode or "L"

    def row_bytes(self) -> int | None:
        """One image's bytes as the models get it (float32), when known before reading."""
        images = self.spec.images
        if images is None:
            return None
        if images.column is None:
            shape = self.array().shape
            return 4 * math.prod(shape[1:]) if len(shape) > 1 else None
        size = images.size or self.first
        channels = images.channels or (3 if self.mode == "RGB" else 1)
        return None if size is None else 4 * channels * size[0] * size[1]

    def inputs(self, frame: pd.DataFrame, file: Path, start: int) -> dict[str, np.ndarray]:
        """The texts or images of ``frame``, the rows ``start..`` of the table (``file``: the
        file they were read from, named in errors): ``Table`` keyword arguments."""
        where = display_path(file)
        spec = self.spec
        if spec.text is not None:
            return {"texts": read_texts(frame, spec.text, where, start)}
        images = spec.images
        if images is None:
            return {}
        if images.column is not None:
            x = read_image_files(images, frame, self.table, offset=start, mode=self.mode,
                                 first=self.first)
            if self.first is None and images.size is None:
                self.first = (x.shape[2], x.shape[3])
            return {"images": x}
        array = self.array()
        stop = start + len(frame)
        if stop > array.rows:
            raise DataError(f"{array.where}: {array.rows:,} images but {where} has more rows (data "
                            f"row {array.rows + 1:,} has no image); the array's first axis must be "
                            "aligned with the table's rows")
        return {"images": as_images(array.read(start, stop), len(frame), array.where, where,
                                    start)}

    def take(self, frame: pd.DataFrame, rows: np.ndarray, file: Path) -> dict[str, np.ndarray]:
        """The texts or images of the rows ``rows`` (sorted positions in the table) whose
        table rows ``frame`` holds: what a sample read from the middle of a table needs."""
        if self.spec.text is not None:
            return {"texts": read_texts(frame, self.spec.text, display_path(file))}
        images = self.spec.images
        if images is None or images.column is not None:
            out = [self.inputs(frame.iloc[[i]].reset_index(drop=True), file, int(r))
                   for i, r in enumerate(rows)]
            if not out or not out[0]:
                return {}
            key = next(iter(out[0]))
            return {key: np.concatenate([o[key] for o in out])}
        array = self.array()
        if len(rows) and rows[-1] >= array.rows:
            raise DataError(f"{array.where}: {array.rows:,} images but {display_path(file)} has "
                            f"more rows (data row {array.rows + 1:,} has no image); the array's "
                            "first axis must be aligned with the table's rows")
        return {"images": as_images(array.take(rows), len(rows), array.where, display_path(file))}

    def finish(self, rows: int) -> None:
        """After the last batch: the image array must have exactly the table's ``rows``."""
        if self._array is not None and self._array.rows != rows:
            raise DataError(f"{self._array.where}: {self._array.rows:,} images but "
                            f"{display_path(self.table)} has {rows:,} rows; the array's first "
                            "axis must be aligned with the table's rows")

    def array(self) -> ArrayRows:
        """The table's image array, opened on first use."""
        if self._array is None:
            images = self.spec.images
            assert images is not None
            path = images.array(self.role)
            if path is None:
                raise DataError(f"data.images names no array for the {self.role} table; add "
                                f"data.images.{self.role}: <its images .npy>")
            self._array = ArrayRows(path)
        return self._array

    def close(self) -> None:
        if self._array is not None:
            self._array.close()
            self._array = None
