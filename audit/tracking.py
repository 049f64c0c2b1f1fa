"""Log an audit to MLflow, where a team's runs already live (``--audit-mlflow``; the
``mlflow`` extra: ``pip install distill-audit[mlflow]``, mlflow-skinny is enough).

One MLflow run per suite report, named by the suite:

* **metrics**: every measurement's value and interval ends, for the student, the teacher and the
  regression: ``<check>/<metric>[/<scope>]/student``, ``.../student_lo``, ``.../student_hi``,
  ``.../teacher``, ``.../regression`` (and their ends); non-finite values are left out;
* **tags**: ``distill_audit.verdict``, each check's status (``check/<name>``) and each gate
  bound's verdict (``gate/<check>/<kind>[/<scope>]``);
* **params**: the suite's name, seed, confidence, and the provenance hashes of the models and
  tables (``teacher.sha256``, ``student.sha256``, ``data.eval.sha256``, ...);
* **artifacts**: the report files the run wrote (JSON, HTML, Markdown, flip table).

Names are made MLflow-safe (letters, digits, ``_ - . : /`` and spaces). The tracking URI is the
one given, else MLflow's own (``MLFLOW_TRACKING_URI``); a local ``file:`` store needs
``MLFLOW_ALLOW_FILE_STORE=true`` with mlflow 3 (an ``sqlite:///`` URI needs the full mlflow).
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable
from pathlib import Path
from typing import Any

__all__ = ["log_report", "metric_key"]

_UNSAFE = re.compile(r"[^A-Za-z0-9_\-. :/]")


def _safe(text: Any) -> str:
    return _UNSAFE.sub("_", str(text))[:250]


def metric_key(check: str, metric: str, scope: str, part: str) -> str:
    """``check/metric[/scope]/part``, MLflow-safe.

    >>> metric_key("fair", "demographic_parity_difference", "by colour", "student")
    'fair/demographic_parity_difference/by colour/student'
    """
    return "/".join(_safe(p) for p in (check, metric, *([scope] if scope else []), part))


# (the check's measurements, the part of each logged, the key's last part): the baseline's
# value, and the student's regression from the baseline (or a pairwise metric's value against it)
_PARTS = (("measurements", "student", "student"), ("measurements", "teacher", "teacher"),
          ("measurements", "regression", "regression"), ("baseline", "student", "baseline"),
          ("versus_baseline", "regression", "baseline_regression"),
          ("versus_baseline", "student", "versus_baseline"))


def _metrics(report: dict[str, Any]) -> dict[str, float]:
    out: dict[str, float] = {}
    for c in report.get("checks", []):
        for where, part, name in _PARTS:
            for m in c.get(where, []):
                est = m.get(part)
                if not isinstance(est, dict) or est.get("value") is None:
                    continue
                values = [("", est["value"])]
                if est.get("ci"):
                    values += [("_lo", est["ci"][0]), ("_hi", est["ci"][1])]
                key = metric_key(c["name"], m["metric"], _scope(m), name)
                for suffix, v in values:
                    if v is not None and math.isfinite(float(v)):
                        out[key + suffix] = float(v)
    return out


def _scope(m: dict[str, Any]) -> str:
    from audit.results import Measurement

    return Measurement.from_dict(m).scope


def _tags(report: dict[str, Any]) -> dict[str, str]:
    tags = {"distill_audit.verdict": str(report.get("verdict")),
            "distill_audit.suite": str(report.get("suite", {}).get("name"))}
    for c in report.get("checks", []):
        tags[f"check/{_safe(c['name'])}"] = str(c.get("status"))
        for g in c.get("gates", []):
            scope = f"/{_safe(g['scope'])}" if g.get("scope") else ""
            tags[f"gate/{_safe(c['name'])}/{g['kind']}{scope}"] = str(g.get("status"))
    return tags


def _params(report: dict[str, Any]) -> dict[str, str]:
    prov = report.get("provenance", {})
    params = {"suite": str(report.get("suite", {}).get("name")), "seed": str(prov.get("seed"))}
    for who in ("teacher", "student", "baseline"):
        entry = prov.get(who) or {}
        for key in ("kind", "sha256", "size_bytes"):
            if entry.get(key) is not None:
                params[f"{who}.{key}"] = str(entry[key])
    for role, entry in (prov.get("data") or {}).items():
        if isinstance(entry, dict) and entry.get("sha256"):
            params[f"data.{_safe(role)}.sha256"] = str(entry["sha256"])
    return {k: v[:6000] for k, v in params.items()}


def log_report(report: dict[str, Any], files: Iterable[Path], *, tracking_uri: str | None = None,
               experiment: str | None = None) -> str:
    """Log one JSON report (a dict) and its files as an MLflow run; returns the run id."""
    from audit.extras import require

    mlflow = require("mlflow", "logging the audit to MLflow (--audit-mlflow)")
    if tracking_uri:
        mlflow.set_tracking_uri(tracking_uri)
    name = str(report.get("suite", {}).get("name"))
    mlflow.set_experiment(experiment or f"distill-audit/{name}")
    with mlflow.start_run(run_name=name) as run:
        mlflow.log_params(_params(report))
        mlflow.set_tags(_tags(report))
        metrics = _metrics(report)
        keys = list(metrics)
        for at in range(0, len(keys), 500):  # MLflow takes at most 1000 per batch
            mlflow.log_metrics({k: metrics[k] for k in keys[at:at + 500]})
        for path in files:
            if path.is_file():
                mlflow.log_artifact(str(path))
        return str(run.info.run_id)
