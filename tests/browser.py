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
