"""Celery tasks that train generators and generate images, on the GPU queue.

The tasks are thin: they call `run_training` / `run_generation`, which the management commands
`train_model` and `generate_images` call too (synchronously, without a broker). Both are safe to
run twice: see `generation.runner` for how a job is claimed and held.
"""

from __future__ import annotations

import json
import logging
import uuid
from collections.abc import Callable
from pathlib import Path

from django.conf import settings
from django.core.files.base import ContentFile
from django.db import transaction
from django.utils import timezone

from generation import storage as model_storage
from generation.datasets import DatasetError, load_training_set, resolve_findings
from generation.models import (
    GeneratedImage,
    GenerationJob,
    GeneratorKind,
    GeneratorModel,
    JobStatus,
    TrainingRun,
)
from generation.pool import DuplicateImageError, store_generated_image
from generation.runner import JobLost, JobRunner, claim, default_worker_name
from readerstudy.services.studies import Balance, ImagesAdded, add_images
from spotthefake.celery import GPU_QUEUE, project_task

logger = logging.getLogger(__name__)

ProgressCallback = Callable[[int, int, float | None], None]

MAX_LOSS_POINTS = 2000


class JobError(Exception):
    """A job cannot run as configured; the message is for the researcher."""


try:  # only raised by Celery's prefork pool, which enforces time limits with signals
    from celery.exceptions import SoftTimeLimitExceeded
except ImportError:  # pragma: no cover
    SoftTimeLimitExceeded = None


# ------------------------------------------------------------------------------ devices
def _device_setting() -> str | None:
    return settings.GENERATION_DEVICE or None


def describe_device(device: str | None = None) -> str:
    """'cuda:0 (NVIDIA H100, bfloat16)' / 'cpu (float32)': what the admin shows."""
    import torch

    from generation.engine.devices import pick_placement

    placement = pick_placement(device)
    dev = placement.device
    label = str(dev)
    if dev.type == "cuda":
        index = dev.index if dev.index is not None else torch.cuda.current_device()
        label = f"cuda:{index} ({torch.cuda.get_device_name(index)}, {placement.dtype_name})"
    else:
        label = f"{label} ({placement.dtype_name})"
    return label


def _error_text(error: BaseException) -> str:
    return str(error).strip() or type(error).__name__


def _engine_errors() -> tuple[type[BaseException], ...]:
    """Exceptions whose message is meant for the researcher (bad input, bad folder, API errors)."""
    from generation.engine.ddpm import DDPMError
    from generation.engine.image_api import ImageApiError
    from generation.engine.stable_diffusion import StableDiffusionError

    return (
        DDPMError,
        StableDiffusionError,
        ImageApiError,
        JobError,
        DatasetError,
        DuplicateImageError,
        ValueError,
        OSError,
    )


# ============================================================================== training
# Run params read by the ddpm engine's TrainingConfig (the same names as its fields).
DDPM_TRAINING_PARAMS = frozenset({
    "batch_size", "grad_accum", "lr", "warmup_steps", "weight_decay", "ema_decay",
    "label_dropout", "checkpoint_every", "keep_checkpoints", "log_every", "grid_steps",
    "grid_guidance", "grid_per_class", "augment", "seed", "max_grad_norm",
})  # fmt: skip
DDPM_MODEL_PARAMS = frozenset({"preset", "dropout"})
SD_PARAMS = frozenset({
    "batch_size", "grad_accum", "lr", "checkpoint_every", "seed", "lora_rank",
    "train_text_encoder", "age_group", "resolution",
})  # fmt: skip
COMMON_PARAMS = frozenset({"findings", "device"})


def training_config_from(params: dict, total_steps: int):
    """The ddpm engine's TrainingConfig from a run's params, with defaults scaled to the run."""
    from generation.engine.training import TrainingConfig

    values = {k: v for k, v in params.items() if k in DDPM_TRAINING_PARAMS and v is not None}
    values.setdefault("checkpoint_every", max(1, min(1000, max(50, total_steps // 10))))
    values.setdefault("log_every", max(1, min(10, total_steps)))
    values.setdefault("warmup_steps", min(500, total_steps // 10))
    config = TrainingConfig(steps=total_steps, **values)
    config.validate()
    return config


def check_params(kind: str, params: dict) -> None:
    """JobError naming any setting this kind of model does not take (None values ignored)."""
    if kind == GeneratorKind.DDPM:
        known = DDPM_TRAINING_PARAMS | DDPM_MODEL_PARAMS | COMMON_PARAMS
    else:
        known = SD_PARAMS | COMMON_PARAMS
    unknown = sorted(k for k, v in params.items() if k not in known and v not in (None, ""))
    if unknown:
        raise JobError(f"unknown training setting(s) for a {kind} model: {', '.join(unknown)}")


def ddpm_config_for(generator: GeneratorModel, params: dict):
    """The model's DDPMConfig: the stored one once trained, else a new one from the model row."""
    from generation.engine.ddpm import DDPMConfig

    stored = generator.config or {}
    if stored.get("resolution"):
        return DDPMConfig.from_dict(stored)
    findings = resolve_findings(generator)
    if not findings:
        raise JobError(
            f"the training set is empty: the pool has no real {generator.modality} images with "
            f"a finding to train model {generator.name!r} on. Import some first "
            f"(manage.py import_images --truth real --finding ...)."
        )
    return DDPMConfig(
        resolution=int(generator.resolution),
        findings=findings,
        preset=params.get("preset", "small"),
        modality=generator.modality,
        name=generator.name,
        dropout=float(params.get("dropout", 0.0)),
    )


def _read_loss_curve(path: Path) -> list[list[float]]:
    if not path.is_file():
        return []
    points = []
    for line in path.read_text().splitlines():
        try:
            row = json.loads(line)
            points.append([int(row["step"]), float(row["loss"])])
        except (ValueError, KeyError, TypeError):
            continue
    if len(points) > MAX_LOSS_POINTS:
        stride = -(-len(points) // MAX_LOSS_POINTS)
        points = points[::stride] + ([points[-1]] if (len(points) - 1) % stride else [])
    return points


def _checkpoint_entries(generator: GeneratorModel) -> list[dict]:
    """[{step, path, weights_sha256}] of the complete checkpoints in the local model folder."""
    folder = generator.folder
    entries = []
    if generator.kind == GeneratorKind.DDPM:
        from generation.engine import checkpoints as ckpt

        for step, path in ckpt.list_checkpoints(folder):
            try:
                marker = json.loads((path / ckpt.MARKER).read_text())
            except (OSError, ValueError):
                continue
            entries.append(
                {
                    "step": step,
                    "path": str(path.relative_to(folder)),
                    "weights_sha256": marker.get("weights_sha256", ""),
                }
            )
    else:
        from generation.engine.stable_diffusion import (
            CHECKPOINT_PREFIX,
            LORA_WEIGHT_NAME,
            TRAINING_STATE_NAME,
            sha256_file,
        )

        if folder.is_dir():
            for path in sorted(folder.glob(f"{CHECKPOINT_PREFIX}*")):
                suffix = path.name[len(CHECKPOINT_PREFIX) :]
                if not (
                    suffix.isdigit()
                    and (path / TRAINING_STATE_NAME).is_file()
                    and (path / LORA_WEIGHT_NAME).is_file()
                ):
                    continue
                entries.append(
                    {
                        "step": int(suffix),
                        "path": str(path.relative_to(folder)),
                        "weights_sha256": sha256_file(path / LORA_WEIGHT_NAME),
                    }
                )
    entries.sort(key=lambda e: e["step"])
    return entries


def record_checkpoints(generator: GeneratorModel, runner: JobRunner | None = None) -> None:
    """Copy what the model folder says (checkpoints, loss curve, sample grid) into the model row,
    and share the newest checkpoint through the media storage when configured."""
    entries = _checkpoint_entries(generator)
    known = {e["step"]: e for e in generator.checkpoints or []}
    for entry in entries:
        entry["saved_at"] = (
            known.get(entry["step"], {}).get("saved_at") or timezone.now().isoformat()
        )
    newest = entries[-1] if entries else None
    is_new = newest is not None and newest["step"] not in known
    if newest is not None and settings.GENERATION_SHARE_MODELS:
        files = known.get(newest["step"], {}).get("files", [])
        dirs = [newest["path"]]
        if (
            generator.kind == GeneratorKind.STABLE_DIFFUSION
            and (generator.folder / "lora").is_dir()
        ):
            dirs.append("lora")  # the final export, written after the last checkpoint
        if not files or not all(any(f.startswith(d + "/") for f in files) for d in dirs):
            files = model_storage.publish(generator, *dirs)
        newest["files"] = files
    log_name = "loss.jsonl" if generator.kind == GeneratorKind.DDPM else "loss_log.jsonl"
    generator.checkpoints = entries
    generator.trained_steps = newest["step"] if newest else 0
    generator.loss_curve = _read_loss_curve(generator.folder / log_name)
    fields = ["checkpoints", "trained_steps", "loss_curve", "updated_at"]
    grid = generator.folder / newest["path"] / "samples.png" if newest else None
    if is_new and grid is not None and grid.is_file():
        old = generator.sample_grid.name if generator.sample_grid else ""
        generator.sample_grid.save("samples.png", ContentFile(grid.read_bytes()), save=False)
        fields.append("sample_grid")
        if old:
            generator.sample_grid.storage.delete(old)
    generator.save(update_fields=fields)
    if is_new and runner is not None:
        runner.log(f"checkpoint at step {newest['step']} saved")


def run_training(
    run_pk: int,
    *,
    token: str | None = None,
    worker: str | None = None,
    heartbeat: bool = True,
    soft_time_limit_s: float | None = None,
    on_progress: ProgressCallback | None = None,
) -> TrainingRun | None:
    """Run (or resume) training run `run_pk`; returns the run as it ended, or None if this call
    did not get to run it (finished already, or held by a live worker).

    Pre: the run exists; its generator is ddpm or stable-diffusion; the pool has real images of
    the generator's modality and findings. Post: the run is succeeded (the model folder holds a
    checkpoint at `total_steps`), cancelled (the last checkpoint is kept, including one of the
    step it stopped at), or failed with a reason; the generator row lists the checkpoints, the
    loss curve and the latest sample grid. Running it again resumes from the latest checkpoint.
    """
    token = token or f"local-{uuid.uuid4().hex}"
    run = claim(TrainingRun, run_pk, token, worker=worker or default_worker_name())
    if run is None:
        return None
    with JobRunner(
        run,
        token,
        heartbeat=heartbeat,
        soft_time_limit_s=soft_time_limit_s,
        on_progress=on_progress,
    ) as runner:
        try:
            _train(run, runner)
        except JobLost:
            logger.info("training run #%s was taken over or ended elsewhere", run_pk)
        except Exception as error:  # noqa: BLE001 - every failure must end up on the row
            _fail(runner, error, kept=_training_kept(run))
    run.refresh_from_db()
    return run


def _training_kept(run: TrainingRun) -> str:
    generator = GeneratorModel.objects.get(pk=run.generator_id)
    return (
        f"The last checkpoint (step {generator.trained_steps}) is kept; Retry resumes from it."
        if generator.trained_steps
        else "No checkpoint was written."
    )


def _fail(runner: JobRunner, error: BaseException, *, kept: str) -> None:
    if SoftTimeLimitExceeded is not None and isinstance(error, SoftTimeLimitExceeded):
        message = runner.time_limit_message(kept)
    elif isinstance(error, _engine_errors()):
        message = _error_text(error)
    else:
        logger.exception("job failed unexpectedly")
        message = f"Unexpected error ({type(error).__name__}): {error}. {kept}"
    try:
        runner.log(f"failed: {message}", flush=False)
        runner.finish(JobStatus.FAILED, error=message)
    except JobLost:
        pass


def _train(run: TrainingRun, runner: JobRunner) -> None:
    generator = run.generator
    params = {k: v for k, v in (run.params or {}).items() if v not in (None, "")}
    check_params(generator.kind, params)
    if generator.kind == GeneratorKind.IMAGE_API:
        raise JobError("a hosted image API model cannot be trained")
    device = params.get("device") or _device_setting()
    runner.write(device=describe_device(device)[:100])
    runner.log(
        f"attempt {run.attempts} on {run.worker}, device {runner.job.device}; "
        f"training {generator.name} ({generator.kind}) to step {run.total_steps}"
    )
    if settings.GENERATION_SHARE_MODELS:
        model_storage.fetch(generator, for_training=True)

    def on_step(step: int, total: int, loss: float) -> None:
        if step % max(1, checkpoint_every) == 0 or step == total:
            record_checkpoints(generator, runner)
        runner.progress(step, total, loss=loss, step=step, latest_loss=loss)

    def cancel() -> bool:
        return runner.should_stop()

    if generator.kind == GeneratorKind.DDPM:
        from generation.engine import training

        config = ddpm_config_for(generator, params)
        if params.get("findings"):
            wanted = [str(f) for f in params["findings"]]
            if wanted != list(config.findings):
                raise JobError(
                    f"model {generator.name!r} was trained on findings {config.findings}; a run "
                    f"cannot change them to {wanted}: make a new model"
                )
        tc = training_config_from(params, run.total_steps)
        checkpoint_every = tc.checkpoint_every
        GeneratorModel.objects.filter(pk=generator.pk).update(
            config=config.to_dict(),
            findings=list(config.findings),
            resolution=config.resolution,
        )
        generator.refresh_from_db()
        dataset = load_training_set(generator, resolution=config.resolution)
        runner.log(f"{len(dataset)} training images ({', '.join(config.findings)})")
        result = training.train(
            dataset,
            config,
            generator.folder,
            tc,
            device=device,
            on_step=on_step,
            cancel=cancel,
            resume=True,
            save_on_cancel=True,
        )
        stopped = result.cancelled
        step, last_loss = result.step, result.last_loss
    else:
        from generation.engine.prompts import build_prompt
        from generation.engine.stable_diffusion import LoraTrainingConfig, train_lora

        age_group = params.get("age_group") or (generator.config or {}).get("age_group")
        resolution = params.get("resolution") or generator.resolution or None
        lora_config = LoraTrainingConfig(
            rank=int(params.get("lora_rank", 8)),
            learning_rate=float(params.get("lr", 1e-4)),
            max_steps=run.total_steps,
            batch_size=int(params.get("batch_size", 1)),
            gradient_accumulation_steps=int(params.get("grad_accum", 1)),
            checkpoint_every=int(
                params.get("checkpoint_every", max(1, min(250, run.total_steps // 4 or 1)))
            ),
            resolution=int(resolution) if resolution else None,
            train_text_encoder=bool(params.get("train_text_encoder", False)),
            seed=int(params.get("seed", 0)),
        )
        lora_config.validate()
        checkpoint_every = lora_config.checkpoint_every
        dataset = load_training_set(
            generator,
            resolution=lora_config.resolution,
            label=lambda image: build_prompt(generator.modality, image.finding, age_group),
        )
        runner.log(f"{len(dataset)} training images; prompts like {dataset[0][1]!r}")
        GeneratorModel.objects.filter(pk=generator.pk).update(
            config={
                **(generator.config or {}),
                "lora": {k: v for k, v in lora_config.__dict__.items()},
                **({"age_group": age_group} if age_group else {}),
            },
        )
        generator.refresh_from_db()
        result = train_lora(
            generator.base_checkpoint,
            generator.folder,
            dataset,
            lora_config,
            device=device,
            resume=True,
            on_step=on_step,
            cancel=cancel,
            model_name=generator.name,
        )
        stopped = result.cancelled
        step, last_loss = result.step, result.last_loss
    record_checkpoints(generator, runner)
    fields = {"step": step}
    if last_loss is not None:
        fields["latest_loss"] = last_loss
    if not stopped:
        runner.log(f"finished at step {step}", flush=False)
        runner.finish(JobStatus.SUCCEEDED, **fields)
    elif runner.stop_reason == "lost":
        raise JobLost()
    elif runner.stop_reason == "time":
        message = runner.time_limit_message(
            f"A checkpoint of step {step} is kept; Retry resumes from it."
        )
        runner.log(message, flush=False)
        runner.finish(JobStatus.FAILED, error=message, **fields)
    else:
        runner.log(f"cancelled at step {step}; a checkpoint of that step is kept", flush=False)
        runner.finish(JobStatus.CANCELLED, **fields)


# ============================================================================ generation
def _prompt_for(job: GenerationJob) -> str:
    from generation.engine.prompts import build_prompt

    if job.prompt:
        return job.prompt
    age_group = (job.generator.config or {}).get("age_group")
    return build_prompt(job.generator.modality, job.finding, age_group)


class _Stop(Exception):
    pass


def run_generation(
    job_pk: int,
    *,
    token: str | None = None,
    worker: str | None = None,
    heartbeat: bool = True,
    soft_time_limit_s: float | None = None,
    on_progress: ProgressCallback | None = None,
) -> GenerationJob | None:
    """Make the missing images of generation job `job_pk`; returns the job as it ended, or None
    if this call did not get to run it (finished already, or held by a live worker).

    Pre: the job exists and its generator can sample (a trained ddpm folder, a Stable Diffusion
    folder, or a configured image API). Post: succeeded with exactly `count` images, image k in
    slot (job, k) from seed `seed + k`, each in the pool as synthetic with its provenance (and,
    with a study whose orders are not drawn yet, added to it as cases); or cancelled / failed with
    the images made so far kept. Running it again makes only the missing images.
    """
    token = token or f"local-{uuid.uuid4().hex}"
    job = claim(GenerationJob, job_pk, token, worker=worker or default_worker_name())
    if job is None:
        return None
    with JobRunner(
        job,
        token,
        heartbeat=heartbeat,
        soft_time_limit_s=soft_time_limit_s,
        on_progress=on_progress,
    ) as runner:
        try:
            _generate(job, runner)
        except JobLost:
            logger.info("generation job #%s was taken over or ended elsewhere", job_pk)
        except Exception as error:  # noqa: BLE001 - every failure must end up on the row
            done = job.outputs.count()
            _fail(
                runner,
                error,
                kept=(
                    f"The {done} image(s) made so far are kept; Retry makes only the missing ones."
                ),
            )
    job.refresh_from_db()
    return job


def _generate(job: GenerationJob, runner: JobRunner) -> None:
    generator = job.generator
    made = set(job.outputs.values_list("index", flat=True))
    missing = [k for k in range(job.count) if k not in made]
    runner.write(done_count=len(made))
    if not missing:
        runner.log(f"all {job.count} images were already made")
        _succeed(job, runner)
        return
    device = _device_setting()
    runner.write(
        device=(
            describe_device(device) if generator.kind != GeneratorKind.IMAGE_API else "remote API"
        )[:100]
    )
    runner.log(
        f"attempt {job.attempts} on {job.worker}, device {runner.job.device}: making "
        f"{len(missing)} of {job.count} images with {generator.name} ({generator.kind})"
    )

    def store(position: int, image) -> None:
        index = missing[position]
        store_generated_image(job, index, image.array, image.provenance)
        done = job.outputs.count()
        runner.progress(done, job.count, done_count=done)

    def cancel() -> bool:
        return runner.should_stop()

    seeds = [job.seed_for(k) for k in missing]
    try:
        if generator.kind == GeneratorKind.DDPM:
            from generation.engine import checkpoints, sampling

            if settings.GENERATION_SHARE_MODELS:
                model_storage.fetch(generator)
            model = checkpoints.load_model(generator.folder)
            try:
                sampling.sample(
                    model,
                    job.finding,
                    seeds=seeds,
                    steps=job.steps,
                    guidance=job.guidance,
                    scheduler=job.scheduler,
                    device=device,
                    batch_size=job.batch_size,
                    on_image=store,
                    cancel=cancel,
                )
            except sampling.SamplingCancelled:
                raise _Stop() from None
        elif generator.kind == GeneratorKind.STABLE_DIFFUSION:
            from generation.engine.stable_diffusion import (
                FINAL_LORA_DIRNAME,
                GenerationCancelled,
                StableDiffusionGenerator,
            )

            if settings.GENERATION_SHARE_MODELS:
                model_storage.fetch(generator)
            lora = generator.folder / FINAL_LORA_DIRNAME
            engine = StableDiffusionGenerator(
                generator.base_checkpoint,
                lora=lora if lora.is_dir() else None,
                model_name=generator.name,
                device=device,
            )
            try:
                engine.generate(
                    _prompt_for(job),
                    seeds,
                    negative_prompt=job.negative_prompt or None,
                    steps=job.steps,
                    guidance=job.guidance,
                    scheduler=job.scheduler,
                    width=generator.resolution or None,
                    height=generator.resolution or None,
                    batch_size=job.batch_size,
                    on_image=store,
                    cancel=cancel,
                )
            except GenerationCancelled:
                raise _Stop() from None
            finally:
                engine.close()
        elif generator.kind == GeneratorKind.IMAGE_API:
            from generation.engine.image_api import ImageApiCancelled, ImageApiClient

            client = ImageApiClient(
                settings.IMAGE_API_BASE_URL,
                settings.IMAGE_API_KEY,
                settings.IMAGE_API_MODEL,
                timeout_s=settings.IMAGE_API_TIMEOUT_S,
                max_retries=settings.IMAGE_API_MAX_RETRIES,
                size=settings.IMAGE_API_SIZE,
            )
            try:
                client.generate_many(
                    [_prompt_for(job)] * len(missing), on_image=store, cancel=cancel
                )
            except ImageApiCancelled:
                raise _Stop() from None
        else:
            raise JobError(f"unknown generator kind {generator.kind!r}")
    except _Stop:
        pass
    done = job.outputs.count()
    if runner.stop_reason == "lost":
        raise JobLost()
    if runner.stop_reason is None or done >= job.count:
        if done < job.count:
            raise JobError(f"the generator returned {done} of {job.count} images without an error")
        runner.progress(done, job.count, done_count=done, force=True)
        _succeed(job, runner)
    elif runner.stop_reason == "time":
        message = runner.time_limit_message(
            f"The {done} image(s) made so far are kept; Retry makes only the missing ones."
        )
        runner.log(message, flush=False)
        runner.finish(JobStatus.FAILED, error=message, done_count=done)
    else:
        runner.log(f"cancelled with {done} of {job.count} images made; they are kept", flush=False)
        runner.finish(JobStatus.CANCELLED, done_count=done)


def _succeed(job: GenerationJob, runner: JobRunner) -> None:
    """Mark the job succeeded and, in the same transaction, add its images to its study."""
    with transaction.atomic():
        if job.study_id is not None:
            _add_to_study(job, runner)
        runner.log(f"done: {job.count} images in the pool", flush=False)
        runner.finish(JobStatus.SUCCEEDED, done_count=job.count)
        # --- evaluation app: quality evaluation of the new images (gpu queue), on commit ---
        from evaluation.quality import enqueue_after_generation

        enqueue_after_generation(job.pk)
        # --- end evaluation app ---


def _add_to_study(job: GenerationJob, runner: JobRunner) -> None:
    """Hand the job's images to the reader study (its service decides what may be added)."""
    image_ids = list(
        GeneratedImage.objects.filter(job=job).order_by("index").values_list("image_id", flat=True)
    )
    balance = Balance(job.generator.modality, job.finding) if job.keep_study_balance else None
    runner.log(_study_note(job, add_images(job.study_id, image_ids, balance=balance)), flush=False)


def _study_note(job: GenerationJob, outcome: ImagesAdded) -> str:
    if outcome.study_title is None:
        return "the study was deleted meanwhile; images not added to any study"
    if outcome.frozen:
        return (
            f"NOTE: readers' orders are already drawn for study {outcome.study_title!r}, so its "
            f"cases are frozen: the images were NOT added to it (they are in the pool)."
        )
    note = f"added {outcome.added} synthetic image(s) to study {outcome.study_title!r}"
    if job.keep_study_balance and outcome.added:
        note += f" and {outcome.balancing} real one(s) to keep the balance"
        if outcome.balancing < outcome.added:
            note += (
                f" (NOTE: only {outcome.balancing} matching real {job.generator.modality} "
                f"image(s) {'with finding ' + job.finding + ' ' if job.finding else ''}were left "
                f"in the pool, so the study is not balanced)"
            )
    return note


# ================================================================================ tasks
def _celery_worker_name(task) -> str:
    hostname = getattr(task.request, "hostname", None)
    return f"{hostname} (pid {__import__('os').getpid()})" if hostname else default_worker_name()


_GPU_LIMITS = {
    "soft_time_limit": settings.GPU_TASK_SOFT_TIME_LIMIT,
    "time_limit": settings.GPU_TASK_HARD_TIME_LIMIT,
}


@project_task(queue=GPU_QUEUE, bind=True, **_GPU_LIMITS)
def train_generator(self, *, run_pk: int) -> None:
    """Train (or resume) the training run `run_pk` on a GPU worker.

    Pre: a TrainingRun with this pk (normally queued; enqueued on commit by
    `services.start_training` / `services.retry`). Post: the run is succeeded, cancelled or failed
    (with a reason), the model folder holds its checkpoints and the generator row mirrors them.
    Safe to run twice: a finished run is left alone, a run held by a live worker is left alone,
    and a run whose worker died resumes from its latest checkpoint.
    """
    run_training(
        run_pk,
        token=self.request.id or f"celery-{uuid.uuid4().hex}",
        worker=_celery_worker_name(self),
        soft_time_limit_s=settings.GPU_TASK_SOFT_TIME_LIMIT,
    )


@project_task(queue=GPU_QUEUE, bind=True, **_GPU_LIMITS)
def generate_images(self, *, job_pk: int) -> None:
    """Make the images of generation job `job_pk` on a GPU worker.

    Pre: a GenerationJob with this pk (normally queued; enqueued on commit by
    `services.start_generation` / `services.retry`). Post: succeeded with exactly `count` images
    in the pool (and in the study, if asked and still allowed), or cancelled / failed with the
    images made so far kept. Safe to run twice: only the missing (job, k) slots are made, with
    seed `seed + k`; a finished job is left alone.
    """
    run_generation(
        job_pk,
        token=self.request.id or f"celery-{uuid.uuid4().hex}",
        worker=_celery_worker_name(self),
        soft_time_limit_s=settings.GPU_TASK_SOFT_TIME_LIMIT,
    )
