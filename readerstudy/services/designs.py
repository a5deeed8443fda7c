"""What the study designs add to a reader's stored order and to each reading.

* Pairs (two-alternative forced choice): drawn by ``readerstudy.pairing`` and stored as slots
  whose ``case`` is the left image and ``right_case`` the right one.
* Exposure (HYPE-time): the server decides each screen's exposure from the reader's stored
  readings (``readerstudy.staircase``) the first time the screen is served, and stores it on the
  slot; the browser only reports how long the image was actually on screen.
"""

from __future__ import annotations

from django.db import transaction

from pool.models import Truth
from readerstudy.models import Answer, Assignment, Reading, ReadingSlot, Study
from readerstudy.pairing import ALGORITHM as PAIR_ALGORITHM
from readerstudy.pairing import PairCase, plan_pairs
from readerstudy.staircase import Staircase, next_exposure


def pair_slots(assignment: Assignment, study: Study) -> tuple[list[ReadingSlot], str]:
    """The reader's pairs as unsaved slots, and the algorithm name; OrderingError if none."""
    rows = study.cases.values_list(
        "id", "is_practice", "image__truth", "image__modality", "image__finding"
    )
    cases, practice = [], []
    for case_id, is_practice, truth, modality, finding in rows:
        item = PairCase(case_id, truth == Truth.SYNTHETIC, modality, finding)
        (practice if is_practice else cases).append(item)
    plan = plan_pairs(
        seed=study.seed,
        reader_id=assignment.reader_id,
        cases=cases,
        practice_cases=practice,
        allow_reuse=study.allow_reuse,
    )
    slots = [
        ReadingSlot(
            assignment=assignment,
            case_id=pair.left_case_id,
            right_case_id=pair.right_case_id,
            position=pair.position,
            showing=pair.showing,
            is_practice=pair.is_practice,
        )
        for pair in plan
    ]
    return slots, PAIR_ALGORITHM


def staircase_of(study: Study) -> Staircase:
    return Staircase(
        start=study.exposure_start_ms,
        step=study.exposure_step_ms,
        low=study.exposure_min_ms,
        high=study.exposure_max_ms,
        down=study.staircase_down,
        up=study.staircase_up,
    )


def is_correct(answer: str, truth: str) -> bool:
    """Right about the image: fake for a synthetic one, real for a real one (unsure is wrong)."""
    expected = Answer.FAKE if truth == Truth.SYNTHETIC else Answer.REAL
    return answer == expected


def staircase_outcomes(assignment_id: int, before_position: int) -> list[bool]:
    """Correctness of the reader's non-practice readings before a position, in order."""
    rows = (
        Reading.objects.filter(
            slot__assignment_id=assignment_id,
            slot__is_practice=False,
            slot__position__lt=before_position,
        )
        .order_by("slot__position")
        .values_list("answer", "slot__case__image__truth")
    )
    return [is_correct(answer, truth) for answer, truth in rows]


def decide_exposure(slot: ReadingSlot) -> int:
    """The slot's exposure: stored the first time, from the stored readings; never moved."""
    if slot.exposure_ms is not None:
        return slot.exposure_ms
    study = slot.assignment.study
    staircase = staircase_of(study)
    if slot.is_practice:
        value = staircase.start
    else:
        value = next_exposure(staircase, staircase_outcomes(slot.assignment_id, slot.position))
    with transaction.atomic():
        ReadingSlot.objects.filter(pk=slot.pk, exposure_ms__isnull=True).update(exposure_ms=value)
        slot.exposure_ms = ReadingSlot.objects.values_list("exposure_ms", flat=True).get(pk=slot.pk)
    return slot.exposure_ms

