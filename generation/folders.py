"""Reading a model's folder and row for its page: checkpoints, loss curve, sample grids.

Workers record a model's checkpoints, loss curve and latest sample grid on its row (so any
web server can show them); the model folder, where this machine can see it, adds the weights'
sizes and every checkpoint's own grid, and stands in for the row when it is still empty
(a model trained with the command on this machine). Each kind's layout comes from its backend.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from django.conf import settings
from django.utils.dateparse import parse_datetime

from generation.backends import backend_for
from generation.backends.base import FolderLayout
from generation.models import GeneratorModel
from generation.plots import read_loss_log, thin_points


@dataclass(frozen=True)
class Checkpoint:
    step: int
    saved_at: datetime | None
    weights_bytes: int | None
    has_grid: bool


def folder_layout(generator: GeneratorModel) -> FolderLayout:
    """Where the engine of this kind keeps checkpoints, weights, grids and the loss log."""
    return backend_for(generator.kind).folder_layout(generator.folder)


def _stat(path: Path):
    try:
        return path.stat()
    except OSError:
        return None


def checkpoints(generator: GeneratorModel, layout: FolderLayout) -> list[Checkpoint]:
    """Newest first: the recorded checkpoints and those in the folder, by step."""
    on_disk = dict(layout.checkpoints)
    recorded = {}
    for entry in generator.checkpoints or []:
        if isinstance(entry, dict) and isinstance(entry.get("step"), int):
            recorded[entry["step"]] = entry
    rows = []
    for step in sorted(set(on_disk) | set(recorded), reverse=True):
        folder = on_disk.get(step)
        weights = _stat(folder / layout.weights) if folder else None
        saved_at = parse_datetime(str(recorded.get(step, {}).get("saved_at") or ""))
        if saved_at is None and folder is not None and (marker := _stat(folder / layout.marker)):
            saved_at = datetime.fromtimestamp(marker.st_mtime, tz=UTC)
        rows.append(
            Checkpoint(
                step=step,
                saved_at=saved_at,
                weights_bytes=weights.st_size if weights else None,
                has_grid=bool(folder and layout.grid and (folder / layout.grid).is_file()),
            )
        )
    return rows


def loss_points(generator: GeneratorModel, layout: FolderLayout) -> list[tuple[int, float]]:
    points = []
    for row in generator.loss_curve or []:
        try:
            step, loss = int(row[0]), float(row[1])
        except (TypeError, ValueError, IndexError, KeyError):
            continue
        points.append((step, loss))
    if points:
        return thin_points(points)
    return read_loss_log(layout.loss_log) if layout.loss_log else []


def grid_file(layout: FolderLayout, step: int) -> Path | None:
    """The grid of checkpoint `step`, if it exists inside MODEL_ROOT.

    The URL carries only integers: the folder is one the engine lists for this model, and the
    resolved file must still lie inside MODEL_ROOT (no symlink leads anywhere else).
    """
    folder = dict(layout.checkpoints).get(step)
    if folder is None or layout.grid is None:
        return None
    grid = (folder / layout.grid).resolve()
    if not grid.is_relative_to(Path(settings.MODEL_ROOT).resolve()) or not grid.is_file():
        return None
    return grid
