"""The attack machinery behind the robustness checks: the perturbation space, the attacks
(ART's FGSM/PGD through torch, HopSkipJump through a black box, uniform noise) and the
adversarial examples they produce, cached like predictions.

See :mod:`audit.checks.robustness` for what is measured and how eps is defined.
"""

from __future__ import annotations

import dataclasses
import time
import warnings
from collections.abc import Mapping
from functools import cached_property
from typing import Any

import numpy as np
import pandas as pd

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


# --------------------------------------------------------------------------- the space
@dataclasses.dataclass(frozen=True)
class AttackSpace:
    """The attacked rows and the scaled numeric columns the attacks move."""

    rows: np.ndarray  # eval row positions, sorted
    frame: pd.DataFrame  # their feature rows (index 0..m-1)
    columns: tuple[str, ...]  # perturbed columns (numeric, non-constant)
    integer: np.ndarray  # bool per perturbed column
    low: np.ndarray
    span: np.ndarray
    fixed: tuple[str, ...]  # numeric columns with one value: never moved
    categorical: tuple[str, ...]
    # the perturbed columns of ``frame`` as float64 (computed from ``frame`` when not given)
    raw: np.ndarray | None = dataclasses.field(default=None, repr=False, compare=False)

    @cached_property
    def _arrays(self) -> dict[Any, np.ndarray]:
        return {c: self.frame[c].to_numpy() for c in self.frame.columns}

    @cached_property
    def _matrix(self) -> np.ndarray:
        return self.frame.to_numpy(dtype=np.float64)

    @cached_property
    def _moved(self) -> np.ndarray:
        position: dict[str, int] = {}
        for j, c in enumerate(self.frame.columns):
            position.setdefault(str(c), j)
        return np.array([position[c] for c in self.columns])

    @cached_property
    def _single_dtype(self) -> Any:
        """The one dtype of an all-numeric frame (the fast path of ``frame_with``), else None."""
        dtypes = set(self.frame.dtypes)
        return next(iter(dtypes)) if len(dtypes) == 1 and not self.categorical else None

    @cached_property
    def _moved_dtypes(self) -> dict[str, tuple[int, Any]]:
        return {c: (j, self.frame[c].dtype) for j, c in enumerate(self.columns)}

    @cached_property
    def _scaled(self) -> np.ndarray:
        raw = self.raw
        if raw is None:
            raw = self.frame[list(self.columns)].to_numpy(dtype=np.float64)
        return np.clip((raw - self.low) / self.span, 0.0, 1.0)

    def scaled(self) -> np.ndarray:
        """The perturbed columns of the attacked rows, scaled to [0, 1] (a fresh copy)."""
        return self._scaled.copy()

    def unscale(self, x01: np.ndarray) -> np.ndarray:
        """Back to the columns' units: rounded for integer columns, clipped to [min, max]."""
        raw = self.low + np.clip(np.asarray(x01, np.float64), 0.0, 1.0) * self.span
        raw[:, self.integer] = np.rint(raw[:, self.integer])
        return np.clip(raw, self.low, self.low + self.span)

    def frame_with(self, x01: np.ndarray, rows: np.ndarray | None = None) -> pd.DataFrame:
        """The feature rows (all, or positions ``rows``) with the perturbed columns replaced."""
        raw = self.unscale(x01)
        dtype = self._single_dtype
        if dtype is not None:  # all numeric, one dtype: one block, fast
            full = self._matrix.copy() if rows is None else self._matrix[rows]
            full[:, self._moved] = raw
            return pd.DataFrame(full.astype(dtype), columns=self.frame.columns)
        moved = self._moved_dtypes
        data = {}
        for col in self.frame.columns:
            hit = moved.get(col)
            if hit is None:
                values = self._arrays[col]
                data[col] = values if rows is None else values[rows]
            else:
                j, col_dtype = hit
                data[col] = raw[:, j].astype(col_dtype) if self.integer[j] else raw[:, j]
        return pd.DataFrame(data, columns=self.frame.columns)


def attack_space(table: Any, samples: int, seed: int) -> AttackSpace:
    """Draw ``samples`` eval rows (seeded) and describe the numeric columns to perturb."""
    features: pd.DataFrame = table.features
    n = len(features)
    rng = np.random.default_rng(seed)
    rows = np.sort(rng.choice(n, size=min(samples, n), replace=False))
    dtypes = features.dtypes
    numeric = [c for c, t in zip(features.columns, dtypes, strict=True)
               if pd.api.types.is_numeric_dtype(t) and not pd.api.types.is_bool_dtype(t)]
    numeric_set = set(numeric)
    categorical = tuple(str(c) for c in features.columns if c not in numeric_set)
    every = len(numeric) == features.shape[1]  # all numeric: no column selection to build
    single = every and len(set(dtypes)) == 1 and isinstance(dtypes.iloc[0], np.dtype)
    if single:  # one numpy dtype: one matrix, and the attacked rows are a slice of it
        native = features.to_numpy()
        values = native.astype(np.float64)
    else:
        values = (features if every else features[numeric]).to_numpy(dtype=np.float64)
    if np.isnan(values).any():
        col = numeric[int(np.flatnonzero(np.isnan(values).any(axis=0))[0])]
        raise DataError(f"robustness: numeric column {col!r} has missing values; the attacks "
                        "perturb numbers, so fill them or leave the column out with "
                        "data.features")
    low, high = values.min(axis=0), values.max(axis=0)
    moving = high > low
    if not moving.any():
        raise DataError("robustness checks perturb numeric feature columns, but the eval table "
                        f"has none that vary (columns: {', '.join(map(str, features.columns))})")
    cols = [c for c, m in zip(numeric, moving, strict=True) if m]
    frame = (pd.DataFrame(native[rows], columns=features.columns) if single
             else features.iloc[rows].reset_index(drop=True))
    return AttackSpace(rows=rows, frame=frame, raw=values[rows][:, moving],
                       columns=tuple(map(str, cols)),
                       integer=np.array([pd.api.types.is_integer_dtype(dtypes[c]) for c in cols],
                                        dtype=bool),
                       low=low[moving], span=(high - low)[moving],
                       fixed=tuple(str(c) for c, m in zip(numeric, moving, strict=True) if not m),
                       categorical=categorical)


# --------------------------------------------------------------------------- gradients
def has_gradients(model: Any) -> bool:
    """Whether ART can take gradients of ``model``: a torch module, or a scikit-learn model
    :mod:`audit.checks.differentiable` rebuilds exactly."""
    from audit.checks.differentiable import supports

    return model.module is not None or supports(getattr(model, "native", None))


GRADIENT_MODELS = ("torch models and scikit-learn linear models (LogisticRegression, or a linear "
                   "SVM or other linear classifier in CalibratedClassifierCV(method='sigmoid'), "
                   "optionally after StandardScaler/MinMaxScaler/MaxAbsScaler in a Pipeline)")


def gradient_module(model: Any, space: AttackSpace, columns: list[str]) -> Any:
    """A torch module from scaled perturbed columns (n, d) to the model's logits.

    ``columns`` are all the model's feature columns, in order; the columns not attacked are
    constant over the table (anything else would need a categorical, which torch models and
    the rebuilt scikit-learn models cannot take), so they are filled in from the first row.
    """
    import torch
    from torch import nn

    first = {str(c): v[0] for c, v in reversed(space._arrays.items())}  # the first row
    base = torch.from_numpy(np.array([[first[c] for c in columns]], dtype=np.float64))
    index = torch.tensor([columns.index(c) for c in space.columns])
    low, span = torch.from_numpy(space.low), torch.from_numpy(space.span)
    if model.module is not None:
        inner, dtype = model.module, torch.from_numpy(np.zeros(0, model.input_dtype)).dtype
        probabilities = (model.spec.output or "logits") == "probabilities"
    else:
        from audit.checks.differentiable import torch_module

        inner, _ = torch_module(model.native, len(columns))
        dtype, probabilities = torch.float64, False  # logits or log-probabilities: both fit
        # the cross-entropy loss as they are

    class Unscaled(nn.Module):
        """Scaled perturbed columns -> the model's full input -> logits."""

        def __init__(self) -> None:
            super().__init__()
            # not registered as a submodule: eval()/train() must not reach it (an exported
            # program refuses them; the model was put in eval mode when it was loaded)
            object.__setattr__(self, "inner", inner)

        def forward(self, x: Any) -> Any:
            full = base.expand(x.shape[0], -1).clone()
            full = full.index_copy(1, index, low + x.to(torch.float64) * span)
            out = self.inner(full.to(dtype))
            return torch.log(out.clamp_min(1e-12)) if probabilities else out

    return Unscaled().eval()


def _art_torch(module: Any, d: int, k: int) -> Any:
    import torch
    from art.estimators.classification import PyTorchClassifier

    return PyTorchClassifier(model=module, loss=torch.nn.CrossEntropyLoss(), input_shape=(d,),
                             nb_classes=k, clip_values=(0.0, 1.0), device_type="cpu")


# --------------------------------------------------------------------------- attacks
def choose_attack(requested: str, models: Mapping[str, Any]) -> str:
    """The attack both models face; a gradient attack on a model without gradients is an error."""
    grads = {who: has_gradients(m) for who, m in models.items()}
    if requested == "auto":
        return "pgd" if all(grads.values()) else "hopskipjump"
    if requested in GRADIENT_ATTACKS:
        for who, m in models.items():
            if not grads[who]:
                raise DataError(
                    f"attack: {requested} needs gradients, but the {m.label} has none (a "
                    f"{m.spec.kind} model; gradients come from {GRADIENT_MODELS}); use attack: "
                    "hopskipjump (black-box) or attack: noise")
    return requested


def _norm(norm: str) -> float:
    return np.inf if str(norm) == "inf" else 2.0


def project(x0: np.ndarray, x: np.ndarray, eps: float, norm: str) -> np.ndarray:
    """``x`` moved onto the eps ball around ``x0`` (in the scaled space), clipped to [0, 1]."""
    delta = x - x0
    if _norm(norm) == np.inf:
        delta = np.clip(delta, -eps, eps)
    else:
        size = np.linalg.norm(delta, axis=1, keepdims=True)
        delta = delta * np.minimum(1.0, eps / np.maximum(size, 1e-300))
    return np.clip(x0 + delta, 0.0, 1.0)


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
        P = check_probabilities(raw, n, len(self.model.classes), self.label, where=self.where)
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
        module = gradient_module(self.model, self.space, features)
        self._verify(module, x0[todo], todo)
        clf = _art_torch(module, x0.shape[1], len(self.model.classes))
        labels = self.order[self.y[todo]]  # true labels, as the model's output columns
        if attack == "pgd":
            art = ProjectedGradientDescent(clf, norm=_norm(norm), eps=eps, eps_step=eps * PGD_STEP,
                                           max_iter=PGD_ITER, batch_size=max(len(todo), 1),
                                           verbose=False)
        else:
            art = FastGradientMethod(clf, norm=_norm(norm), eps=eps, batch_size=max(len(todo), 1))
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

    return runner.memo(("robustness-start-pool", runner.role, space.columns), build)


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
            art = HopSkipJump(clf, norm=_norm(norm) if _norm(norm) == 2 else "inf",
                              init_size=HSJ_INIT_SIZE, verbose=False, **HSJ)
            out[i] = art.generate(x0[i:i + 1].astype(np.float32),
                                  x_adv_init=start[None].astype(np.float32))[0]
    finally:
        np.random.set_state(state)
    return out, np.array(done, dtype=int), np.array(no_start, dtype=int)


def _cached(ctx: Any, role: str, what: tuple[Any, ...],
            run: Any) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Black-box adversarial examples are artifacts like predictions: kept in the prediction
    cache, keyed by the model's content, the eval and train data and the attack's settings, so an
    unchanged model is not attacked again on the next run. Models whose content cannot be
    hashed (callables, pickles) are attacked every run."""
    from audit.models import model_fingerprint

    session = getattr(ctx, "session", None)
    known = model_fingerprint(getattr(ctx.suite, role), role)
    if session is None or known is None or session.cache.directory is None:
        return run()
    # the starts come from the eval and train rows: both tables are part of the key
    train = ctx.train_table().sha256 if ctx.suite.data.train is not None else None
    key = session.cache.key("adversarial", known[1], ctx.eval_table.sha256,
                            repr((what, train, HSJ, HSJ_INIT_SIZE, START_VERSION)))

    def compute() -> tuple[np.ndarray, dict[str, Any]]:
        x, done, no_start = run()
        return x, {"done": [int(i) for i in done], "no_start": [int(i) for i in no_start]}

    x, info, _ = session.cache.get_with_info(key, compute)
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
                                                             resampler.seed),
                                                 lambda: _hopskipjump(runner, norm, todo, x0,
                                                                      deadline)))
            x, done, no_start = raw
            x = np.where(np.isin(np.arange(len(x0)), done)[:, None], project(x0, x, eps, norm), x0)
            covered = np.ones(len(x0), bool)
            covered[todo[~np.isin(todo, done)]] = False  # correct rows the cap left unattacked
            info["no_start"] = len(no_start)
        else:
            x = x0.copy()
            if attack == "noise":
                rng = np.random.default_rng(resampler.seed)  # the same draws for both models
                noise = _noise(rng, x0.shape, eps, norm)
                x[todo] = np.clip(x0[todo] + noise[todo], 0.0, 1.0)
            elif len(todo):
                x[todo] = runner.gradient(attack, eps, norm, todo, x0)
            covered = np.ones(len(x0), bool)
        adv = runner.predict(space.frame_with(x)) == runner.y
        return {"x": x, "covered": covered, "clean": clean, "adv": adv & clean,
                "seconds": time.perf_counter() - start, **info}

    return resampler.memo(("robustness", role, attack, float(eps), norm, samples), build)


def _noise(rng: np.random.Generator, shape: tuple[int, ...], eps: float, norm: str) -> np.ndarray:
    if _norm(norm) == np.inf:
        return rng.uniform(-eps, eps, size=shape)
    direction = rng.standard_normal(shape)
    direction /= np.maximum(np.linalg.norm(direction, axis=1, keepdims=True), 1e-300)
    radius = eps * rng.uniform(0.0, 1.0, size=(shape[0], 1)) ** (1.0 / shape[1])
    return direction * radius


def _space(ctx: Any, resampler: Any, samples: int) -> AttackSpace:
    return resampler.memo(("robustness-space", samples),
                          lambda: attack_space(ctx.eval_table, samples, resampler.seed))


# --------------------------------------------------------------------------- measuring
