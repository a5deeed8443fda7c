"""An active user's session lives on; an idle one ends after SESSION_IDLE_TIMEOUT_S."""

from datetime import timedelta

import pytest
from django.conf import settings
from django.contrib.sessions.models import Session
from django.core.cache import caches
from django.utils import timezone

from access.middleware import _TOUCHED

pytestmark = pytest.mark.django_db


def stored_session(client) -> Session:
    return Session.objects.get(session_key=client.session.session_key)


def age_session(client, seconds: int) -> None:
    """Pretend the last refresh was `seconds` ago: stamp and expiry moved back together. A
    cached copy (sessions on Redis, access.sessions) would have expired with it by then."""
    session = client.session
    session[_TOUCHED] -= seconds
    session.save()
    Session.objects.filter(session_key=session.session_key).update(
        expire_date=timezone.now() + timedelta(seconds=session.get_expiry_age() - seconds)
    )
    if hasattr(session, "cache_key"):
        caches[settings.SESSION_CACHE_ALIAS].delete(session.cache_key)


def test_it_moves_the_expiry_forward_while_the_user_is_active(client, reader, settings):
    client.force_login(reader)
    age_session(client, settings.SESSION_REFRESH_S + 1)
    before = stored_session(client).expire_date
    assert client.get("/").status_code == 200
    after = stored_session(client).expire_date
    assert after - before >= timedelta(seconds=settings.SESSION_REFRESH_S)
    assert after >= timezone.now() + timedelta(seconds=settings.SESSION_COOKIE_AGE - 60)


def test_it_does_not_write_the_session_on_every_request(client, reader):
    client.force_login(reader)
    client.get("/")
    key = client.session.session_key
    before = stored_session(client).expire_date
    client.get("/")
    assert client.session.session_key == key
    assert stored_session(client).expire_date == before


def test_it_ends_a_session_idle_for_longer_than_the_timeout(client, reader, settings):
    client.force_login(reader)
    age_session(client, settings.SESSION_COOKIE_AGE + 1)
    response = client.get("/")
    assert response.status_code == 302
    assert response["Location"].startswith("/accounts/login/")
