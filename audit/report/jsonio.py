"""The JSON report: stable, sorted, human-diffable; read back into result objects."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from audit.errors import AuditError, display_path
from audit.results import AuditReport

__all__ = ["report_to_json", "read_report"]


def report_to_json(report: AuditReport | dict[str, Any]) -> str:
    """Serialise a report (or its dict) to JSON text; non-finite numbers are rejected."""
    data = report.to_dict() if isinstance(report, AuditReport) else report
    return json.dumps(data, indent=2, sort_keys=True, allow_nan=False, ensure_ascii=False) + "\n"


def read_report(path: str | Path) -> AuditReport:
    """Read a JSON report written by distill-audit."""
    p = Path(path)
    where = display_path(p)
    try:
        data = json.loads(p.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise AuditError(f"{where}: file not found") from None
    except ValueError as exc:
        raise AuditError(f"{where}: not JSON ({exc})") from None
    if not isinstance(data, dict) or "schema_version" not in data:
        raise AuditError(f"{where}: not a distill-audit JSON report (no schema_version)")
    try:
        return AuditReport.from_dict(data)
    except ValueError as exc:
        raise AuditError(f"{where}: {exc}") from None
    except (KeyError, TypeError) as exc:
        raise AuditError(f"{where}: not a valid distill-audit JSON report (missing or wrong {exc})") from None
