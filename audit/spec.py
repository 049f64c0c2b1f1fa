"""The suite's objects: frozen, validated specifications of data, models, checks and gates.

They are built by the parser (:mod:`audit.suite`) or in code, and read by everything else.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from audit.errors import SuiteError, did_you_mean, display_path

__all__ = ["DTYPES", "TABLES", "TABLE_ROWS", "DataSpec", "ModelSpec", "Settings", "GateSpec", "CheckSpec",
           "Suite"]


DTYPES = ("string", "integer", "float", "boolean")  # the column types data.dtypes may declare
MODEL_TIMEOUT = 300.0  # default settings.model_timeout: seconds a model may take per call
TABLES = ("eval", "train", "holdout", "teacher_train")  # the tables a suite can name
TABLE_ROWS = {"eval": "the rows the audit is judged on",  # what each table's rows are
              "train": "the rows the student was trained on",
              "holdout": "rows neither model was trained on",
              "teacher_train": "the rows the teacher was trained on"}


@dataclass(frozen=True)
class DataSpec:
    """Where the data is and how to read it."""

    eval: Path
    target: str
    train: Path | None = None
    holdout: Path | None = None  # non-members for membership inference (default: eval)
    teacher_train: Path | None = None  # the teacher's members, when not data.train
    features: tuple[str, ...] | None = None
    sensitive: tuple[str, ...] = ()
    positive: str | int | None = None
    missing_sensitive: str = "error"  # or "group": missing values form their own group
    categorical: tuple[str, ...] = ()  # columns read as text, however they look
    dtypes: tuple[tuple[str, str], ...] = ()  # (column, one of DTYPES) as the suite declares

    def declared_types(self) -> dict[str, str]:
        """Every declared column type, ``data.categorical`` as ``string``."""
        return {**{c: "string" for c in self.categorical}, **dict(self.dtypes)}


@dataclass(frozen=True)
class ModelSpec:
    """How to load one model. ``kind`` is one of ``MODEL_KINDS``."""

    kind: str
    path: Path | None = None
    target: str | None = None  # module:function for callables
    classes: tuple[Any, ...] | None = None
    columns: tuple[str, ...] | None = None
    trusted_types: tuple[str, ...] = ()
    trust: bool = False
    base_dir: Path | None = None  # where a callable's module is looked up first
    output: str | None = None  # torch: "logits" (None: the default) or "probabilities"
    timeout: float = MODEL_TIMEOUT  # settings.model_timeout: seconds per load or predict call

    @property
    def label(self) -> str:
        return f"{self.kind}:{display_path(self.path) if self.path is not None else self.target}"


@dataclass(frozen=True)
class Settings:
    """Statistical settings of a suite."""

    seed: int = 0
    confidence: float = 0.95
    bootstrap: int = 1000
    inconclusive: str = "fail"
    model_timeout: float = MODEL_TIMEOUT  # seconds a model may take to load or answer one call


@dataclass(frozen=True)
class GateSpec:
    """Bounds a check must satisfy. ``None`` means the bound is not set."""

    min: float | None = None
    max: float | None = None
    max_regression: float | None = None
    max_relative_regression: float | None = None
    severity: str = "block"

    def bounds(self) -> list[tuple[str, float]]:
        """The set bounds as ``(kind, threshold)`` pairs, in a fixed order."""
        names = ("min", "max", "max_regression", "max_relative_regression")
        return [(n, getattr(self, n)) for n in names if getattr(self, n) is not None]


@dataclass(frozen=True)
class CheckSpec:
    """One check: a metric, its parameters and its gate, with where it was written."""

    name: str
    metric: str
    params: Mapping[str, Any] = field(default_factory=dict)
    gate: GateSpec | None = None
    description: str = ""
    file: Path | None = None
    line: int | None = None

    def where(self) -> str:
        """``file:line`` of the check, for messages."""
        return f"{display_path(self.file)}:{self.line}" if self.line else display_path(self.file)


@dataclass(frozen=True)
class Suite:
    """A validated suite."""

    name: str
    path: Path | None
    data: DataSpec
    teacher: ModelSpec
    student: ModelSpec
    checks: tuple[CheckSpec, ...]
    settings: Settings = Settings()
    description: str = ""
    version: int = 1
    sha256: str = ""
    text: str = ""
    includes: tuple[tuple[str, str], ...] = ()  # (path, sha256) of included files

    def check(self, name: str) -> CheckSpec:
        """The check called ``name`` (SuiteError with did-you-mean if absent)."""
        for c in self.checks:
            if c.name == name:
                return c
        names = [c.name for c in self.checks]
        raise SuiteError(f"no check named {name!r}{did_you_mean(name, names)} "
                         f"(valid: {', '.join(names)})", file=self.path, key="checks")
