"""The torch model kind: TorchScript files and callables that are (or build) an ``nn.Module``.

Predictions are compared with an independent computation: the module called directly on a
float32 tensor of the CSV's feature columns, then softmax. The digits pair is the fixture
``digits/teacher.pt`` / ``digits/student.pt`` (see ``fixtures/build.py``).
"""

from __future__ import annotations

import hashlib
import subprocess
import sys
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
import torch
import yaml
from jsonschema import Draft202012Validator
from torch import nn

import audit.models
from audit.data import Table, file_sha256, load_table
from audit.errors import ModelError, SuiteError, display_path
from audit.models import LoadedModel, load_model
from audit.runner import AuditSession, SuiteRun
from audit.suite import DataSpec, ModelSpec, load_suite, suite_from_dict, suite_json_schema
from fixtures.synthetic import write_pair

DEPRECATED = r"`torch\.jit\.\w+` is (deprecated|not supported)"


def _script_to(module: nn.Module, path: Path) -> Path:
    """Save ``module`` as TorchScript (torch warns that TorchScript is deprecated)."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", DEPRECATED, DeprecationWarning)
        torch.jit.script(module).save(str(path))
    return path


def _jit_load(path: Path) -> Any:
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", DEPRECATED, DeprecationWarning)
        return torch.jit.load(str(path), map_location="cpu")


def _softmax(logits: torch.Tensor) -> np.ndarray:
    return torch.softmax(logits.double(), dim=1).numpy()


# --------------------------------------------------------------------------- digits pair
@pytest.fixture(scope="module")
def digits_table(digits: Path) -> Table:
    return load_table(DataSpec(eval=digits / "eval.csv", target="digit"), "eval")


@pytest.fixture(scope="module")
def digits_X(digits: Path) -> torch.Tensor:
    """The feature columns straight from the CSV, as the float32 tensor a caller would build."""
    frame = pd.read_csv(digits / "eval.csv").drop(columns=["digit"])
    return torch.from_numpy(frame.to_numpy(np.float32))


@pytest.mark.parametrize("stem", ["teacher", "student"])
def test_torchscript_matches_softmax_of_the_module_called_directly(
        digits: Path, digits_table: Table, digits_X: torch.Tensor, stem: str) -> None:
    path = digits / f"{stem}.pt"
    model = load_model(ModelSpec(kind="torch", path=path), stem)
    reference = _jit_load(path)
    with torch.no_grad():
        expected = _softmax(reference(digits_X))
    np.testing.assert_allclose(model.predict_proba(digits_table), expected, rtol=0, atol=1e-6)
    assert model.classes == tuple(range(10)) and all(type(c) is int for c in model.classes)
    assert model.sha256 == file_sha256(path) and model.size_bytes == path.stat().st_size
    assert model.input_dtype == np.dtype(np.float32)
    assert isinstance(model.module, torch.jit.ScriptModule) and not model.module.training
    assert model.warnings == ()


def test_the_digits_pair_is_accurate_and_agrees(digits_table: Table, digits: Path) -> None:
    teacher, student = (load_model(ModelSpec(kind="torch", path=digits / f"{s}.pt"), s)
                        for s in ("teacher", "student"))
    y = digits_table.labels.astype(int).to_numpy()  # labels are read as text
    pt, ps = teacher.predict_proba(digits_table).argmax(1), student.predict_proba(digits_table).argmax(1)
    assert np.mean(pt == y) > 0.95 and np.mean(ps == y) > 0.95 and np.mean(pt == ps) > 0.97
    # The student is smaller: 64-32-10 against 64-128-10.
    size = {m.role: sum(p.numel() for p in m.module.parameters()) for m in (teacher, student)}
    assert size == {"teacher": 64 * 128 + 128 + 128 * 10 + 10, "student": 64 * 32 + 32 + 32 * 10 + 10}


def test_the_fixture_modules_cast_float64_themselves(digits: Path, digits_X: torch.Tensor) -> None:
    """The ToFloat32 cast inside the modules: ART's attacks feed float64 straight in."""
    module = _jit_load(digits / "student.pt")
    with torch.no_grad():
        torch.testing.assert_close(module(digits_X.double()), module(digits_X), rtol=0, atol=0)


def test_classes_in_the_spec_override_the_attribute(digits: Path) -> None:
    labels = tuple("zero one two three four five six seven eight nine".split())
    model = load_model(ModelSpec(kind="torch", path=digits / "student.pt", classes=labels), "student")
    assert model.classes == labels


def test_other_kinds_carry_no_module(digits: Path) -> None:
    model = load_model(ModelSpec(kind="onnx", path=digits / "student.onnx"), "student")
    assert model.module is None and model.input_dtype is None


# --------------------------------------------------------------------------- a suite over the pair
def _torch_suite(folder: Path, digits: Path) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "torch.audit.yaml"
    path.write_text(yaml.safe_dump({
        "version": 1, "name": "digits-torch",
        "data": {"eval": str(digits / "eval.csv"), "target": "digit"},
        "teacher": str(digits / "teacher.pt"),
        "student": {"torch": str(digits / "student.pt"), "output": "logits"},
        "settings": {"seed": 0, "bootstrap": 1000},
        "checks": {"accuracy": {"metric": "accuracy", "gate": {"min": 0.95, "max_regression": 0.02}},
                   "agreement": {"metric": "agreement", "gate": {"min": 0.97}}},
    }, sort_keys=False))
    return path


def test_a_suite_over_the_torch_pair_passes_and_hits_the_cache_without_loading(
        tmp_path: Path, digits: Path) -> None:
    suite = load_suite(_torch_suite(tmp_path / "suite", digits))
    assert (suite.teacher.kind, suite.teacher.output) == ("torch", None)
    assert (suite.student.kind, suite.student.output) == ("torch", "logits")
    first = SuiteRun(suite, AuditSession(tmp_path / "cache"))
    results = first.run_all()
    assert [(r.name, r.status) for r in results] == [("accuracy", "pass"), ("agreement", "pass")]
    assert sorted(first._models) == ["student", "teacher"]
    again = SuiteRun(suite, AuditSession(tmp_path / "cache"))
    after = again.run_all()
    assert again._models == {}  # served from the cache: the .pt files were hashed, not loaded
    # every measurement reused (authenticated), so not even the predictions were read
    assert again.prediction_sources == {}
    assert set(again.artifacts()["cache"]["entries"]) == {"measurements/accuracy",
                                                         "measurements/agreement"}
    for b, a in zip(results, after, strict=True):
        assert a.measurements == b.measurements
    AuditSession.reuse_measurements = False  # predictions alone: read from disk, no model loaded
    try:
        third = SuiteRun(suite, AuditSession(tmp_path / "cache"))
        assert [r.measurements for r in third.run_all()] == [r.measurements for r in results]
    finally:
        AuditSession.reuse_measurements = True
    assert third._models == {}
    assert third.prediction_sources == {"teacher/eval": "disk", "student/eval": "disk"}
    art = again.artifacts()
    for role in ("teacher", "student"):
        assert art[role]["sha256"] == first.artifacts()[role]["sha256"] == file_sha256(
            digits / f"{role}.pt")
        assert art[role]["classes"] == list(range(10)) and art[role]["loaded"] is False


def test_the_output_setting_is_part_of_the_cache_identity(digits: Path) -> None:
    path = digits / "student.pt"
    identities = {audit.models.model_fingerprint(ModelSpec(kind="torch", path=path, output=o))[1]
                  for o in (None, "probabilities")}
    assert len(identities) == 2


# --------------------------------------------------------------------------- TorchScript files
class _Softmaxed(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.linear = nn.Linear(2, 3)
        self.classes = ["a", "b", "c"]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.softmax(self.linear(x), dim=1)


@pytest.fixture
def abc_table(tmp_path: Path) -> Table:
    rng = np.random.default_rng(0)
    frame = pd.DataFrame(rng.normal(size=(7, 2)), columns=["x1", "x2"])  # float64
    frame["label"] = list("abcabca")
    frame.to_csv(tmp_path / "abc.csv", index=False)
    return load_table(DataSpec(eval=tmp_path / "abc.csv", target="label"), "eval")


def _X(table: Table) -> torch.Tensor:
    return torch.from_numpy(pd.read_csv(table.path)[["x1", "x2"]].to_numpy(np.float32))


def test_output_probabilities_on_a_logits_module_says_which_key_to_change(
        digits: Path, digits_table: Table) -> None:
    model = load_model(ModelSpec(kind="torch", path=digits / "student.pt",
                                 output="probabilities"), "student")
    with pytest.raises(ModelError) as info:
        model.predict_proba(digits_table)
    message = str(info.value)
    assert message.startswith(f"student ({display_path(digits / 'student.pt')}) returned ")
    assert message.endswith("]; the suite says output: probabilities; if the module returns "
                            "logits, set output: logits (the default), which applies softmax")


def test_output_probabilities_passes_the_output_through(tmp_path: Path, abc_table: Table) -> None:
    module = _Softmaxed()
    path = _script_to(module, tmp_path / "probs.pth")
    with torch.no_grad():
        expected = module(_X(abc_table)).double().numpy()
    model = load_model(ModelSpec(kind="torch", path=path, output="probabilities"), "student")
    assert model.classes == ("a", "b", "c")
    np.testing.assert_allclose(model.predict_proba(abc_table), expected, rtol=0, atol=1e-6)
    twice = load_model(ModelSpec(kind="torch", path=path), "student")  # default: logits
    np.testing.assert_allclose(twice.predict_proba(abc_table), _softmax(torch.from_numpy(expected)),
                               rtol=0, atol=1e-6)


def test_torchscript_without_classes_says_how_to_name_them(tmp_path: Path) -> None:
    path = _script_to(nn.Sequential(nn.Linear(2, 3)), tmp_path / "bare.pt")
    with pytest.raises(ModelError) as info:
        load_model(ModelSpec(kind="torch", path=path), "teacher")
    assert str(info.value) == (
        f"teacher ({display_path(path)}): cannot tell the class labels; add classes: [...] to the "
        "model in the suite, in the order of the model's outputs, or give the module a classes "
        "attribute (a list of labels, kept by TorchScript; a torch.export program keeps them when "
        "saved with extra_files={'classes': json.dumps([...])})")
    model = load_model(ModelSpec(kind="torch", path=path, classes=("a", "b", "c")), "teacher")
    assert model.classes == ("a", "b", "c")


class _OneClass(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.linear = nn.Linear(2, 3)
        self.classes = ["only"]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.linear(x)


# --------------------------------------------------------------------------- torch.export
def test_an_exported_program_predicts_like_its_torchscript_twin(digits: Path,
                                                                digits_table: Table) -> None:
    """digits/student.pt2 is the student network saved with torch.export, its classes in the
    extra file ``classes``: same probabilities as the TorchScript file, and gradients."""
    exported = load_model(ModelSpec(kind="torch", path=digits / "student.pt2"), "student")
    scripted = load_model(ModelSpec(kind="torch", path=digits / "student.pt"), "student")
    assert exported.classes == scripted.classes == tuple(range(10))
    np.testing.assert_allclose(exported.predict_proba(digits_table),
                               scripted.predict_proba(digits_table), rtol=0, atol=1e-6)
    assert exported.module is not None and exported.input_dtype == np.float32
    x = torch.zeros(3, 64, requires_grad=True)
    exported.module(x).sum().backward()
    assert x.grad is not None


def test_pgd_on_an_exported_program_equals_pgd_on_torchscript(digits: Path) -> None:
    def robust(student: str) -> Any:
        raw = {"version": 1, "name": "x", "data": {"eval": str(digits / "eval.csv"),
                                                   "target": "digit"},
               "teacher": str(digits / "teacher.pt"), "student": str(digits / student),
               "checks": {"r": {"metric": "robust_accuracy", "eps": [0.1], "samples": 60}}}
        result = SuiteRun(suite_from_dict(raw, base_dir=digits)).run_check("r")
        assert result.status == "info", result.error
        return result.measurements[0]

    pt2, pt = robust("student.pt2"), robust("student.pt")
    assert pt2.params["attack"] == "pgd"  # white-box: the exported program gives gradients
    assert pt2.student.value == pytest.approx(pt.student.value, abs=1 / 60)


def _export_to(module: nn.Module, path: Path, extra: dict[str, str] | None = None) -> Path:
    program = torch.export.export(module.eval(), (torch.zeros(2, 2),),
                                  dynamic_shapes=({0: torch.export.Dim("batch")},))
    torch.export.save(program, str(path), extra_files=extra)
    return path


def test_an_exported_program_without_classes(tmp_path: Path) -> None:
    path = _export_to(nn.Sequential(nn.Linear(2, 3)), tmp_path / "bare.pt2")
    with pytest.raises(ModelError, match="cannot tell the class labels; .*extra_files="):
        load_model(ModelSpec(kind="torch", path=path), "teacher")
    model = load_model(ModelSpec(kind="torch", path=path, classes=("a", "b", "c")), "teacher")
    assert model.classes == ("a", "b", "c")
    bad = _export_to(nn.Sequential(nn.Linear(2, 3)), tmp_path / "bad.pt2", {"classes": "a,b,c"})
    with pytest.raises(ModelError) as info:
        load_model(ModelSpec(kind="torch", path=bad), "teacher")
    assert str(info.value) == (
        f"teacher ({display_path(bad)}): the program's extra file 'classes' is 'a,b,c', not a "
        "JSON list of class labels; fix it or add classes: [...] to the model in the suite")


def _rewrite(source: Path, target: Path, change: Any) -> Path:
    """A copy of the zip archive ``source`` with ``change(inner name, bytes)`` applied."""
    import zipfile

    with zipfile.ZipFile(source) as src, zipfile.ZipFile(target, "w") as dst:
        for name in src.namelist():
            dst.writestr(name, change(name.partition("/")[2], src.read(name)))
    return target


def _pickled_weight(inner: str, data: bytes) -> bytes:
    """Flag the first weight as pickled and store it with torch.save (a pickle)."""
    import io
    import json

    if inner == "data/weights/model_weights_config.json":
        config = json.loads(data)
        config["config"]["hidden.weight"]["use_pickle"] = True
        return json.dumps(config).encode()
    if inner == "data/weights/weight_0":
        buffer = io.BytesIO()
        weight = torch.frombuffer(bytearray(data), dtype=torch.float32).reshape(32, 64)
        torch.save(nn.Parameter(weight), buffer)
        return buffer.getvalue()
    return data


def _pickled_sample_inputs(inner: str, data: bytes) -> bytes:
    import argparse
    import pickle

    return pickle.dumps(argparse.Namespace(x=1)) if inner == "data/sample_inputs/model.pt" else data


@pytest.mark.parametrize(("change", "part"), [
    pytest.param(_pickled_weight, "pickled weight 'hidden.weight'", id="pickled-weight"),
    pytest.param(_pickled_sample_inputs, "sample inputs that need unrestricted unpickling "
                 "(model.pt)", id="pickled-sample-inputs"),
])
def test_an_exported_program_with_pickled_parts_needs_trust(digits: Path, tmp_path: Path,
                                                            change: Any, part: str) -> None:
    """torch.export.load unpickles such parts (running code): refused unless the suite trusts
    the file, like a pickle; the check reads the archive's listing and JSON configs only."""
    path = _rewrite(digits / "student.pt2", tmp_path / "student.pt2", change)
    with pytest.raises(ModelError) as info:
        load_model(ModelSpec(kind="torch", path=path), "student")
    assert str(info.value) == (
        f"student ({display_path(path)}): this torch.export archive holds {part}, which "
        "torch.export.load unpickles (unpickling can run arbitrary code); save the program again "
        "with torch.export.save from plain tensors, or add trust: true to the model only if you "
        "trust whoever wrote the file")
    if change is _pickled_weight:  # trusted, it loads and predicts as before
        trusted = load_model(ModelSpec(kind="torch", path=path, trust=True), "student")
        plain = load_model(ModelSpec(kind="torch", path=digits / "student.pt2"), "student")
        table = load_table(DataSpec(eval=digits / "eval.csv", target="digit"), "eval")
        np.testing.assert_allclose(trusted.predict_proba(table), plain.predict_proba(table),
                                   rtol=0, atol=1e-6)


def test_a_classes_attribute_that_is_not_a_label_list(tmp_path: Path) -> None:
    path = _script_to(_OneClass(), tmp_path / "one.pt")
    with pytest.raises(ModelError) as info:
        load_model(ModelSpec(kind="torch", path=path), "student")
    assert str(info.value) == (
        f"student ({display_path(path)}): the module's classes attribute is \"['only']\", not a "
        "list of at least two distinct class labels (strings or integers); fix the attribute or "
        "add classes: [...] to the model in the suite")


FIX = ("save the model with torch.export.save(torch.export.export(model, (example,), "
       "dynamic_shapes=...), path) or torch.jit.script(model).save(path), or build it in code and "
       "name it with {callable: 'module:function'}")


@pytest.mark.parametrize("write", [
    pytest.param(lambda p: torch.save(nn.Linear(2, 3).state_dict(), p), id="state-dict"),
    pytest.param(lambda p: torch.save({"weights": torch.zeros(3)}, p), id="torch-save-dict"),
])
def test_a_torch_save_file_is_refused_before_torch_reads_it(tmp_path: Path, write: Any) -> None:
    path = tmp_path / "weights.pt"
    write(path)
    with pytest.raises(ModelError) as info:
        load_model(ModelSpec(kind="torch", path=path), "teacher")
    assert str(info.value) == (
        f"teacher ({display_path(path)}): written by torch.save (a pickle, such as a state_dict or "
        f"a whole pickled model), not TorchScript or torch.export; {FIX}")


def test_a_file_that_is_not_torchscript_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "junk.pt"
    path.write_bytes(b"not a model")
    with pytest.raises(ModelError) as info:
        load_model(ModelSpec(kind="torch", path=path), "teacher")
    assert str(info.value) == (
        f"teacher ({display_path(path)}): not a TorchScript or torch.export archive (not a zip "
        f"file); {FIX}")


def test_a_width_mismatch_names_the_matrix_it_was_fed(tmp_path: Path, digits: Path,
                                                      digits_table: Table) -> None:
    path = _script_to(nn.Sequential(nn.Linear(3, 10)), tmp_path / "narrow.pt")
    model = load_model(ModelSpec(kind="torch", path=path, classes=tuple(range(10))), "student")
    with pytest.raises(ModelError) as info:
        model.predict_proba(digits_table)
    assert str(info.value) == (
        f"student ({display_path(path)}) failed to predict on {display_path(digits / 'eval.csv')}: "
        "RuntimeError: mat1 and mat2 shapes cannot be multiplied (540x64 and 3x10); it was fed the "
        "feature columns (pixel_0_0, pixel_0_1, pixel_0_2, pixel_0_3, pixel_0_4, pixel_0_5, ... "
        "(64 in all)) as one (540, 64) float32 matrix; list the model's inputs, in its order, "
        "under data.features")


def test_a_text_column_cannot_enter_the_matrix(tmp_path: Path) -> None:
    pd.DataFrame({"x1": [0.5, 1.0], "x2": ["1.5", "high"], "label": ["a", "b"]}).to_csv(
        tmp_path / "text.csv", index=False)
    table = load_table(DataSpec(eval=tmp_path / "text.csv", target="label"), "eval")
    path = _script_to(_Softmaxed(), tmp_path / "m.pt")
    model = load_model(ModelSpec(kind="torch", path=path), "student")
    with pytest.raises(ModelError) as info:
        model.predict_proba(table)
    assert str(info.value) == (
        f"student ({display_path(path)}): the torch model takes all feature columns as one float32 "
        f"matrix, but column 'x2' of {display_path(table.path)} holds 'high' at data row 2; leave "
        "it out with data.features or encode it as numbers")


# --------------------------------------------------------------------------- callables
NETS = """\
from pathlib import Path

import numpy as np
import torch
from torch import nn

SEED = int((Path(__file__).parent / "seed.txt").read_text())


class Net(nn.Module):
    def __init__(self):
        super().__init__()
        torch.manual_seed(SEED)
        self.linear = nn.Linear(2, 3)
        self.classes = ["a", "b", "c"]

    def forward(self, x):
        return self.linear(x)


class NumpyClasses(Net):
    def __init__(self):
        super().__init__()
        self.classes = np.array(["a", "b", "c"])


class NeedsWidth(nn.Module):
    def __init__(self, width):
        super().__init__()


class OneLogit(nn.Module):
    def __init__(self):
        super().__init__()
        torch.manual_seed(SEED)
        self.linear = nn.Linear(2, 1)

    def forward(self, x):
        return self.linear(x)


model = Net()


def build():
    return Net()


def build_double():
    return Net().double()


def build_wrong():
    return [1, 2]


def predict(X):
    return torch.softmax(model(torch.tensor(X.to_numpy(), dtype=torch.float32)), dim=1).detach().numpy()
"""


@pytest.fixture
def nets(tmp_path: Path) -> Path:
    (tmp_path / "nets.py").write_text(NETS)
    (tmp_path / "seed.txt").write_text("0")
    return tmp_path


def _net(seed: int = 0) -> nn.Module:
    torch.manual_seed(seed)
    return nn.Linear(2, 3)


@pytest.mark.parametrize("target", ["nets:model", "nets:build", "nets:Net", "nets:NumpyClasses"])
def test_a_callable_that_is_or_builds_a_module_is_wrapped_like_torchscript(
        nets: Path, abc_table: Table, target: str) -> None:
    model = load_model(ModelSpec(kind="callable", target=target, base_dir=nets), "student")
    with torch.no_grad():
        expected = _softmax(_net()(_X(abc_table)))
    np.testing.assert_allclose(model.predict_proba(abc_table), expected, rtol=0, atol=1e-6)
    assert model.classes == ("a", "b", "c") and all(type(c) is str for c in model.classes)
    assert model.input_dtype == np.dtype(np.float32)
    assert isinstance(model.module, nn.Module) and not model.module.training
    assert model.size_bytes is None


def test_float64_data_works_on_a_float32_module(nets: Path, abc_table: Table) -> None:
    assert abc_table.features.dtypes.tolist() == [np.dtype(np.float64)] * 2
    with pytest.raises(RuntimeError, match="must have the same dtype"):  # the trap, called directly
        _net()(torch.from_numpy(abc_table.features.to_numpy()))
    model = load_model(ModelSpec(kind="callable", target="nets:build", base_dir=nets), "student")
    assert model.predict_proba(abc_table).shape == (7, 3)


def test_a_float64_module_is_fed_float64(nets: Path, abc_table: Table) -> None:
    model = load_model(ModelSpec(kind="callable", target="nets:build_double", base_dir=nets),
                       "student")
    assert model.input_dtype == np.dtype(np.float64)
    with torch.no_grad():
        expected = _softmax(_net().double()(torch.from_numpy(abc_table.features.to_numpy())))
    np.testing.assert_allclose(model.predict_proba(abc_table), expected, rtol=0, atol=1e-12)


def test_a_single_logit_of_a_binary_module_goes_through_a_sigmoid(nets: Path, tmp_path: Path) -> None:
    pd.DataFrame({"x1": [0.1, -2.0, 3.0], "x2": [1.0, 0.5, -1.0], "label": ["No", "Yes", "No"]}
                 ).to_csv(tmp_path / "bin.csv", index=False)
    table = load_table(DataSpec(eval=tmp_path / "bin.csv", target="label"), "eval")
    model = load_model(ModelSpec(kind="callable", target="nets:OneLogit", classes=("No", "Yes"),
                                 base_dir=nets), "student")
    torch.manual_seed(0)
    linear = nn.Linear(2, 1)
    with torch.no_grad():
        p_yes = torch.sigmoid(linear(torch.tensor(table.features.to_numpy(), dtype=torch.float32)))
    np.testing.assert_allclose(model.predict_proba(table)[:, 1], p_yes.double().numpy().ravel(),
                               rtol=0, atol=1e-6)


def test_the_forward_pass_runs_in_batches(nets: Path, abc_table: Table,
                                          monkeypatch: pytest.MonkeyPatch) -> None:
    model = load_model(ModelSpec(kind="callable", target="nets:build", base_dir=nets), "student")
    whole = model.predict_proba(abc_table)
    sizes: list[int] = []
    model.module.register_forward_hook(lambda mod, args, out: sizes.append(len(args[0])))
    import audit.models.torch

    monkeypatch.setattr(audit.models.torch, "_TORCH_BATCH", 3)
    np.testing.assert_allclose(model.predict_proba(abc_table), whole, rtol=0, atol=1e-7)
    assert sizes == [3, 3, 1]


def test_a_module_callable_is_fingerprinted_by_its_weights_too(nets: Path) -> None:
    spec = ModelSpec(kind="callable", target="nets:build", base_dir=nets)
    first = load_model(spec, "student").sha256
    assert load_model(spec, "student").sha256 == first
    (nets / "seed.txt").write_text("1")  # new weights, same source
    assert load_model(spec, "student").sha256 != first
    assert first != hashlib.sha256(b"nets:build" + (nets / "nets.py").read_bytes()).hexdigest()


def test_plain_callables_are_unchanged(nets: Path, abc_table: Table) -> None:
    model = load_model(ModelSpec(kind="callable", target="nets:predict", classes=("a", "b", "c"),
                                 base_dir=nets), "student")
    assert model.module is None and model.input_dtype is None
    assert model.sha256 == hashlib.sha256(b"nets:predict" + (nets / "nets.py").read_bytes()).hexdigest()
    assert model.predict_proba(abc_table).shape == (7, 3)


@pytest.mark.parametrize(("target", "output", "message"), [
    pytest.param("nets:predict", "logits",
                 "output: logits applies to torch modules, but predict is a function, which must "
                 "return class probabilities; remove output", id="output-on-a-function"),
    pytest.param("nets:build_wrong", None,
                 "build_wrong() returned a list, not a torch.nn.Module; a callable model is a "
                 "function of the feature table, an object with predict_proba, or a "
                 "torch.nn.Module (or a function of no arguments that returns one)",
                 id="factory-returns-no-module"),
    pytest.param("nets:NeedsWidth", None,
                 "calling NeedsWidth() to build the torch module failed: TypeError: "
                 "NeedsWidth.__init__() missing 1 required positional argument: 'width'",
                 id="module-class-needs-arguments"),
])
def test_callable_module_errors(nets: Path, target: str, output: str | None, message: str) -> None:
    spec = ModelSpec(kind="callable", target=target, classes=("a", "b", "c"), base_dir=nets,
                     output=output)
    with pytest.raises(ModelError) as info:
        load_model(spec, "student")
    assert str(info.value) == f"student (callable {target}): {message}"


# --------------------------------------------------------------------------- the suite format
@pytest.fixture(scope="module")
def pair(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("pair")
    write_pair(folder, n=40)
    for name in ("m.pt", "M.PTH", "m.pt2", "m.onnx"):
        (folder / name).write_bytes(b"")
    return folder


def _suite(teacher: Any) -> dict[str, Any]:
    model = {"predictions": "teacher.csv", "columns": ["p_No", "p_Yes"], "classes": ["No", "Yes"]}
    return {"version": 1, "name": "synth", "data": {"eval": "eval.csv", "target": "label"},
            "teacher": teacher, "student": model,
            "checks": {"acc": {"metric": "accuracy", "gate": {"min": 0.5}}}}


@pytest.mark.parametrize(("teacher", "output"), [
    pytest.param("m.pt", None, id="pt-path"),
    pytest.param("M.PTH", None, id="pth-path-upper-case"),
    pytest.param("m.pt2", None, id="pt2-exported-program"),
    pytest.param({"torch": "m.pt", "classes": ["No", "Yes"], "output": "probabilities"},
                 "probabilities", id="torch-mapping"),
    pytest.param({"callable": "mymodels:build", "output": "logits"}, "logits", id="callable-output"),
])
def test_schema_and_parser_accept_torch_models(pair: Path, teacher: Any, output: str | None) -> None:
    validator = Draft202012Validator(suite_json_schema())
    assert list(validator.iter_errors(_suite(teacher))) == []
    spec = suite_from_dict(_suite(teacher), base_dir=pair).teacher
    assert spec.kind == ("callable" if "callable" in teacher else "torch")
    assert spec.output == output


@pytest.mark.parametrize(("teacher", "message"), [
    pytest.param({"torch": "m.pt", "output": "softmax"},
                 "teacher.output='softmax': must be one of logits, probabilities", id="bad-output"),
    pytest.param({"skops": "m.skops", "output": "logits"},
                 "teacher.output='logits': does not apply to a skops model (it takes classes, "
                 "trusted_types); remove it", id="output-on-skops"),
    pytest.param({"torch": "m.pt", "trusted_types": ["x"]},
                 "teacher.trusted_types=['x']: does not apply to a torch model (it takes classes, "
                 "output, trust, batch_size, device, mean, std); remove it", id="trusted-types-on-torch"),
])
def test_schema_and_parser_reject_bad_torch_models(pair: Path, teacher: Any, message: str) -> None:
    validator = Draft202012Validator(suite_json_schema())
    assert list(validator.iter_errors(_suite(teacher))), "the schema accepts it"
    with pytest.raises(SuiteError) as info:
        suite_from_dict(_suite(teacher), base_dir=pair)
    assert str(info.value).endswith(message)


def test_importing_the_model_adapters_does_not_import_torch() -> None:
    code = "import sys, audit.models, audit.suite; print('torch' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


def test_loaded_model_fields_default_for_code_built_models() -> None:
    model = LoadedModel("teacher", ModelSpec(kind="callable", target="m:f"), ("a", "b"), "0", None,
                        lambda t: np.zeros((0, 2)))
    assert model.module is None and model.input_dtype is None
