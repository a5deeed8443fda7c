"""Optional score feedback: once the study is closed, and only if the study offers it, a reader
sees their own accuracy, sensitivity and specificity; never before, never another reader's."""

import pytest
from django.test import Client
from django.utils import timezone

from pool.models import Truth
from readerstudy.models import Design, Reading
from readerstudy.services.feedback import own_score
from readerstudy.services.studies import close_study, open_study
from tests.factories import UserFactory
from tests.readerstudy.helpers import slots_of

pytestmark = pytest.mark.django_db

# Reader A: one of two real images called real, one of two fakes called fake (one unsure).
ANSWERS_A = {Truth.REAL: ["real", "fake"], Truth.SYNTHETIC: ["fake", "unsure"]}
# Reader B: everything real.
ANSWERS_B = {Truth.REAL: ["real", "real"], Truth.SYNTHETIC: ["real", "real"]}


def answer_all(study, reader, answers) -> None:
    left = {truth: list(values) for truth, values in answers.items()}
    now = timezone.now()
    for slot in slots_of(study, reader):
        answer = left[slot.case.image.truth].pop(0) if not slot.is_practice else "real"
        Reading.objects.create(slot=slot, answer=answer, served_at=now, answered_at=now)


@pytest.fixture
def two_readers():
    return UserFactory(username="reader-a"), UserFactory(username="reader-b")


@pytest.fixture
def study(build_study, two_readers):
    study = build_study(readers=two_readers, n_practice=2, reader_feedback=True)
    answer_all(study, two_readers[0], ANSWERS_A)
    answer_all(study, two_readers[1], ANSWERS_B)
    return study


def pages_of(study, user) -> dict[str, str]:
    client = Client()
    client.force_login(user)
    pages = {}
    for name, url in {
        "study": f"/studies/{study.public_id}/",
        "done": f"/studies/{study.public_id}/done/",
        "home": "/",
    }.items():
        response = client.get(url)
        assert response.status_code == 200, (name, response.status_code)
        pages[name] = response.content.decode()
    return pages


A_FIGURES = (
    "2 of 4 cases right",
    "1 of 2 synthetic images called fake",
    "1 of 2 real images called real",
)
B_FIGURES = (
    "2 of 4 cases right",
    "0 of 2 synthetic images called fake",
    "2 of 2 real images called real",
)


def test_it_shows_nothing_of_the_score_before_the_study_closes(study, two_readers):
    for reader in two_readers:
        for page in pages_of(study, reader).values():
            assert "Your score" not in page and "called fake" not in page
            assert "See your score" not in page
    assert own_score(study.assignments.get(reader=two_readers[0])) is None


def test_it_shows_each_reader_their_own_figures_once_closed(study, two_readers):
    close_study(study)
    reader_a, reader_b = two_readers
    for page in (pages_of(study, reader_a)["study"], pages_of(study, reader_a)["done"]):
        assert "Your score" in page
        assert all(figure in page for figure in A_FIGURES)
        assert "0 of 2 synthetic images called fake" not in page  # reader B's
        assert "“unsure” answer counts as not recognised" in page
    page_b = pages_of(study, reader_b)["study"]
    assert all(figure in page_b for figure in B_FIGURES)
    assert "1 of 2 synthetic images called fake" not in page_b  # reader A's
    assert "See your score" in pages_of(study, reader_a)["home"]


def test_it_computes_the_figures_from_first_showings_of_regular_cases(study, two_readers):
    close_study(study)
    score = own_score(study.assignments.get(reader=two_readers[0]))
    assert (score.accuracy.count, score.accuracy.total, score.accuracy.percent) == (2, 4, 50)
    assert (score.sensitivity.count, score.sensitivity.total) == (1, 2)
    assert (score.specificity.count, score.specificity.total) == (1, 2)
    assert score.unsure == 1 and not score.is_pairs


def test_it_shows_no_score_when_the_study_does_not_offer_it(build_study, two_readers):
    study = build_study(readers=two_readers[:1])
    answer_all(study, two_readers[0], ANSWERS_A)
    close_study(study)
    for page in pages_of(study, two_readers[0]).values():
        assert "Your score" not in page and "See your score" not in page


def test_it_hides_the_score_again_when_the_study_reopens(study, two_readers):
    close_study(study)
    open_study(study)
    assert "Your score" not in pages_of(study, two_readers[0])["study"]


def test_it_keeps_the_score_from_readers_of_other_studies(study, two_readers):
    close_study(study)
    outsider = Client()
    outsider.force_login(UserFactory(username="outsider"))
    assert outsider.get(f"/studies/{study.public_id}/").status_code == 404
    assert outsider.get(f"/studies/{study.public_id}/done/").status_code == 404


def test_it_shows_pairs_as_the_share_of_synthetic_images_picked(build_study, two_readers):
    study = build_study(readers=two_readers[:1], design=Design.PAIR, reader_feedback=True)
    now = timezone.now()
    slots = slots_of(study, two_readers[0])
    for slot in slots:
        picked_left_fake = slot.case.image.truth == Truth.SYNTHETIC
        Reading.objects.create(
            slot=slot, answer="fake" if picked_left_fake else "real",
            chosen_side="left" if picked_left_fake else "right", served_at=now, answered_at=now,
        )
    close_study(study)
    score = own_score(study.assignments.get())
    assert score.is_pairs and score.sensitivity is None
    n_pairs = len(slots)  # pairs share a finding: the study's findings make as many as they can
    assert n_pairs >= 1 and (score.accuracy.count, score.accuracy.total) == (n_pairs, n_pairs)
    assert f"{n_pairs} of {n_pairs} pairs" in pages_of(study, two_readers[0])["study"]
