"""Importing what a ``callable:`` model names: the module, isolated per suite folder, then the
object its attribute path names (and whether that is, or builds, a ``torch.nn.Module``).

A module found next to the suite is executed afresh, under a private name, from exactly the
bytes that are hashed: two suites that each have a ``model.py`` never share a module, and an
edited file is never fingerprinted while stale code runs.
"""

from __future__ import annotations

import difflib
import hashlib
import importlib
import importlib.machinery
import importlib.util
import inspect
import sys
from pathlib import Path
from types import ModuleType
from typing import Any

from audit.errors import ModelError, display_path
from audit.models.base import model_label
from audit.spec import ModelSpec

__all__ = ["import_module_isolated", "resolve_callable", "torch_module_of"]


def import_module_isolated(module_name: str, base_dir: Path | None,
                           label: str) -> tuple[ModuleType, bytes | None]:
    """Import ``module_name``, next to the suite (``base_dir``) first, then from ``sys.path``.

    Returns the module and the source bytes its fingerprint covers (``None`` without a source
    file). A module found next to the suite is executed afresh, from the bytes that are hashed,
    under a private name: two suites that each have a ``model.py`` never share a module (Python
    caches modules by name), and an edited file is never fingerprinted while stale code runs.
    """
    top = module_name.split(".")[0]
    local = _local_module(top, Path(base_dir)) if base_dir is not None else None
    added = base_dir is not None and str(base_dir) not in sys.path
    if added:
        sys.path.insert(0, str(base_dir))
    try:
        if local is None:
            module = importlib.import_module(module_name)
            file = getattr(module, "__file__", None)
            return module, (Path(file).read_bytes() if file and Path(file).is_file() else None)
        return _fresh_import(module_name, *local, base_dir)
    except ModuleNotFoundError as exc:
        if exc.name is not None and module_name.startswith(exc.name) and (
                exc.name == module_name or module_name[len(exc.name)] == "."):
            places = f"next to the suite ({display_path(base_dir)}) or " if base_dir else ""
            raise ModelError(f"{label}: cannot import module {module_name!r}: not found "
                             f"{places}on sys.path; put {top}.py next to the suite or install "
                             "its package") from None
        raise ModelError(f"{label}: importing module {module_name!r} failed: "
                         f"{type(exc).__name__}: {exc}") from None
    except Exception as exc:
        raise ModelError(f"{label}: importing module {module_name!r} failed: "
                         f"{type(exc).__name__}: {exc}") from None
    finally:
        if added:
            sys.path.remove(str(base_dir))


def _local_module(top: str, base_dir: Path) -> tuple[Path | None, list[str] | None] | None:
    """``(file, package folder)`` of module ``top`` in ``base_dir``, as Python would find it."""
    folder = base_dir / top
    if (folder / "__init__.py").is_file():
        return folder / "__init__.py", [str(folder)]
    if (base_dir / f"{top}.py").is_file():
        return base_dir / f"{top}.py", None
    if folder.is_dir():  # a namespace package (a folder without __init__.py)
        return None, [str(folder)]
    return None


def _fresh_import(module_name: str, origin: Path | None, search: list[str] | None,
                  base_dir: Path | None) -> tuple[ModuleType, bytes | None]:
    top, _, rest = module_name.partition(".")
    where = str(Path(base_dir).resolve()) if base_dir is not None else ""
    alias = f"_distill_audit_local_{hashlib.sha256(where.encode()).hexdigest()[:12]}_{top}"

    def forget() -> None:
        for name in [n for n in sys.modules if n == alias or n.startswith(alias + ".")]:
            del sys.modules[name]

    forget()
    if origin is None:
        spec = importlib.machinery.ModuleSpec(alias, None, is_package=True)
        spec.submodule_search_locations = search
        source = None
    else:
        found = importlib.util.spec_from_file_location(alias, origin,
                                                       submodule_search_locations=search)
        assert found is not None
        spec = found
        source = origin.read_bytes()
    module = importlib.util.module_from_spec(spec)
    sys.modules[alias] = module  # dataclasses, pickle and relative imports look it up
    try:
        if source is not None:
            exec(compile(source, str(origin), "exec", dont_inherit=True), module.__dict__)
        if rest:
            importlib.invalidate_caches()
            try:
                module = importlib.import_module(f"{alias}.{rest}")
            except ModuleNotFoundError as exc:
                if exc.name and exc.name.startswith(alias):
                    real = top + exc.name[len(alias):]
                    raise ModuleNotFoundError(f"No module named {real!r}", name=real) from None
                raise
            file = getattr(module, "__file__", None)
            source = Path(file).read_bytes() if file and Path(file).is_file() else None
    except BaseException:
        forget()
        raise
    return module, source


def resolve_callable(spec: ModelSpec, role: str) -> tuple[Any, str, Any, tuple[str, ...]]:
    """Import the module a callable names and walk to its object: ``(object, attribute path,
    sha256 of the name and source, warnings)``."""
    assert spec.target is not None
    label = model_label(role, spec)
    module_name, _, attr_path = spec.target.partition(":")
    module, source = import_module_isolated(module_name, spec.base_dir, label)
    obj: Any = module
    parts = attr_path.split(".")
    for depth, part in enumerate(parts):
        if not hasattr(obj, part):
            owner = f"module {module_name!r}" if depth == 0 else repr(".".join(parts[:depth]))
            file = getattr(module, "__file__", None)
            at = f" ({display_path(file)})" if file else ""
            names = [n for n in dir(obj) if not n.startswith("_")]
            close = difflib.get_close_matches(part, names, n=1, cutoff=0.6)
            hint = f" (did you mean {close[0]!r}?)" if close else ""
            raise ModelError(f"{label}: {owner}{at} has no attribute {part!r}{hint}; define it or "
                             "fix the name after ':'")
        obj = getattr(obj, part)
    digest = hashlib.sha256(spec.target.encode())
    warnings: tuple[str, ...] = ()
    if source is not None:
        digest.update(source)
    else:
        warnings = (f"{role} callable {spec.target} has no source file; its fingerprint covers "
                    "only its name, so cached predictions are keyed by name",)
    return obj, attr_path, digest, warnings


def torch_module_of(obj: Any, label: str, attr_path: str) -> Any:
    """The ``nn.Module`` a callable model names: the object itself, or what calling it with no
    arguments returns (an ``nn.Module`` subclass, or a function without parameters). ``None``
    for anything else, which keeps the other callable forms (a function of the feature table,
    an object with predict_proba) as they were; torch is never imported here."""
    torch = sys.modules.get("torch")
    if torch is not None and isinstance(obj, torch.nn.Module):
        return obj
    if isinstance(obj, type):
        factory = torch is not None and issubclass(obj, torch.nn.Module)
    elif callable(obj) and not hasattr(obj, "predict_proba"):
        try:
            factory = not inspect.signature(obj).parameters  # a model function takes the table
        except (TypeError, ValueError):
            factory = False
    else:
        factory = False
    if not factory:
        return None
    try:
        made = obj()
    except Exception as exc:
        raise ModelError(f"{label}: calling {attr_path}() to build the torch module failed: "
                         f"{type(exc).__name__}: {exc}") from None
    torch = sys.modules.get("torch")
    if torch is None or not isinstance(made, torch.nn.Module):
        raise ModelError(f"{label}: {attr_path}() returned a {type(made).__name__}, not a "
                         "torch.nn.Module; a callable model is a function of the feature table, "
                         "an object with predict_proba, or a torch.nn.Module (or a function of no "
                         "arguments that returns one)")
    return made
