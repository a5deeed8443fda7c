"""Saving and loading ddpm model folders.

Layout of a model folder written by `training.train`::

    <model_dir>/
        generator.json                  {"kind": "ddpm", "role": "model", "format": 1, "model": {...}}
        loss.jsonl                      one JSON row per log interval
        checkpoints/
            step-00001000/
                generator.json          kind, role "checkpoint", step, model + training config,
                                        SHA-256 of the weights, library versions
                unet/config.json        diffusers UNet2DModel config
                unet/diffusion_pytorch_model.safetensors   EMA weights (used for sampling)
                scheduler/scheduler_config.json            the training noise schedule
                raw_unet.safetensors    raw (non-EMA) weights
                training_state.pt       optimizer, LR scheduler, EMA, step, RNG states
                samples.png             sample grid made with the EMA weights

A checkpoint is written into ``checkpoints/.tmp-...`` and renamed into place only when every file
is on disk, so a ``step-N`` folder is always complete; the latest checkpoint is the one with the
highest step. Temporary folders left by a hard crash are removed by the next training run.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from .ddpm import FORMAT_VERSION, KIND, DDPMConfig, DDPMError, build_unet
from .ddpm_layout import (  # noqa: F401 - the layout's names, read through this module too
    _STEP_DIR,
    _TMP_PREFIX,
    CHECKPOINTS_DIR,
    LOSS_LOG,
    MARKER,
    RAW_WEIGHTS,
    RESUME_FILES,
    SAMPLE_GRID,
    SAMPLING_FILES,
    SCHEDULER_CONFIG,
    TRAINING_STATE,
    UNET_CONFIG,
    UNET_DIR,
    WEIGHTS,
    latest_checkpoint,
    list_checkpoints,
    step_dir_name,
)


class ModelFolderError(DDPMError):
    """A model folder is missing, incomplete, corrupt or of another kind."""


# ---------------------------------------------------------------------------- small helpers
def sha256_file(path: str | os.PathLike, chunk: int = 1 << 20) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        while block := fh.read(chunk):
            digest.update(block)
    return digest.hexdigest()


def _fsync_file(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _fsync_dir(path: Path) -> None:
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:  # not supported on this platform
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def write_json_atomic(path: str | os.PathLike, data: Any) -> None:
    path = Path(path)
    fd, tmp = tempfile.mkstemp(prefix=_TMP_PREFIX, suffix=".json", dir=path.parent)
    try:
        with os.fdopen(fd, "w") as fh:
            json.dump(data, fh, indent=2, sort_keys=True)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def read_json(path: Path, what: str) -> dict[str, Any]:
    try:
        data = json.loads(path.read_text())
    except FileNotFoundError:
        raise ModelFolderError(f"{path.parent}: missing {path.name} ({what})") from None
    except (OSError, ValueError) as exc:
        raise ModelFolderError(f"{path}: unreadable {what}: {exc}") from None
    if not isinstance(data, dict):
        raise ModelFolderError(f"{path}: {what} is not a JSON object")
    return data


def remove_stale_temporaries(model_dir: str | os.PathLike) -> None:
    """Delete half-written checkpoints left by a crash (they were never renamed into place)."""
    for parent in (Path(model_dir), Path(model_dir) / CHECKPOINTS_DIR):
        if not parent.is_dir():
            continue
        for child in parent.iterdir():
            if child.name.startswith(_TMP_PREFIX):
                if child.is_dir():
                    shutil.rmtree(child, ignore_errors=True)
                else:
                    child.unlink(missing_ok=True)


def prune_checkpoints(model_dir: str | os.PathLike, keep: int) -> None:
    """Keep the `keep` newest checkpoints (keep <= 0: keep all)."""
    if keep <= 0:
        return
    for _, path in list_checkpoints(model_dir)[:-keep]:
        # rename first so that a crash mid-delete never leaves a partial step-N folder
        doomed = path.with_name(f"{_TMP_PREFIX}del-{path.name}-{uuid.uuid4().hex[:8]}")
        os.rename(path, doomed)
        shutil.rmtree(doomed, ignore_errors=True)


def model_marker(config: DDPMConfig) -> dict[str, Any]:
    return {"kind": KIND, "role": "model", "format": FORMAT_VERSION, "model": config.to_dict()}


def check_files(folder: Path, required: tuple[str, ...]) -> None:
    missing = [name for name in required if not (folder / name).is_file()]
    if missing:
        raise ModelFolderError(f"incomplete ddpm checkpoint {folder}: missing {', '.join(missing)}")


# ---------------------------------------------------------------------------------- saving
def _save_safetensors(tensors: dict[str, torch.Tensor], path: Path) -> None:
    from safetensors.torch import save_file

    save_file(
        {k: v.detach().to("cpu", torch.float32).contiguous() for k, v in tensors.items()},
        str(path),
        metadata={"format": "pt"},
    )


def _write_training_state(state: dict[str, Any], path: Path) -> None:
    torch.save(state, path)


def _write_grid(grid: np.ndarray, path: Path) -> None:
    from PIL import Image

    Image.fromarray(grid).save(path)


def save_checkpoint(
    model_dir: str | os.PathLike,
    step: int,
    *,
    config: DDPMConfig,
    unet_config: dict[str, Any],
    scheduler_config: dict[str, Any],
    ema_weights: dict[str, torch.Tensor],
    raw_weights: dict[str, torch.Tensor],
    training_state: dict[str, Any],
    training_config: dict[str, Any] | None = None,
    grid: np.ndarray | None = None,
    keep: int = 0,
) -> Path:
    """Write a complete checkpoint for `step` atomically and return its folder."""
    from .devices import library_versions

    root = Path(model_dir) / CHECKPOINTS_DIR
    root.mkdir(parents=True, exist_ok=True)
    final = root / step_dir_name(step)
    tmp = root / f"{_TMP_PREFIX}{final.name}-{uuid.uuid4().hex[:8]}"
    tmp.mkdir()
    try:
        (tmp / UNET_DIR).mkdir()
        (tmp / "scheduler").mkdir()
        (tmp / UNET_CONFIG).write_text(json.dumps(unet_config, indent=2, sort_keys=True))
        (tmp / SCHEDULER_CONFIG).write_text(json.dumps(scheduler_config, indent=2, sort_keys=True))
        _save_safetensors(ema_weights, tmp / WEIGHTS)
        _save_safetensors(raw_weights, tmp / RAW_WEIGHTS)
        _write_training_state(training_state, tmp / TRAINING_STATE)
        if grid is not None:
            _write_grid(grid, tmp / SAMPLE_GRID)
        marker = {
            "kind": KIND,
            "role": "checkpoint",
            "format": FORMAT_VERSION,
            "step": step,
            "model": config.to_dict(),
            "training": training_config or {},
            "weights": WEIGHTS,
            "weights_sha256": sha256_file(tmp / WEIGHTS),
            "raw_weights_sha256": sha256_file(tmp / RAW_WEIGHTS),
            "library_versions": library_versions(),
        }
        (tmp / MARKER).write_text(json.dumps(marker, indent=2, sort_keys=True))
        _move_into_place(tmp, final)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    prune_checkpoints(model_dir, keep)
    return final


def _move_into_place(tmp: Path, final: Path) -> None:
    """Sync every file of `tmp` to disk, then rename it to `final` (swapping out an older one)."""
    root = final.parent
    for path in tmp.rglob("*"):
        if path.is_file():
            _fsync_file(path)
    _fsync_dir(tmp)
    if final.exists():  # re-writing a step (resumed from an older checkpoint): swap it out
        old = root / f"{_TMP_PREFIX}old-{final.name}-{uuid.uuid4().hex[:8]}"
        os.rename(final, old)
        os.rename(tmp, final)
        shutil.rmtree(old, ignore_errors=True)
    else:
        os.rename(tmp, final)
    _fsync_dir(root)


# --------------------------------------------------------------------------------- loading
@dataclass
class LoadedModel:
    """A ddpm UNet with EMA weights, ready to sample from (see `sampling.sample`)."""

    unet: torch.nn.Module
    config: DDPMConfig
    scheduler_config: dict[str, Any]
    name: str
    folder: Path  # the model folder (or the checkpoint folder if loaded directly)
    checkpoint: Path
    step: int
    weights_path: Path
    weights_sha256: str
    kind: str = KIND
    _compiled: dict[str, Any] = field(default_factory=dict, repr=False)

    @property
    def findings(self) -> list[str]:
        return list(self.config.findings)

    @property
    def resolution(self) -> int:
        return self.config.resolution


def _reject_other_kinds(folder: Path) -> None:
    index = folder / "model_index.json"
    if index.is_file():
        try:
            cls = json.loads(index.read_text()).get("_class_name", "a diffusers pipeline")
        except (OSError, ValueError):
            cls = "a diffusers pipeline"
        raise ModelFolderError(
            f"{folder} is a diffusers pipeline folder ({cls}, model_index.json), e.g. a Stable "
            f"Diffusion model, not a ddpm model (missing {MARKER} with kind 'ddpm')"
        )


def _check_marker(marker: dict[str, Any], path: Path) -> None:
    kind = marker.get("kind")
    if kind != KIND:
        raise ModelFolderError(
            f"{path} describes a model of kind {kind!r}, not {KIND!r}"
            if kind
            else f"{path} has no 'kind'; not a ddpm model folder"
        )
    fmt = marker.get("format")
    if fmt != FORMAT_VERSION:
        raise ModelFolderError(
            f"{path}: unsupported ddpm folder format {fmt!r} (expected {FORMAT_VERSION})"
        )


def resolve_checkpoint(
    folder: str | os.PathLike, required: tuple[str, ...] = SAMPLING_FILES
) -> tuple[Path, Path, dict]:
    """(model folder, checkpoint folder, checkpoint marker) for a model or checkpoint folder."""
    folder = Path(folder)
    if not folder.exists():
        raise ModelFolderError(f"model folder {folder} does not exist")
    if not folder.is_dir():
        raise ModelFolderError(f"{folder} is not a folder")
    _reject_other_kinds(folder)
    if not (folder / MARKER).is_file():
        raise ModelFolderError(f"{folder} is not a ddpm model folder: missing {MARKER}")
    marker = read_json(folder / MARKER, "ddpm model description")
    _check_marker(marker, folder / MARKER)
    checkpoint: Path | None
    if marker.get("role") == "checkpoint":
        model_dir, checkpoint = folder.parent.parent, folder
    else:
        model_dir = folder
        checkpoint = latest_checkpoint(folder)
        if checkpoint is None:
            raise ModelFolderError(
                f"{folder} has no checkpoint yet (nothing in {folder / CHECKPOINTS_DIR}); "
                f"training has not reached its first checkpoint"
            )
    check_files(checkpoint, required)
    ckpt_marker = read_json(checkpoint / MARKER, "ddpm checkpoint description")
    _check_marker(ckpt_marker, checkpoint / MARKER)
    for key in ("step", "model", "weights_sha256"):
        if key not in ckpt_marker:
            raise ModelFolderError(f"{checkpoint / MARKER}: missing {key!r}")
    return model_dir, checkpoint, ckpt_marker


def load_state_tensors(path: Path) -> dict[str, torch.Tensor]:
    from safetensors.torch import load_file

    try:
        return load_file(str(path), device="cpu")
    except Exception as exc:  # noqa: BLE001 - safetensors raises its own error types
        raise ModelFolderError(f"{path}: unreadable weights file: {exc}") from None


def load_model(
    folder: str | os.PathLike, local_files_only: bool = True, *, verify: bool = True
) -> LoadedModel:
    """Load the EMA UNet of the latest checkpoint of a model folder (or of one checkpoint folder).

    ddpm models are only ever local folders; `local_files_only` is accepted for symmetry with the
    other generator kinds and nothing is downloaded whatever its value. With `verify`, the weights'
    SHA-256 is checked against the one written with the checkpoint.
    """
    model_dir, checkpoint, marker = resolve_checkpoint(folder)
    try:
        config = DDPMConfig.from_dict(marker["model"])
    except (TypeError, DDPMError) as exc:
        raise ModelFolderError(f"{checkpoint / MARKER}: bad model config: {exc}") from None
    weights_path = checkpoint / WEIGHTS
    digest = sha256_file(weights_path)
    if verify and digest != marker["weights_sha256"]:
        raise ModelFolderError(
            f"{weights_path}: SHA-256 {digest} does not match the one recorded when the checkpoint "
            f"was written ({marker['weights_sha256']}); the file is corrupt or was replaced"
        )
    unet = build_unet(config)
    state = load_state_tensors(weights_path)
    try:
        unet.load_state_dict(state, strict=True)
    except RuntimeError as exc:
        raise ModelFolderError(
            f"{weights_path} does not fit the saved model config: {exc}"
        ) from None
    unet.eval().requires_grad_(False)
    scheduler_config = read_json(checkpoint / SCHEDULER_CONFIG, "scheduler config")
    return LoadedModel(
        unet=unet,
        config=config,
        scheduler_config=scheduler_config,
        name=config.name or model_dir.name,
        folder=model_dir,
        checkpoint=checkpoint,
        step=int(marker["step"]),
        weights_path=weights_path,
        weights_sha256=digest,
    )


def load_training_state(checkpoint: Path) -> dict[str, Any]:
    check_files(checkpoint, RESUME_FILES)
    try:
        return torch.load(checkpoint / TRAINING_STATE, map_location="cpu", weights_only=True)
    except Exception as exc:  # noqa: BLE001 - unpickling can fail in many ways
        raise ModelFolderError(
            f"{checkpoint / TRAINING_STATE}: unreadable training state: {exc}"
        ) from None
