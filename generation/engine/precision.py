"""Which precision a training run uses, and the gradient scaler that goes with it. No Django.

bf16 where the device supports it (CUDA compute capability 8.0 and newer: A100, H100, RTX 30xx
and later), fp16 with a gradient scaler on older CUDA cards (V100 7.0, T4 7.5, P100 6.0, common
in hospitals), fp32 on CPU and MPS. The choice and the device's capability are recorded with the
run (checkpoint and job) so a loss curve can be read knowing how it was computed.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch

CHOICES = ("auto", "bf16", "fp16", "fp32")
_DTYPES = {"bf16": torch.bfloat16, "fp16": torch.float16, "fp32": None}


class PrecisionError(ValueError):
    pass


@dataclass(frozen=True)
class Precision:
    name: str  # "bf16", "fp16" or "fp32"
    device_type: str
    capability: str  # "8.0" for CUDA cards, "" elsewhere

    @property
    def autocast_dtype(self) -> torch.dtype | None:
        return _DTYPES[self.name]

    @property
    def uses_scaler(self) -> bool:
        # bf16 has fp32's exponent range, so only fp16 gradients underflow without scaling
        return self.name == "fp16"

    def record(self) -> dict[str, Any]:
        return {
            "precision": self.name,
            "grad_scaler": self.uses_scaler,
            "device_type": self.device_type,
            "device_capability": self.capability,
        }

    def describe(self) -> str:
        scaler = " + grad scaler" if self.uses_scaler else ""
        capability = f", compute capability {self.capability}" if self.capability else ""
        return f"{self.name}{scaler}{capability}"


def choose(
    device_type: str, capability: tuple[int, int] | None, requested: str | bool = "auto"
) -> Precision:
    """The precision for `requested` ("auto", a name, or the old boolean mixed_precision).

    Pure: the device's type and CUDA compute capability come in as arguments, so every branch
    is testable without the card. An explicit bf16 on a card without it is refused, not
    silently downgraded.
    """
    if requested is True:
        requested = "auto"
    elif requested is False:
        requested = "fp32"
    if requested not in CHOICES:
        raise PrecisionError(f"precision must be one of {', '.join(CHOICES)}, not {requested!r}")
    cap = f"{capability[0]}.{capability[1]}" if capability else ""
    bf16_ok = device_type == "cuda" and capability is not None and capability >= (8, 0)
    if requested == "auto":
        if device_type != "cuda":
            requested = "fp32"
        else:
            requested = "bf16" if bf16_ok else "fp16"
    if requested == "bf16" and device_type == "cuda" and not bf16_ok:
        raise PrecisionError(
            f"bf16 needs CUDA compute capability 8.0 or newer; this card is {cap or 'unknown'}: "
            f"use fp16 (with a gradient scaler) or auto"
        )
    return Precision(requested, device_type, cap)


def device_capability(device: torch.device) -> tuple[int, int] | None:
    if device.type != "cuda":
        return None
    index = device.index if device.index is not None else torch.cuda.current_device()
    return tuple(torch.cuda.get_device_capability(index))  # type: ignore[return-value]


def for_device(device: torch.device, requested: str | bool = "auto") -> Precision:
    return choose(device.type, device_capability(device), requested)


def grad_scaler(precision: Precision) -> Any:
    """torch.amp's GradScaler, enabled only for fp16 (a disabled one passes everything through)."""
    return torch.amp.GradScaler(precision.device_type, enabled=precision.uses_scaler)
