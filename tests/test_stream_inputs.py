"""Streaming a text or image suite: each batch brings its rows' texts (a column of the table),
the rows of the image array (a ``.npy`` read by position, an ``.npz`` member read on) or the
image files they name, so every number equals the in-memory engine's; a bad input deep in the
table is named by its row; a forged or hostile array file is refused unread."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from audit.errors import DataError
from audit.runner import SuiteRun
from audit.stream.inputs import ArrayRows
from audit.suite import suite_from_dict
from tests.test_stream import EXACT, StreamRun, close, numbers

PRED = {"classes": ["No", "Yes"]}
CHECKS = {**EXACT, "ece": {"metric": "ece"},
          "parity": {"metric": "demographic_parity_difference", "by": ["group"]}}

TEXT_MODELS = """\
import numpy as np


def _p(texts, a, b):
    n = np.array([t.count("good") - t.count("bad") for t in texts], dtype=float)
    length = np.array([len(t) for t in texts], dtype=float)
    p = 1 / (1 + np.exp(-a * n - b * np.log1p(length) + 1.0))
    return np.column_stack([1 - p, p])


def teacher(texts):
    return _p(texts, 1.4, 0.3)


def student(texts):
    return _p(texts, 0.8, 0.25)
"""

IMAGE_MODELS = """\
import numpy as np


def _p(x, a):
    m = x.reshape(len(x), -1).mean(axis=1)
    p = 1 / (1 + np.exp(-a * (m - 0.5) * 10))
    return np.column_stack([1 - p, p])


def teacher(x):
    return _p(x, 1.2)


def student(x):
    return _p(x, 0.7)
"""


@pytest.fixture(autouse=True)
def _here(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)  # file names in messages are relative to it


def text_table(folder: Path, n: int = 3000, seed: int = 0) -> Path:
    rng = np.random.default_rng(seed)
    words = np.array(["good", "bad", "plot", "actor", "slow", "fun,", '"odd"', "scene\nend"])
    texts = [" ".join(rng.choice(words, rng.integers(1, 9))) for _ in range(n)]
    score = np.array([t.count("good") - t.count("bad") for t in texts])
    frame = pd.DataFrame({"review": texts, "group": rng.choice(["a", "b"], n),
                          "label": np.where(rng.random(n) < 1 / (1 + np.exp(-score)), "Yes", "No")})
    (folder / "models.py").write_text(TEXT_MODELS)
    frame.to_csv(folder / "eval.csv", index=False)  # quoted commas, quotes and newlines
    return folder / "eval.csv"


def image_table(folder: Path, n: int = 2400, seed: int = 0) -> tuple[pd.DataFrame, np.ndarray]:
    rng = np.random.default_rng(seed)
    x = rng.integers(0, 256, (n, 1, 6, 6), dtype=np.uint8)
    bright = x.reshape(n, -1).mean(axis=1) / 255
    frame = pd.DataFrame({"group": rng.choice(["a", "b"], n),
                          "label": np.where(rng.random(n) < bright, "Yes", "No")})
    (folder / "models.py").write_text(IMAGE_MODELS)
    frame.to_csv(folder / "eval.csv", index=False)
    return frame, x


def suite_of(folder: Path, data: dict[str, Any], checks: dict[str, Any] = CHECKS,
             **settings_: Any) -> Any:
    return suite_from_dict({
        "version": 1, "name": "inputs",
        "data": {"eval": "eval.csv", "target": "label", "sensitive": ["group"],
                 "positive": "Yes", **data},
        "teacher": {"callable": "models:teacher", **PRED},
        "student": {"callable": "models:student", **PRED},
        "settings": {"seed": 3, "bootstrap": 200, **settings_},
        "checks": checks}, base_dir=folder)


def batched(suite: Any, rows: int) -> Any:
    """``suite`` read in batches of ``rows`` (below the smallest a suite may set: small
    tables, many batches)."""
    return dataclasses.replace(suite, settings=dataclasses.replace(suite.settings,
                                                                   batch_rows=rows))


def assert_engines_agree(suite: Any, batch_rows: int = 700) -> None:
    memory = numbers(SuiteRun(suite).run_all())
    streamed = numbers(StreamRun(batched(suite, batch_rows)).run_all())
    assert all(c["status"] != "error" for c in memory.values())
    assert close(streamed, memory)


def test_a_text_suite_streams_with_the_in_memory_numbers(tmp_path: Path) -> None:
    text_table(tmp_path)
    assert_engines_agree(suite_of(tmp_path, {"text": "review"}))


@pytest.mark.parametrize("form", ["npy", "npz", "npz-compressed"])
def test_an_image_array_streams_with_the_in_memory_numbers(tmp_path: Path, form: str) -> None:
    _, x = image_table(tmp_path)
    name = "eval.npy" if form == "npy" else "eval.npz"
    if form == "npy":
        np.save(tmp_path / name, x)
    else:
        (np.savez_compressed if form == "npz-compressed" else np.savez)(tmp_path / name, images=x)
    assert_engines_agree(suite_of(tmp_path, {"images": {"eval": name}}))


def test_image_files_stream_with_the_in_memory_numbers(tmp_path: Path) -> None:
    from PIL import Image

    frame, x = image_table(tmp_path, n=400)
    (tmp_path / "img").mkdir()
    paths = []
    for i, pixels in enumerate(x):
        paths.append(f"img/{i}.png")
        Image.fromarray(pixels[0]).save(tmp_path / paths[-1])
    frame.assign(path=paths).to_csv(tmp_path / "eval.csv", index=False)
    assert_engines_agree(suite_of(tmp_path, {"images": {"column": "path"}}), batch_rows=150)


def test_a_bad_text_deep_in_the_table_is_named_by_its_row(tmp_path: Path) -> None:
    path = text_table(tmp_path)
    frame = pd.read_csv(path, keep_default_na=False)
    frame.loc[2345, "review"] = "   "
    frame.to_csv(path, index=False)
    one = {"a": {"metric": "accuracy"}}
    (c,) = StreamRun(batched(suite_of(tmp_path, {"text": "review"}, one), 500)).run_all()
    assert c.error == ("eval.csv: text column 'review' (data.text) holds an empty text ('   ') at "
                       "data row 2,346; drop the row or fill it")


def test_an_image_array_that_does_not_match_the_table_is_refused(tmp_path: Path) -> None:
    _, x = image_table(tmp_path)
    np.save(tmp_path / "short.npy", x[:2000])
    np.save(tmp_path / "long.npy", np.concatenate([x, x[:5]]))
    short = StreamRun(batched(suite_of(tmp_path, {"images": {"eval": "short.npy"}},
                               {"a": {"metric": "accuracy"}}), 500)).run_all()
    assert short[0].error == ("short.npy: 2,000 images but eval.csv has more rows (data row 2,001 "
                              "has no image); the array's first axis must be aligned with the "
                              "table's rows")
    long = StreamRun(batched(suite_of(tmp_path, {"images": {"eval": "long.npy"}},
                              {"a": {"metric": "accuracy"}}), 500)).run_all()
    assert long[0].error == ("long.npy: 2,405 images but eval.csv has 2,400 rows; the array's "
                             "first axis must be aligned with the table's rows")


def test_a_bad_pixel_deep_in_the_array_is_named_by_its_image(tmp_path: Path) -> None:
    _, x = image_table(tmp_path)
    f = x.astype(np.float32) / 255
    f[1789, 0, 2, 3] = 1.5
    np.save(tmp_path / "eval.npy", f)
    (c,) = StreamRun(batched(suite_of(tmp_path, {"images": {"eval": "eval.npy"}},
                              {"a": {"metric": "accuracy"}}), 500)).run_all()
    assert c.error == ("eval.npy: image 1,790 holds the value 1.5; float images must lie in [0, 1] "
                       "(pixels 0-255: save them as uint8, or divide by 255)")


def _forged(folder: Path) -> dict[str, Path]:
    """Array files a streamed run must refuse without reading (or unpickling) them."""
    out = {}
    np.save(folder / "object.npy", np.array([{"a": 1}, None], dtype=object), allow_pickle=True)
    out["object"] = folder / "object.npy"
    np.save(folder / "fortran.npy", np.asfortranarray(np.zeros((4, 3, 5), dtype=np.uint8)))
    out["fortran"] = folder / "fortran.npy"
    np.savez(folder / "two.npz", a=np.zeros((2, 2, 2)), b=np.zeros((2, 2, 2)))
    out["two"] = folder / "two.npz"
    np.save(folder / "big.npy", np.zeros((10, 4, 4), dtype=np.uint8))
    raw = (folder / "big.npy").read_bytes().replace(b"(10, 4, 4)", b"(99999999, 4, 4)", 1)
    (folder / "forged.npy").write_bytes(raw)
    out["forged"] = folder / "forged.npy"
    (folder / "junk.npy").write_bytes(b"not an array at all")
    out["junk"] = folder / "junk.npy"
    for name, shape, descr in (("negative", "(2, -1, 4)", "'|u1'"), ("ints", "(2, 3, 3)", "'<i4'"),
                               ("subarray", "(2, 3, 3)", "('<f4', (3,))"),
                               ("wrapped", "(1, 4611686018427387905, 4)", "'|u1'")):
        header = f"{{'descr': {descr}, 'fortran_order': False, 'shape': {shape}, }}".encode()
        header += b" " * (118 - len(header)) + b"\n"
        raw = b"\x93NUMPY\x01\x00" + len(header).to_bytes(2, "little") + header + bytes(400)
        if name == "wrapped":  # an .npz member, whose claimed size the zip cannot check
            import zipfile

            with zipfile.ZipFile(folder / "wrapped.npz", "w") as z:
                z.writestr("images.npy", raw)
            out[name] = folder / "wrapped.npz"
        else:
            (folder / f"{name}.npy").write_bytes(raw)
            out[name] = folder / f"{name}.npy"
    # a .npy whose pixels end with a whole .npz: numpy.load reads it as the .npy it starts as
    np.savez(folder / "inner.npz", x=np.full((2, 2, 2), 7, dtype=np.uint8))
    inner = (folder / "inner.npz").read_bytes()
    outer = np.zeros((2, 1, 1, len(inner)), dtype=np.uint8)
    outer[1, 0, 0, :] = np.frombuffer(inner, dtype=np.uint8)
    np.save(folder / "poly.npy", outer)
    out["poly"] = folder / "poly.npy"
    return out


@pytest.mark.parametrize(("case", "message"), [
    ("object", "object.npy: cannot read as a numpy array (an object array, which only a pickle "
               "can hold; it is never unpickled); save plain uint8 or float images with "
               "numpy.save"),
    ("fortran", "fortran.npy: the array is stored in Fortran order, which cannot be read row by "
                "row; save numpy.ascontiguousarray(images) instead"),
    ("two", "two.npz: holds 2 arrays (a, b); save the images as the only array of the .npz, or "
            "as a .npy"),
    ("forged", "forged.npy: its header claims an array of shape (99999999, 4, 4) "
               "(1,599,999,984 bytes) but the whole file is 294 bytes; it is truncated or forged: "
               "save the images again with numpy.save"),
    ("junk", "junk.npy: cannot read as a numpy array (ValueError: the magic string is not "
             "correct; expected b'\\x93NUMPY', got b'not an')"),
    ("negative", "negative.npy: images of shape (2, -1, 4); expected (N, H, W) or (N, C, H, W) "
                 "with 1 to 4 channels first"),
    ("ints", "ints.npy: images of dtype int32; expected uint8 (0-255) or float (0-1)"),
    ("subarray", "subarray.npy: images of dtype ('<f4', (3,)); expected uint8 (0-255) or float "
                 "(0-1)"),
    ("wrapped", "wrapped.npz: its header claims an array of shape (1, 4611686018427387905, 4) "
                "but the file holds less; it is truncated or forged"),
])
def test_hostile_array_files_are_refused_unread(tmp_path: Path, case: str, message: str) -> None:
    path = _forged(tmp_path)[case]
    with pytest.raises(DataError) as info:
        ArrayRows(path)
    assert str(info.value).startswith(message)


def test_a_npy_is_read_as_numpy_reads_it_whatever_it_ends_with(tmp_path: Path) -> None:
    path = _forged(tmp_path)["poly"]
    reader = ArrayRows(path)
    try:
        assert reader.shape == np.load(path).shape and np.array_equal(reader.read(0, 2),
                                                                       np.load(path))
    finally:
        reader.close()


def test_image_batches_are_capped_by_their_bytes(tmp_path: Path) -> None:
    from audit.stream.batches import IMAGE_BATCH_BYTES, image_batch_rows

    _, x = image_table(tmp_path, n=10)
    np.save(tmp_path / "eval.npy", x)
    spec = suite_of(tmp_path, {"images": {"eval": "eval.npy"}}).data
    big = 4 * 3 * 224 * 224  # a float32 RGB 224x224 image
    assert image_batch_rows(spec, 250_000, big) == IMAGE_BATCH_BYTES // big == 891
    assert image_batch_rows(spec, 500, big) == 500
    text = dataclasses.replace(spec, images=None, text="review")
    assert image_batch_rows(text, 250_000, big) == 250_000


def test_a_missing_image_column_is_named_when_streamed(tmp_path: Path) -> None:
    image_table(tmp_path, n=20)
    (c,) = StreamRun(suite_of(tmp_path, {"images": {"column": "paht"}},
                              {"a": {"metric": "accuracy"}})).run_all()
    assert c.error.startswith("eval.csv: image path column 'paht' (data.images.column) not found")


@pytest.mark.parametrize(("body", "message"), [
    ('"' + "x" * 200_000 + '",a,Yes\nok,b,No\nbad,a,No,extra\n',
     "eval.csv: data row 3 (line 4) has 4 field(s) but the header names 3 columns"),
    ('ok,a,No\n"never closed,a,No\nok,b,Yes\n',
     "eval.csv: data row 2 (line 3): a quote opened there is never closed; close it, or double "
     'a quote inside a quoted field ("")'),
], ids=["after-a-long-text", "unclosed-quote"])
def test_where_pyarrow_stops_the_row_is_named(tmp_path: Path, body: str, message: str) -> None:
    text_table(tmp_path, n=5)
    (tmp_path / "eval.csv").write_text("review,group,label\n" + body)
    (c,) = StreamRun(suite_of(tmp_path, {"text": "review"}, {"a": {"metric": "accuracy"}})
                     ).run_all()
    assert c.error.startswith(message), c.error


@settings(max_examples=40, deadline=None)
@given(st.integers(1, 40), st.data())
def test_array_rows_read_what_numpy_loads(n: int, data: st.DataObject) -> None:
    import tempfile

    x = np.arange(n * 6, dtype=np.float32).reshape(n, 1, 2, 3) / (n * 6)
    start = data.draw(st.integers(0, n - 1))
    stop = data.draw(st.integers(start + 1, n))
    rows = np.array(sorted(data.draw(st.sets(st.integers(0, n - 1), min_size=1))))
    with tempfile.TemporaryDirectory() as tmp:
        for name, save in (("a.npy", np.save), ("a.npz", np.savez_compressed)):
            path = Path(tmp) / name
            save(path, x)
            reader = ArrayRows(path)
            try:
                assert np.array_equal(reader.read(start, stop), x[start:stop])
                assert np.array_equal(reader.take(rows), x[rows])
                assert np.array_equal(reader.read(0, n), x)  # back to the start of a member
            finally:
                reader.close()


def test_a_malformed_csv_line_deep_in_a_stream_is_named_by_its_row(tmp_path: Path) -> None:
    import csv
    import io

    path = text_table(tmp_path)
    frame = pd.read_csv(path, keep_default_na=False)
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(frame.columns)
    line = 0
    for i, record in enumerate(frame.itertuples(index=False)):
        fields = list(record) + (["extra"] if i == 2345 else [])
        if i == 2345:
            line = out.getvalue().count("\n") + 1  # the line this row starts on
        writer.writerow(fields)
    path.write_text(out.getvalue())
    one = {"a": {"metric": "accuracy"}}
    (c,) = StreamRun(batched(suite_of(tmp_path, {"text": "review"}, one), 500)).run_all()
    assert c.error == (f"eval.csv: data row 2,346 (line {line:,}) has 4 field(s) but the header "
                       "names 3 columns; give every row as many fields as the header (an unquoted "
                       "comma, or an empty field left out?)")


def test_a_csv_with_a_repeated_column_name_is_refused_when_streamed(tmp_path: Path) -> None:
    path = text_table(tmp_path, n=50)
    text = path.read_text().replace("review,group,label", "review,group,group", 1)
    path.write_text(text)
    (c,) = StreamRun(suite_of(tmp_path, {"text": "review"}, {"a": {"metric": "accuracy"}})
                     ).run_all()
    assert c.error == ("eval.csv: duplicate column name 'group' in the header (columns 2 and 3); "
                       "column names must be unique")
