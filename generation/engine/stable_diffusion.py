"""The "stable-diffusion" generator kind: a diffusers-format text-to-image checkpoint on local disk.

Pure Python: no Django here. Three parts:

* `check_checkpoint` / `check_lora_folder`: say clearly what is wrong with a folder before any
  model is loaded (missing, incomplete, or a checkpoint of another kind).
* `StableDiffusionGenerator`: loads SD 1.x / 2.x / RoentGen-style folders (optionally with a LoRA
  folder on top) and samples grayscale uint8 images, one CPU-seeded generator per image so a seed
  gives the same image on any device and in any batch, each with a provenance dict.
* `LoraTrainer` / `train_lora`: LoRA fine-tuning of the UNet (optionally the text encoder too)
  through peft on (grayscale uint8 square array, prompt) pairs, with atomic resumable checkpoints
  that hold only the LoRA weights plus a training state.

Nothing is ever fetched from a model hub: every load passes `local_files_only=True`.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import shutil
import tempfile
import time
import warnings
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field, fields
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np
import torch
from PIL import Image

from .cancellation import cancel_requested
from .devices import Placement, library_versions, pick_placement

GENERATOR_KIND = "stable-diffusion"
LORA_WEIGHT_NAME = "pytorch_lora_weights.safetensors"
TRAINING_STATE_NAME = "training_state.pt"
TRAINING_INFO_NAME = "lora_training.json"
LOSS_LOG_NAME = "loss_log.jsonl"
CHECKPOINT_PREFIX = "checkpoint-"
FINAL_LORA_DIRNAME = "lora"

MAX_SEED = 2**63 - 1
REQUIRED_COMPONENTS = ("unet", "vae", "text_encoder", "tokenizer", "scheduler")
SCHEDULER_NAMES = ("ddim", "dpm++", "euler")
UNET_LORA_TARGETS = ["to_q", "to_k", "to_v", "to_out.0"]
TEXT_ENCODER_LORA_TARGETS = ["q_proj", "k_proj", "v_proj", "out_proj"]

_MODEL_WEIGHT_NAMES = (
    "diffusion_pytorch_model.safetensors",
    "diffusion_pytorch_model.bin",
    "model.safetensors",
    "pytorch_model.bin",
)
_SHARD_INDEX_NAMES = (
    "diffusion_pytorch_model.safetensors.index.json",
    "diffusion_pytorch_model.bin.index.json",
    "model.safetensors.index.json",
    "pytorch_model.bin.index.json",
)

# Callbacks, named as in the ddpm engine (generation/engine/sampling.py, training.py):
#   on_step(done_steps, total_steps) per denoising step while sampling,
#   on_image(index, image) / on_batch(done_images, total_images) as images finish,
#   on_step(step, max_steps, loss) per optimizer step while training (returning False stops),
#   cancel: a callable returning True, or an object with is_set() (threading.Event).
StepCallback = Callable[[int, int], Any]
TrainStepCallback = Callable[[int, int, float], Any]


# --------------------------------------------------------------------------------------------
# Errors


class StableDiffusionError(Exception):
    """Base class for every error this engine raises on purpose."""


class CheckpointError(StableDiffusionError):
    """The base checkpoint folder or LoRA folder is missing, incomplete or of the wrong kind."""


class GenerationCancelled(StableDiffusionError):
    """Sampling stopped because `cancel` fired; `completed` holds the images finished before it."""

    def __init__(self, message: str, completed: list[GeneratedImage]):
        super().__init__(message)
        self.completed = completed


class TrainingDivergedError(StableDiffusionError):
    """The training loss became NaN or infinite."""


# --------------------------------------------------------------------------------------------
# Files: weights, hashes, folder checks


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
    if path is None or str(path).strip() == "":
        raise CheckpointError("no Stable Diffusion checkpoint folder was configured")
    folder = Path(path).expanduser()
    if not folder.exists():
        raise CheckpointError(f"Stable Diffusion checkpoint folder {folder} does not exist")
    if not folder.is_dir():
        raise CheckpointError(f"{folder} is a file, not a diffusers checkpoint folder")

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


# --------------------------------------------------------------------------------------------
# Sampling


def make_scheduler(name: str, base_config: dict):
    """A fresh sampler of the named type, built from the checkpoint's scheduler config so its
    noise schedule and prediction_type (epsilon / v_prediction) carry over."""
    from diffusers import DDIMScheduler, DPMSolverMultistepScheduler, EulerDiscreteScheduler

    if name == "ddim":
        return DDIMScheduler.from_config(base_config)
    if name == "dpm++":
        return DPMSolverMultistepScheduler.from_config(
            base_config, algorithm_type="dpmsolver++", solver_order=2
        )
    if name == "euler":
        return EulerDiscreteScheduler.from_config(base_config)
    raise ValueError(f"scheduler must be one of {', '.join(SCHEDULER_NAMES)}, not {name!r}")


def rgb_to_gray_uint8(images: np.ndarray) -> list[np.ndarray]:
    """(N, H, W, 3) floats in [0, 1] -> N grayscale uint8 (H, W) arrays (ITU-R 601 luma, as
    Pillow's "L" conversion)."""
    images = np.clip(np.asarray(images, dtype=np.float64), 0.0, 1.0)
    if images.ndim == 3:
        images = images[..., None]
    if images.shape[-1] == 1:
        luma = images[..., 0]
    else:
        luma = images[..., 0] * 0.299 + images[..., 1] * 0.587 + images[..., 2] * 0.114
    out = np.clip(np.rint(luma * 255.0), 0, 255).astype(np.uint8)
    return [np.ascontiguousarray(frame) for frame in out]


class GeneratedImage(NamedTuple):
    """One synthetic image: a grayscale uint8 (H, W) array and its provenance dict (the same
    two attributes as the ddpm engine's SampledImage; also unpacks as a pair)."""

    array: np.ndarray
    provenance: dict


def _all_library_versions() -> dict[str, str]:
    versions = dict(library_versions())
    for module in ("transformers", "peft"):
        try:
            versions[module] = __import__(module).__version__
        except ImportError:  # pragma: no cover - both are project dependencies
            pass
    return versions


class StableDiffusionGenerator:
    """A loaded Stable Diffusion pipeline (with an optional LoRA) that samples grayscale images.

    `checkpoint`: a diffusers SD pipeline folder. `lora`: a folder holding
    pytorch_lora_weights.safetensors (from `LoraTrainer`, or any diffusers LoRA). `device` /
    `precision` are handed to devices.pick_placement ("cuda", "cpu", ... / "fp32", "fp16", "bf16");
    by default half precision on an accelerator and float32 on CPU.
    """

    kind = GENERATOR_KIND

    def __init__(
        self,
        checkpoint: str | os.PathLike,
        *,
        lora: str | os.PathLike | None = None,
        lora_scale: float = 1.0,
        model_name: str | None = None,
        device: str | None = None,
        precision: str | None = None,
        _pipeline=None,
        _info: CheckpointInfo | None = None,
    ):
        self.info = _info or check_checkpoint(checkpoint)
        self.placement: Placement = pick_placement(device, precision)
        self.model_name = model_name or self.info.path.name
        self.lora_file: Path | None = None
        self.lora_sha256: str | None = None
        self.lora_scale = float(lora_scale)
        if _pipeline is not None:
            self.pipe = _pipeline
        else:
            self.pipe = self._load_pipeline()
            if lora is not None:
                self._load_lora(lora)
        self.pipe.set_progress_bar_config(disable=True)

    # -- loading ------------------------------------------------------------------------------

    def _load_pipeline(self):
        from diffusers import StableDiffusionPipeline

        try:
            with warnings.catch_warnings():
                # diffusers >= 0.36 renames torch_dtype to dtype; older releases know only torch_dtype
                warnings.filterwarnings("ignore", message=".*torch_dtype.*", category=FutureWarning)
                pipe = StableDiffusionPipeline.from_pretrained(
                    str(self.info.path),
                    torch_dtype=self.placement.dtype,
                    variant=self.info.variant,
                    safety_checker=None,
                    feature_extractor=None,
                    requires_safety_checker=False,
                    local_files_only=True,
                )
        except (OSError, ValueError, KeyError, RuntimeError) as exc:
            raise CheckpointError(
                f"could not load the Stable Diffusion checkpoint {self.info.path}: {exc}"
            ) from exc
        return pipe.to(self.placement.device)

    def _load_lora(self, lora: str | os.PathLike) -> None:
        weights = check_lora_folder(lora)
        try:
            self.pipe.load_lora_weights(
                str(weights.parent),
                weight_name=weights.name,
                adapter_name="lora",
                local_files_only=True,
            )
        except (OSError, ValueError, KeyError, RuntimeError) as exc:
            raise CheckpointError(
                f"could not apply the LoRA weights {weights} to {self.info.path}: {exc}"
            ) from exc
        if self.lora_scale != 1.0:
            self.pipe.set_adapters(["lora"], adapter_weights=[self.lora_scale])
        self.lora_file = weights
        self.lora_sha256 = sha256_file(weights)

    def close(self) -> None:
        """Drop the models (and free accelerator memory)."""
        self.pipe = None
        if self.placement.device.type == "cuda":
            torch.cuda.empty_cache()

    # -- sampling -----------------------------------------------------------------------------

    def default_resolution(self) -> int:
        return int(self.pipe.unet.config.sample_size) * int(self.pipe.vae_scale_factor)

    def generate(
        self,
        prompts: str | Sequence[str],
        seeds: Sequence[int],
        *,
        negative_prompt: str | None = None,
        steps: int = 30,
        guidance: float = 7.5,
        scheduler: str = "ddim",
        width: int | None = None,
        height: int | None = None,
        batch_size: int = 4,
        on_step: StepCallback | None = None,
        on_image: Callable[[int, GeneratedImage], Any] | None = None,
        on_batch: Callable[[int, int], Any] | None = None,
        cancel: Any = None,
    ) -> list[GeneratedImage]:
        """One image per seed, in the order of `seeds`. `prompts` is one prompt for all images or
        one per seed. `guidance` <= 1 turns classifier-free guidance (and the negative prompt) off.

        Images are made `batch_size` at a time; each image's starting noise comes from its own
        CPU torch.Generator seeded with its seed, so the result does not depend on the batch or
        the device (up to floating-point differences between devices). `on_step(done, total)`
        after every denoising step (total = batches x steps); `on_image(index, image)` and
        `on_batch(done_images, total_images)` as images finish. `cancel` (a callable returning
        True or an object with is_set()) is checked after every step; when it fires,
        GenerationCancelled is raised holding the images already finished.
        """
        seeds = [int(s) for s in seeds]
        if not seeds:
            return []
        bad_seeds = [s for s in seeds if not 0 <= s <= MAX_SEED]
        if bad_seeds:
            raise ValueError(f"seeds must be between 0 and 2**63 - 1, not {bad_seeds[0]}")
        if isinstance(prompts, str):
            prompt_list = [prompts] * len(seeds)
        else:
            prompt_list = list(prompts)
            if len(prompt_list) != len(seeds):
                raise ValueError(f"got {len(prompt_list)} prompts for {len(seeds)} seeds")
        if steps < 1:
            raise ValueError("steps must be at least 1")
        if batch_size < 1:
            raise ValueError("batch_size must be at least 1")
        default = self.default_resolution()
        width = int(width or default)
        height = int(height or default)
        factor = max(8, int(self.pipe.vae_scale_factor))  # the pipeline insists on 8
        if width % factor or height % factor:
            raise ValueError(
                f"width and height must be multiples of {factor}, not {width}x{height}"
            )

        sampler = make_scheduler(scheduler, self.info.scheduler_config)
        self.pipe.scheduler = sampler
        n_batches = math.ceil(len(seeds) / batch_size)
        total = n_batches * steps
        done = 0

        results: list[GeneratedImage] = []

        def stop() -> GenerationCancelled:
            return GenerationCancelled(
                f"sampling cancelled after {len(results)} of {len(seeds)} image(s)", list(results)
            )

        def on_step_end(pipe, step_index, timestep, callback_kwargs):
            nonlocal done
            done += 1
            if on_step is not None:
                on_step(min(done, total), total)
            if cancel_requested(cancel):
                pipe._interrupt = True
                raise stop()  # leaves the pipeline at once: no VAE decode of a batch to be dropped
            return callback_kwargs

        versions = _all_library_versions()
        for batch_number in range(n_batches):
            if cancel_requested(cancel):
                raise stop()
            chunk = slice(batch_number * batch_size, (batch_number + 1) * batch_size)
            batch_seeds = seeds[chunk]
            batch_prompts = prompt_list[chunk]
            generators = [torch.Generator("cpu").manual_seed(seed) for seed in batch_seeds]
            output = self.pipe(
                prompt=batch_prompts,
                negative_prompt=[negative_prompt] * len(batch_prompts) if negative_prompt else None,
                num_inference_steps=steps,
                guidance_scale=float(guidance),
                width=width,
                height=height,
                generator=generators,
                output_type="np",
                callback_on_step_end=on_step_end,
            )
            done = (batch_number + 1) * steps
            created = datetime.now(UTC).isoformat()
            for array, prompt, seed in zip(
                rgb_to_gray_uint8(output.images), batch_prompts, batch_seeds
            ):
                image = GeneratedImage(
                    array,
                    self._provenance(
                        prompt,
                        negative_prompt,
                        scheduler,
                        sampler,
                        steps,
                        guidance,
                        seed,
                        width,
                        height,
                        versions,
                        created,
                    ),
                )
                results.append(image)
                if on_image is not None:
                    on_image(len(results) - 1, image)
            if on_batch is not None:
                on_batch(len(results), len(seeds))
        return results

    def _provenance(
        self,
        prompt,
        negative_prompt,
        scheduler,
        sampler,
        steps,
        guidance,
        seed,
        width,
        height,
        versions,
        created,
    ) -> dict:
        return {
            "generator": GENERATOR_KIND,
            "model": self.model_name,
            "base_checkpoint": str(self.info.path),
            "pipeline_class": self.info.pipeline_class,
            "weights_file": self.info.unet_weights[0].name,
            "weights_sha256": self.info.unet_sha256,  # of the base UNet weights
            "lora_path": str(self.lora_file.parent) if self.lora_file else None,
            "lora_weights_file": self.lora_file.name if self.lora_file else None,
            "lora_sha256": self.lora_sha256,
            "lora_scale": self.lora_scale if self.lora_file else None,
            "prompt": prompt,
            "negative_prompt": negative_prompt or None,
            "scheduler": scheduler,
            "scheduler_class": type(sampler).__name__,
            "prediction_type": self.info.prediction_type,
            "steps": int(steps),
            "guidance": float(guidance),
            "seed": int(seed),
            "seed_generator": "torch.Generator('cpu')",
            "width": int(width),
            "height": int(height),
            "resolution": int(width) if width == height else f"{width}x{height}",
            "color": "grayscale (ITU-R 601 luma of the RGB output)",
            "device": str(self.placement.device),
            "dtype": self.placement.dtype_name,
            "library_versions": dict(versions),
            "created_at": created,
        }


# --------------------------------------------------------------------------------------------
# LoRA fine-tuning


def text_encoder_lora_problem() -> str | None:
    """Why LoRA on the CLIP text encoder cannot work with the installed libraries, or None.

    transformers' own peft integration (used by `add_adapter` and by diffusers when it loads a
    LoRA file with text-encoder weights) has a minimum peft version of its own
    (0.22 for transformers 5.x)."""
    from importlib.metadata import PackageNotFoundError, version

    from packaging.version import Version

    try:
        from transformers.integrations import peft as hf_peft
    except ImportError:
        return "transformers' peft integration is not available"
    minimum = getattr(hf_peft, "MIN_PEFT_VERSION", None)
    try:
        installed = version("peft")
    except PackageNotFoundError:
        return "peft is not installed"
    if minimum and Version(installed) < Version(minimum):
        return (
            f"LoRA on the text encoder needs peft >= {minimum} with transformers "
            f"{version('transformers')}; peft {installed} is installed (UNet-only LoRA works)"
        )
    return None


@dataclass
class LoraTrainingConfig:
    """Settings of one LoRA fine-tuning run (stored with every checkpoint)."""

    rank: int = 8
    learning_rate: float = 1e-4
    max_steps: int = 1000  # optimizer steps
    batch_size: int = 1
    gradient_accumulation_steps: int = 1
    checkpoint_every: int = 250  # optimizer steps; the last step is always saved too
    keep_checkpoints: int = 2  # newest checkpoint-* folders kept; 0 keeps all
    resolution: int | None = None  # default: the UNet's native size (512 for SD 1.x)
    train_text_encoder: bool = False
    text_encoder_learning_rate: float | None = None  # default: learning_rate
    seed: int = 0
    adam_beta1: float = 0.9
    adam_beta2: float = 0.999
    adam_weight_decay: float = 1e-2
    adam_epsilon: float = 1e-8
    max_grad_norm: float = 1.0
    lr_warmup_steps: int = 0
    caption_dropout: float = 0.0  # fraction of captions replaced by "" (keeps guidance useful)
    gradient_checkpointing: bool = False
    mixed_precision: str = "auto"  # "auto": bf16 autocast on CUDA where supported; "no": fp32
    checkpoint_on_cancel: bool = True

    def validate(self) -> None:
        positive_ints = (
            "rank",
            "max_steps",
            "batch_size",
            "gradient_accumulation_steps",
            "checkpoint_every",
        )
        for name in positive_ints:
            value = getattr(self, name)
            if not isinstance(value, int) or value < 1:
                raise ValueError(f"{name} must be a positive integer, not {value!r}")
        if not (self.learning_rate > 0 and math.isfinite(self.learning_rate)):
            raise ValueError(f"learning_rate must be a positive number, not {self.learning_rate!r}")
        if not 0.0 <= self.caption_dropout < 1.0:
            raise ValueError("caption_dropout must be in [0, 1)")
        if self.mixed_precision not in ("auto", "no"):
            raise ValueError('mixed_precision must be "auto" or "no"')
        if self.resolution is not None and (self.resolution < 8 or self.resolution % 8):
            raise ValueError("resolution must be a multiple of 8")

    @classmethod
    def from_dict(cls, data: dict) -> LoraTrainingConfig:
        known = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in data.items() if k in known})


@dataclass
class LoraTrainingResult:
    output_dir: Path
    step: int  # optimizer steps done in total (across resumes)
    total_steps: int  # config.max_steps
    cancelled: bool
    lora_dir: Path | None  # output_dir/lora: the LoRA weights alone; None if cancelled
    last_checkpoint: Path | None
    last_loss: float | None
    losses: list[tuple[int, float]] = field(default_factory=list)  # (step, mean loss), all runs
    resumed_from: int | None = None  # the step this call resumed from, if it did


TrainingItem = tuple[np.ndarray, str]


class LoraTrainer:
    """LoRA fine-tuning of a Stable Diffusion checkpoint on (grayscale uint8 square array, prompt) pairs.

    `output_dir` receives `checkpoint-NNNNNNN/` folders (LoRA weights + training_state.pt +
    lora_training.json, written to a temporary folder and renamed into place), `loss_log.jsonl`
    (one JSON line per optimizer step) and, when training finishes, `lora/` (the LoRA weights
    alone). Build it, then call `train()`; `resume=True` continues from the newest checkpoint.
    """

    def __init__(
        self,
        checkpoint: str | os.PathLike,
        output_dir: str | os.PathLike,
        dataset: Sequence[TrainingItem],
        config: LoraTrainingConfig | None = None,
        *,
        device: str | None = None,
        model_name: str | None = None,
    ):
        from diffusers import AutoencoderKL, DDPMScheduler, UNet2DConditionModel
        from peft import LoraConfig
        from transformers import CLIPTextModel, CLIPTokenizer

        self.config = config or LoraTrainingConfig()
        self.config.validate()
        if self.config.train_text_encoder:
            problem = text_encoder_lora_problem()
            if problem:
                raise StableDiffusionError(problem)
        if len(dataset) == 0:
            raise ValueError("the training set is empty")
        self.info = check_checkpoint(checkpoint)
        self.model_name = model_name or self.info.path.name
        self.output_dir = Path(output_dir)
        self.output_dir.mkdir(parents=True, exist_ok=True)
        self.dataset = dataset

        placement = pick_placement(device, None)
        self.device = placement.device
        use_bf16 = (
            self.config.mixed_precision == "auto"
            and self.device.type == "cuda"
            and placement.dtype == torch.bfloat16
        )
        # Frozen weights in bf16 with bf16 autocast on CUDA; fp32 elsewhere (fp16-only GPUs
        # and MPS train in fp32: fp16 LoRA training needs loss scaling and is not offered).
        self.autocast_dtype = torch.bfloat16 if use_bf16 else None
        self.weight_dtype = torch.bfloat16 if use_bf16 else torch.float32

        path = str(self.info.path)
        variant = self.info.variant
        try:
            self.tokenizer = CLIPTokenizer.from_pretrained(
                path, subfolder="tokenizer", local_files_only=True
            )
            self.text_encoder = CLIPTextModel.from_pretrained(
                path, subfolder="text_encoder", variant=variant, local_files_only=True
            )
            self.vae = AutoencoderKL.from_pretrained(
                path, subfolder="vae", variant=variant, local_files_only=True
            )
            self.unet = UNet2DConditionModel.from_pretrained(
                path, subfolder="unet", variant=variant, local_files_only=True
            )
            self.noise_scheduler = DDPMScheduler.from_pretrained(
                path, subfolder="scheduler", local_files_only=True
            )
        except (OSError, ValueError, KeyError, RuntimeError) as exc:
            raise CheckpointError(
                f"could not load the Stable Diffusion checkpoint {path}: {exc}"
            ) from exc

        for module in (self.vae, self.text_encoder, self.unet):
            module.requires_grad_(False)
            module.to(self.device)
            if self.weight_dtype != torch.float32:
                module.to(dtype=self.weight_dtype)
        self.vae.eval()

        rank = self.config.rank
        # The Gaussian LoRA init draws from the global RNG: seed it (without disturbing the
        # caller's RNG) so a run is reproducible from config.seed.
        cuda_devices = [self.device.index or 0] if self.device.type == "cuda" else []
        with torch.random.fork_rng(devices=cuda_devices):
            torch.manual_seed(int(self.config.seed))
            self.unet.add_adapter(
                LoraConfig(
                    r=rank,
                    lora_alpha=rank,
                    init_lora_weights="gaussian",
                    target_modules=UNET_LORA_TARGETS,
                )
            )
            if self.config.train_text_encoder:
                self.text_encoder.add_adapter(
                    LoraConfig(
                        r=rank,
                        lora_alpha=rank,
                        init_lora_weights="gaussian",
                        target_modules=TEXT_ENCODER_LORA_TARGETS,
                    )
                )
        if self.config.gradient_checkpointing:
            self.unet.enable_gradient_checkpointing()
            if self.config.train_text_encoder:
                self.text_encoder.gradient_checkpointing_enable()
        # LoRA weights always train in float32, whatever the frozen weights are in.
        trainable = [self.unet] + ([self.text_encoder] if self.config.train_text_encoder else [])
        for module in trainable:
            for param in module.parameters():
                if param.requires_grad:
                    param.data = param.data.float()

        unet_params = [p for p in self.unet.parameters() if p.requires_grad]
        groups = [{"params": unet_params, "lr": self.config.learning_rate}]
        if self.config.train_text_encoder:
            text_params = [p for p in self.text_encoder.parameters() if p.requires_grad]
            groups.append(
                {
                    "params": text_params,
                    "lr": self.config.text_encoder_learning_rate or self.config.learning_rate,
                }
            )
        self.optimizer = torch.optim.AdamW(
            groups,
            betas=(self.config.adam_beta1, self.config.adam_beta2),
            weight_decay=self.config.adam_weight_decay,
            eps=self.config.adam_epsilon,
        )
        warmup = max(0, int(self.config.lr_warmup_steps))
        self.lr_scheduler = torch.optim.lr_scheduler.LambdaLR(
            self.optimizer, lambda step: min(1.0, (step + 1) / warmup) if warmup else 1.0
        )

        native = int(self.unet.config.sample_size) * 2 ** (
            len(self.vae.config.block_out_channels) - 1
        )
        self.resolution = int(self.config.resolution or native)
        self.rng = torch.Generator("cpu").manual_seed(int(self.config.seed))
        self.step = 0
        self.losses: list[tuple[int, float]] = []
        self.last_checkpoint: Path | None = None
        self.resumed_from: int | None = None
        self._epoch_cache: tuple[int, torch.Tensor] | None = None

    # -- data ---------------------------------------------------------------------------------

    def _index_at(self, position: int) -> int:
        """Dataset index at a position of the endless shuffled stream (one fresh permutation per
        epoch, seeded by config.seed + epoch), so resuming at a step replays the same order."""
        n = len(self.dataset)
        epoch, offset = divmod(position, n)
        if self._epoch_cache is None or self._epoch_cache[0] != epoch:
            gen = torch.Generator("cpu").manual_seed(int(self.config.seed) * 1_000_003 + epoch)
            self._epoch_cache = (epoch, torch.randperm(n, generator=gen))
        return int(self._epoch_cache[1][offset])

    def _pixels(self, image: np.ndarray) -> torch.Tensor:
        """uint8 grayscale (H, W) -> float (3, R, R) in [-1, 1] (gray copied into the 3 channels)."""
        array = np.asarray(image)
        if array.ndim == 3 and array.shape[-1] == 1:
            array = array[..., 0]
        if array.ndim != 2:
            raise ValueError(
                f"training images must be 2-D grayscale arrays, got shape {array.shape}"
            )
        if array.dtype != np.uint8:
            raise ValueError(f"training images must be uint8, got {array.dtype}")
        if array.shape != (self.resolution, self.resolution):
            if array.shape[0] != array.shape[1]:
                raise ValueError(
                    f"training images must be square, got {array.shape[1]}x{array.shape[0]}"
                )
            array = np.asarray(
                Image.fromarray(array).resize(
                    (self.resolution, self.resolution), Image.Resampling.BICUBIC
                )
            )
        tensor = torch.from_numpy(array.astype(np.float32) / 127.5 - 1.0)
        return tensor.unsqueeze(0).expand(3, -1, -1)

    def _batch(self, indices: Sequence[int], *, rng: torch.Generator, dropout: float):
        images, prompts = [], []
        for index in indices:
            image, prompt = self.dataset[index]
            images.append(self._pixels(image))
            if dropout and float(torch.rand((), generator=rng)) < dropout:
                prompt = ""
            prompts.append(str(prompt))
        return torch.stack(images), prompts

    # -- loss ---------------------------------------------------------------------------------

    def _autocast(self):
        if self.autocast_dtype is None:
            return torch.autocast(self.device.type, enabled=False)
        return torch.autocast(self.device.type, dtype=self.autocast_dtype)

    def _loss(self, pixels: torch.Tensor, prompts: list[str], rng: torch.Generator) -> torch.Tensor:
        """Noise-prediction MSE of one batch; noise and timesteps come from the CPU `rng`."""
        with torch.no_grad():
            dist = self.vae.encode(pixels.to(self.device, self.weight_dtype)).latent_dist
            noise_for_latents = torch.randn(dist.mean.shape, generator=rng, dtype=torch.float32)
            latents = dist.mean.float() + dist.std.float() * noise_for_latents.to(self.device)
            shift = getattr(self.vae.config, "shift_factor", None)
            if shift is not None:
                latents = latents - shift
            latents = latents * self.vae.config.scaling_factor

        noise = torch.randn(latents.shape, generator=rng, dtype=torch.float32).to(self.device)
        timesteps = torch.randint(
            0, self.noise_scheduler.config.num_train_timesteps, (latents.shape[0],), generator=rng
        ).to(self.device)
        noisy = self.noise_scheduler.add_noise(latents, noise, timesteps)

        prediction_type = self.noise_scheduler.config.prediction_type
        if prediction_type == "epsilon":
            target = noise
        elif prediction_type == "v_prediction":
            target = self.noise_scheduler.get_velocity(latents, noise, timesteps)
        elif prediction_type == "sample":
            target = latents
        else:
            raise StableDiffusionError(f"unsupported prediction_type {prediction_type!r}")

        ids = self.tokenizer(
            prompts,
            padding="max_length",
            max_length=self.tokenizer.model_max_length,
            truncation=True,
            return_tensors="pt",
        ).input_ids.to(self.device)
        with self._autocast():
            if self.config.train_text_encoder:
                hidden = self.text_encoder(ids, return_dict=False)[0]
            else:
                with torch.no_grad():
                    hidden = self.text_encoder(ids, return_dict=False)[0]
            prediction = self.unet(
                noisy, timesteps, encoder_hidden_states=hidden, return_dict=False
            )[0]
        return torch.nn.functional.mse_loss(prediction.float(), target.float(), reduction="mean")

    def evaluate_loss(self, indices: Sequence[int] | None = None, *, seed: int = 0) -> float:
        """Loss on fixed items with fixed noise and timesteps (seeded), without training.
        Default items: the first min(8, len(dataset))."""
        if indices is None:
            indices = range(min(8, len(self.dataset)))
        rng = torch.Generator("cpu").manual_seed(seed)
        pixels, prompts = self._batch(list(indices), rng=rng, dropout=0.0)
        modes = (self.unet.training, self.text_encoder.training)
        self.unet.eval()
        self.text_encoder.eval()
        try:
            with torch.no_grad():
                return float(self._loss(pixels, prompts, rng))
        finally:
            self.unet.train(modes[0])
            self.text_encoder.train(modes[1])

    # -- training loop ------------------------------------------------------------------------

    def train(
        self,
        *,
        resume: bool = True,
        on_step: TrainStepCallback | None = None,
        cancel: Any = None,
    ) -> LoraTrainingResult:
        """Train up to `config.max_steps` optimizer steps in total.

        `on_step(step, max_steps, loss)` is called after every optimizer step; returning False,
        or `cancel` firing (checked before every micro-batch; a callable returning True or an
        object with is_set()), stops training: the partial accumulation cycle is dropped, a
        checkpoint of the current step is saved (with `config.checkpoint_on_cancel`) and the
        result says `cancelled=True` (no `lora/` export). With `resume`, training continues from
        the newest complete checkpoint in `output_dir`. A NaN / infinite loss raises
        TrainingDivergedError.
        """
        cfg = self.config
        self._remove_stale_temp_dirs()
        if resume and self.step == 0:
            latest = self.latest_checkpoint()
            if latest is not None:
                self.load_checkpoint(latest)
                self.resumed_from = self.step

        trainable = [self.unet] + ([self.text_encoder] if cfg.train_text_encoder else [])
        params = [p for group in self.optimizer.param_groups for p in group["params"]]
        for module in trainable:
            module.train()
        accum = cfg.gradient_accumulation_steps
        cancelled = False
        try:
            while self.step < cfg.max_steps and not cancelled:
                self.optimizer.zero_grad(set_to_none=True)
                # a cancel inside an accumulation cycle drops the partial cycle, RNG draws included
                rng_at_step_start = self.rng.get_state()
                micro_losses = []
                for micro in range(accum):
                    if cancel_requested(cancel):
                        self.rng.set_state(rng_at_step_start)
                        cancelled = True
                        break
                    first = (self.step * accum + micro) * cfg.batch_size
                    indices = [self._index_at(first + j) for j in range(cfg.batch_size)]
                    pixels, prompts = self._batch(
                        indices, rng=self.rng, dropout=cfg.caption_dropout
                    )
                    loss = self._loss(pixels, prompts, self.rng)
                    if not torch.isfinite(loss.detach()):
                        where = (
                            f" (last good checkpoint: {self.last_checkpoint})"
                            if self.last_checkpoint
                            else ""
                        )
                        raise TrainingDivergedError(
                            f"training loss became {float(loss.detach())} at step {self.step + 1}; lower the "
                            f"learning rate (now {cfg.learning_rate:g}) or check the training images{where}"
                        )
                    (loss / accum).backward()
                    micro_losses.append(float(loss.detach()))
                if cancelled:
                    break
                if cfg.max_grad_norm and cfg.max_grad_norm > 0:
                    torch.nn.utils.clip_grad_norm_(params, cfg.max_grad_norm)
                self.optimizer.step()
                self.lr_scheduler.step()
                self.optimizer.zero_grad(set_to_none=True)
                self.step += 1
                mean_loss = sum(micro_losses) / len(micro_losses)
                self.losses.append((self.step, mean_loss))
                self._log_loss(mean_loss)
                if self.step % cfg.checkpoint_every == 0 or self.step == cfg.max_steps:
                    self.save_checkpoint()
                if (
                    on_step is not None
                    and on_step(self.step, cfg.max_steps, mean_loss) is False
                    or self.step < cfg.max_steps
                    and cancel_requested(cancel)
                ):
                    cancelled = True
        finally:
            for module in trainable:
                module.eval()
            self.optimizer.zero_grad(set_to_none=True)

        unsaved = (
            self.last_checkpoint is None or self._checkpoint_step(self.last_checkpoint) != self.step
        )
        lora_dir = None
        if cancelled:
            if cfg.checkpoint_on_cancel and unsaved and self.step > 0:
                self.save_checkpoint()
        else:
            if unsaved:
                self.save_checkpoint()
            lora_dir = self._export_final()
        return LoraTrainingResult(
            output_dir=self.output_dir,
            step=self.step,
            total_steps=cfg.max_steps,
            cancelled=cancelled,
            lora_dir=lora_dir,
            last_checkpoint=self.last_checkpoint,
            last_loss=self.losses[-1][1] if self.losses else None,
            losses=list(self.losses),
            resumed_from=self.resumed_from,
        )

    def _log_loss(self, loss: float) -> None:
        record = {
            "step": self.step,
            "loss": loss,
            "lr": self.lr_scheduler.get_last_lr()[0],
            "time": time.time(),
        }
        with open(self.output_dir / LOSS_LOG_NAME, "a", encoding="utf-8") as handle:
            handle.write(json.dumps(record) + "\n")

    # -- checkpoints ----------------------------------------------------------------------------

    def _lora_state_dicts(self):
        from diffusers.utils import convert_state_dict_to_diffusers
        from peft.utils import get_peft_model_state_dict

        unet_layers = convert_state_dict_to_diffusers(get_peft_model_state_dict(self.unet))
        text_layers = None
        if self.config.train_text_encoder:
            text_layers = convert_state_dict_to_diffusers(
                get_peft_model_state_dict(self.text_encoder, save_embedding_layers=False)
            )
        return unet_layers, text_layers

    def _write_lora(self, folder: Path) -> None:
        from diffusers import StableDiffusionPipeline

        unet_layers, text_layers = self._lora_state_dicts()
        metadata = {"unet_lora_adapter_metadata": self.unet.peft_config["default"].to_dict()}
        if text_layers is not None:
            metadata["text_encoder_lora_adapter_metadata"] = self.text_encoder.peft_config[
                "default"
            ].to_dict()
        StableDiffusionPipeline.save_lora_weights(
            str(folder),
            unet_lora_layers={
                k: v.detach().float().cpu().contiguous() for k, v in unet_layers.items()
            },
            text_encoder_lora_layers=(
                {k: v.detach().float().cpu().contiguous() for k, v in text_layers.items()}
                if text_layers
                else None
            ),
            weight_name=LORA_WEIGHT_NAME,
            safe_serialization=True,
            **metadata,
        )

    def _info_json(self) -> dict:
        return {
            "generator": GENERATOR_KIND,
            "step": self.step,
            "base_checkpoint": str(self.info.path),
            "base_model_name": self.model_name,
            "unet_sha256": self.info.unet_sha256,
            "resolution": self.resolution,
            "prediction_type": self.noise_scheduler.config.prediction_type,
            "lora_targets": {
                "unet": UNET_LORA_TARGETS,
                "text_encoder": TEXT_ENCODER_LORA_TARGETS if self.config.train_text_encoder else [],
            },
            "config": asdict(self.config),
            "library_versions": _all_library_versions(),
            "saved_at": datetime.now(UTC).isoformat(),
        }

    def _atomic_folder(self, final: Path, write: Callable[[Path], None]) -> Path:
        """Write into a temporary sibling folder, then rename it to `final` (replacing it)."""
        tmp = Path(tempfile.mkdtemp(prefix=f".tmp-{final.name}-", dir=self.output_dir))
        try:
            write(tmp)
            if final.exists():
                trash = Path(
                    tempfile.mkdtemp(prefix=f".tmp-old-{final.name}-", dir=self.output_dir)
                )
                os.replace(final, trash / final.name)
                os.replace(tmp, final)
                shutil.rmtree(trash, ignore_errors=True)
            else:
                os.replace(tmp, final)
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise
        return final

    def save_checkpoint(self) -> Path:
        """Save `checkpoint-<step>/` (LoRA weights + training state) atomically; prune old ones."""
        final = self.output_dir / f"{CHECKPOINT_PREFIX}{self.step:07d}"

        def write(tmp: Path) -> None:
            self._write_lora(tmp)
            state = {
                "step": self.step,
                "optimizer": self.optimizer.state_dict(),
                "lr_scheduler": self.lr_scheduler.state_dict(),
                "rng_state": self.rng.get_state(),
                "losses": [[s, v] for s, v in self.losses],
                "config": asdict(self.config),
                "unet_sha256": self.info.unet_sha256,
            }
            torch.save(state, tmp / TRAINING_STATE_NAME)
            (tmp / TRAINING_INFO_NAME).write_text(
                json.dumps(self._info_json(), indent=2), encoding="utf-8"
            )

        self.last_checkpoint = self._atomic_folder(final, write)
        self._prune_checkpoints()
        return self.last_checkpoint

    def _export_final(self) -> Path:
        """`lora/`: the LoRA weights and lora_training.json only, for generation."""

        def write(tmp: Path) -> None:
            self._write_lora(tmp)
            (tmp / TRAINING_INFO_NAME).write_text(
                json.dumps(self._info_json(), indent=2), encoding="utf-8"
            )

        return self._atomic_folder(self.output_dir / FINAL_LORA_DIRNAME, write)

    @staticmethod
    def _checkpoint_step(folder: Path) -> int:
        return int(folder.name[len(CHECKPOINT_PREFIX) :])

    def checkpoints(self) -> list[Path]:
        """Complete checkpoint folders, oldest first."""
        found = []
        for child in self.output_dir.iterdir():
            if (
                child.is_dir()
                and child.name.startswith(CHECKPOINT_PREFIX)
                and child.name[len(CHECKPOINT_PREFIX) :].isdigit()
                and (child / TRAINING_STATE_NAME).is_file()
                and (child / LORA_WEIGHT_NAME).is_file()
            ):
                found.append(child)
        return sorted(found, key=self._checkpoint_step)

    def latest_checkpoint(self) -> Path | None:
        found = self.checkpoints()
        return found[-1] if found else None

    def _prune_checkpoints(self) -> None:
        keep = self.config.keep_checkpoints
        if keep and keep > 0:
            for old in self.checkpoints()[:-keep]:
                shutil.rmtree(old, ignore_errors=True)

    def _remove_stale_temp_dirs(self) -> None:
        for child in self.output_dir.glob(".tmp-*"):
            shutil.rmtree(child, ignore_errors=True)

    def load_checkpoint(self, folder: str | os.PathLike) -> None:
        """Restore LoRA weights, optimizer, LR schedule, RNG, step and loss history."""
        from diffusers.utils import convert_state_dict_to_diffusers, convert_state_dict_to_peft
        from diffusers.utils.state_dict_utils import convert_unet_state_dict_to_peft
        from peft.utils import set_peft_model_state_dict
        from safetensors.torch import load_file

        folder = Path(folder)
        state = torch.load(folder / TRAINING_STATE_NAME, map_location="cpu", weights_only=True)
        saved = LoraTrainingConfig.from_dict(state.get("config", {}))
        if (
            saved.rank != self.config.rank
            or saved.train_text_encoder != self.config.train_text_encoder
        ):
            raise CheckpointError(
                f"cannot resume from {folder}: it was trained with rank {saved.rank}, text encoder "
                f"{'on' if saved.train_text_encoder else 'off'}; this run asks for rank "
                f"{self.config.rank}, text encoder {'on' if self.config.train_text_encoder else 'off'}"
            )
        if (
            state.get("unet_sha256")
            and self.info.unet_sha256
            and state["unet_sha256"] != self.info.unet_sha256
        ):
            raise CheckpointError(
                f"cannot resume from {folder}: it was trained on a different base UNet"
            )

        weights = load_file(str(folder / LORA_WEIGHT_NAME))
        unet_part = {k[len("unet.") :]: v for k, v in weights.items() if k.startswith("unet.")}
        result = set_peft_model_state_dict(
            self.unet, convert_unet_state_dict_to_peft(unet_part), adapter_name="default"
        )
        if getattr(result, "unexpected_keys", None):
            raise CheckpointError(
                f"{folder}: LoRA weights do not fit the UNet: {result.unexpected_keys[:3]}"
            )
        if self.config.train_text_encoder:
            text_part = {
                k[len("text_encoder.") :]: v
                for k, v in weights.items()
                if k.startswith("text_encoder.")
            }
            text_part = convert_state_dict_to_peft(convert_state_dict_to_diffusers(text_part))
            result = set_peft_model_state_dict(self.text_encoder, text_part, adapter_name="default")
            if getattr(result, "unexpected_keys", None):
                raise CheckpointError(f"{folder}: LoRA weights do not fit the text encoder")
        for module in (self.unet, self.text_encoder):
            for param in module.parameters():
                if param.requires_grad:
                    param.data = param.data.float()

        self.optimizer.load_state_dict(state["optimizer"])
        self.lr_scheduler.load_state_dict(state["lr_scheduler"])
        self.rng.set_state(state["rng_state"])
        self.step = int(state["step"])
        self.losses = [(int(s), float(v)) for s, v in state.get("losses", [])]
        self.last_checkpoint = folder
        self._truncate_loss_log()

    def _truncate_loss_log(self) -> None:
        """Drop loss-log lines from steps after the checkpoint being resumed (a crashed run)."""
        log = self.output_dir / LOSS_LOG_NAME
        if not log.is_file():
            return
        kept = []
        for line in log.read_text(encoding="utf-8").splitlines():
            try:
                if int(json.loads(line)["step"]) <= self.step:
                    kept.append(line)
            except (ValueError, KeyError, TypeError):
                continue
        log.write_text("".join(line + "\n" for line in kept), encoding="utf-8")

    # -- sampling with the model being trained ------------------------------------------------

    def generator(self, *, precision: str | None = None) -> StableDiffusionGenerator:
        """A StableDiffusionGenerator sharing this trainer's models (LoRA as trained so far)."""
        from diffusers import StableDiffusionPipeline

        pipe = StableDiffusionPipeline(
            vae=self.vae,
            text_encoder=self.text_encoder,
            tokenizer=self.tokenizer,
            unet=self.unet,
            scheduler=make_scheduler("ddim", self.info.scheduler_config),
            safety_checker=None,
            feature_extractor=None,
            requires_safety_checker=False,
        )
        gen = StableDiffusionGenerator(
            self.info.path,
            model_name=self.model_name,
            device=str(self.device),
            precision=precision or ("bf16" if self.weight_dtype == torch.bfloat16 else "fp32"),
            _pipeline=pipe,
            _info=self.info,
        )
        if self.last_checkpoint is not None:
            gen.lora_file = (self.last_checkpoint / LORA_WEIGHT_NAME).resolve()
            gen.lora_sha256 = sha256_file(gen.lora_file)
        return gen


def train_lora(
    checkpoint: str | os.PathLike,
    output_dir: str | os.PathLike,
    dataset: Sequence[TrainingItem],
    config: LoraTrainingConfig | None = None,
    *,
    device: str | None = None,
    resume: bool = True,
    on_step: TrainStepCallback | None = None,
    cancel: Any = None,
    model_name: str | None = None,
) -> LoraTrainingResult:
    """Build a LoraTrainer and run it; see LoraTrainer.train."""
    trainer = LoraTrainer(
        checkpoint, output_dir, dataset, config, device=device, model_name=model_name
    )
    return trainer.train(resume=resume, on_step=on_step, cancel=cancel)
