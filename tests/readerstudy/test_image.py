"""The image a reader receives: the display derivative, with the same headers for all."""

import re

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from pool.models import Truth
from readerstudy.models.presentation import Derivative
from readerstudy.services.presentation import resolve_profile
from tests.readerstudy.helpers import session_queries, slots_of

pytestmark = pytest.mark.django_db

VARYING_HEADERS = {"date", "expires"}


def fetch(client, slot):
    return client.get(f"/read/{slot.token}/image.png")


def test_it_streams_the_display_png_with_fixed_headers(client, reader, build_study):
    study = build_study(readers=[reader])
    slot = slots_of(study, reader)[0]
    client.force_login(reader)
    response = fetch(client, slot)
    assert response.status_code == 200
    profile = resolve_profile(study).with_window(None)
    derivative = Derivative.objects.get(image=slot.case.image, key=profile.key())
    assert response.content == derivative.file.open("rb").read()  # the study's presentation
    assert response.content.startswith(b"\x89PNG\r\n\x1a\n")
    assert response["Content-Type"] == "image/png"
    assert response["Cache-Control"] == "private, max-age=86400, immutable"
    assert response["X-Content-Type-Options"] == "nosniff"
    assert response["Content-Length"] == str(len(response.content))
    for absent in ("ETag", "Last-Modified", "Content-Disposition", "Set-Cookie"):
        assert absent not in response, absent


def test_it_sends_the_same_headers_and_lengths_for_real_and_synthetic(client, reader, build_study):
    study = build_study(readers=[reader], n_real=3, n_synthetic=3)
    client.force_login(reader)
    seen = {}
    for slot in slots_of(study, reader):
        response = fetch(client, slot)
        headers = tuple(
            sorted(
                (name.lower(), value)
                for name, value in response.items()
                if name.lower() not in VARYING_HEADERS
            )
        )
        seen.setdefault(slot.case.image.truth, set()).add(headers)
    assert seen[Truth.REAL] == seen[Truth.SYNTHETIC]
    assert len(seen[Truth.REAL]) == 1  # one set of headers, Content-Length included


def test_it_does_the_same_work_for_real_and_synthetic(client, reader, build_study):
    study = build_study(readers=[reader], n_real=1, n_synthetic=1)
    client.force_login(reader)
    statements = {}
    for slot in slots_of(study, reader):
        with CaptureQueriesContext(connection) as queries:
            fetch(client, slot)
        normalised = [
            re.sub(r"'[^']*'|\b\d+\b", "?", query["sql"]) for query in queries.captured_queries
        ]
        statements[slot.case.image.truth] = normalised
    assert statements[Truth.REAL] == statements[Truth.SYNTHETIC]


def test_it_serves_an_image_with_a_fixed_number_of_queries(
    client, reader, build_study, django_assert_num_queries
):
    """(session,) user, the slot with its image, study and profile, the derivative's file."""
    study = build_study(readers=[reader], n_real=2, n_synthetic=2)
    client.force_login(reader)
    for slot in slots_of(study, reader):
        with django_assert_num_queries(3 + session_queries()):
            assert fetch(client, slot).status_code == 200
