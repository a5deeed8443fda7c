"""The demo of `make demo`: its settings file, its accounts and bundled X-rays, and the chain of
ordinary jobs that `run_demo` drives while the web server and the worker run: train the demo
model, generate its fakes into the study, open the study.

Each step of the chain reads where things stand from the database and does only the next thing,
so the demo can be stopped and started again at will: nothing that exists is made twice, and a
job retried from its page simply lets the chain carry on.
"""

import os
import secrets
from dataclasses import dataclass, field
from pathlib import Path

from django.conf import settings
from django.contrib.auth import get_user_model
from django.db import OperationalError, transaction

from pool.importing import ImportLabels, import_many, read_manifest
from readerstudy.models import Study, StudyStatus

SAMPLE_MANIFEST = Path(settings.BASE_DIR) / "sample_data" / "chest-xray-pediatric" / "manifest.csv"
DEMO_MODEL = "demo-cxr-64"
DEMO_STUDY = "Spot the fake lungs"
DEMO_FINDINGS = ("normal", "pneumonia")
# About 5 minutes of training on 2 idle CPU cores (README, "The demo"): enough to show the
# machinery, far from convincing images.
DEFAULT_STEPS = 80
DEFAULT_RESOLUTION = 64
DEFAULT_IMAGES_PER_FINDING = 8
ENV_FILE_NAME = ".env.demo"

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


@dataclass(frozen=True)
class DemoOptions:
    """How much work the demo's jobs do (`make demo DEMO_STEPS=...`)."""

    steps: int = DEFAULT_STEPS
    resolution: int = DEFAULT_RESOLUTION
    images_per_finding: int = DEFAULT_IMAGES_PER_FINDING


def training_params(generator) -> dict:
    """The backend's public run settings (the Train form's and train_model's); the rest of the
    recipe is the backend's default. The preset follows the model row's resolution, not the
    options': a model made by an earlier `make demo` keeps the resolution it was made with.
    Below 64 px only the "tiny" preset fits."""
    return {
        "preset": "small" if generator.resolution >= 64 else "tiny",
        "batch_size": 16,
        "grid_steps": 20,
    }


# ----------------------------------------------------------------------------- settings file
def env_file_path() -> Path:
    """Where the demo's settings live: `.env.demo` next to manage.py (SPOTTHEFAKE_ENV_FILE for
    a second demo or a test). Only the `./manage` wrapper reads it; the settings never do."""
    raw = os.environ.get("SPOTTHEFAKE_ENV_FILE", "")
    return Path(raw) if raw else Path(settings.BASE_DIR) / ENV_FILE_NAME


def read_env_file(path: Path) -> dict[str, str]:
    values = {}
    if path.is_file():
        for line in path.read_text().splitlines():
            if line.strip() and not line.startswith("#") and "=" in line:
                key, value = line.split("=", 1)
                values[key.strip()] = value
    return values


def write_env_file(path: Path | None = None) -> dict[str, str]:
    """Write the settings the demo runs with, so that `./manage` in a fresh shell reaches the
    same database, broker and files; returns them. The SECRET_KEY of an earlier run is kept."""
    path = path or env_file_path()
    earlier = read_env_file(path)
    values = {
        "DEBUG": "1",
        "SECRET_KEY": earlier.get("SECRET_KEY") or secrets.token_urlsafe(50),
        "SPOTTHEFAKE_VAR_DIR": str(settings.VAR_DIR),
    }
    for name in ("DATABASE_URL", "REDIS_URL"):
        if os.environ.get(name):
            values[name] = os.environ[name]
    text = (
        "# Written by `make demo` (spotthefake/demo.py) for the ./manage wrapper: the demo's\n"
        "# settings, DEBUG on. Never used by production; `make clean-demo` deletes it.\n"
        + "".join(f"{key}={value}\n" for key, value in values.items())
    )
    path.parent.mkdir(parents=True, exist_ok=True)
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(descriptor, "w") as handle:
        handle.write(text)
    return values


# ------------------------------------------------------------------------ accounts and images
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


def demo_study() -> Study | None:
    return Study.objects.filter(title=DEMO_STUDY).first()


def demo_admin():
    return get_user_model().objects.get(username=DEMO_ACCOUNTS[0].username)


# ---------------------------------------------------------------------------------- the chain
@dataclass(frozen=True)
class Progress:
    """Where the demo stands, in one line for the terminal. `stage` is training, generating,
    stopped (a job of this run failed or was cancelled: its page has Retry; or a refusal),
    waiting (the database was busy) or open."""

    stage: str
    text: str
    path: str = ""

    @property
    def key(self) -> tuple[str, str]:
        """What a new line on the terminal is printed for: a new stage or a new job."""
        return self.stage, self.path


@dataclass
class DemoChain:
    """Train, generate, open: each `advance()` does the next step that the database allows."""

    options: DemoOptions
    started: set[tuple[str, int]] = field(default_factory=set)

    def advance(self) -> Progress:
        from generation.services import BrokerUnavailable, InvalidJob
        from readerstudy.services.studies import StudyRefused

        study = demo_study()
        if study is not None and study.status != StudyStatus.DRAFT:
            return Progress("open", f"the study '{DEMO_STUDY}' is {study.status}")
        try:
            generator = demo_generator(self.options)
            return self._training(generator) or self._generation(generator, study) or open_step()
        except (BrokerUnavailable, InvalidJob, StudyRefused) as error:
            return Progress("stopped", str(error))
        except OperationalError as error:  # e.g. SQLite busy under load: the next tick retries
            return Progress("waiting", f"the database is busy ({error}); trying again")

    def _training(self, generator) -> Progress | None:
        """None once the model has a checkpoint at the demo's number of steps."""
        from generation.models import TrainingRun
        from generation.services import start_training

        if generator.trained_steps >= self.options.steps:
            return None
        run = TrainingRun.objects.filter(generator=generator).order_by("-pk").first()
        if run is None or (run.is_finished and ("training", run.pk) not in self.started):
            # Nothing ran yet, or an earlier `make demo` stopped: resume from the checkpoint.
            run = start_training(
                generator=generator,
                total_steps=self.options.steps,
                params=training_params(generator),
                user=demo_admin(),
            )
            self.started.add(("training", run.pk))
        return _job_progress("training", run, f"step {run.step} of {run.total_steps}")

    def _generation(self, generator, study: Study | None) -> Progress | None:
        """None once every generation job of the study succeeded."""
        from generation.models import GenerationJob, JobStatus
        from generation.services import retry

        jobs = list(GenerationJob.objects.filter(study=study).order_by("pk")) if study else []
        if not jobs:
            jobs = start_demo_generation(generator, self.options, study)
            self.started.update(("generation", job.pk) for job in jobs)
        for job in jobs:
            if job.status in (JobStatus.FAILED, JobStatus.CANCELLED):
                if ("generation", job.pk) in self.started:
                    return _job_progress("generation", job, "")
                retry(job)  # stopped in an earlier `make demo`: make the missing images
                self.started.add(("generation", job.pk))
        if all(job.status == JobStatus.SUCCEEDED for job in jobs):
            return None
        done, total = sum(job.done_count for job in jobs), sum(job.count for job in jobs)
        first = next(job for job in jobs if not job.is_finished)
        return _job_progress("generation", first, f"{done} of {total} images")


def _job_progress(kind: str, job, done: str) -> Progress:
    from generation.views import job_url

    path = job_url(kind, job)
    if job.status in ("failed", "cancelled"):
        reason = f": {job.error}" if job.error else ""
        return Progress("stopped", f"{kind} job #{job.pk} {job.status}{reason}", path)
    stage = "training" if kind == "training" else "generating"
    return Progress(stage, f"{kind} job #{job.pk} {job.status}, {done}", path)


def demo_generator(options: DemoOptions):
    """The demo's model row, made as the admin's Train page makes one."""
    from generation.models import GeneratorModel

    generator, _ = GeneratorModel.objects.get_or_create(
        name=DEMO_MODEL,
        defaults={
            "kind": "ddpm",
            "modality": "CXR",
            "findings": list(DEMO_FINDINGS),
            "resolution": options.resolution,
            "created_by": demo_admin(),
        },
    )
    return generator


def start_demo_generation(generator, options: DemoOptions, study: Study | None) -> list:
    """A draft study (unless given) and one generation job per finding, each adding its images
    to the study with as many real ones (the job's balance option), all or nothing."""
    from generation.services import start_generation

    admin = demo_admin()
    with transaction.atomic():
        if study is None:
            study = Study.objects.create(
                title=DEMO_STUDY,
                instructions=DEMO_INSTRUCTIONS,
                confidence_scale=5,
                repeat_fraction=0.1,
                repeat_min_gap=3,
                created_by=admin,
            )
        return [
            start_generation(
                generator=generator,
                count=options.images_per_finding,
                finding=finding,
                steps=25,
                guidance=2.0,
                scheduler="ddim",
                seed=1000 * index,
                batch_size=8,
                study=study,
                keep_study_balance=True,
                user=admin,
            )
            for index, finding in enumerate(DEMO_FINDINGS)
        ]


def open_step() -> Progress:
    study, cues = open_demo_study()
    note = ""
    if cues:
        note = (
            f"; the blinding audit's cues ({', '.join(cues)}) are acknowledged as admin, "
            "as a CPU demo needs"
        )
    practice = study.cases.filter(is_practice=True).count()
    return Progress(
        "open",
        f"the study '{DEMO_STUDY}' is open: {study.cases.count()} cases ({practice} practice), "
        f"{study.assignments.count()} readers{note}",
    )


def open_demo_study() -> tuple[Study, list[str]]:
    """Two practice cases (one real, one synthetic), both demo readers, then open; returns the
    study and the audit's cues that were acknowledged. Only DemoChain.advance() calls it, and
    only for a draft study (it reports any other as open)."""
    from readerstudy.services.studies import assign_reader, open_study

    study = demo_study()
    for truth in ("real", "synthetic"):
        case = study.cases.filter(image__truth=truth, is_practice=False).order_by("id").first()
        if (
            case is not None
            and not study.cases.filter(is_practice=True, image__truth=truth).exists()
        ):
            case.is_practice = True
            case.save(update_fields=["is_practice"])
    users = get_user_model()
    for account in DEMO_ACCOUNTS:
        if not account.is_staff:
            assign_reader(study, users.objects.get(username=account.username))
    match_generator_resolution(study)
    cues = acknowledge_known_leaks(study, demo_admin())
    open_study(study)
    study.refresh_from_db()
    return study, cues


def match_generator_resolution(study: Study) -> None:
    """The demo's generator makes small images (DEMO_RESOLUTION px): present every case at the
    lowest resolution among them, so that blur alone does not give the fakes away (what the
    audit advises for such a study)."""
    from readerstudy.models.presentation import SourceResolution
    from readerstudy.services.presentation import profile_of

    profile = profile_of(study)
    if not profile.is_frozen and profile.source_resolution_mode == SourceResolution.NATIVE:
        profile.source_resolution_mode = SourceResolution.LOWEST
        profile.save()


def acknowledge_known_leaks(study: Study, admin) -> list[str]:
    """The demo's small CPU model makes images that differ from real ones in texture, so the
    blinding audit blocks the study; the demo records the researcher's acknowledgement, as a
    researcher would after looking at the cues; returns the cues. A real study should fix the
    cause instead."""
    from evaluation.services import acknowledge_audit, ensure_current_audit

    audit = ensure_current_audit(study)
    cues = [f"{row['name']} (AUC {row['auc']:.2f})" for row in audit.blocking]
    if cues and audit.acknowledged_at is None:
        acknowledge_audit(
            audit,
            admin,
            "Demo only: a small model trained for minutes on a CPU; its images are known to "
            "differ from real ones. Not a study to publish.",
        )
    return cues
