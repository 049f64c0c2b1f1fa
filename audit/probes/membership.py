"""Members and non-members: the privacy metrics' artifact.

The probe resolves and checks the two tables (``members``: ``train`` by default;
``non_members``: ``holdout`` when the suite names one, else ``eval``), draws ``m`` rows of each
with the suite's seed, encodes their labels, reads both models' probabilities on them from the
prediction cache (one prediction per dataset, no model call of its own), counts the sampled
non-members identical to a member row and, for the ``decision_boundary`` attack, measures each
sampled row's distance to each model's decision boundary (:mod:`audit.probes.boundary`).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from audit.errors import DataError, display_path
from audit.probes.artifacts import ArtifactRequest, MembershipSample
from audit.spec import TABLE_ROWS

__all__ = ["membership_sample", "member_tables", "sample_side"]


def member_tables(run: Any, members: str | None, non_members: str | None) -> tuple[str, str]:
    """The data tables of members and non-members (defaults: ``train``; ``holdout`` when the
    suite names one, else ``eval``), each checked to be named by the suite."""
    data = run.suite.data
    members = members or "train"
    non_members = non_members or ("holdout" if data.holdout is not None else "eval")
    for role, side in ((members, "members"), (non_members, "non-members")):
        if getattr(data, role) is None:
            raise DataError(f"membership inference with {side}: {role} needs data.{role} ("
                            f"{TABLE_ROWS[role]}); name it in the suite's data section")
    a, b = run.table(members), run.table(non_members)
    if a.sha256 == b.sha256:
        raise DataError(f"membership inference: data.{members} and data.{non_members} are the "
                        f"same file ({display_path(a.path)}, {display_path(b.path)}; sha256 "
                        f"{a.sha256[:12]}...); the non-members must be rows the models were not "
                        "trained on: name them in data.holdout")
    return members, non_members


def _row_hashes(table: Any) -> np.ndarray:
    """One hash per row of what the models read (the feature columns, or a text or image
    suite's texts or images) and the label (identical rows, same hash)."""
    import pandas as pd

    from audit.probes.tables import with_inputs

    frame = table.features if table.modality == "tabular" else with_inputs(table)
    frame = frame.assign(**{"\0label": table.labels.to_numpy()})
    return pd.util.hash_pandas_object(frame, index=False).to_numpy()


def _overlap(run: Any, members: str, non_members: str, rows_out: np.ndarray) -> int:
    """How many sampled non-members are identical (inputs and label) to a member row."""
    inside = np.isin(_row_hashes(run.table(non_members))[rows_out],
                     _row_hashes(run.table(members)))
    return int(inside.sum())


def sample_side(run: Any, role: str, m: int, rng: np.random.Generator
                ) -> tuple[np.ndarray, np.ndarray, dict[str, np.ndarray]]:
    """``m`` rows of table ``role`` (sorted positions), their encoded labels and both models'
    probabilities on them (encoded class order; cached: one prediction per dataset)."""
    table = run.table(role)
    rows = np.sort(rng.choice(table.n_rows, m, replace=False))
    y = run.encoding.encode(table.labels, f"{display_path(table.path)} column "
                                          f"{run.suite.data.target!r}")[rows]
    probs = {}
    for who in ("teacher", "student"):
        P, classes = run.predictions(who, table)
        probs[who] = P[:, run.encoding.reorder(classes)][rows]
    return rows, y, probs


def membership_sample(probes: Any, request: ArtifactRequest) -> Any:
    """The :class:`~audit.probes.artifacts.MembershipSample` of a privacy check: ``attack``,
    ``samples`` (``None``: ``min(available, default_samples)``), ``members`` and
    ``non_members`` (``None``: the defaults) and ``max_seconds`` (the decision-boundary cap)."""
    run = probes.run
    attack, samples = request.get("attack"), request.get("samples")
    if run.suite.data.choices is not None:  # a language model: members are documents
        from audit.probes.tokens import document_membership

        data = run.suite.data
        members = request.get("members") or "train"
        non_members = request.get("non_members") or ("holdout" if data.holdout is not None
                                                     else "documents")
        for role, side in ((members, "members"), (non_members, "non-members")):
            if getattr(data, role) is None:
                raise DataError(f"membership inference with {side}: {role} needs data.{role} ("
                                f"{TABLE_ROWS[role]}), a .jsonl file of documents; name it in "
                                "the suite's data section")
        return document_membership(probes, members, non_members, samples,
                                   int(request.get("default_samples")))
    members, non_members = member_tables(run, request.get("members"), request.get("non_members"))
    attack = attack or "loss_threshold"  # audit.checks.privacy.DEFAULT_ATTACK
    max_seconds = float(request.get("max_seconds"))
    key = ("membership", attack, samples, members, non_members, max_seconds)
    return probes.memo(key, lambda: _sample(probes, attack, samples, request.get("default_samples"),
                                            members, non_members, max_seconds))


def _sample(probes: Any, attack: str, samples: int | None, default: int, members: str,
            non_members: str, max_seconds: float) -> MembershipSample:
    run = probes.run
    n_in, n_out = run.table(members).n_rows, run.table(non_members).n_rows
    available = min(n_in, n_out)
    notes: list[str] = []
    m = min(available, default) if samples is None else int(samples)
    if m > available:
        notes.append(f"samples={m} asked for, but only {available} rows are available on the "
                     f"smaller side ({members} {n_in}, {non_members} {n_out}); used "
                     f"{available} of each")
        m = available
    if m < 10:
        raise DataError(f"membership inference needs at least 10 members and 10 non-members; "
                        f"the data has {members} {n_in} and {non_members} {n_out} rows")
    rng = np.random.default_rng(probes.seed)
    rows_in, y_in, P_in = sample_side(run, members, m, rng)
    rows_out, y_out, P_out = sample_side(run, non_members, m, rng)
    shared = _overlap(run, members, non_members, rows_out)
    if shared:  # duplicates are common in tables of few, coarse columns: say so, do not judge
        what = "features" if run.eval_table.modality == "tabular" else (
            "texts" if run.eval_table.texts is not None else "images")
        notes.append(f"{shared} of the {m} sampled non-members (data.{non_members}) are "
                     f"identical, {what} and label, to rows of data.{members}; no attack can "
                     "tell those apart from members, which pulls every membership measure "
                     "towards chance (see the leakage check)")
    boundary = None
    if attack == "decision_boundary":
        from audit.probes.boundary import boundary_distances

        boundary = boundary_distances(probes, members, rows_in, y_in, non_members, rows_out,
                                      y_out, max_seconds)
    return MembershipSample(
        members=members, non_members=non_members, m=m, notes=tuple(notes), y_in=y_in,
        y_out=y_out, probs={who: (P_in[who], P_out[who]) for who in ("teacher", "student")},
        overlap=shared, rng_state=rng.bit_generator.state, boundary=boundary)
