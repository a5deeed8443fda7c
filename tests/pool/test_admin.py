"""The image pool in the admin: browse and relabel, never add, and keep a used image's truth."""

import pytest

from pool.models import Truth
from tests.factories import ImageFactory, StudyCaseFactory

pytestmark = pytest.mark.django_db


def change_page(admin_client, image) -> str:
    return admin_client.get(f"/admin/pool/image/{image.pk}/change/").content.decode()


def test_it_lists_images_with_their_display_thumbnails(admin_client):
    image = ImageFactory(truth=Truth.SYNTHETIC)
    page = admin_client.get("/admin/pool/image/?truth__exact=synthetic").content.decode()
    assert f"/staff/images/{image.public_id}/display.png" in page


def test_it_lets_staff_relabel_an_image_no_other_app_uses(admin_client):
    page = change_page(admin_client, ImageFactory())
    assert 'name="truth"' in page and 'name="modality"' in page


def test_it_freezes_the_truth_of_an_image_a_study_uses(admin_client):
    case = StudyCaseFactory()
    page = change_page(admin_client, case.image)
    assert 'name="truth"' not in page and 'name="modality"' not in page
    assert 'name="finding"' in page


def test_it_adds_images_only_through_the_importer(admin_client):
    assert admin_client.get("/admin/pool/image/add/").status_code == 403
