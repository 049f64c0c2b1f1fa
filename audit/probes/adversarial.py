"""Adversarial examples: the robustness metrics' artifact.

For a request (``roles`` attacked, ``attack`` requested, ``eps`` list, ``norm``, ``samples``,
``max_seconds``) the probe checks both models can be run, chooses the attack each faces
(:func:`~audit.probes.attacks.choose_attack`), draws the attack space once per run (``samples``
eval rows with the suite's seed), checks each eps against the box, starts the wall-clock cap
(a safety stop for every attack of the check) and attacks. Adversarial examples are computed
once per (model, attack, eps, norm, samples) per run; HopSkipJump's are also kept in the
prediction cache (:func:`cached_attack`), with its integrity rules. With ``transfer`` the
student's predictions on the teacher's adversarial examples are part of the artifact too.
"""

from __future__ import annotations

import math
import time
from typing import Any

import numpy as np

from audit.checks.perturbation import AttackSpace, attack_space, noise, norm_order, project
from audit.errors import DataError
from audit.probes import attacks
from audit.probes.artifacts import Adversarial, ArtifactRequest, AttackOutcome
from audit.probes.attacks import (
    HSJ,
    HSJ_INIT_SIZE,
    MAX_CORNER_DIMS,
    START_VERSION,
    AttackRunner,
    Cap,
    choose_attack,
)

__all__ = ["adversarial_examples", "cached_attack", "adversarial", "robustness_space"]


def cached_attack(probes: Any, role: str, what: tuple[Any, ...], todo: np.ndarray,
                  run: Any) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Black-box adversarial examples are artifacts like predictions: kept in the prediction
    cache, keyed by the model's content, the eval and train data, the feature columns and the
    attack's settings, so an unchanged model is not attacked again on the next run. Only an
    attack that finished every row of ``todo`` is kept on disk: one the wall-clock cap cut
    short (its check errors) is never stored, so a later run attacks again. Models whose
    content cannot be hashed (callables, pickles) are attacked every run."""
    from audit.models import model_fingerprint

    suite = probes.run.suite
    session = getattr(probes.run, "session", None)
    known = model_fingerprint(getattr(suite, role), role)
    if session is None or known is None or session.cache.directory is None:
        return run()
    # the starts come from the eval and train rows: both tables are part of the key
    evals = probes.run.eval_table
    train = probes.run.train_table().sha256 if suite.data.train is not None else None
    columns = (suite.data.target, tuple(map(str, evals.features.columns)))
    key = session.cache.key("adversarial", known[1], evals.sha256,
                            repr((what, train, columns, HSJ, HSJ_INIT_SIZE, START_VERSION)))

    def compute() -> tuple[np.ndarray, dict[str, Any]]:
        x, done, no_start = run()
        return x, {"done": [int(i) for i in done], "no_start": [int(i) for i in no_start],
                   "complete": len(done) >= len(todo)}

    x, info, _ = session.cache.get_with_info(key, compute,
                                             persist_if=lambda info: info["complete"])
    return (np.array(x), np.array(info["done"], dtype=int),
            np.array(info["no_start"], dtype=int))


def robustness_space(probes: Any, samples: int) -> AttackSpace:
    """The attack space of the robustness checks: ``samples`` eval rows (once per run)."""
    return probes.memo(("robustness-space", samples),
                       lambda: attack_space(probes.run.eval_table, samples, probes.seed))


def adversarial(probes: Any, role: str, attack: str, eps: float, norm: str, samples: int,
                cap: Cap) -> AttackOutcome:
    """Adversarial versions of the attacked rows for ``role`` (memoised per run).

    Every correctly classified row of the sample is attacked: an attack ``cap`` stops first
    raises its :meth:`Cap.error` (and is kept neither here nor on disk).
    """
    def build() -> AttackOutcome:
        space = robustness_space(probes, samples)
        runner = AttackRunner(probes, role, space)
        x0 = space.scaled()
        clean = runner.clean() == runner.y
        todo = np.flatnonzero(clean)
        start = time.perf_counter()
        no_start_mask = None
        if attack == "hopskipjump":
            def attacked() -> tuple[np.ndarray, np.ndarray]:
                x, done, no_start = cached_attack(
                    probes, role, ("hopskipjump", norm, samples, probes.seed), todo,
                    lambda: attacks.hopskipjump(runner, norm, todo, x0, cap))
                if len(done) < len(todo):
                    raise cap.error(f"hopskipjump on the {runner.label}", len(done), len(todo),
                                    f"the {len(x0)} sampled eval rows, samples: {samples}")
                return x, no_start

            x, no_start = probes.memo(("robustness-hsj", role, norm, samples), attacked)
            x = np.where(clean[:, None], project(x0, x, eps, norm), x0)
            no_start_mask = np.isin(np.arange(len(x0)), no_start)  # a row mask
        else:
            x = x0.copy()
            if attack == "noise":
                rng = np.random.default_rng(probes.seed)  # the same draws for both models
                moves = noise(rng, x0.shape, eps, norm)
                x[todo] = np.clip(x0[todo] + moves[todo], 0.0, 1.0)
            elif len(todo):
                x[todo] = runner.gradient(attack, eps, norm, todo, x0)
        adv = runner.predict(space.frame_with(x)) == runner.y
        return AttackOutcome(x=x, clean=clean, adv=adv & clean,
                             seconds=time.perf_counter() - start, no_start=no_start_mask)

    return probes.memo(("robustness", role, attack, float(eps), norm, samples), build)


def check_eps(name: str, eps: float, norm: str, d: int) -> None:
    """An eps beyond the whole box allows every point of it: a budget in the columns' own
    units (10 years) mistaken for a fraction of their range."""
    widest = 1.0 if norm_order(norm) == np.inf else math.sqrt(d)
    if eps > widest:
        box = ("1, a whole column range" if widest == 1 else
               f"sqrt({d}) = {widest:.3g}, the diagonal of the {d} scaled columns")
        raise DataError(f"{name}: eps {eps:g} ({norm}-norm) is larger than {box}, so it allows "
                        "every point of the box; eps is a fraction of each numeric column's "
                        "[min, max] range: write 0.1 for a tenth of the range")


def adversarial_examples(probes: Any, request: ArtifactRequest) -> Adversarial:
    """The :class:`~audit.probes.artifacts.Adversarial` artifact of a robustness check."""
    name = request.get("metric")
    modality = probes.run.eval_table.modality
    if modality == "images":
        from audit.probes.image_attacks import image_adversarial

        return image_adversarial(probes, request)
    if modality == "text":
        raise DataError(f"{name} perturbs numbers, and this suite's models read texts; measure "
                        "robustness to text edits with metric: edit_accuracy")
    models = probes.run.runnable_models(f"{name} attacks")
    faced = choose_attack(request.get("attack"), models)
    eps_list: tuple[float, ...] = request.get("eps")
    norm, samples = str(request.get("norm")), int(request.get("samples"))
    space = robustness_space(probes, samples)
    for eps in eps_list:
        check_eps(name, eps, norm, len(space.columns))
    cap = Cap.starting_now(float(request.get("max_seconds")))  # for every attack of the check
    roles: tuple[str, ...] = request.get("roles")
    outcomes = {}
    for eps in eps_list:  # HSJ runs once per model; its result is projected onto each eps ball
        outcomes[eps] = {who: adversarial(probes, who, faced[who], eps, norm, samples, cap)
                         for who in roles}
    transfer = {}
    if request.get("transfer"):
        student = AttackRunner(probes, "student", space)
        for eps in eps_list:
            transfer[eps] = {
                "adv": student.predict(space.frame_with(outcomes[eps]["teacher"].x)) == student.y,
                "clean": student.clean() == student.y}
    return Adversarial(attacks=faced, columns=tuple(space.columns),
                       categorical=tuple(space.categorical), fixed=tuple(space.fixed),
                       rows=len(space.rows), outcomes=outcomes, transfer=transfer,
                       corners=len(space.columns) <= MAX_CORNER_DIMS)
