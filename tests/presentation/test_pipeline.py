"""The processing chain itself (no database): geometry, matched resolution, the encoder."""

import io

import numpy as np
import pytest
from PIL import Image
from scipy.ndimage import gaussian_filter

from pool.imaging.pipeline import (
    CROP,
    PresentationError,
    Profile,
    native_resolution,
    present,
    render_png,
    window_unit,
)


def wide_image_with_edge_marks() -> np.ndarray:
    image = np.full((100, 200), 0.5, np.float32)
    image[40:60, :10] = 1.0  # left edge mark
    image[40:60, -10:] = 1.0  # right edge mark
    return image


def test_it_letterboxes_without_cropping_anything():
    out = present(wide_image_with_edge_marks(), Profile(display_size=64))
    assert out.shape == (64, 64)
    assert out[:14].max() == 0 and out[-14:].max() == 0  # padding above and below
    assert out[32, :2].min() > 200 and out[32, -2:].min() > 200  # both edge marks kept


def test_it_crops_only_when_asked():
    out = present(wide_image_with_edge_marks(), Profile(display_size=64, aspect=CROP))
    assert out.shape == (64, 64)
    assert out[32, :3].max() < 140 and out[32, -3:].max() < 140  # the marks are cut off
    assert out[:4].min() > 100  # no padding


def test_it_removes_detail_finer_than_the_matched_resolution():
    rng = np.random.default_rng(3)
    fine = rng.random((512, 512)).astype(np.float32)

    def laplacian_energy(grey):
        g = grey.astype(np.float64)
        lap = g[1:-1, :-2] + g[1:-1, 2:] + g[:-2, 1:-1] + g[2:, 1:-1] - 4 * g[1:-1, 1:-1]
        return float((lap**2).mean())

    native = present(fine, Profile(display_size=512))
    matched = present(fine, Profile(display_size=512, source_resolution=64))
    assert laplacian_energy(matched) < laplacian_energy(native) / 50


def test_it_gives_a_native_64_px_image_and_a_matched_512_px_image_the_same_treatment():
    rng = np.random.default_rng(4)
    small = gaussian_filter(rng.random((64, 64)), 2.0).astype(np.float32)
    small = (small - small.min()) / (small.max() - small.min())
    big = np.asarray(Image.fromarray(small).resize((512, 512), Image.Resampling.LANCZOS))
    profile = Profile(display_size=256, source_resolution=64)
    a, b = present(small, profile).astype(int), present(big, profile).astype(int)
    assert np.abs(a - b).mean() < 4  # the same resampling chain from the same content


def test_it_encodes_every_derivative_of_a_size_with_the_same_length_and_no_metadata():
    rng = np.random.default_rng(5)
    smooth = np.tile(np.linspace(0, 1, 300, dtype=np.float32), (200, 1))
    noisy = rng.random((333, 111)).astype(np.float32)
    profile = Profile(display_size=128)
    first, second = render_png(smooth, profile), render_png(noisy, profile)
    assert len(first) == len(second)
    decoded = Image.open(io.BytesIO(first))
    assert decoded.mode == "L" and decoded.size == (128, 128) and not decoded.info
    assert np.array_equal(np.asarray(decoded), present(smooth, profile))
    assert b"7654321" not in render_png(np.tile(np.arange(60, 40, -1) / 255, (128, 7)), profile)


def test_it_windows_hounsfield_units_the_dicom_way():
    hu = np.array([[-1000.0, -600.0, 150.0, 40.0]])
    unit = window_unit(hu, -600.0, 1500.0)
    assert unit[0, 0] == pytest.approx(0.2333, abs=1e-3)
    assert unit[0, 1] == pytest.approx(0.5, abs=1e-3)
    assert window_unit(hu, 40.0, 400.0)[0, 3] == pytest.approx(0.50125, abs=1e-5)  # c - 0.5


def test_it_refuses_profiles_that_cannot_be_met():
    with pytest.raises(PresentationError):
        Profile(display_size=512, aspect="stretch")
    with pytest.raises(PresentationError):
        Profile(display_size=512, source_resolution=8)
    with pytest.raises(PresentationError):
        present(np.zeros((0, 3)), Profile(display_size=64))
    assert native_resolution(2000, 1600, aspect="letterbox", border_crop=0.05) == 1800
