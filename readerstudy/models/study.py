"""Studies, their cases, each reader's stored order, and the readings."""

import secrets

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models

from pool.models import Image, new_public_id


def new_seed() -> int:
    return secrets.randbits(62)


def new_token() -> str:
    return secrets.token_urlsafe(24)


class StudyStatus(models.TextChoices):
    DRAFT = "draft", "Draft"
    OPEN = "open", "Open"
    CLOSED = "closed", "Closed"


class Answer(models.TextChoices):
    REAL = "real", "Real"
    FAKE = "fake", "Fake"
    UNSURE = "unsure", "Unsure"


class Design(models.TextChoices):
    SINGLE = "single", "Single image: real, fake or unsure"
    PAIR = "pair", "Two-alternative forced choice: which of two is synthetic"
    EXPOSURE = "exposure", "Time-limited exposure (HYPE-time staircase)"


class Mask(models.TextChoices):
    NOISE = "noise", "Random noise"
    GREY = "grey", "Neutral grey"


DEFAULT_FINDINGS = "normal, pneumonia, COVID-19, other"


class Study(models.Model):
    public_id = models.CharField(max_length=32, unique=True, default=new_public_id, editable=False)
    title = models.CharField(max_length=200)
    instructions = models.TextField(
        blank=True, help_text="Markdown, shown to readers before the first case."
    )
    status = models.CharField(
        max_length=10, choices=StudyStatus.choices, default=StudyStatus.DRAFT, db_index=True
    )
    confidence_scale = models.PositiveSmallIntegerField(
        default=0,
        choices=[(0, "Off"), (5, "1–5")],
        help_text="Collect a confidence rating with each answer.",
    )
    allow_revisions = models.BooleanField(
        default=False,
        help_text="Readers may go back and change answers; every change is kept as a revision.",
    )
    repeat_fraction = models.FloatField(
        default=0.0,
        validators=[MinValueValidator(0.0), MaxValueValidator(0.5)],
        help_text="Share of (non-practice) cases shown a second time later, for intra-reader "
        "consistency.",
    )
    repeat_min_gap = models.PositiveSmallIntegerField(
        default=5,
        validators=[MinValueValidator(1)],
        help_text="A repeated case comes at least this many positions after its first showing.",
    )
    seed = models.BigIntegerField(
        default=new_seed, help_text="Randomization seed; each reader's order derives from it."
    )
    # Study designs (docs/study-designs.md). Fixed, like the other options, once orders are drawn.
    design = models.CharField(
        max_length=10, choices=Design.choices, default=Design.SINGLE,
        help_text="What a reader is asked on each screen.",
    )
    allow_reuse = models.BooleanField(
        default=False,
        help_text="Pairs only: an image may appear in more than one of a reader's pairs, so "
        "that every image of the larger side is paired.",
    )
    ask_finding = models.BooleanField(
        default=False, help_text='Also ask "what finding do you see?" on every screen.'
    )
    finding_vocabulary = models.CharField(
        max_length=500, default=DEFAULT_FINDINGS, blank=True,
        help_text="The findings a reader can answer, separated by commas.",
    )
    exposure_start_ms = models.PositiveIntegerField(
        default=500, validators=[MinValueValidator(1)], help_text="First exposure (ms)."
    )
    exposure_step_ms = models.PositiveIntegerField(
        default=30, validators=[MinValueValidator(1)], help_text="Staircase step (ms)."
    )
    exposure_min_ms = models.PositiveIntegerField(
        default=100, validators=[MinValueValidator(1)], help_text="Shortest exposure (ms)."
    )
    exposure_max_ms = models.PositiveIntegerField(
        default=1000, validators=[MinValueValidator(1)], help_text="Longest exposure (ms)."
    )
    staircase_down = models.PositiveSmallIntegerField(
        default=3, validators=[MinValueValidator(1)],
        help_text="Consecutive correct answers before the exposure gets one step shorter.",
    )
    staircase_up = models.PositiveSmallIntegerField(
        default=1, validators=[MinValueValidator(1)],
        help_text="Consecutive wrong (or unsure) answers before it gets one step longer.",
    )
    exposure_mask = models.CharField(
        max_length=10, choices=Mask.choices, default=Mask.NOISE,
        help_text="What replaces the image when its time is up.",
    )
    reader_feedback = models.BooleanField(
        default=False,
        help_text="Once the study is closed, show each reader their own score (accuracy, and "
        "how many fakes and real images they recognised); never anyone else's.",
    )
    readers = models.ManyToManyField(
        settings.AUTH_USER_MODEL, through="Assignment", related_name="reader_studies", blank=True
    )
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)
    opened_at = models.DateTimeField(null=True, blank=True)
    closed_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        verbose_name_plural = "studies"

    def __str__(self) -> str:
        return self.title

    @property
    def collects_confidence(self) -> bool:
        return self.confidence_scale > 0

    @property
    def findings(self) -> list[str]:
        """The diagnostic vocabulary, in the researcher's order, without blanks or repeats."""
        seen: dict[str, None] = {}
        for item in self.finding_vocabulary.split(","):
            if item.strip():
                seen.setdefault(item.strip(), None)
        return list(seen)

    def clean(self) -> None:
        super().clean()
        if self.exposure_min_ms > self.exposure_max_ms:
            raise ValidationError("The shortest exposure is longer than the longest.")
        if not self.exposure_min_ms <= self.exposure_start_ms <= self.exposure_max_ms:
            raise ValidationError("The first exposure must lie between the shortest and longest.")
        if self.ask_finding and not self.findings:
            raise ValidationError("Give the findings a reader can answer.")

    @property
    def is_open(self) -> bool:
        return self.status == StudyStatus.OPEN

    @property
    def is_draft(self) -> bool:
        return self.status == StudyStatus.DRAFT

    def has_drawn_orders(self) -> bool:
        """Once any reader's order is stored, the set of cases and the order options are frozen."""
        return ReadingSlot.objects.filter(assignment__study=self).exists()

    def has_readings(self) -> bool:
        return Reading.objects.filter(slot__assignment__study=self).exists()


class StudyCase(models.Model):
    study = models.ForeignKey(Study, on_delete=models.CASCADE, related_name="cases")
    # An image in a study is protected: deleting it would silently change the study.
    image = models.ForeignKey(Image, on_delete=models.PROTECT, related_name="study_cases")
    is_practice = models.BooleanField(
        default=False, help_text="Shown first, truth revealed after answering, never in statistics."
    )
    added_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["id"]
        constraints = [
            models.UniqueConstraint(fields=["study", "image"], name="case_unique_image_per_study")
        ]

    def __str__(self) -> str:
        return f"{self.study} / case {self.pk}"

    def has_readings(self) -> bool:
        return Reading.objects.filter(slot__case=self).exists()

    def clean(self) -> None:
        if self.pk is None:
            if self.study_id is not None and self.study.has_drawn_orders():
                raise ValidationError(
                    "Readers' orders are already drawn for this study: its cases are frozen. "
                    "Create a new study to read other cases."
                )
            return
        previous = StudyCase.objects.filter(pk=self.pk).values("image_id", "is_practice").first()
        if previous and self.has_readings():
            changed = (previous["image_id"], previous["is_practice"]) != (
                self.image_id,
                self.is_practice,
            )
            if changed:
                raise ValidationError("This case has readings: it cannot be swapped or changed.")


class Assignment(models.Model):
    """A reader assigned to a study; owns that reader's stored case order."""

    study = models.ForeignKey(Study, on_delete=models.CASCADE, related_name="assignments")
    reader = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="assignments"
    )
    assigned_at = models.DateTimeField(auto_now_add=True)
    order_drawn_at = models.DateTimeField(null=True, blank=True)
    order_algorithm = models.CharField(
        max_length=40, blank=True, help_text="The procedure that drew the stored order."
    )
    completed_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["study_id", "reader__username"]
        constraints = [
            models.UniqueConstraint(fields=["study", "reader"], name="assignment_unique_reader")
        ]

    def __str__(self) -> str:
        return f"{self.reader} in {self.study}"


class ReadingSlot(models.Model):
    """One showing of one case to one reader, at a fixed position: the stored permutation.

    The token is what the reader's browser sees instead of any image or case id.
    """

    assignment = models.ForeignKey(Assignment, on_delete=models.CASCADE, related_name="slots")
    # RESTRICT: a case cannot be removed from a drawn order, but deleting a whole study
    # that has no readings (which deletes the orders too) is allowed.
    case = models.ForeignKey(StudyCase, on_delete=models.RESTRICT, related_name="slots")
    position = models.PositiveIntegerField(help_text="1-based; practice cases come first.")
    showing = models.PositiveSmallIntegerField(default=1, help_text="1 first showing, 2 repeat.")
    is_practice = models.BooleanField(default=False)
    # Pairs: ``case`` is shown on the left, ``right_case`` on the right (sides drawn from the seed).
    right_case = models.ForeignKey(
        StudyCase, null=True, blank=True, on_delete=models.RESTRICT, related_name="right_slots"
    )
    # Exposure: decided by the server from this reader's stored readings when first served.
    exposure_ms = models.PositiveIntegerField(null=True, blank=True)
    token = models.CharField(max_length=64, unique=True, default=new_token, editable=False)
    served_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["assignment_id", "position"]
        constraints = [
            models.UniqueConstraint(fields=["assignment", "position"], name="slot_unique_position"),
            models.UniqueConstraint(
                fields=["assignment", "case", "showing"], name="slot_unique_showing"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.assignment} #{self.position}"

    @property
    def is_repeat(self) -> bool:
        return self.showing > 1


class Reading(models.Model):
    """The reader's answer for one slot. The one-to-one makes a second reading impossible."""

    slot = models.OneToOneField(ReadingSlot, on_delete=models.PROTECT, related_name="reading")
    answer = models.CharField(max_length=10, choices=Answer.choices)
    confidence = models.PositiveSmallIntegerField(
        null=True, blank=True, validators=[MinValueValidator(1), MaxValueValidator(5)]
    )
    comment = models.TextField(blank=True)
    served_at = models.DateTimeField(help_text="When the server first served this case.")
    answered_at = models.DateTimeField(help_text="When the server received the (latest) answer.")
    client_ms = models.PositiveIntegerField(
        null=True, blank=True, help_text="Time on case measured by the browser, if sent."
    )
    revision_count = models.PositiveIntegerField(default=0)
    # Pairs: the side the reader called synthetic; ``answer`` is then the judgement of the left
    # image (fake when "left", real when "right").
    chosen_side = models.CharField(max_length=5, blank=True)
    finding_answer = models.CharField(max_length=100, blank=True)
    requested_exposure_ms = models.PositiveIntegerField(null=True, blank=True)
    achieved_exposure_ms = models.FloatField(
        null=True, blank=True, help_text="Image on screen, measured with requestAnimationFrame."
    )

    class Meta:
        ordering = ["slot_id"]

    def __str__(self) -> str:
        return f"{self.slot}: {self.answer}"

    @property
    def seconds_on_case(self) -> float:
        return (self.answered_at - self.served_at).total_seconds()


class ReadingRevision(models.Model):
    """A superseded answer, kept whenever a reader changes a reading."""

    reading = models.ForeignKey(Reading, on_delete=models.PROTECT, related_name="revisions")
    answer = models.CharField(max_length=10, choices=Answer.choices)
    confidence = models.PositiveSmallIntegerField(null=True, blank=True)
    comment = models.TextField(blank=True)
    client_ms = models.PositiveIntegerField(null=True, blank=True)
    answered_at = models.DateTimeField()
    replaced_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["reading_id", "replaced_at", "id"]

    def __str__(self) -> str:
        return f"reading #{self.reading_id} was {self.answer}"
