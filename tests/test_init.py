"""``distill-audit init`` (:mod:`audit.init`): a starter suite the parser accepts and that runs,
guesses that are said (the target) or left commented (sensitive columns, a skops file's types,
a pickle's trust), and no model loaded that would run code."""

from __future__ import annotations

import pickle
import re
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
import yaml

from audit.errors import SuiteError
from audit.init import InitError, cmd_init, draft_suite, init_suite
from audit.suite import load_suite

TREE = "sklearn.tree._tree.Tree"
COLUMNS = "released, colour, year, age, sex, employed, citizen, checks"


def reviewed(path: Path, *, trust: bool = False, sensitive: bool = False) -> Path:
    """The suite as a user leaves it after the review its REVIEW lines ask for: the listed
    skops types trusted (and a pickle's trust, the guessed sensitive columns and the fairness
    check in effect when asked)."""
    text = re.sub(r"(?m)^  # (trusted_types: .*)$", r"  \1", path.read_text(encoding="utf-8"))
    if trust:
        text = re.sub(r"(?m)^  # (trust: true)$", r"  \1", text)
    if sensitive:
        text = re.sub(r"(?m)^  # (sensitive: .*)$", r"  \1", text)
        text = re.sub(r"(?m)^  # (fairness:$|  .*$)", r"  \1", text)
    out = path.with_name("reviewed-" + path.name)
    out.write_text(text, encoding="utf-8")
    return out


class Detonator:
    """Unpickling this touches a marker file: the proof that something loaded the pickle."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self) -> tuple[Any, ...]:
        return (Path.touch, (self.marker,))


@pytest.fixture
def pickles(tmp_path: Path) -> tuple[Path, Path]:
    marker = tmp_path / "UNPICKLED"
    path = tmp_path / "model.pkl"
    path.write_bytes(pickle.dumps(Detonator(marker)))
    return path, marker


def test_init_guesses_the_target_and_leaves_every_decision_commented(arrests: Path,
                                                                     tmp_path: Path) -> None:
    out = init_suite(arrests / "teacher.skops", arrests / "student.onnx", arrests / "eval.csv",
                     target=None, out=tmp_path / "arrests.audit.yaml", train=arrests / "train.csv")
    assert out == tmp_path / "arrests.audit.yaml"
    text = out.read_text(encoding="utf-8")
    raw = yaml.safe_load(text)
    suite = load_suite(out)
    assert suite.name == "arrests"
    assert suite.data.target == "released"  # the only column no model reads, of classes No/Yes
    assert "target: released   # guessed: the only column that is no input of the models and " \
           "holds only the models' classes (No, Yes)" in text
    assert suite.data.sensitive == () and "sensitive" not in raw["data"]  # never silently
    assert "  # sensitive: [colour, {column: age, quantiles: 4}, sex, citizen]" in text
    assert "trusted_types" not in raw["teacher"]
    assert f"  # trusted_types: [{TREE}]" in text  # listed for review, not trusted
    assert suite.teacher.trusted_types == ()
    assert (suite.teacher.kind, suite.student.kind) == ("skops", "onnx")
    assert [c.name for c in suite.checks] == ["accuracy", "agreement", "calibration", "slices",
                                              "speedup", "size", "drift", "robustness",
                                              "membership"]
    assert "  # fairness:" in text  # with the sensitive columns, for the user to turn on
    robustness = suite.check("robustness")
    assert robustness.params["attack"] == "hopskipjump"  # the forest gives no gradients
    # every gate, live or commented, comes right after the comment saying how to choose it
    lines = text.splitlines()
    gates = [i for i, line in enumerate(lines) if re.match(r"^\s*(# )?\s*gate:", line)]
    assert len(gates) == 10
    for i in gates:
        assert re.match(r"^\s*(# )?\s*# \S", lines[i - 1]), lines[i - 1]


@pytest.mark.slow
def test_the_reviewed_suite_runs_without_errors(arrests: Path, tmp_path: Path) -> None:
    from audit import SuiteRun

    out = init_suite(arrests / "teacher.skops", arrests / "student.onnx", arrests / "eval.csv",
                     target=None, out=tmp_path / "arrests.audit.yaml", train=arrests / "train.csv")
    suite = load_suite(reviewed(out, sensitive=True))
    assert suite.teacher.trusted_types == (TREE,)
    assert suite.data.sensitive == ("colour", "age", "sex", "citizen")
    assert suite.check("fairness").metric == "demographic_parity_difference"
    results = SuiteRun(suite).run_all()
    assert len(results) == 10
    errors = {r.name: r.error for r in results if r.status.value == "error"}
    assert errors == {}


def test_chosen_sensitive_columns_are_in_effect_with_the_fairness_check(arrests: Path,
                                                                        tmp_path: Path) -> None:
    out = init_suite(arrests / "teacher.skops", arrests / "student.skops", arrests / "eval.csv",
                     target="released", out=tmp_path / "fair.audit.yaml", sensitive=["sex", "age"])
    suite = load_suite(out)
    assert suite.data.sensitive == ("sex", "age")
    assert [b.column for b in suite.data.bins] == ["age"]  # many ages: quartile bins
    assert suite.check("fairness").gate is not None
    text = out.read_text(encoding="utf-8")
    assert "  # sensitive: [sex, {column: age, quantiles: 4}, colour, citizen]" in text
    assert [c.name for c in suite.checks][-1] == "robustness"  # no train: no drift, membership
    assert "drift" not in text


def test_a_logistic_pair_gets_the_gradient_attack(arrests: Path, tmp_path: Path) -> None:
    """Both models loaded (the student skops file holds only types skops trusts), both
    logistic: attack auto, which picks PGD."""
    draft = draft_suite(arrests / "student.skops", arrests / "student.skops",
                        arrests / "eval.csv", target=None, out=tmp_path / "x.audit.yaml")
    assert draft.target == "released"
    assert "attack: auto   # PGD when both models give gradients, else HopSkipJump" in draft.text
    assert draft.notes[1:3] == ["teacher: skops, classes No, Yes", "student: skops, classes No, Yes"]


def test_ambiguous_target_is_an_error_listing_the_columns(arrests: Path, tmp_path: Path,
                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    table = pd.read_csv(arrests / "eval.csv")
    table["label"] = table["released"]  # a second column of the models' classes
    table.to_csv("two.csv", index=False)
    with pytest.raises(InitError) as info:
        init_suite(arrests / "teacher.skops", arrests / "student.onnx", Path("two.csv"),
                   target=None, out=Path("x.audit.yaml"))
    assert str(info.value) == (
        "two.csv: cannot tell which column is the target: 2 columns could be it (released, "
        f"label); name it with --target (the columns: {COLUMNS}, label)")
    assert not Path("x.audit.yaml").exists()


def test_no_readable_model_and_no_usual_name_is_an_error_listing_the_columns(
        arrests: Path, tmp_path: Path, pickles: tuple[Path, Path],
        monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.chdir(tmp_path)
    model, marker = pickles
    (tmp_path / "eval.csv").write_bytes((arrests / "eval.csv").read_bytes())
    assert cmd_init(model, model, Path("eval.csv"), None, Path("x.audit.yaml"), None) == 2
    assert capsys.readouterr() == ("", (
        "error: eval.csv: cannot tell which column is the target: no model could be read to "
        "tell; no column has a usual target name (target, label, labels, class, y, outcome); "
        f"name it with --target (the columns: {COLUMNS})\n"))
    assert not marker.exists()


def test_a_pickle_is_never_loaded(arrests: Path, tmp_path: Path, pickles: tuple[Path, Path],
                                  capsys: pytest.CaptureFixture[str]) -> None:
    model, marker = pickles
    out = tmp_path / "pickled.audit.yaml"
    assert cmd_init(model, arrests / "student.onnx", arrests / "eval.csv", None, out, None) == 0
    assert not marker.exists()  # not by init, and not by the validation of what it wrote
    printed = capsys.readouterr().out
    assert "REVIEW teacher: a pickle, not loaded; uncomment trust: true only if you trust whoever " \
           "wrote it" in printed
    text = out.read_text(encoding="utf-8")
    assert "teacher:\n  pickle: model.pkl\n" in text and "\n  # trust: true\n" in text
    with pytest.raises(SuiteError, match="loading a pickle runs code; add trust: true only if"):
        load_suite(out)  # as written, the suite refuses to load it
    suite = load_suite(reviewed(out, trust=True))  # once reviewed, it would
    assert (suite.teacher.kind, suite.teacher.trust) == ("pickle", True)
    assert not marker.exists()


def test_init_refuses_to_overwrite(arrests: Path, tmp_path: Path,
                                   monkeypatch: pytest.MonkeyPatch,
                                   capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.chdir(tmp_path)
    Path("mine.audit.yaml").write_text("# my own suite\n", encoding="utf-8")
    code = cmd_init(arrests / "teacher.skops", arrests / "student.onnx", arrests / "eval.csv",
                    None, Path("mine.audit.yaml"), None)
    assert code == 2
    assert capsys.readouterr() == ("", "error: mine.audit.yaml: already exists; distill-audit init "
                                       "never overwrites a file: choose another path with -o\n")
    assert Path("mine.audit.yaml").read_text(encoding="utf-8") == "# my own suite\n"
    with pytest.raises(InitError, match="already exists"):
        init_suite(arrests / "teacher.skops", arrests / "student.onnx", arrests / "eval.csv",
                   target=None, out=Path("mine.audit.yaml"))
    assert list(tmp_path.iterdir()) == [tmp_path / "mine.audit.yaml"]  # no temporary left


def test_cmd_init_writes_the_default_file_and_says_what_to_review(
        arrests: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.chdir(tmp_path)
    assert cmd_init(arrests / "teacher.skops", arrests / "student.onnx", arrests / "eval.csv",
                    None, None, arrests / "train.csv") == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0] == "wrote distilled.audit.yaml: suite 'distilled'"
    assert f"  REVIEW teacher: skops types to review before it can load: {TREE}" in out
    assert ("  REVIEW sensitive columns guessed from their names, not in effect: colour, age, "
            "sex, citizen (data.sensitive, commented)") in out
    assert out[-1] == ("next: distill-audit validate --deep distilled.audit.yaml, then "
                       "distill-audit run distilled.audit.yaml")
    assert load_suite(tmp_path / "distilled.audit.yaml").name == "distilled"


@pytest.mark.parametrize(("change", "message"), [
    ({"target": "lable"}, "eval.csv: no column 'lable' (--target); the columns: " + COLUMNS),
    ({"out": "x.yaml"}, "x.yaml: a suite file's name ends in .audit.yaml (pytest and "
                        "distill-audit run collect only those); e.g. -o x.audit.yaml"),
    ({"student": "model.bin"}, "student model.bin: cannot tell the model kind from the suffix "
                               "'.bin'; use a .skops, .onnx, .pt, .pth, .pt2 file, or a pickle "
                               "(.joblib, .pickle, .pkl)"),
    ({"student": "gone.onnx"}, "student gone.onnx: not found"),
    ({"sensitive": ["released"]}, "eval.csv: sensitive column(s) released not among the feature "
                                  "columns (colour, year, age, sex, employed, citizen, checks)"),
], ids=["unknown-target", "not-a-suite-name", "unknown-suffix", "missing-model",
        "sensitive-target"])
def test_bad_arguments(arrests: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                       change: dict[str, Any], message: str) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "eval.csv").write_bytes((arrests / "eval.csv").read_bytes())
    (tmp_path / "model.bin").write_bytes(b"")
    args: dict[str, Any] = {"teacher": arrests / "teacher.skops",
                            "student": arrests / "student.onnx", "data": Path("eval.csv"),
                            "target": None, "out": "x.audit.yaml"}
    args.update(change)
    args = {k: Path(v) if k in ("student", "out") else v for k, v in args.items()}
    with pytest.raises(InitError) as info:
        init_suite(**args)
    assert str(info.value) == message


def test_column_names_that_need_quoting_stay_one_valid_value(arrests: Path, tmp_path: Path,
                                                             pickles: tuple[Path, Path]) -> None:
    """Column names are written into YAML values and comments: quoted where needed, and never
    able to end a comment line."""
    model, marker = pickles
    table = pd.read_csv(arrests / "eval.csv").rename(columns={
        "sex": "sex: #1", "colour": "colour\n# injected: true", "released": "label"})
    table.to_csv(tmp_path / "eval.csv", index=False)
    out = init_suite(model, model, tmp_path / "eval.csv", target=None,
                     out=tmp_path / "q.audit.yaml")
    text = out.read_text(encoding="utf-8")
    assert "\n# injected" not in text and "injected: true" not in yaml.safe_load(text)
    line = next(x for x in text.splitlines() if x.startswith("  # sensitive:"))
    suggested = yaml.safe_load(line.replace("  # sensitive:", "sensitive:"))["sensitive"]
    assert suggested == ["colour\n# injected: true", {"column": "age", "quantiles": 4},
                         "sex: #1", "citizen"]
    suite = load_suite(reviewed(out, trust=True, sensitive=True))
    assert suite.data.target == "label"  # the usual name, as no model could be read
    assert suite.data.sensitive == ("colour\n# injected: true", "age", "sex: #1", "citizen")
    assert not marker.exists()


def test_init_with_a_baseline_writes_it_and_a_bound_on_it(arrests: Path, tmp_path: Path) -> None:
    out = init_suite(arrests / "teacher.skops", arrests / "student.onnx", arrests / "eval.csv",
                     target=None, out=tmp_path / "b.audit.yaml",
                     baseline=arrests / "baseline.skops")
    suite = load_suite(out)
    assert suite.baseline is not None and suite.baseline.kind == "skops"
    assert suite.check("accuracy").gate.max_baseline_regression == 0.01
    text = out.read_text(encoding="utf-8")
    (line,) = [x for x in text.splitlines() if x.startswith("baseline: ")]
    assert line.endswith("baseline.skops   # skops; classes No, Yes (read from the model)")
