"""The one way an image enters the pool: files first, rows second, nothing half-written.

Imported files and generated images both come through here, so their originals and display
derivatives are named, made and stored the same way whatever their truth. Callers above the
pool (generation) pass ``then`` to write their own rows in the same transaction as the images.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from django.conf import settings
from django.core.files.base import ContentFile
from django.core.files.storage import default_storage
from django.db import transaction

from pool.findings import canonical
from pool.imaging import make_display_png
from pool.models import Image, original_upload_to

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class NewImage:
    """What the pool records about one stored file (each of its frames becomes an image)."""

    truth: str
    modality: str
    sha256: str
    original_format: str
    original_width: int
    original_height: int
    finding: str = ""
    source: str = ""
    # Set by the generation app for the images it makes; blank (None) for imports.
    generator: str = ""
    checkpoint: str = ""
    generation_job: int | None = None


@dataclass(frozen=True)
class NewFrame:
    index: int
    pixels: np.ndarray
    provenance: dict[str, Any] = field(default_factory=dict)


def display_png(pixels: np.ndarray) -> bytes:
    """The derivative readers receive, at the configured size."""
    return make_display_png(pixels, settings.IMAGE_DISPLAY_SIZE)


def decode_limits() -> dict[str, int]:
    """Keyword arguments of ``pool.imaging.read_image`` for files entering the pool.

    ``min_side``: twice the display size, so a huge image may be shrunk while it is decoded
    and still leave the display derivative enough pixels to be resampled from.
    """
    return {
        "max_bytes": settings.IMAGE_MAX_FILE_BYTES,
        "max_pixels": settings.IMAGE_MAX_PIXELS,
        "min_side": 2 * settings.IMAGE_DISPLAY_SIZE,
    }


def store_images(
    new: NewImage,
    *,
    original: bytes,
    extension: str,
    frames: Sequence[NewFrame],
    then: Callable[[list[Image]], None] | None = None,
) -> list[Image]:
    """Store one original file and an image row (with its display derivative) per frame.

    Every file is written before the rows; the rows, and whatever ``then`` writes, commit in
    one transaction. The finding is looked up in (or added to) the managed vocabulary, so the
    rows carry its canonical spelling. On any failure the files are removed again and the error
    propagates (an IntegrityError: the same content is already in the pool).
    """
    derivatives = [display_png(frame.pixels) for frame in frames]
    written: list[str] = []
    try:
        # A random name, whatever the truth: storage listings must not line up with it.
        name = default_storage.save(
            original_upload_to(None, f"x{extension}"), ContentFile(original)
        )
        written.append(name)
        images = []
        for frame, png in zip(frames, derivatives, strict=True):
            image = _image_row(new, frame, original_name=name)
            image.display.save("display.png", ContentFile(png), save=False)
            written.append(image.display.name)
            images.append(image)
        with transaction.atomic():
            finding = canonical(new.finding)
            for image in images:
                image.finding = finding
                image.save()
            if then is not None:
                then(images)
        return images
    except BaseException:
        _remove(written)
        raise


def _image_row(new: NewImage, frame: NewFrame, *, original_name: str) -> Image:
    image = Image(
        truth=new.truth,
        modality=new.modality,
        finding=new.finding,
        source=new.source,
        generator=new.generator,
        checkpoint=new.checkpoint[: Image._meta.get_field("checkpoint").max_length],
        generation_job=new.generation_job,
        sha256=new.sha256,
        frame_index=frame.index,
        original_format=new.original_format,
        original_width=new.original_width,
        original_height=new.original_height,
        provenance=frame.provenance,
    )
    image.original.name = original_name
    return image


def _remove(names: list[str]) -> None:
    for name in names:
        try:
            default_storage.delete(name)
        except Exception:
            logger.warning("could not remove %s after a failed store", name, exc_info=True)
