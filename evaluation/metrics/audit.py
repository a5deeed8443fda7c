"""Blinding audit: does anything but anatomy tell synthetic images from real ones?

Input: for each image what a reader's browser receives (the file bytes and the HTTP response
headers) and the truth. For every *cue* below, one value per image; the cue's AUC says how well
that value alone separates the two classes.

**AUC convention (direction-free)**: ``A`` = P(value of a synthetic image > value of a real image)
+ 1/2 P(tie) (Mann-Whitney, synthetic = positive). The reported ``auc`` is ``max(A, 1 - A)``
(0.5 = useless, 1 = perfect separation in either direction); ``raw_auc`` is ``A`` and
``direction`` says which way ("higher in synthetic" / "lower in synthetic"). Its 95% interval is
DeLong's on ``A``, mirrored when ``A < 0.5`` (it may reach below 0.5). A constant cue has AUC 0.5.

**Categorical cues** (format, pixel mode, decodability, header values): each image is scored with
the share of synthetic images among the images sharing its value, and ``A`` is the AUC of that
score: the best any ordering of the values can do, so it is >= 0.5 and, with many small groups,
optimistic. Values held by a single image are pooled into one "(unique)" group first, so a value
that is different for every image (an ETag, a request id) cannot separate anything by itself (its
structure, e.g. a date, is caught by the numeric reading of the header instead).

Cues:

- file: ``file_size`` (bytes), ``format`` (magic bytes), ``width``, ``height``, ``pixel_mode``,
  ``decodes`` (whether Pillow can decode it);
- metadata: ``metadata_count`` (PNG ancillary chunks: every chunk whose type starts with a
  lower-case letter, e.g. tEXt, tIME, pHYs, gAMA, eXIf; JPEG APP1-APP15 and COM segments; other
  formats: Pillow's ``info`` keys), ``exif_tag_count`` (Pillow ``getexif()``);
- intensities (grey, scaled to 0-255): ``mean_intensity``, ``intensity_std``,
  ``histogram_entropy`` (bits, 256 bins), ``histogram_skewness``, ``black_fraction`` (pixels at 0),
  ``white_fraction`` (pixels at 255);
- borders: ``padding_fraction`` = (constant rows counted in from the top and bottom + constant
  columns counted in from the left and right) / (height + width), a row or column being constant
  when its values span at most 1 grey level;
- noise: ``noise_sigma``, Immerkær's (1996) estimate: ``sqrt(pi/2) / (6 (W-2)(H-2)) sum |I * N|``
  with the Laplacian-difference mask ``N = [[1,-2,1],[-2,4,-2],[1,-2,1]]``;
- compression: ``blockiness``, the mean absolute difference between neighbouring pixels across
  8x8 block boundaries divided by the same mean elsewhere (horizontal and vertical averaged; about
  1 for unblocked images, above 1 for visible JPEG blocks);
- fine detail (what a trained eye sees first in an upscaled image): ``laplacian_energy``, the
  mean squared response of the 4-neighbour Laplacian; ``high_frequency_share``, the share of the
  (mean-removed) FFT power above half the Nyquist frequency (radius > 0.25 cycles/pixel);
  ``gradient_magnitude``, the mean Sobel gradient magnitude; ``effective_resolution``, the
  highest frequency with real energy, as the pixels an image needs to hold it: 2 x f x side,
  with f the radius (cycles/pixel) below which 99.5% of the non-DC power lies;
- borders: ``border_intensity``, the mean of the outer 5% frame; ``corner_intensity``, the mean of
  the four corner squares (5% of each side): burned-in markers, collimation, padding;
- symmetry: ``lr_asymmetry``, the mean absolute difference between the image and its mirror
  image (0-255), e.g. a laterality marker on one side only;
- headers: ``header:<name>`` (categorical, names lower-cased, a missing header counts as the value
  "(absent)") for every header seen, and ``header:<name>:numeric`` when every present value reads
  as a number or an HTTP date (a rank AUC over the images that have it). ``Date`` is ignored by
  default: it is the time of the request, not a property of the image.

A cue is ``NotDefined`` (with the reason) when fewer than 2 images of either class have a value for
it; the whole audit is not defined with fewer than 2 synthetic or 2 real images.
"""

from __future__ import annotations

import io
import math
import struct
from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from email.utils import parsedate_to_datetime
from typing import Any

import numpy as np
from PIL import Image, UnidentifiedImageError

from readerstudy.analysis import Estimate, NotDefined, Value, auc_estimate

BLOCKING_THRESHOLD = 0.65
DEFAULT_IGNORED_HEADERS = ("date",)
ABSENT = "(absent)"
UNIQUE = "(unique)"

NUMERIC_CUES = (
    ("file_size", "file"),
    ("width", "file"),
    ("height", "file"),
    ("metadata_count", "metadata"),
    ("exif_tag_count", "metadata"),
    ("mean_intensity", "intensities"),
    ("intensity_std", "intensities"),
    ("histogram_entropy", "histogram"),
    ("histogram_skewness", "histogram"),
    ("black_fraction", "histogram"),
    ("white_fraction", "histogram"),
    ("padding_fraction", "borders"),
    ("noise_sigma", "noise"),
    ("blockiness", "compression"),
    ("laplacian_energy", "detail"),
    ("high_frequency_share", "detail"),
    ("gradient_magnitude", "detail"),
    ("effective_resolution", "detail"),
    ("border_intensity", "borders"),
    ("corner_intensity", "borders"),
    ("lr_asymmetry", "symmetry"),
)
CATEGORICAL_CUES = (("format", "file"), ("pixel_mode", "file"), ("decodes", "file"))

_IMMERKAER = np.array([[1, -2, 1], [-2, 4, -2], [1, -2, 1]], np.float64)


@dataclass(frozen=True)
class AuditItem:
    """One image as the browser receives it."""

    content: bytes
    headers: Mapping[str, str]
    is_synthetic: bool
    label: str = ""  # for the researcher (e.g. the case id); never used as a cue


@dataclass(frozen=True)
class CueResult:
    name: str
    group: str  # file, metadata, intensities, histogram, borders, noise, compression, header
    kind: str  # "numeric" or "categorical"
    auc: Value  # direction-free AUC max(A, 1 - A) with its interval, or NotDefined
    raw_auc: float | None  # A = P(synthetic > real) + ties / 2
    direction: str
    synthetic_summary: str
    real_summary: str
    n_synthetic: int  # images with a value for this cue
    n_real: int

    @property
    def value(self) -> float | None:
        return self.auc.estimate if isinstance(self.auc, Estimate) else None

    def blocks(self, threshold: float = BLOCKING_THRESHOLD) -> bool:
        return self.value is not None and self.value > threshold


@dataclass(frozen=True)
class AuditReport:
    cues: tuple[CueResult, ...]  # highest AUC first; not-defined cues last
    n_items: int
    n_synthetic: int
    n_real: int
    ignored_headers: tuple[str, ...]
    not_defined: str | None = None
    method: str = "direction-free AUC max(A, 1-A); DeLong interval on A, mirrored"
    undecodable: tuple[int, ...] = field(default=())  # indices of items Pillow could not decode

    @property
    def defined(self) -> bool:
        return self.not_defined is None

    def blocking(self, threshold: float = BLOCKING_THRESHOLD) -> list[CueResult]:
        """Cues whose AUC is above ``threshold`` (a study must not open until acknowledged).

        Empty when the audit is not defined: check ``defined`` / ``not_defined`` as well.
        """
        return [cue for cue in self.cues if cue.blocks(threshold)]

    def cue(self, name: str) -> CueResult:
        for cue in self.cues:
            if cue.name == name:
                return cue
        raise KeyError(f"no cue named {name!r}")


# ------------------------------------------------------------------------------ file parsing
def sniff_format(content: bytes) -> str:
    """The format the magic bytes announce, whatever the headers or the file name claim."""
    head = bytes(content[:140])
    if head.startswith(b"\x89PNG\r\n\x1a\n"):
        return "png"
    if head.startswith(b"\xff\xd8\xff"):
        return "jpeg"
    if head[:6] in (b"GIF87a", b"GIF89a"):
        return "gif"
    if head[:4] == b"RIFF" and head[8:12] == b"WEBP":
        return "webp"
    if head.startswith((b"\x00\x00\x00\x0cjP  \r\n\x87\n", b"\xffO\xffQ")):
        return "jpeg2000"
    if head[:4] in (b"II*\x00", b"MM\x00*"):
        return "tiff"
    if head[:2] == b"BM":
        return "bmp"
    if head[128:132] == b"DICM":
        return "dicom"
    if not head:
        return "empty"
    return "unknown"


def png_ancillary_chunks(content: bytes) -> list[str]:
    """Types of the PNG chunks a decoder may ignore (first letter lower case)."""
    chunks, pos = [], 8
    while pos + 8 <= len(content):
        length = struct.unpack(">I", content[pos : pos + 4])[0]
        kind = content[pos + 4 : pos + 8]
        if kind[:1].islower():
            chunks.append(kind.decode("latin-1"))
        if kind == b"IEND":
            break
        pos += 12 + length
    return chunks


def jpeg_metadata_segments(content: bytes) -> list[str]:
    """APP1-APP15 and COM markers before the start of scan."""
    found, pos = [], 2
    while pos + 4 <= len(content) and content[pos] == 0xFF:
        marker = content[pos + 1]
        if marker == 0xFF:  # fill byte
            pos += 1
            continue
        if marker in (0xD8, 0x01) or 0xD0 <= marker <= 0xD7:  # no length field
            pos += 2
            continue
        if marker == 0xDA or marker == 0xD9:  # start of scan / end of image
            break
        length = struct.unpack(">H", content[pos + 2 : pos + 4])[0]
        if 0xE1 <= marker <= 0xEF:
            found.append(f"APP{marker - 0xE0}")
        elif marker == 0xFE:
            found.append("COM")
        pos += 2 + length
    return found


def _grey_levels(image: Image.Image) -> np.ndarray:
    """Grey values as float64 scaled to 0-255."""
    mode = image.mode
    if mode in ("I;16", "I;16B", "I;16L", "I;16N"):
        return np.asarray(image, np.float64) / 65535.0 * 255.0
    if mode == "I":
        arr = np.asarray(image, np.float64)
        return arr / 65535.0 * 255.0 if arr.max(initial=0) > 255 else arr
    if mode == "F":
        arr = np.asarray(image, np.float64)
        return np.clip(arr, 0, 1) * 255.0 if arr.max(initial=0) <= 1.0 else np.clip(arr, 0, 255)
    if mode == "L":
        return np.asarray(image, np.float64)
    return np.asarray(image.convert("L"), np.float64)


def _constant_lines(values: np.ndarray) -> int:
    """Rows counted in from the top, then from the bottom, whose values span <= 1 grey level."""
    span = values.max(axis=1) - values.min(axis=1)
    flat = span <= 1.0
    top = int(np.argmin(flat)) if not flat.all() else len(flat)
    bottom = int(np.argmin(flat[::-1])) if top < len(flat) else 0
    return top + bottom


def _blockiness(grey: np.ndarray) -> float:
    h, w = grey.shape
    if h < 16 or w < 16:
        return math.nan
    ratios = []
    for arr in (grey, grey.T):
        diff = np.abs(np.diff(arr, axis=1))  # diff[:, x] between columns x and x + 1
        boundary = (np.arange(diff.shape[1]) % 8) == 7
        across = diff[:, boundary].mean()
        within = diff[:, ~boundary].mean()
        ratios.append((across + 1e-6) / (within + 1e-6))
    return float(np.mean(ratios))


def image_cues(content: bytes) -> dict[str, float | str]:
    """Every per-image cue (numbers; NaN where not measurable) of one file's bytes."""
    content = bytes(content)
    fmt = sniff_format(content)
    cues: dict[str, float | str] = {name: math.nan for name, _ in NUMERIC_CUES}
    cues.update(file_size=float(len(content)), format=fmt, pixel_mode="(undecodable)", decodes="no")
    try:
        image = Image.open(io.BytesIO(content))
        image.load()
    except (UnidentifiedImageError, OSError, ValueError, SyntaxError, Image.DecompressionBombError):
        if fmt == "png":
            cues["metadata_count"] = float(len(png_ancillary_chunks(content)))
        return cues
    cues.update(
        decodes="yes", pixel_mode=image.mode, width=float(image.width), height=float(image.height)
    )
    if fmt == "png":
        cues["metadata_count"] = float(len(png_ancillary_chunks(content)))
    elif fmt == "jpeg":
        cues["metadata_count"] = float(len(jpeg_metadata_segments(content)))
    else:
        cues["metadata_count"] = float(len(image.info))
    try:
        cues["exif_tag_count"] = float(len(image.getexif()))
    except Exception:  # noqa: BLE001 - a broken EXIF block is itself unusual, but not a crash
        cues["exif_tag_count"] = math.nan
    grey = _grey_levels(image)
    if grey.ndim != 2 or grey.size == 0:
        return cues
    levels = np.clip(np.rint(grey), 0, 255).astype(np.int64)
    mean = float(grey.mean())
    std = float(grey.std())
    hist = np.bincount(levels.ravel(), minlength=256) / levels.size
    nonzero = hist[hist > 0]
    cues.update(
        mean_intensity=mean,
        intensity_std=std,
        histogram_entropy=float(-(nonzero * np.log2(nonzero)).sum()),
        histogram_skewness=float(((grey - mean) ** 3).mean() / std**3) if std > 0 else 0.0,
        black_fraction=float(hist[0]),
        white_fraction=float(hist[255]),
        padding_fraction=(_constant_lines(grey) + _constant_lines(grey.T))
        / (grey.shape[0] + grey.shape[1]),
        blockiness=_blockiness(grey),
    )
    h, w = grey.shape
    if h >= 3 and w >= 3:
        from scipy.ndimage import convolve  # here: the web process imports this module, not scipy

        response = convolve(grey, _IMMERKAER, mode="reflect")[1:-1, 1:-1]
        cues["noise_sigma"] = float(
            math.sqrt(math.pi / 2) * np.abs(response).sum() / (6 * (w - 2) * (h - 2))
        )
        cues.update(detail_cues(grey))
    cues.update(border_cues(grey))
    return cues


_LAPLACIAN = np.array([[0, 1, 0], [1, -4, 1], [0, 1, 0]], np.float64)


def detail_cues(grey: np.ndarray) -> dict[str, float]:
    """Laplacian energy, FFT high-frequency share, gradient magnitude, effective resolution."""
    from scipy.ndimage import convolve, sobel  # here: the web process imports this module

    lap = convolve(grey, _LAPLACIAN, mode="reflect")[1:-1, 1:-1]
    gy = sobel(grey, axis=0)[1:-1, 1:-1]
    gx = sobel(grey, axis=1)[1:-1, 1:-1]
    power = np.abs(np.fft.fft2(grey - grey.mean())) ** 2
    fy = np.fft.fftfreq(grey.shape[0])[:, None]
    fx = np.fft.fftfreq(grey.shape[1])[None, :]
    radius = np.sqrt(fy**2 + fx**2)
    total = power.sum()
    if total <= 0:
        share, effective = 0.0, 0.0
    else:
        share = float(power[radius > 0.25].sum() / total)
        order = np.argsort(radius, axis=None)
        cumulative = np.cumsum(power.ravel()[order]) / total
        cutoff = float(radius.ravel()[order][np.searchsorted(cumulative, 0.995)])
        effective = 2.0 * cutoff * max(grey.shape)
    return {
        "laplacian_energy": float((lap**2).mean()),
        "high_frequency_share": share,
        "gradient_magnitude": float(np.hypot(gx, gy).mean()),
        "effective_resolution": effective,
    }


def border_cues(grey: np.ndarray) -> dict[str, float]:
    h, w = grey.shape
    dy, dx = max(1, round(h * 0.05)), max(1, round(w * 0.05))
    frame = np.ones(grey.shape, bool)
    frame[dy : h - dy, dx : w - dx] = False
    corners = np.concatenate(
        [grey[:dy, :dx].ravel(), grey[:dy, -dx:].ravel(), grey[-dy:, :dx].ravel(),
         grey[-dy:, -dx:].ravel()]
    )
    return {
        "border_intensity": float(grey[frame].mean()),
        "corner_intensity": float(corners.mean()),
        "lr_asymmetry": float(np.abs(grey - grey[:, ::-1]).mean()),
    }


# ------------------------------------------------------------------------------ AUCs
def _directional(raw: Estimate) -> tuple[Estimate, str]:
    a = raw.estimate
    if a >= 0.5:
        direction = "higher in synthetic" if a > 0.5 else "no difference"
        return raw, direction
    low = None if raw.ci_high is None else 1.0 - raw.ci_high
    high = None if raw.ci_low is None else 1.0 - raw.ci_low
    flipped = Estimate(1.0 - a, low, high, raw.n, raw.method, note=raw.note, se=raw.se)
    return flipped, "lower in synthetic"


def _fmt(x: float) -> str:
    return f"{x:.4g}"


def numeric_cue(name: str, group: str, values: np.ndarray, truth: np.ndarray) -> CueResult:
    values = np.asarray(values, np.float64)
    ok = np.isfinite(values)
    syn, real = values[ok & truth], values[ok & ~truth]
    if syn.size < 2 or real.size < 2:
        reason = (
            f"{name}: needs a value for at least 2 synthetic and 2 real images, "
            f"got {syn.size} and {real.size}"
        )
        return CueResult(
            name, group, "numeric", NotDefined(reason), None, "", "", "", syn.size, real.size
        )
    raw = auc_estimate(syn, real)
    assert isinstance(raw, Estimate)  # defined: both groups have at least 2 values
    auc, direction = _directional(raw)

    def summary(v: np.ndarray) -> str:
        return f"median {_fmt(np.median(v))} (range {_fmt(v.min())}-{_fmt(v.max())})"

    return CueResult(
        name,
        group,
        "numeric",
        auc,
        raw.estimate,
        direction,
        summary(syn),
        summary(real),
        syn.size,
        real.size,
    )


def categorical_cue(name: str, group: str, values: list[str], truth: np.ndarray) -> CueResult:
    counts = Counter(values)
    pooled = [value if counts[value] > 1 else UNIQUE for value in values]
    syn_n, real_n = int(truth.sum()), int((~truth).sum())
    if syn_n < 2 or real_n < 2:
        reason = f"{name}: needs at least 2 synthetic and 2 real images, got {syn_n} and {real_n}"
        return CueResult(
            name, group, "categorical", NotDefined(reason), None, "", "", "", syn_n, real_n
        )
    groups = sorted(set(pooled))
    share = {}
    for g in groups:
        members = np.array([p == g for p in pooled])
        share[g] = truth[members].mean()
    score = np.array([share[p] for p in pooled])
    raw = auc_estimate(score[truth], score[~truth])
    assert isinstance(raw, Estimate)  # defined: both groups have at least 2 images
    note = "categorical: best ordering of the values (optimistic with many small groups)"
    auc = Estimate(
        raw.estimate,
        raw.ci_low,
        raw.ci_high,
        raw.n,
        raw.method,
        note="; ".join(filter(None, [raw.note, note])),
        se=raw.se,
    )
    if len(groups) == 1:
        direction = "no difference"
    else:
        leaning = max(groups, key=lambda g: (share[g], g))
        direction = f"value {leaning!r} is {share[leaning]:.0%} synthetic"

    def summary(mask: np.ndarray) -> str:
        top = Counter(p for p, m in zip(pooled, mask) if m).most_common(3)
        return ", ".join(f"{value!r} x{count}" for value, count in top)

    return CueResult(
        name,
        group,
        "categorical",
        auc,
        raw.estimate,
        direction,
        summary(truth),
        summary(~truth),
        syn_n,
        real_n,
    )


def _number(text: str) -> float | None:
    try:
        value = float(text)
    except ValueError:
        try:
            return parsedate_to_datetime(text).timestamp()
        except (TypeError, ValueError, IndexError, OverflowError):
            return None
    return value if math.isfinite(value) else None


def header_cues(
    headers: list[Mapping[str, str]], truth: np.ndarray, ignored: Iterable[str]
) -> list[CueResult]:
    ignored = {name.lower() for name in ignored}
    normalised = [{str(k).strip().lower(): str(v).strip() for k, v in h.items()} for h in headers]
    names = sorted({name for h in normalised for name in h} - ignored)
    out = []
    for name in names:
        values = [h.get(name, ABSENT) for h in normalised]
        out.append(categorical_cue(f"header:{name}", "header", values, truth))
        present = [v for v in values if v != ABSENT]
        numbers = [_number(v) for v in present]
        if present and all(n is not None for n in numbers) and len(set(numbers)) > 1:
            column = np.array([_number(v) if v != ABSENT else math.nan for v in values])
            out.append(numeric_cue(f"header:{name}:numeric", "header", column, truth))
    return out


def _sort_key(cue: CueResult) -> tuple:
    return (cue.value is None, -(cue.value or 0.0), cue.name)


def audit(
    items: Iterable[AuditItem], *, ignore_headers: Iterable[str] = DEFAULT_IGNORED_HEADERS
) -> AuditReport:
    """Every cue's AUC for the given images; see the module documentation."""
    items = list(items)
    for index, item in enumerate(items):
        if not isinstance(item.is_synthetic, (bool, np.bool_)):
            raise TypeError(
                f"item {index}: is_synthetic must be True or False, got {item.is_synthetic!r}"
            )
        if not isinstance(item.content, (bytes, bytearray, memoryview)):
            raise TypeError(
                f"item {index}: content must be the file's bytes, got {type(item.content).__name__}"
            )
        if not isinstance(item.headers, Mapping):
            raise TypeError(f"item {index}: headers must be a mapping of name to value")
    ignored = tuple(sorted({name.lower() for name in ignore_headers}))
    truth = np.array([bool(item.is_synthetic) for item in items], bool)
    n_syn, n_real = int(truth.sum()), int((~truth).sum())
    base: dict[str, Any] = {
        "n_items": len(items),
        "n_synthetic": n_syn,
        "n_real": n_real,
        "ignored_headers": ignored,
    }
    if not items:
        return AuditReport((), not_defined="no images to audit", **base)
    if len(items) == 1:
        return AuditReport(
            (),
            not_defined="only one image: the audit compares at least 2 synthetic and 2 real images",
            **base,
        )
    if n_syn < 2 or n_real < 2:
        return AuditReport(
            (),
            not_defined=f"the audit needs at least 2 synthetic and 2 real images, "
            f"got {n_syn} synthetic and {n_real} real",
            **base,
        )
    per_image = [image_cues(item.content) for item in items]
    cues = [
        numeric_cue(name, group, np.array([c[name] for c in per_image], np.float64), truth)
        for name, group in NUMERIC_CUES
    ]
    cues += [
        categorical_cue(name, group, [str(c[name]) for c in per_image], truth)
        for name, group in CATEGORICAL_CUES
    ]
    cues += header_cues([item.headers for item in items], truth, ignored)
    undecodable = tuple(i for i, c in enumerate(per_image) if c["decodes"] != "yes")
    return AuditReport(tuple(sorted(cues, key=_sort_key)), undecodable=undecodable, **base)
