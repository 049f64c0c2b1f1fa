"""Read YAML while remembering where every value came from.

PyYAML's composer gives each node a line number; we turn the node tree into plain Python
values and keep, for every key path, the file and line that defined it. Duplicate keys are an
error (PyYAML silently keeps the last one).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from audit.errors import SuiteError

__all__ = ["Origin", "Located", "load_yaml", "located_from_value"]

KeyPath = tuple[str | int, ...]


@dataclass(frozen=True)
class Origin:
    """Where a value was written: the file and 1-based line."""

    file: Path | None
    line: int | None


@dataclass
class Located:
    """A plain YAML value plus the origin of every key path inside it."""

    value: Any
    origins: dict[KeyPath, Origin]

    def origin(self, path: KeyPath) -> Origin:
        """Origin of ``path``, or of its nearest ancestor that has one."""
        while path:
            if path in self.origins:
                return self.origins[path]
            path = path[:-1]
        return self.origins.get((), Origin(None, None))


def load_yaml(path: Path) -> Located:
    """Parse ``path`` into plain values with origins.

    Raises
    ------
    SuiteError
        On a syntax error, a duplicate key, a non-string key or an empty document.
    """
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise SuiteError("file not found", file=path) from None
    except UnicodeDecodeError as exc:
        raise SuiteError(f"not UTF-8 text ({exc.reason} at byte {exc.start})", file=path) from None
    return load_yaml_text(text, path)


def load_yaml_text(text: str, path: Path | None) -> Located:
    """Parse YAML ``text`` (attributed to ``path``) into plain values with origins."""
    loader = yaml.SafeLoader(text)
    try:
        try:
            node = loader.get_single_node()
        except yaml.MarkedYAMLError as exc:
            mark = exc.problem_mark or exc.context_mark
            line = None if mark is None else mark.line + 1
            problem = exc.problem or exc.context or "invalid YAML"
            raise SuiteError(f"invalid YAML: {problem}", file=path, line=line) from None
        except yaml.YAMLError as exc:
            raise SuiteError(f"invalid YAML: {exc}", file=path) from None
        if node is None:
            raise SuiteError("the file is empty; a suite needs at least version, name, data, "
                             "teacher, student and checks", file=path, line=1)
        origins: dict[KeyPath, Origin] = {}
        value = _walk(loader, node, (), path, origins)
    finally:
        loader.dispose()
    return Located(value, origins)


def _walk(loader: yaml.SafeLoader, node: yaml.Node, path: KeyPath, file: Path | None,
          origins: dict[KeyPath, Origin]) -> Any:
    origins[path] = Origin(file, node.start_mark.line + 1)
    if isinstance(node, yaml.MappingNode):
        loader.flatten_mapping(node)  # resolves YAML merge keys (<<: *defaults)
        out: dict[str, Any] = {}
        for key_node, value_node in node.value:
            key = loader.construct_object(key_node, deep=True)
            line = key_node.start_mark.line + 1
            if not isinstance(key, str):
                dotted = ".".join(str(p) for p in path)
                raise SuiteError(f"key {key!r} must be a string", file=file, line=line, key=dotted)
            if key in out:
                dotted = ".".join(str(p) for p in (*path, key))
                first = origins[(*path, key)].line
                raise SuiteError(f"duplicate key (first defined on line {first}); "
                                 "keep one of them", file=file, line=line, key=dotted)
            out[key] = _walk(loader, value_node, (*path, key), file, origins)
            origins[(*path, key)] = Origin(file, line)
        return out
    if isinstance(node, yaml.SequenceNode):
        return [_walk(loader, child, (*path, i), file, origins) for i, child in enumerate(node.value)]
    return loader.construct_object(node, deep=True)


def located_from_value(value: Any, file: Path | None = None) -> Located:
    """Wrap a value built in code (no line numbers) as :class:`Located`."""
    return Located(value, {(): Origin(file, None)})
