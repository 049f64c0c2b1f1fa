"""One exception hierarchy for distill-audit.

Configuration problems (a bad suite, bad data, a model that does not fit the data) subclass
:class:`ValueError` as well, so callers used to scikit-learn's habits can catch them as such.
A :class:`GateFailure` is not an error: it is the verdict of a check whose gate failed.
"""

from __future__ import annotations

import difflib
import functools
import os
from pathlib import Path

__all__ = [
    "AuditError",
    "SuiteError",
    "DataError",
    "ModelError",
    "GateFailure",
    "display_path",
    "did_you_mean",
]


def display_path(path: str | Path | None) -> str:
    """Return ``path`` relative to the working directory when it lies below it."""
    if path is None:
        return "<suite>"
    return _relative(str(path), os.getcwd())


@functools.lru_cache(maxsize=256)
def _relative(path: str, cwd: str) -> str:
    """Resolving a path reads the file system; models print it on every prediction."""
    try:
        return str(Path(path).resolve().relative_to(Path(cwd).resolve()))
    except ValueError:
        return str(Path(path))


def did_you_mean(name: str, choices: list[str]) -> str:
    """``"; did you mean 'x'?"`` for the closest choice, or ``""``.

    A different case or swapped letters (``gaet``, ``mcaro``) win over difflib's ratio, which
    scores ``mcaro`` closer to ``micro`` than to ``macro``.
    """
    folded = [c for c in choices if c.lower() == name.lower()]
    swapped = [c for c in choices if len(c) == len(name) and sorted(c.lower()) == sorted(name.lower())
               and sum(a != b for a, b in zip(c.lower(), name.lower())) == 2]
    close = folded or swapped or difflib.get_close_matches(name, choices, n=1, cutoff=0.6)
    return f"; did you mean {close[0]!r}?" if close else ""



class AuditError(Exception):
    """Base class of every error distill-audit raises on purpose."""


class SuiteError(AuditError, ValueError):
    """A suite file (or a suite built in code) is invalid.

    The message names the file, the line, the key path, the bad value and the fix::

        suites/x.audit.yaml:14 checks.acc.gate.max_regression=-0.01: must be >= 0; ...
    """

    def __init__(
        self,
        message: str,
        *,
        file: str | Path | None = None,
        line: int | None = None,
        key: str = "",
    ) -> None:
        self.file = None if file is None else str(file)
        self.line = line
        self.key = key
        self.problem = message
        where = display_path(file)
        if line is not None:
            where = f"{where}:{line}"
        if key and message.startswith("="):  # "key=value: problem"
            text = f"{where} {key}{message}"
        else:
            text = f"{where} {key}: {message}" if key else f"{where}: {message}"
        super().__init__(text)


class DataError(AuditError, ValueError):
    """An evaluation or training table cannot be used as the suite describes."""


class ModelError(AuditError, ValueError):
    """A model cannot be loaded, or its outputs do not fit the data."""


class GateFailure(AuditError):
    """Raised by a check whose blocking gate failed; carries the printable verdict."""

    def __init__(self, verdict: str) -> None:
        super().__init__(verdict)
        self.verdict = verdict
