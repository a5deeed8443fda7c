"""SVG plots of the design statistics, in the style of ``readerstudy.plots`` (no JavaScript)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from django.utils.safestring import SafeString

from readerstudy.plots import (
    PALETTE,
    _f,
    _not_defined_message,
    _short,
    _svg,
    _text,
    _title,
    describe,
)


def interval_plot(
    rows: Sequence[tuple[str, dict[str, Any]]],
    *,
    title: str,
    low: float,
    high: float,
    axis: str,
    reference: float | None = None,
    css_class: str = "plot-design",
) -> SafeString:
    """One row per (label, estimate slot): the point and its 95% interval on [low, high]."""
    if not rows:
        return _not_defined_message(480, "Nothing to plot yet.", css_class, title)
    label_width = min(170, 12 + 6.5 * max(len(_short(label)) for label, _ in rows))
    plot_width, row, top = 360, 22, 12
    left = label_width + 10
    bottom = top + row * len(rows)
    span = (high - low) or 1.0

    def x(value: float) -> float:
        return left + (min(max(value, low), high) - low) / span * plot_width

    body = []
    for i in range(5):
        tick = low + span * i / 4
        body.append(
            f'<line x1="{_f(x(tick))}" y1="{_f(top)}" x2="{_f(x(tick))}" '
            f'y2="{_f(bottom)}" stroke="#ddd"/>'
        )
        body.append(_text(x(tick), bottom + 14, f"{tick:g}", anchor="middle", size=10))
    body.append(_text(left + plot_width / 2, bottom + 30, axis, anchor="middle"))
    if reference is not None:
        body.append(
            f'<line x1="{_f(x(reference))}" y1="{_f(top)}" x2="{_f(x(reference))}" '
            f'y2="{_f(bottom)}" stroke="#999" stroke-dasharray="4 3"/>'
        )
    colour = PALETTE[0]
    for index, (label, slot) in enumerate(rows):
        y = top + row * index + row / 2
        body.append(_text(label_width, y + 4, _short(label), anchor="end"))
        if slot["not_defined"]:
            body.append(
                _text(left + 4, y + 4, f"not defined: {slot['not_defined']}", size=10, fill="#a00")
            )
            continue
        mark = f'<circle cx="{_f(x(slot["estimate"]))}" cy="{_f(y)}" r="4" fill="{colour}"/>'
        if slot["ci_low"] is not None:
            mark = (
                f'<line x1="{_f(x(slot["ci_low"]))}" y1="{_f(y)}" x2="{_f(x(slot["ci_high"]))}"'
                f' y2="{_f(y)}" stroke="{colour}" stroke-width="2"/>' + mark
            )
        body.append(f'<g class="estimate">{_title(f"{label}: {describe(slot)}")}{mark}</g>')
    description = "; ".join(f"{label}: {describe(slot)}" for label, slot in rows)
    return _svg(left + plot_width + 40, bottom + 40, title, description, body, css_class)
