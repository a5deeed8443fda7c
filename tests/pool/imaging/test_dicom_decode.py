"""DICOM uploads -> display-ready frames (modality LUT, VOI, inversion, codecs)."""

import json

import numpy as np
import pytest
from pydicom.dataset import Dataset
from pydicom.sequence import Sequence
from pydicom.uid import (
    ExplicitVRLittleEndian,
    JPEG2000Lossless,
    RLELossless,
)

from pool.imaging import ImageImportError
from tests.pool.imaging.builders import bundled, dicom_bytes, make_dataset, read, reparse


def linear_window(hu, center, width):
    """PS3.3 C.11.2.1.2.1 (LINEAR) scaled to [0, 1], written out independently."""
    c, w = center - 0.5, width - 1
    hu = np.asarray(hu, dtype=float)
    return np.where(hu <= c - w / 2, 0.0, np.where(hu > c + w / 2, 1.0, (hu - c) / w + 0.5))


def ct_stored(hu, slope=2.0, intercept=-1024.0):
    return np.round((np.asarray(hu, dtype=float) - intercept) / slope).astype(np.int16)


HU = np.array([[-1000, -160, 40, 240], [1000, -600, 0, 100]])


def test_it_maps_stored_values_through_rescale_and_the_dataset_window():
    ds = make_dataset(ct_stored(HU), slope=2, intercept=-1024, center=40, width=400)

    decoded = read(dicom_bytes(ds), name="slice.dcm")

    assert decoded.format == "dicom"
    assert decoded.original_extension == ".dcm"
    assert decoded.modality == "CT"
    assert (decoded.width, decoded.height) == (4, 2)
    assert decoded.details["window"] == [40.0, 400.0]
    assert decoded.details["window_source"] == "dataset"
    out = decoded.frames[0].pixels
    assert out.dtype == np.float32
    np.testing.assert_allclose(out, linear_window(HU, 40, 400), atol=1e-6)
    assert out[0, 1] == 0.0 and out[0, 3] == 1.0  # -160 HU and 240 HU: window edges


def test_it_uses_the_first_of_several_windows():
    ds = make_dataset(ct_stored(HU), slope=2, intercept=-1024, center=[40, -600], width=[400, 1500])

    decoded = read(dicom_bytes(ds))

    assert decoded.details["window"] == [40.0, 400.0]
    np.testing.assert_allclose(decoded.frames[0].pixels, linear_window(HU, 40, 400), atol=1e-6)


def test_it_applies_the_lung_window_to_ct_without_a_window():
    ds = make_dataset(ct_stored(HU), slope=2, intercept=-1024)

    decoded = read(dicom_bytes(ds))

    assert decoded.details["window_source"] == "lung default"
    assert decoded.details["window"] == [-600.0, 1500.0]
    out = decoded.frames[0].pixels
    assert abs(out[1, 1] - 0.5) < 0.001  # -600 HU
    np.testing.assert_allclose(out, linear_window(HU, -600, 1500), atol=1e-6)


def test_it_stretches_non_ct_without_a_window_from_min_to_max():
    pixels = np.array([[100, 200], [300, 500]], dtype=np.uint16)

    decoded = read(dicom_bytes(make_dataset(pixels, modality="MR", bits_stored=12)))

    assert decoded.modality is None
    assert decoded.details["window_source"] == "min-max"
    np.testing.assert_allclose(decoded.frames[0].pixels, [[0, 0.25], [0.5, 1]], atol=1e-6)


def test_it_inverts_monochrome1_so_the_highest_stored_value_is_darkest():
    pixels = np.array([[0, 1000], [2000, 4000]], dtype=np.uint16)
    ds = make_dataset(pixels, modality="DX", photometric="MONOCHROME1", bits_stored=12)

    decoded = read(dicom_bytes(ds))

    out = decoded.frames[0].pixels
    assert decoded.modality == "CXR"
    assert decoded.details["photometric"] == "MONOCHROME1"
    assert out[1, 1] == out.min() == 0.0
    assert out[0, 0] == out.max() == 1.0
    np.testing.assert_allclose(out, [[1, 0.75], [0.5, 0]], atol=1e-6)


def test_it_inverts_monochrome1_after_windowing():
    pixels = np.array([[0, 2048, 4095]], dtype=np.uint16)
    ds = make_dataset(
        pixels, modality="CR", photometric="MONOCHROME1", bits_stored=12, center=2048, width=4096
    )

    out = read(dicom_bytes(ds)).frames[0].pixels

    expected = 1 - linear_window([0, 2048, 4095], 2048, 4096)
    np.testing.assert_allclose(out[0], expected, atol=1e-6)


def test_it_applies_a_voi_lut_sequence():
    pixels = np.array([[0, 1, 2, 3]], dtype=np.uint16)
    ds = make_dataset(pixels, modality="DX", bits_stored=12)
    item = Dataset()
    item.add_new(0x00283002, "US", [4, 0, 12])  # LUT Descriptor: 4 entries from 0, 12-bit
    item.add_new(0x00283006, "OW", np.array([100, 200, 400, 1100], "<u2").tobytes())  # LUT Data
    ds.VOILUTSequence = Sequence([item])

    decoded = read(dicom_bytes(ds))

    assert decoded.details["window_source"] == "VOI LUT"
    np.testing.assert_allclose(decoded.frames[0].pixels[0], [0, 0.1, 0.3, 1], atol=1e-6)


def test_it_reads_the_window_from_shared_functional_groups():
    ds = make_dataset(ct_stored(HU), slope=2, intercept=-1024)
    voi = Dataset()
    voi.WindowCenter = 40
    voi.WindowWidth = 400
    shared = Dataset()
    shared.FrameVOILUTSequence = Sequence([voi])
    ds.SharedFunctionalGroupsSequence = Sequence([shared])

    decoded = read(dicom_bytes(ds))

    assert decoded.details["window"] == [40.0, 400.0]
    np.testing.assert_allclose(decoded.frames[0].pixels, linear_window(HU, 40, 400), atol=1e-6)


@pytest.mark.parametrize("syntax", [RLELossless, JPEG2000Lossless], ids=["rle", "j2k"])
def test_it_decodes_compressed_pixel_data_like_the_uncompressed_original(syntax):
    rng = np.random.default_rng(1)
    hu = rng.integers(-1000, 1500, size=(64, 48))
    plain = make_dataset(ct_stored(hu, slope=1), slope=1, intercept=-1024)
    packed = make_dataset(ct_stored(hu, slope=1), slope=1, intercept=-1024)
    packed.compress(syntax, generate_instance_uid=False)

    expected = read(dicom_bytes(plain)).frames[0].pixels
    decoded = read(dicom_bytes(packed))

    assert decoded.details["transfer_syntax"] == syntax
    np.testing.assert_array_equal(decoded.frames[0].pixels, expected)
    assert reparse(decoded.original_bytes).file_meta.TransferSyntaxUID == syntax


def three_frames():
    base = np.arange(16, dtype=np.uint16).reshape(4, 4)
    return np.stack([base, base * 2 + 100, base * 3 + 500])  # (3, 4, 4)


def test_it_returns_one_frame_per_frame_of_a_multi_frame_file():
    decoded = read(dicom_bytes(make_dataset(three_frames(), modality="OT", bits_stored=12)))

    assert decoded.details["number_of_frames"] == 3
    assert [f.index for f in decoded.frames] == [0, 1, 2]
    for frame in decoded.frames:
        assert frame.pixels.shape == (4, 4)
        # each frame stretched on its own (min-max), so all three look alike
        np.testing.assert_allclose(frame.pixels, np.arange(16).reshape(4, 4) / 15, atol=1e-6)


def test_it_selects_a_frame_range():
    stack = three_frames()
    stack[1, 0, 0] = 4000  # mark frame 1
    data = dicom_bytes(make_dataset(stack, modality="OT", bits_stored=12))

    decoded = read(data, frames=(1, 2))

    assert [f.index for f in decoded.frames] == [1, 2]
    assert decoded.frames[0].pixels[0, 0] == 1.0
    # the stored original still holds every frame
    assert reparse(decoded.original_bytes).NumberOfFrames == 3


@pytest.mark.parametrize("bad", [(2, 3), (-1, 0), (2, 1), (3, 3)])
def test_it_rejects_a_frame_range_outside_the_file(bad):
    data = dicom_bytes(make_dataset(three_frames(), modality="OT", bits_stored=12))

    with pytest.raises(ImageImportError, match=r"frame range .* outside the file's 3 frames"):
        read(data, frames=bad)


def test_it_reads_a_dcm_file_without_preamble():
    ds = make_dataset(ct_stored(HU), slope=2, intercept=-1024, center=40, width=400)

    decoded = read(dicom_bytes(ds, preamble=False), name="OLD.DCM")

    np.testing.assert_allclose(decoded.frames[0].pixels, linear_window(HU, 40, 400), atol=1e-6)
    stored = reparse(decoded.original_bytes)  # rewritten as a proper DICOM file
    assert decoded.original_bytes[128:132] == b"DICM"
    assert stored.file_meta.TransferSyntaxUID == ExplicitVRLittleEndian


def test_it_converts_colour_dicom_to_grey():
    rgb = np.zeros((2, 3, 3), dtype=np.uint8)
    rgb[:, 0] = (255, 0, 0)
    rgb[:, 1] = (0, 255, 0)
    rgb[:, 2] = (255, 255, 255)

    out = read(dicom_bytes(make_dataset(rgb, modality="OT", photometric="RGB"))).frames[0].pixels

    np.testing.assert_allclose(out[0], [0.299, 0.587, 1.0], atol=1e-6)


# ----------------------------------------------------------------- files shipped with pydicom

MR_SMALL_LOSSLESS = [
    "MR_small_RLE.dcm",
    "MR_small_jp2klossless.dcm",
    "MR_small_jpeg_ls_lossless.dcm",
    "MR_small_bigendian.dcm",
    "MR_small_implicit.dcm",
]


@pytest.mark.parametrize("name", MR_SMALL_LOSSLESS)
def test_it_decodes_every_encoding_of_mr_small_to_the_same_image(name):
    expected = read(bundled("MR_small.dcm")).frames[0].pixels

    decoded = read(bundled(name), name=name)

    np.testing.assert_array_equal(decoded.frames[0].pixels, expected)
    assert decoded.details["window"] == [600.0, 1600.0]


BUNDLED = [
    # name, frames, modality
    ("CT_small.dcm", 1, "CT"),
    ("MR_small.dcm", 1, None),
    ("693_J2KI.dcm", 1, "CT"),  # JPEG 2000, CT with a window
    ("JPEG2000.dcm", 1, None),
    ("JPGExtended.dcm", 1, None),  # JPEG extended, 12-bit
    ("SC_rgb_jpeg_gdcm.dcm", 1, None),  # JPEG lossless process 14, RGB
    ("JPEGLSNearLossless_16.dcm", 1, None),
    ("MR_small_RLE.dcm", 1, None),
    ("MR_small_bigendian.dcm", 1, None),  # explicit VR big endian (retired)
    ("image_dfl.dcm", 1, None),  # deflated explicit VR
    ("rtdose.dcm", 15, None),  # multi-frame, implicit VR
    ("rtdose_rle.dcm", 15, None),  # multi-frame, RLE
    ("SC_rgb_rle_2frame.dcm", 2, None),
    ("SC_ybr_full_422_uncompressed.dcm", 1, None),
    ("examples_palette.dcm", 1, None),
    ("examples_ybr_color.dcm", 30, None),  # JPEG baseline YBR, multi-frame
]


@pytest.mark.parametrize(("name", "nframes", "modality"), BUNDLED, ids=[b[0] for b in BUNDLED])
def test_it_decodes_the_dicom_files_shipped_with_pydicom(name, nframes, modality):
    source = reparse(bundled(name))

    decoded = read(bundled(name), name=name)

    assert decoded.modality == modality
    assert len(decoded.frames) == nframes
    assert (decoded.width, decoded.height) == (source.Columns, source.Rows)
    for frame in decoded.frames:
        assert frame.pixels.dtype == np.float32
        assert frame.pixels.shape == (source.Rows, source.Columns)
        assert 0.0 <= frame.pixels.min() and frame.pixels.max() <= 1.0
    assert any(np.ptp(f.pixels) > 0.1 for f in decoded.frames)
    json.dumps(decoded.details)  # JSON-safe
    # The de-identified original keeps its transfer syntax and decodes identically.
    again = read(decoded.original_bytes)
    assert again.details["transfer_syntax"] == str(source.file_meta.TransferSyntaxUID)
    for a, b in zip(decoded.frames, again.frames, strict=True):
        np.testing.assert_array_equal(a.pixels, b.pixels)
