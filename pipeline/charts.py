"""Charts for the quality report as inline SVG: no script, no font or stylesheet to fetch, so the
report renders the same offline, in a browser, an e-mail client or a PDF printer."""
from __future__ import annotations

import html
import math
from collections.abc import Sequence

PALETTE = ("#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd", "#8c564b", "#e377c2",
           "#7f7f7f", "#bcbd22", "#17becf")
FONT = "font-family:Helvetica,Arial,sans-serif"


def _esc(text: object) -> str:
    return html.escape(str(text), quote=True)


def _nice_max(value: float) -> float:
    """A round axis maximum at or above ``value`` (1, 2, 2.5, 5 x 10^n)."""
    if value <= 0:
        return 1.0
    exponent = math.floor(math.log10(value))
    for step in (1, 2, 2.5, 5, 10):
        candidate = step * 10 ** exponent
        if candidate >= value:
            return candidate
    return 10 ** (exponent + 1)


def _number(value: float) -> str:
    if abs(value) >= 1_000_000:
        return f"{value / 1_000_000:,.1f}m".replace(".0m", "m")
    if abs(value) >= 10_000:
        return f"{value / 1_000:,.0f}k"
    if value == int(value):
        return f"{int(value):,}"
    return f"{value:,.1f}"


def line_chart(title: str, x_labels: Sequence[str], series: dict[str, Sequence[float | None]],
               width: int = 760, height: int = 320) -> str:
    """One line per series over ``x_labels`` (missing points break the line)."""
    left, right, top, bottom = 64, 190, 34, 46
    plot_w, plot_h = width - left - right, height - top - bottom
    values = [v for vs in series.values() for v in vs if v is not None]
    y_max = _nice_max(max(values, default=1))
    n = max(len(x_labels) - 1, 1)

    def x(i: int) -> float:
        return left + plot_w * i / n

    def y(v: float) -> float:
        return top + plot_h * (1 - v / y_max)

    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" role="img" viewBox="0 0 {width} {height}" '
             f'width="{width}" height="{height}" style="{FONT};font-size:11px">',
             f'<title>{_esc(title)}</title>',
             f'<text x="{left}" y="18" style="font-size:13px;font-weight:bold">{_esc(title)}</text>']
    for k in range(5):
        v = y_max * k / 4
        parts.append(f'<line x1="{left}" x2="{left + plot_w}" y1="{y(v):.1f}" y2="{y(v):.1f}" '
                     'stroke="#ddd"/>')
        parts.append(f'<text x="{left - 6}" y="{y(v) + 4:.1f}" text-anchor="end">'
                     f'{_number(v)}</text>')
    step = max(1, len(x_labels) // 8)
    for i in range(0, len(x_labels), step):
        parts.append(f'<text x="{x(i):.1f}" y="{top + plot_h + 16}" text-anchor="middle">'
                     f'{_esc(x_labels[i])}</text>')
    for idx, (name, vs) in enumerate(series.items()):
        color = PALETTE[idx % len(PALETTE)]
        segment: list[str] = []
        segments: list[list[str]] = []
        for i, v in enumerate(vs):
            if v is None:
                if segment:
                    segments.append(segment)
                segment = []
                continue
            segment.append(f"{x(i):.1f},{y(v):.1f}")
        if segment:
            segments.append(segment)
        for seg in segments:
            parts.append(f'<polyline fill="none" stroke="{color}" stroke-width="1.8" '
                         f'points="{" ".join(seg)}"/>')
        ly = top + 14 * idx
        parts.append(f'<rect x="{left + plot_w + 12}" y="{ly - 8}" width="10" height="10" '
                     f'fill="{color}"/>')
        parts.append(f'<text x="{left + plot_w + 26}" y="{ly + 1}">{_esc(name[:28])}</text>')
    parts.append("</svg>")
    return "".join(parts)


def bar_chart(title: str, items: Sequence[tuple[str, float]], unit: str = "",
              width: int = 760, bar_height: int = 20, signed: bool = False,
              reference: float | None = None) -> str:
    """Horizontal bars, one per (label, value); with ``signed``, bars grow left or right of a
    zero line (a change in percent); ``reference`` draws a dashed line at that value (100%)."""
    left, right, top = 230, 80, 34
    height = top + bar_height * len(items) + 20
    plot_w = width - left - right
    extent = _nice_max(max([abs(v) for _, v in items] + ([reference] if reference else []),
                           default=1))
    zero = left + (plot_w / 2 if signed else 0)
    scale = (plot_w / 2 if signed else plot_w) / extent
    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" role="img" viewBox="0 0 {width} {height}" '
             f'width="{width}" height="{height}" style="{FONT};font-size:11px">',
             f'<title>{_esc(title)}</title>',
             f'<text x="8" y="18" style="font-size:13px;font-weight:bold">{_esc(title)}</text>',
             f'<line x1="{zero:.1f}" x2="{zero:.1f}" y1="{top - 4}" y2="{height - 16}" '
             'stroke="#999"/>']
    for i, (label, value) in enumerate(items):
        y = top + i * bar_height
        length = abs(value) * scale
        x = zero - length if (signed and value < 0) else zero
        color = "#d62728" if (signed and value < 0) else "#1f77b4"
        parts.append(f'<text x="{left - 8}" y="{y + bar_height * 0.65:.1f}" text-anchor="end">'
                     f'{_esc(label[:38])}</text>')
        parts.append(f'<rect x="{x:.1f}" y="{y + 3}" width="{max(length, 0.5):.1f}" '
                     f'height="{bar_height - 6}" fill="{color}"><title>{_esc(label)}: '
                     f'{_esc(_number(value))}{_esc(unit)}</title></rect>')
        tx = (x - 4 if (signed and value < 0) else x + length + 4)
        anchor = "end" if (signed and value < 0) else "start"
        sign = "+" if signed and value > 0 else ""
        parts.append(f'<text x="{tx:.1f}" y="{y + bar_height * 0.65:.1f}" '
                     f'text-anchor="{anchor}">{sign}{_esc(_number(value))}{_esc(unit)}</text>')
    if reference is not None:
        rx = zero + reference * scale
        parts.append(f'<line x1="{rx:.1f}" x2="{rx:.1f}" y1="{top - 4}" y2="{height - 16}" '
                     f'stroke="#555" stroke-dasharray="4 3"><title>{_esc(_number(reference))}'
                     f'{_esc(unit)}</title></line>')
        parts.append(f'<text x="{rx:.1f}" y="{height - 4}" text-anchor="middle">'
                     f'{_esc(_number(reference))}{_esc(unit)}</text>')
    parts.append("</svg>")
    return "".join(parts)
