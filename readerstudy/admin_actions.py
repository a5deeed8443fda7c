"""Admin list actions on studies (registered by `readerstudy/admin.py`)."""

from __future__ import annotations

from django.contrib import admin
from django.http import HttpRequest, StreamingHttpResponse

from readerstudy import exports


@admin.action(description="Export readings as CSV (several studies: a zip of one CSV each)")
def export_readings_csv(modeladmin, request: HttpRequest, queryset) -> StreamingHttpResponse:
    """One study: its `readings` table as a streamed CSV. Several: a streamed zip holding one
    `study-<public id>-readings.csv` per study. Memory stays flat at any size."""
    studies = list(queryset.order_by("pk"))
    if len(studies) == 1:
        study = studies[0]
        response = StreamingHttpResponse(
            exports.stream_csv(exports.table_rows("readings", study)),
            content_type="text/csv; charset=utf-8",
        )
        response["Content-Disposition"] = (
            f'attachment; filename="{exports.csv_filename(study, "readings")}"'
        )
        return response
    members = (
        (exports.csv_filename(study, "readings"), exports.table_rows("readings", study))
        for study in studies
    )
    response = StreamingHttpResponse(exports.stream_zip(members), content_type="application/zip")
    response["Content-Disposition"] = f'attachment; filename="readings-{len(studies)}-studies.zip"'
    return response
