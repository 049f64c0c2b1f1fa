"""The metric registry is a leaf, the catalogue loads the families, and each metric's
parameters are declared once, next to it: the parser, the JSON Schema and the README tables
are generated from those declarations."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

from audit import docs
from audit.checks import catalogue
from audit.checks.registry import METRICS, Param, get_metric, metric_names
from audit.fields import SECTIONS, check_fields, param_fields

ROOT = Path(__file__).resolve().parents[1]
AUDIT = ROOT / "audit"
KINDS = ("str", "int", "number", "bool", "str_list", "int_list", "number_list")


def _imports(path: Path) -> set[str]:
    """Every module ``path`` imports, at module level or inside functions."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found |= {a.name for a in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module)
            found |= {f"{node.module}.{a.name}" for a in node.names}
    return found


def _module(path: Path) -> str:
    return ".".join(path.relative_to(ROOT).with_suffix("").parts)


def test_registry_imports_no_family_and_names_none() -> None:
    path = AUDIT / "checks" / "registry.py"
    assert not [m for m in _imports(path) if m.startswith("audit")]
    text = path.read_text(encoding="utf-8")
    assert "import_module" not in text and "__import__" not in text
    for module in catalogue.MODULES:
        assert f'"{module}"' not in text and f"'{module}'" not in text


def test_families_import_the_registry_never_the_catalogue() -> None:
    below = [p for folder in ("checks", "probes", "models", "metrics", "data")
             if (AUDIT / folder).is_dir() for p in sorted((AUDIT / folder).rglob("*.py"))]
    below += [p for p in (AUDIT / "spec.py", AUDIT / "results.py") if p.exists()]
    importers = [_module(p) for p in below if "audit.checks.catalogue" in _imports(p)
                 and p.name != "catalogue.py"]
    assert importers == [], "only the code that needs every metric may import the catalogue"
    for module in catalogue.MODULES:
        path = ROOT / (module.replace(".", "/") + ".py")
        assert "audit.checks.registry" in _imports(path), module


def test_the_registry_alone_loads_nothing_and_the_catalogue_loads_every_family() -> None:
    code = (
        "import sys\n"
        "from audit.checks import registry\n"
        "assert registry.metric_names() == [], registry.metric_names()\n"
        "assert not [m for m in sys.modules if m.startswith('audit.checks.') and m != "
        "'audit.checks.registry'], sorted(sys.modules)\n"
        "from audit.checks import catalogue\n"
        "names = registry.metric_names()\n"
        "assert set(catalogue.MODULES) <= set(sys.modules)\n"
        "print(len(names))\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT,
                         timeout=300)
    assert out.returncode == 0, out.stderr
    assert int(out.stdout) == len(metric_names()) == len(METRICS)


def _registers(path: Path) -> bool:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    return any(isinstance(n, ast.Call) and isinstance(n.func, ast.Name) and n.func.id == "register"
               for n in ast.walk(tree))


@pytest.mark.parametrize("module", catalogue.MODULES)
def test_every_catalogue_module_registers_metrics(module: str) -> None:
    assert _registers(ROOT / (module.replace(".", "/") + ".py")), module


def test_the_catalogue_is_the_only_way_families_come_in() -> None:
    listed = set(catalogue.MODULES)
    registering = {_module(p) for p in sorted((AUDIT / "checks").glob("*.py")) if _registers(p)}
    assert registering == listed, "a module that registers metrics is listed in the catalogue"
    families = [m.family for m in catalogue.metrics().values()]
    assert families == sorted(families, key=families.index)  # grouped, in catalogue order
    assert catalogue.get_metric("accuracy") is get_metric("accuracy")


@pytest.mark.parametrize("name", metric_names())
def test_every_parameter_declaration_is_well_formed(name: str) -> None:
    metric = get_metric(name)
    for key, p in metric.params.items():
        assert isinstance(p, Param), (name, key)
        assert p.kind in KINDS, (name, key, p.kind)
        assert p.doc and p.doc[-1] in ".)?", (name, key, p.doc)
        if p.range:
            assert p.kind in ("int", "number", "int_list", "number_list"), (name, key)
        if p.default is not None and p.choices:  # a list's default: each of its items
            items = p.default if p.kind.endswith("_list") else (p.default,)
            assert all(v in p.choices for v in items), (name, key)
        assert key not in SECTIONS["check"], f"{name}.{key} shadows a check key"


def test_one_key_has_one_kind_and_the_check_section_is_generated() -> None:
    fields = param_fields()
    declared = {k: {p.kind for m in METRICS.values() for kk, p in m.params.items() if kk == k}
                for k in fields}
    assert all(len(kinds) == 1 for kinds in declared.values()), declared
    assert list(check_fields()) == ["metric", *fields, "description", "baseline", "gate"]
    # the order the suite's messages list them in: each key with the first family declaring it
    first_seen = list(dict.fromkeys(k for m in catalogue.metrics().values() for k in m.params))
    assert list(fields) == first_seen
    assert first_seen[:20] == ["average", "flips", "bins", "binning", "by", "intersections",
                               "min_group_size", "group_metric", "batch_sizes", "repeats",
                               "max_seconds", "columns", "fdr", "max_conditions", "attack", "eps",
                               "norm", "samples", "fraction", "members"]  # new keys go last


def test_a_metric_that_declares_no_parameter_takes_none() -> None:
    from audit.errors import SuiteError
    from audit.suite import parse_check

    with pytest.raises(SuiteError, match="accuracy takes no bins"):
        parse_check("acc", {"metric": "accuracy", "bins": 10})
    spec = parse_check("cal", {"metric": "ece", "bins": 10})
    assert spec.params == {"bins": 10}  # declared defaults are not filled in: the metric applies them


def test_readme_metric_tables_are_the_generated_ones() -> None:
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    blocks = docs.BLOCK.findall(text)
    shown = [f for _, families, _, _ in blocks for f in families.split() if f != "others"]
    assert sorted(shown) == sorted({m.family for m in METRICS.values()}), "one table per family"
    assert docs.render_readme(text) == text, "run: python -m audit.docs"
    for name in metric_names():
        assert f"| `{name}` |" in text


def test_docs_check_mode(tmp_path: Path) -> None:
    readme = tmp_path / "README.md"
    readme.write_text("# x\n\n<!-- metrics: calibration -->\nstale\n<!-- /metrics -->\n",
                      encoding="utf-8")
    assert docs.main([str(readme), "--check"]) == 1
    assert docs.main([str(readme)]) == 0
    assert docs.main([str(readme), "--check"]) == 0
    assert "| `ece` | lower |" in readme.read_text(encoding="utf-8")


def test_a_family_without_a_readme_block_is_listed_under_others() -> None:
    """A new family needs no README edit: the ``others`` block shows it until it has a section."""
    from audit.docs import BLOCK, render_readme

    text = (ROOT / "README.md").read_text(encoding="utf-8")
    assert "<!-- metrics: others -->\n<!-- /metrics -->" in text  # every family has a section
    own = next(m for m in BLOCK.finditer(text) if m.group("families") == "confidence")
    without = text.replace(own.group(0), "")
    rendered = render_readme(without)
    others = next(m for m in BLOCK.finditer(rendered) if m.group("families") == "others")
    assert others.group("body").startswith("Family `confidence`:\n\n| metric |")
    assert "| `disagreement_by_confidence` | lower |" in others.group("body")
