"""Optional dependencies: which extra installs what, and importing heavy libraries lazily.

The core install (``pip install distill-audit``) audits scikit-learn (skops) and ONNX models
with every check family. torch is an extra: ``pip install 'distill-audit[torch]'`` for
TorchScript / ``torch.export`` models and the white-box attacks on them
(``[all]`` installs every extra). A check or model that needs a missing extra is an ERROR
that names the extra (:func:`require`), and ``distill-audit validate`` says so before a run
(:func:`missing_extra`, which looks the module up without importing it).

Two libraries the core uses import torch eagerly whenever it is installed, though nothing of
ours that they serve uses it: ``skops.io`` (through scikit-learn's ``all_estimators()``, which
imports every scikit-learn module, its torch compatibility layer included) and ART (its
certification estimators). :func:`hiding_torch` imports them as if torch were absent, which
saves about a second and 200 MB per run; torch stays importable afterwards for whatever needs
it.
"""

from __future__ import annotations

import importlib
import importlib.abc
import importlib.util
import sys
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from types import ModuleType
from typing import TYPE_CHECKING, Any

from audit.errors import AuditError

if TYPE_CHECKING:
    from audit.spec import Suite

__all__ = ["EXTRAS", "MissingExtra", "hiding_torch", "missing_extra", "missing_extras", "require"]

# attacks that differentiate the model (through torch)
GRADIENT_ATTACKS = ("fgsm", "pgd")

# top-level module -> the extra that installs it
EXTRAS: dict[str, str] = {"torch": "torch", "pyarrow": "parquet", "transformers": "text",
                          "tokenizers": "text", "PIL": "images", "mlflow": "mlflow", "ray": "ray"}


class MissingExtra(AuditError, ImportError):
    """A model or check needs a library that an optional extra installs."""


def install_hint(module: str) -> str:
    extra = EXTRAS.get(module.split(".")[0])
    if extra is None:
        return f"pip install {module.split('.')[0]}"
    return f"pip install 'distill-audit[{extra}]'"


def missing_extra(module: str, purpose: str) -> str | None:
    """The message :func:`require` would raise for ``module``, or ``None`` when it is
    installed; the module is looked up, not imported."""
    top = module.split(".")[0]
    try:
        present = top in sys.modules and sys.modules[top] is not None or (
            importlib.util.find_spec(top) is not None)
    except (ImportError, ValueError):
        present = False
    if present:
        return None
    return (f"{purpose} needs {top}, which is not installed; install it with "
            f"{install_hint(top)}")


def missing_extras(suite: Suite) -> list[str]:
    """What the suite needs that is not installed, one located message each (empty when
    nothing is missing). Known before loading anything: torch models, and checks that ask for
    a gradient attack. (A ``callable:`` that builds a torch module, or ``attack: auto`` on
    models with gradients, is only known once loaded; those error at run time, naming the
    extra the same way.)"""
    out = []
    where = suite.path.name if suite.path is not None else "suite"
    for role in ("teacher", "student"):
        spec = getattr(suite, role)
        needs = {"torch": ("torch",), "transformers": ("torch", "transformers")}.get(
            spec.kind, ("tokenizers",) if spec.tokenizer is not None else ())
        for module in needs:
            msg = missing_extra(module, f"the {role} ({spec.kind} model)")
            if msg:
                out.append(f"{where}: {role}: {msg}")
    images = suite.data.images
    if images is not None and images.column is not None:
        msg = missing_extra("PIL", "data.images.column (image files)")
        if msg:
            out.append(f"{where}: {msg}")
    for table in ("eval", "train", "holdout", "teacher_train"):
        path = getattr(suite.data, table, None)
        if path is not None and path.suffix.lower() in (".parquet", ".pq"):
            msg = missing_extra("pyarrow", f"data.{table} (a Parquet table)")
            if msg:
                out.append(f"{where}: {msg}")
    for check in suite.checks:
        attack = check.params.get("attack")
        if attack in GRADIENT_ATTACKS:
            msg = missing_extra("torch", f"attack: {attack}")
            if msg:
                out.append(f"{check.where()} checks.{check.name}: {msg}")
    return out


def require(module: str, purpose: str) -> ModuleType:
    """Import ``module``; a :class:`MissingExtra` naming the extra when it is not installed.

    ``purpose`` completes the sentence "<purpose> needs torch", e.g. "a TorchScript model".
    """
    try:
        return importlib.import_module(module)
    except ModuleNotFoundError as exc:
        top = module.split(".")[0]
        if exc.name is None or exc.name.split(".")[0] != top:
            raise
        raise MissingExtra(f"{purpose} needs {top}, which is not installed; install it with "
                           f"{install_hint(top)}") from None


class _NoTorch(importlib.abc.MetaPathFinder):
    """Refuses ``import torch`` (and its submodules) as if it were not installed."""

    def find_spec(self, fullname: str, path: object = None, target: object = None) -> None:
        if fullname == "torch" or fullname.startswith("torch."):
            raise ModuleNotFoundError(f"No module named {fullname!r}", name=fullname)
        return None


@contextmanager
def hiding_torch() -> Iterator[None]:
    """Within the block, ``import torch`` fails and ``importlib.util.find_spec("torch")`` is
    ``None``, unless torch is already imported (then nothing changes).

    For importing libraries that import torch only to register optional support
    (``skops.io``, ART): they take their no-torch path. A finder first on ``sys.meta_path``
    refuses torch, and ``importlib.util.find_spec``, which ART asks first, answers ``None``
    for it; both are restored on exit, so a later ``import torch`` works as usual. (Marking
    torch unimportable with ``sys.modules["torch"] = None`` is not enough: scipy's array-API
    helpers read ``sys.modules["torch"]`` and fail on ``None``.)
    """
    if "torch" in sys.modules:
        yield
        return
    finder = _NoTorch()
    real = importlib.util.find_spec

    def find_spec(name: str, package: str | None = None) -> Any:
        if name == "torch" or name.startswith("torch."):
            return None
        return real(name, package)

    sys.meta_path.insert(0, finder)
    importlib.util.find_spec = find_spec  # type: ignore[assignment]
    try:
        with warnings.catch_warnings():
            # ART: "PyTorch not found. Not importing DeepZ or Interval Bound Propagation ..."
            warnings.filterwarnings("ignore", message="PyTorch not found", category=UserWarning)
            yield
    finally:
        importlib.util.find_spec = real  # type: ignore[assignment]
        sys.meta_path.remove(finder)
