"""Reports: JSON (the record), HTML (rendered from the JSON alone) and terminal text."""

from __future__ import annotations

from audit.report.html import render_html
from audit.report.jsonio import read_report, report_to_json
from audit.report.writer import ReportPaths, write_report

__all__ = ["render_html", "read_report", "report_to_json", "write_report", "ReportPaths"]
