"""Models that misbehave: they exit, are killed, hang, fail at import, or return garbage.

A ``callable:`` or trusted ``pickle:`` model runs in its own worker process
(:mod:`audit.models.isolation`), so none of this can end the audit, hang it or fake its exit code: the
checks that need the model are ERROR with a one-line message (which model, what happened, the
fix) and the report is still written. Also here: each model gets its own copy of the features
(a teacher that edits its input must not change what the student sees).
"""

from __future__ import annotations

import json
import os
import pickle
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
import yaml

from audit.cli import main
from audit.errors import ModelError, SuiteError
from audit.runner import SuiteRun
from audit.suite import load_suite
from fixtures.synthetic import write_pair

ROOT = Path(__file__).resolve().parents[1]
TIMEOUT = 2  # settings.model_timeout of these suites: small, so the hanging cases are quick
GOOD = """\
import numpy as np


def predict(X):
    p = 1 / (1 + np.exp(-X["x"].to_numpy()))
    return np.column_stack([1 - p, p])
"""
EXIT_FIX = ("a model must return its predictions, not end its process (look for sys.exit, exit() "
            "or os._exit in its code)")
SIGNAL_FIX = "run the model on its own to see why (out of memory, or a crash in native code?)"


def _timed_out(label: str, doing: str) -> str:
    return (f"{label} did not answer within {TIMEOUT} s (settings.model_timeout) while {doing}; "
            "its process was stopped. Make the model faster, or raise settings.model_timeout")


def _suite(folder: Path, student: dict[str, Any], *, teacher: dict[str, Any] | None = None,
           timeout: float = TIMEOUT) -> Path:
    """A suite over :func:`write_pair` data: the teacher is precomputed predictions (it never
    runs, so only the student is timed), the student is the model under test."""
    write_pair(folder, n=200)
    raw = {"version": 1, "name": "bad",
           "data": {"eval": "eval.csv", "target": "label", "features": ["x"]},
           "teacher": teacher or {"predictions": "teacher.csv", "columns": ["p_No", "p_Yes"],
                                  "classes": ["No", "Yes"]},
           "student": student,
           "settings": {"bootstrap": 200, "model_timeout": timeout},
           "checks": {"acc": {"metric": "accuracy", "gate": {"min": 0.5}},
                      "agree": {"metric": "agreement", "gate": {"min": 0.5}}}}
    path = folder / "bad.audit.yaml"
    path.write_text(yaml.safe_dump(raw, sort_keys=False), encoding="utf-8")
    return path


def _callable(folder: Path, source: str) -> dict[str, Any]:
    (folder / "bad.py").write_text(textwrap.dedent(source), encoding="utf-8")
    return {"callable": "bad:predict", "classes": ["No", "Yes"]}


class _Reduce:
    """Unpickles as ``fn(*args)``: a pickle that exits, hangs or raises while it loads."""

    def __init__(self, fn: Any, *args: Any) -> None:
        self.fn, self.args = fn, args

    def __reduce__(self) -> tuple[Any, tuple[Any, ...]]:
        return self.fn, self.args


def _pickle(folder: Path, payload: Any) -> dict[str, Any]:
    (folder / "bad.pkl").write_bytes(pickle.dumps(payload))
    return {"pickle": "bad.pkl", "trust": True, "classes": ["No", "Yes"]}


CALLABLE = "student (callable bad:predict)"
PICKLE = "student (bad.pkl)"
CASES = [
    pytest.param("def predict(X):\n    import sys\n    sys.exit(3)\n",
                 f"{CALLABLE}: its process exited with status 3 while predicting on eval.csv; "
                 f"{EXIT_FIX}", id="sys-exit-3-in-predict"),
    pytest.param("def predict(X):\n    import os\n    os._exit(0)\n",
                 f"{CALLABLE}: its process exited with status 0 while predicting on eval.csv; "
                 f"{EXIT_FIX}", id="os-exit-0-in-predict"),
    pytest.param("def predict(X):\n    raise SystemExit('bye')\n",
                 f"{CALLABLE}: its process exited with status 1 while predicting on eval.csv; "
                 f"{EXIT_FIX}", id="sys-exit-with-text"),
    pytest.param("def predict(X):\n    import os, signal\n    os.kill(os.getpid(), signal.SIGKILL)\n",
                 f"{CALLABLE}: its process was killed by signal 9 (SIGKILL) while predicting on "
                 f"eval.csv; {SIGNAL_FIX}", id="sigkill-self-in-predict"),
    pytest.param("def predict(X):\n    import time\n    time.sleep(60)\n",
                 _timed_out(CALLABLE, "predicting on eval.csv"), id="hang-in-predict"),
    pytest.param("import time\ntime.sleep(60)\n" + GOOD,
                 _timed_out(CALLABLE, "importing 'bad'"), id="hang-at-import"),
    pytest.param("import sys\nsys.exit(2)\n" + GOOD,
                 f"{CALLABLE}: its process exited with status 2 while importing 'bad'; {EXIT_FIX}",
                 id="sys-exit-at-import"),
    pytest.param("import os\nos._exit(0)\n" + GOOD,
                 f"{CALLABLE}: its process exited with status 0 while importing 'bad'; {EXIT_FIX}",
                 id="os-exit-0-at-import"),
    pytest.param("raise RuntimeError('no weights here')\n",
                 f"{CALLABLE}: importing module 'bad' failed: RuntimeError: no weights here",
                 id="raise-at-import"),
    pytest.param("class Stop(BaseException):\n    pass\n\n\ndef predict(X):\n    raise Stop('halt')\n",
                 f"{CALLABLE} failed to predict on eval.csv: Stop: halt",
                 id="base-exception-in-predict"),
    pytest.param("def predict(X):\n    return None\n",
                 f"{CALLABLE} returned shape (); expected (200, 2) class probabilities (one row "
                 "per data row, one column per class)", id="returns-none"),
    pytest.param("def predict(X):\n    return 'high'\n",
                 f"{CALLABLE} returned str values that are not numbers (could not convert string "
                 "to float: 'high'); expected an (200, 2) array of class probabilities",
                 id="returns-text"),
    pytest.param("def predict(X):\n    return (p for p in X['x'])\n",
                 f"{CALLABLE} returned generator values that are not numbers (float() argument "
                 "must be a string or a real number, not 'generator'); expected an (200, 2) array "
                 "of class probabilities", id="returns-a-generator"),
    pytest.param("import numpy as np\n\n\ndef predict(X):\n    return np.full((len(X), 3), 1 / 3)\n",
                 f"{CALLABLE} returned shape (200, 3); expected (200, 2) class probabilities (one "
                 "row per data row, one column per class)", id="returns-three-columns"),
    pytest.param("import numpy as np\n\n\ndef predict(X):\n    return np.full((len(X), 2), np.nan)\n",
                 f"{CALLABLE} returned NaN or infinite values at data row 1 of eval.csv: [nan, "
                 "nan]; every probability must be a finite number in [0, 1]", id="returns-nan"),
    pytest.param("class Weird:\n    def __array__(self, *a, **k):\n        raise RuntimeError('no')"
                 "\n\n\ndef predict(X):\n    return Weird()\n",
                 f"{CALLABLE} failed to predict on eval.csv: RuntimeError: no",
                 id="returns-an-object-that-refuses-to-be-an-array"),
]


@pytest.mark.parametrize(("source", "message"), CASES)
def test_a_misbehaving_callable_makes_its_checks_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                       source: str, message: str) -> None:
    monkeypatch.chdir(tmp_path)
    run = SuiteRun(load_suite(_suite(tmp_path, _callable(tmp_path, source))))
    results = run.run_all()
    assert [r.status for r in results] == ["error", "error"]
    assert results[0].error == message
    assert results[1].error == message  # the second check fails fast, with the same message
    assert "Traceback" not in message and "\n" not in message


PICKLE_CASES = [
    pytest.param(_Reduce(os._exit, 4),
                 f"{PICKLE}: its process exited with status 4 while unpickling it; {EXIT_FIX}",
                 id="pickle-exits-while-unpickled"),
    pytest.param(_Reduce(sys.exit, 5),
                 f"{PICKLE}: its process exited with status 5 while unpickling it; {EXIT_FIX}",
                 id="pickle-sys-exit-while-unpickled"),
    pytest.param(_Reduce(__import__("time").sleep, 60),
                 _timed_out(PICKLE, "unpickling it"), id="pickle-hangs-while-unpickled"),
    pytest.param(_Reduce(str, "weights"),  # unpickles as a plain string
                 f"{PICKLE}: str has no predict_proba; the audit needs class probabilities",
                 id="pickle-of-no-model"),
]


@pytest.mark.parametrize(("payload", "message"), PICKLE_CASES)
def test_a_misbehaving_pickle_makes_its_checks_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                     payload: Any, message: str) -> None:
    monkeypatch.chdir(tmp_path)
    run = SuiteRun(load_suite(_suite(tmp_path, _pickle(tmp_path, payload))))
    results = run.run_all()
    assert [r.status for r in results] == ["error", "error"]
    assert results[0].error == message
    assert "Traceback" not in message and "\n" not in message


def test_a_pickled_custom_model_predicts_in_its_worker_and_can_hang_there(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A class of the user's own cannot run here: its predict_proba runs in the worker."""
    monkeypatch.chdir(tmp_path)
    (tmp_path / "custom.py").write_text(textwrap.dedent("""\
        import time

        import numpy as np


        class Model:
            classes_ = np.array(["No", "Yes"])

            def __init__(self, delay):
                self.delay = delay

            def predict_proba(self, X):
                time.sleep(self.delay)
                p = 1 / (1 + np.exp(-X["x"].to_numpy()))
                return np.column_stack([1 - p, p])
        """))
    monkeypatch.syspath_prepend(str(tmp_path))
    import custom  # type: ignore[import-not-found]

    (tmp_path / "fast.pkl").write_bytes(pickle.dumps(custom.Model(0.0)))
    run = SuiteRun(load_suite(_suite(tmp_path, {"pickle": "fast.pkl", "trust": True})))
    assert run.model("student").native is None  # not scikit-learn's: it stays in the worker
    assert [r.status for r in run.run_all()] == ["pass", "pass"]
    (tmp_path / "slow.pkl").write_bytes(pickle.dumps(custom.Model(60.0)))
    run = SuiteRun(load_suite(_suite(tmp_path, {"pickle": "slow.pkl", "trust": True})))
    assert run.run_check("acc").error == _timed_out("student (slow.pkl)", "predicting on eval.csv")


def test_a_plain_scikit_learn_pickle_runs_here_with_gradients(tmp_path: Path) -> None:
    """Unpickled in the worker, pickled again there and handed back through an unpickler that
    takes data and scikit-learn's own classes only: the estimator runs in this process, so
    white-box attacks and parameter counts still see it. A pipeline holding a function (here
    numpy's) is not plain: it stays in the worker, and predicts the same."""
    from sklearn.linear_model import LogisticRegression

    from audit.checks.differentiable import has_gradients

    write_pair(tmp_path, n=200)
    frame = pd.read_csv(tmp_path / "eval.csv")
    lr = LogisticRegression().fit(frame[["x"]], frame["label"])
    (tmp_path / "lr.pkl").write_bytes(pickle.dumps(lr))
    # scikit-learn's imports, in the worker, are the model's time: a generous timeout
    run = SuiteRun(load_suite(_suite(tmp_path, {"pickle": "lr.pkl", "trust": True}, timeout=300)))
    model = run.model("student")
    assert type(model.native).__name__ == "LogisticRegression" and model.native is not lr
    assert has_gradients(model)
    np.testing.assert_array_equal(model.predict_proba(run.eval_table),
                                  lr.predict_proba(run.eval_table.features))
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import FunctionTransformer

    logs = make_pipeline(FunctionTransformer(np.abs), LogisticRegression())
    logs.fit(frame[["x"]], frame["label"])
    (tmp_path / "logs.pkl").write_bytes(pickle.dumps(logs))
    run = SuiteRun(load_suite(_suite(tmp_path, {"pickle": "logs.pkl", "trust": True},
                                     timeout=300)))
    assert run.model("student").native is None and not has_gradients(run.model("student"))
    np.testing.assert_allclose(run.model("student").predict_proba(run.eval_table),
                               logs.predict_proba(run.eval_table.features), rtol=0, atol=1e-15)


def test_the_worker_of_a_dropped_model_stops(tmp_path: Path) -> None:
    import gc

    run = SuiteRun(load_suite(_suite(tmp_path, _callable(tmp_path, GOOD))))
    model = run.model("student")
    from audit.models.isolation import ModelWorker

    cells = [c.cell_contents for c in model.predict.__closure__]  # type: ignore[union-attr]
    worker = next(c for c in cells if isinstance(c, ModelWorker))
    pid, process = worker.pid, worker._process
    assert process.is_alive()
    del run, model, worker, cells
    gc.collect()
    process.join(5)
    assert not process.is_alive(), pid


# --------------------------------------------------------------------------- settings.model_timeout
@pytest.mark.parametrize(("value", "problem"), [
    pytest.param(0, "=0: must be above 0", id="zero"),
    pytest.param(-5, "=-5: must be above 0", id="negative"),
    pytest.param("10", "='10': must be a number; write 10 without quotes", id="quoted"),
    pytest.param(100_000, "=100000: must be at most 86400", id="more-than-a-day"),
    pytest.param(True, "=True: must be a number", id="boolean"),
])
def test_model_timeout_is_validated(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                    value: Any, problem: str) -> None:
    monkeypatch.chdir(tmp_path)
    path = _suite(tmp_path, _callable(tmp_path, GOOD))
    raw = yaml.safe_load(path.read_text())
    raw["settings"]["model_timeout"] = value
    path.write_text(yaml.safe_dump(raw, sort_keys=False))
    with pytest.raises(SuiteError) as info:
        load_suite(path)
    line = next(i for i, text in enumerate(path.read_text().splitlines(), 1)
                if text.startswith("  model_timeout:"))
    assert str(info.value) == f"bad.audit.yaml:{line} settings.model_timeout{problem}"
    assert "Traceback" not in str(info.value)


def test_model_timeout_defaults_to_300_s_and_reaches_both_models(tmp_path: Path) -> None:
    path = _suite(tmp_path, _callable(tmp_path, GOOD), timeout=7.5)
    suite = load_suite(path)
    assert suite.settings.model_timeout == suite.teacher.timeout == suite.student.timeout == 7.5
    raw = yaml.safe_load(path.read_text())
    del raw["settings"]["model_timeout"]
    path.write_text(yaml.safe_dump(raw))
    assert load_suite(path).settings.model_timeout == load_suite(path).student.timeout == 300.0


# --------------------------------------------------------------------------- end to end
EXIT_SOURCES = {"sys-exit-3": "def predict(X):\n    import sys\n    sys.exit(3)\n",
                "os-exit-0": "def predict(X):\n    import os\n    os._exit(0)\n",
                "hang": "def predict(X):\n    import time\n    time.sleep(60)\n"}
EXIT_MESSAGES = {
    "sys-exit-3": f"{CALLABLE}: its process exited with status 3 while predicting on eval.csv; "
                  f"{EXIT_FIX}",
    "os-exit-0": f"{CALLABLE}: its process exited with status 0 while predicting on eval.csv; "
                 f"{EXIT_FIX}",
    "hang": _timed_out(CALLABLE, "predicting on eval.csv")}


def _latest(folder: Path) -> dict[str, Any]:
    return json.loads(max((folder / "reports" / "bad").glob("2*.json")).read_text())


@pytest.mark.parametrize("case", list(EXIT_SOURCES))
def test_pytest_reports_the_error_and_writes_the_report(pytester: pytest.Pytester, case: str) -> None:
    _suite(pytester.path, _callable(pytester.path, EXIT_SOURCES[case]))
    result = pytester.runpytest()
    result.assert_outcomes(failed=2)
    message = EXIT_MESSAGES[case]
    result.stdout.fnmatch_lines([f"  ERROR: {message}".replace("[", "[[]")])
    assert "Traceback" not in result.stdout.str()
    assert result.ret == pytest.ExitCode.TESTS_FAILED
    report = _latest(pytester.path)
    assert report["verdict"] == "error"
    assert [(c["status"], c["error"]) for c in report["checks"]] == [("error", message)] * 2
    assert list((pytester.path / "reports" / "bad").glob("2*.html"))


@pytest.mark.parametrize("case", ["sys-exit-3", "os-exit-0"])
def test_the_cli_exits_1_and_writes_the_report(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                               capsys: pytest.CaptureFixture[str], case: str) -> None:
    monkeypatch.chdir(tmp_path)
    path = _suite(tmp_path, _callable(tmp_path, EXIT_SOURCES[case]))
    code = main(["run", str(path), "--report-dir", "reports", "-q"])
    out = capsys.readouterr().out
    assert code == 1
    assert EXIT_MESSAGES[case] in out and "Traceback" not in out
    assert [c["error"] for c in _latest(tmp_path)["checks"]] == [EXIT_MESSAGES[case]] * 2


def test_the_console_script_exits_1_when_the_model_calls_os_exit_0(tmp_path: Path) -> None:
    """The real process: a model's os._exit(0) used to end the run with status 0, no report."""
    path = _suite(tmp_path, _callable(tmp_path, EXIT_SOURCES["os-exit-0"]))
    script = Path(sys.executable).with_name("distill-audit")
    done = subprocess.run([str(script), "run", str(path), "--report-dir", "reports", "-q"],
                          cwd=tmp_path, capture_output=True, text=True, timeout=120, check=False)
    assert done.returncode == 1, done.stdout + done.stderr
    assert EXIT_MESSAGES["os-exit-0"] in done.stdout
    assert _latest(tmp_path)["verdict"] == "error"


# --------------------------------------------------------------------------- in-process torch
TORCH_MODULE = """\
import torch
from torch import nn


class Net(nn.Module):
    classes = ["No", "Yes"]

    def __init__(self):
        super().__init__()
        self.layer = nn.Linear(1, 2)

    def forward(self, x):
        {body}
        return self.layer(x)
"""


def test_a_torch_module_callable_runs_here_with_sys_exit_caught(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The one in-process case: white-box attacks need the module's gradients here."""
    pytest.importorskip("torch")
    monkeypatch.chdir(tmp_path)
    (tmp_path / "bad.py").write_text(TORCH_MODULE.format(body="raise SystemExit(3)"))
    run = SuiteRun(load_suite(_suite(tmp_path, {"callable": "bad:Net"}, timeout=60)))
    assert run.model("student").module is not None
    result = run.run_check("acc")
    assert result.status == "error"
    assert result.error == (
        "student (callable bad:Net) tried to end the process (sys.exit(3)) while predicting on "
        "eval.csv; a model must return its predictions, not exit (remove the call)")


def test_an_in_process_call_that_hangs_is_abandoned_after_the_timeout(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import time

    from audit.data import Table
    from audit.models.callable import guarded_predict

    monkeypatch.chdir(tmp_path)
    table = Table("eval", tmp_path / "eval.csv", "", pd.DataFrame({"x": [1.0]}),
                  pd.Series(["No"]), pd.DataFrame(index=[0]))
    predict = guarded_predict(lambda t: time.sleep(3), "student (callable bad:Net)", 0.2)
    start = time.perf_counter()
    with pytest.raises(ModelError) as info:
        predict(table)
    assert time.perf_counter() - start < 2
    assert str(info.value) == (
        "student (callable bad:Net) did not answer within 0.2 s (settings.model_timeout) while "
        "predicting on eval.csv; it runs in this process, where its thread keeps running. Make "
        "the model faster, or raise settings.model_timeout")


# --------------------------------------------------------------------------- item 7: own copies
MUTATING_TEACHER = """\
import numpy as np


def predict(X):
    p = 1 / (1 + np.exp(-X["x"].to_numpy()))
    X["x"] = 0.0                          # edits its input in place
    X.drop(columns=["x"], inplace=True)
    return np.column_stack([1 - p, p])
"""


def test_a_teacher_that_edits_its_input_does_not_change_the_student(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "mutating.py").write_text(MUTATING_TEACHER)
    (tmp_path / "honest.py").write_text(GOOD)
    path = _suite(tmp_path, {"callable": "honest:predict", "classes": ["No", "Yes"]},
                  teacher={"callable": "mutating:predict", "classes": ["No", "Yes"]})
    run = SuiteRun(load_suite(path))
    before = run.eval_table.features.copy()
    inputs = run.inputs  # the teacher predicts first
    x = before["x"].to_numpy()
    p = 1 / (1 + np.exp(-x))
    np.testing.assert_allclose(inputs.p_student, np.column_stack([1 - p, p]))
    pd.testing.assert_frame_equal(run.eval_table.features, before)


class _Editing:
    """An in-process estimator (as a skops or plain scikit-learn pickle runs) that edits X."""

    classes_ = np.array(["No", "Yes"])

    def __init__(self, how: str) -> None:
        self.how = how

    def predict_proba(self, X: pd.DataFrame) -> np.ndarray:
        n = len(X)
        if self.how == "assign":
            X["x"] = 0.0
        elif self.how == "delete":
            del X["x"]
        elif self.how == "iloc":
            X.iloc[0, 0] = 99.0
        elif self.how == "values":
            X.values[:] = 0.0  # a read-only view under copy-on-write: this raises
        elif self.how == "exit":
            raise SystemExit(3)
        return np.full((n, 2), 0.5)


@pytest.mark.parametrize("how", ["assign", "delete", "iloc", "values"])
def test_an_in_process_estimator_gets_its_own_frame(tmp_path: Path, how: str) -> None:
    from audit.models.estimator import estimator_predict

    write_pair(tmp_path, n=50)
    from audit.data import load_table
    from audit.spec import DataSpec

    table = load_table(DataSpec(eval=tmp_path / "eval.csv", target="label", features=("x",)))
    before = table.features.copy()
    predict = estimator_predict(_Editing(how), "teacher (m.skops)")
    try:
        predict(table)
    except (ValueError, ModelError) as exc:  # .values writes are refused, not silent
        assert how == "values", exc
        assert "read-only" in str(exc)
    pd.testing.assert_frame_equal(table.features, before)


EDITING_MODULE = """\
import torch
from torch import nn


class Net(nn.Module):
    classes = ["No", "Yes"]

    def __init__(self):
        super().__init__()
        self.layer = nn.Linear(1, 2).double()

    def forward(self, x):
        out = self.layer(x)
        x.mul_(0.0)  # edits its input tensor in place
        return out
"""


def test_a_torch_module_that_edits_its_input_tensor_does_not_change_the_table(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A float64 module is fed a float64 matrix: a copy, never a view of the table's data."""
    pytest.importorskip("torch")
    monkeypatch.chdir(tmp_path)
    (tmp_path / "editing.py").write_text(EDITING_MODULE)
    (tmp_path / "honest.py").write_text(GOOD)
    path = _suite(tmp_path, {"callable": "honest:predict", "classes": ["No", "Yes"]},
                  teacher={"callable": "editing:Net"}, timeout=60)
    run = SuiteRun(load_suite(path))
    before = run.eval_table.features.copy()
    first = run.model("teacher").predict_proba(run.eval_table)
    np.testing.assert_array_equal(run.model("teacher").predict_proba(run.eval_table), first)
    pd.testing.assert_frame_equal(run.eval_table.features, before)


def test_a_worker_sees_the_environment_and_folder_of_the_moment(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The fork server keeps the environment it started with; each worker gets today's."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("DISTILL_AUDIT_TEST_SCALE", "-1")
    (tmp_path / "scaled.py").write_text(GOOD.replace(
        'X["x"].to_numpy()', 'X["x"].to_numpy() * float(os.environ["DISTILL_AUDIT_TEST_SCALE"])'
        ' * (Path.cwd() == Path(__file__).parent)').replace(
        "import numpy as np\n", "import os\nfrom pathlib import Path\n\nimport numpy as np\n"))
    run = SuiteRun(load_suite(_suite(tmp_path, {"callable": "scaled:predict",
                                                "classes": ["No", "Yes"]})))
    x = run.eval_table.features["x"].to_numpy()
    p = 1 / (1 + np.exp(x))
    np.testing.assert_allclose(run.model("student").predict_proba(run.eval_table),
                               np.column_stack([1 - p, p]))


def test_an_in_process_estimator_that_calls_sys_exit_is_an_error(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A skops model whose suite trusts a class of its own runs that class here."""
    from audit.data import load_table
    from audit.models.estimator import estimator_predict
    from audit.spec import DataSpec

    monkeypatch.chdir(tmp_path)
    write_pair(tmp_path, n=50)
    table = load_table(DataSpec(eval=tmp_path / "eval.csv", target="label", features=("x",)))
    with pytest.raises(ModelError) as info:
        estimator_predict(_Editing("exit"), "teacher (m.skops)")(table)
    assert str(info.value) == ("teacher (m.skops) tried to end the process (sys.exit(3)) while "
                               "predicting on eval.csv; a model must return its predictions, not "
                               "exit (remove the call)")


@pytest.mark.parametrize("module,name", [
    ("sklearn.feature_selection._base", "attrgetter"),  # operator.attrgetter, re-exported
    ("sklearn.feature_extraction.text", "itemgetter"),
    ("sklearn.callback._transport", "Thread"),
], ids=["attrgetter", "itemgetter", "thread"])
def test_the_plain_unpickler_refuses_what_scikit_learn_only_re_exports(module: str,
                                                                       name: str) -> None:
    """The parent re-reads a worker's blob as plain scikit-learn; a class that scikit-learn's
    modules merely import (operator.attrgetter and such could reach any function) is refused,
    so the model stays in its worker."""
    import importlib

    from audit.models.pickle import load_plain

    if not hasattr(importlib.import_module(module), name):
        pytest.skip(f"{module} no longer re-exports {name}")
    # GLOBAL module name, then STOP: the unpickler must refuse at find_class
    blob = b"c" + module.encode() + b"\n" + name.encode() + b"\n."
    assert load_plain(blob) is None
    from sklearn.linear_model import LogisticRegression

    assert load_plain(pickle.dumps(LogisticRegression)) is LogisticRegression  # its own classes
