"""A run imports only what its suite uses (issue: pay only for what you use).

Each case runs in a fresh interpreter (this test process has imported everything) and reads
``sys.modules`` once the command is done: a scikit-learn/ONNX suite never imports torch,
netcal or ART unless a check of it uses ART, and collecting, validating or printing the
schema imports no scipy.stats and no scikit-learn. Where torch is missing, what needs it says
which extra to install.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
WATCHED = ("torch", "netcal", "art", "onnx", "onnxruntime", "skops", "sklearn", "scipy.stats",
           "fairlearn", "jinja2", "hypothesis")

DRIVER = """
import json, sys
{prelude}
from audit.cli import main
code = main({argv!r})
print(json.dumps({{"code": code, "modules": [m for m in {watched!r} if sys.modules.get(m)]}}))
"""

# importing torch fails as if it were not installed (the finder audit.extras uses)
HIDE_TORCH = """
import importlib.abc
class NoTorch(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name == "torch" or name.startswith("torch."):
            raise ModuleNotFoundError(f"No module named {name!r}", name=name)
sys.meta_path.insert(0, NoTorch())
"""


def cli(argv: list[str], tmp_path: Path, *, hide_torch: bool = False) -> tuple[dict[str, Any], str]:
    script = DRIVER.format(prelude=HIDE_TORCH if hide_torch else "", argv=argv, watched=WATCHED)
    proc = subprocess.run([sys.executable, "-c", script], cwd=tmp_path, capture_output=True,
                          text=True, timeout=600)
    lines = proc.stdout.strip().splitlines()
    assert lines and lines[-1].startswith("{"), proc.stdout[-2000:] + proc.stderr[-2000:]
    return json.loads(lines[-1]), proc.stdout + proc.stderr


def suite(tmp_path: Path, arrests: Path, checks: dict[str, Any]) -> Path:
    raw = {"version": 1, "name": "imports",
           "data": {"eval": str(arrests / "eval.csv"), "train": str(arrests / "train.csv"),
                    "target": "released", "sensitive": ["colour", "sex"], "positive": "Yes"},
           "teacher": {"skops": str(arrests / "teacher.skops"),
                       "trusted_types": ["sklearn.tree._tree.Tree"]},
           "student": str(arrests / "student.onnx"),
           "settings": {"bootstrap": 100},
           "checks": checks}
    path = tmp_path / "imports.audit.yaml"
    path.write_text(yaml.safe_dump(raw))
    return path


PLAIN_CHECKS = {
    "accuracy": {"metric": "accuracy", "gate": {"max_regression": 0.1}},
    "roc_auc": {"metric": "roc_auc"},
    "calibration": {"metric": "ece", "gate": {"max": 0.5}},  # with the temperature advice
    "parity": {"metric": "demographic_parity_difference", "by": ["colour", "sex"]},
    "worst_group": {"metric": "worst_group_accuracy"},
    "drift": {"metric": "max_psi"},
    "slices": {"metric": "slice_regression"},
    "divergence": {"metric": "js_divergence"},
}
ART_CHECKS = {
    "membership": {"metric": "mia_auc"},
    "robustness": {"metric": "robust_accuracy", "attack": "hopskipjump", "eps": [0.1],
                   "samples": 10},
}


@pytest.mark.slow
def test_a_scikit_learn_and_onnx_suite_imports_no_torch_netcal_or_art(
        tmp_path: Path, arrests: Path) -> None:
    path = suite(tmp_path, arrests, PLAIN_CHECKS)
    found, out = cli(["run", str(path), "--no-cache", "--report-dir", str(tmp_path / "r")], tmp_path)
    assert found["code"] in (0, 1), out
    modules = set(found["modules"])
    assert not modules & {"torch", "netcal", "art", "hypothesis"}, modules
    # what the suite reads: a skops file (skops, scikit-learn), an ONNX file (onnxruntime
    # runs it; onnx, the graph library, only parses a file whose bytes may name external
    # data), the HTML (jinja2)
    assert {"skops", "sklearn", "onnxruntime", "jinja2"} <= modules
    assert "onnx" not in modules


@pytest.mark.slow
def test_a_rerun_that_reuses_every_measurement_imports_no_model_library(
        tmp_path: Path, arrests: Path) -> None:
    """The second run's measurements all come from authenticated entries: it reads no model
    and no table, so it imports neither scikit-learn, skops, onnx, onnxruntime nor scipy."""
    path = suite(tmp_path, arrests, PLAIN_CHECKS)
    argv = ["run", str(path), "--cache-dir", str(tmp_path / "cache"), "--report-dir",
            str(tmp_path / "r")]
    first, out = cli(argv, tmp_path)
    assert first["code"] in (0, 1), out
    again, out = cli(argv, tmp_path)
    assert again["code"] == first["code"], out
    assert not set(again["modules"]) & {"sklearn", "skops", "onnx", "onnxruntime", "scipy.stats",
                                         "torch", "art", "netcal"}, again["modules"]


@pytest.mark.slow
def test_art_checks_import_art_but_not_torch(tmp_path: Path, arrests: Path) -> None:
    path = suite(tmp_path, arrests, ART_CHECKS)
    found, out = cli(["run", str(path), "--no-cache", "--report-dir", str(tmp_path / "r")], tmp_path)
    assert found["code"] in (0, 1), out
    assert "art" in found["modules"] and "torch" not in found["modules"], found["modules"]


@pytest.mark.parametrize("argv", [["validate", "{suites}"], ["schema", "-o", "schema.json"]],
                         ids=["validate", "schema"])
def test_validate_and_schema_import_no_scipy_stats_or_scikit_learn(
        tmp_path: Path, argv: list[str]) -> None:
    argv = [a.format(suites=ROOT / "suites" / "arrests.audit.yaml") for a in argv]
    found, out = cli(argv, tmp_path)
    assert found["code"] == 0, out
    assert not set(found["modules"]) & {"scipy.stats", "sklearn", "torch", "art", "skops",
                                        "netcal", "fairlearn", "onnx"}, found["modules"]


def test_collecting_the_example_suites_imports_no_scipy_stats(tmp_path: Path) -> None:
    script = ("import json, sys, pytest\n"
              f"code = pytest.main([{str(ROOT / 'suites')!r}, '--collect-only', '-q', "
              "'-p', 'no:cacheprovider', '-p', 'no:hypothesispytest', '--assert=plain'])\n"
              f"print(json.dumps([m for m in {WATCHED!r} if sys.modules.get(m)]))")
    proc = subprocess.run([sys.executable, "-c", script], cwd=ROOT, capture_output=True,
                          text=True, timeout=600)
    modules = set(json.loads(proc.stdout.strip().splitlines()[-1]))
    assert "collected" in proc.stdout or "tests collected" in proc.stdout, proc.stdout[-1500:]
    assert not modules & {"scipy.stats", "sklearn", "torch", "art", "skops", "netcal"}, modules


def test_validate_names_the_extra_a_torch_suite_needs(tmp_path: Path) -> None:
    found, out = cli(["validate", str(ROOT / "suites" / "digits-torch.audit.yaml")], tmp_path,
                     hide_torch=True)
    assert found["code"] == 2
    assert ("digits-torch.audit.yaml: teacher: the teacher (torch model) needs torch, which is "
            "not installed; install it with pip install 'distill-audit[torch]'") in out
    assert "student: the student (torch model) needs torch" in out


def test_validate_names_the_extra_a_gradient_attack_needs(tmp_path: Path, arrests: Path) -> None:
    path = suite(tmp_path, arrests, {"robust": {"metric": "robust_accuracy", "attack": "pgd"}})
    found, out = cli(["validate", str(path)], tmp_path, hide_torch=True)
    assert found["code"] == 2
    assert ("checks.robust: attack: pgd needs torch, which is not installed; install it with "
            "pip install 'distill-audit[torch]'") in out


def test_a_gradient_attack_without_torch_is_an_error_naming_the_extra(tmp_path: Path) -> None:
    """What a run raises when a gradient attack meets a model with gradients and no torch: an
    AuditError (so the check is an ERROR with this message) naming the extra."""
    script = HIDE_TORCH + """
from sklearn.datasets import load_iris
from sklearn.linear_model import LogisticRegression
from audit.checks.differentiable import torch_module
from audit.errors import AuditError
X, y = load_iris(return_X_y=True)
try:
    torch_module(LogisticRegression(max_iter=500).fit(X, y), 4)
except AuditError as exc:
    print("AuditError:", exc)
"""
    proc = subprocess.run([sys.executable, "-c", "import sys\n" + script], cwd=tmp_path,
                          capture_output=True, text=True, timeout=600)
    assert proc.stdout.strip() == (
        "AuditError: a gradient attack (fgsm, pgd) on a scikit-learn model needs torch, which is "
        "not installed; install it with pip install 'distill-audit[torch]'"), proc.stderr[-2000:]


def test_a_parquet_table_without_pyarrow_names_the_extra(tmp_path: Path, arrests: Path) -> None:
    import pandas as pd

    pd.read_csv(arrests / "eval.csv").to_parquet(tmp_path / "eval.parquet")
    path = suite(tmp_path, arrests, {"accuracy": {"metric": "accuracy", "gate": {"min": 0.5}}})
    raw = yaml.safe_load(path.read_text())
    raw["data"]["eval"] = str(tmp_path / "eval.parquet")
    path.write_text(yaml.safe_dump(raw))
    hide = HIDE_TORCH.replace('"torch"', '"pyarrow"').replace('"torch."', '"pyarrow."')
    script = DRIVER.format(prelude=hide, argv=["validate", str(path)], watched=WATCHED)
    proc = subprocess.run([sys.executable, "-c", script], cwd=tmp_path, capture_output=True,
                          text=True, timeout=600)
    assert ("imports.audit.yaml: data.eval (a Parquet table) needs pyarrow, which is not "
            "installed; install it with pip install 'distill-audit[parquet]'") in proc.stderr
    json_path = tmp_path / "r.json"
    script = DRIVER.format(prelude=hide, argv=["run", str(path), "--no-cache", "--json",
                                               str(json_path)], watched=WATCHED)
    subprocess.run([sys.executable, "-c", script], cwd=tmp_path, capture_output=True, text=True,
                   timeout=600)
    check = json.loads(json_path.read_text())["checks"][0]
    assert check["status"] == "error"
    assert check["error"] == ("eval.parquet (a Parquet table) needs pyarrow, "
                              "which is not installed; install it with pip install "
                              "'distill-audit[parquet]'")


@pytest.mark.parametrize("at", [0, (1 << 22) - 3, (1 << 22) - 8, 1 << 22, (3 << 21) + 1])
def test_external_data_named_anywhere_is_seen_by_the_scan(tmp_path: Path, at: int) -> None:
    """The scan that spares a model without external data from onnx reads 4 MiB chunks: a
    ``location`` anywhere, split between two chunks too, sends the file to the full parse."""
    from audit.models.onnx import _may_name_external_data

    blob = tmp_path / "model.onnx"
    body = bytearray(b"\0" * ((1 << 23) + 5))
    assert not _may_name_external_data(blob.write_bytes(bytes(body)) and blob)
    body[at:at + 8] = b"location"
    blob.write_bytes(bytes(body))
    assert _may_name_external_data(blob)
