"""The study models' own guarantees: one reading per slot, unique tokens and positions."""

from datetime import timedelta

import pytest
from django.db import IntegrityError, transaction
from django.utils import timezone

from readerstudy.models import Assignment, Reading, ReadingSlot
from tests.readerstudy.helpers import slots_of

pytestmark = pytest.mark.django_db


def test_it_allows_one_reading_per_slot(build_study, reader):
    study = build_study(readers=[reader])
    slot = slots_of(study, reader)[0]
    now = timezone.now()
    Reading.objects.create(slot=slot, answer="real", served_at=now, answered_at=now)
    with pytest.raises(IntegrityError), transaction.atomic():
        Reading.objects.create(slot=slot, answer="fake", served_at=now, answered_at=now)


def test_it_allows_one_slot_per_position_and_showing(build_study, reader):
    study = build_study(readers=[reader])
    first, second = slots_of(study, reader)[:2]
    with pytest.raises(IntegrityError), transaction.atomic():
        ReadingSlot.objects.create(
            assignment=first.assignment, case=second.case, position=first.position, showing=2
        )
    with pytest.raises(IntegrityError), transaction.atomic():
        ReadingSlot.objects.create(
            assignment=first.assignment, case=first.case, position=99, showing=1
        )


def test_it_allows_one_assignment_per_reader_and_study(build_study, reader):
    study = build_study(readers=[reader])
    with pytest.raises(IntegrityError), transaction.atomic():
        Assignment.objects.create(study=study, reader=reader)


def test_it_gives_every_slot_a_long_random_token(build_study, reader, other_reader):
    study = build_study(readers=[reader, other_reader], n_real=5, n_synthetic=5)
    tokens = list(
        ReadingSlot.objects.filter(assignment__study=study).values_list("token", flat=True)
    )
    assert len(tokens) == len(set(tokens)) == 20
    assert all(len(token) == 32 for token in tokens)
    image_ids = {slot.case.image.public_id for slot in slots_of(study, reader)}
    assert image_ids.isdisjoint(tokens)


def test_it_measures_seconds_on_case_from_the_server_times(build_study, reader):
    study = build_study(readers=[reader])
    slot = slots_of(study, reader)[0]
    served = timezone.now()
    reading = Reading(
        slot=slot, answer="real", served_at=served, answered_at=served + timedelta(seconds=7.5)
    )
    assert reading.seconds_on_case == 7.5
