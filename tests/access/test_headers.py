"""The Content-Security-Policy on every response, no wildcard CORS on static files, and no
inline code left in any template (the policy would block it and break the page)."""

import re
from pathlib import Path

import pytest
from django.test import RequestFactory
from whitenoise.middleware import WhiteNoiseMiddleware

from tests.readerstudy.helpers import slots_of

ROOT = Path(__file__).resolve().parents[2]
CSP = "Content-Security-Policy"


@pytest.mark.django_db
def test_it_sends_the_policy_on_pages_and_reader_images(client, reader, build_study):
    study = build_study(readers=[reader])
    slot = slots_of(study, reader)[0]
    responses = [client.get("/accounts/login/")]
    client.force_login(reader)
    responses += [client.get("/"), client.get(f"/read/{slot.token}/image.png")]
    for response in responses:
        assert response.status_code == 200
        policy = response[CSP]
        assert "default-src 'none'" in policy and "script-src 'self'" in policy
        assert "style-src 'self'" in policy and "frame-ancestors 'none'" in policy
        assert "unsafe" not in policy
        assert response["X-Frame-Options"] == "DENY"


def test_it_serves_static_files_without_wildcard_cors(settings, tmp_path):
    settings.WHITENOISE_USE_FINDERS = True  # serve from the source folders, as runserver would
    settings.WHITENOISE_AUTOREFRESH = True
    middleware = WhiteNoiseMiddleware(lambda request: pytest.fail("not served by whitenoise"))
    response = middleware(RequestFactory().get("/static/css/site.css"))
    assert response.status_code == 200
    assert "Access-Control-Allow-Origin" not in response
    assert settings.WHITENOISE_ALLOW_ALL_ORIGINS is False


INLINE = [
    (re.compile(r"<script(?![^>]*\bsrc=)[^>]*>", re.I), "an inline <script>"),
    (re.compile(r"<style\b", re.I), "a <style> element"),
    (re.compile(r"\sstyle\s*=", re.I), "a style attribute"),
    (re.compile(r"\son[a-z]+\s*=", re.I), "an on* event handler attribute"),
    (re.compile(r"\shx-on", re.I), "an hx-on handler (evaluated code)"),
    (re.compile(r"javascript:", re.I), "a javascript: URL"),
]


def test_it_has_no_inline_code_in_any_template():
    found = []
    folders = [ROOT / "templates", *ROOT.glob("*/templates")]
    for folder in folders:
        for template in folder.rglob("*.html"):
            text = template.read_text()
            for pattern, what in INLINE:
                if pattern.search(text):
                    found.append(f"{template.relative_to(ROOT)}: {what}")
    assert found == []


def test_it_draws_plots_without_style_attributes():
    from readerstudy import plots

    svg = plots.roc_plot({"readers": [], "curves": [], "averaged": None})
    assert " style=" not in str(svg)
