"""The catalogue of check families: the one list of the modules that register metrics.

A family module declares its metrics (and their parameters) with
:func:`audit.checks.registry.register`; listing it here is what makes its metrics part of the
suite format, the JSON Schema and the README tables. The registry never imports a family:
this module does, with :func:`importlib.import_module`, on the first lookup, so the
dependency runs one way (catalogue -> families -> registry). Only the code that needs every
metric imports this module: the suite parser and the schema (:mod:`audit.fields`,
:mod:`audit.suite`) and the docs generator (:mod:`audit.docs`).

The order is the order of the suite's check keys (each parameter first appears with the
first family that declares it) and of the choices of a parameter several families share.

A fixed tuple, not an entry-point group: which metrics exist decides whether a suite parses
and what the published schema says, so it should not change with the packages installed next
to distill-audit. A third-party family can still :func:`register` its metrics (importing its
module before parsing), and an entry-point group can be added to :func:`load` later without
touching the registry.
"""

from __future__ import annotations

import importlib
from collections.abc import Mapping

from audit.checks.registry import METRICS, Metric, add_loader, get_metric, metric_names

__all__ = ["MODULES", "load", "metrics", "get_metric", "metric_names"]

MODULES: tuple[str, ...] = (
    "audit.checks.performance",
    "audit.checks.fidelity",
    "audit.checks.calibration",
    "audit.checks.fairness",
    "audit.checks.efficiency",
    "audit.checks.dataset",
    "audit.checks.slices",
    "audit.checks.robustness",
    "audit.checks.privacy",
    "audit.checks.attribute",
    "audit.checks.extraction",
    "audit.checks.backdoor",
    "audit.checks.confidence",
    "audit.checks.corruption",
    # language models (a suite of multiple-choice items)
    "audit.checks.tokens",
    "audit.checks.stereotype",
    "audit.checks.choice_robustness",
    "audit.checks.lm_speed",
)

_loaded = False


def load() -> None:
    """Import every family module of :data:`MODULES` (once), registering their metrics."""
    global _loaded
    if _loaded:
        return
    for module in MODULES:
        importlib.import_module(module)
    _loaded = True


def metrics() -> Mapping[str, Metric]:
    """Every registered metric by name, families in catalogue order."""
    load()
    order = {module.rsplit(".", 1)[1]: i for i, module in enumerate(MODULES)}
    # a family's name is the one its metrics carry ("data" for the dataset module)
    rank = {m.family: order.get(_MODULE_OF.get(m.family, m.family), len(order))
            for m in METRICS.values()}
    return dict(sorted(METRICS.items(), key=lambda item: rank[item[1].family]))


# metric family -> its module's name, where the two differ
_MODULE_OF = {"data": "dataset"}

add_loader(load)
