"""The one encoder of every derivative: an 8-bit grey PNG whose length depends only on its size.

IHDR, one IDAT, IEND; no ancillary chunk. The deflate stream is stored (zlib level 0), so the
byte length is a function of width and height alone, never of the content (a noisy real image
would otherwise compress worse than a smooth synthetic one). Each scanline is Paeth-filtered
(PNG filter type 4) before storing: the bytes on the wire are prediction residuals, mostly near
0, rather than raw grey levels, so a smooth ramp in an image never spells out readable text
(a run of grey levels 55..49 is the ASCII "7654321"). Written here because Pillow chooses
filters and compression adaptively, which would make the length depend on the content.
"""

from __future__ import annotations

import struct
import zlib

import numpy as np

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
PAETH = 4


def paeth_filter(grey: np.ndarray) -> np.ndarray:
    """Filtered scanlines (PNG spec 9.4), each preceded by its filter-type byte."""
    x = grey.astype(np.int16)
    a = np.zeros_like(x)  # left
    a[:, 1:] = x[:, :-1]
    b = np.zeros_like(x)  # up
    b[1:, :] = x[:-1, :]
    c = np.zeros_like(x)  # up-left
    c[1:, 1:] = x[:-1, :-1]
    p = a + b - c
    pa, pb, pc = np.abs(p - a), np.abs(p - b), np.abs(p - c)
    predictor = np.where((pa <= pb) & (pa <= pc), a, np.where(pb <= pc, b, c))
    residual = ((x - predictor) % 256).astype(np.uint8)
    out = np.empty((grey.shape[0], grey.shape[1] + 1), np.uint8)
    out[:, 0] = PAETH
    out[:, 1:] = residual
    return out


def encode_png(grey: np.ndarray) -> bytes:
    grey = np.asarray(grey)
    if grey.ndim != 2 or grey.dtype != np.uint8 or grey.size == 0:
        raise ValueError("expected a non-empty 2-D uint8 image")
    height, width = grey.shape
    idat = zlib.compress(paeth_filter(grey).tobytes(), 0)
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    return PNG_SIGNATURE + _chunk(b"IHDR", ihdr) + _chunk(b"IDAT", idat) + _chunk(b"IEND", b"")


def _chunk(kind: bytes, body: bytes) -> bytes:
    crc = zlib.crc32(kind + body) & 0xFFFFFFFF
    return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", crc)
