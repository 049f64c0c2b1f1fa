"""What text and image models read: a text column, image arrays and image files.

The eval table (and each other table) stays the row index: its rows carry the labels, the
sensitive and the metadata columns, and the models' inputs are aligned with them:

* ``data.text: <column>`` -- the column's strings (a CSV cell read as written; an empty cell, a
  missing value or a cell of only spaces is refused, naming the row);
* ``data.images: {eval: x.npy, train: ...}`` -- one array per table, ``(N, H, W)`` or
  ``(N, C, H, W)`` with C in 1..4, uint8 (0-255) or float (0-1), ``N`` the table's rows;
* ``data.images: {column: path}`` -- PNG/JPEG files named in a column, relative to the table's
  folder (a path that leaves it, once symlinks are resolved, is refused), read with Pillow,
  converted to grey or RGB and resized as the suite says.

Images are handed to models as float32 ``(N, C, H, W)`` in [0, 1]: attack budgets (eps) are
in those pixel units. :func:`inputs_sha256` fingerprints what a table's inputs are made of
(array files, image files) without decoding them, so cache keys can be computed before any
image is read. No model library is imported here; Pillow only when image files are read.
"""

from __future__ import annotations

import hashlib
import zipfile
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from audit.data.hashing import file_sha256
from audit.errors import DataError, display_path
from audit.spec import DataSpec, ImageSpec

__all__ = ["read_texts", "read_images", "inputs_sha256", "image_paths", "as_images",
           "read_image_files", "image_mode", "check_claimed_size"]

MAX_IMAGE_PIXELS = 4096 * 4096  # per image: a larger one is refused before it is decoded
MAX_ARRAY_BYTES = 8 << 30  # an .npz member that inflates past this is refused unread
_GREY = ("1", "L", "LA", "I", "I;16", "I;16B", "I;16L", "F")  # Pillow modes without colour


def read_texts(frame: pd.DataFrame, column: str, where: str, offset: int = 0) -> np.ndarray:
    """The strings of ``column`` as an object array, or an error naming the first row that is
    not a non-empty string (``offset``: the rows before ``frame`` in its table)."""
    series = frame[column]
    values = series.to_numpy(dtype=object)
    for i, value in enumerate(values):
        if not isinstance(value, str):
            if value is None or (isinstance(value, float) and value != value):
                problem = "an empty cell"
            else:
                problem = f"{value!r} ({type(value).__name__}), not text"
            raise DataError(f"{where}: text column {column!r} (data.text) holds {problem} at data "
                            f"row {offset + i + 1:,}; every row needs a text (drop the row or fill it)")
        if not value.strip():
            raise DataError(f"{where}: text column {column!r} (data.text) holds an empty text "
                            f"({value!r}) at data row {offset + i + 1:,}; drop the row or fill it")
    return values


def read_images(spec: DataSpec, role: str, frame: pd.DataFrame, table: Path) -> np.ndarray:
    """The images of table ``role`` as float32 ``(N, C, H, W)`` in [0, 1]."""
    images = spec.images
    assert images is not None
    n = len(frame)
    if images.column is not None:
        return read_image_files(images, frame, table)
    path = images.array(role)
    if path is None:
        raise DataError(f"data.images names no array for the {role} table; add "
                        f"data.images.{role}: <its images .npy>")
    return _read_array(path, n, display_path(table))


def _read_array(path: Path, n: int, table: str) -> np.ndarray:
    where = display_path(path)
    try:
        # our own handle: np.load(path) leaks the one it opens when a .npz is torn
        with path.open("rb") as fh:
            check_claimed_size(fh, where)  # before numpy allocates what a header claims
            loaded = np.load(fh, allow_pickle=False)
            if isinstance(loaded, np.lib.npyio.NpzFile):  # by content, whatever the suffix
                with loaded as archive:
                    names = list(archive.files)
                    if len(names) != 1:
                        raise DataError(f"{where}: holds {len(names)} arrays "
                                        f"({', '.join(names[:5])}); save the images as the only "
                                        "array of the .npz, or as a .npy")
                    raw = archive[names[0]]
            else:
                raw = loaded
    except DataError:
        raise
    except FileNotFoundError:
        raise DataError(f"{where}: file not found") from None
    except (ValueError, OSError, EOFError, zipfile.BadZipFile) as exc:
        # allow_pickle=False: an object array (a pickle) is refused here, never unpickled
        raise DataError(f"{where}: cannot read as a numpy array ({type(exc).__name__}: "
                        f"{str(exc).strip()[:200]}); save plain uint8 or float images with "
                        "numpy.save") from None
    return as_images(raw, n, where, table)


def check_claimed_size(fh: Any, where: str) -> None:
    """Refuse an array file whose header claims more than it holds: a .npy header (shape and
    dtype) asking for more bytes than follow it, or an .npz member that inflates past
    :data:`MAX_ARRAY_BYTES` (a zip bomb). The file position is restored."""
    start = fh.tell()
    try:
        if fh.read(4) == b"PK\x03\x04":  # a zip (.npz) by its first bytes, as numpy.load decides
            fh.seek(start)
            with zipfile.ZipFile(fh) as z:
                big = [i for i in z.infolist() if i.file_size > MAX_ARRAY_BYTES]
            if big:
                raise DataError(f"{where}: the array {big[0].filename!r} inflates to "
                                f"{big[0].file_size:,} bytes, more than the {MAX_ARRAY_BYTES:,} "
                                "allowed; split the images into tables of their own")
            return
        fh.seek(start)
        fmt = np.lib.format
        try:
            version = fmt.read_magic(fh)
            header = fmt.read_array_header_1_0 if version == (1, 0) else fmt.read_array_header_2_0
            shape, _, dtype = header(fh)
        except ValueError:
            return  # numpy names what is wrong with the file
        claimed = int(np.prod(shape, dtype=np.float64)) * dtype.itemsize
        fh.seek(0, 2)
        held = fh.tell() - start  # the file's size
        if not dtype.hasobject and claimed > held:
            raise DataError(f"{where}: its header claims an array of shape {tuple(shape)} "
                            f"({claimed:,} bytes) but the whole file is {held:,} bytes; it is "
                            "truncated or forged: save the images again with numpy.save")
    finally:
        fh.seek(start)


def as_images(raw: np.ndarray, n: int, where: str, table: str, offset: int = 0) -> np.ndarray:
    """Validate an image array against the table's ``n`` rows and scale it to [0, 1]
    (``offset``: the images before ``raw`` in its array, for the image named in an error)."""
    if raw.ndim == 3:
        raw = raw[:, None]
    if raw.ndim != 4 or not 1 <= raw.shape[1] <= 4:
        raise DataError(f"{where}: images of shape {raw.shape}; expected (N, H, W) or "
                        "(N, C, H, W) with 1 to 4 channels first (move a channels-last axis "
                        "with numpy.moveaxis(x, -1, 1))")
    if raw.shape[0] != n:
        raise DataError(f"{where}: {raw.shape[0]} images but {table} has {n} rows; the array's "
                        "first axis must be aligned with the table's rows")
    if raw.dtype == np.uint8:
        return raw.astype(np.float32) / np.float32(255.0)
    if raw.dtype.kind != "f":
        raise DataError(f"{where}: images of dtype {raw.dtype}; expected uint8 (0-255) or "
                        "float (0-1)")
    x = raw.astype(np.float32)
    bad = ~np.isfinite(x) | (x < 0) | (x > 1)
    if bad.any():
        i = int(np.flatnonzero(bad.reshape(len(x), -1).any(axis=1))[0])
        value = float(x[i].reshape(-1)[np.flatnonzero(bad[i].reshape(-1))[0]])
        hint = (" (pixels 0-255: save them as uint8, or divide by 255)" if value > 1 and
                np.isfinite(value) else "")
        raise DataError(f"{where}: image {offset + i + 1:,} holds the value {value:g}; float images must lie "
                        f"in [0, 1]{hint}")
    return x


def image_paths(images: ImageSpec, frame: pd.DataFrame, table: Path, offset: int = 0
                ) -> list[Path]:
    """The image file of each row of ``frame``, checked to stay in the table's folder
    (``offset``: the rows before ``frame`` in its table, for the row named in an error)."""
    assert images.column is not None
    folder = table.parent.resolve()
    where = display_path(table)
    out = []
    for i, raw in enumerate(frame[images.column].to_numpy(dtype=object)):
        if not isinstance(raw, str) or not raw.strip():
            raise DataError(f"{where}: image column {images.column!r} (data.images.column) holds "
                            f"{'an empty cell' if not isinstance(raw, str) else repr(raw)} at "
                            f"data row {offset + i + 1:,}; every row needs an image path")
        resolved = (folder / raw).resolve()
        if Path(raw).is_absolute():
            raise DataError(f"{where}: data row {offset + i + 1:,} names the image {raw!r} by an absolute "
                            f"path; image paths are relative to the table's folder "
                            f"({display_path(folder)}) and must stay in it")
        if not resolved.is_relative_to(folder):
            raise DataError(f"{where}: data row {offset + i + 1:,} names the image {raw!r}, which is outside "
                            f"the table's folder ({display_path(folder)}); image paths are "
                            "relative to the table and must stay in its folder")
        out.append(resolved)
    return out


def image_mode(images: ImageSpec, paths: list[Path]) -> str:
    """The Pillow mode images are read in: ``data.images.channels``' (``L`` or ``RGB``), else
    grey unless one of ``paths`` has colour (opening a file reads its header only)."""
    from PIL import Image

    mode = {1: "L", 3: "RGB"}.get(images.channels or 0)
    if mode is not None:
        return mode
    for path in paths:
        try:
            with Image.open(path) as img:
                if img.mode not in _GREY:
                    return "RGB"
        except (OSError, ValueError, Image.DecompressionBombError):
            continue  # the reading names the file
    return "L"


def read_image_files(images: ImageSpec, frame: pd.DataFrame, table: Path, *, offset: int = 0,
                     mode: str | None = None, first: tuple[int, int] | None = None
                     ) -> np.ndarray:
    """The image files ``frame``'s rows name, as float32 ``(N, C, H, W)`` in [0, 1].

    ``offset`` is the rows before ``frame`` in its table (for the row an error names), ``mode``
    the Pillow mode (else :func:`image_mode` of these files) and ``first`` the (height, width)
    every image must have without ``data.images.size`` (else the first one's)."""
    from PIL import Image, UnidentifiedImageError

    where = display_path(table)
    paths = image_paths(images, frame, table, offset)
    decoded: list[np.ndarray] = []
    mode = mode or image_mode(images, paths)
    size = None if images.size is None else (images.size[1], images.size[0])  # Pillow: (w, h)
    for i, path in enumerate(paths):
        name = display_path(path)
        row = f"data row {offset + i + 1:,}"
        try:
            with Image.open(path) as img:
                if img.width * img.height > MAX_IMAGE_PIXELS:
                    raise DataError(f"{where}: {row}: {name} is {img.width}x"
                                    f"{img.height} pixels, more than the {MAX_IMAGE_PIXELS} "
                                    "allowed; resize it first")
                if img.format not in ("PNG", "JPEG"):
                    raise DataError(f"{where}: {row}: {name} is a {img.format} "
                                    "image; image files must be PNG or JPEG")
                source: Image.Image = img
                if img.mode.startswith("I"):  # 16-bit grey: convert() would clip it at 255
                    wide = np.asarray(img, dtype=np.float64)
                    source = Image.fromarray(np.clip(np.rint(wide / 257), 0, 255).astype(np.uint8))
                converted = source.convert(mode)
                if size is not None and converted.size != size:
                    converted = converted.resize(size, Image.Resampling.BILINEAR)
                pixels = np.asarray(converted, dtype=np.uint8)
        except DataError:
            raise
        except FileNotFoundError:
            raise DataError(f"{where}: {row} names {name}, which does not exist") from None
        except (UnidentifiedImageError, OSError, ValueError, Image.DecompressionBombError) as exc:
            raise DataError(f"{where}: {row}: cannot read {name} as an image "
                            f"({type(exc).__name__}: {str(exc).strip()[:160]})") from None
        shape = pixels.shape[:2]
        if first is None:
            first = shape
        elif shape != first:
            raise DataError(f"{where}: {row}: {name} is {shape[1]}x{shape[0]} but the "
                            f"first image is {first[1]}x{first[0]}; set data.images.size: "
                            "[height, width] to resize them all")
        decoded.append(pixels if pixels.ndim == 2 else np.moveaxis(pixels, -1, 0))
    x = np.stack(decoded)
    return as_images(x, len(frame), where, where, offset)


def inputs_sha256(spec: DataSpec, role: str, table_sha256: str, frame: pd.DataFrame | None = None,
                  table: Path | None = None) -> str:
    """What a table's rows and inputs are made of, as one hash: the table file's hash alone
    for a tabular or text suite, with the array file's (or every image file's) content for
    an image suite. ``frame`` (the table's path column) is read from ``table`` when not given."""
    if spec.choices is not None and role != "eval":  # a language model's documents or pairs
        return table_sha256
    if spec.choices is not None:  # items: the file, and how contexts and choices are read from it
        return hashlib.sha256(f"{table_sha256}\0items\0{spec.context}\0{spec.choices}"
                              f"\0{spec.options}".encode()).hexdigest()
    images = spec.images
    if images is None:
        return table_sha256
    h = hashlib.sha256(f"{table_sha256}\0images".encode())
    if images.column is None:
        path = images.array(role)
        if path is None:
            return table_sha256  # read_images names the missing array
        h.update(file_sha256(path).encode())
        return h.hexdigest()
    path = table if table is not None else getattr(spec, role)
    if frame is None:
        frame = pd.read_csv(path, usecols=[images.column], dtype=str, keep_default_na=False,
                            na_values=[""]) if path.suffix.lower() == ".csv" else pd.read_parquet(
                                path, columns=[images.column])
    h.update(repr((images.size, images.channels)).encode())
    for image in image_paths(images, frame, path):
        try:
            h.update(file_sha256(image).encode())
        except OSError:
            h.update(b"missing")  # read_images names it
    return h.hexdigest()


def describe(spec: DataSpec, role: str) -> dict[str, Any]:
    """The provenance of a table's inputs: what the models read and from where."""
    if spec.text is not None:
        return {"text": spec.text}
    if spec.images is None:
        return {}
    if spec.images.column is not None:
        return {"images": {"column": spec.images.column, "size": spec.images.size,
                           "channels": spec.images.channels}}
    path = spec.images.array(role)
    return {"images": {"path": str(path) if path else None}}
