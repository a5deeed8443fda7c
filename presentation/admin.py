"""The presentation profile in the admin, on its own page (Presentation → presentation profiles).

Not an inline of the study page: a study without a profile row uses the defaults, created on
first use, and the study's own form stays as it is."""

from django.contrib import admin

from presentation.models import PresentationProfile

FIELDSETS = (
    ("Display", {"fields": ("display_size", "aspect")}),
    (
        "Matched source resolution",
        {"fields": ("source_resolution_mode", "source_resolution")},
    ),
    (
        "Harmonisation (applied identically to every case)",
        {"fields": ("border_crop_percent", "standardise_intensity", "percentile_low",
                    "percentile_high")},
    ),
    (
        "CT (Hounsfield units)",
        {"fields": ("ct_window", "ct_window_centre", "ct_window_width", "ct_presets_for_readers")},
    ),
    ("Reading", {"fields": ("min_viewing_seconds",)}),
    ("Frozen with the drawn orders", {"fields": ("frozen_at", "frozen_key", "frozen_params")}),
)
READONLY = ("frozen_at", "frozen_key", "frozen_params")
EDITABLE = tuple(
    name for _title, options in FIELDSETS for name in options["fields"] if name not in READONLY
)


@admin.register(PresentationProfile)
class PresentationProfileAdmin(admin.ModelAdmin):
    list_display = ("study", "display_size", "aspect", "source_resolution_mode", "ct_window",
                    "frozen_at")
    fieldsets = ((None, {"fields": ("study",)}), *FIELDSETS)
    readonly_fields = READONLY

    def get_readonly_fields(self, request, obj=None):
        if obj is not None and obj.is_frozen:
            return ("study", *READONLY, *EDITABLE)
        return READONLY
