"""Inline SVG plots for the HTML report, drawn from the report's plain data.

Each function returns :class:`markupsafe.Markup`: every piece of user text inside (group
labels, metric names) is escaped here, so templates print plots without turning autoescape
off. No scripts, no external resources; sizes are a few kilobytes.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from markupsafe import Markup, escape

__all__ = ["reliability_svg", "group_bars_svg"]

TEACHER, STUDENT = "#4c6ef5", "#e8590c"  # blue and orange: distinguishable in colour-blind palettes
FONT = 'font-family="system-ui, sans-serif" font-size="11"'


def _legend(x: float, y: float) -> str:
    return (f'<rect x="{x}" y="{y - 8}" width="10" height="10" fill="{TEACHER}"/>'
            f'<text x="{x + 14}" y="{y + 1}" {FONT}>teacher</text>'
            f'<rect x="{x + 70}" y="{y - 8}" width="10" height="10" fill="{STUDENT}"/>'
            f'<text x="{x + 84}" y="{y + 1}" {FONT}>student</text>')


def reliability_svg(rows: Sequence[dict[str, Any]], title: str = "Reliability") -> Markup:
    """Teacher and student reliability diagrams overlaid: accuracy against mean confidence per
    bin (marker area ~ rows in the bin), with the diagonal of perfect calibration."""
    w, h, left, top, size = 340, 320, 44, 28, 260

    def px(v: float) -> float:
        return left + v * size

    def py(v: float) -> float:
        return top + (1 - v) * size

    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {w} {h}" width="{w}" '
             f'height="{h}" role="img" aria-label="{escape(title)}">',
             f'<text x="{left}" y="16" {FONT} font-weight="600">{escape(title)}</text>',
             f'<rect x="{left}" y="{top}" width="{size}" height="{size}" fill="none" '
             'stroke="#adb5bd"/>',
             f'<line x1="{px(0)}" y1="{py(0)}" x2="{px(1)}" y2="{py(1)}" stroke="#adb5bd" '
             'stroke-dasharray="4 3"/>']
    for t in (0.0, 0.5, 1.0):
        parts.append(f'<text x="{px(t)}" y="{top + size + 14}" {FONT} text-anchor="middle">{t:g}</text>')
        parts.append(f'<text x="{left - 6}" y="{py(t) + 4}" {FONT} text-anchor="end">{t:g}</text>')
    parts.append(f'<text x="{px(0.5)}" y="{h - 4}" {FONT} text-anchor="middle">confidence</text>')
    parts.append(f'<text x="12" y="{py(0.5)}" {FONT} text-anchor="middle" '
                 f'transform="rotate(-90 12 {py(0.5)})">accuracy</text>')
    total = max(sum(r["count"] for r in rows if r.get("model") == "student"), 1)
    for who, colour in (("teacher", TEACHER), ("student", STUDENT)):
        pts = [(r["confidence"], r["accuracy"], r["count"]) for r in rows
               if r.get("model") == who and r.get("count")]
        if not pts:
            continue
        line = " ".join(f"{px(c):.1f},{py(a):.1f}" for c, a, _ in pts)
        parts.append(f'<polyline points="{line}" fill="none" stroke="{colour}" stroke-width="1.5"/>')
        for c, a, n in pts:
            r = 2.5 + 7 * (n / total) ** 0.5
            parts.append(f'<circle cx="{px(c):.1f}" cy="{py(a):.1f}" r="{r:.1f}" fill="{colour}" '
                         f'fill-opacity="0.55"><title>{who}: confidence {c:.3f}, accuracy {a:.3f}, '
                         f'n={n}</title></circle>')
    parts.append(_legend(left + 8, top + 16))
    parts.append("</svg>")
    return Markup("".join(parts))


def group_bars_svg(groups: Sequence[dict[str, Any]], metric: str, title: str) -> Markup:
    """Per-group bars of ``metric`` for teacher and student, with interval whiskers; excluded
    groups (too small or empty) are drawn grey and labelled."""
    rows = [g for g in groups if g.get("teacher") is not None]
    bar, gap, label_w, plot_w = 9, 10, 190, 300
    h = 40 + len(rows) * (2 * bar + gap) + 24
    w = label_w + plot_w + 70

    def px(v: float) -> float:
        return label_w + max(0.0, min(1.0, v)) * plot_w

    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {w} {h}" width="{w}" '
             f'height="{h}" role="img" aria-label="{escape(title)}">',
             f'<text x="4" y="16" {FONT} font-weight="600">{escape(title)}</text>',
             _legend(label_w, 16)]
    for t in (0.0, 0.25, 0.5, 0.75, 1.0):
        parts.append(f'<line x1="{px(t)}" y1="30" x2="{px(t)}" y2="{h - 22}" stroke="#e9ecef"/>')
        parts.append(f'<text x="{px(t)}" y="{h - 8}" {FONT} text-anchor="middle">{t:g}</text>')
    y = 34
    for g in rows:
        included = g.get("included", True)
        label = f"{g['group']} (n={g['n']})" + ("" if included else f" - {g.get('status', '')}")
        parts.append(f'<text x="{label_w - 6}" y="{y + bar + 3}" {FONT} text-anchor="end" '
                     f'fill="{"#212529" if included else "#868e96"}">{escape(label)}</text>')
        for i, (who, colour) in enumerate((("teacher", TEACHER), ("student", STUDENT))):
            values = g.get(who) or {}
            v = values.get(metric)
            yy = y + i * bar
            if v is None:
                continue
            fill = colour if included else "#ced4da"
            parts.append(f'<rect x="{label_w}" y="{yy}" width="{px(v) - label_w:.1f}" height="{bar - 1}" '
                         f'fill="{fill}"><title>{escape(who)} {escape(metric)} {v:.3f}</title></rect>')
            ci = values.get(f"{metric}_ci")
            if ci and ci[0] is not None and ci[1] is not None:
                mid = yy + (bar - 1) / 2
                parts.append(f'<line x1="{px(ci[0]):.1f}" y1="{mid}" x2="{px(ci[1]):.1f}" y2="{mid}" '
                             'stroke="#212529" stroke-width="1"/>')
        y += 2 * bar + gap
    parts.append("</svg>")
    return Markup("".join(parts))
