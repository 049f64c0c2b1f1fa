"""Assemble one :class:`~audit.results.AuditReport` per suite from check records.

A record is what one test item produced: ``{"suite": ..., "artifacts": ..., "result": ...}``,
plain data that crossed from a pytest-xdist worker, or came from this process.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from audit.provenance import environment, git_state, utc_now, versions
from audit.results import AuditReport, CheckResult, Provenance, combine_statuses

__all__ = ["reports_from_records"]


def _merge_artifacts(records: list[dict[str, Any]]) -> dict[str, Any]:
    """Prefer the most complete record of each artifact (a model that loaded has a sha256)."""
    out: dict[str, Any] = {}
    for rec in records:
        for key, value in rec["artifacts"].items():
            if key == "predictions":
                out.setdefault("predictions", {}).update(value)
            elif key == "cache":
                merged = out.setdefault("cache", {**value, "entries": {}, "refused": []})
                merged["entries"].update(value.get("entries", {}))
                merged["refused"] = sorted({*merged["refused"], *value.get("refused", [])})
            elif key == "data":
                if "sha256" in value.get("eval", {}) or key not in out:
                    out[key] = value
            elif "sha256" in value or key not in out:
                out[key] = value
    return out


def _order(record: dict[str, Any], names: list[str]) -> tuple[int, int, str]:
    r = record["result"]
    if r["source"] == "suite" and r["name"] in names:
        return (0, names.index(r["name"]), "")
    return (1, 0, r["location"])


def reports_from_records(records: list[dict[str, Any]], *, started: str,
                         signoff: dict[str, str] | None = None) -> list[AuditReport]:
    """Group records by suite and build each suite's report, checks in suite order."""
    groups: dict[str, list[dict[str, Any]]] = {}
    for rec in records:
        key = rec["suite"]["path"] or rec["suite"]["name"]
        groups.setdefault(key, []).append(rec)
    reports = []
    for recs in groups.values():
        info = dict(recs[0]["suite"])
        names = list(info.pop("checks", []))
        recs = sorted(recs, key=lambda r: _order(r, names))
        checks = [CheckResult.from_dict(r["result"]) for r in recs]
        ran = {c.name for c in checks if c.source == "suite"}
        info["not_run"] = [n for n in names if n not in ran]
        artifacts = _merge_artifacts(recs)
        data = artifacts.get("data", {})
        if "sha256" in data.get("eval", {}):
            data["sha256"] = data["eval"]["sha256"]
        warnings = sorted({w for role in ("teacher", "student", "baseline")
                           for w in artifacts.get(role, {}).get("warnings", [])})
        cache = artifacts.get("cache") or {}
        if cache.get("mode") == "trusted" and any(
                not how.startswith("computed") for how in cache.get("entries", {}).values()):
            warnings.append("cached predictions were used without verification "
                            "(--audit-trust-cache): whoever can write the cache folder could "
                            "have changed them")
        warnings += [f"a cache entry was refused: {r} (a forged or stale cache?)"
                     for r in cache.get("refused", [])]
        suite_dir = Path(info["path"]).parent if info.get("path") else Path.cwd()
        provenance = Provenance.from_dict({
            **artifacts,
            "seed": info["settings"]["seed"],
            "versions": versions(),
            "environment": environment(),
            "git": git_state(suite_dir),
            "created": started,
            "finished": utc_now(),
            "warnings": warnings,
        })
        reports.append(AuditReport(suite=info, verdict=combine_statuses([c.status for c in checks]),
                                   checks=tuple(checks), provenance=provenance,
                                   signoff=dict(signoff or {})))
    return reports
