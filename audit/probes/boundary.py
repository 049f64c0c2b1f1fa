"""Label-only membership inference by distance to the decision boundary.

A model tends to be more sure of its training rows: they sit further from its decision
boundary. Choquette-Choo et al. (2021) measure that distance with labels alone, by running a
decision-based evasion attack (HopSkipJump) from the row and taking the L2 norm of the
perturbation it needs; ART implements it as ``LabelOnlyDecisionBoundary``. The score here is
computed the same way -- the L2 distance between the row and HopSkipJump's adversarial example,
0 for a row the model misclassifies -- and used as a continuous score (a proper ROC) instead of
ART's calibrated threshold.

Differences from ART's class, all deliberate:

* the rows are attacked in the audit's perturbation space (numeric columns scaled to [0, 1] by
  the [min, max] of the scored rows, categorical columns fixed; see
  :mod:`audit.checks.robustness`), one row at a time, through the same machinery as the
  robustness checks (:mod:`audit.probes.attacks`), with a seeded start;
* the start is the nearest data row the model puts in another class (ART draws random points
  and, when none is of another class, returns the row unchanged: distance 0, "non-member", for
  exactly the rows furthest from any boundary). A row for which no start is found anywhere
  in the box gets the box's diagonal, sqrt(d), an upper bound on any distance in it;
* HopSkipJump runs with the audit's budget (``max_iter`` 10, ``max_eval`` 200, ``init_eval``
  20), not ART's defaults (50, 10000, 100): seconds per row on a tree ensemble otherwise;
* a wall-clock cap (``max_seconds``) as a safety stop only: every sampled row is scored for both
  models, and an attack the cap stops makes the check an error naming the rows done and asked
  (which rows a machine finishes in time must never decide the numbers).

The distances are an artifact (:class:`~audit.probes.artifacts.BoundaryDistances`) of the
membership probe (:mod:`audit.probes.membership`); :mod:`audit.checks.privacy` scores them.
"""

from __future__ import annotations

import dataclasses
import time
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from audit.errors import display_path
from audit.probes import attacks
from audit.probes.adversarial import cached_attack
from audit.probes.artifacts import BoundaryDistances
from audit.probes.attacks import HSJ, AttackRunner, Cap, attack_space

__all__ = ["boundary_distances"]


def _combined(run: Any, members: str, rows_in: np.ndarray, non_members: str,
              rows_out: np.ndarray) -> Any:
    """One table of the sampled members followed by the sampled non-members."""
    t_in, t_out = run.table(members), run.table(non_members)
    both = Path(f"{display_path(t_in.path)} + {display_path(t_out.path)}")  # for messages
    return dataclasses.replace(
        t_in, role="membership", path=both,
        features=pd.concat([t_in.features.iloc[rows_in], t_out.features.iloc[rows_out]],
                           ignore_index=True),
        labels=pd.concat([t_in.labels.iloc[rows_in], t_out.labels.iloc[rows_out]],
                         ignore_index=True),
        sensitive=pd.concat([t_in.sensitive.iloc[rows_in], t_out.sensitive.iloc[rows_out]],
                            ignore_index=True))


def boundary_distances(probes: Any, members: str, rows_in: np.ndarray, y_in: np.ndarray,
                       non_members: str, rows_out: np.ndarray, y_out: np.ndarray,
                       max_seconds: float) -> BoundaryDistances:
    """Per model, the boundary distance of each sampled row (members first) and which rows had
    no start; and what was perturbed. Every row is attacked; an attack the cap (``max_seconds``
    for both models together) stops raises :meth:`Cap.error`."""
    run, seed = probes.run, probes.seed
    m = len(rows_in)
    table = _combined(run, members, rows_in, non_members, rows_out)
    y = np.r_[y_in, y_out]
    space = attack_space(table, len(y), seed,  # every row, in order
                         who="decision-boundary membership attacks",
                         rows_of=f"the sampled rows of data.{members} and data.{non_members}")
    x0 = space.scaled()
    interleaved = np.ravel(np.column_stack([np.arange(m), m + np.arange(m)]))
    tag = f"membership:{members}:{non_members}:{m}"
    what = ("decision_boundary", run.table(members).sha256, rows_in.tobytes().hex(),
            run.table(non_members).sha256, rows_out.tobytes().hex(), seed)
    out: dict[str, dict[str, Any]] = {}
    cap = Cap.starting_now(max_seconds)
    for who in ("teacher", "student"):
        runner = AttackRunner(probes, who, space, table=table, y=y, tag=tag)
        correct = runner.clean() == y
        todo = interleaved[correct[interleaved]]
        began = time.perf_counter()
        x, done, no_start = cached_attack(
            probes, who, what, todo,
            lambda r=runner, t=todo: attacks.hopskipjump(r, "2", t, x0, cap))
        if len(done) < len(todo):
            raise cap.error(f"the decision-boundary attack on the {runner.label}", len(done),
                            len(todo), f"the {m} sampled members and {m} non-members, "
                            f"samples: {m}")
        distance = np.linalg.norm(x - x0, axis=1)
        distance[no_start] = np.sqrt(x0.shape[1])
        distance[~correct] = 0.0
        out[who] = {"distance": distance, "no_start": np.isin(np.arange(len(y)), no_start),
                    "seconds": time.perf_counter() - began, "attacked": int(correct.sum())}
    return BoundaryDistances(found=out, columns=tuple(space.columns),
                             fixed=(*space.categorical, *space.fixed), hsj=dict(HSJ))
