"""The display derivative: the only file a reader's browser ever receives.

Every image shown in a study, real or synthetic, goes through
:func:`make_display_png`, so that nothing in the delivered file hints at its
origin:

* one fixed pipeline: centre crop to a square, Lanczos resize in 32-bit float,
  a single rounding to 8-bit grey;
* a PNG made of IHDR, IDAT and IEND only: no text, time, physical size, gamma,
  colour profile or EXIF chunk that an exporter or a generator could have left;
* the pixel data is zlib-"compressed" at level 0 (stored blocks), so the file
  length depends only on the image size, never on its content. Every
  derivative of a given size has exactly the same number of bytes, and the HTTP
  Content-Length therefore carries no information (a real image with film grain
  would otherwise compress worse than a smooth synthetic one). The price is
  size: about size × (size + 1) bytes, 263 kB at 512 px.
"""

from __future__ import annotations

import struct
import zlib

import numpy as np
from PIL import Image

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def make_display_png(pixels: np.ndarray, size: int) -> bytes:
    """Render a 2-D image as a ``size`` × ``size`` 8-bit greyscale PNG.

    ``pixels`` is either float (values in [0, 1]; outside values are clipped,
    NaN becomes 0) or uint8 (0-255). Deterministic: the same input always gives
    the same bytes. Raises ValueError for anything that is not a non-empty 2-D
    array of those types, or for a size below 1.
    """
    arr = np.asarray(pixels)
    if arr.ndim != 2:
        raise ValueError(f"expected a 2-D array, got shape {arr.shape}")
    if arr.shape[0] == 0 or arr.shape[1] == 0:
        raise ValueError("expected a non-empty image")
    if isinstance(size, bool) or not isinstance(size, (int, np.integer)) or size < 1:
        raise ValueError(f"size must be a positive int, got {size!r}")
    size = int(size)
    if arr.dtype == np.uint8:
        unit = arr.astype(np.float32) / np.float32(255)
    elif arr.dtype == np.bool_:
        unit = arr.astype(np.float32)
    elif np.issubdtype(arr.dtype, np.floating):
        unit = np.nan_to_num(arr.astype(np.float32), nan=0.0, posinf=1.0, neginf=0.0)
        unit = np.clip(unit, 0.0, 1.0)
    else:
        raise ValueError(f"expected float values in [0, 1] or uint8, got {arr.dtype}")

    # Centre crop to the shorter side.
    h, w = unit.shape
    side = min(h, w)
    top, left = (h - side) // 2, (w - side) // 2
    square = np.ascontiguousarray(unit[top : top + side, left : left + side])

    # Resize in float ("F" mode), so that the only rounding is the one below.
    image = Image.fromarray(square)  # float32 2-D -> mode "F"
    if side != size:
        image = image.resize((size, size), Image.Resampling.LANCZOS)
    resized = np.asarray(image, dtype=np.float32)

    grey = np.rint(np.clip(resized, 0.0, 1.0) * 255.0).astype(np.uint8)
    return encode_grey_png(grey)


def encode_grey_png(grey: np.ndarray) -> bytes:
    """Minimal 8-bit greyscale PNG: IHDR, one IDAT (stored deflate), IEND."""
    height, width = grey.shape
    # Each scanline is preceded by its filter type byte; 0 = None.
    raw = np.zeros((height, width + 1), dtype=np.uint8)
    raw[:, 1:] = grey
    # Level 0: stored blocks; the output length is a function of len(raw) only.
    idat = zlib.compress(raw.tobytes(), 0)
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)  # 8-bit grey
    return PNG_SIGNATURE + _chunk(b"IHDR", ihdr) + _chunk(b"IDAT", idat) + _chunk(b"IEND", b"")


def _chunk(kind: bytes, body: bytes) -> bytes:
    crc = zlib.crc32(kind + body) & 0xFFFFFFFF
    return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", crc)
