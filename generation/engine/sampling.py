"""Classifier-free-guided sampling for class-conditional ddpm models.

diffusers pipelines take no class labels, so the loop is written here on `set_timesteps` /
`scale_model_input` / `step`. The conditional and unconditional halves go through the UNet in one
batch: eps = eps_uncond + g * (eps_cond - eps_uncond); with g == 1 only the conditional half runs.

One seed per image: image i starts from noise drawn on the CPU by
``torch.Generator().manual_seed(seeds[i])`` and any per-step noise (DDIM with eta > 0) comes from
that same generator, so an image depends on its seed only, not on the device or on which other
images share its batch (up to floating-point differences between batch sizes).
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from .cancellation import cancel_requested as _cancel_requested
from .checkpoints import LoadedModel
from .ddpm import KIND, DDPMError
from .devices import library_versions, pick_placement

SCHEDULERS = ("ddim", "dpm++", "euler")
MAX_SEED = 2**63 - 1


class SamplingCancelled(Exception):
    """Raised when the cancel check fires; `completed` holds the images finished before it."""

    def __init__(self, completed: list[SampledImage]):
        super().__init__(f"sampling cancelled after {len(completed)} image(s)")
        self.completed = completed


@dataclass
class SampledImage:
    array: np.ndarray  # uint8, H x W
    provenance: dict[str, Any]


def make_scheduler(name: str, scheduler_config: dict[str, Any]):
    """A sampling scheduler matching the training noise schedule (a DDPMScheduler config).

    The prediction type (epsilon or v) and the schedule (named, shifted as trained_betas, and
    zero-terminal-SNR rescaled) come from the training config, so every solver reads the UNet's
    output as it was trained; a config saved before these keys existed is epsilon / unshifted.
    """
    from diffusers import DDIMScheduler, DPMSolverMultistepScheduler, EulerDiscreteScheduler

    common = {
        key: scheduler_config[key]
        for key in (
            "num_train_timesteps",
            "beta_start",
            "beta_end",
            "beta_schedule",
            "prediction_type",
            "trained_betas",
            "rescale_betas_zero_snr",
        )
        if scheduler_config.get(key) is not None
    }
    if name == "ddim":
        return DDIMScheduler(
            **common,
            clip_sample=scheduler_config.get("clip_sample", True),
            clip_sample_range=scheduler_config.get("clip_sample_range", 1.0),
            set_alpha_to_one=True,
            timestep_spacing="trailing",
        )
    if name == "dpm++":
        return DPMSolverMultistepScheduler(
            **common, algorithm_type="dpmsolver++", solver_order=2, timestep_spacing="trailing"
        )
    if name == "euler":
        return EulerDiscreteScheduler(**common, timestep_spacing="trailing")
    raise DDPMError(f"unknown scheduler {name!r}; choose one of {', '.join(SCHEDULERS)}")


def to_uint8(x: torch.Tensor) -> np.ndarray:
    """N x 1 x H x W in [-1, 1] -> N x H x W uint8."""
    x = x.float().clamp(-1, 1).add(1).mul(127.5).round().to(torch.uint8)
    return x[:, 0].cpu().numpy()


def initial_noise(
    seeds: Sequence[int], resolution: int
) -> tuple[torch.Tensor, list[torch.Generator]]:
    """Per-image CPU generators and the N x 1 x R x R starting noise they draw."""
    generators = [torch.Generator().manual_seed(int(s)) for s in seeds]
    noise = torch.cat(
        [torch.randn((1, 1, resolution, resolution), generator=g) for g in generators]
    )
    return noise, generators


def denoise(
    unet: torch.nn.Module,
    scheduler,
    noise: torch.Tensor,
    labels: torch.Tensor,
    *,
    null_class: int,
    steps: int,
    guidance: float,
    generators: list[torch.Generator] | None = None,
    eta: float = 0.0,
    autocast_dtype: torch.dtype | None = None,
    channels_last: bool = False,
    cancel: Any = None,
    on_step: Callable[[], Any] | None = None,
) -> torch.Tensor | None:
    """The guided loop on one batch; `noise` and `labels` already on the UNet's device.

    Returns the final sample (N x 1 x R x R, roughly [-1, 1]) or None if `cancel` fired.
    """
    device = noise.device
    guided = guidance != 1.0
    scheduler.set_timesteps(steps, device=device)
    x = noise * scheduler.init_noise_sigma
    if guided:
        labels = torch.cat([labels, torch.full_like(labels, null_class)])
    step_kwargs: dict[str, Any] = {"return_dict": False}
    if generators is not None and eta > 0:
        step_kwargs["generator"] = generators
    if eta > 0:
        step_kwargs["eta"] = eta
    memory_format = torch.channels_last if channels_last else torch.contiguous_format
    autocast = (
        torch.autocast(device.type, dtype=autocast_dtype)
        if autocast_dtype is not None and autocast_dtype != torch.float32
        else contextlib.nullcontext()
    )
    with torch.inference_mode(), autocast:
        for t in scheduler.timesteps:
            model_in = scheduler.scale_model_input(x, t)
            if guided:
                model_in = torch.cat([model_in, model_in])
            if channels_last:
                model_in = model_in.contiguous(memory_format=memory_format)
            # epsilon or v: both are affine in x0 and eps, so guidance mixes either alike
            out = unet(model_in, t, class_labels=labels, return_dict=False)[0].float()
            if guided:
                cond, uncond = out.chunk(2)
                out = torch.lerp(uncond, cond, guidance)
            x = scheduler.step(out, t, x, **step_kwargs)[0]
            if on_step is not None:
                on_step()
            if cancel is not None and _cancel_requested(cancel):
                return None
    return x


def _normalise_requests(model: LoadedModel, findings, seeds) -> list[tuple[str, int, int]]:
    if isinstance(findings, str):
        findings = [findings]
    findings = list(findings)
    seeds = list(seeds)
    if not seeds:
        raise DDPMError("no seeds given: pass one seed per image")
    if not findings:
        raise DDPMError("no findings given: pass one finding per image (or one for all)")
    if len(findings) == 1 and len(seeds) > 1:
        findings = findings * len(seeds)
    if len(findings) != len(seeds):
        raise DDPMError(
            f"{len(findings)} findings for {len(seeds)} seeds: pass one finding per seed, or one finding"
        )
    requests = []
    for finding, seed in zip(findings, seeds, strict=True):
        if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)):
            raise DDPMError(f"seeds must be integers, got {seed!r}")
        if not 0 <= int(seed) <= MAX_SEED:
            raise DDPMError(f"seed {seed} is out of range [0, 2**63 - 1]")
        requests.append((finding, model.config.class_index(finding), int(seed)))
    return requests


def _prepare_unet(model: LoadedModel, device: torch.device, channels_last: bool, compile: bool):
    unet = model.unet
    if next(unet.parameters()).device != device:
        unet.to(device)
    if channels_last:
        # Module.to takes memory_format at run time; torch's overloads leave it out.
        unet.to(memory_format=torch.channels_last)  # type: ignore[call-overload]
    if not compile:
        return unet
    key = f"{device}/{channels_last}"
    if key not in model._compiled:
        model._compiled[key] = torch.compile(unet)
    return model._compiled[key]


def sample(
    model: LoadedModel,
    findings: Sequence[str] | str,
    *,
    seeds: Sequence[int],
    steps: int = 50,
    guidance: float = 3.0,
    scheduler: str = "ddim",
    device: str | None = None,
    precision: str | None = None,
    batch_size: int = 16,
    eta: float = 0.0,
    on_image: Callable[[int, SampledImage], Any] | None = None,
    on_batch: Callable[[int, int], Any] | None = None,
    on_step: Callable[[int, int], Any] | None = None,
    cancel: Any = None,
    prompt: str | None = None,
    negative_prompt: str | None = None,
    compile: bool = False,
    channels_last: bool | None = None,
) -> list[SampledImage]:
    """Generate one image per seed, of the matching finding (or of the single finding given).

    `on_image(index, image)` fires as each image is done, `on_batch(done, total)` after each
    batch, `on_step(done_steps, total_steps)` after every denoising step (counted over all
    batches). `cancel` is a callable returning True or an object with ``is_set()`` (a
    threading.Event); it is checked after every step and makes `sample` raise
    `SamplingCancelled` (holding the finished images). `compile` (torch.compile) and
    `channels_last` (default on) only apply on CUDA. Returns images in the order of `seeds`.
    """
    _check_request(model, scheduler, steps, guidance, batch_size, eta, prompt, negative_prompt)
    requests = _normalise_requests(model, findings, seeds)
    placement = pick_placement(device, precision)
    dev = placement.device
    use_channels_last = dev.type == "cuda" and (channels_last is None or channels_last)
    use_compile = bool(compile) and dev.type == "cuda"
    unet = _prepare_unet(model, dev, use_channels_last, use_compile)
    base = _provenance(model, placement, scheduler, steps, guidance, eta, use_compile)
    options = {
        "null_class": model.config.null_class, "steps": steps, "eta": eta,
        "guidance": float(guidance), "autocast_dtype": placement.dtype, "cancel": cancel,
        "channels_last": use_channels_last,
        "on_step": _step_counter(on_step, steps, len(requests), batch_size),
    }  # fmt: skip
    done: list[SampledImage] = []
    for start in range(0, len(requests), batch_size):
        chunk = requests[start : start + batch_size]
        x = _denoise_chunk(unet, model, scheduler, chunk, dev, options)
        if x is None:
            raise SamplingCancelled(done)
        for offset, image in enumerate(_sampled_images(chunk, x, base)):
            done.append(image)
            if on_image is not None:
                on_image(start + offset, image)
        if on_batch is not None:
            on_batch(len(done), len(requests))
    return done


def _check_request(model, scheduler, steps, guidance, batch_size, eta, prompt, negative_prompt):
    """DDPMError for settings `sample` cannot honour, before any model is moved."""
    if prompt is not None or negative_prompt is not None:
        raise DDPMError(
            f"model {model.name!r} is a class-conditional ddpm model: it takes findings "
            f"({', '.join(model.findings)}), not a text prompt"
        )
    if scheduler not in SCHEDULERS:
        raise DDPMError(f"unknown scheduler {scheduler!r}; choose one of {', '.join(SCHEDULERS)}")
    if isinstance(steps, bool) or not isinstance(steps, int) or steps < 1:
        raise DDPMError(f"steps must be a positive integer, got {steps!r}")
    if not isinstance(guidance, (int, float)) or not np.isfinite(guidance) or guidance < 0:
        raise DDPMError(f"guidance must be a finite number >= 0, got {guidance!r}")
    if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
        raise DDPMError(f"batch_size must be a positive integer, got {batch_size!r}")
    if eta < 0 or eta > 1:
        raise DDPMError(f"eta must be between 0 and 1, got {eta!r}")
    if eta and scheduler != "ddim":
        raise DDPMError("eta only applies to the ddim scheduler")


def _provenance(model, placement, scheduler, steps, guidance, eta, compiled) -> dict[str, Any]:
    """What every image of this call records about how it was made (plus finding and seed)."""
    return {
        "generator": KIND,
        "model": model.name,
        "model_folder": str(model.folder),
        "checkpoint": str(model.checkpoint),
        "checkpoint_step": model.step,
        "weights_sha256": model.weights_sha256,
        "modality": model.config.modality,
        "scheduler": scheduler,
        "prediction_type": model.scheduler_config.get("prediction_type", "epsilon"),
        "steps": steps,
        "guidance": float(guidance),
        "eta": float(eta),
        "resolution": model.config.resolution,
        "device": str(placement.device),
        "dtype": placement.dtype_name,
        "compiled": compiled,
        "library_versions": library_versions(),
    }


def _step_counter(on_step, steps: int, total: int, batch_size: int):
    """A no-argument callback counting denoising steps over all batches for `on_step`."""
    if on_step is None:
        return None
    total_steps = steps * -(-total // batch_size)
    counter = iter(range(1, total_steps + 1))

    def step_callback() -> None:
        on_step(next(counter), total_steps)

    return step_callback


def _denoise_chunk(unet, model, scheduler: str, chunk, dev, options: dict[str, Any]):
    """The denoised batch of `chunk`'s (finding, class index, seed) requests; None if cancelled."""
    noise, generators = initial_noise([seed for _, _, seed in chunk], model.config.resolution)
    labels = torch.tensor([index for _, index, _ in chunk], dtype=torch.long, device=dev)
    return denoise(
        unet,
        make_scheduler(scheduler, model.scheduler_config),
        noise.to(dev),
        labels,
        generators=generators,
        **options,
    )


def _sampled_images(chunk, x, base: dict[str, Any]) -> list[SampledImage]:
    arrays = to_uint8(x)
    return [
        SampledImage(
            array=array,
            provenance={**base, "finding": finding, "class_index": index, "seed": seed},
        )
        for (finding, index, seed), array in zip(chunk, arrays, strict=True)
    ]


def image_grid(arrays: Sequence[np.ndarray], columns: int, pad: int = 2) -> np.ndarray:
    """Tile equally sized uint8 H x W arrays into one uint8 grid (row-major)."""
    if not arrays:
        raise DDPMError("no images to tile")
    h, w = arrays[0].shape
    rows = -(-len(arrays) // columns)
    grid = np.zeros((rows * (h + pad) + pad, columns * (w + pad) + pad), dtype=np.uint8)
    for i, array in enumerate(arrays):
        r, c = divmod(i, columns)
        top, left = pad + r * (h + pad), pad + c * (w + pad)
        grid[top : top + h, left : left + w] = array
    return grid
