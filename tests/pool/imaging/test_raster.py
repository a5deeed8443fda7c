"""PNG and JPEG uploads -> display-ready frames."""

import json

import numpy as np
from PIL import Image

from tests.pool.imaging.builders import gradient, jpeg_bytes, png_bytes, read


def test_it_reads_an_8_bit_grey_png_as_value_over_255():
    pixels = gradient()
    data = png_bytes(pixels)

    decoded = read(data, name="xray.png")

    assert decoded.format == "png"
    assert decoded.original_extension == ".png"
    assert decoded.original_bytes == data
    assert (decoded.width, decoded.height) == (64, 48)
    assert decoded.modality is None
    assert decoded.details["bit_depth"] == 8
    json.dumps(decoded.details)
    [frame] = decoded.frames
    assert frame.index == 0
    assert frame.pixels.dtype == np.float32
    assert frame.pixels.shape == (48, 64)
    np.testing.assert_allclose(frame.pixels, pixels / 255.0, atol=1e-6)


def test_it_stretches_a_16_bit_png_from_its_min_to_its_max():
    # A 12-bit detector exported as 16-bit PNG: values 1000..4000 only.
    pixels = np.linspace(1000, 4000, 32 * 32).reshape(32, 32).astype(np.uint16)
    decoded = read(png_bytes(pixels))

    out = decoded.frames[0].pixels
    assert decoded.details["bit_depth"] == 16
    assert decoded.details["window_source"] == "min-max"
    assert out.min() == 0.0 and out.max() == 1.0
    np.testing.assert_allclose(out, (pixels - 1000) / 3000.0, atol=1e-6)


def test_it_turns_a_constant_16_bit_png_into_zeros():
    decoded = read(png_bytes(np.full((8, 8), 777, dtype=np.uint16)))

    assert not decoded.frames[0].pixels.any()


def test_it_converts_an_rgb_png_to_luma():
    rgb = np.zeros((4, 6, 3), dtype=np.uint8)
    rgb[:, :2] = (255, 0, 0)
    rgb[:, 2:4] = (0, 255, 0)
    rgb[:, 4:] = (0, 0, 255)

    out = read(png_bytes(rgb)).frames[0].pixels

    assert out.shape == (4, 6)
    np.testing.assert_allclose(out[0, [0, 2, 4]], [0.299, 0.587, 0.114], atol=1e-6)


def test_it_ignores_alpha_in_an_rgba_png():
    rgba = np.zeros((4, 4, 4), dtype=np.uint8)
    rgba[..., :3] = 200
    rgba[..., 3] = 0  # fully transparent

    out = read(png_bytes(rgba)).frames[0].pixels

    np.testing.assert_allclose(out, 200 / 255.0, atol=1e-6)


def test_it_reads_a_palette_png_through_its_palette():
    image = Image.fromarray(np.array([[0, 1], [2, 3]], dtype=np.uint8), mode="P")
    image.putpalette([0, 0, 0, 255, 255, 255, 255, 0, 0, 10, 20, 30] + [0] * (252 * 3))

    decoded = read(png_bytes(image))

    assert decoded.details["mode"] == "P"
    expected = [[0.0, 1.0], [0.299, (0.299 * 10 + 0.587 * 20 + 0.114 * 30) / 255]]
    np.testing.assert_allclose(decoded.frames[0].pixels, expected, atol=1e-6)


def test_it_reads_a_jpeg():
    data = jpeg_bytes(gradient())

    decoded = read(data, name="x.jpeg")

    assert decoded.format == "jpeg"
    assert decoded.original_extension == ".jpg"
    assert decoded.original_bytes == data
    out = decoded.frames[0].pixels
    assert out.shape == (48, 64) and out.dtype == np.float32
    np.testing.assert_allclose(out, gradient() / 255.0, atol=0.03)  # lossy


def test_it_applies_the_exif_orientation_of_a_jpeg():
    # Stored 40 wide × 20 high, left half white; orientation 6 = rotate 90° clockwise.
    stored = np.zeros((20, 40), dtype=np.uint8)
    stored[:, :20] = 255

    decoded = read(jpeg_bytes(stored, orientation=6))

    out = decoded.frames[0].pixels
    assert (decoded.width, decoded.height) == (20, 40)
    assert out.shape == (40, 20)
    assert out[:16].mean() > 0.9  # the stored left half is now on top
    assert out[24:].mean() < 0.1


def test_it_reads_an_rgb_jpeg_as_grey():
    rgb = np.zeros((16, 16, 3), dtype=np.uint8)
    rgb[..., 1] = 255  # pure green

    out = read(jpeg_bytes(rgb)).frames[0].pixels

    assert out.shape == (16, 16)
    assert abs(float(out.mean()) - 0.587) < 0.03


def test_it_accepts_frame_range_0_0_for_a_still_image():
    decoded = read(png_bytes(gradient()), frames=(0, 0))

    assert [f.index for f in decoded.frames] == [0]
