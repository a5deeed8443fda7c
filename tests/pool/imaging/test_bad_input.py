"""Bad uploads: every failure is an ImageImportError with a one-line reason."""

import io

import numpy as np
import pytest
from PIL import Image

from pool.imaging import SUPPORTED, ImageImportError, read_image
from tests.pool.imaging.builders import (
    bundled,
    dicom_bytes,
    gradient,
    jpeg_bytes,
    make_dataset,
    png_bytes,
    png_with_declared_size,
    read,
)


def reason(data, **kwargs) -> str:
    with pytest.raises(ImageImportError) as excinfo:
        read(data, **kwargs)
    message = str(excinfo.value)
    assert message and "\n" not in message and "Traceback" not in message
    return message


def test_it_rejects_a_truncated_png():
    data = png_bytes(np.random.default_rng(0).integers(0, 255, (64, 64), dtype=np.uint8))

    assert reason(data[: len(data) // 2]) == "truncated or corrupt PNG"


def test_it_rejects_a_truncated_jpeg():
    data = jpeg_bytes(np.random.default_rng(0).integers(0, 255, (64, 64), dtype=np.uint8))

    assert reason(data[: len(data) // 2]) == "truncated or corrupt JPEG"


def test_it_rejects_garbage_behind_a_png_signature():
    assert reason(b"\x89PNG\r\n\x1a\n" + bytes(range(256)) * 4) == "truncated or corrupt PNG"


def test_it_rejects_a_png_with_a_damaged_chunk():
    data = bytearray(png_bytes(gradient()))
    data[-20] ^= 0xFF  # inside the IDAT chunk: the CRC no longer matches

    assert reason(bytes(data)) == "truncated or corrupt PNG"


def test_it_rejects_a_text_file():
    message = reason(b"patient,label\nA,real\n", name="notes.csv")

    assert message == f"unsupported format (text): expected {SUPPORTED}"


def test_it_rejects_a_gif():
    buf = io.BytesIO()
    Image.fromarray(gradient()).save(buf, "GIF")

    assert (
        reason(buf.getvalue(), name="x.gif")
        == "unsupported format (GIF): expected PNG, JPEG or DICOM"
    )


def test_it_rejects_a_pdf_and_unknown_binary():
    assert "(PDF)" in reason(b"%PDF-1.7\n%\xe2\xe3\xcf\xd3\n")
    assert "(unknown)" in reason(bytes([0, 159, 146, 150]) * 64)


def test_it_rejects_an_empty_file():
    assert reason(b"") == "the file is empty"


@pytest.mark.parametrize("name", ["rtplan.dcm", "rtstruct.dcm", "test-SR.dcm"])
def test_it_rejects_a_dicom_without_pixel_data(name):
    assert reason(bundled(name), name=name) == "DICOM has no pixel data"


def test_it_rejects_a_dicom_with_truncated_pixel_data():
    assert reason(bundled("MR_truncated.dcm")).startswith(
        "DICOM pixel data is truncated or corrupt"
    )


def test_it_rejects_a_dicom_cut_in_its_header():
    data = bundled("CT_small.dcm")[:700]

    message = reason(data)

    assert "DICOM" in message


def test_it_rejects_a_text_file_named_dcm():
    assert "unsupported format (text)" in reason(b"just some notes\n" * 20, name="scan.dcm")


def test_it_rejects_an_image_over_the_pixel_limit_from_its_header_alone():
    bomb = png_with_declared_size(30000, 30000)  # 900 Mpx declared, a few hundred bytes

    message = reason(bomb, max_pixels=100_000_000)

    assert message == "image is 30000×30000 = 900 Mpx, over the 100 Mpx limit"


def test_it_checks_the_pixel_limit_for_jpeg_and_dicom_too():
    assert "over the" in reason(jpeg_bytes(gradient(100, 100)), max_pixels=9_999)
    multi = make_dataset(np.zeros((3, 100, 100), dtype=np.uint16), modality="OT", bits_stored=12)
    message = reason(dicom_bytes(multi), max_pixels=29_999)
    assert message.startswith("image is 100×100×3 frames = 0.03 Mpx, over the")
    # only the selected frames count
    assert len(read(dicom_bytes(multi), max_pixels=29_999, frames=(0, 1)).frames) == 2


def test_it_turns_pillows_own_bomb_error_into_an_import_error(monkeypatch):
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 1000)  # Pillow raises above 2000 px

    message = reason(png_bytes(gradient(100, 100)), max_pixels=10**9)

    assert "too large" in message


def test_it_rejects_a_file_over_the_byte_limit_before_looking_at_it():
    data = png_bytes(gradient())

    message = reason(data, max_bytes=len(data) - 1)

    assert message.startswith("file is ") and message.endswith("limit")
    assert len(read_image(data, max_bytes=len(data), max_pixels=10**6).frames) == 1
