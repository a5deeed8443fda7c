"""Entry point: sniff the format, enforce the limits, decode to display-ready frames.

PNG and JPEG are decoded here with Pillow; DICOM is handed to :mod:`.dicom`.
"""

from __future__ import annotations

import io
import math
import struct
import warnings

import numpy as np
from PIL import Image, ImageOps

from .errors import ImageImportError
from .result import DecodedFile, Frame

SUPPORTED = "PNG, JPEG or DICOM"

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
JPEG_SOI = b"\xff\xd8"
DICOM_PREFIX_OFFSET = 128
DICOM_PREFIX = b"DICM"

# File names for which a DICOM without the 128-byte preamble + "DICM" prefix
# (old ACR-NEMA style, or a bare data set) is still tried with force=True.
_DICOM_SUFFIXES = (".dcm", ".dicom")

# A frame above this many pixels is shrunk while decoding when the caller says how small it may
# get (``min_side``): as float arrays a 100 Mpx image needs gigabytes, and its display derivative
# is a few hundred pixels wide. Ordinary images (up to ~5000 x 5000) are decoded at full size,
# so their derivative is exactly what it always was.
LARGE_PIXELS = 25_000_000
# ... and shrunk to about this many pixels.
REDUCED_PIXELS = 4_000_000

# ITU-R BT.601 luma weights, the ones DICOM and Pillow both use for RGB -> grey.
LUMA = np.array([0.299, 0.587, 0.114], dtype=np.float64)

# Magic numbers of formats people commonly upload by mistake, only to name them
# in the error message.
_OTHER_FORMATS = (
    (b"GIF87a", "GIF"),
    (b"GIF89a", "GIF"),
    (b"%PDF", "PDF"),
    (b"II*\x00", "TIFF"),
    (b"MM\x00*", "TIFF"),
    (b"BM", "BMP"),
    (b"\x00\x00\x00\x0cjP  ", "JPEG 2000"),
    (b"\xff\x4f\xff\x51", "JPEG 2000"),
    (b"PK\x03\x04", "ZIP"),
    (b"\x1f\x8b", "gzip"),
    (b"\x00\x00\x01\x00", "ICO"),
)


def read_image(
    data: bytes,
    *,
    name: str = "",
    max_bytes: int,
    max_pixels: int,
    frames: tuple[int, int] | None = None,
    min_side: int | None = None,
) -> DecodedFile:
    """Decode one uploaded file into display-ready frames.

    ``min_side``: the shortest side the caller needs the frames to keep. With it, a very large
    frame is shrunk by an integer factor while it is decoded (``details["reduced_by"]``), so
    memory stays bounded; ``width`` and ``height`` stay those of the file. Without it, frames
    come at full size.

    ``frames=(first, last)`` (inclusive, 0-based) selects a range of frames of
    a multi-frame DICOM; a range outside the file raises
    :class:`ImageImportError`. Every failure caused by the file's content is an
    :class:`ImageImportError` with a one-line reason.

    Limits are enforced before any pixel data is decoded: ``len(data)`` against
    ``max_bytes``, then the pixel count from the header (width × height ×
    number of frames to decode) against ``max_pixels``.
    """
    data = bytes(data)
    if frames is not None:
        frames = _check_frames_argument(frames)
    if len(data) == 0:
        raise ImageImportError("the file is empty")
    if len(data) > max_bytes:
        raise ImageImportError(
            f"file is {_human_bytes(len(data))}, over the {_human_bytes(max_bytes)} limit"
        )

    kind = sniff_format(data, name)
    if kind in ("png", "jpeg"):
        return _read_raster(
            data, kind.upper(), max_pixels=max_pixels, frames=frames, min_side=min_side
        )
    if kind in ("dicom", "dicom-no-preamble"):
        from .dicom import read_dicom  # late import: .dicom imports this module

        return read_dicom(
            data,
            force=(kind == "dicom-no-preamble"),
            max_pixels=max_pixels,
            frames=frames,
            min_side=min_side,
        )
    raise ImageImportError(f"unsupported format ({kind}): expected {SUPPORTED}")


def sniff_format(data: bytes, name: str = "") -> str:
    """Return "png", "jpeg", "dicom", "dicom-no-preamble", or a short description
    of what the content looks like instead ("GIF", "PDF", "text", "unknown")."""
    if data.startswith(PNG_SIGNATURE):
        return "png"
    if data.startswith(JPEG_SOI):
        return "jpeg"
    end = DICOM_PREFIX_OFFSET + len(DICOM_PREFIX)
    if data[DICOM_PREFIX_OFFSET:end] == DICOM_PREFIX:
        return "dicom"
    if name.lower().endswith(_DICOM_SUFFIXES) and not _looks_like_text(data):
        return "dicom-no-preamble"
    for magic, label in _OTHER_FORMATS:
        if data.startswith(magic):
            return label
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "WebP"
    if _looks_like_text(data):
        return "text"
    return "unknown"


def _looks_like_text(data: bytes) -> bool:
    head = data[:4096]
    try:
        text = head.decode("utf-8")
    except UnicodeDecodeError as exc:
        # A multi-byte character cut at the 4096-byte boundary is still text.
        if exc.start < len(head) - 4:
            return False
        text = head[: exc.start].decode("utf-8")
    return all(ch.isprintable() or ch in "\r\n\t\f" for ch in text)


def _check_frames_argument(frames: tuple[int, int]) -> tuple[int, int]:
    try:
        first, last = frames
    except (TypeError, ValueError):
        raise TypeError("frames must be a (first, last) tuple of ints") from None
    if isinstance(first, bool) or isinstance(last, bool):
        raise TypeError("frames must be a (first, last) tuple of ints")
    if not (isinstance(first, (int, np.integer)) and isinstance(last, (int, np.integer))):
        raise TypeError("frames must be a (first, last) tuple of ints")
    return int(first), int(last)


def select_frames(frames: tuple[int, int] | None, count: int) -> range:
    """The frame indices to decode out of ``count``; ImageImportError if out of range."""
    if frames is None:
        return range(count)
    first, last = frames
    if first < 0 or last < first or last >= count:
        have = "1 frame (0)" if count == 1 else f"{count} frames (0–{count - 1})"
        raise ImageImportError(f"frame range {first}–{last} is outside the file's {have}")
    return range(first, last + 1)


def check_pixel_limit(width: int, height: int, nframes: int, max_pixels: int) -> None:
    total = int(width) * int(height) * int(nframes)
    if width <= 0 or height <= 0:
        raise ImageImportError(f"image has no pixels ({width}×{height})")
    if total > max_pixels:
        shape = f"{width}×{height}" + (f"×{nframes} frames" if nframes != 1 else "")
        raise ImageImportError(
            f"image is {shape} = {_mpx(total)} Mpx, over the {_mpx(max_pixels)} Mpx limit"
        )


def reduction_factor(width: int, height: int, min_side: int | None) -> int:
    """By how much a frame may be shrunk in both directions while decoding; 1: not at all.

    Only frames over LARGE_PIXELS are shrunk, to about REDUCED_PIXELS, and never below
    ``min_side`` on their shorter side.
    """
    if min_side is None or width * height <= LARGE_PIXELS:
        return 1
    wanted = math.ceil(math.sqrt(width * height / REDUCED_PIXELS))
    return max(1, min(wanted, min(width, height) // max(int(min_side), 1)))


def minmax(values: np.ndarray) -> np.ndarray:
    """Linear stretch of the finite range to [0, 1]; a constant image gives zeros."""
    values = np.asarray(values, dtype=np.float64)
    finite = np.isfinite(values)
    if not finite.any():
        return np.zeros(values.shape, dtype=np.float32)
    lo = float(values[finite].min())
    hi = float(values[finite].max())
    if hi <= lo:
        return np.zeros(values.shape, dtype=np.float32)
    out = (values - lo) / (hi - lo)
    out[~finite] = 0.0
    return np.clip(out, 0.0, 1.0).astype(np.float32)


def luma(rgb: np.ndarray) -> np.ndarray:
    """Grey level of an (..., 3) RGB array, in the input's units, as float64."""
    return np.asarray(rgb[..., :3], dtype=np.float64) @ LUMA


# --------------------------------------------------------------------------- PNG / JPEG


def _read_raster(
    data: bytes,
    fmt: str,
    *,
    max_pixels: int,
    frames: tuple[int, int] | None,
    min_side: int | None = None,
) -> DecodedFile:
    select_frames(frames, 1)  # a still image has exactly one frame, index 0
    # Size from the header, before Pillow is involved at all.
    declared = header_size(data, fmt)
    if declared is not None:
        check_pixel_limit(*declared, 1, max_pixels)
    with _open_raster(data, fmt) as img:
        width, height = img.size
        # Animated PNG: only the default (first) frame is decoded.
        check_pixel_limit(width, height, 1, max_pixels)
        factor = reduction_factor(width, height, min_side)
        try:
            pixels, details, turned = _decode_raster(img, fmt, factor)
        except ImageImportError:
            raise
        except Exception:  # noqa: BLE001 - Pillow raises many types on bad input
            raise ImageImportError(f"truncated or corrupt {fmt}") from None
    if turned:  # the EXIF orientation turned the picture by a quarter
        width, height = height, width
    return DecodedFile(
        format=fmt.lower(),
        frames=[Frame(pixels=pixels, index=0)],
        width=width,
        height=height,
        modality=None,
        original_bytes=data,
        original_extension=".png" if fmt == "PNG" else ".jpg",
        details=details,
    )


def _open_raster(data: bytes, fmt: str) -> Image.Image:
    """Open (not decode) a PNG or JPEG; a damaged PNG stream is refused here already."""
    try:
        # Pillow warns (DecompressionBombWarning) above Image.MAX_IMAGE_PIXELS
        # and raises DecompressionBombError above twice that, inside open().
        # Our own limit is checked right after open(), before load(), so the
        # warning is silenced here (not turned into an error: the configured
        # max_pixels may legitimately be above Pillow's default) and the error
        # becomes an ImageImportError below.
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            if fmt == "PNG":
                # verify() checks every chunk's CRC without decoding pixels, so
                # corrupt ancillary chunks or a damaged stream are caught early.
                with Image.open(io.BytesIO(data), formats=[fmt]) as probe:
                    probe.verify()
            return Image.open(io.BytesIO(data), formats=[fmt])
    except Image.DecompressionBombError:
        raise ImageImportError(f"{fmt} header declares an image too large to decode safely") from None
    except Exception:  # noqa: BLE001 - Pillow raises many types on bad input
        raise ImageImportError(f"truncated or corrupt {fmt}") from None


def _decode_raster(img: Image.Image, fmt: str, factor: int) -> tuple[np.ndarray, dict, bool]:
    """Pixels in [0, 1], notes, and whether the EXIF orientation swapped width and height."""
    mode, full_width = img.mode, img.size[0]
    if factor > 1 and fmt == "JPEG":
        # The JPEG decoder scales by 1/2, 1/4 or 1/8 itself, never to below the size asked for.
        img.draft(mode, (img.size[0] // factor, img.size[1] // factor))
    img.load()
    turned = False
    if fmt == "JPEG":
        before = img.size
        img = ImageOps.exif_transpose(img)
        turned = img.size != before
    if factor > 1:
        img = _shrink(img, factor * img.size[1 if turned else 0] // full_width)
    pixels, details = _raster_to_unit(img)
    details["mode"] = mode
    if mode == "1":
        details["bit_depth"] = 1
    if factor > 1:
        details["reduced_by"] = round(full_width / pixels.shape[0 if turned else 1])
    return pixels, details, turned


def _shrink(img: Image.Image, factor: int) -> Image.Image:
    """Box-average by ``factor`` in a mode where averaging means something (not palette)."""
    if factor <= 1:
        return img
    if img.mode == "1":
        img = img.convert("L")
    elif img.mode in ("P", "PA"):
        img = img.convert("RGBA" if "transparency" in img.info or img.mode == "PA" else "RGB")
    elif img.mode.startswith("I;16"):
        img = img.convert("I")
    elif img.mode not in ("L", "LA", "RGB", "RGBA", "I", "F"):
        img = img.convert("RGB")
    return img.reduce(factor)


def _raster_to_unit(img: Image.Image) -> tuple[np.ndarray, dict]:
    """Pillow image -> float32 2-D array in [0, 1], plus notes for ``details``.

    8-bit data is divided by 255 (no stretching: the exporter already chose the
    display mapping). 16-bit data is stretched linearly from its own min to max,
    because 16-bit PNG exports of X-rays/CTs typically use only 10-12 of the 16
    bits, so /65535 would give an almost black image.
    """
    mode = img.mode
    details: dict = {"mode": mode}
    if mode in ("I;16", "I;16L", "I;16B", "I;16N", "I"):
        arr = np.asarray(img)
        details["bit_depth"] = 16
        details["window_source"] = "min-max"
        return minmax(arr), details
    if mode == "F":
        details["bit_depth"] = 32
        details["window_source"] = "min-max"
        return minmax(np.asarray(img)), details

    details["bit_depth"] = 1 if mode == "1" else 8
    if mode == "1":
        grey = np.asarray(img.convert("L"), dtype=np.float64)
    elif mode in ("L", "LA", "La"):
        grey = np.asarray(img.getchannel(0), dtype=np.float64)
    else:
        if mode in ("P", "PA"):
            # A palette image may carry transparency; alpha is ignored either way.
            rgb = img.convert("RGBA" if "transparency" in img.info or mode == "PA" else "RGB")
        elif mode in ("RGB", "RGBA", "RGBa", "RGBX"):
            rgb = img
        else:  # CMYK, YCbCr, LAB, HSV, ...
            rgb = img.convert("RGB")
        grey = luma(np.asarray(rgb))
    return np.clip(grey / 255.0, 0.0, 1.0).astype(np.float32), details


# JPEG start-of-frame markers (all coding processes); C4, C8 and CC are not SOFs.
_JPEG_SOF = frozenset(range(0xC0, 0xD0)) - {0xC4, 0xC8, 0xCC}


def header_size(data: bytes, fmt: str) -> tuple[int, int] | None:
    """(width, height) declared by a PNG IHDR or the first JPEG SOF segment,
    or None when the header cannot be read (Pillow will then report it)."""
    if fmt == "PNG":
        if len(data) >= 24 and data[12:16] == b"IHDR":
            width, height = struct.unpack(">II", data[16:24])
            return width, height
        return None
    i = 2  # after SOI
    while i + 4 <= len(data):
        if data[i] != 0xFF:
            return None
        marker = data[i + 1]
        if marker == 0xFF:  # fill byte
            i += 1
            continue
        if marker == 0x01 or 0xD0 <= marker <= 0xD8:  # no length field
            i += 2
            continue
        if marker in (0xD9, 0xDA):  # end of image / start of scan before any SOF
            return None
        (length,) = struct.unpack(">H", data[i + 2 : i + 4])
        if marker in _JPEG_SOF:
            if i + 9 > len(data):
                return None
            height, width = struct.unpack(">HH", data[i + 5 : i + 9])
            return width, height
        i += 2 + length
    return None


# --------------------------------------------------------------------------- formatting


def _mpx(pixels: int) -> str:
    value = pixels / 1e6
    if value >= 100:
        return f"{value:,.0f}"
    return f"{value:.3g}"


def _human_bytes(n: int) -> str:
    for unit, size in (("GB", 1 << 30), ("MB", 1 << 20), ("kB", 1 << 10)):
        if n >= size:
            return f"{n / size:.1f} {unit}"
    return f"{n} bytes"
