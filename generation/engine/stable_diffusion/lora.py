"""LoRA fine-tuning of the UNet (and optionally the text encoder) with resumable checkpoints."""

from __future__ import annotations

import json
import math
import os
import shutil
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field, fields
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import torch
from PIL import Image

from generation.engine import data as data_mod
from generation.engine import distributed, recipe
from generation.engine import precision as precision_mod
from generation.engine.cancellation import cancel_requested
from generation.engine.devices import pick_placement

from .checks import check_checkpoint, sha256_file
from .errors import CheckpointError, StableDiffusionError, TrainingDivergedError
from .generator import StableDiffusionGenerator, _all_library_versions, make_scheduler
from .layout import (
    CHECKPOINT_PREFIX,
    FINAL_LORA_DIRNAME,
    GENERATOR_KIND,
    GRID_MAX_PROMPTS,
    LORA_WEIGHT_NAME,
    LOSS_LOG_NAME,
    SAMPLE_GRID_NAME,
    TEXT_ENCODER_LORA_TARGETS,
    TRAINING_INFO_NAME,
    TRAINING_STATE_NAME,
    UNET_LORA_TARGETS,
    TrainStepCallback,
)


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
    data_workers: int = 0  # DataLoader worker processes decoding images (0: in this process)
    gradient_checkpointing: bool = False
    mixed_precision: str = "auto"  # "auto": bf16 on CUDA >= 8.0, fp16 + grad scaler below; "no"
    checkpoint_on_cancel: bool = True
    # The sample grid written into every checkpoint (samples.png): one row per prompt, one
    # column per seed 0..grid_per_prompt-1, the same seeds at every checkpoint so grids compare.
    grid_steps: int = 20  # DDIM steps; 0: no grid
    grid_per_prompt: int = 2
    grid_guidance: float = 7.5
    grid_prompts: list[str] = field(default_factory=list)  # default: the training set's own

    def validate(self) -> None:
        positive_ints = (
            "rank",
            "max_steps",
            "batch_size",
            "gradient_accumulation_steps",
            "checkpoint_every",
        )
        if not isinstance(self.data_workers, int) or self.data_workers < 0:
            raise ValueError(f"data_workers must be 0 or more, not {self.data_workers!r}")
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
        if not isinstance(self.grid_steps, int) or self.grid_steps < 0:
            raise ValueError(f"grid_steps must be 0 or more, not {self.grid_steps!r}")
        if not isinstance(self.grid_per_prompt, int) or self.grid_per_prompt < 1:
            raise ValueError(
                f"grid_per_prompt must be a positive integer, not {self.grid_per_prompt!r}"
            )

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

    Started as one rank of several (`distributed.init_from_env`), each rank trains on its slice
    of every global batch, the LoRA gradients are averaged over the ranks before each optimizer
    step, and rank 0 alone writes the loss log, checkpoints and the final export.
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
        self.world = distributed.current()
        data_mod.check_shares(self.config.batch_size, self.world.size)
        self._place(device)
        self._load_models()
        self._add_adapters()
        self._build_optimizer()
        native = int(self.unet.config.sample_size) * 2 ** (
            len(self.vae.config.block_out_channels) - 1
        )
        self.resolution = int(self.config.resolution or native)
        self.step = 0
        self.losses: list[tuple[int, float]] = []
        self.last_checkpoint: Path | None = None
        self.resumed_from: int | None = None
        self._grid_prompts: list[str] | None = None

    def _place(self, device: str | None) -> None:
        self.device = distributed.local_device(pick_placement(device, None).device, self.world)
        # Frozen weights and autocast in bf16 on CUDA cards that have it, in fp16 with a
        # gradient scaler on older ones (the LoRA weights stay fp32); fp32 on CPU and MPS.
        requested = "auto" if self.config.mixed_precision == "auto" else "fp32"
        self.precision = precision_mod.for_device(self.device, requested)
        self.autocast_dtype = self.precision.autocast_dtype
        self.weight_dtype = self.autocast_dtype or torch.float32
        self.scaler = precision_mod.grad_scaler(self.precision)

    def _load_models(self) -> None:
        """Tokenizer, text encoder, VAE, UNet and noise schedule, frozen, on the device."""
        from diffusers import AutoencoderKL, DDPMScheduler, UNet2DConditionModel
        from transformers import CLIPTextModel, CLIPTokenizer

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
        modules: tuple[torch.nn.Module, ...] = (self.vae, self.text_encoder, self.unet)
        for module in modules:
            module.requires_grad_(False)
            module.to(self.device)
            if self.weight_dtype != torch.float32:
                module.to(dtype=self.weight_dtype)
        self.vae.eval()

    def _add_adapters(self) -> None:
        """LoRA on the UNet (and the text encoder if asked), trained in float32."""
        from peft import LoraConfig

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

    def _build_optimizer(self) -> None:
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
            self.optimizer, recipe.lr_lambda(warmup, self.config.max_steps, "constant")
        )

    # -- data ---------------------------------------------------------------------------------

    # The ddpm trainer's stream (generation.engine.data): sample k of the run is position
    # k mod N of epoch k // N's permutation, each rank reads its slice of every global batch, and
    # every random number of a sample comes from a generator seeded by (seed, k). A sample's loss
    # does not depend on the rank or batch it falls in, and the step is the whole resume state.

    def _stream(self, first: int, last: int):
        """The sampler, and (uint8 images, prompts) of this rank's micro-batches, for steps
        first..last (from 1)."""
        cfg = self.config
        sampler = data_mod.StepBatches(
            len(self.dataset), seed=int(cfg.seed), batch_size=cfg.batch_size,
            grad_accum=cfg.gradient_accumulation_steps, first=first, last=last,
            rank=self.world.rank, world_size=self.world.size,
        )  # fmt: skip
        images = data_mod.TrainingImages(self.dataset, self.resolution)
        return sampler, data_mod.batches(images, sampler, cfg.data_workers)

    @staticmethod
    def _pixels(images: torch.Tensor) -> torch.Tensor:
        """uint8 (B, 1, R, R) -> float (B, 3, R, R) in [-1, 1] (gray in the 3 channels)."""
        return (images.float() / 127.5 - 1.0).expand(-1, 3, -1, -1)

    @staticmethod
    def _generators(seed: int, where: range) -> list[torch.Generator]:
        """One CPU generator per sample, seeded by (seed, its number in the run)."""
        return [torch.Generator("cpu").manual_seed(data_mod.mix(seed, 2, k)) for k in where]

    @staticmethod
    def _captions(prompts: Sequence[str], gens: list[torch.Generator], dropout: float):
        """The prompts with each dropped (made "") with probability `dropout`, per sample."""
        return [
            "" if dropout and float(torch.rand((), generator=gen)) < dropout else str(prompt)
            for prompt, gen in zip(prompts, gens, strict=True)
        ]

    # -- loss ---------------------------------------------------------------------------------

    def _autocast(self):
        if self.autocast_dtype is None:
            return torch.autocast(self.device.type, enabled=False)
        return torch.autocast(self.device.type, dtype=self.autocast_dtype)

    def _draw(self, gens: list[torch.Generator], shape: tuple[int, ...]) -> torch.Tensor:
        """One standard normal tensor of `shape` per sample, stacked, on the device."""
        return torch.stack([torch.randn(shape, generator=gen) for gen in gens]).to(self.device)

    def _latents(self, pixels: torch.Tensor, gens: list[torch.Generator]) -> torch.Tensor:
        with torch.no_grad():
            dist = self.vae.encode(pixels.to(self.device, self.weight_dtype)).latent_dist
            noise = self._draw(gens, tuple(dist.mean.shape[1:]))
            latents = dist.mean.float() + dist.std.float() * noise
            shift = getattr(self.vae.config, "shift_factor", None)
            if shift is not None:
                latents = latents - shift
            return latents * self.vae.config.scaling_factor

    def _loss(
        self, pixels: torch.Tensor, prompts: list[str], gens: list[torch.Generator]
    ) -> torch.Tensor:
        """Noise-prediction MSE of one batch; every sample's noise and timestep come from its
        own CPU generator in `gens`."""
        latents = self._latents(pixels, gens)
        noise = self._draw(gens, tuple(latents.shape[1:]))
        steps = self.noise_scheduler.config.num_train_timesteps
        timesteps = torch.cat([torch.randint(0, steps, (1,), generator=gen) for gen in gens])
        timesteps = timesteps.to(self.device)
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
        images = data_mod.TrainingImages(self.dataset, self.resolution)
        pixels, prompts = zip(*(images[i] for i in indices), strict=True)
        gens = self._generators(seed, range(len(pixels)))
        modes = (self.unet.training, self.text_encoder.training)
        self.unet.eval()
        self.text_encoder.eval()
        try:
            with torch.no_grad():
                return float(self._loss(self._pixels(torch.stack(pixels)), list(prompts), gens))
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
        TrainingDivergedError. Under several ranks, every rank stops at the same step.
        """
        cfg = self.config
        if self.world.main:
            self._remove_stale_temp_dirs()
        distributed.barrier(self.world)
        if resume and self.step == 0:
            latest = self.latest_checkpoint()
            if latest is not None:
                self.load_checkpoint(latest)
                self.resumed_from = self.step
        trainable = [self.unet] + ([self.text_encoder] if cfg.train_text_encoder else [])
        for module in trainable:
            module.train()
        try:
            cancelled = self._train_steps(on_step, cancel)
        finally:
            for module in trainable:
                module.eval()
            self.optimizer.zero_grad(set_to_none=True)
        lora_dir = self._save_final(cancelled)
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

    def _train_steps(self, on_step: TrainStepCallback | None, cancel: Any) -> bool:
        """Optimizer steps up to max_steps, logged and checkpointed; True if stopped early."""
        cfg = self.config
        params = [p for group in self.optimizer.param_groups for p in group["params"]]
        stream = self._stream(self.step + 1, cfg.max_steps)
        while self.step < cfg.max_steps:
            self.optimizer.zero_grad(set_to_none=True)
            micro_losses = self._accumulate(cancel, *stream)
            if micro_losses is None:
                return True
            self._average_gradients(params)
            self.scaler.unscale_(self.optimizer)  # clip the true gradients (no-op but fp16)
            if cfg.max_grad_norm and cfg.max_grad_norm > 0:
                torch.nn.utils.clip_grad_norm_(params, cfg.max_grad_norm)
            self.scaler.step(self.optimizer)  # skipped if fp16 gradients overflowed
            self.scaler.update()
            self.lr_scheduler.step()
            self.optimizer.zero_grad(set_to_none=True)
            self.step += 1
            local = sum(micro_losses) / len(micro_losses)
            mean_loss = distributed.all_mean(local, self.world, self.device)
            self.losses.append((self.step, mean_loss))
            self._log_loss(mean_loss)
            if self.step % cfg.checkpoint_every == 0 or self.step == cfg.max_steps:
                self.save_checkpoint()
            stop = on_step is not None and on_step(self.step, cfg.max_steps, mean_loss) is False
            if self.step < cfg.max_steps and self._stop_agreed(cancel, stop) or stop:
                return True
        return False

    def _stop_agreed(self, cancel: Any, stop: bool = False) -> bool:
        """Whether `cancel` fired or `stop` is set here or on any other rank (all ranks stop at
        the same step: one that stopped alone would leave the others waiting in a collective)."""
        flag = stop or cancel_requested(cancel)
        return distributed.any_rank(flag, self.world, self.device)

    def _average_gradients(self, params: list[torch.nn.Parameter]) -> None:
        """The mean of the ranks' LoRA gradients, in one all-reduce per optimizer step.

        Not DistributedDataParallel: its per-parameter hooks fire on every micro-batch and clash
        with the UNet's gradient checkpointing, while the LoRA weights are few enough to reduce
        as one flat tensor once the accumulation cycle is done."""
        if not self.world.active:
            return
        grads = [p.grad if p.grad is not None else torch.zeros_like(p) for p in params]
        flat = torch.cat([g.reshape(-1) for g in grads])
        torch.distributed.all_reduce(flat, op=torch.distributed.ReduceOp.SUM)
        flat /= self.world.size
        offset = 0
        for param, grad in zip(params, grads, strict=True):
            param.grad = flat[offset : offset + grad.numel()].view_as(param).clone()
            offset += grad.numel()

    def _accumulate(self, cancel: Any, sampler, batches) -> list[float] | None:
        """The losses of one accumulation cycle (gradients summed); None if cancelled in it."""
        micro_losses = []
        for micro in range(self.config.gradient_accumulation_steps):
            if self._stop_agreed(cancel):
                return None
            where = sampler.positions(self.step + 1, micro)
            micro_losses.append(self._micro_step(next(batches), where))
        return micro_losses

    def _micro_step(self, batch: tuple[torch.Tensor, list[str]], where: range) -> float:
        """Loss of the micro-batch at stream positions `where`, back-propagated."""
        cfg = self.config
        images, prompts = batch
        gens = self._generators(int(cfg.seed), where)
        captions = self._captions(prompts, gens, cfg.caption_dropout)
        loss = self._loss(self._pixels(images), captions, gens)
        if not torch.isfinite(loss.detach()):
            where_saved = (
                f" (last good checkpoint: {self.last_checkpoint})" if self.last_checkpoint else ""
            )
            raise TrainingDivergedError(
                f"training loss became {float(loss.detach())} at step {self.step + 1}; lower the "
                f"learning rate (now {cfg.learning_rate:g}) or check the training images"
                f"{where_saved}"
            )
        self.scaler.scale(loss / cfg.gradient_accumulation_steps).backward()
        return float(loss.detach())

    def _save_final(self, cancelled: bool) -> Path | None:
        """The last checkpoint if not saved yet and, when training finished, the `lora/` export."""
        unsaved = (
            self.last_checkpoint is None or self._checkpoint_step(self.last_checkpoint) != self.step
        )
        if cancelled:
            if self.config.checkpoint_on_cancel and unsaved and self.step > 0:
                self.save_checkpoint()
            return None
        if unsaved:
            self.save_checkpoint()
        return self._export_final()

    def _log_loss(self, loss: float) -> None:
        if not self.world.main:
            return
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
        # diffusers types peft_config as a protocol without to_dict; the values are peft's
        # LoraConfig, which has it.
        unet_config: Any = self.unet.peft_config["default"]
        metadata = {"unet_lora_adapter_metadata": unet_config.to_dict()}
        if text_layers is not None:
            text_config: Any = self.text_encoder.peft_config["default"]
            metadata["text_encoder_lora_adapter_metadata"] = text_config.to_dict()
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
            "precision": self.precision.record(),
            "processes": self.world.size,
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
        if not self.world.main:  # rank 0 writes it; the others hold the same weights
            self.last_checkpoint = final
            return final

        def write(tmp: Path) -> None:
            self._write_lora(tmp)
            state = {
                "step": self.step,
                "optimizer": self.optimizer.state_dict(),
                "lr_scheduler": self.lr_scheduler.state_dict(),
                "losses": [[s, v] for s, v in self.losses],
                "config": asdict(self.config),
                "unet_sha256": self.info.unet_sha256,
                "grad_scaler": self.scaler.state_dict() if self.scaler.is_enabled() else {},
            }
            torch.save(state, tmp / TRAINING_STATE_NAME)
            (tmp / TRAINING_INFO_NAME).write_text(
                json.dumps(self._info_json(), indent=2), encoding="utf-8"
            )
            self.write_sample_grid(tmp)

        self.last_checkpoint = self._atomic_folder(final, write)
        self._prune_checkpoints()
        return self.last_checkpoint

    def _export_final(self) -> Path:
        """`lora/`: the LoRA weights and lora_training.json only, for generation."""
        if not self.world.main:
            return self.output_dir / FINAL_LORA_DIRNAME

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
        """Restore LoRA weights, optimizer, LR schedule, step and loss history (the step is the
        data order's and the random numbers' whole state)."""
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
        unexpected = getattr(result, "unexpected_keys", None)
        if unexpected:
            raise CheckpointError(f"{folder}: LoRA weights do not fit the UNet: {unexpected[:3]}")
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
        if state.get("grad_scaler") and self.scaler.is_enabled():
            self.scaler.load_state_dict(state["grad_scaler"])
        self.step = int(state["step"])
        self.losses = [(int(s), float(v)) for s, v in state.get("losses", [])]
        self.last_checkpoint = folder
        self._truncate_loss_log()

    def _truncate_loss_log(self) -> None:
        """Drop loss-log lines from steps after the checkpoint being resumed (a crashed run)."""
        log = self.output_dir / LOSS_LOG_NAME
        if not self.world.main or not log.is_file():
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

    def grid_prompts(self) -> list[str]:
        """The grid's rows: config.grid_prompts, else the training set's distinct prompts (sorted,
        at most GRID_MAX_PROMPTS)."""
        if self.config.grid_prompts:
            return [str(p) for p in self.config.grid_prompts]
        if self._grid_prompts is None:
            distinct = sorted({str(prompt) for _, prompt in self.dataset})
            self._grid_prompts = distinct[:GRID_MAX_PROMPTS]
        return self._grid_prompts

    def write_sample_grid(self, folder: Path) -> Path | None:
        """`folder/samples.png`, sampled with the LoRA as trained so far: one row per grid prompt,
        seeds 0..grid_per_prompt-1 across (the ddpm trainer's grid, with prompts for classes).
        Few DDIM steps; the training RNG is not touched. None when config.grid_steps is 0."""
        from generation.engine.sampling import image_grid

        cfg = self.config
        if not cfg.grid_steps:
            return None
        prompts, seeds = self.grid_prompts(), list(range(cfg.grid_per_prompt))
        modes = (self.unet.training, self.text_encoder.training)
        self.unet.eval()
        self.text_encoder.eval()
        try:
            images = self.generator().generate(
                [prompt for prompt in prompts for _ in seeds],
                [seed for _ in prompts for seed in seeds],
                steps=cfg.grid_steps,
                guidance=cfg.grid_guidance,
                width=self.resolution,
                height=self.resolution,
                batch_size=cfg.batch_size,
            )
        finally:
            self.unet.train(modes[0])
            self.text_encoder.train(modes[1])
        grid = image_grid([image.array for image in images], columns=len(seeds))
        path = Path(folder) / SAMPLE_GRID_NAME
        Image.fromarray(grid).save(path)
        return path

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
            precision=precision or self.precision.name,  # the weights' own: bf16, fp16 or fp32
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
