"""The metric registry: every metric is declared once, with its direction.

Gates never guess signs: a metric says here whether higher or lower is better, which values
it can take, which parameters it accepts, and how its uncertainty is computed (see
:mod:`audit.stats`).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np

__all__ = ["Metric", "MetricInput", "register", "get_metric", "metric_names", "METRICS"]

Direction = Literal["higher", "lower"]


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
    # the suite run, for checks that must time the models or read whole tables (efficiency,
    # data); it offers model(role), eval_table and train_table()
    context: Any = None

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
    params : mapping
        Accepted parameters and their allowed values (``{"average": ("binary", ...)}``).
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
    params: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    interval: str = ""  # how an influence metric's interval is computed, in words
    # the data tables (besides eval) a check of this metric reads, given its parameters, each
    # with the key that chose it: the parser refuses a suite that does not name them
    tables: Callable[[Mapping[str, Any]], tuple[tuple[str, str], ...]] | None = None

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


def register(metric: Metric) -> Metric:
    """Add ``metric`` to the registry (names are unique)."""
    if metric.name in METRICS:
        raise ValueError(f"metric {metric.name!r} is already registered")
    METRICS[metric.name] = metric
    return metric


def _load_families() -> None:
    # Importing the family modules registers their metrics.
    from audit.checks import (  # noqa: F401
        calibration,
        dataset,
        efficiency,
        fairness,
        fidelity,
        performance,
        privacy,
        robustness,
        slices,
    )


def get_metric(name: str) -> Metric:
    """Return the registered metric called ``name`` (KeyError if unknown)."""
    _load_families()
    return METRICS[name]


def metric_names() -> list[str]:
    """All registered metric names, sorted."""
    _load_families()
    return sorted(METRICS)
