"""A reader's progress through their stored order, and recording their answers.

Everything is computed from the database: the current case is the first slot without a
reading, so a reader who closes the tab resumes exactly there. Recording takes a row lock
on the reader's assignment, so a double click, a resubmitted form or two tabs are handled
one after the other; the one-to-one between slot and reading is the last line of defence.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from datetime import datetime

from django.core.exceptions import ObjectDoesNotExist
from django.db import IntegrityError, connection, transaction
from django.db.models import Count, Min, Q
from django.utils import timezone

from readerstudy.models import Assignment, Reading, ReadingRevision, ReadingSlot, StudyStatus


@dataclass(frozen=True)
class Progress:
    total: int
    practice_total: int
    answered: int
    current_position: int | None  # None when every slot has a reading (or none is drawn)

    @property
    def is_complete(self) -> bool:
        return self.total > 0 and self.current_position is None

    @property
    def is_started(self) -> bool:
        return self.answered > 0

    @property
    def case_total(self) -> int:
        return self.total - self.practice_total

    @property
    def percent(self) -> int:
        return round(100 * self.answered / self.total) if self.total else 0


_PROGRESS = {
    "total": Count("id"),
    "practice_total": Count("id", filter=Q(is_practice=True)),
    "answered": Count("reading"),
    "current_position": Min("position", filter=Q(reading__isnull=True)),
}


def progress_of(assignment: Assignment) -> Progress:
    """One query: counts and the current position."""
    return Progress(**ReadingSlot.objects.filter(assignment=assignment).aggregate(**_PROGRESS))


@dataclass(frozen=True)
class Surroundings:
    """What a case page needs besides its slot: the progress and the two neighbouring slots."""

    progress: Progress
    previous: tuple[str, bool] | None  # (token, is_practice) of the slot just before
    following: tuple[str, bool] | None  # and just after


def surroundings_of(slot: ReadingSlot) -> Surroundings:
    """One query: ``progress_of`` and the neighbours' tokens.

    Plain SQL (portable: PostgreSQL and SQLite) because every case page and every answer runs
    it: the ORM spent more time building the eight-aggregate statement than the database
    spent running it.
    """
    slots, readings = ReadingSlot._meta.db_table, Reading._meta.db_table
    sql = (
        "SELECT COUNT(*), COALESCE(SUM(CASE WHEN s.is_practice THEN 1 ELSE 0 END), 0),"
        " COUNT(r.id), MIN(CASE WHEN r.id IS NULL THEN s.position END),"
        " MAX(CASE WHEN s.position = %s THEN s.token END),"
        " MAX(CASE WHEN s.position = %s AND s.is_practice THEN 1 ELSE 0 END),"
        " MAX(CASE WHEN s.position = %s THEN s.token END),"
        " MAX(CASE WHEN s.position = %s AND s.is_practice THEN 1 ELSE 0 END)"
        f" FROM {slots} s LEFT OUTER JOIN {readings} r ON r.slot_id = s.id"
        " WHERE s.assignment_id = %s"
    )
    before, after = slot.position - 1, slot.position + 1
    with connection.cursor() as cursor:
        cursor.execute(sql, [before, before, after, after, slot.assignment_id])
        total, practice, answered, current, *sides = cursor.fetchone()
    previous_token, previous_practice, following_token, following_practice = sides
    return Surroundings(
        progress=Progress(int(total), int(practice), int(answered), current),
        previous=None if previous_token is None else (previous_token, bool(previous_practice)),
        following=None if following_token is None else (following_token, bool(following_practice)),
    )


def current_slot(assignment: Assignment) -> ReadingSlot | None:
    return (
        ReadingSlot.objects.filter(assignment=assignment, reading__isnull=True)
        .order_by("position")
        .first()
    )


def reading_of(slot: ReadingSlot) -> Reading | None:
    try:
        return slot.reading
    except ObjectDoesNotExist:
        return None


def mark_served(slot: ReadingSlot, now: datetime | None = None) -> None:
    """Record the first time the server served this case; later serves never move it."""
    now = now or timezone.now()
    if ReadingSlot.objects.filter(pk=slot.pk, served_at__isnull=True).update(served_at=now):
        slot.served_at = now


class Outcome(enum.Enum):
    RECORDED = "recorded"  # a new reading
    REPEATED = "repeated"  # the same answer again (double click, resubmission): nothing written
    REVISED = "revised"  # a changed answer, the old one kept as a revision
    STALE = "stale"  # a different answer for an answered case, and going back is not allowed
    NOT_CURRENT = "not_current"  # a case after the current one
    CLOSED = "closed"  # the study is not open
    TOO_SOON = "too_soon"  # before the study's minimum viewing time since the case was served

    @property
    def accepted(self) -> bool:
        return self in (Outcome.RECORDED, Outcome.REPEATED, Outcome.REVISED)


@dataclass(frozen=True)
class AnswerData:
    answer: str
    confidence: int | None = None
    comment: str = ""
    client_ms: int | None = None
    # What a study design adds to the answer (the finding answered, the side chosen, ...):
    # Reading fields written in the same statement as the answer.
    extra: dict = field(default_factory=dict)

    def same_as(self, reading: Reading) -> bool:
        mine = (self.answer, self.confidence, self.comment.strip(), *self.extra.values())
        stored = [getattr(reading, name) for name in self.extra]
        return mine == (reading.answer, reading.confidence, reading.comment.strip(), *stored)


@dataclass(frozen=True)
class Result:
    outcome: Outcome
    reading: Reading | None = None
    # RECORDED only: the reader's next slot without a reading, read under the same lock (None
    # when this answer completed the assignment), so that the reply needs no query to find it.
    following: ReadingSlot | None = None


class _Raced(Exception):
    """The reading's INSERT hit the one-to-one: another request stored this slot first."""


def record_answer(slot: ReadingSlot, data: AnswerData) -> Result:
    """Write the reader's answer for this slot, exactly once; see ``Outcome`` for the cases.

    No savepoint around the INSERT (two statements fewer on every answer): the one-to-one can
    only fire if the lock did not serialise us, and then the whole transaction is rolled back
    and the stored reading is read afresh.
    """
    now = timezone.now()
    try:
        with transaction.atomic():
            return _record(slot, data, now)
    except _Raced:
        existing = Reading.objects.get(slot_id=slot.pk)
        return _answer_again(existing, slot, data, now, allow=False)


def _record(slot: ReadingSlot, data: AnswerData, now: datetime) -> Result:
    assignment = (
        Assignment.objects.select_for_update(of=("self",))
        .select_related("study__presentation")
        .get(pk=slot.assignment_id)
    )
    study = assignment.study
    if study.status != StudyStatus.OPEN:
        return Result(Outcome.CLOSED)
    # The first two slots without a reading: the current one, and the one the reply shows next.
    open_slots = list(
        ReadingSlot.objects.filter(assignment=assignment, reading__isnull=True)
        .select_related("reading")  # caches "no reading yet" for the next case's page
        .order_by("position")[:2]
    )
    if not open_slots or open_slots[0].pk != slot.pk:
        # Not the current case: answered already (a double click, a revision), or a later one.
        existing = Reading.objects.filter(slot_id=slot.pk).first()
        if existing is not None:
            return _answer_again(existing, slot, data, now, allow=study.allow_revisions)
        return Result(Outcome.NOT_CURRENT)
    served_at = open_slots[0].served_at
    if served_at is None:  # answered without the page having been served (e.g. a replay)
        mark_served(slot, now)
        served_at = now
    if (now - served_at).total_seconds() < min_viewing_seconds(study):
        return Result(Outcome.TOO_SOON)
    try:
        reading = Reading.objects.create(
            slot_id=slot.pk,
            answer=data.answer,
            confidence=data.confidence,
            comment=data.comment.strip(),
            client_ms=data.client_ms,
            served_at=served_at,
            answered_at=now,
            **data.extra,
        )
    except IntegrityError as error:
        raise _Raced from error  # leaves the atomic block: the transaction is rolled back
    following = open_slots[1] if len(open_slots) > 1 else None
    if following is None:
        assignment.completed_at = now
        assignment.save(update_fields=["completed_at"])
    return Result(Outcome.RECORDED, reading, following)


def min_viewing_seconds(study) -> float:
    """The study's minimum viewing time (its presentation profile; 0 without one)."""
    from readerstudy.models import Design
    from readerstudy.models.presentation import PresentationProfile

    # A time-limited exposure shows the image for the staircase's time only: a minimum viewing
    # time would contradict the design, so it does not apply there.
    if study.design == Design.EXPOSURE:
        return 0.0
    try:
        profile = study.presentation  # fetched with the study on the answer path
    except PresentationProfile.DoesNotExist:
        return 0.0
    return float(profile.min_viewing_seconds or 0.0)


def _answer_again(
    reading: Reading, slot: ReadingSlot, data: AnswerData, now: datetime, *, allow: bool
) -> Result:
    if data.same_as(reading):
        return Result(Outcome.REPEATED, reading)
    if not allow or slot.is_practice:
        # Practice answers are final: the truth has been shown.
        return Result(Outcome.STALE, reading)
    ReadingRevision.objects.create(
        reading=reading,
        answer=reading.answer,
        confidence=reading.confidence,
        comment=reading.comment,
        client_ms=reading.client_ms,
        answered_at=reading.answered_at,
    )
    reading.answer = data.answer
    reading.confidence = data.confidence
    reading.comment = data.comment.strip()
    reading.client_ms = data.client_ms
    reading.answered_at = now
    reading.revision_count += 1
    for name, value in data.extra.items():
        setattr(reading, name, value)
    reading.save(
        update_fields=[
            "answer",
            "confidence",
            "comment",
            "client_ms",
            "answered_at",
            "revision_count",
            *data.extra,
        ]
    )
    return Result(Outcome.REVISED, reading)
