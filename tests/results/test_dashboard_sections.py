"""Sections other apps add to the results dashboard (``readerstudy.extensions``)."""

import pytest

from evaluation.pages import latest_machine_observer
from readerstudy import extensions
from tests.results.world import finished_study

pytestmark = pytest.mark.django_db


def test_it_has_the_evaluation_apps_machine_observer_registered():
    assert extensions._dashboard_sections["machine"] is latest_machine_observer


def test_it_puts_every_registered_section_into_the_dashboard(staff_client, monkeypatch):
    study = finished_study({"alice": [("real", 4), ("fake", 5)]}, ["real", "synthetic"])
    seen = []

    def section(study):
        seen.append(study.pk)
        return f"section of {study.public_id}"

    monkeypatch.setitem(extensions._dashboard_sections, "extra_section", section)
    response = staff_client.get(f"/staff/studies/{study.public_id}/results/")

    assert response.status_code == 200
    assert response.context["extra_section"] == f"section of {study.public_id}"
    assert seen == [study.pk]
    assert "machine" in response.context and response.context["machine"] is None
