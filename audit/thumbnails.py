"""Small PNG thumbnails for the HTML report, stored in its JSON as base64 ``data:`` URIs.

The HTML is rendered from the JSON alone, so an image travels as text: :func:`data_uri` encodes
one, and the renderer prints a thumbnail only when :func:`is_png_data_uri` accepts what it read
back. The validator is strict (the exact prefix, the canonical base64 alphabet, a well-formed
PNG within a size cap), so a forged JSON cannot put markup or a script into an ``src``.

The encoder uses the standard library only (:mod:`zlib`, :mod:`struct`, :mod:`base64`): an
8-bit PNG, grey (colour type 0) or RGB (colour type 2), not interlaced, one IDAT chunk with
filter type 0 (none) on every row.
"""

from __future__ import annotations

import base64
import binascii
import re
import struct
import zlib
from typing import Any

import numpy as np

from audit.errors import DataError

__all__ = ["PNG_SIGNATURE", "DATA_URI_PREFIX", "MAX_THUMBNAIL_BYTES", "png_bytes", "data_uri",
           "is_png_data_uri"]

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
DATA_URI_PREFIX = "data:image/png;base64,"
MAX_THUMBNAIL_BYTES = 200_000  # decoded PNG bytes the validator accepts by default
_BASE64 = re.compile(r"[A-Za-z0-9+/]*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?")
_CHUNK_TYPE = re.compile(rb"[A-Za-z]{4}")
_GREY, _RGB = 0, 2  # PNG colour types


def png_bytes(image: np.ndarray, *, scale: int = 1) -> bytes:
    """Encode one image as an 8-bit PNG, with the standard library only.

    Parameters
    ----------
    image : numpy.ndarray
        Shape (H, W) or (1, H, W) for grey, (3, H, W) for RGB; uint8, or floating point with
        values in [0, 1] (mapped to ``round(value * 255)``, ties to even).
    scale : int, optional
        Integer upscaling factor (nearest neighbour): a 28x28 digit at ``scale=2`` is 56x56.

    Returns
    -------
    bytes
        The PNG file: signature, IHDR, one IDAT, IEND.

    Raises
    ------
    audit.errors.DataError
        A shape, dtype or value the PNG cannot hold, or a ``scale`` that is not a positive
        integer.

    Examples
    --------
    >>> png = png_bytes(np.zeros((28, 28)), scale=2)
    >>> png[:8] == PNG_SIGNATURE, struct.unpack(">II", png[16:24])
    (True, (56, 56))
    """
    pixels = _pixels(image)
    if isinstance(scale, bool) or not isinstance(scale, int) or scale < 1:
        raise DataError(f"png_bytes(): scale must be a positive integer; got {scale!r}")
    if scale > 1:
        pixels = pixels.repeat(scale, axis=0).repeat(scale, axis=1)
    height, width = pixels.shape[:2]
    colour = _GREY if pixels.ndim == 2 else _RGB
    rows = pixels.reshape(height, -1)
    raw = np.concatenate([np.zeros((height, 1), dtype=np.uint8), rows], axis=1)  # filter 0
    header = struct.pack(">IIBBBBB", width, height, 8, colour, 0, 0, 0)
    return b"".join([PNG_SIGNATURE, _chunk(b"IHDR", header),
                     _chunk(b"IDAT", zlib.compress(raw.tobytes(), 9)), _chunk(b"IEND", b"")])


def data_uri(image: np.ndarray, scale: int = 2) -> str:
    """``data:image/png;base64,...`` of :func:`png_bytes` ``(image, scale=scale)``.

    Examples
    --------
    >>> uri = data_uri(np.zeros((1, 28, 28), dtype=np.uint8))
    >>> uri.startswith(DATA_URI_PREFIX), is_png_data_uri(uri)
    (True, True)
    """
    return DATA_URI_PREFIX + base64.b64encode(png_bytes(image, scale=scale)).decode("ascii")


def is_png_data_uri(text: str, max_bytes: int = MAX_THUMBNAIL_BYTES) -> bool:
    """Whether ``text`` is a base64 PNG ``data:`` URI safe to print as an ``<img src>``.

    Accepted only: a ``str`` that starts with exactly ``data:image/png;base64,`` followed by
    canonical base64 (the alphabet ``A-Z a-z 0-9 + /``, ``=`` padding at the end only, no
    whitespace, the encoding :func:`base64.b64encode` gives for the bytes it decodes to) of at
    most ``max_bytes`` bytes, which are a well-formed PNG: the signature, an IHDR chunk first,
    chunks whose lengths fit and whose CRCs match, and IEND last with nothing after it. The
    pixel data is not decompressed.

    Parameters
    ----------
    text : str
        What the renderer read from the JSON (anything else is rejected).
    max_bytes : int, optional
        The largest decoded PNG accepted, in bytes.

    Returns
    -------
    bool
    """
    if isinstance(max_bytes, bool) or not isinstance(max_bytes, int) or max_bytes < 1:
        raise DataError(f"is_png_data_uri(): max_bytes must be a positive integer; got {max_bytes!r}")
    if not isinstance(text, str) or not text.startswith(DATA_URI_PREFIX):
        return False
    payload = text[len(DATA_URI_PREFIX):]
    if not payload or len(payload) % 4 or len(payload) > 4 * -(-max_bytes // 3):
        return False
    if _BASE64.fullmatch(payload) is None:
        return False
    try:
        png = base64.b64decode(payload, validate=True)
    except (binascii.Error, ValueError):  # pragma: no cover - the pattern admits valid base64 only
        return False
    if len(png) > max_bytes or base64.b64encode(png).decode("ascii") != payload:
        return False
    return _well_formed(png)


def _chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def _well_formed(png: bytes) -> bool:
    """The signature, IHDR (13 bytes) first, every chunk complete with its CRC, IEND last."""
    if not png.startswith(PNG_SIGNATURE):
        return False
    at, first = len(PNG_SIGNATURE), True
    while at + 12 <= len(png):
        (length,) = struct.unpack(">I", png[at:at + 4])
        kind = png[at + 4:at + 8]
        end = at + 12 + length
        if length >= 2**31 or end > len(png) or _CHUNK_TYPE.fullmatch(kind) is None:
            return False
        data = png[at + 8:at + 8 + length]
        (crc,) = struct.unpack(">I", png[end - 4:end])
        if crc != zlib.crc32(kind + data):
            return False
        if first and (kind != b"IHDR" or length != 13):
            return False
        first = False
        at = end
        if kind == b"IEND":
            return at == len(png)
    return False


def _pixels(image: Any) -> np.ndarray:
    """``image`` as uint8 (H, W) or (H, W, 3), or a :class:`DataError` saying what is wrong."""
    expected = "shape (H, W) or (C, H, W) with C = 1 (grey) or 3 (RGB)"
    if not isinstance(image, np.ndarray):
        raise DataError(f"png_bytes(): image must be a numpy array of {expected}; "
                        f"got {type(image).__name__}")
    if image.ndim not in (2, 3) or (image.ndim == 3 and image.shape[0] not in (1, 3)):
        fix = (" (channels last: use image.transpose(2, 0, 1))"
               if image.ndim == 3 and image.shape[2] in (1, 3) else "")
        raise DataError(f"png_bytes(): image must have {expected}; got shape {image.shape}{fix}")
    if 0 in image.shape:
        raise DataError(f"png_bytes(): image must have at least 1x1 pixels; got shape {image.shape}")
    if image.dtype == np.uint8:
        pixels = image
    elif np.issubdtype(image.dtype, np.floating):
        inside = (image >= 0) & (image <= 1)  # False for NaN
        if not inside.all():
            first = tuple(int(i) for i in np.argwhere(~inside)[0])
            where = ", ".join(str(i) for i in first)
            raise DataError(f"png_bytes(): a float image must lie in [0, 1]; "
                            f"{int((~inside).sum())} of {image.size} values do not, the first "
                            f"image[{where}] = {image[first]}")
        pixels = np.rint(image.astype(np.float64) * 255).astype(np.uint8)
    else:
        raise DataError(f"png_bytes(): image must be uint8, or float with values in [0, 1]; "
                        f"got dtype {image.dtype}")
    if pixels.ndim == 3:
        pixels = pixels[0] if pixels.shape[0] == 1 else pixels.transpose(1, 2, 0)
    return np.ascontiguousarray(pixels)
