"""Sharing model folders between GPU workers through the media storage (e.g. S3).

The engines read and write model folders on local disk (MODEL_ROOT). With several GPU workers on
several machines and no shared disk, set GENERATION_SHARE_MODELS (on by default with
STORAGE_S3_BUCKET): after each checkpoint the worker that trained it copies the checkpoint (and
the model-level files) to ``models/<name>/...`` in the default storage, and records the file list
on the generator row; a worker that lacks the newest checkpoint fetches it before it samples or
resumes training.
"""

from __future__ import annotations

import logging
import os
import shutil
import uuid
from pathlib import Path

from django.core.files.base import File
from django.core.files.storage import default_storage

from generation.backends import backend_for
from generation.models import GeneratorModel

logger = logging.getLogger(__name__)

PREFIX = "models"
_TMP = ".tmp-"


def storage_name(generator: GeneratorModel, relative: str) -> str:
    return f"{PREFIX}/{generator.name}/{relative}"


def _model_level_files(generator: GeneratorModel) -> list[str]:
    return list(backend_for(generator.kind).model_level_files)


def publish(generator: GeneratorModel, *relative_folders: str) -> list[str]:
    """Copy the model-level files and every file under `relative_folders` (relative to the model
    folder) to the storage, overwriting; returns the relative paths copied."""
    folder = generator.folder
    relatives: list[str] = []
    for name in _model_level_files(generator):
        if (folder / name).is_file():
            relatives.append(name)
    for sub in relative_folders:
        base = folder / sub
        if not base.is_dir():
            continue
        for path in sorted(base.rglob("*")):
            if path.is_file() and not any(
                p.startswith(_TMP) for p in path.relative_to(folder).parts
            ):
                relatives.append(str(path.relative_to(folder)))
    for relative in relatives:
        name = storage_name(generator, relative)
        if default_storage.exists(name):
            default_storage.delete(name)
        with open(folder / relative, "rb") as handle:
            saved = default_storage.save(name, File(handle, name=Path(relative).name))
        if saved != name:  # a storage that renames instead of overwriting
            raise OSError(f"the storage stored {name} as {saved}; cannot share the model")
    logger.info("shared %d file(s) of model %s", len(relatives), generator.name)
    return relatives


def _download(name: str, target: Path) -> None:
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.with_name(f"{_TMP}{uuid.uuid4().hex[:8]}-{target.name}")
    try:
        with default_storage.open(name, "rb") as source, open(tmp, "wb") as sink:
            shutil.copyfileobj(source, sink, 1 << 20)
        os.replace(tmp, target)
    finally:
        tmp.unlink(missing_ok=True)


def fetch(generator: GeneratorModel, *, for_training: bool = False) -> bool:
    """Make sure the newest shared checkpoint is in the local model folder; True if downloaded.

    A checkpoint folder is downloaded into a temporary sibling and renamed into place, so the
    engines never see half of one.
    """
    entries = [e for e in (generator.checkpoints or []) if e.get("files")]
    if not entries:
        return False
    newest = entries[-1]
    folder = generator.folder
    checkpoint = folder / newest["path"]
    extra = list(backend_for(generator.kind).shared_folders)
    wanted_dirs = [
        newest["path"],
        *[d for d in extra if any(f.startswith(d + "/") for f in newest["files"])],
    ]
    if all((folder / d).is_dir() for d in wanted_dirs):
        return False
    folder.mkdir(parents=True, exist_ok=True)
    for relative in newest["files"]:
        if "/" not in relative:  # model-level file
            _download(storage_name(generator, relative), folder / relative)
    for sub in wanted_dirs:
        final = folder / sub
        if final.is_dir():
            continue
        tmp = final.with_name(f"{_TMP}fetch-{uuid.uuid4().hex[:8]}")
        try:
            for relative in newest["files"]:
                if relative.startswith(sub + "/"):
                    _download(storage_name(generator, relative), tmp / relative[len(sub) + 1 :])
            os.replace(tmp, final)
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
    logger.info("fetched model %s step %s from the storage", generator.name, newest["step"])
    return checkpoint.is_dir()
