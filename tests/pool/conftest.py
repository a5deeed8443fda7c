import io

import numpy as np
import pytest
from PIL import Image as PILImage
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.uid import CTImageStorage, ExplicitVRLittleEndian, generate_uid


def png_bytes(seed: int, size=(40, 30), mode="L") -> bytes:
    rng = np.random.default_rng(seed)
    if mode == "I;16":
        array = rng.integers(0, 4096, size=(size[1], size[0]), dtype=np.uint16)
        picture = PILImage.fromarray(array)
    else:
        picture = PILImage.fromarray(rng.integers(0, 255, (size[1], size[0]), dtype=np.uint8))
        picture = picture.convert(mode)
    buffer = io.BytesIO()
    picture.save(buffer, format="PNG")
    return buffer.getvalue()


def jpeg_bytes(seed: int) -> bytes:
    rng = np.random.default_rng(seed)
    buffer = io.BytesIO()
    PILImage.fromarray(rng.integers(0, 255, (30, 40), dtype=np.uint8)).save(buffer, "JPEG")
    return buffer.getvalue()


def ct_dicom_bytes(frames: int = 1, patient: str = "Doe^Jane") -> bytes:
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = CTImageStorage
    meta.MediaStorageSOPInstanceUID = generate_uid()
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds = Dataset()
    ds.file_meta = meta
    ds.SOPClassUID = CTImageStorage
    ds.SOPInstanceUID = meta.MediaStorageSOPInstanceUID
    ds.StudyInstanceUID = generate_uid()
    ds.SeriesInstanceUID = generate_uid()
    ds.PatientName = patient
    ds.PatientID = "MRN-0042"
    ds.PatientBirthDate = "19700101"
    ds.InstitutionName = "General Hospital"
    ds.ReferringPhysicianName = "House^Gregory"
    ds.Modality = "CT"
    ds.Rows, ds.Columns = 16, 16
    ds.SamplesPerPixel = 1
    ds.PhotometricInterpretation = "MONOCHROME2"
    ds.BitsAllocated, ds.BitsStored, ds.HighBit = 16, 16, 15
    ds.PixelRepresentation = 1
    ds.RescaleSlope, ds.RescaleIntercept = 1, -1024
    pixels = np.arange(frames * 256, dtype=np.int16).reshape(frames, 16, 16) * 5
    if frames > 1:
        ds.NumberOfFrames = frames
    ds.PixelData = (pixels if frames > 1 else pixels[0]).tobytes()
    buffer = io.BytesIO()
    ds.save_as(buffer, enforce_file_format=True)
    return buffer.getvalue()


@pytest.fixture
def image_folder(tmp_path):
    folder = tmp_path / "incoming"
    (folder / "nested").mkdir(parents=True)
    (folder / "a.png").write_bytes(png_bytes(1))
    (folder / "nested" / "b.jpg").write_bytes(jpeg_bytes(2))
    (folder / "nested" / "c16.png").write_bytes(png_bytes(3, mode="I;16"))
    (folder / "broken.png").write_bytes(png_bytes(4)[:60])
    (folder / "notes.txt").write_text("not an image")
    (folder / "ct.dcm").write_bytes(ct_dicom_bytes())
    return folder
