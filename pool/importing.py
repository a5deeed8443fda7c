"""Importing files into the image pool, all or nothing per file.

The pixel work lives in `pool.imaging` (no Django); this module hashes, checks for
duplicates, stores the original and the display derivative, and writes the rows.
"""

from __future__ import annotations

import csv
import hashlib
import logging
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

from django.conf import settings
from django.core.files.base import ContentFile
from django.core.files.storage import default_storage
from django.db import IntegrityError, transaction

from pool.imaging import DecodedFile, ImageImportError, make_display_png, read_image
from pool.models import Image, Modality, Truth

logger = logging.getLogger(__name__)

IMPORTED, DUPLICATE, FAILED = "imported", "duplicate", "failed"


@dataclass(frozen=True)
class ImportLabels:
    truth: str = Truth.REAL
    modality: str | None = None  # None: from the DICOM Modality tag, else CXR
    finding: str = ""
    source: str = ""
    frames: tuple[int, int] | None = None

    def __post_init__(self) -> None:
        if self.truth not in Truth.values:
            raise ValueError(f"truth must be one of {', '.join(Truth.values)}, not {self.truth!r}")
        if self.modality is not None and self.modality not in Modality.values:
            raise ValueError(
                f"modality must be one of {', '.join(Modality.values)}, not {self.modality!r}"
            )


@dataclass
class ImportOutcome:
    name: str
    status: str
    detail: str = ""
    images: list[Image] = field(default_factory=list)

    def line(self) -> str:
        suffix = f": {self.detail}" if self.detail else ""
        return f"{self.status:9} {self.name}{suffix}"


def import_bytes(data: bytes, *, name: str, labels: ImportLabels) -> ImportOutcome:
    """Import one file's bytes. Never raises for bad input: the outcome says what happened."""
    if len(data) > settings.IMAGE_MAX_FILE_BYTES:
        return ImportOutcome(name, FAILED, _over_size_limit())
    sha256 = hashlib.sha256(data).hexdigest()
    if Image.objects.filter(sha256=sha256).exists():
        return ImportOutcome(name, DUPLICATE, "already in the pool")
    try:
        decoded = read_image(
            data,
            name=name,
            max_bytes=settings.IMAGE_MAX_FILE_BYTES,
            max_pixels=settings.IMAGE_MAX_PIXELS,
            frames=labels.frames,
        )
    except ImageImportError as error:
        return ImportOutcome(name, FAILED, str(error))
    try:
        images = _store(decoded, sha256=sha256, name=name, labels=labels)
    except IntegrityError:
        # A concurrent import of the same file won the race.
        return ImportOutcome(name, DUPLICATE, "already in the pool")
    frames = f" ({len(images)} frames)" if len(images) > 1 else ""
    return ImportOutcome(name, IMPORTED, f"{decoded.format}{frames}", images)


def _over_size_limit() -> str:
    mib = settings.IMAGE_MAX_FILE_BYTES / 2**20
    return f"file is over the {mib:.3g} MiB limit (IMAGE_MAX_FILE_BYTES)"


def import_path(path: Path, *, labels: ImportLabels, display_name: str | None = None) -> ImportOutcome:
    name = display_name or str(path)
    try:
        size = path.stat().st_size
        if size > settings.IMAGE_MAX_FILE_BYTES:
            return ImportOutcome(name, FAILED, _over_size_limit())
        data = path.read_bytes()
    except OSError as error:
        return ImportOutcome(name, FAILED, f"cannot read file: {error.strerror or error}")
    return import_bytes(data, name=path.name if display_name is None else name, labels=labels)


def _store(decoded: DecodedFile, *, sha256: str, name: str, labels: ImportLabels) -> list[Image]:
    """Write files first, rows second; on any failure remove the files again."""
    size = settings.IMAGE_DISPLAY_SIZE
    derivatives = [make_display_png(frame.pixels, size) for frame in decoded.frames]
    written: list[str] = []
    try:
        original_name = default_storage.save(
            f"originals/upload{decoded.original_extension}", ContentFile(decoded.original_bytes)
        )
        written.append(original_name)
        with transaction.atomic():
            images = []
            for frame, png in zip(decoded.frames, derivatives, strict=True):
                image = Image(
                    truth=labels.truth,
                    modality=labels.modality or decoded.modality or Modality.CXR,
                    finding=labels.finding,
                    source=labels.source,
                    sha256=sha256,
                    frame_index=frame.index,
                    original_format=decoded.format,
                    original_width=decoded.width,
                    original_height=decoded.height,
                    provenance={
                        "dataset": labels.source,
                        "original_name": Path(name).name,
                        "import": decoded.details,
                    },
                )
                image.original.name = original_name
                image.display.save("display.png", ContentFile(png), save=False)
                written.append(image.display.name)
                image.save()
                images.append(image)
        return images
    except BaseException:
        for stored in written:
            default_storage.delete(stored)
        raise


def iter_folder(folder: Path) -> Iterator[Path]:
    """Every regular, non-hidden file below `folder`, in a stable order."""
    for path in sorted(folder.rglob("*")):
        relative = path.relative_to(folder)
        if path.is_file() and not any(part.startswith(".") for part in relative.parts):
            yield path


@dataclass(frozen=True)
class ManifestRow:
    path: Path
    labels: ImportLabels


def read_manifest(manifest: Path, defaults: ImportLabels) -> list[ManifestRow]:
    """Rows of a CSV with a `path` column (relative to the CSV) and optional per-row labels.

    Recognised columns: path, truth, modality, finding (or label), source. Missing cells fall
    back to the command-line values.
    """
    with manifest.open(newline="", encoding="utf-8-sig") as handle:
        reader = csv.DictReader(handle)
        if not reader.fieldnames or "path" not in reader.fieldnames:
            raise ValueError(f"{manifest}: the manifest needs a 'path' column")
        rows = []
        for number, row in enumerate(reader, start=2):
            try:
                labels = ImportLabels(
                    truth=(row.get("truth") or defaults.truth).strip(),
                    modality=(row.get("modality") or defaults.modality or "").strip() or None,
                    finding=(row.get("finding") or row.get("label") or defaults.finding).strip(),
                    source=(row.get("source") or defaults.source).strip(),
                    frames=defaults.frames,
                )
            except ValueError as error:
                raise ValueError(f"{manifest}, line {number}: {error}") from None
            rows.append(ManifestRow(manifest.parent / row["path"].strip(), labels))
        return rows


def import_many(
    items: Iterable[tuple[Path, ImportLabels]], *, progress=None
) -> list[ImportOutcome]:
    outcomes = []
    for path, labels in items:
        outcome = import_path(path, labels=labels, display_name=str(path))
        outcomes.append(outcome)
        if progress is not None:
            progress(outcome)
    return outcomes
