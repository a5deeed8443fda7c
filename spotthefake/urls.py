from pathlib import Path

from django.contrib import admin
from django.contrib.auth.decorators import login_not_required
from django.http import FileResponse, HttpRequest, JsonResponse
from django.urls import include, path
from django.views.decorators.http import require_GET

from spotthefake import staff


@login_not_required
@require_GET
def healthz(request: HttpRequest) -> JsonResponse:
    return JsonResponse({"ok": True})


FAVICON = Path(__file__).resolve().parent.parent / "static" / "favicon.png"


@login_not_required
@require_GET
def favicon(request: HttpRequest) -> FileResponse:
    # Browsers ask for /favicon.ico wherever a page names no icon (an error page, a PNG);
    # the pages themselves link the static one. PNG bytes under .ico are fine for browsers.
    response = FileResponse(FAVICON.open("rb"), content_type="image/png")
    response["Cache-Control"] = "public, max-age=86400"
    return response


admin.site.site_header = "Spot the fake — research admin"
admin.site.site_title = "Spot the fake"
admin.site.index_title = "Studies, images and generators"

urlpatterns = [
    path("", include("access.urls")),
    path("admin/", admin.site.urls),
    path("healthz", healthz, name="healthz"),
    path("favicon.ico", favicon, name="favicon"),
    path("staff/", staff.home, name="staff-home"),
    path("staff/generation/", include("generation.urls")),
    path("", include("pool.urls")),
    path("", include("readerstudy.urls")),
]
