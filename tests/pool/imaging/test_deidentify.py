"""De-identification of the DICOM original kept on the server (PS3.15 Annex E)."""

import numpy as np
from pydicom.dataset import Dataset
from pydicom.sequence import Sequence
from pydicom.uid import CTImageStorage, RLELossless

from pool.imaging import deidentify
from tests.pool.imaging.builders import bundled, dicom_bytes, make_dataset, read, reparse

PHI_VALUES = [
    b"Doe",
    b"Jane",
    b"MRN-0042",
    b"19700101",
    b"Main Street",
    b"555-0100",
    b"ALT-7",
    b"Roe^Mary",
    b"Example Hospital",
    b"Hospital Road",
    b"Radiology",
    b"CT-ROOM-3",
    b"House",
    b"Grey",
    b"Tech^Terry",
    b"Reader^Rita",
    b"Asker",
    b"ACC123456",
    b"STUDY-99",
    b"20240102",
    b"SN-777",
    b"ACME",
    b"Nested^Nora",
    b"1.2.3.4.5.6.7.8.9",
]


def phi_ct():
    pixels = np.arange(64, dtype=np.int16).reshape(8, 8)
    return make_dataset(pixels, slope=1, intercept=-1024, center=40, width=400, phi=True)


def test_it_removes_or_blanks_patient_people_institution_and_dates():
    source = phi_ct()
    data = dicom_bytes(source)

    stored = reparse(read(data).original_bytes)

    for keyword in (
        "PatientName",
        "PatientID",
        "PatientBirthDate",
        "AccessionNumber",
        "StudyID",
        "StudyDate",
        "StudyTime",
        "ContentDate",
        "ReferringPhysicianName",
    ):
        assert keyword in stored and stored[keyword].value in ("", None), keyword
    for keyword in (
        "PatientBirthTime",
        "PatientAddress",
        "PatientTelephoneNumbers",
        "OtherPatientIDs",
        "PatientMotherBirthName",
        "InstitutionName",
        "InstitutionAddress",
        "InstitutionalDepartmentName",
        "StationName",
        "PerformingPhysicianName",
        "OperatorsName",
        "NameOfPhysiciansReadingStudy",
        "RequestingPhysician",
        "SeriesDate",
        "AcquisitionDate",
        "AcquisitionDateTime",
        "DeviceSerialNumber",
        "ImageComments",
        "StudyDescription",
    ):
        assert keyword not in stored, keyword
    assert stored.PatientIdentityRemoved == "YES"
    assert stored.DeidentificationMethod
    assert stored.DeidentificationMethodCodeSequence[0].CodeValue == "113100"


def test_it_leaves_no_identifying_value_anywhere_in_the_stored_bytes():
    original = read(dicom_bytes(phi_ct())).original_bytes

    for value in PHI_VALUES:
        assert value not in original, value


def test_it_removes_private_tags_and_walks_nested_sequences():
    stored = reparse(read(dicom_bytes(phi_ct())).original_bytes)

    assert not [e for e in stored.iterall() if e.tag.is_private]
    [item] = stored.ReferencedImageSequence
    assert "VerifyingObserverName" not in item
    assert "ObservationDateTime" not in item
    assert item.ReferencedSOPClassUID == CTImageStorage  # a class, not an instance: kept
    assert item.ReferencedSOPInstanceUID != "1.2.3.4.5.6.7.8.9"


def test_it_replaces_instance_uids_and_keeps_the_file_meta_consistent():
    source = phi_ct()
    before = {
        k: str(source[k].value)
        for k in ("StudyInstanceUID", "SeriesInstanceUID", "SOPInstanceUID", "FrameOfReferenceUID")
    }

    stored = reparse(read(dicom_bytes(source)).original_bytes)

    for keyword, old in before.items():
        assert str(stored[keyword].value) != old, keyword
        assert str(stored[keyword].value).startswith("1.2.826.0.1.3680043.8.498.")  # pydicom root
    assert stored.file_meta.MediaStorageSOPInstanceUID == stored.SOPInstanceUID
    assert stored.SOPClassUID == CTImageStorage
    assert stored.file_meta.MediaStorageSOPClassUID == CTImageStorage


def test_it_gives_a_uid_referenced_twice_the_same_new_value():
    ds = phi_ct()
    ds.ReferencedImageSequence[0].ReferencedSOPInstanceUID = ds.SOPInstanceUID

    deidentify(ds)

    assert ds.ReferencedImageSequence[0].ReferencedSOPInstanceUID == ds.SOPInstanceUID


def test_it_keeps_everything_needed_to_display_the_pixels():
    source = phi_ct()
    data = dicom_bytes(source)

    first = read(data)
    again = read(first.original_bytes)

    np.testing.assert_array_equal(first.frames[0].pixels, again.frames[0].pixels)
    stored = reparse(first.original_bytes)
    for keyword in (
        "Rows",
        "Columns",
        "BitsStored",
        "PixelRepresentation",
        "PhotometricInterpretation",
        "RescaleSlope",
        "RescaleIntercept",
        "WindowCenter",
        "WindowWidth",
        "Modality",
        "SOPClassUID",
    ):
        assert stored[keyword].value == source[keyword].value, keyword


def test_it_keeps_a_compressed_transfer_syntax():
    ds = phi_ct()
    ds.compress(RLELossless, generate_instance_uid=False)

    decoded = read(dicom_bytes(ds))

    stored = reparse(decoded.original_bytes)
    assert stored.file_meta.TransferSyntaxUID == RLELossless
    assert stored.PatientName == ""
    assert b"Doe" not in decoded.original_bytes


def test_it_clears_the_preamble_and_overlays():
    ds = phi_ct()
    ds.preamble = b"Jane Doe hidden in the preamble".ljust(128, b"\x00")
    ds.add_new(0x60000010, "US", 8)  # Overlay Rows
    ds.add_new(0x60003000, "OW", b"\xff" * 8)  # Overlay Data (may hold burned-in text)
    ds.add_new(0x60004000, "LT", "Jane Doe overlay comment")  # Overlay Comments

    original = read(dicom_bytes(ds)).original_bytes

    assert original[:128] == b"\x00" * 128
    assert b"Jane" not in original
    assert not [e for e in reparse(original).iterall() if 0x6000 <= e.tag.group <= 0x60FF]


def test_it_deidentifies_a_dataset_in_place():
    ds = Dataset()
    ds.PatientName = "Doe^Jane"
    ds.PatientID = "X"
    ds.OtherPatientIDsSequence = Sequence([Dataset()])
    ds.OtherPatientIDsSequence[0].PatientID = "Y"
    ds.SOPClassUID = CTImageStorage
    ds.SOPInstanceUID = "1.2.3"
    ds.add_new(0x00111001, "LO", "secret")

    assert deidentify(ds) is None

    assert ds.PatientName == "" and ds.PatientID == ""
    assert "OtherPatientIDsSequence" not in ds
    assert ds.SOPInstanceUID != "1.2.3"
    assert 0x00111001 not in ds


def test_it_deidentifies_the_bundled_ct_small():
    source = reparse(bundled("CT_small.dcm"))

    stored = reparse(read(bundled("CT_small.dcm")).original_bytes)

    assert str(source.PatientName) and stored.PatientName == ""
    assert stored.StudyInstanceUID != source.StudyInstanceUID
    assert "InstitutionName" not in stored
    assert not [e for e in stored.iterall() if e.tag.is_private]
    assert not [e for e in stored.iterall() if e.VR in ("PN", "DA", "TM", "DT") and e.value]
