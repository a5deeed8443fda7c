"""The training curve as a small hand-written SVG (no plotting library in the web process).

`read_loss_log` reads the JSON-lines loss log a training run writes into its model folder;
`loss_curve_svg` draws (step, loss) points. Every piece of text that goes into the SVG is
escaped, and numbers are formatted by us, so the markup is safe to inline in a page.
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from django.utils.html import escape
from django.utils.safestring import SafeString, mark_safe

MAX_POINTS = 600
WIDTH, HEIGHT = 640, 260
LEFT, RIGHT, TOP, BOTTOM = 64, 16, 16, 40


def read_loss_log(path: Path, max_points: int = MAX_POINTS) -> list[tuple[int, float]]:
    """(step, loss) rows of a loss log, in step order; bad lines are skipped.

    A resumed run truncates the log to its checkpoint, so steps are unique; if a crash left
    duplicates anyway the last row of a step wins. Long logs are thinned to `max_points` by
    averaging consecutive rows, which keeps the shape of the curve.
    """
    try:
        text = path.read_text(encoding="utf-8", errors="replace")
    except OSError:
        return []
    by_step: dict[int, float] = {}
    for line in text.splitlines():
        try:
            row = json.loads(line)
            step, loss = int(row["step"]), float(row["loss"])
        except (ValueError, KeyError, TypeError):
            continue
        if math.isfinite(loss):
            by_step[step] = loss
    return thin_points(sorted(by_step.items()), max_points)


def thin_points(
    points: Sequence[tuple[int, float]], max_points: int = MAX_POINTS
) -> list[tuple[int, float]]:
    """At most `max_points` points, by averaging runs of consecutive ones (keeps the shape)."""
    points = list(points)
    if len(points) <= max_points:
        return points
    size = math.ceil(len(points) / max_points)
    thinned = []
    for start in range(0, len(points), size):
        chunk = points[start : start + size]
        thinned.append((chunk[-1][0], sum(loss for _, loss in chunk) / len(chunk)))
    return thinned


def _nice_ticks(low: float, high: float, count: int = 5, *, whole: bool = False) -> list[float]:
    """Round values from low to high, about `count` of them (whole numbers only if `whole`)."""
    if high <= low:
        return [low]
    raw = (high - low) / count
    if whole:
        raw = max(raw, 1.0)
    magnitude = 10 ** math.floor(math.log10(raw))
    step = next(m * magnitude for m in (1, 2, 2.5, 5, 10) if m * magnitude >= raw)
    first = math.ceil(low / step) * step
    ticks = []
    value = first
    while value <= high + step * 1e-9:
        ticks.append(round(value, 12))
        value += step
    return ticks


def _format(value: float) -> str:
    if value == 0:
        return "0"
    if abs(value) >= 10_000 or abs(value) < 0.001:
        return f"{value:.1e}"
    return f"{value:.4g}"


def loss_curve_svg(
    points: Sequence[tuple[int, float]], *, title: str = "Training loss"
) -> SafeString:
    """An inline SVG line chart of (step, loss); a short note when there is nothing to draw.

    The loss axis is logarithmic when the loss spans more than a factor of 20 (diffusion
    losses fall fast at first), linear otherwise.
    """
    points = [(step, loss) for step, loss in points if math.isfinite(loss)]
    if not points:
        return mark_safe('<p class="loss-curve-empty">No loss logged yet.</p>')
    steps = [float(step) for step, _ in points]
    losses = [loss for _, loss in points]
    log_scale = min(losses) > 0 and max(losses) / min(losses) > 20
    values = [math.log10(v) for v in losses] if log_scale else losses
    axes = _Axes.around(steps, values)
    parts = [
        (
            f'<svg class="loss-curve" xmlns="http://www.w3.org/2000/svg" '
            f'viewBox="0 0 {WIDTH} {HEIGHT}" width="{WIDTH}" height="{HEIGHT}" role="img" '
            f'aria-label="{escape(title)}">'
        ),
        f"<title>{escape(title)}</title>",
        (
            f'<rect x="{LEFT}" y="{TOP}" width="{axes.plot_w}" height="{axes.plot_h}" '
            f'fill="none" stroke="currentColor" stroke-opacity="0.3"/>'
        ),
        *_y_grid(axes, log_scale),
        *_x_labels(axes),
        *_line(axes, steps, values),
        *_axis_titles(axes, log_scale),
    ]
    last_step, last_loss = points[-1]
    parts.append(
        f'<text x="{LEFT + axes.plot_w - 4}" y="{TOP + 14}" text-anchor="end" font-size="11" '
        f'fill="currentColor">{escape(f"step {last_step}: {_format(last_loss)}")}</text>'
    )
    parts.append("</svg>")
    return mark_safe("".join(parts))  # all text above is escaped, or numbers we formatted


@dataclass(frozen=True)
class _Axes:
    """The data ranges and the plot area they map onto."""

    x0: float
    x1: float
    y0: float
    y1: float
    plot_w: int = WIDTH - LEFT - RIGHT
    plot_h: int = HEIGHT - TOP - BOTTOM

    @classmethod
    def around(cls, xs: list[float], ys: list[float]) -> _Axes:
        x0, x1 = min(xs), max(xs)
        y0, y1 = min(ys), max(ys)
        if x1 == x0:
            x0, x1 = x0 - 1, x1 + 1
        if y1 == y0:
            pad = abs(y0) * 0.1 or 1.0
            y0, y1 = y0 - pad, y1 + pad
        return cls(x0, x1, y0, y1)

    def sx(self, x: float) -> float:
        return LEFT + (x - self.x0) / (self.x1 - self.x0) * self.plot_w

    def sy(self, y: float) -> float:
        return TOP + self.plot_h - (y - self.y0) / (self.y1 - self.y0) * self.plot_h


def _y_grid(axes: _Axes, log_scale: bool) -> list[str]:
    y0, y1 = axes.y0, axes.y1
    if log_scale:
        y_ticks = [float(e) for e in range(math.ceil(y0), math.floor(y1) + 1)] or [y0, y1]
        y_labels = [_format(10**t) for t in y_ticks]
    else:
        y_ticks = _nice_ticks(y0, y1)
        y_labels = [_format(t) for t in y_ticks]
    parts = []
    for tick, label in zip(y_ticks, y_labels, strict=True):
        y = axes.sy(tick)
        parts.append(
            f'<line x1="{LEFT}" x2="{LEFT + axes.plot_w}" y1="{y:.1f}" y2="{y:.1f}" '
            f'stroke="currentColor" stroke-opacity="0.12"/>'
            f'<text x="{LEFT - 6}" y="{y + 4:.1f}" text-anchor="end" font-size="11" '
            f'fill="currentColor">{escape(label)}</text>'
        )
    return parts


def _x_labels(axes: _Axes) -> list[str]:
    return [
        f'<text x="{axes.sx(tick):.1f}" y="{TOP + axes.plot_h + 16}" text-anchor="middle" '
        f'font-size="11" fill="currentColor">{escape(_format(tick))}</text>'
        for tick in _nice_ticks(axes.x0, axes.x1, whole=True)
    ]


def _line(axes: _Axes, steps: list[float], values: list[float]) -> list[str]:
    path = " ".join(
        f"{'M' if i == 0 else 'L'}{axes.sx(x):.1f},{axes.sy(y):.1f}"
        for i, (x, y) in enumerate(zip(steps, values))
    )
    parts = [f'<path d="{path}" fill="none" stroke="#417690" stroke-width="1.5"/>']
    if len(steps) == 1:
        parts.append(
            f'<circle cx="{axes.sx(steps[0]):.1f}" cy="{axes.sy(values[0]):.1f}" r="3" '
            f'fill="#417690"/>'
        )
    return parts


def _axis_titles(axes: _Axes, log_scale: bool) -> list[str]:
    axis = "loss (log scale)" if log_scale else "loss"
    middle = TOP + axes.plot_h / 2
    return [
        (
            f'<text x="{LEFT + axes.plot_w / 2:.1f}" y="{HEIGHT - 6}" text-anchor="middle" '
            f'font-size="12" fill="currentColor">step</text>'
            f'<text x="14" y="{middle:.1f}" text-anchor="middle" font-size="12" '
            f'fill="currentColor" transform="rotate(-90 14 {middle:.1f})">{escape(axis)}</text>'
        )
    ]
