"""Fidelity of the student to its teacher: top-1 agreement, flips, KL and JS divergence.

These metrics compare the two models, so each has a single value (no teacher value and no
regression). Agreement and flips are functions of the joint count table
``J[..., true, teacher_pred, student_pred]``; KL and JS are means of per-row divergences of the
output distributions, in nats.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from audit.checks.performance import CLT_INTERVAL, mean_with_influence
from audit.checks.registry import Family, Metric, Param, register, register_family
from audit.probes.artifacts import ArtifactRequest
from audit.results import Table

__all__: list[str] = []


def _total(J: np.ndarray) -> np.ndarray:
    return J.sum(axis=(-3, -2, -1)).astype(np.float64)


def _agreement(J: np.ndarray, k: int) -> np.ndarray:
    same = np.diagonal(J, axis1=-2, axis2=-1).sum(axis=(-2, -1))
    return same / _total(J)


def _flips(negative: bool):
    def fn(J: np.ndarray, k: int) -> np.ndarray:
        idx = np.arange(k)
        # teacher_right[y, t] and student_right[y, s] masks over the (k, k, k) cells
        t_right = (idx[:, None, None] == idx[None, :, None])
        s_right = (idx[:, None, None] == idx[None, None, :])
        mask = (t_right & ~s_right) if negative else (~t_right & s_right)
        return (J * mask).sum(axis=(-3, -2, -1)) / _total(J)

    return fn


def _kl_rows(p: np.ndarray, q: np.ndarray) -> np.ndarray:
    from scipy.special import xlogy

    eps = np.finfo(np.float64).eps
    q = np.clip(q, eps, 1.0)
    return (xlogy(p, p) - xlogy(p, q)).sum(axis=1)


def _kl_pair_rows(y: np.ndarray, pt: np.ndarray, ps: np.ndarray) -> np.ndarray:
    return _kl_rows(pt, ps)


def _js_rows(y: np.ndarray, pt: np.ndarray, ps: np.ndarray) -> np.ndarray:
    m = (pt + ps) / 2.0
    return 0.5 * _kl_rows(pt, m) + 0.5 * _kl_rows(ps, m)


def _kl(y: np.ndarray, pt: np.ndarray, ps: np.ndarray) -> tuple[float, np.ndarray]:
    return mean_with_influence(_kl_pair_rows(y, pt, ps))


def _js(y: np.ndarray, pt: np.ndarray, ps: np.ndarray) -> tuple[float, np.ndarray]:
    return mean_with_influence(_js_rows(y, pt, ps))


DEFAULT_FLIPS = 200  # rows of the flip table a report carries (and writes beside itself)


def _flipped_rows(params: Mapping[str, Any]) -> tuple[ArtifactRequest, ...]:
    """A text or image suite shows the rows the teacher gets right and the student wrong; every
    suite carries the flip table (unless ``flips: 0``)."""
    cap = int(params.get("flips", DEFAULT_FLIPS))
    flips = (ArtifactRequest.of("flips", cap=cap),) if cap > 0 else ()
    return (ArtifactRequest.of("examples", rows="negative_flips"), *flips)


_FLIPS = {"flips": Param("int", "Rows of the flip table (the rows where the models disagree, "
                                "worst first) the report carries and writes beside itself as "
                                "<report>.flips.csv; 0 for none.", default=DEFAULT_FLIPS,
                         minimum=0, maximum=100_000)}
register(Metric("agreement", "higher", "fidelity", True, (0.0, 1.0),
                "Share of rows where the student's top-1 prediction equals the teacher's. "
                "Interval: bootstrap joined with Clopper-Pearson.", joint=_agreement, identical=1.0,
                needs=_flipped_rows, params=_FLIPS))
register(Metric("negative_flip_rate", "lower", "fidelity", True, (0.0, 1.0),
                "Share of rows the teacher gets right and the student gets wrong. Interval: "
                "bootstrap joined with Clopper-Pearson.", joint=_flips(negative=True),
                identical=0.0, needs=_flipped_rows, params=_FLIPS))
register(Metric("positive_flip_rate", "higher", "fidelity", True, (0.0, 1.0),
                "Share of rows the teacher gets wrong and the student gets right. Interval: "
                "bootstrap joined with Clopper-Pearson.", joint=_flips(negative=False),
                identical=0.0))
register(Metric("kl_divergence", "lower", "fidelity", True, (0.0, float("inf")),
                "Mean KL(teacher ‖ student) of the class distributions, in nats. Interval: normal "
                "approximation of a mean.", pair_influence=_kl, pair_rows=_kl_pair_rows,
                interval=CLT_INTERVAL,
                identical=0.0))
register(Metric("js_divergence", "lower", "fidelity", True, (0.0, float(np.log(2))),
                "Mean Jensen-Shannon divergence of the class distributions, in nats (<= ln 2). "
                "Interval: normal approximation of a mean.", pair_influence=_js, pair_rows=_js_rows,
                interval=CLT_INTERVAL, identical=0.0))


SHOWN_FLIPS = 10  # flip-table rows the HTML shows (the whole capped table is written as CSV)


def _flip_rows(m: Any) -> tuple[Table, ...]:
    """The first rows of the flip table, when the measurement carries one."""
    flips = m.extra.get("flips") if isinstance(m.extra, dict) else None
    if not flips or not flips.get("rows"):
        return ()
    columns = tuple(flips["columns"])
    counts = ", ".join(f"{n} {k}" for k, n in flips["counts"].items())
    rows = tuple(tuple(r.get(c) for c in columns) for r in flips["rows"][:SHOWN_FLIPS])
    return (Table(f"Rows where the models disagree, worst first ({counts}; the first "
                  f"{len(rows)} shown)", tuple(c.replace("_", " ") for c in columns), rows),)


FAMILY = register_family(Family("fidelity", "Fidelity to the teacher", order=20,
                                tables=_flip_rows))
