"""The training recipe's pieces, each a small pure function: target, loss weights, LR schedule,
offset noise and flips.

Kept apart from the training loop (training.py) so that the recipe and the loop change
independently. References:

- v-prediction: Salimans & Ho 2022, "Progressive distillation", v = sqrt(a) eps - sqrt(1-a) x0.
- min-SNR-gamma weighting: Hang et al. 2023, "Efficient diffusion training via min-SNR
  weighting": the x0-loss weight min(SNR, gamma), which is min(SNR, gamma) / SNR on the
  epsilon loss and min(SNR, gamma) / (SNR + 1) on the v loss.
- offset noise: Guttenberg 2023 (crosslabs.org), a per-image constant added to the noise so the
  model learns to move the mean brightness.
- warm-up then cosine decay: Loshchilov & Hutter 2017, as diffusers'
  get_cosine_schedule_with_warmup.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import torch

LR_SCHEDULES = ("constant", "cosine")


def snr(alphas_cumprod: torch.Tensor, timesteps: torch.Tensor) -> torch.Tensor:
    """Signal-to-noise ratio alpha_bar / (1 - alpha_bar) at each timestep (0 at a zero-SNR end)."""
    alpha_bar = alphas_cumprod.to(timesteps.device)[timesteps].double()
    return (alpha_bar / (1 - alpha_bar)).float()


def min_snr_weights(snr_values: torch.Tensor, gamma: float, prediction_type: str) -> torch.Tensor:
    """Per-sample loss weights of min-SNR-gamma for the model's prediction type.

    gamma <= 0 turns weighting off (all ones). At SNR == 0 (the last step of a zero-terminal-SNR
    schedule) the epsilon weight is 0 / 0 and the v weight 0, which would never train the step
    sampling starts from: it gets weight 1, as diffusers' training examples do.
    """
    if gamma <= 0:
        return torch.ones_like(snr_values)
    clipped = torch.clamp(snr_values, max=gamma)
    if prediction_type == "v_prediction":
        weights = clipped / (snr_values + 1)
    elif prediction_type == "epsilon":
        weights = clipped / snr_values.clamp(min=torch.finfo(snr_values.dtype).tiny)
    else:
        raise ValueError(f"unknown prediction_type {prediction_type!r}")
    return torch.where(snr_values == 0, torch.ones_like(weights), weights)


def training_target(
    noise_scheduler, x0: torch.Tensor, noise: torch.Tensor, timesteps: torch.Tensor
) -> torch.Tensor:
    """What the UNet learns to output: the noise, or the velocity v."""
    prediction_type = noise_scheduler.config.prediction_type
    if prediction_type == "epsilon":
        return noise
    if prediction_type == "v_prediction":
        return noise_scheduler.get_velocity(x0, noise, timesteps)
    raise ValueError(f"unknown prediction_type {prediction_type!r}")


def lr_lambda(warmup: int, total: int, schedule: str) -> Callable[[int], float]:
    """LambdaLR factor after i scheduler steps: linear warm-up to 1 over `warmup` steps, then
    constant or a cosine decay that reaches 0 at step `total`."""
    if schedule not in LR_SCHEDULES:
        raise ValueError(f"unknown lr_schedule {schedule!r}; choose one of {LR_SCHEDULES}")

    def factor(i: int) -> float:
        if warmup and i < warmup:
            return (i + 1) / warmup
        if schedule == "constant":
            return 1.0
        progress = min(1.0, (i - warmup) / max(1, total - warmup))
        return 0.5 * (1.0 + math.cos(math.pi * progress))

    return factor


def add_offset_noise(
    noise: torch.Tensor, strength: float, g: torch.Generator,
    part: slice | None = None, n: int | None = None,
) -> torch.Tensor:  # fmt: skip
    """noise + strength * one normal draw per image and channel (0: the noise unchanged).

    `n` draws are made (the global batch) and `part` of them used (this process's images), so a
    run draws the same numbers with any number of processes."""
    if strength <= 0:
        return noise
    n = n or noise.shape[0]
    offset = torch.randn((n, noise.shape[1], 1, 1), generator=g)[part or slice(0, n)]
    return noise + strength * offset.to(noise.device)


def random_hflip(
    x: torch.Tensor, g: torch.Generator, part: slice | None = None, n: int | None = None
) -> torch.Tensor:
    """Mirror half the images left-right (only when asked: chest X-rays are not symmetric);
    `n` and `part` as in add_offset_noise."""
    n = n or x.shape[0]
    flip = (torch.rand(n, generator=g) < 0.5)[part or slice(0, n)].to(x.device)
    return torch.where(flip[:, None, None, None], x.flip(-1), x)
