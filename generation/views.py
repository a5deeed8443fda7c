"""The researchers' generation pages: a model's page, Train, Generate, the jobs and each job.

Staff only, and dressed as the admin (every template extends ``admin/base_site.html``).
Reading pages never touch the broker: only launching, cancelling and retrying call the
services, and a broker that is down comes back as a message on the page.

A job's status block is one partial (``partials/job_status.html``) that re-fetches itself
every two seconds while the job is queued or running; the copy rendered for a finished job
carries no trigger, so polling stops by itself. Without JavaScript the pages are plain
pages and the Cancel / Retry forms post and redirect (303).
"""

from __future__ import annotations

import json
from datetime import datetime

from django.contrib import admin, messages
from django.contrib.admin.views.decorators import staff_member_required
from django.core.exceptions import PermissionDenied
from django.core.paginator import Page, Paginator
from django.db import transaction
from django.db.models import Count, QuerySet
from django.http import FileResponse, Http404, HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import get_object_or_404, render
from django.urls import reverse
from django.utils import timezone
from django.utils.cache import patch_vary_headers
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from generation import folders, services
from generation.backends import backend_for, trainable_kinds
from generation.extensions import job_panels, model_panels
from generation.forms import GenerateForm, TrainForm, model_findings
from generation.models import (
    GenerationJob,
    GeneratorModel,
    JobBase,
    JobStatus,
    TrainingRun,
)
from generation.plots import loss_curve_svg
from pool.models import Image

CANCELLABLE = (JobStatus.QUEUED, JobStatus.RUNNING)
RETRYABLE = (JobStatus.FAILED, JobStatus.CANCELLED)
POLL_EVERY = "2s"
JOBS_PER_PAGE = 25
IMAGES_PER_PAGE = 24
PAGE_CACHE_CONTROL = "private, no-store"


# --- lookups: one per kind; each checks the permission and joins what its pages show ---------


def _require(request: HttpRequest, permission: str) -> None:
    if not request.user.has_perm(permission):
        raise PermissionDenied


def _get_generator_for_user(request: HttpRequest, pk: int) -> GeneratorModel:
    _require(request, "generation.view_generatormodel")
    return get_object_or_404(GeneratorModel.objects.select_related("created_by"), pk=pk)


def _get_training_run_for_user(request: HttpRequest, pk: int, action: str = "view") -> TrainingRun:
    _require(request, f"generation.{action}_trainingrun")
    return get_object_or_404(TrainingRun.objects.select_related("generator", "created_by"), pk=pk)


def _get_generation_job_for_user(
    request: HttpRequest, pk: int, action: str = "view"
) -> GenerationJob:
    _require(request, f"generation.{action}_generationjob")
    return get_object_or_404(
        GenerationJob.objects.select_related("generator", "study", "created_by"), pk=pk
    )


def _get_job_for_user(request: HttpRequest, kind: str, pk: int, action: str = "view") -> JobBase:
    if kind == "training":
        return _get_training_run_for_user(request, pk, action)
    return _get_generation_job_for_user(request, pk, action)


# --- small helpers ------------------------------------------------------------------------


def _page(response: HttpResponse) -> HttpResponse:
    response["Cache-Control"] = PAGE_CACHE_CONTROL
    patch_vary_headers(response, ["HX-Request"])
    return response


def _see_other(url: str) -> HttpResponse:
    return _page(HttpResponseRedirect(url, status=303))


def _is_partial(request: HttpRequest) -> bool:
    return bool(request.htmx) and not request.htmx.history_restore_request


def _admin_context(request: HttpRequest, title: str) -> dict:
    return {
        **admin.site.each_context(request),
        "title": title,
        "opts": GeneratorModel._meta,
    }


def job_url(kind: str, job: JobBase) -> str:
    return reverse("generation-job", args=[kind, job.pk])


def _format_seconds(seconds: float | None) -> str:
    if seconds is None:
        return ""
    seconds = max(0, round(seconds))
    hours, rest = divmod(seconds, 3600)
    minutes, secs = divmod(rest, 60)
    return f"{hours}:{minutes:02d}:{secs:02d}" if hours else f"{minutes}:{secs:02d}"


def _duration(job: JobBase, now: datetime) -> str:
    if job.started_at is None:
        return ""
    end = job.finished_at or now
    return _format_seconds((end - job.started_at).total_seconds())


def _sentence(message: str) -> str:
    """The services' messages start in lower case; on a page they are sentences."""
    return message[:1].upper() + message[1:]


def _paginate(request: HttpRequest, items, per_page: int, param: str = "page") -> Page:
    return Paginator(items, per_page).get_page(request.GET.get(param))


# --- a model's page ------------------------------------------------------------------------


def _config_rows(generator: GeneratorModel) -> list[tuple[str, str]]:
    rows = [
        ("Kind", generator.get_kind_display()),
        ("Modality", generator.get_modality_display()),
        ("Findings", ", ".join(str(f) for f in generator.findings) or "—"),
        ("Resolution", f"{generator.resolution} × {generator.resolution}"),
    ]
    if generator.base_checkpoint:
        rows.append(("Base checkpoint", generator.base_checkpoint))
    rows.append(("Folder", str(generator.folder)))
    for key, value in sorted((generator.config or {}).items()):
        rows.append((str(key), json.dumps(value) if isinstance(value, dict | list) else str(value)))
    return rows


@require_GET
@staff_member_required
def model_detail(request: HttpRequest, pk: int) -> HttpResponse:
    generator = _get_generator_for_user(request, pk)
    layout = folders.folder_layout(generator)
    checkpoints = folders.checkpoints(generator, layout)
    grid_step = next((c.step for c in checkpoints if c.has_grid), None)
    images = Image.objects.filter(generated_by__job__generator=generator).order_by(
        "-created_at", "-id"
    )
    context = {
        **_admin_context(request, f"Model “{generator.name}”"),
        "generator": generator,
        "config_rows": _config_rows(generator),
        "checkpoints": checkpoints,
        "has_grid": bool(generator.sample_grid) or grid_step is not None,
        "grid_note": backend_for(generator.kind).grid_note(generator),
        "grid_step": grid_step,
        "loss_svg": loss_curve_svg(
            folders.loss_points(generator, layout), title=f"Training loss of {generator.name}"
        ),
        "runs": generator.runs.order_by("-created_at", "-id")[:10],
        "jobs": generator.jobs.order_by("-created_at", "-id")[:10],
        "images": _paginate(request, images, IMAGES_PER_PAGE),
        **model_panels(generator),
    }
    return _page(render(request, "generation/model.html", context))


def _png(opened) -> FileResponse:
    response = FileResponse(opened, content_type="image/png")
    response["Cache-Control"] = "private, max-age=60"
    return response


@require_GET
@staff_member_required
def model_samples(request: HttpRequest, pk: int) -> FileResponse:
    """The latest sample grid: the one workers recorded, else the newest in the folder."""
    generator = _get_generator_for_user(request, pk)
    if generator.sample_grid:
        try:
            return _png(generator.sample_grid.open("rb"))
        except OSError:
            pass  # recorded but gone from storage: fall back to the folder
    layout = folders.folder_layout(generator)
    for step, _ in reversed(layout.checkpoints):
        if grid := folders.grid_file(layout, step):
            return _png(grid.open("rb"))
    raise Http404("This model has no sample grid yet.")


@require_GET
@staff_member_required
def checkpoint_samples(request: HttpRequest, pk: int, step: int) -> FileResponse:
    """One checkpoint's sample grid, from the model folder."""
    generator = _get_generator_for_user(request, pk)
    grid = folders.grid_file(folders.folder_layout(generator), step)
    if grid is None:
        raise Http404("No sample grid for this checkpoint.")
    return _png(grid.open("rb"))


# --- launching -------------------------------------------------------------------------------


def _train_initial(request: HttpRequest) -> dict:
    raw = request.GET.get("model", "")
    generator = GeneratorModel.objects.filter(pk=raw).first() if raw.isdigit() else None
    if generator is None:
        return {}
    return {
        "kind": generator.kind,
        "name": generator.name,
        "modality": generator.modality,
        "findings": ", ".join(model_findings(generator)),
        "resolution": generator.resolution,
        "base_checkpoint": generator.base_checkpoint,
    }


@require_http_methods(["GET", "POST"])
@staff_member_required
def train(request: HttpRequest) -> HttpResponse:
    _require(request, "generation.add_trainingrun")
    form = TrainForm(request.POST or None, initial=_train_initial(request))
    if request.method == "POST" and form.is_valid():
        try:
            with transaction.atomic():  # a broker that is down leaves no model and no run
                run = services.start_training(
                    generator=form.generator(request.user),
                    total_steps=form.cleaned_data["steps"],
                    params=form.params(),
                    user=request.user,
                )
        except (services.BrokerUnavailable, services.InvalidJob) as error:
            form.add_error(None, _sentence(str(error)))
        else:
            messages.success(request, f"Training run for “{run.generator}” queued.")
            return _see_other(job_url("training", run))
    context = {
        **_admin_context(request, "Train a model"),
        "form": form,
        "existing_names": GeneratorModel.objects.filter(kind__in=trainable_kinds())
        .order_by("name")
        .values_list("name", flat=True),
    }
    return _page(render(request, "generation/train.html", context))


def _generate_initial(request: HttpRequest) -> dict:
    """The model named in ?model= and its kind's guidance, when the link came from its page."""
    raw = request.GET.get("model", "")
    generator = GeneratorModel.objects.filter(pk=raw).first() if raw.isdigit() else None
    if generator is None:
        return {}
    return {"generator": raw, "guidance": services.default_guidance(generator)}


@require_http_methods(["GET", "POST"])
@staff_member_required
def generate(request: HttpRequest) -> HttpResponse:
    _require(request, "generation.add_generationjob")
    form = GenerateForm(request.POST or None, initial=_generate_initial(request))
    if request.method == "POST" and form.is_valid():
        try:
            with transaction.atomic():
                job = services.start_generation(**form.job_kwargs(), user=request.user)
        except (services.BrokerUnavailable, services.InvalidJob) as error:
            form.add_error(None, _sentence(str(error)))
        else:
            messages.success(request, f"Generation job for “{job.generator}” queued.")
            return _see_other(job_url("generation", job))
    findings = GeneratorModel.objects.values_list("findings", flat=True)
    context = {
        **_admin_context(request, "Generate images"),
        "form": form,
        "known_findings": sorted({str(f) for listed in findings for f in listed or []}),
    }
    return _page(render(request, "generation/generate.html", context))


# --- the jobs ----------------------------------------------------------------------------------


def list_progress(job: JobBase, done: int, total: int) -> dict:
    """The progress bar of a list row, from the row itself (no query per row); the keys of
    ``partials/progress_bar.html``."""
    done = min(done, total) if total else done
    percent = (
        100.0 if job.status == JobStatus.SUCCEEDED else (100.0 * done / total if total else 0.0)
    )
    latest_loss = getattr(job, "latest_loss", None)
    return {
        "status": job.status,
        "done": done,
        "total": total,
        "percent": percent,
        "latest_loss": latest_loss,
    }


def listed_runs() -> QuerySet[TrainingRun]:
    """Training runs as the lists show them, newest first."""
    return TrainingRun.objects.select_related("generator").order_by("-created_at", "-id")


def listed_jobs() -> QuerySet[GenerationJob]:
    """Generation jobs as the lists show them, newest first, each with its images counted in
    the same query (``outputs_done``)."""
    return (
        GenerationJob.objects.select_related("generator")
        .annotate(outputs_done=Count("outputs"))
        .order_by("-created_at", "-id")
    )


def run_row(run: TrainingRun) -> dict:
    """One row of a list of jobs (``partials/job_table.html``); ``run`` from listed_runs()."""
    return {
        "kind": "training",
        "unit": "steps",
        "job": run,
        "url": job_url("training", run),
        "progress": list_progress(run, run.step, run.total_steps),
    }


def generation_row(job: GenerationJob) -> dict:
    """One row of a list of jobs; ``job`` from listed_jobs() (it reads ``outputs_done``)."""
    return {
        "kind": "generation",
        "unit": "images",
        "job": job,
        "url": job_url("generation", job),
        "progress": list_progress(job, job.outputs_done, job.count),
    }


def recent_job_rows(n: int) -> list[dict]:
    """The latest ``n`` training runs and ``n`` generation jobs, newest first: two queries."""
    rows = [run_row(run) for run in listed_runs()[:n]]
    rows += [generation_row(job) for job in listed_jobs()[:n]]
    return sorted(rows, key=lambda row: row["job"].created_at, reverse=True)


def _page_links(request: HttpRequest, page: Page, param: str) -> dict[str, str]:
    """Newer / older links of one list that keep the other list's page."""
    links = {}
    for name, number in (
        ("newer", page.previous_page_number() if page.has_previous() else None),
        ("older", page.next_page_number() if page.has_next() else None),
    ):
        if number is not None:
            query = request.GET.copy()
            query[param] = str(number)
            links[name] = f"?{query.urlencode()}"
    return links


@require_GET
@staff_member_required
def job_list(request: HttpRequest) -> HttpResponse:
    _require(request, "generation.view_trainingrun")
    _require(request, "generation.view_generationjob")
    runs = _paginate(request, listed_runs(), JOBS_PER_PAGE, "runs")
    jobs = _paginate(request, listed_jobs(), JOBS_PER_PAGE, "jobs")
    run_rows = [run_row(run) for run in runs]
    job_rows = [generation_row(job) for job in jobs]
    context = {
        **_admin_context(request, "Training runs and generation jobs"),
        "runs": runs,
        "jobs": jobs,
        "run_rows": run_rows,
        "job_rows": job_rows,
        "run_links": _page_links(request, runs, "runs"),
        "job_links": _page_links(request, jobs, "jobs"),
        "polling": any(not row["job"].is_finished for row in run_rows + job_rows),
        "poll_every": "5s",
    }
    template = (
        "generation/partials/job_tables.html" if _is_partial(request) else "generation/jobs.html"
    )
    return _page(render(request, template, context))


def _job_context(kind: str, job: JobBase, notice: str = "", notice_ok: bool = True) -> dict:
    progress = services.progress(job)
    return {
        "job": job,
        "kind": kind,
        "progress": progress,
        "eta": "" if progress.get("is_finished") else _format_seconds(progress.get("eta_s")),
        "duration": _duration(job, timezone.now()),
        "can_cancel": job.status in CANCELLABLE and not job.cancel_requested,
        "can_retry": job.status in RETRYABLE,
        "job_url": job_url(kind, job),
        "status_url": reverse("generation-job-status", args=[kind, job.pk]),
        "cancel_url": reverse("generation-job-cancel", args=[kind, job.pk]),
        "retry_url": reverse("generation-job-retry", args=[kind, job.pk]),
        "poll_every": POLL_EVERY,
        "notice": notice,
        "notice_ok": notice_ok,
    }


@require_GET
@staff_member_required
def job_detail(request: HttpRequest, kind: str, pk: int) -> HttpResponse:
    job = _get_job_for_user(request, kind, pk)
    context = {
        **_admin_context(
            request, f"{'Training run' if kind == 'training' else 'Generation job'} #{job.pk}"
        ),
        **_job_context(kind, job),
    }
    if kind == "generation":
        outputs = job.outputs.select_related("image").order_by("-index")[:IMAGES_PER_PAGE]
        context["outputs"] = outputs
        context.update(job_panels(job))
    return _page(render(request, "generation/job.html", context))


@require_GET
@staff_member_required
def job_status(request: HttpRequest, kind: str, pk: int) -> HttpResponse:
    """The self-polling status block; a plain browser visit gets the whole page instead."""
    job = _get_job_for_user(request, kind, pk)
    if not _is_partial(request):
        return _see_other(job_url(kind, job))
    return _render_status(request, kind, job)


def _render_status(
    request: HttpRequest, kind: str, job: JobBase, notice: str = "", notice_ok: bool = True
) -> HttpResponse:
    context = _job_context(kind, job, notice, notice_ok)
    return _page(render(request, "generation/partials/job_status.html", context))


def _after_action(
    request: HttpRequest, kind: str, job: JobBase, notice: str, ok: bool
) -> HttpResponse:
    """htmx: the refreshed status block with the notice in it; otherwise back to the page."""
    if _is_partial(request):
        job.refresh_from_db()
        return _render_status(request, kind, job, notice, ok)
    messages.add_message(request, messages.SUCCESS if ok else messages.ERROR, notice)
    return _see_other(job_url(kind, job))


@require_POST
@staff_member_required
def job_cancel(request: HttpRequest, kind: str, pk: int) -> HttpResponse:
    job = _get_job_for_user(request, kind, pk, "change")
    if job.status not in CANCELLABLE:
        status = job.get_status_display().lower()
        return _after_action(request, kind, job, f"This job is {status}: nothing to cancel.", False)
    services.request_cancel(job)
    notice = "Cancel requested: the worker stops after the current step and keeps what is done."
    return _after_action(request, kind, job, notice, True)


@require_POST
@staff_member_required
def job_retry(request: HttpRequest, kind: str, pk: int) -> HttpResponse:
    job = _get_job_for_user(request, kind, pk, "change")
    if job.status not in RETRYABLE:
        status = job.get_status_display().lower()
        notice = f"This job is {status}: only failed or cancelled jobs can be retried."
        return _after_action(request, kind, job, notice, False)
    try:
        with transaction.atomic():
            services.retry(job)
    except (services.BrokerUnavailable, services.InvalidJob) as error:
        return _after_action(request, kind, job, _sentence(str(error)), False)
    notice = "Retry queued: it continues from what is already done."
    return _after_action(request, kind, job, notice, True)
