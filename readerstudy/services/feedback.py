"""A reader's own score, shown to them once the study is closed, if the study offers it.

Only ever computed from the one assignment it is given (the reader's own, fetched by the view
through the reader's lookup), only when the study has ``reader_feedback`` on and is closed:
before that nothing of it exists, so it cannot leak into a page. The figures follow the
results dashboard's primary definitions: first showings of non-practice cases, "unsure"
counts as not recognised.
"""

from __future__ import annotations

from dataclasses import dataclass

from django.db.models import Count, Q

from pool.models import Truth
from readerstudy.models import Answer, Assignment, Design, Reading, StudyStatus


@dataclass(frozen=True)
class Share:
    count: int
    total: int

    @property
    def percent(self) -> int | None:
        return round(100 * self.count / self.total) if self.total else None


@dataclass(frozen=True)
class OwnScore:
    accuracy: Share
    # Fake detection (single-image designs): fakes called fake, real images called real.
    sensitivity: Share | None
    specificity: Share | None
    unsure: int
    is_pairs: bool


def feedback_available(assignment: Assignment) -> bool:
    study = assignment.study
    return study.reader_feedback and study.status == StudyStatus.CLOSED


def own_score(assignment: Assignment) -> OwnScore | None:
    """This reader's score in a closed study offering feedback; None otherwise (one query)."""
    if not feedback_available(assignment):
        return None
    fake = Q(slot__case__image__truth=Truth.SYNTHETIC)
    real = Q(slot__case__image__truth=Truth.REAL)
    figures = Reading.objects.filter(
        slot__assignment=assignment, slot__is_practice=False, slot__showing=1
    ).aggregate(
        fake_total=Count("id", filter=fake),
        fake_hit=Count("id", filter=fake & Q(answer=Answer.FAKE)),
        real_total=Count("id", filter=real),
        real_hit=Count("id", filter=real & Q(answer=Answer.REAL)),
        unsure=Count("id", filter=Q(answer=Answer.UNSURE)),
    )
    # In a pair, the reading judges the left image: right when that judgement matches its truth.
    is_pairs = assignment.study.design == Design.PAIR
    sensitivity = Share(figures["fake_hit"], figures["fake_total"])
    specificity = Share(figures["real_hit"], figures["real_total"])
    return OwnScore(
        accuracy=Share(
            sensitivity.count + specificity.count, sensitivity.total + specificity.total
        ),
        sensitivity=None if is_pairs else sensitivity,
        specificity=None if is_pairs else specificity,
        unsure=figures["unsure"],
        is_pairs=is_pairs,
    )
