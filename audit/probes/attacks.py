"""The attack machinery behind the robustness and decision-boundary artifacts: the attacks
(ART's FGSM/PGD through a differentiable copy of the model, HopSkipJump through a black box,
uniform noise), in the perturbation space of :mod:`audit.checks.perturbation`.

Every model call goes through :class:`AttackRunner`, which asks the loaded model's own
``predict_proba`` (the same call the prediction probe makes) and keeps a per-attack memo of
the answers (:class:`_Answers`). :mod:`audit.probes.adversarial` turns these into artifacts;
see :mod:`audit.checks.robustness` for what is measured and how eps is defined.
"""

from __future__ import annotations

import contextlib
import dataclasses
import sys
import time
import warnings
from collections.abc import Iterator, Mapping
from typing import Any

import numpy as np
import pandas as pd

from audit.checks.differentiable import (
    GRADIENT_MODELS,
    art_torch,
    gradient_module,
    has_gradients,
)
from audit.checks.perturbation import AttackSpace, attack_space, norm_order, project
from audit.errors import DataError, ModelError, display_path
from audit.extras import hiding_torch

__all__ = ["AttackSpace", "AttackRunner", "Cap", "attack_space", "gradient_module",
           "choose_attack", "hopskipjump", "start_pool", "project", "GRADIENT_ATTACKS", "HSJ",
           "MAX_CORNER_DIMS", "numpy_seeded", "one_torch_thread", "Stopped", "PGD_ITER", "PGD_STEP",
           "HSJ_INIT_SIZE"]

PROGRESS_EVERY = 5.0  # seconds between progress lines of a long black-box attack
PGD_ITER = 20
PGD_STEP = 1 / 8  # of eps
HSJ = {"max_iter": 10, "max_eval": 200, "init_eval": 20}
HSJ_INIT_SIZE = 100
GRID_ROWS = 4096  # integer grids up to this many points are asked whole (see _Answers)
START_VERSION = 4  # how HSJ starts are found: part of the cache key of adversarial examples
GRADIENT_ATTACKS = ("pgd", "fgsm")
GRADIENT_TOLERANCE = 1e-5  # max |p - p'| between the attacked copy and the model


@dataclasses.dataclass(frozen=True)
class Cap:
    """The wall-clock cap of a check's attacks: a safety stop, never a sample size.

    Which rows are attacked is decided by ``samples`` and the seed alone; an attack that reaches
    ``deadline`` (a ``time.perf_counter()`` reading, ``seconds`` after the check began) stops,
    and the check errors instead of measuring fewer rows than asked (which rows a machine
    finishes in time would decide the numbers).
    """

    seconds: float
    deadline: float

    @classmethod
    def starting_now(cls, seconds: float) -> Cap:
        return cls(seconds, time.perf_counter() + seconds)

    def passed(self) -> bool:
        return time.perf_counter() > self.deadline

    def error(self, what: str, done: int, todo: int, sample: str) -> DataError:
        """The one-line error of an attack ``what`` stopped after ``done`` of the ``todo`` rows
        the model classifies correctly among ``sample``.

        An error, not an inconclusive verdict: nothing was measured on the sample asked for, so
        there is no interval to be inconclusive about, and an error blocks whatever
        ``settings.inconclusive`` says, as a model that times out does.
        """
        return DataError(f"the wall-clock cap (max_seconds {self.seconds:g}) stopped {what} "
                         f"after {done} of the {todo} rows it had to attack (the ones it "
                         f"classifies correctly among {sample}); a result must cover the whole "
                         "sample, so none is reported: raise max_seconds or lower samples")


class Stopped(Exception):
    """The cap passed during one row's attack (raised from inside ART's query loop)."""


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


class AttackRunner:
    """Attacks one model on the attack space, within a deadline."""

    def __init__(self, probes: Any, role: str, space: AttackSpace, table: Any = None,
                 y: np.ndarray | None = None, tag: str = "eval") -> None:
        """``probes`` (a :class:`~audit.probes.probe.Probes`) gives the loaded models, tables
        and the run's memo; ``table`` (default: the eval table) holds the rows of ``space``,
        ``y`` their encoded labels (default: the eval labels); ``tag`` names the table in memo
        keys."""
        run = probes.run
        self.probes, self.role, self.space, self.seed, self.tag = (probes, role, space,
                                                                   probes.seed, tag)
        self.memo = probes.memo
        self.model = run.model(role)
        table = run.eval_table if table is None else table
        self.table = table
        self.where, self.label = display_path(table.path), self.model.label
        self._empty: dict[int, tuple[pd.Series, pd.DataFrame]] = {}
        self.order = run.encoding.reorder(self.model.classes)  # encoded j -> model column
        self.y = np.asarray(run.inputs.y)[space.rows] if y is None else np.asarray(y)

    def predict(self, frame: pd.DataFrame) -> np.ndarray:
        """Encoded class predictions on feature rows ``frame``."""
        return self.proba(frame).argmax(axis=1)

    def proba(self, frame: pd.DataFrame) -> np.ndarray:
        """Encoded class probabilities on feature rows ``frame``: ``LoadedModel.predict_proba``,
        the one model call path (validated output, errors worded as for predictions), on a
        table whose empty label/sensitive columns are built once per row count (a black-box
        attack predicts thousands of small batches)."""
        n = len(frame)
        empty = self._empty.get(n)
        if empty is None:
            empty = self._empty[n] = (self.table.labels.iloc[:0].reindex(range(n)),
                                      self.table.sensitive.iloc[:0].reindex(range(n)))
        sub = dataclasses.replace(self.table, features=frame, labels=empty[0], sensitive=empty[1])
        return self.model.predict_proba(sub)[:, self.order]

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


def start_pool(runner: AttackRunner) -> tuple[np.ndarray, np.ndarray]:
    """Candidate HSJ starts: every eval row (and train row, when the suite names them) in the
    scaled space, with the model's class for each, from the cached predictions (no new model
    call). Rows outside the eval range are clipped into it."""
    run, space = runner.probes.run, runner.space

    def build() -> tuple[np.ndarray, np.ndarray]:
        tables = [run.eval_table]
        if getattr(run.suite.data, "train", None) is not None:
            tables.append(run.train_table())
        xs, preds = [], []
        for table in tables:
            P, classes = run.predictions(runner.role, table)
            raw = table.features[list(space.columns)].to_numpy(dtype=np.float64)
            ok = ~np.isnan(raw).any(axis=1)
            xs.append(np.clip((raw[ok] - space.low) / space.span, 0.0, 1.0))
            preds.append(P[:, run.encoding.reorder(classes)].argmax(axis=1)[ok])
        return np.vstack(xs), np.concatenate(preds)

    # keyed by the scaling too: the robustness space (eval ranges) and the decision-boundary
    # space (ranges of the scored rows) scale the same columns differently
    return runner.memo(("robustness-start-pool", runner.role, space.columns,
                        space.low.tobytes(), space.span.tobytes()), build)


def _init_points(runner: AttackRunner, i: int, x: np.ndarray, label: int, rng: np.random.Generator,
                 pool: np.ndarray, pool_pred: np.ndarray,
                 answers: _Answers | None = None) -> np.ndarray | None:
    """A starting point for HSJ that the model classifies differently from ``label``: the
    nearest data row (eval, then train) the model puts in another class, with this row's
    categorical values, else the nearest of ``HSJ_INIT_SIZE`` seeded uniform draws of the box
    and (up to ``MAX_CORNER_DIMS`` perturbed columns) its corners. The model is asked through
    ``answers`` when given."""
    space = runner.space

    def classes(points: np.ndarray) -> np.ndarray:
        if answers is not None:
            return answers(i, points).argmax(axis=1)
        return runner.predict(space.frame_with(points, np.full(len(points), i)))

    other = np.flatnonzero(pool_pred != label)
    if other.size:
        dist = np.linalg.norm(pool[other] - x, axis=1)
        near = other[np.argsort(dist, kind="stable")[:START_CANDIDATES]]
        cand = pool[near]
        ok = np.flatnonzero(classes(cand) != label)
        if ok.size:
            return cand[ok[0]]  # candidates are sorted by distance
    draws = rng.uniform(0.0, 1.0, size=(HSJ_INIT_SIZE, x.shape[0]))
    if x.shape[0] <= MAX_CORNER_DIMS:  # and the box's corners, where a linear model peaks
        corners = (np.arange(2 ** x.shape[0])[:, None] >> np.arange(x.shape[0])) & 1
        draws = np.vstack([draws, corners.astype(np.float64)])
    hit = np.flatnonzero(classes(draws) != label)
    if hit.size:
        return draws[hit[np.argmin(np.linalg.norm(draws[hit] - x, axis=1))]]
    return None


class _Answers:
    """The model's encoded probabilities on scaled points of the attack space, as fed with an
    attacked row's own unperturbed values (its categorical and fixed columns), each distinct
    feature row asked once per attack: a model's answer on a row does not depend on what else
    is in the batch, and after rounding to integer columns most of HopSkipJump's queries are
    rows it asked before. When every perturbed column is an integer and the grid of their
    values has at most ``GRID_ROWS`` points, the whole grid is asked in one call the first time
    a row with those unperturbed values is attacked (on the example data: 2,310 points in one
    0.15 s call, where HopSkipJump makes about 75 calls of 35 ms each per row on the forest)."""

    def __init__(self, runner: AttackRunner) -> None:
        self.runner, space = runner, runner.space
        self.space = space
        moved = set(space.columns)
        kept = [c for c in space.frame.columns if str(c) not in moved]
        self._context = (list(space.frame[kept].itertuples(index=False, name=None)) if kept
                         else [()] * len(space.frame))
        self._seen: dict[tuple[Any, ...], dict[bytes, np.ndarray]] = {}
        self.grid: np.ndarray | None = None
        sizes = np.rint(space.span).astype(np.int64) + 1
        if space.integer.all() and float(np.prod(sizes.astype(float))) <= GRID_ROWS:
            axes = [np.arange(n) / (n - 1) for n in sizes]  # scaled: the integers low..high
            self.grid = np.stack(np.meshgrid(*axes, indexing="ij"), axis=-1).reshape(-1, len(axes))

    def _keys(self, x: np.ndarray) -> list[bytes]:
        # the perturbed values the model would receive (+ 0.0: -0.0 and 0.0 are one value)
        return [row.tobytes() for row in self.space.unscale(x) + 0.0]

    def _ask(self, i: int, x: np.ndarray, seen: dict[bytes, np.ndarray]) -> list[bytes]:
        keys = self._keys(x)
        new: dict[bytes, int] = {}
        for j, key in enumerate(keys):
            if key not in seen:
                new.setdefault(key, j)
        if new:
            at = np.fromiter(new.values(), dtype=np.int64, count=len(new))
            P = self.runner.proba(self.space.frame_with(x[at], np.full(len(at), i)))
            seen.update(zip(new, P, strict=True))
        return keys

    def __call__(self, i: int, x: np.ndarray) -> np.ndarray:
        """Probabilities on the scaled points ``x`` with row ``i``'s unperturbed values."""
        x = np.asarray(x, np.float64)
        seen = self._seen.get(self._context[i])
        if seen is None:
            seen = self._seen[self._context[i]] = {}
            if self.grid is not None:
                self._ask(i, self.grid, seen)
        return np.stack([seen[key] for key in self._ask(i, x, seen)])


@contextlib.contextmanager
def numpy_seeded(seed: int) -> Iterator[None]:
    """numpy's global generator seeded with ``seed``, its state restored after."""
    state = np.random.get_state()
    np.random.seed(seed)
    try:
        yield
    finally:
        np.random.set_state(state)


@contextlib.contextmanager
def one_torch_thread() -> Iterator[None]:
    """torch's intra-op parallelism off while a black-box attack runs (when torch is loaded):
    its queries are small batches, where a second thread mostly waits for the first. On a loaded
    2-core machine the decision-boundary attack on the digits MLPs (10 rows of each side) took
    17-24 s with 2 threads and 3.7-4.0 s with 1, with the same scores."""
    torch = sys.modules.get("torch")
    if torch is None:
        yield
        return
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(before)


def hopskipjump(runner: AttackRunner, norm: str, todo: np.ndarray, x0: np.ndarray,
                 cap: Cap | None = None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per-row HSJ on the rows ``todo``, in that order; returns the adversarials (rows not
    attacked unchanged), the rows done and the rows of those with no start (left unchanged).
    Every row of ``todo`` is done unless ``cap`` passes first (checked between rows and on
    every model query), which stops the attack where it is."""
    with hiding_torch():  # ART imports torch whenever it is installed; HSJ never uses it
        from art.attacks.evasion import HopSkipJump
        from art.estimators.classification import BlackBoxClassifier

    k = len(runner.model.classes)
    rng = np.random.default_rng(runner.seed)
    out = x0.copy()
    done: list[int] = []
    no_start: list[int] = []
    clean_pred = runner.clean()
    pool, pool_pred = start_pool(runner)
    answers = _Answers(runner)
    progress = runner.probes.progress
    began = last = time.perf_counter()
    # HSJ draws from numpy's global generator: seeded here, restored after
    with numpy_seeded(runner.seed), one_torch_thread():
        for i in todo:
            if cap is not None and cap.passed():
                break
            now = time.perf_counter()
            if progress is not None and now - last > PROGRESS_EVERY:
                last = now
                progress(f"hopskipjump on the {runner.role}: {len(done)} of {len(todo)} rows, "
                         f"{now - began:.0f} s")
            label = int(clean_pred[i])
            start = _init_points(runner, int(i), x0[i], label, rng, pool, pool_pred, answers)
            if start is None:
                no_start.append(int(i))
                done.append(int(i))
                continue

            def predict_fn(x: np.ndarray, i: int = int(i)) -> np.ndarray:
                if cap is not None and cap.passed():
                    raise Stopped
                return answers(i, x)  # encoded class order

            clf = BlackBoxClassifier(predict_fn, input_shape=(x0.shape[1],), nb_classes=k,
                                     clip_values=(0.0, 1.0))
            art = HopSkipJump(clf, norm=norm_order(norm) if norm_order(norm) == 2 else "inf",
                              init_size=HSJ_INIT_SIZE, verbose=False, **HSJ)
            try:
                out[i] = art.generate(x0[i:i + 1].astype(np.float32),
                                      x_adv_init=start[None].astype(np.float32))[0]
            except Stopped:
                out[i] = x0[i]
                break
            done.append(int(i))
    return out, np.array(done, dtype=int), np.array(no_start, dtype=int)
