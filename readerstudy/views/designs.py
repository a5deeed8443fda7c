"""Reading pages of the pair (2AFC) and exposure (HYPE-time) designs.

The blinding rules of ``readerstudy.views.reading`` hold here too: the pages are rendered from
the slot, the study and the reader's progress only. On a pair page, which image is left is the
stored draw from the seed; on an exposure page, the exposure is the one the server decided from
the reader's earlier answers (``services.designs.decide_exposure``), never from this image.

These pages are plain forms: each answer posts and redirects (303) to the next screen, and no
screen can be revisited (a timed or paired judgement cannot be taken again).
"""

from __future__ import annotations

from dataclasses import replace

from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, render
from django.urls import reverse
from django.views.decorators.http import require_GET

from pool.models import Truth
from readerstudy.design_forms import (
    DesignAnswerForm,
    ExposureAnswerForm,
    PairAnswerForm,
    finding_choices,
)
from readerstudy.models import Design, Reading, ReadingSlot, StudyStatus
from readerstudy.services.designs import decide_exposure
from readerstudy.services.reading import (
    Outcome,
    Progress,
    mark_served,
    progress_of,
    reading_of,
    record_answer,
)
from readerstudy.views import reading as base

FINDING_KEYS = "123456789"


def _form_class(design: str) -> type[DesignAnswerForm]:
    return PairAnswerForm if design == Design.PAIR else ExposureAnswerForm


def case(request: HttpRequest, slot: ReadingSlot) -> HttpResponse:
    """GET or POST of a pair or exposure screen (dispatched from ``reading.case``)."""
    if request.method == "POST":
        return _answer(request, slot)
    study = slot.assignment.study
    if study.status != StudyStatus.OPEN:
        return base._go(request, reverse("study-detail", args=[study.public_id]))
    reading = reading_of(slot)
    if reading is not None and slot.is_practice:
        return base._go(request, reverse("reading-feedback", args=[slot.token]))
    progress = progress_of(slot.assignment)
    if reading is not None or slot.position != progress.current_position:
        return base._go(request, reverse("study-next", args=[study.public_id]))
    mark_served(slot)
    if study.design == Design.EXPOSURE:
        decide_exposure(slot)
    return _render(request, slot, progress)


def _counter(slot: ReadingSlot, progress: Progress, noun: str) -> str:
    if slot.is_practice:
        return f"Practice {slot.position} of {progress.practice_total}"
    return f"{noun} {slot.position - progress.practice_total} of {progress.case_total}"


def _render(
    request: HttpRequest,
    slot: ReadingSlot,
    progress: Progress,
    *,
    form: DesignAnswerForm | None = None,
    status: int = 200,
) -> HttpResponse:
    study = slot.assignment.study
    chosen = form.data.get("finding") if form is not None else None
    context = {
        "study": study,
        "slot": slot,
        "progress": progress,
        "form": form,
        "post_url": base._case_url(slot),
        "image_url": reverse("reading-image", args=[slot.token]),
        "findings": finding_choices(study, chosen, keys=FINDING_KEYS),
        **base._study_urls(study),
    }
    if study.design == Design.PAIR:
        context["counter"] = _counter(slot, progress, "Pair")
        context["right_image_url"] = reverse("reading-right-image", args=[slot.token])
        template = "readerstudy/designs/pair.html"
    else:
        context["counter"] = _counter(slot, progress, "Case")
        context["answers"] = [
            {"value": value, "label": label, "key": base.ANSWER_KEYS[value]}
            for value, label in base.Answer.choices
        ]
        template = "readerstudy/designs/exposure.html"
    return base._page(render(request, template, context, status=status))


def _answer(request: HttpRequest, slot: ReadingSlot) -> HttpResponse:
    study = slot.assignment.study
    if study.status != StudyStatus.OPEN:
        return base._render_conflict(request, slot, "This study is closed: nothing was recorded.")
    form = _form_class(study.design)(request.POST, study=study)
    if not form.is_valid():
        return _render(request, slot, progress_of(slot.assignment), form=form, status=400)
    # What the design adds (side, finding, exposures) travels in the answer's own INSERT.
    data = form.answer_data()
    if study.design == Design.EXPOSURE:
        data = replace(data, extra={**data.extra, "requested_exposure_ms": decide_exposure(slot)})
    result = record_answer(slot, data)
    if not result.outcome.accepted:
        message = {
            Outcome.STALE: "This screen was already answered; your answer was not changed.",
            Outcome.NOT_CURRENT: "This is not your current screen; nothing was recorded.",
            Outcome.CLOSED: "This study is closed: nothing was recorded.",
        }[result.outcome]
        return base._render_conflict(request, slot, message)
    if slot.is_practice:
        return base._see_other(reverse("reading-feedback", args=[slot.token]))
    return base._see_other(reverse("study-next", args=[study.public_id]))


def pair_feedback(request: HttpRequest, slot: ReadingSlot, reading: Reading) -> HttpResponse:
    """A practice pair after its answer: which side was synthetic (the truth, on purpose)."""
    study = slot.assignment.study
    synthetic_side = "left" if slot.case.image.truth == Truth.SYNTHETIC else "right"
    context = {
        "study": study,
        "slot": slot,
        "progress": progress_of(slot.assignment),
        "counter": "Practice answer",
        "synthetic_side": synthetic_side,
        "chosen_side": reading.chosen_side,
        "correct": reading.chosen_side == synthetic_side,
        "image_url": reverse("reading-image", args=[slot.token]),
        "right_image_url": reverse("reading-right-image", args=[slot.token]),
        "continue_url": reverse("study-next", args=[study.public_id]),
        **base._study_urls(study),
    }
    return base._page(render(request, "readerstudy/designs/pair_feedback.html", context))


@require_GET
def right_image(request: HttpRequest, token: str) -> HttpResponse:
    """The right image of a pair, through the same code path and headers as every image."""
    slot = get_object_or_404(
        ReadingSlot.objects.select_related("right_case__image", "assignment__study"),
        token=token,
        assignment__reader=request.user,
        assignment__study__status=StudyStatus.OPEN,
    )
    if slot.right_case is None:
        raise Http404("No such image.")
    return base.image_response(slot.assignment.study, slot.right_case.image)
