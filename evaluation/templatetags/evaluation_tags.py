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
