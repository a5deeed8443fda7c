"""The researcher role: a group with every permission of the researchers' apps, nothing else."""

import io

import pytest
from django.contrib.auth.models import Group
from django.core.files.uploadedfile import SimpleUploadedFile
from django.core.management import call_command

from access.roles import sync_researcher_group
from pool.models import Image
from tests.factories import BareStaffFactory, ResearcherFactory, UserFactory, image_pixels

pytestmark = pytest.mark.django_db


def test_it_creates_the_group_with_the_researchers_permissions_at_migrate(settings):
    group = Group.objects.get(name=settings.RESEARCHER_GROUP)  # made by the test database's migrate
    labels = set(group.permissions.values_list("content_type__app_label", flat=True))
    assert labels == {"pool", "readerstudy", "generation", "evaluation"}
    codenames = set(group.permissions.values_list("codename", flat=True))
    assert {"view_study", "change_study", "add_image", "add_generationjob"} <= codenames
    assert not {"add_user", "change_user", "delete_accessattempt"} & codenames


def test_it_makes_an_account_a_researcher_from_the_command_line():
    user = UserFactory()
    out = io.StringIO()
    call_command("make_researcher", user.username, stdout=out)
    user.refresh_from_db()
    assert user.is_staff and not user.is_superuser
    assert user.has_perm("readerstudy.view_study")
    assert f"{user.username} is a researcher" in out.getvalue()


def test_it_is_idempotent():
    first, second = sync_researcher_group(), sync_researcher_group()
    assert first.pk == second.pk
    assert first.permissions.count() == second.permissions.count()


def png_upload() -> SimpleUploadedFile:
    from pool.imaging import make_display_png

    return SimpleUploadedFile("scan.png", make_display_png(image_pixels(7), 64), "image/png")


def upload(client):
    return client.post(
        "/staff/import/",
        {"files": [png_upload()], "truth": "synthetic", "modality": "CXR", "finding": "normal"},
    )


def test_it_refuses_an_import_by_staff_without_the_role(client):
    client.force_login(BareStaffFactory())
    assert upload(client).status_code == 403
    assert not Image.objects.exists()


def test_it_lets_a_researcher_import(client):
    client.force_login(ResearcherFactory())
    response = upload(client)
    assert response.status_code == 200
    assert Image.objects.count() == 1, response.content.decode()[:2000]
