"""The staff home: where researchers land after logging in.

It lists what a researcher works on across every room (studies with their progress and
blinding audit, recent training and generation jobs) and links to each room's pages. It lives
here, in the top layer that may import every app, because no app may show the others' rows
without importing upwards; see docs/architecture.md.

Query count is fixed whatever the number of rows (tests/staff/test_staff_home.py pins it).
"""

from __future__ import annotations

from dataclasses import dataclass

from django.contrib import admin
from django.contrib.admin.views.decorators import staff_member_required
from django.db.models import Case, Count, IntegerField, Prefetch, QuerySet, Value, When
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.urls import reverse
from django.views.decorators.http import require_GET

from access import roles
from evaluation.models import BlindingAudit, EvaluationStatus
from generation.views import recent_job_rows
from readerstudy.models import Study, StudyStatus
from readerstudy.progress import progress_label, progress_percent, with_progress

STUDIES_SHOWN = 50
JOBS_SHOWN = 5
VIEW_JOBS = ("generation.view_trainingrun", "generation.view_generationjob")


@dataclass(frozen=True)
class AuditState:
    label: str
    tone: str  # ok, warning, error, quiet: the badge's colour


def audit_state(audit: BlindingAudit | None) -> AuditState:
    """One line for the latest audit; whether it is stale shows on the study's own page."""
    if audit is None:
        return AuditState("not yet", "quiet")
    if audit.status == EvaluationStatus.FAILED:
        return AuditState("failed", "error")
    if audit.status != EvaluationStatus.SUCCEEDED:
        return AuditState(audit.get_status_display().lower(), "quiet")
    if not audit.blocking:
        return AuditState("no cue found", "ok")
    cues = f"{len(audit.blocking)} cue{'s' if len(audit.blocking) != 1 else ''}"
    if audit.is_acknowledged:
        return AuditState(f"{cues}, acknowledged", "ok")
    return AuditState(f"{cues} to acknowledge", "warning")


def _studies(request: HttpRequest, mine: bool) -> QuerySet[Study]:
    latest_audit = BlindingAudit.objects.defer("report").order_by("-computed_at", "-id")[:1]
    studies = (
        Study.objects.annotate(
            n_readers=Count("assignments", distinct=True),
            status_rank=Case(
                When(status=StudyStatus.OPEN, then=Value(0)),
                When(status=StudyStatus.DRAFT, then=Value(1)),
                default=Value(2),
                output_field=IntegerField(),
            ),
        )
        .prefetch_related(Prefetch("blinding_audits", queryset=latest_audit, to_attr="latest"))
        .order_by("status_rank", "-created_at", "-id")
    )
    if mine:
        studies = studies.filter(created_by=request.user)
    return with_progress(studies)[:STUDIES_SHOWN]


def _study_rows(studies: QuerySet[Study]) -> list[dict]:
    return [
        {
            "study": study,
            "progress": progress_label(study),
            "percent": progress_percent(study),
            "audit": audit_state(study.latest[0] if study.latest else None),
            "admin_url": reverse("admin:readerstudy_study_change", args=[study.pk]),
            "results_url": reverse("results-dashboard", args=[study.public_id]),
        }
        for study in studies
    ]


@require_GET
@staff_member_required
def home(request: HttpRequest) -> HttpResponse:
    roles.require(request, roles.VIEW_RESULTS)
    mine = request.GET.get("studies") != "all"
    may_see_jobs = all(request.user.has_perm(permission) for permission in VIEW_JOBS)
    context = {
        **admin.site.each_context(request),
        "title": "Staff home",
        "mine": mine,
        "study_rows": _study_rows(_studies(request, mine)),
        "studies_shown": STUDIES_SHOWN,
        "may_see_jobs": may_see_jobs,
        "job_rows": recent_job_rows(JOBS_SHOWN) if may_see_jobs else [],
    }
    response = render(request, "staff/home.html", context)
    response["Cache-Control"] = "private, no-store"
    return response
