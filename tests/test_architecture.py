"""The import graph of ``audit/``: no circles, and the layering the design describes.

Every module's AST is walked, imports inside functions (and under ``TYPE_CHECKING``) included:
``import audit.x``, ``from audit.x import y`` and a package import ``from audit.checks import
calibration`` (an import of ``audit.checks.calibration``) all count. Importing a submodule
does not count as importing its parent package's ``__init__`` (Python runs it first, but a
package whose ``__init__`` re-exports its submodules would otherwise be a circle with each of
them). Nothing is imported: the test reads files, so it takes milliseconds.
"""

from __future__ import annotations

import ast
from collections import deque
from collections.abc import Iterable, Iterator
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parent.parent / "audit"

Edge = tuple[str, str]

# Imports allowed to close a circle while another change removes them: {edge: why, and who
# removes it}. The graph without them must have no circle, and each must still exist (delete
# it here when it goes). None today: issue 11 made the metric registry a leaf (its families
# no longer import it back through the catalogue) and moved the models off suite.py.
KNOWN_CYCLE_EDGES: dict[Edge, str] = {}


def module_files() -> dict[str, Path]:
    """``{"audit.models.base": Path(...)}`` for every module of the package."""
    found = {}
    for path in sorted(PACKAGE.rglob("*.py")):
        parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts.pop()
        found[".".join(parts)] = path
    return found


def _resolve(name: str, modules: Iterable[str]) -> str | None:
    """The module ``name`` lands in: itself, or the nearest enclosing module (``audit.x.f`` ->
    ``audit.x``); ``None`` outside the package."""
    known = set(modules)
    while name:
        if name in known:
            return name
        name = name.rpartition(".")[0]
    return None


def imports_in(source: str, module: str, modules: set[str], *, is_package: bool = False,
               module_level: bool = False) -> set[str]:
    """The package's modules that ``source`` (the text of ``module``) imports: anywhere in it,
    or with ``module_level`` only where importing the module runs them (not inside functions,
    nor under ``if TYPE_CHECKING:``)."""
    package = module if is_package else module.rpartition(".")[0]
    out: set[str] = set()
    for node in _walk(ast.parse(source), module_level):
        if isinstance(node, ast.Import):
            targets = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:  # from . import x, from ..y import z
                parts = package.split(".")
                anchor = parts[: len(parts) - node.level + 1]
                base = ".".join([*anchor, base] if base else anchor)
            # from audit.checks import calibration: the submodule, when there is one
            targets = [f"{base}.{alias.name}" if f"{base}.{alias.name}" in modules else base
                       for alias in node.names]
        else:
            continue
        for target in targets:
            found = _resolve(target, modules)
            if found is not None and found != module:
                out.add(found)
    return out


def _walk(tree: ast.AST, module_level: bool) -> Iterator[ast.AST]:
    """Every node, or only those that run when the module is imported."""
    if not module_level:
        yield from ast.walk(tree)
        return
    todo = [tree]
    while todo:
        node = todo.pop()
        yield node
        for child in ast.iter_child_nodes(node):
            if isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda)):
                continue
            if isinstance(child, ast.If) and "TYPE_CHECKING" in ast.unparse(child.test):
                todo += child.orelse
                continue
            todo.append(child)


def imports_of(module: str, path: Path, modules: set[str], *,
               module_level: bool = False) -> set[str]:
    """The package's modules that the file of ``module`` imports."""
    return imports_in(path.read_text(encoding="utf-8"), module, modules,
                      is_package=path.name == "__init__.py", module_level=module_level)


def import_graph() -> dict[str, set[str]]:
    files = module_files()
    modules = set(files)
    return {name: imports_of(name, path, modules) for name, path in files.items()}


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """One circle through each strongly connected component of more than one module, as the
    path ``[a, b, ..., a]`` (Tarjan's algorithm, then a shortest way back to its start)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    components: list[set[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in sorted(graph.get(v, ())):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component: set[str] = set()
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.add(w)
                if w == v:
                    break
            if len(component) > 1:
                components.append(component)

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return [_shortest_circle(graph, component) for component in components]


def _shortest_circle(graph: dict[str, set[str]], component: set[str]) -> list[str]:
    """A shortest circle through the alphabetically first module of ``component``."""
    start = min(component)
    came_from: dict[str, str] = {}
    queue = deque([start])
    while queue:
        v = queue.popleft()
        for w in sorted(graph[v] & component):
            if w == start:
                path = [v]
                while path[-1] != start:
                    path.append(came_from[path[-1]])
                return [*reversed(path), start]
            if w not in came_from:
                came_from[w] = v
                queue.append(w)
    raise AssertionError(f"no circle through {start}")  # pragma: no cover - a component has one


def without(graph: dict[str, set[str]], edges: Iterable[Edge]) -> dict[str, set[str]]:
    drop = set(edges)
    return {v: {w for w in ws if (v, w) not in drop} for v, ws in graph.items()}


@pytest.fixture(scope="module")
def graph() -> dict[str, set[str]]:
    return import_graph()


def _in(module: str, *layers: str) -> bool:
    """``module`` is one of ``layers`` or inside one of them (a package's submodules)."""
    return any(module == layer or module.startswith(layer + ".") for layer in layers)


def _violations(graph: dict[str, set[str]], importers: tuple[str, ...],
                allowed: tuple[str, ...]) -> set[Edge]:
    return {(v, w) for v, ws in graph.items() if _in(v, *importers) for w in ws
            if not _in(w, *allowed)}


def _show(edges: Iterable[Edge]) -> str:
    return "\n".join(f"  {a} -> {b}" for a, b in sorted(edges))


def test_no_import_cycle(graph: dict[str, set[str]]) -> None:
    found = cycles(without(graph, KNOWN_CYCLE_EDGES))
    assert not found, "import circles in audit/ (imports inside functions count):\n" + "\n".join(
        "  " + " -> ".join(c) for c in found)


def test_the_known_cycle_edges_still_exist(graph: dict[str, set[str]]) -> None:
    assert len(KNOWN_CYCLE_EDGES) == 0
    gone = [f"{a} -> {b}" for a, b in KNOWN_CYCLE_EDGES if b not in graph.get(a, set())]
    assert not gone, "no longer imported; delete from KNOWN_CYCLE_EDGES: " + ", ".join(gone)


def test_a_circle_is_found_and_printed_as_a_path() -> None:
    graph = {"a": {"b"}, "b": {"c", "d"}, "c": {"a"}, "d": set(), "e": {"a", "e"}}
    assert cycles(graph) == [["a", "b", "c", "a"]]
    assert cycles(without(graph, {("c", "a")})) == []


def test_the_walk_sees_imports_inside_functions_and_from_packages(
        graph: dict[str, set[str]]) -> None:
    """An import inside a function counts, and so does a submodule named in ``from package
    import module`` or a relative import; ``module_level`` leaves out functions and
    ``TYPE_CHECKING``."""
    assert "audit.models.torch" in graph["audit.models"]  # inside load_model only
    assert "audit.models.onnx" in graph["audit.models.fingerprint"]  # inside content_sha256
    modules = {"audit", "audit.checks", "audit.checks.calibration", "audit.report",
               "audit.report.safe", "audit.results", "audit.spec", "audit.stats"}
    source = ("from typing import TYPE_CHECKING\n"
              "from audit.checks import calibration, nothing_such\n"
              "from .safe import escape\n"
              "import audit.stats.interval\n"
              "if TYPE_CHECKING:\n    from audit.spec import Suite\n"
              "def f():\n    from audit.results import AuditReport\n")
    everything = imports_in(source, "audit.report.html", modules)
    assert everything == {"audit.checks.calibration", "audit.checks", "audit.report.safe",
                          "audit.stats", "audit.spec", "audit.results"}
    loaded = imports_in(source, "audit.report.html", modules, module_level=True)
    assert loaded == everything - {"audit.spec", "audit.results"}


# ------------------------------------------------------------------------------- layering
# The spec is the bottom: suite objects, nothing of the audit's but its errors.
SPEC_LAYER = ("audit.spec", "audit.errors", "audit.extras")
# Models and data (and the column types the suite declares, read with the data) depend on the
# spec only.
MODEL_DATA_LAYER = (*SPEC_LAYER, "audit.data", "audit.coltypes", "audit.models")
MODEL_FORMATS = tuple(f"audit.models.{f}" for f in
                      ("skops", "onnx", "torch", "callable", "predictions", "pickle"))
# The modules of audit.models that pick a format: the dispatcher and the content hash.
FORMAT_DISPATCH = ("audit.models", "audit.models.fingerprint")

# What report/ imports besides results (and spec, errors, provenance), as measured in issue 11:
# the metric registry, where each family declares its report section next to its metrics
# (titles, units, figures), and the cache's atomic file write. Nothing of the runner, models,
# data or probes.
REPORT_READS_BELOW: set[Edge] = {
    ("audit.report.html", "audit.checks.catalogue"),
    ("audit.report.html", "audit.checks.registry"),
    ("audit.report.writer", "audit.cache"),  # atomic_write_bytes
}

# Metrics (audit.checks) import nothing from models, data, the cache or the runner. Known
# exceptions {edge: why, and who removes it}; delete an entry when its import goes (the test
# says so). None since issue 11 moved the attacks' model calls into audit/probes.
METRICS_KNOWN_EXCEPTIONS: dict[Edge, str] = {}


def test_the_spec_imports_only_errors(graph: dict[str, set[str]]) -> None:
    assert graph["audit.spec"] <= {"audit.errors"}, graph["audit.spec"]
    assert graph["audit.errors"] == set()


def test_models_and_data_depend_on_the_spec_only(graph: dict[str, set[str]]) -> None:
    bad = _violations(graph, ("audit.data", "audit.coltypes", "audit.models"), MODEL_DATA_LAYER)
    assert not bad, "models and data import only spec, errors, data and models.*:\n" + _show(bad)


def test_nothing_models_depend_on_imports_them_back(graph: dict[str, set[str]]) -> None:
    """What the adapters stand on (data, coltypes, spec, errors) never imports audit.models."""
    below = {w for v, ws in graph.items() if _in(v, "audit.models") for w in ws
             if not _in(w, "audit.models")}
    bad = {(v, w) for v in below for w in graph[v] if _in(w, "audit.models")}
    assert not bad, _show(bad)


def test_no_format_module_imports_another_or_the_base_a_format(
        graph: dict[str, set[str]]) -> None:
    """Each format module stands alone on the base and the shared helpers; only the dispatcher
    (load_model) and the content hash (ONNX external data) pick a format module."""
    bad = {(v, w) for v, ws in graph.items() if _in(v, "audit.models")
           and v not in FORMAT_DISPATCH for w in ws if w in MODEL_FORMATS or w == "audit.models"}
    assert not bad, _show(bad)
    outside = {(v, w) for v, ws in graph.items() if not _in(v, "audit.models") for w in ws
               if _in(w, "audit.models") and w not in ("audit.models", "audit.models.isolation")}
    assert not outside, "use audit.models' public face:\n" + _show(outside)


def test_torch_and_onnx_adapters_load_only_when_used() -> None:
    """No module imports the torch or onnx adapter at module level (torch and onnxruntime
    load when a suite has such a model)."""
    files = module_files()
    modules = set(files)
    lazy = {"audit.models.torch", "audit.models.onnx"}
    bad = {(name, w) for name, path in files.items()
           for w in imports_of(name, path, modules, module_level=True) & lazy}
    assert not bad, _show(bad)


def test_report_reads_results_and_only_the_registry_besides(graph: dict[str, set[str]]) -> None:
    found = {(v, w) for v, ws in graph.items() if _in(v, "audit.report") for w in ws
             if _in(w, "audit.runner", "audit.models", "audit.data", "audit.checks",
                    "audit.probes", "audit.cache", "audit.suite", "audit.plugin", "audit.cli")}
    assert found == REPORT_READS_BELOW, "report/ imports changed (update REPORT_READS_BELOW only "\
        "to remove an entry):\n" + _show(found ^ REPORT_READS_BELOW)


def test_metrics_import_nothing_from_models_data_probes_cache_or_runner(
        graph: dict[str, set[str]]) -> None:
    found = {(v, w) for v, ws in graph.items() if _in(v, "audit.checks") for w in ws
             if _in(w, "audit.models", "audit.data", "audit.cache", "audit.runner",
                    "audit.suite", "audit.plugin", "audit.cli", "audit.probes")
             and w != "audit.probes.artifacts"}  # the artifacts are what metrics read
    assert len(METRICS_KNOWN_EXCEPTIONS) == 0
    assert found <= set(METRICS_KNOWN_EXCEPTIONS), "metrics import below their layer:\n" + _show(
        found - set(METRICS_KNOWN_EXCEPTIONS))
    gone = set(METRICS_KNOWN_EXCEPTIONS) - found
    assert not gone, "no longer imported; delete from METRICS_KNOWN_EXCEPTIONS:\n" + _show(gone)


def test_only_the_plugin_and_the_cli_import_the_runner(graph: dict[str, set[str]]) -> None:
    importers = {v for v, ws in graph.items() if "audit.runner" in ws}
    # the monitor's run and compare() sit beside the CLI: each drives a suite run
    assert importers <= {"audit.plugin", "audit.cli", "audit.monitor.run",
                         "audit.comparison"}, importers
    # nothing imports the two entry points, but the CLI may read the plugin's run state (the
    # report paths a `distill-audit run` ends with)
    top = {(v, w) for v, ws in graph.items() for w in ws if w in ("audit.plugin", "audit.cli")}
    assert top <= {("audit.cli", "audit.plugin")}, top


def test_no_private_name_crosses_a_module_boundary() -> None:
    """``from audit.x import _name`` between two modules of the package: a name another module
    needs is public (the issue counted twelve such crossings)."""
    bad = []
    for name, path in module_files().items():
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if not isinstance(node, ast.ImportFrom) or not (node.module or "").startswith("audit"):
                continue
            bad += [f"{name}: from {node.module} import {a.name}" for a in node.names
                    if a.name.startswith("_") and not a.name.startswith("__")]
    assert not bad, "\n".join(bad)


if __name__ == "__main__":  # print the graph: python tests/test_architecture.py
    g = import_graph()
    for name in sorted(g):
        print(name, "->", ", ".join(sorted(g[name])) or "-")
    for c in cycles(g):
        print("CYCLE", " -> ".join(c))
