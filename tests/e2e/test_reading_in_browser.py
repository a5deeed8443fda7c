"""A reader does a whole study in a real headless Chromium, from the keyboard only.

Debian's chromium, driven by Playwright's Python package (never `playwright install`).
The stored readings must match what was typed, exactly once each; the page must never
reload between cases (htmx swaps), and each next image must be fetched before it is
needed (preloading). A screenshot of the reading page goes to the test output folder.
"""

import time
from pathlib import Path

import numpy as np
import pytest
from django.conf import settings
from django.core.files.base import ContentFile
from PIL import Image as PILImage

from pool.imaging import make_display_png
from pool.models import Truth
from readerstudy.models import Assignment, Reading, ReadingSlot
from readerstudy.services.studies import open_study
from tests.factories import DEFAULT_PASSWORD, ImageFactory, StudyFactory, UserFactory

pytestmark = pytest.mark.browser

SAMPLE = Path(settings.BASE_DIR) / "sample_data" / "chest-xray-pediatric" / "images"
TIMEOUT_MS = 15_000

# (answer key, confidence key, comment typed first or None), for practice then 4 cases.
TYPED = [
    ("r", "4", None),
    ("f", "5", None),
    ("r", "2", "rfu 12: costophrenic angle looks odd"),  # shortcut letters inside the comment
    ("u", "1", None),
    ("f", "3", None),
]
ANSWERS = {"r": "real", "f": "fake", "u": "unsure"}






def xray_display(index: int) -> bytes:
    """A real chest X-ray from the bundled sample, as a 512 px display derivative."""
    files = sorted(SAMPLE.rglob("*.jp*g"))
    if not files:
        return make_display_png(
            np.random.default_rng(index).random((64, 64)).astype(np.float32), 512
        )
    with PILImage.open(files[index % len(files)]) as picture:
        grey = np.asarray(picture.convert("L"), dtype=np.float32) / 255.0
    return make_display_png(grey, 512)


def xray_original(image, index: int) -> None:
    """The sample X-ray as the image's original: readers get the study's derivative of it."""
    files = sorted(SAMPLE.rglob("*.jp*g"))
    if not files:
        return
    path = files[index % len(files)]
    with PILImage.open(path) as picture:
        image.original_width, image.original_height = picture.size
    image.original_format = "jpeg"
    image.original.save("original.jpg", ContentFile(path.read_bytes()), save=True)


def build_study(reader):
    study = StudyFactory(
        title="Paediatric chest films",
        instructions="For each image, decide whether it is a **real** radiograph or a **synthetic** one.",
        confidence_scale=5,
    )
    truths = [Truth.REAL, Truth.SYNTHETIC, Truth.REAL, Truth.SYNTHETIC, Truth.SYNTHETIC]
    for index, truth in enumerate(truths):
        image = ImageFactory(truth=truth)
        image.display.save("display.png", ContentFile(xray_display(index)), save=True)
        xray_original(image, index)
        study.cases.create(image=image, is_practice=index == 4)
    Assignment.objects.create(study=study, reader=reader)
    open_study(study)
    return study


def wait_until(condition, timeout=TIMEOUT_MS / 1000):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.05)
    return False


CENTRE_PIXEL = """() => {
    const canvas = document.querySelector("[data-viewer] canvas");
    const data = canvas.getContext("2d").getImageData(canvas.width >> 1, canvas.height >> 1, 1, 1).data;
    return data[0];
}"""


def check_viewer_keys(page):
    """Invert, zoom and reset work on the canvas, in the browser."""
    from playwright.sync_api import expect

    status = page.locator("[data-viewer-status]")
    expect(status).to_have_text("W 256  ·  L 128  ·  100%")
    before = page.evaluate(CENTRE_PIXEL)
    page.keyboard.press("i")
    expect(status).to_contain_text("inverted")
    assert wait_until(lambda: abs(page.evaluate(CENTRE_PIXEL) - (255 - before)) <= 1)
    page.keyboard.press("+")
    expect(status).to_contain_text("125%")
    page.keyboard.press("0")
    expect(status).to_have_text("W 256  ·  L 128  ·  100%")
    assert wait_until(lambda: page.evaluate(CENTRE_PIXEL) == before)


def test_it_reads_a_whole_study_from_the_keyboard(
    live_server, transactional_db, context, test_output_dir
):
    from playwright.sync_api import expect

    reader = UserFactory(username="radiologist")
    study = build_study(reader)
    slots = list(ReadingSlot.objects.filter(assignment__reader=reader).order_by("position"))
    requested: list[str] = []
    screenshot = test_output_dir / "reading-page.png"

    page = context(viewport={"width": 1366, "height": 820}).new_page()
    page.set_default_timeout(TIMEOUT_MS)
    page.on("request", lambda request: requested.append(request.url))

    # Log in: the username field has the focus.
    page.goto(f"{live_server.url}/")
    expect(page.locator("#id_username")).to_be_focused()
    page.keyboard.type(reader.username)
    page.keyboard.press("Tab")
    page.keyboard.type(DEFAULT_PASSWORD)
    page.keyboard.press("Enter")

    # Home → study introduction → first case, each by Enter on the focused button.
    expect(page.get_by_role("heading", name="Your studies")).to_be_visible()
    page.keyboard.press("Enter")
    expect(page.get_by_role("heading", name=study.title)).to_be_visible()
    page.keyboard.press("Enter")
    expect(page.locator("[data-counter]")).to_have_text("Practice 1 of 1")
    page.evaluate("window.__sameDocument = true")

    for index, (answer_key, confidence_key, comment) in enumerate(TYPED):
        slot = slots[index]
        counter = "Practice 1 of 1" if slot.is_practice else f"Case {index} of 4"
        expect(page.locator("[data-counter]")).to_have_text(counter)
        expect(page.locator("[data-viewer].ready")).to_have_count(1)
        # Every case so far arrived by an htmx swap into the same document.
        assert page.evaluate("window.__sameDocument === true"), f"page reloaded at {index}"
        next_image = page.locator("[data-viewer]").get_attribute("data-next-image")
        if next_image:  # preloaded while this case is shown
            assert wait_until(lambda url=next_image: any(seen.endswith(url) for seen in requested))
        if index == 1:
            check_viewer_keys(page)
        if index == 2:
            page.screenshot(path=str(screenshot))
        if comment:
            page.keyboard.press("c")
            expect(page.locator("textarea[name=comment]")).to_be_focused()
            page.keyboard.type(comment)
            page.keyboard.press("Escape")
        page.keyboard.press(answer_key)
        page.keyboard.press(confidence_key)
        if slot.is_practice:
            expect(page.locator(".feedback .question")).to_have_text("This image is synthetic.")
            page.keyboard.press("Enter")

    expect(page.get_by_role("heading", name="Thank you")).to_be_visible()
    assert page.url.endswith(f"/studies/{study.public_id}/done/")

    readings = list(Reading.objects.select_related("slot").order_by("slot__position"))
    assert len(readings) == len(TYPED) == ReadingSlot.objects.count()
    for reading, (answer_key, confidence_key, comment) in zip(readings, TYPED, strict=True):
        assert reading.answer == ANSWERS[answer_key]
        assert reading.confidence == int(confidence_key)
        assert reading.comment == (comment or "")
        assert reading.client_ms is not None and reading.client_ms > 0
        assert reading.served_at <= reading.answered_at
        assert reading.revision_count == 0
    assert [reading.slot.is_practice for reading in readings] == [True, False, False, False, False]
    assert Assignment.objects.get(reader=reader).completed_at is not None
    assert screenshot.stat().st_size > 10_000


def test_it_adjusts_the_image_with_the_mouse(live_server, transactional_db, context):
    """Drag for window/level, Shift-drag to pan, wheel to zoom, double click to reset."""
    from playwright.sync_api import expect

    reader = UserFactory(username="mouse-user")
    study = build_study(reader)
    page = context(viewport={"width": 1200, "height": 800}).new_page()
    page.set_default_timeout(TIMEOUT_MS)
    page.goto(f"{live_server.url}/accounts/login/?next=/studies/{study.public_id}/next/")
    page.fill("#id_username", reader.username)
    page.fill("#id_password", DEFAULT_PASSWORD)
    page.keyboard.press("Enter")
    expect(page.locator("[data-viewer].ready")).to_have_count(1)
    status = page.locator("[data-viewer-status]")
    box = page.locator("[data-viewer] canvas").bounding_box()
    x, y = box["x"] + box["width"] / 2, box["y"] + box["height"] / 2

    page.mouse.move(x, y)
    page.mouse.down()
    page.mouse.move(x - 100, y + 40, steps=5)
    page.mouse.up()
    expect(status).to_have_text("W 156  ·  L 168  ·  100%")
    before = page.evaluate(CENTRE_PIXEL)
    page.keyboard.down("Shift")
    page.mouse.move(x, y)
    page.mouse.down()
    page.mouse.move(x + 200, y, steps=5)
    page.mouse.up()
    page.keyboard.up("Shift")
    assert wait_until(lambda: page.evaluate(CENTRE_PIXEL) != before)  # panned
    page.mouse.wheel(0, -300)
    expect(status).not_to_contain_text("100%")
    page.mouse.dblclick(x, y)
    expect(status).to_have_text("W 256  ·  L 128  ·  100%")


def test_it_works_without_javascript(live_server, transactional_db, context):
    """Plain forms and an <img>: the same study can be read with JavaScript off."""
    from playwright.sync_api import expect

    reader = UserFactory(username="no-script")
    study = build_study(reader)
    clicks = [("Fake", "5"), ("Real", "1"), ("Unsure", "3"), ("Real", "2"), ("Fake", "4")]

    page = context(java_script_enabled=False).new_page()
    page.set_default_timeout(TIMEOUT_MS)
    page.goto(f"{live_server.url}/accounts/login/")
    page.fill("#id_username", reader.username)
    page.fill("#id_password", DEFAULT_PASSWORD)
    page.click("button[type=submit]")
    expect(page.get_by_role("heading", name="Your studies")).to_be_visible()
    page.keyboard.press("Enter")  # the focused Start link
    expect(page.get_by_role("heading", name=study.title)).to_be_visible()
    page.keyboard.press("Enter")
    for index, (label, level) in enumerate(clicks):
        expect(page.locator("[data-viewer] img")).to_be_visible()
        expect(page.locator("[data-viewer] canvas")).to_be_hidden()
        page.locator("label.answer", has_text=label).click()
        page.click(f'button[name=confidence][value="{level}"]')
        if index == 0:
            expect(page.locator(".feedback .question")).to_have_text("This image is synthetic.")
            page.click("text=Continue")
    expect(page.get_by_role("heading", name="Thank you")).to_be_visible()

    stored = list(
        Reading.objects.order_by("slot__position").values_list("answer", "confidence", "client_ms")
    )
    assert stored == [(label.lower(), int(level), None) for label, level in clicks]
