"""Adversarial and corrupted images: the robustness artifacts of an image suite.

The attack space is the images' own pixels, float32 in [0, 1] (``eps`` is in those units: 8/255
is eight grey levels): ``samples`` eval images drawn with the suite's seed, the same for both
models. The attacks are ART's, called as a user would call them:

* ``fgsm`` / ``pgd`` -- ``FastGradientMethod`` / ``ProjectedGradientDescent`` (20 iterations,
  step eps/8, no random start) through ``PyTorchClassifier`` around the model's own torch
  module (a float32 cast in front, so HopSkipJump's float64 queries also work), with the true
  labels, ``clip_values=(0, 1)``;
* ``hopskipjump`` -- ``HopSkipJump`` through ``BlackBoxClassifier`` around the model's own
  prediction, started from the nearest sampled image (L2) the model puts in another class
  (ART's own random start is unseeded), numpy's global generator seeded; its minimal
  perturbation is projected onto the eps ball and the model's prediction on the projection
  decides;
* ``noise`` -- uniform noise within eps, the same draws for both models.

Common corruptions (:mod:`audit.probes.corruptions`) are applied to the same sampled images
for both models (the same noise draws). Every prediction goes through the loaded model's own
``predict_proba``, the call the prediction probe makes.
"""

from __future__ import annotations

import math
import time
from typing import Any

import numpy as np

from audit.checks.perturbation import noise, norm_order, project
from audit.errors import DataError
from audit.extras import hiding_torch
from audit.probes.artifacts import Adversarial, ArtifactRequest, AttackOutcome, Corrupted
from audit.probes.attacks import HSJ, HSJ_INIT_SIZE, PGD_ITER, PGD_STEP, Cap, choose_attack

__all__ = ["image_adversarial", "corrupted_images", "art_image_classifier"]


class _Images:
    """One model on the sampled images: labels in its output order, clean and attacked
    predictions through its own ``predict_proba``."""

    def __init__(self, probes: Any, role: str, rows: np.ndarray) -> None:
        run = probes.run
        self.probes, self.role, self.rows = probes, role, rows
        self.model = run.model(role)
        self.table = run.eval_table.take(rows)
        self.x0 = np.asarray(self.table.images, dtype=np.float32)
        inputs = run.inputs
        self.order = run.encoding.reorder(self.model.classes)  # encoded class -> model column
        self.y = inputs.y[rows]  # encoded labels
        # the clean predictions are the run's own (each model predicts once per dataset)
        self._clean = (inputs.p_teacher if role == "teacher" else inputs.p_student)[rows].argmax(
            axis=1)

    def predict(self, x: np.ndarray) -> np.ndarray:
        """Encoded predicted classes on images ``x`` (the sampled rows, perturbed)."""
        P = self.model.predict_proba(self.table.with_inputs(np.asarray(x, np.float32)))
        return np.argmax(P[:, self.order], axis=1)

    def clean(self) -> np.ndarray:
        """Encoded predicted classes on the clean sampled images."""
        return self._clean


def art_image_classifier(model: Any, shape: tuple[int, ...]) -> Any:
    """ART's ``PyTorchClassifier`` around a loaded torch image model (float32 cast first; a
    module that returns probabilities gets a log in front of the loss, so the cross-entropy
    sees log-probabilities)."""
    import torch
    from art.estimators.classification import PyTorchClassifier

    class _Float32(torch.nn.Module):
        def __init__(self, inner: Any, log: bool) -> None:
            super().__init__()
            self.inner, self.log = inner, log

        def forward(self, x: Any) -> Any:
            out = self.inner(x.float())
            return torch.log(out.clamp_min(1e-12)) if self.log else out

        def train(self, mode: bool = True) -> Any:
            # ART switches its model to eval mode; an exported program cannot be switched (it
            # runs as exported) and a scripted one is already in eval mode: keep the inner one
            self.training = mode
            return self

    wrapped = _Float32(model.module, (model.spec.output or "logits") == "probabilities")
    return PyTorchClassifier(model=wrapped, loss=torch.nn.CrossEntropyLoss(), input_shape=shape,
                             nb_classes=len(model.classes), clip_values=(0.0, 1.0),
                             device_type="cpu")


def _gradient(images: _Images, attack: str, eps: float, norm: str, todo: np.ndarray) -> np.ndarray:
    with hiding_torch():
        from art.attacks.evasion import FastGradientMethod, ProjectedGradientDescent

    clf = art_image_classifier(images.model, images.x0.shape[1:])
    x, labels = images.x0[todo], images.order[images.y[todo]]
    batch = max(len(todo), 1)
    if attack == "pgd":
        art = ProjectedGradientDescent(clf, norm=norm_order(norm), eps=eps, eps_step=eps * PGD_STEP,
                                       max_iter=PGD_ITER, batch_size=batch, verbose=False)
    else:
        art = FastGradientMethod(clf, norm=norm_order(norm), eps=eps, batch_size=batch)
    return np.asarray(art.generate(x, y=labels), np.float32)


def _starts(images: _Images, todo: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """HSJ's start for each attacked image: the nearest sampled image (L2) the model puts in
    another class; ``ok`` is false where the sample holds none."""
    flat = images.x0.reshape(len(images.x0), -1).astype(np.float64)
    pred = images.clean()
    starts = np.empty((len(todo), *images.x0.shape[1:]), np.float32)
    ok = np.zeros(len(todo), bool)
    for j, i in enumerate(todo):
        other = np.flatnonzero(pred != pred[i])
        if len(other) == 0:
            continue
        d = ((flat[other] - flat[i]) ** 2).sum(axis=1)
        starts[j] = images.x0[other[int(np.argmin(d))]]
        ok[j] = True
    return starts, ok


def _hopskipjump(images: _Images, norm: str, todo: np.ndarray, cap: Cap) -> tuple[np.ndarray,
                                                                                   np.ndarray]:
    from audit.probes.attacks import Stopped, numpy_seeded, one_torch_thread

    with hiding_torch():
        from art.attacks.evasion import HopSkipJump
        from art.estimators.classification import BlackBoxClassifier

    k = len(images.model.classes)

    queries: dict[int, Any] = {}  # a table of each query size, made once (HSJ asks ~400 times)

    def predict_fn(x: np.ndarray) -> np.ndarray:
        if cap.passed():
            raise Stopped
        if len(x) not in queries:
            queries[len(x)] = images.table.take(np.zeros(len(x), int))
        P = images.model.predict_proba(queries[len(x)].with_inputs(np.asarray(x, np.float32)))
        return P  # the model's own output order, as HSJ's labels are

    out = images.x0.copy()
    starts, ok = _starts(images, todo)
    clf = BlackBoxClassifier(predict_fn, input_shape=images.x0.shape[1:], nb_classes=k,
                             clip_values=(0.0, 1.0))
    art = HopSkipJump(clf, norm=2 if norm_order(norm) == 2 else "inf", init_size=HSJ_INIT_SIZE,
                      verbose=False, **HSJ)
    done = 0
    with numpy_seeded(images.probes.seed), one_torch_thread():
        for j, i in enumerate(todo):
            if cap.passed():
                raise cap.error(f"hopskipjump on the {images.model.label}", done, len(todo),
                                f"the {len(images.rows)} sampled eval images")
            if ok[j]:
                try:
                    out[i] = art.generate(images.x0[i:i + 1], x_adv_init=starts[j:j + 1])[0]
                except Stopped:
                    raise cap.error(f"hopskipjump on the {images.model.label}", done, len(todo),
                                    f"the {len(images.rows)} sampled eval images") from None
            done += 1
    no_start = np.zeros(len(images.x0), bool)
    no_start[todo[~ok]] = True
    return out, no_start


def _attacked(probes: Any, role: str, attack: str, eps: float, norm: str, rows: np.ndarray,
              cap: Cap) -> AttackOutcome:
    def build() -> AttackOutcome:
        images = _Images(probes, role, rows)
        clean = images.clean() == images.y
        todo = np.flatnonzero(clean)
        start = time.perf_counter()
        no_start = None
        x = images.x0.copy()
        flat = x.reshape(len(x), -1)
        if attack == "hopskipjump":
            found, no_start = probes.memo(("image-hsj", role, norm, len(rows)),
                                          lambda: _hopskipjump(images, norm, todo, cap))
            moved = project(images.x0.reshape(len(x), -1).astype(np.float64),
                            found.reshape(len(x), -1).astype(np.float64), eps, norm)
            flat[todo] = moved[todo].astype(np.float32)
        elif attack == "noise":
            rng = np.random.default_rng(probes.seed)  # the same draws for both models
            moves = noise(rng, flat.shape, eps, norm).astype(np.float32)
            flat[todo] = np.clip(flat[todo] + moves[todo], 0.0, 1.0)
        elif len(todo):
            x[todo] = _gradient(images, attack, eps, norm, todo)
        adv = images.predict(x) == images.y
        return AttackOutcome(x=x, clean=clean, adv=adv & clean,
                             seconds=time.perf_counter() - start, no_start=no_start)

    return probes.memo(("image-robustness", role, attack, float(eps), norm, len(rows)), build)


def image_adversarial(probes: Any, request: ArtifactRequest) -> Adversarial:
    """The :class:`~audit.probes.artifacts.Adversarial` artifact of an image suite."""
    name = request.get("metric")
    models = probes.run.runnable_models(f"{name} attacks")
    faced = choose_attack(request.get("attack"), models)
    eps_list: tuple[float, ...] = request.get("eps")
    norm, samples = str(request.get("norm")), int(request.get("samples"))
    rows = probes.sample(samples)
    shape = probes.run.eval_table.images.shape[1:]
    widest = 1.0 if norm_order(norm) == np.inf else math.sqrt(float(np.prod(shape)))
    for eps in eps_list:
        if eps > widest:
            raise DataError(f"{name}: eps {eps:g} ({norm}-norm) allows every image: pixels lie in "
                            f"[0, 1], so eps is in those units (8/255 = {8 / 255:.4f} is eight "
                            "grey levels)")
    cap = Cap.starting_now(float(request.get("max_seconds")))
    roles: tuple[str, ...] = request.get("roles")
    outcomes = {eps: {who: _attacked(probes, who, faced[who], eps, norm, rows, cap)
                      for who in roles} for eps in eps_list}
    transfer = {}
    if request.get("transfer"):
        student = _Images(probes, "student", rows)
        for eps in eps_list:
            transfer[eps] = {"adv": student.predict(outcomes[eps]["teacher"].x) == student.y,
                             "clean": student.clean() == student.y}
    c, h, w = shape
    return Adversarial(attacks=faced, columns=("pixels",), categorical=(), fixed=(),
                       rows=len(rows), outcomes=outcomes, transfer=transfer,
                       positions=tuple(int(r) for r in rows),
                       space=f"perturbed the pixels of {len(rows)} eval images ({c}x{h}x{w}), "
                             "eps in pixel units of [0, 1]")


def corrupted_images(probes: Any, request: ArtifactRequest) -> Corrupted:
    """Both models' correctness on the sampled eval images under each corruption and
    severity (the same corrupted images for both)."""
    from audit.probes.corruptions import corrupt

    if probes.run.eval_table.images is None:
        raise DataError(f"{request.get('metric')} corrupts images; this suite's models read "
                        f"{probes.run.eval_table.modality} (data.images names the images)")
    rows = probes.sample(int(request.get("samples")))
    runs = {who: _Images(probes, who, rows) for who in ("teacher", "student")}
    x0 = runs["teacher"].x0
    clean = {who: r.clean() == r.y for who, r in runs.items()}
    correct: dict[tuple[str, int], dict[str, np.ndarray]] = {}
    examples: dict[tuple[str, int], np.ndarray] = {}
    for kind in request.get("corruptions"):
        for severity in request.get("severities"):
            x = corrupt(x0, kind, int(severity), probes.seed)
            correct[(kind, int(severity))] = {who: r.predict(x) == r.y for who, r in runs.items()}
            examples[(kind, int(severity))] = x[:1]
    return Corrupted(rows=len(rows), clean=clean, correct=correct, examples=examples)
