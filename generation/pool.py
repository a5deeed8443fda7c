"""Putting a generated image into the pool, exactly once per (job, index).

The raw generator output is kept losslessly as the original (a PNG written by Pillow) and
handed to the pool's store (`pool.storing.store_images`), the same code that stores imported
real images, so nothing about the files readers see or the names in storage tells them apart.
"""

from __future__ import annotations

import hashlib
import io
from typing import Any

import numpy as np
from django.db import IntegrityError
from PIL import Image as PILImage

from generation.models import GeneratedImage, GenerationJob
from pool.models import Image, Truth
from pool.storing import NewFrame, NewImage, store_images
from readerstudy.results import checkpoint_label


class DuplicateImageError(Exception):
    """The generated image is byte-identical to an image already in the pool."""


def encode_original(array: np.ndarray) -> bytes:
    """Lossless 8-bit greyscale PNG of the raw output, without metadata."""
    array = np.asarray(array)
    if array.ndim != 2 or array.dtype != np.uint8:
        raise ValueError(f"expected a 2-D uint8 array, got {array.dtype} {array.shape}")
    buffer = io.BytesIO()
    PILImage.fromarray(array, mode="L").save(buffer, format="PNG", optimize=False)
    return buffer.getvalue()


def _json_safe(value: Any) -> Any:
    if isinstance(value, dict):
        return {str(k): _json_safe(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_json_safe(v) for v in value]
    if isinstance(value, (np.integer,)):
        return int(value)
    if isinstance(value, (np.floating,)):
        return float(value)
    if value is None or isinstance(value, (str, int, float, bool)):
        return value
    return str(value)


def store_generated_image(
    job: GenerationJob, index: int, array: np.ndarray, provenance: dict[str, Any]
) -> Image | None:
    """Store output `index` of `job`; None if that slot is already filled (nothing written).

    The pool's store writes the files, then the Image row and (through ``then``) its
    GeneratedImage slot in one transaction, and removes the files if the rows fail. Raises
    DuplicateImageError if the same bytes are already in the pool under another job's slot.
    """
    if GeneratedImage.objects.filter(job=job, index=index).exists():
        return None
    original = encode_original(array)
    sha256 = hashlib.sha256(original).hexdigest()
    existing = Image.objects.filter(sha256=sha256, frame_index=0).first()
    if existing is not None:
        raise _duplicate(job, index, existing)
    height, width = array.shape
    recorded = _json_safe({**provenance, "job": job.pk, "index": index})
    new = NewImage(
        truth=Truth.SYNTHETIC,
        modality=job.generator.modality,
        finding=job.finding,
        source=job.generator.name,
        generator=job.generator.name,
        # The same label the statistics group checkpoints by, so a rule and a result agree.
        checkpoint=checkpoint_label(recorded),
        generation_job=job.pk,
        sha256=sha256,
        original_format="png",
        original_width=width,
        original_height=height,
    )
    frame = NewFrame(0, array, recorded)
    try:
        [image] = store_images(
            new, original=original, extension=".png", frames=[frame],
            then=lambda images: GeneratedImage.objects.create(job=job, index=index, image=images[0]),
        )
    except IntegrityError:
        if GeneratedImage.objects.filter(job=job, index=index).exists():
            return None  # made meanwhile by another run of the same job
        existing = Image.objects.filter(sha256=sha256, frame_index=0).first()
        if existing is not None:
            raise _duplicate(job, index, existing) from None
        raise
    return image


def _duplicate(job: GenerationJob, index: int, existing: Image) -> DuplicateImageError:
    slot = GeneratedImage.objects.filter(image=existing).select_related("job").first()
    origin = (
        f"made by generation job #{slot.job_id} (image {slot.index})"
        if slot is not None
        else f"from {existing.source or 'an import'}"
    )
    if job.generator.kind == "image-api":
        return DuplicateImageError(
            f"image {index}: the image API returned an image identical to pool image "
            f"{existing.public_id} {origin} (it may cache its answers); the pool keeps one copy "
            f"only. Vary the prompt, or start a new job later."
        )
    return DuplicateImageError(
        f"image {index} (seed {job.seed_for(index)}) is identical to pool image "
        f"{existing.public_id} {origin}: the same model, settings and seed make the same image. "
        f"Start a new job with another seed (for example {job.seed + job.count})."
    )
