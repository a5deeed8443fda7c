"""The admin's upload page for a handful of files."""

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client

from pool.models import Image
from tests.pool.conftest import jpeg_bytes, png_bytes

pytestmark = pytest.mark.django_db


def test_it_imports_uploaded_files_and_reports_each(client, staff):
    client.force_login(staff)
    files = [
        SimpleUploadedFile("one.png", png_bytes(1), "image/png"),
        SimpleUploadedFile("two.jpg", jpeg_bytes(2), "image/jpeg"),
        SimpleUploadedFile("bad.png", b"\x89PNG\r\n\x1a\n garbage", "image/png"),
        SimpleUploadedFile("again.png", png_bytes(1), "image/png"),
    ]
    response = client.post(
        "/staff/import/", {"files": files, "truth": "real", "finding": "normal", "source": "upload"}
    )
    assert response.status_code == 200
    rows = response.context["outcomes"]
    assert [(row.name, row.status) for row in rows] == [
        ("one.png", "imported"),
        ("two.jpg", "imported"),
        ("bad.png", "failed"),
        ("again.png", "duplicate"),
    ]
    assert Image.objects.filter(finding="normal", source="upload").count() == 2
    assert b"outcome-failed" in response.content


def test_it_links_the_upload_page_from_the_image_list(client, staff):
    client.force_login(staff)
    response = client.get("/admin/pool/image/")
    assert b'href="/staff/import/"' in response.content


def test_it_requires_at_least_one_file(client, staff):
    client.force_login(staff)
    response = client.post("/staff/import/", {"truth": "real"})
    assert response.status_code == 200
    assert response.context["form"].errors["files"]


def test_it_still_checks_the_csrf_token(staff):
    client = Client(enforce_csrf_checks=True)
    client.force_login(staff)
    upload = {"files": SimpleUploadedFile("one.png", png_bytes(1), "image/png"), "truth": "real"}
    assert client.post("/staff/import/", upload).status_code == 403
    assert Image.objects.count() == 0
    page = client.get("/staff/import/")
    token = page.context["csrf_token"]
    upload = {**upload, "files": SimpleUploadedFile("one.png", png_bytes(1), "image/png")}
    response = client.post("/staff/import/", {**upload, "csrfmiddlewaretoken": str(token)})
    assert response.status_code == 200
    assert Image.objects.count() == 1
