"""Opening a study with no synthetic or no real cases needs an explicit confirmation."""

import pytest

from readerstudy.models import StudyStatus
from readerstudy.services import studies
from readerstudy.services.studies import (
    OpenNeedsConfirmation,
    open_study,
    open_warnings,
    register_open_warning,
)

pytestmark = pytest.mark.django_db


@pytest.fixture
def admin_client(client, staff):
    client.force_login(staff)
    return client


def status_of(study) -> str:
    study.refresh_from_db()
    return study.status


def test_it_warns_about_a_study_without_synthetic_cases(build_study, reader):
    study = build_study(readers=[reader], n_real=4, n_synthetic=0, open=False)
    [warning] = open_warnings(study)
    assert "no synthetic cases (and 4 real)" in warning


def test_it_warns_about_a_study_without_real_cases(build_study, reader):
    study = build_study(readers=[reader], n_real=0, n_synthetic=3, open=False)
    [warning] = open_warnings(study)
    assert "no real cases (and 3 synthetic)" in warning


def test_it_counts_only_regular_cases(build_study, reader):
    study = build_study(readers=[reader], n_real=2, n_synthetic=0, n_practice=2, open=False)
    assert open_warnings(study) != []


def test_it_has_nothing_to_ask_of_a_study_with_both(build_study, reader):
    study = build_study(readers=[reader], n_real=2, n_synthetic=2, open=False)
    assert open_warnings(study) == []
    assert open_study(study, ask_confirmation=True) == 1
    assert status_of(study) == StudyStatus.OPEN


def test_it_refuses_to_open_a_one_sided_study_until_confirmed(build_study, reader):
    study = build_study(readers=[reader], n_real=3, n_synthetic=0, open=False)
    with pytest.raises(OpenNeedsConfirmation) as question:
        open_study(study, ask_confirmation=True)
    assert "Confirm to open it anyway" in question.value.message
    assert status_of(study) == StudyStatus.DRAFT and not study.has_drawn_orders()
    open_study(study)  # confirmed (and what callers without a person to ask do)
    assert status_of(study) == StudyStatus.OPEN


def test_it_reopens_a_closed_study_without_asking_again(build_study, reader):
    study = build_study(readers=[reader], n_real=3, n_synthetic=0, open=False)
    open_study(study)
    studies.close_study(study)
    open_study(study, ask_confirmation=True)
    assert status_of(study) == StudyStatus.OPEN


def test_it_asks_the_hard_refusals_first(build_study):
    study = build_study(readers=[], n_real=3, n_synthetic=0, open=False)
    with pytest.raises(studies.StudyRefused, match="no readers") as refusal:
        open_study(study, ask_confirmation=True)
    assert not isinstance(refusal.value, OpenNeedsConfirmation)


def test_it_asks_about_warnings_another_app_registers(build_study, reader):
    def too_few(study):
        return "Fewer than 10 cases." if study.cases.count() < 10 else None

    register_open_warning(too_few)
    register_open_warning(too_few)  # registering again changes nothing
    try:
        study = build_study(readers=[reader], n_real=2, n_synthetic=2, open=False)
        assert open_warnings(study) == ["Fewer than 10 cases."]
    finally:
        studies._open_warnings.remove(too_few)
    assert too_few not in studies._open_warnings


def test_it_shows_the_warning_and_a_confirm_step_on_the_open_button(
    admin_client, build_study, reader
):
    study = build_study(readers=[reader], n_real=3, n_synthetic=0, open=False)
    url = f"/admin/readerstudy/study/{study.pk}/open/"
    page = admin_client.post(url)
    assert page.status_code == 200
    text = page.content.decode()
    assert "no synthetic cases" in text and 'name="confirm" value="yes"' in text
    assert f'action="{url}"' in text
    assert status_of(study) == StudyStatus.DRAFT
    done = admin_client.post(url, {"confirm": "yes"})
    assert done.status_code == 302
    assert status_of(study) == StudyStatus.OPEN


def test_it_opens_a_balanced_study_from_the_button_at_once(admin_client, build_study, reader):
    study = build_study(readers=[reader], open=False)
    response = admin_client.post(f"/admin/readerstudy/study/{study.pk}/open/")
    assert response.status_code == 302
    assert status_of(study) == StudyStatus.OPEN


def test_it_asks_in_the_list_action_only_for_the_one_sided_studies(
    admin_client, build_study, reader
):
    balanced = build_study(readers=[reader], open=False)
    one_sided = build_study(readers=[reader], n_real=0, n_synthetic=2, open=False)
    selected = {"action": "open_selected", "_selected_action": [balanced.pk, one_sided.pk]}
    page = admin_client.post("/admin/readerstudy/study/", selected)
    assert page.status_code == 200
    assert "no real cases" in page.content.decode()
    assert (status_of(balanced), status_of(one_sided)) == (StudyStatus.OPEN, StudyStatus.DRAFT)
    confirmed = {**selected, "_selected_action": [one_sided.pk], "confirm": "yes"}
    assert admin_client.post("/admin/readerstudy/study/", confirmed).status_code == 302
    assert status_of(one_sided) == StudyStatus.OPEN
