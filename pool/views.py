"""The pool's pages for researchers (staff): an image's display derivative and the import page."""

from django.conf import settings
from django.contrib import admin
from django.contrib.admin.views.decorators import staff_member_required
from django.http import FileResponse, HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, render
from django.views.decorators.csrf import csrf_exempt, csrf_protect
from django.views.decorators.http import require_GET, require_http_methods

from access import roles
from pool import findings, uploads
from pool.forms import ImageUploadForm
from pool.importing import FAILED, ImportOutcome, import_upload, over_size_limit
from pool.models import Image


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


# csrf_exempt only to reach the body before the CSRF check does: the size checks and the upload
# handler must come first. The page itself is csrf_protect'ed below.
@csrf_exempt
@require_http_methods(["GET", "POST"])
@staff_member_required
def import_images(request: HttpRequest) -> HttpResponse:
    roles.require(request, roles.IMPORT_IMAGES)
    if request.method != "POST":
        return _import_page(request, outcomes=[])
    if uploads.request_too_large(request):
        return _upload_refused(request)
    handler = uploads.install(request)
    return _import_posted(request, handler)


@csrf_protect
def _import_posted(request: HttpRequest, handler: uploads.SizeLimitedUploadHandler) -> HttpResponse:
    form = ImageUploadForm(request.POST, request.FILES)
    if handler.stopped:
        return _upload_refused(request)
    outcomes = [ImportOutcome(name, FAILED, over_size_limit()) for name in handler.refused]
    if form.is_valid():
        labels = form.labels()
        outcomes += [import_upload(upload, labels=labels) for upload in form.cleaned_data["files"]]
        form = ImageUploadForm(initial=form.cleaned_data | {"files": None})
    return _import_page(request, form=form, outcomes=outcomes)


def _upload_refused(request: HttpRequest) -> HttpResponse:
    limit = settings.IMAGE_UPLOAD_MAX_BYTES / 2**20
    error = (
        f"The upload is over the {limit:.3g} MiB limit (IMAGE_UPLOAD_MAX_BYTES) and was refused "
        f"before it was read; upload fewer files at a time, or use the import_images command."
    )
    return _import_page(request, outcomes=[], error=error, status=413)


def _import_page(
    request: HttpRequest,
    *,
    outcomes: list[ImportOutcome],
    form: ImageUploadForm | None = None,
    error: str = "",
    status: int = 200,
) -> HttpResponse:
    context = {
        **admin.site.each_context(request),
        "title": "Import images",
        "form": form or ImageUploadForm(),
        "outcomes": outcomes,
        "error": error,
        "finding_names": findings.findings_in_use(),
    }
    return render(request, "pool/import.html", context, status=status)
