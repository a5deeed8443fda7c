"""Quality evaluation of a synthetic set (a generation job or a generator) against real images.

``evaluate(synthetic_spec, real_filter)`` is what ``manage.py evaluate_images`` and the Celery task
run:

1. the real images matching the filter are split at random (seeded, by image id) into an
   extractor half and a held-out half; the feature extractor is trained on the extractor half, or
   reused when one with the same version (same images, same settings) is stored;
2. ``compare_sets`` and ``machine_observer`` use the held-out real images (features of images the
   extractor was trained on would make the baseline optimistic);
3. ``find_memorized`` checks every synthetic image against *all* the matching real images (any
   copy of a patient is a leak), thresholds calibrated leave-one-out on them;
4. the ``to_jsonable`` output of the three is stored in a ``QualityEvaluation``.

The Fréchet distance, KID and precision/recall/density/coverage, and their real-vs-real
baselines, carry 95% percentile bootstrap intervals (``n_resamples``, seeded; 0 leaves point
estimates only). When the evaluation concerns a study (``study:<id>``), the fidelity figures are
computed a second time on the images as that study presents them (its presentation profile:
window, crop, matched resolution, display size), stored as ``report["quality_display"]`` beside
``report["quality"]`` (the images at the model's resolution, i.e. their display derivatives).

Settings: ``EVALUATION_EXTRACTOR`` (dict: epochs, input_size, feature_dim, width, seed) overrides
the extractor defaults.
"""

from __future__ import annotations

import hashlib
import io
import logging
from collections.abc import Callable
from functools import partial

import numpy as np
from django.conf import settings
from django.db import transaction
from django.utils import timezone
from PIL import Image as PILImage

from evaluation.metrics import (
    FeatureExtractor,
    compare_sets,
    find_memorized,
    machine_observer,
    train_feature_extractor,
)
from evaluation.metrics.quality import DEFAULT_RESAMPLES
from evaluation.models import EvaluationStatus, FeatureExtractorVersion, QualityEvaluation
from pool.findings import canonical_name
from pool.models import Image, Truth
from readerstudy.analysis import to_jsonable

logger = logging.getLogger(__name__)

MIN_REAL = 8  # 4 to train the extractor on, 4 held out (compare_sets and the observer need 4)
MIN_SYNTHETIC = 2
FILTER_FIELDS = {"modality": "modality", "finding": "finding__iexact", "source": "source"}
EXTRACTOR_DEFAULTS = {"epochs": 30, "input_size": 64, "feature_dim": 64, "width": 16, "seed": 0}
SPLIT_SEED = 0

Progress = Callable[[str], None]


class EvaluationError(ValueError):
    """The evaluation cannot run as asked; the message is for the researcher."""


def parse_real_filter(text: str) -> dict[str, str]:
    """``modality=CXR,finding=normal`` -> ORM lookups on real pool images."""
    lookups = {}
    for part in filter(None, (p.strip() for p in (text or "").split(","))):
        name, sep, value = part.partition("=")
        name = name.strip().lower()
        if not sep or name not in FILTER_FIELDS or not value.strip():
            raise EvaluationError(
                f"bad real-image filter {part!r}: use name=value pairs separated by commas, "
                f"names among {', '.join(FILTER_FIELDS)}"
            )
        value = value.strip()
        if name == "finding":  # a synonym, or another spelling, means the vocabulary's finding
            value = canonical_name(value) or value
        lookups[FILTER_FIELDS[name]] = value
    return lookups


def resolve_synthetic(spec: str):
    """``job:<pk>``, ``model:<name>`` or ``study:<public id or pk>`` ->
    (GenerationJob | None, GeneratorModel | None, Study | None, image queryset)."""
    from generation.models import GenerationJob, GeneratorModel
    from readerstudy.models import Study

    kind, _, key = (spec or "").partition(":")
    if kind == "job" and key.isdigit():
        job = GenerationJob.objects.select_related("generator").filter(pk=int(key)).first()
        if job is None:
            raise EvaluationError(f"no generation job #{key}")
        return job, job.generator, None, Image.objects.filter(generated_by__job=job)
    if kind == "model" and key:
        generator = GeneratorModel.objects.filter(name=key).first()
        if generator is None:
            raise EvaluationError(f"no generator model named {key!r}")
        images = Image.objects.filter(generated_by__job__generator=generator)
        return None, generator, None, images
    if kind == "study" and key:
        lookup = {"pk": int(key)} if key.isdigit() else {"public_id": key}
        study = Study.objects.filter(**lookup).first()
        if study is None:
            raise EvaluationError(f"no study {key!r}")
        # The study's synthetic half as readers see it: practice cases are not part of it.
        images = Image.objects.filter(
            truth=Truth.SYNTHETIC, study_cases__study=study, study_cases__is_practice=False
        )
        return None, None, study, images
    raise EvaluationError(f"--synthetic must be job:<pk>, model:<name> or study:<id>, got {spec!r}")


def load_pixels(image: Image) -> np.ndarray:
    """The display derivative (what readers see) as a 2-D uint8 grey array."""
    with image.display.open("rb") as handle:
        data = handle.read()
    with PILImage.open(io.BytesIO(data)) as opened:
        return np.asarray(opened.convert("L"), dtype=np.uint8).copy()


def split_real(ids: list[int]) -> tuple[list[int], list[int]]:
    """(extractor ids, held-out ids): a seeded random half each, sorted."""
    order = np.random.default_rng(SPLIT_SEED).permutation(sorted(ids))
    half = len(order) // 2
    return sorted(int(i) for i in order[:half]), sorted(int(i) for i in order[half:])


def extractor_settings(**overrides) -> dict:
    config = {**EXTRACTOR_DEFAULTS, **getattr(settings, "EVALUATION_EXTRACTOR", {})}
    config.update({k: v for k, v in overrides.items() if v is not None})
    return config


def get_or_train_extractor(
    ids: list[int], images: list[np.ndarray], labels: list[str], config: dict
) -> tuple[FeatureExtractorVersion, FeatureExtractor]:
    ids_hash = hashlib.sha256(",".join(map(str, sorted(ids))).encode()).hexdigest()
    from evaluation.metrics.features import ARCHITECTURE

    # the architecture is part of the key: an extractor stored by an older version is not reused
    settings_key = ",".join(f"{k}={config[k]}" for k in sorted(config)) + f";{ARCHITECTURE}"
    version = "fx-" + hashlib.sha256(f"{ids_hash};{settings_key}".encode()).hexdigest()[:16]
    row = FeatureExtractorVersion.objects.filter(version=version).first()
    if row is not None and (row.path / "weights.safetensors").is_file():
        extractor = FeatureExtractor.load(row.path)
        if extractor.sha256 == row.sha256:
            return row, extractor
    extractor = train_feature_extractor(images, labels, version=version, **config)
    folder = f"feature-extractors/{version}"
    target = settings.MODEL_ROOT / folder
    if not target.exists():
        extractor.save(target)
    else:  # a folder left by an earlier run that was not recorded: trust only matching weights
        stored = FeatureExtractor.load(target)
        if stored.sha256 != extractor.sha256:
            raise EvaluationError(f"{target} holds other weights than retraining gives")
    row, _ = FeatureExtractorVersion.objects.update_or_create(
        version=version,
        defaults={
            "folder": folder,
            "sha256": extractor.sha256,
            "trained_on_count": len(ids),
            "trained_on_hash": ids_hash,
            "trained_on_ids": sorted(ids),
            "config": config,
        },
    )
    return row, extractor


def evaluate(
    synthetic_spec: str,
    real_filter: str,
    *,
    evaluation: QualityEvaluation | None = None,
    progress: Progress | None = None,
    n_resamples: int = DEFAULT_RESAMPLES,
    **extractor_overrides,
) -> QualityEvaluation:
    """Run the whole evaluation and store it; raises EvaluationError (stored as failed) when the
    inputs cannot give figures. ``n_resamples``: bootstrap resamples of each interval."""
    say = progress or (lambda step: None)
    job, generator, study, synthetic_images = resolve_synthetic(synthetic_spec)
    if evaluation is None:
        evaluation = QualityEvaluation.objects.create(
            generation_job=job, generator=generator, study=study, real_filter=real_filter
        )
    evaluation.status = EvaluationStatus.RUNNING
    evaluation.save(update_fields=["status"])
    try:
        overrides = {**extractor_overrides, "n_resamples": n_resamples}
        _run(evaluation, synthetic_images, real_filter, say, overrides)
    except Exception as error:
        evaluation.status = EvaluationStatus.FAILED
        evaluation.error = str(error) if isinstance(error, EvaluationError) else repr(error)
        evaluation.finished_at = timezone.now()
        evaluation.save(update_fields=["status", "error", "finished_at"])
        raise
    return evaluation


def _check_counts(real_rows: list, synthetic_rows: list, real_filter: str) -> None:
    if len(synthetic_rows) < MIN_SYNTHETIC:
        raise EvaluationError(
            f"the evaluation needs at least {MIN_SYNTHETIC} synthetic images, got "
            f"{len(synthetic_rows)}"
        )
    if len(real_rows) < MIN_REAL:
        raise EvaluationError(
            f"the evaluation needs at least {MIN_REAL} real images matching "
            f"{real_filter or '(no filter)'!r} ({MIN_REAL // 2} to train the feature extractor "
            f"on, {MIN_REAL // 2} held out), got {len(real_rows)}"
        )


def _run(evaluation, synthetic_images, real_filter, say, overrides) -> None:
    n_resamples = overrides.pop("n_resamples")
    lookups = parse_real_filter(real_filter)
    real_rows = list(Image.objects.filter(truth=Truth.REAL, **lookups).order_by("id"))
    synthetic_rows = list(synthetic_images.order_by("id"))
    _check_counts(real_rows, synthetic_rows, real_filter)
    say("loading images")
    pixels = {row.pk: load_pixels(row) for row in real_rows}
    synthetic = [load_pixels(row) for row in synthetic_rows]
    by_id = {row.pk: row for row in real_rows}
    train_ids, held_ids = split_real(list(pixels))
    say("feature extractor")
    config = extractor_settings(**overrides)
    version_row, extractor = get_or_train_extractor(
        train_ids,
        [pixels[i] for i in train_ids],
        [by_id[i].finding or "-" for i in train_ids],
        config,
    )
    held_out = [pixels[i] for i in held_ids]
    say("fidelity figures")
    quality = compare_sets(held_out, synthetic, extractor, n_resamples=n_resamples)
    display = None
    study = presenting_study(evaluation)
    if study is not None:
        held_rows = [by_id[i] for i in held_ids]
        display = display_quality(study, held_rows, synthetic_rows, extractor, n_resamples)
    say("memorization")
    all_ids = sorted(pixels)
    memorization = find_memorized(synthetic, [pixels[i] for i in all_ids], extractor)
    say("machine observer")
    observer = machine_observer(held_out, synthetic, extractor)
    memo = to_jsonable(memorization)
    for match in memo.get("matches", []):  # pool ids, so pages can show the pairs
        match["synthetic_image"] = synthetic_rows[match["synthetic_index"]].public_id
        match["real_image"] = by_id[all_ids[match["real_index"]]].public_id
        match["pixel_real_image"] = by_id[all_ids[match["pixel_real_index"]]].public_id
    evaluation.extractor = version_row
    evaluation.report = {
        "quality": quality.to_jsonable(),
        "memorization": memo,
        "observer": to_jsonable(observer),
        "real_split": {"extractor": len(train_ids), "held_out": len(held_ids)},
    }
    if display is not None:
        evaluation.report["quality_display"] = display
    _finish(evaluation, memorization.n_flagged, len(synthetic_rows), len(real_rows))


def _finish(evaluation, n_flagged: int, n_synthetic: int, n_real: int) -> None:
    evaluation.flagged_count = n_flagged
    evaluation.n_synthetic = n_synthetic
    evaluation.n_real = n_real
    evaluation.status = EvaluationStatus.SUCCEEDED
    evaluation.finished_at = timezone.now()
    evaluation.error = ""
    evaluation.save()


def presenting_study(evaluation: QualityEvaluation):
    """The study whose presentation the images are also measured at: the evaluated study, or
    the study a generation job adds its images to; None for a model."""
    if evaluation.study_id:
        return evaluation.study
    job = evaluation.generation_job
    return job.study if job is not None and job.study_id else None


def presented_pixels(study, images: list[Image]) -> list[np.ndarray]:
    """Each image as the study presents it (its presentation profile, the study's CT window), as
    a 2-D uint8 array: the pixels of the derivative a reader would receive."""
    from readerstudy.services.presentation import (
        image_profile,
        profile_of,
        render_image,
        resolve_profile,
    )

    stored = profile_of(study)
    base = resolve_profile(study, stored)
    out = []
    for image in images:
        png = render_image(image, image_profile(base, image, stored.window()))
        with PILImage.open(io.BytesIO(png)) as opened:
            out.append(np.asarray(opened.convert("L"), dtype=np.uint8).copy())
    return out


def display_quality(study, real_rows, synthetic_rows, extractor, n_resamples: int) -> dict:
    """``compare_sets`` of the held-out real and the synthetic images at the study's display
    profile, with the profile's parameters (as JSON); ``not_defined`` says why when an image
    cannot be presented."""
    from dataclasses import asdict

    from pool.imaging.pipeline import PresentationError
    from readerstudy.services.presentation import resolve_profile

    profile = resolve_profile(study)
    described = {**asdict(profile), "key": profile.key(), "study": study.public_id}
    try:
        real, synthetic = (presented_pixels(study, rows) for rows in (real_rows, synthetic_rows))
    except (PresentationError, OSError) as error:  # the model-resolution figures still stand
        return {"not_defined": f"the images cannot be presented: {error}", "profile": described}
    report = compare_sets(real, synthetic, extractor, n_resamples=n_resamples).to_jsonable()
    report["profile"] = described
    return report


def evaluate_job_after_generation(job_pk: int) -> QualityEvaluation | None:
    """The task's body: the job's images against the real pool of its modality (and finding)."""
    from generation.models import GenerationJob, JobStatus

    job = GenerationJob.objects.select_related("generator").filter(pk=job_pk).first()
    if job is None or job.status != JobStatus.SUCCEEDED:
        return None
    real_filter = f"modality={job.generator.modality}"
    if job.finding:
        real_filter += f",finding={job.finding}"
    try:
        return evaluate(f"job:{job.pk}", real_filter)
    except EvaluationError as error:  # stored on the evaluation row; nothing to retry
        logger.warning("quality evaluation of job %s not possible: %s", job.pk, error)
        return QualityEvaluation.objects.filter(generation_job=job).first()


def enqueue_after_generation(job_pk: int) -> None:
    """Publish the evaluation task once the job's success is committed; never fails the job."""
    transaction.on_commit(partial(publish_evaluation, job_pk))


def publish_evaluation(job_pk: int) -> None:
    """Publish the evaluation task of a job now; a broker that is down is logged, not raised."""
    from evaluation.tasks import evaluate_generation_job

    try:
        evaluate_generation_job.delay(job_pk=job_pk)
    except Exception:  # the broker is down: the evaluation can be run by hand
        logger.exception("could not enqueue the quality evaluation of job %s", job_pk)
