"""The README's metric tables, rendered from the metrics' own declarations.

Each table sits in the README between two marker comments naming the families it shows::

    <!-- metrics: calibration -->
    ...generated...
    <!-- /metrics -->

A block naming ``others`` shows every family no other block names, so a new family is in the
README (in catalogue order) before anyone writes prose for it.

``python -m audit.docs`` rewrites those blocks in ``README.md``; ``python -m audit.docs
--check`` exits 1 when they are out of date (``tests/test_registry.py`` runs the same check).
A metric's row is its direction and doc; a parameter's row its values, default and doc
(:class:`audit.checks.registry.Param`), so documenting a metric is declaring it.
"""

from __future__ import annotations

import argparse
import re
import sys
from collections.abc import Sequence
from pathlib import Path

from audit.checks.catalogue import metrics
from audit.checks.registry import Metric, Param

__all__ = ["metric_tables", "render_readme", "main"]

BLOCK = re.compile(r"(<!-- metrics: (?P<families>[a-z_ ]+) -->\n)(?P<body>.*?)(<!-- /metrics -->)",
                   re.S)
_KINDS = {"str": "text", "int": "integer", "number": "number", "bool": "`true` \\| `false`",
          "str_list": "list of text", "int_list": "list of integers",
          "number_list": "list of numbers"}
_RANGE_WORDS = (("minimum", "≥"), ("exclusive_minimum", ">"), ("maximum", "≤"),
                ("exclusive_maximum", "<"))


def _cell(text: str) -> str:
    return text.replace("|", "\\|")


def _values(p: Param) -> str:
    """What a parameter accepts: its choices, or its kind with its range."""
    if p.choices:
        return " \\| ".join(f"`{c}`" for c in p.choices)
    bounds = ", ".join(f"{word} {getattr(p, attr):g}" for attr, word in _RANGE_WORDS
                       if getattr(p, attr) is not None)
    return _KINDS[p.kind] + (f" {bounds}" if bounds else "")


def metric_tables(families: Sequence[str]) -> str:
    """The metric table of ``families`` and the table of the parameters they take.

    Parameters
    ----------
    families : sequence of str
        Family names as the metrics carry them (``performance``, ``data``, ...).
    """
    chosen = [m for m in metrics().values() if m.family in families]
    unknown = set(families) - {m.family for m in chosen}
    if unknown:
        raise ValueError(f"no registered metric is of family {', '.join(sorted(unknown))}")
    chosen.sort(key=lambda m: list(families).index(m.family))  # stable: catalogue order within
    lines = ["| metric | direction | what it computes | parameters |", "|---|---|---|---|"]
    params: dict[str, list[tuple[Param, list[Metric]]]] = {}
    for m in chosen:
        names = ", ".join(f"`{k}`" for k in m.params)
        lines.append(f"| `{m.name}` | {m.direction} | {_cell(m.doc)} | {names} |")
        for key, p in m.params.items():
            variants = params.setdefault(key, [])
            for declared, users in variants:
                if declared == p:
                    users.append(m)
                    break
            else:
                variants.append((p, [m]))
    if params:
        lines += ["", "| parameter | values | default | what it sets |", "|---|---|---|---|"]
        for key, variants in params.items():
            for p, users in variants:
                who = "" if len(variants) == 1 else " (" + ", ".join(m.name for m in users) + ")"
                lines.append(f"| `{key}`{who} | {_values(p)} | "
                             f"{'' if p.default_text is None else f'`{p.default_text}`'} | "
                             f"{_cell(p.doc)} |")
    return "\n".join(lines) + "\n"


def render_readme(text: str) -> str:
    """``text`` with every marked block replaced by the tables generated for its families; the
    ``others`` block gets the families no other block names (nothing when there are none)."""
    named = {f for m in BLOCK.finditer(text) for f in m.group("families").split()} - {"others"}
    rest = list(dict.fromkeys(m.family for m in metrics().values() if m.family not in named))

    def block(m: re.Match[str]) -> str:
        families = m.group("families").split()
        if families == ["others"]:
            body = "".join(f"\nFamily `{f}`:\n\n" + metric_tables([f]) for f in rest)
            return m.group(1) + body.lstrip("\n") + m.group(4)
        return m.group(1) + metric_tables(families) + m.group(4)

    return BLOCK.sub(block, text)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m audit.docs", description=__doc__.split("\n")[0])
    parser.add_argument("readme", nargs="?", default="README.md", type=Path)
    parser.add_argument("--check", action="store_true",
                        help="exit 1 if the README's tables are not the generated ones")
    args = parser.parse_args(argv)
    text = args.readme.read_text(encoding="utf-8")
    rendered = render_readme(text)
    if args.check:
        if rendered != text:
            print(f"{args.readme}: the metric tables are out of date; run python -m audit.docs",
                  file=sys.stderr)
            return 1
        return 0
    if rendered != text:
        args.readme.write_text(rendered, encoding="utf-8")
        print(f"{args.readme}: metric tables rewritten")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
