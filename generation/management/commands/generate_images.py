"""python manage.py generate_images --model NAME --count 100 [--finding F | --prompt "..."] ..."""

from __future__ import annotations

from django.core.management.base import BaseCommand, CommandError
from django.db import transaction
from django.utils import timezone
from tqdm import tqdm

from generation.models import GenerationJob, GeneratorModel, JobStatus, Scheduler
from generation.services import InvalidJob, create_generation_job, reopen
from generation.tasks import run_generation
from readerstudy.models import Study


class Command(BaseCommand):
    help = (
        "Generate synthetic images with a trained or configured generator, on this machine (no "
        "broker), into the pool (as synthetic, with provenance). Image k gets seed SEED + k. "
        "Runs the same code as the generation task of the GPU workers. --retry JOB continues a "
        "failed or cancelled job, making only its missing images."
    )

    def add_arguments(self, parser) -> None:
        parser.add_argument("--model", help="Generator name.")
        parser.add_argument("--count", type=int, help="Number of images.")
        what = parser.add_mutually_exclusive_group()
        what.add_argument("--finding", default="", help="Class label (ddpm) or prompt subject.")
        what.add_argument("--prompt", default="", help="Text prompt (text-to-image models).")
        parser.add_argument("--negative-prompt", default="")
        parser.add_argument("--steps", type=int, default=50)
        parser.add_argument(
            "--guidance",
            type=float,
            default=None,
            help="Classifier-free guidance scale (default: the model kind's: ddpm 2.0, "
            "stable-diffusion 7.5).",
        )
        parser.add_argument("--scheduler", choices=Scheduler.values, default=Scheduler.DDIM)
        parser.add_argument("--seed", type=int, default=0)
        parser.add_argument("--batch-size", type=int, default=8)
        parser.add_argument("--study", help="Add the images to this study (id or public id).")
        parser.add_argument(
            "--keep-balance",
            action="store_true",
            help="With --study: add as many real images as synthetic ones.",
        )
        parser.add_argument(
            "--balance-source",
            action="append",
            default=[],
            metavar="SOURCE",
            help="With --keep-balance: draw the real images only from this source (dataset); "
            "repeat for several.",
        )
        parser.add_argument(
            "--retry",
            type=int,
            metavar="JOB",
            help="Continue generation job JOB instead of starting a new one.",
        )
        parser.add_argument("--no-progress", action="store_true")

    def handle(self, *args, **options) -> None:
        if options["retry"] is not None:
            job = GenerationJob.objects.filter(pk=options["retry"]).first()
            if job is None:
                raise CommandError(f"no generation job #{options['retry']}")
            try:
                reopen(job)
            except InvalidJob as error:
                raise CommandError(str(error)) from None
            created = False
        else:
            job = self._new_job(options)
            created = True

        bar = tqdm(
            total=job.count, initial=job.outputs.count(), unit="img", disable=options["no_progress"]
        )

        def on_progress(done: int, total: int, loss) -> None:
            bar.update(max(0, done - bar.n))

        try:
            result = run_generation(job.pk, on_progress=on_progress)
        except BaseException:
            bar.close()
            GenerationJob.objects.filter(pk=job.pk, status=JobStatus.RUNNING).update(
                status=JobStatus.FAILED, error="interrupted", finished_at=timezone.now()
            )
            self._clean_up(job, created)
            raise
        bar.close()
        if result is None:
            raise CommandError(f"generation job #{job.pk} is being run elsewhere")
        done = result.outputs.count()
        if result.status != JobStatus.SUCCEEDED:
            if self._clean_up(job, created):
                raise CommandError(result.error or "generation failed")
            raise CommandError(
                f"{result.error or 'generation stopped'}\n{done} of {result.count} images were "
                f"made and are in the pool; continue with: generate_images --retry {result.pk}"
            )
        self.stdout.write(f"generation job #{result.pk}: {done} images in the pool")
        for line in result.log_tail.splitlines():
            if "NOTE" in line:
                self.stdout.write(self.style.WARNING(line))

    def _new_job(self, options) -> GenerationJob:
        name = options["model"]
        if not name:
            raise CommandError("give --model NAME (or --retry JOB)")
        if options["count"] is None:
            raise CommandError("give --count N")
        generator = GeneratorModel.objects.filter(name=name).first()
        if generator is None:
            known = ", ".join(GeneratorModel.objects.values_list("name", flat=True)) or "none yet"
            raise CommandError(f"no model named {name!r} (known models: {known})")
        study = None
        if options["study"]:
            raw = options["study"]
            study = (
                Study.objects.filter(pk=int(raw)).first() if raw.isdigit() else None
            ) or Study.objects.filter(public_id=raw).first()
            if study is None:
                raise CommandError(f"no study {raw!r}")
        self._check_model_folder(generator)
        try:
            with transaction.atomic():
                return create_generation_job(
                    generator=generator,
                    count=options["count"],
                    finding=options["finding"],
                    prompt=options["prompt"],
                    negative_prompt=options["negative_prompt"],
                    scheduler=options["scheduler"],
                    steps=options["steps"],
                    guidance=options["guidance"],
                    seed=options["seed"],
                    batch_size=options["batch_size"],
                    study=study,
                    keep_study_balance=options["keep_balance"],
                    balance_sources=options["balance_source"],
                )
        except InvalidJob as error:
            raise CommandError(str(error)) from None

    def _check_model_folder(self, generator: GeneratorModel) -> None:
        """Refuse before creating anything when the model cannot sample."""
        from django.conf import settings

        if settings.GENERATION_SHARE_MODELS:
            from generation import storage

            storage.fetch(generator)
        from generation.backends import JobError, backend_for

        try:
            backend_for(generator.kind).can_sample_here(generator)
        except JobError as error:
            raise CommandError(f"model {generator.name!r} cannot sample: {error}") from None

    def _clean_up(self, job: GenerationJob, created: bool) -> bool:
        """Remove a job this command created that made no image; True if removed."""
        if not created or job.outputs.exists():
            return False
        GenerationJob.objects.filter(pk=job.pk).delete()
        return True
