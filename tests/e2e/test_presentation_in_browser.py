"""The study's presentation in a real Chromium: CT windows from the keyboard, the minimum
viewing time, and the reading page at 1024 px (its screenshot goes to docs/ for the README)."""

import io
import time
from pathlib import Path

import numpy as np
import pydicom
import pytest
from django.conf import settings
from pydicom.data import get_testdata_file

from pool.importing import ImportLabels, import_bytes
from pool.models import Truth
from readerstudy.models import Assignment, Reading, StudyCase
from readerstudy.services.presentation import profile_of
from readerstudy.services.studies import open_study
from tests.e2e.test_reading_in_browser import TIMEOUT_MS
from tests.factories import DEFAULT_PASSWORD, StudyFactory, UserFactory

pytestmark = pytest.mark.browser

SAMPLE = Path(settings.BASE_DIR) / "sample_data" / "chest-xray-pediatric" / "images"
MEAN_GREY = """() => {
    const canvas = document.querySelector("[data-viewer] canvas");
    const data = canvas.getContext("2d").getImageData(0, 0, canvas.width, canvas.height).data;
    let sum = 0;
    for (let i = 0; i < data.length; i += 4) sum += data[i];
    return sum / (data.length / 4);
}"""


def ct_slice(shift: int) -> bytes:
    ds = pydicom.dcmread(get_testdata_file("CT_small.dcm"))
    ds.SeriesInstanceUID = pydicom.uid.generate_uid()
    arr = ds.pixel_array.astype(np.int32)
    arr[:4, :4] += shift  # a different file, the same anatomy
    ds.PixelData = arr.astype(np.int16).tobytes()
    buffer = io.BytesIO()
    ds.save_as(buffer)
    return buffer.getvalue()


def log_in(page, live_server, reader, study):
    page.goto(f"{live_server.url}/accounts/login/?next=/studies/{study.public_id}/next/")
    page.fill("#id_username", reader.username)
    page.fill("#id_password", DEFAULT_PASSWORD)
    page.keyboard.press("Enter")


def test_it_reads_a_ct_case_in_lung_and_mediastinum_windows_from_the_keyboard(
    live_server, transactional_db, context  # noqa: F811
):
    from playwright.sync_api import expect

    reader = UserFactory(username="ct-reader")
    study = StudyFactory(title="CT slices")
    for shift in (0, 1):
        labels = ImportLabels(truth=Truth.REAL if shift == 0 else Truth.SYNTHETIC)
        image = import_bytes(ct_slice(shift), name="ct.dcm", labels=labels).images[0]
        StudyCase.objects.create(study=study, image=image)
    profile = profile_of(study)
    profile.min_viewing_seconds = 1.5
    profile.save()
    Assignment.objects.create(study=study, reader=reader)
    open_study(study)

    page = context(viewport={"width": 1200, "height": 800}).new_page()
    page.set_default_timeout(TIMEOUT_MS)
    log_in(page, live_server, reader, study)
    viewer = page.locator("[data-viewer].ready")
    expect(viewer).to_have_count(1)
    page.keyboard.press("r")  # barely shown: the key does nothing
    page.keyboard.press("m")
    expect(page.locator('[data-viewer][data-current-window="mediastinum"].ready')).to_have_count(1)
    assert page.locator("[data-viewer] img").get_attribute("src").endswith("/mediastinum.png")
    mediastinum = page.evaluate(MEAN_GREY)
    page.keyboard.press("l")
    expect(page.locator('[data-viewer][data-current-window="lung"].ready')).to_have_count(1)
    lung = page.evaluate(MEAN_GREY)
    assert abs(lung - mediastinum) > 5  # the same slice, a different grey mapping
    assert not Reading.objects.exists()
    time.sleep(1.6)
    page.keyboard.press("f")
    expect(page.locator("[data-counter]")).to_have_text("Case 2 of 2")
    assert Reading.objects.get().answer == "fake"


def test_it_shows_the_reading_page_at_1024_px(live_server, transactional_db, context):  # noqa: F811
    from playwright.sync_api import expect

    reader = UserFactory(username="screenshot-reader")
    study = StudyFactory(title="Paediatric chest films")
    for index, path in enumerate(sorted(SAMPLE.glob("*/*.jpg"))[:3]):
        truth = Truth.REAL if index % 2 == 0 else Truth.SYNTHETIC
        image = import_bytes(path.read_bytes(), name=path.name, labels=ImportLabels(truth=truth))
        StudyCase.objects.create(study=study, image=image.images[0])
    profile = profile_of(study)
    profile.display_size = 1024
    profile.save()
    Assignment.objects.create(study=study, reader=reader)
    open_study(study)

    page = context(viewport={"width": 1600, "height": 1100}).new_page()
    page.set_default_timeout(TIMEOUT_MS)
    log_in(page, live_server, reader, study)
    expect(page.locator("[data-viewer].ready")).to_have_count(1)
    size = page.evaluate(
        "() => { const i = document.querySelector('[data-viewer] img');"
        " return [i.naturalWidth, i.naturalHeight]; }"
    )
    assert size == [1024, 1024]
    shot = Path(settings.BASE_DIR) / "docs" / "reading-page-1024.png"
    page.screenshot(path=str(shot))
    assert shot.stat().st_size > 10_000
