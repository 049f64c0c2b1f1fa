"""The data tables as plain frames: the dataset and slice metrics' artifact."""

from __future__ import annotations

from typing import Any

from audit.probes.artifacts import ArtifactRequest, DataTables

__all__ = ["data_tables"]


def data_tables(probes: Any, request: ArtifactRequest) -> DataTables:
    """The eval table, and the training table when ``train`` is asked for and the suite names
    one (read once per run)."""
    run = probes.run
    ev = run.eval_table
    named = run.suite.data.train is not None
    train = run.train_table() if named and request.get("train", False) else None
    return DataTables(target=run.suite.data.target, eval_features=ev.features,
                      eval_labels=ev.labels, train_named=named,
                      train_features=None if train is None else train.features,
                      train_labels=None if train is None else train.labels)
