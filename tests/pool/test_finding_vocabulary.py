"""Findings come from a managed vocabulary: one spelling per finding, synonyms merged at
import (command, staff page, anything storing through the pool), renamed and merged in the
admin with the images following."""

import io

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.core.management import call_command
from django.db import IntegrityError, transaction

from pool import findings
from pool.importing import ImportLabels, import_bytes
from pool.models import Finding, FindingSynonym, Image, Truth
from readerstudy.services.studies import CaseRule, add_cases_by_rule
from tests.factories import StudyFactory
from tests.pool.conftest import png_bytes

pytestmark = pytest.mark.django_db


def imported(seed: int, finding: str, truth: str = Truth.REAL) -> Image:
    outcome = import_bytes(
        png_bytes(seed), name=f"{seed}.png", labels=ImportLabels(truth=truth, finding=finding)
    )
    assert outcome.status == "imported", outcome.line()
    return outcome.images[0]


def test_it_merges_spellings_that_differ_only_in_case_and_spaces_at_import():
    first = imported(1, "Pneumonia")
    second = imported(2, "  pneumonia ")
    third = imported(3, "PNEUMONIA")
    assert {first.finding, second.finding, third.finding} == {"Pneumonia"}
    assert list(Finding.objects.values_list("name", flat=True)) == ["Pneumonia"]


def test_it_gives_an_import_saying_a_synonym_the_findings_name():
    finding = Finding.objects.create(name="Pneumonia")
    FindingSynonym.objects.create(finding=finding, name="lung infection")
    assert imported(1, "Lung  Infection").finding == "Pneumonia"
    assert Finding.objects.count() == 1


def test_it_keeps_no_finding_as_none():
    assert imported(1, "   ").finding == ""
    assert not Finding.objects.exists()


def test_it_refuses_a_second_entry_in_another_case():
    Finding.objects.create(name="Effusion")
    with pytest.raises(IntegrityError), transaction.atomic():
        Finding.objects.create(name="effusion")


def test_it_normalises_the_import_command_without_changing_its_options(tmp_path):
    folder = tmp_path / "in"
    folder.mkdir()
    (folder / "a.png").write_bytes(png_bytes(1))
    Finding.objects.create(name="Cardiomegaly")
    call_command(
        "import_images", str(folder), "--finding", "CARDIOMEGALY", "--source", "unit",
        "--no-progress", stdout=io.StringIO(),
    )
    assert Image.objects.get().finding == "Cardiomegaly"


def test_it_normalises_the_staff_import_page(client, staff):
    Finding.objects.create(name="Normal")
    client.force_login(staff)
    assert b'<option value="Normal">' in client.get("/staff/import/").content
    upload = SimpleUploadedFile("one.png", png_bytes(1), "image/png")
    response = client.post(
        "/staff/import/", {"files": [upload], "truth": "real", "finding": "normal "}
    )
    assert response.status_code == 200
    assert Image.objects.get().finding == "Normal"


def test_it_lets_a_rule_name_a_finding_by_a_synonym():
    finding = Finding.objects.create(name="Pneumonia")
    FindingSynonym.objects.create(finding=finding, name="consolidation")
    pneumonia = {imported(seed, "pneumonia").pk for seed in range(2)}
    imported(9, "normal")
    study = StudyFactory()
    add_cases_by_rule(study, CaseRule(n_real=2, n_synthetic=0, finding="Consolidation"))
    assert set(study.cases.values_list("image_id", flat=True)) == pneumonia


def test_it_merges_findings_with_their_images_and_synonyms():
    pneumonia = imported(1, "pneumonia")
    infection = imported(2, "lung infection")
    target = Finding.objects.get(name="pneumonia")
    other = Finding.objects.get(name="lung infection")
    FindingSynonym.objects.create(finding=other, name="infiltrate")
    assert findings.merge(target, [other]) == 1
    infection.refresh_from_db()
    pneumonia.refresh_from_db()
    assert (pneumonia.finding, infection.finding) == ("pneumonia", "pneumonia")
    assert sorted(target.synonyms.values_list("name", flat=True)) == ["infiltrate", "lung infection"]
    assert imported(3, "Infiltrate").finding == "pneumonia"


@pytest.fixture
def admin_client(client, staff):
    client.force_login(staff)
    return client


def test_it_merges_selected_findings_from_the_admin_after_asking_which_name_to_keep(admin_client):
    images = [imported(1, "Pleural effusion"), imported(2, "effusion")]
    keep = Finding.objects.get(name="Pleural effusion")
    drop = Finding.objects.get(name="effusion")
    selected = {"action": "merge_selected", "_selected_action": [keep.pk, drop.pk]}
    page = admin_client.post("/admin/pool/finding/", selected)
    assert page.status_code == 200 and b"Keep this name" in page.content
    assert Finding.objects.count() == 2
    done = admin_client.post("/admin/pool/finding/", {**selected, "target": keep.pk})
    assert done.status_code == 302
    assert list(Finding.objects.values_list("name", flat=True)) == ["Pleural effusion"]
    for image in images:
        image.refresh_from_db()
        assert image.finding == "Pleural effusion"


def test_it_renames_a_finding_in_the_admin_and_its_images_follow(admin_client):
    image = imported(1, "pneumonia")
    finding = Finding.objects.get()
    response = admin_client.post(
        f"/admin/pool/finding/{finding.pk}/change/",
        {
            "name": "Pneumonia (any)",
            "synonyms-TOTAL_FORMS": "0",
            "synonyms-INITIAL_FORMS": "0",
        },
    )
    assert response.status_code == 302
    image.refresh_from_db()
    assert image.finding == "Pneumonia (any)"
    assert list(finding.synonyms.values_list("name", flat=True)) == ["pneumonia"]


def test_it_refuses_a_synonym_that_is_a_finding_of_its_own(admin_client):
    imported(1, "pneumonia")
    imported(2, "infiltrate")
    finding = Finding.objects.get(name="pneumonia")
    response = admin_client.post(
        f"/admin/pool/finding/{finding.pk}/change/",
        {
            "name": "pneumonia",
            "synonyms-TOTAL_FORMS": "1",
            "synonyms-INITIAL_FORMS": "0",
            "synonyms-0-name": "Infiltrate",
            "synonyms-0-finding": str(finding.pk),
        },
    )
    assert response.status_code == 200
    assert "a finding of its own: merge the two instead" in response.content.decode()
    assert not FindingSynonym.objects.exists()


def test_it_relabels_images_saying_a_synonym_added_in_the_admin(admin_client):
    image = imported(1, "opacity")
    imported(2, "pneumonia")
    finding = Finding.objects.get(name="pneumonia")
    Finding.objects.filter(name="opacity").delete()  # as if it had come around the vocabulary
    response = admin_client.post(
        f"/admin/pool/finding/{finding.pk}/change/",
        {
            "name": "pneumonia",
            "synonyms-TOTAL_FORMS": "1",
            "synonyms-INITIAL_FORMS": "0",
            "synonyms-0-name": " Opacity ",
            "synonyms-0-finding": str(finding.pk),
        },
    )
    assert response.status_code == 302
    assert list(finding.synonyms.values_list("name", flat=True)) == ["Opacity"]
    image.refresh_from_db()
    assert image.finding == "pneumonia"


def test_it_lists_the_vocabulary_with_synonyms_and_image_counts(admin_client):
    imported(1, "pneumonia")
    imported(2, "Pneumonia")
    imported(3, "normal")
    FindingSynonym.objects.create(finding=Finding.objects.get(name="pneumonia"), name="opacity")
    page = admin_client.get("/admin/pool/finding/")
    rows = {row.name: (row.n_images, row.synonyms.count()) for row in page.context["cl"].result_list}
    assert rows == {"normal": (1, 0), "pneumonia": (2, 1)}


def test_it_relabels_an_image_edited_in_the_admin_through_the_vocabulary(admin_client):
    Finding.objects.create(name="Normal")
    image = imported(1, "")
    response = admin_client.post(
        f"/admin/pool/image/{image.pk}/change/",
        {"truth": "real", "modality": "CXR", "finding": "NORMAL", "source": ""},
    )
    assert response.status_code == 302
    image.refresh_from_db()
    assert image.finding == "Normal"
