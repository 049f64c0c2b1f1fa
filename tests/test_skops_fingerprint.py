"""A skops file's content fingerprint: the same for every dump of one model, so a re-exported,
unchanged model still hits the prediction cache; different as soon as anything learned differs;
and cheap and safe on a file that is not what it claims (it never unpickles, never imports
skops, and reads no more than the zip's directory allows)."""

from __future__ import annotations

import copy
import hashlib
import io
import json
import pickle
import subprocess
import sys
import warnings
import zipfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
import skops.io as sio
import yaml
from sklearn.datasets import load_breast_cancer, load_iris
from sklearn.ensemble import HistGradientBoostingClassifier, RandomForestClassifier
from sklearn.linear_model import LogisticRegression

import audit.models.skops_content as skops_content
from audit.data import file_sha256
from audit.errors import ModelError, display_path
from audit.models import load_model, model_fingerprint
from audit.models.base import cache_identity
from audit.models.skops_content import skops_content_sha256
from audit.runner import AuditSession, SuiteRun
from audit.spec import ModelSpec
from audit.suite import load_suite

MODELS: dict[str, Callable[[], Any]] = {
    "logistic": lambda: LogisticRegression(max_iter=500).fit(*load_iris(return_X_y=True)),
    "forest": lambda: RandomForestClassifier(n_estimators=3, max_depth=3, random_state=0).fit(
        *load_breast_cancer(return_X_y=True)),
    # shares arrays between its predictors' nodes: two nodes, one __id__, one .npy member
    "boosting": lambda: HistGradientBoostingClassifier(max_iter=3, random_state=0).fit(
        *load_breast_cancer(return_X_y=True)),
}


@pytest.fixture(scope="module")
def fitted() -> dict[str, Any]:
    return {name: make() for name, make in MODELS.items()}


def dump(model: Any, path: Path) -> Path:
    sio.dump(model, path)
    return path


def redump(model: Any, path: Path) -> Path:
    """Dump a deep copy, made while the original lives: every object (and id) is new."""
    ballast = [object() for _ in range(1000)]  # and the allocator has moved on
    dump(copy.deepcopy(model), path)
    del ballast
    return path


def write_zip(path: Path, members: dict[str, bytes], *,
              compression: int = zipfile.ZIP_STORED) -> Path:
    with zipfile.ZipFile(path, "w", compression=compression) as zf:
        for name, data in members.items():
            zf.writestr(name, data)
    return path


def schema_zip(path: Path, schema: Any, **members: bytes) -> Path:
    return write_zip(path, {"schema.json": json.dumps(schema).encode(), **members})


# ------------------------------------------------------------------------ same content
@pytest.mark.parametrize("name", list(MODELS))
def test_two_dumps_of_one_model_differ_in_bytes_but_not_in_fingerprint(
        tmp_path: Path, fitted: dict[str, Any], name: str) -> None:
    a = dump(fitted[name], tmp_path / "a.skops")
    b = redump(fitted[name], tmp_path / "b.skops")
    assert a.read_bytes() != b.read_bytes()
    assert skops_content_sha256(a) == skops_content_sha256(b)
    # what the bytes differ in: the ids in schema.json and the member names built from them
    with zipfile.ZipFile(a) as za, zipfile.ZipFile(b) as zb:
        assert set(za.namelist()) != set(zb.namelist())
        assert za.read("schema.json") != zb.read("schema.json")


@pytest.mark.parametrize("name", list(MODELS))
def test_a_dump_in_another_process_has_the_same_fingerprint(tmp_path: Path, fitted: dict[str, Any],
                                                            name: str) -> None:
    """The real case: the model is exported again by another run (other ids, other sharing of
    equal scalars, other padding bytes in the tree nodes, other time)."""
    here = dump(fitted[name], tmp_path / "here.skops")
    (tmp_path / "model.pkl").write_bytes(pickle.dumps(fitted[name]))
    code = ("import pickle, sys, skops.io as sio; "
            "sio.dump(pickle.loads(open(sys.argv[1], 'rb').read()), sys.argv[2])")
    there = tmp_path / "there.skops"
    subprocess.run([sys.executable, "-c", code, str(tmp_path / "model.pkl"), str(there)],
                   check=True)
    assert here.read_bytes() != there.read_bytes()
    assert skops_content_sha256(here) == skops_content_sha256(there)


def test_timestamps_member_order_and_compression_do_not_count(tmp_path: Path,
                                                              fitted: dict[str, Any]) -> None:
    original = dump(fitted["logistic"], tmp_path / "a.skops")
    again = tmp_path / "b.skops"
    with zipfile.ZipFile(original) as zin, zipfile.ZipFile(again, "w") as zout:
        for info in reversed(zin.infolist()):
            moved = zipfile.ZipInfo(info.filename, date_time=(1999, 12, 31, 23, 59, 58))
            moved.compress_type = zipfile.ZIP_DEFLATED
            zout.writestr(moved, zin.read(info))
    assert original.read_bytes() != again.read_bytes()
    assert skops_content_sha256(again) == skops_content_sha256(original)
    assert sio.load(again).coef_.tolist() == fitted["logistic"].coef_.tolist()


# ------------------------------------------------------------------- different content
def _coefficient(model: Any) -> None:
    model.coef_[1, 2] = np.nextafter(model.coef_[1, 2], np.inf)


def _intercept(model: Any) -> None:
    model.intercept_[0] += 1e-12


def _tree_threshold(model: Any) -> None:
    threshold = model.estimators_[1].tree_.threshold  # a writable view of the tree's nodes
    threshold[0] = np.nextafter(threshold[0], np.inf)


def _boosting_threshold(model: Any) -> None:
    nodes = model._predictors[2][0].nodes
    nodes["num_threshold"][0] = np.nextafter(nodes["num_threshold"][0], np.inf)


def _hyperparameter(model: Any) -> None:
    model.max_iter = 501  # not learned, but part of the model's state: a different file


@pytest.mark.parametrize(("name", "change"), [
    ("logistic", _coefficient), ("logistic", _intercept), ("logistic", _hyperparameter),
    ("forest", _tree_threshold), ("boosting", _boosting_threshold),
], ids=["one-coefficient", "intercept", "hyperparameter", "one-tree-threshold",
        "one-boosting-threshold"])
def test_any_changed_value_changes_the_fingerprint(
        tmp_path: Path, fitted: dict[str, Any], name: str, change: Callable[[Any], None]) -> None:
    before = skops_content_sha256(dump(fitted[name], tmp_path / "a.skops"))
    edited = copy.deepcopy(fitted[name])
    change(edited)
    assert skops_content_sha256(dump(edited, tmp_path / "b.skops")) != before


def test_a_different_model_has_a_different_fingerprint(tmp_path: Path,
                                                       fitted: dict[str, Any]) -> None:
    other = LogisticRegression(C=0.5, max_iter=500).fit(*load_iris(return_X_y=True))
    prints = {skops_content_sha256(dump(m, tmp_path / f"{i}.skops"))
              for i, m in enumerate([*fitted.values(), other])}
    assert len(prints) == len(fitted) + 1


def test_sharing_is_part_of_the_content(tmp_path: Path) -> None:
    """Ids are renamed, never dropped: one array held twice is not two equal arrays (the
    loader rebuilds the sharing from the ids), and a second dump keeps the sharing's print."""
    a = np.arange(5.0)
    shared = skops_content_sha256(dump([a, a], tmp_path / "shared.skops"))
    assert skops_content_sha256(dump([a, a.copy()], tmp_path / "two.skops")) != shared
    assert skops_content_sha256(redump([a, a], tmp_path / "again.skops")) == shared


def test_bytes_members_named_by_a_random_uuid_are_renamed_too(tmp_path: Path) -> None:
    value = {"blob": b"\x00\x01", "more": bytearray(b"xyz")}
    a, b = dump(value, tmp_path / "a.skops"), redump(value, tmp_path / "b.skops")
    with zipfile.ZipFile(a) as za, zipfile.ZipFile(b) as zb:
        assert {n for n in za.namelist() if n.endswith(".bin")}.isdisjoint(zb.namelist())
    assert skops_content_sha256(a) == skops_content_sha256(b)
    value["blob"] = b"\x00\x02"
    assert skops_content_sha256(dump(value, tmp_path / "c.skops")) != skops_content_sha256(a)


def test_renaming_is_by_first_appearance_in_sorted_key_order(tmp_path: Path) -> None:
    """The same schema with other ids and file names is the same content; the same ids with
    other sharing is not."""
    def schema(first: int, second: int, third: int, file: str) -> dict[str, Any]:
        return {"protocol": 1, "__id__": first, "content": [
            {"__id__": second, "file": file}, {"__id__": third, "content": "1"}]}

    print_of = [skops_content_sha256(schema_zip(tmp_path / f"{i}.skops", s, **{f: b"array"}))
                for i, (s, f) in enumerate([
                    (schema(11, 12, 13, "12.npy"), "12.npy"),
                    (schema(99, 7, 5, "x.npy"), "x.npy"),  # renamed: the same
                    (schema(11, 12, 12, "12.npy"), "12.npy"),  # second and third shared
                    (schema(11, 12, 13, "12.npy"), "13.npy"),  # the file is not what it names
                ])]
    assert print_of[0] == print_of[1]
    assert len({print_of[0], print_of[2], print_of[3]}) == 3


def json_node(content: str, id_: int) -> dict[str, Any]:
    return {"__class__": "str", "__module__": "builtins", "__loader__": "JsonNode",
            "content": content, "is_json": True, "__id__": id_}


def list_schema(*items: dict[str, Any]) -> dict[str, Any]:
    return {"__class__": "list", "__module__": "builtins", "__loader__": "ListNode",
            "content": list(items), "__id__": 1, "protocol": 1}


def test_equal_scalars_shared_or_not_are_the_same_content(tmp_path: Path) -> None:
    """One 0.0 held twice or two 0.0s load the same; sharing anything else still counts, and so
    does one id on two different scalars (the loader builds the first for both)."""
    def print_of(*items: dict[str, Any]) -> str:
        return skops_content_sha256(schema_zip(tmp_path / "m.skops", list_schema(*items)))

    shared = print_of(json_node("0.0", 7), json_node("0.0", 7))
    assert print_of(json_node("0.0", 8), json_node("0.0", 9)) == shared
    assert print_of(json_node("0.0", 8), json_node("0.5", 9)) != shared
    assert print_of(json_node("0.0", 7), json_node("0.5", 7)) != print_of(
        json_node("0.0", 8), json_node("0.5", 9))
    # a JSON list is mutable: one list held twice is not two equal lists
    assert print_of(json_node("[0]", 7), json_node("[0]", 7)) != print_of(
        json_node("[0]", 8), json_node("[0]", 9))


def npy(array: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    np.save(buffer, array, allow_pickle=False)
    return buffer.getvalue()


def test_padding_bytes_of_array_records_do_not_count_and_their_fields_do(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """As in scikit-learn's tree nodes: 9 bytes of fields in a 16-byte record."""
    dtype = np.dtype({"names": ["a", "b"], "formats": ["<i8", "u1"], "offsets": [0, 8],
                      "itemsize": 16})
    raw = bytearray(npy(np.array([(1, 2), (3, 4), (5, 6)], dtype=dtype)))
    start = len(raw) - 3 * 16

    def print_of(data: bytes) -> str:
        schema = {"__loader__": "NdArrayNode", "type": "numpy", "file": "1.npy", "__id__": 1,
                  "protocol": 1}
        return skops_content_sha256(schema_zip(tmp_path / "m.skops", schema, **{"1.npy": data}))

    clean = print_of(bytes(raw))
    dirty = bytearray(raw)
    dirty[start + 16 + 12] = 0xAB  # the second record's padding
    assert print_of(bytes(dirty)) == clean
    monkeypatch.setattr(skops_content, "CHUNK", 7)  # records split across reads
    assert print_of(bytes(dirty)) == clean
    monkeypatch.undo()
    assert np.array_equal(np.load(io.BytesIO(bytes(dirty))), np.load(io.BytesIO(bytes(raw))))
    field = bytearray(raw)
    field[start + 16 + 8] ^= 1  # the second record's field b
    assert print_of(bytes(field)) != clean
    assert print_of(bytes(raw[:-5])) != clean  # a cut record is hashed, not dropped
    plain = npy(np.arange(6, dtype=np.int64))  # no padding: the bytes as they are
    assert print_of(plain) != print_of(plain[:-1] + b"\x01")


# -------------------------------------------------------------- the cache's identity
def test_the_cache_identity_survives_a_re_dump_and_the_provenance_hash_does_not(
        tmp_path: Path, fitted: dict[str, Any]) -> None:
    path_a = dump(fitted["forest"], tmp_path / "a.skops")
    path_b = redump(fitted["forest"], tmp_path / "b.skops")
    trusted = ("sklearn.tree._tree.Tree",)
    a = ModelSpec(kind="skops", path=path_a, trusted_types=trusted)
    b = ModelSpec(kind="skops", path=path_b, trusted_types=trusted)
    known_a, known_b = model_fingerprint(a), model_fingerprint(b)
    assert known_a is not None and known_b is not None
    (sha_a, identity_a), (sha_b, identity_b) = known_a, known_b
    assert identity_a == identity_b == cache_identity(a, skops_content_sha256(path_a))
    assert (sha_a, sha_b) == (file_sha256(path_a), file_sha256(path_b))
    assert sha_a != sha_b
    # what the loader records is the file's own hash, as before
    assert load_model(a, "teacher").sha256 == sha_a


def iris_suite(folder: Path, teacher: Path, student: Path) -> Path:
    raw = {"version": 1, "name": "redump",
           "data": {"eval": str(folder / "eval.csv"), "target": "species"},
           "teacher": {"skops": str(teacher)}, "student": {"skops": str(student)},
           "settings": {"bootstrap": 100},
           "checks": {"accuracy": {"metric": "accuracy"}}}
    path = folder / "redump.audit.yaml"
    path.write_text(yaml.safe_dump(raw))
    return path


def test_a_cache_hit_survives_re_exporting_an_unchanged_model(tmp_path: Path) -> None:
    frame = load_iris(as_frame=True).frame
    X = frame.drop(columns="target").set_axis([f"x{i}" for i in range(4)], axis=1)
    pd.concat([X, frame["target"].rename("species")], axis=1).to_csv(tmp_path / "eval.csv",
                                                                      index=False)
    teacher = LogisticRegression(max_iter=500).fit(X, frame["target"])
    student = LogisticRegression(C=0.05, max_iter=500).fit(X, frame["target"])
    t_path, s_path = tmp_path / "teacher.skops", tmp_path / "student.skops"
    dump(teacher, t_path), dump(student, s_path)
    suite, cache = iris_suite(tmp_path, t_path, s_path), tmp_path / "cache"

    first = SuiteRun(load_suite(suite), AuditSession(cache))
    assert first.run_check("accuracy").status == "info"
    assert first.prediction_sources == {"teacher/eval": "computed", "student/eval": "computed"}
    before = t_path.read_bytes()
    redump(teacher, t_path)  # re-exported: other bytes, same model
    assert t_path.read_bytes() != before

    again = SuiteRun(load_suite(suite), AuditSession(cache))
    assert again.run_check("accuracy").to_dict() | {"details": {}} == (
        first.run_check("accuracy").to_dict() | {"details": {}})
    for role in ("teacher", "student"):  # through the prediction cache, whatever the check read
        np.testing.assert_array_equal(again.predictions(role, again.eval_table)[0],
                                      first.predictions(role, first.eval_table)[0])
    assert again.prediction_sources == {"teacher/eval": "disk", "student/eval": "disk"}
    assert again._models == {}  # authenticated: not even loaded
    # the report's provenance is the new file's own SHA-256, not the content fingerprint
    assert again.artifacts()["teacher"]["sha256"] == file_sha256(t_path)
    assert first.artifacts()["teacher"]["sha256"] == hashlib.sha256(before).hexdigest()

    edited = copy.deepcopy(teacher)
    _intercept(edited)
    dump(edited, t_path)  # a changed model misses
    changed = SuiteRun(load_suite(suite), AuditSession(cache))
    for role in ("teacher", "student"):
        changed.predictions(role, changed.eval_table)
    assert changed.prediction_sources == {"teacher/eval": "computed", "student/eval": "disk"}


# ------------------------------------------------------------------------- bad files
def _not_a_zip(path: Path) -> str:
    path.write_bytes(b"this is not a zip file")
    return "not a readable skops file (BadZipFile: File is not a zip file)"


def _truncated(path: Path) -> str:
    sio.dump(LogisticRegression().fit([[0.0], [1.0]], [0, 1]), path)
    path.write_bytes(path.read_bytes()[:200])
    return "not a readable skops file (BadZipFile: File is not a zip file)"


def _bad_crc(path: Path) -> str:
    """A real dump with one bit of one array flipped (the classic corruption)."""
    sio.dump(LogisticRegression().fit([[0.0], [1.0]], [0, 1]), path)
    data = bytearray(path.read_bytes())
    with zipfile.ZipFile(path) as zf:
        info = next(i for i in zf.infolist() if i.filename.endswith(".npy"))
    start = info.header_offset + 30 + len(info.filename) + len(info.extra)  # the local header
    data[start + info.compress_size - 1] ^= 1
    path.write_bytes(bytes(data))
    return f"not a readable skops file (BadZipFile: Bad CRC-32 for file {info.filename!r})"


def _no_schema(path: Path) -> str:
    write_zip(path, {"1.npy": b"array"})
    return ("not a readable skops file (KeyError: \"There is no item named 'schema.json' in the "
            "archive\")")


def _bad_json(path: Path) -> str:
    write_zip(path, {"schema.json": b"{not json"})
    return ("not a readable skops file (JSONDecodeError: Expecting property name enclosed in "
            "double quotes: line 1 column 2 (char 1))")


def _json_list(path: Path) -> str:
    schema_zip(path, [1, 2])
    return "not a readable skops file (ValueError: schema.json holds a JSON list, not an object)"


def _id_string(path: Path) -> str:
    schema_zip(path, {"protocol": 1, "__id__": "abc"})
    return "not fingerprinted: schema.json has __id__ 'abc', not a positive integer"


def _id_zero(path: Path) -> str:
    schema_zip(path, {"protocol": 1, "content": [{"__id__": 0}]})
    return "not fingerprinted: schema.json has __id__ 0, not a positive integer"


def _id_true(path: Path) -> str:
    schema_zip(path, {"protocol": 1, "__id__": True})
    return "not fingerprinted: schema.json has __id__ True, not a positive integer"


def _too_deep(path: Path) -> str:
    write_zip(path, {"schema.json": b'{"a":' * 100_000 + b"1" + b"}" * 100_000})
    return "not fingerprinted: schema.json is nested too deeply"


def _duplicate(path: Path) -> str:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # zipfile: Duplicate name
        write_zip(path, {"schema.json": b"{}"})
        with zipfile.ZipFile(path, "a") as zf:
            zf.writestr("schema.json", b'{"protocol": 1}')
    return "not fingerprinted: the zip holds more than one member named 'schema.json'"


def _bzip2(path: Path) -> str:
    write_zip(path, {"schema.json": b'{"protocol": 1}'}, compression=zipfile.ZIP_BZIP2)
    return ("not fingerprinted: member 'schema.json' is compressed with zip method 12 (only "
            "stored and deflated members are read)")


def _bomb(path: Path) -> str:
    write_zip(path, {"schema.json": b'{"protocol": 1}', "1.npy": bytes(1 << 20)},
              compression=zipfile.ZIP_DEFLATED)
    size = path.stat().st_size
    return (f"not fingerprinted: its members expand to {(1 << 20) + 15} bytes, over the bound "
            f"of {4 * size} for a {size}-byte file")


BAD_FILES = {"not-a-zip": _not_a_zip, "truncated": _truncated, "bad-crc": _bad_crc,
             "no-schema": _no_schema, "bad-json": _bad_json, "json-list": _json_list,
             "id-string": _id_string, "id-zero": _id_zero, "id-true": _id_true,
             "too-deep": _too_deep, "duplicate-member": _duplicate, "bzip2": _bzip2,
             "zip-bomb": _bomb}


@pytest.mark.parametrize("make", list(BAD_FILES.values()), ids=list(BAD_FILES))
def test_a_file_that_cannot_be_fingerprinted_is_named_and_keyed_on_its_bytes(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, make: Callable[[Path], str]) -> None:
    monkeypatch.setattr(skops_content, "MAX_EXPANDED_BYTES", 1000)
    path = tmp_path / "model.skops"
    message = make(path)
    with pytest.raises(ModelError) as caught:
        skops_content_sha256(path)
    assert str(caught.value) == f"{display_path(path)}: {message}"
    # the cache keys such a file on its bytes, as before; the loader judges whether it loads
    spec = ModelSpec(kind="skops", path=path)
    sha = file_sha256(path)
    assert model_fingerprint(spec) == (sha, cache_identity(spec, sha))


def test_a_corrupted_file_fails_to_load_with_the_loaders_message(tmp_path: Path) -> None:
    path = tmp_path / "model.skops"
    message = _bad_crc(path)
    with pytest.raises(ModelError) as caught:
        load_model(ModelSpec(kind="skops", path=path), "student")
    assert str(caught.value) == f"student ({display_path(path)}): {message}"


def test_members_are_streamed_in_chunks(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A member is hashed chunk by chunk, and the chunking does not change the print."""
    path = write_zip(tmp_path / "m.skops", {"schema.json": b'{"protocol": 1, "file": "1.npy"}',
                                            "1.npy": bytes(range(256)) * 40})
    whole = skops_content_sha256(path)
    reads: list[int] = []
    real_open = zipfile.ZipFile.open

    def counting_open(self: zipfile.ZipFile, name: Any, *args: Any, **kw: Any) -> Any:
        stream = real_open(self, name, *args, **kw)
        real_read = stream.read

        def read(n: int = -1) -> bytes:
            reads.append(n)
            return real_read(n)

        stream.read = read  # type: ignore[method-assign]
        return stream

    monkeypatch.setattr(skops_content, "CHUNK", 1000)
    monkeypatch.setattr(zipfile.ZipFile, "open", counting_open)
    assert skops_content_sha256(path) == whole
    # 12 bytes to tell whether it is a .npy array, then 10228 bytes in 11 reads, then the end
    assert -1 not in reads and reads[-13:] == [12] + [1000] * 12
