"""Stored evaluations: feature extractors, quality evaluations of synthetic sets, blinding audits.

The figures themselves come from ``evaluation.metrics`` (no Django); these rows keep their
``to_jsonable`` output with what was evaluated, so a page or an export never recomputes them.
"""

from django.conf import settings
from django.db import models


class EvaluationStatus(models.TextChoices):
    QUEUED = "queued", "Queued"
    RUNNING = "running", "Running"
    SUCCEEDED = "succeeded", "Succeeded"
    FAILED = "failed", "Failed"


class FeatureExtractorVersion(models.Model):
    """A feature extractor trained here; its folder is MODEL_ROOT/feature-extractors/<version>."""

    version = models.CharField(max_length=120, unique=True)
    folder = models.CharField(max_length=500, help_text="Relative to MODEL_ROOT.")
    sha256 = models.CharField(max_length=64, help_text="SHA-256 of the weights file.")
    trained_on_count = models.PositiveIntegerField(help_text="Real pool images it was trained on.")
    trained_on_hash = models.CharField(
        max_length=64, help_text="SHA-256 of the sorted ids of those images."
    )
    trained_on_ids = models.JSONField(default=list, blank=True)
    config = models.JSONField(default=dict, blank=True, help_text="Training settings.")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-created_at", "-id"]

    def __str__(self) -> str:
        return f"{self.version} ({self.sha256[:12]})"

    @property
    def path(self):
        return settings.MODEL_ROOT / self.folder


class QualityEvaluation(models.Model):
    """Fidelity, memorization and machine observer of one synthetic set against real images."""

    generation_job = models.ForeignKey(
        "generation.GenerationJob",
        null=True,
        blank=True,
        on_delete=models.CASCADE,
        related_name="quality_evaluations",
    )
    generator = models.ForeignKey(
        "generation.GeneratorModel",
        null=True,
        blank=True,
        on_delete=models.CASCADE,
        related_name="quality_evaluations",
    )
    study = models.ForeignKey(
        "readerstudy.Study",
        null=True,
        blank=True,
        on_delete=models.CASCADE,
        related_name="quality_evaluations",
    )
    extractor = models.ForeignKey(
        FeatureExtractorVersion, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    real_filter = models.CharField(max_length=300, blank=True)
    status = models.CharField(
        max_length=10, choices=EvaluationStatus.choices, default=EvaluationStatus.QUEUED
    )
    report = models.JSONField(default=dict, blank=True)
    flagged_count = models.PositiveIntegerField(default=0)
    n_synthetic = models.PositiveIntegerField(default=0)
    n_real = models.PositiveIntegerField(default=0)
    error = models.TextField(blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]

    def __str__(self) -> str:
        subject = self.generation_job or self.generator or self.study
        return f"quality of {subject} #{self.pk}"


class BlindingAudit(models.Model):
    """What a reader's browser receives for each case of a study, cue by cue."""

    study = models.ForeignKey(
        "readerstudy.Study", on_delete=models.CASCADE, related_name="blinding_audits"
    )
    status = models.CharField(
        max_length=10, choices=EvaluationStatus.choices, default=EvaluationStatus.RUNNING
    )
    report = models.JSONField(default=dict, blank=True)
    blocking = models.JSONField(
        default=list, blank=True, help_text="[{name, auc, direction}] of the cues above threshold."
    )
    threshold = models.FloatField(default=0.65)
    cases_signature = models.CharField(
        max_length=64, help_text="SHA-256 of the audited cases: a different one means stale."
    )
    computed_at = models.DateTimeField(auto_now_add=True)
    error = models.TextField(blank=True)
    acknowledged_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    acknowledged_at = models.DateTimeField(null=True, blank=True)
    acknowledgement_note = models.TextField(blank=True)

    class Meta:
        ordering = ["-computed_at", "-id"]

    def __str__(self) -> str:
        return f"blinding audit of {self.study} #{self.pk}"

    @property
    def is_acknowledged(self) -> bool:
        return self.acknowledged_at is not None


class AuditAcknowledgement(models.Model):
    """One researcher's acceptance of an audit's blocking cues; kept as long as the audit."""

    audit = models.ForeignKey(
        BlindingAudit, on_delete=models.CASCADE, related_name="acknowledgements"
    )
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+"
    )
    acknowledged_at = models.DateTimeField(auto_now_add=True)
    note = models.TextField()
    blocking = models.JSONField(default=list, help_text="The blocking cues it answered.")

    class Meta:
        ordering = ["audit_id", "acknowledged_at", "id"]

    def __str__(self) -> str:
        return f"acknowledgement of audit {self.audit_id} by {self.user}"
