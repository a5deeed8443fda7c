"""Device and precision choice shared by every generator kind. No Django here."""

from __future__ import annotations

import platform
from dataclasses import dataclass

import torch


@dataclass(frozen=True)
class Placement:
    device: torch.device
    dtype: torch.dtype  # the autocast / inference dtype; float32 on CPU

    @property
    def dtype_name(self) -> str:
        return str(self.dtype).removeprefix("torch.")


def pick_device(override: str | None = None) -> torch.device:
    """CUDA, then MPS, then CPU, unless `override` names one ("cpu", "cuda", "cuda:1", "mps")."""
    if override:
        device = torch.device(override)
        if device.type == "cuda" and not torch.cuda.is_available():
            raise ValueError(f"device {override!r} requested but CUDA is not available")
        if device.type == "mps" and not torch.backends.mps.is_available():
            raise ValueError(f"device {override!r} requested but MPS is not available")
        return device
    if torch.cuda.is_available():
        return torch.device("cuda")
    if torch.backends.mps.is_available():
        return torch.device("mps")
    return torch.device("cpu")


def pick_placement(device: str | None = None, precision: str | None = None) -> Placement:
    """Half precision on accelerators (bf16 where supported, else fp16), float32 on CPU."""
    chosen = pick_device(device)
    if precision:
        dtypes = {"fp32": torch.float32, "bf16": torch.bfloat16, "fp16": torch.float16}
        if precision not in dtypes:
            raise ValueError(f"precision must be one of {', '.join(dtypes)}, not {precision!r}")
        return Placement(chosen, dtypes[precision])
    if chosen.type == "cuda":
        bf16 = torch.cuda.is_bf16_supported()
        return Placement(chosen, torch.bfloat16 if bf16 else torch.float16)
    if chosen.type == "mps":
        return Placement(chosen, torch.float16)
    return Placement(chosen, torch.float32)


def library_versions() -> dict[str, str]:
    """Versions recorded in every synthetic image's provenance."""
    import diffusers

    versions = {"python": platform.python_version(), "torch": torch.__version__}
    versions["diffusers"] = diffusers.__version__
    return versions


def describe_device(device: str | None = None) -> str:
    """'cuda:0 (NVIDIA H100, bfloat16)' / 'cpu (float32)': what the admin shows."""
    placement = pick_placement(device)
    dev = placement.device
    if dev.type == "cuda":
        index = dev.index if dev.index is not None else torch.cuda.current_device()
        return f"cuda:{index} ({torch.cuda.get_device_name(index)}, {placement.dtype_name})"
    return f"{dev} ({placement.dtype_name})"
