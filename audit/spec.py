"""The suite's objects: frozen, validated specifications of data, models, checks and gates.

They are built by the parser (:mod:`audit.suite`) or in code, and read by everything else.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from audit.errors import SuiteError, did_you_mean, display_path

__all__ = ["DTYPES", "GATE_KINDS", "TABLES", "TEXTS", "TABLE_ROWS", "Binning", "ImageSpec", "DataSpec",
           "ModelSpec", "Settings", "GateSpec", "CheckSpec", "Suite"]


DTYPES = ("string", "integer", "float", "boolean")  # the column types data.dtypes may declare
# the bounds a gate can set, in the order they are judged and shown
GATE_KINDS = ("min", "max", "max_regression", "max_relative_regression", "max_baseline_regression")
MODEL_TIMEOUT = 300.0  # default settings.model_timeout: seconds a model may take per call
TABLES = ("eval", "train", "holdout", "teacher_train")  # the tables a suite can name
TEXTS = ("documents", "pairs")  # a language-model suite's other files (audit.data.documents)
TABLE_ROWS = {"eval": "the rows the audit is judged on",  # what each table's rows are
              "train": "the rows the student was trained on",
              "holdout": "rows neither model was trained on",
              "teacher_train": "the rows the teacher was trained on",
              "documents": "held-out documents, for token-level checks",
              "pairs": "minimal pairs of sentences, for stereotype checks"}


def edge_text(edge: float) -> str:
    """A bin edge as written in group names: ``25``, ``21.5``, ``-0.25`` (the shortest text that
    reads back as the same number)."""
    value = float(edge)
    return str(int(value)) if value.is_integer() and abs(value) < 1e15 else repr(value)


_NUMBER = r"[-+]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][-+]?\d+)?"


class Lines:
    """Where the entries of a list were written, ``(file, line)`` each, for messages.

    Not part of what a spec means: every ``Lines`` equals every other and shows as
    ``Lines()`` (it is no dataclass, so ``dataclasses.asdict`` keeps it whole), so moving a line
    of a suite changes neither a spec's equality nor a measurement's cache key."""

    __slots__ = ("at",)

    def __init__(self, at: tuple[tuple[Path | None, int | None], ...]) -> None:
        self.at = at

    def of(self, i: int) -> tuple[Path | None, int | None]:
        """``(file, line)`` of entry ``i`` (``(None, None)`` when unknown: a spec built in code)."""
        return self.at[i] if 0 <= i < len(self.at) else (None, None)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Lines)

    def __hash__(self) -> int:
        return 0

    def __repr__(self) -> str:
        return "Lines()"


@dataclass(frozen=True)
class Binning:
    """How a numeric sensitive column becomes groups (``data.sensitive: [{column: age, bins:
    [25, 40, 60]}]``): at fixed ``edges``, or at the eval table's ``quantiles`` (that many bins
    of about equal size). Edges ``e1 < ... < ek`` make ``k + 1`` half-open groups, named with the
    edges: ``age<25``, ``25<=age<40``, ``40<=age<60``, ``age>=60``; a value equal to an edge
    belongs to the bin it opens."""

    column: str
    edges: tuple[float, ...] = ()
    quantiles: int | None = None

    @staticmethod
    def labels(column: str, edges: tuple[float, ...]) -> list[str]:
        """The group names of the bins ``edges`` make, lowest first.

        >>> Binning.labels("age", (25.0, 40.0))
        ['age<25', '25<=age<40', 'age>=40']
        """
        text = [edge_text(e) for e in edges]
        inner = [f"{a}<={column}<{b}" for a, b in zip(text, text[1:])]
        return [f"{column}<{text[0]}", *inner, f"{column}>={text[-1]}"]

    @staticmethod
    def is_label(column: str, value: object) -> bool:
        """Whether ``value`` is the name of a bin of ``column`` (as :meth:`labels` writes it)."""
        if not isinstance(value, str):
            return False
        col = re.escape(column)
        return re.fullmatch(rf"{col}<{_NUMBER}|{_NUMBER}<={col}<{_NUMBER}|{col}>={_NUMBER}",
                            value) is not None


@dataclass(frozen=True)
class ImageSpec:
    """Where a suite's images are (``data.images``): one array file per table (``arrays``:
    ``(table, .npy/.npz path)`` pairs, rows aligned with the table's), or a ``column`` of each
    table holding image file paths relative to the table, read with Pillow, converted to
    ``channels`` (1: grey, 3: RGB; default: grey unless an image has colour) and resized to
    ``size`` (height, width; default: every image must have the first one's size)."""

    arrays: tuple[tuple[str, Path], ...] = ()
    column: str | None = None
    size: tuple[int, int] | None = None
    channels: int | None = None

    def array(self, role: str) -> Path | None:
        """The array file of table ``role``, if the suite names one."""
        return dict(self.arrays).get(role)


@dataclass(frozen=True)
class DataSpec:
    """Where the data is and how to read it. A suite's models take the feature columns, or
    the ``text`` column's strings, or the ``images`` (float32 ``(N, C, H, W)`` in [0, 1])."""

    eval: Path
    target: str
    train: Path | None = None
    holdout: Path | None = None  # non-members for membership inference (default: eval)
    teacher_train: Path | None = None  # the teacher's members, when not data.train
    features: tuple[str, ...] | None = None
    sensitive: tuple[str, ...] = ()  # column names, binned or not (what by: names)
    bins: tuple[Binning, ...] = ()  # the sensitive columns sliced by bins of their values
    positive: str | int | None = None
    missing_sensitive: str = "error"  # or "group": missing values form their own group
    categorical: tuple[str, ...] = ()  # columns read as text, however they look
    dtypes: tuple[tuple[str, str], ...] = ()  # (column, one of DTYPES) as the suite declares
    # where each data.sensitive entry was written, for messages only
    sensitive_at: Lines = field(default_factory=lambda: Lines(()))
    text: str | None = None  # the column of strings a text model reads
    images: ImageSpec | None = None  # the images an image model reads
    private: tuple[str, ...] = ()  # columns never exported (flip table, shown rows)
    # multiple-choice items (a .jsonl eval table): the field holding each item's choices and
    # the template of the context a language model scores them after (audit.data.items)
    choices: str | None = None
    context: str = "{context}"
    # a language-model suite's texts: held-out documents (token-level checks) and minimal pairs
    documents: Path | None = None
    pairs: Path | None = None
    options: str | None = None  # items whose context lists their options, lettered

    @property
    def modality(self) -> str:
        """What the models read: ``tabular`` (feature columns), ``text``, ``images`` or
        ``choices`` (multiple-choice items, scored by a language model)."""
        if self.choices is not None:
            return "choices"
        return "text" if self.text is not None else "images" if self.images is not None else (
            "tabular")

    @property
    def input_columns(self) -> tuple[str, ...]:
        """The columns that hold the models' inputs rather than features (text, image paths)."""
        column = self.text if self.text is not None else (
            self.images.column if self.images is not None else None)
        return () if column is None else (column,)

    def binning(self, column: str) -> Binning | None:
        """How ``column`` is binned, or ``None`` when its values are the groups."""
        return next((b for b in self.bins if b.column == column), None)

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
    tokenizer: Path | None = None  # the tokenizer folder of a text model (transformers: its own)
    max_length: int | None = None  # tokens per text (longer texts are truncated)
    batch_size: int | None = None  # rows per forward pass of a network
    device: str | None = None  # cpu (default) or cuda, for torch and transformers models
    # an image model's input normalisation, (x - mean) / std per channel, applied inside the
    # model (the attacks' eps stays in pixel units of [0, 1])
    mean: tuple[float, ...] | None = None
    std: tuple[float, ...] | None = None
    # a language model's choice scores: sum of log-likelihoods (acc) or per character (acc_norm)
    scoring: str = "sum"
    # kind "object": a fitted model held in memory (audit.compare); never from a suite file
    obj: Any = field(default=None, compare=False, repr=False, hash=False)

    @property
    def label(self) -> str:
        if self.kind == "object":
            return f"object:{type(self.obj).__name__}"
        return f"{self.kind}:{display_path(self.path) if self.path is not None else self.target}"


@dataclass(frozen=True)
class Settings:
    """Statistical settings of a suite."""

    seed: int = 0
    confidence: float = 0.95
    bootstrap: int = 1000
    inconclusive: str = "fail"
    model_timeout: float = MODEL_TIMEOUT  # seconds a model may take to load or answer one call
    engine: str = "memory"  # or "stream": the eval table batch by batch (audit.stream)
    batch_rows: int = 250_000  # rows per batch of a streamed run
    sample_rows: int = 100_000  # a streamed run's seeded uniform sample, for checks that need rows


@dataclass(frozen=True)
class GateSpec:
    """Bounds a check must satisfy. ``None`` means the bound is not set."""

    min: float | None = None
    max: float | None = None
    max_regression: float | None = None
    max_relative_regression: float | None = None
    severity: str = "block"
    # how much worse than the suite's baseline model the student may be (judged on the
    # student-vs-baseline measurement, see audit.runner)
    max_baseline_regression: float | None = None

    def bounds(self) -> list[tuple[str, float]]:
        """The set bounds as ``(kind, threshold)`` pairs, in a fixed order."""
        return [(n, getattr(self, n)) for n in GATE_KINDS if getattr(self, n) is not None]


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
    baseline: bool = True  # measured on the suite's baseline too (when it names one)

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
    # a third model (the one in production today, or the student trained without
    # distillation), measured on the same rows by every check that measures models
    baseline: ModelSpec | None = None
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
