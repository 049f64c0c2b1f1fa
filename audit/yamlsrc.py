"""Read YAML while remembering where every value came from.

PyYAML's composer gives each node a line number; we turn the node tree into plain Python
values and keep, for every key path, the file and line that defined it. Duplicate keys are an
error (PyYAML silently keeps the last one). ``include:`` is resolved here too: included files
are merged under the including one, and every value keeps the file and line that wrote it.

The loader is bounded: at most :data:`MAX_DEPTH` levels of mappings and lists inside each other,
at most :data:`MAX_VALUES` values once aliases are expanded (a few hundred bytes of aliases of
aliases would otherwise expand to gigabytes), and no alias inside the value it names. The only
tags allowed are YAML's plain core tags -- ``!!str``, ``!!int``, ``!!float``, ``!!bool`` and
``!!null`` on scalars, ``!!seq`` on lists and ``!!map`` on mappings -- and a tagged scalar must
read as its tag says; every other tag (``!!python/...``, ``!!set``, ``!!binary``, ``!!omap``,
``!!timestamp``, ``!local``...) is refused with its file and line. Merge keys (``<<: *defaults``)
work. Dates are read as text (YAML 1.1 would make ``2026-11-28`` a date object).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from audit.errors import SuiteError, display_path

__all__ = ["Origin", "Located", "load_yaml", "load_yaml_text", "located_from_value",
           "resolve_includes", "dotted", "show", "kind_name", "MAX_DEPTH", "MAX_VALUES",
           "MAX_BYTES", "MAX_INCLUDE_DEPTH"]

KeyPath = tuple[str | int, ...]

MAX_DEPTH = 64
"""Mappings and lists nested deeper than this are refused (a suite needs a handful of levels)."""
MAX_VALUES = 100_000
"""A document whose aliases expand it past this many values is refused (an alias bomb)."""
MAX_BYTES = 10_000_000
"""A suite (or included) file larger than this is refused before it is parsed."""
MAX_INCLUDE_DEPTH = 16
"""Files including files including files... deeper than this are refused."""

_CORE = "tag:yaml.org,2002:"
_ALLOWED_TAGS: dict[type[yaml.Event], frozenset[str]] = {
    yaml.ScalarEvent: frozenset(_CORE + t for t in ("str", "int", "float", "bool", "null")),
    yaml.SequenceStartEvent: frozenset({_CORE + "seq"}),
    yaml.MappingStartEvent: frozenset({_CORE + "map"}),
}
# what a tagged scalar's text must resolve to on its own (``!!float 1`` is fine, ``!!int x`` not)
_TAG_READS_AS = {_CORE + "int": ("int",), _CORE + "float": ("int", "float"),
                 _CORE + "bool": ("bool",), _CORE + "null": ("null",)}
_TAG_WORDS = {"int": "an integer", "float": "a number", "bool": "true or false", "null": "null"}


def _short_tag(tag: str) -> str:
    return tag.replace(_CORE, "!!")


class _BoundedLoader(yaml.SafeLoader):
    """PyYAML's safe loader with bounded depth and alias expansion and only core tags.

    The checks run while composing (before any value is built), so a bomb is refused after
    reading at most :data:`MAX_VALUES` values and a deep document after :data:`MAX_DEPTH`
    levels, never by running out of memory or stack.
    """

    # no implicit dates (2026-11-28 stays text) and no YAML 1.1 "value" key (a plain "=")
    yaml_implicit_resolvers = {
        first: [(tag, rx) for tag, rx in resolvers
                if tag not in (_CORE + "timestamp", _CORE + "value", _CORE + "yaml")]
        for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()}

    def __init__(self, text: str, file: Path | None) -> None:
        super().__init__(text)
        self.file = file
        self.depth = 0
        self.values = 0  # values composed so far, aliases counted as the values they repeat
        self.sizes: dict[str, int] = {}  # anchor -> values it stands for (once composed)

    def compose_node(self, parent: yaml.Node | None, index: Any) -> yaml.Node:
        event = self.peek_event()
        line = event.start_mark.line + 1
        if isinstance(event, yaml.AliasEvent):
            anchor = event.anchor
            if anchor in self.anchors and anchor not in self.sizes:
                raise SuiteError(f"alias *{anchor} is inside the value &{anchor} names (a loop); "
                                 "point it at a value defined before it", file=self.file, line=line)
            self.values += self.sizes.get(anchor, 0)
            if self.values > MAX_VALUES:
                raise SuiteError(f"alias *{anchor} expands the file past {MAX_VALUES} values "
                                 "(aliases of aliases multiply); a suite needs far fewer, use "
                                 "fewer nested aliases", file=self.file, line=line)
            return super().compose_node(parent, index)
        self._check_tag(event, line)
        self.values += 1
        before = self.values
        collection = isinstance(event, (yaml.SequenceStartEvent, yaml.MappingStartEvent))
        if collection:
            self.depth += 1
            if self.depth > MAX_DEPTH:
                raise SuiteError(f"mappings and lists nested more than {MAX_DEPTH} levels deep; a "
                                 "suite needs a few levels, remove the extra nesting",
                                 file=self.file, line=line)
        node = super().compose_node(parent, index)
        if collection:
            self.depth -= 1
        anchor = getattr(event, "anchor", None)
        if anchor is not None:
            self.sizes[anchor] = self.values - before + 1
        return node

    def _check_tag(self, event: yaml.Event, line: int) -> None:
        tag = getattr(event, "tag", None)
        if tag is None:
            return
        if tag not in _ALLOWED_TAGS.get(type(event), frozenset()):
            raise SuiteError(f"YAML tag {_short_tag(tag)} is not allowed; suites hold plain "
                             "mappings, lists, strings and numbers (remove the tag)",
                             file=self.file, line=line)
        if tag in _TAG_READS_AS:
            assert isinstance(event, yaml.ScalarEvent)
            reads = self.resolve(yaml.ScalarNode, event.value, (True, False))
            if reads.replace(_CORE, "") not in _TAG_READS_AS[tag]:
                kind = _TAG_WORDS[tag.replace(_CORE, "")]
                raise SuiteError(f"={show(event.value)}: tagged {_short_tag(tag)} but is not "
                                 f"{kind}; remove the tag", file=self.file, line=line)


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
        with path.open("rb") as fh:
            data = fh.read(MAX_BYTES + 1)
    except FileNotFoundError:
        raise SuiteError("file not found", file=path) from None
    except IsADirectoryError:
        raise SuiteError("is a folder, not a suite file", file=path) from None
    if len(data) > MAX_BYTES:
        raise SuiteError(f"is larger than {MAX_BYTES:,} bytes; a suite is a short text "
                         "file (put data in the files it names)", file=path) from None
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = data[:exc.start].count(b"\n") + 1
        raise SuiteError(f"not UTF-8 text ({exc.reason} at byte {exc.start}); save the file as "
                         "UTF-8", file=path, line=line) from None
    return load_yaml_text(text, path)


def load_yaml_text(text: str, path: Path | None) -> Located:
    """Parse YAML ``text`` (attributed to ``path``) into plain values with origins."""
    try:
        loader = _BoundedLoader(text, path)
    except yaml.reader.ReaderError as exc:  # a control character YAML does not allow
        before = text[:exc.position]
        column = exc.position - (before.rfind("\n") + 1) + 1
        raise SuiteError(f"invalid YAML at column {column}: character U+{exc.character:04X} is "
                         "not allowed in YAML text; remove it", file=path,
                         line=before.count("\n") + 1) from None
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
            key = _construct(loader, key_node, file)
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
    return _construct(loader, node, file)


def _construct(loader: yaml.SafeLoader, node: yaml.Node, file: Path | None) -> Any:
    """The Python value of a scalar (or of a key written as a list or mapping)."""
    if isinstance(node, yaml.ScalarNode) and node.tag == _CORE + "merge":
        return node.value  # a plain "<<" that is not a merge key is text
    try:
        return loader.construct_object(node, deep=True)
    except (ValueError, KeyError, OverflowError) as exc:
        # the one value implicit resolution lets through: an integer of more than 4300 digits
        reason = str(exc).split(";")[0]
        what = f"={show(node.value)}: " if isinstance(node, yaml.ScalarNode) else "a value in this key "
        raise SuiteError(f"{what}cannot be read as {_short_tag(node.tag)} ({reason}); quote it to "
                         "keep it as text", file=file, line=node.start_mark.line + 1) from None


def located_from_value(value: Any, file: Path | None = None) -> Located:
    """Wrap a value built in code (no line numbers) as :class:`Located`."""
    return Located(value, {(): Origin(file, None)})


# --------------------------------------------------------------------------- include
def resolve_includes(located: Located, path: Path, seen: tuple[Path, ...],
                     ) -> tuple[Located, list[tuple[str, str]]]:
    value = located.value
    if not isinstance(value, dict) or "include" not in value:
        return located, []
    raw = value["include"]
    items = raw if isinstance(raw, list) else [raw]
    if not items:
        org = located.origin(("include",))
        raise SuiteError("=[]: names no file; name a file (or a list of files), or remove include",
                         file=org.file, line=org.line, key="include")
    merged: Located | None = None
    includes: list[tuple[str, str]] = []
    for i, item in enumerate(items):
        key: KeyPath = ("include", i) if isinstance(raw, list) else ("include",)
        org = located.origin(key)
        if not isinstance(item, str) or not item.strip():
            raise SuiteError(f"={show(item)}: must be a path (or a list of paths)", file=org.file,
                             line=org.line, key=dotted(key))
        target = (path.parent / item).resolve()
        if target in seen:
            chain = " -> ".join(p.name for p in (*seen, target))
            raise SuiteError(f"={item!r}: include cycle ({chain}); remove this include",
                             file=org.file, line=org.line, key=dotted(key))
        if len(seen) > MAX_INCLUDE_DEPTH:
            raise SuiteError(f"={item!r}: includes nested more than {MAX_INCLUDE_DEPTH} deep "
                             f"({seen[0].name} -> ... -> {path.name}); include the shared files "
                             "from the suite itself", file=org.file, line=org.line,
                             key=dotted(key))
        if not target.is_file():
            raise SuiteError(f"={item!r}: file not found ({display_path(target)}); paths are "
                             "relative to the file that names them", file=org.file, line=org.line,
                             key=dotted(key))
        inc = load_yaml(target)
        if not isinstance(inc.value, dict):
            raise SuiteError(f"an included file must hold a mapping of suite keys, not "
                             f"{kind_name(inc.value)} (included from "
                             f"{display_path(org.file)}:{org.line})", file=target, line=1)
        inc, nested = resolve_includes(inc, target, (*seen, target))
        includes.extend(nested)
        includes.append((str(target), hashlib.sha256(target.read_bytes()).hexdigest()))
        merged = inc if merged is None else _merge(merged, inc)
    own = Located({k: v for k, v in value.items() if k != "include"},
                  {p: o for p, o in located.origins.items() if not p or p[0] != "include"})
    assert merged is not None
    return _merge(merged, own), includes


def _merge(base: Located, over: Located) -> Located:
    origins: dict[KeyPath, Origin] = {}

    def copy(src: dict[KeyPath, Origin], prefix: KeyPath) -> None:
        n = len(prefix)
        for p, o in src.items():
            if p[:n] == prefix:
                origins[p] = o

    def merge(b: Any, o: Any, path: KeyPath) -> Any:
        if isinstance(b, dict) and isinstance(o, dict):
            origins[path] = over.origins.get(path) or base.origins.get(path, Origin(None, None))
            out = {}
            for k in [*b, *[k for k in o if k not in b]]:
                if k in o and k in b:
                    out[k] = merge(b[k], o[k], (*path, k))
                elif k in o:
                    out[k] = o[k]
                    copy(over.origins, (*path, k))
                else:
                    out[k] = b[k]
                    copy(base.origins, (*path, k))
            return out
        copy(over.origins, path)
        return o

    return Located(merge(base.value, over.value, ()), origins)


# --------------------------------------------------------------------------- message helpers
def dotted(keypath: KeyPath) -> str:
    """``checks.acc.gate``, ``include[0]``; a key with control characters (or nothing) in it
    shows quoted (``checks['acc\\n']``), so a message stays one line that says what it is."""
    out = ""
    for p in keypath:
        if isinstance(p, int):
            out += f"[{p}]"
        elif not p or not p.isprintable():
            out += f"[{p!r}]"
        else:
            out += f".{p}" if out else str(p)
    return out


def show(value: Any) -> str:
    """``value`` as it appears after ``key=`` in a message (short; 2.0 shows as written, 2)."""
    if value is None:
        return "null"
    if isinstance(value, float) and value.is_integer() and abs(value) < 1e15:
        value = int(value)
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def kind_name(value: Any) -> str:
    """How YAML would call ``value``'s type: a mapping, a list, a string, ..."""
    if isinstance(value, dict):
        return "a mapping"
    if isinstance(value, list):
        return "a list"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, (int, float)):
        return "a number"
    return "nothing" if value is None else f"a {type(value).__name__}"
