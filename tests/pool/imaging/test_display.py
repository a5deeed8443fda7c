"""The display derivative: same pipeline, same chunks, same length for every source."""

import io

import numpy as np
import pytest
from PIL import Image

from pool.imaging import make_display_png
from tests.pool.imaging.builders import (
    bundled,
    dicom_bytes,
    gradient,
    jpeg_bytes,
    make_dataset,
    png_bytes,
    png_chunks,
    read,
)

SIZE = 64


def sources() -> dict[str, np.ndarray]:
    """One frame from every kind of source the importer accepts."""
    rng = np.random.default_rng(7)
    noise = rng.integers(0, 255, (50, 70), dtype=np.uint8)
    palette = Image.fromarray(noise, mode="L").convert("P")
    hu = rng.integers(-1000, 1000, (40, 40)).astype(np.int16) + 1024
    mono1 = make_dataset(
        noise.astype(np.uint16), modality="DX", photometric="MONOCHROME1", bits_stored=8
    )
    frames = {
        "png8": read(png_bytes(gradient())).frames[0].pixels,
        "png16": read(png_bytes(noise.astype(np.uint16) * 16)).frames[0].pixels,
        "png_rgb": read(png_bytes(np.dstack([noise] * 3))).frames[0].pixels,
        "png_palette": read(png_bytes(palette)).frames[0].pixels,
        "jpeg": read(jpeg_bytes(noise)).frames[0].pixels,
        "jpeg_exif": read(jpeg_bytes(noise, orientation=8)).frames[0].pixels,
        "dicom_ct": read(dicom_bytes(make_dataset(hu, slope=1, intercept=-1024))).frames[0].pixels,
        "dicom_mono1": read(dicom_bytes(mono1)).frames[0].pixels,
        "ct_small": read(bundled("CT_small.dcm")).frames[0].pixels,
        "mr_small_j2k": read(bundled("MR_small_jp2klossless.dcm")).frames[0].pixels,
        "rtdose_frame_5": read(bundled("rtdose.dcm"), frames=(5, 5)).frames[0].pixels,
        "ybr_jpeg": read(bundled("examples_ybr_color.dcm"), frames=(0, 0)).frames[0].pixels,
        "black": np.zeros((10, 10), dtype=np.float32),
        "white_uint8": np.full((300, 200), 255, dtype=np.uint8),
        "noise_float": rng.random((129, 97)).astype(np.float32),
    }
    return frames


def test_it_gives_every_source_the_same_format_chunks_and_byte_length():
    outputs = {name: make_display_png(pixels, SIZE) for name, pixels in sources().items()}

    lengths = {len(png) for png in outputs.values()}
    assert len(lengths) == 1, {name: len(png) for name, png in outputs.items()}
    for name, png in outputs.items():
        assert png_chunks(png) == [b"IHDR", b"IDAT", b"IEND"], name
        with Image.open(io.BytesIO(png)) as image:
            image.load()
            assert image.mode == "L", name
            assert image.size == (SIZE, SIZE), name
            assert not image.info, name  # no gamma, dpi, text, icc, exif ...


def test_it_has_a_length_that_depends_only_on_the_size():
    small = make_display_png(np.zeros((5, 5)), 32)
    other = make_display_png(np.random.default_rng(0).random((500, 300)), 32)

    assert len(small) == len(other)
    assert len(make_display_png(np.zeros((5, 5)), 33)) != len(small)


def test_it_is_deterministic():
    pixels = np.random.default_rng(3).random((80, 60)).astype(np.float32)

    assert make_display_png(pixels, SIZE) == make_display_png(pixels.copy(), SIZE)


def test_it_crops_the_centre_square_before_resizing():
    pixels = np.zeros((40, 100), dtype=np.float32)
    pixels[:, 30:70] = 1.0  # exactly the centre 40×40 square is white

    with Image.open(io.BytesIO(make_display_png(pixels, 40))) as image:
        out = np.asarray(image)

    assert out.shape == (40, 40)
    assert (out == 255).all()


def test_it_keeps_values_when_no_resize_is_needed():
    pixels = np.linspace(0, 1, 256, dtype=np.float32)[None, :].repeat(256, axis=0)

    with Image.open(io.BytesIO(make_display_png(pixels, 256))) as image:
        out = np.asarray(image)

    np.testing.assert_array_equal(out[0], np.rint(np.linspace(0, 1, 256) * 255))


def test_it_resizes_with_a_single_rounding():
    # A mid-grey that 8-bit pre-quantisation would shift: 0.5019 * 255 = 127.98.
    pixels = np.full((100, 100), 0.50196, dtype=np.float32)

    with Image.open(io.BytesIO(make_display_png(pixels, 37))) as image:
        out = np.asarray(image)

    assert (out == 128).all()


def test_it_accepts_uint8_and_clips_floats():
    as_uint8 = make_display_png(np.full((4, 4), 255, dtype=np.uint8), 8)
    clipped = make_display_png(np.full((4, 4), 7.5), 8)
    negative = make_display_png(np.full((4, 4), -3.0), 8)

    assert as_uint8 == clipped
    with Image.open(io.BytesIO(negative)) as image:
        assert not np.asarray(image).any()


@pytest.mark.parametrize(
    "bad",
    [np.zeros(10), np.zeros((4, 4, 3)), np.zeros((0, 4)), np.zeros((4, 4), dtype=np.int32)],
    ids=["1d", "rgb", "empty", "int32"],
)
def test_it_rejects_what_is_not_a_2d_grey_image(bad):
    with pytest.raises(ValueError):
        make_display_png(bad, SIZE)


def test_it_rejects_a_bad_size():
    with pytest.raises(ValueError):
        make_display_png(np.zeros((4, 4)), 0)
