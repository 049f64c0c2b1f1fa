"""Bad data, read literally: one small case each, asserting the exact located message.

Every case writes an eval table (and, for the model cases, a scikit-learn pipeline saved with
skops) into ``tmp_path``, runs ``distill-audit validate --deep`` on a suite over it, and
asserts the whole output: the file, the row, the column and the fix, and never a traceback.
``validate --deep`` reads the data, loads both models and has them predict the first rows, so
it says what ``run`` would hit.

The suite (line numbers for reading the expected messages)::

    1 version   2 name   3 data   4 eval   5 target   6 sensitive   7.. extra data keys
    then teacher, student, checks
"""

from __future__ import annotations

import csv
import io
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

from audit.cli import main

EVAL = """\
x,group,label
0.5,a,Yes
1.5,b,No
-0.5,a,No
2.0,b,Yes
"""
AGES = "x,age,label\n" + "".join(f"{i % 3},{20 + i},{'Yes' if i % 2 else 'No'}\n"
                                  for i in range(25))  # 25 distinct ages, 20 to 44
PREDICTIONS = '{predictions: %s.csv, columns: [p_No, p_Yes], classes: ["No", "Yes"]}'


def suite(extra: str = "", *, teacher: str = PREDICTIONS % "teacher",
          student: str = PREDICTIONS % "student", eval: str = "eval.csv",  # noqa: A002
          target: str = "label", sensitive: str = "[group]") -> str:
    return (f"version: 1\nname: bad\ndata:\n  eval: {eval}\n  target: {target}\n"
            f"  sensitive: {sensitive}\n{extra}teacher: {teacher}\nstudent: {student}\n"
            "checks:\n  acc: {metric: accuracy}\n")


def predictions_for(table: str) -> str:
    """A probability file with one row per data row of ``table`` (its records, not lines)."""
    rows = [r for r in csv.reader(io.StringIO(table)) if r][1:]
    return "p_No,p_Yes\n" + "0.25,0.75\n" * len(rows)


# ------------------------------------------------------------------------ the skops models
def _pipeline(codes: list[Any], *, first: bool = False, unknown: str = "ignore") -> Any:
    """LogisticRegression on a one-hot ``grade`` (fitted on ``codes``) and a numeric ``x``;
    ``first`` puts a FunctionTransformer before the encoder, which hides its columns from a
    strict reading (so only the failure explains them)."""
    from sklearn.compose import ColumnTransformer
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import FunctionTransformer, OneHotEncoder

    n = 60
    x = np.random.default_rng(0).normal(size=n)
    frame = pd.DataFrame({"grade": [codes[i % 3] for i in range(n)], "x": x})
    y = ((x + (np.arange(n) % 3 == 2)) > 0.5).astype(int)
    prep = ColumnTransformer([("cat", OneHotEncoder(handle_unknown=unknown), ["grade"])],
                             remainder="passthrough")
    steps = [("prep", prep), ("clf", LogisticRegression())]
    if first:
        steps.insert(0, ("same", FunctionTransformer()))
    return Pipeline(steps).fit(frame, y)


def _plain() -> Any:
    """LogisticRegression on two numeric columns x, y (labels No/Yes), fitted on a DataFrame."""
    from sklearn.linear_model import LogisticRegression

    frame = pd.DataFrame({"x": [0.5, 1.5, -0.5, 2.0], "y": [1, 2, 3, 4]})
    return LogisticRegression().fit(frame, ["Yes", "No", "No", "Yes"])


@pytest.fixture(scope="module")
def models(tmp_path_factory: pytest.TempPathFactory) -> dict[str, bytes]:
    import skops.io as sio

    folder = tmp_path_factory.mktemp("models")
    built = {"codes": _pipeline(["0", "1", "2"]), "hidden": _pipeline(["0", "1", "2"], first=True),
             "strict": _pipeline(["0", "1", "2"], unknown="error"), "numbers": _pipeline([0, 1, 2]),
             "plain": _plain()}
    out = {}
    for name, model in built.items():
        sio.dump(model, folder / f"{name}.skops")
        out[name] = (folder / f"{name}.skops").read_bytes()
    return out


GRADES = "grade,x,label,group\n0,0.5,1,a\n1,-1.0,0,b\n2,2.0,1,a\n1,0.1,0,b\n0,1.2,1,a\n"
SKOPS = "{skops: %s.skops}"


def skops_suite(extra: str = "", model: str = "codes") -> str:
    return suite(extra, teacher=SKOPS % model, student=SKOPS % model)


def isnan() -> str:
    return ("scikit-learn said: TypeError: ufunc 'isnan' not supported for the input types, and "
            "the inputs could not be safely coerced to any supported types according to the "
            "casting rule ''safe''")


# ------------------------------------------------------------------------ the cases
def case(text: str, table: str | None, expected: str, *, files: dict[str, str] | None = None,
         id: str) -> Any:  # noqa: A002 - mirrors pytest.param
    return pytest.param(text, table, files or {}, expected, id=id)


FIX_ROWS = ("Give every row as many fields as the header (write an empty field as two commas)")
OK = "ok: bad.audit.yaml: suite 'bad', 1 check (acc)"

CASES = [
    # paths that are folders, not files
    case(suite(eval="tables"), None,
         "error: bad.audit.yaml:4 data.eval='tables': is a folder with no .parquet files; name a "
         ".csv or .parquet file, or a folder of .parquet files", files={"tables/eval.csv": EVAL},
         id="folder-as-eval-path"),
    case(suite(teacher="{predictions: preds, columns: [p_No, p_Yes], classes: [\"No\", \"Yes\"]}"), EVAL,
         "error: bad.audit.yaml:7 teacher.predictions='preds': is a folder (preds), not a file; name "
         "the file inside it", files={"preds/teacher.csv": "p_No,p_Yes\n"},
         id="folder-as-model-path"),
    case(suite(teacher="model.skops"), EVAL,
         "error: bad.audit.yaml:7 teacher='model.skops': is a folder (model.skops), not a file; "
         "name the file inside it", files={"model.skops/x": ""}, id="folder-named-like-a-model"),
    # rows with the wrong number of fields
    case(suite(), "x,group,label\n0.5,a,Yes\n1.5,b\n-0.5,a,No\n",
         "error: bad.audit.yaml: eval.csv: data row 2 (line 3) has 2 field(s) but the header names "
         f"3 columns; the last 1 (label) would read as missing. {FIX_ROWS}", id="short-row"),
    case(suite(), "x,group,label\n0.5,a,Yes\n1.5,b,No\n\n-0.5\n",
         "error: bad.audit.yaml: eval.csv: data row 3 (line 5) has 1 field(s) but the header names "
         f"3 columns; the last 2 (group, label) would read as missing. {FIX_ROWS}",
         id="short-row-after-a-blank-line"),
    case(suite(), "x,label,group\n0.5,Yes,a\n1.5,No\n",
         "error: bad.audit.yaml: eval.csv: data row 2 (line 3) has 2 field(s) but the header names "
         f"3 columns; the last 1 (group) would read as missing. {FIX_ROWS}",
         id="short-row-not-a-missing-sensitive-value"),
    case(suite(), "x,group,label\n0.5,a,Yes,1\n1.5,b,No,2\n",
         "error: bad.audit.yaml: eval.csv: data row 1 has 4 fields but the header names 3 columns; "
         "pandas would take the 1 extra leading field(s) as a row index and shift every column. "
         "Give every row as many fields as the header (a missing header name or an unquoted "
         "comma?)", id="long-rows"),
    case(suite(), "x,group,label\n0.5,a,Yes\n1.5,b,No,2\n",
         "error: bad.audit.yaml: eval.csv: cannot parse as CSV (Error tokenizing data. C error: "
         "Expected 3 fields in line 3, saw 4); every line needs as many comma-separated fields as "
         "the header, with quotes closed", id="long-row-later"),
    # NA-like words are values; only an empty cell is missing
    case(suite(), "x,group,label\n0.5,NA,Yes\n1.5,None,No\n-0.5,null,No\n2.0,N/A,Yes\n", OK,
         id="na-named-groups-are-groups"),
    case(suite(), "x,group,label\n0.5,a,Yes\n1.5,,No\n",
         "error: bad.audit.yaml: eval.csv: sensitive column 'group' has 1 row with a missing "
         "value, first at data row 2; fill them, or set data.missing_sensitive: group to slice "
         "them as their own group 'missing'", id="empty-sensitive-cell"),
    case(suite(), "x,group,label\n0.5,a,Yes\n1.5,b,\n",
         "error: bad.audit.yaml: eval.csv: target column 'label' has 1 missing value(s), first at "
         "data row 2; drop or label those rows", id="empty-label-cell"),
    case(suite(), "x,group,label\n0.5,a,Yes\n1.5,b,NA\n",
         "error: bad.audit.yaml: eval.csv column 'label': labels ['NA'] (1 row, first at data row "
         "2) are not among the models' classes ['No', 'Yes']; drop those rows or audit models "
         "that know those classes", id="na-label-is-a-label"),
    # numeric sensitive columns: binned, or refused with how to bin them
    case(suite(sensitive="[age]"), AGES,
         "error: bad.audit.yaml:6 data.sensitive[0]='age': column 'age' of eval.csv holds "
         "numbers with 25 distinct values, too many to take each value as a group (a numeric "
         "column with more than 20 distinct values must be binned); bin it: {column: age, bins: "
         "[26, 32, 38]} (edges: its quartiles, rounded) or {column: age, quantiles: 4}, or list "
         "it in data.categorical to keep every value as a group", id="numeric-sensitive-unbinned"),
    case(suite(sensitive="[{column: age, bins: [30, 40]}]"), AGES, OK,
         id="numeric-sensitive-binned"),
    case(suite(sensitive="[{column: age, quantiles: 4}]"), AGES, OK,
         id="numeric-sensitive-quantiles"),
    case(suite("  categorical: [age]\n", sensitive="[age]"), AGES, OK,
         id="numeric-sensitive-declared-categorical"),
    case(suite(), EVAL.replace(",a,", ",0,").replace(",b,", ",1,"), OK,
         id="zero-one-sensitive-is-two-groups"),
    case(suite(sensitive="[{column: age, bins: [30]}]"), AGES.replace("\n1,21,", "\n1,old,"),
         "error: bad.audit.yaml: eval.csv: sensitive column 'age' is binned (data.sensitive) but "
         "holds 'old' at data row 2 (1 row in all), which is not a number; fix the data, leave "
         "the cell empty to make it missing, or list the column by name to take its values as "
         "groups", id="binned-sensitive-holds-text"),
    case(suite(sensitive="[{column: age, bins: [30]}]"), AGES.replace("\n1,21,", "\n1,,"),
         "error: bad.audit.yaml: eval.csv: sensitive column 'age' has 1 row with a missing "
         "value, first at data row 2; fill them, or set data.missing_sensitive: group to slice "
         "them as their own group 'missing'", id="binned-sensitive-empty-cell"),
    # data.dtypes and data.categorical, as written
    case(suite("  dtypes: {gruop: string}\n"), EVAL,
         "error: bad.audit.yaml: eval.csv: declared column 'gruop' (data.dtypes) not found; did "
         "you mean 'group'? (columns: x, group, label)", id="dtypes-unknown-column"),
    case(suite("  categorical: [grup]\n"), EVAL,
         "error: bad.audit.yaml: eval.csv: declared column 'grup' (data.categorical) not found; "
         "did you mean 'group'? (columns: x, group, label)", id="categorical-unknown-column"),
    case(suite("  dtypes: {x: str}\n"), EVAL,
         "error: bad.audit.yaml:7 data.dtypes.x='str': unknown column type; did you mean 'string'? "
         "(valid: string, integer, float, boolean)", id="dtype-alias"),
    case(suite("  dtypes: {x: flaot}\n"), EVAL,
         "error: bad.audit.yaml:7 data.dtypes.x='flaot': unknown column type; did you mean "
         "'float'? (valid: string, integer, float, boolean)", id="dtype-misspelt"),
    case(suite("  dtypes: [x]\n"), EVAL,
         "error: bad.audit.yaml:7 data.dtypes=['x']: must be a mapping of column -> type, e.g. "
         "{age: integer, grade: string} (types: string, integer, float, boolean)",
         id="dtypes-a-list"),
    case(suite("  dtypes: {label: string}\n"), EVAL,
         "error: bad.audit.yaml:7 data.dtypes='label': is the target; labels are always read as "
         "text and matched to the models' classes; remove it", id="dtypes-on-the-target"),
    case(suite("  categorical: [x]\n  dtypes: {x: float}\n"), EVAL,
         "error: bad.audit.yaml:8 data.dtypes.x='float': but data.categorical lists 'x' (read as "
         "text); keep one of the two", id="categorical-and-dtypes-disagree"),
    case(suite("  dtypes: {x: integer}\n"), EVAL,
         "error: bad.audit.yaml: eval.csv column 'x' (data.dtypes: integer) holds '0.5' at data "
         "row 1 (3 cell(s) in all), which is not a whole number; fix the data, or declare the "
         "column float", id="wrong-declared-integer"),
    case(suite("  dtypes: {x: integer}\n"), "x,group,label\n1,a,Yes\nten,b,No\n",
         "error: bad.audit.yaml: eval.csv column 'x' (data.dtypes: integer) holds 'ten' at data "
         "row 2 (1 cell(s) in all), which is not a whole number; fix the data, or declare the "
         "column string", id="integer-holding-text"),
    case(suite("  dtypes: {x: float}\n"), "x,group,label\n1.5,a,Yes\nn/a,b,No\n",
         "error: bad.audit.yaml: eval.csv column 'x' (data.dtypes: float) holds 'n/a' at data row "
         "2 (1 cell(s) in all), which is not a number; fix the data, or declare the column string",
         id="float-holding-a-na-word"),
    case(suite("  dtypes: {x: integer}\n"), "x,group,label\n1,a,Yes\n,b,No\n",
         "error: bad.audit.yaml: eval.csv column 'x' (data.dtypes: integer) has 1 empty cell(s), "
         "first at data row 2; integer cells cannot be missing: fill them, or declare the column "
         "float (empty cells become NaN)", id="integer-with-an-empty-cell"),
    case(suite("  dtypes: {x: boolean}\n"), "x,group,label\nyes,a,Yes\nmaybe,b,No\n",
         "error: bad.audit.yaml: eval.csv column 'x' (data.dtypes: boolean) holds 'maybe' at data "
         "row 2 (1 cell(s) in all), which is not a boolean; write true/false, yes/no or 1/0, or "
         "declare the column string", id="boolean-holding-maybe"),
    case(suite("  dtypes: {x: boolean}\n"), "x,group,label\nTRUE,a,Yes\n,b,No\n",
         "error: bad.audit.yaml: eval.csv column 'x' (data.dtypes: boolean) has 1 empty cell(s), "
         "first at data row 2; boolean cells cannot be missing: fill them, or declare the column "
         "string", id="boolean-with-an-empty-cell"),
    case(suite("  dtypes: {x: boolean}\n"), "x,group,label\nTRUE,a,Yes\nno,b,No\n0,a,No\nYes,b,Yes\n",
         OK, id="bool-ish-strings-are-booleans"),
    # int-coded categories and the models that were fitted on them as text
    case(skops_suite(), GRADES, OK, id="int-coded-categories-fed-as-the-model-declares"),
    case(skops_suite(model="hidden"), GRADES,
         "error: bad.audit.yaml: teacher (hidden.skops) failed to predict on eval.csv at data row "
         "1: column 'grade' is int64 in the table, but the model was fitted on it as text (its "
         "categories are strings); declare it with data.dtypes: {grade: string} or list it in "
         f"data.categorical ({isnan()})", id="int-coded-categories-the-model-hides"),
    case(skops_suite("  dtypes: {grade: string}\n", model="hidden"), GRADES, OK,
         id="int-coded-categories-declared"),
    case(skops_suite("  categorical: [grade]\n", model="hidden"), GRADES, OK,
         id="int-coded-categories-declared-categorical"),
    case(skops_suite(model="strict"), GRADES.replace("\n2,2.0", "\n3,2.0"),
         "error: bad.audit.yaml: teacher (strict.skops) failed to predict on eval.csv at data row "
         "3: column 'grade' holds '3' (1 row in all), a category the model never saw (it knows "
         "'0', '1', '2') and its encoder refuses (handle_unknown='error'); drop those rows, or "
         "refit the encoder with handle_unknown='ignore' (scikit-learn said: ValueError: Found "
         "unknown categories ['3'] in column 0 during transform)", id="unseen-category"),
    case(skops_suite("  categorical: [grade]\n", model="numbers"), GRADES, OK,
         id="categorical-declared-on-a-model-fitted-on-numbers"),
    case(skops_suite(), GRADES.replace("grade,", "grad,"),
         "error: bad.audit.yaml: teacher (codes.skops) failed to predict on eval.csv: the model "
         "was fitted on columns that are not feature columns of the table: grade; add them to the "
         "table (or to data.features) (scikit-learn said: ValueError: columns are missing: "
         "{'grade'})", id="a-column-the-model-needs-is-absent"),
    case(suite(teacher=SKOPS % "plain", student=SKOPS % "plain"),
         "x,y,group,label\n0.5,1,a,Yes\n1.5,2,b,No\n-0.5,3,a,No\n2.0,4,b,Yes\n",
         "error: bad.audit.yaml: teacher (plain.skops) failed to predict on eval.csv: the table has "
         "feature columns the model was not fitted on: group; list the model's columns under "
         "data.features (x, y) (scikit-learn said: ValueError: The feature names should match "
         "those that were passed during fit.)", id="a-column-the-model-never-saw"),
]


@pytest.mark.parametrize(("text", "table", "files", "expected"), CASES)
def test_bad_data_input(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                        capsys: pytest.CaptureFixture[str], models: dict[str, bytes], text: str,
                        table: str | None, files: dict[str, str], expected: str) -> None:
    monkeypatch.chdir(tmp_path)
    for name, content in files.items():
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text(content, encoding="utf-8")
    if table is not None:
        (tmp_path / "eval.csv").write_text(table, encoding="utf-8")
        for who in ("teacher", "student"):
            (tmp_path / f"{who}.csv").write_text(predictions_for(table), encoding="utf-8")
    for name, blob in models.items():
        (tmp_path / f"{name}.skops").write_bytes(blob)
    (tmp_path / "bad.audit.yaml").write_text(text, encoding="utf-8")
    code = main(["validate", "--deep", "bad.audit.yaml"])
    out = capsys.readouterr()
    shown = (out.out + out.err).strip()
    assert "Traceback" not in shown
    assert shown == expected
    assert code == (0 if expected.startswith("ok:") else 2)


def test_there_are_enough_cases() -> None:
    assert len(CASES) >= 20


@pytest.mark.parametrize(("extra", "student"), [("", "codes"), ("  categorical: [grade]\n", "hidden")],
                         ids=["declared-by-the-model", "declared-by-the-suite"])
def test_a_run_on_int_coded_categories_measures(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                models: dict[str, bytes], extra: str,
                                                student: str) -> None:
    """The finding itself: a pipeline fitted on text codes, audited on a CSV written by pandas
    (which reads the codes back as integers), measures instead of erroring on every check."""
    from audit.runner import SuiteRun
    from audit.suite import load_suite

    monkeypatch.chdir(tmp_path)
    rng = np.random.default_rng(1)
    frame = pd.DataFrame({"grade": rng.choice(["0", "1", "2"], 80), "x": rng.normal(size=80),
                          "group": rng.choice(["NA", "b"], 80)})
    frame["label"] = (frame["x"] > 0).astype(int)
    frame.to_csv(tmp_path / "eval.csv", index=False)
    assert pd.read_csv(tmp_path / "eval.csv")["grade"].dtype == np.int64  # what pandas guesses
    for name in ("codes", "hidden"):
        (tmp_path / f"{name}.skops").write_bytes(models[name])
    text = suite(extra, teacher=SKOPS % "codes", student=SKOPS % student)
    (tmp_path / "bad.audit.yaml").write_text(text.replace("acc: {metric: accuracy}",
                                                          "acc: {metric: accuracy}\n"
                                                          "  fair: {metric: demographic_parity_difference}"))
    run = SuiteRun(load_suite(tmp_path / "bad.audit.yaml"))
    for name in ("acc", "fair"):
        result = run.run_check(name)
        assert result.status != "error", result.error
    groups = set(run.eval_table.sensitive["group"])
    assert groups == {"NA", "b"}  # a group named NA, not a missing value


def test_a_declared_type_is_part_of_the_prediction_cache_key(tmp_path: Path,
                                                             monkeypatch: pytest.MonkeyPatch,
                                                             models: dict[str, bytes]) -> None:
    """What a model is fed depends on the declared types: declaring one must not reuse
    predictions made on the columns as they were read before."""
    from audit.runner import AuditSession
    from audit.suite import load_suite

    monkeypatch.chdir(tmp_path)
    (tmp_path / "eval.csv").write_text(GRADES)
    (tmp_path / "codes.skops").write_bytes(models["codes"])
    sources = []
    for extra in ("", "", "  dtypes: {x: string}\n"):
        (tmp_path / "bad.audit.yaml").write_text(skops_suite(extra))
        run = AuditSession(tmp_path / "cache").run_for(load_suite(tmp_path / "bad.audit.yaml"))
        run.predictions("teacher", run.eval_table)
        sources.append(run.prediction_sources["teacher/eval"])
    assert sources == ["computed", "disk", "computed"]


def test_an_onnx_string_input_gets_numbers_as_written() -> None:
    from audit.errors import ModelError
    from audit.models.onnx import _column_as

    for column in (pd.Series([0, 1, 2], name="grade"), pd.Series([0.0, 1.0, 2.0], name="grade"),
                   pd.Series(["0", "1", "2"], name="grade")):
        fed = _column_as(column, "tensor(string)", "student (m.onnx)", "eval.csv")
        assert fed.ravel().tolist() == ["0", "1", "2"] and fed.shape == (3, 1)
    with pytest.raises(ModelError) as info:
        _column_as(pd.Series([0.0, np.nan], name="grade"), "tensor(string)", "student (m.onnx)",
                   "eval.csv")
    assert str(info.value) == ("student (m.onnx): column 'grade' of eval.csv has an empty cell at "
                               "data row 2, but the model's input 'grade' is tensor(string), which "
                               "takes text and has no missing value; fill the cells or drop those "
                               "rows")


@pytest.mark.parametrize(("data", "valid"), [
    pytest.param({"dtypes": {"x": "integer", "group": "string"}}, True, id="dtypes"),
    pytest.param({"categorical": ["group"]}, True, id="categorical"),
    pytest.param({"dtypes": {"x": "str"}}, False, id="dtypes-alias"),
    pytest.param({"dtypes": ["x"]}, False, id="dtypes-a-list"),
    pytest.param({"dtypes": {}}, False, id="dtypes-empty"),
    pytest.param({"categorical": "group"}, False, id="categorical-not-a-list"),
])
def test_schema_and_parser_agree_on_the_data_types(tmp_path: Path, data: dict[str, Any],
                                                   valid: bool) -> None:
    from jsonschema import Draft202012Validator

    from audit.errors import SuiteError
    from audit.suite import suite_from_dict, suite_json_schema

    (tmp_path / "eval.csv").write_text(EVAL)
    for who in ("teacher", "student"):
        (tmp_path / f"{who}.csv").write_text(predictions_for(EVAL))
    columns = {"columns": ["p_No", "p_Yes"], "classes": ["No", "Yes"]}
    doc = {"version": 1, "name": "bad",
           "data": {"eval": "eval.csv", "target": "label", "sensitive": ["group"], **data},
           "teacher": {"predictions": "teacher.csv", **columns},
           "student": {"predictions": "student.csv", **columns},
           "checks": {"acc": {"metric": "accuracy"}}}
    errors = list(Draft202012Validator(suite_json_schema()).iter_errors(doc))
    assert (errors == []) is valid
    if valid:
        suite_from_dict(doc, base_dir=tmp_path)
    else:
        with pytest.raises(SuiteError):
            suite_from_dict(doc, base_dir=tmp_path)
