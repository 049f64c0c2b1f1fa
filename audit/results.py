"""Frozen result objects and their JSON form: the reports' only input.

Every object has ``to_dict`` and ``from_dict``; ``from_dict(to_dict(x)) == x``. Non-finite
numbers (an undefined metric) are written as ``null``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

__all__ = [
    "Status",
    "STATUSES",
    "Estimate",
    "Figure",
    "Table",
    "Provenance",
    "Measurement",
    "GateResult",
    "CheckResult",
    "AuditReport",
    "SCHEMA_VERSION",
    "combine_statuses",
]

SCHEMA_VERSION = "1.0"
SIGNOFF_FIELDS = ("reviewer", "role", "date", "decision")


class Status(StrEnum):
    """A verdict: of one bound (pass, fail, inconclusive), of a check (also warn, error, and
    info for a check with no gate: measured, not judged) or of a whole suite.

    A ``str`` enum: ``Status.PASS == "pass"`` and it serialises to ``"pass"`` in JSON.
    """

    PASS = "pass"
    INFO = "info"
    WARN = "warn"
    INCONCLUSIVE = "inconclusive"
    ERROR = "error"
    FAIL = "fail"

    @property
    def blocking(self) -> bool:
        """True for the states that block a release (fail, error, inconclusive)."""
        return self in (Status.FAIL, Status.ERROR, Status.INCONCLUSIVE)

    @property
    def severity(self) -> int:
        """Rank for combining: pass = info < warn < inconclusive < error < fail."""
        return _PRECEDENCE[self]


# the report's order of states (the JSON's "counts" keys)
STATUSES = tuple(Status)
_PRECEDENCE = {"pass": 0, "info": 0, "warn": 1, "inconclusive": 2, "error": 3, "fail": 4}


def combine_statuses(statuses: list[str]) -> Status:
    """The overall verdict: the most severe status (fail > error > inconclusive > warn > pass)."""
    if not statuses:
        return Status.ERROR
    worst = max(map(Status, statuses), key=lambda s: s.severity)
    return Status.PASS if worst is Status.INFO else worst


def format_value(x: float | None, signed: bool = False) -> str:
    """Three decimals for values of ordinary size, four significant digits otherwise."""
    if x is None or not math.isfinite(x):
        return "undefined"
    if x != 0 and (abs(x) >= 1000 or abs(x) < 0.001):
        return f"{x:+.4g}" if signed else f"{x:.4g}"
    return f"{x:+.3f}" if signed else f"{x:.3f}"


def _num(x: float | None) -> float | None:
    return None if x is None or not math.isfinite(x) else float(x)


def _plain(x: Any) -> Any:
    """JSON-safe copy of nested plain data: non-finite floats become None."""
    if isinstance(x, dict):
        return {str(k): _plain(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [_plain(v) for v in x]
    if isinstance(x, float):
        return _num(x)
    if hasattr(x, "item") and not isinstance(x, (str, bytes)):  # numpy scalars
        return _plain(x.item())
    return x


def _unnum(x: float | None) -> float:
    return float("nan") if x is None else float(x)


@dataclass(frozen=True)
class Estimate:
    """A value with its confidence interval (``ci`` is ``None`` when it cannot be computed)."""

    value: float
    ci: tuple[float, float] | None = None

    def to_dict(self) -> dict[str, Any]:
        return {"value": _num(self.value),
                "ci": None if self.ci is None else [_num(self.ci[0]), _num(self.ci[1])]}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Estimate:
        ci = d.get("ci")
        return cls(_unnum(d["value"]), None if ci is None else (_unnum(ci[0]), _unnum(ci[1])))

    def __eq__(self, other: object) -> bool:  # NaN-aware, so JSON round trips compare equal
        return isinstance(other, Estimate) and self.to_dict() == other.to_dict()

    def __hash__(self) -> int:
        return hash(repr(self.to_dict()))


def _est(d: dict[str, Any] | None) -> Estimate | None:
    return None if d is None else Estimate.from_dict(d)


def format_estimate(e: Estimate | None, signed: bool = False) -> str:
    """``0.712 [0.689, 0.735]``."""
    if e is None:
        return "n/a"
    text = format_value(e.value, signed)
    if e.ci is not None and math.isfinite(e.value):
        text += f" [{format_value(e.ci[0], signed)}, {format_value(e.ci[1], signed)}]"
    return text


Cell = str | int | float | bool | Estimate | list[Any] | None


@dataclass(frozen=True)
class Figure:
    """A plot of a report section, as data; the renderers draw every ``kind`` generically.

    Kinds and the ``data`` rows each takes (teacher and student side by side in all):

    * ``reliability``: ``{"model", "confidence", "accuracy", "count"}`` per bin,
    * ``bars``: ``{"group", "n", "included", "teacher": {value: v, value_ci: [lo, hi]},
      "student": {...}}`` per group, ``value`` naming the bar's key,
    * ``log_bars``: ``{"model", "batch", "p50_ms"}`` (``value`` names the key drawn),
    * ``roc``: ``{"model", "fpr", "tpr"}`` (points, or lists of points),
    * ``curve``: ``{"x", "teacher": (v, lo, hi) | None, "student": ...}`` per point.
    """

    kind: str
    title: str
    data: tuple[Any, ...] = ()
    value: str = ""  # the key a bar chart draws
    x_label: str = ""
    y_label: str = ""


@dataclass(frozen=True)
class Table:
    """A table of a report section, as data: cells are raw values (an :class:`Estimate` is
    printed with its interval), formatted by the renderer.

    ``spans`` is an optional header row above ``columns``: ``(label, columns it spans)``.
    """

    title: str
    columns: tuple[str, ...]
    rows: tuple[tuple[Cell, ...], ...]
    spans: tuple[tuple[str, int], ...] = ()
    open: bool = False  # shown unfolded in the HTML

    @classmethod
    def of_rows(cls, rows: Any, kind: str, title: str, columns: tuple[str, ...],
                open: bool = False) -> Table | None:
        """The breakdown rows of ``kind`` as a table of ``columns`` (``None`` if there are none);
        underscores in column names become spaces."""
        picked = [r for r in rows if r.get("kind") == kind]
        if not picked:
            return None
        return cls(title, tuple(c.replace("_", " ") for c in columns),
                   tuple(tuple(r.get(c) for c in columns) for r in picked), open=open)


@dataclass(frozen=True)
class Measurement:
    """One metric measured on both models.

    ``regression`` is oriented so that positive means the student is worse than the teacher,
    whatever the metric's direction; ``relative_regression`` divides it by ``|teacher|``.
    Pairwise (fidelity) metrics have only ``student`` (the value of the pair).
    """

    metric: str
    direction: str
    student: Estimate
    teacher: Estimate | None = None
    regression: Estimate | None = None
    relative_regression: Estimate | None = None
    method: str = ""
    n: int = 0
    params: dict[str, Any] = field(default_factory=dict)
    notes: tuple[str, ...] = ()
    # plain-data detail for reports: reliability bins, per-group rows, ... (JSON values only)
    breakdown: tuple[dict[str, Any], ...] = ()
    extra: dict[str, Any] = field(default_factory=dict)  # e.g. recalibration advice
    family: str = ""  # performance, fidelity, calibration, fairness, ... (the report's sections)
    # what the numbers rest on, for the gates' minimum-evidence rule (audit.gates): the
    # confidence, what n counts ("unit"), and for proportions the trials behind the student's
    # value ("trials"), behind a paired difference ("paired") and its discordant rows
    evidence: dict[str, Any] = field(default_factory=dict)

    @property
    def scope(self) -> str:
        """Which slice of the data this measurement covers ("" for all rows)."""
        by = self.params.get("by")
        if isinstance(by, str):
            return f"by {by}"
        if self.params.get("corruption") is not None:
            return f"{self.params['corruption']} severity {self.params.get('severity')}"
        if self.params.get("budget") is not None:
            budget = self.params["budget"]
            return f"{budget} edit{'s' if budget != 1 else ''}"
        if self.params.get("queries") is not None:
            return f"{self.params['queries']} queries"
        batch = self.params.get("batch")
        if self.params.get("eps") is not None:
            return f"eps {self.params['eps']:g}"
        return f"batch {batch}" if batch is not None else ""

    def to_dict(self) -> dict[str, Any]:
        return {
            "metric": self.metric,
            "direction": self.direction,
            "teacher": None if self.teacher is None else self.teacher.to_dict(),
            "student": self.student.to_dict(),
            "regression": None if self.regression is None else self.regression.to_dict(),
            "relative_regression": (None if self.relative_regression is None
                                    else self.relative_regression.to_dict()),
            "method": self.method,
            "n": self.n,
            "params": _plain(dict(self.params)),
            "notes": list(self.notes),
            "breakdown": [_plain(row) for row in self.breakdown],
            "extra": _plain(self.extra),
            "family": self.family,
            "evidence": _plain(self.evidence),
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Measurement:
        student = _est(d["student"])
        assert student is not None
        return cls(metric=d["metric"], direction=d["direction"], student=student,
                   teacher=_est(d.get("teacher")), regression=_est(d.get("regression")),
                   relative_regression=_est(d.get("relative_regression")),
                   method=d.get("method", ""), n=int(d.get("n", 0)), params=dict(d.get("params", {})),
                   notes=tuple(d.get("notes", ())),
                   breakdown=tuple(dict(r) for r in d.get("breakdown", ())),
                   extra=dict(d.get("extra", {})), family=d.get("family", ""),
                   evidence=dict(d.get("evidence") or {}))


@dataclass(frozen=True)
class GateResult:
    """One bound of a gate, judged: ``status`` is pass, fail or inconclusive."""

    kind: str  # one of audit.spec.GATE_KINDS
    threshold: float
    status: Status
    severity: str
    description: str
    observed: Estimate | None = None
    reason: str = ""
    scope: str = ""  # which measurement of the check it judged, e.g. "by colour"
    # undecided bounds: the tightest threshold this run decides, and the rows that would
    # decide this one (audit.gates.what_it_decides)
    decidable: float | None = None
    rows_needed: int | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "status", Status(self.status))

    def to_dict(self) -> dict[str, Any]:
        d = {"kind": self.kind, "threshold": self.threshold, "status": self.status.value,
             "severity": self.severity, "description": self.description,
             "observed": None if self.observed is None else self.observed.to_dict(),
             "reason": self.reason, "scope": self.scope}
        if self.decidable is not None:
            d.update(decidable=self.decidable, rows_needed=self.rows_needed)
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> GateResult:
        return cls(kind=d["kind"], threshold=float(d["threshold"]), status=d["status"],
                   severity=d["severity"], description=d["description"],
                   observed=_est(d.get("observed")), reason=d.get("reason", ""),
                   scope=d.get("scope", ""), decidable=d.get("decidable"),
                   rows_needed=d.get("rows_needed"))


@dataclass(frozen=True)
class CheckResult:
    """The outcome of one check: its measurements, its judged gates and its status."""

    name: str
    status: Status
    measurements: tuple[Measurement, ...] = ()
    gates: tuple[GateResult, ...] = ()
    error: str | None = None
    source: str = "suite"  # "suite" (YAML) or "python" (ad-hoc test)
    location: str = ""  # file:line of the check or the test
    description: str = ""
    details: dict[str, Any] = field(default_factory=dict)
    # with a suite baseline: the check measured with the baseline as the student (its values
    # beside the teacher's) and with the baseline as the teacher (the student's regression
    # from it, which max_baseline_regression judges); empty without one
    baseline: tuple[Measurement, ...] = ()
    versus_baseline: tuple[Measurement, ...] = ()

    def __post_init__(self) -> None:
        object.__setattr__(self, "status", Status(self.status))

    def to_dict(self) -> dict[str, Any]:
        d = {"name": self.name, "status": self.status.value,
             "measurements": [m.to_dict() for m in self.measurements],
             "gates": [g.to_dict() for g in self.gates], "error": self.error,
             "source": self.source, "location": self.location,
             "description": self.description, "details": dict(self.details)}
        if self.baseline or self.versus_baseline:
            d.update(baseline=[m.to_dict() for m in self.baseline],
                     versus_baseline=[m.to_dict() for m in self.versus_baseline])
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> CheckResult:
        return cls(name=d["name"], status=d["status"],
                   measurements=tuple(Measurement.from_dict(m) for m in d.get("measurements", ())),
                   gates=tuple(GateResult.from_dict(g) for g in d.get("gates", ())),
                   error=d.get("error"), source=d.get("source", "suite"),
                   location=d.get("location", ""), description=d.get("description", ""),
                   details=dict(d.get("details", {})),
                   baseline=tuple(Measurement.from_dict(m) for m in d.get("baseline", ())),
                   versus_baseline=tuple(Measurement.from_dict(m)
                                         for m in d.get("versus_baseline", ())))

    @property
    def passed(self) -> bool:
        """True unless the check blocks a release (fail, error or blocking inconclusive)."""
        return not self.status.blocking


_PROVENANCE_KEYS = ("teacher", "student", "data", "predictions", "cache", "seed", "versions",
                    "environment", "git", "created", "finished", "warnings")


@dataclass(frozen=True)
class Provenance:
    """What was audited, with what, where and when (the report's ``provenance`` block).

    ``teacher``/``student`` hold each model's kind, path, SHA-256 and size; ``data`` each
    table's path, SHA-256 and rows; ``predictions``/``cache`` where predictions came from and
    how cached ones were checked; then the seed, library ``versions``, the ``environment``
    (platform, command line), the ``git`` commit, the run's ``created``/``finished`` times and
    its ``warnings``. ``keys`` records which of them the record has, so the JSON keeps exactly
    the keys it was read with (``git`` is ``None`` outside a repository, but still written);
    keys this version does not know are kept in ``other``.
    """

    teacher: dict[str, Any] = field(default_factory=dict)
    student: dict[str, Any] = field(default_factory=dict)
    data: dict[str, Any] = field(default_factory=dict)
    predictions: dict[str, Any] | None = None
    cache: dict[str, Any] | None = None
    seed: int | None = None
    versions: dict[str, str | None] = field(default_factory=dict)
    environment: dict[str, Any] = field(default_factory=dict)
    git: dict[str, Any] | None = None
    created: str = ""
    finished: str = ""
    warnings: tuple[str, ...] = ()
    other: dict[str, Any] = field(default_factory=dict)
    keys: frozenset[str] = frozenset(_PROVENANCE_KEYS)

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for k in _PROVENANCE_KEYS:
            if k in self.keys:
                v = getattr(self, k)
                out[k] = list(v) if k == "warnings" else v
        return {**out, **self.other}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Provenance:
        known = {k: v for k, v in d.items() if k in _PROVENANCE_KEYS}
        if "warnings" in known:
            known["warnings"] = tuple(known["warnings"] or ())
        return cls(**known, other={k: v for k, v in d.items() if k not in _PROVENANCE_KEYS},
                   keys=frozenset(d))

    # read access by key, as the plain dict it replaces offered (``prov["data"]``)
    def __getitem__(self, key: str) -> Any:
        if key not in self.keys:
            raise KeyError(key)
        return self.to_dict()[key]

    def get(self, key: str, default: Any = None) -> Any:
        return self.to_dict().get(key, default)

    def __contains__(self, key: object) -> bool:
        return key in self.keys


@dataclass(frozen=True)
class AuditReport:
    """Everything one suite run produced; the JSON report is ``to_dict()`` of this."""

    suite: dict[str, Any]
    verdict: Status
    checks: tuple[CheckResult, ...]
    provenance: Provenance
    schema_version: str = SCHEMA_VERSION
    # filled by a reviewer (reviewer, role, date, decision); empty when the run writes it
    signoff: dict[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        object.__setattr__(self, "verdict", Status(self.verdict))
        if not isinstance(self.provenance, Provenance):  # a plain dict, e.g. built by hand
            object.__setattr__(self, "provenance", Provenance.from_dict(dict(self.provenance)))

    @property
    def counts(self) -> dict[Status, int]:
        """How many checks ended in each state, every state listed (in :data:`STATUSES` order)."""
        counts = dict.fromkeys(STATUSES, 0)
        for c in self.checks:
            counts[c.status] += 1
        return counts

    def to_dict(self) -> dict[str, Any]:
        return {"schema_version": self.schema_version, "suite": dict(self.suite),
                "verdict": self.verdict.value,
                "counts": {s.value: n for s, n in self.counts.items()},
                "checks": [c.to_dict() for c in self.checks],
                "provenance": self.provenance.to_dict(),
                "signoff": {k: str(self.signoff.get(k, "")) for k in SIGNOFF_FIELDS}}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> AuditReport:
        major = str(d.get("schema_version", "")).split(".")[0]
        if major != SCHEMA_VERSION.split(".")[0]:
            raise ValueError(f"report schema_version {d.get('schema_version')!r} is not supported "
                             f"(this distill-audit reads {SCHEMA_VERSION})")
        return cls(suite=dict(d["suite"]), verdict=d["verdict"],
                   checks=tuple(CheckResult.from_dict(c) for c in d["checks"]),
                   provenance=Provenance.from_dict(dict(d["provenance"])),
                   schema_version=d["schema_version"],
                   signoff={k: str(v) for k, v in (d.get("signoff") or {}).items() if v})
