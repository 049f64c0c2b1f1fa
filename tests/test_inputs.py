"""What text and image models read: ``data.text``, ``data.images`` and the model keys of
networks (audit/suite.py, audit/fields.py, audit/data/inputs.py, audit/data/tables.py,
audit/data/derived.py).

Three tables of small cases, each asserting the exact message, then correctness checks
against independent computations (numpy, Pillow called directly, hand-worked values):

* ``PARSE``: suites that must not parse. The working directory is the case's ``tmp_path``,
  so file names in messages are relative. Each case also says whether the published JSON
  Schema can reject it (``SCHEMA``) or only the parser can (``PARSER``: files on disk,
  one value compared with another).
* ``DATA``: suites that parse but whose data is refused when a table is loaded (the tables
  sit in ``t/``, so ``../x.png`` leaves their folder).
* the image-file cases that need a patched cap, a symlink or a pickle sentinel.

The suite of ``PARSE`` (line numbers, for reading the expected messages)::

    1 version   2 name   3 data   4 eval   5 target   6.. the case's data lines
    then teacher, student, checks
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import numpy as np
import pandas as pd
import pytest
import yaml
from jsonschema import Draft202012Validator
from PIL import Image

import audit.data.inputs as inputs
from audit.data import file_sha256, load_table
from audit.data.derived import image_properties, text_properties, vocabulary, words
from audit.data.inputs import inputs_sha256
from audit.data.tables import Table
from audit.errors import DataError, SuiteError
from audit.fields import suite_json_schema
from audit.probes.artifacts import ArtifactRequest
from audit.probes.tables import data_tables
from audit.runner import SuiteRun
from audit.spec import DataSpec, ImageSpec
from audit.suite import load_suite, suite_from_dict

Content = str | bytes | Callable[[Path], None]

PREDICTIONS = "{predictions: p.csv, columns: [p_neg, p_pos], classes: [neg, pos]}"
MODEL = {"predictions": "p.csv", "columns": ["p_neg", "p_pos"], "classes": ["neg", "pos"]}
TABLE = ("id,review,label,image,group\n"
         "0,a good film,pos,img/0.png,a\n1,dull,neg,img/1.png,b\n"
         "2,fine acting,pos,img/2.png,a\n3,too long,neg,img/3.png,b\n")
SCHEMA, PARSER = "schema", "parser"  # who can reject a PARSE case


def write(folder: Path, files: dict[str, Content]) -> None:
    for name, content in files.items():
        path = folder / name
        path.parent.mkdir(parents=True, exist_ok=True)
        if isinstance(content, bytes):
            path.write_bytes(content)
        elif isinstance(content, str):
            path.write_text(content, encoding="utf-8")
        else:
            content(path)


def npy(array: np.ndarray, **kwargs: Any) -> Callable[[Path], None]:
    """Save ``array`` to the case's path (``numpy.save``, which adds no suffix to a file)."""
    def save(path: Path) -> None:
        with path.open("wb") as fh:
            np.save(fh, array, **kwargs)
    return save


def png(pixels: np.ndarray | list[Any], fmt: str = "PNG") -> Callable[[Path], None]:
    """Save ``pixels`` (uint8 ``(H, W)`` grey or ``(H, W, 3)`` RGB, or uint16 ``(H, W)``) as
    an image file."""
    return lambda path: Image.fromarray(np.asarray(pixels)).save(path, format=fmt)


def parquet(**columns: list[Any]) -> Callable[[Path], None]:
    """Save ``columns`` as a Parquet table (each keeps its own type)."""
    return lambda path: pd.DataFrame(columns).to_parquet(path)


def ramp(h: int, w: int, channels: int = 1, start: int = 0) -> np.ndarray:
    """Distinct uint8 pixels, ``(h, w)`` or ``(h, w, channels)``."""
    values = (start + np.arange(h * w * channels) * 7) % 256
    shape = (h, w) if channels == 1 else (h, w, channels)
    return values.astype(np.uint8).reshape(shape)


def suite(data: str = "", *, teacher: str = PREDICTIONS, student: str = PREDICTIONS) -> str:
    return (f"version: 1\nname: inputs\ndata:\n  eval: eval.csv\n  target: label\n{data}"
            f"teacher: {teacher}\nstudent: {student}\nchecks:\n  acc: {{metric: accuracy}}\n")


@pytest.fixture
def here(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """``tmp_path`` (resolved: Pillow's messages name resolved paths) as the working
    directory, with what the ``PARSE`` suites name."""
    tmp_path = tmp_path.resolve()
    four = np.zeros((4, 1, 2, 2), np.uint8)
    write(tmp_path, {"eval.csv": TABLE, "train.csv": TABLE, "p.csv": "p_neg,p_pos\n" + "0.4,0.6\n" * 4,
                     "eval.npy": npy(four), "train.npy": npy(four), "eval.txt": "not images",
                     "hf/config.json": "{}", "m.skops": b"", "m.onnx": b"", "tok/tokenizer.json": "{}"})
    monkeypatch.chdir(tmp_path)
    return tmp_path


@pytest.fixture(scope="module")
def validator() -> Draft202012Validator:
    schema = suite_json_schema()
    Draft202012Validator.check_schema(schema)
    return Draft202012Validator(schema)


def _schema_errors(validator: Draft202012Validator, instance: Any) -> list[str]:
    return sorted(e.message for e in validator.iter_errors(instance))


# ---------------------------------------------------------------------------- parse errors
def parse(data: str, expected: str, who: str, *, teacher: str = PREDICTIONS, id: str  # noqa: A002
          ) -> Any:
    return pytest.param(suite(data, teacher=teacher), expected, who, id=id)


NEEDS = ("add eval: <images.npy> (an array file per table) or column: <a column of image paths>")
ARRAY_SHAPE = "applies to image files read from a path column; an array keeps its own shape"
SIZE = "must be [height, width], each 1 to 4096 pixels"
FOLDER = ("name the model's folder (the one holding config.json, or tokenizer.json); paths are "
          "relative to the file that names them")

PARSE = [
    # -- data.images: its form
    parse("  images: eval.npy\n",
          "x.audit.yaml:6 data.images='eval.npy': write {eval: eval.npy} (and train:, holdout: for "
          "the other tables), or {column: <the column of image paths>}",
          SCHEMA, id="images-a-bare-string"),
    parse("  text: review\n  images: {eval: eval.npy}\n",
          "x.audit.yaml:7 data.images={'eval': 'eval.npy'}: but data.text names a text column too; "
          "a suite's models read text or images, keep one",
          SCHEMA, id="text-and-images"),
    parse("  images: {}\n",
          f"x.audit.yaml:6 data.images={{}}: names no images; {NEEDS}",
          SCHEMA, id="images-empty"),
    parse("  images: {size: [28, 28]}\n",
          f"x.audit.yaml:6 data.images={{'size': [28, 28]}}: names no images; {NEEDS}",
          SCHEMA, id="images-neither-arrays-nor-column"),
    parse("  images: {eval: eval.npy, column: image}\n",
          "x.audit.yaml:6 data.images={'eval': 'eval.npy', 'column': 'image'}: gives both array "
          "files and a path column; keep one",
          SCHEMA, id="arrays-and-column"),
    # -- data.images: one array per table the suite names
    parse("  images: {eval: eval.npy, train: train.npy}\n",
          "x.audit.yaml:6 data.images.train='train.npy': but the suite names no train table; add "
          "data.train or remove this",
          SCHEMA, id="array-for-a-table-the-suite-does-not-name"),
    parse("  train: train.csv\n  images: {eval: eval.npy}\n",
          "x.audit.yaml:7 data.images={'eval': 'eval.npy'}: gives no array for the train table "
          "(data.train); add train: <its images .npy>",
          SCHEMA, id="train-table-without-its-array"),
    parse("  images: {train: train.npy}\n  train: train.csv\n",
          "x.audit.yaml:6 data.images={'train': 'train.npy'}: gives no array for the eval table "
          "(data.eval); add eval: <its images .npy>",
          SCHEMA, id="eval-table-without-its-array"),
    parse("  images: {eval: eval.txt}\n",
          "x.audit.yaml:6 data.images.eval='eval.txt': must be a .npy or .npz file (for image "
          "files, name the table's path column: column:)",
          SCHEMA, id="array-not-npy-or-npz"),
    parse("  images: {eval: missing.npy}\n",
          "x.audit.yaml:6 data.images.eval='missing.npy': file not found (missing.npy); paths are "
          "relative to the file that names them",
          PARSER, id="array-file-missing"),
    # -- data.images: size and channels (path columns only)
    parse("  images: {eval: eval.npy, size: [28, 28]}\n",
          f"x.audit.yaml:6 data.images.size=[28, 28]: {ARRAY_SHAPE}",
          SCHEMA, id="size-with-arrays"),
    parse("  images: {eval: eval.npy, channels: 1}\n",
          f"x.audit.yaml:6 data.images.channels=1: {ARRAY_SHAPE}",
          SCHEMA, id="channels-with-arrays"),
    parse("  images: {column: image, size: [28]}\n",
          f"x.audit.yaml:6 data.images.size=[28]: {SIZE}",
          SCHEMA, id="size-one-number"),
    parse("  images: {column: image, size: [28, 28, 3]}\n",
          f"x.audit.yaml:6 data.images.size=[28, 28, 3]: {SIZE}",
          SCHEMA, id="size-three-numbers"),
    parse("  images: {column: image, size: 28}\n",
          "x.audit.yaml:6 data.images.size=28: must be a non-empty list of integers",
          SCHEMA, id="size-not-a-list"),
    parse("  images: {column: image, size: [28, wide]}\n",
          "x.audit.yaml:6 data.images.size[1]='wide': must be an integer",
          SCHEMA, id="size-not-numbers"),
    parse("  images: {column: image, size: [28.5, 28]}\n",
          "x.audit.yaml:6 data.images.size[0]=28.5: must be an integer",
          SCHEMA, id="size-not-integers"),
    parse("  images: {column: image, size: [0, 28]}\n",
          f"x.audit.yaml:6 data.images.size=[0, 28]: {SIZE}",
          SCHEMA, id="size-zero"),
    parse("  images: {column: image, size: [28, 5000]}\n",
          f"x.audit.yaml:6 data.images.size=[28, 5000]: {SIZE}",
          SCHEMA, id="size-too-large"),
    parse("  images: {column: image, channels: 2}\n",
          "x.audit.yaml:6 data.images.channels=2: must be one of 1, 3",
          SCHEMA, id="channels-2"),
    # -- the input column is no other column
    parse("  text: label\n",
          "x.audit.yaml:6 data.text='label': is also data.target; the models read this column as "
          "text, so it cannot be the label",
          PARSER, id="text-is-the-target"),
    parse("  features: [review, group]\n  text: review\n",
          "x.audit.yaml:7 data.text='review': is also data.features; the models read this column "
          "as text, so it cannot be features too",
          PARSER, id="text-in-features"),
    parse("  sensitive: [review]\n  text: review\n",
          "x.audit.yaml:7 data.text='review': is also data.sensitive; the models read this column "
          "as text, so it cannot be sensitive too",
          PARSER, id="text-in-sensitive"),
    parse("  sensitive: [group, image]\n  images: {column: image}\n",
          "x.audit.yaml:7 data.images.column='image': is also data.sensitive; the models read this "
          "column as image paths, so it cannot be sensitive too",
          PARSER, id="image-column-in-sensitive"),
    parse("  images: {column: label}\n",
          "x.audit.yaml:6 data.images.column='label': is also data.target; the models read this "
          "column as image paths, so it cannot be the label",
          PARSER, id="image-column-is-the-target"),
    parse("  text: ''\n",
          "x.audit.yaml:6 data.text='': must be a non-empty string",
          SCHEMA, id="text-empty"),
    # -- models of networks
    parse("", "x.audit.yaml:6 teacher='hf': is a folder with a config.json; for a Hugging Face "
              "model write {transformers: hf}",
          SCHEMA, teacher="hf", id="transformers-folder-as-a-string"),
    parse("", f"x.audit.yaml:6 teacher.transformers='p.csv': is a file, not a folder; {FOLDER}",
          PARSER, teacher="{transformers: p.csv}", id="transformers-a-file"),
    parse("", f"x.audit.yaml:6 teacher.transformers='nope': folder not found (nope); {FOLDER}",
          PARSER, teacher="{transformers: nope}", id="transformers-folder-missing"),
    parse("", "x.audit.yaml:6 teacher.tokenizer='tok': does not apply to a skops model (it takes "
              "classes, trusted_types); remove it",
          SCHEMA, teacher="{skops: m.skops, tokenizer: tok}", id="tokenizer-on-skops"),
    parse("", f"x.audit.yaml:6 teacher.tokenizer='p.csv': is a file, not a folder; {FOLDER}",
          PARSER, teacher="{onnx: m.onnx, tokenizer: p.csv}", id="tokenizer-a-file"),
    parse("", "x.audit.yaml:6 teacher.max_length=0: must be at least 1",
          SCHEMA, teacher="{transformers: hf, max_length: 0}", id="max-length-0"),
    parse("", "x.audit.yaml:6 teacher.max_length=9000: must be at most 8192",
          SCHEMA, teacher="{onnx: m.onnx, tokenizer: tok, max_length: 9000}",
          id="max-length-above-8192"),
    parse("", "x.audit.yaml:6 teacher.batch_size=0: must be at least 1",
          SCHEMA, teacher="{transformers: hf, batch_size: 0}", id="batch-size-0"),
    parse("", "x.audit.yaml:6 teacher.device='gpu': must be one of cpu, cuda; did you mean "
              "'cuda'? (a GPU is device: cuda)",
          SCHEMA, teacher="{transformers: hf, device: gpu}", id="device-gpu"),
    parse("", "x.audit.yaml:6 teacher.device='GPU': must be one of cpu, cuda; did you mean "
              "'cuda'? (a GPU is device: cuda)",
          SCHEMA, teacher="{transformers: hf, device: GPU}", id="device-gpu-upper-case"),
    parse("", "x.audit.yaml:6 teacher.device='cpus': must be one of cpu, cuda; did you mean 'cpu'?",
          SCHEMA, teacher="{transformers: hf, device: cpus}", id="device-typo"),
    parse("", "x.audit.yaml:6 teacher.device='cuda': does not apply to an onnx model (it takes "
              "classes, output, tokenizer, max_length, batch_size, mean, std); remove it",
          SCHEMA, teacher="{onnx: m.onnx, device: cuda}", id="device-on-onnx"),
]


@pytest.mark.parametrize(("text", "expected", "who"), PARSE)
def test_invalid_suite_message(here: Path, text: str, expected: str, who: str) -> None:
    write(here, {"x.audit.yaml": text})
    with pytest.raises(SuiteError) as excinfo:
        load_suite("x.audit.yaml")
    assert str(excinfo.value) == expected


@pytest.mark.parametrize(("text", "expected", "who"), PARSE)
def test_the_schema_rejects_what_it_can_express(validator: Draft202012Validator, text: str,
                                                expected: str, who: str) -> None:
    errors = _schema_errors(validator, yaml.safe_load(text))
    if who == SCHEMA:
        assert errors, "the schema accepts it"
    else:  # a file on disk, or one value compared with another: only the parser can tell
        assert errors == []


DICT = [
    pytest.param({"images": "eval.npy"},
                 "<suite> data.images='eval.npy': write {eval: eval.npy} (and train:, holdout: for "
                 "the other tables), or {column: <the column of image paths>}",
                 id="dict-images-a-bare-string"),
    pytest.param({"text": "review", "images": {"column": "image"}},
                 "<suite> data.images={'column': 'image'}: but data.text names a text column too; "
                 "a suite's models read text or images, keep one",
                 id="dict-text-and-images"),
    pytest.param({"images": {"eval": "eval.npy", "holdout": "eval.npy"}},
                 "<suite> data.images.holdout='eval.npy': but the suite names no holdout table; add "
                 "data.holdout or remove this",
                 id="dict-array-for-holdout-not-named"),
    pytest.param({"text": "review", "features": ["group", "review"]},
                 "<suite> data.text='review': is also data.features; the models read this column as "
                 "text, so it cannot be features too",
                 id="dict-text-in-features"),
]


@pytest.mark.parametrize(("data", "expected"), DICT)
def test_invalid_dict_suite_message(here: Path, data: dict[str, Any], expected: str) -> None:
    raw = {"version": 1, "name": "inputs", "data": {"eval": "eval.csv", "target": "label", **data},
           "teacher": MODEL, "student": MODEL, "checks": {"acc": {"metric": "accuracy"}}}
    with pytest.raises(SuiteError) as excinfo:
        suite_from_dict(raw, base_dir=here)
    assert str(excinfo.value) == expected
    assert isinstance(excinfo.value, ValueError)


def valid(data: str, columns: tuple[str, ...], *, teacher: str = PREDICTIONS, id: str  # noqa: A002
          ) -> Any:
    return pytest.param(data, teacher, columns, id=id)


VALID = [
    valid("  train: train.csv\n  text: review\n", ("review",), id="text"),
    valid("  train: train.csv\n  images: {eval: eval.npy, train: train.npy}\n", (), id="image-arrays"),
    valid("  images: {column: image, size: [28, 32], channels: 3}\n", ("image",), id="image-column"),
    valid("  images: {column: image}\n", ("image",), id="image-column-defaults"),
    valid("  images: {eval: EVAL.NPY}\n", (), id="image-array-upper-case-suffix"),
    valid("  text: review\n", ("review",), id="transformers",
          teacher="{transformers: hf, max_length: 128, batch_size: 8, device: cpu}"),
    valid("  text: review\n", ("review",), id="onnx-with-tokenizer",
          teacher="{onnx: m.onnx, tokenizer: tok, max_length: 8192}"),
]


@pytest.mark.parametrize(("data", "teacher", "columns"), VALID)
def test_valid_suites_pass_the_schema_and_the_parser(validator: Draft202012Validator, here: Path,
                                                     data: str, teacher: str,
                                                     columns: tuple[str, ...]) -> None:
    text = suite(data, teacher=teacher)
    write(here, {"x.audit.yaml": text, "EVAL.NPY": npy(np.zeros((4, 2, 2)))})
    assert _schema_errors(validator, yaml.safe_load(text)) == []
    parsed = load_suite("x.audit.yaml")
    assert parsed.data.modality == ("text" if "text:" in data else "images")
    assert parsed.data.input_columns == columns  # an array file is no column


def test_parsed_specs(here: Path) -> None:
    write(here, {"x.audit.yaml": suite("  train: train.csv\n  images: {train: train.npy, eval: "
                                       "eval.npy}\n", teacher="{transformers: hf, max_length: 64, "
                                                              "batch_size: 4, device: cuda}")})
    parsed = load_suite("x.audit.yaml")
    assert parsed.data.images == ImageSpec(arrays=(("eval", here / "eval.npy"),
                                                   ("train", here / "train.npy")))
    assert parsed.data.images.array("train") == here / "train.npy"
    assert parsed.data.images.array("holdout") is None
    assert (parsed.teacher.kind, parsed.teacher.path, parsed.teacher.max_length,
            parsed.teacher.batch_size, parsed.teacher.device) == ("transformers", here / "hf", 64, 4,
                                                                  "cuda")
    write(here, {"x.audit.yaml": suite("  images: {column: image, size: [28, 32]}\n",
                                       teacher="{onnx: m.onnx, tokenizer: tok}")})
    parsed = load_suite("x.audit.yaml")
    assert parsed.data.images == ImageSpec(column="image", size=(28, 32))
    assert parsed.teacher.tokenizer == here / "tok"


# ----------------------------------------------------------------------------- data errors
def load(here: Path, data: dict[str, Any]) -> Table:
    """The eval table of a suite over ``t/eval.csv`` (and ``data``), as a run reads it."""
    raw = {"version": 1, "name": "inputs",
           "data": {"eval": "t/eval.csv", "target": "label", **data},
           "teacher": MODEL, "student": MODEL, "checks": {"acc": {"metric": "accuracy"}}}
    return load_table(suite_from_dict(raw, base_dir=here).data)


def data_case(data: dict[str, Any], files: dict[str, Content], expected: str, *,
              id: str) -> Any:  # noqa: A002
    return pytest.param(data, files, expected, id=id)


LABELS = "label\npos\nneg\npos\n"  # three rows
TEXT = {"text": "review"}
ARRAY = {"images": {"eval": "t/x.npy"}}
COLUMN = {"images": {"column": "image"}}
TWO = "image,label\na.png,pos\n{second},neg\n"  # a table of two images; the second varies


def two(second: str) -> str:
    return TWO.format(second=second)


NOT_TEXT = "every row needs a text (drop the row or fill it)"
FLOAT = "float images must lie in [0, 1]"
SHAPE = ("expected (N, H, W) or (N, C, H, W) with 1 to 4 channels first (move a channels-last axis "
         "with numpy.moveaxis(x, -1, 1))")
OUTSIDE = "image paths are relative to the table and must stay in its folder"

DATA = [
    # -- data.text
    data_case(TEXT, {"t/eval.csv": "review,label\ngood,pos\n,neg\nfine,pos\n"},
              f"t/eval.csv: text column 'review' (data.text) holds an empty cell at data row 2; "
              f"{NOT_TEXT}",
              id="text-empty-cell"),
    data_case(TEXT, {"t/eval.csv": 'review,label\ngood,pos\nfine,pos\n"",neg\n'},
              f"t/eval.csv: text column 'review' (data.text) holds an empty cell at data row 3; "
              f"{NOT_TEXT}",
              id="text-quoted-empty-cell"),
    data_case(TEXT, {"t/eval.csv": "review,label\ngood,pos\n   ,neg\nfine,pos\n"},
              "t/eval.csv: text column 'review' (data.text) holds an empty text ('   ') at data "
              "row 2; drop the row or fill it",
              id="text-only-spaces"),
    data_case({**TEXT, "eval": "t/eval.parquet"},
              {"t/eval.parquet": parquet(review=[3, 1, 2], label=["pos", "neg", "pos"])},
              f"t/eval.parquet: text column 'review' (data.text) holds 3 (int), not text at data "
              f"row 1; {NOT_TEXT}",
              id="text-parquet-integers"),
    data_case({**TEXT, "eval": "t/eval.parquet"},
              {"t/eval.parquet": parquet(review=["good", "ok", None], label=["pos", "neg", "pos"])},
              f"t/eval.parquet: text column 'review' (data.text) holds an empty cell at data row 3; "
              f"{NOT_TEXT}",
              id="text-parquet-null"),
    data_case({"text": "reviews"}, {"t/eval.csv": "review,label\ngood,pos\n"},
              "t/eval.csv: text column 'reviews' (data.text) not found; did you mean 'review'? "
              "(columns: review, label)",
              id="text-column-missing"),
    # -- data.images: arrays
    data_case(ARRAY, {"t/eval.csv": LABELS, "t/x.npy": npy(np.zeros((4, 2, 2), np.uint8))},
              "t/x.npy: 4 images but t/eval.csv has 3 rows; the array's first axis must be aligned "
              "with the table's rows",
              id="npy-wrong-number-of-rows"),
    data_case(ARRAY, {"t/eval.csv": LABELS, "t/x.npy": npy(np.zeros((3, 784), np.uint8))},
              f"t/x.npy: images of shape (3, 784); {SHAPE}",
              id="npy-2d"),
    data_case(ARRAY, {"t/eval.csv": LABELS, "t/x.npy": npy(np.zeros((3, 5, 2, 2), np.uint8))},
              f"t/x.npy: images of shape (3, 5, 2, 2); {SHAPE}",
              id="npy-5-channels"),
    data_case(ARRAY, {"t/eval.csv": LABELS, "t/x.npy": npy(np.zeros((3, 28, 28, 3), np.uint8))},
              f"t/x.npy: images of shape (3, 28, 28, 3); {SHAPE}",
              id="npy-channels-last"),
    data_case(ARRAY, {"t/eval.csv": LABELS, "t/x.npy": npy(np.zeros((3, 1, 2, 2, 1), np.uint8))},
              f"t/x.npy: images of shape (3, 1, 2, 2, 1); {SHAPE}",
              id="npy-5d"),
    data_case(ARRAY, {"t/eval.csv": LABELS, "t/x.npy": npy(np.zeros((3, 2, 2), np.int16))},
              "t/x.npy: images of dtype int16; expected uint8 (0-255) or float (0-1)",
              id="npy-int16"),
    data_case(ARRAY, {"t/eval.csv": LABELS, "t/x.npy": npy(np.zeros((3, 2, 2), bool))},
              "t/x.npy: images of dtype bool; expected uint8 (0-255) or float (0-1)",
              id="npy-bool"),
    data_case(ARRAY, {"t/eval.csv": LABELS,
                      "t/x.npy": npy(np.array([[[0.0, 1.0]], [[0.5, 0.25]], [[17.0, 255.0]]]))},
              f"t/x.npy: image 3 holds the value 17; {FLOAT} (pixels 0-255: save them as uint8, or "
              "divide by 255)",
              id="npy-float-above-1"),
    data_case(ARRAY, {"t/eval.csv": LABELS,
                      "t/x.npy": npy(np.array([[[0.0, 1.0]], [[-0.5, 0.25]], [[0.0, 0.0]]]))},
              f"t/x.npy: image 2 holds the value -0.5; {FLOAT}",
              id="npy-float-negative"),
    data_case(ARRAY, {"t/eval.csv": LABELS,
                      "t/x.npy": npy(np.array([[[0.0, 1.0]], [[0.5, np.nan]], [[0.0, 0.0]]], np.float32))},
              f"t/x.npy: image 2 holds the value nan; {FLOAT}",
              id="npy-nan"),
    data_case(ARRAY, {"t/eval.csv": LABELS,
                      "t/x.npy": npy(np.array([[[0.0, 1.0]], [[0.5, 0.5]], [[np.inf, 0.0]]]))},
              f"t/x.npy: image 3 holds the value inf; {FLOAT}",
              id="npy-inf"),
    data_case({"images": {"eval": "t/x.npz"}},
              {"t/eval.csv": LABELS, "t/x.npz": lambda p: np.savez(p, images=np.zeros((3, 2, 2)),
                                                                   labels=np.zeros(3))},
              "t/x.npz: holds 2 arrays (images, labels); save the images as the only array of the "
              ".npz, or as a .npy",
              id="npz-two-arrays"),
    data_case({"images": {"eval": "t/x.npz"}}, {"t/eval.csv": LABELS, "t/x.npz": b"PK\x03\x04 torn"},
              "t/x.npz: cannot read as a numpy array (BadZipFile: File is not a zip file); save "
              "plain uint8 or float images with numpy.save",
              id="npz-not-a-zip"),
    # -- data.images: a column of image files
    data_case(COLUMN, {"t/eval.csv": two("../outside.png"), "t/a.png": png(ramp(2, 3)),
                       "outside.png": png(ramp(2, 3))},
              f"t/eval.csv: data row 2 names the image '../outside.png', which is outside the "
              f"table's folder (t); {OUTSIDE}",
              id="image-path-leaves-the-folder"),
    data_case(COLUMN, {"t/eval.csv": two("sub/../../outside.png"), "t/a.png": png(ramp(2, 3)),
                       "outside.png": png(ramp(2, 3))},
              f"t/eval.csv: data row 2 names the image 'sub/../../outside.png', which is outside "
              f"the table's folder (t); {OUTSIDE}",
              id="image-path-leaves-the-folder-through-a-subfolder"),
    data_case(COLUMN, {"t/eval.csv": two("<here>/outside.png"), "t/a.png": png(ramp(2, 3)),
                       "outside.png": png(ramp(2, 3))},
              "t/eval.csv: data row 2 names the image '<here>/outside.png' by an absolute path; "
              "image paths are relative to the table's folder (t) and must stay in it",
              id="image-path-absolute"),
    data_case(COLUMN, {"t/eval.csv": two("<here>/t/a.png"), "t/a.png": png(ramp(2, 3))},
              "t/eval.csv: data row 2 names the image '<here>/t/a.png' by an absolute path; "
              "image paths are relative to the table's folder (t) and must stay in it",
              id="image-path-absolute-inside-the-folder"),
    data_case(COLUMN, {"t/eval.csv": two("b.png"), "t/a.png": png(ramp(2, 3))},
              "t/eval.csv: data row 2 names t/b.png, which does not exist",
              id="image-file-missing"),
    data_case(COLUMN, {"t/eval.csv": "image,label\na.png,pos\n,neg\n", "t/a.png": png(ramp(2, 3))},
              "t/eval.csv: image column 'image' (data.images.column) holds an empty cell at data "
              "row 2; every row needs an image path",
              id="image-path-empty-cell"),
    data_case(COLUMN, {"t/eval.csv": two("b.png"), "t/a.png": png(ramp(2, 3)),
                       "t/b.png": b"\x89PNG but then garbage" * 4},
              "t/eval.csv: data row 2: cannot read t/b.png as an image (UnidentifiedImageError: "
              "cannot identify image file '<here>/t/b.png')",
              id="image-file-garbage"),
    data_case(COLUMN, {"t/eval.csv": two("b.png"), "t/a.png": png(ramp(2, 3)), "t/b.png": b""},
              "t/eval.csv: data row 2: cannot read t/b.png as an image (UnidentifiedImageError: "
              "cannot identify image file '<here>/t/b.png')",
              id="image-file-empty"),
    data_case(COLUMN, {"t/eval.csv": two("b.gif"), "t/a.png": png(ramp(2, 3)),
                       "t/b.gif": png(ramp(2, 3), fmt="GIF")},
              "t/eval.csv: data row 2: t/b.gif is a GIF image; image files must be PNG or JPEG",
              id="image-file-gif"),
    data_case(COLUMN, {"t/eval.csv": two("b.png"), "t/a.png": png(ramp(2, 3)),
                       "t/b.png": png(ramp(2, 3), fmt="GIF")},
              "t/eval.csv: data row 2: t/b.png is a GIF image; image files must be PNG or JPEG",
              id="image-file-gif-named-png"),
    data_case(COLUMN, {"t/eval.csv": two("b.png"), "t/a.png": png(ramp(2, 3)),
                       "t/b.png": png(ramp(5, 4))},
              "t/eval.csv: data row 2: t/b.png is 4x5 but the first image is 3x2; set "
              "data.images.size: [height, width] to resize them all",
              id="images-of-different-sizes"),
]


@pytest.mark.parametrize(("data", "files", "expected"), DATA)
def test_data_error_message(here: Path, data: dict[str, Any], files: dict[str, Content],
                            expected: str) -> None:
    def placed(content: Content) -> Content:
        return content.replace("<here>", str(here)) if isinstance(content, str) else content

    write(here, {name: placed(content) for name, content in files.items()})
    with pytest.raises(DataError) as excinfo:
        load(here, data)
    assert str(excinfo.value) == expected.replace("<here>", str(here))
    assert isinstance(excinfo.value, ValueError)


def test_a_data_error_is_the_checks_error_in_a_run(here: Path) -> None:
    write(here, {"t/eval.csv": LABELS, "t/p.csv": "p_neg,p_pos\n" + "0.4,0.6\n" * 3,
                 "t/x.npy": npy(np.full((3, 2, 2), 2.0))})
    raw = {"version": 1, "name": "inputs", "data": {"eval": "t/eval.csv", "target": "label", **ARRAY},
           "teacher": {**MODEL, "predictions": "t/p.csv"}, "student": {**MODEL, "predictions": "t/p.csv"},
           "checks": {"acc": {"metric": "accuracy"}}}
    result = SuiteRun(suite_from_dict(raw, base_dir=here)).run_check("acc")
    assert (result.status, result.error) == (
        "error", f"t/x.npy: image 1 holds the value 2; {FLOAT} (pixels 0-255: save them as uint8, "
                 "or divide by 255)")


def test_a_symlink_out_of_the_folder_is_refused(here: Path) -> None:
    write(here, {"t/eval.csv": two("inside.png"), "t/a.png": png(ramp(2, 3)),
                 "secret/outside.png": png(ramp(2, 3))})
    (here / "t" / "inside.png").symlink_to(here / "secret" / "outside.png")
    with pytest.raises(DataError) as excinfo:
        load(here, COLUMN)
    assert str(excinfo.value) == ("t/eval.csv: data row 2 names the image 'inside.png', which is "
                                  f"outside the table's folder (t); {OUTSIDE}")
    (here / "t" / "in").mkdir()  # a symlink that stays inside is followed
    (here / "t" / "in" / "b.png").symlink_to(here / "t" / "a.png")
    write(here, {"t/eval.csv": two("in/b.png")})
    table = load(here, COLUMN)
    np.testing.assert_array_equal(table.images[0], table.images[1])


def test_an_image_above_the_pixel_cap_is_refused_before_it_is_decoded(
        here: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from PIL import ImageFile

    write(here, {"t/eval.csv": "image,label\nbig.png,pos\na.png,neg\n", "t/a.png": png(ramp(5, 4)),
                 "t/big.png": png(ramp(5, 5))})
    monkeypatch.setattr(inputs, "MAX_IMAGE_PIXELS", 25)  # big.png has 25 pixels: allowed
    assert load(here, {"images": {"column": "image", "size": [5, 5]}}).images.shape == (2, 1, 5, 5)
    monkeypatch.setattr(inputs, "MAX_IMAGE_PIXELS", 24)

    def decoded(self: Any) -> Any:
        raise AssertionError("decoded before the cap was checked")

    monkeypatch.setattr(ImageFile.ImageFile, "load", decoded)
    with pytest.raises(DataError) as excinfo:
        load(here, COLUMN)
    assert str(excinfo.value) == ("t/eval.csv: data row 1: t/big.png is 5x5 pixels, more than the 24 "
                                  "allowed; resize it first")


def test_an_object_array_is_refused_and_never_unpickled(here: Path) -> None:
    marker = here / "unpickled"

    class Sentinel:
        def __reduce__(self) -> tuple[Any, ...]:
            return (Path.touch, (marker,))

    write(here, {"t/eval.csv": LABELS,
                 "t/x.npy": npy(np.array([Sentinel(), Sentinel(), Sentinel()], dtype=object),
                                allow_pickle=True)})
    with pytest.raises(DataError) as excinfo:
        load(here, ARRAY)
    assert str(excinfo.value) == (
        "t/x.npy: cannot read as a numpy array (ValueError: Object arrays cannot be loaded when "
        "allow_pickle=False); save plain uint8 or float images with numpy.save")
    assert not marker.exists()
    # the hash of the inputs reads the file's bytes only: still nothing unpickled
    spec = DataSpec(eval=here / "t" / "eval.csv", target="label",
                    images=ImageSpec(arrays=(("eval", here / "t" / "x.npy"),)))
    inputs_sha256(spec, "eval", file_sha256(spec.eval))
    assert not marker.exists()
    np.load(here / "t" / "x.npy", allow_pickle=True)  # the sentinel is live: loading it unsafely
    assert marker.exists()                            # would have run its code


def test_an_array_file_is_read_by_its_content(here: Path) -> None:
    write(here, {"t/eval.csv": LABELS, "t/x.npz": npy(np.zeros((3, 2, 2), np.uint8)),
                 "t/y.npy": lambda p: p.write_bytes(_npz_bytes(here, np.ones((3, 2, 2))))})
    assert load(here, {"images": {"eval": "t/x.npz"}}).images.shape == (3, 1, 2, 2)  # a .npy inside
    assert load(here, {"images": {"eval": "t/y.npy"}}).images.max() == 1.0  # a .npz inside


def _npz_bytes(folder: Path, array: np.ndarray) -> bytes:
    np.savez(folder / "tmp.npz", images=array)
    return (folder / "tmp.npz").read_bytes()


def test_a_torn_npz_leaves_no_file_open(here: Path) -> None:
    import gc
    import warnings

    write(here, {"t/eval.csv": LABELS, "t/x.npz": b"PK\x03\x04 torn"})
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        with pytest.raises(DataError) as excinfo:  # its message: DATA's npz-not-a-zip
            load(here, {"images": {"eval": "t/x.npz"}})
        del excinfo  # its traceback would keep a leaked handle alive
        gc.collect()
    assert [str(w.message) for w in caught if issubclass(w.category, ResourceWarning)] == []


# ----------------------------------------------------------------------------- correctness
def spec_of(eval: Path, *, images: ImageSpec | None = None, text: str | None = None,  # noqa: A002
            target: str = "label", train: Path | None = None) -> DataSpec:
    return DataSpec(eval=eval, target=target, train=train, images=images, text=text)


def test_the_mnist_png_column_decodes_to_the_npy_images(mnist: Path) -> None:
    raw = np.load(mnist / "eval.npy", allow_pickle=False)
    assert (raw.dtype, raw.shape) == (np.uint8, (1000, 1, 28, 28))
    files = load_table(spec_of(mnist / "eval.csv", images=ImageSpec(column="image"), target="digit"))
    arrays = load_table(spec_of(mnist / "eval.csv", target="digit",
                                images=ImageSpec(arrays=(("eval", mnist / "eval.npy"),))))
    for table in (files, arrays):
        assert table.modality == "images"
        assert (table.images.dtype, table.images.shape) == (np.float32, (1000, 1, 28, 28))
        np.testing.assert_array_equal(table.images, raw.astype(np.float32) / np.float32(255))
    assert list(files.features.columns) == ["id"]  # the path column is no feature
    assert list(arrays.features.columns) == ["id", "image"]  # with arrays, it is only metadata
    np.testing.assert_array_equal(files.images, arrays.images)
    np.testing.assert_array_equal(files.labels, arrays.labels)
    with Image.open(mnist / pd.read_csv(mnist / "eval.csv")["image"][0]) as first:
        np.testing.assert_array_equal(np.asarray(first), raw[0, 0])  # independently: Pillow itself
    assert files.sha256 != arrays.sha256 != file_sha256(mnist / "eval.csv")


def test_uint8_arrays_become_float32_in_0_1(here: Path) -> None:
    every = np.arange(256, dtype=np.uint8).reshape(4, 1, 8, 8)
    write(here, {"t/eval.csv": "label\n" + "pos\n" * 4, "t/x.npy": npy(every)})
    images = load(here, ARRAY).images
    assert images.dtype == np.float32
    assert (images.min(), images.max()) == (0.0, 1.0)
    np.testing.assert_array_equal(images.reshape(-1), np.array([v / 255 for v in range(256)],
                                                               np.float32))
    floats = np.linspace(0, 1, 3 * 4 * 5).reshape(3, 4, 5)  # float64 (N, H, W): kept, as float32
    write(here, {"t/eval.csv": LABELS, "t/x.npy": npy(floats)})
    images = load(here, ARRAY).images
    assert (images.dtype, images.shape) == (np.float32, (3, 1, 4, 5))
    np.testing.assert_array_equal(images[:, 0], floats.astype(np.float32))


def test_size_resizes_as_pillow_does(here: Path) -> None:
    sources = {"a.png": ramp(4, 9, 3), "b.png": ramp(6, 3, 3, start=5), "c.png": ramp(5, 7, 3)}
    write(here, {"t/eval.csv": "image,label\na.png,pos\nb.png,neg\nc.png,pos\n",
                 **{f"t/{name}": png(pixels) for name, pixels in sources.items()}})
    images = load(here, {"images": {"column": "image", "size": [5, 7]}}).images  # height 5, width 7
    assert images.shape == (3, 3, 5, 7)
    for got, name in zip(images, sources):
        with Image.open(here / "t" / name) as img:
            expected = np.asarray(img.convert("RGB").resize((7, 5), Image.Resampling.BILINEAR))
        np.testing.assert_array_equal(got, np.moveaxis(expected, -1, 0).astype(np.float32) / 255)
    grey = load(here, {"images": {"column": "image", "size": [5, 7], "channels": 1}}).images
    for got, name in zip(grey, sources):
        with Image.open(here / "t" / name) as img:
            expected = np.asarray(img.convert("L").resize((7, 5), Image.Resampling.BILINEAR))
        np.testing.assert_array_equal(got[0], expected.astype(np.float32) / 255)


def test_channels(here: Path) -> None:
    grey, colour = ramp(2, 3), ramp(2, 3, 3, start=11)
    write(here, {"t/eval.csv": two("b.png"), "t/a.png": png(grey), "t/b.png": png(grey),
                 "t/c.png": png(colour)})
    assert load(here, COLUMN).images.shape == (2, 1, 2, 3)  # grey files: grey
    rgb = load(here, {"images": {"column": "image", "channels": 3}}).images
    assert rgb.shape == (2, 3, 2, 3)
    for c in range(3):  # a grey image in RGB: its values in every channel
        np.testing.assert_array_equal(rgb[0, c], grey / np.float32(255))
    # the first image grey, the second in colour: RGB unless channels: 1 says grey
    write(here, {"t/eval.csv": two("c.png")})
    mixed = load(here, COLUMN).images
    assert mixed.shape == (2, 3, 2, 3)
    np.testing.assert_array_equal(mixed[1], np.moveaxis(colour, -1, 0) / np.float32(255))
    np.testing.assert_array_equal(mixed[0, 2], grey / np.float32(255))
    flat = load(here, {"images": {"column": "image", "channels": 1}}).images
    with Image.open(here / "t" / "c.png") as img:
        np.testing.assert_array_equal(flat[1, 0], np.asarray(img.convert("L")) / np.float32(255))


def test_a_jpeg_is_read(here: Path) -> None:
    write(here, {"t/eval.csv": two("b.jpg"), "t/a.png": png(ramp(4, 4)),
                 "t/b.jpg": png(ramp(4, 4), fmt="JPEG")})
    images = load(here, COLUMN).images
    with Image.open(here / "t" / "b.jpg") as img:
        np.testing.assert_array_equal(images[1, 0], np.asarray(img.convert("L")) / np.float32(255))


def test_a_16_bit_png_is_scaled_not_clipped(here: Path) -> None:
    wide = np.array([[0, 257, 1000], [32896, 60000, 65535]], np.uint16)
    write(here, {"t/eval.csv": two("b.png"), "t/a.png": png(wide), "t/b.png": png(ramp(2, 3))})
    with Image.open(here / "t" / "a.png") as img:
        assert img.mode == "I;16"
    images = load(here, COLUMN).images
    assert images.shape == (2, 1, 2, 3)
    np.testing.assert_array_equal(images[0, 0], np.rint(wide / 257).astype(np.float32) / 255)
    assert images[0, 0, 0, 2] == np.float32(4 / 255)  # 1000 of 65535, not white


def test_take_keeps_the_inputs_aligned_with_the_labels(here: Path) -> None:
    texts = ["first one", "second", "third here", "fourth"]
    write(here, {"t/eval.csv": "review,label,group\n" + "".join(
        f"{t},{'pos' if i % 2 else 'neg'},{'ab'[i // 2]}\n" for i, t in enumerate(texts))})
    table = load(here, TEXT)
    assert table.modality == "text"
    assert list(table.texts) == texts
    for rows in ([3, 0], slice(1, 3), np.array([False, True, False, True])):
        part = table.take(rows)
        expected = list(np.arange(4)[rows])
        assert list(part.texts) == [texts[i] for i in expected]
        assert list(part.labels) == [table.labels[i] for i in expected]
        assert list(part.sensitive.index) == list(range(len(expected)))  # re-indexed from 0
    pixels = np.arange(4, dtype=np.uint8).reshape(4, 1, 1, 1) * 60  # image i has the value 60 i
    write(here, {"t/eval.csv": "label\nneg\npos\nneg\npos\n", "t/x.npy": npy(pixels)})
    images = load(here, ARRAY)
    part = images.take([2, 1])
    np.testing.assert_array_equal(part.images.reshape(-1), np.array([120, 60], np.float32) / 255)
    assert list(part.labels) == ["neg", "pos"] and part.texts is None


def test_with_inputs_replaces_them(here: Path) -> None:
    write(here, {"t/eval.csv": "review,label\ngood,pos\nbad,neg\n"})
    table = load(here, TEXT)
    edited = table.with_inputs(["g00d", "bqd"])
    assert (list(edited.texts), edited.texts.dtype) == (["g00d", "bqd"], object)
    assert list(table.texts) == ["good", "bad"]  # the table itself is unchanged
    assert edited.labels is table.labels
    write(here, {"t/eval.csv": "label\npos\nneg\n", "t/x.npy": npy(np.zeros((2, 2, 2), np.uint8))})
    images = load(here, ARRAY)
    perturbed = images.with_inputs(np.full((2, 1, 2, 2), 0.5))
    assert (perturbed.images.dtype, float(perturbed.images.mean())) == (np.float32, 0.5)
    assert float(images.images.max()) == 0.0
    write(here, {"t/eval.csv": "x,label\n1,pos\n2,neg\n"})
    with pytest.raises(TypeError, match=r"^a tabular table's inputs are its feature columns$"):
        load(here, {}).with_inputs([[1], [2]])


def _touch(path: Path, content: Callable[[Path], None]) -> None:
    """Rewrite ``path`` and give it a modification time of its own, so no file system's
    timestamp granularity can make the rewrite look unchanged."""
    stamp = path.stat().st_mtime_ns + 10**9
    content(path)
    os.utime(path, ns=(stamp, stamp))


def test_inputs_sha256_follows_the_array_file(here: Path) -> None:
    pixels = np.zeros((3, 2, 2), np.uint8)
    write(here, {"t/eval.csv": LABELS, "t/x.npy": npy(pixels)})
    first = load(here, ARRAY).sha256
    assert first == load(here, ARRAY).sha256  # nothing changed
    assert first != file_sha256(here / "t" / "eval.csv")  # the images count
    spec = spec_of(here / "t" / "eval.csv", images=ImageSpec(arrays=(("eval", here / "t" / "x.npy"),)))
    assert inputs_sha256(spec, "eval", file_sha256(spec.eval)) == first  # before any image is read
    pixels[2, 1, 0] = 1
    _touch(here / "t" / "x.npy", npy(pixels))
    assert load(here, ARRAY).sha256 != first


def test_inputs_sha256_follows_each_image_file(here: Path) -> None:
    write(here, {"t/eval.csv": "image,label\nimg/a.png,pos\nimg/b.png,neg\n",
                 "t/img/a.png": png(ramp(2, 3)), "t/img/b.png": png(ramp(2, 3, start=1))})
    first = load(here, COLUMN).sha256
    assert first == load(here, COLUMN).sha256
    spec = spec_of(here / "t" / "eval.csv", images=ImageSpec(column="image"))
    assert inputs_sha256(spec, "eval", file_sha256(spec.eval)) == first  # reads the column itself
    resized = load(here, {"images": {"column": "image", "size": [4, 4]}}).sha256
    assert resized != first  # what the models see changes with size (and channels)
    _touch(here / "t" / "img" / "b.png", png(ramp(2, 3, start=2)))
    second = load(here, COLUMN).sha256
    assert second not in (first, resized)
    write(here, {"t/eval.csv": "review,label\ngood,pos\n"})  # text: the table holds the inputs
    assert load(here, TEXT).sha256 == file_sha256(here / "t" / "eval.csv")


def test_texts_are_read_as_written(here: Path, rotten: Path) -> None:
    write(here, {"t/eval.csv": 'review,label\nNA,pos\nnull,neg\n"  padded, with a comma ",pos\n'
                               "1.50,neg\n"})
    assert list(load(here, TEXT).texts) == ["NA", "null", "  padded, with a comma ", "1.50"]
    import csv

    with (rotten / "eval.csv").open(newline="", encoding="utf-8") as fh:
        rows = list(csv.DictReader(fh))
    table = load_table(spec_of(rotten / "eval.csv", text="text"))
    assert list(table.texts) == [r["text"] for r in rows]
    assert list(table.labels) == [r["label"] for r in rows]
    assert list(table.features.columns) == ["movie"]  # the text column is no feature


# ------------------------------------------------------------------- derived properties
def test_text_properties_hand_worked() -> None:
    texts = np.array(["It's GOOD -- really.", "a  film", "!!!", "café crème"], dtype=object)
    known = frozenset({"good", "film", "crème"})
    got = text_properties(texts, known)
    assert list(got.columns) == ["text_words", "text_characters", "oov_share"]
    assert list(got["text_words"]) == [4, 2, 1, 2]  # whitespace-separated: "--" counts
    assert list(got["text_characters"]) == [20, 7, 3, 10]
    # its words: it's good really / a film / (none) / café crème
    assert list(got["oov_share"]) == [2 / 3, 1 / 2, 0.0, 1 / 2]
    assert words("It's GOOD -- really.") == ["it's", "good", "really"]
    assert "oov_share" not in text_properties(texts)  # no training texts: no vocabulary


def test_image_properties_hand_worked_and_against_numpy() -> None:
    hand = np.array([[[[0.0, 1.0], [1.0, 1.0]]], [[[0.25, 0.25], [0.25, 0.25]]]])
    got = image_properties(hand)
    assert list(got["brightness"]) == [0.75, 0.25]
    assert list(got["contrast"]) == [pytest.approx(np.sqrt(3) / 4), 0.0]  # sqrt(0.1875)
    x = np.random.default_rng(0).random((5, 3, 4, 6)).astype(np.float32)
    got = image_properties(x)
    np.testing.assert_allclose(got["brightness"], x.astype(np.float64).mean(axis=(1, 2, 3)))
    np.testing.assert_allclose(got["contrast"], x.astype(np.float64).std(axis=(1, 2, 3)))


def test_the_oov_share_uses_the_training_texts(here: Path) -> None:
    write(here, {"t/eval.csv": "review,label\na good film,pos\n\"Bad, FILM!\",neg\nunseen words,pos\n",
                 "t/train.csv": "review,label\ngood film,pos\nbad acting,neg\n",
                 "t/p.csv": "p_neg,p_pos\n" + "0.4,0.6\n" * 3})
    raw = {"version": 1, "name": "inputs",
           "data": {"eval": "t/eval.csv", "train": "t/train.csv", "target": "label", "text": "review"},
           "teacher": {**MODEL, "predictions": "t/p.csv"}, "student": {**MODEL, "predictions": "t/p.csv"},
           "checks": {"acc": {"metric": "accuracy"}}}
    request = ArtifactRequest.of("data_tables", derived=True)
    tables = data_tables(SimpleNamespace(run=SuiteRun(suite_from_dict(raw, base_dir=here))), request)
    derived = tables.eval_features
    assert list(derived["oov_share"]) == [1 / 3, 0.0, 1.0]  # train knows good, film, bad, acting
    assert list(derived["text_words"]) == [3, 2, 2]
    assert vocabulary(["good film", "bad acting"]) == {"good", "film", "bad", "acting"}
    del raw["data"]["train"]  # no training table: no vocabulary to be out of
    tables = data_tables(SimpleNamespace(run=SuiteRun(suite_from_dict(raw, base_dir=here))), request)
    assert "oov_share" not in tables.eval_features
    assert list(tables.eval_features["text_characters"]) == [11, 10, 12]
