"""The trend page: one self-contained HTML page drawn from a trend document alone.

The document (:mod:`audit.monitor.trend`: a monitor's windows, or a suite's releases) holds
every number; this module only lays it out: the alerts first (firing now, and where each
fired), then one chart per measured metric over the windows (teacher and student lines with
their interval bands, the alerts' thresholds dashed, windows where an alert on the metric was
firing shaded, releases marked), then the windows table, the events and the sources.
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from typing import Any

from markupsafe import Markup, escape

from audit.report.plots import FONT, STUDENT, TEACHER
from audit.safe import visible

__all__ = ["render_trend", "trend_svg", "view"]

W, H, LEFT, TOP, PLOT_W, PLOT_H = 860, 230, 58, 30, 770, 150
UPPER = ("max", "max_regression", "max_relative_regression")


def _text(value: object) -> Markup:
    """User text (a window's key, an alert's name) for SVG: made visible, then escaped."""
    return escape(visible(value))


def _bound(name: str, kind: str, value: Any) -> str:
    """A threshold's label: ``agreement: min 0.9`` (the kind once, even when the name has it)."""
    return f"{name}: {value:g}" if name.endswith(kind) else f"{name}: {kind} {value:g}"


def _short(label: str) -> str:
    """A window's key as an axis label: a file's name without its suffix, at most 16 chars."""
    for suffix in (".csv", ".parquet", ".pq"):
        if label.endswith(suffix):
            label = label[: -len(suffix)]
    stamp = re.fullmatch(r"(\d{4})(\d{2})(\d{2})T\d{6}Z", label)  # a report's timestamp
    if stamp:
        label = "-".join(stamp.groups())
    return label if len(label) <= 16 else label[:7] + "…" + label[-8:]


def _point(m: dict[str, Any] | None, who: str) -> tuple[float, float | None, float | None] | None:
    if m is None:
        return None
    e = m.get(who)
    if not isinstance(e, dict) or e.get("value") is None:
        return None
    v = float(e["value"])
    if not math.isfinite(v):
        return None
    ci = e.get("ci") or (None, None)
    return (v, ci[0], ci[1])


def trend_svg(title: str, labels: Sequence[str], lines: dict[str, list[Any]],
              thresholds: Sequence[tuple[str, float]], shaded: Sequence[int],
              marks: Sequence[tuple[int, str]]) -> Markup:
    """A line chart over windows: ``lines[name]`` one (value, lo, hi) or None per window,
    ``thresholds`` dashed (label, y), ``shaded`` window indices (an alert firing), ``marks``
    vertical lines (index, label)."""
    n = len(labels)
    values = [v for pts in lines.values() for p in pts if p is not None
              for v in p if v is not None and math.isfinite(v)]
    values += [t for _, t in thresholds if math.isfinite(t)]
    lo, hi = (min(values), max(values)) if values else (0.0, 1.0)
    if hi - lo < 1e-9:
        lo, hi = lo - 0.05, hi + 0.05
    pad = 0.08 * (hi - lo)
    lo, hi = lo - pad, hi + pad

    def px(i: float) -> float:
        return LEFT + (PLOT_W * (i + 0.5) / n if n else 0.0)

    def py(v: float) -> float:
        return TOP + PLOT_H * (1 - (v - lo) / (hi - lo))

    step = PLOT_W / max(n, 1)
    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {W} {H}" width="{W}" '
             f'height="{H}" role="img" aria-label="{_text(title)}">',
             f'<text x="4" y="16" {FONT} font-weight="600">{_text(title)}</text>']
    for i in shaded:
        parts.append(f'<rect x="{px(i) - step / 2:.1f}" y="{TOP}" width="{step:.1f}" '
                     f'height="{PLOT_H}" fill="#ffe3e3"><title>alert firing</title></rect>')
    parts.append(f'<rect x="{LEFT}" y="{TOP}" width="{PLOT_W}" height="{PLOT_H}" fill="none" '
                 'stroke="#adb5bd"/>')
    for t in (lo + pad, (lo + hi) / 2, hi - pad):
        parts.append(f'<text x="{LEFT - 6}" y="{py(t) + 4:.1f}" {FONT} text-anchor="end">'
                     f'{t:.3g}</text>')
    every = max(1, math.ceil(n / 7))
    for i, label in enumerate(labels):
        if i % every == 0:
            short = _short(label)
            parts.append(f'<text x="{px(i):.1f}" y="{TOP + PLOT_H + 14}" {FONT} '
                         f'text-anchor="middle">{_text(short)}</text>')
    for label, t in thresholds:
        parts.append(f'<line x1="{LEFT}" y1="{py(t):.1f}" x2="{LEFT + PLOT_W}" y2="{py(t):.1f}" '
                     f'stroke="#c92a2a" stroke-dasharray="5 4"><title>{_text(label)}</title></line>')
        parts.append(f'<text x="{LEFT + PLOT_W - 4}" y="{py(t) - 4:.1f}" {FONT} fill="#c92a2a" '
                     f'text-anchor="end">{_text(label)}</text>')
    for i, label in marks:
        parts.append(f'<line x1="{px(i):.1f}" y1="{TOP}" x2="{px(i):.1f}" y2="{TOP + PLOT_H}" '
                     f'stroke="#495057" stroke-dasharray="2 3"><title>{_text(label)}</title></line>')
    colours = {"teacher": TEACHER, "student": STUDENT, "value": STUDENT}
    for name, pts in lines.items():
        colour = colours.get(name, "#495057")
        band = [(i, p) for i, p in enumerate(pts) if p is not None and p[1] is not None
                and p[2] is not None]
        if len(band) >= 2:
            upper = " ".join(f"{px(i):.1f},{py(p[2]):.1f}" for i, p in band)
            lower = " ".join(f"{px(i):.1f},{py(p[1]):.1f}" for i, p in reversed(band))
            parts.append(f'<polygon points="{upper} {lower}" fill="{colour}" opacity="0.15"/>')
        path = " ".join(f"{px(i):.1f},{py(p[0]):.1f}" for i, p in enumerate(pts) if p is not None)
        if path:
            parts.append(f'<polyline points="{path}" fill="none" stroke="{colour}" '
                         'stroke-width="1.6"/>')
        for i, p in enumerate(pts):
            if p is not None:
                ci = "" if p[1] is None else f" [{p[1]:.3f}, {p[2]:.3f}]"
                parts.append(f'<circle cx="{px(i):.1f}" cy="{py(p[0]):.1f}" r="2.4" '
                             f'fill="{colour}"><title>{_text(name)} {_text(labels[i])}: '
                             f'{p[0]:.3f}{ci}</title></circle>')
    x = LEFT + 8
    for name in lines:
        parts.append(f'<rect x="{x}" y="{TOP + 4}" width="10" height="10" '
                     f'fill="{colours.get(name, "#495057")}"/><text x="{x + 14}" y="{TOP + 13}" '
                     f'{FONT}>{_text(name)}</text>')
        x += 80
    parts.append("</svg>")
    return Markup("".join(parts))


def _metric_order(doc: dict[str, Any]) -> list[str]:
    seen: dict[str, None] = {}
    for a in doc.get("alerts", []):
        seen.setdefault(a["metric"], None)
    for w in doc.get("windows", []):
        for k in w.get("measurements", {}):
            seen.setdefault(k, None)
    return list(seen)


def view(doc: dict[str, Any]) -> dict[str, Any]:
    """What the template shows, computed from the document alone."""
    windows = doc.get("windows", [])
    labels = [str(w["key"]) for w in windows]
    alerts = doc.get("alerts", [])
    marks = [(n["window"], n["text"]) for n in doc.get("annotations", [])
             if n["kind"] in ("release", "flip")]
    charts = []
    for metric in _metric_order(doc):
        ms = [w["measurements"].get(metric) for w in windows]
        if not any(ms):
            continue
        paired = any(m and m.get("teacher") for m in ms)
        lines = ({"teacher": [_point(m, "teacher") for m in ms],
                  "student": [_point(m, "student") for m in ms]} if paired else
                 {"value": [_point(m, "student") for m in ms]})
        on = [a for a in alerts if a["metric"] == metric]
        shaded = sorted({i for a in on for i, f in enumerate(a["firing"]) if f})
        thresholds = [(_bound(a["name"], k, v), float(v)) for a in on
                      for k, v in a["gate"].items() if k in ("min", "max")]
        first: dict[str, Any] = next((m for m in ms if m), {})
        by = "window" if doc.get("kind") == "monitor" else "release"
        charts.append({"title": f"{metric} by {by}", "method": first.get("method", ""),
                       "svg": trend_svg(f"{metric} by {by}", labels, lines, thresholds,
                                        shaded, marks)})
        regression = [(_bound(a["name"], k, v), float(v)) for a in on
                      for k, v in a["gate"].items() if k == "max_regression"]
        if paired and regression:
            reg = {"regression": [_point(m, "regression") for m in ms]}
            charts.append({"title": f"{metric}: regression (teacher vs student) by {by}",
                           "method": "", "svg": trend_svg(
                               f"{metric}: regression by {by}", labels, reg, regression,
                               shaded, marks)})
    rows = []
    for w in windows:
        real = w["measurements"].get("realized_accuracy") or {}
        est = w["measurements"].get("estimated_accuracy") or {}
        agree = w["measurements"].get("agreement") or {}
        rows.append({"key": w["key"], "rows": w.get("rows"), "labelled": w.get("labelled"),
                     "agreement": (agree.get("student") or {}).get("value"),
                     "estimated": (est.get("student") or {}).get("value"),
                     "realized": (real.get("student") or {}).get("value"),
                     "verdict": w.get("verdict")})
    return {"doc": doc, "charts": charts, "rows": rows, "alerts": alerts, "labels": labels,
            "firing": [a for a in alerts if a["firing_now"]]}


def render_trend(doc: dict[str, Any]) -> str:
    """The trend page of a trend document (autoescaped; no network, no script)."""
    import jinja2

    from audit.safe import template_value

    env = jinja2.Environment(loader=jinja2.PackageLoader("audit.report", "templates"),
                             autoescape=True, undefined=jinja2.StrictUndefined,
                             trim_blocks=True, lstrip_blocks=True, finalize=template_value)
    return env.get_template("trend.html").render(**view(doc))
