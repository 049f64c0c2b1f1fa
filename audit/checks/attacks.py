"""The attack machinery behind the robustness checks: the attacks (ART's FGSM/PGD through a
differentiable copy of the model, HopSkipJump through a black box, uniform noise), in the
perturbation space of :mod:`audit.checks.perturbation`, and the adversarial examples they
produce, cached like predictions.

See :mod:`audit.checks.robustness` for what is measured and how eps is defined.
"""

from __future__ import annotations

import dataclasses
import time
import warnings
from collections.abc import Mapping
from typing import Any

import numpy as np
import pandas as pd

from audit.checks.differentiable import (
    GRADIENT_MODELS,
    art_torch,
    gradient_module,
    has_gradients,
)
from audit.checks.perturbation import AttackSpace, attack_space, noise, norm_order, project
from audit.errors import DataError, ModelError, display_path
from audit.models import check_probabilities

__all__ = ["AttackSpace", "DEFAULT_EPS", "attack_space", "gradient_module", "choose_attack",
           "adversarial", "project"]

DEFAULT_EPS = (0.05, 0.1)
DEFAULT_SAMPLES = 200
DEFAULT_MAX_SECONDS = 30.0
PROGRESS_EVERY = 5.0  # seconds between progress lines of a long black-box attack
PGD_ITER = 20
PGD_STEP = 1 / 8  # of eps
HSJ = {"max_iter": 10, "max_eval": 200, "init_eval": 20}
HSJ_INIT_SIZE = 100
START_VERSION = 4  # how HSJ starts are found: part of the cache key of adversarial examples
GRADIENT_ATTACKS = ("pgd", "fgsm")
GRADIENT_TOLERANCE = 1e-5  # max |p - p'| between the attacked copy and the model


# --------------------------------------------------------------------------- attacks
def choose_attack(requested: str, models: Mapping[str, Any]) -> dict[str, str]:
    """The attack each model faces: the same for both (``auto``: PGD when both give gradients,
    else HopSkipJump), or with ``strongest`` each model's own strongest (PGD with gradients,
    else HopSkipJump). A gradient attack on a model without gradients is an error."""
    grads = {who: has_gradients(m) for who, m in models.items()}
    if requested == "strongest":
        return {who: "pgd" if g else "hopskipjump" for who, g in grads.items()}
    if requested == "auto":
        both = "pgd" if all(grads.values()) else "hopskipjump"
        return dict.fromkeys(models, both)
    if requested in GRADIENT_ATTACKS:
        for who, m in models.items():
            if not grads[who]:
                raise DataError(
                    f"attack: {requested} needs gradients, but the {m.label} has none (a "
                    f"{m.spec.kind} model; gradients come from {GRADIENT_MODELS}); use attack: "
                    "hopskipjump (black-box) or attack: noise")
    return dict.fromkeys(models, requested)


class _Runner:
    """Attacks one model on the attack space, within a deadline."""

    def __init__(self, ctx: Any, role: str, space: AttackSpace, seed: int,
                 memo: Any = None, table: Any = None, y: np.ndarray | None = None,
                 tag: str = "eval") -> None:
        """``table`` (default: the eval table) holds the rows of ``space``, ``y`` their encoded
        labels (default: the eval labels); ``tag`` names the table in memo keys."""
        self.ctx, self.role, self.space, self.seed, self.tag = ctx, role, space, seed, tag
        self.memo = memo if memo is not None else (lambda key, build: build())
        self.model = ctx.model(role)
        table = ctx.eval_table if table is None else table
        self.table = table
        self.where, self.label = display_path(table.path), self.model.label
        self._empty: dict[int, tuple[pd.Series, pd.DataFrame]] = {}
        self.order = ctx.encoding.reorder(self.model.classes)  # encoded j -> model column
        self.y = np.asarray(ctx.inputs.y)[space.rows] if y is None else np.asarray(y)

    def predict(self, frame: pd.DataFrame) -> np.ndarray:
        """Encoded class predictions on feature rows ``frame``."""
        return self.proba(frame).argmax(axis=1)

    def proba(self, frame: pd.DataFrame) -> np.ndarray:
        """``LoadedModel.predict_proba`` on ``frame``, without its per-call overheads: the empty
        label/sensitive columns are built once per row count and the data path is shown once
        (a black-box attack predicts thousands of small batches)."""
        n = len(frame)
        empty = self._empty.get(n)
        if empty is None:
            empty = self._empty[n] = (self.table.labels.iloc[:0].reindex(range(n)),
                                      self.table.sensitive.iloc[:0].reindex(range(n)))
        sub = dataclasses.replace(self.table, features=frame, labels=empty[0], sensitive=empty[1])
        try:
            raw = self.model.predict(sub)
        except ModelError:
            raise
        except Exception as exc:  # as LoadedModel.predict_proba words it
            raise ModelError(f"{self.label} failed to predict on {self.where}: "
                             f"{type(exc).__name__}: {exc}") from exc
        P = check_probabilities(raw, n, len(self.model.classes), self.label, where=self.where,
                                fix=self.model.output_fix)
        return P[:, self.order]

    def clean(self) -> np.ndarray:
        """Encoded predictions on the attacked rows as they are (once per model and run)."""
        return self.memo(("robustness-clean", self.role, self.tag, self.space.rows.tobytes()),
                         lambda: self.predict(self.space.frame_with(self.space.scaled())))

    def _verify(self, module: Any, x: np.ndarray, rows: np.ndarray) -> None:
        """The module attacked must be the model scored: its softmax must equal the model's
        own probabilities on the clean rows, or the attack would measure something else."""
        import torch

        if not len(rows):
            return
        with torch.no_grad():
            mine = torch.softmax(module(torch.from_numpy(x)), dim=1).numpy()
        theirs = self.proba(self.space.frame_with(x, rows))[:, np.argsort(self.order)]
        gap = float(np.abs(mine - theirs).max())
        if not gap <= GRADIENT_TOLERANCE:
            raise ModelError(f"{self.label}: the differentiable copy used for gradient attacks "
                             f"disagrees with the model's own probabilities by {gap:.3g} (more "
                             f"than {GRADIENT_TOLERANCE:g}); use attack: hopskipjump, which "
                             "queries the model itself, and report this as a bug")

    def gradient(self, attack: str, eps: float, norm: str, todo: np.ndarray,
                 x0: np.ndarray) -> np.ndarray:
        from art.attacks.evasion import FastGradientMethod, ProjectedGradientDescent

        features = [str(c) for c in self.table.features.columns]
        moved = set(self.space.columns)
        for col, values in self.space.frame.items():  # the copy fills unperturbed columns
            if str(col) not in moved and values.nunique(dropna=False) > 1:  # from the first row
                raise DataError(f"attack: {attack} perturbs numeric columns only, but column "
                                f"{str(col)!r} ({values.dtype}) varies and the "
                                f"gradient copy of the {self.label} would hold it fixed; use "
                                "attack: hopskipjump, which keeps each row's own value")
        module = gradient_module(self.model, self.space, features)
        self._verify(module, x0[todo], todo)
        clf = art_torch(module, x0.shape[1], len(self.model.classes))
        labels = self.order[self.y[todo]]  # true labels, as the model's output columns
        if attack == "pgd":
            art = ProjectedGradientDescent(clf, norm=norm_order(norm), eps=eps, eps_step=eps * PGD_STEP,
                                           max_iter=PGD_ITER, batch_size=max(len(todo), 1),
                                           verbose=False)
        else:
            art = FastGradientMethod(clf, norm=norm_order(norm), eps=eps, batch_size=max(len(todo), 1))
        with warnings.catch_warnings():
            # sklearn's feature-name check does not apply to the matrix the wrapper builds
            warnings.filterwarnings("ignore", "X does not have valid feature names", UserWarning)
            return art.generate(x0[todo].astype(np.float32), y=labels).astype(np.float64)


MAX_CORNER_DIMS = 10  # up to 1024 corners
START_CANDIDATES = 20  # nearest other-class rows tried as HSJ starts, per attacked row


def start_pool(runner: _Runner) -> tuple[np.ndarray, np.ndarray]:
    """Candidate HSJ starts: every eval row (and train row, when the suite names them) in the
    scaled space, with the model's class for each, from the cached predictions (no new model
    call). Rows outside the eval range are clipped into it."""
    ctx, space = runner.ctx, runner.space

    def build() -> tuple[np.ndarray, np.ndarray]:
        tables = [ctx.eval_table]
        if getattr(ctx.suite.data, "train", None) is not None:
            tables.append(ctx.train_table())
        xs, preds = [], []
        for table in tables:
            P, classes = ctx.predictions(runner.role, table)
            raw = table.features[list(space.columns)].to_numpy(dtype=np.float64)
            ok = ~np.isnan(raw).any(axis=1)
            xs.append(np.clip((raw[ok] - space.low) / space.span, 0.0, 1.0))
            preds.append(P[:, ctx.encoding.reorder(classes)].argmax(axis=1)[ok])
        return np.vstack(xs), np.concatenate(preds)

    # keyed by the scaling too: the robustness space (eval ranges) and the decision-boundary
    # space (ranges of the scored rows) scale the same columns differently
    return runner.memo(("robustness-start-pool", runner.role, space.columns,
                        space.low.tobytes(), space.span.tobytes()), build)


def _init_points(runner: _Runner, i: int, x: np.ndarray, label: int, rng: np.random.Generator,
                 pool: np.ndarray, pool_pred: np.ndarray) -> np.ndarray | None:
    """A starting point for HSJ that the model classifies differently from ``label``: the
    nearest data row (eval, then train) the model puts in another class, with this row's
    categorical values, else the nearest of ``HSJ_INIT_SIZE`` seeded uniform draws of the box
    and (up to ``MAX_CORNER_DIMS`` perturbed columns) its corners."""
    space = runner.space
    other = np.flatnonzero(pool_pred != label)
    if other.size:
        dist = np.linalg.norm(pool[other] - x, axis=1)
        near = other[np.argsort(dist, kind="stable")[:START_CANDIDATES]]
        cand = pool[near]
        pred = runner.predict(space.frame_with(cand, np.full(len(cand), i)))
        ok = np.flatnonzero(pred != label)
        if ok.size:
            return cand[ok[0]]  # candidates are sorted by distance
    draws = rng.uniform(0.0, 1.0, size=(HSJ_INIT_SIZE, x.shape[0]))
    if x.shape[0] <= MAX_CORNER_DIMS:  # and the box's corners, where a linear model peaks
        corners = (np.arange(2 ** x.shape[0])[:, None] >> np.arange(x.shape[0])) & 1
        draws = np.vstack([draws, corners.astype(np.float64)])
    pred = runner.predict(space.frame_with(draws, np.full(len(draws), i)))
    hit = np.flatnonzero(pred != label)
    if hit.size:
        return draws[hit[np.argmin(np.linalg.norm(draws[hit] - x, axis=1))]]
    return None


def _hopskipjump(runner: _Runner, norm: str, todo: np.ndarray, x0: np.ndarray,
                 deadline: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per-row HSJ on the rows ``todo``, in that order, until ``deadline``; returns the
    adversarials (rows not attacked unchanged), the rows done and the rows of those with no
    start (left unchanged)."""
    from art.attacks.evasion import HopSkipJump
    from art.estimators.classification import BlackBoxClassifier

    space, k = runner.space, len(runner.model.classes)
    rng = np.random.default_rng(runner.seed)
    out = x0.copy()
    done: list[int] = []
    no_start: list[int] = []
    clean_pred = runner.clean()
    pool, pool_pred = start_pool(runner)
    state = np.random.get_state()  # HSJ draws from numpy's global generator: seed it, restore it
    np.random.seed(runner.seed)
    progress = getattr(getattr(runner.ctx, "session", None), "progress", None)
    began = last = time.perf_counter()
    try:
        for i in todo:
            now = time.perf_counter()
            if now > deadline and done:
                break
            if progress is not None and now - last > PROGRESS_EVERY:
                last = now
                progress(f"hopskipjump on the {runner.role}: {len(done)} of {len(todo)} rows, "
                         f"{now - began:.0f} s")
            done.append(int(i))
            label = int(clean_pred[i])
            start = _init_points(runner, int(i), x0[i], label, rng, pool, pool_pred)
            if start is None:
                no_start.append(int(i))
                continue

            def predict_fn(x: np.ndarray, i: int = int(i)) -> np.ndarray:
                P = runner.proba(space.frame_with(np.asarray(x, np.float64),
                                                  np.full(len(x), i)))
                return P  # encoded class order

            clf = BlackBoxClassifier(predict_fn, input_shape=(x0.shape[1],), nb_classes=k,
                                     clip_values=(0.0, 1.0))
            art = HopSkipJump(clf, norm=norm_order(norm) if norm_order(norm) == 2 else "inf",
                              init_size=HSJ_INIT_SIZE, verbose=False, **HSJ)
            out[i] = art.generate(x0[i:i + 1].astype(np.float32),
                                  x_adv_init=start[None].astype(np.float32))[0]
    finally:
        np.random.set_state(state)
    return out, np.array(done, dtype=int), np.array(no_start, dtype=int)


def covered_rows(order: np.ndarray, todo: np.ndarray, done: np.ndarray) -> np.ndarray:
    """The rows a measurement may use after an attack that walked ``todo`` in the order
    ``order`` (a permutation of all rows) and finished the rows ``done``: every row up to the
    last one attacked, in that order. Rows with nothing to attack (misclassified ones) count
    only up to where the attack stopped, so a wall-clock cap cuts every kind of row alike."""
    n = len(order)
    if len(done) >= len(todo):
        return np.ones(n, bool)
    position = np.empty(n, int)
    position[order] = np.arange(n)
    last = int(position[done].max()) if len(done) else -1
    return position <= last


def _cached(ctx: Any, role: str, what: tuple[Any, ...], todo: np.ndarray,
            run: Any) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Black-box adversarial examples are artifacts like predictions: kept in the prediction
    cache, keyed by the model's content, the eval and train data, the feature columns and the
    attack's settings, so an unchanged model is not attacked again on the next run. Only an
    attack that finished every row of ``todo`` is kept on disk: one a wall-clock cap cut short
    is used for this run only, so a later run with a larger cap attacks again. Models whose
    content cannot be hashed (callables, pickles) are attacked every run."""
    from audit.models import model_fingerprint

    session = getattr(ctx, "session", None)
    known = model_fingerprint(getattr(ctx.suite, role), role)
    if session is None or known is None or session.cache.directory is None:
        return run()
    # the starts come from the eval and train rows: both tables are part of the key
    train = ctx.train_table().sha256 if ctx.suite.data.train is not None else None
    columns = (ctx.suite.data.target, tuple(map(str, ctx.eval_table.features.columns)))
    key = session.cache.key("adversarial", known[1], ctx.eval_table.sha256,
                            repr((what, train, columns, HSJ, HSJ_INIT_SIZE, START_VERSION)))

    def compute() -> tuple[np.ndarray, dict[str, Any]]:
        x, done, no_start = run()
        return x, {"done": [int(i) for i in done], "no_start": [int(i) for i in no_start],
                   "complete": len(done) >= len(todo)}

    x, info, _ = session.cache.get_with_info(key, compute,
                                             persist_if=lambda info: info["complete"])
    return (np.array(x), np.array(info["done"], dtype=int),
            np.array(info["no_start"], dtype=int))


def adversarial(ctx: Any, resampler: Any, role: str, attack: str, eps: float, norm: str,
                samples: int, deadline: float) -> dict[str, Any]:
    """Adversarial versions of the attacked rows for ``role`` (memoised per run).

    Returns ``x`` (scaled, all attacked rows; rows not attacked are unchanged), ``done`` (the
    row positions the attack covered within the deadline), ``clean`` and ``adv`` correctness.
    """
    def build() -> dict[str, Any]:
        space = _space(ctx, resampler, samples)
        runner = _Runner(ctx, role, space, resampler.seed, resampler.memo)
        x0 = space.scaled()
        clean = runner.clean() == runner.y
        todo = np.flatnonzero(clean)
        start = time.perf_counter()
        info: dict[str, Any] = {}
        if attack == "hopskipjump":
            raw = resampler.memo(("robustness-hsj", role, norm, samples),
                                 lambda: _cached(ctx, role, ("hopskipjump", norm, samples,
                                                             resampler.seed), todo,
                                                 lambda: _hopskipjump(runner, norm, todo, x0,
                                                                      deadline)))
            x, done, no_start = raw
            x = np.where(np.isin(np.arange(len(x0)), done)[:, None], project(x0, x, eps, norm), x0)
            covered = covered_rows(np.arange(len(x0)), todo, done)
            info["no_start"] = np.isin(np.arange(len(x0)), no_start)  # a row mask
        else:
            x = x0.copy()
            if attack == "noise":
                rng = np.random.default_rng(resampler.seed)  # the same draws for both models
                moves = noise(rng, x0.shape, eps, norm)
                x[todo] = np.clip(x0[todo] + moves[todo], 0.0, 1.0)
            elif len(todo):
                x[todo] = runner.gradient(attack, eps, norm, todo, x0)
            covered = np.ones(len(x0), bool)
        adv = runner.predict(space.frame_with(x)) == runner.y
        return {"x": x, "covered": covered, "clean": clean, "adv": adv & clean,
                "seconds": time.perf_counter() - start, **info}

    return resampler.memo(("robustness", role, attack, float(eps), norm, samples), build)


def _space(ctx: Any, resampler: Any, samples: int) -> AttackSpace:
    return resampler.memo(("robustness-space", samples),
                          lambda: attack_space(ctx.eval_table, samples, resampler.seed))

