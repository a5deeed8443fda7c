"""Generators, their training runs and generation jobs; the images they made are pool images."""

import secrets

from django.conf import settings
from django.db import models

from pool.models import Image, Modality
from readerstudy.models import Study


class GeneratorKind(models.TextChoices):
    DDPM = "ddpm", "Pixel diffusion from scratch (class-conditional)"
    STABLE_DIFFUSION = "stable-diffusion", "Stable Diffusion from a local folder (LoRA fine-tuning)"
    IMAGE_API = "image-api", "Hosted text-to-image API"


class JobStatus(models.TextChoices):
    QUEUED = "queued", "Queued"
    RUNNING = "running", "Running"
    SUCCEEDED = "succeeded", "Succeeded"
    FAILED = "failed", "Failed"
    CANCELLED = "cancelled", "Cancelled"


FINISHED = (JobStatus.SUCCEEDED, JobStatus.FAILED, JobStatus.CANCELLED)


class Scheduler(models.TextChoices):
    DDIM = "ddim", "DDIM"
    DPM_PLUS_PLUS = "dpm++", "DPM-Solver++ (multistep)"
    EULER = "euler", "Euler"


def sample_grid_upload_to(instance: "GeneratorModel", filename: str) -> str:
    return f"generators/{instance.name}/samples-{secrets.token_hex(4)}.png"


class GeneratorModel(models.Model):
    name = models.SlugField(max_length=100, unique=True)
    kind = models.CharField(max_length=20, choices=GeneratorKind.choices)
    modality = models.CharField(max_length=3, choices=Modality.choices, default=Modality.CXR)
    findings = models.JSONField(default=list, blank=True, help_text="Class labels, in order.")
    resolution = models.PositiveIntegerField(default=64)
    base_checkpoint = models.CharField(
        max_length=500, blank=True, help_text="Stable Diffusion: a local diffusers folder."
    )
    config = models.JSONField(default=dict, blank=True)
    # Filled in by training runs (the worker), so that any web server can show them without
    # seeing the worker's disk.
    trained_steps = models.PositiveIntegerField(
        default=0, help_text="Step of the latest checkpoint."
    )
    checkpoints = models.JSONField(
        default=list,
        blank=True,
        help_text="[{step, path, weights_sha256, saved_at}], oldest first.",
    )
    loss_curve = models.JSONField(
        default=list, blank=True, help_text="[[step, loss], ...] as logged during training."
    )
    sample_grid = models.FileField(
        upload_to=sample_grid_upload_to,
        max_length=255,
        blank=True,
        help_text="Sample grid of the latest checkpoint (rows: findings).",
    )
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name

    @property
    def trainable(self) -> bool:
        from generation.backends import backend_for

        return backend_for(self.kind).trainable

    @property
    def folder(self):
        return settings.MODEL_ROOT / self.name

    def has_training_runs(self) -> bool:
        """Whether any training run was made for this model (read from `trained`, when a list
        annotated it, instead of a query per model)."""
        annotated = getattr(self, "trained", None)
        if annotated is not None:
            return bool(annotated)
        return TrainingRun.objects.filter(generator=self).exists()


class JobBase(models.Model):
    status = models.CharField(
        max_length=10, choices=JobStatus.choices, default=JobStatus.QUEUED, db_index=True
    )
    cancel_requested = models.BooleanField(default=False)
    worker = models.CharField(max_length=200, blank=True)
    device = models.CharField(max_length=100, blank=True)
    log_tail = models.TextField(blank=True)
    error = models.TextField(blank=True)
    attempts = models.PositiveIntegerField(default=0)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    heartbeat_at = models.DateTimeField(null=True, blank=True)
    # The Celery task (or command) that holds the job while it runs; a redelivered message has
    # the same id, a duplicate message another one.
    task_id = models.CharField(max_length=100, blank=True)
    attempt_started_at = models.DateTimeField(null=True, blank=True)
    attempt_start_done = models.PositiveIntegerField(
        default=0, help_text="Steps or images already done when the current attempt started."
    )

    class Meta:
        abstract = True
        ordering = ["-created_at", "-id"]

    @property
    def is_finished(self) -> bool:
        return self.status in FINISHED


class TrainingRun(JobBase):
    generator = models.ForeignKey(GeneratorModel, on_delete=models.CASCADE, related_name="runs")
    total_steps = models.PositiveIntegerField()
    step = models.PositiveIntegerField(default=0)
    latest_loss = models.FloatField(null=True, blank=True)
    params = models.JSONField(default=dict, blank=True)

    class Meta(JobBase.Meta):
        pass

    def __str__(self) -> str:
        return f"training {self.generator} #{self.pk}"


class GenerationJob(JobBase):
    generator = models.ForeignKey(GeneratorModel, on_delete=models.PROTECT, related_name="jobs")
    count = models.PositiveIntegerField()
    finding = models.CharField(max_length=100, blank=True)
    prompt = models.TextField(blank=True)
    negative_prompt = models.TextField(blank=True)
    scheduler = models.CharField(max_length=10, choices=Scheduler.choices, default=Scheduler.DDIM)
    steps = models.PositiveIntegerField(default=50)
    guidance = models.FloatField(default=2.0)
    seed = models.BigIntegerField(default=0, help_text="Image k gets seed + k.")
    batch_size = models.PositiveIntegerField(default=8)
    study = models.ForeignKey(
        Study, null=True, blank=True, on_delete=models.SET_NULL, related_name="generation_jobs"
    )
    keep_study_balance = models.BooleanField(
        default=False, help_text="Add as many real pool images as synthetic ones to the study."
    )
    balance_sources = models.JSONField(
        default=list,
        blank=True,
        help_text="Keeping the balance: the real images come only from these sources "
        "(datasets); empty: from any source.",
    )
    done_count = models.PositiveIntegerField(default=0)
    shard_count = models.PositiveIntegerField(
        default=1,
        help_text="Shard tasks the images are split into (seed ranges), each on any GPU worker.",
    )

    class Meta(JobBase.Meta):
        pass

    def __str__(self) -> str:
        return f"generation {self.generator} #{self.pk}"

    @property
    def is_sharded(self) -> bool:
        return self.shard_count > 1

    def seed_for(self, index: int) -> int:
        return self.seed + index


class GenerationShard(JobBase):
    """Images start..stop-1 of a sharded generation job: claimed, beaten and recovered like a
    job of its own; the job succeeds when its last shard does (`tasks.settle_sharded_job`)."""

    job = models.ForeignKey(GenerationJob, on_delete=models.CASCADE, related_name="shards")
    number = models.PositiveIntegerField()
    start = models.PositiveIntegerField()
    stop = models.PositiveIntegerField()

    class Meta(JobBase.Meta):
        ordering = ["job_id", "number"]
        constraints = [
            models.UniqueConstraint(fields=["job", "number"], name="generation_shard_unique")
        ]

    def __str__(self) -> str:
        return f"shard {self.number} (images {self.start}-{self.stop - 1}) of job #{self.job_id}"


class GeneratedImage(models.Model):
    """Output slot k of a job: unique, so a retried job only makes the missing images."""

    job = models.ForeignKey(GenerationJob, on_delete=models.PROTECT, related_name="outputs")
    index = models.PositiveIntegerField()
    image = models.OneToOneField(Image, on_delete=models.PROTECT, related_name="generated_by")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["job_id", "index"]
        constraints = [
            models.UniqueConstraint(fields=["job", "index"], name="generated_image_unique_slot")
        ]

    def __str__(self) -> str:
        return f"output {self.index} of job #{self.job_id}"
