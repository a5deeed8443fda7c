"""Every page but login needs an account; readers never reach the admin or staff pages."""

import re
from functools import partial

import pytest
from django.urls import URLPattern, URLResolver, get_resolver

PUBLIC = {
    "login",
    "healthz",
    "favicon",
    "password_reset",
    "password_reset_done",
    "password_reset_confirm",
    "password_reset_complete",
}


def example_value(converter) -> str:
    """A value the converter accepts: its first alternative, or a digit or a word."""
    regex = converter.regex
    if re.fullmatch(r"[\w|-]+", regex):
        return regex.split("|")[0]
    return "1" if re.fullmatch(regex, "1") else "abc"


def _example(converters: dict, match: re.Match) -> str:
    """The example value for one ``<converter:name>`` of a route; plain ``<name>`` gets a word."""
    name = match.group(2)
    return example_value(converters[name]) if name in converters else "abc"


def concrete_urls() -> list[tuple[str, str]]:
    """(name, example path) for every named route outside the admin, with example arguments."""
    found = []

    def walk(patterns, prefix=""):
        for pattern in patterns:
            if isinstance(pattern, URLResolver):
                if "admin" in str(pattern.pattern):
                    continue
                walk(pattern.url_patterns, prefix + str(pattern.pattern))
            elif isinstance(pattern, URLPattern) and pattern.name:
                route = prefix + str(pattern.pattern)
                converters = {**getattr(pattern.pattern, "converters", {})}
                route = re.sub(r"<(?:(\w+):)?(\w+)>", partial(_example, converters), route)
                found.append((pattern.name, "/" + route.lstrip("^").rstrip("$")))

    walk(get_resolver().url_patterns)
    return found


@pytest.mark.django_db
@pytest.mark.parametrize(("name", "path"), concrete_urls())
def test_it_requires_login_everywhere(client, name, path):
    response = client.get(path)
    if name in PUBLIC:
        assert response.status_code in (200, 405)
    else:
        assert response.status_code == 302, f"{name} ({path}) answered {response.status_code}"
        assert response["Location"].startswith("/accounts/login/") or "/admin/login/" in response["Location"]


@pytest.mark.django_db
def test_it_keeps_readers_out_of_the_admin_and_staff_pages(client, reader):
    client.force_login(reader)
    assert client.get("/admin/").status_code == 302
    assert "/admin/login/" in client.get("/staff/import/")["Location"]


@pytest.mark.django_db
def test_it_lets_a_reader_log_in_with_username_and_password(client, reader):
    from tests.factories import DEFAULT_PASSWORD

    response = client.post(
        "/accounts/login/", {"username": reader.username, "password": DEFAULT_PASSWORD}
    )
    assert response.status_code == 302
    assert client.get("/").status_code == 200
