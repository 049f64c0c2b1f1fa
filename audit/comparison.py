"""``audit.compare``: audit a teacher and a student held in memory, in the scikit-learn manner.

A data scientist in a notebook holds a fitted ``teacher`` and ``student`` (scikit-learn
estimators, torch modules, transformers pipelines or functions of the inputs) and the data.
:func:`compare` runs the same checks, gates, intervals and report as a suite file, without
saving anything first::

    from audit import compare
    result = compare(teacher, student, X_eval, y_eval, sensitive=["sex"],
                     checks={"accuracy": {"metric": "accuracy", "gate": {"max_regression": 0.02}}})
    result            # in Jupyter: the verdict and the gate table; in a terminal: the summary
    result.save()     # the full JSON / HTML report, as `distill-audit run` writes it

The data is written to a temporary folder (Parquet when pyarrow is installed, else CSV) and
read back exactly as a suite reads its tables, so the numbers are the ones a suite of the same
files gives. The models are never written: each is fingerprinted by its learned content
(:mod:`audit.models.memory`) for the report's provenance.
"""

from __future__ import annotations

import dataclasses
import shutil
import tempfile
import weakref
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

__all__ = ["compare", "Comparison", "DEFAULT_CHECKS"]

# what compare() checks when given no checks: the release essentials, each gated
DEFAULT_CHECKS: dict[str, dict[str, Any]] = {
    "accuracy": {"metric": "accuracy", "gate": {"max_regression": 0.02}},
    "agreement": {"metric": "agreement", "gate": {"min": 0.9}},
    "calibration": {"metric": "ece", "gate": {"max_regression": 0.02}},
}
_FAIRNESS = {"metric": "demographic_parity_difference", "gate": {"max_regression": 0.05}}


class Comparison:
    """The result of :func:`compare`: the report (an :class:`~audit.results.AuditReport`) with
    a Jupyter and a terminal face, and the full report one call away."""

    def __init__(self, report: Any, folder: Path) -> None:
        self.report = report
        self.folder = folder  # the data the report's provenance names, kept while this lives
        weakref.finalize(self, shutil.rmtree, folder, ignore_errors=True)

    @property
    def verdict(self) -> str:
        return str(self.report.verdict.value)

    @property
    def passed(self) -> bool:
        """No blocking gate failed and every check ran (warnings allowed)."""
        return self.verdict in ("pass", "warn", "info")

    def to_dict(self) -> dict[str, Any]:
        """The JSON report."""
        return dict(self.report.to_dict())

    def html(self) -> str:
        """The full, self-contained HTML report."""
        from audit.report.html import render_html

        return render_html(self.to_dict())

    def save(self, report_dir: str | Path = "reports", *, json_path: str | Path | None = None,
             html_path: str | Path | None = None) -> Any:
        """Write the JSON and HTML report (``report_dir/<name>/<timestamp>.*`` by default)."""
        from audit.report.writer import write_report

        return write_report(self.report, report_dir=Path(report_dir),
                            json_path=None if json_path is None else Path(json_path),
                            html_path=None if html_path is None else Path(html_path))

    def __repr__(self) -> str:
        from audit.report.terminal import format_check
        from audit.safe import visible

        counts = ", ".join(f"{n} {s.value}" for s, n in self.report.counts.items() if n)
        lines = [f"{self.report.suite.get('name')}: {self.verdict.upper()} ({counts})"]
        for c in self.report.checks:
            lines.append(f"{visible(c.name)}: {c.status.value.upper()}")
            lines.append(format_check(c))
        return "\n".join(lines)

    def _repr_html_(self) -> str:
        from markupsafe import escape

        from audit.report.terminal import gate_line

        colour = {"pass": "#2b8a3e", "warn": "#e67700", "fail": "#c92a2a", "error": "#c92a2a",
                  "inconclusive": "#e67700", "info": "#495057"}
        rows = []
        for c in self.report.checks:
            gates = "<br>".join(escape(gate_line(g).strip()) for g in c.gates) or (
                escape(c.error) if c.error else "measured only")
            status = c.status.value
            rows.append(f"<tr><td>{escape(c.name)}</td><td style=\"color:{colour.get(status)};"
                        f"font-weight:600\">{status.upper()}</td><td style=\"font-family:"
                        f"monospace;font-size:12px\">{gates}</td></tr>")
        v = self.verdict
        return (f"<div><p><strong>{escape(self.report.suite.get('name'))}</strong>: <span style="
                f"\"color:{colour.get(v)};font-weight:700\">{v.upper()}</span></p><table><thead>"
                "<tr><th>check</th><th>status</th><th>gates</th></tr></thead><tbody>"
                + "".join(rows) + "</tbody></table><p style=\"color:#6c757d\">The full report: "
                "<code>result.save()</code> (JSON and HTML) or <code>result.html()</code>.</p>"
                "</div>")


def _write_table(frame: Any, folder: Path, stem: str) -> Path:
    try:
        import pyarrow  # noqa: F401  (pandas writes Parquet with it)
    except ImportError:
        path = folder / f"{stem}.csv"
        frame.to_csv(path, index=False)
        return path
    path = folder / f"{stem}.parquet"
    frame.to_parquet(path, index=False)
    return path


def _table(X: Any, y: Any, sensitive: Any, folder: Path, stem: str, target: str
           ) -> tuple[Path, dict[str, Any], list[str]]:
    """Write one table; returns its path, the data keys it sets and the sensitive columns."""
    import numpy as np
    import pandas as pd

    keys: dict[str, Any] = {}
    y = pd.Series(np.asarray(y)).reset_index(drop=True)
    extra = pd.DataFrame(index=range(len(y)))
    names: list[str] = []
    if isinstance(sensitive, pd.Series):
        sensitive = sensitive.to_frame(sensitive.name or "group")
    if isinstance(sensitive, pd.DataFrame):
        extra = sensitive.reset_index(drop=True)
        names = [str(c) for c in extra.columns]
    elif sensitive is not None:
        names = [sensitive] if isinstance(sensitive, str) else [str(s) for s in sensitive]
    if isinstance(X, pd.DataFrame):
        frame = X.reset_index(drop=True)
        keys["features"] = [str(c) for c in frame.columns]
        clash = [c for c in extra.columns if c in frame.columns]
        frame = pd.concat([frame, extra.drop(columns=clash)], axis=1)
    elif isinstance(X, np.ndarray) and X.ndim in (3, 4):
        np.save(folder / f"{stem}.npy", X)
        keys["images"] = {stem: f"{stem}.npy"}
        frame = extra.copy()
        frame["__row"] = np.arange(len(y))
        keys["features"] = ["__row"]
    elif isinstance(X, (list, tuple, pd.Series)) and all(isinstance(t, str) for t in X):
        frame = extra.copy()
        frame["text"] = list(X)
        keys["text"] = "text"
    else:
        raise TypeError(f"X must be a DataFrame (tabular), a list of str (text) or an image "
                        f"array (N, C, H, W); got {type(X).__name__}")
    if len(frame) != len(y):
        raise ValueError(f"X has {len(frame)} rows and y {len(y)}; they must match")
    if target in frame.columns:
        raise ValueError(f"X has a column named {target!r}; pass another target= name")
    frame[target] = y
    return _write_table(frame, folder, stem), keys, names


def compare(teacher: Any, student: Any, X: Any, y: Any, *, sensitive: Any = None,
            checks: Mapping[str, Mapping[str, Any]] | None = None, baseline: Any = None,
            train: tuple[Any, Any] | None = None, positive: Any = None,
            classes: Sequence[Any] | None = None, name: str = "compare", seed: int = 0,
            confidence: float = 0.95, bootstrap: int = 1000, target: str = "label") -> Comparison:
    """Audit ``student`` against ``teacher`` on ``X``, ``y`` with the suite checks ``checks``.

    Parameters
    ----------
    teacher, student : object
        Fitted scikit-learn estimators (``predict_proba``), torch modules, transformers
        pipelines, or functions of the inputs returning class probabilities (then
        ``classes=`` is needed).
    X : DataFrame, list of str or ndarray
        The eval inputs: feature columns, texts, or images ``(N, C, H, W)`` in [0, 1].
    y : array-like
        The eval labels.
    sensitive : str, list of str, Series or DataFrame, optional
        Columns of ``X`` to slice fairness by, or the group columns themselves (then they are
        not model inputs).
    checks : mapping, optional
        Check name -> check, as a suite's ``checks:`` (default :data:`DEFAULT_CHECKS`, plus
        demographic parity by the sensitive columns).
    baseline : object, optional
        A third model, as the suite key ``baseline:`` (the model in production today, or the
        student trained without distillation): measured by every check on the same rows;
        gates may set ``max_baseline_regression``.
    train : (X_train, y_train), optional
        The student's training rows (membership inference, drift).
    positive, classes, name, seed, confidence, bootstrap, target
        As the suite keys ``data.positive``, a model's ``classes``, ``name`` and ``settings``.

    Returns
    -------
    Comparison
        ``.report`` (the :class:`~audit.results.AuditReport`), ``.passed``, ``.save()``.
    """
    base = Path(tempfile.mkdtemp(prefix="distill-audit-compare-"))
    try:
        report = _report(teacher, student, X, y, base, sensitive=sensitive, checks=checks,
                         baseline=baseline, train=train, positive=positive, classes=classes,
                         name=name, seed=seed, confidence=confidence, bootstrap=bootstrap,
                         target=target)
    except BaseException:
        shutil.rmtree(base, ignore_errors=True)
        raise
    return Comparison(report, base)


def _report(teacher: Any, student: Any, X: Any, y: Any, base: Path, *, sensitive: Any,
            checks: Mapping[str, Mapping[str, Any]] | None, baseline: Any,
            train: tuple[Any, Any] | None,
            positive: Any, classes: Sequence[Any] | None, name: str, seed: int,
            confidence: float, bootstrap: int, target: str) -> Any:
    from audit.runner import AuditSession, SuiteRun
    from audit.spec import ModelSpec
    from audit.suite import suite_from_dict

    path, keys, groups = _table(X, y, sensitive, base, "eval", target)
    data: dict[str, Any] = {"eval": path.name, "target": target}
    images = keys.pop("images", None)
    data.update(keys)
    if groups:
        data["sensitive"] = groups
    if positive is not None:
        data["positive"] = positive
    if train is not None:
        tpath, tkeys, _ = _table(train[0], train[1], None, base, "train", target)
        data["train"] = tpath.name
        if images is not None:
            images.update(tkeys.get("images", {}))
    if images is not None:
        data["images"] = images
    chosen = dict(checks) if checks is not None else dict(DEFAULT_CHECKS)
    if checks is None and groups:
        chosen["fairness"] = dict(_FAIRNESS)
    raw = {"version": 1, "name": name, "data": data,
           "teacher": {"callable": "memory:teacher"}, "student": {"callable": "memory:student"},
           "settings": {"seed": seed, "confidence": confidence, "bootstrap": bootstrap},
           "checks": {k: dict(v) for k, v in chosen.items()}}
    if baseline is not None:
        raw["baseline"] = {"callable": "memory:baseline"}
    suite = suite_from_dict(raw, base_dir=base)
    given = tuple(classes) if classes is not None else None
    suite = dataclasses.replace(
        suite, teacher=ModelSpec(kind="object", obj=teacher, classes=given),
        student=ModelSpec(kind="object", obj=student, classes=given),
        baseline=None if baseline is None else ModelSpec(kind="object", obj=baseline,
                                                         classes=given))
    return SuiteRun(suite, AuditSession(cache_dir=None)).report()
