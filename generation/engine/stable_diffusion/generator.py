"""Sampling: a loaded Stable Diffusion pipeline (optionally with a LoRA) making grayscale images."""

from __future__ import annotations

import math
import os
import warnings
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np
import torch

from generation.engine.cancellation import cancel_requested
from generation.engine.devices import Placement, library_versions, pick_placement

from .checks import CheckpointInfo, check_checkpoint, check_lora_folder, sha256_file
from .errors import CheckpointError, GenerationCancelled
from .layout import (
    GENERATOR_KIND,
    MAX_SEED,
    SCHEDULER_NAMES,
    StepCallback,
)


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


def _check_request(
    prompts: str | Sequence[str], seeds: list[int], steps: int, batch_size: int
) -> list[str]:
    """One prompt per seed; ValueError for seeds, steps or batch sizes the pipeline cannot take."""
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
    return prompt_list


class _StepProgress:
    """Counts denoising steps over all batches for `on_step`, and stops at once when cancelled."""

    def __init__(self, total: int, on_step, cancel, results: list, n_images: int) -> None:
        self.total, self.on_step, self.cancel = total, on_step, cancel
        self.results, self.n_images = results, n_images
        self.done = 0

    def stop(self) -> GenerationCancelled:
        return GenerationCancelled(
            f"sampling cancelled after {len(self.results)} of {self.n_images} image(s)",
            list(self.results),
        )

    def on_step_end(self, pipe, step_index, timestep, callback_kwargs):
        self.done += 1
        if self.on_step is not None:
            self.on_step(min(self.done, self.total), self.total)
        if cancel_requested(self.cancel):
            pipe._interrupt = True
            raise self.stop()  # leaves the pipeline at once: no VAE decode of a batch to be dropped
        return callback_kwargs


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
        prompt_list = _check_request(prompts, seeds, steps, batch_size)
        width, height = self._size(width, height)
        self.pipe.scheduler = sampler = make_scheduler(scheduler, self.info.scheduler_config)
        n_batches = math.ceil(len(seeds) / batch_size)
        results: list[GeneratedImage] = []
        progress = _StepProgress(n_batches * steps, on_step, cancel, results, len(seeds))
        versions = _all_library_versions()
        for batch_number in range(n_batches):
            if cancel_requested(cancel):
                raise progress.stop()
            chunk = slice(batch_number * batch_size, (batch_number + 1) * batch_size)
            batch_prompts, batch_seeds = prompt_list[chunk], seeds[chunk]
            arrays = self._sample_batch(
                batch_prompts, batch_seeds, negative_prompt, steps, guidance, width, height,
                progress.on_step_end,
            )  # fmt: skip
            progress.done = (batch_number + 1) * steps
            created = datetime.now(UTC).isoformat()
            for array, prompt, seed in zip(arrays, batch_prompts, batch_seeds):
                provenance = self._provenance(
                    prompt, negative_prompt, scheduler, sampler, steps, guidance, seed, width,
                    height, versions, created,
                )  # fmt: skip
                results.append(GeneratedImage(array, provenance))
                if on_image is not None:
                    on_image(len(results) - 1, results[-1])
            if on_batch is not None:
                on_batch(len(results), len(seeds))
        return results

    def _size(self, width: int | None, height: int | None) -> tuple[int, int]:
        default = self.default_resolution()
        width = int(width or default)
        height = int(height or default)
        factor = max(8, int(self.pipe.vae_scale_factor))  # the pipeline insists on 8
        if width % factor or height % factor:
            raise ValueError(
                f"width and height must be multiples of {factor}, not {width}x{height}"
            )
        return width, height

    def _sample_batch(
        self, prompts, seeds, negative_prompt, steps, guidance, width, height, on_step_end
    ) -> list[np.ndarray]:
        """Grayscale images of one batch, each from a CPU generator seeded with its seed."""
        generators = [torch.Generator("cpu").manual_seed(seed) for seed in seeds]
        output = self.pipe(
            prompt=prompts,
            negative_prompt=[negative_prompt] * len(prompts) if negative_prompt else None,
            num_inference_steps=steps,
            guidance_scale=float(guidance),
            width=width,
            height=height,
            generator=generators,
            output_type="np",
            callback_on_step_end=on_step_end,
        )
        return rgb_to_gray_uint8(output.images)

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
