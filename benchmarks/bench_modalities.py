#!/usr/bin/env python
"""Text and image models: the harness's predictions and attacks against plain library calls.

Two comparisons on the example fixtures (``fixtures.vision.build()``: MNIST, 1000 eval images
28x28; ``fixtures.text.build()``: Rotten Tomatoes, 973 eval snippets):

1. **Prediction throughput** (target: harness time <= 1.2x plain), rows per second:

   * text, for both Hugging Face folders: ``audit.models.load_model(spec, role)`` of
     ``suites/rotten.audit.yaml`` and ``predict_proba(load_table(suite.data, "eval"))``
     against what a user writes: ``AutoTokenizer`` / ``AutoModelForSequenceClassification``
     ``.from_pretrained(dir, local_files_only=True)``, eval mode, ``torch.inference_mode()``,
     batches of 64 texts in file order, ``tokenizer(batch, padding=True, truncation=True,
     max_length=64, return_tensors="pt")``, softmax. The harness batches texts by length (other
     padding), so the probabilities agree to float rounding only (checked to 1e-5).
   * images: ``predict_proba`` of ``suites/mnist.audit.yaml``'s TorchScript teacher and
     ``torch.export`` student, and of both ONNX files through the harness's ONNX adapter
     (``ModelSpec(kind="onnx", path=...)``), against ``torch.jit.load`` /
     ``torch.export.load(...).module()`` on ``torch.from_numpy(eval.npy / 255).float()`` in
     batches of 256 under ``torch.no_grad()`` (softmax), and ``onnxruntime.InferenceSession``
     run directly in batches of 256 (softmax). Probabilities checked equal to 1e-6.
   * "incl. reading the data": the same, each side reading its input first (the harness
     ``load_table``: CSV, images, SHA-256; plain: ``pd.read_csv`` or ``np.load`` / 255).

   Models are loaded once per side and called directly (no prediction cache is involved).

2. **Image attacks** (target: harness <= 1.5x ART), on the 200 eval images the harness samples
   (``np.sort(np.random.default_rng(0).choice(1000, 200, replace=False))``, see
   ``Probes.sample``), for the teacher and the student: PGD (inf-norm, eps 0.1, 20 iterations,
   step eps/8, no random start) and FGSM (eps 0.1); HopSkipJump on 10 images as a third, slower
   case. The harness runs the public path: ``SuiteRun(load_suite(<temp suite>))`` of a suite with
   ``suites/mnist.audit.yaml``'s data and models (absolute paths) and one check
   ``{metric: robust_accuracy, attack: ..., eps: [0.1], samples: 200}``; ``run.inputs`` (the eval
   predictions of both models, timed apart as "predictions the check needs") is warmed first, so
   ``run.run_check(name)`` times the clean predictions of the sampled rows, both attacks, the
   adversarial predictions and the bootstrap. Per model, the harness's time is the one its
   result reports (``breakdown[].seconds``: building the ART classifier, the attack and the
   adversarial predictions; millisecond resolution). ART is called directly on the same rows:
   ``PyTorchClassifier(model=<module with a float32 cast in front>, loss=CrossEntropyLoss(),
   input_shape=(1, 28, 28), nb_classes=10, clip_values=(0, 1))``, ``ProjectedGradientDescent``
   / ``FastGradientMethod(...).generate(x, y=labels)`` on the rows the model gets right clean,
   then the module predicts the attacked rows; HopSkipJump through ``BlackBoxClassifier``, from
   the start the harness picks (the nearest sampled image of another class) with numpy seeded
   as the harness seeds it, its result projected onto the eps ball. Each round loads fresh
   modules on both sides (untimed) and runs them once on the eval images before timing, as
   ``run.inputs`` does for the harness. The robust accuracies of both sides must be equal.

Timing: ``time.perf_counter``, warm-up calls first, harness and plain calls interleaved (the
order alternates every round), medians of the rounds; a call under ~0.2 s is repeated within a
sample (the same count on both sides). One thread for torch on both sides
(``torch.set_num_threads``, ``--threads``) and for BLAS/OpenMP (environment); onnxruntime runs
with its default session options on both sides (the harness's ONNX adapter sets no thread
count). Nothing is read from or written to a disk cache (``AuditSession(cache_dir=None)``).
A row that misses its target is profiled (cProfile, the harness side; ``--profile`` profiles
every row).

Usage (from the repository root)::

    .venv/bin/python benchmarks/bench_modalities.py              # 7 rounds (~2 min on 2 cores)
    .venv/bin/python benchmarks/bench_modalities.py --rounds 3 --hsj-rounds 1
    .venv/bin/python benchmarks/bench_modalities.py --no-hsj --profile
    .venv/bin/python benchmarks/bench_modalities.py --check      # exit 1 if a target is missed
"""

from __future__ import annotations

import os

THREADS = {k: "1" for k in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS",
                            "NUMEXPR_NUM_THREADS")}
os.environ.update(THREADS)  # before numpy and torch are imported
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

import argparse  # noqa: E402
import cProfile  # noqa: E402
import math  # noqa: E402
import platform  # noqa: E402
import pstats  # noqa: E402
import shlex  # noqa: E402
import statistics  # noqa: E402
import subprocess  # noqa: E402
import sys  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
import warnings  # noqa: E402
from collections.abc import Callable  # noqa: E402
from dataclasses import dataclass, field  # noqa: E402
from functools import partial  # noqa: E402
from importlib.metadata import version  # noqa: E402
from pathlib import Path  # noqa: E402
from typing import Any  # noqa: E402

import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import torch  # noqa: E402
import yaml  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from audit import AuditSession, SuiteRun, load_suite  # noqa: E402
from audit.data import load_table  # noqa: E402
from audit.models import load_model  # noqa: E402
from audit.spec import ModelSpec  # noqa: E402
from fixtures import text as text_fixtures  # noqa: E402
from fixtures import vision as vision_fixtures  # noqa: E402

PREDICT_TARGET = 1.2
ATTACK_TARGET = 1.5
EPS = 0.1
SAMPLES = 200
HSJ_SAMPLES = 10
SEED = 0
TEXT_BATCH, MAX_LENGTH, IMAGE_BATCH = 64, 64, 256
MIN_SAMPLE_S = 0.2  # a timed sample repeats a faster call until it lasts about this long
P_TOL = {"text": 1e-5, "images": 1e-6}
# as the harness runs them (audit.probes.attacks: PGD_ITER, PGD_STEP, HSJ, HSJ_INIT_SIZE)
PGD_ITER, PGD_STEP = 20, 1 / 8
HSJ = {"max_iter": 10, "max_eval": 200, "init_eval": 20}
HSJ_INIT_SIZE = 100


# ----------------------------------------------------------------------------- timing
@dataclass
class Row:
    """One comparison: a harness call and its plain counterpart (seconds per call)."""

    what: str
    model: str
    target: float
    rows: int | None = None  # rows per call (throughput rows); None: report seconds
    harness: list[float] = field(default_factory=list)
    plain: list[float] = field(default_factory=list)
    # the harness call, run with the profiler given (enabled around the call timed)
    profile: Callable[[cProfile.Profile], Any] | None = None

    @property
    def ratio(self) -> float:
        return statistics.median(self.harness) / statistics.median(self.plain)

    @property
    def ok(self) -> bool:
        return self.ratio <= self.target


def _per_call(fn: Callable[[], Any], number: int) -> float:
    start = time.perf_counter()
    for _ in range(number):
        fn()
    return (time.perf_counter() - start) / number


def interleaved(pairs: list[tuple[Row, Callable[[], Any], Callable[[], Any]]],
                rounds: int) -> None:
    """Warm both sides up, then ``rounds`` interleaved samples of each (the order alternating
    from round to round); seconds per call go to ``row.harness`` / ``row.plain``."""
    numbers = []
    for _, harness, plain in pairs:
        harness(), plain()  # warm-up: first-call costs (allocators, TorchScript profiling)
        once = min(_per_call(harness, 1), _per_call(plain, 1))
        numbers.append(max(1, math.ceil(MIN_SAMPLE_S / max(once, 1e-6))))
    for r in range(rounds):
        for (row, harness, plain), number in zip(pairs, numbers):
            sides = [(row.harness, harness), (row.plain, plain)]
            for out, fn in (sides if r % 2 == 0 else sides[::-1]):
                out.append(_per_call(fn, number))


# ------------------------------------------------------------------- 1. prediction throughput
def _plain_text(tokenizer: Any, model: Any, texts: list[str]) -> np.ndarray:
    out = []
    with torch.inference_mode():
        for i in range(0, len(texts), TEXT_BATCH):
            enc = tokenizer(texts[i:i + TEXT_BATCH], padding=True, truncation=True,
                            max_length=MAX_LENGTH, return_tensors="pt")
            out.append(torch.softmax(model(**enc).logits, dim=-1))
    return torch.cat(out).numpy()


def _plain_torch(module: Any, x: Any) -> np.ndarray:
    with torch.no_grad():
        return torch.cat([torch.softmax(module(x[i:i + IMAGE_BATCH]), dim=1)
                          for i in range(0, len(x), IMAGE_BATCH)]).numpy()


def _plain_onnx(session: Any, x: np.ndarray) -> np.ndarray:
    name = session.get_inputs()[0].name
    z = np.concatenate([session.run(None, {name: x[i:i + IMAGE_BATCH]})[0]
                        for i in range(0, len(x), IMAGE_BATCH)])
    z = np.exp(z - z.max(axis=1, keepdims=True))
    return z / z.sum(axis=1, keepdims=True)


def _mnist_images(path: Path) -> np.ndarray:
    return (np.load(path) / 255).astype(np.float32)  # = torch.from_numpy(eval.npy / 255).float()


def prediction_rows(rounds: int, agreement: list[tuple[str, str, float, float]]) -> list[Row]:
    import onnxruntime as ort
    import transformers

    transformers.utils.logging.disable_progress_bar()
    pairs: list[tuple[Row, Callable[[], Any], Callable[[], Any]]] = []

    # text: the two transformers folders
    suite = load_suite(ROOT / "suites" / "rotten.audit.yaml")
    table = load_table(suite.data, "eval")
    csv = suite.data.eval
    texts = pd.read_csv(csv)["text"].tolist()
    for role in ("teacher", "student"):
        spec = getattr(suite, role)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            harness = load_model(spec, role)
            tok = transformers.AutoTokenizer.from_pretrained(str(spec.path), local_files_only=True)
            net = transformers.AutoModelForSequenceClassification.from_pretrained(
                str(spec.path), local_files_only=True).eval()
        label = f"{role} ({spec.path.name}/, transformers)"
        agreement.append(("text", label, _max_diff(harness.predict_proba(table),
                                                   _plain_text(tok, net, texts)), P_TOL["text"]))
        pairs.append((Row("text, predict_proba", label, PREDICT_TARGET, table.n_rows),
                      partial(harness.predict_proba, table), partial(_plain_text, tok, net, texts)))
        pairs.append((Row("text, incl. reading the data", label, PREDICT_TARGET, table.n_rows),
                      partial(_harness_reading, harness, suite.data),
                      partial(_plain_text_reading, tok, net, csv)))

    # images: TorchScript, torch.export, and both ONNX files
    suite = load_suite(ROOT / "suites" / "mnist.audit.yaml")
    table = load_table(suite.data, "eval")
    npy = _npy(suite)
    x_np = _mnist_images(npy)
    x_t = torch.from_numpy(x_np)
    folder = npy.parent
    torch_plain = {"teacher": torch.jit.load(str(folder / "teacher.pt"), map_location="cpu").eval(),
                   "student": torch.export.load(str(folder / "student.pt2")).module()}
    for role, fmt in (("teacher", "TorchScript"), ("student", "torch.export")):
        spec = getattr(suite, role)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            harness = load_model(spec, role)
        module = torch_plain[role]
        label = f"{role} ({spec.path.name}, {fmt})"
        agreement.append(("images", label, _max_diff(harness.predict_proba(table),
                                                     _plain_torch(module, x_t)), P_TOL["images"]))
        pairs.append((Row("images, predict_proba", label, PREDICT_TARGET, table.n_rows),
                      partial(harness.predict_proba, table), partial(_plain_torch, module, x_t)))
        pairs.append((Row("images, incl. reading the data", label, PREDICT_TARGET, table.n_rows),
                      partial(_harness_reading, harness, suite.data),
                      partial(_plain_torch_reading, module, npy)))
    for role in ("teacher", "student"):
        path = folder / f"{role}.onnx"
        harness = load_model(ModelSpec(kind="onnx", path=path), role)
        session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
        label = f"{role} ({path.name}, onnxruntime)"
        agreement.append(("images", label, _max_diff(harness.predict_proba(table),
                                                     _plain_onnx(session, x_np)), P_TOL["images"]))
        pairs.append((Row("images, predict_proba", label, PREDICT_TARGET, table.n_rows),
                      partial(harness.predict_proba, table), partial(_plain_onnx, session, x_np)))
    interleaved(pairs, rounds)
    for row, harness_call, _ in pairs:
        row.profile = partial(_profiled, harness_call)
    return [row for row, _, _ in pairs]


def _harness_reading(model: Any, data: Any) -> np.ndarray:
    return model.predict_proba(load_table(data, "eval"))


def _plain_text_reading(tokenizer: Any, model: Any, csv: Path) -> np.ndarray:
    return _plain_text(tokenizer, model, pd.read_csv(csv)["text"].tolist())


def _plain_torch_reading(module: Any, npy: Path) -> np.ndarray:
    return _plain_torch(module, torch.from_numpy(_mnist_images(npy)))


def _profiled(fn: Callable[[], Any], profiler: cProfile.Profile) -> int:
    """``fn`` under ``profiler``, repeated until about half a second has passed (at most 100
    calls), so the profile of a millisecond call is not one call's noise; the number of calls."""
    start = time.perf_counter()
    for calls in range(1, 101):
        profiler.runcall(fn)
        if time.perf_counter() - start > 0.5:
            break
    return calls


def _npy(suite: Any) -> Path:
    """The eval image array a suite names (``data.images.eval``)."""
    return Path(dict(suite.data.images.arrays)["eval"])


def _max_diff(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.abs(np.asarray(a, np.float64) - np.asarray(b, np.float64)).max())


# ---------------------------------------------------------------------------- 2. image attacks
class Float32(torch.nn.Module):
    """The module with a float32 cast in front; ``train()`` leaves the inner module alone (an
    exported program cannot be switched, a scripted one is already in eval mode)."""

    def __init__(self, inner: Any) -> None:
        super().__init__()
        self.inner = inner

    def forward(self, x: Any) -> Any:
        return self.inner(x.float())

    def train(self, mode: bool = True) -> Any:
        self.training = mode
        return self


def _attack_suite(folder: Path, attack: str, samples: int) -> Path:
    """A suite in ``folder`` with mnist.audit.yaml's data and models (absolute paths) and one
    robust_accuracy check."""
    source = ROOT / "suites" / "mnist.audit.yaml"
    raw = yaml.safe_load(source.read_text())

    def absolute(value: Any) -> Any:
        if isinstance(value, dict):
            return {k: absolute(v) for k, v in value.items()}
        if isinstance(value, str) and ("/" in value or value.endswith((".csv", ".npy"))):
            return str((source.parent / value).resolve())
        return value

    suite = {"version": 1, "name": f"bench-{attack}", "settings": {"seed": SEED},
             "data": absolute(raw["data"]), "teacher": absolute(raw["teacher"]),
             "student": absolute(raw["student"]),
             "checks": {attack: {"metric": "robust_accuracy", "attack": attack, "eps": [EPS],
                                 "samples": samples, "max_seconds": 600}}}
    path = folder / f"{attack}.audit.yaml"
    path.write_text(yaml.safe_dump(suite, sort_keys=False))
    return path


@dataclass
class AttackTimes:
    total: float  # the check (harness) or everything ART does for both models
    per_model: dict[str, float]  # attack + adversarial predictions
    clean: dict[str, float]  # clean accuracy on the sampled rows
    robust: dict[str, float]
    inputs: float = 0.0  # the predictions the check needs (harness only)


def harness_attack(suite_path: Path, attack: str,
                   profiler: cProfile.Profile | None = None) -> AttackTimes:
    """The check in a new run (nothing memoised), its models loaded and ``run.inputs``
    computed first; ``profiler``, if given, runs during ``run_check`` only."""
    run = SuiteRun(load_suite(suite_path), AuditSession(cache_dir=None))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        run.model("teacher"), run.model("student")  # loading is not timed on either side
    start = time.perf_counter()
    run.inputs
    mid = time.perf_counter()
    if profiler is not None:
        profiler.enable()
    result = run.run_check(attack)
    end = time.perf_counter()
    if profiler is not None:
        profiler.disable()
    if result.error is not None or result.status != "info":
        raise RuntimeError(f"{attack}: {result.status} {result.error}")
    rows = {r["model"]: r for r in result.measurements[0].breakdown}
    return AttackTimes(end - mid, {w: float(rows[w]["seconds"]) for w in rows},
                       {w: float(rows[w]["clean_accuracy"]) for w in rows},
                       {w: float(rows[w]["robust_accuracy"]) for w in rows}, mid - start)


def _fresh_modules(folder: Path) -> dict[str, Any]:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return {"teacher": torch.jit.load(str(folder / "teacher.pt"), map_location="cpu").eval(),
                "student": torch.export.load(str(folder / "student.pt2")).module()}


def art_attack(folder: Path, attack: str, samples: int, x_all: np.ndarray,
               y_all: np.ndarray) -> AttackTimes:
    from art.attacks.evasion import FastGradientMethod, HopSkipJump, ProjectedGradientDescent
    from art.estimators.classification import BlackBoxClassifier, PyTorchClassifier

    modules = _fresh_modules(folder)
    for module in modules.values():  # as run.inputs does before the check: untimed
        _plain_torch(module, torch.from_numpy(x_all))
    rows = np.sort(np.random.default_rng(SEED).choice(len(x_all), samples, replace=False))
    per_model, clean_acc, robust, total = {}, {}, {}, 0.0
    for role, module in modules.items():
        start = time.perf_counter()
        x0, y = x_all[rows], y_all[rows]
        pred = _plain_torch(module, torch.from_numpy(x0)).argmax(axis=1)
        clean = pred == y
        todo = np.flatnonzero(clean)
        mid = time.perf_counter()
        x = x0.copy()
        if attack in ("pgd", "fgsm"):
            clf = PyTorchClassifier(model=Float32(module), loss=torch.nn.CrossEntropyLoss(),
                                    input_shape=(1, 28, 28), nb_classes=10, clip_values=(0.0, 1.0),
                                    device_type="cpu")
            art = (ProjectedGradientDescent(clf, norm=np.inf, eps=EPS, eps_step=EPS * PGD_STEP,
                                            max_iter=PGD_ITER, batch_size=max(len(todo), 1),
                                            verbose=False) if attack == "pgd"
                   else FastGradientMethod(clf, norm=np.inf, eps=EPS,
                                           batch_size=max(len(todo), 1)))
            x[todo] = art.generate(x0[todo], y=y[todo])
        else:
            flat = x0.reshape(len(x0), -1).astype(np.float64)
            clf = BlackBoxClassifier(lambda q, m=module: _plain_torch(m, torch.from_numpy(
                np.asarray(q, np.float32))), input_shape=(1, 28, 28), nb_classes=10,
                clip_values=(0.0, 1.0))
            hsj = HopSkipJump(clf, norm="inf", init_size=HSJ_INIT_SIZE, verbose=False, **HSJ)
            state = np.random.get_state()
            np.random.seed(SEED)
            try:
                for i in todo:  # from the nearest sampled image of another class, as the harness
                    other = np.flatnonzero(pred != pred[i])
                    if len(other) == 0:
                        continue
                    start_at = x0[other[int(np.argmin(((flat[other] - flat[i]) ** 2).sum(1)))]]
                    found = hsj.generate(x0[i:i + 1], x_adv_init=start_at[None])[0]
                    delta = np.clip(found.astype(np.float64) - x0[i], -EPS, EPS)
                    x[i] = np.clip(x0[i] + delta, 0.0, 1.0).astype(np.float32)
            finally:
                np.random.set_state(state)
        adv = (_plain_torch(module, torch.from_numpy(x)).argmax(axis=1) == y) & clean
        end = time.perf_counter()
        per_model[role], total = end - mid, total + end - start
        clean_acc[role], robust[role] = float(clean.mean()), float(adv.mean())
    return AttackTimes(total, per_model, clean_acc, robust)


def attack_rows(rounds: int, hsj_rounds: int, tmp: Path,
                equal: list[tuple[str, str, float, float, float, float]]) -> tuple[list[Row], Row]:
    suite = load_suite(ROOT / "suites" / "mnist.audit.yaml")
    npy = _npy(suite)
    x_all = _mnist_images(npy)
    y_all = pd.read_csv(suite.data.eval)[suite.data.target].to_numpy()
    out: list[Row] = []
    inputs = Row("predictions the check needs (`run.inputs`: 1000 eval images, both models)",
                 "both", math.inf)
    plan = [("pgd", SAMPLES, rounds), ("fgsm", SAMPLES, rounds)]
    if hsj_rounds:
        plan.append(("hopskipjump", HSJ_SAMPLES, hsj_rounds))
    for attack, samples, n in plan:
        path = _attack_suite(tmp, attack, samples)
        name = {"pgd": "PGD", "fgsm": "FGSM", "hopskipjump": "HopSkipJump"}[attack]
        harness_attack(path, attack), art_attack(npy.parent, attack, samples, x_all, y_all)
        per = {w: Row(f"{name} {samples} images: attack + adversarial predictions", w,
                      ATTACK_TARGET) for w in ("teacher", "student")}
        whole = Row(f"{name} {samples} images: whole check (clean + attack + adversarial "
                    "predictions, both models)", "both", ATTACK_TARGET)
        for r in range(n):
            sides = ["harness", "art"] if r % 2 == 0 else ["art", "harness"]
            got = {s: harness_attack(path, attack) if s == "harness"
                   else art_attack(npy.parent, attack, samples, x_all, y_all) for s in sides}
            h, a = got["harness"], got["art"]
            for w in per:
                per[w].harness.append(h.per_model[w])
                per[w].plain.append(a.per_model[w])
                if r == 0:
                    equal.append((name, w, h.clean[w], a.clean[w], h.robust[w], a.robust[w]))
            whole.harness.append(h.total)
            whole.plain.append(a.total)
            if attack == "pgd":
                inputs.harness.append(h.inputs)
        whole.profile = partial(harness_attack, path, attack)
        out += [per["teacher"], per["student"], whole]
    return out, inputs


# --------------------------------------------------------------------------------- output
def _cell(row: Row, values: list[float]) -> str:
    s = statistics.median(values)
    if row.rows is not None:
        return f"{row.rows / s:,.0f} rows/s ({s * 1e3:.1f} ms)"
    return f"{s:.3f} s"


def table(title: str, rows: list[Row], baseline: str, extra: tuple[Row, ...] = ()) -> str:
    lines = [f"**{title}**", "",
             f"| what | model | harness | {baseline} | ratio | target | ok |",
             "|---|---|---|---|---|---|---|"]
    for row in rows:
        lines.append(f"| {row.what} | {row.model} | {_cell(row, row.harness)} | "
                     f"{_cell(row, row.plain)} | {row.ratio:.2f}x | <= {row.target:g}x | "
                     f"{'pass' if row.ok else 'FAIL'} |")
    for row in extra:
        lines.append(f"| {row.what} | {row.model} | {_cell(row, row.harness)} | | | | |")
    return "\n".join(lines)


def profile_of(run: Callable[[cProfile.Profile], Any], top: int = 14) -> str:
    """One harness call under cProfile: the functions with the most cumulative time below the
    call chain that holds it all (callers at >= 95% of the total are left out), then the most
    own time; paths shortened."""
    profiler = cProfile.Profile()
    done = run(profiler)
    calls = done if isinstance(done, int) else 1
    stats = pstats.Stats(profiler)
    total = stats.total_tt  # type: ignore[attr-defined]
    rows = [(func, cc, nc, tt, ct) for func, (cc, nc, tt, ct, _) in
            stats.stats.items()]  # type: ignore[attr-defined]
    site = str(Path(np.__file__).parents[1]) + "/"

    def name(func: tuple[str, int, str]) -> str:
        file, line, fn = func
        where = file.replace(site, "").replace(str(ROOT) + "/", "")
        return f"{where}:{line}({fn})" if line else fn

    def lines(chosen: list[Any]) -> list[str]:
        return [f"{ct:9.3f} {tt:9.3f} {nc:9d}  {name(func)}" for func, _, nc, tt, ct in chosen]

    head = f"{'cumtime':>9} {'tottime':>9} {'calls':>9}  function"
    below = sorted((r for r in rows if r[4] < 0.95 * total), key=lambda r: -r[4])[:top]
    own = sorted(rows, key=lambda r: -r[3])[:top]
    return "\n".join([f"{total:.3f} s in all (profiled, {calls} call(s)); by cumulative time:",
                      head, *lines(below),
                      "", "by own time:", head, *lines(own)])


def machine(load: tuple[float, ...]) -> str:
    def ver(pkg: str) -> str:
        try:
            return version(pkg)
        except Exception:
            return "?"

    cpu = "?"
    try:
        cpu = next(line.split(":", 1)[1].strip() for line in
                   Path("/proc/cpuinfo").read_text().splitlines() if line.startswith("model name"))
    except (OSError, StopIteration):
        pass
    head = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True,
                          text=True).stdout.strip() or "?"
    dirty = subprocess.run(["git", "status", "--porcelain", "--", "audit"], cwd=ROOT,
                           capture_output=True, text=True).stdout.split("\n")
    dirty = [line[3:] for line in dirty if line]
    versions = ", ".join(f"{p}={ver(d)}" for p, d in (
        ("torch", "torch"), ("transformers", "transformers"),
        ("onnxruntime", "onnxruntime"), ("ART", "adversarial-robustness-toolbox"),
        ("numpy", "numpy")) if d)
    return (f"machine: {cpu}, cores={os.cpu_count()} (usable {len(os.sched_getaffinity(0))}), "
            f"python={platform.python_version()}, {versions}\n"
            f"load average (1/5/15 min) at start {load[0]:.2f}/{load[1]:.2f}/{load[2]:.2f}, "
            f"at end {'/'.join(f'{v:.2f}' for v in os.getloadavg())}\n"
            f"threads: torch {torch.get_num_threads()} (both sides), BLAS/OpenMP 1, onnxruntime "
            f"default session options (both sides)\n"
            f"code: git {head}" + (f", uncommitted under audit/: {', '.join(dirty)}" if dirty
                                   else ", audit/ clean"))


def report(args: argparse.Namespace, load: tuple[float, ...], started: float,
           predictions: list[Row], attacks: list[Row], inputs: Row,
           agreement: list[tuple[str, str, float, float]],
           equal: list[tuple[str, str, float, float, float, float]]) -> list[str]:
    """Print the tables, the agreement checks, the machine and the command; return the
    mismatches (harness and baseline computing different things)."""
    print(f"## bench_modalities: {args.rounds} interleaved rounds "
          f"({args.hsj_rounds if not args.no_hsj else 0} for HopSkipJump), medians\n")
    print(table(f"1. Prediction throughput, harness vs plain inference (target: harness time "
                f"<= {PREDICT_TARGET:g}x plain)", predictions, "plain"))
    print()
    print(table(f"2. Image attacks on MNIST, eps {EPS:g} inf-norm, harness vs ART called "
                f"directly (target: harness <= {ATTACK_TARGET:g}x ART; seconds)", attacks,
                "ART", (inputs,)))
    print()
    bad = [f"{w}: max |p_harness - p_plain| {d:.1e} > {tol:g}"
           for _, w, d, tol in agreement if not d <= tol]
    bad += [f"{a} {w}: harness clean/robust accuracy {hc}/{hr}, ART {ac}/{ar}"
            for a, w, hc, ac, hr, ar in equal if (hc, hr) != (ac, ar)]
    print("Same probabilities: max |p_harness - p_plain| "
          + "; ".join(f"{w} {d:.1e}" for _, w, d, _ in agreement) + ".")
    print("Same rows attacked, same results (clean / robust accuracy, harness = ART): "
          + "; ".join(f"{a} {w} {hc:.3f}/{hr:.3f} {'=' if (hc, hr) == (ac, ar) else '!='} "
                      f"{ac:.3f}/{ar:.3f}" for a, w, hc, ac, hr, ar in equal) + ".")
    print()
    print(machine(load))
    print(f"command: {shlex.join([os.path.relpath(sys.executable, ROOT), *sys.argv])} "
          f"({time.perf_counter() - started:.0f} s)")
    missed = [row for row in predictions + attacks if not row.ok]
    if missed:
        print("missed targets: " + "; ".join(f"{r.what}, {r.model}: {r.ratio:.2f}x > "
                                             f"{r.target:g}x" for r in missed))
    for problem in bad:
        print(f"MISMATCH {problem}")
    return bad


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=7, help="interleaved rounds (medians)")
    parser.add_argument("--hsj-rounds", type=int, default=3, help="rounds of HopSkipJump")
    parser.add_argument("--no-hsj", action="store_true", help="leave HopSkipJump out")
    parser.add_argument("--threads", type=int, default=1, help="torch threads, both sides")
    parser.add_argument("--profile", action="store_true", help="profile every harness row")
    parser.add_argument("--check", action="store_true", help="exit 1 if a target is missed")
    args = parser.parse_args()
    load = os.getloadavg()
    started = time.perf_counter()
    torch.set_num_threads(args.threads)
    vision_fixtures.build()
    text_fixtures.build()

    agreement: list[tuple[str, str, float, float]] = []
    predictions = prediction_rows(args.rounds, agreement)
    equal: list[tuple[str, str, float, float, float, float]] = []
    with tempfile.TemporaryDirectory() as tmp:
        attacks, inputs = attack_rows(args.rounds, 0 if args.no_hsj else args.hsj_rounds,
                                      Path(tmp), equal)
        bad = report(args, load, started, predictions, attacks, inputs, agreement, equal)
        # where the harness's time goes, for the rows that miss their target (--profile: all)
        for row in predictions + attacks:
            if row.profile is not None and (args.profile or not row.ok):
                print(f"\n### cProfile, harness: {row.what}, {row.model}\n\n```\n"
                      f"{profile_of(row.profile)}\n```")
    missed = any(not row.ok for row in predictions + attacks)
    return 1 if bad or (args.check and missed) else 0


if __name__ == "__main__":
    sys.exit(main())
