"""Answering: the plain-form flow, the htmx flow, and what is stored."""

import re

import pytest

from readerstudy.models import Assignment, Reading
from tests.readerstudy.helpers import (
    HTMX,
    TOKEN_IN_URL,
    answer_payload,
    case_url,
    session_queries,
    slots_of,
)

pytestmark = pytest.mark.django_db


def test_it_reads_a_whole_study_with_plain_forms(client, reader, build_study):
    study = build_study(readers=[reader], n_real=2, n_synthetic=2, confidence_scale=5)
    client.force_login(reader)
    typed = [("real", 5, ""), ("fake", 2, "odd ribs"), ("unsure", 1, ""), ("fake", 4, "")]
    response = client.get(f"/studies/{study.public_id}/next/", follow=True)
    for answer, confidence, comment in typed:
        html = response.content.decode()
        action = re.search(r'<form method="post" action="([^"]+)"', html).group(1)
        response = client.post(action, answer_payload(answer, confidence, comment))
        assert response.status_code == 303
        response = client.get(response["Location"], follow=True)
    assert response.request["PATH_INFO"] == f"/studies/{study.public_id}/done/"
    stored = [
        (slot.reading.answer, slot.reading.confidence, slot.reading.comment)
        for slot in slots_of(study, reader)
    ]
    assert stored == typed
    assert Assignment.objects.get(study=study, reader=reader).completed_at is not None


def test_it_swaps_in_the_next_case_for_htmx(client, reader, build_study):
    study = build_study(readers=[reader])
    first, second, third = slots_of(study, reader)[:3]
    client.force_login(reader)
    client.get(case_url(first))
    response = client.post(case_url(first), answer_payload("fake"), **HTMX)
    html = response.content.decode()
    assert response.status_code == 200
    assert response["HX-Push-Url"] == case_url(second)
    assert "<html" not in html
    assert f'hx-post="{case_url(second)}"' in html
    assert f'data-next-image="/read/{third.token}/image.png"' in html
    assert "Case 2 of 4" in html
    second.refresh_from_db()
    assert second.served_at is not None  # the swap served the next case


def test_it_sends_htmx_to_the_completion_page_at_the_end(client, reader, build_study):
    study = build_study(readers=[reader], n_real=1, n_synthetic=0)
    slot = slots_of(study, reader)[0]
    client.force_login(reader)
    response = client.post(case_url(slot), answer_payload("real"), **HTMX)
    assert response.status_code == 204
    assert response["HX-Redirect"] == f"/studies/{study.public_id}/done/"


def test_it_stores_server_and_client_times(client, reader, build_study):
    study = build_study(readers=[reader])
    slot = slots_of(study, reader)[0]
    client.force_login(reader)
    client.get(case_url(slot))
    client.post(case_url(slot), answer_payload("real", client_ms="2750"))
    reading = Reading.objects.get(slot=slot)
    slot.refresh_from_db()
    assert reading.served_at == slot.served_at
    assert reading.answered_at >= reading.served_at
    assert reading.client_ms == 2750
    assert reading.seconds_on_case >= 0


@pytest.mark.parametrize("raw", ["", "abc", "-5", "999999999999"])
def test_it_ignores_an_odd_client_time(client, reader, build_study, raw):
    study = build_study(readers=[reader])
    slot = slots_of(study, reader)[0]
    client.force_login(reader)
    assert client.post(case_url(slot), answer_payload("real", client_ms=raw)).status_code == 303
    assert Reading.objects.get(slot=slot).client_ms is None


def test_it_records_a_case_answered_without_being_served(client, reader, build_study):
    study = build_study(readers=[reader])
    slot = slots_of(study, reader)[0]
    client.force_login(reader)
    client.post(case_url(slot), answer_payload("real"))
    reading = Reading.objects.get(slot=slot)
    assert reading.served_at == reading.answered_at


def test_it_requires_a_confidence_when_the_study_collects_it(client, reader, build_study):
    study = build_study(readers=[reader], confidence_scale=5)
    slot = slots_of(study, reader)[0]
    client.force_login(reader)
    response = client.post(case_url(slot), answer_payload("real"))
    assert response.status_code == 400
    assert "Choose a confidence" in response.content.decode()
    partial = client.post(case_url(slot), answer_payload("real"), **HTMX)
    assert partial.status_code == 400 and "<html" not in partial.content.decode()
    assert not Reading.objects.exists()
    assert client.post(case_url(slot), answer_payload("real", 9)).status_code == 400
    assert client.post(case_url(slot), answer_payload("real", 4)).status_code == 303
    assert Reading.objects.get(slot=slot).confidence == 4


def test_it_ignores_a_confidence_the_study_does_not_collect(client, reader, build_study):
    study = build_study(readers=[reader])
    slot = slots_of(study, reader)[0]
    client.force_login(reader)
    client.post(case_url(slot), answer_payload("real", 5))
    assert Reading.objects.get(slot=slot).confidence is None


def test_it_refuses_an_unknown_answer(client, reader, build_study):
    study = build_study(readers=[reader])
    slot = slots_of(study, reader)[0]
    client.force_login(reader)
    response = client.post(case_url(slot), answer_payload("synthetic"))
    assert response.status_code == 400
    assert not Reading.objects.exists()


def test_it_stores_a_comment(client, reader, build_study):
    study = build_study(readers=[reader])
    slot = slots_of(study, reader)[0]
    client.force_login(reader)
    client.post(case_url(slot), answer_payload("unsure", comment="  grid lines at the edge  "))
    assert Reading.objects.get(slot=slot).comment == "grid lines at the edge"
    too_long = slots_of(study, reader)[1]
    assert (
        client.post(case_url(too_long), answer_payload("real", comment="x" * 2001)).status_code
        == 400
    )


def test_it_redirects_plain_forms_to_the_next_token(client, reader, build_study):
    study = build_study(readers=[reader])
    first, second = slots_of(study, reader)[:2]
    client.force_login(reader)
    response = client.post(case_url(first), answer_payload("fake"))
    assert TOKEN_IN_URL.search(response["Location"]).group(1) == second.token


def test_it_answers_with_a_fixed_number_of_queries(
    client, reader, build_study, django_assert_num_queries
):
    """The answer path under load: (session,) user, slot with study and profile; under the
    assignment's lock (2 savepoint statements in the test's transaction) the current and the
    next open slot in one query, the INSERT; the next case: served_at, progress with its
    neighbours."""
    study = build_study(readers=[reader], confidence_scale=5, n_real=3, n_synthetic=3)
    slots = slots_of(study, reader)
    client.force_login(reader)
    client.get(case_url(slots[0]))
    for slot in slots[:2]:  # the same number for every case
        with django_assert_num_queries(9 + session_queries()):
            response = client.post(case_url(slot), answer_payload("fake", 3), **HTMX)
        assert response.status_code == 200
