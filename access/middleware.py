"""Idle sessions end: a session's expiry is pushed forward while its user is active.

Django's SESSION_SAVE_EVERY_REQUEST would write the session row on every request (every
answer, every image); moving the expiry at most every SESSION_REFRESH_S costs one write per
interval and keeps the timeout within that interval of exact.
"""

from __future__ import annotations

import time
from collections.abc import Callable

from django.conf import settings
from django.http import HttpRequest, HttpResponse

_TOUCHED = "_access_touched"


def stamp_session(sender, request: HttpRequest, user, **kwargs) -> None:
    request.session[_TOUCHED] = int(time.time())


class IdleSessionMiddleware:
    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        if request.user.is_authenticated:
            now = int(time.time())
            if now - request.session.get(_TOUCHED, 0) >= settings.SESSION_REFRESH_S:
                request.session[_TOUCHED] = now  # modified: saved with a fresh expiry
        return self.get_response(request)
