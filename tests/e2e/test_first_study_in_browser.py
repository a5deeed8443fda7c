"""A researcher's first study, from an empty pool to an exported CSV, in real Chromium.

The walk the README's "Your first study" describes, step by step, and the screenshots it shows:
the researcher logs in (staff home), imports images from three sources on the Import images
page, invites a reader from a pasted list; the reader, in a second browser context (its own
cookies), opens the invitation link, sets a password and logs in; the researcher creates a
study in the admin, assigns the reader by name, adds cases by rule from two of the three
sources, opens it; the reader reads every case from the keyboard; the researcher downloads the
readings CSV from the results page, whose rows must be exactly the reader's answers.

Screenshots go to the folder named by SPOTTHEFAKE_SCREENSHOTS (relative to the repository;
`SPOTTHEFAKE_SCREENSHOTS=docs/first-study` refreshes the README's), else to the test's tmp_path.
Every step waits on an event (a URL, an element, a download), never on a fixed sleep.
"""

import csv
import io
import os
from pathlib import Path

import pytest
from django.conf import settings
from django.db import connections

from pool.models import Image
from readerstudy.models import Reading, Study, StudyStatus
from tests.factories import DEFAULT_PASSWORD, ResearcherFactory

pytestmark = pytest.mark.browser

TIMEOUT_MS = 120_000  # wide: the machine may be busy; every wait ends on an event anyway
VIEWPORT = {"width": 1024, "height": 768}
SAMPLE = Path(settings.BASE_DIR) / "sample_data" / "chest-xray-pediatric" / "images"
READER_EMAIL = "ada@example.org"
READER_PASSWORD = "seven-horses-read-slowly"
STUDY_TITLE = "My first study"
N_PER_SIDE = 3
# (truth, source, files): the rule takes real cases from the first source only and synthetic
# ones from the second, never the third (another population). The "synthetic" files are
# stand-ins for a generator's output that was made elsewhere: the walk needs no training.
NORMAL = sorted((SAMPLE / "normal").glob("*.jpg"))
IMPORTS = [
    ("real", "chest-xray-pediatric", NORMAL[0:4]),
    ("synthetic", "my-generator", NORMAL[4:8]),
    ("real", "adult-cxr", NORMAL[8:11]),
]
# What the rule must draw: from the first two sources only, as many of each side as asked.
DRAWN = sorted(
    [("real", "chest-xray-pediatric")] * N_PER_SIDE + [("synthetic", "my-generator")] * N_PER_SIDE
)
# (answer key, confidence key) for each case, in the reader's order.
TYPED = [("r", "4"), ("f", "5"), ("u", "2"), ("f", "3"), ("r", "1"), ("f", "4")]
ANSWERS = {"r": "real", "f": "fake", "u": "unsure"}
IMAGES_IN_VIEW_LOADED = """() => Array.from(document.images)
    .filter(img => { const box = img.getBoundingClientRect(); return box.bottom > 0 && box.top < innerHeight; })
    .every(img => img.complete && img.naturalWidth > 0)"""


@pytest.fixture
def screenshots(tmp_path) -> Path:
    raw = os.environ.get("SPOTTHEFAKE_SCREENSHOTS")
    folder = Path(settings.BASE_DIR, raw) if raw else tmp_path / "screenshots"
    folder.mkdir(parents=True, exist_ok=True)
    return folder


@pytest.fixture
def patient_expect():
    """expect() waits as long as the page's own calls (its default is 5 s), for this test only."""
    from playwright.sync_api import expect

    expect.set_options(timeout=TIMEOUT_MS)
    yield
    expect.set_options(timeout=None)


@pytest.fixture
def closing_connections():
    yield
    # ORM calls made while Playwright's loop runs get their own database connection.
    connections.close_all()


def new_page(context):
    page = context(viewport=VIEWPORT).new_page()
    page.set_default_timeout(TIMEOUT_MS)
    return page


def log_in(page, base: str, username: str, password: str) -> None:
    page.goto(f"{base}/accounts/login/")
    page.fill("#id_username", username)
    page.fill("#id_password", password)
    page.click("button[type=submit]")


def researcher_logs_in(page, base: str, shots: Path) -> None:
    from playwright.sync_api import expect

    researcher = ResearcherFactory(username="researcher")
    log_in(page, base, researcher.username, DEFAULT_PASSWORD)
    page.wait_for_url(f"{base}/staff/")
    expect(page.locator("#staff-studies")).to_contain_text("You have not created a study yet")
    page.screenshot(path=str(shots / "1-staff-home.png"))


def researcher_imports(page, base: str, shots: Path) -> None:
    """Staff home → Import images, once per source; each upload reports every file."""
    from playwright.sync_api import expect

    page.goto(f"{base}/staff/")
    page.click("#staff-entry-points >> text=Import images")
    page.wait_for_url(f"{base}/staff/import/")
    for truth, source, files in IMPORTS:
        page.set_input_files("#id_files", [str(path) for path in files])
        page.select_option("#id_truth", truth)
        page.select_option("#id_modality", "CXR")
        page.fill("#id_finding", "normal")
        page.fill("#id_source", source)
        with page.expect_navigation():
            page.click("input[type=submit][value=Import]")
        outcomes = page.locator("#import-outcomes tbody tr.outcome-imported")
        expect(outcomes).to_have_count(len(files))
        if source == "my-generator":
            page.screenshot(path=str(shots / "2-import-images.png"))
    assert Image.objects.count() == sum(len(files) for _, _, files in IMPORTS)


def researcher_invites(page, base: str, shots: Path) -> str:
    page.goto(f"{base}/staff/")
    page.click("#staff-entry-points >> text=Readers")
    page.wait_for_url(f"{base}/staff/readers/")
    page.fill("#id_list-lines", f"Ada Lovelace, {READER_EMAIL}")
    page.click("#add-reader-list input[type=submit]")
    page.wait_for_selector("text=1 reader account created")
    page.screenshot(path=str(shots / "3-invite-reader.png"))
    link = page.get_attribute(f'input[aria-label="Invitation link for {READER_EMAIL}"]', "value")
    assert link.startswith(f"{base}/accounts/reset/")
    return link


def reader_accepts(page, base: str, link: str, shots: Path) -> None:
    """In the reader's own browser context: the link, a password, the first log-in."""
    from playwright.sync_api import expect

    page.goto(link)
    expect(page.locator("main")).to_contain_text(READER_EMAIL)
    page.fill("#id_new_password1", READER_PASSWORD)
    page.fill("#id_new_password2", READER_PASSWORD)
    page.screenshot(path=str(shots / "4-reader-sets-password.png"))
    page.click("button[type=submit]")
    page.wait_for_selector("#reset-complete")
    page.click("main a.button")
    page.wait_for_url(f"{base}/accounts/login/")
    log_in(page, base, READER_EMAIL, READER_PASSWORD)
    page.wait_for_url(f"{base}/")
    expect(page.get_by_role("heading", name="Your studies")).to_be_visible()


def researcher_creates_study(page, base: str, shots: Path) -> Study:
    """Staff home → New study: title, confidence, the reader typed by name; saved as a draft."""
    from playwright.sync_api import expect

    page.goto(f"{base}/staff/")
    page.click("#staff-entry-points >> text=New study")
    page.wait_for_url(f"{base}/admin/readerstudy/study/add/")
    page.fill("#id_title", STUDY_TITLE)
    page.fill("#id_instructions", "Is each chest X-ray **real** or **synthetic**?")
    page.select_option("#id_confidence_scale", "5")
    page.click("#assignments-group .add-row a")
    reader_box = page.locator("#id_assignments-0-reader")
    reader_box.fill(READER_EMAIL)
    reader_box.scroll_into_view_if_needed()
    page.screenshot(path=str(shots / "5-new-study-reader.png"))
    with page.expect_navigation():
        page.click("input[name=_continue]")
    expect(page.locator("ul.messagelist")).to_contain_text("was added successfully")
    study = Study.objects.get(title=STUDY_TITLE)
    assert list(study.assignments.values_list("reader__username", flat=True)) == [READER_EMAIL]
    return study


def researcher_adds_cases(page, base: str, study: Study, shots: Path) -> None:
    """Add cases by rule: N real from one dataset, N synthetic from one generator's source."""
    from playwright.sync_api import expect

    page.click("text=Add cases by rule")
    page.wait_for_url(f"{base}/admin/readerstudy/study/{study.pk}/add-cases/")
    page.fill("#id_n_real", str(N_PER_SIDE))
    page.fill("#id_n_synthetic", str(N_PER_SIDE))
    page.check('input[name=real_sources][value="chest-xray-pediatric"]')
    page.check('input[name=synthetic_sources][value="my-generator"]')
    page.locator('input[name=synthetic_sources][value="my-generator"]').scroll_into_view_if_needed()
    page.screenshot(path=str(shots / "6-add-cases-by-rule.png"))
    with page.expect_navigation():
        page.click("input[type=submit][value='Add cases']")
    expect(page.locator("ul.messagelist")).to_contain_text(f"Added {2 * N_PER_SIDE} case(s)")
    sources = sorted(study.cases.values_list("image__truth", "image__source"))
    assert sources == DRAWN


def researcher_opens(page, study: Study) -> None:
    """Open study; a one-sided study would ask first ("Open anyway"), this one must not."""
    from playwright.sync_api import expect

    with page.expect_navigation():
        page.click("button:has-text('Open study')")
    expect(page.locator("ul.messagelist")).to_contain_text("is open")
    study.refresh_from_db()
    assert study.status == StudyStatus.OPEN


def reader_reads(page, base: str, study: Study, shots: Path) -> None:
    """Home → the study's introduction → every case, by keyboard alone."""
    from playwright.sync_api import expect

    page.goto(f"{base}/")
    expect(page.get_by_role("heading", name="Your studies")).to_be_visible()
    expect(page.locator("main")).to_contain_text(STUDY_TITLE)
    page.keyboard.press("Enter")  # the focused Start button
    expect(page.get_by_role("heading", name=STUDY_TITLE)).to_be_visible()
    page.keyboard.press("Enter")
    for index, (answer_key, confidence_key) in enumerate(TYPED, start=1):
        expect(page.locator("[data-counter]")).to_have_text(f"Case {index} of {len(TYPED)}")
        expect(page.locator("[data-viewer].ready")).to_have_count(1)
        if index == 1:
            page.screenshot(path=str(shots / "7-reading.png"))
        page.keyboard.press(answer_key)
        page.keyboard.press(confidence_key)
    expect(page.get_by_role("heading", name="Thank you")).to_be_visible()
    assert page.url == f"{base}/studies/{study.public_id}/done/"


def researcher_exports(page, base: str, study: Study, shots: Path) -> list[dict]:
    """Staff home → Results → Downloads → readings.csv; the downloaded file's rows."""
    from playwright.sync_api import expect

    page.goto(f"{base}/staff/")
    row = page.locator("#staff-studies tr.study-row", has_text=STUDY_TITLE)
    expect(row).to_contain_text(f"{len(TYPED)} of {len(TYPED)}")
    row.locator("text=Results").click()
    page.wait_for_url(f"{base}/staff/studies/{study.public_id}/results/")
    link = page.locator("#downloads").get_by_role("link", name="readings.csv", exact=True)
    link.scroll_into_view_if_needed()
    page.wait_for_function(IMAGES_IN_VIEW_LOADED)  # the cases' thumbnails (loaded lazily)
    page.screenshot(path=str(shots / "8-results-downloads.png"))
    with page.expect_download() as download:
        link.click()
    assert download.value.suggested_filename.endswith(".csv")
    text = Path(download.value.path()).read_text(encoding="utf-8-sig")
    return list(csv.DictReader(io.StringIO(text)))


def check_exported(rows: list[dict], study: Study) -> None:
    """One row per answer, in reading order, each exactly what the reader typed."""
    assert len(rows) == len(TYPED) == Reading.objects.filter(slot__assignment__study=study).count()
    rows.sort(key=lambda row: int(row["position"]))
    for row, (answer_key, confidence_key) in zip(rows, TYPED, strict=True):
        assert row["reader"] == READER_EMAIL
        assert row["study"] == study.public_id
        assert (row["answer"], row["confidence"]) == (ANSWERS[answer_key], confidence_key)
        assert row["is_practice"] == "0" and row["is_repeat"] == "0"
    truths = sorted((row["truth"], row["source"]) for row in rows)
    assert truths == DRAWN


def test_it_walks_a_researcher_from_login_to_an_exported_csv(
    live_server, transactional_db, context, screenshots, patient_expect, closing_connections
):
    base = live_server.url
    researcher = new_page(context)
    researcher_logs_in(researcher, base, screenshots)
    researcher_imports(researcher, base, screenshots)
    link = researcher_invites(researcher, base, screenshots)
    reader = new_page(context)  # a second context: the reader's own cookies
    reader_accepts(reader, base, link, screenshots)
    study = researcher_creates_study(researcher, base, screenshots)
    researcher_adds_cases(researcher, base, study, screenshots)
    researcher_opens(researcher, study)
    reader_reads(reader, base, study, screenshots)
    check_exported(researcher_exports(researcher, base, study, screenshots), study)
    shots = sorted(path.name for path in screenshots.glob("*.png"))
    assert len(shots) == 8, shots
