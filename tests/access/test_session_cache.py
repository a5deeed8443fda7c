"""Sessions read from Redis and written through to the database (access.sessions): a request
costs no session query, a session outlives its cached copy, a logout ends it everywhere, and
a cached copy lives at most SESSION_REFRESH_S."""

import os
import socket

import pytest
from django.contrib.sessions.models import Session
from django.core.cache import caches
from django.db import connection
from django.test.utils import CaptureQueriesContext

from tests.access.test_production_settings import load

pytestmark = pytest.mark.django_db

REDIS = os.environ.get("REDIS_URL") or "redis://127.0.0.1:6379/0"


def use_session_cache(settings, location: str = REDIS) -> None:
    settings.CACHES = {
        "default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"},
        "sessions": {
            "BACKEND": "django.core.cache.backends.redis.RedisCache",
            "LOCATION": location,
            "KEY_PREFIX": "spotthefake-test",
            "OPTIONS": {"socket_connect_timeout": 1},
        },
    }
    settings.SESSION_ENGINE = "access.sessions"
    settings.SESSION_CACHE_ALIAS = "sessions"


def session_queries(queries) -> list[str]:
    return [q["sql"] for q in queries.captured_queries if "django_session" in q["sql"]]


def test_it_reads_the_session_without_a_query(client, reader, settings):
    use_session_cache(settings)
    client.force_login(reader)
    with CaptureQueriesContext(connection) as queries:
        assert client.get("/").status_code == 200
    assert session_queries(queries) == []
    assert Session.objects.filter(session_key=client.session.session_key).exists()


def test_it_keeps_the_session_when_the_cached_copy_is_gone(client, reader, settings):
    use_session_cache(settings)
    client.force_login(reader)
    caches["sessions"].delete(client.session.cache_key)  # a flushed or restarted Redis
    assert client.get("/").status_code == 200
    with CaptureQueriesContext(connection) as queries:  # cached again by that read
        assert client.get("/").status_code == 200
    assert session_queries(queries) == []


def test_it_ends_the_session_everywhere_at_logout(client, reader, settings):
    use_session_cache(settings)
    client.force_login(reader)
    key = client.session.cache_key
    cookie = client.cookies[settings.SESSION_COOKIE_NAME].value
    assert client.post("/accounts/logout/").status_code == 302
    assert caches["sessions"].get(key) is None
    client.cookies[settings.SESSION_COOKIE_NAME] = cookie  # the old cookie, replayed
    response = client.get("/")
    assert response.status_code == 302
    assert response["Location"].startswith("/accounts/login/")


def test_it_caches_a_session_for_at_most_the_refresh_interval(client, reader, settings):
    use_session_cache(settings)
    settings.SESSION_REFRESH_S = 120
    client.force_login(reader)
    cache = caches["sessions"]
    redis_key = cache.make_and_validate_key(client.session.cache_key)
    ttl = cache._cache.get_client(redis_key).ttl(redis_key)
    assert 0 < ttl <= 120
    assert settings.SESSION_COOKIE_AGE > 120  # the session itself lives on, in the database
    stored = Session.objects.get(session_key=client.session.session_key)
    assert stored.get_decoded()


def test_it_serves_pages_from_the_database_when_redis_is_unreachable(client, reader, settings):
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    use_session_cache(settings, f"redis://127.0.0.1:{port}/0")
    client.force_login(reader)
    with CaptureQueriesContext(connection) as queries:
        assert client.get("/").status_code == 200
    assert session_queries(queries)  # read from the database instead


def test_it_uses_the_session_cache_only_with_redis(tmp_path):
    redis = load(tmp_path, REDIS_URL="redis://127.0.0.1:6379/5")
    assert redis["session_engine"] == "access.sessions"
    assert redis["session_cache"] == "django.core.cache.backends.redis.RedisCache"
    off = load(tmp_path, REDIS_URL="redis://127.0.0.1:6379/5", SESSION_CACHE="0")
    assert off["session_engine"] == "django.contrib.sessions.backends.db"
    without = load(tmp_path)
    assert without["session_engine"] == "django.contrib.sessions.backends.db"
