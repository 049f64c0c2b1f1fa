"""distill-audit: audit a distilled student model against its teacher, and gate releases on it.

The pytest plugin collects ``*.audit.yaml`` suites; this package's public API does the same
from Python::

    from audit import load_suite, SuiteRun
    run = SuiteRun(load_suite("suites/arrests.audit.yaml"))
    result = run.run_check("accuracy")          # a CheckResult
    report = run.report()                       # every check, as an AuditReport

Names are imported lazily: the pytest plugin (``audit.plugin``) is loaded in every pytest run
of a project that installs us, and must not pull in numpy or pandas by importing this package.
"""

from __future__ import annotations

import importlib
from typing import Any

__version__ = "0.1.0"

_EXPORTS = {
    "AuditError": "audit.errors",
    "SuiteError": "audit.errors",
    "DataError": "audit.errors",
    "ModelError": "audit.errors",
    "GateFailure": "audit.errors",
    "Suite": "audit.suite",
    "load_suite": "audit.suite",
    "suite_from_dict": "audit.suite",
    "suite_json_schema": "audit.suite",
    "SuiteRun": "audit.runner",
    "AuditSession": "audit.runner",
    "AuditReport": "audit.results",
    "CheckResult": "audit.results",
    "Measurement": "audit.results",
    "Estimate": "audit.results",
    "GateResult": "audit.results",
    "Status": "audit.results",
    "Provenance": "audit.results",
    "format_check": "audit.report.terminal",
    "read_report": "audit.report.jsonio",
    "render_html": "audit.report.html",
    "compare": "audit.comparison",
    "Comparison": "audit.comparison",
}
__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    if name in _EXPORTS:
        return getattr(importlib.import_module(_EXPORTS[name]), name)
    raise AttributeError(f"module 'audit' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted([*globals(), *__all__])
