"""Importing files into the image pool, all or nothing per file.

The pixel work lives in `pool.imaging` (no Django) and storing in `pool.storing`; this module
checks sizes, hashes, checks for duplicates, and reports per file what happened.
"""

from __future__ import annotations

import csv
import hashlib
import logging
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

from django.conf import settings
from django.core.files.uploadedfile import UploadedFile
from django.db import IntegrityError

from pool.imaging import DecodedFile, ImageImportError, read_image
from pool.models import Image, Modality, Truth
from pool.storing import NewFrame, NewImage, decode_limits, store_images

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
        return ImportOutcome(name, FAILED, over_size_limit())
    sha256 = hashlib.sha256(data).hexdigest()
    if Image.objects.filter(sha256=sha256).exists():
        return ImportOutcome(name, DUPLICATE, "already in the pool")
    try:
        decoded = read_image(data, name=name, frames=labels.frames, **decode_limits())
    except ImageImportError as error:
        return ImportOutcome(name, FAILED, str(error))
    try:
        images = _record(decoded, sha256=sha256, name=name, labels=labels)
    except IntegrityError:
        # A concurrent import of the same file won the race.
        return ImportOutcome(name, DUPLICATE, "already in the pool")
    frames = f" ({len(images)} frames)" if len(images) > 1 else ""
    return ImportOutcome(name, IMPORTED, f"{decoded.format}{frames}", images)


def over_size_limit() -> str:
    mib = settings.IMAGE_MAX_FILE_BYTES / 2**20
    return f"file is over the {mib:.3g} MiB limit (IMAGE_MAX_FILE_BYTES)"


def import_path(path: Path, *, labels: ImportLabels, display_name: str | None = None) -> ImportOutcome:
    name = display_name or str(path)
    try:
        size = path.stat().st_size
        if size > settings.IMAGE_MAX_FILE_BYTES:
            return ImportOutcome(name, FAILED, over_size_limit())
        data = path.read_bytes()
    except OSError as error:
        return ImportOutcome(name, FAILED, f"cannot read file: {error.strerror or error}")
    return import_bytes(data, name=path.name if display_name is None else name, labels=labels)


def import_upload(upload: UploadedFile, *, labels: ImportLabels) -> ImportOutcome:
    """Import a file uploaded through the web page; its size is checked before it is read."""
    name = upload.name or "upload"
    if upload.size is None or upload.size > settings.IMAGE_MAX_FILE_BYTES:
        return ImportOutcome(name, FAILED, over_size_limit())
    upload.seek(0)
    return import_bytes(upload.read(), name=name, labels=labels)


def _record(decoded: DecodedFile, *, sha256: str, name: str, labels: ImportLabels) -> list[Image]:
    """Store the decoded file's original and one image per frame (all or nothing)."""
    new = NewImage(
        truth=labels.truth,
        modality=labels.modality or decoded.modality or Modality.CXR,
        finding=labels.finding,
        source=labels.source,
        sha256=sha256,
        original_format=decoded.format,
        original_width=decoded.width,
        original_height=decoded.height,
    )
    provenance = {"dataset": labels.source, "original_name": Path(name).name, "import": decoded.details}
    frames = [NewFrame(frame.index, frame.pixels, provenance) for frame in decoded.frames]
    return store_images(
        new, original=decoded.original_bytes, extension=decoded.original_extension, frames=frames
    )


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
