"""The image corruptions of :mod:`audit.probes.corruptions`, each against an independent
computation (a regenerated draw, scipy on one 2D image, :mod:`colorsys` per pixel, a
hand-worked image, Pillow called directly), plus determinism, monotonicity in the severity and
the exact error messages."""

from __future__ import annotations

import colorsys
import io
import re
from typing import Any

import numpy as np
import pytest
import scipy.ndimage
from PIL import Image

from audit.errors import DataError
from audit.probes import corruptions
from audit.probes.corruptions import CORRUPTIONS, PARAMETERS, SEVERITIES, corrupt


def mnist_like(n: int, seed: int) -> np.ndarray:
    """``n`` 28x28 grey 'digits': three bright strokes on black, smoothed, peak 1."""
    rng = np.random.default_rng(seed)
    x = np.zeros((n, 1, 28, 28))
    t = np.linspace(0, 1, 40)
    for image in x:
        for _ in range(3):
            r0, c0, r1, c1 = rng.integers(4, 24, 4)
            image[0, np.rint(r0 + (r1 - r0) * t).astype(int), np.rint(c0 + (c1 - c0) * t).astype(int)] = 1
        image[0] = scipy.ndimage.gaussian_filter(image[0], 1.0)
        image[0] /= image[0].max()
    return x.astype(np.float32)


def rgb_images(n: int, seed: int, size: int = 8) -> np.ndarray:
    return np.random.default_rng(seed).random((n, 3, size, size)).astype(np.float32)


@pytest.fixture(scope="module")
def digits() -> np.ndarray:
    return mnist_like(16, seed=0)


# ----------------------------------------------------------------------- the parameters
def test_the_docstring_table_is_the_parameters() -> None:
    doc = corruptions.__doc__ or ""
    rows = {m[1]: tuple(float(v) for v in m[2].split())
            for m in re.finditer(r"^(\w+) .*?((?:\s+[\d.]+){5})\s*$", doc, re.M) if m[1] in CORRUPTIONS}
    assert rows == {k: tuple(float(v) for v in p) for k, p in PARAMETERS.items()}
    assert tuple(PARAMETERS) == CORRUPTIONS == (
        "gaussian_noise", "gaussian_blur", "brightness", "contrast", "jpeg")
    assert SEVERITIES == (1, 2, 3, 4, 5)


def test_the_parameters_are_those_of_cifar_10_c() -> None:
    """make_cifar_c.py in hendrycks/robustness."""
    assert PARAMETERS["gaussian_noise"] == (0.04, 0.06, 0.08, 0.09, 0.10)
    assert PARAMETERS["gaussian_blur"] == (0.4, 0.6, 0.7, 0.8, 1.0)
    assert PARAMETERS["brightness"] == (0.05, 0.1, 0.15, 0.2, 0.3)
    assert PARAMETERS["contrast"] == (0.75, 0.5, 0.4, 0.3, 0.15)
    assert PARAMETERS["jpeg"] == (80, 65, 58, 50, 40)


# ------------------------------------------------------------ against independent code
@pytest.mark.parametrize("severity", SEVERITIES)
def test_gaussian_noise_is_the_seeded_draws_clipped(digits: np.ndarray, severity: int) -> None:
    sigma = PARAMETERS["gaussian_noise"][severity - 1]
    noise = np.random.default_rng(7).normal(0.0, sigma, size=digits.shape)
    expected = np.clip(digits.astype(np.float64) + noise, 0, 1).astype(np.float32)
    np.testing.assert_array_equal(corrupt(digits, "gaussian_noise", severity, seed=7), expected)


@pytest.mark.parametrize("severity", SEVERITIES)
@pytest.mark.parametrize("channels", [1, 3])
def test_gaussian_blur_is_scipy_on_each_2d_image(severity: int, channels: int) -> None:
    x = rgb_images(3, seed=1, size=9)[:, :channels]
    sigma = PARAMETERS["gaussian_blur"][severity - 1]
    out = corrupt(x, "gaussian_blur", severity, seed=0)
    for n in range(x.shape[0]):
        for c in range(channels):
            plane = scipy.ndimage.gaussian_filter(x[n, c].astype(np.float64), sigma, mode="nearest")
            np.testing.assert_allclose(out[n, c], np.clip(plane, 0, 1), rtol=0, atol=1e-7)


def test_gaussian_blur_does_not_mix_channels_or_images() -> None:
    x = np.zeros((2, 3, 9, 9), dtype=np.float32)
    x[0, 1, 4, 4] = 1.0  # the kernel (sigma 1, radius 4) fits inside the image
    out = corrupt(x, "gaussian_blur", 5, seed=0)
    assert out[0, 1].sum() == pytest.approx(1.0, abs=1e-6) and out[0, 1, 4, 4] < 0.2
    assert not out[0, [0, 2]].any() and not out[1].any()


@pytest.mark.parametrize("severity", SEVERITIES)
def test_brightness_of_rgb_is_colorsys_hsv(severity: int) -> None:
    c = PARAMETERS["brightness"][severity - 1]
    x = rgb_images(2, seed=2, size=4)
    x[0, :, 0, 0] = 0.0  # black
    x[0, :, 0, 1] = 0.4  # grey
    x[0, :, 0, 2] = (0.95, 0.2, 0.99)  # V clipped at 1
    x[0, :, 0, 3] = (0.0, 0.3, 0.6)  # a zero channel
    out = corrupt(x, "brightness", severity, seed=0)
    for n, i, j in np.ndindex(x.shape[0], x.shape[2], x.shape[3]):
        h, s, v = colorsys.rgb_to_hsv(*(float(u) for u in x[n, :, i, j]))
        expected = colorsys.hsv_to_rgb(h, s, min(v + c, 1.0))
        np.testing.assert_allclose(out[n, :, i, j], expected, rtol=0, atol=1e-6)


def test_brightness_of_grey_adds_c_and_clips() -> None:
    x = np.array([0.0, 0.5, 0.9, 1.0], dtype=np.float32).reshape(1, 1, 2, 2)
    out = corrupt(x, "brightness", 5, seed=0)
    np.testing.assert_array_equal(out.ravel(), np.array([0.3, 0.8, 1.0, 1.0], dtype=np.float32))


def test_contrast_of_a_hand_worked_grey_image() -> None:
    """Mean 0.5; severity 2 (c = 0.5): 0.5 + (x - 0.5) / 2."""
    x = np.array([[0.0, 0.2], [0.8, 1.0]], dtype=np.float32).reshape(1, 1, 2, 2)
    out = corrupt(x, "contrast", 2, seed=0)
    np.testing.assert_allclose(out[0, 0], [[0.25, 0.35], [0.65, 0.75]], rtol=0, atol=1e-7)


def test_contrast_takes_the_mean_per_image_and_channel() -> None:
    """As the reference's np.mean(x, axis=(0, 1)) on an (H, W, C) image: red has mean 0.5, green
    0.2 (severity 5, c = 0.15); the second image has its own means."""
    red = [[0.0, 1.0], [0.0, 1.0]]
    green = [[0.2, 0.2], [0.2, 0.2]]
    blue = [[0.0, 0.0], [0.0, 0.4]]
    x = np.array([[red, green, blue], [green, red, red]], dtype=np.float32)
    out = corrupt(x, "contrast", 5, seed=0)
    lo, hi = 0.5 - 0.5 * 0.15, 0.5 + 0.5 * 0.15
    np.testing.assert_allclose(out[0, 0], [[lo, hi], [lo, hi]], atol=1e-7)
    np.testing.assert_allclose(out[0, 1], green, atol=1e-7)
    np.testing.assert_allclose(out[0, 2], [[0.085, 0.085], [0.085, 0.145]], atol=1e-7)
    np.testing.assert_allclose(out[1, 0], green, atol=1e-7)
    np.testing.assert_allclose(out[1, 2], [[lo, hi], [lo, hi]], atol=1e-7)


@pytest.mark.parametrize("severity", SEVERITIES)
@pytest.mark.parametrize("channels", [1, 3])
def test_jpeg_is_a_pillow_round_trip(severity: int, channels: int) -> None:
    x = (mnist_like(3, seed=3) if channels == 1 else rgb_images(3, seed=3, size=16))
    quality = int(PARAMETERS["jpeg"][severity - 1])
    out = corrupt(x, "jpeg", severity, seed=0)
    for n in range(x.shape[0]):
        u8 = np.rint(x[n] * 255.0).astype(np.uint8)
        image = Image.fromarray(u8[0]) if channels == 1 else Image.fromarray(u8.transpose(1, 2, 0))
        assert image.mode == ("L" if channels == 1 else "RGB")
        buffer = io.BytesIO()
        image.save(buffer, "JPEG", quality=quality)
        decoded = np.asarray(Image.open(io.BytesIO(buffer.getvalue())))
        expected = decoded[None] if channels == 1 else decoded.transpose(2, 0, 1)
        np.testing.assert_array_equal(out[n], expected.astype(np.float32) / np.float32(255))


# ------------------------------------------------------------------ shared properties
@pytest.mark.parametrize("kind", CORRUPTIONS)
@pytest.mark.parametrize("channels", [1, 3])
def test_output_is_float32_in_range_and_the_input_is_untouched(kind: str, channels: int) -> None:
    x = rgb_images(4, seed=4, size=8)[:, :channels]
    before = x.copy()
    out = corrupt(x, kind, 5, seed=0)
    assert out.dtype == np.float32 and out.shape == x.shape
    assert out.min() >= 0 and out.max() <= 1
    assert out is not x
    np.testing.assert_array_equal(x, before)


@pytest.mark.parametrize("kind", CORRUPTIONS)
def test_the_same_seed_gives_the_same_images(digits: np.ndarray, kind: str) -> None:
    first = corrupt(digits, kind, 3, seed=11)
    np.testing.assert_array_equal(first, corrupt(digits.copy(), kind, 3, seed=11))


def test_the_noise_depends_on_the_seed_and_shape_only() -> None:
    """A teacher and a student given the same batch and seed see the same images; another seed
    draws other noise; the severities scale the same draws."""
    x = mnist_like(4, seed=5)
    teacher = corrupt(x, "gaussian_noise", 2, seed=3)
    student = corrupt(x, "gaussian_noise", 2, seed=np.int64(3))
    np.testing.assert_array_equal(teacher, student)
    assert not np.array_equal(teacher, corrupt(x, "gaussian_noise", 2, seed=4))
    half = np.full(x.shape, 0.5, dtype=np.float32)
    mild, strong = (corrupt(half, "gaussian_noise", s, seed=3) - 0.5 for s in (1, 5))
    inside = np.abs(strong) < 0.49  # not clipped
    np.testing.assert_allclose(strong[inside], mild[inside] * (0.10 / 0.04), rtol=0, atol=3e-7)


@pytest.mark.parametrize("kind", CORRUPTIONS)
def test_the_change_grows_with_the_severity(digits: np.ndarray, kind: str) -> None:
    change = [float(np.abs(corrupt(digits, kind, s, seed=0) - digits).mean()) for s in SEVERITIES]
    assert all(a < b for a, b in zip(change, change[1:])), change
    assert change[0] > 0


def test_an_empty_batch_stays_empty() -> None:
    x = np.zeros((0, 3, 4, 4), dtype=np.float32)
    for kind in CORRUPTIONS:
        assert corrupt(x, kind, 1, seed=0).shape == (0, 3, 4, 4)


# ------------------------------------------------------------------------------ errors
GOOD = np.zeros((2, 1, 3, 3), dtype=np.float32)
OUTSIDE = GOOD.copy()
OUTSIDE[1, 0, 2, 1] = 1.5
OUTSIDE[1, 0, 2, 2] = -0.25
WITH_NAN = GOOD.copy()
WITH_NAN[0, 0, 0, 1] = np.nan
KINDS = "gaussian_noise, gaussian_blur, brightness, contrast, jpeg"
SHAPE = "corrupt(): x must have shape (N, C, H, W) with C = 1 (grey) or 3 (RGB); got shape"

ERRORS: list[tuple[str, dict[str, Any], str]] = [
    ("unknown-kind", {"kind": "gausian_noise"},
     f"corrupt(): unknown corruption 'gausian_noise', expected one of {KINDS}; "
     "did you mean 'gaussian_noise'?"),
    ("unknown-kind-no-match", {"kind": "fog"},
     f"corrupt(): unknown corruption 'fog', expected one of {KINDS}"),
    ("kind-case", {"kind": "JPEG"},
     f"corrupt(): unknown corruption 'JPEG', expected one of {KINDS}; did you mean 'jpeg'?"),
    ("kind-not-a-string", {"kind": 3},
     f"corrupt(): kind must be a string, one of {KINDS}; got 3 (int)"),
    ("severity-0", {"severity": 0}, "corrupt(): severity must be an integer from 1 to 5; got 0"),
    ("severity-6", {"severity": 6}, "corrupt(): severity must be an integer from 1 to 5; got 6"),
    ("severity-float", {"severity": 2.0},
     "corrupt(): severity must be an integer from 1 to 5; got 2.0"),
    ("severity-bool", {"severity": True},
     "corrupt(): severity must be an integer from 1 to 5; got True"),
    ("seed-negative", {"seed": -1}, "corrupt(): seed must be a non-negative integer; got -1"),
    ("seed-none", {"seed": None}, "corrupt(): seed must be a non-negative integer; got None"),
    ("x-list", {"x": [[0.0]]},
     "corrupt(): x must be a numpy array of shape (N, C, H, W) with C = 1 (grey) or 3 (RGB); "
     "got list"),
    ("x-2d", {"x": np.zeros((3, 3), np.float32)}, f"{SHAPE} (3, 3)"),
    ("x-3d", {"x": np.zeros((2, 3, 3), np.float32)},
     f"{SHAPE} (2, 3, 3) (grey images of shape (N, H, W): use x[:, None])"),
    ("x-channels-last", {"x": np.zeros((2, 5, 5, 3), np.float32)},
     f"{SHAPE} (2, 5, 5, 3) (channels last: use x.transpose(0, 3, 1, 2))"),
    ("x-4-channels", {"x": np.zeros((2, 4, 5, 5), np.float32)}, f"{SHAPE} (2, 4, 5, 5)"),
    ("x-no-pixels", {"x": np.zeros((2, 1, 0, 5), np.float32)},
     "corrupt(): x must hold images of at least 1x1 pixels; got shape (2, 1, 0, 5)"),
    ("x-float64", {"x": GOOD.astype(np.float64)},
     "corrupt(): x must be float32 with values in [0, 1]; got dtype float64 "
     "(use x.astype(np.float32))"),
    ("x-uint8", {"x": GOOD.astype(np.uint8)},
     "corrupt(): x must be float32 with values in [0, 1]; got dtype uint8 "
     "(use x.astype(np.float32) / 255)"),
    ("x-int64", {"x": GOOD.astype(np.int64)},
     "corrupt(): x must be float32 with values in [0, 1]; got dtype int64"),
    ("x-outside", {"x": OUTSIDE},
     "corrupt(): x must lie in [0, 1]; 2 of 18 values do not, the first x[1, 0, 2, 1] = 1.5"),
    ("x-nan", {"x": WITH_NAN},
     "corrupt(): x must lie in [0, 1]; 1 of 18 values do not, the first x[0, 0, 0, 1] = nan"),
]


@pytest.mark.parametrize(("change", "message"), [case[1:] for case in ERRORS],
                         ids=[case[0] for case in ERRORS])
def test_bad_arguments_raise_a_data_error(change: dict[str, Any], message: str) -> None:
    arguments: dict[str, Any] = {"x": GOOD, "kind": "contrast", "severity": 1, "seed": 0} | change
    with pytest.raises(DataError) as raised:
        corrupt(**arguments)
    assert str(raised.value) == message
    assert isinstance(raised.value, ValueError)
