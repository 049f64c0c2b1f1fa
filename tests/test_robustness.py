"""Robustness: robust_accuracy and transfer_accuracy against ART called directly, a planted
fragile student that fails its regression gate, the black-box (HopSkipJump) and noise paths,
and the error for a gradient attack on a model without gradients."""

from __future__ import annotations

import dataclasses
import pickle
import re
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

from audit import SuiteRun
from audit.suite import suite_from_dict
from fixtures.build import build_all


@pytest.fixture(scope="module")
def paths() -> dict[str, Path]:
    return build_all()


def _digits(paths: dict[str, Path], teacher: Any, student: Any, checks: dict) -> SuiteRun:
    raw = {"version": 1, "name": "digits-robust",
           "data": {"eval": str(paths["digits/eval.csv"]), "target": "digit"},
           "teacher": teacher, "student": student, "checks": checks}
    return SuiteRun(suite_from_dict(raw, base_dir=paths["digits/eval.csv"].parent))


def _torch(paths: dict[str, Path], role: str) -> dict[str, Any]:
    return {"torch": str(paths[f"digits/{role}.pt"]), "classes": list(range(10))}


def _art_pgd_accuracy(path: Path, eval_csv: Path, rows: np.ndarray, eps: float) -> float:
    """Robust accuracy from ART's PGD called directly: pixels scaled by their eval range."""
    import torch
    from art.attacks.evasion import ProjectedGradientDescent
    from art.estimators.classification import PyTorchClassifier

    frame = pd.read_csv(eval_csv)
    X = frame.drop(columns="digit").to_numpy(np.float64)
    y = frame["digit"].to_numpy()
    low, span = X.min(axis=0), X.max(axis=0) - X.min(axis=0)
    x01 = np.where(span > 0, (X - low) / np.where(span > 0, span, 1), 0.0)[rows]
    with warnings.catch_warnings():  # TorchScript is deprecated in favour of torch.export
        warnings.filterwarnings("ignore", r"`torch\.jit\.load` is deprecated", DeprecationWarning)
        module = torch.jit.load(str(path), map_location="cpu")
    lo, sp = torch.from_numpy(low), torch.from_numpy(span)

    class Raw(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.m = module

        def forward(self, x: Any) -> Any:
            return self.m((lo + x.double() * sp).float())

    clf = PyTorchClassifier(model=Raw(), loss=torch.nn.CrossEntropyLoss(), input_shape=(64,),
                            nb_classes=10, clip_values=(0.0, 1.0), device_type="cpu")
    clean = clf.predict(x01.astype(np.float32)).argmax(axis=1) == y[rows]
    adv = ProjectedGradientDescent(clf, norm=np.inf, eps=eps, eps_step=eps / 8, max_iter=20,
                                   batch_size=int(clean.sum()), verbose=False).generate(
        x01[clean].astype(np.float32), y=y[rows][clean])
    raw = np.clip(np.rint(low + adv.astype(np.float64) * span), low, low + span)
    with torch.no_grad():
        hit = module(torch.from_numpy(raw).float()).argmax(dim=1).numpy() == y[rows][clean]
    return float(hit.sum() / len(rows))


def test_pgd_on_torch_matches_art_called_directly(paths: dict[str, Path]) -> None:
    run = _digits(paths, _torch(paths, "teacher"), _torch(paths, "student"),
                  {"robust": {"metric": "robust_accuracy", "eps": [0.1], "samples": 80}})
    result = run.run_check("robust")
    assert result.status == "info", result.error
    (m,) = result.measurements
    assert m.scope == "eps 0.1" and m.params["attack"] == "pgd" and m.n == 80
    rows = np.sort(np.random.default_rng(0).choice(540, size=80, replace=False))
    for who, est in (("teacher", m.teacher), ("student", m.student)):
        assert est.value == pytest.approx(_art_pgd_accuracy(paths[f"digits/{who}.pt"],
                                                            paths["digits/eval.csv"], rows, 0.1))
        assert est.ci[0] <= est.value <= est.ci[1]
    breakdown = {r["model"]: r for r in m.breakdown}
    assert breakdown["teacher"]["attack"] == "pgd" and breakdown["student"]["success_rate"] > 0.3
    assert any("pixel_0_0" in n and "kept fixed" in n for n in m.notes)


def test_transfer_reuses_the_teachers_adversarial_examples(paths: dict[str, Path]) -> None:
    checks = {"robust": {"metric": "robust_accuracy", "eps": [0.05, 0.1], "samples": 60},
              "transfer": {"metric": "transfer_accuracy", "eps": [0.05, 0.1], "samples": 60}}
    run = _digits(paths, _torch(paths, "teacher"), _torch(paths, "student"), checks)
    robust, transfer = run.run_check("robust"), run.run_check("transfer")
    assert [m.scope for m in transfer.measurements] == ["eps 0.05", "eps 0.1"]
    built = [k for k in run.probes._memo if k[0] == "robustness"]
    assert sorted(built) == sorted((("robustness", who, "pgd", e, "inf", 60))
                                   for who in ("teacher", "student") for e in (0.05, 0.1))
    for r, t in zip(robust.measurements, transfer.measurements, strict=True):
        assert t.teacher is None and t.regression is None  # pairwise
        assert t.student.ci[0] <= t.student.value <= t.student.ci[1]
        # the student's own PGD examples hurt it at least as much as the teacher's (white-box
        # beats transfer) and the teacher's still transfer
        assert r.student.value <= t.student.value < 1.0
        row = next(b for b in t.breakdown if b.get("crafted_on") == "teacher")
        assert row["success_rate"] > 0


def _lr(tmp_path: Path, name: str, C: float) -> dict[str, Any]:
    from sklearn.linear_model import LogisticRegression

    train = pd.read_csv(build_all()["digits/eval.csv"].parent / "train.csv")
    model = LogisticRegression(C=C, max_iter=5000).fit(train.drop(columns="digit"), train["digit"])
    (tmp_path / f"{name}.pkl").write_bytes(pickle.dumps(model))
    return {"pickle": str(tmp_path / f"{name}.pkl"), "trust": True}


def test_a_fragile_student_fails_the_regression_gate(paths: dict[str, Path], tmp_path: Path) -> None:
    teacher = _lr(tmp_path, "teacher", 0.001)
    check = {"robust": {"metric": "robust_accuracy", "eps": [0.05], "samples": 200,
                        "gate": {"max_regression": 0.05}}}
    faithful = _digits(paths, teacher, _lr(tmp_path, "faithful", 0.002), check).run_check("robust")
    assert faithful.status == "pass", faithful.gates
    fragile = _digits(paths, teacher, _lr(tmp_path, "fragile", 1000.0), check).run_check("robust")
    assert fragile.status == "fail", fragile.gates
    (m,) = fragile.measurements
    assert m.params["attack"] == "pgd"  # a bare LogisticRegression gives gradients
    assert m.regression.ci[0] > 0.05


def _svm(tmp_path: Path, name: str, C: float, scaled: bool) -> dict[str, Any]:
    """A linear SVM with class probabilities, the scikit-learn 1.9 way (sigmoid calibration)."""
    from sklearn.calibration import CalibratedClassifierCV
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler
    from sklearn.svm import LinearSVC

    train = pd.read_csv(build_all()["digits/eval.csv"].parent / "train.csv")
    svm = LinearSVC(C=C, max_iter=50000)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the unregularised one need not converge
        model = CalibratedClassifierCV(make_pipeline(StandardScaler(), svm) if scaled else svm)
        model.fit(train.drop(columns="digit"), train["digit"])
    (tmp_path / f"{name}.pkl").write_bytes(pickle.dumps(model))
    return {"pickle": str(tmp_path / f"{name}.pkl"), "trust": True}


def test_a_fragile_linear_svm_student_fails_under_white_box_pgd(
        paths: dict[str, Path], tmp_path: Path) -> None:
    """Linear SVMs get gradients (their calibrated probabilities are rebuilt exactly in torch):
    a heavily regularised, scaled teacher against an unregularised, unscaled student."""
    teacher = _svm(tmp_path, "teacher", 0.0005, scaled=True)
    check = {"robust": {"metric": "robust_accuracy", "eps": [0.05], "samples": 400,
                        "gate": {"max_regression": 0.05}}}
    faithful = _digits(paths, teacher, _svm(tmp_path, "faithful", 0.0005, scaled=True),
                       check).run_check("robust")
    assert faithful.status == "pass", faithful.gates
    fragile = _digits(paths, teacher, _svm(tmp_path, "fragile", 1000.0, scaled=False),
                      check).run_check("robust")
    assert fragile.status == "fail", fragile.gates
    (m,) = fragile.measurements
    assert m.params["attack"] == "pgd"
    assert m.regression.ci[0] > 0.05


def test_hopskipjump_on_a_black_box_onnx_student(paths: dict[str, Path]) -> None:
    raw = {"version": 1, "name": "arrests-robust",
           "data": {"eval": str(paths["arrests/eval.csv"]), "target": "released"},
           "teacher": str(paths["arrests/student_weak.onnx"]),
           "student": str(paths["arrests/student.onnx"]),
           "checks": {"robust": {"metric": "robust_accuracy", "eps": [0.2], "samples": 12,
                                 "max_seconds": 20}}}
    result = SuiteRun(suite_from_dict(raw, base_dir=paths["arrests/eval.csv"].parent)).run_check(
        "robust")
    assert result.status == "info", result.error
    (m,) = result.measurements
    assert m.params["attack"] == "hopskipjump"
    rows = {r["model"]: r for r in m.breakdown}
    assert all(r["attack"] == "hopskipjump" and r["success_rate"] is not None
               for r in rows.values())
    assert any("year, age, checks" in n and "colour" in n for n in m.notes)


def test_hopskipjump_flips_rows_of_a_torch_teacher_with_an_onnx_student(
        paths: dict[str, Path]) -> None:
    run = _digits(paths, _torch(paths, "teacher"), str(paths["digits/student.onnx"]),
                  {"robust": {"metric": "robust_accuracy", "eps": [0.3], "samples": 10}})
    (m,) = run.run_check("robust").measurements
    assert m.params["attack"] == "hopskipjump"  # auto: the same black-box attack for both
    assert all(r["success_rate"] > 0 for r in m.breakdown)  # measured, not assumed


@pytest.mark.parametrize("pair", ["arrests", "digits"])
def test_noise_works_on_every_model_kind(paths: dict[str, Path], pair: str) -> None:
    if pair == "arrests":
        raw = {"version": 1, "name": "noise",
               "data": {"eval": str(paths["arrests/eval.csv"]), "target": "released"},
               "teacher": {"skops": str(paths["arrests/teacher.skops"]),
                           "trusted_types": ["sklearn.tree._tree.Tree"]},
               "student": str(paths["arrests/student.onnx"]),
               "checks": {"noise": {"metric": "robust_accuracy", "attack": "noise", "norm": "2"}}}
        run = SuiteRun(suite_from_dict(raw, base_dir=paths["arrests/eval.csv"].parent))
    else:
        run = _digits(paths, _torch(paths, "teacher"), str(paths["digits/student.onnx"]),
                      {"noise": {"metric": "robust_accuracy", "attack": "noise"}})
    result = run.run_check("noise")
    assert result.status == "info", result.error
    assert [m.scope for m in result.measurements] == ["eps 0.05", "eps 0.1"]
    for m in result.measurements:
        assert m.n == 200 and m.params["attack"] == "noise"
        assert 0 <= m.student.value <= 1 and m.regression.ci is not None


def test_fgsm_on_an_onnx_model_is_a_clear_error(paths: dict[str, Path]) -> None:
    run = _digits(paths, _torch(paths, "teacher"), str(paths["digits/student.onnx"]),
                  {"fgsm": {"metric": "robust_accuracy", "attack": "fgsm"}})
    result = run.run_check("fgsm")
    assert result.status == "error"
    label = run.model("student").label
    assert label.startswith("student (") and label.endswith("student.onnx)")
    assert result.error == (
        f"attack: fgsm needs gradients, but the {label} has none (a onnx model; gradients come "
        "from torch models and scikit-learn linear models (LogisticRegression, or a linear SVM "
        "or other linear classifier in CalibratedClassifierCV(method='sigmoid'), optionally "
        "after StandardScaler/MinMaxScaler/MaxAbsScaler in a Pipeline)); use attack: "
        "hopskipjump (black-box) or attack: noise")


def test_black_box_adversarial_examples_are_cached_and_progress_is_reported(
        paths: dict[str, Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Like predictions, an unchanged model is not attacked again on the next run; a long
    attack reports progress through the session."""
    import audit.probes.attacks as robustness
    from audit.runner import AuditSession

    raw = {"version": 1, "name": "arrests-robust",
           "data": {"eval": str(paths["arrests/eval.csv"]), "target": "released"},
           "teacher": str(paths["arrests/student_weak.onnx"]),
           "student": str(paths["arrests/student.onnx"]),
           "checks": {"robust": {"metric": "robust_accuracy", "eps": [0.2], "samples": 10,
                                 "max_seconds": 20}}}
    suite = suite_from_dict(raw, base_dir=paths["arrests/eval.csv"].parent)
    calls = []
    real = robustness.hopskipjump

    def counting(*args: Any, **kwargs: Any) -> Any:
        calls.append(args[0].role)
        return real(*args, **kwargs)

    monkeypatch.setattr(robustness, "hopskipjump", counting)
    monkeypatch.setattr(robustness, "PROGRESS_EVERY", 0.0)
    messages: list[str] = []
    first_session = AuditSession(tmp_path / "cache")
    first_session.progress = messages.append
    first = SuiteRun(suite, first_session).run_check("robust")
    assert sorted(calls) == ["student", "teacher"]
    assert any(m.startswith("hopskipjump on the teacher: ") and " rows, " in m for m in messages)
    second = SuiteRun(suite, AuditSession(tmp_path / "cache")).run_check("robust")
    assert sorted(calls) == ["student", "teacher"]  # not attacked again
    assert first.measurements[0].to_dict()["student"] == second.measurements[0].to_dict()["student"]


class _FakeRunner:
    """Just what ``_init_points`` reads: the space, and a model that puts a row in class 0
    only within 0.02 (scaled L-inf) of one data row, and in class 1 everywhere else."""

    def __init__(self, space: Any, centre: np.ndarray) -> None:
        self.space, self.centre, self.calls = space, centre, 0

    def predict(self, frame: pd.DataFrame) -> np.ndarray:
        self.calls += 1
        x = (frame[list(self.space.columns)].to_numpy(np.float64) - self.space.low) / self.space.span
        return (np.abs(x - self.centre).max(axis=1) > 0.02).astype(int)


def test_hopskipjump_starts_from_the_nearest_data_row_of_another_class(
        paths: dict[str, Path]) -> None:
    """A model that gives the other class on a tiny region: random points of the box and its
    corners never hit it (the old start search gave up and counted the row robust), the data
    row inside it does, and the nearest such row is taken."""
    from audit.probes.attacks import _init_points, attack_space

    run = _digits(paths, _torch(paths, "teacher"), _torch(paths, "student"),
                  {"acc": {"metric": "accuracy"}})
    space = attack_space(run.eval_table, 30, seed=0)
    pool = space.scaled()
    far = np.argmax(np.linalg.norm(pool - pool[0], axis=1))
    runner = _FakeRunner(space, pool[far])
    pool_pred = runner.predict(space.frame_with(pool))
    assert pool_pred[far] == 0 and pool_pred.sum() == len(pool) - 1
    rng = np.random.default_rng(0)
    start = _init_points(runner, 0, pool[0], 1, rng, pool, pool_pred)
    assert start is not None and np.array_equal(start, pool[far])
    # without the data rows, the seeded random points find nothing
    none = _init_points(runner, 0, pool[0], 1, rng, pool[:0], pool_pred[:0])
    assert none is None


def test_a_differentiable_copy_that_disagrees_with_the_model_is_an_error(
        paths: dict[str, Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The attacked copy is checked against the model's own probabilities: a rebuild that is
    wrong (here: the logits negated) stops the check instead of measuring another model."""
    import audit.checks.differentiable as differentiable

    real = differentiable.torch_module

    def negated(est: Any, d: int) -> Any:
        import torch

        class Negate(torch.nn.Module):
            def forward(self, x: Any) -> Any:
                return -x

        module, output = real(est, d)
        return torch.nn.Sequential(module, Negate()), output

    monkeypatch.setattr(differentiable, "torch_module", negated)
    teacher = _lr(tmp_path, "teacher", 0.001)
    run = _digits(paths, teacher, _lr(tmp_path, "student", 0.002),
                  {"robust": {"metric": "robust_accuracy", "eps": [0.05], "samples": 20}})
    result = run.run_check("robust")
    assert result.status == "error"
    assert "the differentiable copy used for gradient attacks disagrees with the model's own " \
           "probabilities by" in result.error and "use attack: hopskipjump" in result.error



def test_the_paired_bootstrap_of_01_rows_is_the_row_bootstrap() -> None:
    """Drawing the (teacher, student) row patterns from one multinomial is resampling rows:
    the replicates' means, spreads and correlation match a direct row bootstrap."""
    from audit.checks.robustness import paired_boot

    rng = np.random.default_rng(5)
    t = rng.random(150) < 0.7
    s = np.where(rng.random(150) < 0.8, t, ~t)  # correlated with the teacher
    fast = paired_boot({"t": t, "s": s}, 40_000, seed=1)
    idx = np.random.default_rng(2).integers(0, 150, size=(40_000, 150))
    rows = {"t": t[idx].mean(axis=1), "s": s[idx].mean(axis=1)}
    for k in ("t", "s"):
        assert fast[k].mean() == pytest.approx(rows[k].mean(), abs=1e-3)
        assert fast[k].std() == pytest.approx(rows[k].std(), rel=0.03)
        counts = fast[k] * 150  # whole counts of rows
        assert np.allclose(counts, np.rint(counts), rtol=0, atol=1e-9)
    corr = np.corrcoef(fast["t"], fast["s"])[0, 1]
    assert corr == pytest.approx(np.corrcoef(rows["t"], rows["s"])[0, 1], abs=0.02)
    diff = fast["t"] - fast["s"]
    assert diff.std() == pytest.approx((rows["t"] - rows["s"]).std(), rel=0.03)


def test_hopskipjump_equals_art_called_directly_from_the_same_start(
        paths: dict[str, Path]) -> None:
    """The harness's black-box path is ART's HopSkipJump on the scaled row, through a
    BlackBoxClassifier around the model: from the same start and numpy seed, ART called directly
    returns the same adversarial example."""
    from art.attacks.evasion import HopSkipJump
    from art.estimators.classification import BlackBoxClassifier

    from audit.probes import attacks

    run = _digits(paths, str(paths["digits/student.onnx"]), str(paths["digits/student.onnx"]),
                  {"r": {"metric": "robust_accuracy", "attack": "hopskipjump", "samples": 10}})
    run.inputs
    space = attacks.attack_space(run.eval_table, 10, 0)
    runner = attacks.AttackRunner(run.probes, "student", space)
    x0 = space.scaled()
    todo = np.flatnonzero(runner.clean() == runner.y)[:2]
    ours, done, no_start = attacks.hopskipjump(runner, "2", todo, x0)
    assert list(done) == list(todo) and len(no_start) == 0

    loaded = run.model("student")
    order = run.encoding.reorder(loaded.classes)
    pool, pool_pred = attacks.start_pool(runner)
    rng = np.random.default_rng(0)
    state = np.random.get_state()
    np.random.seed(0)
    try:
        for i in todo:
            start = attacks._init_points(runner, int(i), x0[i], int(runner.clean()[i]), rng,
                                         pool, pool_pred)

            def predict(x: np.ndarray, i: int = int(i)) -> np.ndarray:
                frame = space.frame_with(np.asarray(x, np.float64), np.full(len(x), i))
                table = dataclasses.replace(run.eval_table, features=frame,
                                            labels=run.eval_table.labels.iloc[:len(frame)])
                return loaded.predict_proba(table)[:, order]

            clf = BlackBoxClassifier(predict, input_shape=(x0.shape[1],), nb_classes=10,
                                     clip_values=(0.0, 1.0))
            direct = HopSkipJump(clf, norm=2, init_size=attacks.HSJ_INIT_SIZE, verbose=False,
                                 **attacks.HSJ).generate(x0[i:i + 1].astype(np.float32),
                                                         x_adv_init=start[None].astype(np.float32))
            np.testing.assert_allclose(ours[i], direct[0], rtol=0, atol=1e-6)
            assert not np.array_equal(ours[i], x0[i])  # it moved
    finally:
        np.random.set_state(state)


def test_strongest_attacks_each_model_its_own_way_and_refuses_a_regression(
        paths: dict[str, Path]) -> None:
    """attack: strongest gives the torch teacher PGD and the ONNX student HopSkipJump: each
    model's robust accuracy stands (gate it with min), but their difference would measure the
    attacks too, so a regression gate is inconclusive (blocking) and says why."""
    run = _digits(paths, _torch(paths, "teacher"), str(paths["digits/student.onnx"]),
                  {"r": {"metric": "robust_accuracy", "attack": "strongest", "eps": [0.3],
                         "samples": 30,  # the fewest rows a gate is judged on
                         "gate": {"max": 0.99, "max_regression": 0.5}}})
    result = run.run_check("r")
    (m,) = result.measurements
    attacks = {r["model"]: r["attack"] for r in m.breakdown}
    assert attacks == {"teacher": "pgd", "student": "hopskipjump"}
    assert m.params["attack"] == "strongest" and m.regression is None
    assert m.notes[0].startswith("each model's strongest attack (requested strongest): pgd on "
                                 "the teacher, hopskipjump on the student, eps 0.3")
    gates = {g.kind: g for g in result.gates}
    assert gates["max"].status == "pass"  # a bound on the student alone is judged as usual
    assert gates["max_regression"].status == "inconclusive"
    assert gates["max_regression"].reason == (
        "no regression: the teacher faced pgd, the student hopskipjump; use attack: auto for one")
    assert any(n.startswith("the teacher faced pgd and the student hopskipjump, so their "
                            "difference is not a regression of the model") for n in m.notes)
    assert result.status == "inconclusive"


def _slow_clock(monkeypatch: pytest.MonkeyPatch) -> None:
    """A clock that moves one second per reading: the cap is reached at a known point, and a
    machine as slow as that must still give the same numbers when the cap is not reached."""
    import types

    import audit.probes.attacks as attacks

    ticks = iter(range(10**9))
    monkeypatch.setattr(attacks, "time",
                        types.SimpleNamespace(perf_counter=lambda: float(next(ticks))))


def _black_box_suite(paths: dict[str, Path], max_seconds: float, samples: int = 10) -> Any:
    raw = {"version": 1, "name": "arrests-robust",
           "data": {"eval": str(paths["arrests/eval.csv"]), "target": "released"},
           "teacher": str(paths["arrests/student_weak.onnx"]),
           "student": str(paths["arrests/student.onnx"]),
           "checks": {"robust": {"metric": "robust_accuracy", "eps": [0.2], "samples": samples,
                                 "max_seconds": max_seconds}}}
    return suite_from_dict(raw, base_dir=paths["arrests/eval.csv"].parent)


CAPPED = re.compile(
    r"the wall-clock cap \(max_seconds 40\) stopped hopskipjump on the (teacher|student) "
    r"\(\S+\.onnx\) after (\d+) of the (\d+) rows it had to attack \(the ones it classifies "
    r"correctly among the 10 sampled eval rows, samples: 10\); a result must cover the whole "
    r"sample, so none is reported: raise max_seconds or lower samples")


def test_the_cap_is_an_error_never_a_smaller_sample_and_is_not_kept_on_disk(
        paths: dict[str, Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Which rows are measured must not depend on the machine's speed: the cap stops the check
    with the rows done and asked, and a later run attacks again (the partial attack was not
    kept); a finished attack is reused."""
    import audit.probes.attacks as attacks
    from audit.runner import AuditSession

    calls: list[str] = []
    real = attacks.hopskipjump

    def counting(*args: Any, **kwargs: Any) -> Any:
        calls.append(args[0].role)
        return real(*args, **kwargs)

    monkeypatch.setattr(attacks, "hopskipjump", counting)
    _slow_clock(monkeypatch)
    cache = tmp_path / "cache"
    short = SuiteRun(_black_box_suite(paths, 40), AuditSession(cache)).run_check("robust")
    assert short.status == "error" and not short.measurements
    found = CAPPED.fullmatch(short.error)
    assert found, short.error
    assert int(found[2]) < int(found[3]) <= 10
    assert len(calls) in (1, 2)
    before = len(calls)
    again = SuiteRun(_black_box_suite(paths, 40), AuditSession(cache)).run_check("robust")
    assert again.error == short.error  # the same point on the same clock
    assert len(calls) == 2 * before  # the partial attack was not kept: attacked again
    full = SuiteRun(_black_box_suite(paths, 10**6), AuditSession(cache)).run_check("robust")
    assert full.status == "info", full.error
    assert full.measurements[0].n == 10
    after = len(calls)
    SuiteRun(_black_box_suite(paths, 10**6), AuditSession(cache)).run_check("robust")
    assert len(calls) == after  # finished attacks are reused


def _numbers(result: Any) -> list[dict[str, Any]]:
    """The measurements without the attacks' durations."""
    out = []
    for m in result.measurements:
        d = m.to_dict()
        d["breakdown"] = [{k: v for k, v in row.items() if k != "seconds"}
                          for row in d["breakdown"]]
        out.append(d)
    return out


def test_a_slow_machine_gives_the_same_numbers(paths: dict[str, Path],
                                               monkeypatch: pytest.MonkeyPatch) -> None:
    fast = SuiteRun(_black_box_suite(paths, 30)).run_check("robust")
    with monkeypatch.context() as patched:
        _slow_clock(patched)  # thousands of "seconds" pass, within a cap large enough
        slow = SuiteRun(_black_box_suite(paths, 10**7)).run_check("robust")
    assert fast.status == slow.status == "info", (fast.error, slow.error)
    assert _numbers(fast) == _numbers(slow)
    assert fast.measurements[0].n == 10


def test_black_box_queries_answer_each_distinct_row_once(paths: dict[str, Path]) -> None:
    """HopSkipJump's queries that round to the same integer row are answered once, with the
    model's own answer; a small integer grid is asked whole, once per set of unperturbed
    values (rows with the same categorical values share it)."""
    from audit.probes import attacks

    run = SuiteRun(_black_box_suite(paths, 30))
    run.inputs
    space = attacks.attack_space(run.eval_table, 40, 0)
    runner = attacks.AttackRunner(run.probes, "teacher", space)
    asked: list[int] = []
    real = runner.proba

    def counting(frame: pd.DataFrame) -> np.ndarray:
        asked.append(len(frame))
        return real(frame)

    runner.proba = counting  # type: ignore[method-assign]
    x0 = space.scaled()
    x = np.clip(x0[3] + np.random.default_rng(0).uniform(-0.02, 0.02, size=(50, len(x0[3]))),
                0, 1)
    want = real(space.frame_with(x, np.full(len(x), 3)))
    distinct = len({row.tobytes() for row in space.unscale(x)})
    assert distinct < 50

    small = attacks.GRID_ROWS
    try:
        attacks.GRID_ROWS = 0  # no grid: each distinct row once
        answers = attacks._Answers(runner)
        np.testing.assert_array_equal(answers(3, x), want)
        assert asked == [distinct]
        np.testing.assert_array_equal(answers(3, x[::-1]), want[::-1])
        assert asked == [distinct]  # all answered from the first call
    finally:
        attacks.GRID_ROWS = small
    asked.clear()
    answers = attacks._Answers(runner)  # year 6 x age 55 x checks 7 values
    assert answers.grid is not None and len(answers.grid) == 6 * 55 * 7
    np.testing.assert_array_equal(answers(3, x), want)
    assert asked == [6 * 55 * 7]
    same = [j for j in range(len(x0)) if j != 3 and space.frame.drop(
        columns=list(space.columns)).iloc[j].equals(space.frame.drop(
            columns=list(space.columns)).iloc[3])]
    assert same  # another sampled row with the same categorical values
    answers(same[0], x0[same])
    assert asked == [6 * 55 * 7]  # shared


def test_torch_runs_on_one_thread_during_a_black_box_attack_and_is_restored() -> None:
    import torch

    from audit.probes.attacks import one_torch_thread

    before = torch.get_num_threads()
    with one_torch_thread():
        assert torch.get_num_threads() == 1
    assert torch.get_num_threads() == before


def test_a_gradient_attack_with_a_varying_unperturbed_column_is_a_clear_error(
        tmp_path: Path) -> None:
    """A bool column is never perturbed; the gradient copy would hold it at one value for every
    row, which is another model: refused, pointing to the black-box attack."""
    from sklearn.linear_model import LogisticRegression

    rng = np.random.default_rng(0)
    frame = pd.DataFrame({"x1": rng.normal(size=200), "x2": rng.normal(size=200),
                          "flag": rng.random(200) < 0.5})
    frame["label"] = np.where(frame.x1 + frame.flag > 0.5, "Yes", "No")
    frame.to_csv(tmp_path / "eval.csv", index=False)
    model = LogisticRegression().fit(frame[["x1", "x2", "flag"]], frame["label"])
    (tmp_path / "m.pkl").write_bytes(pickle.dumps(model))
    raw = {"version": 1, "name": "flags", "data": {"eval": "eval.csv", "target": "label"},
           "teacher": {"pickle": "m.pkl", "trust": True},
           "student": {"pickle": "m.pkl", "trust": True},
           "checks": {"r": {"metric": "robust_accuracy", "attack": "pgd", "samples": 50}}}
    run = SuiteRun(suite_from_dict(raw, base_dir=tmp_path))
    result = run.run_check("r")
    assert result.status == "error"
    assert result.error == (
        f"attack: pgd perturbs numeric columns only, but column 'flag' (bool) varies and the "
        f"gradient copy of the {run.model('teacher').label} would hold it fixed; use attack: "
        "hopskipjump, which keeps each row's own value")
