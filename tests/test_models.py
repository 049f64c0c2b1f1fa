"""Model adapters (audit/models/) and label encoding (audit/data/).

Real fixture models (skops, ONNX) are compared with an independent computation: skops' own
``load`` + ``predict_proba`` on a frame read straight from the CSV. Loaded models are shared
through module-scoped fixtures (the skops teacher is 17 MB).
"""

from __future__ import annotations

import hashlib
import pickle
import re
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
import skops.io as sio
import yaml

from audit.data import LabelEncoding, Table, load_table
from audit.errors import DataError, ModelError, display_path
from audit.models import LoadedModel, check_probabilities, load_model
from audit.runner import SuiteRun
from audit.suite import DataSpec, ModelSpec, load_suite
from fixtures.synthetic import write_pair, write_suite

TREE = "sklearn.tree._tree.Tree"


# --------------------------------------------------------------------------- shared fixtures
@pytest.fixture(scope="module")
def arrests_table(arrests: Path) -> Table:
    return load_table(DataSpec(eval=arrests / "eval.csv", target="released",
                               train=arrests / "train.csv"), "eval")


@pytest.fixture(scope="module")
def arrests_train(arrests: Path) -> Table:
    return load_table(DataSpec(eval=arrests / "eval.csv", target="released",
                               train=arrests / "train.csv"), "train")


@pytest.fixture(scope="module")
def digits_table(digits: Path) -> Table:
    return load_table(DataSpec(eval=digits / "eval.csv", target="digit"))


@pytest.fixture(scope="module")
def arrests_teacher(arrests: Path) -> LoadedModel:
    return load_model(ModelSpec(kind="skops", path=arrests / "teacher.skops",
                                trusted_types=(TREE,)), "teacher")


def _csv_features(path: Path, target: str) -> pd.DataFrame:
    """The feature frame read straight from the file, without audit.data."""
    return pd.read_csv(path).drop(columns=[target])


def _skops_reference(path: Path) -> Any:
    """The estimator as skops itself loads it (trusting exactly what the file declares)."""
    return sio.load(path, trusted=sio.get_untrusted_types(file=path))


# --------------------------------------------------------------------------- skops
def test_skops_teacher_is_refused_until_its_tree_type_is_trusted(arrests: Path) -> None:
    path = arrests / "teacher.skops"
    with pytest.raises(ModelError) as info:
        load_model(ModelSpec(kind="skops", path=path), "teacher")
    assert str(info.value) == (
        f"teacher ({display_path(path)}): the file holds types skops does not trust by default:\n"
        f"      - {TREE}\n"
        "  Review them; if you trust them, list them in the suite under teacher.trusted_types "
        "(use the mapping form: teacher: {skops: teacher.skops, trusted_types: [...]}).")


def test_skops_trusting_another_type_still_refuses_the_tree(arrests: Path) -> None:
    path = arrests / "teacher.skops"
    spec = ModelSpec(kind="skops", path=path, trusted_types=("numpy.float64",))
    with pytest.raises(ModelError, match=rf"^teacher \({re.escape(display_path(path))}\): the file "
                                         rf"holds types skops does not trust by default:\n"
                                         rf"      - {re.escape(TREE)}\n  Review them"):
        load_model(spec, "teacher")


def test_skops_teacher_predicts_what_skops_itself_predicts(arrests: Path, arrests_table: Table,
                                                           arrests_teacher: LoadedModel) -> None:
    path = arrests / "teacher.skops"
    reference = sio.load(path, trusted=[TREE])
    expected = reference.predict_proba(_csv_features(arrests / "eval.csv", "released"))
    got = arrests_teacher.predict_proba(arrests_table)
    np.testing.assert_array_equal(got, expected)
    assert arrests_teacher.classes == tuple(reference.classes_.tolist()) == ("No", "Yes")
    assert arrests_teacher.sha256 == hashlib.sha256(path.read_bytes()).hexdigest()
    assert arrests_teacher.size_bytes == path.stat().st_size
    assert arrests_teacher.warnings == ()
    assert arrests_teacher.label == f"teacher ({display_path(path)})"


def test_skops_with_only_default_trusted_types_loads_without_a_list(arrests: Path,
                                                                     arrests_table: Table) -> None:
    path = arrests / "student.skops"
    assert sio.get_untrusted_types(file=path) == []
    model = load_model(ModelSpec(kind="skops", path=path), "student")
    np.testing.assert_array_equal(
        model.predict_proba(arrests_table),
        _skops_reference(path).predict_proba(_csv_features(arrests / "eval.csv", "released")))


def test_skops_classes_in_the_spec_override_classes_(arrests: Path) -> None:
    model = load_model(ModelSpec(kind="skops", path=arrests / "student.skops",
                                 classes=("no", "yes")), "student")
    assert model.classes == ("no", "yes")


def test_a_file_that_is_not_skops_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "broken.skops"
    path.write_bytes(b"not a zip file")
    with pytest.raises(ModelError, match=rf"^student \({re.escape(display_path(path))}\): not a "
                                         r"readable skops file \(BadZipFile: "):
        load_model(ModelSpec(kind="skops", path=path), "student")


# --------------------------------------------------------------------------- ONNX
def test_onnx_arrests_student_matches_its_sklearn_original(arrests: Path,
                                                           arrests_table: Table) -> None:
    """One input per column, strings and int64, matched to columns by name."""
    model = load_model(ModelSpec(kind="onnx", path=arrests / "student.onnx"), "student")
    assert model.classes == ("No", "Yes")  # from the ONNX metadata
    expected = _skops_reference(arrests / "student.skops").predict_proba(
        _csv_features(arrests / "eval.csv", "released"))
    got = model.predict_proba(arrests_table)
    assert got.shape == (1568, 2) and got.dtype == np.float64
    np.testing.assert_allclose(got, expected, rtol=0, atol=1e-5)
    assert model.sha256 == hashlib.sha256((arrests / "student.onnx").read_bytes()).hexdigest()


def test_onnx_digits_student_single_float_input_matches(digits: Path,
                                                        digits_table: Table) -> None:
    model = load_model(ModelSpec(kind="onnx", path=digits / "student.onnx"), "student")
    assert model.classes == tuple(range(10))
    expected = _skops_reference(digits / "student.skops").predict_proba(
        _csv_features(digits / "eval.csv", "digit"))
    np.testing.assert_allclose(model.predict_proba(digits_table), expected, rtol=0, atol=1e-5)


def test_onnx_classes_in_the_spec_override_the_metadata(arrests: Path) -> None:
    model = load_model(ModelSpec(kind="onnx", path=arrests / "student.onnx",
                                 classes=("no", "yes")), "student")
    assert model.classes == ("no", "yes")


@pytest.fixture(scope="module")
def tiny_onnx(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """A two-feature logistic regression as ONNX: without metadata, with bad metadata, ZipMap."""
    import onnx
    from onnx.helper import set_model_props
    from skl2onnx import convert_sklearn
    from skl2onnx.common.data_types import FloatTensorType
    from sklearn.linear_model import LogisticRegression

    folder = tmp_path_factory.mktemp("onnx")
    rng = np.random.default_rng(0)
    X = rng.normal(size=(200, 2))
    y = (X[:, 0] + X[:, 1] > 0).astype(np.int64)
    lr = LogisticRegression().fit(X, y)
    types = [("X", FloatTensorType([None, 2]))]
    opset = {"": 17, "ai.onnx.ml": 3}
    out: dict[str, Any] = {"model": lr}
    plain = convert_sklearn(lr, initial_types=types, target_opset=opset,
                            options={id(lr): {"zipmap": False}})
    out["plain"] = folder / "plain.onnx"
    out["plain"].write_bytes(plain.SerializeToString())
    for name, value in {"bad_json": "[No, Yes", "not_list": '"NoYes"', "one": '["only"]'}.items():
        model = onnx.load_from_string(plain.SerializeToString())
        set_model_props(model, {"classes": value})
        out[name] = folder / f"{name}.onnx"
        out[name].write_bytes(model.SerializeToString())
    zipmap = convert_sklearn(lr, initial_types=types, target_opset=opset)
    out["zipmap"] = folder / "zipmap.onnx"
    out["zipmap"].write_bytes(zipmap.SerializeToString())
    out["csv"] = folder / "eval.csv"
    pd.DataFrame({"a": X[:20, 0], "b": X[:20, 1], "y": y[:20]}).to_csv(out["csv"], index=False)
    return out


def test_onnx_without_metadata_or_classes_says_how_to_name_them(tiny_onnx: dict[str, Any]) -> None:
    path = tiny_onnx["plain"]
    with pytest.raises(ModelError) as info:
        load_model(ModelSpec(kind="onnx", path=path), "student")
    assert str(info.value) == (
        f"student ({display_path(path)}): cannot tell the class labels; add classes: [...] to the "
        "model in the suite, or store a JSON list under the ONNX metadata key 'classes'")


def test_onnx_without_metadata_works_with_classes(tiny_onnx: dict[str, Any]) -> None:
    table = load_table(DataSpec(eval=tiny_onnx["csv"], target="y"))
    model = load_model(ModelSpec(kind="onnx", path=tiny_onnx["plain"], classes=(0, 1)), "student")
    expected = tiny_onnx["model"].predict_proba(table.features.to_numpy())
    np.testing.assert_allclose(model.predict_proba(table), expected, rtol=0, atol=1e-5)


def test_onnx_zipmap_output_is_read_in_class_order(tiny_onnx: dict[str, Any]) -> None:
    table = load_table(DataSpec(eval=tiny_onnx["csv"], target="y"))
    model = load_model(ModelSpec(kind="onnx", path=tiny_onnx["zipmap"], classes=(0, 1)), "student")
    expected = tiny_onnx["model"].predict_proba(table.features.to_numpy())
    np.testing.assert_allclose(model.predict_proba(table), expected, rtol=0, atol=1e-5)


@pytest.mark.parametrize(("name", "shown"), [("bad_json", "'[No, Yes'"),
                                             ("not_list", "'\"NoYes\"'"),
                                             ("one", "'[\"only\"]'")])
def test_onnx_classes_metadata_must_be_a_json_list(tiny_onnx: dict[str, Any], name: str,
                                                   shown: str) -> None:
    path = tiny_onnx[name]
    with pytest.raises(ModelError) as info:
        load_model(ModelSpec(kind="onnx", path=path), "student")
    assert str(info.value) == (
        f"student ({display_path(path)}): metadata 'classes' is {shown}, not a JSON list of at "
        "least two class labels (strings or integers); fix the metadata or add classes: [...] to "
        "the model in the suite")


def test_onnx_inputs_that_are_not_columns_are_named(arrests: Path, digits_table: Table) -> None:
    model = load_model(ModelSpec(kind="onnx", path=arrests / "student.onnx"), "student")
    with pytest.raises(ModelError) as info:
        model.predict_proba(digits_table)
    assert str(info.value) == (
        f"student ({display_path(arrests / 'student.onnx')}): the model's inputs "
        "['colour', 'year', 'age', 'sex', 'employed', 'citizen', 'checks'] are not feature "
        f"columns of {display_path(digits_table.path)} (feature columns: "
        f"{', '.join(digits_table.features.columns)}); name the model's inputs after the "
        "columns, or export a single input that takes all feature columns")


def test_onnx_one_missing_column_is_named(arrests: Path) -> None:
    features = ("colour", "year", "sex", "employed", "citizen", "checks")  # no age
    table = load_table(DataSpec(eval=arrests / "eval.csv", target="released", features=features))
    model = load_model(ModelSpec(kind="onnx", path=arrests / "student.onnx"), "student")
    with pytest.raises(ModelError, match=r"the model's inputs \['age'\] are not feature columns "
                                         r"of .*eval\.csv \(feature columns: colour, year, sex, "
                                         r"employed, citizen, checks\); name the model's inputs"):
        model.predict_proba(table)


def test_onnx_single_input_width_must_match_the_features(digits: Path) -> None:
    features = tuple(f"pixel_0_{i}" for i in range(8))
    table = load_table(DataSpec(eval=digits / "eval.csv", target="digit", features=features))
    model = load_model(ModelSpec(kind="onnx", path=digits / "student.onnx"), "student")
    with pytest.raises(ModelError) as info:
        model.predict_proba(table)
    assert str(info.value) == (
        f"student ({display_path(digits / 'student.onnx')}): the model's input takes columns "
        f"that are not feature columns of {display_path(table.path)}: pixel_1_0, pixel_1_1, "
        "pixel_1_2, pixel_1_3, pixel_1_4, ... (56 in all) (from its 'features' metadata); "
        "include them in data.features")


@pytest.mark.parametrize(("value", "shown"), [(22.5, "22.5"), (np.nan, "nan")])
def test_onnx_int_input_refuses_fractional_or_missing_values(arrests: Path, tmp_path: Path,
                                                             value: float, shown: str) -> None:
    frame = pd.read_csv(arrests / "eval.csv").head(5)
    frame["age"] = frame["age"].astype(float)
    frame.loc[2, "age"] = value
    frame.to_csv(tmp_path / "eval.csv", index=False)
    table = load_table(DataSpec(eval=tmp_path / "eval.csv", target="released"))
    model = load_model(ModelSpec(kind="onnx", path=arrests / "student.onnx"), "student")
    with pytest.raises(ModelError) as info:
        model.predict_proba(table)
    assert str(info.value) == (
        f"student ({display_path(arrests / 'student.onnx')}): column 'age' of "
        f"{display_path(tmp_path / 'eval.csv')} holds {shown} at data row 3, but the model's input "
        "'age' is tensor(int64), which takes whole numbers; fix the data or re-export the model "
        "with a matching input type")


def test_onnx_int_input_accepts_whole_floats(arrests: Path, arrests_table: Table,
                                             tmp_path: Path) -> None:
    frame = pd.read_csv(arrests / "eval.csv")
    frame["age"] = frame["age"].astype(float)  # 22.0 in the file
    frame.to_csv(tmp_path / "eval.csv", index=False)
    table = load_table(DataSpec(eval=tmp_path / "eval.csv", target="released"))
    model = load_model(ModelSpec(kind="onnx", path=arrests / "student.onnx"), "student")
    np.testing.assert_array_equal(model.predict_proba(table), model.predict_proba(arrests_table))


def test_onnx_single_float_input_refuses_text_columns(digits: Path, tmp_path: Path) -> None:
    frame = pd.read_csv(digits / "eval.csv").head(4)
    frame["pixel_0_3"] = frame["pixel_0_3"].astype(str)
    frame.loc[1, "pixel_0_3"] = "dark"
    frame.to_csv(tmp_path / "eval.csv", index=False)
    table = load_table(DataSpec(eval=tmp_path / "eval.csv", target="digit"))
    model = load_model(ModelSpec(kind="onnx", path=digits / "student.onnx"), "student")
    with pytest.raises(ModelError) as info:
        model.predict_proba(table)
    assert str(info.value) == (
        f"student ({display_path(digits / 'student.onnx')}): the model's single input takes all "
        "feature columns as one tensor(float) matrix, but column 'pixel_0_3' of "
        f"{display_path(tmp_path / 'eval.csv')} holds 'dark' at data row 2; leave it out with "
        "data.features or export one input per column")


def test_a_file_that_is_not_onnx_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "broken.onnx"
    path.write_bytes(b"\x00garbage")
    with pytest.raises(ModelError, match=rf"^student \({re.escape(display_path(path))}\): "
                                         r"onnxruntime cannot open the model \(.+\)$"):
        load_model(ModelSpec(kind="onnx", path=path), "student")


# --------------------------------------------------------------------------- callable
def _write(folder: Path, name: str, source: str) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / name
    path.write_text(source)
    return path


SIGMOID = """\
import numpy as np

def predict(X):
    p = 1 / (1 + np.exp(-SCALE * X["x"].to_numpy()))
    return np.column_stack([1 - p, p])

SCALE = {scale}
"""


@pytest.fixture
def xy_table(tmp_path: Path) -> Table:
    pd.DataFrame({"x": [-2.0, -0.5, 0.0, 1.0, 3.0], "label": ["No", "No", "Yes", "Yes", "Yes"]}
                 ).to_csv(tmp_path / "xy.csv", index=False)
    return load_table(DataSpec(eval=tmp_path / "xy.csv", target="label"))


def _sigmoid(x: np.ndarray, scale: float) -> np.ndarray:
    p = 1 / (1 + np.exp(-scale * x))
    return np.column_stack([1 - p, p])


def test_callable_function_is_found_next_to_the_suite(tmp_path: Path, xy_table: Table) -> None:
    _write(tmp_path / "suite_dir", "scorer_a.py", SIGMOID.format(scale=1.0))
    spec = ModelSpec(kind="callable", target="scorer_a:predict", classes=("No", "Yes"),
                     base_dir=tmp_path / "suite_dir")
    model = load_model(spec, "student")
    assert model.classes == ("No", "Yes")
    assert model.size_bytes is None and model.warnings == ()
    assert model.label == "student (callable scorer_a:predict)"
    np.testing.assert_allclose(model.predict_proba(xy_table),
                               _sigmoid(xy_table.features["x"].to_numpy(), 1.0))


def test_callable_fingerprint_follows_the_source_and_new_code_runs(tmp_path: Path,
                                                                   xy_table: Table) -> None:
    path = _write(tmp_path / "suite_dir", "scorer_b.py", SIGMOID.format(scale=1.0))
    spec = ModelSpec(kind="callable", target="scorer_b:predict", classes=("No", "Yes"),
                     base_dir=tmp_path / "suite_dir")
    first = load_model(spec, "student")
    again = load_model(spec, "student")
    assert first.sha256 == again.sha256 == hashlib.sha256(
        b"scorer_b:predict" + path.read_bytes()).hexdigest()
    path.write_text(SIGMOID.format(scale=2))  # same length: a stale .pyc would go unnoticed
    changed = load_model(spec, "student")
    assert changed.sha256 != first.sha256
    x = xy_table.features["x"].to_numpy()
    np.testing.assert_allclose(changed.predict_proba(xy_table), _sigmoid(x, 2.0))
    np.testing.assert_allclose(first.predict_proba(xy_table), _sigmoid(x, 1.0))


def test_callable_modules_with_one_name_in_two_suite_folders_stay_apart(tmp_path: Path,
                                                                        xy_table: Table) -> None:
    """Python caches modules by name; each suite must still get its own model.py."""
    models = []
    for folder, scale in (("one", 1.0), ("two", 3.0)):
        _write(tmp_path / folder, "model.py", SIGMOID.format(scale=scale))
        models.append(load_model(ModelSpec(kind="callable", target="model:predict",
                                           classes=("No", "Yes"), base_dir=tmp_path / folder),
                                 "student"))
    x = xy_table.features["x"].to_numpy()
    np.testing.assert_allclose(models[0].predict_proba(xy_table), _sigmoid(x, 1.0))
    np.testing.assert_allclose(models[1].predict_proba(xy_table), _sigmoid(x, 3.0))
    assert models[0].sha256 != models[1].sha256


def test_callable_object_with_predict_proba_and_classes_(tmp_path: Path, xy_table: Table) -> None:
    _write(tmp_path, "scorer_obj.py", """\
import numpy as np

class Model:
    classes_ = np.array(["No", "Yes"])

    def predict_proba(self, X):
        p = np.full(len(X), 0.25)
        return np.column_stack([1 - p, p])

model = Model()
""")
    model = load_model(ModelSpec(kind="callable", target="scorer_obj:model", base_dir=tmp_path),
                       "teacher")
    assert model.classes == ("No", "Yes")
    assert all(type(c) is str for c in model.classes)
    np.testing.assert_allclose(model.predict_proba(xy_table), [[0.75, 0.25]] * 5)


def test_callable_in_a_local_package(tmp_path: Path, xy_table: Table) -> None:
    _write(tmp_path / "mypkg", "__init__.py", "")
    _write(tmp_path / "mypkg", "helpers.py", "SCALE = 0.5\n")
    _write(tmp_path / "mypkg", "scoring.py", """\
import numpy as np
from .helpers import SCALE

def predict(X):
    p = 1 / (1 + np.exp(-SCALE * X["x"].to_numpy()))
    return np.column_stack([1 - p, p])
""")
    model = load_model(ModelSpec(kind="callable", target="mypkg.scoring:predict",
                                 classes=("No", "Yes"), base_dir=tmp_path), "student")
    np.testing.assert_allclose(model.predict_proba(xy_table),
                               _sigmoid(xy_table.features["x"].to_numpy(), 0.5))


def test_callable_from_an_installed_module(xy_table: Table) -> None:
    """Not next to the suite: looked up on sys.path (here a function without classes_)."""
    spec = ModelSpec(kind="callable", target="fixtures.synthetic:teacher_probs", classes=(0, 1))
    model = load_model(spec, "teacher")
    import fixtures.synthetic

    source = Path(fixtures.synthetic.__file__).read_bytes()
    assert model.sha256 == hashlib.sha256(spec.target.encode() + source).hexdigest()


def test_callable_missing_module(tmp_path: Path) -> None:
    spec = ModelSpec(kind="callable", target="no_such_scorer:predict", classes=("No", "Yes"),
                     base_dir=tmp_path)
    with pytest.raises(ModelError) as info:
        load_model(spec, "student")
    assert str(info.value) == (
        "student (callable no_such_scorer:predict): cannot import module 'no_such_scorer': not "
        f"found next to the suite ({display_path(tmp_path)}) or on sys.path; put "
        "no_such_scorer.py next to the suite or install its package")


def test_callable_missing_attribute_suggests_the_close_name(tmp_path: Path) -> None:
    path = _write(tmp_path, "scorer_c.py", SIGMOID.format(scale=1.0))
    spec = ModelSpec(kind="callable", target="scorer_c:predcit", classes=("No", "Yes"),
                     base_dir=tmp_path)
    with pytest.raises(ModelError) as info:
        load_model(spec, "student")
    assert str(info.value) == (
        f"student (callable scorer_c:predcit): module 'scorer_c' ({display_path(path)}) has no "
        "attribute 'predcit' (did you mean 'predict'?); define it or fix the name after ':'")


def test_callable_module_that_fails_to_import(tmp_path: Path) -> None:
    _write(tmp_path, "scorer_d.py", "import numpy\nraise RuntimeError('no GPU here')\n")
    _write(tmp_path, "scorer_e.py", "import not_installed_dependency_xyz\n")
    with pytest.raises(ModelError) as info:
        load_model(ModelSpec(kind="callable", target="scorer_d:f", classes=(0, 1),
                             base_dir=tmp_path), "student")
    assert str(info.value) == ("student (callable scorer_d:f): importing module 'scorer_d' "
                               "failed: RuntimeError: no GPU here")
    with pytest.raises(ModelError) as info:
        load_model(ModelSpec(kind="callable", target="scorer_e:f", classes=(0, 1),
                             base_dir=tmp_path), "student")
    assert str(info.value) == ("student (callable scorer_e:f): importing module 'scorer_e' failed: "
                               "ModuleNotFoundError: No module named "
                               "'not_installed_dependency_xyz'")


def test_callable_needs_classes_when_the_function_has_no_classes_(tmp_path: Path) -> None:
    _write(tmp_path, "scorer_f.py", SIGMOID.format(scale=1.0))
    with pytest.raises(ModelError) as info:
        load_model(ModelSpec(kind="callable", target="scorer_f:predict", base_dir=tmp_path),
                   "student")
    assert str(info.value) == (
        "student (callable scorer_f:predict): cannot tell the class labels (function has no "
        "classes_); add classes: [...] to the model in the suite, in the order of the probability "
        "columns")


def test_callable_that_is_not_callable(tmp_path: Path) -> None:
    _write(tmp_path, "scorer_g.py", "THRESHOLD = 0.5\n")
    with pytest.raises(ModelError) as info:
        load_model(ModelSpec(kind="callable", target="scorer_g:THRESHOLD", classes=(0, 1),
                             base_dir=tmp_path), "student")
    assert str(info.value) == ("student (callable scorer_g:THRESHOLD): THRESHOLD is a float, "
                               "neither a function nor a model with predict_proba")


def test_callable_that_crashes_or_returns_garbage(tmp_path: Path, xy_table: Table) -> None:
    _write(tmp_path, "scorer_h.py", """\
import numpy as np

def crash(X):
    raise KeyError("x2")

def wide(X):
    return np.full((len(X), 3), 1 / 3)
""")
    crash = load_model(ModelSpec(kind="callable", target="scorer_h:crash", classes=("No", "Yes"),
                                 base_dir=tmp_path), "student")
    with pytest.raises(ModelError) as info:
        crash.predict_proba(xy_table)
    assert str(info.value) == (f"student (callable scorer_h:crash) failed to predict on "
                               f"{display_path(xy_table.path)}: KeyError: 'x2'")
    wide = load_model(ModelSpec(kind="callable", target="scorer_h:wide", classes=("No", "Yes"),
                                base_dir=tmp_path), "student")
    with pytest.raises(ModelError) as info:
        wide.predict_proba(xy_table)
    assert str(info.value) == ("student (callable scorer_h:wide) returned shape (5, 3); expected "
                               "(5, 2) class probabilities (one row per data row, one column per "
                               "class)")


# --------------------------------------------------------------------------- predictions
def test_predictions_file_reproduces_the_teacher(arrests: Path, arrests_table: Table,
                                                 arrests_teacher: LoadedModel) -> None:
    path = arrests / "teacher_predictions.csv"
    model = load_model(ModelSpec(kind="predictions", path=path, columns=("p_No", "p_Yes"),
                                 classes=("No", "Yes")), "teacher")
    np.testing.assert_allclose(model.predict_proba(arrests_table),
                               arrests_teacher.predict_proba(arrests_table), rtol=0, atol=1e-15)
    # the model is the whole file: its fingerprint is the file's
    assert model.sha256 == hashlib.sha256(path.read_bytes()).hexdigest()


def test_predictions_must_have_one_row_per_eval_row(arrests: Path, digits_table: Table) -> None:
    path = arrests / "teacher_predictions.csv"
    model = load_model(ModelSpec(kind="predictions", path=path, columns=("p_No", "p_Yes"),
                                 classes=("No", "Yes")), "teacher")
    with pytest.raises(ModelError) as info:
        model.predict_proba(digits_table)
    assert str(info.value) == (
        f"teacher ({display_path(path)}): has 1568 rows but {display_path(digits_table.path)} has "
        f"{digits_table.n_rows}; predictions must follow the eval rows one to one")


def test_predictions_are_not_usable_on_the_train_table(arrests: Path,
                                                       arrests_train: Table) -> None:
    path = arrests / "teacher_predictions.csv"
    model = load_model(ModelSpec(kind="predictions", path=path, columns=("p_No", "p_Yes"),
                                 classes=("No", "Yes")), "teacher")
    with pytest.raises(ModelError) as info:
        model.predict_proba(arrests_train)
    assert str(info.value) == (
        f"teacher ({display_path(path)}): precomputed predictions cover the eval table only, not "
        f"the train table ({display_path(arrests_train.path)}); checks on it need a model that "
        "can predict (skops, onnx or callable)")


def test_predictions_missing_column_suggests_the_close_one(arrests: Path) -> None:
    path = arrests / "teacher_predictions.csv"
    with pytest.raises(ModelError) as info:
        load_model(ModelSpec(kind="predictions", path=path, columns=("p_No", "p_yes"),
                             classes=("No", "Yes")), "teacher")
    assert str(info.value) == (
        f"teacher ({display_path(path)}): probability column 'p_yes' (teacher.columns) not found; "
        "did you mean 'p_Yes'? (columns: p_No, p_Yes)")


def test_predictions_with_text_cells(tmp_path: Path) -> None:
    path = tmp_path / "preds.csv"
    path.write_text("p0,p1\n0.5,0.5\n0.2,oops\n")
    with pytest.raises(ModelError) as info:
        load_model(ModelSpec(kind="predictions", path=path, columns=("p0", "p1"),
                             classes=(0, 1)), "student")
    assert str(info.value) == (f"student ({display_path(path)}): column 'p1' holds 'oops' at data "
                               "row 2; every cell must be a probability (a number in [0, 1])")


def test_predictions_columns_and_classes_must_pair_up(tmp_path: Path) -> None:
    path = tmp_path / "preds.csv"
    path.write_text("p0,p1\n0.5,0.5\n")
    with pytest.raises(ModelError) as info:
        load_model(ModelSpec(kind="predictions", path=path, columns=("p0", "p1"),
                             classes=(0, 1, 2)), "student")
    assert str(info.value) == (f"student ({display_path(path)}): 2 columns ['p0', 'p1'] but 3 "
                               "classes [0, 1, 2]; give one probability column per class, in the "
                               "same order")


def test_predictions_sharing_a_file_get_distinct_cache_identities(tmp_path: Path) -> None:
    """The cache identity keys the prediction cache: two column selections must not collide,
    while the provenance hash stays the file's own."""
    path = tmp_path / "both.csv"
    path.write_text("t0,t1,s0,s1\n0.9,0.1,0.6,0.4\n0.2,0.8,0.3,0.7\n")
    teacher = load_model(ModelSpec(kind="predictions", path=path, columns=("t0", "t1"),
                                   classes=(0, 1)), "teacher")
    student = load_model(ModelSpec(kind="predictions", path=path, columns=("s0", "s1"),
                                   classes=(0, 1)), "student")
    reordered = load_model(ModelSpec(kind="predictions", path=path, columns=("t1", "t0"),
                                     classes=(1, 0)), "teacher")
    assert len({teacher.cache_identity, student.cache_identity, reordered.cache_identity}) == 3
    assert teacher.sha256 == student.sha256 == hashlib.sha256(path.read_bytes()).hexdigest()


# --------------------------------------------------------------------------- pickle
@pytest.mark.parametrize("suffix", [".pkl", ".joblib"])
def test_pickle_loads_with_trust_and_carries_a_warning(tmp_path: Path, xy_table: Table,
                                                       suffix: str) -> None:
    from sklearn.linear_model import LogisticRegression

    lr = LogisticRegression().fit(xy_table.features, xy_table.labels)
    path = tmp_path / f"model{suffix}"
    if suffix == ".joblib":
        import joblib

        joblib.dump(lr, path)
    else:
        path.write_bytes(pickle.dumps(lr))
    model = load_model(ModelSpec(kind="pickle", path=path, trust=True), "student")
    assert model.classes == ("No", "Yes")
    assert model.warnings == (
        f"student was loaded from a pickle ({display_path(path)}) because the suite set trust: "
        "true; unpickling can run arbitrary code",)
    np.testing.assert_allclose(model.predict_proba(xy_table), lr.predict_proba(xy_table.features))
    assert model.sha256 == hashlib.sha256(path.read_bytes()).hexdigest()


def test_pickle_without_trust_is_refused_before_reading(tmp_path: Path) -> None:
    path = tmp_path / "model.pkl"
    path.write_bytes(b"never unpickled")
    with pytest.raises(ModelError) as info:
        load_model(ModelSpec(kind="pickle", path=path), "teacher")
    assert str(info.value) == (f"teacher ({display_path(path)}): loading a pickle runs code; set "
                               "trust: true only if you trust whoever wrote this file (prefer "
                               "skops or onnx)")


def test_pickle_that_cannot_be_read(tmp_path: Path) -> None:
    path = tmp_path / "model.pkl"
    path.write_bytes(b"not a pickle")
    with pytest.raises(ModelError, match=rf"^student \({re.escape(display_path(path))}\): could "
                                         r"not unpickle \(UnpicklingError: "):
        load_model(ModelSpec(kind="pickle", path=path, trust=True), "student")


def test_pickled_object_without_predict_proba(tmp_path: Path) -> None:
    path = tmp_path / "model.pkl"
    path.write_bytes(pickle.dumps({"weights": [1, 2]}))
    with pytest.raises(ModelError) as info:
        load_model(ModelSpec(kind="pickle", path=path, trust=True, classes=(0, 1)), "student")
    assert str(info.value) == (f"student ({display_path(path)}): dict has no predict_proba; the "
                               "audit needs class probabilities")


# --------------------------------------------------------------------------- check_probabilities
@pytest.mark.parametrize(("raw", "message"), [
    (np.full((3, 3), 1 / 3),
     "m returned shape (3, 3); expected (3, 2) class probabilities (one row per data row, one "
     "column per class)"),
    (np.full(4, 0.5),
     "m returned shape (4,); expected (3, 2) class probabilities (one row per data row, one "
     "column per class)"),
    ([[0.5, 0.5], [np.nan, 0.5], [0.5, 0.5]],
     "m returned NaN or infinite values at data row 2 of eval.csv: [nan, 0.5]; every probability "
     "must be a finite number in [0, 1]"),
    ([[0.5, 0.5], [0.5, 0.5], [np.inf, 0.0]],
     "m returned NaN or infinite values at data row 3 of eval.csv: [inf, 0.0]; every probability "
     "must be a finite number in [0, 1]"),
    ([[1.1, -0.1], [0.5, 0.5], [0.5, 0.5]],
     "m returned negative values at data row 1 of eval.csv: [1.1, -0.1]; probabilities lie in "
     "[0, 1]; pass probabilities, not logits or scores"),
    ([[0.5, 0.5], [0.5, 0.5], [2.0, 3.5]],
     "m returned values above 1 at data row 3 of eval.csv: [2.0, 3.5]; probabilities lie in "
     "[0, 1]; pass probabilities, not logits (apply softmax)"),
    ([[0.5, 0.5], [0.2, 0.3], [0.5, 0.5]],
     "m returned probabilities that sum to 0.5 at data row 2 of eval.csv: [0.2, 0.3]; each row "
     "must sum to 1 (normalise it, or apply softmax to scores)"),
    ([["a", "b"]] * 3,
     "m returned list values that are not numbers (could not convert string to float: 'a'); "
     "expected an (3, 2) array of class probabilities"),
])
def test_check_probabilities_messages(raw: Any, message: str) -> None:
    with pytest.raises(ModelError) as info:
        check_probabilities(raw, 3, 2, "m", where="eval.csv")
    assert str(info.value) == message


def test_check_probabilities_without_a_file_names_the_row() -> None:
    with pytest.raises(ModelError,
                       match=r"^m returned values above 1 at data row 1: \[2\.0, 0\.0\]; "):
        check_probabilities([[2.0, 0.0]], 1, 2, "m")


@pytest.mark.parametrize("raw", [[0.1, 0.75, 1.0], [[0.1], [0.75], [1.0]]])
def test_check_probabilities_expands_a_binary_single_column(raw: Any) -> None:
    P = check_probabilities(raw, 3, 2, "m")
    np.testing.assert_allclose(P, [[0.9, 0.1], [0.25, 0.75], [0.0, 1.0]])
    assert P.dtype == np.float64 and P.shape == (3, 2)


def test_check_probabilities_single_column_is_not_expanded_for_three_classes() -> None:
    with pytest.raises(ModelError, match=r"returned shape \(3,\); expected \(3, 3\)"):
        check_probabilities([0.1, 0.2, 0.3], 3, 3, "m")


def test_check_probabilities_tolerates_rounding_and_clips_it() -> None:
    P = check_probabilities([[1 + 5e-7, -5e-7], [0.3, 0.7004]], 2, 2, "m")
    assert P.min() >= 0.0 and P.max() <= 1.0
    np.testing.assert_allclose(P, [[1.0, 0.0], [0.3, 0.7004]])


# --------------------------------------------------------------------------- LabelEncoding
def test_models_must_know_the_same_classes() -> None:
    with pytest.raises(DataError) as info:
        LabelEncoding.from_models(("No", "Yes"), ("No", "Maybe"))
    assert str(info.value) == (
        "the teacher predicts classes ['No', 'Yes'] but the student predicts ['No', 'Maybe'] "
        "(only the teacher knows ['Yes']; only the student knows ['Maybe']); both must know the "
        "same classes (fix the model's classes: in the suite if its metadata is wrong)")
    with pytest.raises(DataError, match=r"\(only the teacher knows \[2\]\); both must know"):
        LabelEncoding.from_models((0, 1, 2), (0, 1))


@pytest.mark.parametrize(("classes", "pos"), [
    (("No", "Yes"), 1), (("Yes", "No"), 0), ((0, 1), 1), ((1, 0), 0), ((False, True), 1),
    (("0", "1"), 1), ((np.int64(0), np.int64(1)), 1), (("cat", "dog"), 1), (("no", "yes"), 1),
])
def test_positive_class_is_inferred(classes: tuple[Any, ...], pos: int) -> None:
    enc = LabelEncoding.from_models(classes, classes)
    assert enc.pos == pos
    assert enc.pos_note == (f"positive class {classes[pos]!r} (inferred; set data.positive to "
                            "choose)")


@pytest.mark.parametrize(("classes", "positive", "pos"), [
    (("No", "Yes"), "No", 0), ((0, 1), 0, 0), ((0, 1), "1", 1), (("0", "1"), 0, 0),
])
def test_positive_class_explicit(classes: tuple[Any, ...], positive: Any, pos: int) -> None:
    enc = LabelEncoding.from_models(classes, classes[::-1], positive)
    assert enc.classes == classes  # the teacher's order
    assert enc.pos == pos
    assert enc.pos_note == f"positive class {positive!r} (data.positive)"


def test_positive_must_be_a_class() -> None:
    with pytest.raises(DataError) as info:
        LabelEncoding.from_models(("No", "Yes"), ("No", "Yes"), "yes")
    assert str(info.value) == ("data.positive='yes' is not a class of the models; use one of "
                               "['No', 'Yes']")


def test_positive_on_multiclass_is_refused() -> None:
    with pytest.raises(DataError) as info:
        LabelEncoding.from_models((0, 1, 2), (2, 1, 0), 1)
    assert str(info.value) == ("data.positive=1 only applies to binary problems; these models "
                               "have 3 classes")
    enc = LabelEncoding.from_models((0, 1, 2), (2, 1, 0))
    assert enc.pos is None and enc.pos_note == ""


def test_a_single_class_is_refused() -> None:
    with pytest.raises(DataError, match=r"^the models know only one class \['a'\]; need at least "
                                        r"two$"):
        LabelEncoding.from_models(("a",), ("a",))


def test_reorder_maps_student_columns_onto_the_teacher_order() -> None:
    enc = LabelEncoding.from_models(("a", "b", "c"), ("c", "a", "b"))
    student = np.array([[0.7, 0.2, 0.1]])  # columns c, a, b
    np.testing.assert_array_equal(student[:, enc.reorder(("c", "a", "b"))], [[0.2, 0.1, 0.7]])
    np.testing.assert_array_equal(enc.reorder(("a", "b", "c")), [0, 1, 2])


def test_int_labels_match_string_classes() -> None:
    enc = LabelEncoding.from_models(("0", "1"), (0, 1))
    np.testing.assert_array_equal(enc.encode(pd.Series([1, 0, 1, 1]), "eval.csv"), [1, 0, 1, 1])
    np.testing.assert_array_equal(enc.encode(pd.Series([1.0, 0.0]), "eval.csv"), [1, 0])
    np.testing.assert_array_equal(enc.encode(pd.Series(["1", "0"]), "eval.csv"), [1, 0])
    bools = LabelEncoding.from_models((False, True), ("False", "True"))
    np.testing.assert_array_equal(bools.encode(pd.Series([True, False]), "x"), [1, 0])


def test_unknown_labels_are_named_with_count_and_first_row() -> None:
    enc = LabelEncoding.from_models(("No", "Yes"), ("No", "Yes"))
    labels = pd.Series(["No", "Yes", "Maybe", "No", "maybe", "Maybe"])
    with pytest.raises(DataError) as info:
        enc.encode(labels, "eval.csv column 'released'")
    assert str(info.value) == (
        "eval.csv column 'released': labels ['Maybe', 'maybe'] (3 rows, first at data row 3) are "
        "not among the models' classes ['No', 'Yes']; drop those rows or audit models that know "
        "those classes")


def test_many_unknown_labels_are_abbreviated() -> None:
    enc = LabelEncoding.from_models((0, 1), (0, 1))
    with pytest.raises(DataError) as info:
        enc.encode(pd.Series([0, 1, *range(2, 10)]), "d.csv")
    assert str(info.value) == (
        "d.csv: labels [2, 3, 4, 5, 6, ... 3 more] (8 rows, first at data row 3) are not among the "
        "models' classes [0, 1]; drop those rows or audit models that know those classes")


def _comparable(result: Any) -> dict[str, Any]:
    d = result.to_dict()
    d["details"].pop("seconds")
    d.pop("location")  # file:line of the check
    return d


def test_reversed_student_columns_give_identical_metrics(tmp_path: Path) -> None:
    write_pair(tmp_path, n=400, degrade=0.3, seed=3)
    student = pd.read_csv(tmp_path / "student.csv")
    student[["p_Yes", "p_No"]].to_csv(tmp_path / "student_rev.csv", index=False,
                                      float_format="%.17g")
    checks = {m: {"metric": m} for m in ("accuracy", "f1", "roc_auc", "log_loss", "agreement",
                                         "negative_flip_rate", "kl_divergence")}
    plain = write_suite(tmp_path, checks, name="plain")
    reversed_path = write_suite(tmp_path, checks, name="reversed")
    suite = yaml.safe_load(reversed_path.read_text())
    suite["student"] = {"predictions": "student_rev.csv", "columns": ["p_Yes", "p_No"],
                        "classes": ["Yes", "No"]}
    reversed_path.write_text(yaml.safe_dump(suite, sort_keys=False))
    a, b = SuiteRun(load_suite(plain)), SuiteRun(load_suite(reversed_path))
    assert b.student.classes == ("Yes", "No")
    for name in checks:
        ra, rb = a.run_check(name), b.run_check(name)
        assert ra.status == rb.status == "info", (ra.error, rb.error)
        assert _comparable(ra) == _comparable(rb)
    np.testing.assert_array_equal(b.inputs.p_student, a.inputs.p_student)


def test_a_single_input_onnx_model_takes_its_recorded_column_order(built: dict, tmp_path: Path) -> None:
    """Reordered CSV columns must not silently scramble a matrix input."""
    from audit.data import load_table
    from audit.spec import DataSpec

    model = load_model(ModelSpec(kind="onnx", path=built["digits/student.onnx"]), "student")
    assert model.warnings == ()  # the fixture records its feature order
    frame = pd.read_csv(built["digits/eval.csv"])
    reordered = frame[list(reversed(frame.columns))]
    path = tmp_path / "reordered.csv"
    reordered.to_csv(path, index=False)
    original = model.predict_proba(load_table(DataSpec(eval=built["digits/eval.csv"], target="digit")))
    again = model.predict_proba(load_table(DataSpec(eval=path, target="digit")))
    np.testing.assert_array_equal(original, again)
