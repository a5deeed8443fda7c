"""Small images built in memory for the imaging tests (no files on disk)."""

from __future__ import annotations

import io
import struct
import zlib
from pathlib import Path

import numpy as np
import pydicom
from PIL import Image
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.sequence import Sequence
from pydicom.uid import (
    CTImageStorage,
    DigitalXRayImageStorageForPresentation,
    ExplicitVRLittleEndian,
    SecondaryCaptureImageStorage,
    generate_uid,
)

from pool.imaging import read_image

LIMITS = {"max_bytes": 20 * 1024 * 1024, "max_pixels": 10_000_000}

PYDICOM_TEST_FILES = Path(pydicom.__file__).parent / "data" / "test_files"


def read(data: bytes, **kwargs):
    """read_image with generous default limits."""
    return read_image(data, **{**LIMITS, **kwargs})


def bundled(name: str) -> bytes:
    """A DICOM file shipped inside the pydicom wheel (never downloaded)."""
    path = PYDICOM_TEST_FILES / name
    assert path.is_file(), f"{name} is not shipped with this pydicom"
    return path.read_bytes()


# --------------------------------------------------------------------------- PNG / JPEG


def png_bytes(image: Image.Image | np.ndarray, **save_kwargs) -> bytes:
    if isinstance(image, np.ndarray):
        image = Image.fromarray(image)
    buf = io.BytesIO()
    image.save(buf, "PNG", **save_kwargs)
    return buf.getvalue()


def jpeg_bytes(image: Image.Image | np.ndarray, *, orientation: int | None = None) -> bytes:
    if isinstance(image, np.ndarray):
        image = Image.fromarray(image)
    buf = io.BytesIO()
    kwargs = {"quality": 95}
    if orientation is not None:
        exif = Image.Exif()
        exif[0x0112] = orientation
        kwargs["exif"] = exif.tobytes()
    image.save(buf, "JPEG", **kwargs)
    return buf.getvalue()


def png_chunks(data: bytes) -> list[bytes]:
    """Chunk types of a PNG, in order, checking every length and CRC."""
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    kinds, i = [], 8
    while i < len(data):
        (length,) = struct.unpack(">I", data[i : i + 4])
        kind = data[i + 4 : i + 8]
        body = data[i + 8 : i + 8 + length]
        (crc,) = struct.unpack(">I", data[i + 8 + length : i + 12 + length])
        assert zlib.crc32(kind + body) & 0xFFFFFFFF == crc, kind
        kinds.append(kind)
        i += 12 + length
    assert i == len(data)
    return kinds


def png_with_declared_size(width: int, height: int) -> bytes:
    """A structurally valid PNG whose IHDR claims width × height (a bomb header)."""

    def chunk(kind: bytes, body: bytes) -> bytes:
        crc = zlib.crc32(kind + body) & 0xFFFFFFFF
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", crc)

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    idat = zlib.compress(b"\x00" * 1024, 9)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", idat) + chunk(b"IEND", b"")


def gradient(height: int = 48, width: int = 64) -> np.ndarray:
    """uint8 ramp, left dark to right bright."""
    row = np.linspace(0, 255, width).round().astype(np.uint8)
    return np.tile(row, (height, 1))


# --------------------------------------------------------------------------- DICOM


def make_dataset(
    pixels: np.ndarray,
    *,
    modality: str = "CT",
    photometric: str = "MONOCHROME2",
    bits_stored: int | None = None,
    slope: float | None = None,
    intercept: float | None = None,
    center=None,
    width=None,
    phi: bool = False,
) -> Dataset:
    """An uncompressed (Explicit VR Little Endian) image data set."""
    pixels = np.asarray(pixels)
    ds = Dataset()
    ds.file_meta = FileMetaDataset()
    ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds.SOPClassUID = {
        "CT": CTImageStorage,
        "DX": DigitalXRayImageStorageForPresentation,
    }.get(modality, SecondaryCaptureImageStorage)
    ds.StudyInstanceUID = generate_uid()
    ds.SeriesInstanceUID = generate_uid()
    ds.FrameOfReferenceUID = generate_uid()
    ds.Modality = modality
    ds.PatientName = ""
    ds.PatientID = ""
    if slope is not None:
        ds.RescaleSlope = slope
        ds.RescaleIntercept = intercept or 0
    if center is not None:
        ds.WindowCenter = center
        ds.WindowWidth = width
    if phi:
        add_phi(ds)
    ds.set_pixel_data(pixels, photometric, bits_stored or pixels.dtype.itemsize * 8)
    ds.file_meta.MediaStorageSOPClassUID = ds.SOPClassUID
    ds.file_meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
    return ds


def add_phi(ds: Dataset) -> None:
    """Identifying values in the places PS3.15 cares about."""
    ds.PatientName = "Doe^Jane"
    ds.PatientID = "MRN-0042"
    ds.PatientBirthDate = "19700101"
    ds.PatientBirthTime = "101500"
    ds.PatientAddress = "1 Main Street, Springfield"
    ds.PatientTelephoneNumbers = "555-0100"
    ds.OtherPatientIDs = "ALT-7"
    ds.PatientMotherBirthName = "Roe^Mary"
    ds.InstitutionName = "St Example Hospital"
    ds.InstitutionAddress = "2 Hospital Road"
    ds.InstitutionalDepartmentName = "Radiology"
    ds.StationName = "CT-ROOM-3"
    ds.ReferringPhysicianName = "House^Gregory"
    ds.PerformingPhysicianName = "Grey^Meredith"
    ds.OperatorsName = "Tech^Terry"
    ds.NameOfPhysiciansReadingStudy = "Reader^Rita"
    ds.RequestingPhysician = "Asker^Arthur"
    ds.AccessionNumber = "ACC123456"
    ds.StudyID = "STUDY-99"
    ds.StudyDate = "20240102"
    ds.SeriesDate = "20240102"
    ds.AcquisitionDate = "20240102"
    ds.ContentDate = "20240102"
    ds.StudyTime = "083000"
    ds.AcquisitionDateTime = "20240102083000"
    ds.DeviceSerialNumber = "SN-777"
    ds.ImageComments = "patient moved, Jane said"
    ds.StudyDescription = "CHEST for Jane Doe"
    # Private block with a name in it.
    block = ds.private_block(0x0009, "ACME 1.0", create=True)
    block.add_new(0x01, "LO", "Jane Doe private copy")
    # A nested sequence carrying a person name, a date and a referenced UID.
    inner = Dataset()
    inner.VerifyingObserverName = "Nested^Nora"
    inner.ObservationDateTime = "20240102090000"
    inner.ReferencedSOPClassUID = CTImageStorage
    inner.ReferencedSOPInstanceUID = "1.2.3.4.5.6.7.8.9"
    ds.ReferencedImageSequence = Sequence([inner])


def dicom_bytes(ds: Dataset, *, preamble: bool = True) -> bytes:
    buf = io.BytesIO()
    if preamble:
        ds.save_as(buf, enforce_file_format=True)
    else:  # a bare data set: no preamble, no "DICM", no file meta
        ds.preamble = None
        ds.file_meta = FileMetaDataset()
        ds.save_as(buf, implicit_vr=False, little_endian=True)
    return buf.getvalue()


def reparse(data: bytes) -> Dataset:
    return pydicom.dcmread(io.BytesIO(data))
