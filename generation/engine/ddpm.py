"""Class-conditional pixel-space diffusion model ("ddpm" kind): configuration and UNet construction.

A grayscale `diffusers.UNet2DModel` conditioned on a finding label through its class embedding.
Index ``len(findings)`` is the *null* class: training maps a fraction of labels to it (label
dropout) so that sampling can use classifier-free guidance.

No Django here: the web side talks to this package through `training.train`,
`checkpoints.load_model` and `sampling.sample`.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any

import torch

from . import legacy

KIND = "ddpm"
FORMAT_VERSION = 1

MIN_RESOLUTION = 32  # 32 only makes sense for the "tiny" test preset
MAX_RESOLUTION = 512
MIN_BOTTOM_SIZE = 4  # smallest feature map allowed at the bottom of the UNet


class DDPMError(ValueError):
    """A bad input or state for the ddpm engine; the message says what is wrong."""


class UnknownFindingError(DDPMError):
    pass


BETA_SCHEDULES = ("linear", "scaled_linear", "squaredcos_cap_v2")
PREDICTION_TYPES = ("epsilon", "v_prediction")
# What a config saved before the recipe options existed meant: read back as such, so an old
# model keeps training and sampling as epsilon / linear.
LEGACY_RECIPE: dict[str, Any] = legacy.MODEL_RECIPE


# name -> UNet layout. Attention only on the two lowest-resolution levels.
PRESETS: dict[str, dict[str, Any]] = {
    # a few thousand parameters' worth of channels: unit tests only
    "tiny": {
        "block_out_channels": (16, 32),
        "layers_per_block": 1,
        "attention_levels": 1,
        "norm_num_groups": 8,
        "attention_head_dim": 8,
    },
    # ~6.7M parameters: 64x64 on a CPU
    "small": {
        "block_out_channels": (32, 64, 128, 128),
        "layers_per_block": 2,
        "attention_levels": 2,
        "norm_num_groups": 16,
        "attention_head_dim": 32,
    },
    # ~73M parameters: 128x128 / 256x256 on a GPU
    "base": {
        "block_out_channels": (64, 128, 256, 256, 512),
        "layers_per_block": 2,
        "attention_levels": 2,
        "norm_num_groups": 32,
        "attention_head_dim": 64,
    },
}


@dataclass
class DDPMConfig:
    """Everything needed to rebuild the network and its noise schedule.

    `findings` is the ordered list of class names; its order fixes the class indices, so it is
    saved with the model and must not be reordered afterwards.
    """

    resolution: int
    findings: list[str]
    preset: str = "small"
    modality: str = "cxr"
    name: str = ""
    # None: take them from the preset; set them to override it
    block_out_channels: tuple[int, ...] | None = None
    layers_per_block: int | None = None
    attention_levels: int | None = None
    norm_num_groups: int | None = None
    attention_head_dim: int | None = None
    dropout: float = 0.0
    # noise schedule (DDPMScheduler arguments); the defaults are the measured recipe of
    # docs/real-run.md, LEGACY_RECIPE the values of configs saved before these fields existed
    num_train_timesteps: int = 1000
    beta_schedule: str = "squaredcos_cap_v2"
    beta_start: float = 0.0001
    beta_end: float = 0.02
    prediction_type: str = "v_prediction"
    rescale_betas_zero_snr: bool = True
    schedule_shift: float = 1.0
    extra: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.findings = list(self.findings)
        if self.block_out_channels is not None:
            self.block_out_channels = tuple(int(c) for c in self.block_out_channels)
        self.validate()

    # ------------------------------------------------------------------ layout
    def _layout_value(self, key: str) -> Any:
        value = getattr(self, key)
        if value is None:
            value = PRESETS[self.preset][key]
        return value

    @property
    def channels(self) -> tuple[int, ...]:
        return tuple(self._layout_value("block_out_channels"))

    @property
    def null_class(self) -> int:
        return len(self.findings)

    @property
    def num_class_embeds(self) -> int:
        return len(self.findings) + 1

    def validate(self) -> None:
        if self.preset not in PRESETS:
            raise DDPMError(f"unknown preset {self.preset!r}; choose one of {', '.join(PRESETS)}")
        if not self.findings:
            raise DDPMError("a ddpm model needs at least one finding (class label)")
        bad = [f for f in self.findings if not isinstance(f, str) or not f.strip()]
        if bad:
            raise DDPMError(f"finding names must be non-empty strings, got {bad!r}")
        dupes = sorted({f for f in self.findings if self.findings.count(f) > 1})
        if dupes:
            raise DDPMError(f"duplicate finding names: {', '.join(dupes)}")
        res = self.resolution
        if not isinstance(res, int) or isinstance(res, bool):
            raise DDPMError(f"resolution must be an integer, got {res!r}")
        if res < MIN_RESOLUTION or res > MAX_RESOLUTION or res & (res - 1):
            raise DDPMError(
                f"resolution must be a power of two between {MIN_RESOLUTION} and "
                f"{MAX_RESOLUTION}, got {res}"
            )
        channels = self.channels
        levels = len(channels)
        if levels < 1:
            raise DDPMError("block_out_channels must name at least one level")
        bottom = res >> (levels - 1)
        if bottom < MIN_BOTTOM_SIZE:
            raise DDPMError(
                f"resolution {res} is too small for {levels} down blocks: the lowest level "
                f"would be {bottom}x{bottom} (needs >= {MIN_BOTTOM_SIZE}); use a larger "
                f"resolution or fewer levels"
            )
        groups = self._layout_value("norm_num_groups")
        if any(c % groups for c in channels):
            raise DDPMError(
                f"every channel count {channels} must be divisible by norm_num_groups={groups}"
            )
        attn = self._layout_value("attention_levels")
        if not 0 <= attn <= levels:
            raise DDPMError(f"attention_levels must be between 0 and {levels}, got {attn}")
        self._validate_schedule()

    def _validate_schedule(self) -> None:
        if self.beta_schedule not in BETA_SCHEDULES:
            raise DDPMError(
                f"unsupported beta_schedule {self.beta_schedule!r}; choose one of "
                f"{', '.join(BETA_SCHEDULES)}"
            )
        if self.prediction_type not in PREDICTION_TYPES:
            raise DDPMError(
                f"unsupported prediction_type {self.prediction_type!r}; choose one of "
                f"{', '.join(PREDICTION_TYPES)}"
            )
        if self.rescale_betas_zero_snr and self.prediction_type == "epsilon":
            # at SNR 0 the noise is the input itself: an epsilon model learns nothing there and
            # its x0 estimate divides by sqrt(alpha_bar_T) == 0 (Lin et al. 2024, section 3.2)
            raise DDPMError("rescale_betas_zero_snr needs prediction_type 'v_prediction'")
        shift = self.schedule_shift
        if not isinstance(shift, (int, float)) or not 0.0625 <= shift <= 16:
            raise DDPMError(f"schedule_shift must be a number in [1/16, 16], got {shift!r}")
        if not 0 < self.beta_start < self.beta_end < 1:
            raise DDPMError("beta_start and beta_end must satisfy 0 < beta_start < beta_end < 1")

    def class_index(self, finding: str) -> int:
        try:
            return self.findings.index(finding)
        except ValueError:
            raise UnknownFindingError(
                f"unknown finding {finding!r}; this model knows: {', '.join(self.findings)}"
            ) from None

    # ------------------------------------------------------------ (de)serialise
    def to_dict(self) -> dict[str, Any]:
        data = dataclasses.asdict(self)
        if data["block_out_channels"] is not None:
            data["block_out_channels"] = list(data["block_out_channels"])
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> DDPMConfig:
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise DDPMError(f"unknown model config keys: {', '.join(unknown)}")
        return cls(**{**LEGACY_RECIPE, **data})

    def unet_kwargs(self) -> dict[str, Any]:
        channels = self.channels
        levels = len(channels)
        attn = self._layout_value("attention_levels")
        down = tuple(
            "AttnDownBlock2D" if i >= levels - attn else "DownBlock2D" for i in range(levels)
        )
        up = tuple("AttnUpBlock2D" if i < attn else "UpBlock2D" for i in range(levels))
        return {
            "sample_size": self.resolution,
            "in_channels": 1,
            "out_channels": 1,
            "block_out_channels": channels,
            "down_block_types": down,
            "up_block_types": up,
            "layers_per_block": self._layout_value("layers_per_block"),
            "norm_num_groups": self._layout_value("norm_num_groups"),
            "attention_head_dim": self._layout_value("attention_head_dim"),
            "dropout": self.dropout,
            "num_class_embeds": self.num_class_embeds,
        }

    def scheduler_kwargs(self) -> dict[str, Any]:
        kwargs: dict[str, Any] = {
            "num_train_timesteps": self.num_train_timesteps,
            "beta_schedule": self.beta_schedule,
            "beta_start": self.beta_start,
            "beta_end": self.beta_end,
            "prediction_type": self.prediction_type,
            "clip_sample": True,
            "clip_sample_range": 1.0,
        }
        if self.rescale_betas_zero_snr:
            kwargs["rescale_betas_zero_snr"] = True
        if self.schedule_shift != 1.0:
            kwargs["trained_betas"] = shifted_betas(self).tolist()
        return kwargs


def build_unet(config: DDPMConfig):
    from diffusers import UNet2DModel

    return UNet2DModel(**config.unet_kwargs())


def build_noise_scheduler(config: DDPMConfig):
    from diffusers import DDPMScheduler

    return DDPMScheduler(**config.scheduler_kwargs())


def shifted_betas(config: DDPMConfig) -> torch.Tensor:
    """The named schedule with its SNR divided by schedule_shift**2, as betas.

    "Shifted" schedules (Hoogeboom et al. 2023, simple diffusion): a larger image keeps its
    content visible at a noise level that hides a small one, so its log-SNR curve is moved down
    by 2 log(shift), shift = resolution / 64 for a schedule tuned at 64 px. Zero-terminal-SNR
    rescaling, if asked for, is applied afterwards by the scheduler itself.
    """
    from diffusers import DDPMScheduler

    plain: Any = DDPMScheduler(  # alphas_cumprod is set in __init__, untyped
        num_train_timesteps=config.num_train_timesteps,
        beta_schedule=config.beta_schedule,
        beta_start=config.beta_start,
        beta_end=config.beta_end,
    )
    alpha_bar = plain.alphas_cumprod.double()
    snr = alpha_bar / (1 - alpha_bar) / float(config.schedule_shift) ** 2
    shifted = snr / (1 + snr)
    previous = torch.cat([torch.ones(1, dtype=shifted.dtype), shifted[:-1]])
    return (1 - shifted / previous).clamp(0, 0.999).float()


def parameter_count(module: torch.nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())
