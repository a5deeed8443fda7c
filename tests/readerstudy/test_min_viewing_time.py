"""A minimum viewing time: answers sooner than it after the server served the case are refused."""

from datetime import timedelta

import pytest

from readerstudy.models import Reading, ReadingSlot
from readerstudy.services.presentation import profile_of
from readerstudy.services.studies import open_study
from tests.readerstudy.helpers import HTMX, answer_payload, case_url, slots_of

pytestmark = pytest.mark.django_db


def study_with_minimum(build_study, reader, seconds=1.5):
    study = build_study(readers=[reader], open=False)
    profile = profile_of(study)
    profile.min_viewing_seconds = seconds
    profile.save()
    open_study(study)
    return study


def test_it_refuses_an_answer_before_the_minimum_viewing_time(client, build_study, reader):
    study = study_with_minimum(build_study, reader)
    client.force_login(reader)
    slot = slots_of(study, reader)[0]
    page = client.get(case_url(slot))
    assert page.status_code == 200 and 'data-min-view-ms="1500"' in page.content.decode()
    response = client.post(case_url(slot), answer_payload("real"), **HTMX)
    assert response.status_code == 409
    assert "at least 1.5 s" in response.content.decode()
    assert not Reading.objects.exists()


def test_it_accepts_the_answer_once_the_case_was_served_long_enough_ago(
    client, build_study, reader
):
    study = study_with_minimum(build_study, reader)
    client.force_login(reader)
    slot = slots_of(study, reader)[0]
    client.get(case_url(slot))
    served = ReadingSlot.objects.get(pk=slot.pk).served_at
    ReadingSlot.objects.filter(pk=slot.pk).update(served_at=served - timedelta(seconds=2))
    response = client.post(case_url(slot), answer_payload("fake"))
    assert response.status_code == 303
    reading = Reading.objects.get(slot=slot)
    assert reading.answer == "fake" and reading.seconds_on_case >= 1.5


def test_it_refuses_an_answer_to_a_case_never_served(client, build_study, reader):
    study = study_with_minimum(build_study, reader, seconds=0.5)
    client.force_login(reader)
    slot = slots_of(study, reader)[0]
    response = client.post(case_url(slot), answer_payload("real"))
    assert response.status_code == 409 and not Reading.objects.exists()
