"""python manage.py train_model NAME --kind ddpm --modality CXR --resolution 128 --steps 20000 ..."""

from __future__ import annotations

import shutil

from django.core.management.base import BaseCommand, CommandError
from django.db import transaction
from django.utils import timezone
from django.utils.text import slugify
from tqdm import tqdm

from generation.backends import BACKENDS, JobError, backend_for, trainable_kinds
from generation.backends import ddpm as ddpm_backend  # no torch: the recipes are plain data
from generation.datasets import DatasetError, pool_findings, resolve_findings
from generation.models import GeneratorModel, JobStatus, TrainingRun
from generation.services import InvalidJob, create_training_run
from generation.shutdown import cancel_on_signals
from generation.tasks import run_training
from pool.models import Modality


def _findings(raw: str) -> list[str]:
    return [item.strip() for item in raw.split(",") if item.strip()]


def _given(value: object) -> bool:
    """An option on the command line: not left at its default of None / False (store_true)."""
    return value is not None and value is not False and value != ""


class Command(BaseCommand):
    help = (
        "Train a generator on the real images of the pool, on this machine (no broker): a "
        "class-conditional pixel diffusion model from scratch (--kind ddpm), or a LoRA on a "
        "local Stable Diffusion folder (--kind stable-diffusion --base PATH). Runs the same "
        "code as the training task of the GPU workers; --resume continues from the last "
        "checkpoint."
    )

    def add_arguments(self, parser) -> None:
        parser.add_argument("name", help="Model name (a slug); its folder is MODEL_ROOT/NAME.")
        parser.add_argument(
            "--kind",
            choices=trainable_kinds(),
            default=trainable_kinds()[0],
        )
        parser.add_argument("--modality", choices=Modality.values, default=Modality.CXR)
        parser.add_argument(
            "--resolution",
            type=int,
            help="ddpm: 32 (tiny preset) to 512, a power of two (default 64); "
            "stable-diffusion: training size (default: the model's own).",
        )
        parser.add_argument(
            "--steps",
            type=int,
            required=True,
            help="Train up to this step (in total, across resumes).",
        )
        parser.add_argument("--batch-size", type=int)
        parser.add_argument("--lr", type=float, help="Learning rate.")
        parser.add_argument(
            "--findings",
            type=_findings,
            help="Comma-separated class labels (default: every finding of the "
            "real images of this modality in the pool).",
        )
        parser.add_argument(
            "--resume",
            action="store_true",
            help="Continue training an existing model from its last checkpoint.",
        )
        parser.add_argument(
            "--preset", choices=["tiny", "small", "base"], help="ddpm UNet size (default small)."
        )
        parser.add_argument("--checkpoint-every", type=int)
        parser.add_argument(
            "--grid-steps",
            type=int,
            help="Sampler steps for the sample grid at each checkpoint (0: none; default: ddpm "
            "25, stable-diffusion 20).",
        )
        parser.add_argument("--seed", type=int)
        self._add_recipe_arguments(parser)
        parser.add_argument("--base", help="stable-diffusion: a local diffusers folder.")
        parser.add_argument("--lora-rank", type=int, help="stable-diffusion: LoRA rank (8).")
        parser.add_argument(
            "--train-text-encoder",
            action="store_true",
            help="stable-diffusion: LoRA on the text encoder too.",
        )
        parser.add_argument("--age-group", help="stable-diffusion: for the prompts, e.g. child.")
        parser.add_argument("--device", help="cuda, cuda:1, mps or cpu (default: the best one).")
        parser.add_argument("--no-progress", action="store_true")

    @staticmethod
    def _add_recipe_arguments(parser) -> None:
        """ddpm's training recipe (README, "For researchers: generators"); unset: the default."""
        recipe = parser.add_argument_group("ddpm recipe (defaults: the measured new recipe)")
        recipe.add_argument(
            "--recipe",
            choices=[name for name, _label in ddpm_backend.RECIPES],
            help="legacy: epsilon, linear betas, no weighting, constant LR (the recipe before "
            "2026-11); the options below override either.",
        )
        recipe.add_argument("--prediction-type", choices=["epsilon", "v_prediction"])
        recipe.add_argument(
            "--beta-schedule", choices=["linear", "scaled_linear", "squaredcos_cap_v2"]
        )
        recipe.add_argument(
            "--zero-terminal-snr", choices=["on", "off"], help="needs v_prediction (default on)."
        )
        recipe.add_argument(
            "--schedule-shift", type=float, help="divide the SNR by this squared; resolution/64."
        )
        recipe.add_argument("--min-snr-gamma", type=float, help="0: off (default 5).")
        recipe.add_argument("--offset-noise", type=float, help="strength (default 0).")
        recipe.add_argument("--lr-schedule", choices=["constant", "cosine"])
        recipe.add_argument("--warmup-steps", type=int)
        recipe.add_argument("--dropout", type=float, help="UNet dropout (default 0).")
        recipe.add_argument(
            "--hflip",
            action="store_true",
            help="mirror images left-right; off by default: laterality is anatomy in a CXR.",
        )

    def handle(self, *args, **options) -> None:
        name = options["name"]
        if slugify(name) != name:
            raise CommandError(f"model name {name!r} must be a slug (letters, digits, - and _)")
        kind = options["kind"]
        params = self._params(kind, options)
        existing = GeneratorModel.objects.filter(name=name).first()
        created = existing is None
        if existing is not None:
            if not options["resume"]:
                raise CommandError(
                    f"model {name!r} already exists (trained to step {existing.trained_steps}); "
                    f"pass --resume to continue training it, or choose another name"
                )
            if existing.kind != kind:
                raise CommandError(f"model {name!r} is a {existing.kind} model, not {kind}")
            generator = existing
        else:
            generator = self._new_generator(name, kind, options)
            if generator.folder.exists() and any(generator.folder.iterdir()):
                raise CommandError(
                    f"{generator.folder} already exists and is not empty, but no model {name!r} "
                    f"is registered: move it away or choose another name"
                )
        self._check(generator, params, options)

        with transaction.atomic():
            if created:
                generator.save()
            try:
                run = create_training_run(
                    generator=generator, total_steps=options["steps"], params=params
                )
            except InvalidJob as error:
                transaction.set_rollback(True)
                raise CommandError(str(error)) from None

        result = self._run_with_progress(generator, run, created, options["no_progress"])
        if result is not None and result.status == JobStatus.CANCELLED:
            raise CommandError(
                f"stopped at step {result.step} (cancelled); the checkpoint of that step is "
                f"kept: run again with --resume to continue"
            )
        if result is None or result.status != JobStatus.SUCCEEDED:
            error = (result.error if result else "") or "training did not finish"
            self._clean_up(generator, run, created)
            raise CommandError(error)
        generator.refresh_from_db()
        self.stdout.write(
            f"trained {name} to step {result.step} (loss {result.latest_loss:.4f}); "
            f"{len(generator.checkpoints)} checkpoint(s) in {generator.folder}"
            if result.latest_loss is not None
            else f"{name} was already trained to step {result.step}; nothing to do"
        )

    def _run_with_progress(
        self, generator: GeneratorModel, run: TrainingRun, created: bool, quiet: bool
    ) -> TrainingRun | None:
        """Run the training here with a progress bar; an interrupted run is marked failed."""
        bar = tqdm(
            total=run.total_steps,
            initial=min(generator.trained_steps, run.total_steps),
            unit="step",
            disable=quiet,
        )

        def on_progress(done: int, total: int, loss: float | None) -> None:
            bar.update(max(0, done - bar.n))
            if loss is not None:
                bar.set_postfix(loss=f"{loss:.4f}", refresh=False)

        try:
            with cancel_on_signals():  # SIGTERM / Ctrl-C: cancelled at a checkpoint, not stuck
                result = run_training(run.pk, on_progress=on_progress)
        except BaseException:
            bar.close()
            TrainingRun.objects.filter(pk=run.pk, status=JobStatus.RUNNING).update(
                status=JobStatus.FAILED, error="interrupted", finished_at=timezone.now()
            )
            self._clean_up(generator, run, created)
            raise
        bar.close()
        return result

    # ------------------------------------------------------------------------------------------
    def _params(self, kind: str, options) -> dict:
        mapping = {
            "batch_size": "batch_size",
            "lr": "lr",
            "checkpoint_every": "checkpoint_every",
            "seed": "seed",
            "device": "device",
        }
        own = backend_for(kind).command_options
        self._refuse_options_of_other_kinds(kind, options)
        mapping.update({param: option for option, param in own.items() if param})
        params = {
            key: options[option] for key, option in mapping.items() if _given(options.get(option))
        }
        if options["findings"]:
            params["findings"] = options["findings"]
        if options["steps"] < 1:
            raise CommandError("--steps must be at least 1")
        return params

    @staticmethod
    def _refuse_options_of_other_kinds(kind: str, options) -> None:
        own = backend_for(kind).command_options
        for other in BACKENDS:
            for option in backend_for(other).command_options:
                if option not in own and _given(options.get(option)):
                    raise CommandError(f"--{option.replace('_', '-')} is for {other} models")

    def _new_generator(self, name: str, kind: str, options) -> GeneratorModel:
        generator = GeneratorModel(name=name, kind=kind, modality=options["modality"])
        try:
            backend_for(kind).set_up_new(generator, options)
        except JobError as error:
            raise CommandError(str(error)) from None
        if options["findings"]:
            generator.findings = options["findings"]
        return generator

    def _check(self, generator: GeneratorModel, params: dict, options) -> None:
        """Every check that can fail before anything is written."""
        findings = params.get("findings") or resolve_findings(generator)
        available = pool_findings(generator.modality)
        unknown = [f for f in findings if f.lower() not in available]
        if unknown:
            raise CommandError(
                f"unknown finding(s) {', '.join(map(repr, unknown))}: the pool has real "
                f"{generator.modality} images with finding(s) "
                f"{', '.join(available) if available else '(none)'}"
            )
        try:
            backend_for(generator.kind).check_run(generator, params, options)
        except JobError as error:
            raise CommandError(str(error)) from None
        from generation.datasets import check_training_set

        try:
            if not generator.findings and params.get("findings"):
                generator.findings = params["findings"]
            check_training_set(generator)
        except DatasetError as error:
            raise CommandError(str(error)) from None

    def _clean_up(self, generator: GeneratorModel, run: TrainingRun, created: bool) -> None:
        """A model this command created and that never reached a checkpoint is removed again."""
        generator.refresh_from_db()
        if not created or generator.trained_steps:
            return
        with transaction.atomic():
            TrainingRun.objects.filter(generator=generator).delete()
            if generator.sample_grid:
                generator.sample_grid.delete(save=False)
            generator.delete()
        if generator.folder.is_dir() and not any(generator.folder.iterdir()):
            shutil.rmtree(generator.folder, ignore_errors=True)
