"""Set-up steps of `make demo`, each idempotent so the demo can be restarted at will."""

import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.management import call_command
from django.db import transaction

from pool.importing import ImportLabels, import_many, read_manifest
from readerstudy.models import Study, StudyStatus

SAMPLE_MANIFEST = Path(settings.BASE_DIR) / "sample_data" / "chest-xray-pediatric" / "manifest.csv"
DEMO_MODEL = "demo-cxr-64"
DEMO_STUDY = "Spot the fake lungs"
DEMO_FINDINGS = ("normal", "pneumonia")
# A few minutes on 2 CPU cores: enough to show the machinery, far from convincing images.
DEMO_TRAINING_STEPS = 150
DEMO_IMAGES_PER_FINDING = 8

DEMO_INSTRUCTIONS = """\
Some of these chest X-rays are real; the others were made by a diffusion model trained on real
ones. For each image answer **Real** (R), **Fake** (F) or **Unsure** (U), then rate how sure you
are from 1 (guessing) to 5 (certain).

- The first two cases are practice: you will see the truth after answering them.
- Drag to change window and level, use the wheel to zoom, press I to invert and 0 to reset.
- You can stop at any time and continue later where you left off.
"""


@dataclass(frozen=True)
class DemoAccount:
    username: str
    password: str
    is_staff: bool


# Fixed, printed credentials: the demo runs on localhost only. Never reuse them.
DEMO_ACCOUNTS = (
    DemoAccount("admin", "spot-the-fake-admin", True),
    DemoAccount("reader1", "spot-the-fake-reader1", False),
    DemoAccount("reader2", "spot-the-fake-reader2", False),
)


def ensure_accounts() -> list[DemoAccount]:
    users = get_user_model()
    for account in DEMO_ACCOUNTS:
        user, _ = users.objects.get_or_create(username=account.username)
        user.is_staff = user.is_superuser = account.is_staff
        user.set_password(account.password)
        user.save()
    return list(DEMO_ACCOUNTS)


def import_sample(progress=None) -> tuple[int, int]:
    """Import the bundled real X-rays; returns (imported, already there)."""
    defaults = ImportLabels(source="chest-xray-pediatric", modality="CXR")
    rows = read_manifest(SAMPLE_MANIFEST, defaults)
    outcomes = import_many(((row.path, row.labels) for row in rows), progress=progress)
    failed = [outcome for outcome in outcomes if outcome.status == "failed"]
    if failed:
        raise RuntimeError("bundled sample failed to import: " + failed[0].line())
    imported = sum(outcome.status == "imported" for outcome in outcomes)
    return imported, len(outcomes) - imported


def train_demo_model(*, progress: bool = True) -> None:
    """Train the small demo model on the bundled X-rays, unless it is trained already."""
    from generation.models import GeneratorModel

    model = GeneratorModel.objects.filter(name=DEMO_MODEL).first()
    if model is not None and model.trained_steps >= DEMO_TRAINING_STEPS:
        return
    arguments = [
        DEMO_MODEL, "--kind", "ddpm", "--modality", "CXR", "--resolution", "64",
        "--preset", "small", "--steps", str(DEMO_TRAINING_STEPS), "--batch-size", "16",
        "--findings", ",".join(DEMO_FINDINGS), "--checkpoint-every", "50", "--grid-steps", "20",
    ]
    if model is not None:
        arguments.append("--resume")
    if not progress:
        arguments.append("--no-progress")
    call_command("train_model", *arguments)


def demo_study() -> Study | None:
    return Study.objects.filter(title=DEMO_STUDY).first()


def start_demo_generation(admin_username: str = "admin") -> list:
    """A draft study and one generation job per finding, each adding its images to the study
    together with as many real images (the job's balance option). Returns the jobs."""
    from generation.models import GeneratorModel
    from generation.services import start_generation

    generator = GeneratorModel.objects.get(name=DEMO_MODEL)
    admin = get_user_model().objects.get(username=admin_username)
    with transaction.atomic():
        study = Study.objects.create(
            title=DEMO_STUDY, instructions=DEMO_INSTRUCTIONS, confidence_scale=5,
            repeat_fraction=0.1, repeat_min_gap=3, created_by=admin,
        )
    return [
        start_generation(
            generator=generator, count=DEMO_IMAGES_PER_FINDING, finding=finding, steps=25,
            guidance=2.0, scheduler="ddim", seed=1000 * index, batch_size=8, study=study,
            keep_study_balance=True, user=admin,
        )
        for index, finding in enumerate(DEMO_FINDINGS)
    ]


def wait_for_jobs(jobs: list, on_progress: Callable[[int, int], None], timeout_s: float) -> list:
    """Poll the jobs (run by the worker) until they end; returns them as they ended."""
    deadline = time.monotonic() + timeout_s
    while True:
        for job in jobs:
            job.refresh_from_db()
        on_progress(sum(job.done_count for job in jobs), sum(job.count for job in jobs))
        if all(job.is_finished for job in jobs) or time.monotonic() > deadline:
            return jobs
        time.sleep(1)


def open_demo_study() -> Study:
    """Two practice cases (one real, one synthetic), both demo readers, then open."""
    from readerstudy.services.studies import assign_reader, open_study

    study = demo_study()
    if study.status == StudyStatus.OPEN:
        return study
    for truth in ("real", "synthetic"):
        case = study.cases.filter(image__truth=truth, is_practice=False).order_by("id").first()
        if case is not None and not study.cases.filter(is_practice=True, image__truth=truth).exists():
            case.is_practice = True
            case.save(update_fields=["is_practice"])
    users = get_user_model()
    for account in DEMO_ACCOUNTS:
        if not account.is_staff:
            assign_reader(study, users.objects.get(username=account.username))
    match_generator_resolution(study)
    acknowledge_known_leaks(study, users.objects.get(username="admin"))
    open_study(study)
    return study


def match_generator_resolution(study: Study) -> None:
    """The demo's generator makes 64-px images: present every case at that resolution, so that
    blur alone does not give the fakes away (what the audit advises for such a study)."""
    from readerstudy.models.presentation import SourceResolution
    from readerstudy.services.presentation import profile_of

    profile = profile_of(study)
    if not profile.is_frozen and profile.source_resolution_mode == SourceResolution.NATIVE:
        profile.source_resolution_mode = SourceResolution.LOWEST
        profile.save()


def acknowledge_known_leaks(study: Study, admin) -> list[str]:
    """The demo's 64-pixel CPU model makes images that differ from real ones in texture, so the
    blinding audit blocks the study; the demo records the researcher's acknowledgement, as a
    researcher would after looking at the cues. A real study should fix the cause instead."""
    from evaluation.services import acknowledge_audit, ensure_current_audit

    audit = ensure_current_audit(study)
    cues = [f"{row['name']} (AUC {row['auc']:.2f})" for row in audit.blocking]
    if cues and audit.acknowledged_at is None:
        acknowledge_audit(
            audit, admin,
            "Demo only: a small model trained for minutes on a CPU; its images are known to "
            "differ from real ones. Not a study to publish.",
        )
    return cues
