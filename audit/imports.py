"""Importing the module a ``callable:`` model names, isolated per suite folder.

A module found next to the suite is executed afresh, under a private name, from exactly the
bytes that are hashed: two suites that each have a ``model.py`` never share a module, and an
edited file is never fingerprinted while stale code runs.
"""

from __future__ import annotations

import hashlib
import importlib
import importlib.machinery
import importlib.util
import sys
from pathlib import Path
from types import ModuleType

from audit.errors import ModelError, display_path

__all__ = ["import_module_isolated"]


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


