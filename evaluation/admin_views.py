"""The evaluation app's pages in the study admin (registered in ``EvaluationConfig.ready``)."""

from django.contrib import messages
from django.http import HttpRequest

from evaluation.services import acknowledge_audit, ensure_current_audit
from readerstudy.extensions import StudyAdminView
from readerstudy.models import Study


def acknowledge_audit_of(request: HttpRequest, study: Study) -> None:
    """POST note=...: the researcher accepts the current blinding audit's blocking cues."""
    audit = ensure_current_audit(study)
    try:
        acknowledge_audit(audit, request.user, request.POST.get("note", ""))
    except ValueError as error:
        messages.error(request, f"Not acknowledged: {error}.")
    else:
        messages.success(request, f"Blinding audit of “{study}” acknowledged.")


ACKNOWLEDGE_AUDIT = StudyAdminView(
    route="acknowledge-audit",
    name="readerstudy_study_acknowledge_audit",
    handle=acknowledge_audit_of,
)
