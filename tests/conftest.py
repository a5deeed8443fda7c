import os
from pathlib import Path

import pytest
from django.conf import settings

from tests.factories import StaffFactory, UserFactory

pytest_plugins = ["tests.browser"]  # the shared Chromium fixtures

SHARED_DATA_ENV = "SPOTTHEFAKE_SHARED_DATA"


@pytest.fixture(autouse=True)
def _media_in_tmp(settings, tmp_path):
    """Every test writes media into its own folder, so tests never see each other's files."""
    settings.MEDIA_ROOT = tmp_path / "media"
    settings.STORAGES = {
        **settings.STORAGES,
        "default": {
            "BACKEND": "django.core.files.storage.FileSystemStorage",
            "OPTIONS": {"location": tmp_path / "media"},
        },
    }


@pytest.fixture
def reader(db):
    return UserFactory()


@pytest.fixture
def other_reader(db):
    return UserFactory()


@pytest.fixture
def staff(db):
    return StaffFactory()


@pytest.fixture
def test_output_dir() -> Path:
    path = Path(settings.TEST_OUTPUT_DIR)
    path.mkdir(parents=True, exist_ok=True)
    return path


@pytest.fixture
def shared_chest_xrays() -> Path:
    """The team's shared real X-rays: opt-in only, since a user's machine has no such folder."""
    raw = os.environ.get(SHARED_DATA_ENV)
    if not raw or not Path(raw, "manifest.csv").is_file():
        pytest.skip(f"set {SHARED_DATA_ENV} to the chest-xray-pediatric folder to run this test")
    return Path(raw)

