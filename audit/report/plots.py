"""Inline SVG plots for the HTML report, drawn from the report's plain data.

Each function returns :class:`markupsafe.Markup`: every piece of user text inside (group
labels, metric names) is made visible (:func:`audit.safe.visible`) and escaped here,
so templates print plots without turning autoescape off. No scripts, no external resources;
sizes are a few kilobytes.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from markupsafe import Markup, escape

from audit.results import Figure
from audit.safe import visible

__all__ = ["figure_svg", "reliability_svg", "group_bars_svg", "latency_svg", "roc_svg",
           "curve_svg"]

TEACHER, STUDENT = "#4c6ef5", "#e8590c"  # blue and orange: distinguishable in colour-blind palettes
FONT = 'font-family="system-ui, sans-serif" font-size="11"'


def _text(value: object) -> Markup:
    """User text (a label, a metric or column name) for SVG: made visible, then escaped."""
    return escape(visible(value))


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
             f'height="{h}" role="img" aria-label="{_text(title)}">',
             f'<text x="{left}" y="16" {FONT} font-weight="600">{_text(title)}</text>',
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
    bar, gap, label_w, plot_w = 9, 10, 260, 300
    h = 44 + len(rows) * (2 * bar + gap) + 24
    w = label_w + plot_w + 70

    def px(v: float) -> float:
        return label_w + max(0.0, min(1.0, v)) * plot_w

    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {w} {h}" width="{w}" '
             f'height="{h}" role="img" aria-label="{_text(title)}">',
             f'<text x="4" y="16" {FONT} font-weight="600">{_text(title)}</text>',
             _legend(label_w + plot_w - 130, 32)]
    for t in (0.0, 0.25, 0.5, 0.75, 1.0):
        parts.append(f'<line x1="{px(t)}" y1="40" x2="{px(t)}" y2="{h - 22}" stroke="#e9ecef"/>')
        parts.append(f'<text x="{px(t)}" y="{h - 8}" {FONT} text-anchor="middle">{t:g}</text>')
    y = 44
    for g in rows:
        included = g.get("included", True)
        label = visible(f"{g['group']} (n={g['n']})" + ("" if included else " excluded"))
        if len(label) > 44:
            label = "..." + label[-41:]
        parts.append(f'<text x="{label_w - 6}" y="{y + bar + 3}" {FONT} text-anchor="end" '
                     f'fill="{"#212529" if included else "#868e96"}">{_text(label)}</text>')
        for i, (who, colour) in enumerate((("teacher", TEACHER), ("student", STUDENT))):
            values = g.get(who) or {}
            v = values.get(metric)
            yy = y + i * bar
            if v is None:
                continue
            fill = colour if included else "#ced4da"
            parts.append(f'<rect x="{label_w}" y="{yy}" width="{px(v) - label_w:.1f}" height="{bar - 1}" '
                         f'fill="{fill}"><title>{_text(who)} {_text(metric)} {v:.3f}</title></rect>')
            ci = values.get(f"{metric}_ci")
            if ci and ci[0] is not None and ci[1] is not None:
                mid = yy + (bar - 1) / 2
                parts.append(f'<line x1="{px(ci[0]):.1f}" y1="{mid}" x2="{px(ci[1]):.1f}" y2="{mid}" '
                             'stroke="#212529" stroke-width="1"/>')
        y += 2 * bar + gap
    parts.append("</svg>")
    return Markup("".join(parts))


def latency_svg(rows: Sequence[dict[str, Any]], title: str, value: str = "p50_ms") -> Markup:
    """``value`` (median latency) per batch size, teacher and student side by side, on a log
    scale."""
    import math

    batches = sorted({r["batch"] for r in rows})
    values = {(r["model"], r["batch"]): r[value] for r in rows}
    positive = [v for v in values.values() if v and v > 0]
    if not positive:
        return Markup("")
    lo, hi = math.floor(math.log10(min(positive))), math.ceil(math.log10(max(positive)))
    hi = max(hi, lo + 1)
    group_w, bar, left, top, height = 90, 26, 50, 30, 180
    w, h = max(left + group_w * len(batches) + 20, 260), top + height + 56

    def py(v: float) -> float:
        return top + height * (1 - (math.log10(v) - lo) / (hi - lo))

    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {w} {h}" width="{w}" '
             f'height="{h}" role="img" aria-label="{_text(title)}">',
             f'<text x="4" y="16" {FONT} font-weight="600">{_text(title)}</text>',
             _legend(left, 34)]
    top += 16
    for e in range(lo, hi + 1):
        y = py(10.0 ** e)
        parts.append(f'<line x1="{left}" y1="{y:.1f}" x2="{w - 10}" y2="{y:.1f}" stroke="#e9ecef"/>')
        parts.append(f'<text x="{left - 4}" y="{y + 4:.1f}" {FONT} text-anchor="end">{10.0 ** e:g}</text>')
    for i, b in enumerate(batches):
        x0 = left + 10 + i * group_w
        for j, (who, colour) in enumerate((("teacher", TEACHER), ("student", STUDENT))):
            v = values.get((who, b))
            if not v or v <= 0:
                continue
            y = py(v)
            parts.append(f'<rect x="{x0 + j * bar}" y="{y:.1f}" width="{bar - 4}" '
                         f'height="{top + height - y:.1f}" fill="{colour}"><title>{who}, batch {b}: '
                         f'{v:.3f} ms</title></rect>')
        parts.append(f'<text x="{x0 + bar}" y="{top + height + 16}" {FONT} text-anchor="middle">'
                     f'batch {b}</text>')
    parts.append("</svg>")
    return Markup("".join(parts))


def _frame(title: str, w: int, h: int, left: int, top: int, size_x: int, size_y: int,
           xlabel: str, ylabel: str, xticks: Sequence[float], yticks: Sequence[float],
           px: Any, py: Any) -> list[str]:
    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {w} {h}" width="{w}" '
             f'height="{h}" role="img" aria-label="{_text(title)}">',
             f'<text x="4" y="16" {FONT} font-weight="600">{_text(title)}</text>',
             f'<rect x="{left}" y="{top}" width="{size_x}" height="{size_y}" fill="none" '
             'stroke="#adb5bd"/>']
    for t in xticks:
        parts.append(f'<text x="{px(t):.1f}" y="{top + size_y + 14}" {FONT} '
                     f'text-anchor="middle">{t:g}</text>')
    for t in yticks:
        parts.append(f'<text x="{left - 6}" y="{py(t) + 4:.1f}" {FONT} text-anchor="end">{t:g}</text>')
    parts.append(f'<text x="{left + size_x / 2}" y="{h - 4}" {FONT} text-anchor="middle">'
                 f'{_text(xlabel)}</text>')
    parts.append(f'<text x="12" y="{top + size_y / 2}" {FONT} text-anchor="middle" '
                 f'transform="rotate(-90 12 {top + size_y / 2})">{_text(ylabel)}</text>')
    return parts


def roc_svg(rows: Sequence[dict[str, Any]], title: str) -> Markup:
    """Membership-inference ROC curves for teacher and student, with the chance diagonal.

    Rows are ``{"kind": "roc", "model": ..., "fpr": ..., "tpr": ...}``, either one point each or
    one row per model with lists of points."""
    curves: dict[str, list[tuple[float, float]]] = {"teacher": [], "student": []}
    for r in rows:
        fpr, tpr = r.get("fpr"), r.get("tpr")
        if r.get("model") not in curves or fpr is None or tpr is None:
            continue
        if isinstance(fpr, list):
            curves[r["model"]] += list(zip(fpr, tpr, strict=False))
        else:
            curves[r["model"]].append((fpr, tpr))
    w, h, left, top, size = 300, 290, 44, 28, 230

    def px(v: float) -> float:
        return left + v * size

    def py(v: float) -> float:
        return top + (1 - v) * size

    parts = _frame(title, w, h, left, top, size, size, "false positive rate (non-members)",
                   "true positive rate (members)", (0, 0.5, 1), (0, 0.5, 1), px, py)
    parts.append(f'<line x1="{px(0)}" y1="{py(0)}" x2="{px(1)}" y2="{py(1)}" stroke="#adb5bd" '
                 'stroke-dasharray="4 3"/>')
    for who, colour in (("teacher", TEACHER), ("student", STUDENT)):
        pts = sorted(curves[who])
        if pts:
            line = " ".join(f"{px(f):.1f},{py(t):.1f}" for f, t in pts)
            parts.append(f'<polyline points="{line}" fill="none" stroke="{colour}" stroke-width="1.8"/>')
    parts.append(_legend(left + 8, top + 16))
    parts.append("</svg>")
    return Markup("".join(parts))


def curve_svg(points: Sequence[dict[str, Any]], title: str, xlabel: str, ylabel: str) -> Markup:
    """Teacher and student values (with interval whiskers) against a budget, e.g. robust accuracy
    per epsilon. Points are ``{"x": eps, "teacher": (v, lo, hi) | None, "student": (v, lo, hi)}``."""
    xs = [p["x"] for p in points]
    if not xs:
        return Markup("")
    w, h, left, top, size_x, size_y = 340, 290, 44, 28, 270, 220
    x_hi = max(xs) * 1.05 or 1.0

    def px(v: float) -> float:
        return left + (v / x_hi) * size_x

    def py(v: float) -> float:
        return top + (1 - max(0.0, min(1.0, v))) * size_y

    ticks = sorted(set(xs))
    parts = _frame(title, w, h, left, top, size_x, size_y, xlabel, ylabel, ticks, (0, 0.5, 1),
                   px, py)
    for who, colour in (("teacher", TEACHER), ("student", STUDENT)):
        pts = [(p["x"], p[who]) for p in points if p.get(who) is not None]
        if not pts:
            continue
        parts.append('<polyline points="' + " ".join(f"{px(x):.1f},{py(v[0]):.1f}" for x, v in pts)
                     + f'" fill="none" stroke="{colour}" stroke-width="1.8"/>')
        for x, (v, lo, hi) in pts:
            parts.append(f'<circle cx="{px(x):.1f}" cy="{py(v):.1f}" r="3" fill="{colour}">'
                         f'<title>{who} at {x:g}: {v:.3f}</title></circle>')
            if lo is not None and hi is not None:
                parts.append(f'<line x1="{px(x):.1f}" y1="{py(lo):.1f}" x2="{px(x):.1f}" '
                             f'y2="{py(hi):.1f}" stroke="{colour}"/>')
    parts.append(_legend(left + 8, top + 16))
    parts.append("</svg>")
    return Markup("".join(parts))


def figure_svg(fig: Figure) -> Markup:
    """Draw any :class:`~audit.results.Figure` by its kind (see there for the data each kind
    takes); an unknown kind draws nothing."""
    rows = list(fig.data)
    if fig.kind == "reliability":
        return reliability_svg(rows, fig.title)
    if fig.kind == "bars":
        return group_bars_svg(rows, fig.value, fig.title)
    if fig.kind == "log_bars":
        return latency_svg(rows, fig.title, fig.value or "p50_ms")
    if fig.kind == "roc":
        return roc_svg(rows, fig.title)
    if fig.kind == "curve":
        return curve_svg(rows, fig.title, fig.x_label, fig.y_label)
    return Markup("")
