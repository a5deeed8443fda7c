"""Training loop for class-conditional ddpm models.

Epsilon- or v-prediction MSE (optionally min-SNR-gamma weighted, with offset noise) under a
DDPMScheduler noise schedule, AdamW with linear warm-up then constant or cosine LR, EMA weights,
label dropout to the null class (for classifier-free guidance; images without a finding train
it too), gradient accumulation, bf16 / fp16 with a gradient scaler / fp32 by device
(`precision.py`), a training set streamed from disk (`data.py`), any number of
torch.distributed processes (`distributed.py`), and no horizontal flips unless asked (anatomy
is not left-right symmetric). The recipe's pieces live in recipe.py.

Every random draw of step k (batch order, timesteps, noise, label dropout, augmentation) comes
from generators derived from (seed, k), and optimizer, LR scheduler, EMA and global RNG state are
checkpointed, so training resumed from a checkpoint follows the uninterrupted run exactly.
"""

from __future__ import annotations

import copy
import dataclasses
import json
import math
import os
import shutil
import time
from collections.abc import Callable, Sequence
from contextlib import nullcontext
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from . import checkpoints as ckpt
from . import data as data_mod
from . import distributed as dist_mod
from . import legacy
from . import precision as precision_mod
from .cancellation import cancel_requested as _cancel_requested
from .data import EpochOrder as _EpochOrder  # noqa: F401 - kept importable from here
from .data import mix as _mix
from .ddpm import (
    KIND,
    DDPMConfig,
    DDPMError,
    UnknownFindingError,
    build_noise_scheduler,
    build_unet,
)
from .devices import pick_device
from .recipe import (
    LR_SCHEDULES,
    add_offset_noise,
    lr_lambda,
    min_snr_weights,
    random_hflip,
    snr,
    training_target,
)


class TrainingError(DDPMError):
    pass


class NonFiniteLossError(TrainingError):
    pass


@dataclass
class TrainingConfig:
    steps: int = 20_000
    batch_size: int = 16
    grad_accum: int = 1
    lr: float = 2e-4
    warmup_steps: int = 500
    weight_decay: float = 0.0
    adam_betas: tuple[float, float] = (0.9, 0.999)
    max_grad_norm: float | None = 1.0
    ema_decay: float = 0.999
    ema_warmup: bool = True  # decay ramps up as min(ema_decay, (1 + n) / (10 + n))
    label_dropout: float = 0.1
    checkpoint_every: int = 1000
    keep_checkpoints: int = 3  # 0 keeps all
    log_every: int = 10
    grid_steps: int = 25  # sampler steps for the sample grid; 0: no grid
    grid_guidance: float = 2.0
    grid_per_class: int = 2
    grid_scheduler: str = "ddim"
    augment: bool = False  # small random affine (rotation, scale, shift)
    # left-right mirroring: off, because laterality is anatomy in a chest X-ray (heart on the
    # left, liver under the right hemidiaphragm); a flipped film is a situs-inversus patient
    hflip: bool = False
    # the recipe (recipe.py); LEGACY_TRAINING_RECIPE is what runs before these fields used
    min_snr_gamma: float = 5.0  # 0: plain MSE
    offset_noise: float = 0.0
    lr_schedule: str = "cosine"
    mixed_precision: bool = True  # False: fp32 whatever `precision` says
    precision: str = "auto"  # auto: bf16 on CUDA >= 8.0, fp16 + grad scaler below, fp32 on CPU
    data_workers: int = 2  # DataLoader worker processes decoding images (0: in this process)
    seed: int = 0

    def validate(self) -> None:
        def positive_int(name: str, minimum: int = 1) -> None:
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
                raise TrainingError(f"{name} must be an integer >= {minimum}, got {value!r}")

        for name in ("steps", "batch_size", "grad_accum", "checkpoint_every", "log_every"):
            positive_int(name)
        for name in ("warmup_steps", "keep_checkpoints", "grid_steps", "grid_per_class", "seed"):
            positive_int(name, 0)
        positive_int("data_workers", 0)
        if self.precision not in precision_mod.CHOICES:
            raise TrainingError(
                f"precision must be one of {', '.join(precision_mod.CHOICES)}, "
                f"got {self.precision!r}"
            )
        if not (isinstance(self.lr, (int, float)) and math.isfinite(self.lr) and self.lr > 0):
            raise TrainingError(f"lr must be a finite number > 0, got {self.lr!r}")
        if not 0 <= self.label_dropout < 1:
            raise TrainingError(f"label_dropout must be in [0, 1), got {self.label_dropout!r}")
        if not 0 <= self.ema_decay < 1:
            raise TrainingError(f"ema_decay must be in [0, 1), got {self.ema_decay!r}")
        if self.max_grad_norm is not None and not self.max_grad_norm > 0:
            raise TrainingError(f"max_grad_norm must be > 0 or None, got {self.max_grad_norm!r}")
        self._validate_recipe()

    def _validate_recipe(self) -> None:
        if not (isinstance(self.min_snr_gamma, (int, float)) and 0 <= self.min_snr_gamma < 1e6):
            raise TrainingError(f"min_snr_gamma must be >= 0 (0: off), got {self.min_snr_gamma!r}")
        if not (isinstance(self.offset_noise, (int, float)) and 0 <= self.offset_noise <= 1):
            raise TrainingError(f"offset_noise must be in [0, 1], got {self.offset_noise!r}")
        if self.lr_schedule not in LR_SCHEDULES:
            raise TrainingError(
                f"lr_schedule must be one of {', '.join(LR_SCHEDULES)}, got {self.lr_schedule!r}"
            )

    def to_dict(self) -> dict[str, Any]:
        data = dataclasses.asdict(self)
        data["adam_betas"] = list(self.adam_betas)
        return data


# What a run whose settings predate the recipe options trained with (to resume it as it was).
LEGACY_TRAINING_RECIPE: dict[str, Any] = legacy.TRAINING_RECIPE


@dataclass
class TrainResult:
    model_dir: Path
    step: int
    total_steps: int
    cancelled: bool
    last_checkpoint: Path | None
    last_loss: float | None


# ------------------------------------------------------------------------------- the data
def prepare_dataset(
    dataset: Sequence[tuple[Any, str]], config: DDPMConfig
) -> data_mod.TrainingImages:
    """The streaming training set from (uint8 image or image file path, finding) pairs.

    Every label is checked here; images in memory are checked for shape here too, files when
    their batch first reads them.
    """
    items = list(dataset)
    if not items:
        raise TrainingError("the training set is empty: nothing to train on")
    pairs = []
    for i, item in enumerate(items):
        try:
            image, finding = item
        except (TypeError, ValueError):
            raise TrainingError(f"training item {i} is not an (image, finding) pair") from None
        pairs.append((image, finding))
    unknown: dict[str, int] = {}
    for _, finding in pairs:  # check every label before any image work
        if finding not in config.findings and not _no_finding(finding):
            unknown[str(finding)] = unknown.get(str(finding), 0) + 1
    if unknown:
        listed = ", ".join(f"{name!r} ({count})" for name, count in sorted(unknown.items()))
        raise UnknownFindingError(
            f"unknown finding(s) in the training set: {listed}; the model knows: "
            f"{', '.join(config.findings)}"
        )
    labelled = [(image, _class_of(finding, config)) for image, finding in pairs]
    try:
        return data_mod.TrainingImages(labelled, config.resolution)
    except data_mod.DataError as error:
        raise TrainingError(str(error)) from None


def _no_finding(finding: Any) -> bool:
    return finding is None or finding == ""


def _class_of(finding: Any, config: DDPMConfig) -> int:
    """An image without a finding trains the null class: the unconditional branch of guidance."""
    return config.null_class if _no_finding(finding) else config.findings.index(finding)


def _augment(x: torch.Tensor, g: torch.Generator, part: slice | None = None,
             n: int | None = None) -> torch.Tensor:  # fmt: skip
    """Small random rotation (+-3 deg), scale (+-4 %) and shift (+-3 %); no flips.

    `n` draws are made (the global batch) and `part` of them applied to `x` (this rank's)."""
    n = n or x.shape[0]
    part = part or slice(0, n)
    angle = ((torch.rand(n, generator=g) * 2 - 1) * math.radians(3))[part]
    scale = (1 + (torch.rand(n, generator=g) * 2 - 1) * 0.04)[part]
    shift = ((torch.rand(n, 2, generator=g) * 2 - 1) * 0.06)[part]  # grid units span 2
    cos, sin = torch.cos(angle) / scale, torch.sin(angle) / scale
    theta = torch.stack(
        [torch.stack([cos, -sin, shift[:, 0]], 1), torch.stack([sin, cos, shift[:, 1]], 1)], 1
    ).to(x.device)
    grid = F.affine_grid(theta, list(x.shape), align_corners=False)
    return F.grid_sample(x, grid, mode="bilinear", padding_mode="border", align_corners=False)


def diffusion_loss(
    unet: torch.nn.Module,
    noise_scheduler,
    x0: torch.Tensor,
    labels: torch.Tensor,
    noise: torch.Tensor,
    timesteps: torch.Tensor,
    *,
    min_snr_gamma: float = 0.0,
) -> torch.Tensor:
    """MSE between the UNet's output and its target (noise or v; x0 in [-1, 1]), each image
    weighted by min-SNR-gamma when gamma > 0."""
    noisy = noise_scheduler.add_noise(x0, noise, timesteps)
    pred = unet(noisy, timesteps, class_labels=labels, return_dict=False)[0]
    target = training_target(noise_scheduler, x0, noise, timesteps)
    if min_snr_gamma <= 0:
        return F.mse_loss(pred.float(), target.float())
    per_image = F.mse_loss(pred.float(), target.float(), reduction="none").mean(dim=(1, 2, 3))
    weights = min_snr_weights(
        snr(noise_scheduler.alphas_cumprod, timesteps),
        min_snr_gamma,
        noise_scheduler.config.prediction_type,
    )
    return (per_image * weights).mean()


class EMA:
    """Exponential moving average of a module's parameters, kept as a module (for sampling)."""

    def __init__(self, model: torch.nn.Module, decay: float, warmup: bool = True):
        self.module = copy.deepcopy(model).eval().requires_grad_(False)
        self.decay, self.warmup, self.num_updates = decay, warmup, 0
        self._ema: list[torch.Tensor] = list(self.module.parameters())

    def current_decay(self) -> float:
        n = self.num_updates
        return min(self.decay, (1 + n) / (10 + n)) if self.warmup else self.decay

    @torch.no_grad()
    def update(self, model: torch.nn.Module) -> None:
        self.num_updates += 1
        weight = 1.0 - self.current_decay()
        torch._foreach_lerp_(self._ema, [p.detach() for p in model.parameters()], weight)
        for ema_buf, buf in zip(self.module.buffers(), model.buffers(), strict=True):
            ema_buf.copy_(buf)


# -------------------------------------------------------------------------- the model dir
def _prepare_model_dir(
    model_dir: Path, config: DDPMConfig, resume: bool
) -> tuple[bool, Path | None]:
    """(created here, checkpoint to resume from). Refuses folders of another kind or model."""
    if not model_dir.exists():
        return True, None
    if not model_dir.is_dir():
        raise TrainingError(f"{model_dir} exists and is not a folder")
    marker_path = model_dir / ckpt.MARKER
    if not marker_path.is_file():
        if any(model_dir.iterdir()):
            raise TrainingError(
                f"{model_dir} is not empty and is not a ddpm model folder (no {ckpt.MARKER}); "
                f"refusing to write into it"
            )
        return True, None  # an empty folder: ours to fill (and to empty again on failure)
    marker = ckpt.read_json(marker_path, "ddpm model description")
    if marker.get("kind") != KIND or marker.get("role") != "model":
        raise TrainingError(f"{marker_path} does not describe a ddpm model folder")
    saved = _as_current(marker.get("model", {}))
    wanted = config.to_dict()
    changed = sorted(k for k in set(saved) | set(wanted) if saved.get(k) != wanted.get(k))
    if changed:
        raise TrainingError(
            f"{model_dir} holds a ddpm model with a different config ({', '.join(changed)} "
            f"differ); train into a new folder"
        )
    ckpt.remove_stale_temporaries(model_dir)
    latest = ckpt.latest_checkpoint(model_dir)
    if latest is not None and not resume:
        raise TrainingError(
            f"{model_dir} already has checkpoints (latest {latest.name}); pass resume=True to "
            f"continue training, or use a new folder"
        )
    return False, latest


def _as_current(saved: dict[str, Any]) -> dict[str, Any]:
    """A saved model config with the fields it predates filled in as they were meant."""
    try:
        return DDPMConfig.from_dict(saved).to_dict()
    except (DDPMError, TypeError):
        return saved


def _truncate_log(path: Path, step: int) -> None:
    if not path.is_file():
        return
    kept = []
    for line in path.read_text().splitlines():
        try:
            if json.loads(line)["step"] <= step:
                kept.append(line)
        except (ValueError, KeyError, TypeError):
            continue
    tmp = path.with_name(ckpt._TMP_PREFIX + path.name)
    tmp.write_text("".join(line + "\n" for line in kept))
    os.replace(tmp, path)


def _discard(model_dir: Path, keep_folder: bool) -> None:
    """Remove what this run wrote into a folder that never got a checkpoint."""
    if not keep_folder:
        shutil.rmtree(model_dir, ignore_errors=True)
        return
    for child in model_dir.iterdir():
        if child.is_dir():
            shutil.rmtree(child, ignore_errors=True)
        else:
            child.unlink(missing_ok=True)


def init_unet(config: DDPMConfig, seed: int) -> torch.nn.Module:
    """The freshly initialised UNet that `train` starts from for this seed."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(_mix(seed, 0))
        return build_unet(config)


def _rng_state() -> dict[str, Any]:
    state: dict[str, Any] = {"torch": torch.get_rng_state()}
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def _set_rng_state(state: dict[str, Any]) -> None:
    torch.set_rng_state(state["torch"])
    if "cuda" in state and torch.cuda.is_available():
        cuda = state["cuda"]
        if len(cuda) == torch.cuda.device_count():
            torch.cuda.set_rng_state_all(cuda)


def _all_finite(module: torch.nn.Module) -> bool:
    return all(bool(torch.isfinite(p).all()) for p in module.parameters())


def sample_grid(
    ema_unet: torch.nn.Module,
    config: DDPMConfig,
    scheduler_config: dict,
    training: TrainingConfig,
    device: torch.device,
    autocast_dtype: torch.dtype | None,
) -> np.ndarray:
    """Rows: findings; columns: seeds 0..grid_per_class-1; EMA weights."""
    from .sampling import denoise, image_grid, initial_noise, make_scheduler, to_uint8

    requests = [(c, s) for c in range(len(config.findings)) for s in range(training.grid_per_class)]
    arrays: list[np.ndarray] = []
    for start in range(0, len(requests), 16):
        chunk = requests[start : start + 16]
        noise, _ = initial_noise([s for _, s in chunk], config.resolution)
        labels = torch.tensor([c for c, _ in chunk], dtype=torch.long, device=device)
        x = denoise(
            ema_unet,
            make_scheduler(training.grid_scheduler, scheduler_config),
            noise.to(device),
            labels,
            null_class=config.null_class,
            steps=training.grid_steps,
            guidance=training.grid_guidance,
            autocast_dtype=autocast_dtype,
        )
        assert x is not None  # no cancel given, so the loop always finishes
        arrays.extend(to_uint8(x))
    return image_grid(arrays, columns=training.grid_per_class)


# ---------------------------------------------------------------------------- training
def train(
    dataset: Sequence[tuple[Any, str]],
    config: DDPMConfig,
    model_dir: str | os.PathLike,
    training: TrainingConfig | None = None,
    *,
    device: str | None = None,
    on_step: Callable[[int, int, float], Any] | None = None,
    cancel: Any = None,
    resume: bool = True,
    save_on_cancel: bool = False,
) -> TrainResult:
    """Train (or resume training of) a ddpm model into `model_dir` for `training.steps` steps.

    `dataset`: a sequence of (uint8 H x W square grayscale array or an image file's path,
    finding name); images not at the model resolution are resized, files are decoded per batch.
    `on_step(step, total, loss)` is called after every optimizer step; returning False (or
    `cancel` firing: a callable returning True or an object with ``is_set()``) stops training
    after that step, leaving the last checkpoint as it was (with `save_on_cancel`, a checkpoint
    of the current step is written first). If `model_dir` already holds checkpoints of the same
    model and `resume` is true, training continues from the latest one. A folder created by this
    call is removed again if training stops before its first checkpoint.

    Inside an initialised torch.distributed process group, every rank calls this with the same
    arguments: each trains on its part of every global batch of `training.batch_size` images
    (gradients averaged by DDP), the loss passed to `on_step` is the global batch's, the ranks
    stop together when any of them is asked to, and only rank 0 writes the folder.
    """
    training = training or TrainingConfig()
    world = dist_mod.current()
    dev = dist_mod.local_device(pick_device(device), world)
    cuda_devices = (
        [dev.index if dev.index is not None else torch.cuda.current_device()]
        if dev.type == "cuda"
        else []
    )
    with torch.random.fork_rng(devices=cuda_devices):
        return _train(
            dataset, config, Path(model_dir), training, dev, on_step, cancel, resume, save_on_cancel
        )


def schedule_of(training: TrainingConfig) -> dict[str, Any]:
    """The run's schedule, stored in every checkpoint: the learning-rate schedule's parameters,
    what fixes the data order, and the checkpoint and log intervals."""
    return {name: getattr(training, name) for name in SCHEDULE_FIELDS + INTERVAL_FIELDS}


# What a resumed run must keep (changed ones are refused): the LR schedule's parameters (extend
# with any new schedule parameter), then the data order's.
# A cosine decay ends at the run's total: a resumed run with a new total decays over the new
# total from where it stands (the run is extended or shortened, not replayed).
SCHEDULE_FIELDS = ("warmup_steps", "lr_schedule", "batch_size", "grad_accum", "seed")
# Stored too, and what a resumed run leaves unset comes back from them (the backend's
# `training_config_from`); set explicitly, they may change: they move no number of the run.
INTERVAL_FIELDS = ("checkpoint_every", "log_every")


def stored_schedule(model_dir: str | os.PathLike) -> dict[str, Any]:
    """The schedule the latest checkpoint of `model_dir` was trained with ({} if none), and its
    recipe's training settings: those the checkpoint's description does not name were the
    legacy ones (it predates them), so an old run resumes as it was however often it resumes."""
    latest = ckpt.latest_checkpoint(model_dir)
    if latest is None:
        return {}
    trained = ckpt.read_json(latest / ckpt.MARKER, "ddpm checkpoint description").get("training")
    recipe = {k: (trained or {}).get(k, v) for k, v in LEGACY_TRAINING_RECIPE.items()}
    return {**recipe, **(ckpt.load_training_state(latest).get("schedule") or {})}


def check_schedule(stored: dict[str, Any], training: TrainingConfig) -> None:
    """Refuse to resume with another schedule: the run would not be the one it continues."""
    wanted = schedule_of(training)
    changed = [k for k in SCHEDULE_FIELDS if k in stored and stored[k] != wanted[k]]
    if changed:
        listed = ", ".join(f"{k} {stored[k]!r} (asked: {wanted[k]!r})" for k in changed)
        raise TrainingError(
            f"this run was started with {listed}; resuming with other values would not continue "
            f"the same run. Resume with the stored values (leave them unset), or train into a "
            f"new folder"
        )


@dataclass
class _Run:
    """The state one training call's steps share: data, model, optimizer, EMA, last checkpoint."""

    config: DDPMConfig
    training: TrainingConfig
    dev: torch.device
    model_dir: Path
    images: data_mod.TrainingImages
    precision: precision_mod.Precision
    unet: Any
    noise_scheduler: Any
    scheduler_config: dict
    optimizer: torch.optim.Optimizer
    lr_scheduler: torch.optim.lr_scheduler.LambdaLR
    ema: EMA
    scaler: Any
    world: dist_mod.World
    model: Any = None  # what the forward pass calls: the UNet, or DDP around it
    last_checkpoint: Path | None = None

    @property
    def autocast_dtype(self) -> torch.dtype | None:
        return self.precision.autocast_dtype


def _train(
    dataset, config, model_dir, training, dev, on_step, cancel, resume, save_on_cancel
) -> TrainResult:
    _validate(training, config)
    world = dist_mod.current()
    images = prepare_dataset(dataset, config)
    existed = model_dir.is_dir()
    created, resume_from = _prepare_on_main(model_dir, config, resume, world)
    run = _build_run(config, training, dev, model_dir, images, world)
    start_step = 0
    if resume_from is not None:
        start_step = _restore(run, resume_from)
        if start_step >= training.steps:
            return TrainResult(model_dir, start_step, training.steps, False, resume_from, None)
    run.model = dist_mod.wrap(run.unet, world, dev)
    if world.main:
        model_dir.mkdir(parents=True, exist_ok=True)
        _truncate_log(model_dir / ckpt.LOSS_LOG, start_step)  # drop rows past the checkpoint
        if not (model_dir / ckpt.MARKER).is_file():
            ckpt.write_json_atomic(model_dir / ckpt.MARKER, ckpt.model_marker(config))
    try:
        step, cancelled, last_loss = _loop(run, start_step, on_step, cancel, save_on_cancel)
    except data_mod.DataError as error:
        _clean_up_after_failure(run, created, existed)
        # from a DataLoader worker the message carries the worker's traceback: keep its last line
        raise TrainingError(str(error).strip().splitlines()[-1].split("DataError: ")[-1]) from None
    except BaseException:
        _clean_up_after_failure(run, created, existed)
        raise
    if cancelled and created and run.last_checkpoint is None and world.main:
        _discard(model_dir, existed)
    return TrainResult(model_dir, step, training.steps, cancelled, run.last_checkpoint, last_loss)


def _clean_up_after_failure(run: _Run, created: bool, existed: bool) -> None:
    if not run.world.main:
        return
    if created and ckpt.latest_checkpoint(run.model_dir) is None:
        _discard(run.model_dir, existed)
    else:
        ckpt.remove_stale_temporaries(run.model_dir)


def _prepare_on_main(
    model_dir: Path, config: DDPMConfig, resume: bool, world: dist_mod.World
) -> tuple[bool, Path | None]:
    """`_prepare_model_dir` on rank 0 only (it cleans the folder); its answer on every rank."""
    outcome: tuple = ()
    if world.main:
        try:
            outcome = ("ok", *_prepare_model_dir(model_dir, config, resume))
        except DDPMError as error:
            dist_mod.broadcast(("error", str(error)), world)
            raise
    outcome = dist_mod.broadcast(outcome, world)
    if outcome[0] == "error":
        raise TrainingError(outcome[1])
    return outcome[1], outcome[2]


def _validate(training: TrainingConfig, config: DDPMConfig) -> None:
    training.validate()
    config.validate()
    if training.grid_steps:
        from .sampling import SCHEDULERS

        if training.grid_scheduler not in SCHEDULERS:
            raise TrainingError(f"unknown grid_scheduler {training.grid_scheduler!r}")
    world = dist_mod.current()
    if training.batch_size % world.size:
        raise TrainingError(
            f"batch_size {training.batch_size} must be a multiple of the number of processes "
            f"({world.size}): each trains on an equal part of every batch"
        )


def choose_precision(training: TrainingConfig, dev: torch.device) -> precision_mod.Precision:
    """The run's precision: `training.precision` on this device (fp32 if mixed precision is
    off); PrecisionError (a TrainingError here) for a choice the device cannot do."""
    requested = training.precision if training.mixed_precision else "fp32"
    try:
        return precision_mod.for_device(dev, requested)
    except precision_mod.PrecisionError as error:
        raise TrainingError(str(error)) from None


def _build_run(config, training, dev, model_dir, images, world) -> _Run:
    """A fresh model, noise schedule, optimizer, warm-up LR schedule and EMA."""
    precision = choose_precision(training, dev)
    # global RNG (weight init, dropout) seeded from `seed` (and the rank: each rank draws its
    # own dropout masks), without touching the caller's
    torch.manual_seed(_mix(training.seed, 3) if world.main else _mix(training.seed, 3, world.rank))
    unet = init_unet(config, training.seed).to(dev).train()
    noise_scheduler = build_noise_scheduler(config)
    scheduler_config = dict(noise_scheduler.config)
    alphas = noise_scheduler.alphas_cumprod.to(dev)
    noise_scheduler.alphas_cumprod = alphas  # add_noise moves it anyway; do it once
    optimizer = torch.optim.AdamW(
        unet.parameters(),
        lr=training.lr,
        betas=tuple(training.adam_betas),
        weight_decay=training.weight_decay,
    )
    lr_scheduler = torch.optim.lr_scheduler.LambdaLR(
        optimizer, lr_lambda(training.warmup_steps, training.steps, training.lr_schedule)
    )
    ema = EMA(unet, training.ema_decay, training.ema_warmup)
    scaler = precision_mod.grad_scaler(precision)
    return _Run(
        config, training, dev, model_dir, images, precision, unet,
        noise_scheduler, scheduler_config, optimizer, lr_scheduler, ema, scaler, world, unet,
    )  # fmt: skip


def _restore(run: _Run, resume_from: Path) -> int:
    """Load a checkpoint's weights, optimizer, schedules, EMA and RNG; returns its step."""
    training, optimizer, lr_scheduler = run.training, run.optimizer, run.lr_scheduler
    state = ckpt.load_training_state(resume_from)
    check_schedule(dict(state.get("schedule") or {}), training)
    run.unet.load_state_dict(ckpt.load_state_tensors(resume_from / ckpt.RAW_WEIGHTS))
    run.ema.module.load_state_dict(ckpt.load_state_tensors(resume_from / ckpt.WEIGHTS))
    optimizer.load_state_dict(state["optimizer"])
    lr_scheduler.load_state_dict(state["lr_scheduler"])
    # hyper-parameters come from this call's config (identical values: an exact resume)
    lr_scheduler.base_lrs = [training.lr for _ in optimizer.param_groups]
    factor = lr_scheduler.lr_lambdas[0](lr_scheduler.last_epoch)
    for group in optimizer.param_groups:
        group.update(
            initial_lr=training.lr,
            lr=training.lr * factor,
            betas=tuple(training.adam_betas),
            weight_decay=training.weight_decay,
        )
    lr_scheduler._last_lr = [group["lr"] for group in optimizer.param_groups]
    run.ema.num_updates = int(state["ema"]["num_updates"])
    if state.get("grad_scaler") and run.scaler.is_enabled():
        run.scaler.load_state_dict(state["grad_scaler"])
    _set_rng_state(_rank_rng_state(state, run.world, training.seed))
    run.last_checkpoint = resume_from
    return int(state["step"])


def _rank_rng_state(state: dict[str, Any], world: dist_mod.World, seed: int) -> dict[str, Any]:
    """This rank's saved RNG state; a rank the checkpoint's run did not have starts afresh."""
    ranks = state.get("rng_ranks") or [state["rng"]]
    if world.rank < len(ranks):
        return ranks[world.rank]
    return {"torch": torch.Generator().manual_seed(_mix(seed, 3, world.rank)).get_state()}


def _write_checkpoint(run: _Run, step: int) -> Path:
    if not _all_finite(run.unet) or not _all_finite(run.ema.module):
        raise NonFiniteLossError(
            f"weights became NaN/inf by step {step}; not writing a checkpoint "
            f"(lower the learning rate, currently {run.training.lr})"
        )
    rng_ranks = dist_mod.gather(_rng_state(), run.world)  # every rank takes part
    path = _save_on_main(run, step, rng_ranks) if run.world.main else None
    return dist_mod.broadcast(path, run.world)


def _save_on_main(run: _Run, step: int, rng_ranks: list[dict[str, Any]]) -> Path:
    training, ema = run.training, run.ema
    grid = None
    if training.grid_steps:
        grid = sample_grid(
            ema.module, run.config, run.scheduler_config, training, run.dev, run.autocast_dtype
        )
    state = {
        "step": step,
        "optimizer": run.optimizer.state_dict(),
        "lr_scheduler": run.lr_scheduler.state_dict(),
        "ema": {"num_updates": ema.num_updates, "decay": ema.decay, "warmup": ema.warmup},
        "rng": rng_ranks[0],
        "rng_ranks": rng_ranks,
        "grad_scaler": run.scaler.state_dict() if run.scaler.is_enabled() else {},
        "schedule": schedule_of(training),
        "sampler": {"samples_seen": step * training.batch_size * training.grad_accum},
    }
    return ckpt.save_checkpoint(
        run.model_dir,
        step,
        config=run.config,
        unet_config=dict(run.unet.config),
        scheduler_config=run.scheduler_config,
        ema_weights=ema.module.state_dict(),
        raw_weights=run.unet.state_dict(),
        training_state=state,
        training_config={**training.to_dict(), "run": run_record(run)},
        grid=grid,
        keep=training.keep_checkpoints,
    )


def run_record(run: _Run) -> dict[str, Any]:
    """How this run computes: precision, device capability, processes (checkpoint metadata)."""
    return {**run.precision.record(), "world_size": run.world.size, "device": str(run.dev)}


def _loop(
    run: _Run, start_step: int, on_step, cancel, save_on_cancel: bool
) -> tuple[int, bool, float | None]:
    """Steps start_step + 1 .. total, logging and checkpointing; (last step, cancelled, loss)."""
    training, world = run.training, run.world
    total = training.steps
    sampler = data_mod.StepBatches(
        len(run.images), seed=training.seed, batch_size=training.batch_size,
        grad_accum=training.grad_accum, first=start_step + 1, last=total,
        rank=world.rank, world_size=world.size,
    )  # fmt: skip
    batches = data_mod.batches(run.images, sampler, training.data_workers)
    interval_losses: list[float] = []
    last_loss: float | None = None
    step = checkpoint_step = start_step
    began = time.monotonic()
    log_path = run.model_dir / ckpt.LOSS_LOG
    with open(log_path, "a") if world.main else nullcontext() as log:
        for step in range(start_step + 1, total + 1):
            step_loss, step_lr = _optimizer_step(run, batches, step)
            last_loss = step_loss
            interval_losses.append(step_loss)
            if world.main and (step % training.log_every == 0 or step == total):
                _log_interval(log, step, interval_losses, step_lr, began)
            if step % training.checkpoint_every == 0 or step == total:
                run.last_checkpoint, checkpoint_step = _write_checkpoint(run, step), step
            stop = on_step is not None and on_step(step, total, step_loss) is False
            if dist_mod.any_rank(stop or _cancel_requested(cancel), world, run.dev):
                if save_on_cancel and checkpoint_step != step:
                    run.last_checkpoint = _write_checkpoint(run, step)
                return step, True, last_loss
    return step, False, last_loss


def _log_interval(log, step: int, losses: list[float], lr: float, began: float) -> None:
    """One loss-log row: the mean loss since the last row; empties `losses`."""
    row = {
        "step": step,
        "loss": sum(losses) / len(losses),
        "lr": lr,  # the learning rate of this step
        "elapsed_s": round(time.monotonic() - began, 3),
    }
    log.write(json.dumps(row) + "\n")
    log.flush()
    losses.clear()


def _optimizer_step(run: _Run, batches, step: int) -> tuple[float, float]:
    """One optimizer step over grad_accum micro-batches; (its mean loss, its learning rate)."""
    training, optimizer, scaler = run.training, run.optimizer, run.scaler
    g = torch.Generator().manual_seed(_mix(training.seed, 2, step))
    step_loss = 0.0
    for micro in range(training.grad_accum):
        last = micro == training.grad_accum - 1
        # DDP averages gradients once per step, on the last micro-batch's backward
        sync = nullcontext() if last or not run.world.active else run.model.no_sync()
        with sync:
            step_loss += _micro_batch(run, next(batches), g, step) / training.grad_accum
    scaler.unscale_(optimizer)  # clip the true gradients (a no-op without fp16)
    if training.max_grad_norm is not None:
        torch.nn.utils.clip_grad_norm_(run.unet.parameters(), training.max_grad_norm)
    step_lr = optimizer.param_groups[0]["lr"]
    scaler.step(optimizer)  # skipped by the scaler if fp16 gradients overflowed
    scaler.update()
    run.lr_scheduler.step()
    optimizer.zero_grad(set_to_none=True)
    run.ema.update(run.unet)
    return step_loss, step_lr


def _micro_batch(run: _Run, batch, g: torch.Generator, step: int) -> float:
    """Loss of one global micro-batch (this rank's part back-propagated); NonFiniteLossError on
    NaN or inf.

    Every rank draws the random numbers of the whole global micro-batch from the step's
    generator and uses its own slice, so the run is the same with any number of processes."""
    training, config, dev = run.training, run.config, run.dev
    images, y = batch
    n = training.batch_size
    part = slice(run.world.rank * len(y), (run.world.rank + 1) * len(y))
    x0 = images.to(dev, torch.float32).div_(127.5).sub_(1.0)
    if training.label_dropout:
        drop = (torch.rand(n, generator=g) < training.label_dropout)[part]
        y = torch.where(drop, torch.full_like(y, config.null_class), y)
    if training.augment:
        x0 = _augment(x0, g, part, n)
    if training.hflip:
        x0 = random_hflip(x0, g, part, n)
    noise = torch.randn((n, *x0.shape[1:]), generator=g)[part].to(dev)
    t = torch.randint(0, config.num_train_timesteps, (n,), generator=g)[part].to(dev)
    noise = add_offset_noise(noise, training.offset_noise, g, part, n)
    dtype = run.autocast_dtype
    with torch.autocast(dev.type, dtype=dtype, enabled=dtype is not None):
        loss = diffusion_loss(
            run.model, run.noise_scheduler, x0, y.to(dev), noise, t,
            min_snr_gamma=training.min_snr_gamma,
        )  # fmt: skip
    value = dist_mod.all_mean(float(loss.detach()), run.world, dev)
    if not math.isfinite(value):
        good = (
            f"the last good checkpoint ({run.last_checkpoint.name}) is kept"
            if run.last_checkpoint
            else "no checkpoint was written"
        )
        raise NonFiniteLossError(
            f"loss is {value} at step {step}; training stopped and {good}. "
            f"Lower the learning rate (currently {training.lr})."
        )
    run.scaler.scale(loss / training.grad_accum).backward()
    return value
