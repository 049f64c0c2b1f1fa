"""Common image corruptions at five severities, after Hendrycks & Dietterich (2019).

D. Hendrycks and T. Dietterich, "Benchmarking Neural Network Robustness to Common Corruptions
and Perturbations", ICLR 2019. The parameters are those of their CIFAR-10-C script
(``ImageNet-C/create_c/make_cifar_c.py`` in ``hendrycks/robustness``):

==============  ==============================================  ====  ====  ====  ====  ====
kind            parameter (severity ->)                         1     2     3     4     5
==============  ==============================================  ====  ====  ====  ====  ====
gaussian_noise  sigma of the noise added to each value          0.04  0.06  0.08  0.09  0.10
gaussian_blur   sigma of the Gaussian filter, in pixels         0.4   0.6   0.7   0.8   1.0
brightness      c added to the value V of HSV (clipped to 1)    0.05  0.1   0.15  0.2   0.3
contrast        c in (x - channel mean) * c + channel mean      0.75  0.5   0.4   0.3   0.15
jpeg            Pillow JPEG quality                             80    65    58    50    40
==============  ==============================================  ====  ====  ====  ====  ====

Images are float32 batches of shape (N, C, H, W) with values in [0, 1], C = 1 (grey) or 3 (RGB);
every result is float32 of the same shape, clipped to [0, 1]. Computations run in float64 and
are cast once at the end. The input is never modified.

* ``gaussian_noise``: ``x + sigma * z`` with ``z = np.random.default_rng(seed).standard_normal(
  x.shape)`` (the same values as ``rng.normal(0, sigma, x.shape)``). The draws depend on the
  shape and the seed only, so a teacher and a student given the same batch and seed see the
  same corrupted images, and the five severities scale the same draws.
* ``gaussian_blur``: :func:`scipy.ndimage.gaussian_filter` over H and W only (sigma 0 on the
  image and channel axes), ``mode="nearest"`` and ``truncate=4.0``: the defaults of
  ``skimage.filters.gaussian``, which the reference calls with ``multichannel=True``.
* ``brightness``: the reference converts to HSV, adds c to V and converts back. With hue and
  saturation fixed every RGB channel is linear in V, so this is exactly ``x * V' / V`` per
  pixel with ``V = max(r, g, b)`` and ``V' = min(V + c, 1)``; a black pixel (V = 0, saturation
  0) becomes ``(c, c, c)``. A grey image is a pixel with r = g = b, so it gets ``min(x + c, 1)``.
* ``contrast``: the mean is taken per image and per channel, over H and W, as the reference's
  ``np.mean(x, axis=(0, 1))`` on an (H, W, C) image does (for a grey image: over its pixels).
* ``jpeg``: each image is quantised to uint8 (``round(x * 255)``), encoded by Pillow as mode
  ``"L"`` (grey) or ``"RGB"`` with ``quality=q`` and its other defaults (4:2:0 chroma
  subsampling for RGB, as the reference's ``save(output, "JPEG", quality=q)``), decoded and
  divided by 255. The bytes depend on the libjpeg that Pillow ships.

Differences from the reference: the images stay float (the reference stores ``np.uint8`` of
each result, truncating it), and the noise comes from a seeded generator of the caller's.
"""

from __future__ import annotations

import io
import types
from collections.abc import Mapping
from typing import Any, TypeGuard

import numpy as np
import scipy.ndimage

from audit.errors import DataError, did_you_mean

__all__ = ["CORRUPTIONS", "SEVERITIES", "PARAMETERS", "corrupt"]

CORRUPTIONS = ("gaussian_noise", "gaussian_blur", "brightness", "contrast", "jpeg")
SEVERITIES = (1, 2, 3, 4, 5)

#: The parameter of each corruption at severities 1..5 (the table of the module docstring).
PARAMETERS: Mapping[str, tuple[float, ...]] = types.MappingProxyType({
    "gaussian_noise": (0.04, 0.06, 0.08, 0.09, 0.10),
    "gaussian_blur": (0.4, 0.6, 0.7, 0.8, 1.0),
    "brightness": (0.05, 0.1, 0.15, 0.2, 0.3),
    "contrast": (0.75, 0.5, 0.4, 0.3, 0.15),
    "jpeg": (80, 65, 58, 50, 40),
})

BLUR_MODE = "nearest"
BLUR_TRUNCATE = 4.0


def corrupt(x: np.ndarray, kind: str, severity: int | np.integer[Any],
            seed: int | np.integer[Any]) -> np.ndarray:
    """Return a corrupted copy of the image batch ``x``.

    Parameters
    ----------
    x : numpy.ndarray
        float32 images of shape (N, C, H, W), C = 1 (grey) or 3 (RGB), values in [0, 1].
    kind : str
        One of :data:`CORRUPTIONS`.
    severity : int
        1 (mildest) to 5 (a Python or NumPy integer); the parameter at each severity is in :data:`PARAMETERS`.
    seed : int
        Seed of ``np.random.default_rng`` for the noise (a non-negative integer; checked for
        every kind, used by ``gaussian_noise`` only).

    Returns
    -------
    numpy.ndarray
        float32, the shape of ``x``, clipped to [0, 1].

    Raises
    ------
    audit.errors.DataError
        An unknown ``kind``, a ``severity`` outside 1..5, a bad ``seed``, or an ``x`` of the
        wrong type, shape or dtype, or with values outside [0, 1] (NaN included).

    Examples
    --------
    >>> x = np.full((1, 1, 2, 2), 0.5, dtype=np.float32)
    >>> corrupt(x, "brightness", 1, seed=0)[0, 0]
    array([[0.55, 0.55],
           [0.55, 0.55]], dtype=float32)
    """
    kind = _kind(kind)
    value = PARAMETERS[kind][_severity(severity) - 1]
    seed = _seed(seed)
    _check_images(x)
    if kind == "jpeg":
        return _jpeg(x, int(value))
    x64 = x.astype(np.float64)
    if kind == "gaussian_noise":
        out = x64 + value * np.random.default_rng(seed).standard_normal(x.shape)
    elif kind == "gaussian_blur":
        out = scipy.ndimage.gaussian_filter(x64, sigma=(0.0, 0.0, value, value), mode=BLUR_MODE,
                                            truncate=BLUR_TRUNCATE)
    elif kind == "brightness":
        out = _brightness(x64, value)
    else:  # contrast
        means = x64.mean(axis=(2, 3), keepdims=True)
        out = (x64 - means) * value + means
    return np.clip(out, 0.0, 1.0).astype(np.float32)


def _brightness(x: np.ndarray, c: float) -> np.ndarray:
    """HSV value + ``c`` (clipped to 1), as ``x * V' / V`` per pixel (see the module notes)."""
    if x.shape[1] == 1:
        return np.minimum(x + c, 1.0)
    v = x.max(axis=1, keepdims=True)
    v_new = np.minimum(v + c, 1.0)
    ratio = v_new / np.where(v > 0, v, 1.0)
    # the channels equal to V (all of them for a black or grey pixel) become V' exactly
    return np.where(x == v, v_new, x * ratio)


def _jpeg(x: np.ndarray, quality: int) -> np.ndarray:
    """Each image through a Pillow JPEG encode and decode at ``quality``."""
    from PIL import Image  # lazily: only this corruption needs Pillow

    grey = x.shape[1] == 1
    pixels = np.rint(x.astype(np.float64) * 255).astype(np.uint8)
    out = np.empty(x.shape, dtype=np.float32)
    for i, image in enumerate(pixels):
        array = image[0] if grey else image.transpose(1, 2, 0)
        buffer = io.BytesIO()
        Image.fromarray(np.ascontiguousarray(array)).save(buffer, format="JPEG", quality=quality)
        buffer.seek(0)
        with Image.open(buffer) as decoded:
            back = np.asarray(decoded.convert("L" if grey else "RGB"))
        out[i] = (back[None] if grey else back.transpose(2, 0, 1)) / 255.0
    return out


# --------------------------------------------------------------------------- validation
def _kind(kind: object) -> str:
    choices = ", ".join(CORRUPTIONS)
    if not isinstance(kind, str):
        raise DataError(f"corrupt(): kind must be a string, one of {choices}; "
                        f"got {kind!r} ({type(kind).__name__})")
    if kind not in CORRUPTIONS:
        raise DataError(f"corrupt(): unknown corruption {kind!r}, expected one of {choices}"
                        f"{did_you_mean(kind, list(CORRUPTIONS))}")
    return kind


def _is_int(value: object) -> TypeGuard[int | np.integer[Any]]:
    """An integer, NumPy's included, but not a bool."""
    return isinstance(value, (int, np.integer)) and not isinstance(value, (bool, np.bool_))


def _severity(severity: object) -> int:
    if not _is_int(severity) or not SEVERITIES[0] <= int(severity) <= SEVERITIES[-1]:
        raise DataError(f"corrupt(): severity must be an integer from {SEVERITIES[0]} to "
                        f"{SEVERITIES[-1]}; got {severity!r}")
    return int(severity)


def _seed(seed: object) -> int:
    if not _is_int(seed) or int(seed) < 0:
        raise DataError(f"corrupt(): seed must be a non-negative integer; got {seed!r}")
    return int(seed)


def _check_images(x: object) -> None:
    """Raise unless ``x`` is a float32 (N, C, H, W) batch, C in (1, 3), values in [0, 1]."""
    expected = "shape (N, C, H, W) with C = 1 (grey) or 3 (RGB)"
    if not isinstance(x, np.ndarray):
        raise DataError(f"corrupt(): x must be a numpy array of {expected}; "
                        f"got {type(x).__name__}")
    if x.ndim != 4 or x.shape[1] not in (1, 3):
        if x.ndim == 3:
            fix = " (grey images of shape (N, H, W): use x[:, None])"
        elif x.ndim == 4 and x.shape[3] in (1, 3):
            fix = " (channels last: use x.transpose(0, 3, 1, 2))"
        else:
            fix = ""
        raise DataError(f"corrupt(): x must have {expected}; got shape {x.shape}{fix}")
    if x.shape[2] == 0 or x.shape[3] == 0:
        raise DataError(f"corrupt(): x must hold images of at least 1x1 pixels; got shape {x.shape}")
    if x.dtype != np.float32:
        if x.dtype == np.uint8:
            fix = " (use x.astype(np.float32) / 255)"
        elif np.issubdtype(x.dtype, np.floating):
            fix = " (use x.astype(np.float32))"
        else:
            fix = ""
        raise DataError(f"corrupt(): x must be float32 with values in [0, 1]; got dtype {x.dtype}{fix}")
    inside = (x >= 0) & (x <= 1)  # False for NaN
    if not inside.all():
        bad = np.argwhere(~inside)
        first = tuple(int(i) for i in bad[0])
        where = ", ".join(str(i) for i in first)
        raise DataError(f"corrupt(): x must lie in [0, 1]; {len(bad)} of {x.size} values do not, "
                        f"the first x[{where}] = {x[first]}")
