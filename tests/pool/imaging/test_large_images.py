"""Very large images are shrunk while decoding, so memory stays bounded; ordinary ones are not."""

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from pool.imaging import decode, make_display_png
from tests.pool.imaging.builders import (
    dicom_bytes,
    gradient,
    jpeg_bytes,
    make_dataset,
    png_bytes,
    read,
)

ROOT = Path(__file__).resolve().parents[3]

# 10000 x 9999: just under the default limit of 100 Mpx.
_MAKE = """
import sys
import numpy as np
from PIL import Image
y = np.arange(9999, dtype=np.uint32)[:, None]
x = np.arange(10000, dtype=np.uint32)[None, :]
Image.fromarray(((x * 7 + y * 3) % 251).astype(np.uint8)).save(sys.argv[1], compress_level=1)
"""

# Run in a fresh interpreter so that the peak is this decode's alone. VmHWM, not ru_maxrss:
# Linux carries ru_maxrss over from the forking parent, VmHWM belongs to this process image.
_MEASURE = """
import re, sys
from pathlib import Path
from pool.imaging import make_display_png, read_image
data = Path(sys.argv[1]).read_bytes()
decoded = read_image(data, name="big.png", max_bytes=2**31, max_pixels=100_000_000, min_side=1024)
make_display_png(decoded.frames[0].pixels, 512)
print(decoded.width, decoded.height, decoded.details["reduced_by"])
status = Path("/proc/self/status").read_text()
print(int(re.search(r"VmHWM:\\s+(\\d+) kB", status).group(1)) * 1024)
"""


def _python(code: str, *args: str) -> str:
    result = subprocess.run(
        [sys.executable, "-c", code, *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=False,
        timeout=600,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )
    assert result.returncode == 0, result.stderr
    return result.stdout


@pytest.fixture
def small_thresholds(monkeypatch):
    """Treat anything over 1,000 pixels as very large, to test the shrinking on small images."""
    monkeypatch.setattr(decode, "LARGE_PIXELS", 1_000)
    monkeypatch.setattr(decode, "REDUCED_PIXELS", 250)


def test_it_imports_a_100_megapixel_png_in_well_under_a_gigabyte(tmp_path):
    path = tmp_path / "big.png"
    _python(_MAKE, str(path))
    # Decoded at full size into float frames, this took ~2.4 GB.
    sizes, peak = _python(_MEASURE, str(path)).split("\n")[:2]
    assert sizes == "10000 9999 5"  # the file's own size is recorded; the frame is 1/5 of it
    assert int(peak) < 512 * 2**20, f"peak RSS {int(peak) / 2**20:.0f} MiB"


def test_it_leaves_ordinary_images_at_full_size():
    data = png_bytes(gradient(300, 400))
    full = read(data)
    bounded = read(data, min_side=16)
    assert "reduced_by" not in bounded.details
    assert np.array_equal(full.frames[0].pixels, bounded.frames[0].pixels)


def test_it_shrinks_a_large_png_by_box_averaging(small_thresholds):
    decoded = read(png_bytes(gradient(40, 60)), min_side=20)
    assert (decoded.width, decoded.height) == (60, 40)
    assert decoded.details["reduced_by"] == 2
    assert decoded.frames[0].pixels.shape == (20, 30)
    assert decoded.frames[0].pixels[:, 0].max() < decoded.frames[0].pixels[:, -1].min()


def test_it_never_shrinks_below_the_side_the_caller_needs(small_thresholds):
    decoded = read(png_bytes(gradient(40, 60)), min_side=30)
    assert "reduced_by" not in decoded.details
    assert decoded.frames[0].pixels.shape == (40, 60)


def test_it_averages_colours_not_palette_indices(small_thresholds):
    palette = Image.fromarray(gradient(40, 60)).convert("P", palette=Image.Palette.ADAPTIVE)
    decoded = read(png_bytes(palette), min_side=10)
    expected = read(png_bytes(palette.convert("RGB")), min_side=10)
    assert decoded.details["mode"] == "P"
    assert np.allclose(decoded.frames[0].pixels, expected.frames[0].pixels, atol=1e-6)


def test_it_keeps_the_turned_size_of_a_shrunk_jpeg(small_thresholds):
    # EXIF orientation 6: stored 64 wide and 32 high, shown 32 wide and 64 high.
    decoded = read(jpeg_bytes(gradient(32, 64), orientation=6), min_side=8)
    assert (decoded.width, decoded.height) == (32, 64)
    rows, cols = decoded.frames[0].pixels.shape
    assert rows > cols
    assert decoded.details["reduced_by"] == 64 // rows


def test_it_shrinks_a_large_dicom_frame_before_windowing(small_thresholds):
    pixels = (gradient(40, 60).astype(np.uint16) * 16).astype(np.uint16)
    decoded = read(dicom_bytes(make_dataset(pixels, modality="DX", bits_stored=12)), min_side=20)
    assert (decoded.width, decoded.height) == (60, 40)
    assert decoded.details["reduced_by"] == 2
    frame = decoded.frames[0].pixels
    assert frame.shape == (20, 30)
    assert frame.min() == 0.0 and frame.max() == 1.0
    display = make_display_png(frame, 16)
    assert display == make_display_png(frame, 16)
