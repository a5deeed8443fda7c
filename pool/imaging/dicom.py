"""DICOM: display-ready frames (pydicom 3) and de-identification."""

from __future__ import annotations

import io
import warnings
from collections.abc import Iterable

import numpy as np
import pydicom
from pydicom.datadict import tag_for_keyword
from pydicom.dataelem import DataElement
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.pixels import (
    apply_color_lut,
    apply_modality_lut,
    apply_voi,
    as_pixel_options,
    convert_color_space,
    get_decoder,
)
from pydicom.sequence import Sequence
from pydicom.uid import (
    ExplicitVRBigEndian,
    ExplicitVRLittleEndian,
    ImplicitVRLittleEndian,
    generate_uid,
)

from .decode import check_pixel_limit, luma, minmax, reduction_factor, select_frames
from .errors import ImageImportError
from .result import DecodedFile, Frame

# Lung window used for CT slices that carry no window of their own.
CT_DEFAULT_WINDOW = (-600.0, 1500.0)  # (centre, width) in HU

_MODALITY = {"CT": "CT", "CR": "CXR", "DX": "CXR", "DR": "CXR"}

_PIXEL_KEYWORDS = ("PixelData", "FloatPixelData", "DoubleFloatPixelData")


# =========================================================================== reading


def read_dicom(
    data: bytes,
    *,
    force: bool,
    max_pixels: int,
    frames: tuple[int, int] | None,
    min_side: int | None = None,
) -> DecodedFile:
    """Decode a DICOM into display-ready frames and a de-identified copy to keep.

    Frames are decoded one at a time; each very large one is shrunk as soon as it is decoded
    (see :func:`.decode.reduction_factor`), so the float frames never hold a full-size image.
    """
    ds = _parse(data, force=force)
    rows, cols, nframes = _dimensions(ds)
    # Limits and the frame range are checked before any pixel data is decoded.
    selected = select_frames(frames, nframes)
    check_pixel_limit(cols, rows, len(selected), max_pixels)

    _ensure_transfer_syntax(ds)
    modality_tag = str(ds.get("Modality", "") or "").strip().upper()
    factor = reduction_factor(cols, rows, min_side)
    decoded, notes = _decode_frames(ds, selected, modality_tag, factor)
    details = _describe(ds, nframes, modality_tag, notes)
    if factor > 1:
        details["reduced_by"] = factor
    original = _deidentified_copy(ds, details)
    return DecodedFile(
        format="dicom",
        frames=decoded,
        width=cols,
        height=rows,
        modality=_MODALITY.get(modality_tag),
        original_bytes=original,
        original_extension=".dcm",
        details=details,
    )


def _dimensions(ds: Dataset) -> tuple[int, int, int]:
    """(rows, columns, number of frames) from the header; refuses a file without pixels."""
    if not any(kw in ds for kw in _PIXEL_KEYWORDS):
        raise ImageImportError("DICOM has no pixel data")
    try:
        rows = int(ds.Rows)
        cols = int(ds.Columns)
        nframes = int(ds.get("NumberOfFrames") or 1)
    except Exception:  # noqa: BLE001 - any unreadable value means the same to the user
        raise ImageImportError("DICOM image has no valid Rows/Columns") from None
    return rows, cols, max(nframes, 1)


def _decoder_for(ds: Dataset):
    tsyntax = ds.file_meta.TransferSyntaxUID
    try:
        decoder = get_decoder(tsyntax)
    except NotImplementedError:
        raise ImageImportError(
            f"DICOM transfer syntax {tsyntax} ({tsyntax.name}) is not supported"
        ) from None
    if not decoder.is_available:
        raise ImageImportError(f"no decoder installed for DICOM transfer syntax {tsyntax.name}")
    return decoder


def _decode_frames(
    ds: Dataset, selected: range, modality_tag: str, factor: int
) -> tuple[list[Frame], dict]:
    """Each selected frame decoded, shrunk by ``factor`` and mapped for display, in turn."""
    decoder = _decoder_for(ds)
    decoded: list[Frame] = []
    notes: dict = {}
    for index in selected:
        arr, meta = _decode_frame(ds, decoder, index)
        if factor > 1:
            arr = shrink_stored(arr, factor, keep_values=_is_palette(ds, meta))
        try:
            pixels, frame_notes = _to_display(arr, ds, index, modality_tag, meta)
        except ImageImportError:
            raise
        except Exception as exc:  # noqa: BLE001 - malformed LUT/window attributes
            raise ImageImportError(
                f"DICOM pixel values could not be mapped for display ({_short(exc)})"
            ) from None
        notes = notes or frame_notes
        decoded.append(Frame(pixels=pixels, index=index))
    return decoded, notes


def _decode_frame(ds: Dataset, decoder, index: int) -> tuple[np.ndarray, dict]:
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            opts = as_pixel_options(ds)  # cheap: reads group 0028 only
            return decoder.as_array(ds, index=index, validate=True, **opts)
    except ImageImportError:
        raise
    except Exception as exc:  # noqa: BLE001 - decoder plugins raise many types
        raise ImageImportError(f"DICOM pixel data is truncated or corrupt ({_short(exc)})") from None


def _is_palette(ds: Dataset, meta: dict) -> bool:
    photometric = str(meta.get("photometric_interpretation") or ds.PhotometricInterpretation)
    return photometric.strip().upper() == "PALETTE COLOR"


def shrink_stored(arr: np.ndarray, factor: int, *, keep_values: bool = False) -> np.ndarray:
    """Shrink a decoded frame (rows, columns[, samples]) by ``factor`` in both directions.

    Stored values are averaged over factor × factor blocks and rounded back to their type, so
    modality and VOI LUTs still apply; palette indices (``keep_values``) are subsampled, since
    the mean of two indices is a third, unrelated colour.
    """
    if keep_values:
        return np.ascontiguousarray(arr[::factor, ::factor])
    rows, cols = (arr.shape[0] // factor) * factor, (arr.shape[1] // factor) * factor
    blocks = arr[:rows, :cols].reshape(rows // factor, factor, cols // factor, factor, *arr.shape[2:])
    mean = blocks.mean(axis=(1, 3))
    if np.issubdtype(arr.dtype, np.integer):
        mean = np.rint(mean)
    return mean.astype(arr.dtype)


def _describe(ds: Dataset, nframes: int, modality_tag: str, notes: dict) -> dict:
    details = {
        "bit_depth": int(ds.get("BitsStored") or ds.get("BitsAllocated") or 0),
        "photometric": str(ds.get("PhotometricInterpretation", "") or ""),
        "transfer_syntax": str(ds.file_meta.TransferSyntaxUID),
        "number_of_frames": nframes,
        "modality_tag": modality_tag or None,
        **notes,
    }
    if str(ds.get("BurnedInAnnotation", "")).upper() == "YES":
        # Pixel data may show text (names, dates): only a human can check that.
        details["burned_in_annotation"] = True
    return details


def _deidentified_copy(ds: Dataset, details: dict) -> bytes:
    """The file to keep as the original: de-identified, in its own transfer syntax if possible."""
    received_ts = str(ds.file_meta.TransferSyntaxUID)
    try:
        deidentify(ds)
    except Exception as exc:  # noqa: BLE001 - never store a half-cleaned file
        raise ImageImportError(f"the DICOM could not be de-identified ({_short(exc)})") from None
    original, written_ts = _encode(ds)
    if written_ts != received_ts:
        details["stored_transfer_syntax"] = written_ts
    return original


def _parse(data: bytes, *, force: bool) -> Dataset:
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            ds = pydicom.dcmread(io.BytesIO(data), force=force)
            # Touch every top-level element now so that a damaged header fails
            # here, with a DICOM-specific message, rather than later.
            for _elem in ds:
                pass
    except Exception:  # noqa: BLE001 - pydicom raises many types on bad input
        # No detail from the exception here: header errors can quote element values.
        raise ImageImportError("truncated or corrupt DICOM header") from None
    if force and len(ds) == 0:
        raise ImageImportError("not a DICOM file (no DICOM elements found)")
    return ds


def _ensure_transfer_syntax(ds: Dataset) -> None:
    """Files without file meta (read with force=True) get a transfer syntax
    matching the encoding pydicom detected, so the pixel decoder and writer work."""
    meta = getattr(ds, "file_meta", None)
    if meta is None:
        meta = ds.file_meta = FileMetaDataset()
    if meta.get("TransferSyntaxUID"):
        return
    implicit, little = ds.original_encoding
    if implicit is None:
        implicit, little = True, True
    if implicit:
        meta.TransferSyntaxUID = ImplicitVRLittleEndian
    elif little:
        meta.TransferSyntaxUID = ExplicitVRLittleEndian
    else:
        meta.TransferSyntaxUID = ExplicitVRBigEndian


# --------------------------------------------------------------------------- display


# Attributes that may be given per frame in the functional groups of enhanced
# multi-frame objects (PS3.3 C.7.6.16): Pixel Value Transformation and Frame VOI LUT.
_FRAME_LEVEL = (
    "RescaleSlope",
    "RescaleIntercept",
    "RescaleType",
    "WindowCenter",
    "WindowWidth",
    "VOILUTFunction",
)
_FRAME_GROUPS = ("PixelValueTransformationSequence", "FrameVOILUTSequence")
_IMAGE_LEVEL = (
    "PhotometricInterpretation",
    "BitsStored",
    "BitsAllocated",
    "PixelRepresentation",
    "ModalityLUTSequence",
    "VOILUTSequence",
    *_FRAME_LEVEL,
)


def _frame_view(ds: Dataset, index: int) -> Dataset:
    """A small dataset with the LUT/window attributes in force for one frame:
    top level, overridden by the shared, then the per-frame functional groups."""
    view = Dataset()
    view.file_meta = ds.file_meta  # LUT data endianness
    view.set_original_encoding(*ds.original_encoding)
    for kw in _IMAGE_LEVEL:
        if kw in ds:
            view[kw] = ds[kw]
    group_items = []
    shared = ds.get("SharedFunctionalGroupsSequence")
    if shared:
        group_items.append(shared[0])
    per_frame = ds.get("PerFrameFunctionalGroupsSequence")
    if per_frame and index < len(per_frame):
        group_items.append(per_frame[index])
    for item in group_items:
        for seq_kw in _FRAME_GROUPS:
            seq = item.get(seq_kw)
            if not seq:
                continue
            for kw in _FRAME_LEVEL:
                if kw in seq[0]:
                    view[kw] = seq[0][kw]
    return view


def _to_display(
    arr: np.ndarray, ds: Dataset, index: int, modality_tag: str, meta: dict
) -> tuple[np.ndarray, dict]:
    """Decoded stored values of one frame -> float32 [0, 1], bone white."""
    photometric = str(meta.get("photometric_interpretation") or ds.PhotometricInterpretation)
    photometric = photometric.strip().upper()
    notes: dict = {}

    if photometric == "PALETTE COLOR":
        rgb = apply_color_lut(arr, ds)
        # The LUT entries are 8- or 16-bit (third value of the LUT descriptor).
        depth = int(ds.RedPaletteColorLookupTableDescriptor[2])
        scale = 255.0 if depth == 8 else 65535.0
        notes["window_source"] = "palette"
        return np.clip(luma(rgb) / scale, 0, 1).astype(np.float32), notes

    if arr.ndim == 3:  # colour: no modality LUT / VOI apply (PS3.3 C.11.1)
        if photometric.startswith("YBR"):
            arr = convert_color_space(arr, photometric, "RGB")
        bits = int(ds.get("BitsStored") or 8)
        notes["window_source"] = "colour"
        return np.clip(luma(arr) / (2**bits - 1), 0, 1).astype(np.float32), notes

    view = _frame_view(ds, index)
    is_float_data = "PixelData" not in ds
    values = arr.astype(np.float64) if is_float_data else arr
    if not is_float_data:
        values = apply_modality_lut(values, view)

    center = _first_number(view.get("WindowCenter"))
    width = _first_number(view.get("WindowWidth"))
    voi_lut = view.get("VOILUTSequence")
    if center is not None and width is not None and width > 0:
        function = str(view.get("VOILUTFunction", "LINEAR") or "LINEAR").upper()
        out = window(values, center, width, function)
        notes.update(window=[center, width], window_source="dataset")
        if function != "LINEAR":
            notes["voi_lut_function"] = function
    elif voi_lut and "LUTDescriptor" in voi_lut[0] and "LUTData" in voi_lut[0]:
        out = _apply_voi_lut(values, view)
        notes["window_source"] = "VOI LUT"
    elif modality_tag == "CT":
        c, w = CT_DEFAULT_WINDOW
        out = window(values, c, w)
        notes.update(window=[c, w], window_source="lung default")
    else:
        out = minmax(values)
        notes["window_source"] = "min-max"

    if photometric == "MONOCHROME1":
        # MONOCHROME1: low values are white. Inverting after the VOI step gives
        # the MONOCHROME2 convention used everywhere else (bone white).
        out = 1.0 - out
    return np.clip(out, 0.0, 1.0).astype(np.float32), notes


def window(values: np.ndarray, center: float, width: float, function: str = "LINEAR") -> np.ndarray:
    """VOI windowing (PS3.3 C.11.2.1.2 and C.11.2.1.3) straight to [0, 1].

    pydicom's ``apply_windowing`` maps into the stored-value range instead, which
    would have to be undone; the formulas are short enough to apply directly.
    """
    x = np.asarray(values, dtype=np.float64)
    if function == "SIGMOID":
        return 1.0 / (1.0 + np.exp(-4.0 * (x - center) / width))
    if function == "LINEAR_EXACT":
        return np.clip((x - center) / width + 0.5, 0.0, 1.0)
    # LINEAR (the default, also used for unknown values)
    c, w = center - 0.5, width - 1.0
    if w <= 0:  # width 1: a threshold
        return (x > c).astype(np.float64)
    return np.clip((x - c) / w + 0.5, 0.0, 1.0)


def _apply_voi_lut(values: np.ndarray, view: Dataset) -> np.ndarray:
    """Apply the first VOI LUT and scale its output range to [0, 1].

    The output is scaled by the LUT's own smallest and largest entries rather
    than by 2**bits: many files declare 16-bit entries but fill only 12 bits.
    """
    item = view.VOILUTSequence[0]
    descriptor = [int(v) for v in item.LUTDescriptor]
    nr_entries = descriptor[0] or 2**16
    first = descriptor[1]
    if first >= 2**15 and view.get("PixelRepresentation", 0) == 1:
        first -= 2**16  # US-encoded negative first mapped value
    ints = np.rint(np.asarray(values, dtype=np.float64)).astype(np.int64)
    out = apply_voi(ints, view).astype(np.float64)
    table = apply_voi(np.arange(first, first + nr_entries, dtype=np.int64), view)
    lo, hi = float(table.min()), float(table.max())
    if hi <= lo:
        return np.zeros(out.shape)
    return (out - lo) / (hi - lo)


def _first_number(value) -> float | None:
    if value is None or value == "":
        return None
    if isinstance(value, (list, tuple, pydicom.multival.MultiValue)):
        if not value:
            return None
        value = value[0]
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    return number if np.isfinite(number) else None


def _short(exc: BaseException) -> str:
    text = " ".join(str(exc).split()) or type(exc).__name__
    return text if len(text) <= 160 else text[:157] + "..."


def _encode(ds: Dataset) -> tuple[bytes, str]:
    """Write the (de-identified) data set as a DICOM file, keeping its transfer
    syntax; if pydicom cannot write that one, decompress to Explicit VR LE."""
    ts = str(ds.file_meta.TransferSyntaxUID)
    try:
        buf = io.BytesIO()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            ds.save_as(buf, enforce_file_format=True)
        return buf.getvalue(), ts
    except Exception:  # noqa: BLE001, S110 - fall back to uncompressed below
        pass
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            if ds.file_meta.TransferSyntaxUID.is_compressed:
                ds.decompress()
            ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
            buf = io.BytesIO()
            ds.save_as(buf, enforce_file_format=True)
        return buf.getvalue(), str(ExplicitVRLittleEndian)
    except Exception as exc:  # noqa: BLE001 - reported to the user as one line
        raise ImageImportError(
            f"the de-identified DICOM could not be written ({_short(exc)})"
        ) from None


# =========================================================================== de-identification
#
# What is removed, blanked or replaced follows DICOM PS3.15 Annex E, Table E.1-1
# ("Application Level Confidentiality Profile Attributes"), column "Basic Profile",
# as far as it matters for single images:
#   Z  -> replaced by a zero-length value (Type 2 attributes an IOD requires),
#   X  -> removed,
#   U  -> UIDs replaced by new ones (see _UID_KEEP below for what is kept).
# On top of the table, and stricter than it in places, these rules apply to
# every element at every sequence depth:
#   * every private element is removed (no "Retain Safe Private" option);
#   * every PN (person name), DA/DT/TM (date/time) and AE (network title)
#     element is removed unless listed in _BLANK (then it is emptied);
#   * every attribute whose keyword ends in "Comments" is removed;
#   * public elements of unknown meaning (VR UN) are removed;
#   * overlays (groups 60xx, which can hold burned-in text) and curves (50xx)
#     are removed, as are the 128-byte preamble content and trailing padding.
# The Image Pixel module (group 0028) and the pixel data (7FE0) are never touched.

# Z: Type 2 in the common image IODs: kept present with an empty value.
_BLANK = frozenset(
    {
        "PatientName",
        "PatientID",
        "PatientBirthDate",
        "PatientSex",
        "ReferringPhysicianName",
        "StudyDate",
        "StudyTime",
        "ContentDate",
        "ContentTime",
        "AccessionNumber",
        "StudyID",
        "ContrastBolusAgent",
        "ContentCreatorName",
        "PlacerOrderNumberImagingServiceRequest",
        "FillerOrderNumberImagingServiceRequest",
    }
)

# X: removed wherever they occur (sequences are removed with their content).
_REMOVE = frozenset(
    {
        # patient
        "IssuerOfPatientID",
        "IssuerOfPatientIDQualifiersSequence",
        "TypeOfPatientID",
        "PatientBirthTime",
        "PatientBirthDateInAlternativeCalendar",
        "PatientDeathDateInAlternativeCalendar",
        "PatientAlternativeCalendar",
        "PatientInsurancePlanCodeSequence",
        "PatientPrimaryLanguageCodeSequence",
        "PatientPrimaryLanguageModifierCodeSequence",
        "OtherPatientIDs",
        "OtherPatientNames",
        "OtherPatientIDsSequence",
        "PatientBirthName",
        "PatientAge",
        "PatientSize",
        "PatientWeight",
        "PatientAddress",
        "InsurancePlanIdentification",
        "PatientMotherBirthName",
        "MilitaryRank",
        "BranchOfService",
        "MedicalRecordLocator",
        "ReferencedPatientPhotoSequence",
        "MedicalAlerts",
        "Allergies",
        "CountryOfResidence",
        "RegionOfResidence",
        "PatientTelephoneNumbers",
        "PatientTelecomInformation",
        "EthnicGroup",
        "Occupation",
        "SmokingStatus",
        "AdditionalPatientHistory",
        "PregnancyStatus",
        "LastMenstrualDate",
        "PatientReligiousPreference",
        "PatientSexNeutered",
        "ResponsiblePerson",
        "ResponsibleOrganization",
        "PatientComments",
        "PatientState",
        "PatientTransportArrangements",
        "PatientInstitutionResidence",
        "ReferencedPatientSequence",
        "ReferencedPatientAliasSequence",
        "ClinicalTrialSponsorName",
        "ClinicalTrialProtocolID",
        "ClinicalTrialProtocolName",
        "ClinicalTrialSiteID",
        "ClinicalTrialSiteName",
        "ClinicalTrialSubjectID",
        "ClinicalTrialSubjectReadingID",
        "ClinicalTrialTimePointID",
        "ClinicalTrialTimePointDescription",
        "ClinicalTrialCoordinatingCenterName",
        # visit / admission
        "AdmissionID",
        "IssuerOfAdmissionIDSequence",
        "AdmittingDiagnosesDescription",
        "AdmittingDiagnosesCodeSequence",
        "ServiceEpisodeID",
        "ServiceEpisodeDescription",
        "CurrentPatientLocation",
        # institution and equipment
        "InstitutionName",
        "InstitutionAddress",
        "InstitutionCodeSequence",
        "InstitutionalDepartmentName",
        "InstitutionalDepartmentTypeCodeSequence",
        "StationName",
        "DeviceSerialNumber",
        "DeviceDescription",
        "PlateID",
        "GeneratorID",
        "CassetteID",
        "GantryID",
        "DetectorID",
        "SoftwareVersions",
        "TimezoneOffsetFromUTC",
        # people (the PN values themselves are caught by the PN rule)
        "ReferringPhysicianAddress",
        "ReferringPhysicianTelephoneNumbers",
        "ReferringPhysicianIdentificationSequence",
        "ConsultingPhysicianIdentificationSequence",
        "PhysiciansOfRecordIdentificationSequence",
        "PerformingPhysicianIdentificationSequence",
        "PhysiciansReadingStudyIdentificationSequence",
        "OperatorIdentificationSequence",
        "ContentCreatorIdentificationCodeSequence",
        "RequestingService",
        "ActualHumanPerformersSequence",
        "HumanPerformerOrganization",
        "VerifyingOrganization",
        "OrderEntererLocation",
        "OrderCallbackPhoneNumber",
        # study, request and procedure step
        "IssuerOfAccessionNumberSequence",
        "StudyIDIssuer",
        "StudyDescription",
        "SeriesDescription",
        "ProtocolName",
        "ReasonForStudy",
        "ReasonForTheRequestedProcedure",
        "RequestedProcedureDescription",
        "RequestedProcedureID",
        "RequestedContrastAgent",
        "RequestAttributesSequence",
        "ReferencedStudySequence",
        "ReferencedPerformedProcedureStepSequence",
        "ScheduledProcedureStepID",
        "ScheduledProcedureStepDescription",
        "ScheduledProcedureStepLocation",
        "ScheduledStationName",
        "PerformedStationName",
        "PerformedLocation",
        "PerformedProcedureStepID",
        "PerformedProcedureStepDescription",
        "DerivationDescription",
        "AcquisitionDeviceProcessingDescription",
        "SourceImageSequence",
        "ConfidentialityConstraintOnPatientDataDescription",
        "ImagingServiceRequestComments",
        # free text
        "IdentifyingComments",
        "TextValue",
        "TextString",
        "TextComments",
        # containers that can hold any of the above
        "OriginalAttributesSequence",
        "EncryptedAttributesSequence",
        "DigitalSignaturesSequence",
        "MACParametersSequence",
        "DataSetTrailingPadding",
    }
)

# UIDs not replaced: they name a class or syntax, not a patient/study/instance.
# Any UID value under the DICOM root 1.2.840.10008 is also kept (well-known
# frames of reference, coding schemes, ...).
_UID_KEEP = frozenset({"TransferSyntaxUID", "CodingSchemeUID", "MappingResourceUID"})
_DICOM_ROOT = "1.2.840.10008."


def _tags(keywords: Iterable[str]) -> frozenset[int]:
    tags = set()
    for kw in keywords:
        tag = tag_for_keyword(kw)
        if tag is None:  # keyword not known to this pydicom version
            continue
        tags.add(int(tag))
    return frozenset(tags)


_BLANK_TAGS = _tags(_BLANK)
_REMOVE_TAGS = _tags(_REMOVE)
_VR_REMOVE = frozenset({"PN", "DA", "DT", "TM", "AE"})

# (0012,0063) De-identification Method is LO (64 characters at most), VM 1-n.
DEIDENTIFICATION_METHOD = [
    "DICOM PS3.15 Annex E Basic Application Confidentiality Profile",
    "patient, institution, people, dates and free text removed",
    "all private elements removed",
    "instance UIDs replaced",
]


def deidentify(ds: Dataset, *, uid_map: dict[str, str] | None = None) -> None:
    """Remove identifying information from ``ds`` in place (see the table above).

    ``uid_map`` (old UID -> new UID) keeps the replacement consistent inside the
    data set (a UID referenced twice gets the same new value); pass the same dict
    for several files to keep them linked to each other. New UIDs come from
    ``pydicom.uid.generate_uid()`` and so carry no trace of the original ones.
    """
    if uid_map is None:
        uid_map = {}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        _scrub(ds, uid_map)

        meta = getattr(ds, "file_meta", None)
        if meta is not None:
            for tag in list(meta.keys()):
                elem = meta[tag]
                if elem.VR == "AE" or elem.keyword in (
                    "PrivateInformationCreatorUID",
                    "PrivateInformation",
                    "SourcePresentationAddress",
                    "SendingPresentationAddress",
                    "ReceivingPresentationAddress",
                ):
                    del meta[tag]
            if "SOPInstanceUID" in ds:
                meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
            elif "MediaStorageSOPInstanceUID" in meta:
                meta.MediaStorageSOPInstanceUID = _new_uid(
                    str(meta.MediaStorageSOPInstanceUID), uid_map
                )

        if getattr(ds, "preamble", None) is not None:
            ds.preamble = b"\x00" * 128

        ds.PatientIdentityRemoved = "YES"
        ds.DeidentificationMethod = DEIDENTIFICATION_METHOD
        code = Dataset()
        code.CodeValue = "113100"
        code.CodingSchemeDesignator = "DCM"
        code.CodeMeaning = "Basic Application Confidentiality Profile"
        ds.DeidentificationMethodCodeSequence = Sequence([code])
        ds.LongitudinalTemporalInformationModified = "REMOVED"


def _new_uid(old: str, uid_map: dict[str, str]) -> str:
    if old not in uid_map:
        uid_map[old] = generate_uid()
    return uid_map[old]


def _scrub(ds: Dataset, uid_map: dict[str, str]) -> None:
    for key in list(ds.keys()):
        tag = int(key)
        group = tag >> 16
        if group & 1:  # private element (including private creators)
            del ds[tag]
            continue
        if group in (0x0028, 0x7FE0):  # image pixel module and pixel data
            continue
        if 0x5000 <= group <= 0x60FF and (group < 0x5100 or group >= 0x6000):
            del ds[tag]  # curves (50xx) and overlays (60xx)
            continue
        try:
            elem: DataElement = ds[tag]
        except Exception:  # noqa: BLE001
            del ds[tag]  # cannot be interpreted, so cannot be judged safe
            continue
        keyword = elem.keyword or ""

        if tag in _REMOVE_TAGS or keyword.endswith("Comments"):
            del ds[tag]
        elif tag in _BLANK_TAGS:
            elem.value = [] if elem.VR == "SQ" else ""  # all _BLANK entries are text
        elif elem.VR in _VR_REMOVE or elem.VR == "UN" or not keyword:
            del ds[tag]  # names, dates, AE titles, and anything of unknown meaning
        elif elem.VR == "UI":
            _replace_uids(elem, uid_map)
        elif elem.VR == "SQ":
            for item in elem.value:
                _scrub(item, uid_map)


def _replace_uids(elem: DataElement, uid_map: dict[str, str]) -> None:
    keyword = elem.keyword
    if keyword.endswith("ClassUID") or keyword in _UID_KEEP:
        return
    if elem.VM == 0:
        return

    def swap(uid) -> str:
        uid = str(uid).strip("\x00 ")
        if not uid or uid.startswith(_DICOM_ROOT):
            return uid
        return _new_uid(uid, uid_map)

    if elem.VM > 1:
        elem.value = [swap(v) for v in elem.value]
    else:
        elem.value = swap(elem.value)
