"""The recipe of ddpm models made before the recipe options existed (and of docs/real-run.md's
"old" column). No torch: the backends read it in the web process too.

A config or checkpoint saved before these fields existed meant these values; it is read back as
such, so an old model keeps training and sampling as it did.
"""

from __future__ import annotations

from typing import Any

MODEL_RECIPE: dict[str, Any] = {
    "beta_schedule": "linear",
    "prediction_type": "epsilon",
    "rescale_betas_zero_snr": False,
    "schedule_shift": 1.0,
}
TRAINING_RECIPE: dict[str, Any] = {
    "min_snr_gamma": 0.0,
    "offset_noise": 0.0,
    "lr_schedule": "constant",
}
