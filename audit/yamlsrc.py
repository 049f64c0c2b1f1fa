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
    text: str | None = None  # the scalar as written (to explain YAML's ``no`` -> false and such)


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
        data = path.read_bytes()
    except FileNotFoundError:
        raise SuiteError("file not found", file=path) from None
    except IsADirectoryError:
        raise SuiteError("is a folder, not a suite file", file=path) from None
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = data[:exc.start].count(b"\n") + 1
        raise SuiteError(f"not UTF-8 text ({exc.reason} at byte {exc.start}); save the file as "
                         "UTF-8", file=path, line=line) from None
    return load_yaml_text(text, path)


def load_yaml_text(text: str, path: Path | None) -> Located:
    """Parse YAML ``text`` (attributed to ``path``) into plain values with origins."""
    loader = yaml.SafeLoader(text)
    try:
        try:
            node = loader.get_single_node()
            if node is None:
                raise SuiteError("the file is empty; a suite needs at least version, name, data, "
                                 "teacher, student and checks", file=path, line=1)
            origins: dict[KeyPath, Origin] = {}
            value = _walk(loader, node, (), path, origins)
        except yaml.MarkedYAMLError as exc:
            raise _yaml_error(exc, path) from None
        except yaml.YAMLError as exc:
            raise SuiteError(f"invalid YAML: {exc}", file=path) from None
    finally:
        loader.dispose()
    return Located(value, origins)


def _yaml_error(exc: yaml.MarkedYAMLError, path: Path | None) -> SuiteError:
    """A :class:`SuiteError` at the line PyYAML points at, with its context and a hint."""
    mark = exc.problem_mark or exc.context_mark
    line = None if mark is None else mark.line + 1
    problem = exc.problem or exc.context or "cannot parse"
    if isinstance(exc, yaml.constructor.ConstructorError) and problem.startswith(
            "could not determine a constructor for the tag"):
        tag = problem.rsplit(" ", 1)[-1].strip("'").replace("tag:yaml.org,2002:", "!!")
        return SuiteError(f"YAML tag {tag} is not allowed; suites hold plain mappings, lists, "
                          "strings and numbers (remove the tag)", file=path, line=line)
    head = "invalid YAML" if mark is None else f"invalid YAML at column {mark.column + 1}"
    message = f"{head}: {problem}"
    if exc.problem and exc.problem.startswith("but ") and exc.context:
        message = f"{head}: {exc.context}, {exc.problem}"  # "expected X, but found Y"
    elif exc.context and exc.context.startswith("while ") and exc.context_mark is not None:
        cm = exc.context_mark
        message += f" ({exc.context} that starts at line {cm.line + 1}, column {cm.column + 1})"
    if "'\\t'" in problem:
        message += "; indent with spaces, not tabs"
    elif "another document" in problem:
        message += "; a suite is one YAML document, remove the '---' line"
    return SuiteError(message, file=path, line=line)


def _walk(loader: yaml.SafeLoader, node: yaml.Node, path: KeyPath, file: Path | None,
          origins: dict[KeyPath, Origin]) -> Any:
    text = node.value if isinstance(node, yaml.ScalarNode) else None
    origins[path] = Origin(file, node.start_mark.line + 1, text)
    if isinstance(node, yaml.MappingNode):
        loader.flatten_mapping(node)  # resolves YAML merge keys (<<: *defaults)
        out: dict[str, Any] = {}
        for key_node, value_node in node.value:
            key = loader.construct_object(key_node, deep=True)
            line = key_node.start_mark.line + 1
            if not isinstance(key, str):
                dotted = ".".join(str(p) for p in path)
                fix = (f"; quote it ('{key_node.value}')" if isinstance(key_node, yaml.ScalarNode)
                       else "")
                raise SuiteError(f"key {key!r} must be a string{fix}", file=file, line=line,
                                 key=dotted)
            if key in out:
                dotted = ".".join(str(p) for p in (*path, key))
                first = origins[(*path, key)].line
                raise SuiteError(f"duplicate key (first defined on line {first}); "
                                 "keep one of them", file=file, line=line, key=dotted)
            out[key] = _walk(loader, value_node, (*path, key), file, origins)
            text = value_node.value if isinstance(value_node, yaml.ScalarNode) else None
            origins[(*path, key)] = Origin(file, line, text)
        return out
    if isinstance(node, yaml.SequenceNode):
        return [_walk(loader, child, (*path, i), file, origins) for i, child in enumerate(node.value)]
    return loader.construct_object(node, deep=True)


def located_from_value(value: Any, file: Path | None = None) -> Located:
    """Wrap a value built in code (no line numbers) as :class:`Located`."""
    return Located(value, {(): Origin(file, None)})
