"""Pages and files for researchers (staff). Readers never reach these."""

from django.contrib import admin
from django.contrib.admin.views.decorators import staff_member_required
from django.http import FileResponse, HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, render
from django.views.decorators.http import require_GET, require_http_methods

from access import roles
from readerstudy.importing import import_bytes
from readerstudy.models import Image
from readerstudy.staff_forms import ImageUploadForm


def _get_image_for_staff(request: HttpRequest, public_id: str) -> Image:
    roles.require(request, roles.VIEW_IMAGES)
    return get_object_or_404(Image, public_id=public_id)


@require_GET
@staff_member_required
def image_display(request: HttpRequest, public_id: str) -> FileResponse:
    image = _get_image_for_staff(request, public_id)
    response = FileResponse(image.display.open("rb"), content_type="image/png")
    response["Cache-Control"] = "private, max-age=3600"
    return response


@require_http_methods(["GET", "POST"])
@staff_member_required
def import_images(request: HttpRequest) -> HttpResponse:
    roles.require(request, roles.IMPORT_IMAGES)
    outcomes = []
    form = ImageUploadForm(request.POST or None, request.FILES or None)
    if request.method == "POST" and form.is_valid():
        labels = form.labels()
        for upload in form.cleaned_data["files"]:
            outcomes.append(import_bytes(upload.read(), name=upload.name, labels=labels))
        form = ImageUploadForm(initial=form.cleaned_data | {"files": None})
    context = {
        **admin.site.each_context(request),
        "title": "Import images",
        "form": form,
        "outcomes": outcomes,
    }
    return render(request, "readerstudy/staff/import.html", context)
