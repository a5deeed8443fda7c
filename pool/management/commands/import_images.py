from argparse import ArgumentTypeError
from collections import Counter
from pathlib import Path

from django.core.management.base import BaseCommand, CommandError
from tqdm import tqdm

from pool.importing import (
    FAILED,
    ImportLabels,
    ImportOutcome,
    import_many,
    iter_folder,
    read_manifest,
)
from pool.models import Modality, Truth


def frame_range(raw: str) -> tuple[int, int]:
    try:
        first, _, last = raw.partition(":")
        span = (int(first), int(last or first))
    except ValueError:
        raise ArgumentTypeError("use FIRST:LAST, e.g. 10:40 (0-based, inclusive)") from None
    if span[0] < 0 or span[1] < span[0]:
        raise ArgumentTypeError("FIRST:LAST must satisfy 0 <= FIRST <= LAST")
    return span


class Command(BaseCommand):
    help = (
        "Import images into the pool: one file, a folder (recursively) or a manifest CSV. "
        "Formats: PNG, JPEG (8/16-bit, grayscale or RGB) and DICOM (compressed transfer "
        "syntaxes included; stored de-identified). A multi-frame DICOM becomes one image per "
        "frame, or per frame in --frames FIRST:LAST; a folder holding a CT series imports every "
        "slice file as its own image. Each file is reported as imported, duplicate or failed; "
        "the command exits with status 1 when any file failed."
    )

    def add_arguments(self, parser) -> None:
        parser.add_argument("path", nargs="?", type=Path, help="A file or a folder.")
        parser.add_argument("--manifest", type=Path, help="CSV with a 'path' column and optional "
                            "truth, modality, finding (or label) and source columns.")
        parser.add_argument("--truth", choices=Truth.values, default=Truth.REAL)
        parser.add_argument("--modality", choices=Modality.values,
                            help="Default: the DICOM Modality tag, else CXR.")
        parser.add_argument("--finding", default="", help="e.g. normal, pneumonia, covid")
        parser.add_argument("--source", default="", help="Dataset name.")
        parser.add_argument("--frames", type=frame_range, help="FIRST:LAST frames of multi-frame files.")
        parser.add_argument("--no-progress", action="store_true")

    def handle(self, *args, **options) -> None:
        try:
            labels = ImportLabels(
                truth=options["truth"],
                modality=options["modality"],
                finding=options["finding"],
                source=options["source"],
                frames=options["frames"],
            )
            items = self._items(options["path"], options["manifest"], labels)
        except ValueError as error:
            raise CommandError(str(error)) from None
        outcomes = self._import(items, progress=not options["no_progress"])
        failed = self._summarise(outcomes)
        if failed:
            # A script or CI job importing a folder must notice; the summary above says which.
            raise CommandError(f"{len(failed)} of {len(outcomes)} file(s) failed to import")

    def _import(self, items, *, progress: bool) -> list[ImportOutcome]:
        bar = tqdm(total=len(items), unit="file", disable=not progress or not items)

        def report(outcome: ImportOutcome) -> None:
            style = self.style.ERROR if outcome.status == FAILED else str
            with bar.external_write_mode():
                self.stdout.write(style(outcome.line()))
            bar.update()

        try:
            return import_many(items, progress=report)
        finally:
            bar.close()

    def _summarise(self, outcomes: list[ImportOutcome]) -> list[ImportOutcome]:
        """Print the failures again, then the counts (always the last line); return failures."""
        failed = [outcome for outcome in outcomes if outcome.status == FAILED]
        if failed and len(outcomes) > 1:
            self.stdout.write(self.style.ERROR(f"failed files ({len(failed)}):"))
            for outcome in failed:
                self.stdout.write(self.style.ERROR(f"  {outcome.name}: {outcome.detail}"))
        counts = Counter(outcome.status for outcome in outcomes)
        images = sum(len(outcome.images) for outcome in outcomes)
        self.stdout.write(
            f"{counts['imported']} imported ({images} images), {counts['duplicate']} duplicate, "
            f"{counts['failed']} failed"
        )
        return failed

    def _items(self, path: Path | None, manifest: Path | None, labels: ImportLabels):
        if manifest is not None:
            if path is not None:
                raise ValueError("give either PATH or --manifest, not both")
            if not manifest.is_file():
                raise ValueError(f"{manifest}: no such manifest")
            return [(row.path, row.labels) for row in read_manifest(manifest, labels)]
        if path is None:
            raise ValueError("give a PATH (file or folder) or --manifest")
        if path.is_dir():
            return [(file, labels) for file in iter_folder(path)]
        if path.is_file():
            return [(path, labels)]
        raise ValueError(f"{path}: no such file or folder")
