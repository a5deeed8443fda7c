"""Query counts of pages behind a login depend on where sessions are read from."""

from django.conf import settings


def session_queries() -> int:
    """The session's own query on each request: none when sessions are read from Redis
    (access.sessions, the setting with REDIS_URL), one when they live in the database only.
    Every exact query-count pin of a logged-in request adds this."""
    return 0 if settings.SESSION_ENGINE == "access.sessions" else 1
