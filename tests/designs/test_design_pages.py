"""Pair and exposure screens with the test client: stored answers, server-side staircase."""

import pytest

from readerstudy.models import Design, Reading, ReadingSlot, Truth
from tests.designs.helpers import design_study
from tests.factories import UserFactory
from tests.readerstudy.helpers import case_url, slots_of

pytestmark = pytest.mark.django_db


def test_it_stores_the_chosen_side_as_a_judgement_of_the_left_image(client):
    reader = UserFactory()
    study = design_study(readers=[reader], real=["normal"] * 3, synthetic=["normal"] * 3,
                         design=Design.PAIR, ask_finding=True)
    client.force_login(reader)
    slots = slots_of(study, reader)
    assert len(slots) == 3 and all(s.right_case_id for s in slots)
    page = client.get(case_url(slots[0]))
    assert page.status_code == 200 and b"Which one is synthetic?" in page.content
    assert client.get(f"/read/{slots[0].token}/right.png").status_code == 200
    missing_finding = client.post(case_url(slots[0]), {"side": "left"})
    assert missing_finding.status_code == 400 and not Reading.objects.exists()
    response = client.post(case_url(slots[0]), {"side": "left", "finding": "normal"})
    assert response.status_code == 303
    reading = Reading.objects.get()
    assert (reading.chosen_side, reading.answer, reading.finding_answer) == ("left", "fake", "normal")


def test_it_moves_the_staircase_from_stored_answers_only(client):
    reader = UserFactory()
    study = design_study(readers=[reader], real=["normal"] * 3, synthetic=["normal"] * 3,
                         design=Design.EXPOSURE, exposure_start_ms=300, exposure_step_ms=50,
                         staircase_down=1, staircase_up=1)
    client.force_login(reader)
    seen = []
    for index, slot in enumerate(slots_of(study, reader)):
        page = client.get(case_url(slot))
        assert page.status_code == 200
        slot.refresh_from_db()
        seen.append(slot.exposure_ms)
        assert f'data-exposure-ms="{slot.exposure_ms}"'.encode() in page.content
        right = "fake" if slot.case.image.truth == Truth.SYNTHETIC else "real"
        wrong = "real" if right == "fake" else "fake"
        answer = right if index in (0, 1, 3) else wrong
        # A client claiming another requested exposure cannot move it.
        client.post(case_url(slot), {"answer": answer, "achieved_ms": "283.4",
                                     "requested_exposure_ms": "5"})
    assert seen == [300, 250, 200, 250, 200, 250]
    readings = Reading.objects.order_by("slot__position")
    assert [r.requested_exposure_ms for r in readings] == seen
    assert all(r.achieved_exposure_ms == 283.4 for r in readings)


def test_it_keeps_an_exposure_once_decided(client):
    reader = UserFactory()
    study = design_study(readers=[reader], real=["normal"], synthetic=["normal"],
                         design=Design.EXPOSURE)
    client.force_login(reader)
    slot = slots_of(study, reader)[0]
    client.get(case_url(slot))
    ReadingSlot.objects.filter(pk=slot.pk).update(exposure_ms=777)
    assert b'data-exposure-ms="777"' in client.get(case_url(slot)).content


def test_it_refuses_a_pair_study_without_matching_images():
    from readerstudy.services.studies import StudyRefused

    with pytest.raises(StudyRefused, match="no real and synthetic"):
        design_study(readers=[UserFactory()], real=["normal"], synthetic=["pneumonia"],
                     design=Design.PAIR)


def test_it_shows_which_side_was_synthetic_after_a_practice_pair(client):
    reader = UserFactory()
    study = design_study(readers=[reader], real=["normal"], synthetic=["normal"],
                         practice=[(Truth.REAL, "x"), (Truth.SYNTHETIC, "x")], design=Design.PAIR)
    client.force_login(reader)
    slot = slots_of(study, reader)[0]
    assert slot.is_practice
    response = client.post(case_url(slot), {"side": "right"}, follow=True)
    side = "left" if slot.case.image.truth == Truth.SYNTHETIC else "right"
    assert f"The synthetic image was on the {side}.".encode() in response.content
