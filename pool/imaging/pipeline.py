"""The one processing chain every presented image goes through (no Django here).

decode (the caller) -> grey in [0, 1] (or Hounsfield units for CT) -> intensity normalisation
(the study's CT window, or an optional percentile standardisation) -> optional border crop ->
aspect (letterbox or centre crop) -> matched source resolution (resample so that the presented
extent has ``source_resolution`` pixels, then round to 8 bits like any generator's output) ->
resample to the display size with the same filter (Lanczos, in 32-bit float) -> pad to a square
-> one rounding to 8 bits -> one encoder with fixed settings (``encoder.encode_png``: IHDR,
Paeth-filtered IDAT at zlib level 0, IEND: every derivative of a size has the same byte length).

Whatever the source (JPEG with its 8x8 blocks and sensor noise, a generator's PNG, a 12-bit
DICOM), only what survives this chain reaches the reader.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass, replace

import numpy as np
from PIL import Image

from .encoder import encode_png

PIPELINE_VERSION = 1
LETTERBOX, CROP = "letterbox", "crop"

# (centre, width) in Hounsfield units; the usual radiology presets.
CT_WINDOWS: dict[str, tuple[float, float]] = {
    "lung": (-600.0, 1500.0),
    "mediastinum": (40.0, 400.0),
    "bone": (400.0, 1800.0),
    "brain": (40.0, 80.0),
}


class PresentationError(ValueError):
    """A profile that cannot be applied to an image; the message is for the researcher."""


@dataclass(frozen=True)
class Profile:
    """Everything that decides the pixels of a derivative; its hash keys the cache."""

    display_size: int
    aspect: str = LETTERBOX
    source_resolution: int = 0  # 0: each image at its native resolution (no matching)
    border_crop: float = 0.0  # fraction of each side removed before anything else
    standardise: bool = False
    percentiles: tuple[float, float] = (1.0, 99.0)
    window: tuple[float, float] | None = None  # CT only: (centre, width) in HU

    def __post_init__(self) -> None:
        if self.aspect not in (LETTERBOX, CROP):
            raise PresentationError(f"aspect must be {LETTERBOX!r} or {CROP!r}, not {self.aspect!r}")
        if not 16 <= self.display_size <= 4096:
            raise PresentationError(f"display size {self.display_size} is outside 16-4096 px")
        if not 0.0 <= self.border_crop < 0.25:
            raise PresentationError("the border crop must be between 0 and 25% of each side")
        if self.source_resolution and self.source_resolution < 16:
            raise PresentationError("a matched source resolution below 16 px shows nothing")
        low, high = self.percentiles
        if not 0.0 <= low < high <= 100.0:
            raise PresentationError(f"percentiles {low}-{high} are not an increasing range")
        if self.window is not None and self.window[1] <= 0:
            raise PresentationError("a CT window needs a positive width")

    def with_window(self, window: tuple[float, float] | None) -> Profile:
        return replace(self, window=None if window is None else (float(window[0]), float(window[1])))

    def key(self) -> str:
        """SHA-256 of the parameters and the chain's version: the derivative cache key."""
        payload = {"version": PIPELINE_VERSION, **asdict(self)}
        text = json.dumps(payload, sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(text.encode()).hexdigest()


def native_resolution(width: int, height: int, *, aspect: str, border_crop: float) -> int:
    """Pixels across the presented extent at the image's own scale (long side, or short side
    when cropping to a square), after the border crop."""
    side = max(width, height) if aspect == LETTERBOX else min(width, height)
    return max(1, int(round(side * (1.0 - 2.0 * border_crop))))


def window_unit(hu: np.ndarray, centre: float, width: float) -> np.ndarray:
    """Linear window (DICOM PS3.3 C.11.2.1.2, LINEAR) of Hounsfield units to [0, 1]."""
    c, w = centre - 0.5, max(width - 1.0, 1e-6)
    return np.clip((np.asarray(hu, np.float64) - c) / w + 0.5, 0.0, 1.0)


def unit_to_hu(unit: np.ndarray, centre: float, width: float) -> np.ndarray:
    """Inverse of :func:`window_unit` inside the window: a windowed 8-bit image back to HU."""
    c, w = centre - 0.5, max(width - 1.0, 1e-6)
    return (np.asarray(unit, np.float64) - 0.5) * w + c


def normalise(pixels: np.ndarray, profile: Profile, *, hounsfield: bool) -> np.ndarray:
    """Grey (or HU) -> float32 in [0, 1]: the CT window, or the percentile standardisation."""
    arr = np.nan_to_num(np.asarray(pixels, np.float64), nan=0.0)
    if arr.ndim != 2 or arr.size == 0:
        raise PresentationError(f"expected a non-empty 2-D image, got shape {arr.shape}")
    if hounsfield:
        centre, width = profile.window or CT_WINDOWS["lung"]
        return window_unit(arr, centre, width).astype(np.float32)
    arr = np.clip(arr, 0.0, 1.0)
    if profile.standardise:
        low, high = np.percentile(arr, profile.percentiles)
        if high > low:
            arr = np.clip((arr - low) / (high - low), 0.0, 1.0)
    return arr.astype(np.float32)


def _crop_border(unit: np.ndarray, fraction: float) -> np.ndarray:
    if fraction <= 0:
        return unit
    h, w = unit.shape
    dy, dx = int(round(h * fraction)), int(round(w * fraction))
    if h - 2 * dy < 2 or w - 2 * dx < 2:
        raise PresentationError(f"the border crop leaves nothing of a {w}x{h} image")
    return unit[dy : h - dy, dx : w - dx]


def _centre_square(unit: np.ndarray) -> np.ndarray:
    h, w = unit.shape
    side = min(h, w)
    top, left = (h - side) // 2, (w - side) // 2
    return unit[top : top + side, left : left + side]


def _resize(unit: np.ndarray, width: int, height: int) -> np.ndarray:
    """Lanczos in float ("F" mode); Pillow widens the kernel when shrinking (antialiased)."""
    if unit.shape == (height, width):
        return unit
    image = Image.fromarray(np.ascontiguousarray(unit, dtype=np.float32))
    return np.asarray(image.resize((width, height), Image.Resampling.LANCZOS), np.float32)


def _scaled(unit: np.ndarray, long_side: int) -> np.ndarray:
    h, w = unit.shape
    scale = long_side / max(h, w)
    return _resize(unit, max(1, int(round(w * scale))), max(1, int(round(h * scale))))


def present(pixels: np.ndarray, profile: Profile, *, hounsfield: bool = False) -> np.ndarray:
    """The display image (uint8, display_size x display_size) of one decoded frame."""
    unit = _crop_border(normalise(pixels, profile, hounsfield=hounsfield), profile.border_crop)
    if profile.aspect == CROP:
        unit = _centre_square(unit)
    target = profile.source_resolution
    if target and max(unit.shape) > target:
        # Real images carry no more detail than the coarsest case: down to the matched
        # resolution, then the same 8-bit rounding a generator's PNG has had.
        unit = np.rint(np.clip(_scaled(unit, target), 0.0, 1.0) * 255.0) / 255.0
    unit = np.clip(_scaled(unit, profile.display_size), 0.0, 1.0)
    size = profile.display_size
    canvas = np.zeros((size, size), np.float32)
    h, w = unit.shape
    top, left = (size - h) // 2, (size - w) // 2
    canvas[top : top + h, left : left + w] = unit
    return np.rint(canvas * 255.0).astype(np.uint8)


def render_png(pixels: np.ndarray, profile: Profile, *, hounsfield: bool = False) -> bytes:
    """``present`` then the one encoder: the derivative's bytes."""
    return encode_png(present(pixels, profile, hounsfield=hounsfield))
