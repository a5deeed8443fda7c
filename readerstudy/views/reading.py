"""The radiologist's pages: their studies, and reading one case after another.

Blinding rules for everything here:

* a reader's URLs carry only the study's public id and per-reading slot tokens;
* a slot of someone else, or of a draft study, is a 404, exactly like a token that does
  not exist;
* the case page and the image never depend on the image's truth, source or finding:
  they are rendered from the slot, the study and the reader's progress only, and the
  image goes through one code path with one set of headers;
* only a practice case's feedback page, after the answer, names the truth.

Every page is a full page, and the case page also answers htmx requests with the
``partials/`` fragment that replaces ``#reader``; without JavaScript the forms post and
redirect (303) as usual.
"""

from __future__ import annotations

import markdown
import nh3
from django.db.models import Case, Count, IntegerField, Value, When
from django.http import Http404, HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.utils.cache import patch_vary_headers
from django.utils.safestring import mark_safe
from django.views.decorators.http import require_GET, require_http_methods

from pool.imaging.pipeline import CT_WINDOWS
from pool.models import Image, Truth
from readerstudy.design_forms import answer_form_class, finding_choices
from readerstudy.forms import CONFIDENCE_LEVELS, AnswerForm
from readerstudy.models import Answer, Assignment, Design, Reading, ReadingSlot, StudyStatus
from readerstudy.services.feedback import own_score
from readerstudy.services.presentation import derivative_bytes, reading_options
from readerstudy.services.reading import (
    Outcome,
    Progress,
    Result,
    Surroundings,
    mark_served,
    min_viewing_seconds,
    progress_of,
    reading_of,
    record_answer,
    surroundings_of,
)
from readerstudy.services.studies import StudyRefused, draw_order

IMAGE_CACHE_CONTROL = "private, max-age=86400, immutable"
PAGE_CACHE_CONTROL = "private, no-store"

READER_WINDOWS = ("study", *CT_WINDOWS)

ANSWER_KEYS = {Answer.REAL: "R", Answer.FAKE: "F", Answer.UNSURE: "U"}


# --- lookups: anything not the reader's own, or in a draft study, is a 404 -------------


def _reader_assignment(request: HttpRequest, study_id: str) -> Assignment:
    return get_object_or_404(
        Assignment.objects.select_related("study").exclude(study__status=StudyStatus.DRAFT),
        study__public_id=study_id,
        reader=request.user,
    )


def _reader_slot(request: HttpRequest, token: str) -> ReadingSlot:
    slot = get_object_or_404(
        ReadingSlot.objects.select_related("assignment__study__presentation", "reading"),
        token=token,
        assignment__reader=request.user,
    )
    # Checked here rather than in the query: the same 404, a cheaper statement to build.
    if slot.assignment.study.status == StudyStatus.DRAFT:
        raise Http404("No ReadingSlot matches the given query.")
    return slot


# --- small helpers -------------------------------------------------------------------


def _is_partial(request: HttpRequest) -> bool:
    return bool(request.htmx) and not request.htmx.history_restore_request


def _page(response: HttpResponse) -> HttpResponse:
    response["Cache-Control"] = PAGE_CACHE_CONTROL
    patch_vary_headers(response, ["HX-Request"])
    return response


def _go(request: HttpRequest, url: str) -> HttpResponse:
    """Redirect; for htmx, a full-page navigation (HX-Redirect) instead of a swap."""
    if request.htmx:
        response = HttpResponse(status=204)
        response["HX-Redirect"] = url
        return _page(response)
    return _page(redirect(url))


def _see_other(url: str) -> HttpResponse:
    """After a plain-form POST: 303, so that reloading never resubmits."""
    response = HttpResponseRedirect(url, status=303)
    return _page(response)


def _case_url(slot_or_token) -> str:
    token = getattr(slot_or_token, "token", slot_or_token)
    return reverse("reading-case", args=[token])


def _study_urls(study) -> dict[str, str]:
    return {
        "study_url": reverse("study-detail", args=[study.public_id]),
        "next_url": reverse("study-next", args=[study.public_id]),
        "done_url": reverse("study-done", args=[study.public_id]),
    }


def _instructions_html(text: str) -> str:
    html = markdown.markdown(text or "", extensions=["sane_lists"], output_format="html")
    return mark_safe(nh3.clean(html))  # sanitised just above


# --- home and study pages ------------------------------------------------------------


@require_GET
def home(request: HttpRequest) -> HttpResponse:
    assignments = (
        Assignment.objects.filter(reader=request.user)
        .exclude(study__status=StudyStatus.DRAFT)
        .select_related("study")
        .annotate(
            total=Count("slots"),
            answered=Count("slots__reading"),
            closed_last=Case(
                When(study__status=StudyStatus.OPEN, then=Value(0)),
                default=Value(1),
                output_field=IntegerField(),
            ),
        )
        .order_by("closed_last", "-assigned_at", "-id")
    )
    # The keyboard starts on the first study there is something to do in.
    for assignment in assignments:
        if assignment.study.status == StudyStatus.OPEN and (
            assignment.total == 0 or assignment.answered < assignment.total
        ):
            assignment.autofocus = True
            break
    return _page(render(request, "readerstudy/home.html", {"assignments": assignments}))


@require_GET
def study_detail(request: HttpRequest, study_id: str) -> HttpResponse:
    assignment = _reader_assignment(request, study_id)
    study = assignment.study
    context = {
        "study": study,
        "progress": progress_of(assignment),
        "instructions": _instructions_html(study.instructions),
        "confidence_levels": CONFIDENCE_LEVELS,
        "own_score": own_score(assignment),
        **_study_urls(study),
    }
    return _page(render(request, "readerstudy/study.html", context))


@require_GET
def study_next(request: HttpRequest, study_id: str) -> HttpResponse:
    """Resume: go to the first case without a reading, or to the completion page."""
    assignment = _reader_assignment(request, study_id)
    study = assignment.study
    if study.status != StudyStatus.OPEN:
        return _go(request, reverse("study-detail", args=[study.public_id]))
    if assignment.order_drawn_at is None:
        try:
            draw_order(assignment)
        except StudyRefused:
            raise Http404("This study has no cases to read yet.") from None
    slot = assignment.slots.filter(reading__isnull=True).order_by("position").only("token").first()
    if slot is None:
        return _go(request, reverse("study-done", args=[study.public_id]))
    return _go(request, _case_url(slot))


@require_GET
def study_done(request: HttpRequest, study_id: str) -> HttpResponse:
    assignment = _reader_assignment(request, study_id)
    progress = progress_of(assignment)
    if not progress.is_complete:
        return _go(request, reverse("study-next", args=[assignment.study.public_id]))
    study = assignment.study
    review_url = ""
    if study.allow_revisions and study.status == StudyStatus.OPEN:
        last = (
            assignment.slots.filter(is_practice=False).order_by("-position").only("token").first()
        )
        review_url = _case_url(last) if last else ""
    context = {
        "study": study,
        "progress": progress,
        "review_url": review_url,
        "own_score": own_score(assignment),
        **_study_urls(study),
    }
    return _page(render(request, "readerstudy/done.html", context))


# --- the case page ---------------------------------------------------------------------


def _case_context(slot: ReadingSlot, around: Surroundings, form: AnswerForm | None) -> dict:
    study = slot.assignment.study
    reading = reading_of(slot)
    progress = around.progress
    following = around.following
    preceding = around.previous
    can_go_back = study.allow_revisions and not slot.is_practice
    current = progress.current_position
    can_go_forward = (
        can_go_back
        and reading is not None
        and following is not None
        and (current is None or slot.position + 1 <= current)
    )
    chosen_answer, chosen_confidence, comment = _chosen(form, reading)
    return {
        "study": study,
        "slot": slot,
        "progress": progress,
        "counter": _counter(slot, progress),
        "form": form,
        "reading": reading,
        "post_url": _case_url(slot),
        "image_url": reverse("reading-image", args=[slot.token]),
        "next_image_url": reverse("reading-image", args=[following[0]]) if following else "",
        "previous_url": _case_url(preceding[0])
        if can_go_back and preceding and not preceding[1]
        else "",
        "forward_url": _case_url(following[0]) if can_go_forward else "",
        "answers": [
            {
                "value": value,
                "label": label,
                "key": ANSWER_KEYS[value],
                "chosen": value == chosen_answer,
            }
            for value, label in Answer.choices
        ],
        "confidence_levels": [
            {"value": level, "chosen": level == chosen_confidence} for level in CONFIDENCE_LEVELS
        ],
        "comment": comment,
        **_viewer_options(study, slot),
        "findings": finding_choices(study, _chosen_finding(form, reading)),
        **_study_urls(study),
    }


def _chosen(form: AnswerForm | None, reading) -> tuple[str | None, int | None, str]:
    """What the page shows as chosen: the answer just posted, else the stored reading's."""
    if form is not None and form.is_bound:
        return form.data.get("answer") or None, None, form.data.get("comment", "")
    if reading is not None:
        return reading.answer, reading.confidence, reading.comment
    return None, None, ""


def _counter(slot: ReadingSlot, progress: Progress) -> str:
    if slot.is_practice:
        return f"Practice {slot.position} of {progress.practice_total}"
    return f"Case {slot.position - progress.practice_total} of {progress.case_total}"


def _viewer_options(study, slot: ReadingSlot) -> dict:
    options = reading_options(study)
    return {
        "min_view_ms": options["min_view_ms"],
        "window_urls": [
            (name, reverse("reading-image-window", args=[slot.token, name]))
            for name in options["windows"]
        ],
    }


def _chosen_finding(form: AnswerForm | None, reading: Reading | None) -> str | None:
    if form is not None and form.is_bound:
        return form.data.get("finding")
    return reading.finding_answer if reading is not None else None


def _render_case(
    request: HttpRequest,
    slot: ReadingSlot,
    around: Surroundings,
    *,
    form: AnswerForm | None = None,
    status: int = 200,
    push: bool = False,
) -> HttpResponse:
    context = _case_context(slot, around, form)
    template = "readerstudy/partials/case.html" if _is_partial(request) else "readerstudy/case.html"
    response = render(request, template, context, status=status)
    if push and _is_partial(request):
        response["HX-Push-Url"] = context["post_url"]
    return _page(response)


def _render_conflict(request: HttpRequest, slot: ReadingSlot, message: str) -> HttpResponse:
    """409: nothing was written; tell the reader why and where to go on."""
    study = slot.assignment.study
    context = {"study": study, "message": message, **_study_urls(study)}
    template = (
        "readerstudy/partials/conflict.html"
        if _is_partial(request)
        else "readerstudy/conflict.html"
    )
    return _page(render(request, template, context, status=409))


def _render_feedback(
    request: HttpRequest, slot: ReadingSlot, reading: Reading, *, push: bool = False
) -> HttpResponse:
    """A practice case after its answer: the one page that names the truth."""
    assignment = slot.assignment
    progress = progress_of(assignment)
    following = None
    if progress.current_position is not None:
        following = (
            assignment.slots.filter(position=progress.current_position).only("token").first()
        )
    image = slot.case.image
    expected = Answer.REAL if image.truth == Truth.REAL else Answer.FAKE
    context = {
        "study": assignment.study,
        "slot": slot,
        "reading": reading,
        "truth": image.get_truth_display(),
        "progress": progress,
        "correct": reading.answer == expected,
        "unsure": reading.answer == Answer.UNSURE,
        "continue_url": _case_url(following)
        if following
        else reverse("study-done", args=[assignment.study.public_id]),
        # The other designs' screens are full pages, never swapped in by htmx.
        "continue_is_case": following is not None and assignment.study.design == Design.SINGLE,
        "counter": "Practice answer",
        "image_url": reverse("reading-image", args=[slot.token]),
        "next_image_url": reverse("reading-image", args=[following.token]) if following else "",
        **_study_urls(assignment.study),
    }
    template = (
        "readerstudy/partials/feedback.html"
        if _is_partial(request)
        else "readerstudy/feedback.html"
    )
    response = render(request, template, context)
    if push and _is_partial(request):
        response["HX-Push-Url"] = reverse("reading-feedback", args=[slot.token])
    return _page(response)


@require_http_methods(["GET", "POST"])
def case(request: HttpRequest, token: str) -> HttpResponse:
    slot = _reader_slot(request, token)
    if slot.assignment.study.design != Design.SINGLE:
        from readerstudy.views import designs  # imports this module

        return designs.case(request, slot)
    if request.method == "POST":
        return _answer(request, slot)
    study = slot.assignment.study
    if study.status != StudyStatus.OPEN:
        return _go(request, reverse("study-detail", args=[study.public_id]))
    around = surroundings_of(slot)
    reading = reading_of(slot)
    if reading is None:
        if slot.position != around.progress.current_position:
            return _go(request, reverse("study-next", args=[study.public_id]))
        mark_served(slot)
    elif slot.is_practice:
        return _go(request, reverse("reading-feedback", args=[slot.token]))
    elif not study.allow_revisions:
        return _go(request, reverse("study-next", args=[study.public_id]))
    return _render_case(request, slot, around)


def _too_soon_message(study) -> str:
    seconds = min_viewing_seconds(study)
    return (
        f"Too soon: this study asks you to look at each case for at least {seconds:g} s "
        "before answering. Nothing was recorded; answer again."
    )


def _answer(request: HttpRequest, slot: ReadingSlot) -> HttpResponse:
    study = slot.assignment.study
    if study.status != StudyStatus.OPEN:
        return _render_conflict(request, slot, "This study is closed: nothing was recorded.")
    form = answer_form_class(study)(request.POST, study=study)
    if not form.is_valid():
        return _render_case(request, slot, surroundings_of(slot), form=form, status=400)
    # The finding answered (when the study asks) travels in the answer's own INSERT.
    result = record_answer(slot, form.answer_data())
    if not result.outcome.accepted:
        message = {
            Outcome.STALE: "This case was already answered; your answer was not changed.",
            Outcome.NOT_CURRENT: "This is not your current case; nothing was recorded.",
            Outcome.CLOSED: "This study is closed: nothing was recorded.",
            Outcome.TOO_SOON: _too_soon_message(study),
        }[result.outcome]
        return _render_conflict(request, slot, message)

    if slot.is_practice:
        if not _is_partial(request):
            return _see_other(reverse("reading-feedback", args=[slot.token]))
        return _render_feedback(request, slot, result.reading, push=True)

    following = _following(slot, result)
    if following is None:
        done_url = reverse("study-done", args=[study.public_id])
        if request.htmx:
            return _go(request, done_url)
        return _see_other(done_url)
    if not _is_partial(request):
        return _see_other(_case_url(following))
    mark_served(following)
    return _render_case(request, following, surroundings_of(following), push=True)


def _following(slot: ReadingSlot, result: Result) -> ReadingSlot | None:
    """The case the reply shows next; a new reading brings it from under its lock."""
    if result.outcome == Outcome.RECORDED:
        following = result.following
    else:  # the same answer again, or a revision: look it up
        following = (
            slot.assignment.slots.filter(reading__isnull=True)
            .order_by("position")
            .select_related("reading")
            .first()
        )
    if following is not None:
        following.assignment = slot.assignment  # with its study and profile, fetched already
    return following


@require_GET
def feedback(request: HttpRequest, token: str) -> HttpResponse:
    slot = _reader_slot(request, token)
    reading = reading_of(slot)
    if not slot.is_practice or reading is None:
        raise Http404("No feedback for this case.")
    if slot.assignment.study.design == Design.PAIR:
        from readerstudy.views import designs  # imports this module

        return designs.pair_feedback(request, slot, reading)
    return _render_feedback(request, slot, reading)


@require_GET
def image(request: HttpRequest, token: str, window: str | None = None) -> HttpResponse:
    """The study's presentation derivative, with the same headers for every image of every study.

    No file name, no ETag, no Last-Modified; the length is the same for every derivative
    of a profile, and the bytes are read in full through the same path for every image.
    ``window`` (a CT preset name) is accepted for every case: an image without Hounsfield
    units answers with its one derivative, so the URL says nothing about the case.
    """
    slot = get_object_or_404(
        ReadingSlot.objects.select_related("case__image", "assignment__study__presentation"),
        token=token,
        assignment__reader=request.user,
        assignment__study__status=StudyStatus.OPEN,
    )
    if window is not None and window not in READER_WINDOWS:
        raise Http404("No such window.")
    return image_response(slot.assignment.study, slot.case.image, window)


def image_response(study, image: Image, window: str | None = None) -> HttpResponse:
    """Every image a reader gets goes through here: one path, one set of headers."""
    data = derivative_bytes(study, image, window)
    response = HttpResponse(data, content_type="image/png")
    response["Content-Length"] = str(len(data))
    response["Cache-Control"] = IMAGE_CACHE_CONTROL
    response["X-Content-Type-Options"] = "nosniff"
    return response
