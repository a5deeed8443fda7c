"""Test-only pieces, installed by `spotthefake.settings_test` and never by the real settings.

`DatabaseOutageMiddleware` makes the database unreachable for the next N requests, as a
PostgreSQL restart does: every query of those requests fails with the OperationalError a refused
connection raises, so the whole real error path runs (Django's 500 handler, the 500 template,
the reading page's retry). With `after=True` the request runs (and commits) and the connection
breaks only on the way back: the reader sees an error for an answer that was stored.
"""

from __future__ import annotations

import threading

from django.db import OperationalError, connections

_lock = threading.Lock()
_state = {"remaining": 0, "path_prefix": "/", "method": None, "after": False, "refused": 0}


def fail_next_requests(
    count: int, *, path_prefix: str = "/", method: str | None = None, after: bool = False
) -> None:
    """The next `count` requests under `path_prefix` (of `method`, if given) fail: with the
    database unreachable, or (`after`) once they have run."""
    with _lock:
        _state.update(
            remaining=count, path_prefix=path_prefix, method=method, after=after, refused=0
        )


def refused_requests() -> int:
    with _lock:
        return _state["refused"]


def _take(request) -> str | None:
    """None (no failure), "before" or "after"."""
    with _lock:
        if _state["remaining"] <= 0 or not request.path.startswith(_state["path_prefix"]):
            return None
        if _state["method"] and request.method != _state["method"]:
            return None
        _state["remaining"] -= 1
        _state["refused"] += 1
        return "after" if _state["after"] else "before"


def _refuse(execute, sql, params, many, context):
    raise OperationalError(
        'connection to server at "127.0.0.1", port 5432 failed: Connection refused '
        "(simulated outage)"
    )


class DatabaseOutageMiddleware:
    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        failure = _take(request)
        if failure is None:
            return self.get_response(request)
        if failure == "after":
            self.get_response(request)
            _refuse(None, "", None, False, None)
        with connections["default"].execute_wrapper(_refuse):
            return self.get_response(request)
