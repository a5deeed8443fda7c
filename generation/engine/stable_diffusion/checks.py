"""Folder checks before anything is loaded: weights, hashes, a base checkpoint, a LoRA folder.

No torch here, so a form can check a folder in the web process.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from .errors import CheckpointError
from .layout import (
    _MODEL_WEIGHT_NAMES,
    _SHARD_INDEX_NAMES,
    LORA_WEIGHT_NAME,
    REQUIRED_COMPONENTS,
)

_SHA_CACHE: dict[tuple[str, int, int], str] = {}


def sha256_file(path: str | os.PathLike) -> str:
    """Hex SHA-256 of a file, cached by (path, size, mtime) since SD UNets are gigabytes."""
    path = Path(path).resolve()
    stat = path.stat()
    key = (str(path), stat.st_size, stat.st_mtime_ns)
    if key not in _SHA_CACHE:
        digest = hashlib.sha256()
        with open(path, "rb") as handle:
            for block in iter(lambda: handle.read(1 << 20), b""):
                digest.update(block)
        _SHA_CACHE[key] = digest.hexdigest()
    return _SHA_CACHE[key]


def _find_weights(component_dir: Path) -> tuple[list[Path], str | None]:
    """The weight file(s) of one component folder and the diffusers variant they need.

    Returns ([single file] or [index file, shards...], variant) or ([], None) if there are none.
    """
    for variant in (None, "fp16", "bf16"):
        for name in _MODEL_WEIGHT_NAMES:
            if variant:
                stem, ext = name.rsplit(".", 1)
                name = f"{stem}.{variant}.{ext}"
            candidate = component_dir / name
            if candidate.is_file():
                return [candidate], variant
        for name in _SHARD_INDEX_NAMES:
            if variant:
                stem, rest = name.split(".", 1)
                name = f"{stem}.{variant}.{rest}"
            index = component_dir / name
            if index.is_file():
                try:
                    weight_map = json.loads(index.read_text(encoding="utf-8"))["weight_map"]
                except (ValueError, KeyError) as exc:
                    raise CheckpointError(f"{index} is not a readable shard index: {exc}") from exc
                shards = sorted({component_dir / shard for shard in weight_map.values()})
                missing = [s.name for s in shards if not s.is_file()]
                if missing:
                    raise CheckpointError(
                        f"{component_dir} is incomplete: shard(s) {', '.join(missing)} listed in "
                        f"{index.name} are missing"
                    )
                return [index, *shards], variant
    return [], None


def weights_sha256(files: Sequence[Path]) -> str:
    """SHA-256 of a single weights file; for a sharded one, of the shards' hashes in order."""
    if len(files) == 1:
        return sha256_file(files[0])
    digest = hashlib.sha256()
    for shard in files[1:]:
        digest.update(sha256_file(shard).encode("ascii"))
    return digest.hexdigest()


def _read_json(path: Path) -> dict:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise CheckpointError(f"{path} could not be read as JSON: {exc}") from exc
    if not isinstance(data, dict):
        raise CheckpointError(f"{path} does not hold a JSON object")
    return data


@dataclass(frozen=True)
class CheckpointInfo:
    """What `check_checkpoint` found in a base checkpoint folder."""

    path: Path
    pipeline_class: str
    unet_weights: tuple[Path, ...]
    unet_sha256: str
    variant: str | None
    prediction_type: str
    scheduler_config: dict


def check_checkpoint(path: str | os.PathLike, *, hash_weights: bool = True) -> CheckpointInfo:
    """Check that `path` is a complete diffusers Stable Diffusion pipeline folder.

    Raises CheckpointError naming what is missing or what the folder is instead. With
    `hash_weights`, the UNet weights are hashed (cached) for provenance.
    """
    folder = _existing_folder(path)
    _check_model_index(folder)
    pipeline_class = _check_pipeline(folder)
    _check_components(folder)
    unet_class = _read_json(folder / "unet" / "config.json").get("_class_name")
    if unet_class != "UNet2DConditionModel":
        raise CheckpointError(
            f"{folder}/unet holds a {unet_class}, not a text-conditioned UNet2DConditionModel"
        )
    scheduler_config = _read_json(folder / "scheduler" / "scheduler_config.json")
    unet_files, variant = _find_weights(folder / "unet")
    return CheckpointInfo(
        path=folder.resolve(),
        pipeline_class=pipeline_class,
        unet_weights=tuple(unet_files),
        unet_sha256=weights_sha256(unet_files) if hash_weights else "",
        variant=variant,
        prediction_type=str(scheduler_config.get("prediction_type", "epsilon")),
        scheduler_config=scheduler_config,
    )


def _existing_folder(path: str | os.PathLike | None) -> Path:
    if path is None or str(path).strip() == "":
        raise CheckpointError("no Stable Diffusion checkpoint folder was configured")
    folder = Path(path).expanduser()
    if not folder.exists():
        raise CheckpointError(f"Stable Diffusion checkpoint folder {folder} does not exist")
    if not folder.is_dir():
        raise CheckpointError(f"{folder} is a file, not a diffusers checkpoint folder")
    return folder


def _check_model_index(folder: Path) -> None:
    """A pipeline folder has a model_index.json; a bare model folder is named as such."""
    index_path = folder / "model_index.json"
    if not index_path.is_file():
        config_path = folder / "config.json"
        if config_path.is_file():
            class_name = _read_json(config_path).get("_class_name") or "model"
            raise CheckpointError(
                f"{folder} holds a bare {class_name} (config.json, no model_index.json), e.g. a "
                "pixel-space 'ddpm' checkpoint; the 'stable-diffusion' kind needs a full text-to-image "
                "pipeline folder with model_index.json and unet/, vae/, text_encoder/, tokenizer/, "
                "scheduler/"
            )
        raise CheckpointError(
            f"{folder} is not a diffusers pipeline folder: model_index.json is missing "
            "(expected model_index.json and unet/, vae/, text_encoder/, tokenizer/, scheduler/)"
        )


def _check_pipeline(folder: Path) -> str:
    """The pipeline class, when it is an SD 1.x / 2.x-style text-to-image pipeline."""
    index_path = folder / "model_index.json"
    model_index = _read_json(index_path)
    pipeline_class = str(model_index.get("_class_name", ""))
    if "text_encoder_2" in model_index or "XL" in pipeline_class:
        raise CheckpointError(
            f"{folder} is a {pipeline_class or 'SDXL'} checkpoint; only SD 1.x / 2.x-style pipelines "
            "(one text encoder) are supported"
        )
    absent = [name for name in REQUIRED_COMPONENTS if name not in model_index]
    if absent:
        raise CheckpointError(
            f"{folder} holds a {pipeline_class or 'pipeline'} whose model_index.json lists no "
            f"{', '.join(absent)}; this is not a text-to-image Stable Diffusion checkpoint"
        )
    return pipeline_class


def _check_components(folder: Path) -> None:
    """Every component's folder, config and weights are there."""
    missing_dirs = [name for name in REQUIRED_COMPONENTS if not (folder / name).is_dir()]
    if missing_dirs:
        raise CheckpointError(
            f"{folder} is incomplete: missing subfolder(s) {', '.join(n + '/' for n in missing_dirs)}"
        )

    problems = []
    for name in ("unet", "vae", "text_encoder"):
        if not (folder / name / "config.json").is_file():
            problems.append(f"{name}/config.json")
        if not _find_weights(folder / name)[0]:
            problems.append(f"{name}/ weights (*.safetensors or *.bin)")
    if not (folder / "scheduler" / "scheduler_config.json").is_file():
        problems.append("scheduler/scheduler_config.json")
    tok = folder / "tokenizer"
    if not (
        (tok / "tokenizer.json").is_file()
        or ((tok / "vocab.json").is_file() and (tok / "merges.txt").is_file())
    ):
        problems.append("tokenizer/tokenizer.json (or vocab.json + merges.txt)")
    if problems:
        raise CheckpointError(f"{folder} is incomplete: missing {'; '.join(problems)}")


def check_lora_folder(path: str | os.PathLike) -> Path:
    """The LoRA weights file inside `path` (a folder written by this module's trainer or any
    diffusers `save_lora_weights`). Raises CheckpointError if there is none."""
    folder = Path(path).expanduser()
    if not folder.exists():
        raise CheckpointError(f"LoRA folder {folder} does not exist")
    if folder.is_file():
        if folder.suffix == ".safetensors":
            return folder.resolve()
        raise CheckpointError(f"{folder} is not a LoRA folder or .safetensors file")
    preferred = folder / LORA_WEIGHT_NAME
    if preferred.is_file():
        return preferred.resolve()
    candidates = sorted(folder.glob("*.safetensors"))
    if len(candidates) == 1:
        return candidates[0].resolve()
    if not candidates:
        if (folder / "model_index.json").is_file() or (folder / "unet").is_dir():
            raise CheckpointError(
                f"{folder} is a full pipeline checkpoint, not a LoRA folder; use it as the base checkpoint"
            )
        raise CheckpointError(f"LoRA folder {folder} holds no {LORA_WEIGHT_NAME}")
    raise CheckpointError(
        f"LoRA folder {folder} holds several .safetensors files and no {LORA_WEIGHT_NAME}: "
        + ", ".join(c.name for c in candidates)
    )
