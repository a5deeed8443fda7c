"""Pair and exposure screens with the test client: stored answers, server-side staircase."""

import pytest

from pool.models import Truth
from readerstudy.models import Design, Reading, ReadingSlot
from tests.designs.helpers import design_study
from tests.factories import UserFactory
from tests.readerstudy.helpers import case_url, slots_of

pytestmark = pytest.mark.django_db


def test_it_stores_the_chosen_side_as_a_judgement_of_the_left_image(client):
    reader = UserFactory()
    study = design_study(
        readers=[reader],
        real=["normal"] * 3,
        synthetic=["normal"] * 3,
        design=Design.PAIR,
        ask_finding=True,
    )
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
    assert (reading.chosen_side, reading.answer, reading.finding_answer) == (
        "left",
        "fake",
        "normal",
    )


def test_it_moves_the_staircase_from_stored_answers_only(client):
    reader = UserFactory()
    study = design_study(
        readers=[reader],
        real=["normal"] * 3,
        synthetic=["normal"] * 3,
        design=Design.EXPOSURE,
        exposure_start_ms=300,
        exposure_step_ms=50,
        staircase_down=1,
        staircase_up=1,
    )
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
        client.post(
            case_url(slot), {"answer": answer, "achieved_ms": "283.4", "requested_exposure_ms": "5"}
        )
    assert seen == [300, 250, 200, 250, 200, 250]
    readings = Reading.objects.order_by("slot__position")
    assert [r.requested_exposure_ms for r in readings] == seen
    assert all(r.achieved_exposure_ms == 283.4 for r in readings)


def test_it_keeps_an_exposure_once_decided(client):
    reader = UserFactory()
    study = design_study(
        readers=[reader], real=["normal"], synthetic=["normal"], design=Design.EXPOSURE
    )
    client.force_login(reader)
    slot = slots_of(study, reader)[0]
    client.get(case_url(slot))
    ReadingSlot.objects.filter(pk=slot.pk).update(exposure_ms=777)
    assert b'data-exposure-ms="777"' in client.get(case_url(slot)).content


def test_it_refuses_a_pair_study_without_matching_images():
    from readerstudy.services.studies import StudyRefused

    with pytest.raises(StudyRefused, match="no real and synthetic"):
        design_study(
            readers=[UserFactory()], real=["normal"], synthetic=["pneumonia"], design=Design.PAIR
        )


def test_it_shows_which_side_was_synthetic_after_a_practice_pair(client):
    reader = UserFactory()
    study = design_study(
        readers=[reader],
        real=["normal"],
        synthetic=["normal"],
        practice=[(Truth.REAL, "x"), (Truth.SYNTHETIC, "x")],
        design=Design.PAIR,
    )
    client.force_login(reader)
    slot = slots_of(study, reader)[0]
    assert slot.is_practice
    response = client.post(case_url(slot), {"side": "right"}, follow=True)
    side = "left" if slot.case.image.truth == Truth.SYNTHETIC else "right"
    assert f"The synthetic image was on the {side}.".encode() in response.content


def _read_pairs(client, study, reader, picks):
    for slot, pick in zip(slots_of(study, reader), picks, strict=False):
        synthetic = "left" if slot.case.image.truth == Truth.SYNTHETIC else "right"
        other = "right" if synthetic == "left" else "left"
        client.post(case_url(slot), {"side": synthetic if pick else other, "finding": "normal"})


def test_it_reports_pair_statistics_in_json_csv_and_dashboard(client, admin_client):
    import csv
    import io
    import json

    from django.core.management import call_command

    reader = UserFactory(username="reader-a")
    study = design_study(
        readers=[reader],
        real=["normal"] * 4,
        synthetic=["normal"] * 4,
        design=Design.PAIR,
        ask_finding=True,
    )
    client.force_login(reader)
    _read_pairs(client, study, reader, [True, True, True, False])
    out = io.StringIO()
    call_command("study_stats", study.public_id, "--json", stdout=out)
    block = json.loads(out.getvalue())["designs"]
    assert block["pairs"]["readers"][0]["n_correct"] == 3
    assert block["pairs"]["readers"][0]["p_value"] == pytest.approx(2 * 5 / 16)
    normal = block["findings"]["findings"][0]
    assert normal["real_sensitivity"]["estimate"] == 1.0  # every image normal, all answered normal
    base = f"/staff/studies/{study.public_id}/results/"
    rows = list(
        csv.reader(
            io.StringIO(
                b"".join(admin_client.get(base + "design_pairs.csv").streaming_content).decode()
            )
        )
    )
    assert rows[0][:4] == ["study_public_id", "reader", "n_pairs", "n_correct"]
    assert rows[1][1:4] == ["reader-a", "4", "3"]
    readings = list(
        csv.DictReader(
            io.StringIO(
                b"".join(admin_client.get(base + "design_readings.csv").streaming_content).decode()
            )
        )
    )
    assert sorted(r["correct"] for r in readings) == ["0", "1", "1", "1"]
    assert all(r["right_image_public_id"] and r["chosen_side"] for r in readings)
    page = admin_client.get(base)
    assert page.status_code == 200
    assert b"Two-alternative forced choice" in page.content and b"<svg" in page.content


def test_it_asks_the_finding_on_single_image_studies_and_stores_it_with_the_answer(client):
    reader = UserFactory()
    study = design_study(
        readers=[reader],
        real=["normal"],
        synthetic=["pneumonia"],
        ask_finding=True,
        finding_vocabulary="normal, pneumonia, other",
    )
    client.force_login(reader)
    slot = slots_of(study, reader)[0]
    page = client.get(case_url(slot))
    assert b'name="finding" value="pneumonia"' in page.content
    refused = client.post(case_url(slot), {"answer": "real"})
    assert refused.status_code == 400 and not Reading.objects.exists()
    client.post(case_url(slot), {"answer": "real", "finding": "pneumonia"})
    assert Reading.objects.get().finding_answer == "pneumonia"
    odd = client.post(case_url(slots_of(study, reader)[1]), {"answer": "fake", "finding": "x"})
    assert odd.status_code == 400 and Reading.objects.count() == 1


def test_it_continues_from_an_exposure_practice_answer_by_a_plain_link(client):
    reader = UserFactory()
    study = design_study(
        readers=[reader],
        real=["normal"],
        synthetic=["normal"],
        practice=[(Truth.REAL, "normal")],
        design=Design.EXPOSURE,
    )
    client.force_login(reader)
    slot = slots_of(study, reader)[0]
    client.get(case_url(slot))
    feedback = client.post(case_url(slot), {"answer": "real", "achieved_ms": "500"}, follow=True)
    assert b"This image is real." in feedback.content
    assert b"data-continue" in feedback.content and b"hx-get" not in feedback.content
    reading = Reading.objects.get()
    assert reading.requested_exposure_ms == study.exposure_start_ms


def test_it_prints_the_design_figures_in_the_readable_summary(client):
    import io

    from django.core.management import call_command

    reader = UserFactory(username="summary-reader")
    study = design_study(
        readers=[reader], real=["normal"] * 2, synthetic=["normal"] * 2, design=Design.PAIR
    )
    client.force_login(reader)
    _read_pairs(client, study, reader, [True, True])
    out = io.StringIO()
    call_command("study_stats", study.public_id, "--bootstrap", "50", stdout=out)
    assert "2AFC summary-reader: 2/2 correct" in out.getvalue()


def test_it_shows_exposure_thresholds_and_findings_on_the_dashboard(client, admin_client):
    reader = UserFactory(username="glance")
    study = design_study(
        readers=[reader],
        real=["normal"] * 3,
        synthetic=["pneumonia"] * 3,
        design=Design.EXPOSURE,
        ask_finding=True,
        staircase_down=1,
    )
    client.force_login(reader)
    for slot in slots_of(study, reader):
        client.get(case_url(slot))
        client.post(case_url(slot), {"answer": "fake", "finding": "pneumonia", "achieved_ms": "9"})
    page = admin_client.get(f"/staff/studies/{study.public_id}/results/")
    assert page.status_code == 200
    text = page.content.decode()
    assert "HYPE-time" in text and "What finding do you see?" in text
    assert "Confusion: image finding" in text and text.count("<svg") >= 2
