"""The JSON report: stable, sorted, human-diffable; read back into result objects."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from audit.errors import AuditError, display_path
from audit.results import SCHEMA_VERSION, AuditReport

__all__ = ["report_to_json", "read_report", "report_schema", "validate_report", "report_problem"]


def report_schema() -> dict[str, Any]:
    """The JSON Schema of the report (shipped in the package as schemas/report-v1.json)."""
    from importlib.resources import files

    return json.loads(files("audit").joinpath("schemas/report-v1.json").read_text(encoding="utf-8"))


def report_problem(data: Any) -> str | None:
    """The first place where ``data`` breaks the report schema, in one line, or ``None``.

    Examples
    --------
    >>> report_problem({"schema_version": "1.0"})
    "missing required key 'suite'"
    """
    import jsonschema

    from audit.yamlsrc import dotted, show

    validator = jsonschema.Draft202012Validator(report_schema())
    error = jsonschema.exceptions.best_match(validator.iter_errors(data))
    if error is None:
        return None
    path = dotted(tuple(error.absolute_path))
    value = error.instance
    if error.validator == "required":
        missing = next((k for k in error.validator_value if k not in value), "?")
        return f"{path + ': ' if path else ''}missing required key {missing!r}"
    if error.validator == "additionalProperties" and isinstance(value, dict):
        known = error.schema.get("properties", {})
        extra = sorted(k for k in value if k not in known)
        return f"{path + ': ' if path else ''}unknown key {extra[0]!r}" if extra else error.message
    where = path or "(top level)"
    if error.validator == "enum":
        return f"{where}={show(value)}: must be one of {', '.join(map(str, error.validator_value))}"
    if error.validator == "type":
        kinds = error.validator_value
        kinds = " or ".join(kinds) if isinstance(kinds, list) else kinds
        return f"{where}={show(value)}: must be of JSON type {kinds}"
    message = error.message if len(error.message) <= 120 else error.message[:117] + "..."
    return f"{where}={show(value)}: {message}"


def validate_report(data: dict[str, Any]) -> None:
    """Raise :class:`AuditError` naming the first place where ``data`` breaks the schema."""
    import jsonschema

    validator = jsonschema.Draft202012Validator(report_schema())
    error = jsonschema.exceptions.best_match(validator.iter_errors(data))
    if error is not None:
        where = "/".join(str(p) for p in error.absolute_path) or "(top level)"
        raise AuditError(f"the report does not follow its schema at {where}: {error.message}")


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
    except IsADirectoryError:
        raise AuditError(f"{where}: is a folder, not a JSON report") from None
    except OSError as exc:
        raise AuditError(f"{where}: cannot read it ({exc.strerror or exc})") from None
    except ValueError as exc:  # not UTF-8, or not JSON
        raise AuditError(f"{where}: not JSON ({exc})") from None
    if not isinstance(data, dict) or "schema_version" not in data:
        raise AuditError(f"{where}: not a distill-audit JSON report (no schema_version)")
    major = str(data["schema_version"]).split(".")[0]
    problem = None if major != SCHEMA_VERSION.split(".")[0] else report_problem(data)
    if problem is not None:  # checked before anything is built or written from it
        raise AuditError(f"{where}: not a valid distill-audit report: {problem}")
    try:
        return AuditReport.from_dict(data)
    except ValueError as exc:
        raise AuditError(f"{where}: {exc}") from None
    except (KeyError, TypeError) as exc:
        raise AuditError(f"{where}: not a valid distill-audit JSON report (missing or wrong {exc})") from None
