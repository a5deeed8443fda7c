"""Debian's chromium for the browser tests (Playwright drives it; never `playwright install`)."""

import os
from pathlib import Path

import pytest

CHROMIUM = "/usr/bin/chromium"
# As root, and on a machine whose network is closed: no sandbox, no background connections.
CHROMIUM_ARGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
    "--disable-component-update", "--no-first-run",
]


def require_chromium() -> str:
    """Debian's chromium, or a skip naming what is missing; in CI (CI=true) a failure, since
    .ci/run installs it."""
    if not Path(CHROMIUM).exists():
        message = "Debian's chromium is not installed (apt-get install chromium)"
        if os.environ.get("CI"):
            pytest.fail(message + ": .ci/run installs it")
        pytest.skip(message)
    return CHROMIUM


# The fixtures every browser test shares; tests/conftest.py registers this module as a plugin.
@pytest.fixture(scope="module")
def browser():
    """One Chromium for the module; each test opens its own contexts (cookies, storage)."""
    require_chromium()
    from playwright.sync_api import sync_playwright

    # Playwright's sync API keeps an event loop in this thread; the ORM calls the tests
    # make meanwhile are still plain synchronous code.
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("DJANGO_ALLOW_ASYNC_UNSAFE", "true")
        with sync_playwright() as playwright:
            launched = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
            yield launched
            launched.close()


@pytest.fixture
def context(browser):
    """A factory of browser contexts, all closed after the test."""
    contexts = []

    def make(**options):
        contexts.append(browser.new_context(**options))
        return contexts[-1]

    yield make
    for made in contexts:
        made.close()
