"""The client's address for login throttling.

Behind the TLS proxy every request comes from the proxy. Caddy replaces whatever
X-Forwarded-For a client sends with the address it saw, and a proxy that appends instead puts
that address last; so the right-most entry is the one our own proxy vouches for. (django-ipware's
proxy-count model expects the proxies themselves in the header, which Caddy does not add.)
"""

from __future__ import annotations

import ipaddress

from django.conf import settings
from django.http import HttpRequest


def _valid(address: str) -> str | None:
    try:
        return str(ipaddress.ip_address(address.strip()))
    except ValueError:
        return None


def client_ip(request: HttpRequest) -> str | None:
    if settings.BEHIND_TLS_PROXY:
        forwarded = request.META.get("HTTP_X_FORWARDED_FOR", "")
        if forwarded and (address := _valid(forwarded.split(",")[-1])):
            return address
    return _valid(request.META.get("REMOTE_ADDR", ""))
