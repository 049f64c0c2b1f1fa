"""PNG thumbnails (:mod:`audit.thumbnails`): our PNGs decoded by Pillow pixel for pixel,
and the data-URI validator against a table of forgeries."""

from __future__ import annotations

import base64
import io
import struct
import zlib
from typing import Any

import numpy as np
import pytest
from PIL import Image

from audit.errors import DataError
from audit.thumbnails import (
    DATA_URI_PREFIX,
    MAX_THUMBNAIL_BYTES,
    PNG_SIGNATURE,
    data_uri,
    is_png_data_uri,
    png_bytes,
)


def decode(png: bytes) -> tuple[str, np.ndarray]:
    """Pillow's reading of ``png``: its mode and pixels (after verifying the file)."""
    with Image.open(io.BytesIO(png)) as image:
        image.verify()  # chunk structure and CRCs
    with Image.open(io.BytesIO(png)) as image:
        assert image.format == "PNG"
        return image.mode, np.asarray(image).copy()


def upscale(pixels: np.ndarray, scale: int) -> np.ndarray:
    """Nearest neighbour, by a Kronecker product (another way than the encoder's repeat)."""
    block = np.ones((scale, scale) + (1,) * (pixels.ndim - 2), dtype=pixels.dtype)
    return np.kron(pixels, block)


RNG = np.random.default_rng(0)
GREY_U8 = RNG.integers(0, 256, (5, 7), dtype=np.uint8)  # not square: catches swapped sides
RGB_U8 = RNG.integers(0, 256, (3, 5, 7), dtype=np.uint8)
GREY_F = RNG.random((5, 7))
RGB_F = RNG.random((3, 5, 7)).astype(np.float32)

IMAGES = [  # id, image, expected mode, expected (H, W[, 3]) uint8 pixels
    ("grey-uint8-2d", GREY_U8, "L", GREY_U8),
    ("grey-uint8-1hw", GREY_U8[None], "L", GREY_U8),
    ("grey-float64", GREY_F, "L", np.rint(GREY_F * 255).astype(np.uint8)),
    ("grey-float32-1hw", GREY_F[None].astype(np.float32), "L",
     np.rint(GREY_F.astype(np.float32).astype(np.float64) * 255).astype(np.uint8)),
    ("rgb-uint8", RGB_U8, "RGB", RGB_U8.transpose(1, 2, 0)),
    ("rgb-float32", RGB_F, "RGB", np.rint(RGB_F.astype(np.float64) * 255).astype(np.uint8)
     .transpose(1, 2, 0)),
    ("one-pixel", np.array([[1.0]]), "L", np.array([[255]], dtype=np.uint8)),
    ("extremes", np.array([[0.0, 1.0, 0.5, 1 / 255]]), "L",
     np.array([[0, 255, 128, 1]], dtype=np.uint8)),
]


@pytest.mark.parametrize("scale", [1, 2, 3])
@pytest.mark.parametrize(("image", "mode", "expected"), [case[1:] for case in IMAGES],
                         ids=[case[0] for case in IMAGES])
def test_pillow_reads_our_pixels_exactly(image: np.ndarray, mode: str, expected: np.ndarray,
                                         scale: int) -> None:
    found_mode, pixels = decode(png_bytes(image, scale=scale))
    assert found_mode == mode
    np.testing.assert_array_equal(pixels, upscale(expected, scale))


def test_the_file_is_signature_ihdr_one_idat_iend() -> None:
    png = png_bytes(RGB_U8, scale=2)
    assert png[:8] == PNG_SIGNATURE
    kinds, at = [], 8
    while at < len(png):
        (length,) = struct.unpack(">I", png[at:at + 4])
        kinds.append(png[at + 4:at + 8])
        if kinds[-1] == b"IHDR":
            assert struct.unpack(">IIBBBBB", png[at + 8:at + 21]) == (14, 10, 8, 2, 0, 0, 0)
        if kinds[-1] == b"IDAT":
            raw = zlib.decompress(png[at + 8:at + 8 + length])
            rows = [raw[r * (1 + 14 * 3):(r + 1) * (1 + 14 * 3)] for r in range(10)]
            assert len(raw) == 10 * (1 + 14 * 3) and all(row[0] == 0 for row in rows)
        at += 12 + length
    assert kinds == [b"IHDR", b"IDAT", b"IEND"] and at == len(png)
    assert png_bytes(GREY_U8)[24:26] == b"\x08\x00"  # 8-bit grey: colour type 0


def test_a_digit_shows_at_56_pixels_and_the_uri_carries_the_png() -> None:
    digit = RNG.random((1, 28, 28)).astype(np.float32)
    uri = data_uri(digit)
    assert uri.startswith("data:image/png;base64,")
    png = base64.b64decode(uri[len(DATA_URI_PREFIX):])
    assert png == png_bytes(digit, scale=2)
    mode, pixels = decode(png)
    assert (mode, pixels.shape) == ("L", (56, 56))
    assert data_uri(digit, scale=1) == DATA_URI_PREFIX + base64.b64encode(png_bytes(digit)).decode()


BAD_IMAGES: list[tuple[str, Any, dict[str, Any], str]] = [
    ("list", [[0, 1]], {},
     "png_bytes(): image must be a numpy array of shape (H, W) or (C, H, W) with C = 1 (grey) or "
     "3 (RGB); got list"),
    ("1d", np.zeros(4, np.uint8), {},
     "png_bytes(): image must have shape (H, W) or (C, H, W) with C = 1 (grey) or 3 (RGB); got "
     "shape (4,)"),
    ("channels-last", np.zeros((4, 4, 3), np.uint8), {},
     "png_bytes(): image must have shape (H, W) or (C, H, W) with C = 1 (grey) or 3 (RGB); got "
     "shape (4, 4, 3) (channels last: use image.transpose(2, 0, 1))"),
    ("batch", np.zeros((2, 1, 4, 4), np.uint8), {},
     "png_bytes(): image must have shape (H, W) or (C, H, W) with C = 1 (grey) or 3 (RGB); got "
     "shape (2, 1, 4, 4)"),
    ("empty", np.zeros((0, 4), np.uint8), {},
     "png_bytes(): image must have at least 1x1 pixels; got shape (0, 4)"),
    ("int64", np.zeros((2, 2), np.int64), {},
     "png_bytes(): image must be uint8, or float with values in [0, 1]; got dtype int64"),
    ("bool", np.zeros((2, 2), bool), {},
     "png_bytes(): image must be uint8, or float with values in [0, 1]; got dtype bool"),
    ("float-above-1", np.array([[0.5, 255.0]]), {},
     "png_bytes(): a float image must lie in [0, 1]; 1 of 2 values do not, the first "
     "image[0, 1] = 255.0"),
    ("float-nan", np.array([[np.nan, 0.5]], np.float32), {},
     "png_bytes(): a float image must lie in [0, 1]; 1 of 2 values do not, the first "
     "image[0, 0] = nan"),
    ("scale-0", GREY_U8, {"scale": 0}, "png_bytes(): scale must be a positive integer; got 0"),
    ("scale-float", GREY_U8, {"scale": 2.0},
     "png_bytes(): scale must be a positive integer; got 2.0"),
    ("scale-bool", GREY_U8, {"scale": True},
     "png_bytes(): scale must be a positive integer; got True"),
]


@pytest.mark.parametrize(("image", "options", "message"), [case[1:] for case in BAD_IMAGES],
                         ids=[case[0] for case in BAD_IMAGES])
def test_bad_images_raise_a_data_error(image: Any, options: dict[str, Any], message: str) -> None:
    with pytest.raises(DataError) as raised:
        png_bytes(image, **options)
    assert str(raised.value) == message


# -------------------------------------------------------------------------- the validator
OURS = data_uri(RGB_U8)
PAYLOAD = OURS[len(DATA_URI_PREFIX):]
PNG = base64.b64decode(PAYLOAD)


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def with_chunk_after_iend() -> bytes:
    extra = b"tEXt" + b"x"
    return PNG + struct.pack(">I", 1) + extra + struct.pack(">I", zlib.crc32(extra))


def corrupted_crc() -> bytes:
    png = bytearray(PNG)
    png[29] ^= 0xFF  # inside IHDR's CRC (8 signature + 4 length + 4 type + 13 data = 29)
    return bytes(png)


def with_text_chunk() -> bytes:
    """Another encoder's PNG with an ancillary chunk between IHDR and IDAT: still a PNG."""
    text = b"tEXt" + b"Comment\x00<script>alert(1)</script>"
    chunk = struct.pack(">I", len(text) - 4) + text + struct.pack(">I", zlib.crc32(text))
    return PNG[:33] + chunk + PNG[33:]


def pillow_png() -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(GREY_U8).save(buffer, "PNG")
    return buffer.getvalue()


def padded_png() -> bytes:
    """One of our PNGs whose length is 1 more than a multiple of 3: its base64 ends in '=='."""
    for width in range(1, 30):
        png = png_bytes(np.arange(2 * width, dtype=np.uint8).reshape(2, width) * 37)
        if len(png) % 3 == 1:
            return png
    raise AssertionError("no PNG of such a length")  # pragma: no cover


def non_canonical(payload: str) -> str:
    """``payload`` (ending in 'x==') with unused low bits set in 'x': the same bytes to a
    lenient decoder, but not what base64.b64encode gives."""
    alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"
    last = alphabet.index(payload[-3])
    assert last % 16 == 0
    return payload[:-3] + alphabet[last + 1] + "=="


PADDED = b64(padded_png())
BIG = data_uri(np.random.default_rng(1).integers(0, 256, (3, 300, 300), dtype=np.uint8), scale=1)

ACCEPTED = [
    ("ours-rgb", OURS),
    ("ours-grey", data_uri(GREY_F)),
    ("ours-1x1", data_uri(np.zeros((1, 1)), scale=1)),
    ("pillow-png", DATA_URI_PREFIX + b64(pillow_png())),
    ("ours-padded", DATA_URI_PREFIX + PADDED),
    ("ancillary-chunk", DATA_URI_PREFIX + b64(with_text_chunk())),
]

REJECTED: list[tuple[str, Any]] = [
    ("empty-string", ""),
    ("prefix-only", DATA_URI_PREFIX),
    ("not-a-string", PNG),
    ("none", None),
    ("jpeg-mime", "data:image/jpeg;base64," + PAYLOAD),
    ("svg-mime", "data:image/svg+xml;base64," + b64(b"<svg onload='alert(1)'/>")),
    ("html-mime", "data:text/html;base64," + b64(b"<script>alert(1)</script>")),
    ("upper-case-prefix", "DATA:image/png;base64," + PAYLOAD),
    ("no-base64-marker", "data:image/png," + PAYLOAD),
    ("extra-parameter", "data:image/png;charset=utf-8;base64," + PAYLOAD),
    ("leading-space", " " + OURS),
    ("javascript", "javascript:alert(1)"),
    ("javascript-after-prefix", DATA_URI_PREFIX + "javascript:alert(1)"),
    ("double-quote", OURS + '" onerror="alert(1)'),
    ("single-quote", OURS[:-4] + "'x'="),
    ("angle-brackets", OURS + "><script>alert(1)</script>"),
    ("angle-bracket-in-payload", DATA_URI_PREFIX + "<img" + PAYLOAD[4:]),
    ("newline", OURS[:40] + "\n" + OURS[40:]),
    ("trailing-newline", OURS + "\n"),
    ("space-in-payload", OURS[:40] + " " + OURS[41:]),
    ("url-safe-alphabet", DATA_URI_PREFIX + "-_" + PAYLOAD[2:]),
    ("missing-padding", DATA_URI_PREFIX + PADDED.rstrip("=")),
    ("padding-inside", DATA_URI_PREFIX + "AA==" + PAYLOAD),
    ("non-canonical-padding-bits", DATA_URI_PREFIX + non_canonical(PADDED)),
    ("percent-encoded", DATA_URI_PREFIX + "%3Cscript%3E"),
    ("non-ascii", DATA_URI_PREFIX + "ＡＡＡＡ"),
    ("gif-payload", DATA_URI_PREFIX + b64(b"GIF89a\x01\x00\x01\x00\x00\x00\x00;")),
    ("text-payload", DATA_URI_PREFIX + b64(b"<script>alert(1)</script>")),
    ("signature-only", DATA_URI_PREFIX + b64(PNG_SIGNATURE)),
    ("truncated-png", DATA_URI_PREFIX + b64(PNG[:-6])),
    ("no-iend", DATA_URI_PREFIX + b64(PNG[:-12])),
    ("bytes-after-iend", DATA_URI_PREFIX + b64(PNG + b"<script>")),
    ("chunk-after-iend", DATA_URI_PREFIX + b64(with_chunk_after_iend())),
    ("bad-crc", DATA_URI_PREFIX + b64(corrupted_crc())),
    ("idat-first", DATA_URI_PREFIX + b64(PNG_SIGNATURE + PNG[33:])),
    ("oversized", BIG),
]


@pytest.mark.parametrize("text", [case[1] for case in ACCEPTED], ids=[case[0] for case in ACCEPTED])
def test_the_validator_accepts_pngs(text: str) -> None:
    assert is_png_data_uri(text)


@pytest.mark.parametrize("text", [case[1] for case in REJECTED], ids=[case[0] for case in REJECTED])
def test_the_validator_rejects_anything_else(text: Any) -> None:
    assert is_png_data_uri(text) is False


def test_the_size_cap_counts_decoded_bytes_inclusive() -> None:
    size = len(PNG)
    assert is_png_data_uri(OURS, max_bytes=size)
    assert not is_png_data_uri(OURS, max_bytes=size - 1)
    big = len(base64.b64decode(BIG[len(DATA_URI_PREFIX):]))
    assert big > MAX_THUMBNAIL_BYTES and is_png_data_uri(BIG, max_bytes=big)


@pytest.mark.parametrize("max_bytes", [0, -5, 1.5, True], ids=["zero", "negative", "float", "bool"])
def test_a_bad_cap_is_an_error(max_bytes: Any) -> None:
    with pytest.raises(DataError) as raised:
        is_png_data_uri(OURS, max_bytes=max_bytes)
    assert str(raised.value) == f"is_png_data_uri(): max_bytes must be a positive integer; got {max_bytes!r}"
