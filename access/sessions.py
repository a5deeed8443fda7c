"""Sessions read from Redis, written through to the database (SESSION_ENGINE with REDIS_URL).

Django's ``cached_db`` backend spares every request its session query: reads come from the
cache, every write goes to the database first, so a flushed or restarted Redis loses no
session. Two changes. A cache entry lives at most SESSION_REFRESH_S (not the session's whole
age), so an entry the database no longer agrees with (a logout while Redis was unreachable, an
expiry moved in the database) is gone within that interval; an active user's session is
written every SESSION_REFRESH_S anyway (``access.middleware``), so this costs about one
database read per user per interval. And an unreachable Redis slows requests down to the
database's pace instead of failing them, log-ins and log-outs included.
"""

from __future__ import annotations

import logging

from django.conf import settings
from django.contrib.sessions.backends import cached_db

logger = logging.getLogger(__name__)


class _BoundedCache:
    """The session cache, with each entry's lifetime capped. Redis unreachable is logged, not
    raised: the database holds every session, reads fall back to it, and a copy that a failed
    delete left behind (a logout during the outage) expires within the cap."""

    def __init__(self, cache, longest_s: int) -> None:
        self._cache = cache
        self._longest_s = longest_s

    def set(self, key: str, value, timeout: int | None = None) -> None:
        capped = self._longest_s if timeout is None else min(timeout, self._longest_s)
        try:
            self._cache.set(key, value, capped)
        except Exception:  # Redis unreachable: the session is in the database
            logger.exception("Could not cache a session in %s", self._cache)

    def delete(self, key: str) -> None:
        try:
            self._cache.delete(key)
        except Exception:  # the stale copy, if Redis kept it, expires within the cap
            logger.exception("Could not remove a session from %s", self._cache)

    def __getattr__(self, name: str):
        return getattr(self._cache, name)

    def __contains__(self, key: str) -> bool:
        try:
            return key in self._cache
        except Exception:  # Redis unreachable: the caller asks the database next
            logger.exception("Could not look up a session in %s", self._cache)
            return False


class SessionStore(cached_db.SessionStore):
    def __init__(self, session_key: str | None = None) -> None:
        super().__init__(session_key)
        self._cache = _BoundedCache(self._cache, settings.SESSION_REFRESH_S)
