"""Result types returned by :func:`pool.imaging.read_image`."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np


@dataclass(frozen=True)
class Frame:
    """One display-ready 2-D image.

    ``pixels`` is float32, 2-D, values in [0, 1]: modality LUT and VOI/window
    already applied, MONOCHROME1 inverted so that bone is white.
    ``index`` is the frame number within the file (0 for single-frame files).
    """

    pixels: np.ndarray
    index: int


@dataclass(frozen=True)
class DecodedFile:
    format: str  # "png" | "jpeg" | "dicom"
    frames: list[Frame]  # the selected frames (all, or the requested range)
    width: int  # columns of the decoded image
    height: int  # rows of the decoded image
    modality: str | None  # "CT", "CXR" (CR/DX/DR) or None
    original_bytes: bytes  # as received (PNG/JPEG) or the de-identified DICOM
    original_extension: str  # ".png" | ".jpg" | ".dcm"
    details: dict = field(default_factory=dict)  # JSON-safe, PHI-free notes
