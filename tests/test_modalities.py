"""Text and image models end to end, on the real fixture pairs (MNIST CNNs, Rotten Tomatoes
BERTs): the adapters against plain torch / transformers / onnxruntime, the image attacks
against ART called directly, corruptions and text edits against direct recomputation, the
example suites' findings, planted defects a gate must catch, and the report's examples."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

from audit import SuiteRun, load_suite, suite_from_dict
from audit.errors import ModelError
from audit.spec import ModelSpec

ROOT = Path(__file__).resolve().parents[1]
MNIST_SUITE = ROOT / "suites" / "mnist.audit.yaml"
ROTTEN_SUITE = ROOT / "suites" / "rotten.audit.yaml"

pytestmark = [pytest.mark.slow,
              # the fixtures' teacher is TorchScript, which torch 2.13 deprecates on load
              pytest.mark.filterwarnings(r"ignore:`torch\.jit\.load` is deprecated:DeprecationWarning")]


def _images(folder: Path) -> dict[str, Any]:
    return {"eval": str(folder / "eval.npy"), "train": str(folder / "train.npy")}


def image_suite(mnist: Path, checks: dict[str, Any], *, teacher: Any = None, student: Any = None,
                **settings: Any) -> SuiteRun:
    """A run of an MNIST suite written in code (teacher.pt and student.pt2 by default)."""
    raw = {"version": 1, "name": "mnist-test",
           "data": {"eval": str(mnist / "eval.csv"), "train": str(mnist / "train.csv"),
                    "target": "digit", "features": ["id"], "images": _images(mnist)},
           "teacher": teacher or str(mnist / "teacher.pt"),
           "student": student or str(mnist / "student.pt2"),
           "settings": {"bootstrap": 200, "seed": 0, **settings}, "checks": checks}
    return SuiteRun(suite_from_dict(raw, base_dir=mnist))


def text_suite(rotten: Path, checks: dict[str, Any], *, teacher: Any = None, student: Any = None,
               base: Path | None = None) -> SuiteRun:
    raw = {"version": 1, "name": "rotten-test",
           "data": {"eval": str(rotten / "eval.csv"), "train": str(rotten / "train.csv"),
                    "holdout": str(rotten / "holdout.csv"), "target": "label", "text": "text"},
           "teacher": teacher or {"transformers": str(rotten / "teacher")},
           "student": student or {"transformers": str(rotten / "student")},
           "settings": {"bootstrap": 200, "seed": 0}, "checks": checks}
    return SuiteRun(suite_from_dict(raw, base_dir=base or rotten))


# ------------------------------------------------------------------------------ adapters
def test_torch_and_onnx_image_models_equal_plain_inference(mnist: Path) -> None:
    import onnxruntime as ort
    import torch

    x = np.load(mnist / "eval.npy").astype(np.float32) / 255
    run = image_suite(mnist, {"acc": {"metric": "accuracy"}})
    table = run.eval_table
    np.testing.assert_array_equal(table.images, x)
    with torch.no_grad():
        teacher = torch.softmax(torch.jit.load(str(mnist / "teacher.pt"))(torch.from_numpy(x)),
                                1).double().numpy()
        student = torch.softmax(torch.export.load(str(mnist / "student.pt2")).module()(
            torch.from_numpy(x)), 1).double().numpy()
    np.testing.assert_allclose(run.model("teacher").predict_proba(table), teacher, atol=1e-6)
    np.testing.assert_allclose(run.model("student").predict_proba(table), student, atol=1e-6)
    session = ort.InferenceSession(str(mnist / "student.onnx"), providers=["CPUExecutionProvider"])
    logits = session.run(None, {"image": x})[0].astype(np.float64)
    expected = np.exp(logits - logits.max(1, keepdims=True))
    expected /= expected.sum(1, keepdims=True)
    onnx_run = image_suite(mnist, {"acc": {"metric": "accuracy"}},
                           student=str(mnist / "student.onnx"))
    got = onnx_run.model("student").predict_proba(onnx_run.eval_table)
    np.testing.assert_allclose(got, expected, atol=1e-6)  # logits output: softmax applied
    np.testing.assert_allclose(got, student, atol=1e-4)  # and the export matches torch


def test_transformers_and_onnx_text_models_equal_plain_inference(rotten: Path) -> None:
    import torch
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    texts = pd.read_csv(rotten / "eval.csv")["text"].tolist()
    run = text_suite(rotten, {"acc": {"metric": "accuracy"}},
                     student={"onnx": str(rotten / "student.onnx"),
                              "tokenizer": str(rotten / "student_tokenizer")})
    for role, folder in (("teacher", rotten / "teacher"), ("student", rotten / "student")):
        tokenizer = AutoTokenizer.from_pretrained(str(folder), local_files_only=True)
        model = AutoModelForSequenceClassification.from_pretrained(str(folder),
                                                                   local_files_only=True).eval()
        with torch.inference_mode():
            enc = tokenizer(texts, padding=True, truncation=True, max_length=64,
                            return_tensors="pt")
            plain = torch.softmax(model(**enc).logits, 1).double().numpy()
        if role == "teacher":
            loaded = run.model("teacher")
            assert loaded.classes == tuple(model.config.id2label[i] for i in range(2))
            assert loaded.n_parameters == sum(p.numel() for p in model.parameters())
            np.testing.assert_allclose(loaded.predict_proba(run.eval_table), plain, atol=1e-5)
        else:  # the ONNX export of the student, tokenized with its tokenizer folder
            np.testing.assert_allclose(run.model("student").predict_proba(run.eval_table), plain,
                                       atol=1e-4)


def _copy_model(rotten: Path, tmp_path: Path) -> Path:
    folder = tmp_path / "model"
    shutil.copytree(rotten / "student", folder)
    return folder


def test_a_pickled_checkpoint_is_refused_and_custom_code_never_runs(rotten: Path,
                                                                    tmp_path: Path) -> None:
    folder = _copy_model(rotten, tmp_path)
    (folder / "model.safetensors").unlink()
    (folder / "pytorch_model.bin").write_bytes(b"not even a pickle")
    spec = ModelSpec(kind="transformers", path=folder)
    from audit.models import load_model

    with pytest.raises(ModelError, match=r"the weights are pytorch_model\.bin, a pickle .*"
                                         r"add trust: true"):
        load_model(spec, "student")
    folder = _copy_model(rotten, tmp_path / "b")
    config = json.loads((folder / "config.json").read_text())
    config["auto_map"] = {"AutoModelForSequenceClassification": "evil.Model"}
    (folder / "config.json").write_text(json.dumps(config))
    (folder / "evil.py").write_text("raise SystemExit('custom code ran')\n")
    with pytest.raises(ModelError, match="never runs a model folder's code"):
        load_model(ModelSpec(kind="transformers", path=folder, trust=True), "student")


def test_a_model_folders_fingerprint_covers_its_files(rotten: Path, tmp_path: Path) -> None:
    from audit.models import content_sha256

    folder = _copy_model(rotten, tmp_path)
    spec = ModelSpec(kind="transformers", path=folder)
    before = content_sha256(spec)
    (folder / "README.md").write_text("a model card changes no output\n")
    assert content_sha256(spec) == before
    tokenizer = json.loads((folder / "tokenizer.json").read_text())
    tokenizer["truncation"] = {"max_length": 8, "strategy": "LongestFirst", "stride": 0,
                               "direction": "Right"}
    (folder / "tokenizer.json").write_text(json.dumps(tokenizer))
    assert content_sha256(spec) != before
    (folder / "link.json").symlink_to(ROOT / "pyproject.toml")
    with pytest.raises(ModelError, match="outside the model's folder"):
        content_sha256(spec)


# ------------------------------------------------------------------------------ attacks
def _sampled(n: int, samples: int, seed: int = 0) -> np.ndarray:
    return np.sort(np.random.default_rng(seed).choice(n, size=samples, replace=False))


@pytest.mark.parametrize("attack", ["pgd", "fgsm"])
def test_image_gradient_attacks_equal_art_called_directly(mnist: Path, attack: str) -> None:
    import torch
    from art.attacks.evasion import FastGradientMethod, ProjectedGradientDescent
    from art.estimators.classification import PyTorchClassifier

    eps, samples = 0.1, 60
    run = image_suite(mnist, {"robust": {"metric": "robust_accuracy", "attack": attack,
                                         "eps": [eps], "samples": samples}})
    result = run.run_check("robust")
    assert result.error is None, result.error
    (m,) = result.measurements
    rows = _sampled(1000, samples)
    x = np.load(mnist / "eval.npy")[rows].astype(np.float32) / 255
    y = pd.read_csv(mnist / "eval.csv")["digit"].to_numpy()[rows]
    for role, module in (("teacher", torch.jit.load(str(mnist / "teacher.pt"))),
                         ("student", torch.export.load(str(mnist / "student.pt2")).module())):
        class Cast(torch.nn.Module):
            def __init__(self) -> None:
                super().__init__()
                self.inner = module

            def forward(self, t: Any) -> Any:
                return self.inner(t.float())

            def train(self, mode: bool = True) -> Any:
                self.training = mode
                return self

        clf = PyTorchClassifier(model=Cast(), loss=torch.nn.CrossEntropyLoss(),
                                input_shape=(1, 28, 28), nb_classes=10, clip_values=(0.0, 1.0),
                                device_type="cpu")
        clean = clf.predict(x).argmax(1) == y
        todo = np.flatnonzero(clean)
        art = (ProjectedGradientDescent(clf, norm=np.inf, eps=eps, eps_step=eps / 8, max_iter=20,
                                        batch_size=len(todo), verbose=False)
               if attack == "pgd" else
               FastGradientMethod(clf, norm=np.inf, eps=eps, batch_size=len(todo)))
        adv = art.generate(x[todo], y=y[todo])
        robust = np.zeros(len(rows), bool)
        robust[todo] = clf.predict(adv).argmax(1) == y[todo]
        got = m.teacher if role == "teacher" else m.student
        assert got is not None and got.value == pytest.approx(robust.mean(), abs=1e-12), role


def test_image_hopskipjump_equals_art_from_the_same_start(mnist: Path) -> None:
    from art.attacks.evasion import HopSkipJump
    from art.estimators.classification import BlackBoxClassifier

    from audit.probes.attacks import HSJ, HSJ_INIT_SIZE, numpy_seeded
    from audit.probes.image_attacks import _Images, _starts

    samples, eps = 10, 0.1
    run = image_suite(mnist, {"hsj": {"metric": "robust_accuracy", "attack": "hopskipjump",
                                      "eps": [eps], "samples": samples, "max_seconds": 300}},
                      student=str(mnist / "student.onnx"))
    result = run.run_check("hsj")
    assert result.error is None, result.error
    (m,) = result.measurements
    images = _Images(run.probes, "student", run.probes.sample(samples))
    todo = np.flatnonzero(images.clean() == images.y)
    starts, ok = _starts(images, todo)
    model = run.model("student")

    def predict(x: np.ndarray) -> np.ndarray:
        return model.predict_proba(images.table.take(np.zeros(len(x), int)).with_inputs(x))

    art = HopSkipJump(BlackBoxClassifier(predict, input_shape=(1, 28, 28), nb_classes=10,
                                         clip_values=(0.0, 1.0)),
                      norm="inf", init_size=HSJ_INIT_SIZE, verbose=False, **HSJ)
    out = images.x0.copy()
    with numpy_seeded(0):
        for j, i in enumerate(todo):
            if ok[j]:
                out[i] = art.generate(images.x0[i:i + 1], x_adv_init=starts[j:j + 1])[0]
    moved = np.clip(out - images.x0, -eps, eps) + images.x0  # the projection onto the eps ball
    robust = (images.clean() == images.y) & (images.predict(moved) == images.y)
    assert m.student.value == pytest.approx(robust.mean(), abs=1e-12)


def test_corruption_accuracy_equals_a_direct_recomputation(mnist: Path) -> None:
    import torch

    from audit.probes.corruptions import corrupt

    run = image_suite(mnist, {"c": {"metric": "corruption_accuracy", "samples": 300,
                                    "corruptions": ["contrast", "gaussian_noise"],
                                    "severities": [1, 5]}})
    result = run.run_check("c")
    assert result.error is None, result.error
    rows = _sampled(1000, 300)
    x = np.load(mnist / "eval.npy")[rows].astype(np.float32) / 255
    y = pd.read_csv(mnist / "eval.csv")["digit"].to_numpy()[rows]
    teacher = torch.jit.load(str(mnist / "teacher.pt"))
    for m in result.measurements:
        xc = corrupt(x, m.params["corruption"], m.params["severity"], 0)
        with torch.no_grad():
            right = teacher(torch.from_numpy(xc)).argmax(1).numpy() == y
        assert m.teacher is not None and m.teacher.value == pytest.approx(right.mean())
    worst = max(result.measurements, key=lambda m: m.regression.value if m.regression else 0)
    assert (worst.params["corruption"], worst.params["severity"]) == ("contrast", 5)
    assert worst.regression is not None and worst.regression.ci is not None
    assert worst.regression.ci[0] > 0.3  # the real finding: the student collapses, teacher does not


def test_edit_accuracy_equals_the_attack_called_directly_and_is_deterministic(
        rotten: Path) -> None:
    from audit.probes.text_attack import attack

    checks = {"e": {"metric": "edit_accuracy", "budgets": [1, 2], "samples": 30,
                    "edits": ["swap", "word_drop"]}}
    first = text_suite(rotten, checks)
    a = first.run_check("e")
    b = text_suite(rotten, checks).run_check("e")
    assert a.error is None, a.error
    assert [m.to_dict()["student"] for m in a.measurements] == [
        m.to_dict()["student"] for m in b.measurements]
    rows = _sampled(len(first.eval_table.texts), 30)
    sample = first.eval_table.take(rows)
    model = first.model("student")
    order = first.encoding.reorder(model.classes)

    def predict(texts: list[str]) -> np.ndarray:
        return model.predict_proba(sample.take(np.zeros(len(texts), int)).with_inputs(texts))[
            :, order]

    direct = attack(predict, list(sample.texts), first.inputs.y[rows], max_edits=2,
                    kinds=("swap", "word_drop"), seed=0)
    for m in a.measurements:
        assert m.student.value == pytest.approx(direct.robust_accuracy(m.params["budget"]))
        (row,) = [r for r in m.breakdown if r["model"] == "student"]
        assert row["queries"] == int(direct.queries.sum())


@pytest.mark.parametrize("metric,extra", [
    ("corruption_accuracy", {"samples": 200, "severities": [3]}),
    ("robust_accuracy", {"samples": 50, "eps": [0.05]}),
    ("slice_regression", {"min_group_size": 50}),
])
def test_an_identical_image_student_has_zero_regression_and_passes(mnist: Path, metric: str,
                                                                   extra: dict[str, Any]) -> None:
    gate = {"max": 0.0} if metric == "slice_regression" else {"max_regression": 0.0}
    run = image_suite(mnist, {"c": {"metric": metric, **extra, "gate": gate}},
                      student=str(mnist / "teacher.pt"))
    result = run.run_check("c")
    assert result.error is None, result.error
    assert result.status == "pass", [g.reason for g in result.gates]
    for m in result.measurements:
        if m.regression is not None:
            assert m.regression.value == 0.0
        from audit.results import Measurement

        assert Measurement.from_dict(json.loads(json.dumps(m.to_dict()))) == m


def test_an_identical_text_student_has_zero_edit_regression(rotten: Path) -> None:
    run = text_suite(rotten, {"e": {"metric": "edit_accuracy", "samples": 40, "budgets": [1],
                                    "gate": {"max_regression": 0.0}}},
                     student={"transformers": str(rotten / "teacher")})
    result = run.run_check("e")
    assert result.error is None, result.error
    assert result.status == "pass"
    assert all(m.regression is not None and m.regression.value == 0 for m in result.measurements)


# ------------------------------------------------------------------------ example findings
def test_the_image_example_fails_on_its_real_findings(mnist: Path, tmp_path: Path) -> None:
    from audit.report.writer import write_report

    report = SuiteRun(load_suite(MNIST_SUITE)).report()
    status = {c.name: c.status for c in report.checks}
    assert status["accuracy"] == "pass" and status["agreement"] == "pass"
    assert status["corruptions"] == "fail" and status["adversarial"] == "fail"
    assert status["copy_cost"] == "pass"  # ART's CopycatCNN copies the teacher no worse
    assert report.verdict == "fail"
    paths = write_report(report, report_dir=tmp_path)  # and the report follows its schema
    html = paths.html.read_text()
    assert html.count('src="data:image/png;base64,') >= 5  # corrupted digits, as thumbnails


def test_the_text_example_shows_a_student_as_accurate_that_disagrees(rotten: Path,
                                                                      tmp_path: Path) -> None:
    from audit.report.writer import write_report

    report = SuiteRun(load_suite(ROTTEN_SUITE)).report()
    by = {c.name: c for c in report.checks}
    accuracy = by["accuracy"].measurements[0]
    assert accuracy.teacher is not None
    assert abs(accuracy.student.value - accuracy.teacher.value) < 0.02
    assert by["agreement"].status == "fail"
    assert 0.82 < by["agreement"].measurements[0].student.value < 0.9
    assert [c.name for c in report.checks if c.status != "pass"] == ["agreement"]
    html = write_report(report, report_dir=tmp_path).html.read_text()
    assert 'class="snippet edited"' in html  # a flipped text next to its original


# ----------------------------------------------------------------------- planted defects
DEFECTS = '''
import torch


class Defect(torch.nn.Module):
    """The real student with one planted defect."""

    def __init__(self, inner, kind: str):
        super().__init__()
        self.inner = inner
        self.kind = kind
        self.classes = list(range(10))

    def forward(self, x):
        logits = self.inner(x.float())
        if self.kind == "dark":  # wrong on the darkest images
            dark = x.float().mean(dim=(1, 2, 3)) < 0.105
            logits = torch.where(dark[:, None], logits.roll(1, dims=1), logits)
        if self.kind == "confident":  # the same predictions, far more confident
            logits = logits * 20.0
        return logits


def dark():
    return Defect(torch.jit.load(PATH), "dark")


def confident():
    return Defect(torch.export.load(STUDENT).module(), "confident")
'''


def _defects(tmp_path: Path, mnist: Path) -> Path:
    (tmp_path / "defects.py").write_text(DEFECTS.replace("PATH", repr(str(mnist / "teacher.pt")))
                                         .replace("STUDENT", repr(str(mnist / "student.pt2"))))
    return tmp_path


def test_a_student_that_fails_on_dark_images_is_found_by_slice_discovery(mnist: Path,
                                                                        tmp_path: Path) -> None:
    folder = _defects(tmp_path, mnist)
    checks = {"slices": {"metric": "slice_regression", "gate": {"max": 0.05}}}
    run = SuiteRun(suite_from_dict({**_raw(image_suite(mnist, checks)),
                                    "student": {"callable": "defects:dark"}}, base_dir=folder))
    result = run.run_check("slices")
    assert result.error is None, result.error
    assert result.status == "fail"
    worst = result.measurements[0].breakdown[0]
    assert "brightness <" in worst["slice"] and worst["significant"]
    faithful = image_suite(mnist, checks, student=str(mnist / "teacher.pt")).run_check("slices")
    assert faithful.status == "pass"


def test_an_over_confident_image_student_fails_calibration(mnist: Path, tmp_path: Path) -> None:
    folder = _defects(tmp_path, mnist)
    checks = {"ece": {"metric": "ece", "gate": {"max_regression": 0.01}},
              "agree": {"metric": "agreement", "gate": {"min": 0.99}}}
    # the teacher is the real student here; the planted student is it, over-confident
    run = SuiteRun(suite_from_dict({**_raw(image_suite(mnist, checks)),
                                    "teacher": str(mnist / "student.pt2"),
                                    "student": {"callable": "defects:confident"}},
                                   base_dir=folder))
    assert run.run_check("agree").status == "pass"  # the same predictions as the teacher
    assert run.run_check("ece").status == "fail"  # but not the same confidence


def _raw(run: SuiteRun) -> dict[str, Any]:
    """A suite dict equal to ``run``'s, for variants (absolute paths)."""
    s = run.suite
    return {"version": 1, "name": s.name,
            "data": {"eval": str(s.data.eval), "train": str(s.data.train), "target": "digit",
                     "features": ["id"], "images": {r: str(p) for r, p in s.data.images.arrays}},
            "teacher": str(s.teacher.path), "student": str(s.student.path),
            "settings": {"bootstrap": 200, "seed": 0},
            "checks": {c.name: {"metric": c.metric, **c.params,
                                **({"gate": {k: v for k, v in c.gate.bounds()}} if c.gate else {})}
                       for c in s.checks}}


def test_the_fragile_image_student_fails_the_corruption_gate_a_faithful_one_passes(
        mnist: Path) -> None:
    checks = {"c": {"metric": "corruption_accuracy", "samples": 300, "corruptions": ["contrast"],
                    "severities": [5], "gate": {"max_regression": 0.1}}}
    assert image_suite(mnist, checks).run_check("c").status == "fail"  # the real student
    assert image_suite(mnist, checks, student=str(mnist / "teacher.onnx")).run_check(
        "c").status == "pass"  # the teacher's own ONNX export: faithful


TEXT_MODELS = '''
import pandas as pd
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline

_train = pd.read_csv(TRAIN)
_pipe = make_pipeline(TfidfVectorizer(ngram_range=(1, 2), min_df=1),
                      LogisticRegression(C=10.0, max_iter=1000)).fit(_train["text"], _train["label"])
_known = set(w for t in pd.read_csv(EVAL)["text"].tolist() + _train["text"].tolist()
             for w in t.lower().split())
classes = list(_pipe.classes_)


def teacher(texts):
    return _pipe.predict_proba(texts)


def _flip(p, rows):
    p = p.copy()
    p[rows] = p[rows][:, ::-1]
    return p


def long_texts(texts):  # wrong on every text of more than 30 words
    return _flip(teacher(texts), [len(t.split()) > 30 for t in texts])


def typos(texts):  # flips on any word it has never seen: one typo changes its answer
    return _flip(teacher(texts), [any(w.lower() not in _known for w in t.split()) for t in texts])


def confident(texts):
    import numpy as np
    p = np.clip(teacher(texts), 1e-9, 1)
    z = np.log(p) * 8
    z = np.exp(z - z.max(axis=1, keepdims=True))
    return z / z.sum(axis=1, keepdims=True)
'''


@pytest.fixture(scope="module")
def text_models(rotten: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("textmodels")
    (folder / "textmodels.py").write_text(TEXT_MODELS.replace("TRAIN", repr(str(
        rotten / "train.csv"))).replace("EVAL", repr(str(rotten / "eval.csv"))))
    return folder


def _text_pair(rotten: Path, folder: Path, student: str, checks: dict[str, Any]) -> SuiteRun:
    return text_suite(rotten, checks, teacher={"callable": "textmodels:teacher",
                                               "classes": ["fresh", "rotten"]},
                      student={"callable": f"textmodels:{student}",
                               "classes": ["fresh", "rotten"]}, base=folder)


def test_a_student_that_fails_on_long_texts_is_found_by_slice_discovery(
        rotten: Path, text_models: Path) -> None:
    checks = {"slices": {"metric": "slice_regression", "min_group_size": 30, "gate": {"max": 0.05}}}
    result = _text_pair(rotten, text_models, "long_texts", checks).run_check("slices")
    assert result.error is None, result.error
    assert result.status == "fail"
    worst = result.measurements[0].breakdown[0]
    assert worst["significant"] and ("text_words >=" in worst["slice"] or
                                     "text_characters >=" in worst["slice"]), worst["slice"]
    assert _text_pair(rotten, text_models, "teacher", checks).run_check("slices").status == "pass"


def test_an_over_confident_text_student_fails_calibration(rotten: Path, text_models: Path) -> None:
    checks = {"ece": {"metric": "ece", "gate": {"max_regression": 0.05}},
              "agree": {"metric": "agreement", "gate": {"min": 0.99}}}
    run = _text_pair(rotten, text_models, "confident", checks)
    assert run.run_check("agree").status == "pass"
    assert run.run_check("ece").status == "fail"


def test_a_typo_fragile_text_student_fails_the_edit_gate_a_faithful_one_passes(
        rotten: Path, text_models: Path) -> None:
    checks = {"e": {"metric": "edit_accuracy", "samples": 40, "budgets": [1],
                    "edits": ["swap", "keyboard"], "gate": {"max_regression": 0.1}},
              "acc": {"metric": "accuracy", "gate": {"max_regression": 0.01}}}
    fragile = _text_pair(rotten, text_models, "typos", checks)
    assert fragile.run_check("acc").status == "pass"  # as accurate on clean texts
    assert fragile.run_check("e").status == "fail"
    assert _text_pair(rotten, text_models, "teacher", checks).run_check("e").status == "pass"


# ------------------------------------------------------------------------------ report
def test_a_forged_example_in_the_json_is_never_rendered(mnist: Path, tmp_path: Path) -> None:
    from audit.report.html import render_html
    from audit.report.writer import write_report

    run = image_suite(mnist, {"c": {"metric": "corruption_accuracy", "samples": 50,
                                    "corruptions": ["jpeg"], "severities": [1]}})
    report = run.report()
    data = json.loads(write_report(report, report_dir=tmp_path).json.read_text())
    examples = data["checks"][0]["measurements"][0]["extra"]["examples"]
    assert examples[0]["image"].startswith("data:image/png;base64,")
    examples[0]["image"] = "javascript:alert(1)"
    examples.append({"image": 'data:image/png;base64,"><script>x</script>',
                     "text": "<script>alert(2)</script>\x1b[2K"})
    html = render_html(data)
    assert "javascript:alert" not in html and "<script>x" not in html
    assert "&lt;script&gt;alert(2)&lt;/script&gt;\\x1b[2K" in html


def test_fairness_runs_unchanged_on_a_text_suite_and_equals_fairlearn(rotten: Path,
                                                                     tmp_path: Path) -> None:
    from fairlearn.metrics import demographic_parity_difference

    frame = pd.read_csv(rotten / "eval.csv")
    frame["half"] = np.where(frame["movie"].str[0] < "m", "a-l", "m-z")
    frame.to_csv(tmp_path / "eval.csv", index=False)
    raw = {"version": 1, "name": "fair-text",
           "data": {"eval": str(tmp_path / "eval.csv"), "target": "label", "text": "text",
                    "sensitive": ["half"], "positive": "fresh"},
           "teacher": {"transformers": str(rotten / "teacher")},
           "student": {"transformers": str(rotten / "student")},
           "settings": {"bootstrap": 200}, "checks": {"dp": {
               "metric": "demographic_parity_difference", "by": ["half"]}}}
    run = SuiteRun(suite_from_dict(raw, base_dir=tmp_path))
    result = run.run_check("dp")
    assert result.error is None, result.error
    (m,) = result.measurements
    y = (frame["label"] == "fresh").to_numpy()
    for who, est in (("teacher", m.teacher), ("student", m.student)):
        P = run.model(who).predict_proba(run.eval_table)
        fresh = run.model(who).classes.index("fresh")
        pred = P.argmax(axis=1) == fresh
        assert est is not None
        assert est.value == pytest.approx(demographic_parity_difference(
            y, pred, sensitive_features=frame["half"]))


def test_the_rows_the_student_gets_wrong_are_shown_beside_agreement(mnist: Path,
                                                                    tmp_path: Path) -> None:
    from audit.report.writer import write_report

    run = image_suite(mnist, {"agree": {"metric": "agreement"}})
    report = run.report()
    (m,) = report.checks[0].measurements
    shown = m.extra["examples"]
    assert 1 <= len(shown) <= 6
    P_t, P_s = run.inputs.p_teacher, run.inputs.p_student
    for example in shown:
        i = int(example["caption"].split()[2].rstrip(":")) - 1  # "eval row N: ..."
        assert P_t[i].argmax() == run.inputs.y[i] != P_s[i].argmax()
        assert example["image"].startswith("data:image/png;base64,")
    html = write_report(report, report_dir=tmp_path).html.read_text()
    assert "teacher right, student wrong" in html


def test_the_suites_normalisation_runs_in_front_of_an_image_model(mnist: Path) -> None:
    import onnxruntime as ort
    import torch

    x = np.load(mnist / "eval.npy").astype(np.float32) / 255
    z = (x - 0.25) / 0.5
    with torch.no_grad():
        expected = torch.softmax(torch.jit.load(str(mnist / "teacher.pt"))(torch.from_numpy(z)),
                                 1).double().numpy()
    logits = ort.InferenceSession(str(mnist / "student.onnx"), providers=[
        "CPUExecutionProvider"]).run(None, {"image": z})[0].astype(np.float64)
    onnx_expected = np.exp(logits - logits.max(1, keepdims=True))
    onnx_expected /= onnx_expected.sum(1, keepdims=True)
    checks = {"pgd": {"metric": "robust_accuracy", "eps": [0.05], "samples": 30}}
    run = image_suite(mnist, checks,
                      teacher={"torch": str(mnist / "teacher.pt"), "mean": [0.25], "std": [0.5]},
                      student={"onnx": str(mnist / "student.onnx"), "mean": [0.25], "std": [0.5]})
    np.testing.assert_allclose(run.model("teacher").predict_proba(run.eval_table), expected,
                               atol=1e-6)
    np.testing.assert_allclose(run.model("student").predict_proba(run.eval_table), onnx_expected,
                               atol=1e-6)
    both = image_suite(mnist, checks, teacher={"torch": str(mnist / "teacher.pt"),
                                               "mean": [0.25], "std": [0.5]},
                       student={"torch": str(mnist / "student.pt2"), "mean": [0.25],
                                "std": [0.5]}).run_check("pgd")
    assert both.error is None, both.error  # gradients flow through the normalisation
    wrong = image_suite(mnist, checks, teacher={"torch": str(mnist / "teacher.pt"),
                                                "mean": [0.5, 0.5, 0.5], "std": [1, 1, 1]})
    with pytest.raises(ModelError, match=r"mean and std give 3 values but the images have 1 "
                                         r"channel\(s\); give one value per channel"):
        wrong.model("teacher").predict_proba(wrong.eval_table)


@pytest.mark.parametrize("model,message", [
    ({"mean": [0.5]}, "teacher.mean=[0.5]: needs std too: pixels are normalised as (x - mean) / std"),
    ({"mean": [0.5, 0.4], "std": [0.2]},
     "teacher.std=[0.2]: has 1 values but mean has 2; give one per channel"),
    ({"mean": [0.5], "std": [0]}, "teacher.std[0]=0: must be > 0 (pixels are divided by it)"),
], ids=["mean-alone", "lengths", "zero-std"])
def test_bad_normalisation_is_a_located_error(mnist: Path, model: dict[str, Any],
                                              message: str) -> None:
    from audit.errors import SuiteError

    with pytest.raises(SuiteError) as info:
        image_suite(mnist, {"acc": {"metric": "accuracy"}},
                    teacher={"torch": str(mnist / "teacher.pt"), **model})
    assert str(info.value).endswith(message)


def test_a_model_folder_without_its_tokenizer_is_an_error_not_an_empty_vocabulary(
        rotten: Path, tmp_path: Path) -> None:
    from audit.models import load_model

    folder = _copy_model(rotten, tmp_path)
    for f in folder.glob("tokenizer*.json"):
        f.unlink()
    with pytest.raises(ModelError, match=r"holds no tokenizer \(none of tokenizer\.json, "
                                         r"vocab\.txt.*tokenizer\.save_pretrained"):
        load_model(ModelSpec(kind="transformers", path=folder), "student")
    other = _copy_model(rotten, tmp_path / "b")
    config = json.loads((other / "config.json").read_text())
    config["vocab_size"] = 50
    (other / "config.json").write_text(json.dumps(config))
    with pytest.raises(ModelError):  # transformers refuses the embedding shape, or we refuse it
        load_model(ModelSpec(kind="transformers", path=other), "student")


@pytest.mark.parametrize("suite,check,message", [
    ("image", {"metric": "edit_accuracy"}, "checks.c.metric='edit_accuracy': does not apply here: "
     "this suite's models read images (data.images); it edits texts: use robust_accuracy or "
     "corruption_accuracy on an image suite"),
    ("text", {"metric": "corruption_accuracy"}, "checks.c.metric='corruption_accuracy': does not "
     "apply here: this suite's models read texts (data.text); it corrupts images: use "
     "edit_accuracy on a text suite, robust_accuracy on a table"),
    ("text", {"metric": "robust_accuracy"}, "checks.c.metric='robust_accuracy': does not apply "
     "here: this suite's models read texts (data.text); on a text suite use edit_accuracy (text "
     "edits)"),
    ("image", {"metric": "robust_accuracy", "eps": [8]}, "checks.c.eps[0]=8: allows every "
     "image: pixels lie in [0, 1], so eps is in those units (8/255 = 0.0314 is eight grey "
     "levels)"),
    ("text", {"metric": "edit_accuracy", "edits": ["swap", "typo"]}, "checks.c.edits[1]='typo': "
     "must be one of swap, drop, insert, keyboard, case, whitespace, word_drop, word_duplicate, "
     "word_swap"),
    ("image", {"metric": "corruption_accuracy", "corruptions": ["fog"]},
     "checks.c.corruptions[0]='fog': must be one of gaussian_noise, gaussian_blur, brightness, "
     "contrast, jpeg"),
], ids=["edits-on-images", "corruptions-on-text", "pgd-on-text", "eps-8", "edit-typo",
        "corruption-fog"])
def test_checks_that_do_not_fit_the_suites_inputs_are_refused_when_parsed(
        mnist: Path, rotten: Path, suite: str, check: dict[str, Any], message: str) -> None:
    from audit.errors import SuiteError

    with pytest.raises(SuiteError) as info:
        if suite == "image":
            image_suite(mnist, {"c": check})
        else:
            text_suite(rotten, {"c": check})
    assert str(info.value).endswith(message)


def test_validate_deep_reads_precomputed_predictions_whole_on_a_text_suite(
        rotten: Path, tmp_path: Path) -> None:
    """A predictions file has one row per eval row: the first-rows check of a text suite feeds
    it the whole table, as for a tabular one."""
    run = text_suite(rotten, {"acc": {"metric": "accuracy"}})
    P = run.model("teacher").predict_proba(run.eval_table)
    pd.DataFrame({"p_fresh": P[:, 0], "p_rotten": P[:, 1]}).to_csv(tmp_path / "p.csv", index=False)
    pre = text_suite(rotten, {"acc": {"metric": "accuracy"}},
                     student={"predictions": str(tmp_path / "p.csv"),
                              "columns": ["p_fresh", "p_rotten"], "classes": ["fresh", "rotten"]})
    pre.preflight()  # no error: neither model is fed a slice it cannot read
