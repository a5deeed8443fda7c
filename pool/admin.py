"""The image pool in the admin: browse, relabel and preview; images enter through the importer."""

from django.contrib import admin
from django.urls import reverse
from django.utils.html import format_html

from pool.models import Image


def thumbnail(image: Image | None, size: int = 64) -> str:
    if image is None or not image.public_id:
        return "—"
    url = reverse("staff-image-display", args=[image.public_id])
    return format_html(
        '<img src="{}" width="{}" height="{}" alt="" loading="lazy">', url, size, size
    )

@admin.register(Image)
class ImageAdmin(admin.ModelAdmin):
    list_display = ["preview", "public_id", "truth", "modality", "finding", "source", "created_at"]
    list_filter = ["truth", "modality", "finding", "source"]
    search_fields = ["public_id", "sha256", "source", "finding"]
    readonly_fields = [
        "preview_large",
        "public_id",
        "sha256",
        "frame_index",
        "original",
        "original_format",
        "original_width",
        "original_height",
        "display",
        "provenance",
        "created_at",
        "updated_at",
    ]
    fields = ["preview_large", "truth", "modality", "finding", "source", *readonly_fields[1:]]

    @admin.display(description="Image")
    def preview(self, image: Image) -> str:
        return thumbnail(image)

    def get_readonly_fields(self, request, obj=None):
        fields = list(self.readonly_fields)
        if obj is not None and obj.is_referenced():
            fields += ["truth", "modality"]  # would silently change a study's or a job's truth
        return fields

    def has_add_permission(self, request):
        return False  # images enter the pool through the import page and command

    @admin.display(description="Display derivative")
    def preview_large(self, image: Image) -> str:
        return thumbnail(image, 256)
