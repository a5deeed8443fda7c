"""How far a study's readers are: answered readings of the readings expected, in one query.

Expected readings are the slots drawn for the study's readers (practice and repeated cases
included, as readers see them); a draft has none until it opens. Subqueries, not joins, so
that the counts do not multiply each other or the other annotations of the list.
"""

from __future__ import annotations

from django.db.models import Count, IntegerField, OuterRef, QuerySet, Subquery, Value
from django.db.models.functions import Coalesce

from readerstudy.models import ReadingSlot, Study


def _slot_count(**filters) -> Coalesce:
    counted = (
        ReadingSlot.objects.filter(assignment__study=OuterRef("pk"), **filters)
        .order_by()
        .values("assignment__study")
        .annotate(n=Count("pk"))
        .values("n")
    )
    return Coalesce(Subquery(counted, output_field=IntegerField()), Value(0))


def with_progress(studies: QuerySet[Study]) -> QuerySet[Study]:
    """Annotate `readings_expected` and `readings_answered` on every study."""
    return studies.annotate(
        readings_expected=_slot_count(),
        readings_answered=_slot_count(reading__isnull=False),
    )


def progress_label(study: Study) -> str:
    """'12 of 40 (30%)', or '—' while no order is drawn; needs `with_progress`."""
    expected, answered = study.readings_expected, study.readings_answered
    if not expected:
        return "—"
    return f"{answered} of {expected} ({100 * answered // expected}%)"


def progress_percent(study: Study) -> int:
    expected = study.readings_expected
    return 100 * study.readings_answered // expected if expected else 0
