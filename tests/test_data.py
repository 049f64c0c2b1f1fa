"""Reading the eval and train tables (audit/data/): CSV and Parquet, columns, labels, errors."""

from __future__ import annotations

import hashlib
import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from audit.data import Table, file_sha256, load_table, read_table
from audit.errors import DataError, display_path

COLUMNS = "label, x, colour, sex, age"


@pytest.fixture
def frame() -> pd.DataFrame:
    return pd.DataFrame({
        "label": ["Yes", "No", "Yes", "No", "No"],
        "x": [0.5, -1.25, 3.0, 0.0, 2.5],
        "colour": ["White", "Black", "White", "White", "Black"],
        "sex": ["Male", "Female", "Male", "Male", "Female"],
        "age": [22, 35, 41, 19, 60],
    })


@pytest.fixture
def csv(tmp_path: Path, frame: pd.DataFrame) -> Path:
    path = tmp_path / "eval.csv"
    frame.to_csv(path, index=False)
    return path


@pytest.fixture
def parquet(tmp_path: Path, frame: pd.DataFrame) -> Path:
    path = tmp_path / "eval.parquet"
    frame.to_parquet(path, index=False)
    return path


def spec(path: Path, **kw):  # noqa: ANN201 - a DataSpec
    from audit.suite import DataSpec

    return DataSpec(eval=path, target=kw.pop("target", "label"), **kw)


def assert_same_table(a: Table, b: Table) -> None:
    pd.testing.assert_frame_equal(a.features, b.features)
    pd.testing.assert_series_equal(a.labels, b.labels)
    pd.testing.assert_frame_equal(a.sensitive, b.sensitive)
    assert a.role == b.role and a.n_rows == b.n_rows


def where(path: Path) -> str:
    return display_path(path)


# --------------------------------------------------------------------------- reading
def test_csv_and_parquet_give_the_same_table(csv: Path, parquet: Path) -> None:
    a = load_table(spec(csv, sensitive=("colour", "sex")))
    b = load_table(spec(parquet, sensitive=("colour", "sex")))
    assert_same_table(a, b)
    assert a.features["age"].dtype == np.int64 and a.features["x"].dtype == np.float64
    assert a.path == csv and b.path == parquet


@pytest.mark.parametrize("name", ["csv", "parquet"])
def test_sha256_is_the_file_content(name: str, request: pytest.FixtureRequest) -> None:
    path: Path = request.getfixturevalue(name)
    table = load_table(spec(path))
    assert table.sha256 == hashlib.sha256(path.read_bytes()).hexdigest() == file_sha256(path)


def test_sha256_changes_with_any_byte(csv: Path) -> None:
    before = load_table(spec(csv)).sha256
    csv.write_bytes(csv.read_bytes().replace(b"0.5", b"0.6", 1))
    assert load_table(spec(csv)).sha256 != before


def test_features_default_to_all_but_the_target(csv: Path, frame: pd.DataFrame) -> None:
    table = load_table(spec(csv))
    assert list(table.features.columns) == ["x", "colour", "sex", "age"]
    assert table.labels.tolist() == frame["label"].tolist()
    assert table.labels.name == "label"
    assert table.sensitive.shape == (5, 0)
    assert table.n_rows == 5 and table.role == "eval"


def test_explicit_features_keep_their_order(csv: Path) -> None:
    table = load_table(spec(csv, features=("age", "x")))
    assert list(table.features.columns) == ["age", "x"]
    assert table.features["age"].tolist() == [22, 35, 41, 19, 60]


def test_sensitive_columns_are_kept_aside(csv: Path) -> None:
    """Kept aside for slicing; they stay model inputs unless features leaves them out."""
    table = load_table(spec(csv, sensitive=("sex", "colour")))
    assert list(table.sensitive.columns) == ["sex", "colour"]
    assert table.sensitive["sex"].tolist() == ["Male", "Female", "Male", "Male", "Female"]
    assert list(table.features.columns) == ["x", "colour", "sex", "age"]
    only = load_table(spec(csv, sensitive=("sex",), features=("x", "age")))
    assert list(only.features.columns) == ["x", "age"]
    assert list(only.sensitive.columns) == ["sex"]


def test_train_table(tmp_path: Path, csv: Path, frame: pd.DataFrame) -> None:
    train = tmp_path / "train.csv"
    frame.iloc[:3].to_csv(train, index=False)
    table = load_table(spec(csv, train=train), "train")
    assert table.role == "train" and table.path == train and table.n_rows == 3


def test_no_train_table_named(csv: Path) -> None:
    with pytest.raises(DataError) as info:
        load_table(spec(csv), "train")
    assert str(info.value) == "the suite names no train table; add data.train"


def test_fixture_tables_load(arrests: Path, digits: Path) -> None:
    table = load_table(spec(arrests / "eval.csv", target="released", sensitive=("colour", "sex")))
    assert table.n_rows == 1568
    assert set(table.labels) == {"Yes", "No"}
    assert list(table.features.columns) == ["colour", "year", "age", "sex", "employed",
                                            "citizen", "checks"]
    digits_table = load_table(spec(digits / "eval.csv", target="digit"))
    assert digits_table.features.shape[1] == 64
    assert digits_table.labels.tolist()[:3] == ["1", "4", "5"]  # labels are read as text


# --------------------------------------------------------------------------- missing columns
def test_missing_target_suggests_the_close_name(csv: Path) -> None:
    with pytest.raises(DataError) as info:
        load_table(spec(csv, target="lable"))
    assert str(info.value) == (f"{where(csv)}: target column 'lable' (data.target) not found; did "
                               f"you mean 'label'? (columns: {COLUMNS})")


def test_missing_target_without_a_close_name_lists_the_columns(parquet: Path) -> None:
    with pytest.raises(DataError) as info:
        load_table(spec(parquet, target="outcome"))
    assert str(info.value) == (f"{where(parquet)}: target column 'outcome' (data.target) not found "
                               f"(columns: {COLUMNS})")


def test_missing_feature(csv: Path) -> None:
    with pytest.raises(DataError) as info:
        load_table(spec(csv, features=("x", "ages")))
    assert str(info.value) == (f"{where(csv)}: feature column 'ages' (data.features) not found; "
                               f"did you mean 'age'? (columns: {COLUMNS})")


def test_missing_sensitive(csv: Path) -> None:
    with pytest.raises(DataError) as info:
        load_table(spec(csv, sensitive=("colour", "Sex")))
    assert str(info.value) == (f"{where(csv)}: sensitive column 'Sex' (data.sensitive) not found; "
                               f"did you mean 'sex'? (columns: {COLUMNS})")


# --------------------------------------------------------------------------- labels
def test_missing_labels_are_counted_with_the_first_row(tmp_path: Path) -> None:
    path = tmp_path / "eval.csv"
    path.write_text("x,label\n1,Yes\n2,\n3,No\n4,\n5,Yes\n")
    with pytest.raises(DataError) as info:
        load_table(spec(path))
    assert str(info.value) == (f"{where(path)}: target column 'label' has 2 missing value(s), "
                               "first at data row 2; drop or label those rows")


def test_missing_labels_in_parquet(tmp_path: Path) -> None:
    path = tmp_path / "eval.parquet"
    pd.DataFrame({"x": [1.0, 2.0, 3.0], "label": [1.0, 0.0, None]}).to_parquet(path)
    with pytest.raises(DataError, match=r"has 1 missing value\(s\), first at data row 3; drop"):
        load_table(spec(path))


# --------------------------------------------------------------------------- broken files
def test_file_not_found(tmp_path: Path) -> None:
    path = tmp_path / "nope.csv"
    with pytest.raises(DataError) as info:
        read_table(path)
    assert str(info.value) == f"{where(path)}: file not found"


def test_empty_file(tmp_path: Path) -> None:
    path = tmp_path / "eval.csv"
    path.write_bytes(b"")
    with pytest.raises(DataError) as info:
        load_table(spec(path))
    assert str(info.value) == (f"{where(path)}: the file is empty; it needs a header row and data "
                               "rows")


def test_header_only_file(tmp_path: Path) -> None:
    path = tmp_path / "eval.csv"
    path.write_text("x,label\n")
    with pytest.raises(DataError) as info:
        load_table(spec(path))
    assert str(info.value) == f"{where(path)}: the table has a header but no rows"


def test_header_only_parquet(tmp_path: Path) -> None:
    path = tmp_path / "eval.parquet"
    pd.DataFrame({"x": pd.Series([], dtype=float), "label": pd.Series([], dtype=str)}
                 ).to_parquet(path)
    with pytest.raises(DataError) as info:
        load_table(spec(path))
    assert str(info.value) == f"{where(path)}: the table has a header but no rows"


def test_duplicate_column_names(tmp_path: Path) -> None:
    """pandas would silently rename the second 'x' to 'x.1'."""
    path = tmp_path / "eval.csv"
    path.write_text("x,label,x\n1,Yes,2\n3,No,4\n")
    with pytest.raises(DataError) as info:
        load_table(spec(path))
    assert str(info.value) == (f"{where(path)}: duplicate column name 'x' in the header (columns 1 "
                               "and 3); column names must be unique")


def test_a_column_literally_named_like_a_pandas_rename_is_fine(tmp_path: Path) -> None:
    path = tmp_path / "eval.csv"
    path.write_text("x,x.1,label\n1,2,Yes\n")
    assert list(load_table(spec(path)).features.columns) == ["x", "x.1"]


def test_unparseable_csv(tmp_path: Path) -> None:
    path = tmp_path / "eval.csv"
    path.write_text('x,label\n1,Yes\n2,"No\n')
    with pytest.raises(DataError) as info:
        load_table(spec(path))
    assert str(info.value) == (
        f"{where(path)}: cannot parse as CSV (Error tokenizing data. C error: EOF inside string "
        "starting at row 2); every line needs as many comma-separated fields as the header, with "
        "quotes closed")


def test_a_later_row_with_too_many_fields(tmp_path: Path) -> None:
    path = tmp_path / "eval.csv"
    path.write_text("x,label\n1,Yes\n2,No,7\n")
    with pytest.raises(DataError) as info:
        load_table(spec(path))
    assert str(info.value) == (
        f"{where(path)}: cannot parse as CSV (Error tokenizing data. C error: Expected 2 fields in "
        "line 3, saw 3); every line needs as many comma-separated fields as the header, with "
        "quotes closed")


def test_first_rows_longer_than_the_header_are_not_shifted(tmp_path: Path) -> None:
    """pandas would read the extra leading field as an index and shift x and label."""
    path = tmp_path / "eval.csv"
    path.write_text("x,label\n1,Yes,extra\n2,No,extra\n")
    with pytest.raises(DataError) as info:
        load_table(spec(path))
    assert str(info.value) == (
        f"{where(path)}: data row 1 has 3 fields but the header names 2 columns; pandas would "
        "take the 1 extra leading field(s) as a row index and shift every column. Give every row "
        "as many fields as the header (a missing header name or an unquoted comma?)")


def test_a_file_that_is_not_parquet(tmp_path: Path) -> None:
    path = tmp_path / "eval.parquet"
    path.write_text("x,label\n1,Yes\n")
    with pytest.raises(DataError, match=rf"^{re.escape(where(path))}: cannot read the table as "
                                        r"Parquet \(ArrowInvalid: .+\)$"):
        load_table(spec(path))


def test_a_file_that_is_not_text(tmp_path: Path) -> None:
    path = tmp_path / "eval.csv"
    path.write_bytes(b"x,label\n\xff\xfe,Yes\n")
    with pytest.raises(DataError, match=rf"^{re.escape(where(path))}: cannot read the table as CSV "
                                        r"\(UnicodeDecodeError: .+\)$"):
        load_table(spec(path))


# --------------------------------------------------------------------------- read literally
def test_na_words_are_group_names_and_only_an_empty_cell_is_missing(tmp_path: Path) -> None:
    path = tmp_path / "eval.csv"
    path.write_text("x,group,colour,label\n1,NA,NA,Yes\n2,None,null,No\n3,null,N/A,No\n"
                    "4,N/A,,Yes\n5,,red,No\n")
    table = load_table(spec(path, sensitive=("group",), missing_sensitive="group"))
    assert table.sensitive["group"].tolist() == ["NA", "None", "null", "N/A", "missing"]
    colour = table.features["colour"]  # a text feature is read as written too
    assert colour.iloc[:3].tolist() == ["NA", "null", "N/A"] and colour.isna().tolist()[3:] == [
        True, False]
    assert table.features["x"].dtype == np.int64  # numbers keep pandas' types


def test_labels_are_text_and_still_match_numeric_classes(tmp_path: Path) -> None:
    from audit.data import LabelEncoding

    path = tmp_path / "eval.csv"
    path.write_text("x,label\n1,1\n2,0\n3,1.0\n4,0.0\n")
    table = load_table(spec(path))
    assert table.labels.tolist() == ["1", "0", "1.0", "0.0"]
    for classes in ((0, 1), ("0", "1"), (0.0, 1.0)):
        encoding = LabelEncoding.from_models(classes, classes)
        assert encoding.encode(table.labels, "eval.csv").tolist() == [1, 0, 1, 0], classes
    path.write_text("x,label\n1,true\n2,False\n3,TRUE\n")  # pandas read these as booleans
    encoding = LabelEncoding.from_models((False, True), (False, True))
    assert encoding.encode(load_table(spec(path)).labels, "eval.csv").tolist() == [1, 0, 1]


def test_an_integer_sensitive_feature_stays_a_number_for_the_models(tmp_path: Path) -> None:
    path = tmp_path / "eval.csv"
    path.write_text("x,sex,label\n1,0,Yes\n2,1,No\n")
    table = load_table(spec(path, sensitive=("sex",)))
    assert table.features["sex"].dtype == np.int64
    assert table.sensitive["sex"].tolist() == ["0", "1"]  # group names, as written


def test_declared_types(tmp_path: Path) -> None:
    path = tmp_path / "eval.csv"
    path.write_text("code,n,f,flag,label\n01,1,1,yes,Yes\n2,2,,FALSE,No\n")
    table = load_table(spec(path, categorical=("code",),
                            dtypes=(("n", "float"), ("f", "float"), ("flag", "boolean"))))
    features = table.features
    assert features["code"].tolist() == ["01", "2"]  # as written: the leading zero stays
    assert features["n"].dtype == np.float64 and features["n"].tolist() == [1.0, 2.0]
    assert features["f"].iloc[0] == 1.0 and np.isnan(features["f"].iloc[1])
    assert features["flag"].tolist() == [True, False] and features["flag"].dtype == bool


def test_parquet_keeps_its_types_and_declared_ones_convert(tmp_path: Path) -> None:
    path = tmp_path / "eval.parquet"
    pd.DataFrame({"code": [0, 1, 2], "group": ["NA", None, "b"], "label": [1, 0, 1]}).to_parquet(path)
    table = load_table(spec(path, sensitive=("group",), missing_sensitive="group",
                            dtypes=(("code", "string"),)))
    assert table.labels.tolist() == [1, 0, 1]
    assert table.features["code"].tolist() == ["0", "1", "2"]
    assert table.sensitive["group"].tolist() == ["NA", "missing", "b"]


def test_text_of_writes_numbers_as_a_csv_does() -> None:
    from audit.coltypes import text_of

    got = text_of(pd.Series([1.0, 0.5, np.nan, 2.0]))
    assert got.iloc[[0, 1, 3]].tolist() == ["1", "0.5", "2"] and np.isnan(got.iloc[2])
    assert text_of(pd.Series([True, False])).tolist() == ["True", "False"]
    assert text_of(pd.Series([3, 1], dtype=np.int64)).tolist() == ["3", "1"]


def test_a_model_declares_its_text_columns() -> None:
    from sklearn.compose import ColumnTransformer
    from sklearn.impute import SimpleImputer
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import Pipeline, make_pipeline
    from sklearn.preprocessing import OneHotEncoder, OrdinalEncoder

    from audit.models.estimator import conform, model_column_types

    frame = pd.DataFrame({"a": ["x", "y", "x", "y"], "b": ["0", "1", "1", "0"], "c": [0, 1, 2, 3],
                          "d": [0.5, 1.5, 2.5, 3.5]})
    prep = ColumnTransformer([
        ("a", make_pipeline(SimpleImputer(strategy="most_frequent"), OneHotEncoder()), [0]),
        ("b", OrdinalEncoder(), ["b"]), ("c", OneHotEncoder(), ["c"])], remainder="passthrough")
    model = Pipeline([("prep", prep), ("clf", LogisticRegression())]).fit(frame, [0, 1, 0, 1])
    declared = model_column_types(model)
    assert declared == {"a": "string", "b": "string", "c": "number"}
    read_back = frame.assign(b=[0, 1, 1, 0], c=["0", "1", "2", "3"])  # as a reader may guess
    fed = conform(read_back, declared)
    assert fed["b"].tolist() == ["0", "1", "1", "0"] and fed["c"].tolist() == [0, 1, 2, 3]
    np.testing.assert_allclose(model.predict_proba(fed), model.predict_proba(frame))


def test_a_folder_is_not_a_missing_file(tmp_path: Path) -> None:
    folder = tmp_path / "tables.csv"
    folder.mkdir()
    with pytest.raises(DataError) as info:
        load_table(spec(folder))
    assert str(info.value) == (f"{where(folder)}: is a folder with no .parquet files; name the "
                               ".csv or .parquet file inside it")


@pytest.mark.parametrize("cell", ["0.9999999", "2.5", "inf", "1e20"])
def test_a_declared_integer_is_a_whole_int64(tmp_path: Path, cell: str) -> None:
    path = tmp_path / "eval.csv"
    path.write_text(f"n,label\n9007199254740993,Yes\n{cell},No\n")
    with pytest.raises(DataError) as info:
        load_table(spec(path, dtypes=(("n", "integer"),)))
    assert str(info.value) == (f"{where(path)} column 'n' (data.dtypes: integer) holds {cell!r} at "
                               "data row 2 (1 cell(s) in all), which is not a whole number; fix "
                               "the data, or declare the column float")
    path.write_text("n,label\n9007199254740993,Yes\n-2,No\n")
    assert load_table(spec(path, dtypes=(("n", "integer"),))).features["n"].tolist() == [
        9007199254740993, -2]
