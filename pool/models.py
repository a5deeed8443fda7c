"""The image pool: every image a study can show, real or synthetic."""

import secrets

from django.core.exceptions import ValidationError
from django.db import models
from django.db.models.functions import Lower


def tidy(text: str | None) -> str:
    """Surrounding and repeated whitespace removed: "  lung   opacity " -> "lung opacity"."""
    return " ".join((text or "").split())


def new_public_id() -> str:
    """Opaque, unguessable identifier: 128 random bits, URL-safe.

    Never starting with "-", so an id can be passed to a command as it is (not read as an option).
    """
    while True:
        value = secrets.token_urlsafe(16)
        if not value.startswith("-"):
            return value


def _random_name(prefix: str, extension: str) -> str:
    # Stored names are random so that neither storage listings nor logs line up with truth.
    token = secrets.token_hex(16)
    return f"{prefix}/{token[:2]}/{token}{extension}"


def original_upload_to(instance: "Image", filename: str) -> str:
    extension = filename[filename.rfind(".") :] if "." in filename else ""
    return _random_name("originals", extension.lower())


def display_upload_to(instance: "Image", filename: str) -> str:
    return _random_name("display", ".png")


class Truth(models.TextChoices):
    REAL = "real", "Real"
    SYNTHETIC = "synthetic", "Synthetic"


class Modality(models.TextChoices):
    CXR = "CXR", "Chest X-ray"
    CT = "CT", "CT slice"


class Image(models.Model):
    public_id = models.CharField(max_length=32, unique=True, default=new_public_id, editable=False)
    truth = models.CharField(max_length=10, choices=Truth.choices, db_index=True)
    modality = models.CharField(max_length=3, choices=Modality.choices, db_index=True)
    finding = models.CharField(max_length=100, blank=True, db_index=True)
    source = models.CharField(
        max_length=200, blank=True, db_index=True, help_text="Dataset or generator name."
    )
    sha256 = models.CharField(max_length=64, help_text="SHA-256 of the file as received.")
    frame_index = models.PositiveIntegerField(
        default=0, help_text="Frame or slice within a multi-frame file; 0 otherwise."
    )
    original = models.FileField(upload_to=original_upload_to, max_length=255)
    original_format = models.CharField(max_length=10)
    original_width = models.PositiveIntegerField()
    original_height = models.PositiveIntegerField()
    display = models.FileField(upload_to=display_upload_to, max_length=255)
    provenance = models.JSONField(default=dict, blank=True)
    # Where a generated image came from, as plain values the rule filters of the reader study
    # can use without knowing the generation app (which sets them when it stores an image).
    generator = models.CharField(
        max_length=100, blank=True, db_index=True, help_text="Generator model (generated images)."
    )
    checkpoint = models.CharField(
        max_length=255, blank=True, db_index=True, help_text="Generator weights (generated images)."
    )
    generation_job = models.PositiveIntegerField(
        null=True, blank=True, db_index=True, help_text="Generation job number (generated images)."
    )
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        # The table keeps the name it had when images lived in the reader-study app: moving the
        # model between apps then changes no table, only Django's idea of who owns it.
        db_table = "readerstudy_image"
        ordering = ["-created_at", "-id"]
        constraints = [
            models.UniqueConstraint(fields=["sha256", "frame_index"], name="image_unique_content")
        ]

    def __str__(self) -> str:
        label = f" {self.finding}" if self.finding else ""
        return f"{self.get_truth_display()} {self.modality}{label} ({self.public_id[:8]})"

    def is_referenced(self) -> bool:
        """Whether a row of another app points at this image (a study case, a generated slot).

        Asked through Django's relation registry, so the pool knows none of the apps above it.
        """
        return any(
            relation.related_model._default_manager.filter(**{relation.field.name: self}).exists()
            for relation in self._meta.related_objects
        )


class Finding(models.Model):
    """One entry of the managed finding vocabulary: images carry its canonical ``name``.

    Names and synonyms are unique without regard to case, so "Pneumonia" and "pneumonia" are
    one finding; ``pool.findings`` maps what an import or a generator says to the entry.
    """

    name = models.CharField(max_length=100, help_text="The canonical spelling images carry.")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = [Lower("name")]
        constraints = [
            models.UniqueConstraint(
                Lower("name"),
                name="finding_unique_name_ci",
                violation_error_message="A finding of this name (in any case) already exists.",
            )
        ]

    def __str__(self) -> str:
        return self.name

    def clean(self) -> None:
        self.name = tidy(self.name)
        clash = FindingSynonym.objects.filter(name__iexact=self.name)
        if self.pk is not None:
            clash = clash.exclude(finding=self)
        owner = clash.select_related("finding").first()
        if owner is not None:
            raise ValidationError(
                {"name": f"“{self.name}” is a synonym of “{owner.finding}”: merge instead."}
            )


class FindingSynonym(models.Model):
    """Another spelling or name of a finding; imports saying it get the finding's name."""

    finding = models.ForeignKey(Finding, on_delete=models.CASCADE, related_name="synonyms")
    name = models.CharField(max_length=100)

    class Meta:
        ordering = [Lower("name")]
        constraints = [
            models.UniqueConstraint(
                Lower("name"),
                name="finding_synonym_unique_name_ci",
                violation_error_message="This synonym (in any case) is already given.",
            )
        ]

    def __str__(self) -> str:
        return self.name

    def clean(self) -> None:
        self.name = tidy(self.name)
        same = Finding.objects.filter(name__iexact=self.name).first()
        if same is not None and same.pk == self.finding_id:
            raise ValidationError({"name": f"“{self.name}” is already the finding's name."})
        if same is not None:
            raise ValidationError(
                {"name": f"“{self.name}” is a finding of its own: merge the two instead."}
            )
