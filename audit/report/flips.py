"""The flip table beside the report: ``<report>.flips.csv`` (or ``.parquet``), from the JSON.

The fidelity checks carry the table in their measurement (``extra["flips"]``: the rows where
the models disagree, worst first, capped, private columns left out; see
:mod:`audit.probes.flips`); this module only writes it out, so the file is a pure function of
the JSON report like the HTML.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

__all__ = ["flips_of", "write_flips"]


def flips_of(report: dict[str, Any]) -> dict[str, Any] | None:
    """The flip table a report carries (the largest, if several checks carry one)."""
    found = [m["extra"]["flips"] for c in report.get("checks", [])
             for m in c.get("measurements", []) if (m.get("extra") or {}).get("flips")]
    return max(found, key=lambda f: len(f.get("rows", ())), default=None)


def write_flips(report: dict[str, Any], path: Path) -> Path | None:
    """Write the report's flip table to ``path`` (``.parquet``: Parquet, else CSV); ``None``
    when the report carries none."""
    import pandas as pd

    from audit.report.writer import atomic_write_bytes

    flips = flips_of(report)
    if flips is None:
        return None
    frame = pd.DataFrame(flips["rows"], columns=flips["columns"])
    if path.suffix.lower() in (".parquet", ".pq"):
        import io

        buffer = io.BytesIO()
        frame.to_parquet(buffer, index=False)
        atomic_write_bytes(path, buffer.getvalue())
    else:
        atomic_write_bytes(path, frame.to_csv(index=False, lineterminator="\n").encode("utf-8"))
    return path
