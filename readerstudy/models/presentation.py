"""How a study presents its images: one profile per study, and the cached derivatives."""

from __future__ import annotations

import secrets

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models

from pool.imaging.pipeline import CROP, CT_WINDOWS, LETTERBOX


def default_display_size() -> int:
    # The server-wide setting is only the default of a new study's profile.
    return int(settings.IMAGE_DISPLAY_SIZE)


class Aspect(models.TextChoices):
    LETTERBOX = LETTERBOX, "Letterbox (pad, never crop)"
    CROP = CROP, "Centre crop to a square"


class SourceResolution(models.TextChoices):
    NATIVE = "native", "Native: each image at its own resolution"
    LOWEST = "lowest", "Matched: the lowest native resolution among the study's cases"
    FIXED = "fixed", "Matched: the resolution given below"


class CtWindow(models.TextChoices):
    LUNG = "lung", "Lung (-600 / 1500)"
    MEDIASTINUM = "mediastinum", "Mediastinum (40 / 400)"
    BONE = "bone", "Bone (400 / 1800)"
    BRAIN = "brain", "Brain (40 / 80)"
    CUSTOM = "custom", "Custom (centre / width below)"


class PresentationProfile(models.Model):
    """The one processing chain of a study; frozen with the cases once an order is drawn."""

    study = models.OneToOneField(
        "Study", on_delete=models.CASCADE, related_name="presentation"
    )
    display_size = models.PositiveIntegerField(
        default=default_display_size,
        validators=[MinValueValidator(64), MaxValueValidator(4096)],
        help_text="Pixels on the long side of the square image readers receive (512, 1024, 2048).",
    )
    aspect = models.CharField(max_length=10, choices=Aspect.choices, default=Aspect.LETTERBOX)
    source_resolution_mode = models.CharField(
        max_length=10, choices=SourceResolution.choices, default=SourceResolution.NATIVE,
        help_text="Matched: every image is first brought to one effective resolution, so real "
        "images carry no more detail than the coarsest synthetic ones.",
    )
    source_resolution = models.PositiveIntegerField(
        null=True, blank=True, validators=[MinValueValidator(16)],
        help_text="Pixels across the image for 'Matched: the resolution given below'.",
    )
    border_crop_percent = models.FloatField(
        default=0.0, validators=[MinValueValidator(0.0), MaxValueValidator(20.0)],
        help_text="Percentage of each side removed first (burned-in markers live at the edges).",
    )
    standardise_intensity = models.BooleanField(
        default=False, help_text="Stretch each image's percentile range below to full scale."
    )
    percentile_low = models.FloatField(
        default=1.0, validators=[MinValueValidator(0.0), MaxValueValidator(49.0)]
    )
    percentile_high = models.FloatField(
        default=99.0, validators=[MinValueValidator(51.0), MaxValueValidator(100.0)]
    )
    ct_window = models.CharField(
        max_length=12, choices=CtWindow.choices, default=CtWindow.LUNG,
        help_text="Applied identically to every CT case, real or synthetic.",
    )
    ct_window_centre = models.FloatField(null=True, blank=True, help_text="HU, for Custom.")
    ct_window_width = models.FloatField(
        null=True, blank=True, validators=[MinValueValidator(1.0)], help_text="HU, for Custom."
    )
    ct_presets_for_readers = models.BooleanField(
        default=True,
        help_text="Readers may switch CT cases to the lung, mediastinum, bone and brain presets "
        "from the keyboard (L, M, B, N; W back to the study window).",
    )
    min_viewing_seconds = models.FloatField(
        default=0.0, validators=[MinValueValidator(0.0), MaxValueValidator(600.0)],
        help_text="Answers arriving sooner after the server first served the case are refused.",
    )
    frozen_key = models.CharField(max_length=64, blank=True, editable=False)
    frozen_params = models.JSONField(default=dict, blank=True, editable=False)
    frozen_at = models.DateTimeField(null=True, blank=True, editable=False)
    has_ct = models.BooleanField(
        default=False, editable=False, help_text="Set when frozen: the study has CT cases."
    )
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        verbose_name = "presentation profile"

    def __str__(self) -> str:
        return f"presentation of {self.study}"

    def save(self, *args, **kwargs) -> None:
        if self.pk is not None and "update_fields" not in kwargs:
            stored = PresentationProfile.objects.filter(pk=self.pk).values("frozen_at").first()
            if stored and stored["frozen_at"] is not None:
                raise ValidationError("The presentation of a study with drawn orders is frozen.")
        super().save(*args, **kwargs)

    @property
    def is_frozen(self) -> bool:
        return self.frozen_at is not None

    def window(self) -> tuple[float, float]:
        if self.ct_window == CtWindow.CUSTOM:
            return (float(self.ct_window_centre), float(self.ct_window_width))
        return CT_WINDOWS[self.ct_window]

    def clean(self) -> None:
        if self.pk is not None and self.is_frozen:
            raise ValidationError(
                "Readers' orders are drawn: the presentation is frozen with the cases. "
                "Create a new study to present the images differently."
            )
        if self.source_resolution_mode == SourceResolution.FIXED and not self.source_resolution:
            raise ValidationError({"source_resolution": "Give the resolution to match."})
        if self.ct_window == CtWindow.CUSTOM and (
            self.ct_window_centre is None or not self.ct_window_width
        ):
            raise ValidationError({"ct_window_width": "A custom window needs a centre and a width."})
        if self.percentile_low >= self.percentile_high:
            raise ValidationError({"percentile_high": "Must be above the low percentile."})


def derivative_upload_to(instance: Derivative, filename: str) -> str:
    # Random names: storage listings never line up with truth.
    token = secrets.token_hex(16)
    return f"derivatives/{token[:2]}/{token}.png"


class Derivative(models.Model):
    """One image as one profile presents it; built once, then served as it is."""

    image = models.ForeignKey(
        "pool.Image", on_delete=models.CASCADE, related_name="derivatives"
    )
    key = models.CharField(max_length=64, help_text="SHA-256 of the profile's parameters.")
    file = models.FileField(upload_to=derivative_upload_to, max_length=255)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["image", "key"], name="derivative_unique_profile")
        ]

    def __str__(self) -> str:
        return f"derivative {self.key[:12]} of {self.image_id}"
