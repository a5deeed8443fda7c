"""Training data from the pool: the display derivatives of REAL images, as uint8 arrays.

The display derivative is what readers see, so a generator trained on it learns exactly the
picture its outputs will be compared with (same size, same grey mapping, same crop).
"""

from __future__ import annotations

import io
from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np
from PIL import Image as PILImage

from generation.backends import backend_for
from generation.models import GeneratorModel
from pool.findings import canonical_name
from pool.models import Image, Truth


class DatasetError(ValueError):
    """The pool cannot provide a training set for this model; the message says why."""


def training_images(
    modality: str, findings: list[str] | None = None, *, without_finding: bool = False
):
    """Real pool images of `modality` whose finding is one of `findings` (any finding if empty),
    a finding named by a synonym of the vocabulary included, and with `without_finding` those
    that have no finding too."""
    queryset = Image.objects.filter(truth=Truth.REAL, modality=modality).order_by("id")
    if findings:
        wanted = {f.lower() for f in findings} | {canonical_name(f).lower() for f in findings}
        if without_finding:
            wanted.add("")
        ids = [
            pk
            for pk, finding in queryset.values_list("id", "finding")
            if (finding or "").lower() in wanted
        ]
        queryset = queryset.filter(id__in=ids)
    return queryset


def _describe(modality: str, findings: list[str] | None) -> str:
    which = f" with finding {', '.join(findings)}" if findings else ""
    return f"real {modality} images{which}"


def pool_findings(modality: str) -> list[str]:
    """The findings of the real images of `modality` in the pool, sorted (blank ones left out)."""
    values = (
        Image.objects.filter(truth=Truth.REAL, modality=modality)
        .exclude(finding="")
        .values_list("finding", flat=True)
        .distinct()
    )
    return sorted({v.lower() for v in values})


def resolve_findings(generator: GeneratorModel) -> list[str]:
    """The class labels to train on: the model's own, else every finding in the pool."""
    findings = (generator.config or {}).get("findings") or generator.findings or []
    return [str(f) for f in findings] or pool_findings(generator.modality)


def check_training_set(generator: GeneratorModel) -> int:
    """Number of training images for `generator`; DatasetError if there are none."""
    backend = backend_for(generator.kind)
    if not backend.trainable:
        return 0
    findings = resolve_findings(generator)
    if not backend.takes_prompt and not findings:
        raise DatasetError(
            f"the training set is empty: the pool has no real {generator.modality} images with "
            f"a finding (a ddpm model learns one class per finding). Import some first "
            f"(manage.py import_images --truth real --finding ...)."
        )
    count = training_images(generator.modality, findings).count()
    if not count:
        raise DatasetError(
            f"the training set is empty: no {_describe(generator.modality, findings)} in the "
            f"pool. Import some first (manage.py import_images --truth real ...)."
        )
    return count


def _decode(image: Image, resolution: int | None) -> np.ndarray:
    try:
        with image.display.open("rb") as handle:
            data = handle.read()
        with PILImage.open(io.BytesIO(data)) as picture:
            picture = picture.convert("L")
            if resolution and picture.size != (resolution, resolution):
                resample = (
                    PILImage.Resampling.LANCZOS
                    if picture.size[0] > resolution
                    else PILImage.Resampling.BICUBIC
                )
                picture = picture.resize((resolution, resolution), resample)
            return np.asarray(picture, dtype=np.uint8).copy()
    except (OSError, ValueError) as error:
        raise DatasetError(
            f"cannot read the display image of pool image {image.public_id}: {error}"
        ) from None


def _spellings(findings: list[str]) -> dict[str, str]:
    """The model's own spelling of each class, also when the pool names it through the
    vocabulary (lower-cased pool finding -> model finding)."""
    return {canonical_name(f).lower(): f for f in findings} | {f.lower(): f for f in findings}


def _decoded_items(
    generator: GeneratorModel,
    resolution: int | None,
    label: Callable[[Image], str] | None,
    progress: Callable[[int, int], None] | None,
) -> Iterator[tuple[Image, np.ndarray, str]]:
    """(pool image, uint8 array at `resolution`, label) of each training image, one at a time."""
    check_training_set(generator)
    findings = resolve_findings(generator)
    canonical = _spellings(findings)
    unconditional = label is None and not backend_for(generator.kind).takes_prompt
    images = training_images(generator.modality, findings, without_finding=unconditional)
    total = images.count()
    for number, image in enumerate(images.iterator(), start=1):
        text = label(image) if label else canonical.get(image.finding.lower(), image.finding)
        yield image, _decode(image, resolution), text
        if progress is not None:
            progress(number, total)


def export_training_set(
    generator: GeneratorModel,
    folder: Path,
    *,
    resolution: int | None = None,
    label: Callable[[Image], str] | None = None,
    progress: Callable[[int, int], None] | None = None,
) -> list[tuple[str, str]]:
    """[(PNG path, label)] of `generator`'s training images, written into `folder` one at a time:
    what a streaming trainer reads per batch (and what separate training processes, without
    Django, can open). Memory holds one image at a time whatever the pool's size.

    The label is the image's finding spelled as in the model's finding list (ddpm), or whatever
    `label(image)` returns (a prompt, for Stable Diffusion). A ddpm model also gets the images
    without a finding, labelled "": they train its null class (the unconditional branch that
    classifier-free guidance subtracts) instead of being left out. Images are resized to
    `resolution` as they are written."""
    items = []
    for image, array, text in _decoded_items(generator, resolution, label, progress):
        path = folder / f"{image.public_id}.png"
        PILImage.fromarray(array).save(path)
        items.append((str(path), text))
    return items
