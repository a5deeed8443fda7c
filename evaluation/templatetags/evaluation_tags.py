from django import template

register = template.Library()


@register.simple_tag
def blinding_audit_of(study):
    """The study's latest audit with ``is_current`` (same cases as now) set, or None."""
    from evaluation.models import BlindingAudit
    from evaluation.services import cases_signature

    latest = BlindingAudit.objects.filter(study=study).select_related("acknowledged_by").first()
    if latest is not None:
        latest.is_current = latest.cases_signature == cases_signature(study)
    return latest


@register.filter
def auc(value):
    """Two decimals of an AUC from a to_jsonable Estimate dict (or a float); '—' otherwise."""
    if isinstance(value, dict):
        value = value.get("estimate")
    return "—" if value is None else f"{float(value):.2f}"


@register.filter
def with_ci(value):
    """A to_jsonable Estimate dict as "0.1234 (0.1–0.2)" (the bracket is the 95% interval; the
    page says so once); "—" or the estimate alone when not defined or without an interval."""
    if not isinstance(value, dict) or value.get("estimate") is None:
        return "—"
    text = f"{float(value['estimate']):.4g}"
    if value.get("ci_low") is not None and value.get("ci_high") is not None:
        text += f" ({float(value['ci_low']):.3g}–{float(value['ci_high']):.3g})"
    return text


@register.simple_tag
def fidelity_rows(report):
    """One row per figure: label, description, better, and the (value, baseline) Estimate dicts
    at the model's resolution and, when the evaluation concerns a study, at its display profile."""
    model = (report or {}).get("quality", {}).get("metrics", [])
    display = {
        m.get("name"): m for m in (report or {}).get("quality_display", {}).get("metrics", [])
    }
    rows = []
    for metric in model:
        shown = display.get(metric.get("name"), {})
        rows.append(
            {
                "label": metric.get("label"),
                "description": metric.get("description"),
                "better": metric.get("better"),
                "value": metric.get("value"),
                "baseline": metric.get("baseline"),
                "display_value": shown.get("value"),
                "display_baseline": shown.get("baseline"),
            }
        )
    return rows
