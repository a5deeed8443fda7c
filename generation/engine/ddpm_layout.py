"""The names in a ddpm model folder and how its checkpoints are found (see `checkpoints`).

No torch here: the web process lists a model's checkpoints with these.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

MARKER = "generator.json"
CHECKPOINTS_DIR = "checkpoints"
UNET_DIR = "unet"
UNET_CONFIG = "unet/config.json"
WEIGHTS = "unet/diffusion_pytorch_model.safetensors"
SCHEDULER_CONFIG = "scheduler/scheduler_config.json"
RAW_WEIGHTS = "raw_unet.safetensors"
TRAINING_STATE = "training_state.pt"
SAMPLE_GRID = "samples.png"
LOSS_LOG = "loss.jsonl"

SAMPLING_FILES = (MARKER, UNET_CONFIG, WEIGHTS, SCHEDULER_CONFIG)
RESUME_FILES = SAMPLING_FILES + (RAW_WEIGHTS, TRAINING_STATE)

_STEP_DIR = re.compile(r"^step-(\d+)$")
_TMP_PREFIX = ".tmp-"


def step_dir_name(step: int) -> str:
    return f"step-{step:08d}"


def list_checkpoints(model_dir: str | os.PathLike) -> list[tuple[int, Path]]:
    """(step, folder) of every renamed-into-place checkpoint, oldest first."""
    root = Path(model_dir) / CHECKPOINTS_DIR
    if not root.is_dir():
        return []
    found = []
    for child in root.iterdir():
        match = _STEP_DIR.match(child.name)
        if match and child.is_dir():
            found.append((int(match.group(1)), child))
    return sorted(found)


def latest_checkpoint(model_dir: str | os.PathLike) -> Path | None:
    checkpoints = list_checkpoints(model_dir)
    return checkpoints[-1][1] if checkpoints else None
