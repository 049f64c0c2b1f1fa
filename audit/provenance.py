"""Provenance: what was audited, with what, where and when.

Hashes of models and data are full-content SHA-256 (computed where they are loaded); this module
adds library versions, the platform, the git commit and the command line.
"""

from __future__ import annotations

import platform
import subprocess
import sys
from datetime import UTC, datetime
from importlib import metadata
from pathlib import Path
from typing import Any

__all__ = ["versions", "git_state", "utc_now", "environment"]

_PACKAGES = ("distill-audit", "numpy", "pandas", "scipy", "scikit-learn", "skops", "onnxruntime",
             "onnx", "netcal", "torch", "fairlearn", "jsonschema", "pytest", "jinja2", "pyyaml")


def utc_now() -> str:
    """The current UTC time, ISO 8601 with seconds."""
    return datetime.now(UTC).replace(microsecond=0).isoformat()


def versions() -> dict[str, str | None]:
    """Installed versions of the packages the audit's numbers depend on."""
    out: dict[str, str | None] = {"python": platform.python_version()}
    for name in _PACKAGES:
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            out[name] = None
    return out


def git_state(directory: Path) -> dict[str, Any] | None:
    """Commit and dirty flag of the git repository holding ``directory``, if any."""
    def git(*args: str) -> str | None:
        try:
            done = subprocess.run(["git", *args], cwd=directory, capture_output=True, text=True,
                                  timeout=10, check=False)
        except (OSError, subprocess.SubprocessError):
            return None
        return done.stdout.strip() if done.returncode == 0 else None

    commit = git("rev-parse", "HEAD")
    if commit is None:
        return None
    status = git("status", "--porcelain", "--untracked-files=no")
    return {"commit": commit, "dirty": bool(status)}


def environment() -> dict[str, Any]:
    """Platform and invocation details."""
    return {"platform": platform.platform(), "machine": platform.machine(),
            "python_implementation": platform.python_implementation(),
            "command": " ".join(sys.argv)}
