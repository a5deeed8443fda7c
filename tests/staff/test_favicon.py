"""Every page names the site's icon, and /favicon.ico answers instead of a 404."""

import pytest

from tests.factories import ResearcherFactory

pytestmark = pytest.mark.django_db

PNG = b"\x89PNG\r\n\x1a\n"


def test_it_serves_the_favicon_at_the_root_without_login(client):
    response = client.get("/favicon.ico")
    assert response.status_code == 200
    assert response["Content-Type"] == "image/png"
    assert b"".join(response.streaming_content).startswith(PNG)
    assert "max-age=86400" in response["Cache-Control"]


def test_it_links_the_icon_on_site_and_admin_pages(client):
    for page in (client.get("/accounts/login/"), client.get("/accounts/password_reset/")):
        assert b'<link rel="icon" href="/static/favicon.svg" type="image/svg+xml">' in page.content
    client.force_login(ResearcherFactory())
    for url in ("/admin/", "/staff/", "/staff/generation/jobs/"):
        assert b'rel="icon" href="/static/favicon.png"' in client.get(url).content, url


def test_it_serves_the_linked_static_icons(client, live_server):
    import urllib.request

    for name, magic in (("favicon.png", PNG), ("favicon.svg", b"<svg")):
        with urllib.request.urlopen(f"{live_server.url}/static/{name}") as response:
            assert response.read().startswith(magic)
