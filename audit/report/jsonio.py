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
    try:
        data = json.loads(p.read_text(encoding="utf-8"))
        return AuditReport.from_dict(data)
    except FileNotFoundError:
        raise AuditError(f"{display_path(p)}: file not found") from None
    except (ValueError, KeyError, TypeError) as exc:
        raise AuditError(f"{display_path(p)}: not a distill-audit JSON report ({exc})") from None
