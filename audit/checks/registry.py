"""The metric registry: every metric is declared once, with its direction and parameters.

Gates never guess signs: a metric says here whether higher or lower is better, which values
it can take, which parameters it accepts (each a :class:`Param`: kind, default, choices,
range, doc), and how its uncertainty is computed (see :mod:`audit.stats`). The suite parser,
the suite's JSON Schema and the README's metric tables are all generated from these
declarations.

This module is a leaf: it imports no family module. Families import it and call
:func:`register`; :mod:`audit.checks.catalogue` is what imports the families (and installs
itself as a loader with :func:`add_loader`, so :func:`get_metric` and :func:`metric_names` see
every metric once the catalogue has been imported).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np

__all__ = ["Direction", "Metric", "MetricInput", "Param", "yaml_text", "register", "add_loader", "get_metric",
           "metric_names", "METRICS", "Family", "register_family", "families", "FAMILIES"]

Direction = Literal["higher", "lower"]
# the suite field kinds a parameter may have (see audit.fields.Field)
ParamKind = Literal["str", "int", "number", "bool", "str_list", "int_list", "number_list"]
_RANGE_KEYS = (("minimum", "minimum"), ("maximum", "maximum"),
               ("exclusive_minimum", "exclusiveMinimum"), ("exclusive_maximum", "exclusiveMaximum"))


@dataclass(frozen=True)
class Param:
    """One parameter a metric accepts, declared next to the code that reads it.

    Attributes
    ----------
    kind : str
        The suite field kind: ``str``, ``int``, ``number``, ``bool``, ``str_list``,
        ``int_list`` or ``number_list``.
    doc : str
        What it sets, in words (shown in the JSON Schema and the README).
    default : object
        The value the metric uses when the suite does not set it (``None``: it depends on the
        data or on other parameters; the doc says how). Documentation only: the parser never
        fills it in, the metric applies it.
    choices : tuple
        The values allowed, if they are a closed set.
    minimum, maximum, exclusive_minimum, exclusive_maximum : float
        The range of the value (of each item, for list kinds), as in JSON Schema.

    Examples
    --------
    >>> Param("int", "Number of bins.", default=15, minimum=2).range
    {'minimum': 2}
    """

    kind: ParamKind
    doc: str
    default: Any = None
    choices: tuple[Any, ...] = ()
    minimum: float | None = None
    maximum: float | None = None
    exclusive_minimum: float | None = None
    exclusive_maximum: float | None = None
    # the values allowed on suites of one modality, when narrower than ``choices``:
    # ((modality, values), ...); the parser offers these
    modality_choices: tuple[tuple[str, tuple[Any, ...]], ...] = ()

    def choices_for(self, modality: str | None) -> tuple[Any, ...]:
        """The values allowed on a suite whose models read ``modality``."""
        return dict(self.modality_choices).get(modality, self.choices) if modality else (
            self.choices)

    @property
    def range(self) -> dict[str, float]:
        """The bounds as JSON Schema keywords (``{"minimum": 2, ...}``), for the parser and
        the schema."""
        return {key: getattr(self, attr) for attr, key in _RANGE_KEYS
                if getattr(self, attr) is not None}

    @property
    def default_text(self) -> str | None:
        """The default as a suite would write it (``15``, ``[1, 32, 1024]``, ``true``), or
        ``None`` when there is no fixed default."""
        return None if self.default is None else yaml_text(self.default)


def yaml_text(value: Any) -> str:
    """A parameter value as a suite writes it: ``15``, ``[0.05, 0.1]``, ``true``, ``inf``.

    >>> yaml_text((1, 32, 1024)), yaml_text(True), yaml_text(30.0)
    ('[1, 32, 1024]', 'true', '30')
    """
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, (tuple, list)):
        return "[" + ", ".join(yaml_text(v) for v in value) + "]"
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


@dataclass(frozen=True)
class MetricInput:
    """What a metric may read: encoded labels and the models' class probabilities.

    ``y`` holds class indices ``0..k-1``; ``pos`` is the index of the positive class for
    binary problems (``None`` for multiclass).
    """

    y: np.ndarray
    p_teacher: np.ndarray
    p_student: np.ndarray
    classes: tuple[Any, ...]
    pos: int | None
    sensitive: Any = None  # a DataFrame of the sensitive columns, row-aligned with y
    # the artifacts the metric declared in Metric.needs, keyed by kind, built by the probes
    # (audit.probes): timings, data tables, adversarial examples, membership samples
    artifacts: Mapping[str, Any] = field(default_factory=dict)

    @property
    def k(self) -> int:
        return len(self.classes)

    @property
    def n(self) -> int:
        return int(self.y.shape[0])


# counts metrics (per model): f(C, k, pos, params) with C[..., true, pred] -> values[...]
CountsFn = Callable[[np.ndarray, int, "int | None", Mapping[str, Any]], np.ndarray]
# counts metrics (pairwise): f(J, k) with J[..., true, teacher_pred, student_pred] -> values[...]
JointFn = Callable[[np.ndarray, int], np.ndarray]
# influence metrics (per model): f(y, P, pos, params) -> (value, per-row influence)
InfluenceFn = Callable[[np.ndarray, np.ndarray, "int | None", Mapping[str, Any]], tuple[float, np.ndarray]]
# influence metrics (pairwise): f(y, P_teacher, P_student) -> (value, per-row influence)
PairInfluenceFn = Callable[[np.ndarray, np.ndarray, np.ndarray], tuple[float, np.ndarray]]
# mean metrics' per-row values: f(y, P, pos, params) per model, f(y, P_teacher, P_student) a pair
RowsFn = Callable[[np.ndarray, np.ndarray, "int | None", Mapping[str, Any]], np.ndarray]
PairRowsFn = Callable[[np.ndarray, np.ndarray, np.ndarray], np.ndarray]
# a family's own engine: f(metric, params, inputs, resampler, confidence) -> measurements
CustomFn = Callable[..., tuple[Any, ...]]


@dataclass(frozen=True)
class Metric:
    """A registered metric.

    Attributes
    ----------
    name : str
        The name used in suites (``metric: accuracy``).
    direction : {"higher", "lower"}
        Which way is better.
    family : str
        ``performance`` (per model, teacher vs student) or ``fidelity`` (student to teacher).
    pairwise : bool
        True when the metric compares the two models, so it has one value and no regression.
    bounds : tuple of float
        The range the metric can take, used to reject impossible thresholds.
    params : mapping of str to Param
        The parameters a check of this metric may set (``{"average": Param("str", ...)}``).
    """

    name: str
    direction: Direction
    family: str
    pairwise: bool
    bounds: tuple[float, float]
    doc: str
    counts: CountsFn | None = None
    joint: JointFn | None = None
    influence: InfluenceFn | None = None
    pair_influence: PairInfluenceFn | None = None
    custom: CustomFn | None = None
    # a mean of per-row values (log loss, Brier, KL, JS): the values, f(y, P, pos, params) per
    # model or f(y, P_teacher, P_student) for a pair; the streaming engine (audit.stream) sums
    # them batch by batch, the in-memory engine uses ``influence`` (the same mean)
    rows: RowsFn | None = None
    pair_rows: PairRowsFn | None = None
    params: Mapping[str, Param] = field(default_factory=dict)
    interval: str = ""  # how an influence metric's interval is computed, in words
    # the data tables (besides eval) a check of this metric reads, given its parameters, each
    # with the key that chose it: the parser refuses a suite that does not name them
    tables: Callable[[Mapping[str, Any]], tuple[tuple[str, str], ...]] | None = None
    # the artifacts a check of this metric needs beyond the eval predictions, given its
    # parameters: audit.probes.artifacts.ArtifactRequest values; the runner has the probes
    # build them and passes them in MetricInput.artifacts (keyed by kind)
    needs: Callable[[Mapping[str, Any]], tuple[Any, ...]] | None = None
    # a pairwise metric's value when the student is its teacher (agreement 1, divergence 0):
    # the registry-wide property tests check it; None for per-model metrics
    identical: float | None = None
    # what the suite's models must read for this metric to apply (tabular, text, images): the
    # parser refuses it on other suites
    modalities: tuple[str, ...] = ("tabular", "text", "images", "choices")

    @property
    def engine(self) -> Literal["counts", "influence", "custom"]:
        if self.custom is not None:
            return "custom"
        return "counts" if (self.counts or self.joint) else "influence"

    @property
    def sign(self) -> float:
        """+1 if higher is better, -1 if lower is better."""
        return 1.0 if self.direction == "higher" else -1.0


METRICS: dict[str, Metric] = {}
# what fills the registry on first lookup (the catalogue adds itself when it is imported)
_LOADERS: list[Callable[[], object]] = []


def register(metric: Metric) -> Metric:
    """Add ``metric`` to the registry (names are unique)."""
    if metric.name in METRICS:
        raise ValueError(f"metric {metric.name!r} is already registered")
    METRICS[metric.name] = metric
    return metric


def add_loader(loader: Callable[[], object]) -> None:
    """Have :func:`get_metric` and :func:`metric_names` call ``loader`` before they look.

    The registry names no family itself: a catalogue (:mod:`audit.checks.catalogue`) adds a
    loader that imports the families it lists; a loader must be idempotent.
    """
    if loader not in _LOADERS:
        _LOADERS.append(loader)


def _load() -> None:
    for loader in _LOADERS:
        loader()


def get_metric(name: str) -> Metric:
    """Return the registered metric called ``name`` (KeyError if unknown)."""
    _load()
    return METRICS[name]


def metric_names() -> list[str]:
    """All registered metric names, sorted."""
    _load()
    return sorted(METRICS)


def _nothing(_: Any) -> tuple[Any, ...]:
    return ()


@dataclass(frozen=True)
class Family:
    """A check family's report section, declared next to its metrics.

    The renderers (:mod:`audit.report`) know no family by name: they draw each section from
    this declaration, so a new family renders without touching them. The builders read a
    measurement as the JSON report holds it (its ``breakdown`` rows, ``params``, ``extra``),
    so the HTML can always be re-rendered from the JSON alone.

    Attributes
    ----------
    name : str
        The name the family's measurements carry (``Measurement.family``).
    title : str
        The section's heading in the HTML report.
    order : int
        Where the section goes (lower first).
    figures, tables, notes : callable
        ``Measurement -> tuple`` of :class:`audit.results.Figure`, :class:`audit.results.Table`
        and sentences (advice) shown with that measurement.
    check_figures : callable
        ``CheckResult -> tuple`` of figures across a check's measurements (a curve per budget).
    explain : callable or None
        ``(Measurement, kind, threshold) -> str | None``: what the family can add to an
        undecided bound's reason (fairness: the group that limits it and the rows it needs).
    """

    name: str
    title: str
    order: int
    figures: Callable[[Any], tuple[Any, ...]] = _nothing
    tables: Callable[[Any], tuple[Any, ...]] = _nothing
    notes: Callable[[Any], tuple[str, ...]] = _nothing
    check_figures: Callable[[Any], tuple[Any, ...]] = _nothing
    explain: Callable[[Any, str, float], str | None] | None = None


FAMILIES: dict[str, Family] = {}


def register_family(family: Family) -> Family:
    """Add ``family``'s report section (names are unique)."""
    if family.name in FAMILIES:
        raise ValueError(f"family {family.name!r} is already registered")
    FAMILIES[family.name] = family
    return family


def families() -> list[Family]:
    """Every registered family, in report order."""
    _load()
    return sorted(FAMILIES.values(), key=lambda f: (f.order, f.name))
