"""The compressed-student fixture (:mod:`fixtures.quantized`): a float MLP student and its
int8 copy from onnxruntime's ``quantize_dynamic``, recomputed here with onnx and onnxruntime
called directly, and the example suite that audits the compression."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import onnx
import pandas as pd
import pytest

from fixtures import quantized as Q

ROOT = Path(__file__).resolve().parents[1]
LABEL = "released"
FEATURES = ["colour", "year", "age", "sex", "employed", "citizen", "checks"]
# the int8 copy's probabilities stay within this of the float model's, on every eval row, in
# one call or row by row (measured: 0.0108 and 0.0051; per-tensor activation scales depend on
# the rows a call holds, so a row's int8 output moves with its batch)
TOLERANCE = 0.02


@pytest.fixture(scope="module")
def eval_rows(arrests: Path) -> pd.DataFrame:
    return pd.read_csv(arrests / "eval.csv")


def _ops(path: Path) -> list[str]:
    return [node.op_type for node in onnx.load(str(path)).graph.node]


def test_both_files_follow_the_arrests_onnx_convention(quantized: Path) -> None:
    for name in Q.FILES:
        model = onnx.load(str(quantized / name))
        assert [i.name for i in model.graph.input] == FEATURES
        for i in model.graph.input:  # one [None, 1] input per feature column
            dims = i.type.tensor_type.shape.dim
            assert [d.dim_value or d.dim_param for d in dims][1:] == [1]
        assert [o.name for o in model.graph.output] == ["label", "probabilities"]
        props = {p.key: p.value for p in model.metadata_props}
        assert json.loads(props["classes"]) == ["No", "Yes"]
        assert model.graph.name == Q.GRAPH_NAME


def test_the_int8_copy_is_really_quantized(quantized: Path) -> None:
    fp32, int8 = _ops(quantized / "student_fp32.onnx"), _ops(quantized / "student_int8.onnx")
    assert fp32.count("MatMul") == 3 and "MatMulInteger" not in fp32
    assert int8.count("MatMulInteger") == 3 and "MatMul" not in int8
    assert int8.count("DynamicQuantizeLinear") == 3  # activations quantized per call
    int8_weights = [list(i.dims) for i in onnx.load(str(quantized / "student_int8.onnx"))
                    .graph.initializer if i.data_type == onnx.TensorProto.INT8 and i.dims]
    assert sorted(int8_weights) == [[11, 128], [128, 1], [128, 128]]  # (the zero points: scalars)


def test_int8_probabilities_are_within_tolerance_of_the_float_ones(
        quantized: Path, eval_rows: pd.DataFrame) -> None:
    X = eval_rows[FEATURES]
    p32 = Q.probabilities(quantized / "student_fp32.onnx", X)
    p8 = Q.probabilities(quantized / "student_int8.onnx", X)
    assert p8.shape == p32.shape == (1568, 2)
    np.testing.assert_allclose(p8.sum(axis=1), 1.0, atol=1e-6)
    diff = np.abs(p8 - p32)
    assert diff.max() <= TOLERANCE
    assert 0.005 < diff.max() < 0.012  # quantization did change the numbers (0.0108)
    agreement = float(np.mean(p8.argmax(1) == p32.argmax(1)))
    assert agreement == pytest.approx(1 - 3 / 1568)  # 3 rows flip
    # row by row the activation ranges differ, and with them the int8 output: still in bounds
    rows = X.iloc[::16]
    one = np.vstack([Q.probabilities(quantized / "student_int8.onnx", rows.iloc[[i]])
                     for i in range(len(rows))])
    assert np.abs(one - p32[::16]).max() <= TOLERANCE
    assert np.abs(one - p8[::16]).max() > 0  # a batch's rows shift each other's scales


def test_manifest_records_what_the_files_give(quantized: Path, eval_rows: pd.DataFrame,
                                              arrests: Path) -> None:
    m = json.loads((quantized / "manifest.json").read_text())["metrics"]
    X, y = eval_rows[FEATURES], eval_rows[LABEL].to_numpy()
    p32 = Q.probabilities(quantized / "student_fp32.onnx", X)
    p8 = Q.probabilities(quantized / "student_int8.onnx", X)
    classes = np.array(["No", "Yes"])
    sizes = {name: (quantized / name).stat().st_size for name in Q.FILES}
    assert m["student_fp32"]["bytes"] == sizes["student_fp32.onnx"]
    assert m["student_int8"]["bytes"] == sizes["student_int8.onnx"]
    assert m["size_ratio"] == sizes["student_int8.onnx"] / sizes["student_fp32.onnx"]
    assert m["size_ratio"] < 0.35  # 0.320: a quarter for the weights, plus the float rest
    assert m["max_abs_probability_diff"] == pytest.approx(np.abs(p8 - p32).max(), abs=1e-7)
    assert m["student_fp32"]["accuracy"] == pytest.approx(np.mean(classes[p32.argmax(1)] == y))
    assert m["student_int8"]["accuracy"] == pytest.approx(np.mean(classes[p8.argmax(1)] == y))
    assert m["student_int8"]["flipped_rows"] == int(np.sum(p8.argmax(1) != p32.argmax(1))) == 3
    teacher = pd.read_csv(arrests / "teacher_predictions.csv").to_numpy().argmax(1)
    assert m["student_fp32"]["agreement_with_teacher"] == pytest.approx(
        np.mean(p32.argmax(1) == teacher))
    assert m["student_fp32"]["agreement_with_teacher"] > 0.97  # a faithful float student


def test_the_logistic_student_has_nothing_to_quantize(arrests: Path) -> None:
    """Why the fixture trains an MLP: the arrests student is one ai.onnx.ml LinearClassifier,
    which quantize_dynamic leaves as it is (the file only grows)."""
    source = arrests / "student.onnx"
    before = onnx.load(str(source))
    after = onnx.load_from_string(Q.quantize(source.read_bytes()))
    assert sorted(n.op_type for n in after.graph.node) == sorted(n.op_type for n in before.graph.node)
    assert "LinearClassifier" in [n.op_type for n in after.graph.node]
    assert len(after.SerializeToString()) > source.stat().st_size


@pytest.mark.slow
def test_a_rebuild_gives_the_same_bytes(quantized: Path, tmp_path_factory: pytest.TempPathFactory
                                        ) -> None:
    """From scratch in another folder (the arrests teacher refitted too): the MLP's fit runs on
    one thread and the graph has a fixed name, so both files are byte-identical."""
    rebuilt = Q.build_quantized(tmp_path_factory.mktemp("rebuilt"))
    for name in Q.FILES:
        assert rebuilt[f"quantized/{name}"].read_bytes() == (quantized / name).read_bytes(), name


def test_the_example_suite_passes_what_int8_keeps_and_measures_the_speed(quantized: Path) -> None:
    from audit import SuiteRun, load_suite

    run = SuiteRun(load_suite(ROOT / "suites" / "arrests-quantized.audit.yaml"))
    results = {r.name: r for r in run.run_all()}
    assert {name: r.status.value for name, r in results.items()} == {
        "agreement": "pass", "divergence": "pass", "accuracy": "pass", "calibration": "pass",
        "size": "pass", "speedup": "info"}
    agreement = results["agreement"].measurements[0]
    assert agreement.student.value == pytest.approx(1 - 3 / 1568)
    assert agreement.student.ci is not None and agreement.student.ci[0] > 0.99
    size = results["size"].measurements[0]
    assert size.student.value == pytest.approx((quantized / "student_int8.onnx").stat().st_size
                                               / (quantized / "student_fp32.onnx").stat().st_size)
    accuracy = results["accuracy"].measurements[0]
    assert accuracy.regression is not None and accuracy.regression.ci is not None
    assert accuracy.regression.ci[1] < 0.01  # at most a point lost, shown by the interval
    assert [m.params["batch"] for m in results["speedup"].measurements] == [1, 32, 1024]
    assert run.report().verdict.value == "pass"
