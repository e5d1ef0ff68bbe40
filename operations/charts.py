"""Charts drawn on the server as inline SVG: no JavaScript, no CDN (the machine is offline).

A chart is a list of `Point`s (a label, a value or None for "no data", a tooltip, an optional
link) turned into one `<svg>` string. Bars and points carry a `<title>`, so hovering shows the
figure; a bar with `href` links to the list behind it. Colours come from CSS classes (the admin's
own variables, so dark mode follows) with plain fill/stroke attributes as the fallback.
"""

import math
from collections.abc import Sequence
from dataclasses import dataclass
from decimal import Decimal

from django.utils.html import escape
from django.utils.safestring import SafeString, mark_safe

Number = int | float | Decimal

WIDTH = 360
HEIGHT = 130
_LEFT, _RIGHT, _TOP, _BOTTOM = 34, 6, 8, 18
_PRIMARY = "#417690"
_MUTED = "#999"


@dataclass(frozen=True)
class Point:
    """One x position of a chart: `value` None means no data (a gap in a line)."""

    label: str
    value: Number | None
    title: str = ""
    href: str = ""


def nice_ceiling(value: float) -> float:
    """The smallest 1, 2 or 5 x 10^k at or above `value` (1 for nothing): the axis top."""
    if value <= 0:
        return 1.0
    power = 10 ** math.floor(math.log10(value))
    for step in (1, 2, 5, 10):
        if value <= step * power:
            return float(step * power)
    return float(10 * power)  # pragma: no cover - the loop always returns


def _fmt(value: float) -> str:
    if value == int(value):
        return f"{int(value):,}"
    return f"{value:,.1f}"


def _frame(*, title: str, top: float, unit: str, width: int, height: int, kind: str) -> list[str]:
    """The opening tag, an accessible title, the top and middle grid lines with their labels."""
    inner_bottom = height - _BOTTOM
    mid_y = _TOP + (inner_bottom - _TOP) / 2
    return [
        f'<svg class="bd-chart bd-chart-{kind}" xmlns="http://www.w3.org/2000/svg" '
        f'viewBox="0 0 {width} {height}" width="100%" role="img" aria-label="{escape(title)}" '
        'preserveAspectRatio="xMidYMid meet">',
        f"<title>{escape(title)}</title>",
        f'<line class="bd-grid" x1="{_LEFT}" y1="{_TOP}" x2="{width - _RIGHT}" y2="{_TOP}" '
        f'stroke="{_MUTED}" stroke-width="0.5" stroke-dasharray="2,2"/>',
        f'<line class="bd-grid" x1="{_LEFT}" y1="{mid_y:.1f}" x2="{width - _RIGHT}" '
        f'y2="{mid_y:.1f}" stroke="{_MUTED}" stroke-width="0.5" stroke-dasharray="2,2"/>',
        f'<line class="bd-axis" x1="{_LEFT}" y1="{inner_bottom}" x2="{width - _RIGHT}" '
        f'y2="{inner_bottom}" stroke="{_MUTED}" stroke-width="1"/>',
        f'<text class="bd-tick" x="{_LEFT - 3}" y="{_TOP + 3}" text-anchor="end" '
        f'font-size="9" fill="{_MUTED}">{escape(_fmt(top) + unit)}</text>',
        f'<text class="bd-tick" x="{_LEFT - 3}" y="{mid_y + 3:.1f}" text-anchor="end" '
        f'font-size="9" fill="{_MUTED}">{escape(_fmt(top / 2) + unit)}</text>',
        f'<text class="bd-tick" x="{_LEFT - 3}" y="{inner_bottom + 3}" text-anchor="end" '
        f'font-size="9" fill="{_MUTED}">0</text>',
    ]


def _x_labels(points: Sequence[Point], centres: list[float], height: int) -> list[str]:
    """The first, middle and last labels under the axis (more would not fit)."""
    if not points:
        return []
    picks = sorted({0, len(points) // 2, len(points) - 1})
    anchors = {0: "start", len(points) - 1: "end"}
    return [
        f'<text class="bd-tick" x="{centres[i]:.1f}" y="{height - 5}" '
        f'text-anchor="{anchors.get(i, "middle")}" font-size="9" fill="{_MUTED}">'
        f"{escape(points[i].label)}</text>"
        for i in picks
    ]


def _empty_note(width: int, height: int, text: str) -> str:
    return (
        f'<text class="bd-empty" x="{(_LEFT + width - _RIGHT) / 2:.1f}" '
        f'y="{(_TOP + height - _BOTTOM) / 2 + 3:.1f}" text-anchor="middle" font-size="11" '
        f'fill="{_MUTED}">{escape(text)}</text>'
    )


def _linked(markup: str, href: str) -> str:
    return f'<a href="{escape(href)}">{markup}</a>' if href else markup


def bar_chart(
    points: Sequence[Point],
    *,
    title: str,
    unit: str = "",
    empty: str = "Nothing in this period yet",
    width: int = WIDTH,
    height: int = HEIGHT,
) -> SafeString:
    """One bar per point, scaled to a round axis top; None and 0 draw no bar."""
    values = [float(p.value) for p in points if p.value is not None]
    top = nice_ceiling(max(values, default=0))
    inner_width = width - _LEFT - _RIGHT
    inner_bottom = height - _BOTTOM
    slot = inner_width / max(len(points), 1)
    bar_width = max(slot * 0.75, 1.0)
    parts = _frame(title=title, top=top, unit=unit, width=width, height=height, kind="bar")
    centres = []
    for i, point in enumerate(points):
        x = _LEFT + i * slot + (slot - bar_width) / 2
        centres.append(x + bar_width / 2)
        value = float(point.value or 0)
        bar_height = value / top * (inner_bottom - _TOP)
        tooltip = point.title or f"{point.label}: {_fmt(value)}{unit}"
        # An invisible full-height hit area, so an empty day still has a tooltip and a link.
        hit = (
            f'<rect class="bd-hit" x="{x:.1f}" y="{_TOP}" width="{bar_width:.1f}" '
            f'height="{inner_bottom - _TOP}" fill="transparent">'
            f"<title>{escape(tooltip)}</title></rect>"
        )
        bar = (
            f'<rect class="bd-bar" x="{x:.1f}" y="{inner_bottom - bar_height:.1f}" '
            f'width="{bar_width:.1f}" height="{bar_height:.1f}" fill="{_PRIMARY}" '
            f'data-value="{escape(_fmt(value))}"><title>{escape(tooltip)}</title></rect>'
            if bar_height > 0
            else ""
        )
        parts.append(_linked(hit + bar, point.href))
    if not any(values):
        parts.append(_empty_note(width, height, empty))
    parts.extend(_x_labels(points, centres, height))
    parts.append("</svg>")
    return mark_safe("".join(parts))  # noqa: S308 - every text above went through escape()


def line_chart(
    points: Sequence[Point],
    *,
    title: str,
    unit: str = "",
    top: Number | None = None,
    empty: str = "Nothing in this period yet",
    width: int = WIDTH,
    height: int = HEIGHT,
) -> SafeString:
    """A line through the points that have a value (a None breaks it), a dot on each.

    `top` fixes the axis top (100 for a percentage); by default it is a round number at or
    above the largest value.
    """
    values = [float(p.value) for p in points if p.value is not None]
    axis_top = float(top) if top is not None else nice_ceiling(max(values, default=0))
    inner_width = width - _LEFT - _RIGHT
    inner_bottom = height - _BOTTOM
    step = inner_width / max(len(points) - 1, 1)
    parts = _frame(title=title, top=axis_top, unit=unit, width=width, height=height, kind="line")
    if len(points) == 1:
        centres = [_LEFT + inner_width / 2]
    else:
        centres = [_LEFT + i * step for i in range(len(points))]
    segments: list[list[tuple[float, float]]] = [[]]
    dots = []
    for i, point in enumerate(points):
        if point.value is None:
            segments.append([])
            continue
        value = float(point.value)
        y = inner_bottom - min(value / axis_top, 1.0) * (inner_bottom - _TOP)
        segments[-1].append((centres[i], y))
        tooltip = point.title or f"{point.label}: {_fmt(value)}{unit}"
        dot = (
            f'<circle class="bd-dot" cx="{centres[i]:.1f}" cy="{y:.1f}" r="3" '
            f'fill="{_PRIMARY}" data-value="{escape(_fmt(value))}">'
            f"<title>{escape(tooltip)}</title></circle>"
        )
        dots.append(_linked(dot, point.href))
    for segment in segments:
        if len(segment) > 1:
            coords = " ".join(f"{x:.1f},{y:.1f}" for x, y in segment)
            parts.append(
                f'<polyline class="bd-line" points="{coords}" fill="none" '
                f'stroke="{_PRIMARY}" stroke-width="2"/>'
            )
    parts.extend(dots)
    if not values:
        parts.append(_empty_note(width, height, empty))
    parts.extend(_x_labels(points, centres, height))
    parts.append("</svg>")
    return mark_safe("".join(parts))  # noqa: S308 - every text above went through escape()
