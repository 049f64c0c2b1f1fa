"""Reusing a check's measurements on a rerun: what they depend on, as one cache key.

A check's measurements (values, intervals, breakdowns, tables: everything but its gate
verdicts) are a deterministic function of the models' content, the tables' content, the
suite's data declarations, the check's metric and parameters, the run's seed, bootstrap and
confidence, and the code that computes them (this package's source and the versions of the
libraries it calls). :func:`measurement_key` hashes all of that; a rerun whose key matches an
**authenticated** cache entry (see :mod:`audit.cache`: HMAC with the machine's key, or
``--audit-trust-cache``) takes the measurements from it and only re-judges the gates, so a gate
edited in the suite applies at once. An entry nothing vouches for is never used: a
measurement cannot be re-verified cheaply the way predictions can.

Never reused: measurements of the machine (timings), and checks on models whose behaviour the
suite's files do not pin down (``callable``, ``pickle``: no fingerprint without loading them).
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict
from functools import cache
from importlib import metadata
from pathlib import Path
from typing import Any

from audit.spec import CheckSpec, DataSpec, ModelSpec, Settings

__all__ = ["code_fingerprint", "measurement_key", "measures_the_machine", "REUSE_NEVER"]

# artifact kinds that measure this machine now: never reused
REUSE_NEVER = frozenset({"timings", "lm_timings"})
# the libraries whose versions can change a number
LIBRARIES = ("numpy", "scipy", "pandas", "scikit-learn", "fairlearn", "netcal",
             "adversarial-robustness-toolbox", "skops", "onnxruntime", "torch", "pyarrow", "transformers",
             "tokenizers", "pillow")


def measures_the_machine(metric: Any, params: Any) -> bool:
    """Whether ``metric`` (a registry :class:`~audit.checks.registry.Metric`) with ``params``
    measures this machine now (it needs timings): never reused, and not a matter of rows."""
    return metric.needs is not None and any(r.kind in REUSE_NEVER for r in metric.needs(params))


@cache
def code_fingerprint() -> str:
    """SHA-256 over this package's Python sources and the versions of the libraries the
    measurements call (a missing library counts as ``absent``): any change of either changes
    every measurement key."""
    root = Path(__file__).resolve().parent
    h = hashlib.sha256()
    for path in sorted(root.rglob("*.py")):
        h.update(path.relative_to(root).as_posix().encode() + b"\0")
        h.update(hashlib.sha256(path.read_bytes()).digest())
    for name in LIBRARIES:
        try:
            h.update(f"{name}={metadata.version(name)}\0".encode())
        except metadata.PackageNotFoundError:
            h.update(f"{name}=absent\0".encode())
    return h.hexdigest()


def _plain(x: Any) -> Any:
    if isinstance(x, Path):
        return None  # where a file is does not change what it holds (its hash is keyed)
    if isinstance(x, dict):
        return {str(k): _plain(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [_plain(v) for v in x]
    return x if isinstance(x, (str, int, float, bool, type(None))) else repr(x)


def measurement_key(spec: CheckSpec, data: DataSpec, settings: Settings,
                    models: dict[str, tuple[str, ModelSpec]], tables: dict[str, str]) -> str:
    """The key of a check's measurements: ``models`` maps a role to its cache identity
    (:func:`audit.models.model_fingerprint`) and spec, ``tables`` a table role to its SHA-256
    (every table the suite names, read or not)."""
    doc = {
        "kind": "measurements",
        "code": code_fingerprint(),
        "metric": spec.metric,
        "params": _plain(dict(spec.params)),
        "settings": {"seed": settings.seed, "bootstrap": settings.bootstrap,
                     "confidence": settings.confidence},
        "data": _plain(asdict(data)),
        "tables": dict(sorted(tables.items())),
        "models": {role: [identity, _plain({k: v for k, v in asdict(m).items()
                                            if k not in ("trusted_types", "base_dir")})]
                   for role, (identity, m) in sorted(models.items())},
    }
    return hashlib.sha256(json.dumps(doc, sort_keys=True, default=repr).encode()).hexdigest()
