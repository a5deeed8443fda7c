"""Template filters for the results dashboard: estimate slots in words, never a bare NaN or 0."""

import re

from django import template
from django.utils.html import format_html

register = template.Library()

# The dashboard states the bootstrap method once per section; a note that only repeats it (with
# no undefined resample) is left out. Any other note (undefined resamples, clipping, readers
# left out, no interval) is shown under the figure.
ROUTINE_NOTE = re.compile(
    r"(?:^|; )\d+ (?:case-bootstrap|two-way bootstrap) resamples \([^)]*\), percentile "
    r"interval; 0 undefined$"
)


def shown_note(note: str) -> str:
    return ROUTINE_NOTE.sub("", note or "").strip("; ")


def _fmt(value, digits: int) -> str:
    return "—" if value is None else f"{value:.{digits}f}"


@register.filter
def estimate(slot: dict | None, digits: int = 3) -> str:
    """An estimate slot as "0.620 [0.550, 0.680]", its note in small print, or, plainly,
    "not defined: <reason>"."""
    if not slot:
        return ""
    if slot.get("not_defined"):
        return format_html('<span class="not-defined">not defined: {}</span>', slot["not_defined"])
    if slot.get("ci_low") is None:
        text = format_html('<span class="est">{}</span>', _fmt(slot["estimate"], digits))
    else:
        text = format_html(
            '<span class="est">{}</span> <span class="ci">[{}, {}]</span>',
            _fmt(slot["estimate"], digits),
            _fmt(slot["ci_low"], digits),
            _fmt(slot["ci_high"], digits),
        )
    note = shown_note(slot.get("note", ""))
    if note:
        text = format_html('{}<br><span class="note">{}</span>', text, note)
    return text


@register.filter
def slot_n(slot: dict | None) -> str:
    if not slot or slot.get("n") is None:
        return "—"
    return str(slot["n"])


@register.filter
def share(value: float | None, digits: int = 0) -> str:
    """A proportion as a percentage."""
    return "—" if value is None else f"{100 * value:.{digits}f}%"
