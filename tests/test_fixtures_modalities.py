"""The image (MNIST) and text (Rotten Tomatoes) fixture builders: layout, reloads, exports,
determinism and the metrics the examples rely on."""

from __future__ import annotations

import json
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

from fixtures import text, vision
from fixtures.build import _TORCHSCRIPT_DEPRECATION

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def mnist() -> Path:
    """The default MNIST build (built once, or reused from an earlier run)."""
    return vision.build()["mnist/train.csv"].parent


@pytest.fixture(scope="module")
def rotten() -> Path:
    """The default Rotten Tomatoes build (built once, or reused from an earlier run)."""
    return text.build()["rotten/train.csv"].parent


@pytest.fixture(scope="module")
def rebuilt(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Both datasets built again, from scratch, into another directory."""
    out = tmp_path_factory.mktemp("rebuilt")
    vision.build(out)
    text.build(out)
    return out


def _metrics(folder: Path) -> dict[str, dict[str, Any]]:
    return json.loads((folder / "manifest.json").read_text())["metrics"]


def _torchscript(path: Path) -> Any:
    import torch

    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", _TORCHSCRIPT_DEPRECATION, DeprecationWarning)
        return torch.jit.load(path, map_location="cpu")


def _exported(path: Path) -> tuple[Any, list[Any]]:
    import torch

    extra = {"classes": ""}
    program = torch.export.load(path, extra_files=extra)
    return program, json.loads(extra["classes"])


def _onnx(path: Path) -> tuple[Any, list[Any]]:
    import onnx
    import onnxruntime as ort

    props = {p.key: p.value for p in onnx.load(path).metadata_props}
    return ort.InferenceSession(path, providers=["CPUExecutionProvider"]), json.loads(props["classes"])


# ---------------------------------------------------------------------------------------------- MNIST

def test_mnist_tables_align_with_arrays_pngs_and_source(mnist: Path) -> None:
    from PIL import Image

    source_images, source_labels = vision._load_mnist()
    seen: list[str] = []
    for table, n in vision.TABLES.items():
        frame = pd.read_csv(mnist / f"{table}.csv")
        images = np.load(mnist / f"{table}.npy")
        assert list(frame.columns) == ["id", "digit", "image"]
        assert images.dtype == np.uint8 and images.shape == (n, 1, 28, 28)
        assert (frame["digit"].value_counts() == n // 10).all()  # stratified
        rows = frame["id"].str.removeprefix("mnist-").astype(int).to_numpy()
        np.testing.assert_array_equal(images, source_images[rows])
        np.testing.assert_array_equal(frame["digit"], source_labels[rows])
        assert (frame["image"] == [f"images/{table}/{id_}.png" for id_ in frame["id"]]).all()
        for i, image in enumerate(frame["image"]):
            with Image.open(mnist / image) as png:
                assert png.mode == "L"
                np.testing.assert_array_equal(np.asarray(png), images[i, 0])
        assert len(list((mnist / "images" / table).glob("*.png"))) == n
        seen += frame["id"].tolist()
    assert len(set(seen)) == 5000


def test_mnist_models_reload_and_agree_with_their_onnx_exports(mnist: Path) -> None:
    import torch

    X = np.load(mnist / "eval.npy").astype(np.float32) / 255.0
    teacher = _torchscript(mnist / "teacher.pt")
    program, student_classes = _exported(mnist / "student.pt2")
    student = program.module()
    assert teacher.classes == student_classes == list(range(10))
    with torch.no_grad():
        torch_logits = {"teacher": teacher(torch.from_numpy(X)).numpy(),
                        "student": student(torch.from_numpy(X)).numpy()}
        # float64 in, as ART's HopSkipJump feeds it: the modules cast themselves
        np.testing.assert_allclose(teacher(torch.from_numpy(X).double()).numpy(),
                                   torch_logits["teacher"], rtol=0, atol=1e-6)
        assert student(torch.from_numpy(X[:1])).shape == (1, 10)
    digits = pd.read_csv(mnist / "eval.csv")["digit"].to_numpy()
    metrics = _metrics(mnist)
    for stem, logits in torch_logits.items():
        session, classes = _onnx(mnist / f"{stem}.onnx")
        (inp,), (out,) = session.get_inputs(), session.get_outputs()
        assert (inp.name, inp.type, inp.shape[1:], out.name) == ("image", "tensor(float)", [1, 28, 28],
                                                                 "logits")
        assert isinstance(inp.shape[0], str) and classes == list(range(10))
        (onnx_logits,) = session.run(["logits"], {"image": X})
        np.testing.assert_allclose(onnx_logits, logits, rtol=0, atol=1e-4)
        assert np.mean(logits.argmax(axis=1) == digits) == metrics[stem]["accuracy"]


def test_mnist_metrics(mnist: Path) -> None:
    metrics = _metrics(mnist)
    teacher, student = metrics["teacher"], metrics["student"]
    assert teacher["accuracy"] >= 0.95
    assert 0.85 <= student["accuracy"] < teacher["accuracy"]
    assert student["agreement"] < 1.0
    assert student["parameters"] * 10 <= teacher["parameters"]


def test_mnist_build_is_deterministic(mnist: Path, rebuilt: Path) -> None:
    import torch

    again = rebuilt / "mnist"
    for table in vision.TABLES:
        assert (mnist / f"{table}.csv").read_bytes() == (again / f"{table}.csv").read_bytes()
        np.testing.assert_array_equal(np.load(mnist / f"{table}.npy"), np.load(again / f"{table}.npy"))
    teachers = [_torchscript(d / "teacher.pt").state_dict() for d in (mnist, again)]
    students = [_exported(d / "student.pt2")[0].state_dict for d in (mnist, again)]
    for first, second in (teachers, students):
        assert first.keys() == second.keys() and first
        for name in first:
            assert torch.equal(first[name], second[name]), name


# ---------------------------------------------------------------------------------- Rotten Tomatoes

def test_rotten_tables(rotten: Path) -> None:
    tables = {t: pd.read_csv(rotten / f"{t}.csv") for t in ("train", "eval", "holdout")}
    assert [len(t) for t in tables.values()] == [2919, 973, 974]
    for frame in tables.values():
        assert list(frame.columns) == ["text", "label", "movie"]
        assert frame["label"].value_counts(normalize=True)["fresh"] == pytest.approx(2455 / 4866, abs=2e-3)
        assert frame["text"].notna().all() and frame["movie"].notna().all()
    assert pd.concat(tables.values())["label"].value_counts().to_dict() == {"fresh": 2455, "rotten": 2411}


def _bert_logits(model_dir: Path, texts: list[str]) -> np.ndarray:
    """Logits of the saved model, reloaded offline with its own tokenizer."""
    import torch
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    model = AutoModelForSequenceClassification.from_pretrained(model_dir, local_files_only=True)
    tokenizer = AutoTokenizer.from_pretrained(model_dir, local_files_only=True)
    assert model.config.id2label == {0: "fresh", 1: "rotten"}
    assert model.config.label2id == {"fresh": 0, "rotten": 1}
    encoded = tokenizer(texts, padding=True, truncation=True, return_tensors="pt")
    assert list(encoded) == ["input_ids", "attention_mask"] and encoded["input_ids"].shape[1] <= 64
    with torch.no_grad():
        return model(**encoded).logits.numpy()


def test_rotten_models_reload_offline_and_the_student_matches_its_onnx_export(rotten: Path) -> None:
    from transformers import AutoTokenizer

    for stem in ("teacher", "student"):
        assert sorted(p.name for p in (rotten / stem).iterdir()) == sorted(text._MODEL_FILES)
    assert not list(rotten.rglob("pytorch_model.bin"))
    frame = pd.read_csv(rotten / "eval.csv")
    texts, metrics = frame["text"].tolist(), _metrics(rotten)
    logits = {stem: _bert_logits(rotten / stem, texts) for stem in ("teacher", "student")}
    for stem, values in logits.items():
        accuracy = np.mean(np.asarray(text.LABELS)[values.argmax(axis=1)] == frame["label"])
        assert accuracy == pytest.approx(metrics[stem]["accuracy"], abs=2 / len(frame))
    session, classes = _onnx(rotten / "student.onnx")
    assert classes == ["fresh", "rotten"]
    assert [(i.name, i.type) for i in session.get_inputs()] == [("input_ids", "tensor(int64)"),
                                                                ("attention_mask", "tensor(int64)")]
    assert [o.name for o in session.get_outputs()] == ["logits"]
    tokenizer = AutoTokenizer.from_pretrained(rotten / "student_tokenizer", local_files_only=True)
    for rows in (slice(0, 1), slice(0, 7), slice(None)):  # several batch sizes and lengths
        feeds = dict(tokenizer(texts[rows], padding=True, truncation=True, return_tensors="np"))
        (onnx_logits,) = session.run(["logits"], feeds)
        np.testing.assert_allclose(onnx_logits, logits["student"][rows], rtol=0, atol=1e-4)


def test_rotten_metrics(rotten: Path) -> None:
    metrics = _metrics(rotten)
    teacher, student = metrics["teacher"], metrics["student"]
    assert teacher["accuracy"] >= 0.6
    assert abs(student["accuracy"] - teacher["accuracy"]) <= 0.03
    assert 0.75 <= student["agreement"] <= 0.95  # as accurate, yet often disagreeing
    assert student["parameters"] < teacher["parameters"]


def test_rotten_build_is_deterministic(rotten: Path, rebuilt: Path) -> None:
    import torch
    from safetensors.torch import load_file

    again = rebuilt / "rotten"
    for name in ("train.csv", "eval.csv", "holdout.csv", "student_tokenizer/tokenizer.json"):
        assert (rotten / name).read_bytes() == (again / name).read_bytes(), name
    for stem in ("teacher", "student"):
        first, second = (load_file(d / stem / "model.safetensors") for d in (rotten, again))
        assert first.keys() == second.keys() and first
        for name in first:
            assert torch.equal(first[name], second[name]), f"{stem}: {name}"
