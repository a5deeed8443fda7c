"""Server-side SVG plots of a study's statistics: no JavaScript, no internet, no plotting library.

Each function takes parts of the analysis' JSON payload (`StudyAnalysis.to_jsonable()`: estimate
slots with `estimate`, `ci_low`, `ci_high`, `not_defined`, ...) and returns a self-contained
`<svg>` element as a safe string, ready to drop into a template. Every piece of text that comes
from data (reader names, generator names, reasons) is escaped; every mark carries a `<title>`
so hovering shows the exact figures, and the svg has a text alternative (`role="img"` with a
title and description).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from itertools import count
from typing import Any

from django.utils.html import escape
from django.utils.safestring import SafeString, mark_safe

#: Okabe-Ito colours (distinguishable with the common colour-vision deficiencies).
PALETTE = (
    "#0072B2", "#E69F00", "#009E73", "#D55E00", "#CC79A7", "#56B4E9", "#000000", "#F0E442",
)
SENSITIVITY_COLOUR = "#0072B2"
SPECIFICITY_COLOUR = "#D55E00"
# A presentation attribute, not a style attribute: the Content-Security-Policy forbids inline style.
FONT = "system-ui,-apple-system,'Segoe UI',Roboto,sans-serif"
NOT_DEFINED_FILL = "#e0e0e0"

_ids = count(1)


def _f(value: float) -> str:
    """A coordinate, compactly."""
    if not math.isfinite(value):
        return "0"
    text = f"{value:.1f}"
    return text.removesuffix(".0")


def _num(value: float | None, digits: int = 3) -> str:
    return "—" if value is None else f"{value:.{digits}f}"


def describe(slot: dict[str, Any], digits: int = 3) -> str:
    """An estimate slot in words: "0.620 [0.550, 0.680] (n = 40)" or "not defined: reason"."""
    if slot.get("not_defined"):
        return f"not defined: {slot['not_defined']}"
    text = _num(slot["estimate"], digits)
    if slot.get("ci_low") is not None:
        text += f" [{_num(slot['ci_low'], digits)}, {_num(slot['ci_high'], digits)}]"
    if slot.get("n") is not None:
        text += f" (n = {slot['n']})"
    return text


def _short(label: str, limit: int = 24) -> str:
    return label if len(label) <= limit else label[: limit - 1] + "…"


def _text(x: float, y: float, text: str, *, anchor: str = "start", size: int = 11,
          fill: str = "#333", extra: str = "") -> str:
    return (
        f'<text x="{_f(x)}" y="{_f(y)}" font-size="{size}" text-anchor="{anchor}" '
        f'fill="{fill}"{extra}>{escape(text)}</text>'
    )


def _title(text: str) -> str:
    return f"<title>{escape(text)}</title>"


def _svg(width: float, height: float, title: str, description: str, body: Iterable[str],
         css_class: str) -> SafeString:
    ident = f"plot{next(_ids)}"
    return mark_safe(
        f'<svg xmlns="http://www.w3.org/2000/svg" class="{css_class}" '
        f'viewBox="0 0 {_f(width)} {_f(height)}" width="{_f(width)}" height="{_f(height)}" '
        f'role="img" aria-labelledby="{ident}-t {ident}-d" font-family="{FONT}">'
        f'<title id="{ident}-t">{escape(title)}</title>'
        f'<desc id="{ident}-d">{escape(description)}</desc>'
        + "".join(body)
        + "</svg>"
    )


def _x_axis(left: float, width: float, top: float, bottom: float, label: str,
            ticks: Sequence[float] = (0, 0.25, 0.5, 0.75, 1.0)) -> list[str]:
    """Vertical grid lines over [top, bottom] at the proportion ticks, labelled below."""
    out = []
    for tick in ticks:
        x = left + tick * width
        out.append(
            f'<line x1="{_f(x)}" y1="{_f(top)}" x2="{_f(x)}" y2="{_f(bottom)}" '
            f'stroke="#ddd" stroke-width="1"/>'
        )
        out.append(_text(x, bottom + 14, f"{tick:g}", anchor="middle", size=10, fill="#666"))
    out.append(_text(left + width / 2, bottom + 30, label, anchor="middle", size=11))
    return out


def _not_defined_message(width: float, text: str, css_class: str, title: str) -> SafeString:
    return _svg(width, 40, title, text, [_text(8, 24, text, fill="#666")], css_class)


# ------------------------------------------------------------------------ per-reader figures


def reader_performance_plot(readers: Sequence[dict[str, Any]]) -> SafeString:
    """Per reader: sensitivity and specificity (intention to diagnose) with 95% Wilson bars."""
    title = "Sensitivity and specificity per reader (unsure counts as wrong), 95% Wilson intervals"
    if not readers:
        return _not_defined_message(480, "No readers.", "plot-readers", title)
    label_width = min(170, 12 + 6.5 * max(len(_short(r["reader"])) for r in readers))
    plot_width, row, top = 360, 22, 34
    left = label_width + 10
    height = top + row * len(readers) + 42
    width = left + plot_width + 130
    body = _reader_performance_frame(left, plot_width, top, top + row * len(readers))
    for index, reader in enumerate(readers):
        y = top + row * index + row / 2
        body.append(_text(label_width, y + 4, _short(reader["reader"]), anchor="end"))
        missing = []
        for name, colour, offset, marker in (
            ("sensitivity", SENSITIVITY_COLOUR, -4, "circle"),
            ("specificity", SPECIFICITY_COLOUR, 4, "square"),
        ):
            slot = reader[name]
            if slot["not_defined"]:
                missing.append(f"{name} not defined")
                continue
            tip = _title(f"{reader['reader']}: {name} {describe(slot)}")
            body.append(_interval_mark(slot, left, plot_width, y + offset, colour, marker, tip))
        if missing:
            body.append(
                _text(left + plot_width + 8, y + 4, "; ".join(missing), size=10, fill="#a00")
            )
    description = "; ".join(
        f"{r['reader']}: sensitivity {describe(r['sensitivity'])}, "
        f"specificity {describe(r['specificity'])}"
        for r in readers
    )
    return _svg(width, height, title, description, body, "plot-readers")


def _reader_performance_frame(left: float, plot_width: float, top: float, bottom: float) -> list:
    """The legend, the proportion axis and the dashed chance line behind the readers' rows."""
    body = [
        f'<circle cx="{_f(left)}" cy="12" r="4" fill="{SENSITIVITY_COLOUR}"/>',
        _text(left + 8, 16, "sensitivity (fakes answered fake)"),
        f'<rect x="{_f(left + 210)}" y="8" width="8" height="8" fill="{SPECIFICITY_COLOUR}"/>',
        _text(left + 222, 16, "specificity (reals answered real)"),
    ]
    body += _x_axis(left, plot_width, top - 4, bottom, "proportion (95% Wilson interval)")
    chance = left + 0.5 * plot_width
    body.append(
        f'<line x1="{_f(chance)}" y1="{_f(top - 4)}" x2="{_f(chance)}" y2="{_f(bottom)}" '
        f'stroke="#999" stroke-dasharray="4 3"/>'
    )
    return body


def _interval_mark(
    slot: dict[str, Any], left: float, plot_width: float, yy: float, colour: str, marker: str,
    tip: str,
) -> str:
    """One estimate on the proportion axis: its interval bar with end ticks and its marker."""
    x = left + slot["estimate"] * plot_width
    x0 = left + slot["ci_low"] * plot_width
    x1 = left + slot["ci_high"] * plot_width
    mark = (
        f'<circle cx="{_f(x)}" cy="{_f(yy)}" r="4" fill="{colour}"/>'
        if marker == "circle"
        else f'<rect x="{_f(x - 4)}" y="{_f(yy - 4)}" width="8" height="8" fill="{colour}"/>'
    )
    return (
        f'<g class="estimate">{tip}'
        f'<line x1="{_f(x0)}" y1="{_f(yy)}" x2="{_f(x1)}" y2="{_f(yy)}" '
        f'stroke="{colour}" stroke-width="2"/>'
        f'<line x1="{_f(x0)}" y1="{_f(yy - 3)}" x2="{_f(x0)}" y2="{_f(yy + 3)}" '
        f'stroke="{colour}"/>'
        f'<line x1="{_f(x1)}" y1="{_f(yy - 3)}" x2="{_f(x1)}" y2="{_f(yy + 3)}" '
        f'stroke="{colour}"/>{mark}</g>'
    )


# ---------------------------------------------------------------------------- kappa heatmap


def kappa_colour(kappa: float) -> str:
    """Diverging scale: -1 red, 0 white, +1 blue."""
    kappa = max(-1.0, min(1.0, kappa))
    if kappa >= 0:
        target = (0x08, 0x51, 0x9C)
    else:
        target = (0xB2, 0x18, 0x2B)
    share = abs(kappa)
    r, g, b = (round(255 + (c - 255) * share) for c in target)
    return f"#{r:02x}{g:02x}{b:02x}"


def kappa_heatmap(reader_labels: Sequence[str], pairs: Sequence[dict[str, Any]],
                  title: str = "Pairwise Cohen's kappa") -> SafeString:
    """The reader x reader matrix of pairwise Cohen's kappa as a heatmap (grey: not defined)."""
    n = len(reader_labels)
    if n < 2:
        return _not_defined_message(
            480, "Pairwise kappa not defined: needs at least two readers.", "plot-kappa", title
        )
    index = {label: i for i, label in enumerate(reader_labels)}
    cell = 30 if n <= 14 else max(8, int(560 / n))
    label_width = min(170, 12 + 6.5 * max(len(_short(label)) for label in reader_labels))
    left, top = label_width + 8, label_width + 8
    legend_width = 200
    width = left + n * cell + 20
    width = max(width, left + legend_width + 110)
    height = top + n * cell + 56
    body = _kappa_labels(reader_labels, left, top, cell)
    for pair in pairs:
        a, b = index.get(pair["reader_a"]), index.get(pair["reader_b"])
        if a is None or b is None:
            continue
        body += _kappa_cells(pair, a, b, left, top, cell)
    body += _kappa_legend(left, top + n * cell + 18, legend_width)
    description = "; ".join(
        f"{p['reader_a']} and {p['reader_b']}: {describe(p['kappa'])}" for p in pairs
    )
    return _svg(width, height, title, description, body, "plot-kappa")


def _kappa_labels(reader_labels: Sequence[str], left: float, top: float, cell: int) -> list:
    """Row and (rotated) column labels, and the diagonal's blank cells."""
    body = []
    for i, label in enumerate(reader_labels):
        y = top + i * cell + cell / 2 + 4
        x = left + i * cell + cell / 2
        body.append(_text(left - 6, y, _short(label), anchor="end", size=10))
        body.append(
            _text(x + 4, top - 6, _short(label), size=10,
                  extra=f' transform="rotate(-60 {_f(x + 4)} {_f(top - 6)})"')
        )
        body.append(
            f'<rect x="{_f(left + i * cell)}" y="{_f(top + i * cell)}" width="{cell}" '
            f'height="{cell}" fill="#f7f7f7" stroke="#fff"><title>{escape(label)}</title></rect>'
        )
    return body


def _kappa_cells(
    pair: dict[str, Any], a: int, b: int, left: float, top: float, cell: int
) -> list:
    """A pair's two symmetric cells, coloured by kappa, with the value when cells are wide."""
    show_values = cell >= 28
    slot = pair["kappa"]
    defined = not slot["not_defined"]
    fill = kappa_colour(slot["estimate"]) if defined else NOT_DEFINED_FILL
    tip = f"{pair['reader_a']} × {pair['reader_b']} ({pair['n_cases']} cases): " + (
        f"kappa {describe(slot)}" if defined else describe(slot)
    )
    body = []
    for row, column in ((a, b), (b, a)):
        x, y = left + column * cell, top + row * cell
        body.append(
            f'<g class="cell"><title>{escape(tip)}</title>'
            f'<rect x="{_f(x)}" y="{_f(y)}" width="{cell}" height="{cell}" fill="{fill}" '
            f'stroke="#fff"/>'
        )
        if show_values:
            value = f"{slot['estimate']:.2f}" if defined else "n/d"
            ink = "#fff" if defined and abs(slot["estimate"]) > 0.55 else "#222"
            body.append(
                _text(x + cell / 2, y + cell / 2 + 4, value, anchor="middle", size=9,
                      fill=ink)
            )
        body.append("</g>")
    return body


def _kappa_legend(left: float, ly: float, legend_width: float) -> list:
    """The colour scale from -1 to 1 and the grey swatch for pairs whose kappa is not defined."""
    body = []
    steps = 20
    for k in range(steps):
        value = -1 + 2 * (k + 0.5) / steps
        body.append(
            f'<rect x="{_f(left + k * legend_width / steps)}" y="{_f(ly)}" '
            f'width="{_f(legend_width / steps + 0.5)}" height="10" fill="{kappa_colour(value)}"/>'
        )
    body.append(_text(left, ly + 24, "−1", anchor="middle", size=10))
    body.append(_text(left + legend_width / 2, ly + 24, "0", anchor="middle", size=10))
    body.append(_text(left + legend_width, ly + 24, "1", anchor="middle", size=10))
    body.append(
        f'<rect x="{_f(left + legend_width + 14)}" y="{_f(ly)}" width="10" height="10" '
        f'fill="{NOT_DEFINED_FILL}"/>'
    )
    body.append(_text(left + legend_width + 28, ly + 9, "not defined", size=10))
    return body


# ------------------------------------------------------------------------------- ROC curves


def roc_plot(roc: dict[str, Any]) -> SafeString:
    """Every reader's empirical ROC curve of the fake-score, with the chance diagonal."""
    title = "ROC curves per reader (fake-score: +confidence fake, 0 unsure, −confidence real)"
    if not roc.get("confidence_collected"):
        return _not_defined_message(
            520, "ROC not defined: no confidence ratings were collected.", "plot-roc", title
        )
    curves = [r for r in roc["readers"] if r["points"]]
    if not curves:
        reason = roc.get("note") or "no reader has a defined ROC curve"
        return _not_defined_message(520, f"ROC not defined: {reason}", "plot-roc", title)
    size, left, top = 300, 48, 14
    legend = len(curves) <= 16
    width = left + size + (230 if legend else 20)
    height = top + size + 44
    bottom = top + size
    body = []
    for tick in (0, 0.25, 0.5, 0.75, 1.0):
        x, y = left + tick * size, bottom - tick * size
        body.append(f'<line x1="{_f(x)}" y1="{top}" x2="{_f(x)}" y2="{bottom}" stroke="#eee"/>')
        body.append(f'<line x1="{left}" y1="{_f(y)}" x2="{left + size}" y2="{_f(y)}" stroke="#eee"/>')
        body.append(_text(x, bottom + 14, f"{tick:g}", anchor="middle", size=10, fill="#666"))
        body.append(_text(left - 6, y + 4, f"{tick:g}", anchor="end", size=10, fill="#666"))
    body.append(
        f'<rect x="{left}" y="{top}" width="{size}" height="{size}" fill="none" stroke="#999"/>'
    )
    body.append(
        f'<line x1="{left}" y1="{bottom}" x2="{left + size}" y2="{top}" stroke="#999" '
        f'stroke-dasharray="5 4"><title>chance (AUC 0.5)</title></line>'
    )
    body.append(_text(left + size / 2, bottom + 32, "false positive rate (real called fake)",
                      anchor="middle"))
    body.append(
        _text(14, top + size / 2, "true positive rate (fake called fake)", anchor="middle",
              extra=f' transform="rotate(-90 14 {_f(top + size / 2)})"')
    )
    for k, reader in enumerate(curves):
        colour = PALETTE[k % len(PALETTE)]
        points = " ".join(
            f"{_f(left + p['fpr'] * size)},{_f(bottom - p['tpr'] * size)}" for p in reader["points"]
        )
        tip = f"{reader['reader']}: AUC {describe(reader['auc'])}"
        body.append(
            f'<g class="curve"><title>{escape(tip)}</title>'
            f'<polyline points="{points}" fill="none" stroke="{colour}" stroke-width="1.8"/></g>'
        )
        if legend:
            ly = top + 8 + 16 * k
            auc = reader["auc"]
            auc_text = "n/d" if auc["not_defined"] else f"{auc['estimate']:.3f}"
            body.append(
                f'<line x1="{left + size + 16}" y1="{_f(ly)}" x2="{left + size + 34}" '
                f'y2="{_f(ly)}" stroke="{colour}" stroke-width="2"/>'
            )
            body.append(
                _text(left + size + 40, ly + 4, f"{_short(reader['reader'], 20)}  AUC {auc_text}",
                      size=10)
            )
    description = "; ".join(f"{r['reader']}: AUC {describe(r['auc'])}" for r in roc["readers"])
    return _svg(width, height, title, description, body, "plot-roc")


# ------------------------------------------------------------------------------ fooling rate


def fooling_plot(groups: Sequence[dict[str, Any]], grouping: str = "generator",
                 title: str | None = None) -> SafeString:
    """Fooling rate (synthetic images answered real) per group, with 95% Wilson bars."""
    title = title or f"Fooling rate per {grouping.replace('_', ' ')} (synthetic answered real)"
    rows = [
        g for g in groups if g["grouping"] == grouping and g["measure"] == "fooling_rate"
    ]
    if not rows:
        return _not_defined_message(
            520, "Fooling rate not defined: no synthetic image was read.", "plot-fooling", title
        )
    label_width = min(230, 12 + 6.5 * max(len(_short(g["group"], 34)) for g in rows))
    left, plot_width, row, top = label_width + 10, 320, 24, 10
    bottom = top + row * len(rows)
    width = left + plot_width + 190
    height = bottom + 42
    body = _x_axis(left, plot_width, top, bottom, "fooling rate (95% Wilson interval)")
    for index, group in enumerate(rows):
        y = top + row * index + row / 2
        body.append(_text(label_width, y + 4, _short(group["group"], 34), anchor="end"))
        slot = group["rate"]
        if slot["not_defined"]:
            body.append(_text(left + 4, y + 4, describe(slot), size=10, fill="#a00"))
            continue
        x = left + slot["estimate"] * plot_width
        x0 = left + slot["ci_low"] * plot_width
        x1 = left + slot["ci_high"] * plot_width
        tip = (
            f"{group['group']}: fooling rate {describe(slot)}, {group['n_cases']} images, "
            f"{group['n_answered_unsure']} unsure"
        )
        body.append(
            f'<g class="estimate"><title>{escape(tip)}</title>'
            f'<rect x="{left}" y="{_f(y - 7)}" width="{_f(x - left)}" height="14" '
            f'fill="{PALETTE[1]}" fill-opacity="0.55"/>'
            f'<line x1="{_f(x0)}" y1="{_f(y)}" x2="{_f(x1)}" y2="{_f(y)}" stroke="#333" '
            f'stroke-width="1.5"/>'
            f'<line x1="{_f(x0)}" y1="{_f(y - 4)}" x2="{_f(x0)}" y2="{_f(y + 4)}" stroke="#333"/>'
            f'<line x1="{_f(x1)}" y1="{_f(y - 4)}" x2="{_f(x1)}" y2="{_f(y + 4)}" stroke="#333"/>'
            "</g>"
        )
        body.append(
            _text(left + plot_width + 8, y + 4,
                  f"{slot['estimate']:.2f} [{slot['ci_low']:.2f}, {slot['ci_high']:.2f}] "
                  f"n = {group['n_readings']}", size=10)
        )
    description = "; ".join(f"{g['group']}: {describe(g['rate'])}" for g in rows)
    return _svg(width, height, title, description, body, "plot-fooling")
