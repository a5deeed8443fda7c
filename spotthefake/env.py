"""Typed readers for settings that come from the environment.

Every helper fails loudly with ImproperlyConfigured: a typo in production must stop
start-up, not fall back to a default silently.
"""

import os
from pathlib import Path
from urllib.parse import urlparse

from django.core.exceptions import ImproperlyConfigured

_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off", ""}


def env_str(name: str, default: str) -> str:
    return os.environ.get(name, default)


def env_bool(name: str, default: bool) -> bool:
    raw = os.environ.get(name)
    if raw is None:
        return default
    value = raw.strip().lower()
    if value in _TRUE:
        return True
    if value in _FALSE:
        return False
    raise ImproperlyConfigured(f"{name}={raw!r} is not a boolean (use 1/0, true/false, yes/no)")


def env_int(name: str, default: int, *, minimum: int | None = None) -> int:
    raw = os.environ.get(name)
    if raw is None:
        return default
    try:
        value = int(raw)
    except ValueError:
        raise ImproperlyConfigured(f"{name}={raw!r} is not an integer") from None
    if minimum is not None and value < minimum:
        raise ImproperlyConfigured(f"{name}={value} must be at least {minimum}")
    return value


def env_list(name: str, default: list[str]) -> list[str]:
    raw = os.environ.get(name)
    if raw is None:
        return default
    return [item.strip() for item in raw.split(",") if item.strip()]


def env_path(name: str, default: Path) -> Path:
    raw = os.environ.get(name)
    return Path(raw).expanduser().resolve() if raw else default


def env_url(name: str, schemes: set[str]) -> str | None:
    """A URL whose scheme must be one of `schemes`, or None when unset or empty."""
    raw = os.environ.get(name, "").strip()
    if not raw:
        return None
    parsed = urlparse(raw)
    if parsed.scheme not in schemes:
        allowed = ", ".join(sorted(schemes))
        raise ImproperlyConfigured(f"{name}={raw!r}: scheme must be one of {allowed}")
    if not parsed.hostname:
        raise ImproperlyConfigured(f"{name}={raw!r} has no host")
    return raw


def env_header_name(name: str, default: str) -> str:
    """An HTTP header name (RFC 9110 token characters), or "" when unset or empty."""
    raw = os.environ.get(name, default).strip()
    if raw and not all(ch.isascii() and (ch.isalnum() or ch in "!#$%&'*+-.^_`|~") for ch in raw):
        raise ImproperlyConfigured(f"{name}={raw!r} is not an HTTP header name")
    return raw
