"""Model extraction: a thief trained on queries to each model, at several query budgets.

The attacker queries the model on inputs of their own and trains a copy (the *thief*) on its
answers. Query inputs come from ``source``:

* ``marginals`` (tabular, default): each feature column drawn independently from the eval
  rows' values, seeded. An attacker who knows what each column looks like, not real rows.
  These are new rows, so both models are called on them (once, on the largest budget's rows;
  a smaller budget uses the first of them).
* a table (``train``, ``holdout``, ``teacher_train``, ``eval``): rows of it, seeded; the
  models' answers come from the prediction cache.

Each budget's thief is fitted on that many queries and the model's predicted classes
(hard labels: what an API that returns a decision gives away), then scored on eval rows the
queries did not use: its agreement with the model and its accuracy. Thieves (``thief``):
scikit-learn families on the standardised, one-hot encoded features (image pixels
flattened), seeded (:data:`THIEVES`), or ``cnn``: ART's ``CopycatCNN`` training a small
torch network on an image model's answers.
"""

from __future__ import annotations

import time
import warnings
from dataclasses import replace
from typing import Any

import numpy as np
import pandas as pd

from audit.errors import DataError, display_path
from audit.probes.artifacts import ArtifactRequest, Extraction

__all__ = ["extraction", "THIEVES", "make_thief", "marginal_queries"]

THIEVES = ("mlp", "logistic", "forest", "tree", "boosting", "cnn")
MIN_SCORED = 20  # eval rows a thief is scored on


def make_thief(family: str, seed: int) -> Any:
    """An unfitted scikit-learn classifier of ``family`` (seeded where it draws)."""
    from sklearn.ensemble import HistGradientBoostingClassifier, RandomForestClassifier
    from sklearn.linear_model import LogisticRegression
    from sklearn.neural_network import MLPClassifier
    from sklearn.tree import DecisionTreeClassifier

    return {"mlp": lambda: MLPClassifier(hidden_layer_sizes=(100,), max_iter=300,
                                         random_state=seed),
            "logistic": lambda: LogisticRegression(max_iter=1000),
            "forest": lambda: RandomForestClassifier(n_estimators=100, random_state=seed),
            "tree": lambda: DecisionTreeClassifier(random_state=seed),
            "boosting": lambda: HistGradientBoostingClassifier(random_state=seed)}[family]()


def _pipeline(frame: pd.DataFrame, family: str, seed: int) -> Any:
    """One-hot the categorical columns, standardise the numbers, then the thief."""
    from sklearn.compose import ColumnTransformer
    from sklearn.impute import SimpleImputer
    from sklearn.pipeline import Pipeline, make_pipeline
    from sklearn.preprocessing import OneHotEncoder, StandardScaler

    numeric = [c for c in frame.columns if pd.api.types.is_numeric_dtype(frame[c])
               and not pd.api.types.is_bool_dtype(frame[c])]
    other = [c for c in frame.columns if c not in numeric]
    prep = ColumnTransformer(
        [("num", make_pipeline(SimpleImputer(strategy="median"), StandardScaler()), numeric),
         ("cat", OneHotEncoder(handle_unknown="ignore"), other)], remainder="drop")
    return Pipeline([("prep", prep), ("thief", make_thief(family, seed))])


def _as_text(frame: pd.DataFrame) -> pd.DataFrame:
    """Categorical columns as strings (missing ones as one value), as the one-hot reads them."""
    out = frame.copy()
    for c in out.columns:
        if not pd.api.types.is_numeric_dtype(out[c]) or pd.api.types.is_bool_dtype(out[c]):
            out[c] = out[c].astype(str).where(out[c].notna(), "(missing)")
    return out


def marginal_queries(features: pd.DataFrame, n: int, rng: np.random.Generator) -> pd.DataFrame:
    """``n`` rows whose columns are drawn independently from ``features``' columns. One
    ``(n, columns)`` draw, row by row: the first ``m`` rows are the same for any ``n >= m``,
    so a budget's queries do not depend on the other budgets asked for."""
    idx = rng.integers(0, len(features), size=(n, features.shape[1]))
    return pd.DataFrame({c: features[c].to_numpy()[idx[:, j]]
                         for j, c in enumerate(features.columns)}).astype(
        features.dtypes.to_dict())


def extraction(probes: Any, request: ArtifactRequest) -> Extraction:
    """The :class:`~audit.probes.artifacts.Extraction` of an extraction check: ``budgets``,
    ``source``, ``thief`` and ``max_seconds``."""
    return probes.memo(("extraction", request.params), lambda: _extract(probes, request))


def _queries(probes: Any, source: str, n: int, rng: np.random.Generator
             ) -> tuple[Any, dict[str, np.ndarray], np.ndarray | None, list[str]]:
    """The query table (``n`` rows), each model's encoded answers on it, the eval positions
    it used (``source: eval``) and notes."""
    run = probes.run
    ev = run.eval_table
    notes: list[str] = []
    if source == "marginals":
        if ev.modality != "tabular":
            raise DataError("extraction with source: marginals draws each feature column "
                            "independently; an image or text suite's inputs have no columns to "
                            "draw: name a table (source: train, holdout or teacher_train)")
        frame = marginal_queries(ev.features, n, rng)
        table = replace(ev.take(np.zeros(n, dtype=int)), features=frame,
                        role="extraction queries")
        models = run.runnable_models("extraction checks query")
        answers = {}
        for who, model in models.items():
            P = model.predict_proba(table)
            answers[who] = P[:, run.encoding.reorder(model.classes)].argmax(axis=1)
        return table, answers, None, notes
    if getattr(run.suite.data, source) is None:
        raise DataError(f"extraction with source: {source} needs data.{source}; name it in the "
                        "suite's data section, or use source: marginals")
    table = run.table(source)
    if n > table.n_rows - (MIN_SCORED if source == "eval" else 0):
        raise DataError(f"extraction: the largest budget ({n} queries) needs more rows than "
                        f"data.{source} has ({table.n_rows}, {display_path(table.path)}"
                        + (f", keeping {MIN_SCORED} eval rows to score the thief" if source ==
                           "eval" else "") + "); lower the budgets or use source: marginals")
    rows = rng.permutation(table.n_rows)[:n]  # a budget's rows are a prefix, for any largest
    answers = {}
    for who in ("teacher", "student"):
        P, classes = run.predictions(who, table)
        answers[who] = P[:, run.encoding.reorder(classes)].argmax(axis=1)[rows]
    return table.take(rows), answers, (rows if source == "eval" else None), notes


def _extract(probes: Any, request: ArtifactRequest) -> Extraction:
    run = probes.run
    budgets = tuple(sorted(int(b) for b in request.get("budgets")))
    source, family = str(request.get("source")), str(request.get("thief"))
    max_seconds = float(request.get("max_seconds"))
    ev = run.eval_table
    if family == "cnn":
        if ev.images is None:
            raise DataError("thief: cnn trains a small CNN on images (ART CopycatCNN); this "
                            "suite's models read "
                            + ("texts" if ev.texts is not None else "feature columns")
                            + ": use mlp, logistic, forest, tree or boosting")
        from audit.extras import require

        require("torch", "extraction with thief: cnn (ART CopycatCNN)")
    rng = np.random.default_rng([probes.seed, 7])
    queries, answers, used, notes = _queries(probes, source, budgets[-1], rng)
    scored = np.setdiff1d(np.arange(ev.n_rows), used) if used is not None else np.arange(ev.n_rows)
    if len(scored) < MIN_SCORED:
        raise DataError(f"extraction needs at least {MIN_SCORED} eval rows to score the thieves")
    if used is not None:
        notes.append(f"the queries are eval rows; the thieves are scored on the other "
                     f"{len(scored)} eval rows")
    y = run.encoding.encode(ev.labels, f"{display_path(ev.path)} column "
                                       f"{run.suite.data.target!r}")[scored]
    victim = {}
    for who in ("teacher", "student"):
        P, classes = run.predictions(who, ev)
        victim[who] = P[:, run.encoding.reorder(classes)].argmax(axis=1)[scored]
    target = ev.take(scored)
    for who, a in answers.items():
        one = [n for n in budgets if len(np.unique(a[:n])) == 1]
        if one:
            notes.append(f"the {who} answered the first {max(one)} queries with one class "
                         f"({run.encoding.classes[int(a[0])]!r}): the thief at "
                         f"{', '.join(map(str, one))} queries is that constant")
    thieves: dict[int, dict[str, np.ndarray]] = {}
    seconds: dict[int, dict[str, float]] = {}
    start = time.perf_counter()
    for n in budgets:
        thieves[n], seconds[n] = {}, {}
        for who in ("teacher", "student"):
            t0 = time.perf_counter()
            thieves[n][who] = _steal(queries, answers[who], n, target, family, probes.seed,
                                     len(run.encoding.classes))
            seconds[n][who] = time.perf_counter() - t0
            if time.perf_counter() - start > max_seconds:
                raise DataError(f"extraction stopped at max_seconds={max_seconds:g} (budget {n}, "
                                f"{who}); raise max_seconds or lower the budgets")
    return Extraction(budgets=budgets, source=source, thief=family, scored=len(scored), y=y,
                      victim=victim, thieves=thieves, seconds=seconds, notes=tuple(notes))


def _inputs(table: Any) -> Any:
    """What a thief reads: the feature frame, or the images flattened, or the texts."""
    if table.images is not None:
        return table.images.reshape(len(table.images), -1)
    return _as_text(table.features)


def _steal(queries: Any, labels: np.ndarray, n: int, target: Any, family: str, seed: int,
           k: int) -> np.ndarray:
    """Fit a thief on the first ``n`` queries and the model's answers, and return its
    predicted (encoded) classes on ``target``."""
    seen = np.unique(labels[:n])
    if len(seen) == 1:  # one answer: the copy is that constant
        return np.full(target.n_rows, seen[0])
    if family == "cnn":
        from audit.probes.copycat import copycat

        return copycat(queries.images[:n], labels[:n], target.images, k, seed)
    from sklearn.exceptions import ConvergenceWarning

    x = _inputs(queries.take(np.arange(n)))
    if isinstance(x, pd.DataFrame):
        thief = _pipeline(x, family, seed)
    else:
        from sklearn.pipeline import make_pipeline
        from sklearn.preprocessing import StandardScaler

        thief = make_pipeline(StandardScaler(), make_thief(family, seed))
    with warnings.catch_warnings():  # an attacker's first try need not converge
        warnings.simplefilter("ignore", ConvergenceWarning)
        thief.fit(x, labels[:n])
    return np.asarray(thief.predict(_inputs(target)))
